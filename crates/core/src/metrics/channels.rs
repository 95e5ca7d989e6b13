//! Channel quality and the formula CLV (DESIGN.md "Customer lifetime value", "channel
//! quality"): per source channel, the customers it brought in a period, how many bought,
//! what they paid, what they cost (CAC = spend / new customers), their lifetime value by
//! formula and by model, CLV/CAC and the months to pay the acquisition back.

use std::collections::{BTreeMap, HashMap};

use crate::fasthash::FastHashMap;

use jiff::civil::Date;
use serde::Serialize;

use super::cohorts::Month;
use super::columns::ShopColumns;
use super::shop::{Period, Shop};
use super::{mean_fen, ratio};
use crate::channel::Channel;
use crate::ids::CustomerId;
use crate::money::Money;

/// The formula CLV as of a day, over the customers a report selects.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FormulaClv {
    pub as_of: Date,
    /// Buyers, paid orders and GMV of the 365 local days to the as-of day.
    pub buyers: u64,
    pub orders: u64,
    pub gmv: Money,
    /// GMV / orders.
    pub aov: Option<Money>,
    /// Orders / buyers, per year.
    pub frequency: Option<f64>,
    /// Buyers of the 365 days before those.
    pub previous_buyers: u64,
    /// Of them, those who bought nothing in the last 365 days.
    pub lapsed: u64,
    pub churn: Option<f64>,
    /// 1 / churn, in years; none when nobody churned.
    pub lifetime_years: Option<f64>,
    /// AOV × frequency × lifetime.
    pub clv: Option<Money>,
}

/// The formula CLV as of `as_of` over the customers `only` selects (all when `None`):
/// over the 365 days to D, AOV = GMV / orders and frequency = orders / buyers; churn =
/// the share of the buyers of the 365 days before that who bought nothing in the last
/// 365; lifetime = 1 / churn years; CLV = AOV × frequency × lifetime.
pub fn formula_clv(
    shop: &Shop,
    as_of: Date,
    only: Option<&dyn Fn(&CustomerId) -> bool>,
) -> FormulaClv {
    let columns = ShopColumns::of(shop);
    let selected = columns.select(only);
    formula_clv_of(&columns, as_of, selected.as_deref())
}

/// [`formula_clv`] over columns, `only` a selection by customer number.
pub fn formula_clv_of(columns: &ShopColumns, as_of: Date, only: Option<&[bool]>) -> FormulaClv {
    formula_clv_by(columns, as_of, |n| {
        only.is_none_or(|s| s[n as usize]).then_some(())
    })
    .remove(&())
    .unwrap_or_else(|| Window::default().clv(as_of))
}

/// The formula CLV as of `as_of` of each group of customers at once (see
/// [`formula_clv`]): `group` says which group a customer is in, if any. Groups with no
/// paid order in the two years are left out; their CLV is that of nobody.
pub fn formula_clv_by<K: Ord>(
    columns: &ShopColumns,
    as_of: Date,
    group: impl Fn(u32) -> Option<K>,
) -> BTreeMap<K, FormulaClv> {
    let days_back = |n: i64| {
        as_of
            .checked_sub(jiff::Span::new().days(n))
            .unwrap_or(Date::MIN)
    };
    let (year_start, previous_start) = (days_back(364), days_back(729));
    let zone = &columns.zone;
    let mut windows: BTreeMap<K, Window> = BTreeMap::new();
    // Per customer: 1 if they bought in the year, 2 if in the year before.
    let mut seen = vec![0u8; columns.numbers()];
    let o = &columns.orders;
    for i in 0..o.len() {
        if !o.paid[i] {
            continue;
        }
        let day = zone.day_of(o.at[i]);
        if day > as_of || day < previous_start {
            continue;
        }
        let n = o.customer[i];
        let Some(key) = group(n) else {
            continue;
        };
        if day >= year_start {
            let w = windows.entry(key).or_default();
            w.orders += 1;
            w.gmv += o.fen[i];
            seen[n as usize] |= 1;
        } else {
            windows.entry(key).or_default();
            seen[n as usize] |= 2;
        }
    }
    for (n, &s) in seen.iter().enumerate() {
        if s == 0 {
            continue;
        }
        let Some(key) = group(n as u32) else {
            continue;
        };
        let w = windows.entry(key).or_default();
        w.buyers += u64::from(s & 1);
        w.previous += u64::from(s >> 1);
        w.lapsed += u64::from(s == 2);
    }
    windows
        .into_iter()
        .map(|(key, w)| (key, w.clv(as_of)))
        .collect()
}

