//! `siyu bench http`: the API under the traffic a merchant's bridge sends, on loopback.
//! Writers post batches as fast as the server takes them while a reader asks for single
//! customers and a probe times how soon an order's segment entry shows. The pool may be a
//! demo shop built first (`--pool N`) with typical segments and tag rules defined
//! (`--segments K --tag-rules J`); the traffic has random message ids, eight event types
//! and some orders, times over the last 30 days, a tenth of its items for customers new to
//! the pool, and a few percent of batches sent twice (each must come back all duplicate).
//! It prints events per second over the run and per 10 s slice, the reader's latency
//! percentiles, the probe's, and the process's peak memory: the server and the client run
//! in this one process. The client is a few lines of HTTP/1.1 with keep-alive over a TCP
//! stream: no client library is needed.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use siyu_core::access::Role;
use siyu_core::demo::DemoConfig;
use siyu_core::rng::Rng;
use siyu_core::segment::rules::Purpose;
use siyu_core::{TenantZone, Timestamp};

use super::group::Ingester;
use super::sweep::sweep_tenant;
use super::{AppState, RateLimit, router};
use crate::service::segments::{NewRule, save_rule};
use crate::service::{demo, tokens};

/// What to run.
#[derive(Debug, Clone)]
pub struct HttpBenchOptions {
    pub seconds: f64,
    pub writers: usize,
    pub batch: usize,
    /// Without a pool: the customer ids the traffic names (all new to the empty pool).
    pub customers: u64,
    /// A demo shop of this many customers built first (through the import path).
    pub pool: Option<u64>,
    pub segments: usize,
    pub tag_rules: usize,
    pub seed: u64,
    /// The first benchmark's traffic, kept to compare builds with the figures measured by
    /// it: `view` events only, message ids counting up, one fixed time, no retries.
    pub simple: bool,
    /// Servers on the one database, each with its own connections and writer, as separate
    /// `siyu serve` processes would have; the writers take turns among them.
    pub servers: usize,
    /// Start the tenant's day's sweep (`siyu serve`'s midnight sweep: two connections of
    /// its own to read, its writes run by the first server's writer) this many seconds
    /// into the load.
    pub sweep_after: Option<f64>,
}

/// The most servers `--servers` starts.
pub const MAX_SERVERS: usize = 8;

#[derive(Debug, Serialize)]
pub struct HttpBench {
    pub backend: &'static str,
    pub pool: u64,
    pub segments: usize,
    pub tag_rules: usize,
    /// Building the pool and defining the rules, before the load.
    pub setup_seconds: f64,
    pub seconds: f64,
    pub events: u64,
    pub events_per_second: f64,
    /// Events per second in each whole 10 s slice of the run (a last part slice is left out).
    pub slices: Vec<f64>,
    pub slowest_slice: Option<f64>,
    pub batch_size: usize,
    pub writers: usize,
    pub servers: usize,
    /// Batches sent a second time, each answered all duplicate.
    pub retried_batches: u64,
    pub reads: u64,
    pub read_p50_ms: f64,
    pub read_p99_ms: f64,
    pub read_max_ms: f64,
    /// From an order's answer to the customer's segment entry showing in their 360 view.
    pub probes: u64,
    pub probe_p50_ms: Option<f64>,
    pub probe_max_ms: Option<f64>,
    pub peak_rss_mib: Option<f64>,
    /// The sweep started during the load, with `--sweep-after`.
    pub sweep: Option<SweepUnderLoad>,
}

/// A day's sweep run while the load went on.
#[derive(Debug, Serialize)]
pub struct SweepUnderLoad {
    /// Seconds into the load when it started and when it ended.
    pub started_at: f64,
    pub ended_at: f64,
    pub seconds: f64,
    pub customers: u64,
    pub entered: u64,
    pub exited: u64,
    /// How far the process's resident memory rose above what it was when the sweep
    /// started (sampled every 10 ms; the server's own growth meanwhile included).
    pub rss_growth_mib: Option<f64>,
    /// Events per second in the whole 10 s slices of the load the sweep overlapped.
    pub overlapped_slices: Vec<f64>,
}

