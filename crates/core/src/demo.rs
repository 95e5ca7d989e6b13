//! A deterministic demo shop (a tea brand with a WeChat private-domain pool) in the canonical
//! import formats, so siyu can be tried, shown and benchmarked without a merchant's data.
//!
//! The model: customers join over the period (growing, busier at weekends and around 618 and
//! Double 11) from source channels of different quality; buyers purchase by a heterogeneous
//! buy-till-you-die process (BG/NBD: a Gamma-distributed rate, a Beta-distributed chance of
//! dropping out after each purchase) with lognormal spend; interactions follow a decaying
//! Poisson process; referred customers are invited by earlier ones, which forms chains.

use jiff::ToSpan;
use jiff::civil::{Date, Weekday};

use crate::rng::Rng;

pub const DEFAULT_CUSTOMERS: usize = 20_000;
pub const DEFAULT_SEED: u64 = 42;
pub const DEFAULT_MONTHS: u32 = 13;

/// What shop to make: how many customers, from which seed, over the `months` ending with `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoConfig {
    pub customers: usize,
    pub seed: u64,
    /// The last day with data (in the tenant's zone); nothing happens after it.
    pub until: Date,
    pub months: u32,
}

impl DemoConfig {
    /// The default shop (20,000 customers, seed 42, 13 months) ending with the day `until`.
    pub fn new(until: Date) -> DemoConfig {
        DemoConfig {
            customers: DEFAULT_CUSTOMERS,
            seed: DEFAULT_SEED,
            until,
            months: DEFAULT_MONTHS,
        }
    }
}

/// The shop as CSV rows, fields in the order of `Kind::columns()` of each kind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DemoShop {
    /// Sorted by customer id (which is also the order of joining).
    pub customers: Vec<Vec<String>>,
    /// Sorted by time.
    pub orders: Vec<Vec<String>>,
    /// Sorted by time.
    pub events: Vec<Vec<String>>,
}

/// The same config always gives the same shop, byte for byte. The shop is held in memory
/// as strings: for tests and small shops; [`write`] streams a large one.
pub fn generate(config: &DemoConfig) -> DemoShop {
    let mut shop = DemoShop::default();
    let written = write(
        config,
        &mut shop.customers,
        &mut shop.orders,
        &mut shop.events,
    );
    match written {
        Ok(()) => shop,
        Err(never) => match never {},
    }
}

/// Where the rows of one kind go as they are made, each row as its fields.
pub trait RowSink {
    type Error;
    fn row(&mut self, fields: &[&str]) -> Result<(), Self::Error>;
}

impl RowSink for Vec<Vec<String>> {
    type Error = std::convert::Infallible;
    fn row(&mut self, fields: &[&str]) -> Result<(), Self::Error> {
        self.push(fields.iter().map(|f| (*f).to_owned()).collect());
        Ok(())
    }
}

impl<W: std::io::Write> RowSink for csv::Writer<W> {
    type Error = csv::Error;
    fn row(&mut self, fields: &[&str]) -> Result<(), Self::Error> {
        self.write_record(fields)
    }
}

/// The shop of [`generate`], row for row, handed to the sinks as it is made: the customers
/// while the shop is built, then the orders, then the events. What is held meanwhile is
/// compact (about 20 bytes an event, 60 an order, 70 a customer; at a million customers about
/// 260 MB at the peak, where the rows as strings took 4.7 GB).
pub fn write<E>(
    config: &DemoConfig,
    customers: &mut impl RowSink<Error = E>,
    orders: &mut impl RowSink<Error = E>,
    events: &mut impl RowSink<Error = E>,
) -> Result<(), E> {
    let calendar = Calendar::new(config.until, config.months);
    let mut rng = Rng::new(config.seed);
    let joins = join_times(&mut rng, &calendar, config.customers);
    let width = config.customers.to_string().len().max(6);
    let mut shop = Shop {
        calendar: &calendar,
        end: calendar.days.len() as f64,
        people: Vec::with_capacity(joins.len()),
        pool: Vec::new(),
        orders: Vec::new(),
        events: Vec::new(),
        id_width: width,
    };
    for (join, source) in joins {
        let row = shop.add_customer(&mut rng, &calendar, join, source);
        let fields: Vec<&str> = row.iter().map(String::as_str).collect();
        customers.row(&fields)?;
    }
    shop.write_rows(config.seed, orders, events)
}

// ---------------------------------------------------------------------------------------
// Channels

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Douyin,
    Xiaohongshu,
    Zhihu,
    Store,
    Referral,
    OfficialAccount,
}

const SOURCES: [Source; 6] = [
    Source::Douyin,
    Source::Xiaohongshu,
    Source::Zhihu,
    Source::Store,
    Source::Referral,
    Source::OfficialAccount,
];

/// How the customers of one source channel behave.
struct SourceModel {
    name: &'static str,
    /// Share of the joins (douyin's grows over the period, see `source_weights`).
    share: f64,
    /// Chance that a customer ever buys (before the period cuts them off).
    conversion: f64,
    /// Mean days from joining to the first purchase (for store customers who did not buy
    /// at the counter when they joined).
    first_delay: f64,
    /// Mean purchases per day while active (the mean of the Gamma-distributed rate).
    rate: f64,
    /// Mean chance of dropping out after a purchase (the mean of the Beta-distributed p).
    dropout: f64,
    /// Median of customers' typical order value, yuan.
    spend: f64,
    /// Chance of leaving the pool some time (delete or block), before the period cuts it off.
    leave: f64,
    /// Chance that an order is refunded.
    refund: f64,
    /// Multiplier of the interaction rate.
    engagement: f64,
    /// Where this channel's customers place their orders.
    orders_via: &'static [(&'static str, f64)],
}

