//! The calibration summary the models are fitted on: per customer, from the paid orders up
//! to the calibration end D (local days in the tenant's zone), the frequency x (purchase
//! days after the first), the recency t_x and the age T in weeks, and the mean spend of
//! the repeat purchase days; with a holdout end, also the repeat purchase days after D.

use jiff::civil::Date;

use super::ClvError;
use crate::fasthash::FastHashMap;
use crate::ids::CustomerId;
use crate::order::{OrderFact, OrderStatus};
use crate::time::{DayNumber, ZoneDays, date_number};
use crate::time::{TenantZone, Timestamp};

/// Days in the models' unit of time, the week.
pub const DAYS_PER_WEEK: f64 = 7.0;

/// One customer's calibration figures.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerSummary {
    pub customer_id: CustomerId,
    pub history: History,
    /// Repeat purchase days in (D, holdout end]; 0 without a holdout.
    pub holdout_frequency: u32,
}

/// A customer's history as the models see it (they need no id).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct History {
    /// x: distinct local days with a paid order up to D, minus the first.
    pub frequency: u32,
    /// t_x: weeks from the first to the last purchase day up to D.
    pub recency: f64,
    /// T: weeks from the first purchase day to D.
    pub age: f64,
    /// The mean paid amount per repeat purchase day (the first day left out), in yuan;
    /// 0 when x = 0.
    pub monetary_value: f64,
}

/// Why a customer's summary from elsewhere is refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum HistoryError {
    #[error("recency, T and monetary_value must be numbers")]
    NotNumbers,
    #[error("recency {0} is negative")]
    NegativeRecency(f64),
    #[error("recency {recency} is larger than T {age}")]
    RecencyAfterAge { recency: f64, age: f64 },
    #[error("recency {0} with frequency 0 (it must be 0)")]
    RecencyWithoutRepeat(f64),
    #[error("monetary_value {0} is negative")]
    NegativeSpend(f64),
}

impl History {
    /// Checks the figures a summary from elsewhere (a file) holds: t_x and T finite with
    /// 0 ≤ t_x ≤ T, t_x = 0 when x = 0, and a finite, non-negative spend.
    pub fn check(&self) -> Result<(), HistoryError> {
        if !(self.recency.is_finite() && self.age.is_finite() && self.monetary_value.is_finite()) {
            return Err(HistoryError::NotNumbers);
        }
        if self.recency < 0.0 {
            return Err(HistoryError::NegativeRecency(self.recency));
        }
        if self.recency > self.age {
            return Err(HistoryError::RecencyAfterAge {
                recency: self.recency,
                age: self.age,
            });
        }
        if self.frequency == 0 && self.recency != 0.0 {
            return Err(HistoryError::RecencyWithoutRepeat(self.recency));
        }
        if self.monetary_value < 0.0 {
            return Err(HistoryError::NegativeSpend(self.monetary_value));
        }
        Ok(())
    }
}

/// The calibration summary: every customer with a paid order on or before D, by id.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationSummary {
    pub calibration_end: Date,
    pub holdout_end: Option<Date>,
    pub customers: Vec<CustomerSummary>,
}

impl CalibrationSummary {
    /// Weeks from D to the holdout end.
    pub fn holdout_weeks(&self) -> Option<f64> {
        self.holdout_end.map(|end| {
            f64::from(date_number(end) - date_number(self.calibration_end)) / DAYS_PER_WEEK
        })
    }
}

/// Paid amounts by local day per customer, collected from orders in any order; the
/// summary for any calibration end is then drawn from it.
#[derive(Debug)]
pub struct PurchaseDays {
    zone: TenantZone,
    days: ZoneDays,
    by_customer: FastHashMap<CustomerId, Vec<(DayNumber, i64)>>,
    last_paid: Option<Timestamp>,
}

impl PurchaseDays {
    pub fn new(zone: &TenantZone) -> PurchaseDays {
        PurchaseDays {
            zone: zone.clone(),
            days: ZoneDays::new(zone),
            by_customer: FastHashMap::default(),
            last_paid: None,
        }
    }