/// Typical rules: stages, RFM classes, tags, event counts, spend and days since.
const SEGMENT_RULES: &[&str] = &[
    r#"rfm = "important_value" and days_since_order > 20"#,
    r#"stage in ("at_risk", "lost") and spend_365d >= 300"#,
    r#"stage = "vip""#,
    r#"count("post_like") >= 3 and orders = 0"#,
    r#"days_since_interaction <= 7 and stage = "repeat""#,
    r#"rfm in ("important_retention", "important_winback")"#,
    r#"channel = "douyin" and orders >= 1"#,
    r#"has_tag("engaged") and not has_tag("big_spender")"#,
    r#"journey = "intent" and days_since_joined <= 30"#,
    r#"coupon_share >= 0.5 and purchase_days >= 2"#,
];
const TAG_RULES: &[(&str, &str)] = &[
    ("big_spender", "spend_365d >= 1000"),
    (
        "engaged",
        r#"count("view") >= 5 or count("post_comment") >= 1"#,
    ),
    ("sleeper", "days_since_order > 60"),
    ("fan", r#"count("share") >= 1"#),
    ("frequent", "purchase_days >= 4"),
];
const EVENT_TYPES: &[&str] = &[
    "view",
    "click",
    "favorite",
    "add_to_cart",
    "post_like",
    "post_comment",
    "message",
    "share",
];
/// The probe's segment: customers of one order of ¥90,000 or more (no demo customer).
const PROBE_SEGMENT: (&str, &str) = ("bench_probe", "net_spend >= 90000");

/// One keep-alive connection.
struct Client {
    stream: BufReader<TcpStream>,
    host: String,
    token: String,
}

impl Client {
    async fn connect(addr: SocketAddr, token: &str) -> anyhow::Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream: BufReader::new(stream),
            host: addr.to_string(),
            token: token.to_owned(),
        })
    }

    /// Sends a request and reads the answer: (status, body).
    async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
    ) -> anyhow::Result<(u16, String)> {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            self.token,
            body.len()
        );
        self.stream.get_mut().write_all(request.as_bytes()).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("a status line, not '{}'", line.trim()))?;
        let mut length = 0usize;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse()?;
            }
        }
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).await?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// A random id of 32 hex digits, as a UUID without dashes.
fn random_id(rng: &mut Rng) -> String {
    format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64())
}

/// One batch of the traffic: events of eight types and a few orders, for customers of the
/// pool (`c` ids as the demo names them) and a tenth for customers new to it.
fn batch_items(
    rng: &mut Rng,
    options: &HttpBenchOptions,
    writer: usize,
    batch: u64,
    now: i64,
) -> Vec<Value> {
    if options.simple {
        let customers = options.customers.max(1);
        return (0..options.batch as u64)
            .map(|i| {
                let k = batch * options.batch as u64 + i;
                json!({"type": "track", "message_id": format!("w{writer}-{k}"),
                       "customer_id": format!("c{:07}", (k * 7919 + writer as u64) % customers),
                       "timestamp": "2025-06-01 12:00:00", "event": "view"})
            })
            .collect();
    }
    let (known, width) = match options.pool {
        Some(n) => (n.max(1), n.to_string().len().max(6)),
        None => (options.customers.max(1), 7),
    };
    (0..options.batch)
        .map(|_| {
            let customer = if options.pool.is_some() && rng.chance(0.1) {
                format!("n{writer}-{:012x}", rng.next_u64() >> 16)
            } else {
                format!("c{:0width$}", 1 + rng.below(known))
            };
            let back = rng.below(30 * 86_400) as i64;
            let at = Timestamp::from_second(now - back)
                .map(|t| t.to_string())
                .unwrap_or_default();
            let message = random_id(rng);
            if rng.chance(0.05) {
                json!({"type": "order", "message_id": message, "customer_id": customer,
                       "timestamp": at, "order_id": random_id(rng),
                       "amount": format!("{}.{:02}", 20 + rng.below(480), rng.below(100))})
            } else {
                let event = EVENT_TYPES[rng.below(EVENT_TYPES.len() as u64) as usize];
                json!({"type": "track", "message_id": message, "customer_id": customer,
                       "timestamp": at, "event": event})
            }
        })
        .collect()
}

