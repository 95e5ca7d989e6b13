//! The raw facts every report reads: the pool, the orders and the interactions of one
//! tenant, with its time zone for day boundaries.

use jiff::civil::Date;

use crate::customer::CustomerFact;
use crate::order::OrderFact;
use crate::profile::EventFact;
use crate::time::{TenantZone, Timestamp};

#[derive(Debug, Clone)]
pub struct Shop {
    pub customers: Vec<CustomerFact>,
    pub orders: Vec<OrderFact>,
    pub events: Vec<EventFact>,
    pub zone: TenantZone,
}

/// Local days `from ..= to`: the instants `[a, b)` of DESIGN.md, a = start of `from`,
/// b = start of the day after `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Period {
    pub from: Date,
    pub to: Date,
}

/// A period refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("the period ends ({to}) before it starts ({from})")]
    EndsBeforeStart { from: Date, to: Date },
}

impl Period {
    /// Refuses a period that ends before it starts.
    pub fn new(from: Date, to: Date) -> Result<Period, PeriodError> {
        if to < from {
            return Err(PeriodError::EndsBeforeStart { from, to });
        }
        Ok(Period { from, to })
    }

    /// The first instant of the period.
    pub fn start(&self, zone: &TenantZone) -> Timestamp {
        zone.start_of(self.from)
    }

    /// The first instant after the period.
    pub fn end(&self, zone: &TenantZone) -> Timestamp {
        zone.start_of(self.to.tomorrow().unwrap_or(self.to))
    }

    pub fn contains(&self, at: Timestamp, zone: &TenantZone) -> bool {
        at >= self.start(zone) && at < self.end(zone)
    }

    /// Days in the period.
    pub fn days(&self) -> i64 {
        i64::from((self.to - self.from).get_days()) + 1
    }
}
