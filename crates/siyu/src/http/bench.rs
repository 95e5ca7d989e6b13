//! `siyu bench http`: the API under load on loopback. Writers post batches of `track`
//! events as fast as the server takes them while a reader asks for single customers; it
//! prints events per second and the reader's latency percentiles. The client is a few
//! lines of HTTP/1.1 with keep-alive over a TCP stream: no client library is needed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use siyu_core::access::Role;

use super::{AppState, RateLimit, router};
use crate::service::tokens;

#[derive(Debug, Serialize)]
pub struct HttpBench {
    pub backend: &'static str,
    pub seconds: f64,
    pub events: u64,
    pub events_per_second: f64,
    pub batch_size: usize,
    pub writers: usize,
    pub reads: u64,
    pub read_p50_ms: f64,
    pub read_p99_ms: f64,
    pub read_max_ms: f64,
}

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

/// Runs the load for `seconds` against a server on `db` (fresh) with `writers` writing
/// connections posting batches of `batch_size` events of `customers` customers.
pub fn run(
    db: &str,
    seconds: f64,
    writers: usize,
    batch_size: usize,
    customers: u64,
) -> anyhow::Result<HttpBench> {
    let state = AppState::new(
        db,
        RateLimit {
            per_second: 1e9,
            burst: 1e9,
        },
    )?;
    let (ingest, viewer, backend) = {
        let mut store = siyu_store::open(db)?;
        let tenant = store.tenant("bench")?;
        let ingest = tokens::create(store.as_mut(), &tenant, Role::Ingest, "bench")?.token;
        let viewer = tokens::create(store.as_mut(), &tenant, Role::Viewer, "bench")?.token;
        (ingest, viewer, store.backend())
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = router(Arc::clone(&state));
        tokio::spawn(super::conn::serve(
            listener,
            app,
            super::Limits::default(),
            std::future::pending(),
        ));
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..writers {
            let token = ingest.clone();
            tasks.push(tokio::spawn(async move {
                let mut client = Client::connect(addr, &token).await?;
                let mut sent = 0u64;
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let items: Vec<_> = (0..batch_size)
                        .map(|i| {
                            let k = n * batch_size as u64 + i as u64;
                            json!({"type": "track", "message_id": format!("w{w}-{k}"),
                                   "customer_id": format!("c{:07}", (k * 7919 + w as u64) % customers),
                                   "timestamp": "2025-06-01 12:00:00", "event": "view"})
                        })
                        .collect();
                    let body = json!({"batch": items}).to_string();
                    let (status, text) = client.call("POST", "/v1/batch", &body).await?;
                    if status != 200 {
                        bail!("batch answered {status}: {text}");
                    }
                    sent += batch_size as u64;
                    n += 1;
                }
                Ok::<u64, anyhow::Error>(sent)
            }));
        }
        let reader = tokio::spawn(async move {
            let mut client = Client::connect(addr, &viewer).await?;
            let mut latencies = Vec::new();
            let mut k = 0u64;
            while Instant::now() < deadline {
                let id = format!("c{:07}", (k * 104_729) % customers);
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
        let mut events = 0;
        for t in tasks {
            events += t.await??;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let mut latencies = reader.await??;
        latencies.sort();
        let pct = |p: f64| -> f64 {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1e3)
        };
        Ok(HttpBench {
            backend,
            seconds: elapsed,
            events,
            events_per_second: events as f64 / elapsed,
            batch_size,
            writers,
            reads: latencies.len() as u64,
            read_p50_ms: pct(0.50),
            read_p99_ms: pct(0.99),
            read_max_ms: latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        })
    })
}
