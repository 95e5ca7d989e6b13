//! The raw facts of a shop as columns: every customer id interned once to a dense number,
//! the customers' and orders' fields as plain arrays indexed by it. What the reports
//! compute from at a million customers: no object and no id string per customer or order,
//! and per-customer figures in vectors instead of maps. [`Shop`] is read through it too,
//! so each report has one computation.

use std::cmp::Ordering;
use std::hash::BuildHasher;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;

use crate::channel::Channel;
use crate::customer::CustomerFact;
use crate::fasthash::{FastBuildHasher, FastHashMap};
use crate::ids::CustomerId;
use crate::money::Money;
use crate::order::OrderStatus;
use crate::profile::{CustomerRow, ProfileSink, stored_id};
use crate::time::{TenantZone, Timestamp};

use super::shop::Shop;

/// No customer (a referrer not named, a slot empty).
pub const NONE: u32 = u32::MAX;

/// Ids interned to dense numbers 0, 1, 2, … in order of first sight: one text buffer and
/// the end of each id in it. Ids that come in ascending order (customers read in id order)
/// are found by that order, from where the last lookup ended, so that a stream of orders or
/// profiles in the same order finds each in a step or two with no table; any others go to
/// an open-addressed table that holds the first bytes of each id, so that finding a short
/// id there touches one slot and nothing else.
#[derive(Debug, Default)]
pub struct Ids {
    text: String,
    ends: Vec<usize>,
    /// Numbers below this hold ids in strictly ascending byte order; they are not in `slots`.
    sorted: usize,
    /// Where the last search of the sorted numbers ended: the next usually starts there.
    cursor: AtomicUsize,
    /// How many searches went back from the cursor: a stream in order goes back once, at
    /// its start; past [`BACK`] of them the ids come in no order, and all go to the table.
    back: AtomicUsize,
    /// The numbers from `sorted` on. A power of two long (or empty); at most half full.
    slots: Vec<Slot>,
    hasher: FastBuildHasher,
}

impl Clone for Ids {
    fn clone(&self) -> Self {
        Ids {
            text: self.text.clone(),
            ends: self.ends.clone(),
            sorted: self.sorted,
            cursor: AtomicUsize::new(self.cursor.load(Relaxed)),
            back: AtomicUsize::new(self.back.load(Relaxed)),
            slots: self.slots.clone(),
            hasher: self.hasher,
        }
    }
}

/// Bytes of an id kept in its slot.
const HEAD: usize = 16;

/// Sorted numbers looked at one by one after the cursor before a binary search.
const STEPS: usize = 8;

/// Searches back from the cursor after which the sorted numbers go to the table.
const BACK: usize = 4096;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// Number + 1 of the id; 0 for an empty slot.
    number: u32,
    len: u32,
    head: [u8; HEAD],
}

fn head(id: &str) -> [u8; HEAD] {
    let mut head = [0u8; HEAD];
    let n = id.len().min(HEAD);
    head[..n].copy_from_slice(&id.as_bytes()[..n]);
    head
}

impl Ids {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The id of number `n`.
    pub fn get(&self, n: u32) -> &str {
        self.at(n as usize)
    }

    fn at(&self, n: usize) -> &str {
        let start = if n == 0 { 0 } else { self.ends[n - 1] };
        &self.text[start..self.ends[n]]
    }

    /// The id of number `n` as a customer id (none if it is not a valid one, which
    /// [`ColumnSink`] reports as it reads).
    pub fn customer_id(&self, n: u32) -> Option<CustomerId> {
        CustomerId::parse(self.get(n)).ok()
    }

