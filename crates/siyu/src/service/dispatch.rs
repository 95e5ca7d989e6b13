//! The dispatcher: delivers the outbox's due sends to their webhook endpoints, for every
//! tenant (see docs/delivery.md). Each round it records the outcomes that came back, then
//! claims what is due and fits the endpoints' limits (requests under way, requests per
//! second) and starts those requests on the tokio runtime. A claim counts an attempt and
//! leases the row until the attempt's timeout and a margin have passed, so a dispatcher
//! that dies mid-delivery leaves rows that come due again and are sent again, with the
//! same send id: at least once. A row is marked delivered only after the receiver's 2xx.
//!
//! Its store work runs on a thread of its own (the PostgreSQL client drives its own
//! runtime, which may not be started from a thread tokio knows); the requests run on the
//! runtime it is given.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use hyper::header::{CONTENT_TYPE, HeaderValue, USER_AGENT};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use siyu_core::Timestamp;
use siyu_core::rng::Rng;
use siyu_store::{Claimed, Outcome, Store, Tenant, WebhookEndpoint};

use super::delivery::{
    ATTEMPT_HEADER, SEND_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, retry_at, signature,
};

/// How long a claim holds a row past the attempt's timeout before it comes due again:
/// time to record the outcome.
const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// Rows claimed at once from one endpoint.
const CLAIM_AT_MOST: u32 = 256;
/// How often the tenants and their endpoints are read again.
const REFRESH_EVERY: Duration = Duration::from_secs(2);
/// How long an idle dispatcher waits before it looks for due sends again.
const IDLE_WAIT: Duration = Duration::from_millis(100);
/// What is read of a receiver's answer (its body is drained so the connection is reused).
const ANSWER_BYTES: usize = 64 * 1024;

/// An attempt that came back.
struct Done {
    tenant: i64,
    endpoint: String,
    outcome: Outcome,
}

/// An endpoint as the dispatcher keeps it: its limits and what is under way.
struct Lane {
    tenant: Tenant,
    endpoint: Arc<WebhookEndpoint>,
    in_flight: u32,
    /// Requests it may begin now under `max_per_second` (a bucket of a second's worth).
    tokens: f64,
    refilled: Instant,
}

impl Lane {
    /// How many requests may begin now.
    fn room(&mut self, now: Instant) -> u32 {
        let free = self.endpoint.max_in_flight.saturating_sub(self.in_flight);
        let rate = self.endpoint.max_per_second;
        if rate == 0 {
            return free;
        }
        let rate = f64::from(rate);
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate.max(1.0));
        self.refilled = now;
        // Whole tokens only (never above u32 by the min with `free`).
        #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = self.tokens.floor() as u32;
        free.min(whole)
    }

    /// The fewest requests worth a claim while others are under way: a quarter of the
    /// endpoint's requests in flight (within its rate), so that a busy endpoint is claimed
    /// for and recorded in batches, not one statement per send.
    fn batch(&self) -> u32 {
        let quarter = self.endpoint.max_in_flight / 4;
        let rate = match self.endpoint.max_per_second {
            0 => u32::MAX,
            r => r,
        };
        quarter.min(rate).max(1)
    }
}

/// What the dispatcher has done since it started (for the bench and `webhook test`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub attempts: u64,
    pub delivered: u64,
    pub retried: u64,
    pub dead: u64,
}

pub struct Dispatcher {
    client: Client<HttpConnector, Body>,
    runtime: tokio::runtime::Handle,
    sender: mpsc::Sender<Done>,
    results: mpsc::Receiver<Done>,
    /// By tenant id and endpoint name.
    lanes: HashMap<(i64, String), Lane>,
    /// Only this tenant's sends (`webhook test --now`), or every tenant's.
    only: Option<String>,
    refreshed: Option<Instant>,
    random: Rng,
    pub tally: Tally,
}

impl Dispatcher {
    /// A dispatcher whose requests run on `runtime`, for every tenant or `only` one.
    pub fn new(runtime: tokio::runtime::Handle, only: Option<String>) -> Dispatcher {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let (sender, results) = mpsc::channel();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        Dispatcher {
            client,
            runtime,
            sender,
            results,
            lanes: HashMap::new(),
            only,
            refreshed: None,
            random: Rng::new(seed),
            tally: Tally::default(),
        }
    }