    /// Counts the order if it is paid; refunded orders count nowhere.
    pub fn add(&mut self, order: OrderFact) {
        if order.status != OrderStatus::Paid {
            return;
        }
        let day = self.days.day_of(order.ordered_at);
        if self.last_paid.is_none_or(|t| order.ordered_at > t) {
            self.last_paid = Some(order.ordered_at);
        }
        self.by_customer
            .entry(order.customer_id)
            .or_default()
            .push((day, order.amount.fen()));
    }

    /// The local day of the last paid order: the default calibration end.
    pub fn last_day(&self) -> Option<Date> {
        self.last_paid.map(|t| self.zone.day_of(t))
    }

    /// The summary as of the end of `calibration_end`, with the repeat purchase days in
    /// (calibration_end, holdout_end] when a holdout end is given (it must be later).
    pub fn summary(
        &self,
        calibration_end: Date,
        holdout_end: Option<Date>,
    ) -> Result<CalibrationSummary, ClvError> {
        if let Some(end) = holdout_end
            && end <= calibration_end
        {
            return Err(ClvError::HoldoutNotAfterCalibration {
                calibration_end,
                holdout_end: end,
            });
        }
        let d = date_number(calibration_end);
        let h = holdout_end.map(date_number);
        let mut customers = Vec::new();
        let mut days: Vec<(DayNumber, i64)> = Vec::new();
        for (id, orders) in &self.by_customer {
            days.clear();
            days.extend_from_slice(orders);
            days.sort_unstable_by_key(|&(day, _)| day);
            let Some((history, holdout)) = history_of(&days, d, h) else {
                continue;
            };
            customers.push(CustomerSummary {
                customer_id: id.clone(),
                history,
                holdout_frequency: holdout,
            });
        }
        customers.sort_unstable_by(|a, b| a.customer_id.cmp(&b.customer_id));
        Ok(CalibrationSummary {
            calibration_end,
            holdout_end,
            customers,
        })
    }
}

/// One customer's history as of day `d` from their paid (day, fen), sorted by day (the
/// order within a day does not matter), with the repeat purchase days in (d, h]; none
/// without a paid day up to `d`.
pub fn history_of(
    days: &[(DayNumber, i64)],
    d: DayNumber,
    h: Option<DayNumber>,
) -> Option<(History, u32)> {
    let &(first, _) = days.first().filter(|(day, _)| *day <= d)?;
    let mut frequency = 0u32;
    let mut last = first;
    let mut repeat_fen: i128 = 0;
    let mut holdout = 0u32;
    let mut previous = first;
    for &(day, fen) in days.iter() {
        if day <= d {
            if day != first {
                repeat_fen += i128::from(fen);
                if day != previous {
                    frequency += 1;
                }
            }
            last = day;
        } else if h.is_some_and(|h| day <= h) && day != previous {
            holdout += 1;
        }
        previous = day;
    }
    let monetary_value = if frequency == 0 {
        0.0
    } else {
        repeat_fen as f64 / 100.0 / f64::from(frequency)
    };
    Some((
        History {
            frequency,
            recency: f64::from(last - first) / DAYS_PER_WEEK,
            age: f64::from(d - first) / DAYS_PER_WEEK,
            monetary_value,
        },
        holdout,
    ))
}

