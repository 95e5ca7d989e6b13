//! RFM exactly as DESIGN.md defines it: recency, frequency and monetary value of each
//! customer's paid orders in a window of local days ending with the as-of day, classed
//! against the means into eight classes, and scored in quintiles.
//!
//! Every path ends in the same two steps: paid orders in the window are added to one
//! [`Tally`] per customer (`Tally::add`, or [`rfm`] / [`Tallies`] over stored
//! [`OrderFact`]s), and [`score`] turns the tallies into the figures. The database path
//! and the orders-file fast path differ only in how they find each order's customer,
//! local day and amount.

use std::collections::HashMap;
use std::fmt;

use jiff::civil::Date;
use serde::{Serialize, Serializer};

use crate::ids::CustomerId;
use crate::money::Money;
use crate::order::{OrderFact, OrderStatus};
use crate::time::{DayNumber, TenantZone, ZoneDays, date_number};

/// Which paid orders count: those whose local day d has `as_of − window_days < d ≤ as_of`
/// (every day up to `as_of` when there is no window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RfmWindow {
    pub as_of: Date,
    pub window_days: Option<u32>,
}

impl RfmWindow {
    pub fn new(as_of: Date, window_days: Option<u32>) -> RfmWindow {
        RfmWindow { as_of, window_days }
    }

    /// The window as day numbers.
    pub fn days(&self) -> DayRange {
        let through = date_number(self.as_of);
        let after = match self.window_days {
            Some(w) => i64::from(through) - i64::from(w),
            None => i64::MIN,
        };
        DayRange { after, through }
    }
}

/// Local days `after < d ≤ through`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayRange {
    after: i64,
    through: DayNumber,
}

impl DayRange {
    #[inline]
    pub fn contains(self, day: DayNumber) -> bool {
        i64::from(day) > self.after && day <= self.through
    }

    /// The last day of the window, the as-of day.
    pub fn through(self) -> DayNumber {
        self.through
    }
}

/// One customer's paid orders in the window: the last local day, how many, how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub last_day: DayNumber,
    pub orders: u32,
    pub fen: i64,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            last_day: DayNumber::MIN,
            orders: 0,
            fen: 0,
        }
    }
}

impl Tally {
    /// Adds a paid order of the window.
    #[inline]
    pub fn add(&mut self, day: DayNumber, fen: i64) {
        self.last_day = self.last_day.max(day);
        self.orders = self.orders.saturating_add(1);
        self.fen = add_fen(self.fen, fen);
    }

    pub fn merge(&mut self, other: Tally) {
        self.last_day = self.last_day.max(other.last_day);
        self.orders = self.orders.saturating_add(other.orders);
        self.fen = add_fen(self.fen, other.fen);
    }
}

/// A sum of amounts, checked: with every amount at most ¥100,000,000 it takes 900 million
/// of them to leave an `i64`, and then the figure is refused rather than capped or wrapped.
#[inline]
fn add_fen(a: i64, b: i64) -> i64 {
    a.checked_add(b)
        .expect("a sum of money beyond ¥92 trillion: more than an i64 of fen holds")
}

/// High or low against the mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    High,
    Low,
}

impl Level {
    pub fn letter(self) -> &'static str {
        match self {
            Level::High => "H",
            Level::Low => "L",
        }
    }
}

impl Serialize for Level {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.letter())
    }
}

/// The eight classes, in the order of DESIGN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RfmClass {
    ImportantValue,
    ImportantDevelopment,
    ImportantRetention,
    ImportantWinback,
    GeneralValue,
    GeneralDevelopment,
    GeneralRetention,
    GeneralWinback,
}

impl RfmClass {
    pub const ALL: [RfmClass; 8] = [
        RfmClass::ImportantValue,
        RfmClass::ImportantDevelopment,
        RfmClass::ImportantRetention,
        RfmClass::ImportantWinback,
        RfmClass::GeneralValue,
        RfmClass::GeneralDevelopment,
        RfmClass::GeneralRetention,
        RfmClass::GeneralWinback,
    ];