impl Source {
    fn model(self) -> SourceModel {
        match self {
            Source::Douyin => SourceModel {
                name: "douyin",
                share: 0.35,
                conversion: 0.20,
                first_delay: 14.0,
                rate: 1.0 / 60.0,
                dropout: 0.62,
                spend: 72.0,
                leave: 0.15,
                refund: 0.075,
                engagement: 0.7,
                orders_via: &[("douyin", 0.55), ("mini_program", 0.35), ("wecom", 0.10)],
            },
            Source::Xiaohongshu => SourceModel {
                name: "xiaohongshu",
                share: 0.20,
                conversion: 0.36,
                first_delay: 10.0,
                rate: 1.0 / 45.0,
                dropout: 0.45,
                spend: 108.0,
                leave: 0.09,
                refund: 0.04,
                engagement: 1.1,
                orders_via: &[("mini_program", 0.65), ("wecom", 0.25), ("store", 0.10)],
            },
            Source::Zhihu => SourceModel {
                name: "zhihu",
                share: 0.08,
                conversion: 0.40,
                first_delay: 12.0,
                rate: 1.0 / 50.0,
                dropout: 0.40,
                spend: 158.0,
                leave: 0.07,
                refund: 0.025,
                engagement: 0.9,
                orders_via: &[("mini_program", 0.70), ("wecom", 0.25), ("store", 0.05)],
            },
            Source::Store => SourceModel {
                name: "store",
                share: 0.15,
                conversion: 0.85,
                first_delay: 7.0,
                rate: 1.0 / 28.0,
                dropout: 0.28,
                spend: 125.0,
                leave: 0.04,
                refund: 0.02,
                engagement: 1.0,
                orders_via: &[("store", 0.60), ("mini_program", 0.28), ("wecom", 0.12)],
            },
            Source::Referral => SourceModel {
                name: "referral",
                share: 0.12,
                conversion: 0.68,
                first_delay: 4.0,
                rate: 1.0 / 35.0,
                dropout: 0.33,
                spend: 115.0,
                leave: 0.04,
                refund: 0.03,
                engagement: 1.3,
                orders_via: &[("mini_program", 0.55), ("wecom", 0.30), ("store", 0.15)],
            },
            Source::OfficialAccount => SourceModel {
                name: "official_account",
                share: 0.10,
                conversion: 0.34,
                first_delay: 10.0,
                rate: 1.0 / 42.0,
                dropout: 0.40,
                spend: 105.0,
                leave: 0.07,
                refund: 0.03,
                engagement: 1.2,
                orders_via: &[("mini_program", 0.70), ("wecom", 0.20), ("store", 0.10)],
            },
        }
    }
}

/// Shape of the Gamma distribution of purchase rates: below 1, many slow buyers and a few fast.
const RATE_SHAPE: f64 = 0.9;
/// a + b of the Beta distribution of dropout chances.
const DROPOUT_CONCENTRATION: f64 = 3.0;
/// Log-scale spread of customers' typical spend around their channel's median.
const SPEND_SPREAD: f64 = 0.45;
/// Log-scale spread of one order around the customer's typical spend.
const ORDER_SPREAD: f64 = 0.35;
/// Mean interactions per day of an average customer just after joining.
const ENGAGEMENT: f64 = 0.06;
/// Days over which interest fades to its floor.
const ENGAGEMENT_FADE: f64 = 90.0;
/// Nothing of a customer's happens in the last minutes before they leave.
const MARGIN: f64 = 10.0 / 1440.0;
/// Share of store customers who join by scanning the code at the counter as they pay.
const JOINED_AT_CHECKOUT: f64 = 0.7;
/// How busy each opening hour of a store is, from 10:00 to 21:00.
const STORE_HOURS: [f64; 12] = [1.0, 1.5, 1.5, 1.2, 1.3, 1.5, 1.6, 1.8, 2.0, 2.2, 2.0, 1.2];

// ---------------------------------------------------------------------------------------
// Time

/// How busy each local hour is (WeChat and e-commerce activity: lunch and evening peaks).
const HOUR_WEIGHTS: [f64; 24] = [
    3.0, 1.5, 0.8, 0.5, 0.4, 0.5, 1.2, 2.5, 3.5, 4.0, 4.5, 5.0, 6.0, 5.5, 4.5, 4.5, 4.5, 5.0, 5.0,
    6.0, 7.5, 8.0, 7.0, 5.0,
];

/// The days of the period. Times are days since the start of the first day, as `f64`; the
/// fraction of a day is mapped onto the clock by `HOUR_WEIGHTS` (a monotone map, so order
/// is kept) when written.
struct Calendar {
    dates: Vec<Date>,
    days: Vec<String>,
    until: Date,
    /// Cumulative share of the day's activity at the start of each hour.
    hours: [f64; 25],
}

impl Calendar {
    fn new(until: Date, months: u32) -> Calendar {
        let first = until
            .saturating_add(1.day())
            .saturating_sub(i64::from(months.max(1)).months());
        let dates: Vec<Date> = first.series(1.day()).take_while(|d| *d <= until).collect();
        let days = dates.iter().map(ToString::to_string).collect();
        let total: f64 = HOUR_WEIGHTS.iter().sum();
        let mut hours = [0.0; 25];
        for h in 0..24 {
            hours[h + 1] = hours[h] + HOUR_WEIGHTS[h] / total;
        }
        hours[24] = 1.0;
        Calendar {
            dates,
            days,
            until,
            hours,
        }
    }

    /// Seconds since the start of the period, on the local clock.
    fn seconds(&self, t: f64) -> i64 {
        let last = self.days.len().saturating_sub(1);
        let day = (t.max(0.0).floor() as usize).min(last);
        let fraction = (t - day as f64).clamp(0.0, 1.0);
        let hour = self.hours[1..].partition_point(|&c| c <= fraction).min(23);
        let within = (fraction - self.hours[hour]) / (self.hours[hour + 1] - self.hours[hour]);
        let second = ((within * 3600.0) as i64).clamp(0, 3599);
        day as i64 * 86_400 + hour as i64 * 3600 + second
    }

    /// `YYYY-MM-DD HH:MM:SS` of seconds since the start of the period.
    fn format(&self, seconds: i64) -> String {
        let mut out = String::new();
        self.format_into(seconds, &mut out);
        out
    }

    fn format_into(&self, seconds: i64, out: &mut String) {
        use std::fmt::Write;
        let day = (seconds / 86_400) as usize;
        let s = seconds % 86_400;
        out.clear();
        let _ = write!(
            out,
            "{} {:02}:{:02}:{:02}",
            self.days[day],
            s / 3600,
            s % 3600 / 60,
            s % 60
        );
    }

    /// A random moment of a store's opening hours, as a fraction of the day.
    fn store_fraction(&self, rng: &mut Rng) -> f64 {
        let hour = 10 + rng.weighted(&STORE_HOURS);
        self.hours[hour] + rng.uniform() * (self.hours[hour + 1] - self.hours[hour])
    }

