//! Per-customer figures derived from orders and events (DESIGN.md "profile"), computed
//! from the raw facts up to the end of a day. This is the full rebuild; keeping profiles
//! current at ingest must give the same figures.

use std::collections::{BTreeMap, HashMap};

use jiff::civil::Date;
use serde::Serialize;

use crate::channel::Channel;
use crate::customer::{CustomerFact, SeenCustomer};
use crate::fasthash::FastHashMap;
use crate::ids::CustomerId;
use crate::metrics::mean_fen;
use crate::money::Money;
use crate::order::{OrderFact, OrderStatus};
use crate::time::{TenantZone, Timestamp};

/// A customer's new interactions, summed: what a stored profile needs to take them
/// without reading them again ([`Interactions::apply_to`] is the meaning; a store may
/// apply them in place, see `ImportTx::add_interactions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interactions {
    pub customer_id: CustomerId,
    /// How many of each kind, by kind.
    pub counts: BTreeMap<String, u32>,
    /// The latest of them.
    pub last_at: Timestamp,
    /// The latest `left` among them.
    pub left_at: Option<Timestamp>,
}

impl Interactions {
    /// The first interaction of a customer in a batch.
    pub fn new(customer_id: CustomerId, kind: &str, at: Timestamp) -> Interactions {
        let mut first = Interactions {
            customer_id,
            counts: BTreeMap::new(),
            last_at: at,
            left_at: None,
        };
        first.add(kind, at);
        first
    }

    pub fn add(&mut self, kind: &str, at: Timestamp) {
        match self.counts.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                self.counts.insert(kind.to_owned(), 1);
            }
        }
        self.last_at = self.last_at.max(at);
        if kind == "left" {
            self.left_at = Some(self.left_at.map_or(at, |t| t.max(at)));
        }
    }

    /// The profile as if it had counted each interaction by [`Profile::add_event`].
    pub fn apply_to(&self, profile: &mut Profile) {
        for (kind, &n) in &self.counts {
            let left = if kind == "left" { self.left_at } else { None };
            profile.add_interactions(kind, n, self.last_at, left);
        }
    }
}

/// An interaction as the profiles need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFact {
    pub customer_id: CustomerId,
    pub kind: String,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    pub customer_id: CustomerId,
    pub joined_at: Timestamp,
    pub referrer_id: Option<CustomerId>,
    pub first_order_at: Option<Timestamp>,
    pub last_order_at: Option<Timestamp>,
    /// Paid orders.
    pub orders: u32,
    /// Local days with at least one paid order.
    pub purchase_days: u32,
    pub first_purchase_day: Option<Date>,
    pub last_purchase_day: Option<Date>,
    /// Sum of paid amounts.
    pub net_spend: Money,
    /// Paid orders that used a coupon.
    pub coupon_orders: u32,
    pub last_interaction_at: Option<Timestamp>,
    /// Events by type.
    pub event_counts: BTreeMap<String, u32>,
    /// The latest `left` event: the customer deleted or blocked the merchant.
    pub left_at: Option<Timestamp>,
    /// Customers who name this one as their referrer.
    pub referrals: u32,
    /// Net spend of those customers.
    pub referral_revenue: Money,
}

impl Profile {
    /// A profile with no orders or events yet.
    pub fn new(id: CustomerId, joined_at: Timestamp, referrer_id: Option<CustomerId>) -> Profile {
        Profile {
            customer_id: id,
            joined_at,
            referrer_id,
            first_order_at: None,
            last_order_at: None,
            orders: 0,
            purchase_days: 0,
            first_purchase_day: None,
            last_purchase_day: None,
            net_spend: Money::ZERO,
            coupon_orders: 0,
            last_interaction_at: None,
            event_counts: BTreeMap::new(),
            left_at: None,
            referrals: 0,
            referral_revenue: Money::ZERO,
        }
    }

    /// Counts an interaction. Its order among the others does not matter, so a stored
    /// profile takes a new event without its history being read again.
    pub fn add_event(&mut self, kind: &str, at: Timestamp) {
        self.add_interactions(kind, 1, at, (kind == "left").then_some(at));
    }