#[derive(Default)]
struct Window {
    buyers: u64,
    previous: u64,
    lapsed: u64,
    orders: u64,
    gmv: i64,
}

impl Window {
    fn clv(&self, as_of: Date) -> FormulaClv {
        let Window {
            buyers,
            previous,
            lapsed,
            orders,
            gmv,
        } = *self;
        let churn = ratio(lapsed, previous);
        let lifetime_years = churn.filter(|&c| c > 0.0).map(|c| 1.0 / c);
        let aov = mean_fen(gmv, orders).map(Money::from_fen);
        let frequency = ratio(orders, buyers);
        let clv = match (orders > 0, frequency, lifetime_years) {
            (true, Some(f), Some(l)) => Some(Money::from_fen(
                (gmv as f64 / orders as f64 * f * l).round() as i64,
            )),
            _ => None,
        };
        FormulaClv {
            as_of,
            buyers,
            orders,
            gmv: Money::from_fen(gmv),
            aov,
            frequency,
            previous_buyers: previous,
            lapsed,
            churn,
            lifetime_years,
            clv,
        }
    }
}

/// Acquisition spend: (channel, month, amount).
pub type ChannelCosts = [(Channel, Month, Money)];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelQuality {
    /// Source channel; none for customers whose source is unknown.
    pub channel: Option<Channel>,
    /// Customers of the channel who joined in the period.
    pub entrants: u64,
    /// Of them, those with a paid order by the end of the period.
    pub buyers: u64,
    pub conversion: Option<f64>,
    /// Paid by the entrants by the end of the period.
    pub revenue: Money,
    /// Acquisition spend of the months the period touches.
    pub spend: Money,
    /// Spend / entrants; none without entrants or without any spend recorded.
    pub cac: Option<Money>,
    /// Of all the channel's customers, as of the end of the period.
    pub formula_clv: FormulaClv,
    /// The mean model CLV per entrant (entrants without a purchase count as 0).
    pub model_clv: Option<Money>,
    /// CLV per entrant (conversion × formula CLV, or the model CLV when there is one) / CAC.
    pub clv_to_cac: Option<f64>,
    /// CAC / (conversion × AOV × frequency / 12): months of a new customer's expected
    /// spend that pay the acquisition back.
    pub payback_months: Option<f64>,
}

/// Channel quality over `period`. `model_clv` holds each customer's model CLV, if any.
pub fn channels(
    shop: &Shop,
    period: Period,
    costs: &ChannelCosts,
    model_clv: Option<&HashMap<CustomerId, Money>>,
) -> Vec<ChannelQuality> {
    let columns = ShopColumns::of(shop);
    let model = model_clv.map(|m| model_by_number(&columns, m));
    channels_of(&columns, period, costs, model.as_deref())
}

/// Each customer's model CLV by number, from a map by id.
pub fn model_by_number(
    columns: &ShopColumns,
    model_clv: &HashMap<CustomerId, Money>,
) -> Vec<Option<Money>> {
    let mut out = vec![None; columns.numbers()];
    for (id, m) in model_clv {
        if let Some(n) = columns.ids.find(id.as_str()) {
            out[n as usize] = Some(*m);
        }
    }
    out
}

