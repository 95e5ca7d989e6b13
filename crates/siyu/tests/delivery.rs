//! Delivery end to end, on SQLite and (with `SIYU_TEST_POSTGRES`) PostgreSQL: a webhook
//! receiver on loopback that fails the first attempt of every send and answers some too
//! late gets every send, each processed once after deduplicating by send id; sends that
//! always fail are dead after the endpoint's attempts; a `siyu serve` killed with SIGKILL
//! mid-delivery and started again loses none; an erased customer's pending send is never
//! delivered; a send enqueued in a transaction that does not commit does not exist.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use siyu::service::delivery::{self, Limits};
use siyu::service::dispatch::{Dispatcher, Tally};
use siyu_core::{CustomerId, Timestamp};
use siyu_store::{NewDelivery, SendState, Store, StoreError, Tenant, WebhookEndpoint};

const SECRET: &str = "test-secret-0123456789";

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    /// Requests per send id (every attempt that reached it).
    requests: HashMap<String, u32>,
    /// Send ids processed: the receiver's work, done once per send id (deduplicated).
    processed: HashSet<String>,
    /// Requests for a send id processed already: what deduplication dropped.
    duplicates: u32,
    bad_signatures: u32,
    /// Handlers still at work (a late answer sleeping).
    active: u32,
    /// The most at work at once.
    most_active: u32,
    /// When each request came.
    arrivals: Vec<Instant>,
}

#[derive(Clone, Copy)]
enum Behaviour {
    /// 500 on a send's first request; on its second, a send whose number is a multiple
    /// of 4 is answered after `late_ms` (past the endpoint's timeout) though processed.
    Flaky { late_ms: u64 },
    /// 503, always.
    Broken,
    /// Processed and answered 200 after `ms`.
    Slow { ms: u64 },
}

#[derive(Clone)]
struct Receiver {
    seen: Arc<Mutex<Seen>>,
    behaviour: Behaviour,
}

impl Receiver {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().expect("lock")
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Counts a handler at work until it ends, answered or dropped (its client gone).
struct Active(Receiver);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.seen().active -= 1;
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let body = String::from_utf8_lossy(&body).into_owned();
    let send_id = header(&headers, delivery::SEND_ID_HEADER).to_owned();
    let timestamp: i64 = header(&headers, delivery::TIMESTAMP_HEADER)
        .parse()
        .unwrap_or(0);
    let signed = delivery::verify(
        SECRET,
        timestamp,
        &body,
        header(&headers, delivery::SIGNATURE_HEADER),
        Timestamp::now().as_second(),
    );
    let n = {
        let mut seen = r.seen();
        if !signed {
            seen.bad_signatures += 1;
        }
        let n = seen.requests.entry(send_id.clone()).or_default();
        *n += 1;
        let n = *n;
        seen.active += 1;
        seen.most_active = seen.most_active.max(seen.active);
        seen.arrivals.push(Instant::now());
        n
    };
    let _active = Active(r.clone());
    let number: usize = send_id
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let process = |r: &Receiver| {
        let mut seen = r.seen();
        if !seen.processed.insert(send_id.clone()) {
            seen.duplicates += 1;
        }
    };
    match r.behaviour {
        Behaviour::Broken => StatusCode::SERVICE_UNAVAILABLE,
        Behaviour::Flaky { .. } if n == 1 => StatusCode::INTERNAL_SERVER_ERROR,
        Behaviour::Flaky { late_ms } if n == 2 && number.is_multiple_of(4) => {
            // The work is done; the answer comes after the sender gave up.
            process(&r);
            tokio::time::sleep(Duration::from_millis(late_ms)).await;
            StatusCode::OK
        }
        Behaviour::Flaky { .. } => {
            process(&r);
            StatusCode::OK
        }
        Behaviour::Slow { ms } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            process(&r);
            StatusCode::OK
        }
    }
}

