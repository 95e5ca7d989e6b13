//! Inputs past siyu's limits (issue 15): times outside 1970–2100, amounts above
//! ¥100,000,000, ids in the namespace of erased customers' remains, and a saved rule that
//! breaks the rule language's limits. Each is refused with the row and field, or (the saved
//! rule) left out and named; none poisons the tenant. On SQLite here, and on PostgreSQL
//! through the store where `SIYU_TEST_POSTGRES` is set.

mod common;

use std::path::Path;

use common::{siyu, text};
use siyu_core::Timestamp;
use siyu_core::segment::rules::{Purpose, RuleKind};
use siyu_store::StoredRule;

fn ok(db: &Path, args: &[&str]) -> String {
    let out = siyu(db, args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

fn refused(db: &Path, args: &[&str]) -> String {
    let out = siyu(db, args);
    assert!(
        !out.status.success(),
        "{args:?} succeeded: {}",
        text(&out.stdout)
    );
    text(&out.stderr)
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write");
    path.to_string_lossy().into_owned()
}

#[test]
fn a_time_outside_1970_to_2100_is_refused_with_its_line_and_the_tenant_stays_readable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    ok(&db, &["segment", "create", "big", "orders >= 1"]);
    let file = write(
        dir.path(),
        "orders.csv",
        "order_id,customer_id,ordered_at,amount\n\
         o1,c1,2024-05-01 10:00:00,10\n\
         o2,c2,9999-12-31 23:00:00,10\n",
    );
    let e = refused(&db, &["import", "orders", &file]);
    assert!(
        e.contains("orders.csv:3: ordered_at: '9999-12-31 23:00:00' is outside the times accepted, 1970-01-01 00:00:00 to 2100-12-31 23:59:59 UTC"),
        "{e}"
    );
    let events = write(
        dir.path(),
        "events.csv",
        "event_id,customer_id,type,occurred_at\ne1,c1,view,1969-12-31T23:59:59Z\n",
    );
    let e = refused(&db, &["import", "events", &events]);
    assert!(e.contains("events.csv:2: occurred_at:"), "{e}");
    let customers = write(
        dir.path(),
        "customers.csv",
        "customer_id,joined_at\nc9,2101-01-02\n",
    );
    let e = refused(&db, &["import", "customers", &customers]);
    assert!(e.contains("customers.csv:2: joined_at:"), "{e}");
    // Nothing of the refused files was kept, and every read works.
    let members = ok(&db, &["segment", "members", "big", "--format", "csv"]);
    assert_eq!(members.lines().count(), 1, "{members}");
    ok(&db, &["segment", "refresh"]);
    ok(&db, &["report", "overview"]);
}

#[test]
fn an_amount_above_a_hundred_million_yuan_is_refused_and_the_gmv_stays_right() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    let file = write(
        dir.path(),
        "orders.csv",
        "order_id,customer_id,ordered_at,amount\n\
         o1,c1,2024-05-01 10:00:00,100\n\
         o2,c2,2024-05-01 10:00:00,92233720368547758.07\n\
         o3,c3,2024-05-01 10:00:00,100000000.01\n",
    );
    let e = refused(&db, &["import", "orders", &file]);
    assert!(
        e.contains("orders.csv:3: amount: '92233720368547758.07' is above the largest amount accepted, ¥100,000,000.00"),
        "{e}"
    );
    let out = ok(&db, &["import", "orders", &file, "--skip-invalid"]);
    assert!(out.contains('1'), "{out}");
    let overview: serde_json::Value =
        serde_json::from_str(&ok(&db, &["report", "overview", "--format", "json"])).expect("json");
    assert_eq!(overview["gmv"], 10_000, "{overview}");
    let gmv = refused(
        &db,
        &[
            "report",
            "gmv",
            "--from",
            "2024-05-01",
            "--to",
            "2024-05-31",
            "--what-if",
            "retention=+1e308%",
        ],
    );
    assert!(gmv.contains("+1000%"), "{gmv}");
}

