//! Lifecycle and journey stages of every customer as of a day, from the store's raw facts
//! through the one computation in siyu-core.

use anyhow::Context;
use jiff::civil::Date;
use serde::Serialize;

use siyu_core::lifecycle::{
    CustomerStage, Journey, LifecycleSettings, Stage, spend_over_days, stages,
};
use siyu_core::profile::build_profiles;
use siyu_core::settings::lifecycle_settings;
use siyu_store::{Store, Tenant};

use super::profiles::{RawFacts, raw_facts};

#[derive(Debug, Serialize)]
pub struct LifecycleReport {
    pub as_of: Date,
    pub time_zone: String,
    pub settings: LifecycleSettings,
    pub stages: Vec<StageCount<Stage>>,
    pub journey: Vec<StageCount<Journey>>,
    pub customers: Vec<CustomerStage>,
}

#[derive(Debug, Serialize)]
pub struct StageCount<S> {
    pub stage: S,
    pub customers: u64,
}

pub fn lifecycle(
    store: &mut dyn Store,
    tenant: &Tenant,
    as_of: Date,
) -> anyhow::Result<LifecycleReport> {
    let stored = store
        .settings(tenant)
        .context("reading the tenant's settings")?;
    let settings = lifecycle_settings(stored.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let RawFacts {
        customers,
        orders,
        events,
    } = raw_facts(store, tenant)?;
    let spend = spend_over_days(&orders, &tenant.zone, as_of, 365);
    let profiles = build_profiles(customers, orders, events, &tenant.zone, Some(as_of));
    let customers = stages(&profiles, &spend, as_of, settings);
    let count =
        |pred: &dyn Fn(&CustomerStage) -> bool| customers.iter().filter(|c| pred(c)).count() as u64;
    Ok(LifecycleReport {
        as_of,
        time_zone: tenant.zone.name().to_owned(),
        settings,
        stages: Stage::ALL
            .into_iter()
            .map(|s| StageCount {
                stage: s,
                customers: count(&|c| c.stage == s),
            })
            .collect(),
        journey: Journey::ALL
            .into_iter()
            .map(|j| StageCount {
                stage: j,
                customers: count(&|c| c.journey == j),
            })
            .collect(),
        customers,
    })
}