    /// Counts `n` interactions of one kind, the latest at `last`, the latest `left` of
    /// them at `left`: what `n` calls of [`Profile::add_event`] do.
    fn add_interactions(&mut self, kind: &str, n: u32, last: Timestamp, left: Option<Timestamp>) {
        self.last_interaction_at = Some(self.last_interaction_at.map_or(last, |t| t.max(last)));
        if let Some(at) = left {
            self.left_at = Some(self.left_at.map_or(at, |t| t.max(at)));
        }
        match self.event_counts.get_mut(kind) {
            Some(count) => *count += n,
            None => {
                self.event_counts.insert(kind.to_owned(), n);
            }
        }
    }

    /// Net spend per paid order.
    pub fn aov(&self) -> Option<Money> {
        mean_fen(self.net_spend.fen(), u64::from(self.orders)).map(Money::from_fen)
    }

    /// (last − first purchase day) / (purchase days − 1), in days; none under two days.
    pub fn mean_interval_days(&self) -> Option<f64> {
        let (span, gaps) = self.interval_parts()?;
        Some(span as f64 / gaps as f64)
    }

    /// The mean inter-purchase interval as an exact fraction: (days spanned, gaps).
    pub fn interval_parts(&self) -> Option<(i64, i64)> {
        let (first, last) = (self.first_purchase_day?, self.last_purchase_day?);
        let gaps = i64::from(self.purchase_days) - 1;
        (gaps >= 1).then(|| (i64::from((last - first).get_days()), gaps))
    }

    /// Share of paid orders that used a coupon: price sensitivity.
    pub fn coupon_share(&self) -> Option<f64> {
        crate::metrics::ratio(u64::from(self.coupon_orders), u64::from(self.orders))
    }

    /// Has left the pool: a `left` event later than their last paid order (or any, if
    /// they never ordered).
    pub fn has_left(&self) -> bool {
        match (self.left_at, self.last_order_at) {
            (Some(left), Some(last)) => left > last,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    pub fn count(&self, kind: &str) -> u32 {
        self.event_counts.get(kind).copied().unwrap_or(0)
    }
}

/// An order with what the profile needs beyond the figures' facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileOrder {
    pub fact: OrderFact,
    pub used_coupon: bool,
}

/// A customer's stored row, borrowed (see [`ProfileSink::customer_row`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CustomerRow<'a> {
    pub id: &'a str,
    pub channel: Option<&'a str>,
    pub joined_at: Timestamp,
    pub referrer_id: Option<&'a str>,
}

impl CustomerRow<'_> {
    /// The row parsed: its ids and channel checked.
    pub fn fact(&self) -> Result<CustomerFact, String> {
        Ok(CustomerFact {
            id: stored_id(self.id)?,
            channel: self
                .channel
                .map(Channel::parse)
                .transpose()
                .map_err(|e| e.to_string())?,
            joined_at: self.joined_at,
            referrer_id: self.referrer_id.map(stored_id).transpose()?,
        })
    }
}

/// A customer id read back from a store, checked.
pub fn stored_id(text: &str) -> Result<CustomerId, String> {
    CustomerId::parse(text).map_err(|e| format!("stored customer id: {e}"))
}

/// Where the raw facts of profiles go, one at a time: every customer first, then their
/// orders and events in any order. The store streams into it; nothing is held twice.
pub trait ProfileSink {
    fn customer(&mut self, customer: CustomerFact);
    /// A customer as the store's row holds it, borrowed and not parsed yet. By default
    /// parsed and handed to [`ProfileSink::customer`]; a sink that keeps columns may parse
    /// only what it keeps. An error says what in the row is not valid.
    fn customer_row(&mut self, row: CustomerRow<'_>) -> Result<(), String> {
        self.customer(row.fact()?);
        Ok(())
    }
    fn order(
        &mut self,
        customer: &str,
        at: Timestamp,
        amount: Money,
        status: OrderStatus,
        used_coupon: bool,
    );
    fn event(&mut self, customer: &str, kind: &str, at: Timestamp);
}

