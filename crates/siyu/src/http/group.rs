//! Group commit for `/v1/batch`: one thread owns a write connection and takes every batch
//! waiting when it is free, writing those of one tenant in one transaction. SQLite writes
//! one transaction at a time anyway; gathering the batches waiting for it writes each
//! touched page once for all of them instead of once per batch.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::oneshot;

use siyu_store::{Store, Tenant};

use crate::service::ingest::{Checked, ItemResult, write_batches};
use crate::service::segments::rule_settings;

/// Items written in one transaction, at most (more wait for the next).
const GROUP_ITEMS: usize = 20_000;

/// How often the writer copies the log back itself (see [`Ingester::start`]).
const LOG_RESTART: Duration = Duration::from_secs(1);

/// The checkpoint thread's pause between passes (a pass with nothing to copy is a few
/// microseconds).
const BETWEEN_PASSES: Duration = Duration::from_millis(20);

type Reply = oneshot::Sender<Result<Vec<ItemResult>, String>>;

struct Job {
    tenant: Tenant,
    checked: Vec<Checked>,
    reply: Reply,
}

/// The handle the handlers send batches through.
pub struct Ingester {
    jobs: mpsc::Sender<Job>,
}

impl Ingester {
    /// Starts the writing thread on its own connection to `db`.
    pub fn start(db: &str) -> anyhow::Result<Ingester> {
        let mut store = siyu_store::open(db).context("opening the database for ingest")?;
        let sqlite = store.backend() == "sqlite";
        // Commits here never wait to copy the log back into the database: a thread of its
        // own does that while writes go on, pass after pass while commits come in, so that
        // the writer's own copy at each restart of the log (below) finds little left to do.
        // (PostgreSQL has nothing to defer.)
        if sqlite {
            store.defer_checkpoints()?;
            let mut checkpoints = siyu_store::open(db).context("opening the database")?;
            thread::Builder::new()
                .name("siyu-checkpoint".into())
                .spawn(move || {
                    loop {
                        if let Err(e) = checkpoints.checkpoint() {
                            eprintln!("siyu serve: checkpoint: {e}");
                        }
                        thread::sleep(BETWEEN_PASSES);
                    }
                })
                .context("starting the checkpoint thread")?;
        }
        let (jobs, queue) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("siyu-ingest".into())
            .spawn(move || {
                let mut restarted = Instant::now();
                while let Some(group) = gather(&queue) {
                    write_group(store.as_mut(), group);
                    // That thread's copying never catches up with a writer that commits
                    // without pause, and the log would grow without end. Between two
                    // groups nothing new is written: copying the rest now lets the next
                    // transaction start the log from its beginning. While that thread is
                    // in a pass, this one cannot copy: it tries again after the next group.
                    if sqlite && restarted.elapsed() >= LOG_RESTART {
                        match store.checkpoint() {
                            Ok(false) => {}
                            Ok(true) => restarted = Instant::now(),
                            Err(e) => {
                                eprintln!("siyu serve: checkpoint: {e}");
                                restarted = Instant::now();
                            }
                        }
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
            .send(Job {
                tenant,
                checked,
                reply,
            })
            .map_err(|_| anyhow::anyhow!("the ingest thread has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the ingest thread dropped a batch"))?
            .map_err(|cause| anyhow::anyhow!(cause))
    }
}

/// The next group: the first batch to come and every batch waiting behind it. None once
/// the handle is gone.
fn gather(queue: &mpsc::Receiver<Job>) -> Option<Vec<Job>> {
    let first = queue.recv().ok()?;
    let mut items = first.checked.len();
    let mut group = vec![first];
    while items < GROUP_ITEMS {
        let Ok(next) = queue.try_recv() else { break };
        items += next.checked.len();
        group.push(next);
    }
    Some(group)
}

/// Writes a group, consecutive batches of one tenant in one transaction, and answers
/// each batch.
fn write_group(store: &mut dyn Store, group: Vec<Job>) {
    let mut group = group.into_iter().peekable();
    while let Some(job) = group.next() {
        let tenant = job.tenant.clone();
        let mut same = vec![job];
        while let Some(next) = group.next_if(|j| j.tenant.id == tenant.id) {
            same.push(next);
        }
        let (batches, replies): (Vec<_>, Vec<_>) =
            same.into_iter().map(|j| (j.checked, j.reply)).unzip();
        let written = rule_settings(store, &tenant)
            .and_then(|settings| write_batches(store, &tenant, &settings, batches));
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
