//! Cohort retention and the repurchase rate: customers by the month of their first paid
//! order, and the share of each cohort buying again in the months after it.

use std::collections::BTreeMap;

use crate::fasthash::FastHashMap;

use jiff::civil::Date;
use serde::Serialize;

use super::ratio;
use super::shop::Shop;
use crate::channel::Channel;
use crate::ids::CustomerId;
use crate::order::OrderStatus;

/// A calendar month, `2025-03`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i16,
    pub month: i8,
}

/// Text that is not a month.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a month (expected YYYY-MM, e.g. 2025-03)")]
pub struct MonthError(pub String);

impl Month {
    pub fn of(day: Date) -> Month {
        Month {
            year: day.year(),
            month: day.month(),
        }
    }

    /// Months from `self` to `later` (negative if earlier).
    pub fn until(self, later: Month) -> i32 {
        (i32::from(later.year) - i32::from(self.year)) * 12 + i32::from(later.month)
            - i32::from(self.month)
    }

    /// Reads `YYYY-MM`.
    pub fn parse(text: &str) -> Result<Month, MonthError> {
        let bad = || MonthError(text.to_owned());
        let (y, m) = text.trim().split_once('-').ok_or_else(bad)?;
        let (year, month): (i16, i8) =
            (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if y.len() != 4 || m.len() != 2 || !(1..=12).contains(&month) || year < 1970 {
            return Err(bad());
        }
        Ok(Month { year, month })
    }

    pub fn first_day(self) -> Date {
        Date::new(self.year, self.month, 1).unwrap_or(Date::MIN)
    }

    pub fn last_day(self) -> Date {
        self.first_day().last_of_month()
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl Serialize for Month {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cohort {
    pub month: Month,
    /// Customers whose first paid order is in that month.
    pub customers: u64,
    /// `again[k - 1]`: of them, those with a paid order in month k after it (k = 1, 2, …),
    /// for the months up to the as-of day.
    pub again: Vec<u64>,
    /// `again` as shares of `customers`.
    pub shares: Vec<Option<f64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepurchaseLine {
    pub channel: Option<Channel>,
    pub buyers: u64,
    /// Buyers with two or more purchase days.
    pub repeaters: u64,
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cohorts {
    pub as_of: Date,
    pub cohorts: Vec<Cohort>,
    /// Buyers with two or more purchase days, of all buyers (paid orders up to the as-of day).
    pub repurchase: RepurchaseLine,
    pub by_channel: Vec<RepurchaseLine>,
}

/// Cohorts of paid orders up to the end of `as_of`, showing at most `months` months after
/// each cohort's own.
pub fn cohorts(shop: &Shop, as_of: Date, months: u32) -> Cohorts {
    let zone = &shop.zone;
    let last = Month::of(as_of);
    // Each buyer's purchase days.
    let mut days: FastHashMap<&CustomerId, Vec<Date>> = FastHashMap::default();
    for o in &shop.orders {
        if o.status != OrderStatus::Paid {
            continue;
        }
        let day = zone.day_of(o.ordered_at);
        if day <= as_of {
            let d = days.entry(&o.customer_id).or_default();
            if !d.contains(&day) {
                d.push(day);
            }
        }
    }
    let mut by_month: BTreeMap<Month, (u64, Vec<u64>)> = BTreeMap::new();
    for d in days.values() {
        let first = Month::of(*d.iter().min().unwrap_or(&as_of));
        let observed = first.until(last).clamp(0, months as i32) as usize;
        let entry = by_month
            .entry(first)
            .or_insert_with(|| (0, vec![0; observed]));
        entry.0 += 1;
        let mut seen = vec![false; observed];
        for day in d {
            let k = first.until(Month::of(*day));
            if k >= 1 && (k as usize) <= observed {
                seen[k as usize - 1] = true;
            }
        }
        for (k, s) in seen.into_iter().enumerate() {
            entry.1[k] += u64::from(s);
        }
    }
    let cohorts = by_month
        .into_iter()
        .map(|(month, (customers, again))| Cohort {
            month,
            customers,
            shares: again.iter().map(|&n| ratio(n, customers)).collect(),
            again,
        })
        .collect();
    let line = |channel: Option<Channel>, buyers: u64, repeaters: u64| RepurchaseLine {
        channel,
        buyers,
        repeaters,
        rate: ratio(repeaters, buyers),
    };
    let channel_of: FastHashMap<&CustomerId, Option<&Channel>> = shop
        .customers
        .iter()
        .map(|c| (&c.id, c.channel.as_ref()))
        .collect();
    let mut per: BTreeMap<Option<Channel>, (u64, u64)> = BTreeMap::new();
    let (mut buyers, mut repeaters) = (0, 0);
    for (id, d) in &days {
        let repeat = u64::from(d.len() >= 2);
        buyers += 1;
        repeaters += repeat;
        let channel = channel_of.get(id).copied().flatten().cloned();
        let e = per.entry(channel).or_default();
        e.0 += 1;
        e.1 += repeat;
    }
    Cohorts {
        as_of,
        cohorts,
        repurchase: line(None, buyers, repeaters),
        by_channel: per.into_iter().map(|(c, (b, r))| line(c, b, r)).collect(),
    }
}
