//! One person under many ids: a merge moves everything to the survivor (the earlier
//! joined; a tie, the smaller id) and takes the merged id out of every figure; an unmerge
//! gives back exactly what was; never-merge refuses. On SQLite always, on PostgreSQL too
//! when `SIYU_TEST_POSTGRES` is set.

mod common;

use std::path::Path;

use serde_json::{Value, json};

use siyu::service::import::{ImportOptions, import_file};
use siyu::service::ingest::{message_id_of, parse_item, write_batch};
use siyu::service::merge::{self, MergeError};
use siyu::service::segments::{NewRule, rule_settings, save_rule};
use siyu_core::CustomerId;
use siyu_core::import::Kind;
use siyu_core::segment::rules::{Purpose, RuleKind};
use siyu_store::{MemberFilter, MergeReason, Store, Tenant};

fn id(s: &str) -> CustomerId {
    CustomerId::parse(s).expect("id")
}

/// A SQLite store in a fresh directory, and the PostgreSQL one when the tests have it.
fn stores(name: &str) -> Vec<(Box<dyn Store>, Tenant, tempfile::TempDir)> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().expect("dir");
    let mut store = siyu_store::open(dir.path().join("s.db").to_str().expect("path")).expect("db");
    let tenant = store.tenant("shop").expect("tenant");
    out.push((store, tenant, dir));
    if let Some((store, tenant)) = common::postgres_tenant(name) {
        out.push((store, tenant, tempfile::tempdir().expect("dir")));
    }
    out
}

fn import(store: &mut dyn Store, tenant: &Tenant, dir: &Path, kind: Kind, text: &str) {
    let path = dir.join(format!("{}.csv", kind.name()));
    std::fs::write(&path, text).expect("write");
    import_file(store, tenant, kind, &path, ImportOptions::default()).expect("import");
}

/// Everything the store holds on the tenant's people, as comparable text.
fn state(store: &mut dyn Store, tenant: &Tenant) -> Vec<String> {
    let mut out = Vec::new();
    let mut ids = Vec::new();
    store
        .scan_customers(tenant, &mut |c| ids.push(c.id))
        .expect("customers");
    for c in &ids {
        out.push(format!(
            "customer {:?}",
            store.customer(tenant, c).expect("c")
        ));
        out.push(format!(
            "tags {c} {:?}",
            store.customer_tags(tenant, c).expect("t")
        ));
        out.push(format!(
            "ids {c} {:?}",
            store.identities_of(tenant, c).expect("i")
        ));
    }
    store
        .scan_orders(tenant, &mut |o| out.push(format!("order {o:?}")))
        .expect("orders");
    store
        .scan_events(tenant, &mut |e| out.push(format!("event {e:?}")))
        .expect("events");
    store
        .scan_profiles(tenant, &mut |p| out.push(format!("profile {p:?}")))
        .expect("profiles");
    let mut tx = store.read_pool(tenant).expect("read");
    let mut members = tx.members(MemberFilter::All).expect("members");
    members.sort_by(|a, b| (&a.name, &a.customer_id).cmp(&(&b.name, &b.customer_id)));
    out.extend(
        members
            .into_iter()
            .map(|m| format!("member {} {} {}", m.kind.as_str(), m.name, m.customer_id)),
    );
    out
}

/// A shop where w1 (joined 2024-03-01, no name) and u1 (joined 2024-01-10, named, with a
/// phone) are one person; r1 referred u1, w1 referred f1.
fn shop(store: &mut dyn Store, tenant: &Tenant, dir: &Path) {
    import(
        store,
        tenant,
        dir,
        Kind::Customers,
        "customer_id,name,phone,channel,referrer_id,joined_at,tags\n\
         r1,,,store,,2023-12-01,\n\
         u1,张三,13800000001,douyin,r1,2024-01-10,vip\n\
         w1,,,wecom,,2024-03-01,outdoor;vip\n\
         f1,,,,w1,2024-04-01,\n",
    );
    import(
        store,
        tenant,
        dir,
        Kind::Orders,
        "order_id,customer_id,ordered_at,amount,status\n\
         o1,u1,2024-02-01,100,paid\n\
         o2,w1,2024-03-05,250,paid\n\
         o3,w1,2024-05-05,80,refunded\n\
         o4,f1,2024-04-02,60,paid\n",
    );
    import(
        store,
        tenant,
        dir,
        Kind::Events,
        "event_id,customer_id,type,occurred_at\ne1,w1,view,2024-03-02\ne2,u1,share,2024-02-02\n",
    );
    store
        .add_identities(
            tenant,
            &[
                (id("w1"), identity("wecom", "wm_1")),
                (id("w1"), identity("unionid", "un_1")),
                (id("u1"), identity("phone", "13800000001")),
            ],
        )
        .expect("identities");
    let rule = NewRule::segment("two_orders", "orders >= 2", Purpose::Analysis);
    save_rule(store, tenant, rule, "test", true).expect("rule");
}

fn identity(namespace: &str, value: &str) -> siyu_store::Identity {
    siyu_store::Identity {
        namespace: namespace.to_owned(),
        value: value.to_owned(),
        source: "test".to_owned(),
        at: siyu_core::Timestamp::from_second(1_700_000_000).expect("t"),
    }
}

