//! The stages of a million customers without a [`Profile`] each: the raw facts streamed
//! into a few arrays indexed by a dense customer number, or the stored profiles read as
//! [`StageLine`]s. Both give exactly what [`build_profiles`] and [`stages`] give (the
//! tests below compare them on random shops).
//!
//! [`Profile`]: crate::profile::Profile
//! [`build_profiles`]: crate::profile::build_profiles
//! [`stages`]: super::stages

use jiff::civil::Date;

use super::{StageLine, is_engaged, is_intent, journey_of, super_user_threshold};
use crate::customer::CustomerFact;
use crate::fasthash::FastHashMap;
use crate::ids::CustomerId;
use crate::metrics::columns::Ids;
use crate::money::Money;
use crate::order::OrderStatus;
use crate::profile::ProfileSink;
use crate::time::{TenantZone, Timestamp};

const INTENT: u8 = 1;
const ENGAGED: u8 = 2;

/// Every customer's [`StageLine`] as of a day, from streamed raw facts (customers first,
/// then orders and events in any order), as [`crate::profile::ProfileBuilder`] reads them.
pub struct StageColumns {
    zone: TenantZone,
    as_of: Date,
    /// The first instant after `as_of`.
    cutoff: Timestamp,
    /// The day before the 365-day spend window.
    window_start: Date,
    /// Customer ids interned to their numbers.
    index: Ids,
    /// (referee, referrer) for customers who name one.
    referrers: Vec<(u32, CustomerId)>,
    last_order_at: Vec<Option<Timestamp>>,
    left_at: Vec<Option<Timestamp>>,
    kinds: Vec<u8>,
    spend: Vec<Money>,
    /// (customer, local day) of each paid order.
    days: Vec<(u32, Date)>,
    /// Spend in the window of customers outside the pool: it counts toward the super-user
    /// threshold, as [`super::spend_over_days`] counts it.
    stray_spend: FastHashMap<CustomerId, Money>,
    /// Lines given whole (from stored profiles): only their spend comes from the orders.
    given: Vec<Option<StageLine>>,
}

/// What [`StageColumns::finish`] gives: ids in id order, their lines, and the threshold.
pub struct StageTable {
    pub ids: Vec<CustomerId>,
    pub lines: Vec<StageLine>,
    pub threshold: Option<Money>,
}

impl StageColumns {
    pub fn new(zone: &TenantZone, as_of: Date) -> StageColumns {
        let next = as_of.tomorrow().unwrap_or(as_of);
        StageColumns {
            zone: zone.clone(),
            as_of,
            cutoff: zone.start_of(next),
            window_start: window_start(as_of),
            index: Ids::default(),
            referrers: Vec::new(),
            last_order_at: Vec::new(),
            left_at: Vec::new(),
            kinds: Vec::new(),
            spend: Vec::new(),
            days: Vec::new(),
            stray_spend: FastHashMap::default(),
            given: Vec::new(),
        }
    }

    /// A customer whose line is known but for the spend (read off a stored profile that
    /// holds every fact up to the as-of day): orders then add only their spend.
    pub fn known(&mut self, id: CustomerId, line: StageLine) {
        if self.push(id, None) {
            *self.given.last_mut().expect("pushed") = Some(line);
        }
    }

    /// Adds a customer not seen before (false if seen).
    fn push(&mut self, id: CustomerId, referrer: Option<CustomerId>) -> bool {
        let row = self.last_order_at.len() as u32;
        if self.index.intern(id.as_str()) != row {
            return false;
        }
        if let Some(referrer) = referrer {
            self.referrers.push((row, referrer));
        }
        self.last_order_at.push(None);
        self.left_at.push(None);
        self.kinds.push(0);
        self.spend.push(Money::ZERO);
        self.given.push(None);
        true
    }

    fn in_window(&self, day: Date) -> bool {
        day > self.window_start && day <= self.as_of
    }

