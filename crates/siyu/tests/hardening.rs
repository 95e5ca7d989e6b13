//! The server against careless or hostile clients: /metrics labels drawn from closed sets
//! whatever the methods and paths; JSON nested past reason refused with a 400 while the
//! server goes on.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use siyu::http::{AppState, RateLimit, hash_token, openapi_document, router};
use siyu_core::Timestamp;
use siyu_core::access::Role;

/// The API in process, on SQLite or on a fresh PostgreSQL schema.
struct Api {
    _dir: tempfile::TempDir,
    state: Arc<AppState>,
    db: String,
    schema: Option<(String, String)>,
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some((url, schema)) = &self.schema {
            let _ = siyu_store::PgStore::drop_schema(url, schema);
        }
    }
}

impl Api {
    /// On SQLite, and on PostgreSQL too when `SIYU_TEST_POSTGRES` is set.
    fn on_each_backend(name: &str) -> Vec<Api> {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("api.db").to_string_lossy().into_owned();
        let mut apis = vec![Api {
            state: AppState::new(&db, RateLimit::default()).expect("state"),
            _dir: dir,
            db,
            schema: None,
        }];
        if let Ok(url) = std::env::var("SIYU_TEST_POSTGRES") {
            let schema = format!("siyu_hardening_{name}_{}", std::process::id());
            let db = siyu_store::PgStore::schema_url(&url, &schema).expect("schema");
            apis.push(Api {
                _dir: tempfile::tempdir().expect("tempdir"),
                state: AppState::new(&db, RateLimit::default()).expect("state"),
                db,
                schema: Some((url, schema)),
            });
        }
        apis
    }

