//! The write-ahead log on SQLite: a server's writer leaves copying it back to a thread
//! of the store's own, starts it again between transactions and empties it when idle;
//! an erasure empties it so that no old version of an erased row stays in it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::SqliteStore;
use crate::{Result, StoreError};

/// How often, at most, the writer copies the log back itself so that the log starts
/// again (see [`SqliteStore::after_writes_now`]). That copy ends by syncing the database
/// file, and the sync writes out every page the checkpoint thread copied since the last
/// one: the longer between two, the more often a page changed by many commits meanwhile
/// is written to the disk once, and the less the writer waits. Every second, the rate
/// over 45 s of `siyu bench http` fell a sixth below its first 10 s; every 3 s it holds.
/// The price is the log's size, up to this long's writes (over a gigabyte at full speed),
/// until the writer is idle.
const LOG_RESTART: Duration = Duration::from_secs(3);

/// The checkpoint thread's pause between passes (a pass with nothing to copy is a few
/// microseconds). Longer pauses copy a page changed by several commits fewer times (at
/// 200 ms the thread spent 5 samples per 1,000 events of `siyu bench http` on the
/// million-customer pool instead of 7), but leave more for the writer to copy at the next
/// restart of the log (its share of the samples doubled, 2 to 4%): the writer is the
/// thread that bounds the rate.
const BETWEEN_PASSES: Duration = Duration::from_millis(20);

/// A serving writer's hold on the log.
pub(super) struct Serving {
    /// `None` for a database in memory, which has no log.
    _checkpoints: Option<Checkpoints>,
    /// When the log last started again.
    restarted: Instant,
    /// Whether anything was written since the log was last emptied.
    written: bool,
}

/// The thread that copies the log back while the writer goes on, on a connection of its
/// own; stopped (and waited for) when dropped.
struct Checkpoints {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Checkpoints {
    fn start(path: &str) -> Result<Checkpoints> {
        let mut other = SqliteStore::open(path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name("siyu-checkpoint".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    if let Err(e) = other.checkpoint() {
                        tracing::warn!("checkpoint: {e:#}");
                    }
                    thread::sleep(BETWEEN_PASSES);
                }
            })
            .map_err(|e| {
                StoreError::Other(format!("starting the checkpoint thread: {e}").into())
            })?;
        Ok(Checkpoints {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl SqliteStore {
    pub(super) fn serve_writes_now(&mut self) -> Result<()> {
        self.durable_commits()?;
        // Commits here never wait to copy the log back into the database: a thread of its
        // own does that while writes go on, pass after pass while commits come in, so that
        // the writer's own copy at each restart of the log finds little left to do.
        self.defer_checkpoints()?;
        let checkpoints = match self.conn.path() {
            Some(path) if !path.is_empty() => Some(Checkpoints::start(path)?),
            _ => None,
        };
        self.serving = Some(Serving {
            _checkpoints: checkpoints,
            restarted: Instant::now(),
            written: false,
        });
        Ok(())
    }

    pub(super) fn after_writes_now(&mut self) -> Result<()> {
        let Some(serving) = &mut self.serving else {
            return Ok(());
        };
        serving.written = true;
        // The checkpoint thread's copying never catches up with a writer that commits
        // without pause, and the log would grow without end. Between two transactions
        // nothing new is written: copying the rest now lets the next one start the log
        // from its beginning. While that thread is in a pass this one cannot copy: it
        // tries again after the next transaction.
        if serving.restarted.elapsed() < LOG_RESTART {
            return Ok(());
        }
        let copied = checkpoint(&self.conn);
        if let Some(serving) = &mut self.serving
            && !matches!(copied, Ok(false))
        {
            serving.restarted = Instant::now();
        }
        copied.map(|_| ())
    }

    pub(super) fn when_idle_now(&mut self) -> Result<()> {
        // A burst would otherwise leave the log its size on disk.
        let Some(serving) = &self.serving else {
            return Ok(());
        };
        if serving.written {
            let emptied = scrub_log(&self.conn)?;
            if let Some(serving) = &mut self.serving {
                serving.written = !emptied;
            }
        }
        Ok(())
    }

    /// For a connection that writes continually: leave copying the log back into the
    /// database to [`SqliteStore::checkpoint`] on another connection, so that commits
    /// never wait for it.
    pub(super) fn defer_checkpoints(&mut self) -> Result<()> {
        self.conn.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
        Ok(())
    }

    /// Every commit on disk when it returns, so that it survives a power loss.
    pub(super) fn durable_commits(&mut self) -> Result<()> {
        // In WAL mode NORMAL syncs only at checkpoints, so the last commits before a power
        // loss can go; FULL syncs the log at every commit. The ingest commits a group of
        // batches at a time, so one sync serves them all.
        self.conn.execute_batch("PRAGMA synchronous = FULL")?;
        Ok(())
    }

    /// Copies what it can of the log back without waiting for writers; true when nothing
    /// is left to copy, false when another connection was copying or part of the log was
    /// still in use.
    pub(super) fn checkpoint(&mut self) -> Result<bool> {
        checkpoint(&self.conn)
    }
}

fn checkpoint(conn: &Connection) -> Result<bool> {
    // (busy, frames in the log, frames copied): busy while another connection copies.
    let (busy, log, copied): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    Ok(busy == 0 && copied >= log)
}

/// Copies the log back and empties it, so that no old version of a row stays in it.
/// False if other connections kept it from finishing (the old frames are then
/// overwritten as the log is reused).
pub(super) fn scrub_log(conn: &Connection) -> Result<bool> {
    // (busy, frames in the log, frames copied): the log is emptied unless busy.
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    Ok(busy == 0)
}

/// Set by an erasure: when the transaction has ended (its field dropped after the
/// transaction's), the log is emptied, best effort.
pub(super) struct ScrubAfter<'c> {
    pub(super) conn: &'c Connection,
}

impl Drop for ScrubAfter<'_> {
    fn drop(&mut self) {
        let _ = scrub_log(self.conn);
    }
}
