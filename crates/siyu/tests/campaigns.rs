//! Campaigns end to end over the store, on SQLite always and on PostgreSQL when
//! `SIYU_TEST_POSTGRES` is set: a run's decisions and reasons (erased, unknown, opted out,
//! the cycle, the caps, quiet hours, the budget), the holdout kept across runs, the export
//! marking sends, and redemption by an order's code or a `coupon_redeemed` event.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use siyu::service::campaigns::{self, run_at};
use siyu::service::import::{ImportOptions, import_file};
use siyu::service::privacy;
use siyu_core::campaign::{
    Audience, Benefit, CampaignSpec, Offer, Policy, SendChannel, Tier, Validity,
};
use siyu_core::import::Kind;
use siyu_core::{CustomerId, Money, TenantZone, Timestamp};
use siyu_store::{DecisionRow, Store, Tenant};

fn zone() -> TenantZone {
    TenantZone::default()
}

fn at(text: &str) -> Timestamp {
    zone().parse_timestamp(text).expect("time")
}

fn import(store: &mut dyn Store, tenant: &Tenant, kind: Kind, name: &str, text: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write");
    import_file(store, tenant, kind, &path, ImportOptions::default()).expect("import");
}

/// 30 customers c01…c30 who bought 60 and 40 days before 2026-03-10 (lapsed against the
/// shop's 30-day cycle), `fresh` who bought 3 days before, `quitter` who opted out.
fn shop(store: &mut dyn Store, tenant: &Tenant) -> Vec<String> {
    let mut customers = String::from("customer_id,name,phone\n");
    let mut orders = String::from("order_id,customer_id,ordered_at,amount,status\n");
    let mut ids: Vec<String> = (1..=30).map(|i| format!("c{i:02}")).collect();
    ids.push("fresh".to_owned());
    ids.push("quitter".to_owned());
    for (i, id) in ids.iter().enumerate() {
        let _ = writeln!(customers, "{id},顾客{i},138{i:08}");
        let days: &[u32] = if id == "fresh" { &[33, 3] } else { &[60, 40] };
        for (n, d) in days.iter().enumerate() {
            let day = at("2026-03-10") - jiff::SignedDuration::from_hours(24 * i64::from(*d));
            let _ = writeln!(
                orders,
                "o-{id}-{n},{id},{},88.00,paid",
                zone().datetime_of(day).strftime("%Y-%m-%d 12:00:00")
            );
        }
    }
    import(store, tenant, Kind::Customers, "customers.csv", &customers);
    import(store, tenant, Kind::Orders, "orders.csv", &orders);
    let quitter = CustomerId::parse("quitter").expect("id");
    privacy::set_opt_out(store, tenant, &quitter, true, "test").expect("opt out");
    ids
}

fn offer(store: &mut dyn Store, tenant: &Tenant, name: &str, max_coupons: Option<u64>) {
    let offer = Offer {
        benefit: Benefit::NoThreshold {
            off: Money::yuan(10),
        },
        validity: Validity::Days { days: 7 },
        max_coupons,
        max_face: None,
    };
    campaigns::create_offer(store, tenant, name, &offer, "test").expect("offer");
}

fn spec(ids: Vec<String>, offer: Option<&str>, policy: Policy) -> CampaignSpec {
    CampaignSpec {
        audience: Audience::List { ids },
        tiers: vec![Tier {
            name: "all".to_owned(),
            rule: String::new(),
            offer: offer.map(str::to_owned),
        }],
        message: "好久不见".to_owned(),
        channel: SendChannel::Export,
        policy,
        start_at: None,
        trigger: None,
        steps: Vec::new(),
    }
}

fn by_customer(rows: &[DecisionRow], run: u32) -> BTreeMap<String, (String, String)> {
    rows.iter()
        .filter(|d| d.run == run)
        .map(|d| (d.customer_id.clone(), (d.outcome.clone(), d.reason.clone())))
        .collect()
}