/// [`channels`] over columns, each customer's model CLV by number.
pub fn channels_of(
    columns: &ShopColumns,
    period: Period,
    costs: &ChannelCosts,
    model_clv: Option<&[Option<Money>]>,
) -> Vec<ChannelQuality> {
    let zone = &columns.zone;
    let (start, end) = (period.start(zone), period.end(zone));
    let mut paid = vec![0i64; columns.numbers()];
    let o = &columns.orders;
    for i in 0..o.len() {
        if o.paid[i] && o.at[i] < end {
            paid[o.customer[i] as usize] += o.fen[i];
        }
    }
    #[derive(Default)]
    struct Tally {
        entrants: u64,
        buyers: u64,
        revenue: i64,
        model: i64,
    }
    let mut by_index: Vec<Option<Tally>> = (0..columns.channels.len()).map(|_| None).collect();
    for &n in &columns.pool {
        let Some(c) = columns.channel_index(n) else {
            continue;
        };
        let t = by_index[usize::from(c)].get_or_insert_with(Tally::default);
        let n = n as usize;
        if columns.joined_at[n] < start || columns.joined_at[n] >= end {
            continue;
        }
        t.entrants += 1;
        let fen = paid[n];
        t.buyers += u64::from(fen > 0);
        t.revenue += fen;
        if let Some(Some(m)) = model_clv.map(|m| m[n]) {
            t.model += m.fen();
        }
    }
    let mut tallies: BTreeMap<Option<Channel>, Tally> = BTreeMap::new();
    for (i, t) in by_index.into_iter().enumerate() {
        if let Some(t) = t {
            tallies.insert(columns.channels[i].clone(), t);
        }
    }
    let (first, last) = (Month::of(period.from), Month::of(period.to));
    let mut spend: FastHashMap<&Channel, i64> = FastHashMap::default();
    for (channel, month, amount) in costs {
        if *month >= first && *month <= last {
            *spend.entry(channel).or_default() += amount.fen();
        }
        tallies.entry(Some(channel.clone())).or_default();
    }
    // Every order is of the channel of its customer, none (unknown) if not in the pool.
    let mut formulas: BTreeMap<Option<Channel>, FormulaClv> =
        formula_clv_by(columns, period.to, |n| Some(columns.channel_of(n)))
            .into_iter()
            .map(|(channel, clv)| (channel.cloned(), clv))
            .collect();
    tallies
        .into_iter()
        .map(|(channel, t)| {
            // No spend recorded for the channel in the period: CAC is not known (not 0).
            let recorded = channel.as_ref().and_then(|c| spend.get(c)).copied();
            let spent = recorded.unwrap_or(0);
            let formula = formulas
                .remove(&channel)
                .unwrap_or_else(|| Window::default().clv(period.to));
            let conversion = ratio(t.buyers, t.entrants);
            let cac = recorded
                .and_then(|s| mean_fen(s, t.entrants))
                .map(Money::from_fen);
            let model_clv = model_clv
                .filter(|_| t.entrants > 0)
                .and_then(|_| mean_fen(t.model, t.entrants))
                .map(Money::from_fen);
            let per_entrant = model_clv
                .map(|m| m.fen() as f64)
                .or_else(|| Some(conversion? * formula.clv?.fen() as f64));
            let clv_to_cac = match (per_entrant, cac) {
                (Some(v), Some(c)) if c.fen() > 0 => Some(v / c.fen() as f64),
                _ => None,
            };
            let monthly = match (conversion, formula.aov, formula.frequency) {
                (Some(cv), Some(aov), Some(f)) => Some(cv * aov.fen() as f64 * f / 12.0),
                _ => None,
            };
            let payback_months = match (cac, monthly) {
                (Some(c), Some(m)) if m > 0.0 && c.fen() > 0 => Some(c.fen() as f64 / m),
                _ => None,
            };
            ChannelQuality {
                channel,
                entrants: t.entrants,
                buyers: t.buyers,
                conversion,
                revenue: Money::from_fen(t.revenue),
                spend: Money::from_fen(spent),
                cac,
                formula_clv: formula,
                model_clv,
                clv_to_cac,
                payback_months,
            }
        })
        .collect()
}