#[test]
fn a_merge_moves_everything_to_the_earlier_joined_and_an_unmerge_gives_it_all_back() {
    for (mut store, tenant, dir) in stores("merge") {
        let store = store.as_mut();
        shop(store, &tenant, dir.path());
        let before = state(store, &tenant);
        let counts = store.table_counts(&tenant).expect("counts");

        // Named w1 first: u1 joined earlier and survives.
        let m =
            merge::merge(store, &tenant, &id("w1"), &id("u1"), MergeReason::Manual).expect("merge");
        assert_eq!((m.survivor.as_str(), m.merged.as_str()), ("u1", "w1"));
        assert_eq!(
            (m.orders, m.events, m.tags, m.identities, m.referees),
            (2, 1, 2, 2, 1)
        );

        let after = store.table_counts(&tenant).expect("counts");
        assert_eq!(
            after.customers,
            counts.customers - 1,
            "the merged one left the pool"
        );
        assert_eq!((after.orders, after.events), (counts.orders, counts.events));
        assert!(store.customer(&tenant, &id("w1")).is_err());
        let u1 = store.customer(&tenant, &id("u1")).expect("u1");
        assert_eq!(u1.name.as_deref(), Some("张三"));
        assert_eq!(
            u1.referrer_id,
            Some(id("r1")),
            "the survivor keeps its referrer"
        );
        let tags = store.customer_tags(&tenant, &id("u1")).expect("tags");
        assert_eq!(tags, ["outdoor", "vip"]);
        let ids: Vec<String> = store
            .identities_of(&tenant, &id("u1"))
            .expect("ids")
            .into_iter()
            .map(|i| i.namespace)
            .collect();
        assert_eq!(ids, ["phone", "unionid", "wecom"]);
        let f1 = store.customer(&tenant, &id("f1")).expect("f1");
        assert_eq!(f1.referrer_id, Some(id("u1")), "referees name the survivor");
        let mut profile = None;
        store
            .scan_profiles(&tenant, &mut |p| {
                assert_ne!(p.customer_id, id("w1"), "the merged profile is gone");
                if p.customer_id == id("u1") {
                    profile = Some(p);
                }
            })
            .expect("profiles");
        let profile = profile.expect("u1's profile");
        assert_eq!(profile.orders, 2, "paid orders (o3 was refunded)");
        assert_eq!(profile.net_spend.fen(), 35_000);
        assert_eq!(profile.referrals, 1);
        // The survivor now has two paid orders: it entered the segment; w1 left it.
        let mut tx = store.read_pool(&tenant).expect("read");
        let members = tx
            .members(MemberFilter::Rule(RuleKind::Segment, "two_orders"))
            .expect("members");
        let members: Vec<&str> = members.iter().map(|m| m.customer_id.as_str()).collect();
        assert_eq!(members, ["u1"]);
        let history = tx
            .history(MemberFilter::Customer(&id("w1")), 100)
            .expect("history");
        drop(tx);
        assert!(
            history
                .iter()
                .any(|h| h.cause.starts_with("merge w1 into u1 (manual)")),
            "{history:?}"
        );
        let merges = merge::merges_of(store, &tenant, &id("u1")).expect("merges");
        assert_eq!(merges.len(), 1);
        assert_eq!(
            (merges[0].merged.as_str(), merges[0].reason),
            ("w1", "manual")
        );

        let u = merge::unmerge(store, &tenant, &id("w1")).expect("unmerge");
        assert_eq!(u.survivor, "u1");
        assert_eq!(state(store, &tenant), before, "as it was before the merge");
        assert!(matches!(
            merge::unmerge(store, &tenant, &id("w1")),
            Err(MergeError::NotMerged(_))
        ));
    }
}

#[test]
fn a_joined_tie_goes_to_the_smaller_id_and_a_merged_id_is_unknown_to_a_second_merge() {
    for (mut store, tenant, dir) in stores("merge-tie") {
        let store = store.as_mut();
        import(
            store,
            &tenant,
            dir.path(),
            Kind::Customers,
            "customer_id,joined_at\nb2,2024-01-01\na9,2024-01-01\nc3,2024-02-01\n",
        );
        let m =
            merge::merge(store, &tenant, &id("b2"), &id("a9"), MergeReason::Manual).expect("merge");
        assert_eq!(m.survivor, "a9");
        assert!(matches!(
            merge::merge(store, &tenant, &id("b2"), &id("c3"), MergeReason::Manual),
            Err(MergeError::NotFound(_))
        ));
        assert!(matches!(
            merge::merge(store, &tenant, &id("a9"), &id("a9"), MergeReason::Manual),
            Err(MergeError::Same(..))
        ));
    }
}

#[test]
fn never_merge_refuses_a_later_merge_of_the_pair() {
    for (mut store, tenant, dir) in stores("never-merge") {
        let store = store.as_mut();
        import(
            store,
            &tenant,
            dir.path(),
            Kind::Customers,
            "customer_id,joined_at\nx1,2024-01-01\nx2,2024-02-01\n",
        );
        assert!(merge::never_merge(store, &tenant, &id("x2"), &id("x1")).expect("never"));
        assert!(!merge::never_merge(store, &tenant, &id("x1"), &id("x2")).expect("again"));
        assert!(matches!(
            merge::merge(store, &tenant, &id("x1"), &id("x2"), MergeReason::Manual),
            Err(MergeError::Refused(..))
        ));
        assert!(matches!(
            merge::never_merge(store, &tenant, &id("x1"), &id("nobody")),
            Err(MergeError::NotFound(_))
        ));
    }
}