    /// How many more customers join on day `d` than on an ordinary day early in the period.
    fn join_weight(&self, d: usize) -> f64 {
        let date = self.dates[d];
        let growth = (1.1 * d as f64 / self.dates.len() as f64).exp();
        let weekly = match date.weekday() {
            Weekday::Saturday | Weekday::Sunday => 1.2,
            _ => 1.0,
        };
        let promotion = match (date.month(), date.day()) {
            (6, 16..=18) | (11, 9..=11) => 2.0,
            (6, 1..=15) | (11, 1..=8) => 1.2,
            _ => 1.0,
        };
        growth * weekly * promotion
    }
}

/// Join times and source channels, sorted by time: customer ids are given in this order.
/// Store customers join during opening hours.
fn join_times(rng: &mut Rng, calendar: &Calendar, n: usize) -> Vec<(f64, Source)> {
    if calendar.dates.is_empty() {
        return Vec::new();
    }
    let mut cumulative = Vec::with_capacity(calendar.dates.len());
    let mut total = 0.0;
    for d in 0..calendar.dates.len() {
        total += calendar.join_weight(d);
        cumulative.push(total);
    }
    let last = cumulative.len() - 1;
    let days = calendar.dates.len() as f64;
    let mut joins: Vec<(f64, Source)> = (0..n)
        .map(|_| {
            let target = rng.uniform() * total;
            let day = cumulative.partition_point(|&c| c <= target).min(last) as f64;
            let source = SOURCES[rng.weighted(&source_weights(day / days))];
            let within = if source == Source::Store {
                calendar.store_fraction(rng)
            } else {
                rng.uniform()
            };
            (day + within, source)
        })
        .collect();
    joins.sort_by(|a, b| a.0.total_cmp(&b.0));
    joins
}

// ---------------------------------------------------------------------------------------
// The shop as it is built

/// What later customers need to know of an earlier one.
struct Person {
    join: f64,
    /// Nothing of theirs happens at or after this (the end of the period or just before leaving).
    horizon: f64,
    first_order: Option<f64>,
    /// 1 for a customer nobody referred, their referrer's plus one otherwise.
    generation: u32,
}

/// An order, held until all are made and sorted by time.
struct Order {
    /// Seconds since the start of the period, on the local clock (`Calendar::seconds`).
    seconds: u32,
    customer: u32,
    amount: i64,
    discount: i64,
    coupon: Option<&'static str>,
    channel: &'static str,
    refunded: bool,
}

/// An event, held until all are made and sorted by time: small, as a million customers
/// make millions of them.
struct Event {
    seconds: u32,
    customer: u32,
    kind: EventKind,
    properties: Properties,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventKind {
    Left,
    Share,
    Invite,
    AddToCart,
    View,
    CouponClaimed,
    CouponRedeemed,
    Follow,
    PostLike,
    PostComment,
    Message,
    Favorite,
}

impl EventKind {
    fn name(self) -> &'static str {
        match self {
            EventKind::Left => "left",
            EventKind::Share => "share",
            EventKind::Invite => "invite",
            EventKind::AddToCart => "add_to_cart",
            EventKind::View => "view",
            EventKind::CouponClaimed => "coupon_claimed",
            EventKind::CouponRedeemed => "coupon_redeemed",
            EventKind::Follow => "follow",
            EventKind::PostLike => "post_like",
            EventKind::PostComment => "post_comment",
            EventKind::Message => "message",
            EventKind::Favorite => "favorite",
        }
    }
}

/// An event's properties, written out as JSON only when the row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Properties {
    /// `{}`
    None,
    /// `{"post_id":"pN"}`
    Post(u32),
    /// `{"product_id":…}`, an index into `PRODUCTS`.
    Product(u8),
    /// `{"topic":…}`, an index into `MESSAGE_TOPICS`.
    Topic(u8),
    /// `{"coupon_code":…}`, an index into `COUPONS`.
    Coupon(u8),
    /// `{"reason":…}`, an index into `LEAVE_REASONS`.
    Reason(u8),
    /// `{"campaign":"invite_gift"}`
    InviteGift,
}

const COUPONS: [&str; 5] = ["NEW10", "BACK20", "VIP50", "FULL30", "TEA5"];
const LEAVE_REASONS: [&str; 2] = ["deleted", "blocked"];

impl Properties {
    fn coupon(code: &str) -> Properties {
        let k = COUPONS.iter().position(|c| *c == code).unwrap_or(0);
        Properties::Coupon(k as u8)
    }

