//! `siyu serve`: the HTTP API under `/v1`, JSON in and out, bearer tokens per tenant.
//! The store is synchronous: each request borrows a connection from a small pool on a
//! blocking thread.

mod auth;
mod batch;
pub mod bench;
mod campaigns;
mod clv;
mod conn;
mod console;
mod customers;
pub mod error;
mod group;
mod merges;
mod ops;
mod privacy;
mod reports;
mod segment;
mod segments;
mod sweep;
mod tags;
mod tokens;
mod webhooks;
mod wecom;

pub use console::masked_phone as console_masked_phone;

/// Money as the console shows it in Chinese (for tests that compare pages with the API).
pub fn console_money(fen: i64) -> String {
    console::text::Lang::Zh.money(siyu_core::money::Money::from_fen(fen))
}
pub use wecom::aes_key as wecom_aes_key;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::body::{Body, HttpBody as _};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use tracing::Instrument as _;
use tracing::field::Empty;

use siyu_store::Store;

pub use crate::log::LogFormat;
pub use auth::{RateLimit, hash_token, new_token};
pub use conn::Limits;
use error::{ApiError, Code};
use ops::Metrics;
pub use ops::openapi_document;

/// What every request shares.
pub struct AppState {
    workers: Workers,
    tokens: auth::TokenCache,
    limiter: auth::Limiter,
    metrics: Metrics,
    ingester: group::Ingester,
    /// WeCom callbacks' secrets by tenant, read for a few seconds at a time.
    wecom: wecom::SecretsCache,
    /// For a request's whole body, from its headers.
    body_timeout: Duration,
    /// Tenants whose console is counting a rule's members now: one count at a time per
    /// tenant, as each judges the whole pool (seconds at a million customers).
    counting: Mutex<std::collections::HashSet<i64>>,
    /// The console's failed sign-ins by client address.
    sign_ins: console::AddressGuard,
    /// The console's report figures, kept while their tenant has not changed.
    pub(crate) figures: Arc<console::cache::FigureCache>,
}

type Job = Box<dyn FnOnce(&mut dyn Store) + Send>;

/// Threads of their own, each with a store connection, that run the requests' store work.
/// Not tokio's blocking pool: the PostgreSQL client drives its own runtime, which may not
/// be started from a thread tokio knows.
struct Workers {
    jobs: mpsc::Sender<Job>,
}

/// Store connections, and so requests at work at once.
const WORKERS: usize = 8;

impl Workers {
    fn start(db: &str) -> anyhow::Result<Workers> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..WORKERS {
            let queue = Arc::clone(&queue);
            let db = db.to_owned();
            // Opened now: opening migrates, which takes the write lock that a busy ingest
            // would make a first request wait for.
            let opened = siyu_store::open(&db).context("opening the database")?;
            std::thread::Builder::new()
                .name(format!("siyu-store-{i}"))
                .spawn(move || {
                    let mut store: Option<Box<dyn Store>> = Some(opened);
                    loop {
                        let job = match queue.lock() {
                            Ok(q) => match q.recv() {
                                Ok(job) => job,
                                Err(_) => return,
                            },
                            Err(_) => return,
                        };
                        if store.is_none() {
                            match siyu_store::open(&db) {
                                Ok(s) => store = Some(s),
                                Err(e) => {
                                    tracing::error!(worker = i, "opening the database: {e:#}");
                                    continue;
                                }
                            }
                        }
                        if let Some(s) = store.as_mut() {
                            let run =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    job(s.as_mut())
                                }));
                            if run.is_err() {
                                // A panic may leave the connection mid-transaction: start afresh.
                                tracing::error!(
                                    worker = i,
                                    "a store job panicked; its connection is opened afresh"
                                );
                                store = None;
                            }
                        }
                    }
                })
                .context("starting a store thread")?;
        }
        Ok(Workers { jobs })
    }
}