#[test]
fn stacked_merges_are_undone_last_first() {
    for (mut store, tenant, dir) in stores("merge-stack") {
        let store = store.as_mut();
        import(
            store,
            &tenant,
            dir.path(),
            Kind::Customers,
            "customer_id,joined_at\na,2024-01-01\nb,2024-02-01\nc,2024-03-01\n",
        );
        import(
            store,
            &tenant,
            dir.path(),
            Kind::Orders,
            "order_id,customer_id,ordered_at,amount,status\n\
             oa,a,2024-04-01,10,paid\nob,b,2024-04-02,20,paid\noc,c,2024-04-03,30,paid\n",
        );
        let before = state(store, &tenant);
        merge::merge(store, &tenant, &id("a"), &id("b"), MergeReason::Manual).expect("ab");
        merge::merge(store, &tenant, &id("a"), &id("c"), MergeReason::Manual).expect("ac");
        assert!(matches!(
            merge::unmerge(store, &tenant, &id("b")),
            Err(MergeError::OutOfOrder(_))
        ));
        merge::unmerge(store, &tenant, &id("c")).expect("c");
        merge::unmerge(store, &tenant, &id("b")).expect("b");
        assert_eq!(state(store, &tenant), before);
    }
}

/// An unmerge puts back what the merge gave the survivor, but keeps what was written to
/// the survivor since: attributes that arrived naming it stay its own.
#[test]
fn an_unmerge_keeps_the_survivors_attributes_written_since_the_merge() {
    for (mut store, tenant, dir) in stores("merge-since") {
        let store = store.as_mut();
        import(
            store,
            &tenant,
            dir.path(),
            Kind::Customers,
            "customer_id,name,region,joined_at\na1,,,2024-01-01\nb1,李四,上海,2024-02-01\n",
        );
        let m =
            merge::merge(store, &tenant, &id("b1"), &id("a1"), MergeReason::Manual).expect("merge");
        assert_eq!(m.survivor.as_str(), "a1");
        let a1 = store.customer(&tenant, &id("a1")).expect("a1");
        assert_eq!(
            (a1.name.as_deref(), a1.region.as_deref()),
            (Some("李四"), Some("上海")),
            "blanks filled from b1"
        );
        // Since the merge, a1's region is written anew.
        import(
            store,
            &tenant,
            dir.path(),
            Kind::Customers,
            "customer_id,region\na1,杭州\n",
        );
        merge::unmerge(store, &tenant, &id("b1")).expect("unmerge");
        let a1 = store.customer(&tenant, &id("a1")).expect("a1");
        assert_eq!(
            (a1.name.as_deref(), a1.region.as_deref()),
            (None, Some("杭州")),
            "the merge's name goes back, the region written since stays"
        );
        let b1 = store.customer(&tenant, &id("b1")).expect("b1");
        assert_eq!(
            (b1.name.as_deref(), b1.region.as_deref()),
            (Some("李四"), Some("上海"))
        );
    }
}

