//! Cohort retention and the repurchase rate: customers by the month of their first paid
//! order, and the share of each cohort buying again in the months after it.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::Serialize;

use super::columns::ShopColumns;
use super::ratio;
use super::shop::Shop;
use crate::channel::Channel;

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
    cohorts_of(&ShopColumns::of(shop), as_of, months)
}

/// [`cohorts`] over columns.
pub fn cohorts_of(columns: &ShopColumns, as_of: Date, months: u32) -> Cohorts {
    let zone = &columns.zone;
    let last = Month::of(as_of);
    let o = &columns.orders;
    // Each paid order's day up to `as_of` (none otherwise); per customer the first day and
    // whether they bought on a second day.
    let mut first: Vec<Option<Date>> = vec![None; columns.numbers()];
    let mut second = vec![false; columns.numbers()];
    let days: Vec<Option<Date>> = (0..o.len())
        .map(|i| {
            if !o.paid[i] {
                return None;
            }
            let day = zone.day_of(o.at[i]);
            if day > as_of {
                return None;
            }
            let n = o.customer[i] as usize;
            match first[n] {
                None => first[n] = Some(day),
                Some(f) => {
                    second[n] |= f != day;
                    first[n] = Some(f.min(day));
                }
            }
            Some(day)
        })
        .collect();
    let observed = |first: Month| first.until(last).clamp(0, months as i32) as usize;
    // (customer, months after their first) for each purchase in an observed month.
    let mut again: Vec<u64> = Vec::new();
    for (i, day) in days.iter().enumerate() {
        let Some(day) = day else { continue };
        let n = o.customer[i];
        let Some(f) = first[n as usize] else { continue };
        let f = Month::of(f);
        let k = f.until(Month::of(*day));
        if k >= 1 && (k as usize) <= observed(f) {
            again.push(u64::from(n) << 32 | k as u64);
        }
    }
    drop(days);
    again.sort_unstable();
    again.dedup();
    let mut by_month: BTreeMap<Month, (u64, Vec<u64>)> = BTreeMap::new();
    let outside = columns.channels.len();
    let mut per_index = vec![(0u64, 0u64); outside + 1];
    let (mut buyers, mut repeaters) = (0, 0);
    for (n, f) in first.iter().enumerate() {
        let Some(f) = f else { continue };
        let f = Month::of(*f);
        by_month
            .entry(f)
            .or_insert_with(|| (0, vec![0; observed(f)]))
            .0 += 1;
        let repeat = u64::from(second[n]);
        buyers += 1;
        repeaters += repeat;
        let c = columns.channel_index(n as u32).map_or(outside, usize::from);
        per_index[c].0 += 1;
        per_index[c].1 += repeat;
    }
    for key in again {
        let (n, k) = ((key >> 32) as usize, (key & 0xffff_ffff) as usize);
        if let Some(f) = first[n]
            && let Some(entry) = by_month.get_mut(&Month::of(f))
        {
            entry.1[k - 1] += 1;
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
    let mut per: BTreeMap<Option<Channel>, (u64, u64)> = BTreeMap::new();
    for (c, (b, r)) in per_index.into_iter().enumerate() {
        if b == 0 {
            continue;
        }
        let channel = columns.channels.get(c).cloned().flatten();
        let e = per.entry(channel).or_default();
        e.0 += b;
        e.1 += r;
    }
    Cohorts {
        as_of,
        cohorts,
        repurchase: line(None, buyers, repeaters),
        by_channel: per.into_iter().map(|(c, (b, r))| line(c, b, r)).collect(),
    }
}
