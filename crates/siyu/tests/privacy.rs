//! A person's data on request (PIPL): an export holds everything on the customer; an
//! erasure leaves every total as it was, keeps the orders only under a random id, and the
//! id is refused by every later import and batch; an opt-out keeps the customer out of
//! marketing segments but not out of analysis ones; and each is in the audit log, who and
//! when. The command line end to end on the demo shop (SQLite), and the services on both
//! backends.

mod common;

use std::collections::HashSet;
use std::path::Path;

use serde_json::{Value, json};

use siyu::service::import::{ImportOptions, import_file};
use siyu::service::ingest::{ItemResult, message_id_of, parse_item, write_batch};
use siyu::service::privacy::{self, PrivacyError, SUPPRESSED};
use siyu::service::segments::{NewRule, rule_settings, save_rule};
use siyu_core::import::Kind;
use siyu_core::privacy::{AuditAction, is_erased};
use siyu_core::segment::rules::{Purpose, RuleKind};
use siyu_core::{CustomerId, OrderFact};
use siyu_store::{MemberFilter, Store, Tenant};

use common::{siyu, text};

fn run(db: &Path, args: &[&str]) -> String {
    let out = siyu(db, args);
    assert!(
        out.status.success(),
        "siyu {args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn json_of(db: &Path, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["--format", "json"]);
    serde_json::from_str(&run(db, &args)).expect("json")
}

/// The reports that rest on customers and orders: an erasure must leave each as it was.
const REPORTS: &[&[&str]] = &[
    &["report", "overview"],
    &["report", "cohorts"],
    &["report", "pareto"],
    &["report", "channels"],
    &["report", "clv"],
    &[
        "report",
        "gmv",
        "--from",
        "2025-05-01",
        "--to",
        "2025-05-31",
        "--compare-from",
        "2025-04-01",
        "--compare-to",
        "2025-04-30",
    ],
];

/// The demo customer with the most orders among those who referred someone and left
/// events: the erasure has something of every kind to deal with. Their name is theirs
/// alone among the demo's customers, so that finding it in the file after the erasure
/// means it was left behind (the demo draws names from short lists, so a name can be
/// another's or part of another's, and who comes first depends on the day the shop is
/// generated for).
fn busiest_referrer(data: &Path) -> (String, usize, usize) {
    let read = |file: &str| -> Vec<csv::StringRecord> {
        csv::Reader::from_path(data.join(file))
            .expect("demo csv")
            .records()
            .map(|r| r.expect("row"))
            .collect()
    };
    let customers = read("customers.csv");
    let referrers: HashSet<&str> = customers.iter().map(|r| &r[7]).collect();
    let orders = read("orders.csv");
    let events = read("events.csv");
    let count = |rows: &[csv::StringRecord], id: &str| rows.iter().filter(|r| &r[1] == id).count();
    // Theirs alone: no other customer's row holds it (as a name, or inside a longer one).
    let alone = |r: &csv::StringRecord| {
        customers
            .iter()
            .filter(|other| other.iter().any(|field| field.contains(&r[1])))
            .count()
            == 1
    };
    customers
        .iter()
        .filter(|r| alone(r))
        .map(|r| r[0].to_owned())
        .filter(|id| referrers.contains(id.as_str()))
        .map(|id| {
            let (o, e) = (count(&orders, &id), count(&events, &id));
            (id, o, e)
        })
        .filter(|(_, _, e)| *e > 0)
        .max_by_key(|(id, o, _)| (*o, std::cmp::Reverse(id.clone())))
        .expect("a referrer who bought")
}

#[test]
fn the_command_line_exports_erases_and_opts_out_with_every_total_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("siyu.db");
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("path");
    run(&db, &["demo", "--customers", "800", "--out", data_arg]);
    let (id, orders, events) = busiest_referrer(&data);
    assert!(orders >= 2, "{id} has {orders} orders");

    // An export holds the person, every order and event, their tags and segments.
    run(&db, &["segment", "create", "buyers", "orders >= 1"]);
    run(
        &db,
        &[
            "segment",
            "create",
            "buyers_all",
            "orders >= 1",
            "--purpose",
            "analysis",
        ],
    );
    let exported: Value =
        serde_json::from_str(&run(&db, &["customer", "export", &id, "--by", "dpo:li"]))
            .expect("export json");
    assert_eq!(exported["customer"]["id"], json!(id));
    assert!(exported["customer"]["phone"].is_string());
    assert_eq!(exported["orders"].as_array().expect("orders").len(), orders);
    assert_eq!(exported["events"].as_array().expect("events").len(), events);
    let segments: Vec<&str> = exported["memberships"]
        .as_array()
        .expect("memberships")
        .iter()
        .filter(|m| m["kind"] == "segment")
        .map(|m| m["name"].as_str().expect("name"))
        .collect();
    assert_eq!(segments, ["buyers", "buyers_all"]);
    assert_eq!(exported["audit"][0]["action"], "export");
    assert_eq!(exported["audit"][0]["actor"], "dpo:li");

    // Opted out: out of the marketing segment, still in the analysis one.
    let members = |db: &Path| -> (u64, u64) {
        let list = json_of(db, &["segment", "list"]);
        let count = |name: &str| {
            list.as_array()
                .expect("segments")
                .iter()
                .find(|s| s["name"] == name)
                .and_then(|s| s["members"].as_u64())
                .expect(name)
        };
        (count("buyers"), count("buyers_all"))
    };
    let (marketing, analysis) = members(&db);
    assert_eq!(marketing, analysis);
    run(&db, &["customer", "opt-out", &id, "--by", "crm"]);
    assert_eq!(members(&db), (analysis - 1, analysis));
    let history = json_of(&db, &["segment", "history", "--customer", &id]);
    let last = history
        .as_array()
        .expect("history")
        .iter()
        .find(|h| h["name"] == "buyers")
        .expect("a change of buyers");
    assert_eq!(
        (&last["change"], &last["cause"]),
        (&json!("exited"), &json!("opt-out"))
    );
    run(&db, &["customer", "opt-out", &id, "--undo", "--by", "crm"]);
    assert_eq!(members(&db), (analysis, analysis));
    run(&db, &["customer", "opt-out", &id, "--by", "crm"]);

    // Erased: every figure that rests on orders and customers is as it was.
    let before: Vec<Value> = REPORTS.iter().map(|r| json_of(&db, r)).collect();
    let said = run(&db, &["customer", "erase", &id, "--by", "dpo:li"]);
    assert!(said.contains(&format!("{orders} orders kept")), "{said}");
    // Where a report names the customer (a super user, say), it names the remains now.
    let remains = said
        .split_whitespace()
        .find(|w| w.starts_with("erased:") && w.len() > "erased:;".len())
        .expect("the remains' id")
        .trim_end_matches(';');
    let before: Vec<Value> = before
        .iter()
        .map(|v| {
            let renamed = v
                .to_string()
                .replace(&format!("\"{id}\""), &format!("\"{remains}\""));
            serde_json::from_str(&renamed).expect("json")
        })
        .collect();
    for (report, was) in REPORTS.iter().zip(&before) {
        assert_eq!(
            &json_of(&db, report),
            was,
            "{report:?} changed by the erasure"
        );
    }
    let gone = siyu(&db, &["customer", "export", &id]);
    assert!(!gone.status.success());
    assert!(
        text(&gone.stderr).contains("was erased"),
        "{}",
        text(&gone.stderr)
    );

    // Nothing brings the id back: not the same files again, not a batch.
    for (kind, file) in [
        ("customers", "customers.csv"),
        ("orders", "orders.csv"),
        ("events", "events.csv"),
    ] {
        let path = data.join(file);
        let said = run(&db, &["import", kind, path.to_str().expect("path")]);
        assert!(said.contains("0 inserted, 0 updated"), "{said}");
        assert!(said.contains("about erased customers left out"), "{said}");
    }
    assert!(!text(&siyu(&db, &["customer", "export", &id]).stderr).is_empty());
    for (report, was) in REPORTS.iter().zip(&before) {
        assert_eq!(
            &json_of(&db, report),
            was,
            "{report:?} changed by a re-import"
        );
    }
    // Nor is anything left in the database files for someone who reads them raw.
    for field in ["phone", "name"] {
        let value = exported["customer"][field]
            .as_str()
            .expect(field)
            .as_bytes();
        for file in ["siyu.db", "siyu.db-wal"] {
            let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
            assert!(
                !bytes.windows(value.len()).any(|w| w == value),
                "the {field} is still in {file}"
            );
        }
    }

    // The audit log has each action, who and when, found by the id even now.
    let log = json_of(&db, &["customer", "audit", &id]);
    let actions: Vec<(&str, &str)> = log
        .as_array()
        .expect("log")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().expect("action"),
                e["actor"].as_str().expect("actor"),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("erase", "dpo:li"),
            ("opt_out", "crm"),
            ("opt_in", "crm"),
            ("opt_out", "crm"),
            ("export", "dpo:li"),
        ]
    );
    assert!(!log.to_string().contains(&id), "the log keeps no id");
}