fn decisions_and_reasons(store: &mut dyn Store, tenant: &Tenant) {
    let mut ids = shop(store, tenant);
    let erased = privacy::erase(
        store,
        tenant,
        &CustomerId::parse("c30").expect("id"),
        "test",
    )
    .expect("erase");
    ids.push(erased.remains.clone());
    ids.push("stranger".to_owned());
    offer(store, tenant, "ten", Some(20));
    let no_holdout = Policy {
        holdout_bp: 0,
        ..Policy::default()
    };
    let audience = spec(ids.clone(), Some("ten"), no_holdout.clone());
    campaigns::create_campaign(store, tenant, "winback", &audience, "test").expect("campaign");

    // 22:30 in Shanghai: quiet hours, the sends wait until 08:00.
    let now = at("2026-03-10 22:30:00");
    let run = run_at(store, tenant, "winback", now).expect("run");
    assert_eq!(run.run, 1);
    let rows = campaigns::decisions(store, tenant, "winback", None).expect("decisions");
    let got = by_customer(&rows, 1);
    let reason = |id: &str| got[id].1.as_str();
    assert_eq!(reason("quitter"), "opted_out");
    assert_eq!(reason("stranger"), "unknown");
    assert_eq!(
        reason("c30"),
        "unknown",
        "the erased id is no customer any more"
    );
    assert_eq!(reason(&erased.remains), "erased");
    assert_eq!(reason("fresh"), "in_cycle");
    let fresh = rows
        .iter()
        .find(|d| d.customer_id == "fresh")
        .expect("fresh");
    assert_eq!(
        fresh.detail.as_deref(),
        Some("bought 3 days ago, cycle 30 days (the shop's)")
    );
    // The budget of 20 coupons: 20 of the 29 lapsed customers get one, 9 are held back.
    let offers: Vec<_> = got.values().filter(|(_, r)| r == "offer").collect();
    let budget: Vec<_> = got.values().filter(|(_, r)| r == "budget").collect();
    assert_eq!((offers.len(), budget.len()), (20, 9));
    for d in rows.iter().filter(|d| d.outcome == "send") {
        assert_eq!(d.not_before, Some(at("2026-03-11 08:00:00")), "{d:?}");
        assert!(d.coupon_code.is_some());
    }
    for d in rows.iter().filter(|d| d.outcome != "send") {
        assert_eq!(d.coupon_code, None, "{d:?}");
    }
    let coupons = store.coupons(tenant, Some("ten")).expect("coupons");
    assert_eq!(coupons.len(), 20);
    let codes: BTreeSet<&str> = coupons.iter().map(|c| c.code.as_str()).collect();
    assert_eq!(codes.len(), 20);

    // A second campaign the next morning with a cap of one touch a week: those sent by
    // the first are held back; the budget is spent, whatever the campaign.
    let capped = Policy {
        frequency_cap: 1,
        ..no_holdout.clone()
    };
    campaigns::create_campaign(
        store,
        tenant,
        "again",
        &spec(ids.clone(), Some("ten"), capped),
        "test",
    )
    .expect("campaign");
    run_at(store, tenant, "again", at("2026-03-11 10:00:00")).expect("run");
    let again = by_customer(
        &campaigns::decisions(store, tenant, "again", None).expect("decisions"),
        1,
    );
    for (id, (outcome, reason)) in &got {
        let (_, later) = &again[id];
        match (outcome.as_str(), reason.as_str()) {
            ("send", _) => assert_eq!(later, "frequency_cap", "{id}"),
            (_, "budget") => assert_eq!(later, "budget", "{id}"),
            _ => {}
        }
    }
    // A platform cap of one send a day on the channel does the same for the messages.
    let platform = Policy {
        platform_cap: Some((1, 1)),
        frequency_cap: 10,
        ..no_holdout
    };
    campaigns::create_campaign(store, tenant, "hello", &spec(ids, None, platform), "test")
        .expect("campaign");
    run_at(store, tenant, "hello", at("2026-03-11 10:00:00")).expect("run");
    let hello = by_customer(
        &campaigns::decisions(store, tenant, "hello", None).expect("decisions"),
        1,
    );
    assert_eq!(hello["c01"].1, "platform_cap", "c01 was sent by winback");
    assert_eq!(
        hello["fresh"].1, "message",
        "the message alone: no cycle, no cap"
    );

    // The export: masked phones, marked sent, and nothing the second time.
    let lines = campaigns::export(store, tenant, "winback", false, "test").expect("export");
    assert_eq!(lines.len(), 20);
    assert!(lines.iter().all(|l| l.phone.contains("****")), "{lines:?}");
    assert!(lines.iter().all(|l| !l.coupon_code.is_empty()));
    let rows = campaigns::decisions(store, tenant, "winback", None).expect("decisions");
    assert!(
        rows.iter()
            .filter(|d| d.outcome == "send")
            .all(|d| d.sent_at.is_some())
    );
    assert!(
        campaigns::export(store, tenant, "winback", false, "test")
            .expect("export")
            .is_empty()
    );

    // Erased after the run: the decisions and the coupon stay (the results count them),
    // under the remains' id, none under the erased id.
    let gone = privacy::erase(
        store,
        tenant,
        &CustomerId::parse("c01").expect("id"),
        "test",
    )
    .expect("erase");
    let rows = campaigns::decisions(store, tenant, "winback", None).expect("decisions");
    assert!(rows.iter().all(|d| d.customer_id != "c01"));
    assert_eq!(
        rows.iter()
            .filter(|d| d.customer_id == gone.remains)
            .count(),
        1
    );
    let coupons = store.coupons(tenant, Some("ten")).expect("coupons");
    assert!(coupons.iter().all(|c| c.customer_id != "c01"));
    assert!(coupons.iter().any(|c| c.customer_id == gone.remains));
}