    /// The number of `id` among the sorted numbers: first at the cursor and the few after
    /// it, else by a binary search; the cursor then moves to where the search ended.
    fn find_sorted(&self, id: &str) -> Option<usize> {
        if self.sorted == 0 {
            return None;
        }
        let c = self.cursor.load(Relaxed).min(self.sorted - 1);
        let found = match self.at(c).cmp(id) {
            Ordering::Equal => Ok(c),
            Ordering::Greater => {
                self.back.fetch_add(1, Relaxed);
                self.search(0, c, id)
            }
            Ordering::Less => {
                let end = (c + 1 + STEPS).min(self.sorted);
                let mut at = c + 1;
                loop {
                    if at == end {
                        break self.gallop(at, id);
                    }
                    match self.at(at).cmp(id) {
                        Ordering::Equal => break Ok(at),
                        Ordering::Greater => break Err(at),
                        Ordering::Less => at += 1,
                    }
                }
            }
        };
        let (Ok(at) | Err(at)) = found;
        self.cursor.store(at, Relaxed);
        found.ok()
    }

    /// A search of the sorted numbers from `lo` on, in steps that double until one passes
    /// `id`, then a binary search of the last step: a stream in order that skips a few
    /// ids costs a few comparisons near the cursor, not a search of them all.
    fn gallop(&self, lo: usize, id: &str) -> Result<usize, usize> {
        let (mut from, mut step) = (lo, STEPS);
        loop {
            let to = from + step;
            if to >= self.sorted {
                return self.search(from, self.sorted, id);
            }
            match self.at(to).cmp(id) {
                Ordering::Equal => return Ok(to),
                Ordering::Greater => return self.search(from, to, id),
                Ordering::Less => (from, step) = (to + 1, step * 2),
            }
        }
    }

