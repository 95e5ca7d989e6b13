//! Triggered campaigns (SOP steps) end to end, on SQLite always and on PostgreSQL when
//! `SIYU_TEST_POSTGRES` is set: a batch that makes a customer enter a segment queues the
//! campaign's steps in its own transaction (once, however often it is retried), a tick
//! decides the due ones with the policy and puts the sends in the outbox, a customer who
//! left before a step came due is recorded and not sent, and the holdout holds on every
//! step.

mod common;

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Value, json};

use common::api::{Api, runtime};
use siyu::service::campaigns;
use siyu_core::Timestamp;
use siyu_core::access::Role;
use siyu_core::segment::rules::{Change, RuleKind};
use siyu_store::{MemberChange, NewTrigger, Store, Tenant};

fn order(message: &str, customer: &str, order: &str) -> Value {
    json!({"type": "order", "message_id": message, "customer_id": customer,
           "timestamp": "2025-05-01 10:00:00", "order_id": order, "amount": "10"})
}

fn tag(customer: &str, message: &str) -> Value {
    json!({"type": "identify", "message_id": message, "customer_id": customer,
           "traits": {"name": "顾客", "tags": ["club"]}})
}

fn body(v: Value) -> Option<String> {
    Some(v.to_string())
}

/// (run, customer) → (outcome, reason) of a campaign's decisions.
fn decided(
    store: &mut dyn Store,
    tenant: &Tenant,
    name: &str,
) -> BTreeMap<(u32, String), (String, String)> {
    campaigns::decisions(store, tenant, name, None)
        .expect("decisions")
        .into_iter()
        .map(|d| ((d.run, d.customer_id), (d.outcome, d.reason)))
        .collect()
}

fn outbox_ids(store: &mut dyn Store, tenant: &Tenant) -> Vec<String> {
    let mut ids: Vec<String> = store
        .outbox_rows(tenant, None, 1000)
        .expect("outbox")
        .into_iter()
        .map(|r| r.send_id)
        .collect();
    ids.sort();
    ids
}

/// A batch that makes c1 enter segment `club` queues both steps once (the retried batch
/// queues nothing more); a tick sends step 1 at once (in the outbox); c1 leaves before
/// step 2 is due, and step 2 is recorded `left`, not sent.
#[test]
fn a_batch_entering_a_segment_queues_its_steps_and_a_tick_sends_the_due_ones() {
    let rt = runtime();
    for api in Api::on_each_backend("triggers") {
        let admin = api.token("shop", Role::Admin);
        let ingest = api.token("shop", Role::Ingest);
        let (status, text) = rt.block_on(api.call(
            "POST",
            "/v1/segments",
            Some(&admin),
            body(json!({"name": "club", "rule": "has_tag(\"club\")"})),
        ));
        assert_eq!(status, StatusCode::CREATED, "{text}");
        let (status, text) = rt.block_on(api.call(
            "POST",
            "/v1/webhooks",
            Some(&admin),
            body(json!({"name": "bridge", "url": "http://127.0.0.1:9/hook"})),
        ));
        assert_eq!(status, StatusCode::CREATED, "{text}");
        let (status, text) = rt.block_on(api.call(
            "POST",
            "/v1/campaigns",
            Some(&admin),
            body(
                json!({"name": "welcome", "on_enter": "club", "steps": ["0", "3d"],
                        "message": "欢迎", "channel": "webhook:bridge", "holdout": 0,
                        "quiet_hours": "none"}),
            ),
        ));
        assert_eq!(status, StatusCode::CREATED, "{text}");
        let created: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            created["trigger"],
            json!({"kind": "enter", "segment": "club"})
        );
        let (status, text) = rt.block_on(api.call(
            "POST",
            "/v1/campaigns",
            Some(&admin),
            body(json!({"name": "bad", "on_enter": "club", "steps": ["3w"],
                        "message": "x"})),
        ));
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert!(text.contains("invalid_campaign"), "{text}");

        let batch = json!({"batch": [tag("c1", "m1"), order("m2", "c2", "o1")]});
        for _ in 0..2 {
            let (status, text) = rt.block_on(api.batch(&ingest, batch.clone()));
            assert_eq!(status, StatusCode::OK, "{text}");
        }
        let (status, text) =
            rt.block_on(api.call("GET", "/v1/campaigns/welcome/pending", Some(&admin), None));
        assert_eq!(status, StatusCode::OK, "{text}");
        let pending: Vec<Value> = serde_json::from_str(&text).expect("json");
        assert_eq!(pending.len(), 2, "both steps of c1, once: {text}");
        assert!(pending.iter().all(|p| p["customer_id"] == "c1"), "{text}");

        let ticked = api.cli("shop", &["campaign", "tick"]);
        assert!(
            ticked.starts_with("1 queued steps decided"),
            "step 1 is due at once: {ticked}"
        );
        let mut store = siyu_store::open(&api.db).expect("store");
        let tenant = store.tenant("shop").expect("tenant");
        let now = Timestamp::now();
        let id = store.campaigns(&tenant).expect("campaigns")[0].id;
        assert_eq!(
            outbox_ids(store.as_mut(), &tenant),
            vec![format!("{id}.1.c1")]
        );
        let again = campaigns::tick(store.as_mut(), &tenant, now).expect("tick");
        assert_eq!(again.steps, 0, "a decided step leaves the queue");

        // c1 leaves the segment; step 2 comes due three days later.
        let (status, text) =
            rt.block_on(api.call("DELETE", "/v1/customers/c1/tags/club", Some(&admin), None));
        assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
        let later = now + jiff::SignedDuration::from_hours(73);
        let ticked = campaigns::tick(store.as_mut(), &tenant, later).expect("tick");
        assert_eq!(ticked.steps, 1);
        let got = decided(store.as_mut(), &tenant, "welcome");
        assert_eq!(got[&(1, "c1".into())], ("send".into(), "message".into()));
        assert_eq!(got[&(2, "c1".into())], ("held".into(), "left".into()));
        assert_eq!(
            outbox_ids(store.as_mut(), &tenant).len(),
            1,
            "step 2 not sent"
        );
        assert!(
            campaigns::pending(store.as_mut(), &tenant, "welcome", 10)
                .expect("pending")
                .is_empty()
        );
    }
}