fn holdout_and_redemption(store: &mut dyn Store, tenant: &Tenant) {
    let ids = shop(store, tenant);
    offer(store, tenant, "ten", None);
    let policy = Policy {
        holdout_bp: 3000,
        frequency_cap: 100,
        ..Policy::default()
    };
    campaigns::create_campaign(
        store,
        tenant,
        "spring",
        &spec(ids, Some("ten"), policy),
        "test",
    )
    .expect("campaign");
    run_at(store, tenant, "spring", at("2026-03-10 10:00:00")).expect("run");
    run_at(store, tenant, "spring", at("2026-03-12 10:00:00")).expect("run");
    let rows = campaigns::decisions(store, tenant, "spring", None).expect("decisions");
    let held = |run: u32| -> BTreeSet<String> {
        rows.iter()
            .filter(|d| d.run == run && d.outcome == "holdout")
            .map(|d| d.customer_id.clone())
            .collect()
    };
    assert!(!held(1).is_empty());
    assert_eq!(held(1), held(2), "the same customers held out on every run");
    assert!(
        rows.iter()
            .filter(|d| d.outcome == "holdout")
            .all(|d| d.coupon_code.is_none())
    );

    // One code redeemed by an order, one by an event, one by an order after it expired.
    let sent: Vec<&DecisionRow> = rows
        .iter()
        .filter(|d| d.run == 1 && d.coupon_code.is_some())
        .collect();
    assert!(sent.len() >= 3);
    let code = |i: usize| sent[i].coupon_code.clone().expect("code");
    let who = |i: usize| sent[i].customer_id.clone();
    import(
        store,
        tenant,
        Kind::Orders,
        "redeemed.csv",
        &format!(
            "order_id,customer_id,ordered_at,amount,status,coupon_code\n\
             r1,{},2026-03-12 12:00:00,120.00,paid,{}\n\
             r2,{},2026-03-30 12:00:00,99.00,paid,{}\n",
            who(0),
            code(0),
            who(2),
            code(2)
        ),
    );
    import(
        store,
        tenant,
        Kind::Events,
        "events.jsonl",
        &format!(
            "{{\"event_id\":\"e1\",\"customer_id\":\"{}\",\"type\":\"coupon_redeemed\",\"occurred_at\":\"2026-03-11T04:00:00Z\",\"properties\":{{\"coupon_code\":\"{}\"}}}}\n",
            who(1),
            code(1)
        ),
    );
    let r = campaigns::results(store, tenant, "spring").expect("results");
    assert_eq!(r.overall.redeemed, 2, "{:?}", r.overall);
    assert_eq!(r.overall.coupon_cost, Money::yuan(20));
    // The holdout and the treated are the customers decided, each once.
    let (t, h) = (&r.overall.treated, &r.overall.holdout);
    assert_eq!(h.customers as usize, held(1).len());
    assert_eq!(t.customers + h.customers, 31, "everyone but the opted-out");
    // r1 falls in the 14 days after the first decision; r2 after them.
    assert_eq!(t.orders, 1);
    assert_eq!(t.revenue, Money::yuan(120));
    assert!(r.overall.too_small.is_some());
}