/// Builds profiles from streamed facts up to the end of local day `as_of` (all facts
/// when `None`). Orders and events of customers it was not given are ignored.
pub struct ProfileBuilder {
    zone: TenantZone,
    cutoff: Option<Timestamp>,
    /// Takes customers it was not given, joined at their earliest order or event.
    open: bool,
    profiles: Vec<Profile>,
    days: Vec<Vec<Date>>,
    /// When open: the channel of each customer's earliest sighting.
    channels: Vec<Option<Channel>>,
    index: FastHashMap<CustomerId, usize>,
}

impl ProfileBuilder {
    pub fn new(zone: &TenantZone, as_of: Option<Date>) -> ProfileBuilder {
        ProfileBuilder {
            zone: zone.clone(),
            cutoff: as_of
                .and_then(|d| d.tomorrow().ok())
                .map(|d| zone.start_of(d)),
            open: false,
            profiles: Vec::new(),
            days: Vec::new(),
            channels: Vec::new(),
            index: FastHashMap::default(),
        }
    }

    /// A builder that needs no customers first: each order or event of a customer it has
    /// not seen starts their profile, joined at the earliest of their orders and events
    /// and with no referrer. For customers whose every fact passes through it (those new
    /// to the pool in one import), so that their profiles need no read of the store.
    pub fn open(zone: &TenantZone) -> ProfileBuilder {
        ProfileBuilder {
            open: true,
            ..ProfileBuilder::new(zone, None)
        }
    }

    /// Customers held.
    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    /// The row of a customer: known, or (when open) started, or none. An open builder
    /// keeps the channel of the earliest sighting, as the import's sightings do.
    fn row(&mut self, customer: &str, at: Timestamp, channel: Option<&Channel>) -> Option<usize> {
        if let Some(&i) = self.index.get(customer) {
            if self.open {
                let p = &mut self.profiles[i];
                if at < p.joined_at {
                    p.joined_at = at;
                    self.channels[i] = channel.cloned();
                }
            }
            return Some(i);
        }
        if !self.open {
            return None;
        }
        let id = CustomerId::parse(customer).ok()?;
        let i = self.profiles.len();
        self.index.insert(id.clone(), i);
        self.profiles.push(Profile::new(id, at, None));
        self.days.push(Vec::new());
        self.channels.push(channel.cloned());
        Some(i)
    }

    /// An order seen through its channel: the order of [`ProfileSink::order`], and for an
    /// open builder a sighting too (see [`ProfileBuilder::sightings`]).
    pub fn seen_order(&mut self, o: &crate::order::NewOrder) {
        self.add_order(
            o.customer_id.as_str(),
            o.ordered_at,
            o.amount,
            o.status,
            o.used_coupon(),
            o.channel.as_ref(),
        );
    }

    /// Of an open builder: every customer it holds at their earliest sighting, with the
    /// channel of that sighting, in id order.
    pub fn sightings(&self) -> Vec<SeenCustomer> {
        let mut out: Vec<SeenCustomer> = self
            .profiles
            .iter()
            .zip(&self.channels)
            .map(|(p, channel)| SeenCustomer {
                id: p.customer_id.clone(),
                at: p.joined_at,
                channel: channel.clone(),
            })
            .collect();
        out.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        out
    }

    fn add_order(
        &mut self,
        customer: &str,
        at: Timestamp,
        amount: Money,
        status: OrderStatus,
        used_coupon: bool,
        channel: Option<&Channel>,
    ) {
        if !self.in_time(at) {
            return;
        }
        let Some(i) = self.row(customer, at, channel) else {
            return;
        };
        if status != OrderStatus::Paid {
            return;
        }
        let p = &mut self.profiles[i];
        p.orders += 1;
        p.net_spend += amount;
        p.coupon_orders += u32::from(used_coupon);
        p.first_order_at = Some(p.first_order_at.map_or(at, |t| t.min(at)));
        p.last_order_at = Some(p.last_order_at.map_or(at, |t| t.max(at)));
        let day = self.zone.day_of(at);
        let days = &mut self.days[i];
        if let Err(pos) = days.binary_search(&day) {
            days.insert(pos, day);
        }
    }