    /// Requests under way.
    pub fn in_flight(&self) -> u32 {
        self.lanes.values().map(|l| l.in_flight).sum()
    }

    /// Reads the tenants and their endpoints again (a lane keeps what is under way).
    fn refresh(&mut self, store: &mut dyn Store) -> anyhow::Result<()> {
        if self
            .refreshed
            .is_some_and(|at| at.elapsed() < REFRESH_EVERY)
        {
            return Ok(());
        }
        let tenants = store.tenants().context("reading the tenants")?;
        let mut seen = Vec::new();
        for tenant in tenants {
            if self.only.as_ref().is_some_and(|only| *only != tenant.name) {
                continue;
            }
            for endpoint in store
                .webhooks(&tenant)
                .context("reading the webhook endpoints")?
            {
                let key = (tenant.id, endpoint.name.clone());
                seen.push(key.clone());
                let endpoint = Arc::new(endpoint);
                match self.lanes.get_mut(&key) {
                    Some(lane) => lane.endpoint = endpoint,
                    None => {
                        self.lanes.insert(
                            key,
                            Lane {
                                tenant: tenant.clone(),
                                tokens: f64::from(endpoint.max_per_second.max(1)),
                                endpoint,
                                in_flight: 0,
                                refilled: Instant::now(),
                            },
                        );
                    }
                }
            }
        }
        // An endpoint that went keeps its lane while requests to it are under way.
        self.lanes
            .retain(|key, lane| lane.in_flight > 0 || seen.contains(key));
        self.refreshed = Some(Instant::now());
        Ok(())
    }

    /// Claims what is due and fits, and starts its requests; how many were started.
    fn start_due(&mut self, store: &mut dyn Store) -> anyhow::Result<u32> {
        let mut started = 0;
        let now = Instant::now();
        for lane in self.lanes.values_mut() {
            let room = lane.room(now).min(CLAIM_AT_MOST);
            if room == 0 || (lane.in_flight > 0 && room < lane.batch()) {
                continue;
            }
            let at = Timestamp::now();
            let lease = Duration::from_millis(lane.endpoint.timeout_ms) + LEASE_MARGIN;
            let lease_until = at
                .checked_add(jiff::SignedDuration::try_from(lease).unwrap_or_default())
                .unwrap_or(at);
            let claimed = store
                .claim_deliveries(
                    &lane.tenant,
                    &lane.endpoint.name,
                    at,
                    lease_until,
                    room as usize,
                )
                .with_context(|| format!("claiming sends to {}", lane.endpoint.name))?;
            for send in claimed {
                lane.in_flight += 1;
                lane.tokens -= 1.0;
                started += 1;
                let (client, endpoint, sender) = (
                    self.client.clone(),
                    Arc::clone(&lane.endpoint),
                    self.sender.clone(),
                );
                let tenant = lane.tenant.id;
                self.runtime.spawn(async move {
                    let answer = attempt(&client, &endpoint, &send).await;
                    let _ = sender.send(Done {
                        tenant,
                        endpoint: endpoint.name.clone(),
                        outcome: match answer {
                            Ok(()) => Outcome::Delivered {
                                send_id: send.send_id,
                                at: Timestamp::now(),
                            },
                            // The retry time is drawn when it is recorded.
                            Err(error) => Outcome::Failed {
                                send_id: send.send_id,
                                attempt: send.attempt,
                                error,
                                retry_at: None,
                            },
                        },
                    });
                });
            }
        }
        self.tally.attempts += u64::from(started);
        Ok(started)
    }

