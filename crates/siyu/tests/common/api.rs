//! The HTTP API in process (the router, no socket) on SQLite, and on a fresh PostgreSQL
//! schema too when `SIYU_TEST_POSTGRES` is set: what the HTTP test files share (each uses some).

#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

use siyu::http::{AppState, RateLimit, hash_token, router};
use siyu_core::Timestamp;
use siyu_core::access::Role;

pub struct Api {
    _dir: tempfile::TempDir,
    pub state: Arc<AppState>,
    pub db: String,
    /// The PostgreSQL server and the schema to drop afterwards, on PostgreSQL.
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
    pub fn new(limit: RateLimit) -> Api {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("api.db").to_string_lossy().into_owned();
        let state = AppState::new(&db, limit).expect("state");
        Api {
            _dir: dir,
            state,
            db,
            schema: None,
        }
    }

    /// The API on SQLite, and on a fresh PostgreSQL schema too when `SIYU_TEST_POSTGRES`
    /// is set.
    pub fn on_each_backend(name: &str) -> Vec<Api> {
        let mut apis = vec![Api::new(RateLimit::default())];
        if let Ok(url) = std::env::var("SIYU_TEST_POSTGRES") {
            let schema = format!("siyu_http_{name}_{}", std::process::id());
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

    pub fn token(&self, tenant: &str, role: Role) -> String {
        let mut store = siyu_store::open(&self.db).expect("store");
        let tenant = store.tenant(tenant).expect("tenant");
        let token = format!("siyu_test_{}_{}", tenant.name, role);
        let hash = hash_token(&token);
        // Asked for twice, the same token.
        if store.token(&hash).expect("token lookup").is_none() {
            store
                .create_token(&tenant, &hash, role, "test", Timestamp::now())
                .expect("token");
        }
        token
    }

    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> (StatusCode, String) {
        let (status, _, text) = self.call_with(method, uri, token, body, &[]).await;
        (status, text)
    }

    /// A call with more headers; the answer's headers too.
    pub async fn call_with(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, axum::http::HeaderMap, String) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .header("content-type", "application/json")
            .body(body.map_or_else(Body::empty, Body::from))
            .expect("request");
        let response = router(Arc::clone(&self.state))
            .oneshot(request)
            .await
            .expect("response");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    /// `siyu --db DB --tenant TENANT ARGS…`'s standard output; the command must succeed.
    pub fn cli(&self, tenant: &str, args: &[&str]) -> String {
        let mut all = vec!["--tenant", tenant];
        all.extend(args);
        let out = super::siyu(std::path::Path::new(&self.db), &all);
        assert!(
            out.status.success(),
            "{all:?}: {}",
            super::text(&out.stderr)
        );
        super::text(&out.stdout)
    }

    pub async fn batch(&self, token: &str, body: Value) -> (StatusCode, String) {
        self.call("POST", "/v1/batch", Some(token), Some(body.to_string()))
            .await
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}
