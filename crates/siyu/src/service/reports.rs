//! The reports: the store's facts through the one computation of each figure in siyu-core.

use anyhow::{Context, anyhow};
use jiff::civil::Date;
use serde::Serialize;

use siyu_core::lifecycle::Stage;
use siyu_core::metrics::channels::{ChannelQuality, FormulaClv, channels_of, formula_clv_of};
use siyu_core::metrics::cohorts::{Cohorts, cohorts_of};
use siyu_core::metrics::columns::{ColumnSink, ShopColumns};
use siyu_core::metrics::funnel::{FunnelStep, funnel_of};
use siyu_core::metrics::gmv::{GmvChange, GmvFactors, WhatIf, decompose, gmv_factors_of, what_if};
use siyu_core::metrics::pareto::{Pareto, pareto_of};
use siyu_core::metrics::referrals::{Referrals, referrals_of};
use siyu_core::metrics::shop::Period;
use siyu_core::profile::ProfileSink;
use siyu_core::segment::rules::RuleKind;
use siyu_core::{CustomerId, Money, Timestamp};
use siyu_store::{Facts, Store, Tenant};

/// What a report reads of the tenant's facts besides the orders.
#[derive(Debug, Clone, Copy)]
pub struct Read<'k> {
    pub customers: bool,
    /// The customers' referrers (only the referral figures need them).
    pub referrers: bool,
    /// The kinds of events (the reports read a few kinds of the millions of interactions).
    pub kinds: &'k [&'k str],
}

impl Read<'_> {
    /// The customers without their referrers, and the orders.
    pub const SHOP: Read<'static> = Read {
        customers: true,
        referrers: false,
        kinds: &[],
    };
    /// The orders alone.
    pub const ORDERS: Read<'static> = Read {
        customers: false,
        referrers: false,
        kinds: &[],
    };
}

/// The facts of the tenant a report reads, as columns: the orders, and what `read` asks.
pub fn load_columns(
    store: &mut dyn Store,
    tenant: &Tenant,
    read: Read<'_>,
) -> anyhow::Result<ShopColumns> {
    let mut columns = ShopColumns::new(&tenant.zone);
    let mut sink = ColumnSink::new(&mut columns, Some(read.kinds));
    if !read.referrers {
        sink = sink.without_referrers();
    }
    let wanted = Facts {
        customers: read.customers,
        orders: true,
        events: false,
    };
    store
        .stream_facts(tenant, wanted, &mut sink)
        .context("reading customers and orders")?;
    store
        .stream_events_of(tenant, read.kinds, &mut sink)
        .context("reading events")?;
    if let Some(bad) = sink.bad.take() {
        return Err(anyhow!("a stored customer id is not valid: {bad}"));
    }
    drop(sink);
    Ok(columns)
}

/// The columns [`gmv`] reads: customers, orders and `left` events. Whether a customer
/// left before an instant is whether their first `left` event is before it; when a
/// stored profile's latest `left` is before `end` (and every customer has a profile), the
/// latest stands for all of theirs and the millions of events are not read.
pub fn load_left_columns(
    store: &mut dyn Store,
    tenant: &Tenant,
    end: Timestamp,
) -> anyhow::Result<ShopColumns> {
    let mut columns = load_columns(store, tenant, Read::SHOP)?;
    let pool = columns.pool.len() as u64;
    // Each customer's latest `left` event, their stored profile's: enough for the figures
    // (a customer left before a day if any of their `left` events is before it) when it
    // is before `end`, as then every one of theirs is. A customer whose latest is at or
    // after `end` may have left before it too: their `left` events are read by customer
    // (at a million customers, a comparison a month back has some ten thousand such, whose
    // events come in milliseconds instead of the seconds of a scan of all the events).
    let mut latest: Vec<(String, Timestamp)> = Vec::new();
    let profiles = store
        .scan_left_at(tenant, &mut |customer, at| {
            latest.push((customer.to_owned(), at));
        })
        .context("reading profiles")?;
    let late: Vec<&str> = latest
        .iter()
        .filter(|(_, at)| *at >= end)
        .map(|(c, _)| c.as_str())
        .collect();
    let mut sink = ColumnSink::new(&mut columns, Some(&["left"]));
    if profiles == pool && late.len() <= LATE_BY_CUSTOMER {
        for (customer, at) in latest.iter().filter(|(_, at)| *at < end) {
            sink.event(customer, "left", *at);
        }
        store
            .stream_events_of_customers(tenant, "left", &late, &mut sink)
            .context("reading events")?;
    } else {
        store
            .stream_events_of(tenant, &["left"], &mut sink)
            .context("reading events")?;
    }
    if let Some(bad) = sink.bad.take() {
        return Err(anyhow!("a stored customer id is not valid: {bad}"));
    }
    drop(sink);
    Ok(columns)
}

/// Customers whose `left` events [`load_left_columns`] reads by customer at most; past
/// it, it reads them all (one scan of the events).
const LATE_BY_CUSTOMER: usize = 50_000;

