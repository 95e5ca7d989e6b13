//! Group commit for `/v1/batch`: one thread owns a write connection and takes every batch
//! waiting when it is free, writing those of one tenant in one transaction. SQLite writes
//! one transaction at a time anyway; gathering the batches waiting for it writes each
//! touched page once for all of them instead of once per batch. The same thread runs the
//! day's sweep's short writes between its groups, so that the sweep never waits for the
//! write lock beside it.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::oneshot;

use siyu_store::{Store, Tenant};

use crate::service::evaluate::SweepWrite;
use crate::service::ingest::{Checked, ItemResult, write_batches};
use crate::service::segments::rule_settings;

/// Items written in one transaction, at most (more wait for the next).
const GROUP_ITEMS: usize = 20_000;

/// After each group, the sweep's writes waiting run for as long as the group took, and
/// at least this long (one write at least): while a sweep runs, ingest keeps half the
/// writer or more, and the sweep moves on even when groups are short.
const SWEEP_TURN: Duration = Duration::from_millis(20);

/// Without a batch for this long, the writer is idle: the store does the upkeep that
/// waits for a pause (see `Store::when_idle`).
const IDLE: Duration = Duration::from_secs(2);

type Reply = oneshot::Sender<Result<Vec<ItemResult>, String>>;

/// A batch to write, and where its answer goes.
struct Batch {
    tenant: Tenant,
    checked: Vec<Checked>,
    reply: Reply,
}

/// What the writing thread is given to do.
enum Job {
    Batch(Batch),
    /// A write of the day's sweep (see `evaluate::Writes`), run on the writer's connection
    /// between two groups; it answers through a channel of its own.
    Run(SweepWrite),
}

/// The handle the handlers send batches through.
#[derive(Clone)]
pub struct Ingester {
    jobs: mpsc::Sender<Job>,
}

impl Ingester {
    /// Starts the writing thread on its own connection to `db`.
    pub fn start(db: &str) -> anyhow::Result<Ingester> {
        let mut store = siyu_store::open(db).context("opening the database for ingest")?;
        // A batch answered `accepted` survives a power loss; the store keeps its log in
        // hand while writes go on (see `Store::serve_writes`).
        store
            .serve_writes()
            .context("preparing the database for ingest")?;
        let (jobs, queue) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("siyu-ingest".into())
            .spawn(move || {
                // The sweep's writes waiting, in the order they came.
                let mut sweep: VecDeque<SweepWrite> = VecDeque::new();
                loop {
                    let job = if sweep.is_empty() {
                        match queue.recv_timeout(IDLE) {
                            Ok(job) => job,
                            Err(mpsc::RecvTimeoutError::Timeout) => {
                                if let Err(e) = store.when_idle() {
                                    tracing::warn!("upkeep of the idle store: {e:#}");
                                }
                                continue;
                            }
                            Err(mpsc::RecvTimeoutError::Disconnected) => break,
                        }
                    } else {
                        match queue.try_recv() {
                            Ok(job) => job,
                            Err(mpsc::TryRecvError::Empty) => {
                                // No batch waits: the sweep has the writer.
                                if let Some(work) = sweep.pop_front() {
                                    run(store.as_mut(), work);
                                    after_writes(store.as_mut());
                                }
                                continue;
                            }
                            Err(mpsc::TryRecvError::Disconnected) => break,
                        }
                    };
                    match job {
                        Job::Batch(first) => {
                            let started = Instant::now();
                            write_group(store.as_mut(), gather(first, &queue, &mut sweep));
                            let took = started.elapsed();
                            after_writes(store.as_mut());
                            // Then the sweep's turn, as long as the group's at most (and
                            // one write at least): ingest goes on at half speed or better.
                            let turn = Instant::now();
                            let ran = sweep_turn(
                                &mut sweep,
                                took,
                                || turn.elapsed(),
                                |work| run(store.as_mut(), work),
                            );
                            if ran > 0 {
                                after_writes(store.as_mut());
                            }
                        }
                        Job::Run(work) => sweep.push_back(work),
                    }
                }
            })
            .context("starting the ingest thread")?;
        Ok(Ingester { jobs })
    }