    /// A binary search of the sorted numbers `lo..hi` for `id`: its number, or where it
    /// would go.
    fn search(&self, mut lo: usize, mut hi: usize, id: &str) -> Result<usize, usize> {
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.at(mid).cmp(id) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// The slot of `id`: where it is, or the empty slot where it would go.
    fn slot(&self, id: &str) -> usize {
        let mask = self.slots.len() - 1;
        let mut at = self.hasher.hash_one(id) as usize & mask;
        let (len, head) = (id.len() as u32, head(id));
        loop {
            let s = &self.slots[at];
            if s.number == 0
                || (s.len == len
                    && s.head == head
                    && (id.len() <= HEAD || self.get(s.number - 1) == id))
            {
                return at;
            }
            at = (at + 1) & mask;
        }
    }

    /// The number of `id`, if it was seen.
    pub fn find(&self, id: &str) -> Option<u32> {
        if let Some(n) = self.find_sorted(id) {
            return Some(n as u32);
        }
        if self.slots.is_empty() {
            return None;
        }
        self.slots[self.slot(id)].number.checked_sub(1)
    }

    /// [`Ids::find`] for a stream of lookups: when they come in no order (many went back
    /// from the cursor), every id goes to the table first, a step per lookup instead of a
    /// binary search.
    pub fn lookup(&mut self, id: &str) -> Option<u32> {
        self.unsorted_to_table();
        self.find(id)
    }

    fn unsorted_to_table(&mut self) {
        if self.sorted > 0 && *self.back.get_mut() > BACK {
            self.sorted = 0;
            self.grow();
        }
    }

    /// The number of `id`, given the next one if it is new.
    pub fn intern(&mut self, id: &str) -> u32 {
        self.unsorted_to_table();
        let n = self.len();
        if n == self.sorted && (n == 0 || self.at(n - 1) < id) {
            // Later than every id so far (none in the table): one more sorted number.
            self.text.push_str(id);
            self.ends.push(self.text.len());
            self.sorted += 1;
            self.cursor.store(n, Relaxed);
            return n as u32;
        }
        if let Some(n) = self.find_sorted(id) {
            return n as u32;
        }
        if (n - self.sorted + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let at = self.slot(id);
        if let Some(n) = self.slots[at].number.checked_sub(1) {
            return n;
        }
        self.text.push_str(id);
        self.ends.push(self.text.len());
        self.slots[at] = Slot {
            number: n as u32 + 1,
            len: id.len() as u32,
            head: head(id),
        };
        n as u32
    }

    /// A table for the numbers from `sorted` on and one more, at most half full.
    fn grow(&mut self) {
        let size = ((self.len() - self.sorted + 1) * 2)
            .next_power_of_two()
            .max(self.slots.len() * 2)
            .max(1024);
        let mut slots = vec![Slot::default(); size];
        let mask = size - 1;
        for n in self.sorted..self.len() {
            let id = self.at(n);
            let mut at = self.hasher.hash_one(id) as usize & mask;
            while slots[at].number != 0 {
                at = (at + 1) & mask;
            }
            slots[at] = Slot {
                number: n as u32 + 1,
                len: id.len() as u32,
                head: head(id),
            };
        }
        self.slots = slots;
    }
}

/// A customer who is no pool member (named only by an order, an event or as a referrer).
const OUTSIDE: u16 = u16::MAX;

/// A shop's facts as columns. Numbers are interned ids; the pool's customers are listed in
/// the order they came (`pool`); orders and the events of the kinds asked for are columns.
#[derive(Debug, Clone)]
pub struct ShopColumns {
    pub zone: TenantZone,
    pub ids: Ids,
    /// The pool's customers, by number, in the order they came.
    pub pool: Vec<u32>,
    /// By number: the index of the customer's channel in `channels`, or [`OUTSIDE`].
    channel: Vec<u16>,
    /// The distinct channels of the pool.
    pub channels: Vec<Option<Channel>>,
    /// By number: when the customer joined (pool members only).
    pub joined_at: Vec<Timestamp>,
    /// By number: the customer's referrer, or [`NONE`].
    pub referrer: Vec<u32>,
    pub orders: OrderColumns,
    pub events: EventColumns,
}

#[derive(Debug, Clone, Default)]
pub struct OrderColumns {
    pub customer: Vec<u32>,
    pub at: Vec<Timestamp>,
    pub fen: Vec<i64>,
    pub paid: Vec<bool>,
}

impl OrderColumns {
    pub fn len(&self) -> usize {
        self.customer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.customer.is_empty()
    }
}

#[derive(Debug, Clone, Default)]
pub struct EventColumns {
    pub customer: Vec<u32>,
    /// Index into `kinds`.
    pub kind: Vec<u32>,
    pub at: Vec<Timestamp>,
    pub kinds: Vec<String>,
}

impl EventColumns {
    /// The events of `kind`: (customer, at).
    pub fn of_kind(&self, kind: &str) -> impl Iterator<Item = (u32, Timestamp)> + '_ {
        let k = self.kinds.iter().position(|x| x == kind);
        self.customer
            .iter()
            .zip(&self.kind)
            .zip(&self.at)
            .filter(move |((_, x), _)| Some(**x as usize) == k)
            .map(|((c, _), at)| (*c, *at))
    }
}

impl ShopColumns {
    pub fn new(zone: &TenantZone) -> ShopColumns {
        ShopColumns {
            zone: zone.clone(),
            ids: Ids::default(),
            pool: Vec::new(),
            channel: Vec::new(),
            channels: Vec::new(),
            joined_at: Vec::new(),
            referrer: Vec::new(),
            orders: OrderColumns::default(),
            events: EventColumns::default(),
        }
    }

    /// The columns of a whole [`Shop`], every event kind included.
    pub fn of(shop: &Shop) -> ShopColumns {
        let mut columns = ShopColumns::new(&shop.zone);
        let mut sink = ColumnSink::new(&mut columns, None);
        for c in &shop.customers {
            sink.customer(c.clone());
        }
        for o in &shop.orders {
            sink.order(
                o.customer_id.as_str(),
                o.ordered_at,
                o.amount,
                o.status,
                false,
            );
        }
        for e in &shop.events {
            sink.event(e.customer_id.as_str(), &e.kind, e.occurred_at);
        }
        drop(sink);
        columns
    }

    /// How many numbers there are (pool members and others).
    pub fn numbers(&self) -> usize {
        self.ids.len()
    }

    /// Whether number `n` is a customer of the pool.
    pub fn is_member(&self, n: u32) -> bool {
        self.channel[n as usize] != OUTSIDE
    }

    /// The channel of number `n`: its index in `channels`, `None` when not in the pool.
    pub fn channel_index(&self, n: u32) -> Option<u16> {
        let c = self.channel[n as usize];
        (c != OUTSIDE).then_some(c)
    }