    pub fn of(r: Level, f: Level, m: Level) -> RfmClass {
        use Level::{High as H, Low as L};
        match (r, f, m) {
            (H, H, H) => RfmClass::ImportantValue,
            (H, L, H) => RfmClass::ImportantDevelopment,
            (L, H, H) => RfmClass::ImportantRetention,
            (L, L, H) => RfmClass::ImportantWinback,
            (H, H, L) => RfmClass::GeneralValue,
            (H, L, L) => RfmClass::GeneralDevelopment,
            (L, H, L) => RfmClass::GeneralRetention,
            (L, L, L) => RfmClass::GeneralWinback,
        }
    }

    /// The snake_case name used in files, rules and tags.
    pub fn name(self) -> &'static str {
        match self {
            RfmClass::ImportantValue => "important_value",
            RfmClass::ImportantDevelopment => "important_development",
            RfmClass::ImportantRetention => "important_retention",
            RfmClass::ImportantWinback => "important_winback",
            RfmClass::GeneralValue => "general_value",
            RfmClass::GeneralDevelopment => "general_development",
            RfmClass::GeneralRetention => "general_retention",
            RfmClass::GeneralWinback => "general_winback",
        }
    }

    pub fn chinese(self) -> &'static str {
        match self {
            RfmClass::ImportantValue => "重要价值",
            RfmClass::ImportantDevelopment => "重要发展",
            RfmClass::ImportantRetention => "重要保持",
            RfmClass::ImportantWinback => "重要挽留",
            RfmClass::GeneralValue => "一般价值",
            RfmClass::GeneralDevelopment => "一般发展",
            RfmClass::GeneralRetention => "一般保持",
            RfmClass::GeneralWinback => "一般挽留",
        }
    }

    pub fn parse(name: &str) -> Option<RfmClass> {
        RfmClass::ALL
            .into_iter()
            .find(|c| c.name() == name || c.chinese() == name)
    }
}

impl fmt::Display for RfmClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Quintile scores, 1 (worst fifth) to 5 (best).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Quintiles {
    pub r: u8,
    pub f: u8,
    pub m: u8,
}

/// One scored customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CustomerRfm {
    pub customer_id: CustomerId,
    /// Whole days from the local day of the last paid order to the as-of day.
    pub recency_days: u32,
    /// Paid orders in the window.
    pub frequency: u32,
    /// Sum of paid amounts in the window.
    pub monetary: Money,
    pub r: Level,
    pub f: Level,
    pub m: Level,
    pub class: RfmClass,
    pub quintiles: Quintiles,
}

/// The means the classes are drawn against, kept as exact sums over the scored customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Means {
    pub customers: u64,
    pub recency_days_total: u64,
    pub orders_total: u64,
    pub monetary_total: Money,
}

impl Means {
    /// The sums over `scored`, tallies with at least one order in the window.
    pub(crate) fn of<'a>(window: RfmWindow, scored: impl Iterator<Item = &'a Tally>) -> Means {
        let through = window.days().through();
        let mut means = Means::default();
        let mut monetary: i64 = 0;
        for t in scored {
            means.customers += 1;
            means.recency_days_total += u64::from(recency_days(through, t));
            means.orders_total += u64::from(t.orders);
            monetary = add_fen(monetary, t.fen);
        }
        means.monetary_total = Money::from_fen(monetary);
        means
    }

    /// High or low on each dimension, for a customer `days` from their last order.
    fn levels(&self, days: u32, t: &Tally) -> (Level, Level, Level) {
        (
            self.recency_level(days),
            self.frequency_level(t.orders),
            self.monetary_level(t.fen),
        )
    }

    fn mean(total: i128, n: u64) -> Option<f64> {
        (n > 0).then(|| total as f64 / n as f64)
    }

    pub fn recency_days(&self) -> Option<f64> {
        Means::mean(i128::from(self.recency_days_total), self.customers)
    }

    pub fn frequency(&self) -> Option<f64> {
        Means::mean(i128::from(self.orders_total), self.customers)
    }

    /// Mean monetary value in fen.
    pub fn monetary_fen(&self) -> Option<f64> {
        Means::mean(i128::from(self.monetary_total.fen()), self.customers)
    }

    /// Fewer days than the mean: `r · n < Σr`, in integers.
    fn recency_level(&self, r: u32) -> Level {
        high(i128::from(r) * i128::from(self.customers) < i128::from(self.recency_days_total))
    }

    fn frequency_level(&self, f: u32) -> Level {
        high(i128::from(f) * i128::from(self.customers) > i128::from(self.orders_total))
    }

    fn monetary_level(&self, fen: i64) -> Level {
        high(i128::from(fen) * i128::from(self.customers) > i128::from(self.monetary_total.fen()))
    }
}