impl AppState {
    /// State for the database at `db`, opened (and migrated) once now to fail early.
    pub fn new(db: &str, limit: RateLimit) -> anyhow::Result<Arc<AppState>> {
        AppState::with_body_timeout(db, limit, Limits::default().body_timeout)
    }

    /// As `new`, with `body_timeout` for each request's body.
    pub fn with_body_timeout(
        db: &str,
        limit: RateLimit,
        body_timeout: Duration,
    ) -> anyhow::Result<Arc<AppState>> {
        drop(siyu_store::open(db).context("opening the database")?);
        Ok(Arc::new(AppState {
            workers: Workers::start(db)?,
            tokens: auth::TokenCache::default(),
            limiter: auth::Limiter::new(limit),
            metrics: Metrics::default(),
            ingester: group::Ingester::start(db)?,
            wecom: wecom::SecretsCache::default(),
            body_timeout,
            counting: Mutex::default(),
            sign_ins: console::AddressGuard::default(),
            figures: Arc::default(),
        }))
    }

    /// Runs `work` with a store connection on one of the store threads.
    pub async fn with_store<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&mut dyn Store) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        // The job's span sits in the request's, so a store failure says which route it was.
        let span = tracing::debug_span!("store_job", waited_ms = Empty, took_ms = Empty);
        let queued = Instant::now();
        let job: Job = Box::new(move |store| {
            let _in = span.enter();
            span.record("waited_ms", millis(queued.elapsed()));
            let started = Instant::now();
            let done = work(store);
            span.record("took_ms", millis(started.elapsed()));
            tracing::debug!("store job done");
            let _ = reply.send(done);
        });
        self.workers
            .jobs
            .send(job)
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("the store threads have stopped")))?;
        answer
            .await
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("a request's store work failed")))?
    }
}

/// The API's routes over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(console::routes())
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/v1/openapi.json", get(ops::openapi))
        .route("/v1/docs", get(ops::docs))
        .route("/v1/batch", post(batch::batch))
        .route("/v1/identify", post(segment::identify))
        .route("/v1/track", post(segment::track))
        .route("/v1/page", post(segment::page))
        .route("/v1/screen", post(segment::screen))
        .route("/v1/alias", post(segment::alias))
        .route(
            "/v1/wecom/callback/{tenant}",
            get(wecom::verify).post(wecom::event),
        )
        .route("/v1/customers", get(customers::list))
        .route(
            "/v1/customers/{id}",
            get(customers::get_one).delete(privacy::erase),
        )
        .route("/v1/reports/{name}", get(reports::report))
        .route("/v1/segments", get(segments::list).post(segments::create))
        .route("/v1/segments/{name}", delete(segments::delete))
        .route("/v1/segments/{name}/members", get(segments::members))
        .route("/v1/segments/{name}/history", get(segments::history))
        .route("/v1/customers/{id}/tags", post(tags::add))
        .route("/v1/customers/{id}/tags/{tag}", delete(tags::remove))
        .route("/v1/tags", get(tags::list))
        .route(
            "/v1/tags/rules/{name}",
            put(tags::put_rule).delete(tags::delete_rule),
        )
        .route("/v1/clv/fit", post(clv::fit))
        .route("/v1/clv/predict", get(clv::predict))
        .route("/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/v1/tokens/{prefix}", delete(tokens::revoke))
        .route("/v1/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/v1/customers/{id}/export", get(privacy::export))
        .route("/v1/customers/{id}/merge", post(merges::merge))
        .route("/v1/customers/{id}/unmerge", post(merges::unmerge))
        .route("/v1/customers/{id}/never-merge", post(merges::never_merge))
        .route("/v1/customers/{id}/ids", get(merges::ids))
        .route(
            "/v1/customers/{id}/opt-out",
            post(privacy::opt_out).delete(privacy::opt_in),
        )
        .route("/v1/audit", get(privacy::audit))
        .route(
            "/v1/offers",
            get(campaigns::list_offers).post(campaigns::create_offer),
        )
        .route(
            "/v1/campaigns",
            get(campaigns::list).post(campaigns::create),
        )
        .route("/v1/campaigns/{name}", get(campaigns::show))
        .route("/v1/campaigns/{name}/run", post(campaigns::run))
        .route("/v1/campaigns/{name}/pending", get(campaigns::pending))
        .route("/v1/campaigns/{name}/pause", post(campaigns::pause))
        .route("/v1/campaigns/{name}/resume", post(campaigns::resume))
        .route("/v1/campaigns/{name}/decisions", get(campaigns::decisions))
        .route("/v1/campaigns/{name}/results", get(campaigns::results))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), observe))
        .with_state(state)
}