    /// The channel of number `n` (none for customers outside the pool).
    pub fn channel_of(&self, n: u32) -> Option<&Channel> {
        self.channel_index(n)
            .and_then(|c| self.channels[usize::from(c)].as_ref())
    }

    /// Selects the numbers whose id `only` selects (every number when `None`).
    pub fn select(&self, only: Option<&dyn Fn(&CustomerId) -> bool>) -> Option<Vec<bool>> {
        let only = only?;
        Some(
            (0..self.numbers() as u32)
                .map(|n| self.ids.customer_id(n).is_some_and(|id| only(&id)))
                .collect(),
        )
    }

    /// The numbers of the ids in `members`, as a selection.
    pub fn select_ids<'a>(&self, members: impl IntoIterator<Item = &'a CustomerId>) -> Vec<bool> {
        let mut out = vec![false; self.numbers()];
        for id in members {
            if let Some(n) = self.ids.find(id.as_str()) {
                out[n as usize] = true;
            }
        }
        out
    }

    fn number(&mut self, id: &str) -> u32 {
        let n = self.ids.intern(id);
        if n as usize == self.channel.len() {
            self.channel.push(OUTSIDE);
            self.joined_at.push(Timestamp::UNIX_EPOCH);
            self.referrer.push(NONE);
        }
        n
    }
}

/// Streams facts into [`ShopColumns`]: customers, orders, and the events of some kinds
/// (all when `kinds` is `None`).
pub struct ColumnSink<'c, 'k> {
    columns: &'c mut ShopColumns,
    kinds: Option<&'k [&'k str]>,
    channel_index: FastHashMap<Option<Channel>, u16>,
    /// Each channel's text as stored rows hold it, with its index: a few distinct texts
    /// among a million rows, each parsed once.
    channel_texts: Vec<(Option<String>, u16)>,
    /// Whether customers' referrers are read (only the referral figures need them).
    referrers: bool,
    /// (customer, referrer) not numbered yet: a referrer numbered as it is named would
    /// break the order in which the customers come (see [`Ids`]).
    pending: Vec<(u32, CustomerId)>,
    /// The first id that is not a valid customer id.
    pub bad: Option<String>,
}

impl<'c, 'k> ColumnSink<'c, 'k> {
    pub fn new(columns: &'c mut ShopColumns, kinds: Option<&'k [&'k str]>) -> Self {
        ColumnSink {
            columns,
            kinds,
            channel_index: FastHashMap::default(),
            channel_texts: Vec::new(),
            referrers: true,
            pending: Vec::new(),
            bad: None,
        }
    }

    /// Leaves the customers' referrers out (each is a lookup of an id).
    pub fn without_referrers(mut self) -> Self {
        self.referrers = false;
        self
    }
}

impl ColumnSink<'_, '_> {
    /// Numbers the referrers named so far.
    fn settle(&mut self) {
        // In the referrers' order, so that each is found a step after the last.
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_unstable_by(|a, b| a.1.cmp(&b.1));
        for (n, r) in pending {
            let r = self.columns.number(r.as_str());
            self.columns.referrer[n as usize] = r;
        }
    }

    /// The number of an id an order or event names, checking it when it is new.
    fn number(&mut self, id: &str) -> u32 {
        if !self.pending.is_empty() {
            self.settle();
        }
        let before = self.columns.numbers();
        let n = self.columns.number(id);
        if self.columns.numbers() > before && self.bad.is_none() && CustomerId::parse(id).is_err() {
            self.bad = Some(id.to_owned());
        }
        n
    }
}

impl ColumnSink<'_, '_> {
    /// The index of a channel in the columns' list, added when new.
    fn channel_number(&mut self, channel: Option<Channel>) -> u16 {
        match self.channel_index.get(&channel) {
            Some(&i) => i,
            None => {
                let i = self.columns.channels.len() as u16;
                self.columns.channels.push(channel.clone());
                self.channel_index.insert(channel, i);
                i
            }
        }
    }

