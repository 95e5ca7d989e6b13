//! Lifecycle and journey stages of every customer as of a day, from the store's raw facts
//! through the one computation in siyu-core.

use anyhow::Context;
use jiff::civil::Date;
use serde::Serialize;

use siyu_core::lifecycle::{
    CustomerStage, Journey, LifecycleSettings, Stage, spend_over_days, stages,
};
use siyu_core::profile::build_profiles;
use siyu_core::segment::pool::build_pool;
use siyu_store::{Store, Tenant};

use super::profiles::{RawFacts, raw_facts};
use super::segments::{Extras, extras, rule_settings};

#[derive(Debug, Serialize)]
pub struct LifecycleReport {
    pub as_of: Date,
    pub time_zone: String,
    pub settings: LifecycleSettings,
    /// The tenant's own VIP rule, if set: a customer it selects is vip unless lost or at risk.
    pub vip_rule: Option<String>,
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
    let rule_settings = rule_settings(store, tenant)?;
    let settings = rule_settings.lifecycle;
    let RawFacts {
        customers,
        orders,
        events,
    } = raw_facts(store, tenant)?;
    let spend = spend_over_days(&orders, &tenant.zone, as_of, 365);
    let profiles = build_profiles(customers, orders, events, &tenant.zone, Some(as_of));
    let mut customers = stages(&profiles, &spend, as_of, settings);
    if let Some(rule) = &rule_settings.vip_rule {
        // The rule may compare anything a segment can: the pool as segments see it.
        let Extras { attributes, tags } = extras(store, tenant)?;
        let pool = build_pool(
            &profiles,
            &attributes,
            &tags,
            &spend,
            as_of,
            &tenant.zone,
            settings,
            Some(rule),
        )
        .context("applying the tenant's vip_rule")?;
        for (c, row) in customers.iter_mut().zip(&pool.rows) {
            c.stage = row.stage;
        }
    }
    let count =
        |pred: &dyn Fn(&CustomerStage) -> bool| customers.iter().filter(|c| pred(c)).count() as u64;
    Ok(LifecycleReport {
        as_of,
        time_zone: tenant.zone.name().to_owned(),
        settings,
        vip_rule: rule_settings.vip_rule.map(|r| r.to_string()),
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
