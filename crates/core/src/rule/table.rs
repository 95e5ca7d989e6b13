//! The columns segment rules scan: one vector per field, built from profiles and the
//! per-customer figures profiles do not hold, plus the bitset that holds members.
//!
//! Missing values are sentinels (`i32::MIN`, `i64::MIN`, code 0), so a range test that
//! starts above the sentinel leaves them out with no separate validity check. Texts are
//! interned to `u32` codes. Tags and event counts are sparse: per tag the sorted rows that
//! have it (a bitset once that is smaller), per event type the rows with a non-zero count.

use jiff::civil::Date;

use crate::channel::Channel;
use crate::customer::Gender;
use crate::fasthash::FastHashMap;
use crate::lifecycle::{Journey, Stage, journey};
use crate::money::Money;
use crate::profile::Profile;
use crate::segment::rfm::RfmClass;
use crate::time::TenantZone;
use crate::time::date_number;

/// A missing day or whole number.
pub(crate) const NO_I32: i32 = i32::MIN;
/// A missing amount.
pub(crate) const NO_I64: i64 = i64::MIN;

/// A set of rows as one bit per row: a segment's members in a [`SegmentTable`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bitset {
    words: Vec<u64>,
    len: usize,
}

impl Bitset {
    /// `len` rows, none set.
    pub fn empty(len: usize) -> Bitset {
        Bitset {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// `len` rows, all set.
    pub fn full(len: usize) -> Bitset {
        let mut b = Bitset {
            words: vec![u64::MAX; len.div_ceil(64)],
            len,
        };
        b.clear_tail();
        b
    }

    /// Row `i` is set when `test(i)`.
    pub fn from_fn(len: usize, test: impl Fn(usize) -> bool) -> Bitset {
        let mut words = Vec::with_capacity(len.div_ceil(64));
        let mut start = 0;
        while start < len {
            let end = (start + 64).min(len);
            let mut w = 0u64;
            for i in start..end {
                w |= u64::from(test(i)) << (i - start);
            }
            words.push(w);
            start = end;
        }
        Bitset { words, len }
    }

    /// Row `i` is set when `test(values[i])`: the column scan, 64 rows to a word, in a
    /// loop the compiler turns into vector compares.
    pub fn scan<T: Copy>(values: &[T], test: impl Fn(T) -> bool) -> Bitset {
        let mut words = Vec::with_capacity(values.len().div_ceil(64));
        let chunks = values.chunks_exact(64);
        let rest = chunks.remainder();
        for chunk in chunks {
            let mut w = 0u64;
            for (i, &v) in chunk.iter().enumerate() {
                w |= u64::from(test(v)) << i;
            }
            words.push(w);
        }
        if !rest.is_empty() {
            let mut w = 0u64;
            for (i, &v) in rest.iter().enumerate() {
                w |= u64::from(test(v)) << i;
            }
            words.push(w);
        }
        Bitset {
            words,
            len: values.len(),
        }
    }

    /// Rows of the table.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Rows set.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether no row is set.
    pub fn none(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    pub fn contains(&self, row: usize) -> bool {
        row < self.len && self.words[row / 64] >> (row % 64) & 1 == 1
    }

    pub fn set(&mut self, row: usize, on: bool) {
        let (w, bit) = (row / 64, 1u64 << (row % 64));
        if on {
            self.words[w] |= bit;
        } else {
            self.words[w] &= !bit;
        }
    }

    pub(crate) fn push(&mut self, on: bool) {
        if self.len.is_multiple_of(64) {
            self.words.push(0);
        }
        self.len += 1;
        self.set(self.len - 1, on);
    }

    /// The rows set, in increasing order.
    pub fn rows(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                (w != 0).then(|| {
                    let bit = w.trailing_zeros() as usize;
                    w &= w - 1;
                    i * 64 + bit
                })
            })
        })
    }

    /// One bool per row.
    pub fn to_bools(&self) -> Vec<bool> {
        (0..self.len).map(|i| self.contains(i)).collect()
    }

    pub fn and_with(&mut self, other: &Bitset) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= b;
        }
    }

    pub fn or_with(&mut self, other: &Bitset) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    /// Clears every row set in `other`.
    pub fn and_not(&mut self, other: &Bitset) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= !b;
        }
    }

    pub fn negate(&mut self) {
        for w in &mut self.words {
            *w = !*w;
        }
        self.clear_tail();
    }

    fn clear_tail(&mut self) {
        if !self.len.is_multiple_of(64)
            && let Some(last) = self.words.last_mut()
        {
            *last &= (1u64 << (self.len % 64)) - 1;
        }
    }

    fn heap_bytes(&self) -> usize {
        self.words.capacity() * 8
    }
}

