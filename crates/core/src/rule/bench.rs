//! The segment benchmark: a synthetic table of many customers, and the time typical rules
//! take to evaluate over it (`siyu bench segment`).

use std::time::{Duration, Instant};

use jiff::civil::Date;

use super::Rule;
use super::table::{CustomerExtras, SegmentTable, SegmentTableBuilder};
use crate::channel::Channel;
use crate::customer::CustomerFact;
use crate::customer::Gender;
use crate::ids::CustomerId;
use crate::lifecycle::Stage;
use crate::money::Money;
use crate::profile::{Profile, build_profiles};
use crate::rng::Rng;
use crate::segment::rfm::RfmClass;
use crate::time::TenantZone;

/// The rules the benchmark times: the examples of the rule language and a typical
/// four-condition segment.
pub const BENCH_RULES: &[&str] = &[
    r#"rfm = "important_value" and days_since_order > 20 and has_tag("outdoor")"#,
    r#"stage in ("at_risk", "lost") and spend_365d >= 500"#,
    r#"not has_tag("vip") or channel = "douyin""#,
    "joined_at >= today - 30d",
    r#"last_order_day < date("2026-01-01")"#,
    r#"count("post_like") >= 3"#,
    r#"stage in ("repeat", "vip") and spend_365d >= 500 and days_since_order > 30 and not has_tag("tea")"#,
];

/// The as-of day of the synthetic table.
pub const BENCH_AS_OF: Date = Date::constant(2026, 3, 31);

/// One rule's figures.
#[derive(Debug, Clone)]
pub struct RuleTiming {
    pub rule: String,
    pub members: usize,
    pub compile: Duration,
    /// Fastest and median evaluation over the runs.
    pub best: Duration,
    pub median: Duration,
}

#[derive(Debug, Clone)]
pub struct SegmentBench {
    pub customers: usize,
    /// Generating the customers and building the table.
    pub build: Duration,
    /// The table's memory.
    pub heap_bytes: usize,
    pub rules: Vec<RuleTiming>,
}

/// Builds a synthetic table of `customers` and evaluates each of [`BENCH_RULES`] `runs`
/// times (at least once).
pub fn bench_segments(customers: usize, seed: u64, runs: usize) -> SegmentBench {
    let started = Instant::now();
    let table = synthetic_table(customers, seed, BENCH_AS_OF);
    let build = started.elapsed();
    let rules = BENCH_RULES
        .iter()
        .map(|text| {
            let rule = Rule::parse(text).expect("the benchmark rules are valid");
            let started = Instant::now();
            let compiled = rule.compile(&table).expect("the benchmark rules compile");
            let compile = started.elapsed();
            let mut times = Vec::new();
            let mut members = 0;
            for _ in 0..runs.max(1) {
                let started = Instant::now();
                let m = compiled.evaluate();
                times.push(started.elapsed());
                members = m.count();
            }
            times.sort();
            RuleTiming {
                rule: (*text).to_owned(),
                members,
                compile,
                best: times[0],
                median: times[times.len() / 2],
            }
        })
        .collect();
    SegmentBench {
        customers,
        build,
        heap_bytes: table.heap_bytes(),
        rules,
    }
}

const TAGS: &[(&str, f64)] = &[
    ("outdoor", 0.12),
    ("parent", 0.2),
    ("tea", 0.3),
    ("coffee", 0.25),
    ("vip", 0.04),
    ("abandoned_cart", 0.08),
    ("follows_official_account", 0.5),
    ("price_sensitive", 0.15),
];
const CHANNELS: &[&str] = &[
    "douyin",
    "xiaohongshu",
    "zhihu",
    "store",
    "official_account",
    "mini_program",
    "referral",
    "live_stream",
];
const EVENTS: &[(&str, f64)] = &[
    ("view", 0.7),
    ("post_like", 0.4),
    ("post_comment", 0.1),
    ("add_to_cart", 0.25),
    ("message", 0.2),
    ("coupon_claimed", 0.15),
    ("share", 0.05),
];

