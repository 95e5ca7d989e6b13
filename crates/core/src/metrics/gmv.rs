//! GMV as a chain of five factors over a period, the change between two periods split
//! among them by the logarithmic mean Divisia index (LMDI), and what-ifs
//! (DESIGN.md "GMV decomposition").
//!
//! GMV = users × retention × conversion × purchases per buyer × AOV, with users U the
//! customers who joined before the period's end b, retained R those of U with no `left`
//! event before b, buyers B those with a paid order in the period, N the paid orders and
//! GMV their amount: retention = R/U, conversion = B/R, purchases per buyer = N/B,
//! AOV = GMV/N.

use std::fmt;

use serde::Serialize;

use super::columns::ShopColumns;
use super::shop::{Period, Shop};
use crate::ids::CustomerId;
use crate::money::Money;

/// One link of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    Users,
    Retention,
    Conversion,
    PurchasesPerBuyer,
    Aov,
}

impl Factor {
    pub const ALL: [Factor; 5] = [
        Factor::Users,
        Factor::Retention,
        Factor::Conversion,
        Factor::PurchasesPerBuyer,
        Factor::Aov,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Factor::Users => "users",
            Factor::Retention => "retention",
            Factor::Conversion => "conversion",
            Factor::PurchasesPerBuyer => "purchases_per_buyer",
            Factor::Aov => "aov",
        }
    }

    pub fn parse(name: &str) -> Option<Factor> {
        let name = name.trim().to_ascii_lowercase();
        Factor::ALL.into_iter().find(|f| {
            f.name() == name
                || (name == "frequency" && *f == Factor::PurchasesPerBuyer)
                || (name == "pool" && *f == Factor::Users)
        })
    }
}

impl fmt::Display for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The counts of a period and the five factors they give.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GmvFactors {
    pub period: Period,
    /// U: customers who joined before the end of the period.
    pub users: u64,
    /// R: of them, those with no `left` event before the end.
    pub retained: u64,
    /// B: customers with a paid order in the period.
    pub buyers: u64,
    /// N: paid orders in the period.
    pub orders: u64,
    pub gmv: Money,
}

impl GmvFactors {
    /// A factor's value (AOV in fen); `None` where its denominator is zero.
    pub fn value(&self, factor: Factor) -> Option<f64> {
        let ratio = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
        match factor {
            Factor::Users => Some(self.users as f64),
            Factor::Retention => ratio(self.retained, self.users),
            Factor::Conversion => ratio(self.buyers, self.retained),
            Factor::PurchasesPerBuyer => ratio(self.orders, self.buyers),
            Factor::Aov => (self.orders > 0).then(|| self.gmv.fen() as f64 / self.orders as f64),
        }
    }

    /// The product of the five factors, in fen: the GMV (up to floating point) whenever
    /// every factor is defined.
    pub fn product(&self) -> Option<f64> {
        Factor::ALL
            .into_iter()
            .try_fold(1.0, |p, f| Some(p * self.value(f)?))
    }
}

/// The counts of `period` over the customers `only` selects (all when `None`).
pub fn gmv_factors(
    shop: &Shop,
    period: Period,
    only: Option<&dyn Fn(&CustomerId) -> bool>,
) -> GmvFactors {
    let columns = ShopColumns::of(shop);
    let selected = columns.select(only);
    gmv_factors_of(&columns, period, selected.as_deref())
}

/// [`gmv_factors`] over columns, `only` a selection by customer number.
pub fn gmv_factors_of(columns: &ShopColumns, period: Period, only: Option<&[bool]>) -> GmvFactors {
    let zone = &columns.zone;
    let (start, end) = (period.start(zone), period.end(zone));
    let selected = |n: u32| only.is_none_or(|s| s[n as usize]);
    let mut left = vec![false; columns.numbers()];
    for (n, at) in columns.events.of_kind("left") {
        if at < end {
            left[n as usize] = true;
        }
    }
    let (mut users, mut retained) = (0u64, 0u64);
    for &n in columns.pool.iter().filter(|&&n| selected(n)) {
        if columns.joined_at[n as usize] < end {
            users += 1;
            retained += u64::from(!left[n as usize]);
        }
    }
    let mut bought = vec![false; columns.numbers()];
    let (mut orders, mut gmv, mut buyers) = (0u64, 0i64, 0u64);
    let o = &columns.orders;
    for i in 0..o.len() {
        let (n, at) = (o.customer[i], o.at[i]);
        if o.paid[i] && at >= start && at < end && selected(n) {
            orders += 1;
            gmv += o.fen[i];
            buyers += u64::from(!std::mem::replace(&mut bought[n as usize], true));
        }
    }
    GmvFactors {
        period,
        users,
        retained,
        buyers,
        orders,
        gmv: Money::from_fen(gmv),
    }
}