#[test]
fn what_arrives_naming_a_merged_id_lands_on_the_survivor_and_goes_back_on_unmerge() {
    for (mut store, tenant, dir) in stores("merge-later") {
        let store = store.as_mut();
        shop(store, &tenant, dir.path());
        merge::merge(store, &tenant, &id("u1"), &id("w1"), MergeReason::Manual).expect("merge");
        let counts = store.table_counts(&tenant).expect("counts");
        // A file and a batch naming w1, and a file naming u1.
        import(
            store,
            &tenant,
            dir.path(),
            Kind::Orders,
            "order_id,customer_id,ordered_at,amount,status\n\
             o5,w1,2024-06-01,70,paid\no6,u1,2024-06-02,30,paid\n",
        );
        import(
            store,
            &tenant,
            dir.path(),
            Kind::Customers,
            "customer_id,referrer_id,joined_at\nn1,w1,2024-06-01\n",
        );
        let settings = rule_settings(store, &tenant).expect("settings");
        let items = [
            json!({"type": "track", "message_id": "m1", "customer_id": "w1", "timestamp": "2024-06-03", "event": "view"}),
            json!({"type": "order", "message_id": "m2", "customer_id": "w1", "timestamp": "2024-06-04", "order_id": "o7", "amount": "5"}),
        ];
        let checked = items
            .iter()
            .map(|v| parse_item(v, &tenant.zone).map_err(|e| (message_id_of(v), e)))
            .collect();
        let answers = write_batch(store, &tenant, &settings, checked).expect("batch");
        assert!(
            answers
                .iter()
                .all(|a| format!("{a:?}").starts_with("Accepted")),
            "{answers:?}"
        );
        let after = store.table_counts(&tenant).expect("counts");
        assert_eq!(
            after.customers,
            counts.customers + 1,
            "only n1 is new: w1 is not back"
        );
        assert!(store.customer(&tenant, &id("w1")).is_err());
        let mut owners = Vec::new();
        store
            .scan_orders(&tenant, &mut |o| {
                owners.push(format!("{}:{}", o.id.as_str(), o.customer_id))
            })
            .expect("orders");
        assert_eq!(
            owners,
            [
                "o1:u1", "o2:u1", "o3:u1", "o4:f1", "o5:u1", "o6:u1", "o7:u1"
            ]
        );
        let n1 = store.customer(&tenant, &id("n1")).expect("n1");
        assert_eq!(n1.referrer_id, Some(id("u1")));

        merge::unmerge(store, &tenant, &id("w1")).expect("unmerge");
        let mut owners = Vec::new();
        store
            .scan_orders(&tenant, &mut |o| {
                owners.push(format!("{}:{}", o.id.as_str(), o.customer_id))
            })
            .expect("orders");
        assert_eq!(
            owners,
            [
                "o1:u1", "o2:w1", "o3:w1", "o4:f1", "o5:w1", "o6:u1", "o7:w1"
            ],
            "each order with the id it named"
        );
        let mut events = Vec::new();
        store
            .scan_events(&tenant, &mut |e| {
                events.push(format!("{}:{}", e.id.as_str(), e.customer_id))
            })
            .expect("events");
        assert_eq!(events, ["e1:w1", "e2:u1", "m1:w1"]);
        let n1 = store.customer(&tenant, &id("n1")).expect("n1");
        assert_eq!(n1.referrer_id, Some(id("w1")));
        // Profiles equal a rebuild from the rows as they are now.
        let mut kept = Vec::new();
        store
            .scan_profiles(&tenant, &mut |p| kept.push(p))
            .expect("profiles");
        siyu::service::profiles::rebuild(store, &tenant).expect("rebuild");
        let mut rebuilt = Vec::new();
        store
            .scan_profiles(&tenant, &mut |p| rebuilt.push(p))
            .expect("profiles");
        assert_eq!(kept, rebuilt);
    }
}

#[test]
fn customers_sharing_a_unionid_wecom_id_or_phone_are_merged_as_their_identities_arrive() {
    for (mut store, tenant, dir) in stores("merge-auto") {
        let store = store.as_mut();
        import(
            store,
            &tenant,
            dir.path(),
            Kind::Customers,
            "customer_id,joined_at\nwm1,2024-01-01\noa1,2023-06-01\np1,2024-02-01\n\
             p2,2024-03-01\nq1,2024-01-01\nq2,2024-01-02\nm1,2024-01-01\nm2,2024-01-01\n",
        );
        let rec = |store: &mut dyn Store, c: &str, n: &str, v: &str| {
            merge::record_identities(store, &tenant, vec![(id(c), identity(n, v))]).expect("record")
        };
        rec(store, "wm1", "unionid", "un_9");
        let r = rec(store, "oa1", "unionid", "un_9");
        assert_eq!(r.merged.len(), 1, "{r:?}");
        assert_eq!(
            (r.merged[0].survivor.as_str(), r.merged[0].reason),
            ("oa1", "unionid")
        );
        assert!(store.customer(&tenant, &id("wm1")).is_err());
        // A merged id's identities go to its survivor.
        rec(store, "wm1", "wecom", "wm_9");
        let held = store
            .identity_holder(&tenant, "wecom", "wm_9")
            .expect("holder");
        assert_eq!(held, Some(id("oa1")));

        // Phones: merged while on, not once the tenant switched it off.
        rec(store, "p1", "phone", "13900000001");
        assert_eq!(rec(store, "p2", "phone", "13900000001").merged.len(), 1);
        store
            .set_setting(&tenant, "identity.merge_phone", "off")
            .expect("setting");
        rec(store, "q1", "phone", "13900000002");
        assert!(rec(store, "q2", "phone", "13900000002").merged.is_empty());
        assert!(store.customer(&tenant, &id("q2")).is_ok());

        // Never-merge: refused and counted.
        merge::never_merge(store, &tenant, &id("m1"), &id("m2")).expect("never");
        rec(store, "m1", "wecom", "wm_m");
        let r = rec(store, "m2", "wecom", "wm_m");
        assert_eq!((r.merged.len(), r.refused), (0, 1));

        // Never an identity: masked, placeholder, empty.
        for value in ["139****0001", "##密文", "", "-"] {
            let r = rec(store, "m1", "phone", value);
            assert_eq!(r.added, 0, "{value:?}");
        }
        let phones = store
            .identities_of(&tenant, &id("m1"))
            .expect("ids")
            .into_iter()
            .filter(|i| i.namespace == "phone")
            .count();
        assert_eq!(phones, 0);
    }
}

mod persons {
    //! Reports count persons: a shop where some persons appear under two or three ids
    //! sharing a unionid, once their identities have merged them, has the pool, buyers,
    //! RFM classes, cohorts, CLV and profiles of the same shop with each person under one
    //! id from the start (the survivor's, joined at the earliest); and undoing the merges
    //! gives back the shop as it was.

    use std::fmt::Write as _;

    use proptest::prelude::*;

