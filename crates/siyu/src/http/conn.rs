//! The serve loop and what guards it from slow or numerous clients: each connection on
//! hyper's HTTP/1 with a deadline for a request's headers (which also ends idle kept-alive
//! connections), a deadline for its body, and a cap on connections open at once, past which
//! new ones are closed as they come, said in a log line at most once a second.

use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};

/// How long clients may take, and how many may be connected at once.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// For a request's line and headers, from when the server waits for them: a new
    /// connection's first request, or the next one on a kept-alive connection.
    pub header_timeout: Duration,
    /// For a request's whole body, from its headers.
    pub body_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

/// File descriptors kept for the store, logs and the listener beside the connections.
const SPARE_FILES: u64 = 128;

/// Raises the soft limit on open files to the hard one, and returns `max_connections`,
/// lowered (and said on stderr) if the limit leaves too little room for it.
pub fn fit_to_open_files(max_connections: usize) -> usize {
    let Ok(files) = rlimit::increase_nofile_limit(u64::MAX) else {
        return max_connections;
    };
    let room = usize::try_from(files.saturating_sub(SPARE_FILES).max(1)).unwrap_or(usize::MAX);
    if max_connections > room {
        tracing::warn!(
            "at most {room} connections at once, not {max_connections}: the process may open {files} files"
        );
        room
    } else {
        max_connections
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets the open connections
/// finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Each connection holds a receiver: a change asks it to finish, and the sender's
    // `closed` says when all have.
    let (stop, stopped) = watch::channel(());
    let mut shed = Shed::new(limits.max_connections);
    let mut shutdown = pin!(shutdown);
    loop {
        let report_at = shed.report_at();
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
            () = sleep_until_some(report_at) => {
                shed.report();
                continue;
            }
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                accept_failed(&e).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream);
            shed.one();
            continue;
        };
        // The client's address, for what counts by it (the console's sign-ins).
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            app.clone(),
            move |mut r: axum::http::Request<hyper::body::Incoming>| {
                r.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                r
            },
        ));
        let mut stopping = stopped.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stopping.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(slot);
            drop(stopping);
        });
    }
    drop(listener);
    drop(stopped);
    let _ = stop.send(());
    stop.closed().await;
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// An accept that failed: a connection reset before it was taken is nothing; anything else
/// (out of files, say) is said, and the loop waits a little before it tries again.
async fn accept_failed(e: &io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!("accepting a connection: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Connections closed for want of a slot, said at most once a second.
struct Shed {
    cap: usize,
    unreported: u64,
    reported_at: Option<Instant>,
}

const REPORT_EVERY: Duration = Duration::from_secs(1);

impl Shed {
    fn new(cap: usize) -> Shed {
        Shed {
            cap,
            unreported: 0,
            reported_at: None,
        }
    }

    fn one(&mut self) {
        self.unreported += 1;
        if self
            .reported_at
            .is_none_or(|at| at.elapsed() >= REPORT_EVERY)
        {
            self.report();
        }
    }

    /// When the connections shed since the last line are due to be said.
    fn report_at(&self) -> Option<Instant> {
        match (self.unreported, self.reported_at) {
            (0, _) | (_, None) => None,
            (_, Some(at)) => Some(at + REPORT_EVERY),
        }
    }

    fn report(&mut self) {
        tracing::warn!(
            "shedding load: all {} connection slots taken (--max-connections); new connections closed at once since the last report: {}",
            self.cap,
            self.unreported
        );
        self.unreported = 0;
        self.reported_at = Some(Instant::now());
    }
}

/// A request body that fails once its deadline passes, and marks `expired` so that the
/// answer can say why.
pub struct TimedBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
}

impl TimedBody {
    pub fn new(inner: Body, within: Duration, expired: Arc<AtomicBool>) -> TimedBody {
        TimedBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(within)),
            expired,
        }
    }
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let ready @ Poll::Ready(_) = Pin::new(&mut this.inner).poll_frame(cx) {
            return ready;
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(axum::Error::new(io::Error::new(
                io::ErrorKind::TimedOut,
                "the request body came too slowly",
            )))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