/// One factor's part of a change in GMV.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Part {
    pub factor: Factor,
    /// The factor in the first and the second period (AOV in fen).
    pub before: Option<f64>,
    pub after: Option<f64>,
    /// Its share of the change, to the fen; the shares add up to the change exactly.
    pub share: Money,
}

/// The change in GMV between two periods, split among the factors.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GmvChange {
    pub before: GmvFactors,
    pub after: GmvFactors,
    pub change: Money,
    /// Empty when the change cannot be split (see `note`).
    pub parts: Vec<Part>,
    /// How a zero was handled, when one was.
    pub note: Option<String>,
}

/// The logarithmic mean L(x, y) = (x − y) / (ln x − ln y), and x when x = y.
pub fn log_mean(x: f64, y: f64) -> f64 {
    if x == y || ((x - y) / x).abs() < 1e-12 {
        x
    } else {
        (x - y) / (x.ln() - y.ln())
    }
}

/// Splits the change from `before` to `after` among the five factors by LMDI: factor
/// k's share is L(GMV₁, GMV₀)·ln(f₁ₖ/f₀ₖ). Shares are rounded to the fen so that they add
/// up to the change exactly (largest remainders). A period without GMV has no AOV or
/// purchases per buyer, so the split takes the limit the LMDI takes when a zero is
/// replaced by a vanishing ε: the whole change goes to the first link that is zero
/// (users, then retention, then conversion), and `note` says so.
pub fn decompose(before: GmvFactors, after: GmvFactors) -> GmvChange {
    let change = after.gmv - before.gmv;
    let values = |f: &GmvFactors| Factor::ALL.map(|k| f.value(k));
    let (v0, v1) = (values(&before), values(&after));
    let part = |k: usize, share: i64| Part {
        factor: Factor::ALL[k],
        before: v0[k],
        after: v1[k],
        share: Money::from_fen(share),
    };
    let (g0, g1) = (before.gmv.fen(), after.gmv.fen());
    if g0 > 0 && g1 > 0 {
        let all_positive = v0.iter().chain(&v1).all(|v| v.is_some_and(|v| v > 0.0));
        if !all_positive {
            return GmvChange {
                before,
                after,
                change,
                parts: Vec::new(),
                note: Some(
                    "every customer of a period with sales had left by its end: retention is 0 and conversion has no base, so the change is not split".into(),
                ),
            };
        }
        let l = log_mean(g1 as f64, g0 as f64);
        let exact: Vec<f64> = (0..5)
            .map(|k| l * (v1[k].unwrap_or(1.0) / v0[k].unwrap_or(1.0)).ln())
            .collect();
        let shares = round_to_total(&exact, change.fen());
        return GmvChange {
            before,
            after,
            change,
            parts: (0..5).map(|k| part(k, shares[k])).collect(),
            note: None,
        };
    }
    if g0 == g1 {
        return GmvChange {
            before,
            after,
            change,
            parts: (0..5).map(|k| part(k, 0)).collect(),
            note: Some("no GMV in either period: nothing to split".into()),
        };
    }
    // One period has no GMV: the first zero link of that period takes the change.
    let zero = if g0 == 0 { &before } else { &after };
    let (k, why) = if zero.users == 0 {
        (0, "it had no users")
    } else if zero.retained == 0 {
        (1, "none of its users were retained")
    } else {
        (2, "none of its retained users bought")
    };
    let which = if g0 == 0 { "the first" } else { "the second" };
    GmvChange {
        before,
        after,
        change,
        parts: (0..5)
            .map(|j| part(j, if j == k { change.fen() } else { 0 }))
            .collect(),
        note: Some(format!(
            "{which} period has no GMV ({why}): the whole change is {}, the limit of the LMDI as that zero is replaced by a vanishing amount",
            Factor::ALL[k]
        )),
    }
}

