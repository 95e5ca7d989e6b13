//! The reports: the store's facts through the one computation of each figure in siyu-core.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, anyhow};
use jiff::civil::Date;
use serde::Serialize;

use siyu_core::lifecycle::Stage;
use siyu_core::metrics::channels::{ChannelQuality, FormulaClv, channels, formula_clv};
use siyu_core::metrics::cohorts::{Cohorts, cohorts};
use siyu_core::metrics::funnel::{FunnelStep, funnel_of};
use siyu_core::metrics::gmv::{GmvChange, GmvFactors, WhatIf, decompose, gmv_factors, what_if};
use siyu_core::metrics::pareto::{Pareto, pareto};
use siyu_core::metrics::referrals::{Referrals, referrals};
use siyu_core::metrics::shop::{Period, Shop};
use siyu_core::profile::{EventFact, ProfileSink};
use siyu_core::segment::rules::RuleKind;
use siyu_core::{CustomerFact, CustomerId, Money, OrderFact, OrderStatus, Timestamp};
use siyu_store::{Facts, Store, Tenant};

/// The facts of the tenant a report reads: every customer and order, and of the events
/// only those of `kinds` (the reports read a few kinds of the millions of interactions).
pub fn load_shop(store: &mut dyn Store, tenant: &Tenant, kinds: &[&str]) -> anyhow::Result<Shop> {
    let mut sink = ShopSink {
        shop: Shop {
            customers: Vec::new(),
            orders: Vec::new(),
            events: Vec::new(),
            zone: tenant.zone.clone(),
        },
        kinds,
        bad: None,
    };
    let wanted = Facts {
        customers: true,
        orders: true,
        events: !kinds.is_empty(),
    };
    store
        .stream_facts(tenant, wanted, &mut sink)
        .context("reading customers, orders and events")?;
    if let Some(bad) = sink.bad {
        return Err(anyhow!("a stored customer id is not valid: {bad}"));
    }
    Ok(sink.shop)
}

/// Collects a [`Shop`] from streamed facts, keeping the events of some kinds.
struct ShopSink<'k> {
    shop: Shop,
    kinds: &'k [&'k str],
    /// The first customer id that did not parse.
    bad: Option<String>,
}

impl ShopSink<'_> {
    fn id(&mut self, customer: &str) -> Option<CustomerId> {
        let id = CustomerId::parse(customer).ok();
        if id.is_none() && self.bad.is_none() {
            self.bad = Some(customer.to_owned());
        }
        id
    }
}

impl ProfileSink for ShopSink<'_> {
    fn customer(&mut self, customer: CustomerFact) {
        self.shop.customers.push(customer);
    }

    fn order(
        &mut self,
        customer: &str,
        at: Timestamp,
        amount: Money,
        status: OrderStatus,
        _used_coupon: bool,
    ) {
        if let Some(customer_id) = self.id(customer) {
            self.shop.orders.push(OrderFact {
                customer_id,
                ordered_at: at,
                amount,
                status,
            });
        }
    }

    fn event(&mut self, customer: &str, kind: &str, at: Timestamp) {
        if self.kinds.contains(&kind)
            && let Some(customer_id) = self.id(customer)
        {
            self.shop.events.push(EventFact {
                customer_id,
                kind: kind.to_owned(),
                occurred_at: at,
            });
        }
    }
}

/// How a report is sliced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Channel,
    Segment,
    Stage,
}