/// What a segment rule needs of a customer beyond the [`Profile`]: level tags and
/// figures computed as of the day, and the static attributes. `None` is "not known": a
/// rule comparing it is false for the customer (see the module doc), except `rfm`, where
/// `None` is the class `"none"`, and `journey`, where `None` is worked out from the profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerExtras {
    pub stage: Option<Stage>,
    pub journey: Option<Journey>,
    pub rfm: Option<RfmClass>,
    /// Paid amount over the 365 days to the as-of day.
    pub spend_365d: Money,
    pub tags: Vec<String>,
    pub channel: Option<Channel>,
    pub region: Option<String>,
    pub gender: Option<Gender>,
}

/// Whole-number columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntCol {
    Orders,
    PurchaseDays,
    Referrals,
    CouponOrders,
}
/// Day columns: days since 1970-01-01, or `NO_I32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DayCol {
    Joined,
    FirstOrder,
    LastOrder,
    LastInteraction,
}
/// Money columns in fen, or `NO_I64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MoneyCol {
    NetSpend,
    Spend365d,
    Aov,
    ReferralRevenue,
}
/// Choice columns: 1 + the index of the value in the field's list, or 0 when missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeCol {
    Stage,
    Journey,
    Rfm,
    Gender,
}
/// Interned text columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextCol {
    Channel,
    Region,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagCol {
    HasLeft,
}

/// Strings to dense codes from 1 (0 stands for "none").
#[derive(Debug, Clone, Default)]
pub(crate) struct Interner {
    names: Vec<Box<str>>,
    codes: FastHashMap<Box<str>, u32>,
}

impl Interner {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(&code) = self.codes.get(name) {
            return code;
        }
        self.names.push(name.into());
        let code = self.names.len() as u32;
        self.codes.insert(name.into(), code);
        code
    }

    /// The code of a name, if the table has it.
    pub(crate) fn code(&self, name: &str) -> Option<u32> {
        self.codes.get(name).copied()
    }

    /// Codes in use: the highest code + 1.
    pub(crate) fn code_count(&self) -> usize {
        self.names.len() + 1
    }

    fn heap_bytes(&self) -> usize {
        let strings: usize = self.names.iter().map(|s| s.len()).sum();
        // Each name is held twice; a hash map entry is about a key, a value and a control byte.
        2 * strings + self.names.capacity() * 16 + self.codes.capacity() * (16 + 4 + 1)
    }
}

/// A text column: a code per row, 0 when missing.
#[derive(Debug, Clone, Default)]
pub(crate) struct TextColumn {
    pub codes: Vec<u32>,
    pub names: Interner,
}

/// The rows that have one tag.
#[derive(Debug, Clone)]
pub(crate) enum TagRows {
    /// Sorted row numbers, while fewer than one in 32 rows has the tag.
    Sparse(Vec<u32>),
    Dense(Bitset),
}

/// The non-zero counts of one event type: rows in increasing order and their counts.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventCounts {
    pub rows: Vec<u32>,
    pub counts: Vec<u32>,
}