/// Milliseconds to the microsecond, for the log.
fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1_000.0
}

/// Counts every request and its latency, by method, route and status, in a span of its own
/// (the route's template, never the path, which may hold a customer id); answers 408 when
/// the request's body did not come within the body timeout.
async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        method = %method,
        route = route.as_deref().unwrap_or("unmatched"),
        status = Empty,
        latency_ms = Empty,
    );
    observed(state, request, next, route, method, span.clone())
        .instrument(span)
        .await
}

async fn observed(
    state: Arc<AppState>,
    request: Request,
    next: Next,
    route: Option<String>,
    method: axum::http::Method,
    span: tracing::Span,
) -> Response {
    let started = Instant::now();
    let mut expired = None;
    let request = if request.body().is_end_stream() {
        request
    } else {
        let flag = Arc::new(AtomicBool::new(false));
        expired = Some(Arc::clone(&flag));
        request.map(|body| Body::new(conn::TimedBody::new(body, state.body_timeout, flag)))
    };
    let mut response = next.run(request).await;
    if expired.is_some_and(|e| e.load(Ordering::Relaxed)) {
        response = body_too_slow(state.body_timeout);
    }
    let took = started.elapsed();
    let status = response.status().as_u16();
    state
        .metrics
        .observe(&method, route.as_deref(), status, took);
    span.record("status", status);
    span.record("latency_ms", millis(took));
    tracing::debug!("request served");
    response
}

/// The answer to a request whose body did not come in time; the connection closes after
/// it, as the rest of the body may still be on its way.
fn body_too_slow(within: Duration) -> Response {
    let mut response = ApiError::new(
        Code::RequestTimeout,
        format!(
            "the request body did not come within {} s",
            within.as_secs()
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Serves the API at `addr` until Ctrl-C; prints the address it listens on (port 0 picks one).
pub fn serve(db: &str, addr: SocketAddr, limit: RateLimit, limits: Limits) -> anyhow::Result<()> {
    let limits = Limits {
        max_connections: conn::fit_to_open_files(limits.max_connections),
        ..limits
    };
    let state = AppState::with_body_timeout(db, limit, limits.body_timeout)?;
    sweep::start(db, state.ingester.clone()).context("starting the day's sweep")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dispatcher =
        crate::service::dispatch::start(db, runtime.handle().clone(), Arc::clone(&stop))
            .context("starting the webhook dispatcher")?;
    let ticker = crate::service::campaigns::start_ticker(db, Arc::clone(&stop))?;
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let local = listener.local_addr()?;
        println!("siyu serve: listening on http://{local}");
        conn::serve(listener, router(state), limits, stop_asked()).await;
        tracing::info!("stopped: every request in flight answered");
        Ok(())
    });
    // The deliveries under way finish on the runtime, which lives until they have.
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if dispatcher.join().is_err() {
        tracing::error!("the webhook dispatcher panicked");
    }
    if ticker.join().is_err() {
        tracing::error!("the steps' ticker panicked");
    }
    served
}

/// Ctrl-C or SIGTERM (what a service manager or `docker stop` sends): the server then
/// stops accepting, answers the requests in flight (each batch answered is committed) and
/// exits 0.
async fn stop_asked() {
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("stopping: no new connections; answering the requests in flight");
}