/// The customers of each slice: (label, members). Channel slices cover everyone; stage
/// slices are the stages as of `as_of`; segment slices are the saved segments now.
pub fn slices(
    store: &mut dyn Store,
    tenant: &Tenant,
    shop: &Shop,
    by: By,
    as_of: Date,
) -> anyhow::Result<Vec<(String, HashSet<CustomerId>)>> {
    let mut out: Vec<(String, HashSet<CustomerId>)> = Vec::new();
    match by {
        By::Channel => {
            let mut by_channel: std::collections::BTreeMap<String, HashSet<CustomerId>> =
                Default::default();
            for c in &shop.customers {
                let label = c.channel.as_ref().map_or("unknown", |c| c.as_str());
                by_channel
                    .entry(format!("channel {label}"))
                    .or_default()
                    .insert(c.id.clone());
            }
            out.extend(by_channel);
        }
        By::Stage => {
            let report = super::lifecycle::lifecycle(store, tenant, as_of)?;
            for stage in Stage::ALL {
                let members = report
                    .customers
                    .iter()
                    .filter(|c| c.stage == stage)
                    .map(|c| c.customer_id.clone())
                    .collect();
                out.push((format!("stage {}", stage.name()), members));
            }
        }
        By::Segment => {
            let (rules, _) = super::segments::current(store, tenant)?;
            if !rules.iter().any(|r| r.kind == RuleKind::Segment) {
                return Err(anyhow!(
                    "there are no segments to slice by (siyu segment create NAME 'RULE')"
                ));
            }
            for r in rules.iter().filter(|r| r.kind == RuleKind::Segment) {
                let members =
                    super::segments::member_ids(store, tenant, RuleKind::Segment, &r.name)?
                        .into_iter()
                        .collect();
                out.push((format!("segment {}", r.name), members));
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Serialize)]
pub struct GmvSlice {
    /// `all`, `channel douyin`, `stage vip`, `segment winback`.
    pub slice: String,
    pub factors: GmvFactors,
    pub compared: Option<GmvChange>,
    /// The GMV under the what-if, if one was asked.
    pub what_if: Option<Money>,
}

#[derive(Debug, Serialize)]
pub struct GmvReport {
    pub period: Period,
    pub compare: Option<Period>,
    pub what_if: Option<Vec<(String, f64)>>,
    pub slices: Vec<GmvSlice>,
}

/// `siyu report gmv`.
pub fn gmv(
    store: &mut dyn Store,
    tenant: &Tenant,
    period: Period,
    compare: Option<Period>,
    moves: Option<&WhatIf>,
    by: Option<By>,
) -> anyhow::Result<GmvReport> {
    let shop = load_shop(store, tenant, &["left"])?;
    let mut groups: Vec<(String, Option<HashSet<CustomerId>>)> = vec![("all".into(), None)];
    if let Some(by) = by {
        groups.extend(
            slices(store, tenant, &shop, by, period.to)?
                .into_iter()
                .map(|(label, members)| (label, Some(members))),
        );
    }
    let slices = groups
        .into_iter()
        .map(|(slice, members)| {
            let member = |id: &CustomerId| members.as_ref().is_none_or(|m| m.contains(id));
            let factors = gmv_factors(&shop, period, Some(&member));
            // The comparison period comes first in time order: before → after.
            let compared = compare.map(|c| {
                let other = gmv_factors(&shop, c, Some(&member));
                decompose(other, factors)
            });
            GmvSlice {
                slice,
                factors,
                compared,
                what_if: moves.map(|m| what_if(&factors, m)),
            }
        })
        .collect();
    Ok(GmvReport {
        period,
        compare,
        what_if: moves.map(|m| m.iter().map(|(f, x)| (f.name().to_owned(), *x)).collect()),
        slices,
    })
}

/// `siyu report cohorts`.
pub fn cohort_report(
    store: &mut dyn Store,
    tenant: &Tenant,
    as_of: Date,
    months: u32,
) -> anyhow::Result<Cohorts> {
    let shop = load_shop(store, tenant, &[])?;
    Ok(cohorts(&shop, as_of, months))
}

#[derive(Debug, Serialize)]
pub struct FunnelReport {
    pub as_of: Date,
    pub customers: u64,
    pub steps: Vec<FunnelStep>,
}

/// `siyu report funnel`.
pub fn funnel_report(
    store: &mut dyn Store,
    tenant: &Tenant,
    as_of: Date,
) -> anyhow::Result<FunnelReport> {
    let table = super::lifecycle::stage_table(store, tenant, as_of, false)?;
    Ok(FunnelReport {
        as_of,
        customers: table.lines.len() as u64,
        steps: funnel_of(table.lines.iter().map(|l| l.journey)),
    })
}

/// `siyu report pareto`: over `period`, or from the first paid order to `as_of`.
pub fn pareto_report(
    store: &mut dyn Store,
    tenant: &Tenant,
    period: Option<Period>,
    as_of: Date,
) -> anyhow::Result<Pareto> {
    let shop = load_shop(store, tenant, &[])?;
    let period = match period {
        Some(p) => p,
        None => {
            let first = first_order_day(&shop.orders, &shop).unwrap_or(as_of);
            Period::new(first.min(as_of), as_of).map_err(|e| anyhow!(e))?
        }
    };
    Ok(pareto(&shop, period))
}

fn first_order_day(orders: &[OrderFact], shop: &Shop) -> Option<Date> {
    orders.iter().map(|o| shop.zone.day_of(o.ordered_at)).min()
}

/// `siyu report referrals`.
pub fn referral_report(
    store: &mut dyn Store,
    tenant: &Tenant,
    as_of: Date,
    top: usize,
) -> anyhow::Result<Referrals> {
    let shop = load_shop(store, tenant, &["share"])?;
    Ok(referrals(&shop, as_of, top))
}

#[derive(Debug, Serialize)]
pub struct ChannelReport {
    pub period: Period,
    pub channels: Vec<ChannelQuality>,
}

/// Each customer's model CLV over the 52 weeks after `as_of` (1% a month discount), the
/// models fitted on the paid orders up to `as_of`; none when they cannot be fitted (too
/// few customers, no repeat purchases), which the report shows as n/a.
pub fn model_clv(
    store: &mut dyn Store,
    tenant: &Tenant,
    as_of: Date,
) -> anyhow::Result<Option<HashMap<CustomerId, Money>>> {
    use super::clv::{fit, predict, purchase_days_from_store, summarise};
    use siyu_core::clv::{History, Horizon};
    let days = purchase_days_from_store(store, tenant)?;
    let Ok(summary) = summarise(&days, Some(as_of), None) else {
        return Ok(None);
    };
    let histories: Vec<History> = summary.customers.iter().map(|c| c.history).collect();
    let Ok(models) = fit(&histories) else {
        return Ok(None);
    };
    let horizon = Horizon {
        weeks: 52.0,
        discount_monthly: 0.01,
    };
    let predictions = predict(&models, &summary, &horizon);
    Ok(Some(
        summary
            .customers
            .iter()
            .zip(predictions)
            .filter_map(|(c, p)| {
                let yuan = p.clv.filter(|v| v.is_finite())?;
                Some((
                    c.customer_id.clone(),
                    Money::from_fen((yuan * 100.0).round() as i64),
                ))
            })
            .collect(),
    ))
}

/// `siyu report channels`. `model_clv`: each customer's model CLV, when a model is fitted.
pub fn channel_report(
    store: &mut dyn Store,
    tenant: &Tenant,
    period: Period,
    model_clv: Option<&HashMap<CustomerId, Money>>,
) -> anyhow::Result<ChannelReport> {
    let shop = load_shop(store, tenant, &[])?;
    let costs = store
        .channel_costs(tenant)
        .context("reading channel costs")?;
    Ok(ChannelReport {
        period,
        channels: channels(&shop, period, &costs, model_clv),
    })
}

#[derive(Debug, Serialize)]
pub struct ClvSlice {
    pub slice: String,
    pub clv: FormulaClv,
}

/// `siyu report clv`: the formula CLV, overall and per slice.
pub fn formula_clv_report(
    store: &mut dyn Store,
    tenant: &Tenant,
    as_of: Date,
    by: Option<By>,
) -> anyhow::Result<Vec<ClvSlice>> {
    let shop = load_shop(store, tenant, &[])?;
    let mut out = vec![ClvSlice {
        slice: "all".into(),
        clv: formula_clv(&shop, as_of, None),
    }];
    if let Some(by) = by {
        for (slice, members) in slices(store, tenant, &shop, by, as_of)? {
            let member = |id: &CustomerId| members.contains(id);
            out.push(ClvSlice {
                slice,
                clv: formula_clv(&shop, as_of, Some(&member)),
            });
        }
    }
    Ok(out)
}
