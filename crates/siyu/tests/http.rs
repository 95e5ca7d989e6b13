//! The HTTP API driven in process (the router, no socket) with snapshots of what a client
//! sees; tenants kept apart on every route; random JSON never answered with a 5xx; and
//! `siyu serve` end to end on port 0.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use insta::assert_snapshot;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

use common::api::{Api, runtime};
use siyu::http::{RateLimit, hash_token, router};
use siyu_core::access::Role;

fn order(message: &str, customer: &str, order: &str, amount: &str) -> Value {
    json!({"type": "order", "message_id": message, "customer_id": customer,
           "timestamp": "2025-05-01 10:00:00", "order_id": order, "amount": amount})
}

#[test]
fn a_batch_answers_each_item_and_never_applies_a_message_twice() {
    runtime().block_on(async {
        let api = Api::new(RateLimit::default());
        let ingest = api.token("shop", Role::Ingest);
        let body = json!({"batch": [
            {"type": "identify", "message_id": "m1", "customer_id": "c1", "traits": {"name": "王小明", "channel": "抖音", "tags": ["tea"]}},
            order("m2", "c1", "o1", "128.50"),
            {"type": "track", "message_id": "m3", "customer_id": "c2", "timestamp": "2025-05-02", "event": "post_like", "properties": {"post": 7}},
            order("m2", "c1", "o1", "1.00"),
            order("m4", "c1", "o2", "12.345"),
            {"type": "page", "message_id": "m5", "customer_id": "c1"}
        ]});
        let (status, text) = api.batch(&ingest, body).await;
        assert_snapshot!(status, @"200 OK");
        assert_snapshot!(text, @r#"{"accepted":3,"duplicates":1,"rejected":2,"results":[{"status":"accepted","message_id":"m1"},{"status":"accepted","message_id":"m2"},{"status":"accepted","message_id":"m3"},{"status":"duplicate","message_id":"m2"},{"status":"rejected","message_id":"m4","reason":"amount: '12.345' has more than two decimals"},{"status":"rejected","message_id":"m5","reason":"type: 'page' is not \"identify\", \"track\", \"order\" or \"alias\""}]}"#);
        let (_, again) = api.batch(&ingest, json!({"batch": [order("m2", "c1", "o1", "999")]})).await;
        assert!(again.contains(r#""duplicates":1"#), "{again}");

        let viewer = api.token("shop", Role::Viewer);
        let (status, text) = api.call("GET", "/v1/customers/c1", Some(&viewer), None).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let view: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(view["customer"]["name"], "王小明");
        assert_eq!(view["customer"]["channel"], "douyin");
        assert_eq!(view["profile"]["net_spend"], 12850, "the duplicate was not applied");
        assert_eq!(view["recent_orders"][0]["order_id"], "o1");
        assert_eq!(view["tags"][0]["tag"], "tea");
        let (_, page) = api.call("GET", "/v1/customers?limit=1", Some(&viewer), None).await;
        let page: Value = serde_json::from_str(&page).expect("json");
        assert_eq!(page["customers"][0]["customer_id"], "c1");
        assert_eq!(page["next"], "c1");
        let (_, last) = api.call("GET", "/v1/customers?after=c1", Some(&viewer), None).await;
        assert!(last.contains(r#""next":null"#), "{last}");
    });
}

#[test]
fn bad_requests_get_a_4xx_with_a_stable_code() {
    runtime().block_on(async {
        let api = Api::new(RateLimit::default());
        let ingest = api.token("shop", Role::Ingest);
        let viewer = api.token("shop", Role::Viewer);

        let (status, text) = api.call("POST", "/v1/batch", None, Some("{}".into())).await;
        assert_snapshot!(format!("{status} {text}"), @r#"401 Unauthorized {"code":"unauthorized","message":"send Authorization: Bearer TOKEN"}"#);
        let (status, text) = api.call("GET", "/v1/customers", Some("siyu_nonsense"), None).await;
        assert_snapshot!(format!("{status} {text}"), @r#"401 Unauthorized {"code":"unauthorized","message":"unknown or revoked token"}"#);
        let (status, text) = api.batch(&viewer, json!({"batch": []})).await;
        assert_snapshot!(format!("{status} {text}"), @r#"403 Forbidden {"code":"forbidden","message":"a viewer token may not do this"}"#);
        let (status, _) = api.call("GET", "/v1/customers", Some(&ingest), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "an ingest token only posts batches");

        let (status, text) = api.call("POST", "/v1/batch", Some(&ingest), Some("{\"batch\": [1,".into())).await;
        assert_snapshot!(format!("{status} {text}"), @r#"400 Bad Request {"code":"malformed_json","message":"the body is not JSON: line 1, column 13: EOF while parsing a value at line 1 column 13"}"#);
        let (status, text) = api.batch(&ingest, json!({"batch": [], "extra": 1})).await;
        assert_snapshot!(format!("{status} {text}"), @r#"400 Bad Request {"code":"unknown_field","message":"unknown field 'extra' (the body holds only \"batch\")"}"#);
        let (status, text) = api.batch(&ingest, json!({"batch": {}})).await;
        assert_snapshot!(format!("{status} {text}"), @r#"400 Bad Request {"code":"invalid_batch","message":"batch: expected an array of items"}"#);
        let many: Vec<Value> = (0..1001).map(|i| order(&format!("m{i}"), "c1", &format!("o{i}"), "1")).collect();
        let (status, text) = api.batch(&ingest, json!({"batch": many})).await;
        assert_snapshot!(format!("{status} {text}"), @r#"413 Payload Too Large {"code":"batch_too_large","message":"1001 items; a batch holds at most 1000"}"#);
        let big = json!({"batch": [{"type": "track", "message_id": "m", "customer_id": "c", "timestamp": "2025-01-01", "event": "view", "properties": {"x": "y".repeat(40_000)}}]});
        let (status, text) = api.batch(&ingest, big).await;
        assert_snapshot!(format!("{status} {text}"), @r#"413 Payload Too Large {"code":"item_too_large","message":"item 0 is 40113 bytes; an item is at most 32768"}"#);
        let huge = format!("{{\"batch\": [\"{}\"]}}", "z".repeat(5 * 1024 * 1024));
        let (status, text) = api.call("POST", "/v1/batch", Some(&ingest), Some(huge)).await;
        assert_snapshot!(format!("{status} {text}"), @r#"413 Payload Too Large {"code":"payload_too_large","message":"the body is larger than 4194304 bytes"}"#);
        let (status, text) = api.call("GET", "/v1/customers?limit=0", Some(&viewer), None).await;
        assert_snapshot!(format!("{status} {text}"), @r#"400 Bad Request {"code":"invalid_query","message":"limit: from 1 to 500"}"#);
        let (status, text) = api.call("GET", "/v1/customers/nobody", Some(&viewer), None).await;
        assert_snapshot!(format!("{status} {text}"), @r#"404 Not Found {"code":"customer_not_found","message":"no customer nobody"}"#);
        let (status, text) = api.call("GET", "/v1/nothing", Some(&viewer), None).await;
        assert_snapshot!(format!("{status} {text}"), @r#"404 Not Found {"code":"not_found","message":"no such route (see /v1/openapi.json)"}"#);
        let (status, text) = api.call("DELETE", "/v1/batch", Some(&viewer), None).await;
        assert_snapshot!(format!("{status} {text}"), @r#"405 Method Not Allowed {"code":"method_not_allowed","message":"this route does not take that method"}"#);
    });
}

#[test]
fn a_token_sees_its_own_tenant_only_on_every_route() {
    runtime().block_on(async {
        let api = Api::new(RateLimit::default());
        let a_ingest = api.token("a", Role::Ingest);
        let b_ingest = api.token("b", Role::Ingest);
        let a_admin = api.token("a", Role::Admin);
        let b_admin = api.token("b", Role::Admin);
        api.batch(
            &a_ingest,
            json!({"batch": [order("m1", "shared", "o1", "10")]}),
        )
        .await;
        api.batch(
            &b_ingest,
            json!({"batch": [order("m1", "only_b", "o1", "99")]}),
        )
        .await;
        let (status, text) = api
            .call("GET", "/v1/customers/shared", Some(&b_admin), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
        let (_, a) = api.call("GET", "/v1/customers", Some(&a_admin), None).await;
        assert!(a.contains("shared") && !a.contains("only_b"), "{a}");
        let (_, b) = api.call("GET", "/v1/customers", Some(&b_admin), None).await;
        assert!(b.contains("only_b") && !b.contains("shared"), "{b}");
        // The same message id and order id in two tenants are two different things.
        let (_, view) = api
            .call("GET", "/v1/customers/only_b", Some(&b_admin), None)
            .await;
        let view: Value = serde_json::from_str(&view).expect("json");
        assert_eq!(view["profile"]["net_spend"], 9900);
        // Every documented route refuses another tenant's data or has none of it.
        let doc: Value =
            serde_json::from_str(&api.call("GET", "/v1/openapi.json", None, None).await.1)
                .expect("doc");
        for path in doc["paths"].as_object().expect("paths").keys() {
            let uri = path.replace("{id}", "shared");
            for method in doc["paths"][path].as_object().expect("methods").keys() {
                if method != "get" {
                    continue;
                }
                let (status, text) = api.call("GET", &uri, Some(&b_admin), None).await;
                assert!(
                    !text.contains("\"shared\"") || uri.contains("openapi"),
                    "{uri}: {status} {text}"
                );
            }
        }
    });
}

#[test]
fn a_token_past_its_rate_waits_with_retry_after() {
    runtime().block_on(async {
        let api = Api::new(RateLimit {
            per_second: 1.0,
            burst: 2.0,
        });
        let viewer = api.token("shop", Role::Viewer);
        for _ in 0..2 {
            let (status, _) = api.call("GET", "/v1/customers", Some(&viewer), None).await;
            assert_eq!(status, StatusCode::OK);
        }
        let request = Request::builder()
            .uri("/v1/customers")
            .header("authorization", format!("Bearer {viewer}"))
            .body(Body::empty())
            .expect("request");
        let response = router(Arc::clone(&api.state))
            .oneshot(request)
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()["retry-after"], "1");
    });
}

#[test]
fn the_openapi_document_is_kept_in_review() {
    let doc = siyu::http::openapi_document();
    insta::assert_json_snapshot!("openapi", doc);
}

#[test]
fn error_codes_in_docs_are_the_table() {
    use siyu::http::error::Code;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/errors.md");
    let table = Code::markdown();
    if std::env::var_os("SIYU_WRITE_DOCS").is_some() {
        std::fs::write(&path, &table).expect("writing docs/errors.md");
    }
    let docs = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        docs == table,
        "docs/errors.md is not the table of codes; SIYU_WRITE_DOCS=1 cargo test -p siyu --test http error_codes rewrites it"
    );
    // The document lists the same codes, in the same order.
    let doc = siyu::http::openapi_document();
    let listed = doc["components"]["schemas"]["Error"]["properties"]["code"]["description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let names: Vec<&str> = Code::ALL.iter().map(|c| c.name()).collect();
    assert_eq!(listed, names.join(", "));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_json_at_the_batch_endpoint_is_never_a_server_error(body in json_value(4)) {
        let api = Api::new(RateLimit { per_second: 1e9, burst: 1e9 });
        let ingest = api.token("shop", Role::Ingest);
        let (status, text) = runtime().block_on(api.batch(&ingest, json!({"batch": [body.clone()]})));
        prop_assert!(status.is_success() || status.is_client_error(), "{status} {text}");
        let (status, text) = runtime().block_on(api.batch(&ingest, body));
        prop_assert!(status.is_success() || status.is_client_error(), "{status} {text}");
    }
}

fn json_value(depth: u32) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "[a-z_]{0,8}".prop_map(Value::String),
        prop_oneof![
            Just("identify"),
            Just("track"),
            Just("order"),
            Just("2025-05-01"),
            Just("12.50"),
            Just("message_id")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(depth, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type"),
                    Just("message_id"),
                    Just("customer_id"),
                    Just("timestamp"),
                    Just("order_id"),
                    Just("amount"),
                    Just("event"),
                    Just("traits"),
                    Just("batch"),
                    Just("x")
                ]
                .prop_map(String::from),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[test]
fn siyu_serve_answers_on_a_port_it_picks() {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("serve.db");
    let out = common::siyu(&db, &["token", "create", "--role", "admin"]);
    let token = common::text(&out.stdout).trim().to_owned();
    let mut child = Command::new(env!("CARGO_BIN_EXE_siyu"))
        .arg("--db")
        .arg(&db)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("siyu serve");
    let (addr, _) = common::listening_address(&mut child);
    let http = |request: String| {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        s.write_all(request.as_bytes()).expect("send");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("read");
        answer
    };
    let health = http(format!(
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    ));
    let body = json!({"batch": [order("m1", "c1", "o1", "10")]}).to_string();
    let batch = http(format!(
        "POST /v1/batch HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    let _ = child.kill();
    let _ = child.wait();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(batch.contains(r#""accepted":1"#), "{batch}");
}

/// Starts `siyu serve` on port 0 against `db`; the child and its address.
fn start_server(db: &str) -> (std::process::Child, String) {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_siyu"))
        .args(["--db", db, "serve", "--addr", "127.0.0.1:0"])
        .env_remove("SIYU_DB")
        .env_remove("SIYU_TENANT")
        .stdout(Stdio::piped())
        .spawn()
        .expect("siyu serve");
    let (addr, _) = common::listening_address(&mut child);
    (child, addr)
}

fn http_call(addr: &str, method: &str, path: &str, token: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read");
    answer
}

#[test]
fn a_cli_import_and_refresh_beside_a_running_server_wait_their_turn_and_neither_side_fails() {
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("beside.db");
    let db_text = db.to_string_lossy().into_owned();
    let out = common::siyu(&db, &["segment", "create", "buyers", "orders >= 1"]);
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let out = common::siyu(&db, &["token", "create", "--role", "admin"]);
    let token = common::text(&out.stdout).trim().to_owned();
    let mut csv = String::from("order_id,customer_id,ordered_at,amount\n");
    for i in 0..40_000 {
        csv.push_str(&format!(
            "cli{i},k{},2025-04-{:02} 09:00:00,{}.50\n",
            i % 9_000,
            1 + i % 28,
            10 + i % 90
        ));
    }
    let orders = dir.path().join("orders.csv");
    std::fs::write(&orders, csv).expect("orders");
    let (mut server, addr) = start_server(&db_text);

    // Writers and a reader keep the server busy for as long as the CLI import runs.
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (addr, token, done) = (addr.clone(), token.clone(), done.clone());
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            let mut n = 0;
            while !done.load(Ordering::Relaxed) || answers.len() < 3 {
                let batch: Vec<Value> = (0..50)
                    .map(|i| {
                        let m = format!("m{n}-{i}");
                        order(&m, &format!("h{}", (n * 50 + i) % 3_000), &m, "20")
                    })
                    .collect();
                let body = json!({ "batch": batch }).to_string();
                answers.push(http_call(&addr, "POST", "/v1/batch", &token, &body));
                n += 1;
            }
            answers
        })
    };
    let reader = {
        let (addr, token, done) = (addr.clone(), token.clone(), done.clone());
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            while !done.load(Ordering::Relaxed) || answers.len() < 3 {
                answers.push(http_call(
                    &addr,
                    "GET",
                    "/v1/segments/buyers/members?limit=5",
                    &token,
                    "",
                ));
            }
            answers
        })
    };
    let import = common::siyu(&db, &["import", "orders", &orders.to_string_lossy()]);
    // The day's sweep from cron beside the server: its short writes queue too.
    let refresh = common::siyu(&db, &["segment", "refresh"]);
    done.store(true, Ordering::Relaxed);
    let (writes, reads) = (
        writer.join().expect("writer"),
        reader.join().expect("reader"),
    );
    let _ = server.kill();
    let _ = server.wait();

    assert!(
        import.status.success(),
        "the CLI import failed beside the server: {}",
        common::text(&import.stderr)
    );
    assert!(
        refresh.status.success(),
        "the CLI refresh failed beside the server: {}",
        common::text(&refresh.stderr)
    );
    for w in &writes {
        assert!(
            w.starts_with("HTTP/1.1 200") && w.contains(r#""accepted":50"#),
            "a batch beside the import: {w}"
        );
    }
    for r in &reads {
        assert!(
            r.starts_with("HTTP/1.1 200"),
            "a read beside the import: {r}"
        );
    }
    let members = common::siyu(&db, &["segment", "members", "buyers", "--format", "csv"]);
    let members = common::text(&members.stdout);
    assert!(
        members.contains("k8999") && members.contains("h0,"),
        "both sides' customers are members"
    );
}

#[test]
fn two_servers_on_one_postgres_database_answer_alike() {
    let Ok(url) = std::env::var("SIYU_TEST_POSTGRES") else {
        return;
    };
    let schema = format!("siyu_two_servers_{}", std::process::id());
    let db = siyu_store::PgStore::schema_url(&url, &schema).expect("schema");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_siyu"))
        .args(["--db", &db, "token", "create", "--role", "admin"])
        .output()
        .expect("token");
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        token.starts_with("siyu_"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (mut a, addr_a) = start_server(&db);
    let (mut b, addr_b) = start_server(&db);
    let body = json!({"batch": [
        {"type": "identify", "message_id": "m1", "customer_id": "c1", "traits": {"name": "王小明"}},
        order("m2", "c1", "o1", "128.50")
    ]})
    .to_string();
    let written = http_call(&addr_a, "POST", "/v1/batch", &token, &body);
    let through_b = http_call(&addr_b, "GET", "/v1/customers/c1", &token, "");
    let through_a = http_call(&addr_a, "GET", "/v1/customers/c1", &token, "");
    let again_b = http_call(&addr_b, "POST", "/v1/batch", &token, &body);
    for child in [&mut a, &mut b] {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = siyu_store::PgStore::drop_schema(&url, &schema);
    assert!(written.contains(r#""accepted":2"#), "{written}");
    let body_of = |r: &str| r.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    assert!(through_b.starts_with("HTTP/1.1 200"), "{through_b}");
    assert_eq!(
        body_of(&through_a),
        body_of(&through_b),
        "both servers see the same customer"
    );
    assert!(
        body_of(&through_b).contains(r#""net_spend":12850"#),
        "{through_b}"
    );
    assert!(
        again_b.contains(r#""duplicates":2"#),
        "a message id claimed through one server is a duplicate through the other: {again_b}"
    );
}

#[test]
fn every_report_answers_through_the_api_with_the_numbers_of_the_cli() {
    let api = Api::new(RateLimit::default());
    let rt = runtime();
    let ingest = api.token("shop", Role::Ingest);
    let viewer = api.token("shop", Role::Viewer);
    let items: Vec<Value> = (0..40)
        .map(|i| {
            json!({"type": "order", "message_id": format!("m{i}"), "customer_id": format!("c{}", i % 9),
                   "timestamp": format!("2025-0{}-{:02} 10:00:00", 3 + i % 3, 1 + i % 27),
                   "order_id": format!("o{i}"), "amount": format!("{}.50", 20 + i * 3)})
        })
        .collect();
    let (status, text) = rt.block_on(api.batch(&ingest, json!({"batch": items})));
    assert_eq!(status, StatusCode::OK, "{text}");
    let cases: &[(&str, &[&str])] = &[
        ("overview", &["report", "overview"]),
        (
            "gmv?from=2025-05-01&to=2025-05-31&compare_from=2025-04-01&compare_to=2025-04-30&by=channel&what_if=aov%3D%2B5%25",
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
                "--by",
                "channel",
                "--what-if",
                "aov=+5%",
            ],
        ),
        (
            "cohorts?as_of=2025-06-30&months=3",
            &[
                "report",
                "cohorts",
                "--as-of",
                "2025-06-30",
                "--months",
                "3",
            ],
        ),
        (
            "funnel?as_of=2025-06-30",
            &["report", "funnel", "--as-of", "2025-06-30"],
        ),
        (
            "pareto?from=2025-03-01&to=2025-06-30",
            &[
                "report",
                "pareto",
                "--from",
                "2025-03-01",
                "--to",
                "2025-06-30",
            ],
        ),
        (
            "channels?from=2025-01-01&to=2025-06-30",
            &[
                "report",
                "channels",
                "--from",
                "2025-01-01",
                "--to",
                "2025-06-30",
            ],
        ),
        (
            "referrals?as_of=2025-06-30&top=5",
            &["report", "referrals", "--as-of", "2025-06-30", "--top", "5"],
        ),
        (
            "clv?as_of=2025-06-30&by=stage",
            &["report", "clv", "--as-of", "2025-06-30", "--by", "stage"],
        ),
    ];
    for (path, cli) in cases {
        let (status, text) =
            rt.block_on(api.call("GET", &format!("/v1/reports/{path}"), Some(&viewer), None));
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
        let through_api: Value = serde_json::from_str(&text).expect("json");
        let mut args: Vec<&str> = vec!["--tenant", "shop"];
        args.extend(cli.iter());
        args.extend(["--format", "json"]);
        let out = common::siyu(std::path::Path::new(&api.db), &args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            common::text(&out.stderr)
        );
        let through_cli: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(through_api, through_cli, "{path}");
    }
    let (status, text) =
        rt.block_on(api.call("GET", "/v1/reports/gmv?by=color", Some(&viewer), None));
    assert_snapshot!(format!("{status} {text}"), @r#"400 Bad Request {"code":"invalid_query","message":"by: 'color' is not channel, segment or stage"}"#);
    let (status, text) = rt.block_on(api.call("GET", "/v1/reports/weather", Some(&viewer), None));
    assert_snapshot!(format!("{status} {text}"), @r#"404 Not Found {"code":"report_not_found","message":"no report 'weather' (overview, gmv, cohorts, funnel, pareto, channels, referrals, clv)"}"#);
}

#[test]
fn segments_and_tags_are_managed_through_the_api_within_the_tenant() {
    let api = Api::new(RateLimit::default());
    let rt = runtime();
    let ingest = api.token("shop", Role::Ingest);
    let operator = api.token("shop", Role::Operator);
    let viewer = api.token("shop", Role::Viewer);
    let other = api.token("elsewhere", Role::Admin);
    let items: Vec<Value> = (0..6)
        .map(|i| {
            order(
                &format!("m{i}"),
                &format!("c{}", i % 3),
                &format!("o{i}"),
                "100",
            )
        })
        .collect();
    rt.block_on(api.batch(&ingest, json!({"batch": items})));
    let post = |token: &str, uri: &str, body: Value| {
        rt.block_on(api.call("POST", uri, Some(token), Some(body.to_string())))
    };
    let get = |token: &str, uri: &str| rt.block_on(api.call("GET", uri, Some(token), None));

    let (status, text) = post(
        &operator,
        "/v1/segments",
        json!({"name": "big", "rule": "orders >= 2 and chanel = \"x\""}),
    );
    assert_snapshot!(format!("{status} {text}"), @r#"400 Bad Request {"code":"invalid_segment_rule","message":"the rule does not read: column 17: unknown field 'chanel'; did you mean 'channel'?"}"#);
    let (status, _) = post(
        &viewer,
        "/v1/segments",
        json!({"name": "big", "rule": "orders >= 2"}),
    );
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, text) = post(
        &operator,
        "/v1/segments",
        json!({"name": "big", "rule": "orders>=2"}),
    );
    assert_snapshot!(format!("{status} {text}"), @r#"201 Created {"members":3,"name":"big","purpose":"marketing","rule":"orders >= 2"}"#);
    let (status, text) = post(
        &operator,
        "/v1/segments",
        json!({"name": "big", "rule": "orders >= 3"}),
    );
    assert_snapshot!(format!("{status} {text}"), @r#"409 Conflict {"code":"segment_exists","message":"there is a segment 'big' already"}"#);

    let (_, page) = get(&viewer, "/v1/segments/big/members?limit=2");
    let page: Value = serde_json::from_str(&page).expect("json");
    assert_eq!(
        (page["total"].as_u64(), page["next"].as_str()),
        (Some(3), Some("c1"))
    );
    let (_, rest) = get(&viewer, "/v1/segments/big/members?after=c1");
    let rest: Value = serde_json::from_str(&rest).expect("json");
    assert_eq!(rest["members"][0]["customer_id"], "c2");
    let (_, history) = get(&viewer, "/v1/segments/big/history");
    assert!(
        history.contains(r#""cause":"segment created by api:operator""#),
        "{history}"
    );

    let (status, text) = post(
        &operator,
        "/v1/customers/c1/tags",
        json!({"tag": "outdoor"}),
    );
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::OK, r#"{"added":true}"#)
    );
    let (_, view) = get(&viewer, "/v1/customers/c1");
    assert!(
        view.contains(r#""tag":"outdoor","source":"manual:api:operator""#),
        "{view}"
    );
    assert!(view.contains(r#""segments":["big"]"#), "{view}");
    let (status, _) = post(&operator, "/v1/customers/nobody/tags", json!({"tag": "x"}));
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Another tenant sees none of it.
    assert_eq!(get(&other, "/v1/segments").1, "[]");
    assert_eq!(
        get(&other, "/v1/segments/big/members").0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(get(&other, "/v1/segments/big/history").1, "[]");
    assert_eq!(
        post(&other, "/v1/customers/c1/tags", json!({"tag": "x"})).0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        rt.block_on(api.call("DELETE", "/v1/segments/big", Some(&other), None))
            .0,
        StatusCode::NOT_FOUND
    );

    let (status, _) = rt.block_on(api.call("DELETE", "/v1/segments/big", Some(&operator), None));
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        get(&viewer, "/v1/segments/big/members").0,
        StatusCode::NOT_FOUND
    );
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn each_new_route_refuses_the_roles_it_is_not_for() {
    let api = Api::new(RateLimit::default());
    let rt = runtime();
    let tokens: Vec<(Role, String)> = Role::ALL
        .into_iter()
        .map(|role| (role, api.token("shop", role)))
        .collect();
    use Role::{Admin, Operator, Viewer};
    let routes: &[(&str, &str, Option<Value>, &[Role])] = &[
        ("GET", "/v1/tokens", None, &[Admin]),
        (
            "POST",
            "/v1/tokens",
            Some(json!({"role": "viewer"})),
            &[Admin],
        ),
        ("DELETE", "/v1/tokens/abcdef012345", None, &[Admin]),
        ("POST", "/v1/clv/fit", None, &[Admin, Operator]),
        ("GET", "/v1/clv/predict", None, &[Admin, Operator, Viewer]),
        ("GET", "/v1/tags", None, &[Admin, Operator, Viewer]),
        (
            "PUT",
            "/v1/tags/rules/big",
            Some(json!({"rule": "orders >= 2"})),
            &[Admin, Operator],
        ),
        ("DELETE", "/v1/tags/rules/big", None, &[Admin, Operator]),
        (
            "DELETE",
            "/v1/customers/c1/tags/tea",
            None,
            &[Admin, Operator],
        ),
        (
            "GET",
            "/v1/segments/big/members?format=csv",
            None,
            &[Admin, Operator, Viewer],
        ),
        ("GET", "/v1/customers/c1/export", None, &[Admin]),
        ("DELETE", "/v1/customers/c1", None, &[Admin]),
        ("POST", "/v1/customers/c1/opt-out", None, &[Admin, Operator]),
        (
            "DELETE",
            "/v1/customers/c1/opt-out",
            None,
            &[Admin, Operator],
        ),
        ("GET", "/v1/audit", None, &[Admin]),
        (
            "POST",
            "/v1/customers/c1/merge",
            Some(json!({"with": "c2"})),
            &[Admin, Operator],
        ),
        ("POST", "/v1/customers/c1/unmerge", None, &[Admin, Operator]),
        (
            "POST",
            "/v1/customers/c1/never-merge",
            Some(json!({"with": "c2"})),
            &[Admin, Operator],
        ),
        (
            "GET",
            "/v1/customers/c1/ids",
            None,
            &[Admin, Operator, Viewer],
        ),
    ];
    for (method, uri, body, allowed) in routes {
        for (role, token) in &tokens {
            let (status, text) = rt.block_on(api.call(
                method,
                uri,
                Some(token),
                body.as_ref().map(Value::to_string),
            ));
            if allowed.contains(role) {
                assert_ne!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{role} {method} {uri}: {text}"
                );
                assert!(!status.is_server_error(), "{role} {method} {uri}: {text}");
            } else {
                assert_eq!(
                    (status, text.as_str()),
                    (
                        StatusCode::FORBIDDEN,
                        format!(
                            r#"{{"code":"forbidden","message":"{} {role} token may not do this"}}"#,
                            if role.as_str().starts_with(['a', 'e', 'i', 'o', 'u']) {
                                "an"
                            } else {
                                "a"
                            }
                        )
                        .as_str()
                    ),
                    "{method} {uri}"
                );
            }
        }
    }
}

#[test]
fn admins_manage_the_tokens_of_their_own_tenant_and_a_revoke_takes_at_once() {
    for api in Api::on_each_backend("tokens") {
        // The same answers on each backend.
        insta::allow_duplicates! { admins_manage_the_tokens_of_their_own_tenant_and_a_revoke_takes_at_once_on(&api) }
    }
}

fn admins_manage_the_tokens_of_their_own_tenant_and_a_revoke_takes_at_once_on(api: &Api) {
    let rt = runtime();
    let admin = api.token("shop", Role::Admin);
    let other = api.token("elsewhere", Role::Admin);
    let call = |token: &str, method: &str, uri: &str, body: Option<Value>| {
        rt.block_on(api.call(method, uri, Some(token), body.map(|b| b.to_string())))
    };

    let (status, text) = call(&admin, "POST", "/v1/tokens", Some(json!({"role": "root"})));
    assert_snapshot!(format!("{status} {text}"), @r#"400 Bad Request {"code":"invalid_token","message":"role: 'root' is not admin, operator, viewer or ingest"}"#);
    let (status, text) = call(
        &admin,
        "POST",
        "/v1/tokens",
        Some(json!({"role": "viewer", "scope": "all"})),
    );
    assert_snapshot!(format!("{status} {text}"), @r#"400 Bad Request {"code":"invalid_token","message":"unknown field `scope`, expected `role` or `label`"}"#);
    let (status, text) = call(
        &admin,
        "POST",
        "/v1/tokens",
        Some(json!({"role": "viewer", "label": "a\nb"})),
    );
    assert_snapshot!(format!("{status} {text}"), @r#"400 Bad Request {"code":"invalid_token","message":"label: a label holds no control characters"}"#);

    let (status, text) = call(
        &admin,
        "POST",
        "/v1/tokens",
        Some(json!({"role": "viewer", "label": "dashboard"})),
    );
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let created = parse(&text);
    let token = created["token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("siyu_") && token.len() == 69, "{token}");
    let hash = hash_token(&token);
    let prefix = created["hash_prefix"].as_str().expect("prefix").to_owned();
    assert_eq!(prefix, hash[..12]);
    assert_eq!(
        (created["role"].as_str(), created["label"].as_str()),
        (Some("viewer"), Some("dashboard"))
    );
    assert_eq!(created["revoked_at"], Value::Null);
    // The new token works (and is now in the server's cache).
    assert_eq!(call(&token, "GET", "/v1/customers", None).0, StatusCode::OK);

    let (status, list) = call(&admin, "GET", "/v1/tokens", None);
    assert_eq!(status, StatusCode::OK, "{list}");
    let lines = parse(&list);
    let lines = lines.as_array().expect("a list");
    assert_eq!(
        lines.len(),
        2,
        "the test's admin token and the new one: {list}"
    );
    assert_eq!(lines[0]["label"], "dashboard", "newest first");
    for line in lines {
        assert_eq!(
            line["hash_prefix"].as_str().map(str::len),
            Some(12),
            "{list}"
        );
    }
    assert!(
        !list.contains(&hash) && !list.contains(&hash_token(&admin)),
        "never a whole hash: {list}"
    );
    assert!(!list.contains("siyu_"), "never a token: {list}");
    // The same as `siyu token list --format json`.
    assert_eq!(
        lines,
        parse(&api.cli("shop", &["token", "list", "--format", "json"]))
            .as_array()
            .expect("list")
    );

    // Another tenant's admin neither sees nor revokes it.
    let (_, theirs) = call(&other, "GET", "/v1/tokens", None);
    assert!(
        !theirs.contains("dashboard") && !theirs.contains(&prefix),
        "{theirs}"
    );
    let (status, text) = call(&other, "DELETE", &format!("/v1/tokens/{prefix}"), None);
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    assert!(text.contains(r#""code":"token_not_found""#), "{text}");
    assert_eq!(call(&token, "GET", "/v1/customers", None).0, StatusCode::OK);

    let (status, text) = call(&admin, "DELETE", "/v1/tokens/xyz", None);
    assert_snapshot!(format!("{status} {text}"), @r#"400 Bad Request {"code":"invalid_token_prefix","message":"'xyz' is not 8 to 64 hex digits of a token's hash (see the list of tokens)"}"#);
    let (status, text) = call(&admin, "DELETE", "/v1/tokens/0000000000", None);
    assert_snapshot!(format!("{status} {text}"), @r#"404 Not Found {"code":"token_not_found","message":"no live token of this tenant has a hash starting with '0000000000'"}"#);

    let (status, _) = call(
        &admin,
        "DELETE",
        &format!("/v1/tokens/{}", prefix.to_uppercase()),
        None,
    );
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Refused at once, though the lookup was cached a moment ago.
    let (status, text) = call(&token, "GET", "/v1/customers", None);
    assert_snapshot!(format!("{status} {text}"), @r#"401 Unauthorized {"code":"unauthorized","message":"unknown or revoked token"}"#);
    assert_eq!(
        call(&admin, "DELETE", &format!("/v1/tokens/{prefix}"), None).0,
        StatusCode::NOT_FOUND
    );
    let (_, list) = call(&admin, "GET", "/v1/tokens", None);
    assert!(parse(&list)[0]["revoked_at"].is_string(), "{list}");
    assert_eq!(
        call(&admin, "GET", "/v1/tokens", None).0,
        StatusCode::OK,
        "the admin's own token lives on"
    );
}

/// Tenant `shop` with three customers of two orders each, c0…c2.
fn small_shop(api: &Api, rt: &tokio::runtime::Runtime) {
    let ingest = api.token("shop", Role::Ingest);
    let items: Vec<Value> = (0..6)
        .map(|i| {
            order(
                &format!("m{i}"),
                &format!("c{}", i % 3),
                &format!("o{i}"),
                "100",
            )
        })
        .collect();
    let (status, text) = rt.block_on(api.batch(&ingest, json!({"batch": items})));
    assert_eq!(status, StatusCode::OK, "{text}");
}

#[test]
fn tags_and_tag_rules_are_managed_through_the_api_within_the_tenant() {
    for api in Api::on_each_backend("tags") {
        // The same answers on each backend.
        insta::allow_duplicates! { tags_and_tag_rules_are_managed_through_the_api_within_the_tenant_on(&api) }
    }
}

fn tags_and_tag_rules_are_managed_through_the_api_within_the_tenant_on(api: &Api) {
    let rt = runtime();
    small_shop(api, &rt);
    let operator = api.token("shop", Role::Operator);
    let viewer = api.token("shop", Role::Viewer);
    let other = api.token("elsewhere", Role::Admin);
    let call = |token: &str, method: &str, uri: &str, body: Option<Value>| {
        rt.block_on(api.call(method, uri, Some(token), body.map(|b| b.to_string())))
    };

    let (status, text) = call(
        &operator,
        "PUT",
        "/v1/tags/rules/spender",
        Some(json!({"rule": "orders >= 2 and chanel = \"x\""})),
    );
    assert_snapshot!(format!("{status} {text}"), @r#"400 Bad Request {"code":"invalid_tag_rule","message":"the rule does not read: column 17: unknown field 'chanel'; did you mean 'channel'?"}"#);
    let (status, text) = call(
        &operator,
        "PUT",
        "/v1/tags/rules/spender",
        Some(json!({"rule": "orders >= 2", "family": "money"})),
    );
    assert_snapshot!(format!("{status} {text}"), @r#"400 Bad Request {"code":"invalid_tag","message":"family: 'money' is not static, consumption, behaviour or level"}"#);
    let (status, text) = call(
        &operator,
        "PUT",
        "/v1/tags/rules/stage:vip",
        Some(json!({"rule": "orders >= 2"})),
    );
    assert_snapshot!(format!("{status} {text}"), @r#"400 Bad Request {"code":"invalid_tag","message":"tag: 'stage:vip': tags starting with stage: or rfm: are the built-in level tags"}"#);
    let (status, text) = call(
        &operator,
        "PUT",
        "/v1/tags/rules/spender",
        Some(json!({"rule": "orders>=2", "family": "behaviour"})),
    );
    assert_snapshot!(format!("{status} {text}"), @r#"201 Created {"customers":3,"name":"spender","rule":"orders >= 2"}"#);
    let (status, text) = call(
        &operator,
        "PUT",
        "/v1/tags/rules/spender",
        Some(json!({"rule": "orders >= 2"})),
    );
    assert_snapshot!(format!("{status} {text}"), @r#"200 OK {"customers":3,"name":"spender","rule":"orders >= 2"}"#);
    let (status, _) = call(
        &operator,
        "PUT",
        "/v1/tags/rules/a",
        Some(json!({"rule": "has_tag(\"spender\") and orders > 3"})),
    );
    assert_eq!(status, StatusCode::CREATED);
    let (status, text) = call(
        &operator,
        "PUT",
        "/v1/tags/rules/spender",
        Some(json!({"rule": "has_tag(\"a\")"})),
    );
    assert_snapshot!(format!("{status} {text}"), @r#"409 Conflict {"code":"tag_rule_circle","message":"the tag rules 'a' → 'spender' depend on each other in a circle"}"#);

    // The same JSON as the CLI's tag lists, and the family set through the API kept.
    let (status, tags) = call(&viewer, "GET", "/v1/tags", None);
    assert_eq!(status, StatusCode::OK, "{tags}");
    let tags = parse(&tags);
    assert_eq!(
        tags,
        parse(&api.cli("shop", &["tag", "list", "--format", "json"]))
    );
    let spender = tags
        .as_array()
        .expect("list")
        .iter()
        .find(|t| t["tag"] == "spender")
        .expect("spender");
    assert_eq!(
        (
            spender["family"].as_str(),
            spender["source"].as_str(),
            spender["customers"].as_u64()
        ),
        (Some("behaviour"), Some("rule"), Some(3))
    );

    let (status, text) = call(
        &operator,
        "POST",
        "/v1/customers/c1/tags",
        Some(json!({"tag": "outdoor"})),
    );
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::OK, r#"{"added":true}"#)
    );
    let (status, text) = call(
        &operator,
        "POST",
        "/v1/customers/c1/tags",
        Some(json!({"tag": "rfm:mine"})),
    );
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    let (_, mine) = call(&viewer, "GET", "/v1/tags?customer=c1", None);
    let mine = parse(&mine);
    assert_eq!(
        mine,
        parse(&api.cli(
            "shop",
            &["tag", "list", "--customer", "c1", "--format", "json"]
        ))
    );
    let level = mine
        .as_array()
        .expect("list")
        .iter()
        .find(|t| t["source"] == "level")
        .expect("a level tag");
    let level = level["tag"].as_str().expect("tag").to_owned();
    assert!(
        mine.to_string()
            .contains(r#""source":"manual:api:operator","tag":"outdoor""#),
        "{mine}"
    );

    let (status, text) = call(&operator, "DELETE", "/v1/customers/c1/tags/spender", None);
    assert_snapshot!(format!("{status} {text}"), @r#"409 Conflict {"code":"tag_not_manual","message":"'spender' comes from a rule on customer 'c1'; change the rule to take it away"}"#);
    let (status, text) = call(
        &operator,
        "DELETE",
        &format!("/v1/customers/c1/tags/{level}"),
        None,
    );
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(
        text.contains(r#""code":"tag_not_manual""#) && text.contains("level tag"),
        "{text}"
    );
    let (status, text) = call(&operator, "DELETE", "/v1/customers/c1/tags/outdoor", None);
    assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
    let (status, text) = call(&operator, "DELETE", "/v1/customers/c1/tags/outdoor", None);
    assert_snapshot!(format!("{status} {text}"), @r#"404 Not Found {"code":"tag_not_found","message":"customer 'c1' has no tag 'outdoor'"}"#);
    let (status, text) = call(
        &operator,
        "DELETE",
        "/v1/customers/nobody/tags/outdoor",
        None,
    );
    assert_snapshot!(format!("{status} {text}"), @r#"404 Not Found {"code":"customer_not_found","message":"there is no customer 'nobody'"}"#);
    let (_, history) = call(&viewer, "GET", "/v1/tags?customer=c1", None);
    assert!(!history.contains("outdoor"), "{history}");

    // Another tenant sees and changes none of it.
    let (_, theirs) = call(&other, "GET", "/v1/tags", None);
    assert!(!theirs.contains("spender"), "{theirs}");
    assert_eq!(
        call(&other, "GET", "/v1/tags?customer=c1", None).0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(
            &other,
            "POST",
            "/v1/customers/c1/tags",
            Some(json!({"tag": "x"}))
        )
        .0,
        StatusCode::NOT_FOUND
    );
    call(
        &operator,
        "POST",
        "/v1/customers/c2/tags",
        Some(json!({"tag": "tea"})),
    );
    let (status, text) = call(&other, "DELETE", "/v1/customers/c2/tags/tea", None);
    assert!(
        status == StatusCode::NOT_FOUND && text.contains("customer_not_found"),
        "{status} {text}"
    );
    assert_eq!(
        call(&other, "DELETE", "/v1/tags/rules/spender", None).0,
        StatusCode::NOT_FOUND
    );
    let (status, text) = call(
        &other,
        "PUT",
        "/v1/tags/rules/spender",
        Some(json!({"rule": "orders >= 9"})),
    );
    assert_eq!(status, StatusCode::CREATED, "a name of its own: {text}");
    let (_, ours) = call(&viewer, "GET", "/v1/tags?customer=c2", None);
    assert!(
        ours.contains(r#""tag":"tea""#) && ours.contains(r#""tag":"spender""#),
        "{ours}"
    );

    let (status, _) = call(&operator, "DELETE", "/v1/tags/rules/a", None);
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, text) = call(&operator, "DELETE", "/v1/tags/rules/a", None);
    assert_snapshot!(format!("{status} {text}"), @r#"404 Not Found {"code":"tag_rule_not_found","message":"no tag rule 'a'"}"#);
    let (_, history) = call(&viewer, "GET", "/v1/customers/c0", None);
    assert!(history.contains(r#""source":"rule:spender""#), "{history}");
}

#[test]
fn segment_members_export_as_csv_with_the_columns_of_the_cli() {
    for api in Api::on_each_backend("members_csv") {
        // The same answers on each backend.
        insta::allow_duplicates! { segment_members_export_as_csv_with_the_columns_of_the_cli_on(&api) }
    }
}

fn segment_members_export_as_csv_with_the_columns_of_the_cli_on(api: &Api) {
    let rt = runtime();
    let ingest = api.token("shop", Role::Ingest);
    let operator = api.token("shop", Role::Operator);
    let other = api.token("elsewhere", Role::Admin);
    // More members than one chunk of the export.
    for part in 0..2 {
        let items: Vec<Value> = (0..700)
            .map(|i| {
                let n = part * 700 + i;
                order(
                    &format!("m{n}"),
                    &format!("c{n:04}"),
                    &format!("o{n}"),
                    "10",
                )
            })
            .collect();
        let (status, text) = rt.block_on(api.batch(&ingest, json!({"batch": items})));
        assert_eq!(status, StatusCode::OK, "{text}");
    }
    let (status, text) = rt.block_on(api.call(
        "POST",
        "/v1/segments",
        Some(&operator),
        Some(json!({"name": "buyers", "rule": "orders >= 1"}).to_string()),
    ));
    assert_eq!(status, StatusCode::CREATED, "{text}");

    let cli = api.cli("shop", &["segment", "members", "buyers", "--format", "csv"]);
    assert_eq!(cli.lines().count(), 1 + 1400);
    let (status, headers, csv) = rt.block_on(api.call_with(
        "GET",
        "/v1/segments/buyers/members?format=csv",
        Some(&operator),
        None,
        &[],
    ));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(csv, cli);
    let (_, headers, by_accept) = rt.block_on(api.call_with(
        "GET",
        "/v1/segments/buyers/members",
        Some(&operator),
        None,
        &[("accept", "text/csv;q=0.9, */*;q=0.1")],
    ));
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(by_accept, cli);
    let (_, headers, json_still) = rt.block_on(api.call_with(
        "GET",
        "/v1/segments/buyers/members?format=json&limit=1",
        Some(&operator),
        None,
        &[("accept", "text/csv")],
    ));
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(parse(&json_still)["next"], "c0000");

    let (status, text) = rt.block_on(api.call(
        "GET",
        "/v1/segments/buyers/members?format=csv&limit=5",
        Some(&operator),
        None,
    ));
    assert_snapshot!(format!("{status} {text}"), @r#"400 Bad Request {"code":"invalid_query","message":"format=csv gives every member; it takes no after or limit"}"#);
    let (status, text) = rt.block_on(api.call(
        "GET",
        "/v1/segments/buyers/members?format=xml",
        Some(&operator),
        None,
    ));
    assert_snapshot!(format!("{status} {text}"), @r#"400 Bad Request {"code":"invalid_query","message":"format: 'xml' is not json or csv"}"#);
    let (status, text) = rt.block_on(api.call(
        "GET",
        "/v1/segments/buyers/members?format=csv",
        Some(&other),
        None,
    ));
    assert_snapshot!(format!("{status} {text}"), @r#"404 Not Found {"code":"segment_not_found","message":"no segment 'buyers'"}"#);

    // A segment nobody is in: the header alone.
    rt.block_on(api.call(
        "POST",
        "/v1/segments",
        Some(&operator),
        Some(json!({"name": "nobody", "rule": "orders >= 100"}).to_string()),
    ));
    let (_, _, empty) = rt.block_on(api.call_with(
        "GET",
        "/v1/segments/nobody/members?format=csv",
        Some(&operator),
        None,
        &[],
    ));
    assert_eq!(
        empty,
        "customer_id,since,stage,rfm,purchase_days,days_since_order,spend_365d\n"
    );
}

/// The predictions of `siyu clv predict --calibration-end D --format json`.
fn cli_predictions(api: &Api, day: &str) -> Value {
    parse(&api.cli(
        "shop",
        &[
            "clv",
            "predict",
            "--calibration-end",
            day,
            "--format",
            "json",
        ],
    ))
}

#[test]
fn a_fitted_clv_model_is_kept_and_predicts_the_numbers_of_the_cli() {
    for api in Api::on_each_backend("clv") {
        // The same answers on each backend.
        insta::allow_duplicates! { a_fitted_clv_model_is_kept_and_predicts_the_numbers_of_the_cli_on(&api) }
    }
}

fn a_fitted_clv_model_is_kept_and_predicts_the_numbers_of_the_cli_on(api: &Api) {
    let rt = runtime();
    api.cli(
        "shop",
        &[
            "demo",
            "--customers",
            "300",
            "--seed",
            "3",
            "--until",
            "2025-06-30",
        ],
    );
    let operator = api.token("shop", Role::Operator);
    let viewer = api.token("shop", Role::Viewer);
    let ingest = api.token("shop", Role::Ingest);
    let other = api.token("elsewhere", Role::Admin);
    let call = |token: &str, method: &str, uri: &str, body: Option<Value>| {
        rt.block_on(api.call(method, uri, Some(token), body.map(|b| b.to_string())))
    };
    let first = cli_predictions(api, "2025-05-31")["customers"][0]["customer_id"]
        .as_str()
        .expect("id")
        .to_owned();

    let (status, text) = call(&viewer, "GET", "/v1/clv/predict", None);
    assert_snapshot!(format!("{status} {text}"), @r#"409 Conflict {"code":"clv_not_fitted","message":"no lifetime value model is fitted for this tenant yet: POST /v1/clv/fit (or siyu clv fit) first"}"#);
    let (_, view) = call(&viewer, "GET", &format!("/v1/customers/{first}"), None);
    assert_eq!(parse(&view)["model_clv"], Value::Null, "no model yet");

    // `siyu clv fit` keeps the model too.
    api.cli(
        "shop",
        &[
            "clv",
            "fit",
            "--calibration-end",
            "2025-04-30",
            "--format",
            "json",
        ],
    );
    let (status, text) = call(&viewer, "GET", "/v1/clv/predict?limit=1", None);
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(parse(&text)["calibration_end"], "2025-04-30");

    let (status, text) = call(
        &operator,
        "POST",
        "/v1/clv/fit",
        Some(json!({"horizon_weeks": 0})),
    );
    assert_snapshot!(format!("{status} {text}"), @r#"400 Bad Request {"code":"invalid_clv_fit","message":"horizon_weeks: 0 is not a positive number of weeks"}"#);
    let (status, text) = call(
        &operator,
        "POST",
        "/v1/clv/fit",
        Some(json!({"calibration_end": "2000-01-01"})),
    );
    assert_snapshot!(format!("{status} {text}"), @r#"409 Conflict {"code":"clv_cannot_fit","message":"no customer has a paid order on or before the calibration end, so there is nothing to fit"}"#);
    let (status, text) = call(
        &operator,
        "POST",
        "/v1/clv/fit",
        Some(json!({"calibration_end": "2025-05-31"})),
    );
    assert_eq!(status, StatusCode::OK, "{text}");
    let fit_cli = parse(&api.cli(
        "shop",
        &[
            "clv",
            "fit",
            "--calibration-end",
            "2025-05-31",
            "--format",
            "json",
        ],
    ));
    assert_eq!(parse(&text), fit_cli, "the JSON of siyu clv fit");

    // Page by page, the numbers of siyu clv predict as of the same day.
    let cli = cli_predictions(api, "2025-05-31");
    let mut through_api = Vec::new();
    let mut uri = "/v1/clv/predict?limit=40".to_owned();
    loop {
        let (status, text) = call(&viewer, "GET", &uri, None);
        assert_eq!(status, StatusCode::OK, "{text}");
        let page = parse(&text);
        for key in [
            "calibration_end",
            "horizon_weeks",
            "months",
            "discount_monthly",
            "bgnbd",
            "gamma_gamma",
        ] {
            assert_eq!(page[key], cli[key], "{key}");
        }
        through_api.extend(
            page["customers"]
                .as_array()
                .expect("customers")
                .iter()
                .cloned(),
        );
        match page["next"].as_str() {
            Some(next) => uri = format!("/v1/clv/predict?limit=40&after={next}"),
            None => break,
        }
    }
    assert!(through_api.len() > 100, "{}", through_api.len());
    assert_eq!(&Value::Array(through_api), &cli["customers"]);

    let one = cli["customers"][7].clone();
    let id = one["customer_id"].as_str().expect("id");
    let (_, text) = call(
        &viewer,
        "GET",
        &format!("/v1/clv/predict?customer={id}"),
        None,
    );
    assert_eq!(parse(&text)["customers"], json!([one]));
    let (_, view) = call(&viewer, "GET", &format!("/v1/customers/{id}"), None);
    let model = &parse(&view)["model_clv"];
    for key in ["frequency", "recency", "T", "p_alive", "expected_purchases"] {
        assert_eq!(model[key], one[key], "{key}");
    }
    // The 360 view gives money in fen, as everywhere in JSON; the predictions in yuan.
    for key in ["monetary_value", "expected_spend", "clv"] {
        let yuan = one[key].as_f64().expect("yuan");
        assert_eq!(model[key], json!((yuan * 100.0).round() as i64), "{key}");
    }
    assert_eq!(
        (
            model["calibration_end"].as_str(),
            model["horizon_weeks"].as_f64()
        ),
        (Some("2025-05-31"), Some(52.0))
    );

    // A customer whose first order came after the calibration end has no prediction.
    let late = json!({"batch": [order("late-1", "newcomer", "late-o1", "50")]});
    let late = late
        .to_string()
        .replace("2025-05-01 10:00:00", "2025-06-20 10:00:00");
    rt.block_on(api.call("POST", "/v1/batch", Some(&ingest), Some(late)));
    let (status, text) = call(&viewer, "GET", "/v1/clv/predict?customer=newcomer", None);
    assert_eq!(
        (status, parse(&text)["customers"].clone()),
        (StatusCode::OK, json!([])),
        "{text}"
    );
    assert_eq!(
        parse(&call(&viewer, "GET", "/v1/customers/newcomer", None).1)["model_clv"],
        Value::Null
    );
    let (status, text) = call(&viewer, "GET", "/v1/clv/predict?customer=nobody", None);
    assert_snapshot!(format!("{status} {text}"), @r#"404 Not Found {"code":"customer_not_found","message":"no customer nobody"}"#);
    let (status, text) = call(
        &viewer,
        "GET",
        &format!("/v1/clv/predict?customer={id}&limit=3"),
        None,
    );
    assert_snapshot!(format!("{status} {text}"), @r#"400 Bad Request {"code":"invalid_query","message":"customer asks for one customer; it takes no after or limit"}"#);

    // The model is the tenant's own.
    let (status, text) = call(
        &other,
        "GET",
        &format!("/v1/clv/predict?customer={id}"),
        None,
    );
    assert!(
        status == StatusCode::CONFLICT && text.contains("clv_not_fitted"),
        "{status} {text}"
    );
    let (status, text) = call(&other, "POST", "/v1/clv/fit", None);
    assert!(
        status == StatusCode::CONFLICT && text.contains("clv_cannot_fit"),
        "{status} {text}"
    );
    let (status, _) = call(
        &viewer,
        "GET",
        &format!("/v1/clv/predict?customer={id}"),
        None,
    );
    assert_eq!(
        status,
        StatusCode::OK,
        "a failed fit elsewhere leaves this model be"
    );
}

#[test]
fn personal_data_is_exported_opted_out_and_erased_within_the_tenant() {
    for api in Api::on_each_backend("privacy") {
        insta::allow_duplicates! { personal_data_is_exported_opted_out_and_erased_within_the_tenant_on(&api) }
    }
}

fn personal_data_is_exported_opted_out_and_erased_within_the_tenant_on(api: &Api) {
    let rt = runtime();
    small_shop(api, &rt);
    let ingest = api.token("shop", Role::Ingest);
    let admin = api.token("shop", Role::Admin);
    let operator = api.token("shop", Role::Operator);
    let other = api.token("elsewhere", Role::Admin);
    let call = |token: &str, method: &str, uri: &str, body: Option<Value>| {
        rt.block_on(api.call(method, uri, Some(token), body.map(|b| b.to_string())))
    };
    let identify = json!({"batch": [
        {"type": "identify", "message_id": "p1", "customer_id": "c1",
         "traits": {"name": "王小明", "phone": "13800001111"}},
        {"type": "track", "message_id": "p2", "customer_id": "c1",
         "timestamp": "2025-05-02 09:00:00", "event": "post_like"}
    ]});
    let (status, _) = rt.block_on(api.batch(&ingest, identify));
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        &operator,
        "POST",
        "/v1/segments",
        Some(json!({"name": "buyers", "rule": "orders >= 1"})),
    );
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = call(
        &operator,
        "POST",
        "/v1/segments",
        Some(json!({"name": "all_buyers", "rule": "orders >= 1", "purpose": "analysis"})),
    );
    assert_eq!(status, StatusCode::CREATED);

    // Another tenant's admin finds nobody and changes nothing.
    for (method, uri) in [
        ("GET", "/v1/customers/c1/export"),
        ("DELETE", "/v1/customers/c1"),
        ("POST", "/v1/customers/c1/opt-out"),
    ] {
        let (status, text) = call(&other, method, uri, None);
        assert_eq!(
            (status, text.as_str()),
            (
                StatusCode::NOT_FOUND,
                r#"{"code":"customer_not_found","message":"no customer c1"}"#
            ),
            "{method} {uri}"
        );
    }
    let (_, text) = call(&other, "GET", "/v1/audit", None);
    assert_eq!(text, "[]");

    let (status, text) = call(&admin, "GET", "/v1/customers/c1/export", None);
    assert_eq!(status, StatusCode::OK, "{text}");
    let exported = parse(&text);
    assert_eq!(exported["customer"]["phone"], "13800001111");
    assert_eq!(exported["orders"].as_array().map(Vec::len), Some(2));
    assert_eq!(exported["events"].as_array().map(Vec::len), Some(1));

    let members = |name: &str| -> usize {
        let (_, text) = call(
            &operator,
            "GET",
            &format!("/v1/segments/{name}/members"),
            None,
        );
        parse(&text)["members"].as_array().map_or(0, Vec::len)
    };
    assert_eq!((members("buyers"), members("all_buyers")), (3, 3));
    let (status, text) = call(&operator, "POST", "/v1/customers/c1/opt-out", None);
    assert_snapshot!(format!("{status} {text}"), @r#"200 OK {"customer_id":"c1","marketing_opt_out":true}"#);
    assert_eq!((members("buyers"), members("all_buyers")), (2, 3));
    let (_, text) = call(&operator, "GET", "/v1/customers/c1", None);
    assert!(parse(&text)["marketing_opt_out_at"].is_string(), "{text}");

    let (status, text) = call(&admin, "DELETE", "/v1/customers/c1", None);
    assert_eq!(status, StatusCode::OK, "{text}");
    let erasure = parse(&text);
    assert_eq!(erasure["orders_kept"], 2);
    assert_eq!(erasure["events_erased"], 1);
    let remains = erasure["remains"].as_str().expect("remains").to_owned();
    let (status, text) = call(&admin, "GET", "/v1/customers/c1/export", None);
    assert_snapshot!(format!("{status} {text}"), @r#"410 Gone {"code":"customer_erased","message":"customer 'c1' was erased at their request: nothing is held on them"}"#);
    let (status, _) = call(&admin, "GET", "/v1/customers/c1", None);
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, text) = call(&admin, "DELETE", &format!("/v1/customers/{remains}"), None);
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert!(text.contains("erased_remains"), "{text}");
    let (_, text) = call(&admin, "GET", &format!("/v1/customers/{remains}"), None);
    let view = parse(&text);
    assert_eq!(view["customer"]["phone"], Value::Null);
    assert_eq!(view["profile"]["orders"], 2);

    // The id stays out: a batch about it is refused item by item.
    let again = json!({"batch": [
        {"type": "order", "message_id": "p3", "customer_id": "c1", "timestamp": "2025-06-01",
         "order_id": "o9", "amount": "10"},
        {"type": "track", "message_id": "p4", "customer_id": "c2",
         "timestamp": "2025-06-01", "event": "view"}
    ]});
    let (status, text) = rt.block_on(api.batch(&ingest, again));
    assert_eq!(status, StatusCode::OK);
    assert_snapshot!(text, @r#"{"accepted":1,"duplicates":0,"rejected":1,"results":[{"status":"rejected","message_id":"p3","reason":"customer_id: this customer was erased at their request; nothing about them is taken in"},{"status":"accepted","message_id":"p4"}]}"#);

    let (status, text) = call(&admin, "GET", "/v1/audit?customer=c1", None);
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<String> = parse(&text)
        .as_array()
        .expect("log")
        .iter()
        .map(|e| {
            let actor = e["actor"].as_str().expect("actor");
            let role = actor.split(':').nth(1).expect("role");
            format!("{} by {role}", e["action"].as_str().expect("action"))
        })
        .collect();
    assert_eq!(
        actions,
        ["erase by admin", "opt_out by operator", "export by admin"]
    );
    assert!(!text.contains("\"c1\""), "the log keeps no id: {text}");
    let (status, text) = call(&admin, "GET", "/v1/audit?limit=0", None);
    assert_snapshot!(format!("{status} {text}"), @r#"400 Bad Request {"code":"invalid_query","message":"limit: from 1 to 1000"}"#);
}

#[test]
fn inputs_past_the_limits_are_refused_and_the_server_keeps_serving() {
    for api in Api::on_each_backend("limits") {
        inputs_past_the_limits_are_refused_on(&api);
    }
}

fn inputs_past_the_limits_are_refused_on(api: &Api) {
    let rt = runtime();
    let operator = api.token("shop", Role::Operator);
    let ingest = api.token("shop", Role::Ingest);
    let code = |text: &str| -> String {
        let v: Value = serde_json::from_str(text).unwrap_or_else(|_| panic!("{text}"));
        v["code"].as_str().unwrap_or_default().to_owned()
    };

    // Rules nested far past the limit: a 400 naming it, not a stack overflow.
    let parens = format!("{}orders > 1{}", "(".repeat(2_000), ")".repeat(2_000));
    let nots = format!("{}orders > 1", "not ".repeat(10_000));
    let just_deep = format!("{}orders > 1{}", "(".repeat(40), ")".repeat(40));
    for rule in [&parens, &nots, &just_deep] {
        let body = json!({"name": "deep", "rule": rule}).to_string();
        let (status, text) =
            rt.block_on(api.call("POST", "/v1/segments", Some(&operator), Some(body)));
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert_eq!(code(&text), "invalid_segment_rule", "{text}");
        let body = json!({"rule": rule}).to_string();
        let (status, text) =
            rt.block_on(api.call("PUT", "/v1/tags/rules/deep", Some(&operator), Some(body)));
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert_eq!(code(&text), "invalid_tag_rule", "{text}");
    }
    let body = json!({"name": "deep", "rule": just_deep}).to_string();
    let (_, text) = rt.block_on(api.call("POST", "/v1/segments", Some(&operator), Some(body)));
    assert!(text.contains("more than 32 deep"), "{text}");

    // Items past the limits are rejected one by one; the rest go in.
    let (status, text) = rt.block_on(api.batch(
        &ingest,
        json!({"batch": [
            order("m1", "c1", "o1", "100"),
            {"type": "order", "message_id": "m2", "customer_id": "c2", "timestamp": "9999-12-31 23:00:00", "order_id": "o2", "amount": "1"},
            order("m3", "c3", "o3", "92233720368547758.07"),
            {"type": "identify", "message_id": "m4", "customer_id": "erased:da0b", "traits": {"name": "王小明", "phone": "13911112222"}},
            {"type": "track", "message_id": "m5", "customer_id": "erased:da0b", "timestamp": "2025-05-02", "event": "view"},
            {"type": "identify", "message_id": "m6", "customer_id": "c4", "traits": {"phone": "1391111x666"}},
            {"type": "identify", "message_id": "m7", "customer_id": "c5", "traits": {"referrer_id": "erased:00ff"}}
        ]}),
    ));
    assert_eq!(status, StatusCode::OK, "{text}");
    let answer: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(answer["accepted"], 1, "{text}");
    let reasons: Vec<String> = answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .skip(1)
        .map(|r| {
            assert_eq!(r["status"], "rejected", "{r}");
            r["reason"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert!(
        reasons[0].starts_with("timestamp: '9999-12-31 23:00:00' is outside the times accepted"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("is above the largest amount accepted"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].contains("reserved for the remains of erased customers"),
        "{reasons:?}"
    );
    assert!(
        reasons[3].contains("reserved for the remains of erased customers"),
        "{reasons:?}"
    );
    assert_eq!(
        reasons[4], "traits.phone: '1391111x666' is not a phone number",
        "{reasons:?}"
    );
    assert!(
        reasons[5].contains("traits.referrer_id: ids starting with 'erased:'"),
        "{reasons:?}"
    );

    // The remains of an erased customer take no tag.
    let (status, text) = rt.block_on(api.call(
        "POST",
        "/v1/customers/erased:da0b/tags",
        Some(&operator),
        Some(json!({"tag": "vip"}).to_string()),
    ));
    assert_eq!(status, StatusCode::CONFLICT, "{text}");
    assert_eq!(code(&text), "erased_remains", "{text}");

    // And the tenant reads as before.
    let (status, text) = rt.block_on(api.call("GET", "/v1/segments", Some(&operator), None));
    assert_eq!(status, StatusCode::OK, "{text}");
    let (status, text) =
        rt.block_on(api.call("GET", "/v1/reports/overview", Some(&operator), None));
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains(r#""gmv":10000"#), "{text}");
}

/// A GET never evaluates and never writes: a segment saved behind the API's back (so
/// that an evaluation would record entries) stays as it is through every read of
/// segments, members, tags, reports by segment and a customer.
#[test]
fn reads_never_evaluate_or_write() {
    use siyu_core::segment::rules::{Purpose, RuleKind};
    use siyu_store::{MemberFilter, StoredRule};
    for api in Api::on_each_backend("reads_never_write") {
        let rt = runtime();
        let ingest = api.token("shop", Role::Ingest);
        let viewer = api.token("shop", Role::Viewer);
        let items: Vec<Value> = (0..4)
            .map(|i| order(&format!("m{i}"), &format!("c{i}"), &format!("o{i}"), "100"))
            .collect();
        rt.block_on(api.batch(&ingest, json!({"batch": items})));
        let mut store = siyu_store::open(&api.db).expect("store");
        let tenant = store.tenant("shop").expect("tenant");
        let history = |store: &mut dyn siyu_store::Store| {
            let mut tx = store.read_pool(&tenant).expect("tx");
            tx.history(MemberFilter::All, usize::MAX).expect("history")
        };
        {
            let mut tx = store.begin_pool(&tenant).expect("tx");
            tx.save_rule(&StoredRule {
                kind: RuleKind::Segment,
                name: "unevaluated".into(),
                rule: "orders >= 1".into(),
                created_by: "test".into(),
                created_at: siyu_core::Timestamp::now(),
                purpose: Purpose::Analysis,
            })
            .expect("rule");
            tx.commit().expect("commit");
        }
        let before = history(store.as_mut());
        for path in [
            "/v1/segments",
            "/v1/segments/unevaluated/members",
            "/v1/segments/unevaluated/history",
            "/v1/tags",
            "/v1/customers/c1",
            "/v1/reports/gmv?by=segment",
        ] {
            let (status, text) = rt.block_on(api.call("GET", path, Some(&viewer), None));
            assert_eq!(status, StatusCode::OK, "{path}: {text}");
        }
        let (_, list) = rt.block_on(api.call("GET", "/v1/segments", Some(&viewer), None));
        assert!(list.contains(r#""name":"unevaluated""#), "{list}");
        assert!(list.contains(r#""members":0"#), "{list}");
        assert_eq!(history(store.as_mut()), before, "a read wrote history");
        let mut tx = store.read_pool(&tenant).expect("tx");
        let members = tx
            .members(MemberFilter::Rule(RuleKind::Segment, "unevaluated"))
            .expect("members");
        assert!(members.is_empty(), "a read evaluated: {members:?}");
    }
}
