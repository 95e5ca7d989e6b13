//! `siyu rfm` of the tenant's stored orders (the orders-file path is `crate::fastcsv::rfm`).

use anyhow::Context;

use siyu_core::segment::rfm::{Rfm, RfmWindow, Tallies};
use siyu_store::{Store, Tenant};

/// RFM of the tenant's stored orders.
pub fn from_store(
    store: &mut dyn Store,
    tenant: &Tenant,
    window: RfmWindow,
) -> anyhow::Result<Rfm> {
    let mut tallies = Tallies::new(&tenant.zone, window);
    store
        .scan_order_facts(tenant, &mut |order| tallies.add(order))
        .context("reading orders")?;
    Ok(tallies.finish())
}