    /// Waits up to `wait` for an attempt to come back, then records every one that has.
    fn collect(&mut self, store: &mut dyn Store, wait: Duration) -> anyhow::Result<usize> {
        let mut done = Vec::new();
        match self.results.recv_timeout(wait) {
            Ok(d) => done.push(d),
            Err(_) => return Ok(0),
        }
        while let Ok(d) = self.results.try_recv() {
            done.push(d);
        }
        let mut by_tenant: HashMap<i64, (Tenant, Vec<Outcome>)> = HashMap::new();
        let now = Timestamp::now();
        let n = done.len();
        for mut d in done {
            let Some(lane) = self.lanes.get_mut(&(d.tenant, d.endpoint)) else {
                continue;
            };
            lane.in_flight = lane.in_flight.saturating_sub(1);
            match &mut d.outcome {
                Outcome::Delivered { .. } => self.tally.delivered += 1,
                Outcome::Failed {
                    attempt,
                    retry_at: at,
                    ..
                } => {
                    *at = retry_at(&lane.endpoint, *attempt, now, self.random.next_u64());
                    if at.is_some() {
                        self.tally.retried += 1;
                    } else {
                        self.tally.dead += 1;
                    }
                }
            }
            by_tenant
                .entry(d.tenant)
                .or_insert_with(|| (lane.tenant.clone(), Vec::new()))
                .1
                .push(d.outcome);
        }
        for (tenant, outcomes) in by_tenant.values() {
            store
                .record_outcomes(tenant, outcomes)
                .with_context(|| format!("recording deliveries of tenant {}", tenant.name))?;
        }
        Ok(n)
    }

    /// One round: reads the endpoints if due, starts what is due and fits, and records
    /// what came back (waiting a little for it). Whether anything is under way.
    pub fn round(&mut self, store: &mut dyn Store) -> anyhow::Result<bool> {
        self.refresh(store)?;
        let started = self.start_due(store)?;
        let wait = if started > 0 {
            Duration::from_millis(2)
        } else if self.in_flight() > 0 {
            Duration::from_millis(50)
        } else {
            IDLE_WAIT
        };
        self.collect(store, wait)?;
        Ok(self.in_flight() > 0)
    }

    /// Waits until every request under way has come back, or `within` has passed,
    /// recording the outcomes; starts nothing new. What is still under way then stays
    /// pending in the outbox, sent again once its lease ends.
    pub fn finish(&mut self, store: &mut dyn Store, within: Duration) -> anyhow::Result<()> {
        let until = Instant::now() + within;
        while self.in_flight() > 0 && Instant::now() < until {
            self.collect(store, Duration::from_millis(50))?;
        }
        Ok(())
    }
}

