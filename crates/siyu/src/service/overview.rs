//! The shop overview, from the store's facts through the one computation in siyu-core.

use siyu_core::metrics::overview::Overview;
use siyu_store::{Store, Tenant};

pub fn overview(store: &mut dyn Store, tenant: &Tenant) -> anyhow::Result<Overview> {
    let columns = super::reports::load_columns(store, tenant, super::reports::Read::SHOP)?;
    Ok(Overview::of(&columns))
}

/// The overview and the GMV of each month, from one read of the shop (the console's
/// overview page).
pub fn overview_with_months(
    store: &mut dyn Store,
    tenant: &Tenant,
) -> anyhow::Result<(Overview, Vec<siyu_core::metrics::overview::MonthLine>)> {
    let columns = super::reports::load_columns(store, tenant, super::reports::Read::SHOP)?;
    Ok((
        Overview::of(&columns),
        siyu_core::metrics::overview::gmv_by_month(&columns),
    ))
}