/// A receiver on loopback, on `runtime`: its address and what it saw.
fn receiver(runtime: &tokio::runtime::Runtime, behaviour: Behaviour) -> (SocketAddr, Receiver) {
    let r = Receiver {
        seen: Arc::default(),
        behaviour,
    };
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("listen");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(r.clone());
    runtime.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, r)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn add(
    store: &mut dyn Store,
    tenant: &Tenant,
    name: &str,
    addr: SocketAddr,
    limits: Limits,
) -> WebhookEndpoint {
    delivery::add_webhook(
        store,
        tenant,
        name,
        &format!("http://{addr}/hook"),
        Some(SECRET),
        &limits,
    )
    .expect("add webhook")
}

fn sends(endpoint: &str, prefix: &str, n: usize) -> Vec<NewDelivery> {
    (0..n)
        .map(|i| NewDelivery {
            send_id: format!("{prefix}-{i}"),
            endpoint: endpoint.to_owned(),
            payload: format!(r#"{{"type":"campaign_send","customer_id":"c{i}","coupon":"Q{i}"}}"#),
            not_before: Timestamp::now(),
        })
        .collect()
}

fn state_counts(store: &mut dyn Store, tenant: &Tenant) -> HashMap<(String, SendState), u64> {
    store
        .outbox_counts(tenant)
        .expect("counts")
        .into_iter()
        .map(|c| ((c.endpoint, c.state), c.sends))
        .collect()
}

fn pending(store: &mut dyn Store, tenant: &Tenant) -> u64 {
    state_counts(store, tenant)
        .iter()
        .filter(|((_, s), _)| *s == SendState::Pending)
        .map(|(_, n)| n)
        .sum()
}

/// Runs the dispatcher in this process until no send of the tenant is pending.
fn dispatch_until_settled(
    store: &mut dyn Store,
    tenant: &Tenant,
    runtime: &tokio::runtime::Runtime,
) -> Tally {
    let mut dispatcher = Dispatcher::new(runtime.handle().clone(), Some(tenant.name.clone()));
    let began = Instant::now();
    loop {
        let busy = dispatcher.round(store).expect("round");
        if !busy && pending(store, tenant) == 0 {
            return dispatcher.tally;
        }
        // A guard against hanging, not a measure of speed.
        assert!(
            began.elapsed() < Duration::from_secs(300),
            "sends still pending: {:?}",
            state_counts(store, tenant)
        );
    }
}

/// Waits until the receiver's handlers have all answered (late answers sleep).
fn quiet(r: &Receiver) {
    while r.seen().active > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn every_send_arrives_once_after_dedupe(store: &mut dyn Store, tenant: &Tenant) {
    let runtime = runtime();
    let (flaky_at, flaky) = receiver(&runtime, Behaviour::Flaky { late_ms: 700 });
    let (broken_at, broken) = receiver(&runtime, Behaviour::Broken);
    let quick = |attempts| Limits {
        max_attempts: Some(attempts),
        max_in_flight: Some(8),
        timeout_ms: Some(300),
        backoff_ms: Some(1),
        ..Limits::default()
    };
    add(store, tenant, "crm", flaky_at, quick(5));
    add(store, tenant, "broken", broken_at, quick(3));
    let n = 60;
    assert_eq!(
        store
            .enqueue(tenant, &sends("crm", "s", n), Timestamp::now())
            .expect("enqueue"),
        n as u64
    );
    store
        .enqueue(tenant, &sends("broken", "b", 5), Timestamp::now())
        .expect("enqueue");
    // The same send ids again: nothing new.
    assert_eq!(
        store
            .enqueue(tenant, &sends("crm", "s", n), Timestamp::now())
            .expect("enqueue"),
        0
    );

    let tally = dispatch_until_settled(store, tenant, &runtime);
    quiet(&flaky);

    let seen = flaky.seen();
    let expected: HashSet<String> = (0..n).map(|i| format!("s-{i}")).collect();
    assert_eq!(seen.processed, expected, "every send processed once");
    assert_eq!(seen.bad_signatures, 0);
    // Every first attempt failed; the late answers were sent again and deduplicated.
    assert!(
        seen.requests.values().all(|&r| r >= 2),
        "{:?}",
        seen.requests
    );
    let late = (0..n).filter(|i: &usize| i.is_multiple_of(4)).count();
    assert_eq!(
        seen.duplicates as usize, late,
        "each late answer re-sent once"
    );
    let counts = state_counts(store, tenant);
    assert_eq!(
        counts.get(&("crm".to_owned(), SendState::Delivered)),
        Some(&(n as u64))
    );
    assert_eq!(tally.delivered, n as u64);

    // Dead after exactly the endpoint's three attempts.
    assert_eq!(
        counts.get(&("broken".to_owned(), SendState::Dead)),
        Some(&5)
    );
    let broken_seen = broken.seen();
    assert!(
        broken_seen.requests.values().all(|&r| r == 3) && broken_seen.requests.len() == 5,
        "{:?}",
        broken_seen.requests
    );
    let dead = store
        .outbox_rows(tenant, Some(SendState::Dead), 10)
        .expect("rows");
    assert!(
        dead.iter().all(|r| r.attempts == 3
            && r.last_error.as_deref() == Some("answered 503 Service Unavailable"))
    );
}

#[test]
fn every_send_arrives_once_after_dedupe_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = siyu_store::open(dir.path().join("d.db").to_str().expect("path")).expect("db");
    let tenant = store.tenant("shop").expect("tenant");
    every_send_arrives_once_after_dedupe(store.as_mut(), &tenant);
}

#[test]
fn every_send_arrives_once_after_dedupe_on_postgres() {
    let Some((mut store, tenant)) = common::postgres_tenant("delivery") else {
        return;
    };
    every_send_arrives_once_after_dedupe(store.as_mut(), &tenant);
}

/// The seam with campaigns: sends enqueued in a write transaction exist only once it
/// commits; an unknown endpoint is refused.
fn sends_commit_with_their_transaction(store: &mut dyn Store, tenant: &Tenant) {
    let runtime = runtime();
    let (addr, _r) = receiver(&runtime, Behaviour::Slow { ms: 0 });
    add(store, tenant, "crm", addr, Limits::default());
    {
        let mut tx = store.begin_privacy(tenant).expect("tx");
        tx.enqueue_deliveries(&sends("crm", "rolled-back", 3), Timestamp::now())
            .expect("enqueue");
        // Dropped without commit.
    }
    assert!(state_counts(store, tenant).is_empty());
    let mut tx = store.begin_privacy(tenant).expect("tx");
    assert_eq!(
        tx.enqueue_deliveries(&sends("crm", "kept", 3), Timestamp::now())
            .expect("enqueue"),
        3
    );
    assert!(matches!(
        tx.enqueue_deliveries(&sends("nowhere", "x", 1), Timestamp::now()),
        Err(StoreError::NotFound(_))
    ));
    drop(tx);
    let mut tx = store.begin_privacy(tenant).expect("tx");
    tx.enqueue_deliveries(&sends("crm", "kept", 3), Timestamp::now())
        .expect("enqueue");
    tx.commit().expect("commit");
    assert_eq!(
        state_counts(store, tenant).get(&("crm".to_owned(), SendState::Pending)),
        Some(&3)
    );
}

#[test]
fn sends_commit_with_their_transaction_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = siyu_store::open(dir.path().join("d.db").to_str().expect("path")).expect("db");
    let tenant = store.tenant("shop").expect("tenant");
    sends_commit_with_their_transaction(store.as_mut(), &tenant);
}

