//! The overview of a shop: pool, buyers, orders, GMV, AOV, repurchase rate, by channel.

use jiff::civil::Date;
use serde::Serialize;

use super::columns::{ColumnSink, ShopColumns};
use super::{mean_fen, ratio};
use crate::channel::Channel;
use crate::money::Money;
use crate::order::OrderFact;
use crate::profile::ProfileSink;
use crate::time::TenantZone;

pub use crate::customer::CustomerFact;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    /// Customers in the pool.
    pub customers: u64,
    /// Customers with at least one paid order.
    pub buyers: u64,
    /// Buyers / customers (the table's "buyers / pool").
    pub buyer_share: Option<f64>,
    pub paid_orders: u64,
    pub refunded_orders: u64,
    /// Paid amount.
    pub gmv: Money,
    /// GMV / paid orders.
    pub aov: Option<Money>,
    /// Share of buyers with two or more purchase days.
    pub repurchase_rate: Option<f64>,
    pub first_order_day: Option<Date>,
    pub last_order_day: Option<Date>,
    pub channels: Vec<ChannelLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelLine {
    /// Source channel; `None` for customers whose source is unknown.
    pub channel: Option<Channel>,
    pub customers: u64,
    pub buyers: u64,
    /// Buyers / customers.
    pub conversion: Option<f64>,
    pub gmv: Money,
}

impl Overview {
    pub fn compute(
        customers: impl IntoIterator<Item = CustomerFact>,
        orders: impl IntoIterator<Item = OrderFact>,
        zone: &TenantZone,
    ) -> Overview {
        let mut columns = ShopColumns::new(zone);
        let mut sink = ColumnSink::new(&mut columns, Some(&[]));
        for c in customers {
            sink.customer(c);
        }
        for o in orders {
            sink.order(
                o.customer_id.as_str(),
                o.ordered_at,
                o.amount,
                o.status,
                false,
            );
        }
        drop(sink);
        Overview::of(&columns)
    }

    /// The overview of a shop's columns.
    pub fn of(columns: &ShopColumns) -> Overview {
        let zone = &columns.zone;
        let (mut paid, mut refunded, mut gmv) = (0u64, 0u64, 0i64);
        let (mut first, mut last): (Option<Date>, Option<Date>) = (None, None);
        // Per customer: their spend, the first day they bought, and whether on another day.
        let mut spend = vec![0i64; columns.numbers()];
        let mut first_day: Vec<Option<Date>> = vec![None; columns.numbers()];
        let mut again = vec![false; columns.numbers()];
        let o = &columns.orders;
        for i in 0..o.len() {
            if !o.paid[i] {
                refunded += 1;
                continue;
            }
            paid += 1;
            gmv += o.fen[i];
            let day = zone.day_of(o.at[i]);
            first = Some(first.map_or(day, |f| f.min(day)));
            last = Some(last.map_or(day, |l| l.max(day)));
            let n = o.customer[i] as usize;
            spend[n] += o.fen[i];
            match first_day[n] {
                None => first_day[n] = Some(day),
                Some(f) => again[n] |= f != day,
            }
        }
        let buyers = first_day.iter().filter(|d| d.is_some()).count() as u64;
        let repeaters = again.iter().filter(|&&a| a).count() as u64;
        let mut by_index: Vec<Option<ChannelLine>> =
            (0..columns.channels.len()).map(|_| None).collect();
        let mut pool = 0u64;
        for &n in &columns.pool {
            let Some(c) = columns.channel_index(n) else {
                continue;
            };
            pool += 1;
            let line = by_index[usize::from(c)].get_or_insert_with(|| ChannelLine {
                channel: columns.channels[usize::from(c)].clone(),
                customers: 0,
                buyers: 0,
                conversion: None,
                gmv: Money::ZERO,
            });
            line.customers += 1;
            if first_day[n as usize].is_some() {
                line.buyers += 1;
                line.gmv += Money::from_fen(spend[n as usize]);
            }
        }
        let mut channels: Vec<ChannelLine> = by_index.into_iter().flatten().collect();
        for line in &mut channels {
            line.conversion = ratio(line.buyers, line.customers);
        }
        channels.sort_by(|a, b| {
            b.customers
                .cmp(&a.customers)
                .then(a.channel.cmp(&b.channel))
        });
        Overview {
            customers: pool,
            buyers,
            buyer_share: ratio(buyers, pool),
            paid_orders: paid,
            refunded_orders: refunded,
            gmv: Money::from_fen(gmv),
            aov: mean_fen(gmv, paid).map(Money::from_fen),
            repurchase_rate: ratio(repeaters, buyers),
            first_order_day: first,
            last_order_day: last,
            channels,
        }
    }
}