/// A table of `customers` made-up customers as of `as_of`, the same for the same seed.
/// They stream into the builder; no list of profiles is held.
pub fn synthetic_table(customers: usize, seed: u64, as_of: Date) -> SegmentTable {
    let zone = TenantZone::default();
    let mut rng = Rng::new(seed);
    let channels: Vec<Channel> = CHANNELS
        .iter()
        .map(|c| Channel::parse(c).expect("a channel name"))
        .collect();
    let regions: Vec<String> = (0..34).map(|i| format!("region_{i:02}")).collect();
    let template = build_profiles(
        [CustomerFact {
            id: CustomerId::parse("template").expect("an id"),
            channel: None,
            joined_at: zone.start_of(as_of),
            referrer_id: None,
        }],
        [],
        [],
        &zone,
        None,
    )
    .pop()
    .expect("one profile");
    let day = |back: u64| {
        as_of
            .checked_sub(jiff::Span::new().days(back as i64))
            .unwrap_or(as_of)
    };
    let mut builder = SegmentTableBuilder::new(as_of, &zone);
    builder.reserve(customers);
    let mut extras = CustomerExtras::default();
    for i in 0..customers {
        let mut p: Profile = template.clone();
        p.customer_id = CustomerId::parse(&format!("c{i:08}")).expect("an id");
        let joined_back = rng.below(1_500);
        p.joined_at = zone.start_of(day(joined_back));
        if rng.chance(0.6) {
            let orders = 1 + rng.exponential(2.0) as u32;
            p.orders = orders;
            p.purchase_days = 1 + rng.below(u64::from(orders)) as u32;
            let first_back = rng.below(joined_back + 1);
            let last_back = rng.below(first_back + 1);
            p.first_purchase_day = Some(day(first_back));
            p.last_purchase_day = Some(day(last_back));
            p.first_order_at = Some(zone.start_of(day(first_back)));
            p.last_order_at = Some(zone.start_of(day(last_back)));
            p.net_spend =
                Money::from_fen((f64::from(orders) * rng.lognormal(12_000.0, 0.8)) as i64);
            p.coupon_orders = rng.below(u64::from(orders) + 1) as u32;
        }
        if rng.chance(0.7) {
            p.last_interaction_at = Some(zone.start_of(day(rng.below(200))));
        }
        p.event_counts.clear();
        for (kind, share) in EVENTS {
            if rng.chance(*share) {
                p.event_counts
                    .insert((*kind).to_owned(), 1 + rng.exponential(2.0) as u32);
            }
        }
        if rng.chance(0.05) {
            p.left_at = Some(zone.start_of(day(rng.below(100))));
        }
        if rng.chance(0.05) {
            p.referrals = 1 + rng.below(3) as u32;
            p.referral_revenue = Money::from_fen(rng.below(100_000) as i64);
        }
        extras.stage = Some(if p.orders == 0 {
            Stage::Prospect
        } else {
            Stage::ALL[1 + rng.below(5) as usize]
        });
        extras.rfm =
            (p.orders > 0).then(|| RfmClass::ALL[rng.below(RfmClass::ALL.len() as u64) as usize]);
        extras.spend_365d = Money::from_fen(p.net_spend.fen() / (1 + rng.below(3) as i64));
        extras.tags.clear();
        for (tag, share) in TAGS {
            if rng.chance(*share) {
                extras.tags.push((*tag).to_owned());
            }
        }
        extras.channel = Some(channels[rng.below(channels.len() as u64) as usize].clone());
        extras.region = rng
            .chance(0.9)
            .then(|| regions[rng.below(regions.len() as u64) as usize].clone());
        extras.gender = [Some(Gender::Female), Some(Gender::Male), None][rng.below(3) as usize];
        builder.push(&p, &extras);
    }
    builder.finish()
}