#[test]
fn sends_commit_with_their_transaction_on_postgres() {
    let Some((mut store, tenant)) = common::postgres_tenant("delivery-tx") else {
        return;
    };
    sends_commit_with_their_transaction(store.as_mut(), &tenant);
}

/// A pending send naming a customer who is erased before it goes is cancelled, never
/// delivered; another customer's is.
fn an_erased_customers_send_is_never_delivered(store: &mut dyn Store, tenant: &Tenant) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("c.csv");
    std::fs::write(
        &path,
        "customer_id,name,phone\nc1,张三,13800000001\nc2,李四,13800000002\n",
    )
    .expect("write");
    siyu::service::import::import_file(
        store,
        tenant,
        siyu_core::import::Kind::Customers,
        &path,
        siyu::service::import::ImportOptions::default(),
    )
    .expect("import");
    let runtime = runtime();
    let (addr, r) = receiver(&runtime, Behaviour::Slow { ms: 0 });
    add(store, tenant, "crm", addr, Limits::default());
    store
        .enqueue(tenant, &sends("crm", "s", 3), Timestamp::now())
        .expect("enqueue");
    siyu::service::privacy::erase(store, tenant, &CustomerId::parse("c1").expect("id"), "dpo")
        .expect("erase");
    dispatch_until_settled(store, tenant, &runtime);
    let processed = r.seen().processed.clone();
    assert_eq!(
        processed,
        HashSet::from(["s-0".to_owned(), "s-2".to_owned()]),
        "s-1 named c1"
    );
    let cancelled = store
        .outbox_rows(tenant, Some(SendState::Cancelled), 10)
        .expect("rows");
    assert_eq!(cancelled.len(), 1);
    assert_eq!(cancelled[0].send_id, "s-1");
}