/// A campaign sending by webhook: refused while its endpoint does not exist; each run's
/// sends are in the outbox once the run has committed, one per send decided.
fn sends_by_webhook(store: &mut dyn Store, tenant: &Tenant) {
    let ids = shop(store, tenant);
    offer(store, tenant, "ten", None);
    let mut spring = spec(ids, Some("ten"), Policy::default());
    spring.channel = SendChannel::Webhook {
        endpoint: "bridge".to_owned(),
    };
    let refused = campaigns::create_campaign(store, tenant, "spring", &spring, "test");
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("bridge")),
        "{refused:?}"
    );
    siyu::service::delivery::add_webhook(
        store,
        tenant,
        "bridge",
        "http://127.0.0.1:9/hook",
        None,
        &siyu::service::delivery::Limits::default(),
    )
    .expect("webhook");
    campaigns::create_campaign(store, tenant, "spring", &spring, "test").expect("campaign");
    let summary = run_at(store, tenant, "spring", at("2026-03-10 10:00:00")).expect("run");
    let rows = campaigns::decisions(store, tenant, "spring", None).expect("decisions");
    let sent = rows.iter().filter(|d| d.outcome == "send").count();
    assert!(sent > 0);
    assert_eq!(summary.deliveries, sent as u64);
    let outbox = store.outbox_rows(tenant, None, 1000).expect("outbox");
    assert_eq!(outbox.len(), sent);
    assert!(outbox.iter().all(|o| o.endpoint == "bridge"));
}

/// A preview decides as a run on the same day does, and writes nothing.
fn preview_equals_run(store: &mut dyn Store, tenant: &Tenant) {
    let ids = shop(store, tenant);
    offer(store, tenant, "five", Some(5));
    let policy = Policy {
        holdout_bp: 3000,
        ..Policy::default()
    };
    let spec = spec(ids, Some("five"), policy);
    campaigns::create_campaign(store, tenant, "spring", &spec, "test").expect("campaign");
    let now = at("2026-03-10 23:00:00");
    let preview = campaigns::preview_at(store, tenant, "spring", now).expect("preview");
    let rows = campaigns::decisions(store, tenant, "spring", None).expect("decisions");
    assert!(rows.is_empty(), "a preview records no decision");
    let again = campaigns::preview_at(store, tenant, "spring", now).expect("preview");
    assert_eq!(again.run, 1, "nor a run");
    let run = run_at(store, tenant, "spring", now).expect("run");
    assert_eq!(preview.counts, run.counts);
    assert_eq!(
        (preview.audience, preview.coupons, preview.face_value),
        (run.audience, run.coupons, run.face_value)
    );
    assert!(
        preview.counts.iter().any(|(o, _, _)| o == "holdout")
            && preview.counts.iter().any(|(o, _, _)| o == "held"),
        "{:?}",
        preview.counts
    );
}

#[test]
fn a_preview_counts_what_a_run_the_same_day_decides_on_each_backend() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = siyu_store::open(dir.path().join("c.db").to_str().expect("path")).expect("db");
    let tenant = store.tenant("shop").expect("tenant");
    preview_equals_run(store.as_mut(), &tenant);
    if let Some((mut store, tenant)) = common::postgres_tenant("campaigns_preview") {
        preview_equals_run(store.as_mut(), &tenant);
    }
}