    pub fn finish(self) -> StageTable {
        let StageColumns {
            index,
            referrers,
            last_order_at,
            left_at,
            kinds,
            spend,
            mut days,
            stray_spend,
            given,
            ..
        } = self;
        let n = last_order_at.len();
        let mut referred = vec![false; n];
        for (_, referrer) in &referrers {
            if let Some(r) = index.find(referrer.as_str()) {
                referred[r as usize] = true;
            }
        }
        days.sort_unstable();
        days.dedup();
        let threshold =
            super_user_threshold(spend.iter().copied().chain(stray_spend.values().copied()));
        // One pass over the customers and their sorted purchase days, no array per figure.
        let mut lines: Vec<StageLine> = Vec::with_capacity(n);
        let mut next = days.iter().peekable();
        for c in 0..n {
            let (mut purchase_days, mut first, mut last) = (0u32, None, None);
            while let Some(&(_, day)) = next.next_if(|(of, _)| *of as usize == c) {
                purchase_days += 1;
                first.get_or_insert(day);
                last = Some(day);
            }
            lines.push(match given[c] {
                Some(line) => StageLine {
                    spend_365d: spend[c],
                    ..line
                },
                None => StageLine {
                    purchase_days,
                    first_purchase_day: first,
                    last_purchase_day: last,
                    has_left: has_left(left_at[c], last_order_at[c]),
                    spend_365d: spend[c],
                    journey: journey_of(
                        referred[c],
                        purchase_days,
                        kinds[c] & INTENT != 0,
                        kinds[c] & ENGAGED != 0,
                    ),
                },
            });
        }
        drop((days, given, last_order_at, left_at, kinds, spend, referred));
        // Every id was a customer id when it was interned.
        let mut ids: Vec<CustomerId> = (0..n as u32).filter_map(|c| index.customer_id(c)).collect();
        if !ids.is_sorted() {
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_unstable_by(|&a, &b| ids[a].cmp(&ids[b]));
            lines = order.iter().map(|&i| lines[i]).collect();
            let mut taken: Vec<Option<CustomerId>> = ids.into_iter().map(Some).collect();
            ids = order.iter().filter_map(|&i| taken[i].take()).collect();
        }
        StageTable {
            ids,
            lines,
            threshold,
        }
    }
}

impl ProfileSink for StageColumns {
    fn customer(&mut self, c: CustomerFact) {
        if c.joined_at < self.cutoff {
            self.push(c.id, c.referrer_id);
        }
    }

    fn order(
        &mut self,
        customer: &str,
        at: Timestamp,
        amount: Money,
        status: OrderStatus,
        _used_coupon: bool,
    ) {
        if at >= self.cutoff || status != OrderStatus::Paid {
            return;
        }
        let day = self.zone.day_of(at);
        let Some(c) = self.index.lookup(customer) else {
            if self.in_window(day)
                && let Ok(id) = CustomerId::parse(customer)
            {
                *self.stray_spend.entry(id).or_default() += amount;
            }
            return;
        };
        let i = c as usize;
        if self.in_window(day) {
            self.spend[i] += amount;
        }
        // A line given whole takes only its spend from the orders.
        if self.given[i].is_none() {
            self.last_order_at[i] = Some(self.last_order_at[i].map_or(at, |t| t.max(at)));
            self.days.push((c, day));
        }
    }

    fn event(&mut self, customer: &str, kind: &str, at: Timestamp) {
        if at >= self.cutoff {
            return;
        }
        let Some(c) = self.index.lookup(customer) else {
            return;
        };
        let i = c as usize;
        if kind == "left" {
            self.left_at[i] = Some(self.left_at[i].map_or(at, |t| t.max(at)));
        } else if is_intent(kind) {
            self.kinds[i] |= INTENT;
        } else if is_engaged(kind) {
            self.kinds[i] |= ENGAGED;
        }
    }
}

/// The day before the 365 days ending with `as_of` (as [`super::spend_over_days`]).
pub fn window_start(as_of: Date) -> Date {
    as_of
        .checked_sub(jiff::Span::new().days(365))
        .unwrap_or(Date::MIN)
}