/// Builds the tenant's pool and rules as the options ask; the ingest and viewer tokens and
/// the backend.
fn set_up(db: &str, options: &HttpBenchOptions) -> anyhow::Result<(String, String, &'static str)> {
    // A SQLite pool with its rules is built once and copied for later runs: building a
    // large one takes minutes.
    let cache = (options.pool.is_some() && !db.starts_with("postgres")).then(|| {
        std::env::temp_dir().join(format!(
            "siyu-bench-http-{}-{}-{}-{}.db",
            options.pool.unwrap_or(0),
            options.seed,
            options.segments,
            options.tag_rules
        ))
    });
    if let Some(cache) = cache.as_ref().filter(|c| c.exists()) {
        eprintln!("the pool and rules: a copy of {}", cache.display());
        std::fs::copy(cache, db).context("copying the cached pool")?;
        let mut store = siyu_store::open(db)?;
        let tenant = store.tenant("bench")?;
        let ingest = tokens::create(store.as_mut(), &tenant, Role::Ingest, "bench")?.token;
        let viewer = tokens::create(store.as_mut(), &tenant, Role::Viewer, "bench")?.token;
        return Ok((ingest, viewer, store.backend()));
    }
    let mut store = siyu_store::open(db)?;
    let tenant = store.tenant("bench")?;
    if let Some(customers) = options.pool {
        let until = TenantZone::default().day_of(Timestamp::now());
        let config = DemoConfig {
            customers: usize::try_from(customers).context("--pool")?,
            seed: options.seed,
            ..DemoConfig::new(until)
        };
        demo::build(store.as_mut(), &tenant, &config, None, false).context("building the pool")?;
    }
    for (name, rule) in TAG_RULES
        .iter()
        .cycle()
        .take(options.tag_rules)
        .enumerate()
        .map(|(i, (name, rule))| {
            let name = if i < TAG_RULES.len() {
                (*name).to_owned()
            } else {
                format!("{name}_{i}")
            };
            (name, *rule)
        })
    {
        save_rule(
            store.as_mut(),
            &tenant,
            NewRule::tag(&name, rule, None),
            "bench",
            false,
        )
        .with_context(|| format!("tag rule {name}"))?;
    }
    for (i, rule) in SEGMENT_RULES
        .iter()
        .cycle()
        .take(options.segments)
        .enumerate()
    {
        let name = format!("bench_{i}");
        save_rule(
            store.as_mut(),
            &tenant,
            NewRule::segment(&name, rule, Purpose::Analysis),
            "bench",
            false,
        )
        .with_context(|| format!("segment {name}"))?;
    }
    if options.segments > 0 {
        let (name, rule) = PROBE_SEGMENT;
        save_rule(
            store.as_mut(),
            &tenant,
            NewRule::segment(name, rule, Purpose::Analysis),
            "bench",
            false,
        )
        .context("the probe's segment")?;
    }
    if let Some(cache) = &cache {
        // Closed first, so that the file holds every page (the log is checkpointed).
        drop(store);
        let partial = cache.with_extension("partial");
        std::fs::copy(db, &partial).context("caching the pool")?;
        std::fs::rename(&partial, cache).context("caching the pool")?;
        store = siyu_store::open(db)?;
    }
    let ingest = tokens::create(store.as_mut(), &tenant, Role::Ingest, "bench")?.token;
    let viewer = tokens::create(store.as_mut(), &tenant, Role::Viewer, "bench")?.token;
    Ok((ingest, viewer, store.backend()))
}

/// The share of batches a writer sends twice.
const RETRY_SHARE: f64 = 0.03;