/// Customers as columns, for segment rules to scan. Row `i` is the `i`-th customer given
/// to the builder.
#[derive(Debug, Clone)]
pub struct SegmentTable {
    as_of: Date,
    pub(crate) as_of_day: i32,
    len: usize,
    id_bytes: String,
    id_ends: Vec<usize>,
    pub(crate) ints: [Vec<i32>; 4],
    pub(crate) days: [Vec<i32>; 4],
    pub(crate) money: [Vec<i64>; 4],
    pub(crate) codes: [Vec<u8>; 4],
    pub(crate) texts: [TextColumn; 2],
    pub(crate) flags: [Bitset; 1],
    pub(crate) tag_names: Interner,
    /// By tag code − 1.
    pub(crate) tags: Vec<TagRows>,
    pub(crate) event_types: Interner,
    /// By event type code − 1.
    pub(crate) events: Vec<EventCounts>,
}

impl SegmentTable {
    /// A table of `profiles` as of the day `as_of`, with `extras[i]` belonging to
    /// `profiles[i]` (a customer past the end of `extras` has none known). Profiles must
    /// be built as of the same day.
    pub fn build(
        profiles: &[Profile],
        extras: &[CustomerExtras],
        as_of: Date,
        zone: &TenantZone,
    ) -> SegmentTable {
        let none = CustomerExtras::default();
        let mut builder = SegmentTableBuilder::new(as_of, zone);
        for (i, p) in profiles.iter().enumerate() {
            builder.push(p, extras.get(i).unwrap_or(&none));
        }
        builder.finish()
    }

    /// Customers in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The day `today` stands for in rules.
    pub fn as_of(&self) -> Date {
        self.as_of
    }

    /// The customer id of a row.
    pub fn customer_id(&self, row: usize) -> &str {
        let start = if row == 0 { 0 } else { self.id_ends[row - 1] };
        &self.id_bytes[start..self.id_ends[row]]
    }

    /// The customer ids of the rows set in `members`, in row order.
    pub fn customer_ids<'a>(&'a self, members: &'a Bitset) -> impl Iterator<Item = &'a str> + 'a {
        members.rows().map(|row| self.customer_id(row))
    }

    /// Gives the tag `name` to the rows set in `rows` as well (a rule tag, once its rule
    /// is evaluated, so that later rules can ask `has_tag` of it).
    pub fn add_tag(&mut self, name: &str, rows: &Bitset) {
        let code = self.tag_names.intern(name) as usize;
        if self.tags.len() < code {
            self.tags
                .resize_with(code, || TagRows::Dense(Bitset::empty(self.len)));
        }
        let merged = match &self.tags[code - 1] {
            TagRows::Dense(bits) => {
                let mut bits = bits.clone();
                bits.or_with(rows);
                bits
            }
            TagRows::Sparse(list) => {
                let mut bits = rows.clone();
                for &r in list {
                    bits.set(r as usize, true);
                }
                bits
            }
        };
        self.tags[code - 1] = TagRows::Dense(merged);
    }

    /// Replaces the stage of a row.
    pub fn set_stage(&mut self, row: usize, stage: Stage) {
        use super::field::STAGES;
        let code = STAGES
            .iter()
            .position(|n| *n == stage.name())
            .map_or(0, |i| i as u8 + 1);
        self.codes[CodeCol::Stage as usize][row] = code;
    }

    /// Replaces the RFM class of a row (`None`: not scored).
    pub fn set_rfm(&mut self, row: usize, class: Option<RfmClass>) {
        use super::field::RFM_CLASSES;
        let name = class.map_or("none", RfmClass::name);
        let code = RFM_CLASSES
            .iter()
            .position(|n| *n == name)
            .map_or(0, |i| i as u8 + 1);
        self.codes[CodeCol::Rfm as usize][row] = code;
    }

    /// Memory the table holds on the heap, in bytes (capacity, not only length).
    pub fn heap_bytes(&self) -> usize {
        let vecs = |v: &[Vec<i32>]| v.iter().map(|c| c.capacity() * 4).sum::<usize>();
        let tags: usize = self
            .tags
            .iter()
            .map(|t| match t {
                TagRows::Sparse(rows) => rows.capacity() * 4,
                TagRows::Dense(bits) => bits.heap_bytes(),
            })
            .sum::<usize>()
            + self.tags.capacity() * std::mem::size_of::<TagRows>();
        let events: usize = self
            .events
            .iter()
            .map(|e| (e.rows.capacity() + e.counts.capacity()) * 4)
            .sum::<usize>()
            + self.events.capacity() * std::mem::size_of::<EventCounts>();
        self.id_bytes.capacity()
            + self.id_ends.capacity() * 8
            + vecs(&self.ints)
            + vecs(&self.days)
            + self.money.iter().map(|c| c.capacity() * 8).sum::<usize>()
            + self.codes.iter().map(Vec::capacity).sum::<usize>()
            + self
                .texts
                .iter()
                .map(|t| t.codes.capacity() * 4 + t.names.heap_bytes())
                .sum::<usize>()
            + self.flags.iter().map(Bitset::heap_bytes).sum::<usize>()
            + self.tag_names.heap_bytes()
            + tags
            + self.event_types.heap_bytes()
            + events
    }
}