#[test]
fn an_erased_customers_send_is_never_delivered_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = siyu_store::open(dir.path().join("d.db").to_str().expect("path")).expect("db");
    let tenant = store.tenant("shop").expect("tenant");
    an_erased_customers_send_is_never_delivered(store.as_mut(), &tenant);
}

#[test]
fn an_erased_customers_send_is_never_delivered_on_postgres() {
    let Some((mut store, tenant)) = common::postgres_tenant("delivery-erase") else {
        return;
    };
    an_erased_customers_send_is_never_delivered(store.as_mut(), &tenant);
}

/// An endpoint's limits hold: never more requests under way than `max_in_flight`, and
/// never more begun in a second than `max_per_second` and its burst (a second's worth).
fn limits_hold(store: &mut dyn Store, tenant: &Tenant) {
    let runtime = runtime();
    let (addr, r) = receiver(&runtime, Behaviour::Slow { ms: 30 });
    let limits = Limits {
        max_in_flight: Some(3),
        max_per_second: Some(20),
        ..Limits::default()
    };
    add(store, tenant, "crm", addr, limits);
    store
        .enqueue(tenant, &sends("crm", "s", 60), Timestamp::now())
        .expect("enqueue");
    dispatch_until_settled(store, tenant, &runtime);
    let seen = r.seen();
    assert_eq!(seen.processed.len(), 60);
    assert!(seen.most_active <= 3, "{} at once", seen.most_active);
    let arrivals = &seen.arrivals;
    let busiest = arrivals
        .iter()
        .map(|&from| {
            arrivals
                .iter()
                .filter(|&&t| t >= from && t < from + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(busiest <= 40, "{busiest} requests begun within a second");
}

#[test]
fn limits_hold_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = siyu_store::open(dir.path().join("d.db").to_str().expect("path")).expect("db");
    let tenant = store.tenant("shop").expect("tenant");
    limits_hold(store.as_mut(), &tenant);
}

#[test]
fn limits_hold_on_postgres() {
    let Some((mut store, tenant)) = common::postgres_tenant("delivery-limits") else {
        return;
    };
    limits_hold(store.as_mut(), &tenant);
}

/// `siyu --db DB --tenant T serve` on port 0: the child and its address.
fn serve(db: &str, tenant: &str) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_siyu"))
        .args([
            "--db",
            db,
            "--tenant",
            tenant,
            "serve",
            "--addr",
            "127.0.0.1:0",
        ])
        .env_remove("SIYU_DB")
        .env_remove("SIYU_TENANT")
        .stdout(Stdio::piped())
        .spawn()
        .expect("siyu serve");
    common::listening_address(&mut child);
    child
}

fn cli(db: &str, tenant: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_siyu"))
        .args(["--db", db, "--tenant", tenant])
        .args(args)
        .env_remove("SIYU_DB")
        .env_remove("SIYU_TENANT")
        .output()
        .expect("siyu");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        common::text(&out.stderr)
    );
    common::text(&out.stdout)
}