    /// Writes a batch with whatever else is waiting; the answer per item.
    pub async fn write(
        &self,
        tenant: Tenant,
        checked: Vec<Checked>,
    ) -> anyhow::Result<Vec<ItemResult>> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Batch(Batch {
                tenant,
                checked,
                reply,
            }))
            .map_err(|_| anyhow::anyhow!("the ingest thread has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the ingest thread dropped a batch"))?
            .map_err(|cause| anyhow::anyhow!(cause))
    }

    /// Hands a write of the sweep's to the writing thread, which runs it on its connection
    /// between two groups of batches (see `SWEEP_TURN`).
    pub fn run(&self, work: SweepWrite) -> anyhow::Result<()> {
        self.jobs
            .send(Job::Run(work))
            .map_err(|_| anyhow::anyhow!("the ingest thread has stopped"))
    }
}

/// A group: the first batch to come and every batch waiting behind it; the sweep's
/// writes met on the way are put with the others waiting.
fn gather(
    first: Batch,
    queue: &mpsc::Receiver<Job>,
    sweep: &mut VecDeque<SweepWrite>,
) -> Vec<Batch> {
    let mut items = first.checked.len();
    let mut group = vec![first];
    while items < GROUP_ITEMS {
        match queue.try_recv() {
            Ok(Job::Batch(next)) => {
                items += next.checked.len();
                group.push(next);
            }
            Ok(Job::Run(work)) => sweep.push_back(work),
            Err(_) => break,
        }
    }
    group
}

/// The sweep's turn after a group of batches that took `took`: the sweep's writes waiting
/// are run in order by `run`, one at least, and no more are started once `elapsed` (the
/// time since the turn began) reaches the group's time or [`SWEEP_TURN`], whichever is
/// longer. So a turn ends within one write of its limit, and the writes left wait for the
/// next turn in the order they came. How many ran.
fn sweep_turn<W>(
    sweep: &mut VecDeque<W>,
    took: Duration,
    elapsed: impl Fn() -> Duration,
    mut run: impl FnMut(W),
) -> usize {
    let limit = took.max(SWEEP_TURN);
    let mut ran = 0;
    while let Some(work) = sweep.pop_front() {
        run(work);
        ran += 1;
        if elapsed() >= limit {
            break;
        }
    }
    ran
}

/// The store's upkeep between two transactions of the writer.
fn after_writes(store: &mut dyn Store) {
    if let Err(e) = store.after_writes() {
        tracing::warn!("upkeep of the store after writes: {e:#}");
    }
}

/// Runs other work on the writer's connection; a panic in it is logged, and the writer
/// goes on (its transaction, dropped unfinished, is rolled back).
fn run(store: &mut dyn Store, work: SweepWrite) {
    let started = std::time::Instant::now();
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(store)));
    tracing::debug!(
        took_ms = started.elapsed().as_micros() as f64 / 1_000.0,
        ok = ran.is_ok(),
        "sweep write run"
    );
    if ran.is_err() {
        tracing::error!("a write handed to the ingest thread panicked");
    }
}