#[test]
fn a_campaign_by_webhook_puts_its_sends_in_the_outbox_on_each_backend() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = siyu_store::open(dir.path().join("c.db").to_str().expect("path")).expect("db");
    let tenant = store.tenant("shop").expect("tenant");
    sends_by_webhook(store.as_mut(), &tenant);
    if let Some((mut store, tenant)) = common::postgres_tenant("campaigns_webhook") {
        sends_by_webhook(store.as_mut(), &tenant);
    }
}

#[test]
fn a_run_decides_each_customer_with_its_reason_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = siyu_store::open(dir.path().join("c.db").to_str().expect("path")).expect("db");
    let tenant = store.tenant("shop").expect("tenant");
    decisions_and_reasons(store.as_mut(), &tenant);
}

#[test]
fn a_run_decides_each_customer_with_its_reason_on_postgres() {
    let Some((mut store, tenant)) = common::postgres_tenant("campaigns") else {
        return;
    };
    decisions_and_reasons(store.as_mut(), &tenant);
}

#[test]
fn the_holdout_stays_and_redemptions_count_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = siyu_store::open(dir.path().join("c.db").to_str().expect("path")).expect("db");
    let tenant = store.tenant("shop").expect("tenant");
    holdout_and_redemption(store.as_mut(), &tenant);
}

#[test]
fn the_holdout_stays_and_redemptions_count_on_postgres() {
    let Some((mut store, tenant)) = common::postgres_tenant("campaigns") else {
        return;
    };
    holdout_and_redemption(store.as_mut(), &tenant);
}