/// One attempt: the signed POST and its answer; `Err` says why it failed (no personal
/// data: a status, a timeout, a connection error).
async fn attempt(
    client: &Client<HttpConnector, Body>,
    endpoint: &WebhookEndpoint,
    send: &Claimed,
) -> Result<(), String> {
    let timestamp = Timestamp::now().as_second();
    let request = hyper::Request::post(endpoint.url.as_str())
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header(USER_AGENT, HeaderValue::from_static("siyu-webhook/1"))
        .header(SEND_ID_HEADER, send.send_id.as_str())
        .header(ATTEMPT_HEADER, send.attempt)
        .header(TIMESTAMP_HEADER, timestamp)
        .header(
            SIGNATURE_HEADER,
            signature(&endpoint.secret, timestamp, &send.payload),
        )
        .body(Body::from(send.payload.clone()))
        .map_err(|e| format!("building the request: {e}"))?;
    let timeout = Duration::from_millis(endpoint.timeout_ms);
    let answer = tokio::time::timeout(timeout, async {
        let response = client.request(request).await?;
        let status = response.status();
        // Drained so the connection is reused; what it says does not matter.
        let _ = axum::body::to_bytes(Body::new(response.into_body()), ANSWER_BYTES).await;
        Ok::<_, hyper_util::client::legacy::Error>(status)
    })
    .await;
    match answer {
        Err(_) => Err(format!("no answer within {} ms", endpoint.timeout_ms)),
        Ok(Err(e)) => Err(format!("request failed: {}", error_chain(&e))),
        Ok(Ok(status)) if status.is_success() => Ok(()),
        Ok(Ok(status)) => Err(format!("answered {status}")),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Starts the dispatcher of `siyu serve` on a thread of its own with a connection of its
/// own to `db`, its requests on `runtime`. Once `stop` is set it starts nothing new, lets
/// the requests under way finish (up to the longest timeout of an endpoint) and returns.
pub fn start(
    db: &str,
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let mut store = siyu_store::open(db).context("opening the database for the dispatcher")?;
    let thread = std::thread::Builder::new()
        .name("siyu-dispatch".into())
        .spawn(move || {
            let mut dispatcher = Dispatcher::new(runtime, None);
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = dispatcher.round(store.as_mut()) {
                    tracing::warn!("the dispatcher: {e:#}");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            let longest = dispatcher
                .lanes
                .values()
                .map(|l| l.endpoint.timeout_ms)
                .max()
                .unwrap_or(0);
            let in_flight = dispatcher.in_flight();
            if in_flight > 0 {
                tracing::info!(
                    in_flight,
                    "stopping: letting the deliveries under way finish"
                );
            }
            if let Err(e) = dispatcher.finish(store.as_mut(), Duration::from_millis(longest + 1000))
            {
                tracing::warn!("the dispatcher, stopping: {e:#}");
            }
        })
        .context("starting the dispatcher's thread")?;
    Ok(thread)
}

/// `siyu webhook test --now`: delivers the tenant's due sends in this process until none
/// is due or under way (a retry due later stays in the outbox for `siyu serve`), and says
/// what came of them.
pub fn deliver_now(store: &mut dyn Store, tenant: &Tenant) -> anyhow::Result<Tally> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let mut dispatcher = Dispatcher::new(runtime.handle().clone(), Some(tenant.name.clone()));
    dispatcher.refresh(store)?;
    loop {
        let started = dispatcher.start_due(store)?;
        dispatcher.collect(store, Duration::from_millis(20))?;
        if started == 0 && dispatcher.in_flight() == 0 {
            break;
        }
    }
    Ok(dispatcher.tally)
}

/// What `siyu bench webhooks` measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchResult {
    pub backend: &'static str,
    pub sends: u64,
    pub max_in_flight: u32,
    /// Writing the sends to the outbox, in one transaction.
    pub enqueue_seconds: f64,
    /// From the dispatcher's start until every send was delivered and so recorded.
    pub deliver_seconds: f64,
    pub per_second: f64,
    /// Requests the receiver answered.
    pub received: u64,
}

/// `siyu bench webhooks`: `count` sends enqueued into the database at `db` (a tenant of
/// its own) and delivered by the dispatcher to a receiver on loopback in this process,
/// which answers 204 at once.
pub fn bench(db: &str, count: u64, max_in_flight: u32) -> anyhow::Result<BenchResult> {
    use std::sync::atomic::AtomicU64;

    let mut store = siyu_store::open(db).context("opening the database")?;
    let tenant = store.tenant(&format!("bench-webhooks-{}", std::process::id()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let received = Arc::new(AtomicU64::new(0));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .context("listening on loopback")?;
    let addr = listener.local_addr()?;
    let counter = Arc::clone(&received);
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                hyper::StatusCode::NO_CONTENT
            }
        }),
    );
    runtime.spawn(async move {
        let _ = axum::serve(listener, receiver).await;
    });
    let limits = super::delivery::Limits {
        max_in_flight: Some(max_in_flight),
        ..Default::default()
    };
    super::delivery::add_webhook(
        store.as_mut(),
        &tenant,
        "bench",
        &format!("http://{addr}/hook"),
        None,
        &limits,
    )?;
    let now = Timestamp::now();
    let sends: Vec<siyu_store::NewDelivery> = (0..count)
        .map(|i| siyu_store::NewDelivery {
            send_id: format!("bench-{i}"),
            endpoint: "bench".into(),
            payload: serde_json::json!({
                "type": "campaign_send",
                "send_id": format!("bench-{i}"),
                "customer_id": format!("c{i}"),
                "campaign": "bench",
                "message": "满200减30，本周有效",
            })
            .to_string(),
            not_before: now,
        })
        .collect();
    let started = Instant::now();
    store.enqueue(&tenant, &sends, now)?;
    let enqueue_seconds = started.elapsed().as_secs_f64();
    drop(sends);
    let started = Instant::now();
    let mut dispatcher = Dispatcher::new(runtime.handle().clone(), Some(tenant.name.clone()));
    while dispatcher.tally.delivered < count {
        dispatcher.round(store.as_mut())?;
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "not every send was delivered within 10 minutes ({} of {count})",
            dispatcher.tally.delivered
        );
    }
    let deliver_seconds = started.elapsed().as_secs_f64();
    #[expect(clippy::cast_precision_loss)]
    let per_second = count as f64 / deliver_seconds;
    Ok(BenchResult {
        backend: store.backend(),
        sends: count,
        max_in_flight,
        enqueue_seconds,
        deliver_seconds,
        per_second,
        received: received.load(Ordering::Relaxed),
    })
}