/// Builds a [`SegmentTable`] one customer at a time, so that profiles can stream in from
/// the store without all being held at once.
#[derive(Debug)]
pub struct SegmentTableBuilder {
    zone: TenantZone,
    table: SegmentTable,
    tag_rows: Vec<Vec<u32>>,
}

impl SegmentTableBuilder {
    /// Profiles pushed must be built as of `as_of`; `zone` gives the local day of times.
    pub fn new(as_of: Date, zone: &TenantZone) -> SegmentTableBuilder {
        SegmentTableBuilder {
            zone: zone.clone(),
            table: SegmentTable {
                as_of,
                as_of_day: date_number(as_of),
                len: 0,
                id_bytes: String::new(),
                id_ends: Vec::new(),
                ints: Default::default(),
                days: Default::default(),
                money: Default::default(),
                codes: Default::default(),
                texts: Default::default(),
                flags: Default::default(),
                tag_names: Interner::default(),
                tags: Vec::new(),
                event_types: Interner::default(),
                events: Vec::new(),
            },
            tag_rows: Vec::new(),
        }
    }

    /// Room for `additional` more customers.
    pub fn reserve(&mut self, additional: usize) {
        let t = &mut self.table;
        t.id_ends.reserve(additional);
        t.id_bytes.reserve(additional * 12);
        for c in &mut t.ints {
            c.reserve(additional);
        }
        for c in &mut t.days {
            c.reserve(additional);
        }
        for c in &mut t.money {
            c.reserve(additional);
        }
        for c in &mut t.codes {
            c.reserve(additional);
        }
        for c in &mut t.texts {
            c.codes.reserve(additional);
        }
    }