/// The API: the same use cases, each refusal with its code.
#[test]
fn the_api_creates_runs_and_reads_campaigns_on_each_backend() {
    use common::api::Api;
    use siyu_core::access::Role;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for api in Api::on_each_backend("campaigns") {
        let operator = api.token("shop", Role::Operator);
        let viewer = api.token("shop", Role::Viewer);
        {
            let mut store = siyu_store::open(&api.db).expect("store");
            let tenant = store.tenant("shop").expect("tenant");
            shop(store.as_mut(), &tenant);
        }
        runtime.block_on(async {
            let call = |method: &'static str, uri: &'static str, token: &str, body: &str| {
                let body = (!body.is_empty()).then(|| body.to_owned());
                let token = token.to_owned();
                let api = &api;
                async move { api.call(method, uri, Some(&token), body).await }
            };
            let code = |text: &str| -> String {
                serde_json::from_str::<serde_json::Value>(text).expect("json")["code"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            };
            let (s, t) = call("POST", "/v1/offers", &operator, r#"{"name":"ten","kind":"threshold","min":"10","off":10}"#).await;
            assert_eq!((s.as_u16(), code(&t).as_str()), (400, "invalid_offer"), "{t}");
            let (s, t) = call("POST", "/v1/offers", &operator, r#"{"name":"ten","kind":"no_threshold","off":"10.00","max_coupons":5}"#).await;
            assert_eq!(s.as_u16(), 201, "{t}");
            let (s, t) = call("POST", "/v1/offers", &operator, r#"{"name":"ten","kind":"no_threshold","off":5}"#).await;
            assert_eq!((s.as_u16(), code(&t).as_str()), (409, "offer_exists"), "{t}");
            let (s, t) = call("POST", "/v1/offers", &viewer, r#"{"name":"v","kind":"no_threshold","off":5}"#).await;
            assert_eq!(s.as_u16(), 403, "{t}");
            let (s, t) = call("POST", "/v1/campaigns", &operator, r#"{"name":"w","segment":"nobody","message":"hi"}"#).await;
            assert_eq!((s.as_u16(), code(&t).as_str()), (400, "invalid_campaign"), "{t}");
            let (s, t) = call("POST", "/v1/campaigns", &operator, r#"{"name":"w","customers":["c01","c02","fresh"],"message":"hi","tiers":[{"name":"all","offer":"nope"}]}"#).await;
            assert_eq!((s.as_u16(), code(&t).as_str()), (400, "invalid_campaign"), "{t}");
            let body = r#"{"name":"w","customers":["c01","c02","fresh","quitter"],"message":"hi","tiers":[{"name":"all","rule":"","offer":"ten"}],"holdout":0,"quiet_hours":"none"}"#;
            let (s, t) = call("POST", "/v1/campaigns", &operator, body).await;
            assert_eq!(s.as_u16(), 201, "{t}");
            let (s, t) = call("POST", "/v1/campaigns", &operator, body).await;
            assert_eq!((s.as_u16(), code(&t).as_str()), (409, "campaign_exists"), "{t}");
            let (s, t) = call("POST", "/v1/campaigns/w/pause", &operator, "").await;
            assert_eq!(s.as_u16(), 200, "{t}");
            let (s, t) = call("POST", "/v1/campaigns/w/run", &operator, "").await;
            assert_eq!((s.as_u16(), code(&t).as_str()), (409, "campaign_not_runnable"), "{t}");
            call("POST", "/v1/campaigns/w/resume", &operator, "").await;
            let (s, t) = call("POST", "/v1/campaigns/w/run", &operator, "").await;
            assert_eq!(s.as_u16(), 200, "{t}");
            let run: serde_json::Value = serde_json::from_str(&t).expect("json");
            assert_eq!(run["coupons"], 3, "{t}");
            let (s, t) = call("GET", "/v1/campaigns/w/decisions?customer=quitter", &viewer, "").await;
            assert_eq!(s.as_u16(), 200, "{t}");
            let d: serde_json::Value = serde_json::from_str(&t).expect("json");
            assert_eq!(d[0]["reason"], "opted_out", "{t}");
            let (s, t) = call("GET", "/v1/campaigns/w/decisions?who=x", &viewer, "").await;
            assert_eq!((s.as_u16(), code(&t).as_str()), (400, "invalid_query"), "{t}");
            let (s, t) = call("GET", "/v1/campaigns/w/results", &viewer, "").await;
            assert_eq!(s.as_u16(), 200, "{t}");
            let r: serde_json::Value = serde_json::from_str(&t).expect("json");
            assert_eq!(r["overall"]["treated"]["customers"], 3, "{t}");
            assert!(r["overall"]["too_small"].is_string(), "{t}");
            let (s, t) = call("GET", "/v1/campaigns/nope/results", &viewer, "").await;
            assert_eq!((s.as_u16(), code(&t).as_str()), (404, "campaign_not_found"), "{t}");
            let (s, t) = call("GET", "/v1/offers", &viewer, "").await;
            let o: serde_json::Value = serde_json::from_str(&t).expect("json");
            assert_eq!((s.as_u16(), o[0]["issued"].as_u64()), (200, Some(3)), "{t}");
        });
    }
}

#[test]
fn the_demo_shop_comes_with_two_finished_campaigns_with_redemptions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("demo.db");
    let out = common::siyu(
        &db,
        &["demo", "--customers", "2000", "--until", "2026-10-31"],
    );
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    for name in ["demo_winback", "demo_thanks"] {
        let out = common::siyu(&db, &["campaign", "results", name, "--format", "json"]);
        assert!(out.status.success(), "{}", common::text(&out.stderr));
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let overall = &r["overall"];
        assert!(overall["redeemed"].as_u64() > Some(0), "{name}: {overall}");
        assert!(
            overall["holdout"]["customers"].as_u64() > Some(40),
            "{name}: {overall}"
        );
        assert!(
            overall["treated"]["buyers"].as_u64() > Some(0),
            "{name}: {overall}"
        );
    }
    // Again into the same database: no second pair.
    let again = common::siyu(
        &db,
        &["demo", "--customers", "2000", "--until", "2026-10-31"],
    );
    assert!(again.status.success(), "{}", common::text(&again.stderr));
    let list = common::siyu(&db, &["campaign", "list", "--format", "csv"]);
    assert_eq!(common::text(&list.stdout).lines().count(), 3);
}