    use siyu::service::merge;
    use siyu::service::overview::overview;
    use siyu::service::reports::{cohort_report, formula_clv_report};
    use siyu::service::rfm;
    use siyu_core::CustomerId;
    use siyu_core::import::Kind;
    use siyu_core::segment::rfm::RfmWindow;
    use siyu_store::{Store, Tenant};

    use super::{identity, import, state};

    /// An id of a person: days after 2024-01-01 it joined, and its orders (days after
    /// 2024-01-01, yuan, refunded).
    type Alias = (u16, Vec<(u16, u16, bool)>);

    fn person() -> impl Strategy<Value = Vec<Alias>> {
        let alias = (
            prop_oneof![Just(0u16), Just(30), 0u16..400],
            prop::collection::vec((0u16..500, 1u16..900, prop::bool::weighted(0.15)), 0..3),
        );
        prop::collection::vec(alias, 1..4)
    }

    fn day(offset: u16) -> String {
        let d = jiff::civil::date(2024, 1, 1)
            .checked_add(jiff::Span::new().days(i64::from(offset)))
            .expect("date");
        format!("{d}T10:00:00Z")
    }

    fn alias_id(p: usize, j: usize) -> String {
        format!("p{p}i{j}")
    }

    /// Writes the shop: every alias its own customer (`one_id` false), or each person
    /// under their survivor's id joined at their earliest.
    fn write_shop(
        store: &mut dyn Store,
        tenant: &Tenant,
        dir: &std::path::Path,
        persons: &[Vec<Alias>],
        one_id: bool,
    ) {
        write_part(store, tenant, dir, persons, one_id, true, &|_| true);
    }

    /// [`write_shop`]'s customers (when `customers`) and the orders whose index among their
    /// alias's `orders` passes `orders`.
    fn write_part(
        store: &mut dyn Store,
        tenant: &Tenant,
        dir: &std::path::Path,
        persons: &[Vec<Alias>],
        one_id: bool,
        with_customers: bool,
        orders_kept: &dyn Fn(usize) -> bool,
    ) {
        let mut customers = String::from("customer_id,joined_at\n");
        let mut orders = String::from("order_id,customer_id,ordered_at,amount,status\n");
        for (p, aliases) in persons.iter().enumerate() {
            let survivor = (0..aliases.len())
                .min_by_key(|&j| (aliases[j].0, alias_id(p, j)))
                .expect("an alias");
            for (j, (joined, bought)) in aliases.iter().enumerate() {
                let owner = if one_id { survivor } else { j };
                if !one_id || j == survivor {
                    let _ = writeln!(customers, "{},{}", alias_id(p, j), day(*joined));
                }
                for (n, (at, yuan, refunded)) in bought.iter().enumerate() {
                    if !orders_kept(n) {
                        continue;
                    }
                    let status = if *refunded { "refunded" } else { "paid" };
                    let _ = writeln!(
                        orders,
                        "o{p}_{j}_{n},{},{},{yuan},{status}",
                        alias_id(p, owner),
                        day(*at)
                    );
                }
            }
        }
        if with_customers {
            import(store, tenant, dir, Kind::Customers, &customers);
        }
        import(store, tenant, dir, Kind::Orders, &orders);
    }

    fn figures(store: &mut dyn Store, tenant: &Tenant) -> Vec<String> {
        let as_of = jiff::civil::date(2025, 6, 30);
        let mut profiles = Vec::new();
        store
            .scan_profiles(tenant, &mut |p| profiles.push(format!("{p:?}")))
            .expect("profiles");
        vec![
            format!("{:?}", overview(store, tenant).expect("overview")),
            format!(
                "{:?}",
                cohort_report(store, tenant, as_of, 24).expect("cohorts")
            ),
            format!(
                "{:?}",
                formula_clv_report(store, tenant, as_of, None).expect("clv")
            ),
            format!(
                "{:?}",
                rfm::from_store(store, tenant, RfmWindow::new(as_of, None)).expect("rfm")
            ),
            profiles.join("\n"),
        ]
    }

    fn check(store: &mut dyn Store, a: &Tenant, b: &Tenant, persons: &[Vec<Alias>]) {
        let dir = tempfile::tempdir().expect("dir");
        write_shop(store, a, dir.path(), persons, false);
        write_shop(store, b, dir.path(), persons, true);
        let ids: Vec<(CustomerId, siyu_store::Identity)> = persons
            .iter()
            .enumerate()
            .flat_map(|(p, aliases)| {
                (0..aliases.len()).map(move |j| {
                    let id = CustomerId::parse(&alias_id(p, j)).expect("id");
                    (id, identity("unionid", &format!("un{p}")))
                })
            })
            .collect();
        // Recorded first with no merge (the first of each person holds the unionid).
        store.add_identities(a, &ids).expect("identities");
        let before = state(store, a);
        let recorded = merge::record_identities(store, a, ids).expect("merges");
        let merges: usize = persons.iter().map(|p| p.len() - 1).sum();
        assert_eq!(recorded.merged.len(), merges);
        let (fa, fb) = (figures(store, a), figures(store, b));
        assert_eq!(fa, fb, "the merged shop counts persons");
        for m in recorded.merged.iter().rev() {
            let merged = CustomerId::parse(&m.merged).expect("id");
            merge::unmerge(store, a, &merged).expect("unmerge");
        }
        assert_eq!(state(store, a), before, "unmerged, the shop is as it was");
    }