impl Serialize for Means {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Means", 4)?;
        st.serialize_field("customers", &self.customers)?;
        st.serialize_field("recency_days", &self.recency_days())?;
        st.serialize_field("frequency", &self.frequency())?;
        st.serialize_field("monetary_fen", &self.monetary_fen())?;
        st.end()
    }
}

fn high(is_high: bool) -> Level {
    if is_high { Level::High } else { Level::Low }
}

/// One line of the summary: a class, its customers and revenue, and their shares.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassLine {
    pub class: RfmClass,
    pub chinese: &'static str,
    pub customers: u64,
    pub share_of_customers: Option<f64>,
    /// The monetary value of the class's customers.
    pub revenue: Money,
    pub share_of_revenue: Option<f64>,
}

/// The RFM of a customer base as of a day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rfm {
    pub window: RfmWindow,
    pub means: Means,
    /// One line per class, in the order of [`RfmClass::ALL`], empty classes included.
    pub classes: Vec<ClassLine>,
    /// The scored customers, by customer id (byte order).
    pub customers: Vec<CustomerRfm>,
}

/// Scores customers from their tallies of paid orders in `window` (see [`Tally::add`]);
/// customers with no order in their tally are not scored.
pub fn score(window: RfmWindow, tallies: impl IntoIterator<Item = (CustomerId, Tally)>) -> Rfm {
    let through = window.days().through();
    let days_of = |t: &Tally| recency_days(through, t);
    // (Given a Vec, this reuses it.)
    let mut scored: Vec<(CustomerId, Tally)> =
        tallies.into_iter().filter(|(_, t)| t.orders > 0).collect();
    if !scored.is_sorted_by(|a, b| a.0 <= b.0) {
        scored.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    }

    let means = Means::of(window, scored.iter().map(|(_, t)| t));

    // Scored so that more is better: fewer days, more orders, more spend.
    let quintiles = |values: Vec<u64>| quintile_scores(&values);
    let max_days = scored.iter().map(|s| days_of(&s.1)).max().unwrap_or(0);
    let r_scores = quintiles(
        scored
            .iter()
            .map(|s| u64::from(max_days - days_of(&s.1)))
            .collect(),
    );
    let f_scores = quintiles(scored.iter().map(|s| u64::from(s.1.orders)).collect());
    let m_scores = quintiles(
        scored
            .iter()
            .map(|s| (s.1.fen as u64) ^ (1 << 63))
            .collect(),
    );

    let mut by_class = [(0u64, 0i64); 8];
    let customers: Vec<CustomerRfm> = scored
        .into_iter()
        .enumerate()
        .map(|(i, (customer_id, t))| {
            let days = days_of(&t);
            let (r, f, m) = means.levels(days, &t);
            let class = RfmClass::of(r, f, m);
            let line = &mut by_class[class as usize];
            line.0 += 1;
            line.1 = add_fen(line.1, t.fen);
            let quintiles = Quintiles {
                r: r_scores[i],
                f: f_scores[i],
                m: m_scores[i],
            };
            CustomerRfm {
                customer_id,
                recency_days: days,
                frequency: t.orders,
                monetary: Money::from_fen(t.fen),
                r,
                f,
                m,
                class,
                quintiles,
            }
        })
        .collect();

    let total_customers = means.customers;
    let total_revenue = means.monetary_total.fen();
    let classes = RfmClass::ALL
        .into_iter()
        .map(|class| {
            let (count, fen) = by_class[class as usize];
            ClassLine {
                class,
                chinese: class.chinese(),
                customers: count,
                share_of_customers: crate::metrics::ratio(count, total_customers),
                revenue: Money::from_fen(fen),
                share_of_revenue: (total_revenue > 0).then(|| fen as f64 / total_revenue as f64),
            }
        })
        .collect();
    Rfm {
        window,
        means,
        classes,
        customers,
    }
}