/// Rounds `exact` to whole numbers that add up to `total`: each is rounded down, and the
/// units left over go to the largest remainders (ties to the first).
pub fn round_to_total(exact: &[f64], total: i64) -> Vec<i64> {
    let mut out: Vec<i64> = exact.iter().map(|x| x.floor() as i64).collect();
    let mut short = total - out.iter().sum::<i64>();
    let mut order: Vec<usize> = (0..exact.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    // Floating point can leave the sum a unit or so off in either direction.
    let mut i = 0;
    while short != 0 && !order.is_empty() {
        let k = order[i % order.len()];
        if short > 0 {
            out[k] += 1;
            short -= 1;
        } else {
            out[k] -= 1;
            short += 1;
        }
        i += 1;
    }
    out
}

/// A what-if: factors moved by fractions (`0.10` is 10% more).
pub type WhatIf = Vec<(Factor, f64)>;

/// The largest rise a what-if may give a factor: ×11. Five factors at that still leave
/// the GMV of any real shop far inside what an `i64` of fen holds.
pub const MAX_WHAT_IF_PERCENT: f64 = 1_000.0;

/// Why a what-if does not read; each names the item it refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhatIfError {
    #[error("'{0}': expected FACTOR=±N%, e.g. retention=+10%")]
    NotAMove(String),
    #[error("'{0}' is not a factor (users, retention, conversion, purchases_per_buyer, aov)")]
    UnknownFactor(String),
    #[error("'{0}': the change is a percentage, e.g. +10% or -5%")]
    NotAPercentage(String),
    #[error("'{item}': '{number}' is not a number")]
    NotANumber { item: String, number: String },
    #[error("'{0}': a factor can move from just above -100% to +{MAX_WHAT_IF_PERCENT}%")]
    OutOfRange(String),
    #[error("'{item}': {factor} is given twice")]
    Twice { item: String, factor: Factor },
    #[error("no factor to move; e.g. --what-if retention=+10%,aov=-5%")]
    Empty,
}

/// Reads `retention=+10%,aov=-5%`.
pub fn parse_what_if(text: &str) -> Result<WhatIf, WhatIfError> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, amount) = item
            .split_once('=')
            .ok_or_else(|| WhatIfError::NotAMove(item.to_owned()))?;
        let factor = Factor::parse(name)
            .ok_or_else(|| WhatIfError::UnknownFactor(name.trim().to_owned()))?;
        let number = amount
            .trim()
            .strip_suffix('%')
            .ok_or_else(|| WhatIfError::NotAPercentage(item.to_owned()))?;
        let pct: f64 = number.trim().parse().map_err(|_| WhatIfError::NotANumber {
            item: item.to_owned(),
            number: number.to_owned(),
        })?;
        if !pct.is_finite() || pct <= -100.0 || pct > MAX_WHAT_IF_PERCENT {
            return Err(WhatIfError::OutOfRange(item.to_owned()));
        }
        if out.iter().any(|(f, _)| *f == factor) {
            return Err(WhatIfError::Twice {
                item: item.to_owned(),
                factor,
            });
        }
        out.push((factor, pct / 100.0));
    }
    if out.is_empty() {
        return Err(WhatIfError::Empty);
    }
    Ok(out)
}

