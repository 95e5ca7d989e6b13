//! The day's sweep of `siyu serve`: rules that read the day (`days_since_order > 20`, the
//! stages by days) move customers by time alone, so once each tenant's local day begins,
//! the day's thresholds are computed and every customer is evaluated again, the changes
//! recorded with the occasion `midnight` (`server start` for the first pass, which catches
//! up on days the server was not running). Without a server, `siyu segment refresh` from
//! cron does the same. The sweep computes the thresholds and finds who moves on read
//! snapshots (two threads, two connections of its own), and hands its writes, the
//! thresholds and then the movers a few thousand at a time, to the server's ingest writer,
//! which runs them between its groups of batches: reads never wait, and ingest waits for
//! one short write at a time instead of both polling for SQLite's write lock.

use std::collections::HashMap;
use std::time::Duration;

use jiff::civil::Date;

use siyu_core::Timestamp;
use siyu_store::{Store, Tenant};

use super::group::Ingester;
use crate::service::evaluate;
use crate::service::segments::RulesError;

/// How often the thread looks whether a tenant's day has changed.
const LOOK_EVERY: Duration = Duration::from_secs(30);

/// Starts the sweeping thread on a connection of its own to `db`, with a second one for
/// the sweep's second thread; its writes go to `writer`, the server's.
pub fn start(db: &str, writer: Ingester) -> anyhow::Result<()> {
    let mut store = siyu_store::open(db)?;
    let mut helper = siyu_store::open(db)?;
    std::thread::Builder::new()
        .name("siyu-sweep".into())
        .spawn(move || {
            let mut swept: HashMap<String, Date> = HashMap::new();
            loop {
                if let Err(e) = pass(store.as_mut(), helper.as_mut(), &writer, &mut swept) {
                    tracing::warn!("the day's sweep: {e:#}");
                }
                std::thread::sleep(LOOK_EVERY);
            }
        })?;
    Ok(())
}

/// The day's sweep of one tenant as the server runs it: reading on `store` and `helper`,
/// writing through `writer`.
pub(super) fn sweep_tenant(
    store: &mut dyn Store,
    helper: &mut dyn Store,
    writer: &Ingester,
    tenant: &Tenant,
    occasion: &str,
) -> Result<evaluate::Moved, RulesError> {
    let write = |work| writer.run(work);
    evaluate::sweep(
        store,
        Some(helper),
        tenant,
        occasion,
        evaluate::Writes::Writer(&write),
    )
}

/// Sweeps each tenant whose local day is not the one it was last swept on.
fn pass(
    store: &mut dyn Store,
    helper: &mut dyn Store,
    writer: &Ingester,
    swept: &mut HashMap<String, Date>,
) -> anyhow::Result<()> {
    for tenant in store.tenants()? {
        let name = tenant.name.clone();
        let today = tenant.zone.day_of(Timestamp::now());
        let occasion = match swept.get(&name) {
            Some(day) if *day == today => continue,
            Some(_) => "midnight",
            None => "server start",
        };
        let span = tracing::info_span!("sweep", tenant = %name, occasion);
        let _entered = span.enter();
        let moved = sweep_tenant(store, helper, writer, &tenant, occasion)?;
        tracing::info!(
            customers = moved.customers,
            entered = moved.entered,
            exited = moved.exited,
            seconds = moved.seconds,
            "swept"
        );
        swept.insert(name, today);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::service::evaluate::tests::{nothing_left, stale_pool};
    use crate::service::evaluate::{SweepWrite, Writes, sweep_in_slices};
    use crate::service::ingest::{ItemResult, parse_item};

    /// Sweeps a stale pool in slices of 3 on two threads, its writes run by the server's
    /// writer, and before each of its writes a batch of orders goes through that writer
    /// too: customers of the slices judged anew (by the batch, by the day's thresholds)
    /// between the sweep's read of a slice and its write. Then an evaluation of everyone
    /// has nothing left to record, and the history holds each change once.
    fn batches_between_a_slices_read_and_its_write(db: &str, tenant_name: &str) {
        let dir = tempfile::tempdir().expect("dir");
        let mut store = siyu_store::open(db).expect("open");
        let mut helper = siyu_store::open(db).expect("open");
        let tenant = store.tenant(tenant_name).expect("tenant");
        stale_pool(store.as_mut(), &tenant, dir.path());
        let writer = Ingester::start(db).expect("writer");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let calls = AtomicUsize::new(0);
        let batches_moved = AtomicUsize::new(0);
        let write = |work: SweepWrite| {
            // The first write saves the thresholds (the batch before it adds a customer after
            // the slices' ends were listed); each later one records a slice's movers.
            let k = calls.fetch_add(1, Ordering::SeqCst);
            {
                let at = Timestamp::now().to_string();
                let items = [
                    format!("c{:02}", k * 7 % 23),
                    format!("c{:02}", (k * 11 + 3) % 23),
                    format!("new{k}"),
                ]
                .into_iter()
                .enumerate()
                .map(|(j, customer)| {
                    let item = serde_json::json!({"type": "order", "message_id": format!("m{k}-{j}"),
                        "customer_id": customer, "timestamp": at, "order_id": format!("o{k}-{j}"),
                        "amount": "50000"});
                    parse_item(&item, &tenant.zone).map_err(|why| (None, why))
                })
                .collect();
                let answer = runtime
                    .block_on(writer.write(tenant.clone(), items))
                    .expect("batch");
                assert!(
                    answer
                        .iter()
                        .all(|a| matches!(a, ItemResult::Accepted { .. })),
                    "{answer:?}"
                );
                batches_moved.fetch_add(1, Ordering::SeqCst);
            }
            writer.run(work)
        };
        let moved = sweep_in_slices(
            store.as_mut(),
            Some(helper.as_mut()),
            &tenant,
            "midnight",
            Writes::Writer(&write),
            (3, 2),
        )
        .expect("sweep");
        // The 23 and the customer added before the thresholds were saved, whose id comes
        // after the last end listed; those added later were judged by the day's thresholds.
        assert_eq!(moved.customers, 24);
        assert!(
            batches_moved.load(Ordering::SeqCst) >= 4,
            "batches between reads and writes: {}",
            batches_moved.load(Ordering::SeqCst)
        );
        let (history, members) = nothing_left(store.as_mut(), &tenant);
        let mut replayed = std::collections::BTreeSet::new();
        for h in history.iter().rev() {
            let key = (h.kind, h.name.clone(), h.customer_id.clone());
            match h.change {
                siyu_core::segment::rules::Change::Entered => {
                    assert!(replayed.insert(key), "entered twice: {h:?}")
                }
                siyu_core::segment::rules::Change::Exited => {
                    assert!(replayed.remove(&key), "exited unseen: {h:?}")
                }
            }
        }
        assert_eq!(replayed.len(), members.len());
        assert!(history.iter().any(|h| h.cause == "midnight"));
        assert!(history.iter().any(|h| h.cause != "midnight"));
    }

    #[test]
    fn batches_written_between_a_slices_read_and_its_write_leave_a_full_evaluation_on_sqlite() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("pool.db");
        batches_between_a_slices_read_and_its_write(&db.to_string_lossy(), "shop");
    }

    #[test]
    fn batches_written_between_a_slices_read_and_its_write_leave_a_full_evaluation_on_postgres() {
        let Ok(url) = std::env::var("SIYU_TEST_POSTGRES") else {
            return;
        };
        let name = format!(
            "served-sweep-{}-{}",
            std::process::id(),
            Timestamp::now().as_microsecond()
        );
        batches_between_a_slices_read_and_its_write(&url, &name);
    }
}