/// `siyu serve` delivering to a slow receiver is killed with SIGKILL while requests are
/// under way, and started again: every send arrives at least once, each once after
/// deduplication, and the outbox ends with every send delivered.
fn none_lost_after_a_kill(db: &str) {
    let tenant = "shop";
    let runtime = runtime();
    let (addr, r) = receiver(&runtime, Behaviour::Slow { ms: 150 });
    cli(
        db,
        tenant,
        &[
            "webhook",
            "add",
            "crm",
            "--url",
            &format!("http://{addr}/hook"),
            "--secret",
            SECRET,
            "--max-in-flight",
            "4",
            "--timeout-ms",
            "1000",
            "--backoff-ms",
            "10",
        ],
    );
    let n = 40;
    cli(
        db,
        tenant,
        &["webhook", "test", "crm", "--count", &n.to_string()],
    );
    let mut store = siyu_store::open(db).expect("db");
    let shop = store.tenant(tenant).expect("tenant");
    let ids: HashSet<String> = store
        .outbox_rows(&shop, None, 1000)
        .expect("rows")
        .into_iter()
        .map(|r| r.send_id)
        .collect();
    assert_eq!(ids.len(), n);

    let mut server = serve(db, tenant);
    // Killed once some sends were processed and others are under way.
    while r.seen().processed.len() < 8 {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill().expect("SIGKILL");
    server.wait().expect("wait");
    let at_kill = r.seen().processed.len();
    assert!(at_kill < n, "the kill came before the end ({at_kill})");

    let mut server = serve(db, tenant);
    let began = Instant::now();
    while pending(store.as_mut(), &shop) > 0 {
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "sends still pending after the restart"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = server.kill();
    let _ = server.wait();
    quiet(&r);
    let seen = r.seen();
    assert_eq!(seen.processed, ids, "every send arrived");
    assert_eq!(seen.bad_signatures, 0);
    assert_eq!(
        state_counts(store.as_mut(), &shop).get(&("crm".to_owned(), SendState::Delivered)),
        Some(&(n as u64))
    );
    // The requests under way at the kill were sent again with the same send id.
    assert!(
        seen.requests.values().any(|&c| c > 1),
        "no send was under way at the kill: {:?}",
        seen.requests
    );
}

#[test]
fn none_lost_after_a_kill_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    none_lost_after_a_kill(dir.path().join("k.db").to_str().expect("path"));
}

#[test]
fn none_lost_after_a_kill_on_postgres() {
    let Ok(url) = std::env::var("SIYU_TEST_POSTGRES") else {
        return;
    };
    let schema = format!("siyu_delivery_kill_{}", std::process::id());
    let db = siyu_store::PgStore::schema_url(&url, &schema).expect("schema");
    none_lost_after_a_kill(&db);
    let _ = siyu_store::PgStore::drop_schema(&url, &schema);
}

/// `POST /v1/webhooks` adds an endpoint (the secret shown once), `GET` lists them with
/// their sends by state and never a secret; bad bodies and names taken are refused with
/// their codes; only an admin may.
#[test]
fn the_api_adds_and_lists_webhooks() {
    use siyu_core::access::Role;
    let runtime = runtime();
    for api in common::api::Api::on_each_backend("webhooks") {
        let admin = api.token("shop", Role::Admin);
        let viewer = api.token("shop", Role::Viewer);
        let post = |token: &str, body: &str| {
            runtime.block_on(api.call("POST", "/v1/webhooks", Some(token), Some(body.to_owned())))
        };
        let (status, text) = post(
            &admin,
            r#"{"name":"crm","url":"http://127.0.0.1:9/hook","max_attempts":3}"#,
        );
        assert_eq!(status, StatusCode::CREATED, "{text}");
        let created: serde_json::Value = serde_json::from_str(&text).expect("json");
        let secret = created["secret"].as_str().expect("secret");
        assert!(
            secret.starts_with("whsec_") && secret.len() == 70,
            "{secret}"
        );
        assert_eq!(created["max_attempts"], 3);

        let (status, text) = post(&admin, r#"{"name":"crm","url":"http://127.0.0.1:9/"}"#);
        assert_eq!(
            (status, text.contains(r#""code":"webhook_exists""#)),
            (StatusCode::CONFLICT, true),
            "{text}"
        );
        for bad in [
            r#"{"name":"x","url":"https://crm.example.com/"}"#,
            r#"{"name":"x y","url":"http://127.0.0.1:9/"}"#,
            r#"{"name":"x","url":"http://127.0.0.1:9/","max_in_flight":0}"#,
            r#"{"name":"x","url":"http://127.0.0.1:9/","secret":"short"}"#,
            r#"{"name":"x","url":"http://127.0.0.1:9/","colour":"red"}"#,
        ] {
            let (status, text) = post(&admin, bad);
            assert_eq!(
                (status, text.contains(r#""code":"invalid_webhook""#)),
                (StatusCode::BAD_REQUEST, true),
                "{bad}: {text}"
            );
        }
        let (status, _) = post(&viewer, r#"{"name":"v","url":"http://127.0.0.1:9/"}"#);
        assert_eq!(status, StatusCode::FORBIDDEN);

        let mut store = siyu_store::open(&api.db).expect("db");
        let tenant = store.tenant("shop").expect("tenant");
        store
            .enqueue(&tenant, &sends("crm", "s", 2), Timestamp::now())
            .expect("enqueue");
        let (status, text) = runtime.block_on(api.call("GET", "/v1/webhooks", Some(&admin), None));
        assert_eq!(status, StatusCode::OK);
        assert!(!text.contains(secret) && !text.contains("secret"), "{text}");
        let list: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(list[0]["name"], "crm");
        assert_eq!(
            list[0]["outbox"],
            serde_json::json!({"pending": 2, "delivered": 0, "dead": 0, "cancelled": 0})
        );
    }
}

/// `siyu serve` stopped with SIGTERM while a delivery is under way lets it finish and
/// records it before exiting: the send is delivered, with no server running afterwards.
#[test]
fn a_stopped_server_lets_the_delivery_under_way_finish() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("g.db");
    let db = db.to_str().expect("path");
    let runtime = runtime();
    let (addr, r) = receiver(&runtime, Behaviour::Slow { ms: 1500 });
    cli(
        db,
        "shop",
        &[
            "webhook",
            "add",
            "crm",
            "--url",
            &format!("http://{addr}/hook"),
            "--secret",
            SECRET,
            "--timeout-ms",
            "10000",
        ],
    );
    cli(db, "shop", &["webhook", "test", "crm"]);
    let mut server = serve(db, "shop");
    while r.seen().requests.is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let term = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let status = server.wait().expect("wait");
    assert!(status.success(), "{status}");
    assert_eq!(r.seen().processed.len(), 1);
    let mut store = siyu_store::open(db).expect("db");
    let shop = store.tenant("shop").expect("tenant");
    assert_eq!(
        state_counts(store.as_mut(), &shop).get(&("crm".to_owned(), SendState::Delivered)),
        Some(&1)
    );
}