#[test]
fn no_import_may_name_the_remains_of_an_erased_customer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("e.db");
    let orders = write(
        dir.path(),
        "orders.csv",
        "order_id,customer_id,ordered_at,amount\no1,c1,2024-05-01 10:00:00,100\n",
    );
    ok(&db, &["import", "orders", &orders]);
    let said = ok(&db, &["customer", "erase", "c1", "--by", "dpo"]);
    let remains = said
        .split_whitespace()
        .find(|w| w.starts_with("erased:") && w.len() > "erased:;".len())
        .expect("the remains' id")
        .trim_end_matches(';')
        .to_owned();
    let relink = write(
        dir.path(),
        "customers.csv",
        &format!("customer_id,name,phone\n{remains},王小明,13911112222\n"),
    );
    let e = refused(&db, &["import", "customers", &relink]);
    assert!(
        e.contains("customers.csv:2: customer_id: ids starting with 'erased:' are reserved"),
        "{e}"
    );
    for (kind, body) in [
        (
            "orders",
            format!("order_id,customer_id,ordered_at,amount\no9,{remains},2024-05-02,1\n"),
        ),
        (
            "events",
            format!("event_id,customer_id,type,occurred_at\ne9,{remains},view,2024-05-02\n"),
        ),
        (
            "customers",
            "customer_id,referrer_id\nc7,erased:00ff\n".to_owned(),
        ),
    ] {
        let file = write(dir.path(), &format!("{kind}2.csv"), &body);
        let e = refused(&db, &["import", kind, &file]);
        assert!(
            e.contains("are reserved for the remains of erased customers"),
            "{kind}: {e}"
        );
    }
    let e = refused(&db, &["tag", "add", &remains, "vip"]);
    assert!(e.contains("erased customer's remains"), "{e}");
    let export = ok(&db, &["customer", "audit"]);
    assert!(!export.contains("王小明"), "{export}");
}

/// A rule saved before the rule language had limits: written straight into the store.
fn save_deep_rule(store: &mut dyn siyu_store::Store, tenant: &siyu_store::Tenant) {
    let deep = format!("{}orders > 1{}", "(".repeat(5_000), ")".repeat(5_000));
    let mut tx = store.begin_pool(tenant).expect("tx");
    for (kind, name) in [(RuleKind::Segment, "deep"), (RuleKind::Tag, "deep_tag")] {
        tx.save_rule(&StoredRule {
            kind,
            name: name.to_owned(),
            rule: deep.clone(),
            created_by: "old".to_owned(),
            created_at: Timestamp::now(),
            purpose: Purpose::default(),
        })
        .expect("saved");
    }
    tx.commit().expect("commit");
}

#[test]
fn a_saved_rule_past_the_limits_is_left_out_and_named_and_the_rest_keep_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("r.db");
    let orders = write(
        dir.path(),
        "orders.csv",
        "order_id,customer_id,ordered_at,amount\no1,c1,2024-05-01 10:00:00,100\no2,c1,2024-06-01,5\n",
    );
    ok(&db, &["segment", "create", "buyers", "orders >= 1"]);
    let mut store = siyu_store::open(&db.to_string_lossy()).expect("store");
    let tenant = store.tenant("default").expect("tenant");
    save_deep_rule(store.as_mut(), &tenant);
    drop(store);
    let out = siyu(&db, &["import", "orders", &orders]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let warned = text(&out.stderr);
    assert!(
        warned.contains("the saved segment 'deep' does not read and is left out of evaluation")
            && warned.contains("at most 4000 are accepted"),
        "{warned}"
    );
    let members = ok(&db, &["segment", "members", "buyers", "--format", "csv"]);
    assert!(members.contains("c1"), "{members}");
    ok(&db, &["segment", "list"]);
    // Replacing the bad rule mends it.
    ok(&db, &["tag", "rule", "deep_tag", "orders >= 2"]);
    let tags = ok(&db, &["tag", "list", "--customer", "c1"]);
    assert!(tags.contains("deep_tag"), "{tags}");

    // The same on PostgreSQL, through the service that every command and route uses.
    if let Some((mut store, tenant)) = common::postgres_tenant("limits") {
        siyu::service::segments::save_rule(
            store.as_mut(),
            &tenant,
            siyu::service::segments::NewRule::segment("buyers", "orders >= 1", Purpose::default()),
            "test",
            false,
        )
        .expect("segment");
        save_deep_rule(store.as_mut(), &tenant);
        let (evaluation, _) =
            siyu::service::segments::evaluate_now(store.as_mut(), &tenant, "test")
                .expect("evaluates without the bad rules");
        assert_eq!(evaluation.members(RuleKind::Segment, "deep"), 0);
    }
}
