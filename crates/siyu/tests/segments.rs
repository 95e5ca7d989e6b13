//! Segments and tags stay current at ingest: after every import of any sequence, the kept
//! members of each segment and rule tag are exactly the customers that the rule selects
//! when worked out by hand from the raw data, and replaying the recorded entries and exits
//! gives the kept members. SQLite always; PostgreSQL too when `SIYU_TEST_POSTGRES` is set.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use proptest::prelude::*;

use siyu::service::evaluate::{CountPool, count_rule};
use siyu::service::import::{ImportOptions, import_file};
use siyu::service::profiles::raw_facts;
use siyu::service::segments::{NewRule, add_tag, save_rule};
use siyu_core::import::Kind;
use siyu_core::profile::build_profiles;
use siyu_core::segment::rules::{Change, Purpose, RuleKind};
use siyu_core::{CustomerId, Money};
use siyu_store::{MemberFilter, Store, Tenant};

use common::{siyu, text};

/// Segments and tag rules the tests keep, and the same rules by hand over a profile and
/// the customer's manual tags.
const TAG_RULE: (&str, &str) = ("big", "net_spend >= 200");
const SEGMENTS: [(&str, &str); 3] = [
    ("regulars", "orders >= 2 and not has_left"),
    (
        "big_likers",
        r#"has_tag("big") and count("post_like") >= 1"#,
    ),
    ("outdoor_or_big", r#"has_tag("outdoor") or has_tag("big")"#),
];

fn by_hand(
    name: &str,
    p: &siyu_core::profile::Profile,
    manual: &BTreeSet<(String, String)>,
) -> bool {
    let big = p.net_spend >= Money::from_fen(20_000);
    let tagged = |t: &str| manual.contains(&(p.customer_id.to_string(), t.to_owned()));
    match name {
        "big" => big,
        "regulars" => p.orders >= 2 && !p.has_left(),
        "big_likers" => big && p.count("post_like") >= 1,
        "outdoor_or_big" => tagged("outdoor") || big,
        _ => unreachable!("{name}"),
    }
}

#[derive(Debug, Clone)]
enum Ingest {
    Orders(Vec<(u8, u8, u32, bool)>),
    Events(Vec<(u8, u8, u8)>),
    Tag(u8),
}

fn ingest() -> impl Strategy<Value = Ingest> {
    prop_oneof![
        prop::collection::vec(
            (
                0u8..12,
                0u8..8,
                1_000u32..25_000,
                prop::bool::weighted(0.25)
            ),
            1..8
        )
        .prop_map(Ingest::Orders),
        prop::collection::vec((0u8..16, 0u8..8, 0u8..3), 1..6).prop_map(Ingest::Events),
        (0u8..8).prop_map(Ingest::Tag),
    ]
}

fn apply(store: &mut dyn Store, tenant: &Tenant, ingest: &Ingest, dir: &std::path::Path, i: usize) {
    let mut text = String::new();
    let kind = match ingest {
        Ingest::Orders(rows) => {
            text.push_str("order_id,customer_id,ordered_at,amount,status\n");
            for (order, customer, fen, refunded) in rows {
                let _ = writeln!(
                    text,
                    "o{order},c{customer},2024-03-{:02} 10:00:00,{}.{:02},{}",
                    1 + order % 28,
                    fen / 100,
                    fen % 100,
                    if *refunded { "refunded" } else { "paid" }
                );
            }
            Kind::Orders
        }
        Ingest::Events(rows) => {
            text.push_str("event_id,customer_id,type,occurred_at\n");
            let kinds = ["post_like", "view", "left"];
            for (event, customer, kind) in rows {
                let _ = writeln!(
                    text,
                    "e{event},c{customer},{},2024-03-{:02} 12:00:00",
                    kinds[usize::from(*kind)],
                    1 + event % 28
                );
            }
            Kind::Events
        }
        Ingest::Tag(customer) => {
            let id = CustomerId::parse(&format!("c{customer}")).expect("id");
            // Tagging a customer the pool lacks is refused; that is fine here.
            let _ = add_tag(store, tenant, &id, "outdoor", "test", None);
            return;
        }
    };
    let path = dir.join(format!("{i}.csv"));
    std::fs::write(&path, text).expect("write");
    import_file(store, tenant, kind, &path, ImportOptions::default()).expect("import");
}

fn check(store: &mut dyn Store, tenant: &Tenant, ingests: &[Ingest]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    save_rule(
        store,
        tenant,
        NewRule::tag(TAG_RULE.0, TAG_RULE.1, None),
        "test",
        true,
    )
    .expect("tag rule");
    for (name, rule) in SEGMENTS {
        save_rule(
            store,
            tenant,
            NewRule::segment(name, rule, Purpose::default()),
            "test",
            false,
        )
        .expect("segment");
    }
    for (i, ingest) in ingests.iter().enumerate() {
        apply(store, tenant, ingest, dir.path(), i);

        let facts = raw_facts(store, tenant).expect("facts");
        let profiles = build_profiles(
            facts.customers,
            facts.orders,
            facts.events,
            &tenant.zone,
            None,
        );
        let mut tx = store.begin_pool(tenant).expect("tx");
        let manual: BTreeSet<(String, String)> = tx
            .manual_tags(None)
            .expect("tags")
            .into_iter()
            .map(|t| (t.customer_id.to_string(), t.tag))
            .collect();
        let mut history = tx.history(MemberFilter::All, usize::MAX).expect("history");
        history.reverse();
        for (kind, name) in std::iter::once((RuleKind::Tag, TAG_RULE.0))
            .chain(SEGMENTS.iter().map(|(n, _)| (RuleKind::Segment, *n)))
        {
            let kept: BTreeSet<String> = tx
                .members(MemberFilter::Rule(kind, name))
                .expect("members")
                .into_iter()
                .map(|m| m.customer_id.to_string())
                .collect();
            let expected: BTreeSet<String> = profiles
                .iter()
                .filter(|p| by_hand(name, p, &manual))
                .map(|p| p.customer_id.to_string())
                .collect();
            prop_assert_eq!(&kept, &expected, "{} '{}' after ingest {}", kind, name, i);
            let mut replayed = BTreeSet::new();
            for h in history.iter().filter(|h| h.kind == kind && h.name == name) {
                let id = h.customer_id.to_string();
                match h.change {
                    Change::Entered => prop_assert!(replayed.insert(id), "entered twice"),
                    Change::Exited => prop_assert!(replayed.remove(&id), "exited unseen"),
                }
            }
            prop_assert_eq!(&replayed, &kept, "history of {} '{}' replays", kind, name);
        }
        drop(tx);
        // The console's live count, from one read of the pool, counts what an evaluation
        // keeps: each saved rule as a segment, and the opted-in part for marketing.
        let pool = CountPool::read(store, tenant).expect("count pool");
        for (kind, name, rule) in std::iter::once((RuleKind::Tag, TAG_RULE.0, TAG_RULE.1))
            .chain(SEGMENTS.iter().map(|(n, r)| (RuleKind::Segment, *n, *r)))
        {
            let kept = store
                .begin_pool(tenant)
                .expect("tx")
                .members(MemberFilter::Rule(kind, name))
                .expect("members")
                .len() as u64;
            let rule = siyu_core::rule::Rule::parse(rule).expect("rule");
            let counted = pool.count(&rule, Purpose::Analysis).expect("count");
            prop_assert_eq!(counted, kept, "the count of '{}' after ingest {}", name, i);
            let alone = count_rule(store, tenant, rule.clone(), Purpose::Analysis).expect("count");
            prop_assert_eq!(alone, kept, "'{}' counted alone", name);
            let opted_in = pool.count(&rule, Purpose::Marketing).expect("count");
            prop_assert_eq!(opted_in, kept, "nobody opted out");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn kept_members_are_the_rules_by_hand_and_the_history_replays_on_sqlite(
        ingests in prop::collection::vec(ingest(), 1..6)
    ) {
        let mut store = siyu_store::open(":memory:").expect("sqlite");
        let tenant = store.tenant("shop").expect("tenant");
        check(store.as_mut(), &tenant, &ingests)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn kept_members_are_the_rules_by_hand_and_the_history_replays_on_postgres(
        ingests in prop::collection::vec(ingest(), 1..6)
    ) {
        let Some((mut store, tenant)) = common::postgres_tenant("segments") else { return Ok(()) };
        check(store.as_mut(), &tenant, &ingests)?;
    }
}

// ---- the command line ------------------------------------------------------------------

fn ok(db: &std::path::Path, args: &[&str]) -> String {
    let out = siyu(db, args);
    assert!(
        out.status.success(),
        "siyu {args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn refused(db: &std::path::Path, args: &[&str]) -> String {
    let out = siyu(db, args);
    assert!(!out.status.success(), "siyu {args:?} should fail");
    text(&out.stderr)
}

#[test]
fn an_operator_segments_tags_and_follows_who_enters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("shop.db");
    let customers = dir.path().join("customers.csv");
    std::fs::write(
        &customers,
        "customer_id,channel,joined_at,tags\nc1,douyin,2024-01-01,outdoor\nc2,store,2024-01-02,\nc3,store,2024-01-03,\n",
    )
    .expect("write");
    ok(
        &db,
        &["import", "customers", customers.to_str().expect("path")],
    );

    // A rule with a mistake is refused with the column and a caret under it.
    let err = refused(
        &db,
        &[
            "segment",
            "create",
            "x",
            "orders >= 2 and chanel = \"store\"",
        ],
    );
    assert!(err.contains("column 17: unknown field 'chanel'"), "{err}");
    assert!(err.contains("did you mean 'channel'"), "{err}");
    assert!(err.contains("\n                  ^"), "{err}");

    let out = ok(
        &db,
        &[
            "segment",
            "create",
            "store_buyers",
            "orders >= 1 and channel = \"store\"",
        ],
    );
    assert!(out.contains("0 members now"), "{out}");
    let err = refused(&db, &["segment", "create", "store_buyers", "orders >= 2"]);
    assert!(err.contains("already"), "{err}");
    ok(
        &db,
        &[
            "tag",
            "rule",
            "spender",
            "net_spend >= 100",
            "--family",
            "consumption",
        ],
    );
    ok(
        &db,
        &[
            "segment",
            "create",
            "outdoor_spenders",
            r#"has_tag("outdoor") and has_tag("spender")"#,
        ],
    );
    // A tag rule that would close a circle is refused.
    ok(
        &db,
        &["tag", "rule", "a", r#"has_tag("spender") and orders > 3"#],
    );
    let err = refused(&db, &["tag", "rule", "spender", r#"has_tag("a")"#]);
    assert!(err.contains("circle"), "{err}");

    let orders = dir.path().join("orders.csv");
    std::fs::write(
        &orders,
        "order_id,customer_id,ordered_at,amount\n1,c1,2024-02-01 10:00:00,150\n2,c2,2024-02-01 11:00:00,20\n3,c4,2024-02-02 09:00:00,30\n",
    )
    .expect("write");
    let out = ok(&db, &["import", "orders", orders.to_str().expect("path")]);
    assert!(out.contains("segments and tags:"), "{out}");

    let members = ok(
        &db,
        &["segment", "members", "store_buyers", "--format", "csv"],
    );
    let ids: Vec<&str> = members
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or(""))
        .collect();
    assert_eq!(ids, vec!["c2"], "{members}");
    assert!(
        members.starts_with("customer_id,since,stage,rfm,"),
        "{members}"
    );
    let members = ok(
        &db,
        &["segment", "members", "outdoor_spenders", "--format", "json"],
    );
    let members: serde_json::Value = serde_json::from_str(&members).expect("json");
    assert_eq!(members[0]["customer_id"], "c1");

    // The import is the recorded cause; queryable by segment and by customer.
    let history = ok(
        &db,
        &["segment", "history", "store_buyers", "--format", "csv"],
    );
    assert!(
        history.contains("c2,entered,segment,store_buyers,import orders orders.csv"),
        "{history}"
    );
    let history = ok(
        &db,
        &["segment", "history", "--customer", "c1", "--format", "csv"],
    );
    assert!(
        history.contains("c1,entered,tag,spender,import orders orders.csv"),
        "{history}"
    );
    assert!(
        history.contains("c1,entered,segment,outdoor_spenders,import orders orders.csv"),
        "{history}"
    );

    // Manual tags move customers too, and every tag says where it came from.
    ok(&db, &["tag", "add", "c2", "outdoor", "--by", "li"]);
    ok(&db, &["tag", "rule", "spender", "net_spend >= 10"]);
    let tags = ok(&db, &["tag", "list", "--customer", "c2", "--format", "csv"]);
    assert!(tags.contains("outdoor,static,manual:li,"), "{tags}");
    assert!(tags.contains("spender,consumption,rule:spender,"), "{tags}");
    assert!(
        tags.contains("stage:first_purchase,level,level,")
            || tags.contains("stage:lost,level,level,"),
        "{tags}"
    );
    assert!(tags.contains("rfm:"), "{tags}");
    let history = ok(
        &db,
        &["segment", "history", "outdoor_spenders", "--format", "csv"],
    );
    assert!(
        history.contains("c2,entered,segment,outdoor_spenders,tag changed by"),
        "{history}"
    );
    let err = refused(&db, &["tag", "remove", "c2", "spender"]);
    assert!(err.contains("comes from a rule"), "{err}");
    ok(&db, &["tag", "remove", "c2", "outdoor"]);
    let history = ok(
        &db,
        &[
            "segment",
            "history",
            "outdoor_spenders",
            "--limit",
            "1",
            "--format",
            "csv",
        ],
    );
    assert!(
        history.contains("c2,exited,segment,outdoor_spenders,tag remove by"),
        "{history}"
    );
    let err = refused(&db, &["tag", "add", "nobody", "x"]);
    assert!(err.contains("no customer 'nobody'"), "{err}");

    let list = ok(&db, &["segment", "list", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_str(&list).expect("json");
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    ok(&db, &["segment", "delete", "store_buyers"]);
    let err = refused(&db, &["segment", "members", "store_buyers"]);
    assert!(err.contains("no segment 'store_buyers'"), "{err}");
    let summary = ok(&db, &["tag", "list", "--format", "json"]);
    let summary: Vec<BTreeMap<String, serde_json::Value>> =
        serde_json::from_str(&summary).expect("json");
    assert!(
        summary
            .iter()
            .any(|t| t["tag"] == "spender" && t["source"] == "rule")
    );
}

#[test]
fn the_demo_shop_comes_with_its_level_tags_current() {
    // The demo judges the pool once, after its three imports: a refresh right after it
    // has nothing left to record.
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("demo.db");
    let out = common::siyu(
        &db,
        &["demo", "--customers", "400", "--until", "2026-10-31"],
    );
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let refresh = common::text(&common::siyu(&db, &["segment", "refresh"]).stdout);
    assert!(
        refresh.contains(" 0 entries and 0 exits"),
        "the demo left memberships to record: {refresh}"
    );
}