/// How a report is sliced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Channel,
    Segment,
    Stage,
}

/// The customers of each slice: (label, members by customer number). Channel slices
/// cover everyone; stage slices are the stages as of `as_of`; segment slices are the saved
/// segments now.
pub fn slices(
    store: &mut dyn Store,
    tenant: &Tenant,
    columns: &ShopColumns,
    by: By,
    as_of: Date,
) -> anyhow::Result<Vec<(String, Vec<bool>)>> {
    let mut out: Vec<(String, Vec<bool>)> = Vec::new();
    match by {
        By::Channel => {
            let mut by_channel: std::collections::BTreeMap<String, Vec<bool>> = Default::default();
            // Each channel's label once; then each customer marked in theirs.
            let labels: Vec<String> = columns
                .channels
                .iter()
                .map(|c| format!("channel {}", c.as_ref().map_or("unknown", |c| c.as_str())))
                .collect();
            for &n in &columns.pool {
                let Some(c) = columns.channel_index(n) else {
                    continue;
                };
                by_channel
                    .entry(labels[usize::from(c)].clone())
                    .or_insert_with(|| vec![false; columns.numbers()])[n as usize] = true;
            }
            out.extend(by_channel);
        }
        By::Stage => {
            let report = super::lifecycle::lifecycle(store, tenant, as_of)?;
            for stage in Stage::ALL {
                let members = columns.select_ids(
                    report
                        .customers
                        .iter()
                        .filter(|c| c.stage == stage)
                        .map(|c| &c.customer_id),
                );
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
                    super::segments::member_ids(store, tenant, RuleKind::Segment, &r.name)?;
                out.push((format!("segment {}", r.name), columns.select_ids(&members)));
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
    let end = compare.map_or(period.end(&tenant.zone), |c| {
        c.end(&tenant.zone).min(period.end(&tenant.zone))
    });
    let columns = load_left_columns(store, tenant, end)?;
    let mut groups: Vec<(String, Option<Vec<bool>>)> = vec![("all".into(), None)];
    if let Some(by) = by {
        groups.extend(
            slices(store, tenant, &columns, by, period.to)?
                .into_iter()
                .map(|(label, members)| (label, Some(members))),
        );
    }
    let slices = groups
        .into_iter()
        .map(|(slice, members)| {
            let members = members.as_deref();
            let factors = gmv_factors_of(&columns, period, members);
            // The comparison period comes first in time order: before → after.
            let compared = compare.map(|c| {
                let other = gmv_factors_of(&columns, c, members);
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
    let columns = load_columns(store, tenant, Read::SHOP)?;
    Ok(cohorts_of(&columns, as_of, months))
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
    let columns = load_columns(store, tenant, Read::ORDERS)?;
    let period = match period {
        Some(p) => p,
        None => {
            let first = columns
                .orders
                .at
                .iter()
                .min()
                .map(|&at| tenant.zone.day_of(at));
            let first = first.unwrap_or(as_of);
            Period::new(first.min(as_of), as_of).map_err(|e| anyhow!(e))?
        }
    };
    Ok(pareto_of(&columns, period))
}

/// `siyu report referrals`.
pub fn referral_report(
    store: &mut dyn Store,
    tenant: &Tenant,
    as_of: Date,
    top: usize,
) -> anyhow::Result<Referrals> {
    let read = Read {
        customers: true,
        referrers: true,
        kinds: &[],
    };
    let mut columns = load_columns(store, tenant, read)?;
    let end = tenant.zone.start_of(as_of.tomorrow().unwrap_or(as_of));
    // PostgreSQL sends the share events (filtered by kind in SQL) faster than a million
    // profile rows: it takes the events' path (2.1 s against 2.5 s at a million customers).
    let from_profiles = store.backend() == "sqlite";
    if !(from_profiles && shares_from_profiles(store, tenant, &mut columns, end)?) {
        columns.events = Default::default();
        let mut sink = ColumnSink::new(&mut columns, Some(&["share"]));
        store
            .stream_events_of(tenant, &["share"], &mut sink)
            .context("reading events")?;
        if let Some(bad) = sink.bad.take() {
            return Err(anyhow!("a stored customer id is not valid: {bad}"));
        }
    }
    Ok(referrals_of(&columns, as_of, top))
}

/// The `share` events the referral figures count, from the stored profiles' event counts
/// instead of the millions of events: valid when every customer has a profile and every
/// profile's latest interaction is before `end` (then every share is, and the counts are
/// the shares before `end`). Each share stands as an event at its customer's latest
/// interaction, which is before `end` as the share is. Only the profiles that count
/// shares (or are too late) come out of the store. False (the columns' events to be read
/// again) when not valid.
fn shares_from_profiles(
    store: &mut dyn Store,
    tenant: &Tenant,
    columns: &mut ShopColumns,
    end: Timestamp,
) -> anyhow::Result<bool> {
    use siyu_core::lifecycle::columns::count_of;
    let customers = columns.pool.len() as u64;
    let mut sink = ColumnSink::new(columns, Some(&["share"]));
    let mut valid = true;
    let profiles = store
        .scan_share_counts(tenant, end, &mut |customer, last, counts| {
            if !valid {
                return;
            }
            match count_of(counts, "share") {
                Some(shares) if last < end => {
                    for _ in 0..shares {
                        sink.event(customer, "share", last);
                    }
                }
                _ => valid = false,
            }
        })
        .context("reading profiles")?;
    if let Some(bad) = sink.bad.take() {
        return Err(anyhow!("a stored customer id is not valid: {bad}"));
    }
    Ok(valid && profiles == customers)
}

#[derive(Debug, PartialEq, Serialize)]
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
) -> anyhow::Result<Option<Vec<(CustomerId, Money)>>> {
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

/// Each customer's model CLV by number, as [`model_clv`] gives it, from the columns: the
/// paid orders sorted by customer and day instead of gathered by id.
pub fn model_clv_of(columns: &ShopColumns, as_of: Date) -> Option<Vec<Option<Money>>> {
    use super::clv::{fit, predict_histories};
    use siyu_core::clv::summary::history_of;
    use siyu_core::clv::{History, Horizon};
    use siyu_core::time::{DayNumber, ZoneDays, date_number};
    let days = ZoneDays::new(&columns.zone);
    let o = &columns.orders;
    let mut paid: Vec<(u32, DayNumber, i64)> = (0..o.len())
        .filter(|&i| o.paid[i])
        .map(|i| (o.customer[i], days.day_of(o.at[i]), o.fen[i]))
        .collect();
    paid.sort_unstable();
    let d = date_number(as_of);
    let (mut numbers, mut histories): (Vec<u32>, Vec<History>) = (Vec::new(), Vec::new());
    let mut run: Vec<(DayNumber, i64)> = Vec::new();
    for orders in paid.chunk_by(|a, b| a.0 == b.0) {
        run.clear();
        run.extend(orders.iter().map(|&(_, day, fen)| (day, fen)));
        if let Some((history, _)) = history_of(&run, d, None) {
            numbers.push(orders[0].0);
            histories.push(history);
        }
    }
    drop(paid);
    if histories.is_empty() {
        return None;
    }
    let models = fit(&histories).ok()?;
    let horizon = Horizon {
        weeks: 52.0,
        discount_monthly: 0.01,
    };
    let mut out = vec![None; columns.numbers()];
    for (n, p) in numbers
        .into_iter()
        .zip(predict_histories(&models, &histories, &horizon))
    {
        out[n as usize] = p
            .clv
            .filter(|v| v.is_finite())
            .map(|yuan| Money::from_fen((yuan * 100.0).round() as i64));
    }
    Some(out)
}

/// `siyu report channels`, with each entrant's model CLV when a model can be fitted on the
/// paid orders up to the period's end (see [`model_clv`]).
pub fn channel_report(
    store: &mut dyn Store,
    tenant: &Tenant,
    period: Period,
) -> anyhow::Result<ChannelReport> {
    let columns = load_columns(store, tenant, Read::SHOP)?;
    let costs = store
        .channel_costs(tenant)
        .context("reading channel costs")?;
    let model = model_clv_of(&columns, period.to);
    Ok(ChannelReport {
        period,
        channels: channels_of(&columns, period, &costs, model.as_deref()),
    })
}

/// `siyu report channels` with the model CLVs given: each customer's, when a model is
/// fitted.
pub fn channel_report_given(
    store: &mut dyn Store,
    tenant: &Tenant,
    period: Period,
    model_clv: Option<&[(CustomerId, Money)]>,
) -> anyhow::Result<ChannelReport> {
    let columns = load_columns(store, tenant, Read::SHOP)?;
    let costs = store
        .channel_costs(tenant)
        .context("reading channel costs")?;
    let model = model_clv.map(|m| {
        let mut by_number = vec![None; columns.numbers()];
        for (id, clv) in m {
            if let Some(n) = columns.ids.find(id.as_str()) {
                by_number[n as usize] = Some(*clv);
            }
        }
        by_number
    });
    Ok(ChannelReport {
        period,
        channels: channels_of(&columns, period, &costs, model.as_deref()),
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
    // Only the orders count; the customers only say who is in which channel.
    let read = if by == Some(By::Channel) {
        Read::SHOP
    } else {
        Read::ORDERS
    };
    let columns = load_columns(store, tenant, read)?;
    let mut out = vec![ClvSlice {
        slice: "all".into(),
        clv: formula_clv_of(&columns, as_of, None),
    }];
    if let Some(by) = by {
        for (slice, members) in slices(store, tenant, &columns, by, as_of)? {
            out.push(ClvSlice {
                slice,
                clv: formula_clv_of(&columns, as_of, Some(&members)),
            });
        }
    }
    Ok(out)
}
