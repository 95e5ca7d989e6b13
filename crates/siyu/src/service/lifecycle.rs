//! Lifecycle and journey stages of every customer as of a day, from the store's raw facts
//! through the one computation in siyu-core.

use anyhow::Context;
use jiff::civil::Date;
use serde::Serialize;

use siyu_core::lifecycle::columns::{StageColumns, StageTable, has_left, intent_and_engaged};
use siyu_core::lifecycle::{
    CustomerStage, Journey, LifecycleSettings, Stage, StageLine, journey_of, spend_over_days,
    stages, stages_of_lines,
};
use siyu_core::profile::build_profiles;
use siyu_core::segment::pool::build_pool;
use siyu_core::{CustomerId, Money, Timestamp};
use siyu_store::{Facts, Store, Tenant};

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
    let customers = match &rule_settings.vip_rule {
        None => {
            let table = stage_table(store, tenant, as_of, true)?;
            stages_of_lines(table.ids, &table.lines, table.threshold, as_of, settings)
        }
        Some(rule) => {
            // The rule may compare anything a segment can: the pool as segments see it,
            // which wants whole profiles.
            let RawFacts {
                customers,
                orders,
                events,
            } = raw_facts(store, tenant)?;
            let spend = spend_over_days(&orders, &tenant.zone, as_of, 365);
            let profiles = build_profiles(customers, orders, events, &tenant.zone, Some(as_of));
            let mut customers = stages(&profiles, &spend, as_of, settings);
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
            customers
        }
    };
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

/// Every customer's [`StageLine`] as of `as_of`, in id order, with their spend over the
/// 365 days when `spend` asks (otherwise zero). From the stored profiles when they hold
/// every fact up to the as-of day (as of today, unless something is dated later), else
/// from the raw facts streamed into columns; the same lines either way.
pub fn stage_table(
    store: &mut dyn Store,
    tenant: &Tenant,
    as_of: Date,
    spend: bool,
) -> anyhow::Result<StageTable> {
    let today = tenant.zone.day_of(Timestamp::now());
    if as_of >= today
        && let Some(mut columns) = from_stored_profiles(store, tenant, as_of)?
    {
        if spend {
            let orders = Facts {
                customers: false,
                orders: true,
                events: false,
            };
            store
                .stream_facts(tenant, orders, &mut columns)
                .context("reading orders")?;
        }
        return Ok(columns.finish());
    }
    let mut columns = StageColumns::new(&tenant.zone, as_of);
    let all = Facts {
        customers: true,
        orders: true,
        events: true,
    };
    store
        .stream_facts(tenant, all, &mut columns)
        .context("reading customers, orders and events")?;
    Ok(columns.finish())
}

/// The stored profiles as lines (spend to come), if every customer has one and nothing
/// they hold is later than `as_of`: then each is the profile as of that day.
fn from_stored_profiles(
    store: &mut dyn Store,
    tenant: &Tenant,
    as_of: Date,
) -> anyhow::Result<Option<StageColumns>> {
    let cutoff = tenant.zone.start_of(as_of.tomorrow().unwrap_or(as_of));
    let before = |t: Option<Timestamp>| t.is_none_or(|t| t < cutoff);
    let mut columns = StageColumns::new(&tenant.zone, as_of);
    let mut whole = true;
    let mut lines = 0u64;
    let extent = store
        .scan_profile_lines(tenant, &mut |l| {
            lines += 1;
            if !whole {
                return;
            }
            let current = before(l.last_order_at) && before(l.last_interaction_at);
            let (Some((intent, engaged)), Ok(id), true) = (
                intent_and_engaged(l.event_counts),
                CustomerId::parse(l.customer_id),
                current,
            ) else {
                whole = false;
                return;
            };
            columns.known(
                id,
                StageLine {
                    purchase_days: l.purchase_days,
                    first_purchase_day: l.first_purchase_day,
                    last_purchase_day: l.last_purchase_day,
                    has_left: has_left(l.left_at, l.last_order_at),
                    spend_365d: Money::ZERO,
                    journey: journey_of(l.referrals > 0, l.purchase_days, intent, engaged),
                },
            );
        })
        .context("reading profiles")?;
    let everyone = lines == extent.customers && before(extent.latest_join);
    Ok((whole && everyone).then_some(columns))
}
