//! The server against careless or hostile clients: JSON nested past reason refused with a
//! 400 while the server goes on.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use siyu::http::{AppState, RateLimit, hash_token, router};
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