    /// Imports, merges and unmerges interleaved: half of the orders come before the merges
    /// and half after (naming the merged ids), and the figures are those of the one-id
    /// shop; undoing every merge then leaves the shop of the same imports with no merge,
    /// every order on the id it named.
    fn check_interleaved(
        store: &mut dyn Store,
        a: &Tenant,
        b: &Tenant,
        c: &Tenant,
        persons: &[Vec<Alias>],
    ) {
        let dir = tempfile::tempdir().expect("dir");
        let even = |n: usize| n.is_multiple_of(2);
        let odd = |n: usize| !n.is_multiple_of(2);
        write_part(store, a, dir.path(), persons, false, true, &even);
        write_shop(store, b, dir.path(), persons, true);
        write_shop(store, c, dir.path(), persons, false);
        let ids: Vec<(CustomerId, siyu_store::Identity)> = persons
            .iter()
            .enumerate()
            .flat_map(|(p, aliases)| {
                (0..aliases.len()).map(move |j| {
                    let id = CustomerId::parse(&alias_id(p, j)).expect("id");
                    (id, identity("unionid", &format!("un{p}")))
                })
            })
            .collect();
        store.add_identities(a, &ids).expect("identities");
        store.add_identities(c, &ids).expect("identities");
        let recorded = merge::record_identities(store, a, ids).expect("merges");
        write_part(store, a, dir.path(), persons, false, false, &odd);
        assert_eq!(
            figures(store, a),
            figures(store, b),
            "orders after the merges land on the survivors"
        );
        for m in recorded.merged.iter().rev() {
            let merged = CustomerId::parse(&m.merged).expect("id");
            merge::unmerge(store, a, &merged).expect("unmerge");
        }
        // The level tags are judged against the day's thresholds, which each tenant fixed
        // at its own first evaluation: both are brought to today's before comparing.
        for t in [a, c] {
            siyu::service::segments::evaluate_now(store, t, "refresh").expect("refresh");
        }
        assert_eq!(
            state(store, a),
            state(store, c),
            "unmerged, each order is on the id it named"
        );
    }

    fn on_each_backend(persons: &[Vec<Alias>]) {
        let dir = tempfile::tempdir().expect("dir");
        let mut store =
            siyu_store::open(dir.path().join("p.db").to_str().expect("path")).expect("db");
        let (a, b) = (store.tenant("a").expect("a"), store.tenant("b").expect("b"));
        check(store.as_mut(), &a, &b, persons);
        if let Some((mut store, a)) = crate::common::postgres_tenant("merge-props") {
            let b = store.tenant(&format!("{}-b", a.name)).expect("b");
            check(store.as_mut(), &a, &b, persons);
        }
    }

    fn interleaved_on_each_backend(persons: &[Vec<Alias>]) {
        let dir = tempfile::tempdir().expect("dir");
        let mut store =
            siyu_store::open(dir.path().join("p.db").to_str().expect("path")).expect("db");
        let (a, b, c) = (
            store.tenant("a").expect("a"),
            store.tenant("b").expect("b"),
            store.tenant("c").expect("c"),
        );
        check_interleaved(store.as_mut(), &a, &b, &c, persons);
        if let Some((mut store, a)) = crate::common::postgres_tenant("merge-interleaved") {
            let b = store.tenant(&format!("{}-b", a.name)).expect("b");
            let c = store.tenant(&format!("{}-c", a.name)).expect("c");
            check_interleaved(store.as_mut(), &a, &b, &c, persons);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn a_merged_shop_counts_persons_and_unmerging_gives_it_back(
            persons in prop::collection::vec(person(), 1..6)
        ) {
            on_each_backend(&persons);
        }

        #[test]
        fn imports_merges_and_unmerges_interleaved_keep_persons_and_named_ids(
            persons in prop::collection::vec(person(), 1..6)
        ) {
            interleaved_on_each_backend(&persons);
        }
    }
}

#[test]
fn merges_are_made_undone_and_refused_through_the_api_with_stable_codes() {
    use axum::http::StatusCode;
    use common::api::{Api, runtime};
    use siyu_core::access::Role;

    for api in Api::on_each_backend("merge") {
        let rt = runtime();
        let ingest = api.token("shop", Role::Ingest);
        let operator = api.token("shop", Role::Operator);
        let viewer = api.token("shop", Role::Viewer);
        let order = |m: &str, c: &str, o: &str, at: &str| {
            json!({"type": "order", "message_id": m, "customer_id": c, "order_id": o,
                   "timestamp": at, "amount": "10"})
        };
        let (status, _) = rt.block_on(api.batch(
            &ingest,
            json!({"batch": [order("m1", "c1", "o1", "2025-05-02"), order("m2", "c2", "o2", "2025-05-01"),
                             order("m3", "c3", "o3", "2025-05-03")]}),
        ));
        assert_eq!(status, StatusCode::OK);
        let call = |token: &str, uri: &str, body: Option<Value>| {
            let method = if uri.ends_with("/ids") { "GET" } else { "POST" };
            let (status, text) =
                rt.block_on(api.call(method, uri, Some(token), body.map(|b| b.to_string())));
            (status.as_u16(), text)
        };
        let code = |(status, text): (u16, String)| {
            let v: Value = serde_json::from_str(&text).expect("json");
            (status, v["code"].as_str().unwrap_or("").to_owned())
        };

        let with = |id: &str| Some(json!({"with": id}));
        assert_eq!(call(&viewer, "/v1/customers/c1/merge", with("c2")).0, 403);
        assert_eq!(
            code(call(&operator, "/v1/customers/c1/merge", with("nobody"))),
            (404, "customer_not_found".to_owned())
        );
        assert_eq!(
            code(call(
                &operator,
                "/v1/customers/c1/merge",
                Some(json!({"wiht": "c2"}))
            )),
            (400, "invalid_merge".to_owned())
        );
        assert_eq!(
            code(call(&operator, "/v1/customers/c1/merge", with("c1"))),
            (400, "invalid_merge".to_owned())
        );
        let (status, text) = call(&operator, "/v1/customers/c1/merge", with("c2"));
        assert_eq!(status, 200, "{text}");
        let merged: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            (merged["survivor"].as_str(), merged["orders"].as_u64()),
            (Some("c2"), Some(1))
        );

        let (status, text) = call(&viewer, "/v1/customers/c2/ids", None);
        assert_eq!(status, 200, "{text}");
        let ids: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(ids["merged_from"][0]["merged"], "c1");
        assert_eq!(ids["merged_from"][0]["reason"], "manual");
        let (status, text) = call(&viewer, "/v1/customers/c1/ids", None);
        assert_eq!(status, 404);
        assert!(text.contains("merged into c2"), "{text}");

        assert_eq!(call(&operator, "/v1/customers/c1/unmerge", None).0, 200);
        assert_eq!(
            code(call(&operator, "/v1/customers/c1/unmerge", None)),
            (409, "not_merged".to_owned())
        );
        assert_eq!(
            call(&operator, "/v1/customers/c3/never-merge", with("c2")).0,
            200
        );
        assert_eq!(
            code(call(&operator, "/v1/customers/c2/merge", with("c3"))),
            (409, "merge_refused".to_owned())
        );
        // Stacked merges undo last first.
        assert_eq!(call(&operator, "/v1/customers/c1/merge", with("c2")).0, 200);
        assert_eq!(call(&operator, "/v1/customers/c2/merge", with("c3")).0, 409);
    }
}