/// Writes `text` to `dir/name` and imports it as `kind`.
fn import(
    store: &mut dyn Store,
    tenant: &Tenant,
    dir: &Path,
    kind: Kind,
    name: &str,
    text: &str,
) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    import_file(store, tenant, kind, &path, ImportOptions::default())
        .expect("import")
        .to_string()
}

fn order_totals(store: &mut dyn Store, tenant: &Tenant) -> (usize, i64, usize) {
    let mut facts: Vec<OrderFact> = Vec::new();
    store
        .scan_order_facts(tenant, &mut |f| facts.push(f))
        .expect("orders");
    let buyers: HashSet<String> = facts.iter().map(|f| f.customer_id.to_string()).collect();
    (
        facts.len(),
        facts.iter().map(|f| f.amount.fen()).sum(),
        buyers.len(),
    )
}

fn erase_and_suppress(store: &mut dyn Store, tenant: &Tenant) {
    let dir = tempfile::tempdir().expect("tempdir");
    let customers = "customer_id,name,phone,referrer_id,tags\n\
                     a,张三,13800000001,,vip\n\
                     b,李四,13800000002,a,\n";
    let orders = "order_id,customer_id,ordered_at,amount,status\n\
                  1,a,2025-01-01,100,paid\n\
                  2,a,2025-02-01,50.5,paid\n\
                  3,b,2025-02-02,20,paid\n";
    let events = "event_id,customer_id,type,occurred_at\n\
                  e1,a,view,2025-01-01\n\
                  e2,b,view,2025-01-02\n";
    import(
        store,
        tenant,
        dir.path(),
        Kind::Customers,
        "c.csv",
        customers,
    );
    import(store, tenant, dir.path(), Kind::Orders, "o.csv", orders);
    import(store, tenant, dir.path(), Kind::Events, "e.csv", events);
    let rule = NewRule::segment("all", "orders >= 0", Purpose::Marketing);
    save_rule(store, tenant, rule, "t", false).expect("segment");
    let before = order_totals(store, tenant);
    let a = CustomerId::parse("a").expect("id");

    let e = privacy::erase(store, tenant, &a, "dpo").expect("erase");
    assert_eq!(
        (e.orders_kept, e.events_erased, e.tags_erased, e.referees),
        (2, 1, 1, 1)
    );
    let remains = CustomerId::parse(&e.remains).expect("remains");
    assert!(is_erased(&remains));
    assert_eq!(order_totals(store, tenant), before);
    let kept = store.customer(tenant, &remains).expect("remains");
    assert_eq!((kept.name, kept.phone), (None, None));
    assert_eq!(
        store
            .customer(tenant, &CustomerId::parse("b").expect("id"))
            .expect("b")
            .referrer_id,
        Some(remains.clone())
    );
    let mut tx = store.begin_pool(tenant).expect("tx");
    let members = tx
        .members(MemberFilter::Rule(RuleKind::Segment, "all"))
        .expect("members");
    drop(tx);
    let ids: Vec<&str> = members.iter().map(|m| m.customer_id.as_str()).collect();
    assert_eq!(ids, ["b"], "the remains are never marketed to");

    // The same rows again, and a batch: none of it is taken.
    let said = import(store, tenant, dir.path(), Kind::Orders, "o.csv", orders);
    assert!(
        said.contains("2 rows about erased customers left out"),
        "{said}"
    );
    import(
        store,
        tenant,
        dir.path(),
        Kind::Customers,
        "c.csv",
        customers,
    );
    import(store, tenant, dir.path(), Kind::Events, "e.csv", events);
    assert!(store.customer(tenant, &a).is_err());
    assert_eq!(order_totals(store, tenant), before);
    let settings = rule_settings(store, tenant).expect("settings");
    let items = [
        json!({"type": "track", "message_id": "m1", "customer_id": "a", "timestamp": "2025-03-01", "event": "view"}),
        json!({"type": "identify", "message_id": "m2", "customer_id": "a", "traits": {"name": "张三"}}),
        json!({"type": "track", "message_id": "m3", "customer_id": "b", "timestamp": "2025-03-01", "event": "view"}),
    ];
    let checked = items
        .iter()
        .map(|v| parse_item(v, &tenant.zone).map_err(|e| (message_id_of(v), e)))
        .collect();
    let answers = write_batch(store, tenant, &settings, checked).expect("batch");
    let rejected = ItemResult::Rejected {
        message_id: Some("m1".into()),
        reason: SUPPRESSED.into(),
    };
    assert_eq!(answers[0], rejected);
    assert!(matches!(&answers[1], ItemResult::Rejected { reason, .. } if reason == SUPPRESSED));
    assert_eq!(
        answers[2],
        ItemResult::Accepted {
            message_id: "m3".into()
        }
    );
    assert!(store.customer(tenant, &a).is_err());

    // Every action on an erased id says so; on the remains, that there is nothing personal.
    let err = privacy::erase(store, tenant, &a, "dpo").expect_err("twice");
    assert!(matches!(err, PrivacyError::Erased(_)), "{err}");
    let err = privacy::set_opt_out(store, tenant, &remains, true, "x").expect_err("remains");
    assert!(matches!(err, PrivacyError::Remains(_)), "{err}");
    let nobody = CustomerId::parse("nobody").expect("id");
    let err = privacy::export(store, tenant, &nobody, "x").expect_err("nobody");
    assert!(matches!(err, PrivacyError::NotFound(_)), "{err}");
    let log = privacy::audit_log(store, tenant, Some(&a), 10).expect("log");
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].action, log[0].actor.as_str()),
        (AuditAction::Erase, "dpo")
    );
}

#[test]
fn an_erased_id_stays_out_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store =
        siyu_store::open(dir.path().join("s.db").to_str().expect("path")).expect("store");
    let tenant = store.tenant("shop").expect("tenant");
    erase_and_suppress(store.as_mut(), &tenant);
}

#[test]
fn an_erased_id_stays_out_on_postgres() {
    let Some((mut store, tenant)) = common::postgres_tenant("privacy") else {
        return;
    };
    erase_and_suppress(store.as_mut(), &tenant);
}