    fn add_customer(
        &mut self,
        id: &str,
        channel: u16,
        joined_at: Timestamp,
        referrer: Option<CustomerId>,
    ) {
        let columns = &mut *self.columns;
        let n = columns.number(id);
        if let Some(r) = referrer.filter(|_| self.referrers) {
            self.pending.push((n, r));
        }
        let at = n as usize;
        columns.channel[at] = channel;
        columns.joined_at[at] = joined_at;
        columns.referrer[at] = NONE;
        columns.pool.push(n);
    }
}

impl Drop for ColumnSink<'_, '_> {
    /// The referrers of the last customers, when no order or event followed them.
    fn drop(&mut self) {
        self.settle();
    }
}

impl ProfileSink for ColumnSink<'_, '_> {
    fn customer(&mut self, c: CustomerFact) {
        let channel = self.channel_number(c.channel);
        self.add_customer(c.id.as_str(), channel, c.joined_at, c.referrer_id);
    }

    /// The stored row numbered as it is: the store checked its id when it was written, and
    /// each distinct channel text is parsed once.
    fn customer_row(&mut self, row: CustomerRow<'_>) -> Result<(), String> {
        let channel = match self
            .channel_texts
            .iter()
            .find(|(t, _)| t.as_deref() == row.channel)
        {
            Some(&(_, i)) => i,
            None => {
                let parsed = row
                    .channel
                    .map(Channel::parse)
                    .transpose()
                    .map_err(|e| e.to_string())?;
                let i = self.channel_number(parsed);
                self.channel_texts.push((row.channel.map(str::to_owned), i));
                i
            }
        };
        let referrer = match row.referrer_id.filter(|_| self.referrers) {
            Some(r) => Some(stored_id(r)?),
            None => None,
        };
        self.add_customer(row.id, channel, row.joined_at, referrer);
        Ok(())
    }

    fn order(
        &mut self,
        customer: &str,
        at: Timestamp,
        amount: Money,
        status: OrderStatus,
        _used_coupon: bool,
    ) {
        let n = self.number(customer);
        let o = &mut self.columns.orders;
        o.customer.push(n);
        o.at.push(at);
        o.fen.push(amount.fen());
        o.paid.push(status == OrderStatus::Paid);
    }