    fn in_time(&self, t: Timestamp) -> bool {
        self.cutoff.is_none_or(|c| t < c)
    }

    /// The profiles in customer-id order, with referral figures counted among them.
    pub fn finish(self) -> Vec<Profile> {
        let ProfileBuilder {
            mut profiles,
            days,
            index,
            ..
        } = self;
        for (p, days) in profiles.iter_mut().zip(days) {
            p.purchase_days = days.len() as u32;
            p.first_purchase_day = days.first().copied();
            p.last_purchase_day = days.last().copied();
        }
        let referred: Vec<(usize, Money)> = profiles
            .iter()
            .filter_map(|p| Some((*index.get(p.referrer_id.as_ref()?)?, p.net_spend)))
            .collect();
        for (referrer, spend) in referred {
            profiles[referrer].referrals += 1;
            profiles[referrer].referral_revenue += spend;
        }
        profiles.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        profiles
    }
}

impl ProfileSink for ProfileBuilder {
    fn customer(&mut self, c: CustomerFact) {
        if !self.in_time(c.joined_at) || self.index.contains_key(&c.id) {
            return;
        }
        self.index.insert(c.id.clone(), self.profiles.len());
        self.profiles
            .push(Profile::new(c.id, c.joined_at, c.referrer_id));
        self.days.push(Vec::new());
        self.channels.push(None);
    }

    fn order(
        &mut self,
        customer: &str,
        at: Timestamp,
        amount: Money,
        status: OrderStatus,
        used_coupon: bool,
    ) {
        self.add_order(customer, at, amount, status, used_coupon, None);
    }

    fn event(&mut self, customer: &str, kind: &str, at: Timestamp) {
        if !self.in_time(at) {
            return;
        }
        let Some(i) = self.row(customer, at, None) else {
            return;
        };
        self.profiles[i].add_event(kind, at);
    }
}

/// Builds every customer's profile from the raw facts up to the end of local day `as_of`
/// (all facts when `None`). Orders and events of customers the pool lacks are ignored.
/// Profiles come out in customer-id order.
pub fn build_profiles(
    customers: impl IntoIterator<Item = CustomerFact>,
    orders: impl IntoIterator<Item = ProfileOrder>,
    events: impl IntoIterator<Item = EventFact>,
    zone: &TenantZone,
    as_of: Option<Date>,
) -> Vec<Profile> {
    let mut builder = ProfileBuilder::new(zone, as_of);
    for c in customers {
        builder.customer(c);
    }
    for o in orders {
        let f = o.fact;
        builder.order(
            f.customer_id.as_str(),
            f.ordered_at,
            f.amount,
            f.status,
            o.used_coupon,
        );
    }
    for e in events {
        builder.event(e.customer_id.as_str(), &e.kind, e.occurred_at);
    }
    builder.finish()
}