/// With half held out, each customer is in the holdout on both steps or on neither.
#[test]
fn a_customer_held_out_on_one_step_is_held_out_on_every_step() {
    let rt = runtime();
    for api in Api::on_each_backend("trigger_holdout") {
        let admin = api.token("shop", Role::Admin);
        let ingest = api.token("shop", Role::Ingest);
        rt.block_on(api.call(
            "POST",
            "/v1/segments",
            Some(&admin),
            body(json!({"name": "club", "rule": "has_tag(\"club\")"})),
        ));
        let (status, text) = rt.block_on(api.call(
            "POST",
            "/v1/campaigns",
            Some(&admin),
            body(
                json!({"name": "care", "on_enter": "club", "steps": ["0", "1h"],
                        "message": "关怀", "holdout": 50, "quiet_hours": "none"}),
            ),
        ));
        assert_eq!(status, StatusCode::CREATED, "{text}");
        // 450 in one batch: more than one statement's rows of the queue.
        let items: Vec<Value> = (0..450)
            .map(|i| tag(&format!("c{i:03}"), &format!("m{i}")))
            .collect();
        let (status, text) = rt.block_on(api.batch(&ingest, json!({ "batch": items })));
        assert_eq!(status, StatusCode::OK, "{text}");

        let mut store = siyu_store::open(&api.db).expect("store");
        let tenant = store.tenant("shop").expect("tenant");
        let now = Timestamp::now();
        campaigns::tick(store.as_mut(), &tenant, now).expect("tick");
        let later = now + jiff::SignedDuration::from_hours(2);
        let ticked = campaigns::tick(store.as_mut(), &tenant, later).expect("tick");
        assert_eq!(ticked.steps, 450);
        let got = decided(store.as_mut(), &tenant, "care");
        let held_out = |run: u32| -> Vec<String> {
            got.iter()
                .filter(|((r, _), (o, _))| *r == run && o == "holdout")
                .map(|((_, c), _)| c.clone())
                .collect()
        };
        assert!(!held_out(1).is_empty() && held_out(1).len() < 450);
        assert_eq!(held_out(1), held_out(2));
        assert_eq!(got.len(), 900);
    }
}