    /// Adds a customer as the next row.
    pub fn push(&mut self, p: &Profile, x: &CustomerExtras) {
        let t = &mut self.table;
        let row = t.len as u32;
        t.len += 1;
        t.id_bytes.push_str(p.customer_id.as_str());
        t.id_ends.push(t.id_bytes.len());

        let count = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        t.ints[IntCol::Orders as usize].push(count(p.orders));
        t.ints[IntCol::PurchaseDays as usize].push(count(p.purchase_days));
        t.ints[IntCol::Referrals as usize].push(count(p.referrals));
        t.ints[IntCol::CouponOrders as usize].push(count(p.coupon_orders));

        let day = |d: Option<Date>| d.map_or(NO_I32, date_number);
        let zone = &self.zone;
        t.days[DayCol::Joined as usize].push(day(Some(zone.day_of(p.joined_at))));
        t.days[DayCol::FirstOrder as usize].push(day(p.first_purchase_day));
        t.days[DayCol::LastOrder as usize].push(day(p.last_purchase_day));
        t.days[DayCol::LastInteraction as usize]
            .push(day(p.last_interaction_at.map(|at| zone.day_of(at))));

        t.money[MoneyCol::NetSpend as usize].push(p.net_spend.fen());
        t.money[MoneyCol::Spend365d as usize].push(x.spend_365d.fen());
        t.money[MoneyCol::Aov as usize].push(p.aov().map_or(NO_I64, Money::fen));
        t.money[MoneyCol::ReferralRevenue as usize].push(p.referral_revenue.fen());

        let position = |names: &[&str], name: &str| {
            names
                .iter()
                .position(|n| *n == name)
                .map_or(0, |i| i as u8 + 1)
        };
        use super::field::{GENDERS, JOURNEYS, RFM_CLASSES, STAGES};
        t.codes[CodeCol::Stage as usize].push(x.stage.map_or(0, |s| position(STAGES, s.name())));
        let j = x.journey.unwrap_or_else(|| journey(p));
        t.codes[CodeCol::Journey as usize].push(position(JOURNEYS, j.name()));
        t.codes[CodeCol::Rfm as usize]
            .push(position(RFM_CLASSES, x.rfm.map_or("none", RfmClass::name)));
        t.codes[CodeCol::Gender as usize]
            .push(x.gender.map_or(0, |g| position(GENDERS, g.as_str())));

        for (col, text) in [
            (TextCol::Channel, x.channel.as_ref().map(Channel::as_str)),
            (TextCol::Region, x.region.as_deref()),
        ] {
            let c = &mut t.texts[col as usize];
            let code = text.map_or(0, |s| c.names.intern(s));
            c.codes.push(code);
        }

        t.flags[FlagCol::HasLeft as usize].push(p.has_left());

        for tag in &x.tags {
            let code = t.tag_names.intern(tag) as usize;
            if self.tag_rows.len() < code {
                self.tag_rows.resize_with(code, Vec::new);
            }
            let rows = &mut self.tag_rows[code - 1];
            if rows.last() != Some(&row) {
                rows.push(row);
            }
        }

        for (kind, &n) in &p.event_counts {
            if n == 0 {
                continue;
            }
            let code = t.event_types.intern(kind) as usize;
            if t.events.len() < code {
                t.events.resize_with(code, EventCounts::default);
            }
            let e = &mut t.events[code - 1];
            e.rows.push(row);
            e.counts.push(n);
        }
    }

    pub fn finish(self) -> SegmentTable {
        let SegmentTableBuilder {
            mut table,
            tag_rows,
            ..
        } = self;
        let len = table.len;
        table.tags = tag_rows
            .into_iter()
            .map(|mut rows| {
                if rows.len() * 32 >= len {
                    let mut bits = Bitset::empty(len);
                    for r in rows {
                        bits.set(r as usize, true);
                    }
                    TagRows::Dense(bits)
                } else {
                    rows.shrink_to_fit();
                    TagRows::Sparse(rows)
                }
            })
            .collect();
        for e in &mut table.events {
            e.rows.shrink_to_fit();
            e.counts.shrink_to_fit();
        }
        table.id_bytes.shrink_to_fit();
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_count_days_from_1970() {
        for (y, m, d) in [
            (1970, 1, 1),
            (2024, 2, 29),
            (1900, 3, 1),
            (1969, 12, 31),
            (2200, 12, 31),
        ] {
            let date = Date::new(y, m, d).expect("date");
            let epoch = Date::new(1970, 1, 1).expect("date");
            assert_eq!(date_number(date), (date - epoch).get_days(), "{date}");
        }
    }

    #[test]
    fn a_bitset_negates_within_its_length_and_lists_its_rows() {
        let mut b = Bitset::from_fn(70, |i| i % 3 == 0);
        assert_eq!(b.count(), 24);
        b.negate();
        assert_eq!(b.count(), 46);
        assert!(!b.contains(69) && b.contains(68) && !b.contains(70));
        let rows: Vec<usize> = Bitset::scan(&[5, 1, 7, 9], |v| v > 4).rows().collect();
        assert_eq!(rows, [0, 2, 3]);
        assert_eq!(Bitset::full(65).count(), 65);
    }
}