    fn token(&self, role: Role) -> String {
        let mut store = siyu_store::open(&self.db).expect("store");
        let tenant = store.tenant("shop").expect("tenant");
        let token = format!("siyu_test_{role}");
        store
            .create_token(&tenant, &hash_token(&token), role, "test", Timestamp::now())
            .expect("token");
        token
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: String,
    ) -> (StatusCode, String) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        let request = request
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("request");
        let response = router(Arc::clone(&self.state))
            .oneshot(request)
            .await
            .expect("response");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A made-up but well-formed method and a path no route has, the `i`th of a run.
fn made_up(i: u64) -> (String, String) {
    let k = i.wrapping_mul(6_364_136_223_846_793_005).rotate_left(17);
    (
        format!("X{k:X}"),
        format!("/v1/{k:x}/{}", k.wrapping_mul(31) % 10_007),
    )
}

#[test]
fn made_up_methods_and_paths_leave_metrics_labels_in_closed_sets() {
    // Opened outside the runtime: the PostgreSQL client starts one of its own.
    let apis = Api::on_each_backend("metrics");
    runtime().block_on(async {
        let api = &apis[0];
        let routes = [
            "/v1/batch",
            "/v1/customers/{id}",
            "/v1/segments",
            "/healthz",
        ];
        for i in 0..300 {
            let (method, path) = made_up(i);
            // Made-up methods on paths no route has and on routes that exist, and known
            // methods on paths no route has.
            let _ = api.call(&method, &path, None, String::new()).await;
            let route = routes[i as usize % routes.len()].replace("{id}", &path[4..]);
            let _ = api.call(&method, &route, None, String::new()).await;
            let _ = api.call("GET", &path, None, String::new()).await;
        }
        let (status, text) = api.call("GET", "/metrics", None, String::new()).await;
        assert_eq!(status, StatusCode::OK);

        let methods = [
            "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other",
        ];
        let document = openapi_document();
        let mut known_routes: BTreeSet<String> = document["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .cloned()
            .collect();
        known_routes.extend(
            [
                "/healthz",
                "/metrics",
                "/v1/openapi.json",
                "/v1/docs",
                "unmatched",
            ]
            .map(String::from),
        );
        let buckets = [
            "0.001", "0.002", "0.005", "0.01", "0.02", "0.05", "0.1", "0.25", "1", "5", "+Inf",
        ];
        let mut series = 0;
        let mut seen_methods = BTreeSet::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            series += 1;
            let Some((_, labels)) = line.split_once('{') else {
                continue;
            };
            let labels = labels.split_once('}').expect("labels end").0;
            for pair in labels.split("\",") {
                let (name, value) = pair.split_once("=\"").expect("name=\"value\"");
                let value = value.trim_end_matches('"');
                match name {
                    "method" => {
                        assert!(methods.contains(&value), "method {value}: {line}");
                        seen_methods.insert(value.to_owned());
                    }
                    "route" => assert!(known_routes.contains(value), "route {value}: {line}"),
                    "status" => assert!(
                        value.len() == 3 && value.parse::<u16>().is_ok(),
                        "status {value}: {line}"
                    ),
                    "le" => assert!(buckets.contains(&value), "le {value}: {line}"),
                    other => panic!("label {other}: {line}"),
                }
            }
        }
        assert!(seen_methods.contains("other"), "{text}");
        // 900 requests with 300 methods and 300 paths: a few dozen series, not thousands.
        assert!(series < 120, "{series} series:\n{text}");
    });
}

/// `depth` arrays (or objects with one key) one inside the other, as text.
fn nested(depth: usize, object: bool) -> String {
    let (open, close) = if object { ("{\"a\":", "}") } else { ("[", "]") };
    let mut s = open.repeat(depth);
    s.push('1');
    s.push_str(&close.repeat(depth));
    s
}

fn track(message: &str, properties: &str) -> String {
    format!(
        r#"{{"type": "track", "message_id": "{message}", "customer_id": "c1", "timestamp": "2025-05-02", "event": "view", "properties": {properties}}}"#
    )
}

#[test]
fn json_nested_100000_deep_is_refused_with_a_400_and_the_server_goes_on() {
    for api in Api::on_each_backend("nested") {
        let ingest = api.token(Role::Ingest);
        let admin = api.token(Role::Admin);
        runtime().block_on(async {
            for object in [false, true] {
                let deep = nested(100_000, object);
                let bodies = [
                    deep.clone(),
                    format!(r#"{{"batch": {deep}}}"#),
                    format!(r#"{{"batch": [{}]}}"#, track("deep", &deep)),
                ];
                for body in bodies {
                    let (status, text) = api.call("POST", "/v1/batch", Some(&ingest), body).await;
                    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
                    assert!(text.contains(r#""code":"malformed_json""#), "{text}");
                    assert!(text.contains("recursion limit"), "{text}");
                }
                // The other routes that take JSON read it the same way (this one takes
                // at most 64 KiB).
                let (status, text) = api
                    .call("POST", "/v1/segments", Some(&admin), nested(8_000, object))
                    .await;
                assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
                assert!(text.contains(r#""code":"malformed_json""#), "{text}");
            }
            // Nothing of the refused batches was kept.
            let (status, text) = api
                .call("GET", "/v1/customers/c1", Some(&admin), String::new())
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
            // Properties as deep as a batch may carry are kept and read back whole.
            let body = format!(r#"{{"batch": [{}]}}"#, track("m1", &nested(120, true)));
            let (status, text) = api.call("POST", "/v1/batch", Some(&ingest), body).await;
            assert_eq!(status, StatusCode::OK, "{text}");
            assert!(text.contains(r#""accepted":1"#), "{text}");
            let (status, text) = api
                .call(
                    "GET",
                    "/v1/customers/c1/export",
                    Some(&admin),
                    String::new(),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{text}");
            assert!(text.contains(&"{\"a\":".repeat(120)), "{text}");
            let (status, text) = api
                .call("GET", "/v1/customers/c1", Some(&admin), String::new())
                .await;
            assert_eq!(status, StatusCode::OK, "{text}");
        });
    }
}
