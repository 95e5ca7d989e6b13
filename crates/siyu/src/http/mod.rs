//! `siyu serve`: the HTTP API under `/v1`, JSON in and out, bearer tokens per tenant.
//! The store is synchronous: each request borrows a connection from a small pool on a
//! blocking thread.

mod auth;
mod batch;
pub mod bench;
mod customers;
pub mod error;
mod group;
mod ops;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

use siyu_store::Store;

pub use auth::{RateLimit, hash_token, new_token};
use error::ApiError;
use ops::Metrics;
pub use ops::openapi_document;

/// What every request shares.
pub struct AppState {
    db: String,
    idle: Mutex<Vec<Box<dyn Store>>>,
    tokens: auth::TokenCache,
    limiter: auth::Limiter,
    metrics: Metrics,
    ingester: group::Ingester,
}

impl AppState {
    /// State for the database at `db`, opened (and migrated) once now to fail early.
    pub fn new(db: &str, limit: RateLimit) -> anyhow::Result<Arc<AppState>> {
        let store = siyu_store::open(db).context("opening the database")?;
        Ok(Arc::new(AppState {
            db: db.to_owned(),
            idle: Mutex::new(vec![store]),
            tokens: auth::TokenCache::default(),
            limiter: auth::Limiter::new(limit),
            metrics: Metrics::default(),
            ingester: group::Ingester::start(db)?,
        }))
    }

    /// Runs `work` with a store connection on a blocking thread.
    pub async fn with_store<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&mut dyn Store) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let state = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let taken = state.idle.lock().ok().and_then(|mut idle| idle.pop());
            let mut store = match taken {
                Some(s) => s,
                None => siyu_store::open(&state.db).context("opening the database")?,
            };
            let out = work(store.as_mut());
            if let Ok(mut idle) = state.idle.lock()
                && idle.len() < 16
            {
                idle.push(store);
            }
            out
        })
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("a request's worker failed: {e}")))?
    }
}

/// The API's routes over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/v1/openapi.json", get(ops::openapi))
        .route("/v1/docs", get(ops::docs))
        .route("/v1/batch", post(batch::batch))
        .route("/v1/customers", get(customers::list))
        .route("/v1/customers/{id}", get(customers::get_one))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), observe))
        .with_state(state)
}

/// Counts every request and its latency, by route and status.
async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.observe(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Serves the API at `addr` until Ctrl-C; prints the address it listens on (port 0 picks one).
pub fn serve(db: &str, addr: SocketAddr, limit: RateLimit) -> anyhow::Result<()> {
    let state = AppState::new(db, limit)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let local = listener.local_addr()?;
        println!("siyu serve: listening on http://{local}");
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("serving")
    })
}