/// The GMV if the factors moved as said: GMV × Π(1 + move), to the fen.
pub fn what_if(factors: &GmvFactors, moves: &[(Factor, f64)]) -> Money {
    let scale: f64 = moves.iter().map(|(_, m)| 1.0 + m).product();
    Money::from_fen((factors.gmv.fen() as f64 * scale).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::CustomerFact;
    use crate::order::{OrderFact, OrderStatus};
    use crate::profile::EventFact;
    use crate::time::TenantZone;
    use jiff::civil::Date;
    use proptest::prelude::*;

    fn zone() -> TenantZone {
        TenantZone::default()
    }

    fn id(n: u32) -> CustomerId {
        CustomerId::parse(&format!("c{n}")).expect("id")
    }

    fn at(day: i64) -> crate::time::Timestamp {
        zone().start_of(Date::constant(2025, 1, 1))
            + jiff::SignedDuration::from_hours(24 * day + 12)
    }

    fn period(from: i64, to: i64) -> Period {
        let d = |n: i64| {
            Date::constant(2025, 1, 1)
                .checked_add(jiff::Span::new().days(n))
                .expect("day")
        };
        Period::new(d(from), d(to)).expect("period")
    }

    /// A shop from (joined day, left day) per customer and (customer, day, fen, paid) orders.
    fn shop(customers: &[(i64, Option<i64>)], orders: &[(u32, i64, i64, bool)]) -> Shop {
        Shop {
            customers: customers
                .iter()
                .enumerate()
                .map(|(n, (joined, _))| CustomerFact {
                    id: id(n as u32),
                    channel: None,
                    joined_at: at(*joined),
                    referrer_id: None,
                })
                .collect(),
            orders: orders
                .iter()
                .map(|&(c, day, fen, paid)| OrderFact {
                    customer_id: id(c),
                    ordered_at: at(day),
                    amount: Money::from_fen(fen),
                    status: if paid {
                        OrderStatus::Paid
                    } else {
                        OrderStatus::Refunded
                    },
                })
                .collect(),
            events: customers
                .iter()
                .enumerate()
                .filter_map(|(n, (_, left))| {
                    Some(EventFact {
                        customer_id: id(n as u32),
                        kind: "left".into(),
                        occurred_at: at((*left)?),
                    })
                })
                .collect(),
            zone: zone(),
        }
    }

    #[test]
    fn the_five_factors_follow_the_definitions() {
        let s = shop(
            &[(0, None), (1, Some(5)), (2, None), (40, None)],
            &[
                (0, 10, 1_000, true),
                (0, 11, 3_000, true),
                (2, 12, 500, true),
                (2, 13, 9_999, false),
                (3, 45, 700, true),
            ],
        );
        let f = gmv_factors(&s, period(10, 19), None);
        assert_eq!((f.users, f.retained, f.buyers, f.orders), (3, 2, 2, 3));
        assert_eq!(f.gmv, Money::from_fen(4_500));
        assert_eq!(f.value(Factor::Retention), Some(2.0 / 3.0));
        assert_eq!(f.value(Factor::Conversion), Some(1.0));
        assert_eq!(f.value(Factor::PurchasesPerBuyer), Some(1.5));
        assert_eq!(f.value(Factor::Aov), Some(1_500.0));
        assert!((f.product().expect("product") - 4_500.0).abs() < 1e-9);
    }

    #[test]
    fn a_period_without_sales_gives_the_change_to_its_first_zero_link() {
        let s = shop(&[(0, None), (1, None)], &[(0, 20, 1_000, true)]);
        let c = decompose(
            gmv_factors(&s, period(10, 15), None),
            gmv_factors(&s, period(16, 25), None),
        );
        assert_eq!(c.change, Money::from_fen(1_000));
        let conversion = c
            .parts
            .iter()
            .find(|p| p.factor == Factor::Conversion)
            .expect("part");
        assert_eq!(conversion.share, Money::from_fen(1_000));
        assert!(c.note.as_deref().is_some_and(|n| n.contains("conversion")));
        let empty = shop(&[], &[]);
        let c = decompose(
            gmv_factors(&empty, period(0, 1), None),
            gmv_factors(&empty, period(2, 3), None),
        );
        assert_eq!(c.change, Money::ZERO);
        assert!(c.parts.iter().all(|p| p.share == Money::ZERO));
    }

    #[test]
    fn a_what_if_that_does_not_read_says_which_item_and_why() {
        assert_eq!(
            parse_what_if("aov=+1%,aov=+2%"),
            Err(WhatIfError::Twice {
                item: "aov=+2%".into(),
                factor: Factor::Aov
            })
        );
        assert_eq!(
            parse_what_if("loyalty=+5%"),
            Err(WhatIfError::UnknownFactor("loyalty".into()))
        );
        assert_eq!(parse_what_if(" , "), Err(WhatIfError::Empty));
        assert_eq!(
            WhatIfError::NotANumber {
                item: "aov=x%".into(),
                number: "x".into()
            }
            .to_string(),
            "'aov=x%': 'x' is not a number"
        );
    }

    #[test]
    fn what_ifs_are_read_and_ten_percent_worse_everywhere_leaves_59_percent() {
        let moves =
            parse_what_if("users=-10%, retention=-10%,conversion=-10%,frequency=-10%,aov=-10%")
                .expect("what-if");
        let f = GmvFactors {
            period: period(0, 0),
            users: 10,
            retained: 10,
            buyers: 5,
            orders: 5,
            gmv: Money::from_fen(1_000_000),
        };
        assert_eq!(what_if(&f, &moves), Money::from_fen(590_490));
        assert!(parse_what_if("retention=10").is_err());
        assert!(parse_what_if("loyalty=+5%").is_err());
        assert!(parse_what_if("aov=-100%").is_err());
        assert!(parse_what_if("retention=+1e308%").is_err());
        assert!(parse_what_if("retention=+1000.1%").is_err());
        assert!(parse_what_if("retention=+1000%").is_ok());
        assert!(parse_what_if("aov=+1%,aov=+2%").is_err());
    }

    #[test]
    fn rounding_keeps_the_total() {
        assert_eq!(round_to_total(&[0.5, 0.5, 0.0], 1), vec![1, 0, 0]);
        assert_eq!(round_to_total(&[-0.4, -0.6], -1), vec![0, -1]);
        assert_eq!(round_to_total(&[2.9999999, 1.0000001], 4), vec![3, 1]);
    }

    fn arbitrary_shop() -> impl Strategy<Value = Shop> {
        (
            prop::collection::vec((0i64..60, prop::option::of(0i64..60)), 1..12),
            prop::collection::vec(
                (
                    0u32..12,
                    0i64..60,
                    1i64..100_000,
                    prop::bool::weighted(0.85),
                ),
                0..40,
            ),
        )
            .prop_map(|(customers, orders)| {
                let n = customers.len() as u32;
                let orders: Vec<_> = orders
                    .into_iter()
                    .map(|(c, d, f, p)| (c % n, d, f, p))
                    .collect();
                shop(&customers, &orders)
            })
    }

    proptest! {
        #[test]
        fn the_factors_multiply_to_gmv_and_the_parts_add_to_the_change(
            s in arbitrary_shop(), a in 0i64..30, b in 30i64..60
        ) {
            let (p0, p1) = (period(0, a), period(a + 1, b));
            let (f0, f1) = (gmv_factors(&s, p0, None), gmv_factors(&s, p1, None));
            for f in [&f0, &f1] {
                if f.gmv.fen() > 0 && f.retained > 0 {
                    let product = f.product().expect("defined");
                    prop_assert!((product - f.gmv.fen() as f64).abs() <= 1e-6 * f.gmv.fen() as f64);
                }
            }
            let c = decompose(f0, f1);
            if !c.parts.is_empty() {
                let total: i64 = c.parts.iter().map(|p| p.share.fen()).sum();
                prop_assert_eq!(total, c.change.fen());
            }
            // Brute force: the counts by their definitions.
            let end = p1.end(&s.zone);
            let users = s.customers.iter().filter(|c| c.joined_at < end).count() as u64;
            prop_assert_eq!(f1.users, users);
            let in_p1: Vec<_> = s.orders.iter().filter(|o| o.status == OrderStatus::Paid && p1.contains(o.ordered_at, &s.zone)).collect();
            prop_assert_eq!(f1.orders, in_p1.len() as u64);
            prop_assert_eq!(f1.gmv.fen(), in_p1.iter().map(|o| o.amount.fen()).sum::<i64>());
        }
    }
}