/// Whole days from a tally's last order to the end of the window.
fn recency_days(through: DayNumber, t: &Tally) -> u32 {
    u32::try_from(i64::from(through) - i64::from(t.last_day)).unwrap_or(0)
}

/// The class of each tally as [`score`] gives it (the means over the tallies with an
/// order), `None` for a tally without orders: for the pool, where customers are rows and
/// quintiles are not wanted.
pub fn classes_of(window: RfmWindow, tallies: &[Tally]) -> Vec<Option<RfmClass>> {
    let means = Means::of(window, tallies.iter().filter(|t| t.orders > 0));
    classes_against(window, &means, tallies)
}

/// The class of each tally against given means (a day's fixed thresholds), `None` for a
/// tally without orders.
pub fn classes_against(
    window: RfmWindow,
    means: &Means,
    tallies: &[Tally],
) -> Vec<Option<RfmClass>> {
    let through = window.days().through();
    tallies
        .iter()
        .map(|t| {
            (t.orders > 0).then(|| {
                let (r, f, m) = means.levels(recency_days(through, t), t);
                RfmClass::of(r, f, m)
            })
        })
        .collect()
}

/// Quintile scores 1 + ⌊5k/N⌋ of `values` (higher is better), with k the number of values
/// strictly smaller. ⌊5k/N⌋ ≥ s exactly when k ≥ ⌈sN/5⌉, that is when the value is greater
/// than the ⌈sN/5⌉-th smallest one: four order statistics give every score.
fn quintile_scores(values: &[u64]) -> Vec<u8> {
    let n = values.len();
    if n == 0 {
        return Vec::new();
    }
    let mut work = values.to_vec();
    let mut cuts = [0u64; 4];
    for (s, cut) in cuts.iter_mut().enumerate() {
        let t = ((s + 1) * n).div_ceil(5);
        *cut = *work.select_nth_unstable(t - 1).1;
    }
    values
        .iter()
        .map(|&v| 1 + cuts.iter().filter(|&&c| v > c).count() as u8)
        .collect()
}

/// Adds orders as the store hands them over, one tally per customer.
#[derive(Debug)]
pub struct Tallies {
    days: ZoneDays,
    window: RfmWindow,
    range: DayRange,
    by_customer: HashMap<CustomerId, Tally>,
}

impl Tallies {
    pub fn new(zone: &TenantZone, window: RfmWindow) -> Tallies {
        Tallies {
            days: ZoneDays::new(zone),
            window,
            range: window.days(),
            by_customer: HashMap::new(),
        }
    }

    /// Counts the order if it is paid and its local day is in the window.
    pub fn add(&mut self, order: OrderFact) {
        if order.status != OrderStatus::Paid {
            return;
        }
        let day = self.days.day_of(order.ordered_at);
        if self.range.contains(day) {
            self.by_customer
                .entry(order.customer_id)
                .or_default()
                .add(day, order.amount.fen());
        }
    }

    pub fn finish(self) -> Rfm {
        score(self.window, self.by_customer)
    }
}