#[test]
fn a_batch_identify_with_ids_merges_the_holders_and_an_alias_merges_into_its_customer() {
    for (mut store, tenant, dir) in stores("merge-batch") {
        let store = store.as_mut();
        import(
            store,
            &tenant,
            dir.path(),
            Kind::Customers,
            "customer_id,joined_at\nk1,2024-01-01\nk2,2024-02-01\nanon,2023-01-01\n",
        );
        let settings = rule_settings(store, &tenant).expect("settings");
        let send = |store: &mut dyn Store, items: Vec<Value>| {
            let checked = items
                .iter()
                .map(|v| parse_item(v, &tenant.zone).map_err(|e| (message_id_of(v), e)))
                .collect();
            write_batch(store, &tenant, &settings, checked)
                .expect("batch")
                .into_iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<String>>()
        };
        let answers = send(
            store,
            vec![
                json!({"type": "identify", "message_id": "i1", "customer_id": "k1",
                       "ids": {"unionid": "un_k", "phone": "+86 138-0000-0009"}}),
                json!({"type": "identify", "message_id": "i2", "customer_id": "k2",
                       "ids": {"unionid": "un_k"}}),
                json!({"type": "identify", "message_id": "i3", "customer_id": "k2",
                       "ids": {"phone": "138****0009"}}),
                json!({"type": "identify", "message_id": "i4", "customer_id": "k2",
                       "ids": {"qq": "12345"}}),
                json!({"type": "identify", "message_id": "i5", "customer_id": "k2",
                       "ids": {"wecom": "x".repeat(129)}}),
            ],
        );
        assert!(answers[0].starts_with("Accepted") && answers[1].starts_with("Accepted"));
        assert!(
            answers[2].contains("ids.phone: a masked value"),
            "{answers:?}"
        );
        assert!(
            answers[3].contains("ids.qq: not a namespace"),
            "{answers:?}"
        );
        assert!(
            answers[4].contains("ids.wecom: 1 to 128 characters"),
            "{answers:?}"
        );
        assert!(
            store.customer(&tenant, &id("k2")).is_err(),
            "k2 was merged into k1"
        );
        let held = store
            .identity_holder(&tenant, "phone", "13800000009")
            .expect("phone");
        assert_eq!(held, Some(id("k1")), "the phone normalised");
        let merges = merge::merges_of(store, &tenant, &id("k1")).expect("merges");
        assert_eq!((merges.len(), merges[0].reason), (1, "unionid"));

        // anon joined first, but an alias's customer survives (with the earlier join).
        let answers = send(
            store,
            vec![
                json!({"type": "alias", "message_id": "a1", "previous_id": "anon", "customer_id": "k1"}),
                json!({"type": "alias", "message_id": "a2", "previous_id": "x", "customer_id": "x"}),
            ],
        );
        assert!(answers[0].starts_with("Accepted"), "{answers:?}");
        assert!(answers[1].contains("previous_id"), "{answers:?}");
        assert!(store.customer(&tenant, &id("anon")).is_err());
        let k1 = store.customer(&tenant, &id("k1")).expect("k1");
        assert_eq!(
            k1.joined_at.to_string(),
            "2022-12-31T16:00:00Z",
            "anon's join"
        );
        let merges = merge::merges_of(store, &tenant, &id("anon")).expect("merges");
        assert_eq!(merges[0].reason, "alias");
        // An alias of an unknown previous id merges nothing and creates nobody.
        send(
            store,
            vec![
                json!({"type": "alias", "message_id": "a3", "previous_id": "ghost", "customer_id": "k1"}),
            ],
        );
        assert!(store.customer(&tenant, &id("ghost")).is_err());
        // An identify naming the id the customer was known by before (a visitor's, as
        // Segment's anonymousId) merges it into them, as an alias does.
        let answers = send(
            store,
            vec![
                json!({"type": "track", "message_id": "t1", "customer_id": "visitor-9", "event": "page_view", "timestamp": "2026-05-01T10:00:00Z"}),
                json!({"type": "identify", "message_id": "i6", "customer_id": "k1", "previous_id": "visitor-9"}),
            ],
        );
        assert!(
            answers.iter().all(|a| a.starts_with("Accepted")),
            "{answers:?}"
        );
        assert!(
            store.customer(&tenant, &id("visitor-9")).is_err(),
            "merged into k1"
        );
        let mut seen_by = Vec::new();
        store
            .scan_events(&tenant, &mut |e| {
                if e.id.as_str() == "t1" {
                    seen_by.push(e.customer_id.to_string());
                }
            })
            .expect("events");
        assert_eq!(seen_by, ["k1"], "the visitor's event is k1's now");
    }
}