/// Referral figures of `referrers` from (referrer, referee's net spend) pairs: how many
/// customers name each as referrer and what those customers spent. Every referrer gets a
/// figure, zero when nobody names them.
pub fn referral_figures<'a>(
    referrers: impl IntoIterator<Item = &'a CustomerId>,
    referees: &[(CustomerId, Money)],
) -> Vec<(CustomerId, u32, Money)> {
    let mut figures: HashMap<&CustomerId, (u32, Money)> = referrers
        .into_iter()
        .map(|r| (r, (0, Money::ZERO)))
        .collect();
    for (referrer, spend) in referees {
        if let Some((count, revenue)) = figures.get_mut(referrer) {
            *count += 1;
            *revenue += *spend;
        }
    }
    let mut out: Vec<(CustomerId, u32, Money)> = figures
        .into_iter()
        .map(|(id, (count, revenue))| (id.clone(), count, revenue))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Channel;
    use crate::order::NewOrder;

    fn zone() -> TenantZone {
        TenantZone::default()
    }

    fn ts(s: &str) -> Timestamp {
        zone().parse_timestamp(s).expect("time")
    }

    fn cust(id: &str, joined: &str, referrer: Option<&str>) -> CustomerFact {
        CustomerFact {
            id: CustomerId::parse(id).expect("id"),
            channel: Channel::parse("store").ok(),
            joined_at: ts(joined),
            referrer_id: referrer.map(|r| CustomerId::parse(r).expect("id")),
        }
    }

    fn order(
        customer: &str,
        at: &str,
        fen: i64,
        status: OrderStatus,
        coupon: bool,
    ) -> ProfileOrder {
        ProfileOrder {
            fact: OrderFact {
                customer_id: CustomerId::parse(customer).expect("id"),
                ordered_at: ts(at),
                amount: Money::from_fen(fen),
                status,
            },
            used_coupon: coupon,
        }
    }

    fn event(customer: &str, kind: &str, at: &str) -> EventFact {
        EventFact {
            customer_id: CustomerId::parse(customer).expect("id"),
            kind: kind.to_owned(),
            occurred_at: ts(at),
        }
    }

    #[test]
    fn a_profile_holds_the_paid_orders_purchase_days_and_interactions() {
        let profiles = build_profiles(
            [
                cust("a", "2024-01-01", None),
                cust("b", "2024-01-01", Some("a")),
            ],
            [
                order("a", "2024-03-01 10:00:00", 10_000, OrderStatus::Paid, true),
                order("a", "2024-03-01 23:30:00", 5_000, OrderStatus::Paid, false),
                order("a", "2024-03-11 09:00:00", 7_000, OrderStatus::Paid, false),
                order(
                    "a",
                    "2024-03-12 09:00:00",
                    9_999,
                    OrderStatus::Refunded,
                    false,
                ),
                order("b", "2024-04-01 09:00:00", 3_000, OrderStatus::Paid, false),
            ],
            [
                event("a", "post_like", "2024-03-02 10:00:00"),
                event("a", "post_like", "2024-03-05 10:00:00"),
                event("b", "left", "2024-04-02 10:00:00"),
            ],
            &zone(),
            None,
        );
        let a = &profiles[0];
        assert_eq!(a.orders, 3);
        assert_eq!(a.net_spend, Money::from_fen(22_000));
        assert_eq!(a.purchase_days, 2);
        assert_eq!(a.mean_interval_days(), Some(10.0));
        assert_eq!(a.aov(), Some(Money::from_fen(7_333)));
        assert_eq!(a.coupon_share(), Some(1.0 / 3.0));
        assert_eq!(a.count("post_like"), 2);
        assert_eq!(
            (a.referrals, a.referral_revenue),
            (1, Money::from_fen(3_000))
        );
        assert!(!a.has_left());
        assert!(profiles[1].has_left());
    }

    #[test]
    fn a_profile_as_of_a_day_sees_nothing_after_that_day() {
        let profiles = build_profiles(
            [
                cust("a", "2024-01-01", None),
                cust("late", "2024-05-01", None),
            ],
            [
                order("a", "2024-03-01 23:59:59", 100, OrderStatus::Paid, false),
                order("a", "2024-03-02 00:00:00", 100, OrderStatus::Paid, false),
            ],
            [event("a", "left", "2024-03-02 08:00:00")],
            &zone(),
            Some(TenantZone::parse_day("2024-03-01").expect("day")),
        );
        assert_eq!(profiles.len(), 1);
        assert_eq!(profiles[0].orders, 1);
        assert_eq!(profiles[0].left_at, None);
    }

    #[test]
    fn an_open_builder_needs_no_customers_and_gives_what_a_closed_one_gives() {
        let orders = [
            order(
                "b",
                "2024-03-05 10:00:00",
                4_000,
                OrderStatus::Refunded,
                false,
            ),
            order("a", "2024-03-01 10:00:00", 10_000, OrderStatus::Paid, true),
            order("a", "2024-03-03 10:00:00", 5_000, OrderStatus::Paid, false),
            order("b", "2024-03-07 10:00:00", 2_000, OrderStatus::Paid, false),
        ];
        let events = [
            event("c", "post_like", "2024-02-01 08:00:00"),
            event("b", "view", "2024-03-02 08:00:00"),
        ];
        let mut open = ProfileBuilder::open(&zone());
        for o in &orders {
            let f = &o.fact;
            open.order(
                f.customer_id.as_str(),
                f.ordered_at,
                f.amount,
                f.status,
                o.used_coupon,
            );
        }
        for e in &events {
            open.event(e.customer_id.as_str(), &e.kind, e.occurred_at);
        }
        assert_eq!(open.len(), 3);
        // Joined at the earliest order or event, refunded or not; no referrer.
        let closed = build_profiles(
            [
                cust("a", "2024-03-01 10:00:00", None),
                cust("b", "2024-03-02 08:00:00", None),
                cust("c", "2024-02-01 08:00:00", None),
            ],
            orders,
            events,
            &zone(),
            None,
        );
        assert_eq!(open.finish(), closed);
    }

    #[test]
    fn an_open_builder_sees_each_customer_at_their_earliest_sighting_with_its_channel() {
        let new_order = |id: &str, customer: &str, at: &str, channel: Option<&str>| NewOrder {
            id: crate::ids::OrderId::parse(id).expect("id"),
            customer_id: CustomerId::parse(customer).expect("id"),
            ordered_at: ts(at),
            amount: Money::from_fen(100),
            discount: Money::ZERO,
            coupon_code: None,
            channel: channel.map(|c| Channel::parse(c).expect("channel")),
            status: OrderStatus::Paid,
        };
        let mut open = ProfileBuilder::open(&zone());
        open.seen_order(&new_order("1", "b", "2024-03-05", Some("store")));
        open.seen_order(&new_order("2", "a", "2024-03-04", Some("douyin")));
        // Earlier: its channel replaces the first one's, even when it has none.
        open.seen_order(&new_order("3", "a", "2024-03-01", None));
        // Later: changes nothing.
        open.seen_order(&new_order("4", "b", "2024-03-09", Some("wecom")));
        open.event("c", "view", ts("2024-02-01"));
        open.seen_order(&new_order("5", "c", "2024-02-02", Some("douyin")));
        let seen: Vec<(String, Timestamp, Option<String>)> = open
            .sightings()
            .into_iter()
            .map(|s| (s.id.to_string(), s.at, s.channel.map(|c| c.to_string())))
            .collect();
        assert_eq!(
            seen,
            [
                ("a".to_owned(), ts("2024-03-01"), None),
                ("b".to_owned(), ts("2024-03-05"), Some("store".to_owned())),
                ("c".to_owned(), ts("2024-02-01"), None),
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn summed_interactions_apply_as_the_events_one_by_one(
            stored in proptest::collection::vec((0usize..4, 0i64..1_000), 0..6),
            events in proptest::collection::vec((0usize..4, 0i64..1_000), 1..40),
        ) {
            let kinds = ["view", "left", "post_like", "share"];
            let at = |s: i64| Timestamp::from_second(1_700_000_000 + s).expect("time");
            let id = CustomerId::parse("c1").expect("id");
            let mut one_by_one = Profile::new(id.clone(), at(0), None);
            for &(k, s) in &stored {
                one_by_one.add_event(kinds[k], at(s));
            }
            let mut summed = one_by_one.clone();
            let (k, s) = events[0];
            let mut news = Interactions::new(id, kinds[k], at(s));
            for &(k, s) in &events[1..] {
                news.add(kinds[k], at(s));
            }
            for &(k, s) in &events {
                one_by_one.add_event(kinds[k], at(s));
            }
            news.apply_to(&mut summed);
            proptest::prop_assert_eq!(summed, one_by_one);
        }
    }
}
