//! The shop overview, from the store's facts through the one computation in siyu-core.

use siyu_core::metrics::overview::{Grain, Overview, PeriodLine, gmv_by};
use siyu_store::{Store, Tenant};

pub fn overview(store: &mut dyn Store, tenant: &Tenant) -> anyhow::Result<Overview> {
    let columns = super::reports::load_columns(store, tenant, super::reports::Read::SHOP)?;
    Ok(Overview::of(&columns))
}

/// The overview and its GMV by day, week and month (in [`Grain::ALL`]'s order), from one
/// read of the shop (the console's overview page).
pub fn overview_with_periods(
    store: &mut dyn Store,
    tenant: &Tenant,
) -> anyhow::Result<(Overview, [Vec<PeriodLine>; 3])> {
    let columns = super::reports::load_columns(store, tenant, super::reports::Read::SHOP)?;
    Ok((
        Overview::of(&columns),
        Grain::ALL.map(|grain| gmv_by(&columns, grain)),
    ))
}
