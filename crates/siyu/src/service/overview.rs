//! The shop overview, from the store's facts through the one computation in siyu-core.

use anyhow::Context;

use siyu_core::metrics::overview::Overview;
use siyu_store::{Store, Tenant};

pub fn overview(store: &mut dyn Store, tenant: &Tenant) -> anyhow::Result<Overview> {
    let mut customers = Vec::new();
    store
        .scan_customers(tenant, &mut |c| customers.push(c))
        .context("reading customers")?;
    let mut orders = Vec::new();
    store
        .scan_order_facts(tenant, &mut |o| orders.push(o))
        .context("reading orders")?;
    Ok(Overview::compute(customers, orders, &tenant.zone))
}