fn queue_in_the_entrys_transaction(store: &mut dyn Store, tenant: &Tenant) {
    assert!(
        store
            .create_campaign(
                tenant,
                "sop",
                "{}",
                "key",
                "test",
                Timestamp::now(),
                &[NewTrigger {
                    step: 1,
                    kind: "level".into(),
                    name: "stage:first_purchase".into(),
                    delay_secs: 86_400,
                }],
            )
            .expect("campaign")
    );
    let change = MemberChange {
        kind: RuleKind::Level,
        name: "stage:first_purchase".into(),
        customer_id: siyu_core::CustomerId::parse("c1").expect("id"),
        change: Change::Entered,
    };
    let at = Timestamp::from_second(Timestamp::now().as_second()).expect("second");
    {
        // A write that dies before its commit queues nothing.
        let mut tx = store.begin_pool(tenant).expect("begin");
        tx.apply_changes(std::slice::from_ref(&change), at, "test")
            .expect("apply");
    }
    assert!(
        store
            .due_steps(tenant, None, None, 10)
            .expect("due")
            .is_empty()
    );
    let mut tx = store.begin_pool(tenant).expect("begin");
    tx.apply_changes(std::slice::from_ref(&change), at, "test")
        .expect("apply");
    tx.commit().expect("commit");
    let due = store.due_steps(tenant, None, None, 10).expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].due_at, at + jiff::SignedDuration::from_hours(24));
    assert!(
        store
            .due_steps(tenant, None, Some(at), 10)
            .expect("due")
            .is_empty(),
        "not due before its delay"
    );
}

#[test]
fn a_step_is_queued_in_the_transaction_that_records_the_entry_on_sqlite() {
    let mut store = siyu_store::open(":memory:").expect("store");
    let tenant = store.tenant("shop").expect("tenant");
    queue_in_the_entrys_transaction(store.as_mut(), &tenant);
}

#[test]
fn a_step_is_queued_in_the_transaction_that_records_the_entry_on_postgres() {
    if let Some((mut store, tenant)) = common::postgres_tenant("triggers") {
        queue_in_the_entrys_transaction(store.as_mut(), &tenant);
    }
}

fn http_post(addr: &str, path: &str, token: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    answer
}

