//! Pareto: how concentrated revenue is. The share of revenue from the top 20% of buyers,
//! the share of buyers who make 80% of it, and the super users (DESIGN.md lifecycle: the
//! top 20% by spend over the 365 days to the as-of day, ties included).

use jiff::civil::Date;
use serde::Serialize;

use super::columns::ShopColumns;
use super::ratio;
use super::shop::{Period, Shop};
use crate::ids::CustomerId;
use crate::lifecycle::super_user_threshold;
use crate::money::Money;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pareto {
    pub period: Period,
    pub buyers: u64,
    pub revenue: Money,
    /// ⌈20%⌉ of the buyers, the biggest spenders first (ties broken by customer id).
    pub top_buyers: u64,
    pub top_revenue: Money,
    pub top_share_of_revenue: Option<f64>,
    /// The fewest buyers, biggest first, whose spend reaches 80% of the revenue.
    pub buyers_for_80: u64,
    pub share_of_buyers_for_80: Option<f64>,
    /// Super users as of the end of the period, biggest first.
    pub super_users: Vec<SuperUser>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuperUser {
    pub customer_id: CustomerId,
    pub spend_365d: Money,
}

/// Pareto over the paid orders of `period`; super users as of its last day.
pub fn pareto(shop: &Shop, period: Period) -> Pareto {
    pareto_of(&ShopColumns::of(shop), period)
}

/// [`pareto`] over columns.
pub fn pareto_of(columns: &ShopColumns, period: Period) -> Pareto {
    let zone = &columns.zone;
    let mut spend = vec![0i64; columns.numbers()];
    // A year's spend, for those with a paid order in the year.
    let mut last_365: Vec<Option<i64>> = vec![None; columns.numbers()];
    let year_start = period
        .to
        .checked_sub(jiff::Span::new().days(364))
        .unwrap_or(Date::MIN);
    let o = &columns.orders;
    for i in 0..o.len() {
        if !o.paid[i] {
            continue;
        }
        let day = zone.day_of(o.at[i]);
        let n = o.customer[i] as usize;
        if day >= period.from && day <= period.to {
            spend[n] += o.fen[i];
        }
        if day >= year_start && day <= period.to {
            *last_365[n].get_or_insert(0) += o.fen[i];
        }
    }
    // Only the amounts add up below: who ranks first among equal spends changes nothing.
    let mut ranked: Vec<i64> = spend.into_iter().filter(|&s| s > 0).collect();
    ranked.sort_unstable_by(|a, b| b.cmp(a));
    let revenue: i64 = ranked.iter().sum();
    let n = ranked.len() as u64;
    let top = ranked.len().div_ceil(5);
    let top_revenue: i64 = ranked[..top].iter().sum();
    // 80% of revenue, compared exactly: 5 × running ≥ 4 × revenue.
    let mut running = 0i64;
    let mut for_80 = 0u64;
    for r in &ranked {
        if 5 * i128::from(running) >= 4 * i128::from(revenue) {
            break;
        }
        running += r;
        for_80 += 1;
    }
    let threshold = super_user_threshold(last_365.iter().flatten().map(|&f| Money::from_fen(f)));
    let mut super_users: Vec<SuperUser> = last_365
        .iter()
        .enumerate()
        .filter_map(|(n, f)| Some((n, (*f)?)))
        .filter(|(_, f)| threshold.is_some_and(|t| Money::from_fen(*f) >= t))
        .filter_map(|(n, f)| {
            Some(SuperUser {
                customer_id: columns.ids.customer_id(n as u32)?,
                spend_365d: Money::from_fen(f),
            })
        })
        .collect();
    super_users.sort_by(|a, b| {
        b.spend_365d
            .cmp(&a.spend_365d)
            .then(a.customer_id.cmp(&b.customer_id))
    });
    Pareto {
        period,
        buyers: n,
        revenue: Money::from_fen(revenue),
        top_buyers: top as u64,
        top_revenue: Money::from_fen(top_revenue),
        top_share_of_revenue: (revenue > 0).then(|| top_revenue as f64 / revenue as f64),
        buyers_for_80: for_80,
        share_of_buyers_for_80: ratio(for_80, n),
        super_users,
    }
}