#[test]
fn an_erased_persons_merged_ids_and_identities_are_suppressed_and_their_merges_forgotten() {
    for (mut store, tenant, dir) in stores("merge-erase") {
        let store = store.as_mut();
        shop(store, &tenant, dir.path());
        merge::merge(store, &tenant, &id("u1"), &id("w1"), MergeReason::Manual).expect("merge");
        siyu::service::privacy::erase(store, &tenant, &id("u1"), "test").expect("erase");
        assert!(
            merge::merges_of(store, &tenant, &id("u1"))
                .expect("m")
                .is_empty()
        );
        assert!(
            merge::merges_of(store, &tenant, &id("w1"))
                .expect("m")
                .is_empty()
        );
        // The merged id is refused like the erased one.
        let before = store.table_counts(&tenant).expect("counts");
        import(
            store,
            &tenant,
            dir.path(),
            Kind::Orders,
            "order_id,customer_id,ordered_at,amount,status\no9,w1,2024-07-01,10,paid\n",
        );
        assert_eq!(store.table_counts(&tenant).expect("counts"), before);
        // Their unionid is never recorded again, so joins nobody.
        let r = merge::record_identities(
            store,
            &tenant,
            vec![(id("f1"), identity("unionid", "un_1"))],
        )
        .expect("record");
        assert_eq!((r.added, r.merged.len()), (0, 0));
        let r = merge::record_identities(
            store,
            &tenant,
            vec![(id("f1"), identity("unionid", "un_other"))],
        )
        .expect("record");
        assert_eq!(r.added, 1, "other identities are recorded as before");
    }
}

#[test]
fn the_command_line_merges_lists_undoes_and_refuses() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("cli.db");
    let run = |args: &[&str]| {
        let out = common::siyu(&db, args);
        (
            out.status.success(),
            common::text(&out.stdout),
            common::text(&out.stderr),
        )
    };
    let file = dir.path().join("customers.csv");
    std::fs::write(
        &file,
        "customer_id,joined_at\nc1,2024-01-01\nc2,2024-02-01\nc3,2024-03-01\n",
    )
    .expect("write");
    let path = file.to_str().expect("path");
    assert!(run(&["import", "customers", path]).0);
    let (ok, out, err) = run(&["customer", "merge", "c2", "c1"]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("merged c2 into c1: moved 0 orders"),
        "{out}"
    );
    let (ok, out, _) = run(&["customer", "ids", "c1"]);
    assert!(
        ok && out.contains("merged from c2 at ") && out.contains("(manual)"),
        "{out}"
    );
    let (ok, _, err) = run(&["customer", "ids", "c2"]);
    assert!(!ok && err.contains("was merged into c1"), "{err}");
    let (ok, out, err) = run(&["customer", "unmerge", "c2"]);
    assert!(ok && out.starts_with("unmerged c2 from c1"), "{out}{err}");
    let (ok, _, err) = run(&["customer", "unmerge", "c2"]);
    assert!(!ok && err.contains("is not merged into anyone"), "{err}");
    assert!(run(&["customer", "never-merge", "c3", "c1"]).0);
    let (ok, _, err) = run(&["customer", "merge", "c1", "c3"]);
    assert!(!ok && err.contains("recorded as two persons"), "{err}");
    assert!(run(&["config", "set", "identity.merge_phone", "off"]).0);
    let (ok, _, err) = run(&["config", "set", "identity.merge_phone", "maybe"]);
    assert!(!ok && err.contains("neither on nor off"), "{err}");
}