/// Under `siyu serve`, a batch that makes a customer enter the segment of a campaign made
/// with the CLI's flags has the zero-delay step's send in the outbox with no other
/// command (the server's ticker decides it); the later step stays queued.
#[test]
fn under_serve_a_batch_entering_a_segment_puts_the_first_steps_send_in_the_outbox() {
    let rt = runtime();
    for api in Api::on_each_backend("trigger_serve") {
        let admin = api.token("shop", Role::Admin);
        let ingest = api.token("shop", Role::Ingest);
        rt.block_on(api.call(
            "POST",
            "/v1/segments",
            Some(&admin),
            body(json!({"name": "club", "rule": "has_tag(\"club\")"})),
        ));
        rt.block_on(api.call(
            "POST",
            "/v1/webhooks",
            Some(&admin),
            body(json!({"name": "bridge", "url": "http://127.0.0.1:9/hook"})),
        ));
        api.cli(
            "shop",
            &[
                "campaign",
                "create",
                "welcome",
                "--on-enter",
                "club",
                "--step",
                "0",
                "--step",
                "3d:general",
                "--message",
                "欢迎",
                "--channel",
                "webhook:bridge",
                "--holdout",
                "0",
                "--quiet-hours",
                "none",
            ],
        );
        let shown = api.cli("shop", &["campaign", "show", "welcome"]);
        assert!(
            shown.contains("triggered: on entering segment club"),
            "{shown}"
        );
        assert!(shown.contains("step 2: 3d after, tier general"), "{shown}");

        let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_siyu"))
            .args(["--db", &api.db, "serve", "--addr", "127.0.0.1:0"])
            .env_remove("SIYU_DB")
            .env_remove("SIYU_TENANT")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("siyu serve");
        let (addr, _) = common::listening_address(&mut server);
        let batch = json!({"batch": [tag("c1", "m1")]}).to_string();
        let answer = http_post(&addr, "/v1/batch", &ingest, &batch);
        let mut store = siyu_store::open(&api.db).expect("store");
        let tenant = store.tenant("shop").expect("tenant");
        // Polled, not timed: the figure is `siyu bench triggers`'s.
        let mut sent = Vec::new();
        for _ in 0..3000 {
            sent = outbox_ids(store.as_mut(), &tenant);
            if !sent.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = server.kill();
        let _ = server.wait();
        assert!(answer.contains(r#""accepted":1"#), "{answer}");
        assert_eq!(sent.len(), 1, "the first step's send");
        let pending = api.cli("shop", &["campaign", "pending", "welcome"]);
        assert!(pending.contains("c1"), "step 2 still queued: {pending}");
    }
}

/// An event of the trigger's type queues the steps in the batch's transaction, once
/// however often the batch is retried; an event of another type starts nothing.
#[test]
fn an_event_of_the_triggers_type_queues_its_steps_once() {
    let rt = runtime();
    for api in Api::on_each_backend("trigger_event") {
        let admin = api.token("shop", Role::Admin);
        let ingest = api.token("shop", Role::Ingest);
        let (status, text) = rt.block_on(api.call(
            "POST",
            "/v1/campaigns",
            Some(&admin),
            body(
                json!({"name": "cart", "on_event": "cart_abandoned", "steps": ["1h"],
                        "message": "还在考虑吗", "holdout": 0, "quiet_hours": "none"}),
            ),
        ));
        assert_eq!(status, StatusCode::CREATED, "{text}");
        let event = |m: &str, c: &str, kind: &str| {
            json!({"type": "track", "message_id": m, "customer_id": c,
                   "timestamp": "2025-05-02", "event": kind})
        };
        let batch = json!({"batch": [event("e1", "c1", "cart_abandoned"),
                                      event("e2", "c2", "page_view")]});
        for _ in 0..2 {
            let (status, text) = rt.block_on(api.batch(&ingest, batch.clone()));
            assert_eq!(status, StatusCode::OK, "{text}");
        }
        let mut store = siyu_store::open(&api.db).expect("store");
        let tenant = store.tenant("shop").expect("tenant");
        let queued = campaigns::pending(store.as_mut(), &tenant, "cart", 10).expect("pending");
        assert_eq!(queued.len(), 1, "{queued:?}");
        assert_eq!(queued[0].customer_id, "c1");
        // c3's event queues a step too; erasing c3 drops it, their id kept nowhere.
        rt.block_on(api.batch(
            &ingest,
            json!({"batch": [event("e3", "c3", "cart_abandoned")]}),
        ));
        assert_eq!(
            campaigns::pending(store.as_mut(), &tenant, "cart", 10)
                .expect("pending")
                .len(),
            2
        );
        siyu::service::privacy::erase(
            store.as_mut(),
            &tenant,
            &siyu_core::CustomerId::parse("c3").expect("id"),
            "test",
        )
        .expect("erase");
        assert_eq!(
            campaigns::pending(store.as_mut(), &tenant, "cart", 10)
                .expect("pending")
                .len(),
            1,
            "the erased customer's step is dropped"
        );
        let now = Timestamp::now();
        assert_eq!(
            campaigns::tick(store.as_mut(), &tenant, now)
                .expect("tick")
                .steps,
            0
        );
        let later = now + jiff::SignedDuration::from_hours(2);
        // A paused campaign's due steps wait, queued, until it resumes.
        campaigns::set_status(store.as_mut(), &tenant, "cart", "paused").expect("pause");
        assert!(store.tenants_with_due_steps(later).expect("due").is_empty());
        assert_eq!(
            campaigns::tick(store.as_mut(), &tenant, later)
                .expect("tick")
                .steps,
            0
        );
        campaigns::set_status(store.as_mut(), &tenant, "cart", "active").expect("resume");
        assert_eq!(
            store.tenants_with_due_steps(later).expect("due"),
            vec![tenant.id]
        );
        assert!(store.tenants_with_due_steps(now).expect("due").is_empty());
        assert_eq!(
            campaigns::tick(store.as_mut(), &tenant, later)
                .expect("tick")
                .steps,
            1
        );
        let got = decided(store.as_mut(), &tenant, "cart");
        assert_eq!(got[&(1, "c1".into())], ("send".into(), "message".into()));
    }
}