/// RFM of stored orders as of `window.as_of`, with day boundaries in `zone`.
pub fn rfm(
    orders: impl IntoIterator<Item = OrderFact>,
    zone: &TenantZone,
    window: RfmWindow,
) -> Rfm {
    let mut tallies = Tallies::new(zone, window);
    for order in orders {
        tallies.add(order);
    }
    tallies.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(s: &str) -> Date {
        TenantZone::parse_day(s).expect(s)
    }

    fn order(customer: &str, at: &str, yuan: &str, status: OrderStatus) -> OrderFact {
        OrderFact {
            customer_id: CustomerId::parse(customer).expect("id"),
            ordered_at: TenantZone::default().parse_timestamp(at).expect(at),
            amount: Money::parse_yuan(yuan).expect(yuan),
            status,
        }
    }

    fn paid(customer: &str, at: &str, yuan: &str) -> OrderFact {
        order(customer, at, yuan, OrderStatus::Paid)
    }

    fn run(orders: Vec<OrderFact>, as_of: &str, window: Option<u32>) -> Rfm {
        rfm(
            orders,
            &TenantZone::default(),
            RfmWindow::new(day(as_of), window),
        )
    }

    fn find<'a>(r: &'a Rfm, id: &str) -> &'a CustomerRfm {
        r.customers
            .iter()
            .find(|c| c.customer_id.as_str() == id)
            .expect(id)
    }

    fn levels(c: &CustomerRfm) -> String {
        format!("{}{}{}", c.r.letter(), c.f.letter(), c.m.letter())
    }

    #[test]
    fn recency_frequency_and_monetary_are_counted_from_paid_orders() {
        let r = run(
            vec![
                paid("a", "2024-03-01 10:00:00", "100"),
                paid("a", "2024-03-05 10:00:00", "50.5"),
                paid("b", "2024-03-09 10:00:00", "10"),
            ],
            "2024-03-10",
            None,
        );
        let a = find(&r, "a");
        assert_eq!(
            (a.recency_days, a.frequency, a.monetary.fen()),
            (5, 2, 15_050)
        );
        let b = find(&r, "b");
        assert_eq!(
            (b.recency_days, b.frequency, b.monetary.fen()),
            (1, 1, 1_000)
        );
        assert_eq!(r.means.customers, 2);
        assert_eq!(r.means.recency_days(), Some(3.0));
    }

    #[test]
    fn refunded_orders_count_nowhere() {
        let r = run(
            vec![
                paid("a", "2024-03-01 10:00:00", "100"),
                order("a", "2024-03-09 10:00:00", "900", OrderStatus::Refunded),
                order("b", "2024-03-09 10:00:00", "900", OrderStatus::Refunded),
            ],
            "2024-03-10",
            None,
        );
        assert_eq!(
            r.customers.len(),
            1,
            "b has only a refund and is not scored"
        );
        let a = find(&r, "a");
        assert_eq!(
            (a.recency_days, a.frequency, a.monetary.fen()),
            (9, 1, 10_000)
        );
        assert_eq!(r.means.monetary_total.fen(), 10_000);
    }

    #[test]
    fn an_order_at_half_past_eleven_local_on_the_first_is_on_the_first() {
        // 23:30 in Shanghai on the 1st is 15:30 UTC on the 1st; 00:30 on the 2nd is still
        // the 1st in UTC but the 2nd locally.
        let r = run(
            vec![
                paid("late", "2024-03-01 23:30:00", "1"),
                paid("early", "2024-03-02T00:30:00+08:00", "1"),
                paid("utc", "2024-03-01T16:30:00Z", "1"),
            ],
            "2024-03-02",
            None,
        );
        assert_eq!(find(&r, "late").recency_days, 1);
        assert_eq!(find(&r, "early").recency_days, 0);
        assert_eq!(
            find(&r, "utc").recency_days,
            0,
            "16:30 UTC is 00:30 local on the 2nd"
        );
        // As of the 1st, the order of 00:30 on the 2nd is in the future and does not count.
        let r = run(
            vec![
                paid("late", "2024-03-01 23:30:00", "1"),
                paid("early", "2024-03-02T00:30:00+08:00", "1"),
            ],
            "2024-03-01",
            None,
        );
        assert_eq!(r.customers.len(), 1);
        assert_eq!(find(&r, "late").recency_days, 0);
    }

    #[test]
    fn customers_with_no_paid_order_in_the_window_are_not_scored() {
        let r = run(
            vec![
                paid("old", "2024-01-01 10:00:00", "100"),
                paid("new", "2024-03-09 10:00:00", "100"),
                paid("future", "2024-03-11 10:00:00", "100"),
                order(
                    "refunded",
                    "2024-03-09 10:00:00",
                    "1",
                    OrderStatus::Refunded,
                ),
            ],
            "2024-03-10",
            Some(30),
        );
        let ids: Vec<&str> = r.customers.iter().map(|c| c.customer_id.as_str()).collect();
        assert_eq!(ids, ["new"]);
        assert_eq!(r.means.customers, 1);
    }

    #[test]
    fn the_window_holds_the_last_w_days_up_to_and_including_the_as_of_day() {
        // As of the 10th with W = 3: the 8th, 9th and 10th count; the 7th and the 11th do not.
        let r = run(
            vec![
                paid("d7", "2024-03-07 23:59:59", "1"),
                paid("d8", "2024-03-08 00:00:00", "1"),
                paid("d10", "2024-03-10 23:59:59", "1"),
                paid("d11", "2024-03-11 00:00:00", "1"),
            ],
            "2024-03-10",
            Some(3),
        );
        let ids: Vec<&str> = r.customers.iter().map(|c| c.customer_id.as_str()).collect();
        assert_eq!(ids, ["d10", "d8"]);
        assert_eq!(find(&r, "d8").recency_days, 2);
        let none = run(
            vec![paid("a", "2024-03-10 12:00:00", "1")],
            "2024-03-10",
            Some(0),
        );
        assert!(none.customers.is_empty());
    }

    #[test]
    fn orders_outside_the_window_count_nowhere_even_for_a_scored_customer() {
        let r = run(
            vec![
                paid("a", "2024-01-01 10:00:00", "1000"),
                paid("a", "2024-03-09 10:00:00", "1"),
                paid("a", "2024-03-12 10:00:00", "1000"),
            ],
            "2024-03-10",
            Some(30),
        );
        let a = find(&r, "a");
        assert_eq!((a.recency_days, a.frequency, a.monetary.fen()), (1, 1, 100));
    }

    /// Customers x, y, z whose R, F and M are chosen so `probe` sits exactly on or around
    /// each mean.
    fn three(probe: (u32, u32, i64), others: [(u32, u32, i64); 2]) -> Rfm {
        let as_of = day("2024-06-30");
        let mut tallies = Vec::new();
        for (name, (days, orders, fen)) in [("x", probe), ("y", others[0]), ("z", others[1])] {
            let mut t = Tally::default();
            for i in 0..orders {
                let fen = if i == 0 { fen } else { 0 };
                t.add(date_number(as_of) - days as i32, fen);
            }
            tallies.push((CustomerId::parse(name).expect("id"), t));
        }
        score(RfmWindow::new(as_of, None), tallies)
    }

    #[test]
    fn a_value_equal_to_the_mean_is_low_on_every_dimension() {
        // Means: R = 10 days, F = 2 orders, M = 200 fen; x sits exactly on them.
        let r = three((10, 2, 200), [(5, 1, 100), (15, 3, 300)]);
        assert_eq!(levels(find(&r, "x")), "LLL");
        assert_eq!(find(&r, "x").class, RfmClass::GeneralWinback);
    }

    #[test]
    fn one_day_fewer_than_the_mean_is_high_recency() {
        let r = three((9, 2, 200), [(5, 1, 100), (16, 3, 300)]);
        assert_eq!(levels(find(&r, "x")), "HLL");
        assert_eq!(find(&r, "x").class, RfmClass::GeneralDevelopment);
    }

    #[test]
    fn one_order_more_than_the_mean_is_high_frequency() {
        // F: 3, 1, 2 → mean 2; x has 3.
        let r = three((10, 3, 200), [(5, 1, 100), (15, 2, 300)]);
        assert_eq!(levels(find(&r, "x")), "LHL");
        assert_eq!(find(&r, "x").class, RfmClass::GeneralRetention);
    }

    #[test]
    fn one_fen_more_than_the_mean_is_high_monetary() {
        // M: 201, 100, 299 → mean 200; x has 201.
        let r = three((10, 2, 201), [(5, 1, 100), (15, 3, 299)]);
        assert_eq!(levels(find(&r, "x")), "LLH");
        assert_eq!(find(&r, "x").class, RfmClass::ImportantWinback);
    }

    #[test]
    fn a_mean_that_is_not_a_whole_number_is_compared_exactly() {
        // R: 1, 2, 2 → mean 5/3; 2 days is above it (low), 1 below it (high).
        let r = three((1, 1, 1), [(2, 1, 1), (2, 1, 1)]);
        assert_eq!(find(&r, "x").r, Level::High);
        assert_eq!(find(&r, "y").r, Level::Low);
        // Everyone equal: everyone is on the mean, so low.
        let r = three((3, 2, 5), [(3, 2, 5), (3, 2, 5)]);
        for id in ["x", "y", "z"] {
            assert_eq!(levels(find(&r, id)), "LLL");
        }
    }

    #[test]
    fn the_eight_classes_follow_the_table_of_the_design() {
        use Level::{High as H, Low as L};
        let table = [
            ((H, H, H), "important_value", "重要价值"),
            ((H, L, H), "important_development", "重要发展"),
            ((L, H, H), "important_retention", "重要保持"),
            ((L, L, H), "important_winback", "重要挽留"),
            ((H, H, L), "general_value", "一般价值"),
            ((H, L, L), "general_development", "一般发展"),
            ((L, H, L), "general_retention", "一般保持"),
            ((L, L, L), "general_winback", "一般挽留"),
        ];
        for ((r, f, m), name, chinese) in table {
            let class = RfmClass::of(r, f, m);
            assert_eq!(class.name(), name);
            assert_eq!(class.chinese(), chinese);
            assert_eq!(RfmClass::parse(name), Some(class));
            assert_eq!(RfmClass::parse(chinese), Some(class));
        }
        // Customer with everything better than the means: important_value.
        let r = three((1, 5, 1000), [(20, 1, 100), (30, 1, 100)]);
        assert_eq!(find(&r, "x").class, RfmClass::ImportantValue);
        assert_eq!(find(&r, "y").class, RfmClass::GeneralWinback);
        let r = three((1, 1, 1000), [(20, 2, 100), (30, 2, 100)]);
        assert_eq!(find(&r, "x").class, RfmClass::ImportantDevelopment);
        let r = three((30, 5, 1000), [(1, 1, 100), (2, 1, 100)]);
        assert_eq!(find(&r, "x").class, RfmClass::ImportantRetention);
        let r = three((1, 5, 100), [(20, 1, 1000), (30, 1, 1000)]);
        assert_eq!(find(&r, "x").class, RfmClass::GeneralValue);
    }

    #[test]
    fn quintile_scores_count_the_customers_strictly_worse() {
        // Ten customers with 1..=10 orders: k = n − 1 worse, score 1 + ⌊5k/10⌋.
        let as_of = day("2024-06-30");
        let tallies = (1..=10u32).map(|n| {
            let mut t = Tally::default();
            for _ in 0..n {
                t.add(date_number(as_of) - n as i32, 100);
            }
            (CustomerId::parse(&format!("c{n:02}")).expect("id"), t)
        });
        let r = score(RfmWindow::new(as_of, None), tallies);
        let f: Vec<u8> = r.customers.iter().map(|c| c.quintiles.f).collect();
        assert_eq!(f, [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
        // More days is worse: c10 (10 days) is the worst on recency.
        let rs: Vec<u8> = r.customers.iter().map(|c| c.quintiles.r).collect();
        assert_eq!(rs, [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]);
        // Equal values get equal scores.
        let r = three((3, 2, 5), [(3, 2, 5), (3, 2, 5)]);
        assert!(
            r.customers
                .iter()
                .all(|c| c.quintiles == Quintiles { r: 1, f: 1, m: 1 })
        );
    }

    #[test]
    fn the_summary_gives_counts_and_shares_of_customers_and_revenue_per_class() {
        let r = three((1, 5, 1000), [(20, 1, 100), (30, 1, 100)]);
        assert_eq!(r.classes.len(), 8);
        let value = &r.classes[0];
        assert_eq!(value.class, RfmClass::ImportantValue);
        assert_eq!((value.customers, value.revenue.fen()), (1, 1000));
        assert_eq!(value.share_of_revenue, Some(1000.0 / 1200.0));
        let winback = &r.classes[7];
        assert_eq!(winback.customers, 2);
        assert_eq!(winback.share_of_customers, Some(2.0 / 3.0));
        let empty = score(RfmWindow::new(day("2024-01-01"), None), Vec::new());
        assert!(
            empty
                .classes
                .iter()
                .all(|c| c.customers == 0 && c.share_of_customers.is_none())
        );
    }

    proptest! {
        #[test]
        fn quintile_scores_follow_the_definition(values in proptest::collection::vec(0u64..20, 0..50)) {
            let n = values.len();
            let scores = quintile_scores(&values);
            for (v, s) in values.iter().zip(scores) {
                let k = values.iter().filter(|&&x| x < *v).count();
                prop_assert_eq!(usize::from(s), 1 + 5 * k / n);
            }
        }

        #[test]
        fn higher_monetary_never_gives_a_lower_m_score(
            spend in proptest::collection::vec(0i64..50_000, 1..60),
        ) {
            let as_of = day("2024-06-30");
            let tallies = spend.iter().enumerate().map(|(i, &fen)| {
                let mut t = Tally::default();
                t.add(date_number(as_of) - (i % 7) as i32, fen);
                (CustomerId::parse(&format!("c{i:03}")).expect("id"), t)
            });
            let r = score(RfmWindow::new(as_of, None), tallies);
            for a in &r.customers {
                prop_assert!((1..=5).contains(&a.quintiles.m));
                for b in &r.customers {
                    if a.monetary > b.monetary {
                        prop_assert!(a.quintiles.m >= b.quintiles.m);
                    }
                    if a.monetary == b.monetary {
                        prop_assert_eq!(a.quintiles.m, b.quintiles.m);
                    }
                }
            }
        }

        #[test]
        fn class_counts_add_up_to_the_scored_customers(
            orders in proptest::collection::vec((0u8..20, 0i64..400, 0u32..5_000, any::<bool>()), 0..120),
            window in proptest::option::of(1u32..300),
        ) {
            let zone = TenantZone::default();
            let as_of = day("2024-06-30");
            let facts: Vec<OrderFact> = orders.iter().map(|&(c, days_ago, fen, refunded)| OrderFact {
                customer_id: CustomerId::parse(&format!("c{c}")).expect("id"),
                ordered_at: zone.start_of(as_of) - jiff::SignedDuration::from_hours(days_ago * 24 - 30),
                amount: Money::from_fen(i64::from(fen)),
                status: if refunded { OrderStatus::Refunded } else { OrderStatus::Paid },
            }).collect();
            let r = rfm(facts, &zone, RfmWindow::new(as_of, window));
            let counted: u64 = r.classes.iter().map(|c| c.customers).sum();
            prop_assert_eq!(counted, r.customers.len() as u64);
            prop_assert_eq!(counted, r.means.customers);
            let revenue: i64 = r.classes.iter().map(|c| c.revenue.fen()).sum();
            prop_assert_eq!(revenue, r.means.monetary_total.fen());
            let mut ids: Vec<&str> = r.customers.iter().map(|c| c.customer_id.as_str()).collect();
            let sorted = { let mut s = ids.clone(); s.sort_unstable(); s };
            prop_assert_eq!(&ids, &sorted);
            ids.dedup();
            prop_assert_eq!(ids.len(), r.customers.len());
        }
    }
}