/// Runs the load on a server on `db` (a fresh database: the pool and rules are made here).
pub fn run(db: &str, options: &HttpBenchOptions) -> anyhow::Result<HttpBench> {
    let set_up_at = Instant::now();
    let (ingest, viewer, backend) = set_up(db, options)?;
    let setup_seconds = set_up_at.elapsed().as_secs_f64();
    if !(1..=MAX_SERVERS).contains(&options.servers) {
        bail!("--servers: from 1 to {MAX_SERVERS}");
    }
    let states = (0..options.servers)
        .map(|_| {
            AppState::new(
                db,
                RateLimit {
                    per_second: 1e9,
                    burst: 1e9,
                },
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let options = options.clone();
    runtime.block_on(async move {
        let mut addrs = Vec::with_capacity(states.len());
        for state in &states {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            addrs.push(listener.local_addr()?);
            tokio::spawn(super::conn::serve(
                listener,
                router(Arc::clone(state)),
                super::Limits::default(),
                std::future::pending(),
            ));
        }
        let addr = addrs[0];
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(options.seconds);
        // (seconds into the run when a batch was answered, its events)
        let answered: Arc<Mutex<Vec<(f64, u64)>>> = Arc::default();
        let mut tasks = Vec::new();
        for w in 0..options.writers {
            let token = ingest.clone();
            let options = options.clone();
            let answered = Arc::clone(&answered);
            let addr = addrs[w % addrs.len()];
            tasks.push(tokio::spawn(async move {
                let mut rng = Rng::new(options.seed ^ (w as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                let mut client = Client::connect(addr, &token).await?;
                let (mut sent, mut retried, mut batches) = (0u64, 0u64, 0u64);
                while Instant::now() < deadline {
                    let now = Timestamp::now().as_second();
                    let items = batch_items(&mut rng, &options, w, batches, now);
                    batches += 1;
                    let body = json!({"batch": items}).to_string();
                    let (status, text) = client.call("POST", "/v1/batch", &body).await?;
                    if status != 200 {
                        bail!("batch answered {status}: {text}");
                    }
                    sent += items.len() as u64;
                    if let Ok(mut a) = answered.lock() {
                        a.push((started.elapsed().as_secs_f64(), items.len() as u64));
                    }
                    if !options.simple && rng.chance(RETRY_SHARE) {
                        let (status, text) = client.call("POST", "/v1/batch", &body).await?;
                        let again: Value = serde_json::from_str(&text).unwrap_or_default();
                        if status != 200 || again["duplicates"].as_u64() != Some(items.len() as u64) {
                            bail!("a batch sent twice was not all duplicate the second time: {status} {text}");
                        }
                        retried += 1;
                    }
                }
                Ok::<(u64, u64), anyhow::Error>((sent, retried))
            }));
        }
        let pool = options.pool.unwrap_or(options.customers).max(1);
        let width = pool.to_string().len().max(6);
        let reader_token = viewer.clone();
        let reader = tokio::spawn(async move {
            let mut client = Client::connect(addr, &reader_token).await?;
            let mut latencies = Vec::new();
            let mut k = 0u64;
            while Instant::now() < deadline {
                let id = format!("c{:0width$}", 1 + (k * 104_729) % pool);
                let t = Instant::now();
                let (status, text) = client.call("GET", &format!("/v1/customers/{id}"), "").await?;
                if status != 200 && status != 404 {
                    bail!("customer answered {status}: {text}");
                }
                latencies.push(t.elapsed());
                k += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok::<Vec<Duration>, anyhow::Error>(latencies)
        });
        let sweeper = options.sweep_after.map(|after| {
            let db = db.to_owned();
            let writer = states[0].ingester.clone();
            std::thread::spawn(move || sweep_under_load(&db, &writer, started, after))
        });
        let probe = (options.segments > 0).then(|| {
            let (ingest, viewer) = (ingest.clone(), viewer.clone());
            tokio::spawn(async move { probe(addr, &ingest, &viewer, deadline).await })
        });
        let (mut events, mut retried_batches) = (0, 0);
        for t in tasks {
            let (sent, retried) = t.await??;
            events += sent;
            retried_batches += retried;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let mut latencies = reader.await??;
        latencies.sort();
        let mut probes = match probe {
            Some(p) => p.await??,
            None => Vec::new(),
        };
        probes.sort();
        let ms = |d: &Duration| d.as_secs_f64() * 1e3;
        let pct = |all: &[Duration], p: f64| -> Option<f64> {
            all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
                .map(ms)
        };
        let slices = slices(&answered.lock().map(|a| a.clone()).unwrap_or_default(), elapsed);
        let sweep = match sweeper {
            Some(thread) => {
                let mut sweep = thread
                    .join()
                    .map_err(|_| anyhow::anyhow!("the sweep's thread panicked"))??;
                sweep.overlapped_slices = slices
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| {
                        let (from, to) = (*i as f64 * 10.0, (*i + 1) as f64 * 10.0);
                        from < sweep.ended_at && sweep.started_at < to
                    })
                    .map(|(_, v)| *v)
                    .collect();
                Some(sweep)
            }
            None => None,
        };
        Ok(HttpBench {
            backend,
            pool: options.pool.unwrap_or(0),
            segments: options.segments,
            tag_rules: options.tag_rules,
            setup_seconds,
            seconds: elapsed,
            events,
            events_per_second: events as f64 / elapsed,
            slowest_slice: slices.iter().copied().reduce(f64::min),
            slices,
            batch_size: options.batch,
            writers: options.writers,
            servers: options.servers,
            retried_batches,
            reads: latencies.len() as u64,
            read_p50_ms: pct(&latencies, 0.50).unwrap_or(0.0),
            read_p99_ms: pct(&latencies, 0.99).unwrap_or(0.0),
            read_max_ms: latencies.last().map_or(0.0, ms),
            probes: probes.len() as u64,
            probe_p50_ms: pct(&probes, 0.50),
            probe_max_ms: probes.last().map(ms),
            peak_rss_mib: crate::service::bench::peak_rss_mib(),
            sweep,
        })
    })
}

/// Waits until `after` seconds past `started`, then runs the day's sweep of the bench's
/// tenant on `db` as `siyu serve` does at midnight (its code: two connections of its own
/// to read, its writes handed to the first server's writer), sampling the process's
/// resident memory meanwhile.
fn sweep_under_load(
    db: &str,
    writer: &Ingester,
    started: Instant,
    after: f64,
) -> anyhow::Result<SweepUnderLoad> {
    let mut store = siyu_store::open(db)?;
    let mut helper = siyu_store::open(db)?;
    let tenant = store.tenant("bench")?;
    if let Some(wait) = Duration::from_secs_f64(after.max(0.0)).checked_sub(started.elapsed()) {
        std::thread::sleep(wait);
    }
    let rss_before = rss_mib();
    let started_at = started.elapsed().as_secs_f64();
    let (moved, peak) = std::thread::scope(|scope| {
        let sweep = scope.spawn(|| {
            sweep_tenant(
                store.as_mut(),
                helper.as_mut(),
                writer,
                &tenant,
                "bench sweep",
            )
        });
        let mut peak = rss_before;
        while !sweep.is_finished() {
            peak = match (peak, rss_mib()) {
                (Some(p), Some(now)) => Some(p.max(now)),
                (p, now) => p.or(now),
            };
            std::thread::sleep(Duration::from_millis(10));
        }
        let moved = sweep
            .join()
            .map_err(|_| anyhow::anyhow!("the sweep panicked"))?;
        Ok::<_, anyhow::Error>((moved?, peak))
    })?;
    let ended_at = started.elapsed().as_secs_f64();
    Ok(SweepUnderLoad {
        started_at,
        ended_at,
        seconds: ended_at - started_at,
        customers: moved.customers,
        entered: moved.entered,
        exited: moved.exited,
        rss_growth_mib: rss_before.zip(peak).map(|(b, p)| (p - b).max(0.0)),
        overlapped_slices: Vec::new(),
    })
}

/// The process's resident set now (VmRSS), where the system tells it.
fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Events per second in each whole 10 s slice of a run of `elapsed` seconds.
fn slices(answered: &[(f64, u64)], elapsed: f64) -> Vec<f64> {
    let whole = (elapsed / 10.0).floor() as usize;
    let mut events = vec![0u64; whole];
    for &(at, n) in answered {
        if let Some(slot) = events.get_mut((at / 10.0) as usize) {
            *slot += n;
        }
    }
    events.into_iter().map(|n| n as f64 / 10.0).collect()
}

/// Every half second: an order that puts a new customer into the probe's segment, then the
/// customer's 360 view asked for until it shows the segment; the times from the order's
/// answer to that.
async fn probe(
    addr: SocketAddr,
    ingest: &str,
    viewer: &str,
    deadline: Instant,
) -> anyhow::Result<Vec<Duration>> {
    let mut writer = Client::connect(addr, ingest).await?;
    let mut reader = Client::connect(addr, viewer).await?;
    let mut times = Vec::new();
    let mut k = 0u64;
    while Instant::now() < deadline {
        k += 1;
        let id = format!("probe-{k}");
        let body = json!({"batch": [{"type": "order", "message_id": format!("probe-m{k}"),
            "customer_id": id, "timestamp": Timestamp::now().to_string(),
            "order_id": format!("probe-o{k}"), "amount": "90000"}]})
        .to_string();
        let (status, text) = writer.call("POST", "/v1/batch", &body).await?;
        if status != 200 || !text.contains(r#""accepted":1"#) {
            bail!("the probe's order answered {status}: {text}");
        }
        let answered = Instant::now();
        loop {
            let (status, text) = reader
                .call("GET", &format!("/v1/customers/{id}"), "")
                .await?;
            if status == 200 && text.contains(&format!("\"{}\"", PROBE_SEGMENT.0)) {
                times.push(answered.elapsed());
                break;
            }
            if answered.elapsed() > Duration::from_secs(60) {
                bail!(
                    "the probe's customer {id} was not in {} a minute after its order",
                    PROBE_SEGMENT.0
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(times)
}