    fn event(&mut self, customer: &str, kind: &str, at: Timestamp) {
        if self.kinds.is_some_and(|k| !k.contains(&kind)) {
            return;
        }
        let n = self.number(customer);
        let e = &mut self.columns.events;
        let k = match e.kinds.iter().position(|x| x == kind) {
            Some(k) => k,
            None => {
                e.kinds.push(kind.to_owned());
                e.kinds.len() - 1
            }
        };
        e.customer.push(n);
        e.kind.push(k as u32);
        e.at.push(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn ids_that_come_in_order_are_found_by_their_order_without_a_table() {
        let mut ids = Ids::default();
        let id = |n: u32| format!("c{n:07}");
        for n in 0..5_000u32 {
            assert_eq!(ids.intern(&id(n)), n);
        }
        // Orders in the same order, some customers skipped; then a few out of order.
        for n in (0..5_000u32).step_by(3) {
            assert_eq!(ids.intern(&id(n)), n);
        }
        for n in [4_999, 0, 2_500, 17] {
            assert_eq!(ids.find(&id(n)), Some(n));
        }
        assert!(ids.slots.is_empty(), "no id went to the table");
        // An id not among them (between two, or after all) gets the next number.
        assert_eq!(ids.intern("c0000017x"), 5_000);
        assert_eq!(ids.intern("d"), 5_001);
        assert_eq!(ids.find("c0000017x"), Some(5_000));
        assert_eq!(ids.find("c0000018"), Some(18));
        assert_eq!(ids.find("c00000175"), None);
    }

    #[test]
    fn ids_looked_up_in_no_order_go_to_the_table_and_are_still_found() {
        let mut ids = Ids::default();
        let id = |n: u32| format!("c{n:07}");
        for n in 0..20_000u32 {
            assert_eq!(ids.intern(&id(n)), n);
        }
        // Every other id, from the last back: each a search back from the cursor.
        for n in (0..20_000u32).rev().step_by(2) {
            assert_eq!(ids.lookup(&id(n)), Some(n));
        }
        assert_eq!(ids.sorted, 0, "the ids went to the table");
        for n in (0..20_000u32).step_by(7) {
            assert_eq!(ids.lookup(&id(n)), Some(n));
        }
        assert_eq!(ids.lookup("c"), None);
        assert_eq!(ids.intern("c"), 20_000);
        assert_eq!(ids.find("c"), Some(20_000));
    }

    #[test]
    fn referrers_are_numbered_after_the_customers_so_the_customers_stay_in_order() {
        let zone = TenantZone::default();
        let mut columns = ShopColumns::new(&zone);
        let mut sink = ColumnSink::new(&mut columns, None);
        let id = |s: &str| CustomerId::parse(s).expect("id");
        for (c, r) in [
            ("a", Some("c")),
            ("b", Some("bb")),
            ("c", None),
            ("d", Some("a")),
        ] {
            sink.customer(CustomerFact {
                id: id(c),
                channel: None,
                joined_at: Timestamp::UNIX_EPOCH,
                referrer_id: r.map(id),
            });
        }
        drop(sink);
        let name = |n: u32| (n != NONE).then(|| columns.ids.get(n).to_owned());
        let referrers: Vec<Option<String>> = columns
            .pool
            .iter()
            .map(|&n| name(columns.referrer[n as usize]))
            .collect();
        assert_eq!(
            referrers,
            [Some("c".into()), Some("bb".into()), None, Some("a".into())]
        );
        assert_eq!(columns.ids.find("bb"), Some(4));
        assert!(!columns.is_member(4));
        assert_eq!(
            columns.ids.sorted, 4,
            "the customers are the sorted numbers"
        );
    }

    proptest! {
        /// Whatever the order the ids come in, each is numbered as a map of ids would
        /// number it: sorted runs, repeats, ids before, between and after the others.
        #[test]
        fn ids_number_as_a_map_would(
            sorted in prop::collection::btree_set("[a-d]{0,4}", 0..300),
            then in prop::collection::vec("[a-e]{0,4}", 0..200),
            finds in prop::collection::vec("[a-e]{0,3}", 0..20),
        ) {
            let mut ids = Ids::default();
            let mut model: HashMap<String, u32> = HashMap::new();
            for id in sorted.iter().chain(&then) {
                let next = model.len() as u32;
                let want = *model.entry(id.clone()).or_insert(next);
                prop_assert_eq!(ids.intern(id), want, "{}", id);
            }
            for id in finds.iter().chain(&then).chain(&sorted) {
                prop_assert_eq!(ids.find(id), model.get(id).copied(), "{}", id);
            }
            for (id, &n) in &model {
                prop_assert_eq!(ids.get(n), id.as_str());
            }
            prop_assert_eq!(ids.len(), model.len());
        }
    }

    #[test]
    fn ids_are_numbered_in_order_of_first_sight_and_found_again() {
        let mut ids = Ids::default();
        for n in 0..5_000u32 {
            assert_eq!(ids.intern(&format!("c{n}")), n);
        }
        assert_eq!(ids.intern("c17"), 17);
        assert_eq!(ids.find("c4999"), Some(4999));
        assert_eq!(ids.find("c5000"), None);
        assert_eq!(ids.get(123), "c123");
        assert_eq!(ids.len(), 5_000);
    }

    #[test]
    fn long_ids_that_share_their_first_bytes_are_told_apart() {
        let mut ids = Ids::default();
        let long = |n: u32| format!("customer-of-the-shop-{n:06}");
        for n in 0..3_000u32 {
            assert_eq!(ids.intern(&long(n)), n);
        }
        for n in (0..3_000u32).step_by(7) {
            assert_eq!(ids.find(&long(n)), Some(n));
            assert_eq!(ids.get(n), long(n));
        }
        assert_eq!(ids.find("customer-of-the-shop-"), None);
        assert_eq!(ids.find(""), None);
        assert_eq!(ids.intern(""), 3_000);
    }
}