/// Writes a group, consecutive batches of one tenant in one transaction, and answers
/// each batch.
fn write_group(store: &mut dyn Store, group: Vec<Batch>) {
    let mut group = group.into_iter().peekable();
    while let Some(job) = group.next() {
        let tenant = job.tenant.clone();
        let mut same = vec![job];
        while let Some(next) = group.next_if(|j| j.tenant.id == tenant.id) {
            same.push(next);
        }
        let (batches, replies): (Vec<_>, Vec<_>) =
            same.into_iter().map(|j| (j.checked, j.reply)).unzip();
        // The tenant by name: a merchant's, not a person's.
        let span = tracing::debug_span!(
            "ingest_group",
            tenant = %tenant.name,
            batches = batches.len(),
            items = batches.iter().map(Vec::len).sum::<usize>(),
        );
        let _in = span.enter();
        let started = std::time::Instant::now();
        let written = rule_settings(store, &tenant)
            .and_then(|settings| write_batches(store, &tenant, &settings, batches));
        tracing::debug!(
            took_ms = started.elapsed().as_micros() as f64 / 1_000.0,
            ok = written.is_ok(),
            "ingest group written"
        );
        match written {
            Ok(answers) => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(Ok(answer));
                }
            }
            Err(e) => {
                let cause = format!("{e:#}");
                for reply in replies {
                    let _ = reply.send(Err(cause.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::ingest::parse_item;

    /// A turn of the sweep on a clock that each write moves on by `each`: how many ran,
    /// how long the turn took by that clock, and which writes are left.
    fn turn(took: Duration, each: Duration, writes: usize) -> (usize, Duration, Vec<usize>) {
        let clock = std::cell::Cell::new(Duration::ZERO);
        let mut sweep: VecDeque<usize> = (0..writes).collect();
        let mut order = Vec::new();
        let ran = sweep_turn(
            &mut sweep,
            took,
            || clock.get(),
            |k| {
                order.push(k);
                clock.set(clock.get() + each);
            },
        );
        assert_eq!(
            order,
            (0..ran).collect::<Vec<_>>(),
            "run in the order they came"
        );
        (ran, clock.get(), sweep.into_iter().collect())
    }

    #[test]
    fn a_sweeps_turn_lasts_as_long_as_the_group_took_and_no_write_longer() {
        let ms = Duration::from_millis;
        // A group of 100 ms, writes of 7 ms: the turn stops at the first write that ends
        // at 100 ms or later, and the rest wait, in order.
        let (ran, took, left) = turn(ms(100), ms(7), 40);
        assert_eq!(ran, 15);
        assert!(took >= ms(100) && took < ms(100) + ms(7), "{took:?}");
        assert_eq!(left, (15..40).collect::<Vec<_>>());
        // A short group: the turn lasts SWEEP_TURN.
        let (ran, took, _) = turn(ms(1), ms(7), 40);
        assert_eq!(ran, 3);
        assert!(took >= SWEEP_TURN && took < SWEEP_TURN + ms(7), "{took:?}");
        // A write longer than the turn: one, and only one, runs.
        let (ran, _, left) = turn(ms(5), ms(500), 3);
        assert_eq!((ran, left), (1, vec![1, 2]));
        // Fewer writes than the turn has room for: all run, none is waited for.
        let (ran, took, left) = turn(ms(100), ms(7), 4);
        assert_eq!((ran, took, left), (4, ms(28), vec![]));
    }

    #[test]
    fn an_idle_writer_empties_the_log_its_last_batch_left() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("siyu.db").to_string_lossy().into_owned();
        let tenant = siyu_store::open(&db)
            .and_then(|mut store| store.tenant("shop"))
            .expect("tenant");
        let ingester = Ingester::start(&db).expect("start");
        let item = serde_json::json!({"type": "track", "message_id": "m1", "customer_id": "c1",
                                      "timestamp": "2025-06-01 12:00:00", "event": "view"});
        let checked = vec![parse_item(&item, &tenant.zone).map_err(|why| (None, why))];
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let answer = runtime
            .block_on(ingester.write(tenant.clone(), checked))
            .expect("write");
        assert!(
            matches!(answer[..], [ItemResult::Accepted { .. }]),
            "{answer:?}"
        );

        let log = std::path::Path::new(&db).with_extension("db-wal");
        let size = || std::fs::metadata(&log).map_or(0, |m| m.len());
        assert!(size() > 0, "the batch is in the log");
        let deadline = std::time::Instant::now() + IDLE * 10;
        while size() > 0 && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(size(), 0, "the log is emptied once the writer is idle");
        let mut store = siyu_store::open(&db).expect("open");
        assert_eq!(store.table_counts(&tenant).expect("counts").events, 1);
    }
}