/// The periods GMV is shown by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grain {
    Day,
    /// Monday to Sunday.
    Week,
    Month,
}

impl Grain {
    pub const ALL: [Grain; 3] = [Grain::Day, Grain::Week, Grain::Month];

    /// The first local day of the period `day` falls in.
    pub fn start(self, day: Date) -> Date {
        match self {
            Grain::Day => day,
            Grain::Week => {
                let back = day.weekday().to_monday_zero_offset();
                day.checked_sub(jiff::Span::new().days(back)).unwrap_or(day)
            }
            Grain::Month => day.first_of_month(),
        }
    }

    /// The first day of the period after the one starting on `start`.
    fn next(self, start: Date) -> Option<Date> {
        match self {
            Grain::Day => start.tomorrow().ok(),
            Grain::Week => start.checked_add(jiff::Span::new().days(7)).ok(),
            Grain::Month => start.checked_add(jiff::Span::new().months(1)).ok(),
        }
    }
}

/// The GMV of one local period: what the paid orders ordered in it paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodLine {
    /// Its first local day.
    pub first_day: Date,
    pub gmv: Money,
    pub paid_orders: u64,
}

/// GMV and paid orders per local period, the first period with a paid order to the last,
/// periods without one included: over all periods they sum to the overview's GMV and paid
/// orders.
pub fn gmv_by(columns: &ShopColumns, grain: Grain) -> Vec<PeriodLine> {
    let o = &columns.orders;
    let mut by: std::collections::BTreeMap<Date, (i64, u64)> = Default::default();
    for i in 0..o.len() {
        if o.paid[i] {
            let line = by
                .entry(grain.start(columns.zone.day_of(o.at[i])))
                .or_default();
            line.0 += o.fen[i];
            line.1 += 1;
        }
    }
    let (Some(&first), Some(&last)) = (by.keys().next(), by.keys().next_back()) else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    let mut at = Some(first);
    while let Some(day) = at.filter(|d| *d <= last) {
        let (fen, paid_orders) = by.get(&day).copied().unwrap_or_default();
        lines.push(PeriodLine {
            first_day: day,
            gmv: Money::from_fen(fen),
            paid_orders,
        });
        at = grain.next(day);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::CustomerId;
    use crate::order::OrderStatus;
    use crate::time::Timestamp;

    fn order(customer: &str, at: &str, fen: i64, status: OrderStatus) -> OrderFact {
        let zone = TenantZone::default();
        OrderFact {
            customer_id: CustomerId::parse(customer).expect("id"),
            ordered_at: zone.parse_timestamp(at).expect("time"),
            amount: Money::from_fen(fen),
            status,
        }
    }

    fn customer(id: &str, channel: &str) -> CustomerFact {
        CustomerFact {
            id: CustomerId::parse(id).expect("id"),
            channel: Some(Channel::parse(channel).expect("channel")),
            joined_at: Timestamp::UNIX_EPOCH,
            referrer_id: None,
        }
    }

    #[test]
    fn refunded_orders_count_nowhere_and_two_orders_on_one_day_are_one_purchase_day() {
        let o = Overview::compute(
            [
                customer("a", "store"),
                customer("b", "douyin"),
                customer("c", "douyin"),
            ],
            [
                order("a", "2024-05-01 10:00:00", 10_000, OrderStatus::Paid),
                order("a", "2024-05-01 18:00:00", 5_000, OrderStatus::Paid),
                order("b", "2024-05-01 10:00:00", 3_000, OrderStatus::Paid),
                order("b", "2024-05-09 10:00:00", 9_999, OrderStatus::Refunded),
                order("b", "2024-05-10 23:30:00", 3_001, OrderStatus::Paid),
            ],
            &TenantZone::default(),
        );
        assert_eq!(o.customers, 3);
        assert_eq!(o.buyers, 2);
        assert_eq!(o.paid_orders, 4);
        assert_eq!(o.refunded_orders, 1);
        assert_eq!(o.gmv, Money::from_fen(21_001));
        assert_eq!(o.aov, Some(Money::from_fen(5_250)));
        assert_eq!(o.repurchase_rate, Some(0.5));
        assert_eq!(
            o.last_order_day.map(|d| d.to_string()).as_deref(),
            Some("2024-05-10")
        );
        assert_eq!(
            o.channels[0].channel.as_ref().map(Channel::as_str),
            Some("douyin")
        );
        assert_eq!(o.channels[0].customers, 2);
        assert_eq!(o.channels[0].buyers, 1);
    }

    #[test]
    fn months_run_from_the_first_paid_order_to_the_last_and_sum_to_the_gmv() {
        let zone = TenantZone::default();
        let orders = [
            // Local days: the first and last minutes of a month are in it.
            order("a", "2024-05-01 00:30:00", 10_000, OrderStatus::Paid),
            order("a", "2024-07-31 23:59:00", 5_000, OrderStatus::Paid),
            order("b", "2024-07-02 10:00:00", 9_999, OrderStatus::Refunded),
            order("b", "2024-07-02 11:00:00", 3_000, OrderStatus::Paid),
        ];
        let mut columns = ShopColumns::new(&zone);
        let mut sink = ColumnSink::new(&mut columns, Some(&[]));
        for c in [customer("a", "store"), customer("b", "douyin")] {
            sink.customer(c);
        }
        for o in &orders {
            sink.order(
                o.customer_id.as_str(),
                o.ordered_at,
                o.amount,
                o.status,
                false,
            );
        }
        drop(sink);
        let months = gmv_by(&columns, Grain::Month);
        let shown: Vec<(String, i64, u64)> = months
            .iter()
            .map(|m| (m.first_day.to_string(), m.gmv.fen(), m.paid_orders))
            .collect();
        assert_eq!(
            shown,
            [
                ("2024-05-01".to_owned(), 10_000, 1),
                ("2024-06-01".to_owned(), 0, 0),
                ("2024-07-01".to_owned(), 8_000, 2),
            ]
        );
        let o = Overview::of(&columns);
        assert_eq!(months.iter().map(|m| m.gmv.fen()).sum::<i64>(), o.gmv.fen());
        assert_eq!(
            months.iter().map(|m| m.paid_orders).sum::<u64>(),
            o.paid_orders
        );
        // By week (Monday to Sunday) and by day, every period from the first to the last.
        let weeks = gmv_by(&columns, Grain::Week);
        assert_eq!(
            weeks.first().map(|w| w.first_day.to_string()),
            Some("2024-04-29".to_owned())
        );
        assert_eq!(
            weeks.last().map(|w| w.first_day.to_string()),
            Some("2024-07-29".to_owned())
        );
        assert_eq!(weeks.len(), 14);
        let days = gmv_by(&columns, Grain::Day);
        assert_eq!(days.len(), 92);
        for lines in [&weeks, &days] {
            assert_eq!(lines.iter().map(|m| m.gmv.fen()).sum::<i64>(), o.gmv.fen());
            assert_eq!(
                lines.iter().map(|m| m.paid_orders).sum::<u64>(),
                o.paid_orders
            );
        }
    }

    #[test]
    fn an_empty_shop_has_no_averages() {
        let o = Overview::compute([], [], &TenantZone::default());
        assert_eq!(o.aov, None);
        assert_eq!(o.repurchase_rate, None);
    }
}