/// [`crate::profile::Profile::has_left`] from its two instants.
pub fn has_left(left_at: Option<Timestamp>, last_order_at: Option<Timestamp>) -> bool {
    match (left_at, last_order_at) {
        (Some(left), Some(last)) => left > last,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Whether stored event counts (a JSON object of kind → count, kinds of `[a-z0-9_]` as
/// [`crate::EventType`] allows) count any interaction of the intent and engaged kinds:
/// (intent, engaged). Reads the text without building a map; `None` if it is not such an
/// object.
pub fn intent_and_engaged(json: &str) -> Option<(bool, bool)> {
    let mut intent = false;
    let mut engaged = false;
    each_count(json, |kind, count| {
        if count > 0 {
            intent |= is_intent(kind);
            engaged |= is_engaged(kind);
        }
    })?;
    Some((intent, engaged))
}

/// How many interactions of `kind` stored event counts (as [`intent_and_engaged`] reads
/// them) hold; `None` if the text is not such an object.
pub fn count_of(json: &str, kind: &str) -> Option<u64> {
    let mut n = 0;
    each_count(json, |k, count| {
        if k == kind {
            n += count;
        }
    })?;
    Some(n)
}

/// Hands each (kind, count) of stored event counts to `each`; `None` if the text is not
/// such an object.
fn each_count(json: &str, mut each: impl FnMut(&str, u64)) -> Option<()> {
    let mut rest = json.trim().strip_prefix('{')?.trim_start();
    loop {
        if let Some(end) = rest.strip_prefix('}') {
            return end.trim().is_empty().then_some(());
        }
        let body = rest.strip_prefix('"')?;
        let close = body.find('"')?;
        let kind = &body[..close];
        if kind.contains('\\') {
            return None;
        }
        let after = body[close + 1..]
            .trim_start()
            .strip_prefix(':')?
            .trim_start();
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let count: u64 = after[..digits].parse().ok()?;
        each(kind, count);
        rest = after[digits..].trim_start();
        if let Some(next) = rest.strip_prefix(',') {
            rest = next.trim_start();
        } else if !rest.starts_with('}') {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::{LifecycleSettings, spend_over_days, stages, stages_of_lines};
    use crate::order::OrderFact;
    use crate::profile::{EventFact, ProfileOrder, build_profiles};
    use proptest::prelude::*;

    const KINDS: &[&str] = &[
        "left",
        "view",
        "add_to_cart",
        "post_like",
        "message",
        "share",
        "coupon_claimed",
    ];

    #[test]
    fn stored_counts_are_read_as_a_map_would_be() {
        assert_eq!(intent_and_engaged("{}"), Some((false, false)));
        assert_eq!(
            intent_and_engaged(r#"{"left":1,"post_like":3}"#),
            Some((false, true))
        );
        assert_eq!(
            intent_and_engaged(r#"{"preview": 2, "view": 0}"#),
            Some((false, false))
        );
        assert_eq!(
            intent_and_engaged(r#"{"add_to_cart": 1, "message": 4}"#),
            Some((true, true))
        );
        assert_eq!(intent_and_engaged(r#"{"view":"x"}"#), None);
        assert_eq!(intent_and_engaged("[1]"), None);
        assert_eq!(count_of(r#"{"left":1, "share": 12}"#, "share"), Some(12));
        assert_eq!(count_of(r#"{"shares":3}"#, "share"), Some(0));
        assert_eq!(count_of(r#"{"share":"x"}"#, "share"), None);
    }

    fn day0() -> Date {
        TenantZone::parse_day("2024-01-01").expect("day")
    }

    fn at(minutes: i64) -> Timestamp {
        TenantZone::default().start_of(day0()) + jiff::SignedDuration::from_mins(minutes)
    }

    type Raw = (
        Vec<(u8, i64, Option<u8>)>,
        Vec<(u8, i64, i64, bool)>,
        Vec<(u8, usize, i64)>,
    );

    fn shop() -> impl Strategy<Value = Raw> {
        let minutes = 0i64..(800 * 1440);
        (
            prop::collection::vec((0u8..30, minutes.clone(), prop::option::of(0u8..30)), 0..30),
            prop::collection::vec((0u8..34, minutes.clone(), 1i64..500, any::<bool>()), 0..80),
            prop::collection::vec((0u8..34, 0..KINDS.len(), minutes), 0..80),
        )
    }

    fn id(n: u8) -> CustomerId {
        CustomerId::parse(&format!("c{n:02}")).expect("id")
    }

    proptest! {
        #[test]
        fn the_columns_give_the_stages_of_the_profiles((customers, orders, events) in shop(), as_of in 0i64..900) {
            let zone = TenantZone::default();
            let as_of = day0() + jiff::Span::new().days(as_of);
            let customers: Vec<CustomerFact> = customers
                .into_iter()
                .map(|(n, joined, referrer)| CustomerFact {
                    id: id(n),
                    channel: None,
                    joined_at: at(joined),
                    referrer_id: referrer.map(id),
                })
                .collect();
            let orders: Vec<ProfileOrder> = orders
                .into_iter()
                .map(|(n, t, fen, paid)| ProfileOrder {
                    fact: OrderFact {
                        customer_id: id(n),
                        ordered_at: at(t),
                        amount: Money::from_fen(fen),
                        status: if paid { OrderStatus::Paid } else { OrderStatus::Refunded },
                    },
                    used_coupon: false,
                })
                .collect();
            let events: Vec<EventFact> = events
                .into_iter()
                .map(|(n, k, t)| EventFact {
                    customer_id: id(n),
                    kind: KINDS[k].to_owned(),
                    occurred_at: at(t),
                })
                .collect();
            let settings = LifecycleSettings::default();
            let spend = spend_over_days(&orders, &zone, as_of, 365);
            let profiles = build_profiles(
                customers.clone(),
                orders.clone(),
                events.clone(),
                &zone,
                Some(as_of),
            );
            let plain = stages(&profiles, &spend, as_of, settings);

            let mut columns = StageColumns::new(&zone, as_of);
            for c in customers {
                columns.customer(c);
            }
            for o in &orders {
                let f = &o.fact;
                columns.order(f.customer_id.as_str(), f.ordered_at, f.amount, f.status, false);
            }
            for e in &events {
                columns.event(e.customer_id.as_str(), &e.kind, e.occurred_at);
            }
            let table = columns.finish();
            let fast = stages_of_lines(table.ids, &table.lines, table.threshold, as_of, settings);
            prop_assert_eq!(plain, fast);
        }
    }
}