/// The calibration summary of `orders` (see [`PurchaseDays::summary`]).
pub fn calibration_summary(
    orders: impl IntoIterator<Item = OrderFact>,
    zone: &TenantZone,
    calibration_end: Date,
    holdout_end: Option<Date>,
) -> Result<CalibrationSummary, ClvError> {
    let mut days = PurchaseDays::new(zone);
    for order in orders {
        days.add(order);
    }
    days.summary(calibration_end, holdout_end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Money;

    fn order(customer: &str, at: &str, yuan: i64, status: OrderStatus) -> OrderFact {
        OrderFact {
            customer_id: CustomerId::parse(customer).expect("id"),
            ordered_at: TenantZone::default().parse_timestamp(at).expect("time"),
            amount: Money::yuan(yuan),
            status,
        }
    }

    fn day(text: &str) -> Date {
        TenantZone::parse_day(text).expect("day")
    }

    use OrderStatus::{Paid, Refunded};

    #[test]
    fn frequency_counts_purchase_days_after_the_first_and_spend_leaves_the_first_day_out() {
        let orders = vec![
            order("c1", "2024-01-01 09:00:00", 100, Paid),
            order("c1", "2024-01-01 20:00:00", 50, Paid),
            order("c1", "2024-01-08 10:00:00", 30, Paid),
            order("c1", "2024-01-08 11:00:00", 10, Paid),
            order("c1", "2024-01-15 23:59:59", 20, Paid),
            order("c1", "2024-01-20 10:00:00", 999, Refunded),
            order("c1", "2024-01-29 10:00:00", 70, Paid),
        ];
        let s = calibration_summary(orders, &TenantZone::default(), day("2024-01-22"), None)
            .expect("summary");
        assert_eq!(s.customers.len(), 1);
        let c = &s.customers[0].history;
        assert_eq!(c.frequency, 2);
        assert_eq!(c.recency, 2.0);
        assert_eq!(c.age, 3.0);
        // Days 2024-01-08 (40) and 2024-01-15 (20).
        assert_eq!(c.monetary_value, 30.0);
        assert_eq!(s.customers[0].holdout_frequency, 0);
    }

    #[test]
    fn refunded_orders_count_nowhere() {
        let orders = vec![
            order("c1", "2024-01-01", 100, Refunded),
            order("c1", "2024-01-03", 40, Paid),
            order("c2", "2024-01-02", 10, Refunded),
        ];
        let s = calibration_summary(orders, &TenantZone::default(), day("2024-01-10"), None)
            .expect("summary");
        assert_eq!(s.customers.len(), 1);
        assert_eq!(s.customers[0].history.frequency, 0);
        assert_eq!(s.customers[0].history.age, 1.0);
        assert_eq!(s.customers[0].history.monetary_value, 0.0);
    }

    #[test]
    fn days_are_the_tenants_local_days() {
        // 23:30 in Shanghai and 00:30 the next day are two days; in UTC (15:30 and 16:30)
        // they are one.
        let orders = || {
            vec![
                order("c1", "2024-03-01T15:30:00Z", 10, Paid),
                order("c1", "2024-03-01T16:30:00Z", 10, Paid),
            ]
        };
        let s = calibration_summary(orders(), &TenantZone::default(), day("2024-03-10"), None)
            .expect("summary");
        assert_eq!(s.customers[0].history.frequency, 1);
        let utc = TenantZone::named("UTC").expect("zone");
        let s = calibration_summary(orders(), &utc, day("2024-03-10"), None).expect("summary");
        assert_eq!(s.customers[0].history.frequency, 0);
    }

    #[test]
    fn the_holdout_counts_repeat_days_after_the_calibration_end() {
        let orders = vec![
            order("c1", "2024-01-01", 10, Paid),
            order("c1", "2024-01-05", 10, Paid),
            order("c1", "2024-01-06", 10, Paid),
            order("c1", "2024-01-06", 10, Paid),
            order("c1", "2024-01-07", 10, Refunded),
            order("c1", "2024-02-01", 10, Paid),
            // Customers who first buy after D are not in the summary.
            order("c2", "2024-01-05", 10, Paid),
        ];
        let mut days = PurchaseDays::new(&TenantZone::default());
        for o in orders {
            days.add(o);
        }
        assert_eq!(days.last_day(), Some(day("2024-02-01")));
        let s = days
            .summary(day("2024-01-04"), Some(day("2024-01-31")))
            .expect("summary");
        assert_eq!(s.customers.len(), 1);
        assert_eq!(s.customers[0].history.frequency, 0);
        assert_eq!(s.customers[0].holdout_frequency, 2);
        assert_eq!(s.holdout_weeks(), Some(27.0 / 7.0));
        assert!(matches!(
            days.summary(day("2024-01-04"), Some(day("2024-01-04"))),
            Err(ClvError::HoldoutNotAfterCalibration { .. })
        ));
    }

    #[test]
    fn a_summary_from_elsewhere_is_checked() {
        let good = History {
            frequency: 2,
            recency: 3.0,
            age: 5.0,
            monetary_value: 12.5,
        };
        assert_eq!(good.check(), Ok(()));
        let bad = History {
            recency: 6.0,
            ..good
        };
        assert!(bad.check().is_err());
        let bad = History {
            frequency: 0,
            ..good
        };
        assert!(bad.check().is_err());
        let bad = History {
            age: f64::NAN,
            ..good
        };
        assert!(bad.check().is_err());
    }
}
