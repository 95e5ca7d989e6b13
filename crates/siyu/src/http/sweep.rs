//! The day's sweep of `siyu serve`: rules that read the day (`days_since_order > 20`, the
//! stages by days) move customers by time alone, so once each tenant's local day begins,
//! the day's thresholds are computed and every customer is evaluated again, the changes
//! recorded with the occasion `midnight` (`server start` for the first pass, which catches
//! up on days the server was not running). Without a server, `siyu segment refresh` from
//! cron does the same. The sweep computes the thresholds on a read snapshot and then holds
//! the write lock one slice of customers at a time, so ingest and reads go on meanwhile.

use std::collections::HashMap;
use std::time::Duration;

use jiff::civil::Date;

use siyu_core::Timestamp;
use siyu_store::Store;

use crate::service::evaluate;

/// How often the thread looks whether a tenant's day has changed.
const LOOK_EVERY: Duration = Duration::from_secs(30);

/// Starts the sweeping thread on a connection of its own to `db`, with a second one for
/// the sweep's second thread.
pub fn start(db: &str) -> anyhow::Result<()> {
    let mut store = siyu_store::open(db)?;
    let mut helper = siyu_store::open(db)?;
    std::thread::Builder::new()
        .name("siyu-sweep".into())
        .spawn(move || {
            let mut swept: HashMap<String, Date> = HashMap::new();
            loop {
                if let Err(e) = pass(store.as_mut(), helper.as_mut(), &mut swept) {
                    tracing::warn!("the day's sweep: {e:#}");
                }
                std::thread::sleep(LOOK_EVERY);
            }
        })?;
    Ok(())
}

/// Sweeps each tenant whose local day is not the one it was last swept on.
fn pass(
    store: &mut dyn Store,
    helper: &mut dyn Store,
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
        let moved = evaluate::sweep(store, Some(&mut *helper), &tenant, occasion)?;
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