    fn write_json(self, out: &mut String) {
        use std::fmt::Write;
        out.clear();
        let _ = match self {
            Properties::None => write!(out, "{{}}"),
            Properties::Post(n) => write!(out, r#"{{"post_id":"p{n}"}}"#),
            Properties::Product(k) => {
                write!(out, r#"{{"product_id":"{}"}}"#, PRODUCTS[usize::from(k)])
            }
            Properties::Topic(k) => {
                write!(out, r#"{{"topic":"{}"}}"#, MESSAGE_TOPICS[usize::from(k)])
            }
            Properties::Coupon(k) => {
                write!(out, r#"{{"coupon_code":"{}"}}"#, COUPONS[usize::from(k)])
            }
            Properties::Reason(k) => {
                write!(out, r#"{{"reason":"{}"}}"#, LEAVE_REASONS[usize::from(k)])
            }
            Properties::InviteGift => write!(out, r#"{{"campaign":"invite_gift"}}"#),
        };
    }
}

/// A buyer's own traits.
struct Buyer {
    source: Source,
    spend: f64,
    coupon_sensitivity: f64,
}

struct Shop<'c> {
    calendar: &'c Calendar,
    end: f64,
    people: Vec<Person>,
    /// Candidate referrers, each repeated by how likely they are to invite someone.
    pool: Vec<usize>,
    orders: Vec<Order>,
    events: Vec<Event>,
    id_width: usize,
}

impl Shop<'_> {
    fn customer_id(&self, i: usize) -> String {
        format!("c{:0width$}", i + 1, width = self.id_width)
    }

    /// Adds customer `i` and what they do; returns their row.
    fn add_customer(
        &mut self,
        rng: &mut Rng,
        calendar: &Calendar,
        join: f64,
        source: Source,
    ) -> Vec<String> {
        let i = self.people.len();
        let mut source = source;
        let referrer = if source == Source::Referral {
            self.pick_referrer(rng, join)
        } else {
            None
        };
        if source == Source::Referral && referrer.is_none() {
            source = Source::OfficialAccount;
        }
        let model = source.model();
        let left = if rng.chance(model.leave) {
            Some(join + 0.02 + rng.exponential(90.0)).filter(|&t| t < self.end)
        } else {
            None
        };
        let horizon = left.map_or(self.end, |l| l - MARGIN);
        let generation = referrer.map_or(1, |r| self.people[r].generation + 1);
        self.people.push(Person {
            join,
            horizon,
            first_order: None,
            generation,
        });
        if let Some(r) = referrer {
            self.invite(rng, r, join);
        }

        let buyer = rng.chance(model.conversion);
        if buyer {
            self.purchases(rng, calendar, i, source);
        }
        let advocate = rng.chance(if referrer.is_some() { 0.3 } else { 0.1 });
        self.interactions(rng, i, source, buyer, advocate);
        if let Some(t) = left {
            let reason = if rng.chance(0.8) {
                "deleted"
            } else {
                "blocked"
            };
            self.events.push(Event {
                seconds: self.seconds(t),
                customer: i as u32,
                kind: EventKind::Left,
                properties: Properties::Reason(u8::from(reason == "blocked")),
            });
        }

        let weight = 1
            + 3 * usize::from(self.people[i].first_order.is_some())
            + 6 * usize::from(advocate)
            + 4 * usize::from(referrer.is_some());
        self.pool.extend(std::iter::repeat_n(i, weight));

        self.customer_row(rng, calendar, i, source, referrer, join)
    }

    fn seconds(&self, t: f64) -> u32 {
        // Under 2^32 for any period of less than 136 years.
        self.calendar.seconds(t) as u32
    }

    /// An earlier customer still in the pool, preferring those who have bought and those
    /// who invite (advocates and referred customers weigh more in the pool).
    fn pick_referrer(&self, rng: &mut Rng, t: f64) -> Option<usize> {
        if self.pool.is_empty() {
            return None;
        }
        let mut fallback = None;
        for _ in 0..40 {
            let c = self.pool[rng.below(self.pool.len() as u64) as usize];
            let p = &self.people[c];
            if p.join >= t - 0.02 || p.horizon <= t {
                continue;
            }
            fallback.get_or_insert(c);
            if p.first_order.is_some_and(|f| f < t) || rng.chance(0.25) {
                return Some(c);
            }
        }
        fallback
    }

    /// The referrer's invite (often after a share) before their invitee joins at `t`.
    fn invite(&mut self, rng: &mut Rng, referrer: usize, t: f64) {
        let rj = self.people[referrer].join;
        let mut invite = t - 0.01 - rng.exponential(1.5);
        if invite <= rj {
            invite = rj + (t - rj) * (0.3 + 0.6 * rng.uniform());
        }
        if rng.chance(0.6) {
            let mut share = invite - rng.exponential(2.0);
            if share <= rj {
                share = rj + (invite - rj) * (0.2 + 0.6 * rng.uniform());
            }
            let properties = post_or_product(rng, share);
            self.event(referrer, share, EventKind::Share, properties);
        }
        self.event(referrer, invite, EventKind::Invite, Properties::InviteGift);
    }

    /// The BG/NBD process: a first purchase after an exponential delay, then purchases at the
    /// customer's own rate until they drop out (chance p after each) or leave or the period ends.
    fn purchases(&mut self, rng: &mut Rng, calendar: &Calendar, i: usize, source: Source) {
        let model = source.model();
        let rate = rng.gamma(RATE_SHAPE, model.rate / RATE_SHAPE).max(1e-9);
        let dropout = rng.beta(
            DROPOUT_CONCENTRATION * model.dropout,
            DROPOUT_CONCENTRATION * (1.0 - model.dropout),
        );
        let buyer = Buyer {
            source,
            spend: rng.lognormal(model.spend, SPEND_SPREAD),
            coupon_sensitivity: rng.beta(0.7, 4.0),
        };
        let (join, horizon) = (self.people[i].join, self.people[i].horizon);
        let mut t = if source == Source::Store && rng.chance(JOINED_AT_CHECKOUT) {
            join + (2.0 + 10.0 * rng.uniform()) / 1440.0
        } else {
            join + 2.0 / 1440.0 + rng.exponential(model.first_delay)
        };
        let mut last = None;
        let mut k = 0;
        while t < horizon {
            t = self.order(rng, calendar, i, t, k, last, &buyer);
            self.people[i].first_order.get_or_insert(t);
            last = Some(t);
            k += 1;
            if rng.chance(dropout) {
                break;
            }
            t += rng.exponential(1.0 / rate).max(1.0);
        }
    }

    /// Records the `k`th order of customer `i` at about `t`, and returns its time (orders in
    /// a store move to its opening hours that day).
    #[expect(clippy::too_many_arguments, reason = "a private step of `purchases`")]
    fn order(
        &mut self,
        rng: &mut Rng,
        calendar: &Calendar,
        i: usize,
        t: f64,
        k: usize,
        last: Option<f64>,
        buyer: &Buyer,
    ) -> f64 {
        let model = buyer.source.model();
        let before =
            (rng.lognormal(buyer.spend, ORDER_SPREAD).max(19.9) * 10.0).round() as i64 * 10;
        let coupon = if rng.chance(buyer.coupon_sensitivity) {
            pick_coupon(k, last.map(|l| t - l), before)
        } else {
            None
        };
        let discount = coupon.map_or(0, |(_, d)| d);
        let mut channel = if k == 0 && buyer.source == Source::Store {
            "store"
        } else {
            let weights: Vec<f64> = model.orders_via.iter().map(|(_, w)| *w).collect();
            model.orders_via[rng.weighted(&weights)].0
        };
        let mut t = t;
        let (join, horizon) = (self.people[i].join, self.people[i].horizon);
        let at_checkout = k == 0 && buyer.source == Source::Store && t - join < 0.01;
        if channel == "store" && !at_checkout {
            let open = t.floor() + calendar.store_fraction(rng);
            if open > join + 2.0 / 1440.0 && open < horizon {
                t = open;
            } else {
                channel = "mini_program";
            }
        }
        self.orders.push(Order {
            seconds: self.seconds(t),
            customer: i as u32,
            amount: before - discount,
            discount,
            coupon: coupon.map(|(c, _)| c),
            channel,
            refunded: rng.chance(model.refund),
        });

        if channel != "store" {
            let product = product(rng);
            if rng.chance(0.35) {
                let cart = t - 0.5 / 1440.0 - rng.exponential(0.01);
                self.event(i, cart, EventKind::AddToCart, product);
                if rng.chance(0.7) {
                    let view = cart - rng.exponential(0.02);
                    self.event(i, view, EventKind::View, product);
                }
            } else if rng.chance(0.5) {
                let view = t - 1.0 / 1440.0 - rng.exponential(0.04);
                self.event(i, view, EventKind::View, product);
            }
        }
        if let Some((code, _)) = coupon {
            let mut claimed = t - rng.exponential(4.0);
            if claimed < join {
                claimed = join + (t - join) * rng.uniform();
            }
            let properties = Properties::coupon(code);
            self.event(i, claimed, EventKind::CouponClaimed, properties);
            self.event(i, t, EventKind::CouponRedeemed, properties);
        }
        t
    }

    /// Follows, and a Poisson stream of likes, comments, views, carts (abandoned), messages,
    /// shares, invites and coupon claims whose rate fades after joining.
    fn interactions(
        &mut self,
        rng: &mut Rng,
        i: usize,
        source: Source,
        buyer: bool,
        advocate: bool,
    ) {
        let model = source.model();
        let (join, horizon) = (self.people[i].join, self.people[i].horizon);
        if source == Source::OfficialAccount {
            if rng.chance(0.95) {
                self.event(i, join, EventKind::Follow, Properties::None);
            }
        } else if rng.chance(0.3) {
            let t = join + rng.exponential(20.0);
            self.event(i, t, EventKind::Follow, Properties::None);
        }

        let mean = ENGAGEMENT * model.engagement * if buyer { 1.4 } else { 1.0 };
        let rate = rng.gamma(0.8, mean / 0.8).max(1e-9);
        let weights = [
            45.0,                              // post_like
            18.0,                              // view
            8.0,                               // post_comment
            7.0,                               // message
            6.0,                               // add_to_cart
            3.0,                               // favorite
            if advocate { 15.0 } else { 3.0 }, // share
            if advocate { 3.0 } else { 0.2 },  // invite
            2.0,                               // coupon_claimed, not always redeemed
        ];
        let mut t = join;
        loop {
            t += rng.exponential(1.0 / rate);
            if t >= horizon {
                break;
            }
            let interest = 0.3 + 0.7 * (-(t - join) / ENGAGEMENT_FADE).exp();
            if !rng.chance(interest) {
                continue;
            }
            match rng.weighted(&weights) {
                0 => {
                    let post = post(rng, t);
                    self.event(i, t, EventKind::PostLike, post);
                }
                1 => {
                    let product = product(rng);
                    self.event(i, t, EventKind::View, product);
                }
                2 => {
                    let post = post(rng, t);
                    self.event(i, t, EventKind::PostComment, post);
                }
                3 => {
                    let topic = rng.below(MESSAGE_TOPICS.len() as u64) as u8;
                    self.event(i, t, EventKind::Message, Properties::Topic(topic));
                }
                4 => {
                    let product = product(rng);
                    let view = t - rng.exponential(0.01);
                    self.event(i, view, EventKind::View, product);
                    self.event(i, t, EventKind::AddToCart, product);
                }
                5 => {
                    let product = product(rng);
                    self.event(i, t, EventKind::Favorite, product);
                }
                6 => {
                    let properties = post_or_product(rng, t);
                    self.event(i, t, EventKind::Share, properties);
                }
                7 => self.event(i, t, EventKind::Invite, Properties::InviteGift),
                _ => {
                    let code = ["TEA5", "FULL30", "BACK20"][rng.below(3) as usize];
                    let properties = Properties::coupon(code);
                    self.event(i, t, EventKind::CouponClaimed, properties);
                }
            }
        }
    }

    /// Records an event if it falls within the customer's time in the pool.
    fn event(&mut self, i: usize, t: f64, kind: EventKind, properties: Properties) {
        let p = &self.people[i];
        if t >= p.join && t < p.horizon {
            self.events.push(Event {
                seconds: self.seconds(t),
                customer: i as u32,
                kind,
                properties,
            });
        }
    }

    fn customer_row(
        &self,
        rng: &mut Rng,
        calendar: &Calendar,
        i: usize,
        source: Source,
        referrer: Option<usize>,
        join: f64,
    ) -> Vec<String> {
        let gender = match rng.weighted(&[0.62, 0.36, 0.02]) {
            0 => "female",
            1 => "male",
            _ => "",
        };
        let age = (33.0 + 9.0 * rng.normal()).clamp(18.0, 60.0) as i64;
        let birthday = if rng.chance(0.85) {
            calendar
                .until
                .saturating_sub(age.years())
                .saturating_sub((rng.below(365) as i64).days())
                .to_string()
        } else {
            String::new()
        };
        let region = if rng.chance(0.92) {
            let weights: Vec<f64> = REGIONS.iter().map(|(_, w)| *w).collect();
            REGIONS[rng.weighted(&weights)].0.to_owned()
        } else {
            String::new()
        };
        let mut tags = Vec::new();
        let tea_lover = match source {
            Source::Store | Source::Zhihu => 0.15,
            _ => 0.07,
        };
        for (tag, chance) in [
            ("tea_lover", tea_lover),
            (
                "office_worker",
                if (23..=45).contains(&age) { 0.12 } else { 0.02 },
            ),
            ("parent", if (28..=50).contains(&age) { 0.1 } else { 0.01 }),
            ("outdoor", 0.05),
            ("gift_buyer", 0.04),
            ("student", if age < 23 { 0.2 } else { 0.0 }),
        ] {
            if rng.chance(chance) {
                tags.push(tag);
            }
        }
        let join_seconds = calendar.seconds(join);
        vec![
            self.customer_id(i),
            name(rng, gender),
            phone(rng),
            gender.to_owned(),
            birthday,
            region,
            source.model().name.to_owned(),
            referrer.map(|r| self.customer_id(r)).unwrap_or_default(),
            calendar.format(join_seconds),
            tags.join(";"),
        ]
    }

    /// Sorts the orders and the events by time (then customer, then the order they were
    /// made in) and hands them to the sinks, numbered in that order.
    fn write_rows<E>(
        self,
        seed: u64,
        order_rows: &mut impl RowSink<Error = E>,
        event_rows: &mut impl RowSink<Error = E>,
    ) -> Result<(), E> {
        let Shop {
            calendar,
            people,
            pool,
            mut orders,
            mut events,
            id_width,
            ..
        } = self;
        drop((people, pool));
        let customer_id = |i: u32, out: &mut String| {
            use std::fmt::Write;
            out.clear();
            let _ = write!(out, "c{:0width$}", i + 1, width = id_width);
        };
        let (mut id, mut at, mut amount, mut discount) =
            (String::new(), String::new(), String::new(), String::new());

        orders.sort_by_key(|o| (o.seconds, o.customer));
        let offset = Rng::new(seed).next_u64();
        for (n, o) in orders.iter().enumerate() {
            customer_id(o.customer, &mut id);
            calendar.format_into(i64::from(o.seconds), &mut at);
            yuan_into(o.amount, &mut amount);
            discount.clear();
            if o.discount > 0 {
                yuan_into(o.discount, &mut discount);
            }
            order_rows.row(&[
                &order_number(n as u64, offset),
                &id,
                &at,
                &amount,
                &discount,
                o.coupon.unwrap_or_default(),
                o.channel,
                if o.refunded { "refunded" } else { "paid" },
            ])?;
        }
        drop(orders);

        events.sort_by_key(|e| (e.seconds, e.customer));
        let width = events.len().to_string().len().max(7);
        let (mut number, mut properties) = (String::new(), String::new());
        for (n, e) in events.iter().enumerate() {
            {
                use std::fmt::Write;
                number.clear();
                let _ = write!(number, "e{:0width$}", n + 1);
            }
            customer_id(e.customer, &mut id);
            calendar.format_into(i64::from(e.seconds), &mut at);
            e.properties.write_json(&mut properties);
            event_rows.row(&[&number, &id, e.kind.name(), &at, &properties])?;
        }
        Ok(())
    }
}

/// Join weights of the source channels at `x` (0 to 1) through the period: douyin grows.
fn source_weights(x: f64) -> [f64; 6] {
    let mut weights = SOURCES.map(|s| s.model().share);
    weights[Source::Douyin as usize] *= 0.7 + 0.6 * x;
    weights
}

/// The coupon an order used, by the situation: a welcome coupon on the first order, a
/// win-back coupon after a long gap, threshold coupons on large baskets.
fn pick_coupon(k: usize, gap: Option<f64>, before: i64) -> Option<(&'static str, i64)> {
    if k == 0 && before >= 3_900 {
        Some(("NEW10", 1_000))
    } else if gap.is_some_and(|g| g > 60.0) && before >= 9_900 {
        Some(("BACK20", 2_000))
    } else if before >= 39_900 {
        Some(("VIP50", 5_000))
    } else if before >= 19_900 {
        Some(("FULL30", 3_000))
    } else if before >= 2_900 {
        Some(("TEA5", 500))
    } else {
        None
    }
}

/// A 19-digit order number, distinct for each `n` (a bijection of 59-bit numbers).
fn order_number(n: u64, offset: u64) -> String {
    const MASK: u64 = (1 << 59) - 1;
    let mut x = n.wrapping_add(offset) & MASK;
    x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15) & MASK;
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9) & MASK;
    x ^= x >> 31;
    (3_000_000_000_000_000_000 + x).to_string()
}

fn yuan_into(fen: i64, out: &mut String) {
    use std::fmt::Write;
    out.clear();
    let _ = write!(out, "{}.{:02}", fen / 100, fen % 100);
}

// ---------------------------------------------------------------------------------------
// Content

const PRODUCTS: [&str; 12] = [
    "longjing_250g",
    "biluochun_250g",
    "tieguanyin_500g",
    "dahongpao_gift_box",
    "puer_cake_357g",
    "white_peony_200g",
    "jasmine_pearl_100g",
    "keemun_black_250g",
    "cold_brew_pack",
    "oolong_sampler",
    "gaiwan_set",
    "travel_tea_set",
];

const MESSAGE_TOPICS: [&str; 5] = [
    "product_question",
    "brewing_tips",
    "order_status",
    "after_sales",
    "gift_advice",
];

fn product(rng: &mut Rng) -> Properties {
    // The first products sell best.
    let weights: [f64; PRODUCTS.len()] = std::array::from_fn(|k| 1.0 / (k as f64 + 2.0));
    Properties::Product(rng.weighted(&weights) as u8)
}

/// One of the three Moments posts of the day of `t` (p1, p2, … through the period).
fn post(rng: &mut Rng, t: f64) -> Properties {
    let day = t.max(0.0).floor() as u64;
    Properties::Post((day * 3 + rng.below(3) + 1) as u32)
}

fn post_or_product(rng: &mut Rng, t: f64) -> Properties {
    if rng.chance(0.6) {
        post(rng, t)
    } else {
        product(rng)
    }
}

// ---------------------------------------------------------------------------------------
// People

/// Common surnames, weighted roughly by frequency.
const SURNAMES: &[(&str, f64)] = &[
    ("王", 7.1),
    ("李", 7.0),
    ("张", 6.7),
    ("刘", 5.4),
    ("陈", 4.5),
    ("杨", 3.1),
    ("黄", 2.2),
    ("赵", 2.0),
    ("吴", 2.0),
    ("周", 1.9),
    ("徐", 1.5),
    ("孙", 1.5),
    ("马", 1.2),
    ("朱", 1.2),
    ("胡", 1.1),
    ("郭", 1.1),
    ("何", 1.0),
    ("林", 1.0),
    ("罗", 0.9),
    ("高", 0.9),
    ("郑", 0.8),
    ("梁", 0.7),
    ("谢", 0.6),
    ("宋", 0.5),
    ("唐", 0.5),
    ("许", 0.5),
    ("韩", 0.5),
    ("冯", 0.4),
    ("邓", 0.4),
    ("曹", 0.4),
    ("彭", 0.4),
    ("曾", 0.4),
    ("肖", 0.4),
    ("田", 0.3),
    ("董", 0.3),
    ("袁", 0.3),
    ("潘", 0.3),
    ("蒋", 0.3),
    ("蔡", 0.3),
    ("余", 0.3),
    ("杜", 0.3),
    ("叶", 0.3),
    ("程", 0.3),
    ("苏", 0.3),
    ("魏", 0.3),
    ("吕", 0.3),
    ("丁", 0.3),
    ("沈", 0.3),
    ("任", 0.2),
    ("姚", 0.2),
    ("卢", 0.2),
    ("钟", 0.2),
];

const FEMALE_GIVEN: &[&str] = &[
    "婷", "雪", "静", "丽", "敏", "燕", "娜", "芳", "颖", "倩", "琳", "欣", "怡", "佳", "雨", "涵",
    "晓", "梦", "慧", "玲", "萍", "悦", "思", "诗", "雅", "琪", "月", "彤", "妍", "璐", "洁", "瑶",
];

const MALE_GIVEN: &[&str] = &[
    "伟", "强", "磊", "军", "洋", "勇", "杰", "涛", "斌", "超", "明", "刚", "辉", "鹏", "华", "飞",
    "鑫", "波", "宇", "浩", "凯", "健", "俊", "帆", "旭", "宁", "龙", "峰", "博", "文", "阳", "泽",
];

const NEUTRAL_GIVEN: &[&str] = &[
    "子", "一", "安", "天", "嘉", "可", "乐", "心", "晨", "文", "若", "清",
];

/// Province and city as WeChat profiles show them, weighted towards the tea brand's markets.
const REGIONS: &[(&str, f64)] = &[
    ("浙江 杭州", 9.0),
    ("浙江 宁波", 3.0),
    ("浙江 温州", 2.0),
    ("上海 浦东", 5.0),
    ("上海 徐汇", 3.0),
    ("上海 闵行", 2.0),
    ("北京 朝阳", 4.0),
    ("北京 海淀", 3.0),
    ("广东 深圳", 6.0),
    ("广东 广州", 6.0),
    ("广东 东莞", 2.0),
    ("江苏 南京", 3.0),
    ("江苏 苏州", 4.0),
    ("福建 福州", 3.0),
    ("福建 厦门", 3.0),
    ("福建 泉州", 2.0),
    ("四川 成都", 4.0),
    ("湖北 武汉", 3.0),
    ("湖南 长沙", 2.0),
    ("山东 青岛", 2.0),
    ("山东 济南", 2.0),
    ("河南 郑州", 2.0),
    ("陕西 西安", 2.0),
    ("重庆 渝中", 2.0),
    ("天津 南开", 1.0),
    ("安徽 合肥", 2.0),
    ("江西 南昌", 1.0),
    ("云南 昆明", 2.0),
    ("广西 南宁", 1.0),
    ("辽宁 沈阳", 1.0),
    ("河北 石家庄", 1.0),
    ("黑龙江 哈尔滨", 1.0),
    ("贵州 贵阳", 1.0),
    ("海南 海口", 1.0),
];

fn name(rng: &mut Rng, gender: &str) -> String {
    let weights: Vec<f64> = SURNAMES.iter().map(|(_, w)| *w).collect();
    let mut name = SURNAMES[rng.weighted(&weights)].0.to_owned();
    let given = match gender {
        "female" => FEMALE_GIVEN,
        "male" => MALE_GIVEN,
        _ => NEUTRAL_GIVEN,
    };
    let length = if rng.chance(0.7) { 2 } else { 1 };
    for _ in 0..length {
        name.push_str(given[rng.below(given.len() as u64) as usize]);
    }
    name
}

/// An 11-digit mobile number of the 13x, 15x or 18x ranges.
fn phone(rng: &mut Rng) -> String {
    const PREFIXES: [u64; 3] = [13, 15, 18];
    let prefix = PREFIXES[rng.below(3) as usize];
    let third = rng.below(10);
    format!("{prefix}{third}{:08}", rng.below(100_000_000))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::OnceLock;

    use super::*;
    use crate::import::{Columns, Kind, Record, parse_customer, parse_event, parse_order};
    use crate::time::TenantZone;

    fn until() -> Date {
        Date::constant(2026, 10, 31)
    }

    fn small(seed: u64) -> DemoShop {
        generate(&DemoConfig {
            customers: 1_500,
            seed,
            until: until(),
            months: DEFAULT_MONTHS,
        })
    }

    fn big() -> &'static DemoShop {
        static SHOP: OnceLock<DemoShop> = OnceLock::new();
        SHOP.get_or_init(|| generate(&DemoConfig::new(until())))
    }

    fn columns(kind: Kind) -> Columns {
        let header: Vec<String> = kind.columns().iter().map(|c| (*c).to_owned()).collect();
        Columns::from_header(kind, &header, false).expect("the canonical header")
    }

    fn record(line: u64, row: &[String]) -> Record {
        let fields: Vec<&str> = row.iter().map(String::as_str).collect();
        Record {
            line,
            fields: csv::ByteRecord::from(fields),
        }
    }

    #[test]
    fn the_same_seed_gives_byte_identical_shops_and_another_seed_another_shop() {
        let a = small(7);
        assert_eq!(a, small(7));
        assert_ne!(a, small(8));
    }

    /// FNV-1a, 64 bits.
    fn fnv(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    #[test]
    fn the_streamed_csv_files_are_byte_for_byte_those_of_the_shop_held_in_memory() {
        // The digest of the three files (customers, orders, events, each with its header)
        // as `siyu demo --customers 1500 --seed 7 --until 2026-10-31 --out DIR` wrote them
        // when the whole shop was generated as strings first.
        let config = DemoConfig {
            customers: 1_500,
            seed: 7,
            until: until(),
            months: DEFAULT_MONTHS,
        };
        let writer = |kind: Kind| {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(kind.columns()).expect("header");
            w
        };
        let mut customers = writer(Kind::Customers);
        let mut orders = writer(Kind::Orders);
        let mut events = writer(Kind::Events);
        write(&config, &mut customers, &mut orders, &mut events).expect("written");
        let mut bytes = Vec::new();
        for w in [customers, orders, events] {
            bytes.extend(w.into_inner().expect("flushed"));
        }
        assert_eq!(
            (bytes.len(), fnv(&bytes)),
            (1_114_109, 0x6358_4adf_5409_2b7d)
        );
    }

    #[test]
    fn every_row_is_accepted_by_the_importer() {
        let shop = small(1);
        let zone = TenantZone::default();
        let cols = columns(Kind::Customers);
        for (n, row) in shop.customers.iter().enumerate() {
            parse_customer(&cols, &record(n as u64 + 2, row), &zone)
                .unwrap_or_else(|p| panic!("customer {row:?}: {p:?}"));
        }
        let cols = columns(Kind::Orders);
        for (n, row) in shop.orders.iter().enumerate() {
            parse_order(&cols, &record(n as u64 + 2, row), &zone)
                .unwrap_or_else(|p| panic!("order {row:?}: {p:?}"));
        }
        let cols = columns(Kind::Events);
        for (n, row) in shop.events.iter().enumerate() {
            parse_event(&cols, &record(n as u64 + 2, row), &zone)
                .unwrap_or_else(|p| panic!("event {row:?}: {p:?}"));
        }
    }

    #[test]
    fn ids_are_unique_and_rows_are_sorted() {
        let shop = small(2);
        let mut ids: Vec<&str> = shop.orders.iter().map(|r| r[0].as_str()).collect();
        assert!(
            ids.iter()
                .all(|id| id.len() == 19 && id.bytes().all(|b| b.is_ascii_digit()))
        );
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), shop.orders.len());
        let mut ids: Vec<&str> = shop.events.iter().map(|r| r[0].as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), shop.events.len());
        assert!(shop.customers.windows(2).all(|w| w[0][0] < w[1][0]));
        assert!(shop.orders.windows(2).all(|w| w[0][2] <= w[1][2]));
        assert!(shop.events.windows(2).all(|w| w[0][3] <= w[1][3]));
    }

    #[test]
    fn nothing_happens_before_joining_after_leaving_or_after_until() {
        let shop = small(3);
        let end = format!("{} 23:59:59", until());
        let first = "2025-10-01 00:00:00";
        let joined: HashMap<&str, &str> = shop
            .customers
            .iter()
            .map(|r| (r[0].as_str(), r[8].as_str()))
            .collect();
        let left: HashMap<&str, &str> = shop
            .events
            .iter()
            .filter(|r| r[2] == "left")
            .map(|r| (r[1].as_str(), r[3].as_str()))
            .collect();
        assert!(!left.is_empty());
        for at in joined.values() {
            assert!(*at >= first && *at <= end.as_str(), "joined {at}");
        }
        let happenings = shop
            .orders
            .iter()
            .map(|r| (r[1].as_str(), r[2].as_str(), "order"))
            .chain(
                shop.events
                    .iter()
                    .map(|r| (r[1].as_str(), r[3].as_str(), r[2].as_str())),
            );
        for (customer, at, what) in happenings {
            assert!(at <= end.as_str(), "{what} of {customer} at {at}");
            assert!(
                at >= joined[customer],
                "{what} of {customer} at {at} before joining"
            );
            if let Some(l) = left.get(customer) {
                assert!(
                    at < *l || (what == "left" && at == *l),
                    "{what} of {customer} at {at} after leaving at {l}"
                );
            }
        }
    }

    #[test]
    fn no_customers_make_an_empty_shop() {
        let shop = generate(&DemoConfig {
            customers: 0,
            ..DemoConfig::new(until())
        });
        assert_eq!(shop, DemoShop::default());
    }

    struct Figures {
        conversion: HashMap<String, f64>,
        buyers: usize,
        repeat_share: f64,
        refunds: usize,
        coupons: usize,
        left_share: f64,
        events_per_customer: f64,
        max_generation: u32,
    }

    /// 1 for a customer nobody referred, one more for each referrer up the chain.
    fn generation<'a>(referrer: &HashMap<&'a str, &'a str>, mut c: &'a str) -> u32 {
        let mut g = 1;
        while let Some(r) = referrer.get(c) {
            g += 1;
            c = r;
        }
        g
    }

    fn figures(shop: &DemoShop) -> Figures {
        let mut paid: HashMap<&str, usize> = HashMap::new();
        for r in shop.orders.iter().filter(|r| r[7] == "paid") {
            *paid.entry(r[1].as_str()).or_default() += 1;
        }
        let mut by_channel: HashMap<String, (usize, usize)> = HashMap::new();
        for r in &shop.customers {
            let e = by_channel.entry(r[6].clone()).or_default();
            e.0 += 1;
            e.1 += usize::from(paid.contains_key(r[0].as_str()));
        }
        let referrer: HashMap<&str, &str> = shop
            .customers
            .iter()
            .filter(|r| !r[7].is_empty())
            .map(|r| (r[0].as_str(), r[7].as_str()))
            .collect();
        let n = shop.customers.len() as f64;
        Figures {
            conversion: by_channel
                .into_iter()
                .map(|(c, (all, buyers))| (c, buyers as f64 / all as f64))
                .collect(),
            buyers: paid.len(),
            repeat_share: paid.values().filter(|&&k| k >= 2).count() as f64 / paid.len() as f64,
            refunds: shop.orders.iter().filter(|r| r[7] == "refunded").count(),
            coupons: shop.orders.iter().filter(|r| !r[5].is_empty()).count(),
            left_share: shop.events.iter().filter(|r| r[2] == "left").count() as f64 / n,
            events_per_customer: shop.events.len() as f64 / n,
            max_generation: referrer
                .keys()
                .map(|c| generation(&referrer, c))
                .max()
                .unwrap_or(1),
        }
    }

    #[test]
    fn channels_differ_in_quality_and_buyers_repeat() {
        let f = figures(big());
        let conversion = |c: &str| f.conversion[c];
        assert!(
            conversion("store") > 2.0 * conversion("douyin"),
            "{:?}",
            f.conversion
        );
        assert!(
            conversion("referral") > 2.0 * conversion("douyin"),
            "{:?}",
            f.conversion
        );
        assert!(f.buyers > 4_000, "{} buyers", f.buyers);
        assert!(
            (0.2..=0.5).contains(&f.repeat_share),
            "repeat {}",
            f.repeat_share
        );
        assert!(f.refunds > 0 && f.coupons > 0);
        assert!(
            (0.05..=0.11).contains(&f.left_share),
            "left {}",
            f.left_share
        );
        assert!(
            (5.0..=10.0).contains(&f.events_per_customer),
            "{}",
            f.events_per_customer
        );
    }

    #[test]
    fn referral_chains_are_deep_and_point_back_in_time_to_an_inviter() {
        let shop = big();
        assert!(figures(shop).max_generation >= 3);
        let joined: HashMap<&str, &str> = shop
            .customers
            .iter()
            .map(|r| (r[0].as_str(), r[8].as_str()))
            .collect();
        let mut invites: HashMap<&str, Vec<&str>> = HashMap::new();
        for r in shop.events.iter().filter(|r| r[2] == "invite") {
            invites
                .entry(r[1].as_str())
                .or_default()
                .push(r[3].as_str());
        }
        let referred: Vec<&Vec<String>> =
            shop.customers.iter().filter(|r| !r[7].is_empty()).collect();
        assert!(referred.len() > 1_000);
        for r in referred {
            let (at, referrer) = (r[8].as_str(), r[7].as_str());
            assert!(
                joined[referrer] <= at,
                "{} referred by a later {referrer}",
                r[0]
            );
            assert!(
                invites
                    .get(referrer)
                    .is_some_and(|t| t.iter().any(|t| *t <= at)),
                "{referrer} never invited before {} joined",
                r[0]
            );
        }
    }
}
