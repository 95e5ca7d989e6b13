//! Every report against a brute-force recomputation from its definition, on small random
//! shops; and every report on an empty shop and on a shop of one customer.

use std::collections::{BTreeSet, HashMap};

use jiff::civil::Date;
use proptest::prelude::*;

use super::channels::{channels, formula_clv};
use super::cohorts::{Month, cohorts};
use super::funnel::funnel;
use super::gmv::{decompose, gmv_factors};
use super::pareto::pareto;
use super::referrals::referrals;
use super::shop::{Period, Shop};
use crate::channel::Channel;
use crate::customer::CustomerFact;
use crate::ids::CustomerId;
use crate::lifecycle::{Journey, journey};
use crate::money::Money;
use crate::order::{OrderFact, OrderStatus};
use crate::profile::{EventFact, ProfileOrder, build_profiles};
use crate::time::{TenantZone, Timestamp};

const START: Date = Date::constant(2024, 1, 1);

fn zone() -> TenantZone {
    TenantZone::default()
}

fn day(n: i64) -> Date {
    START.checked_add(jiff::Span::new().days(n)).expect("day")
}

/// Noon of day `n`, local.
fn at(n: i64) -> Timestamp {
    zone().start_of(day(n)) + jiff::SignedDuration::from_hours(12)
}

fn id(n: usize) -> CustomerId {
    CustomerId::parse(&format!("c{n:02}")).expect("id")
}

const CHANNELS: [&str; 3] = ["douyin", "store", "referral"];
const KINDS: [&str; 4] = ["post_like", "view", "share", "left"];

#[allow(clippy::type_complexity)]
fn shop_from(
    customers: &[(i64, usize, Option<usize>)],
    orders: &[(usize, i64, i64, bool)],
    events: &[(usize, usize, i64)],
) -> Shop {
    let n = customers.len();
    Shop {
        customers: customers
            .iter()
            .enumerate()
            .map(|(i, &(joined, channel, referrer))| CustomerFact {
                id: id(i),
                channel: Some(Channel::parse(CHANNELS[channel % 3]).expect("channel")),
                joined_at: at(joined),
                referrer_id: referrer.map(|r| id(r % n)).filter(|r| *r != id(i)),
            })
            .collect(),
        orders: orders
            .iter()
            .map(|&(c, d, fen, paid)| OrderFact {
                customer_id: id(c % n),
                ordered_at: at(d),
                amount: Money::from_fen(fen),
                status: if paid {
                    OrderStatus::Paid
                } else {
                    OrderStatus::Refunded
                },
            })
            .collect(),
        events: events
            .iter()
            .map(|&(c, k, d)| EventFact {
                customer_id: id(c % n),
                kind: KINDS[k % 4].into(),
                occurred_at: at(d),
            })
            .collect(),
        zone: zone(),
    }
}

fn shops() -> impl Strategy<Value = Shop> {
    (
        prop::collection::vec((0i64..700, 0usize..3, prop::option::of(0usize..10)), 1..10),
        prop::collection::vec(
            (
                0usize..10,
                0i64..800,
                1i64..50_000,
                prop::bool::weighted(0.85),
            ),
            0..40,
        ),
        prop::collection::vec((0usize..10, 0usize..4, 0i64..800), 0..15),
    )
        .prop_map(|(c, o, e)| shop_from(&c, &o, &e))
}

fn paid(shop: &Shop) -> impl Iterator<Item = &OrderFact> {
    shop.orders.iter().filter(|o| o.status == OrderStatus::Paid)
}

fn purchase_days(shop: &Shop, who: &CustomerId, through: Date) -> BTreeSet<Date> {
    paid(shop)
        .filter(|o| &o.customer_id == who)
        .map(|o| shop.zone.day_of(o.ordered_at))
        .filter(|d| *d <= through)
        .collect()
}

fn profile_orders(shop: &Shop) -> Vec<ProfileOrder> {
    shop.orders
        .iter()
        .map(|o| ProfileOrder {
            fact: o.clone(),
            used_coupon: false,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn cohorts_count_every_buyer_once_and_match_the_definition(shop in shops(), as_of in 300i64..800) {
        let as_of = day(as_of);
        let c = cohorts(&shop, as_of, 12);
        let buyers: Vec<&CustomerFact> = shop
            .customers
            .iter()
            .filter(|c| !purchase_days(&shop, &c.id, as_of).is_empty())
            .collect();
        let total: u64 = c.cohorts.iter().map(|k| k.customers).sum();
        prop_assert_eq!(total, buyers.len() as u64, "cohort counts add up to the buyers");
        prop_assert_eq!(c.repurchase.buyers, buyers.len() as u64);
        for cohort in &c.cohorts {
            let members: Vec<_> = buyers
                .iter()
                .filter(|b| Month::of(*purchase_days(&shop, &b.id, as_of).iter().next().expect("day")) == cohort.month)
                .collect();
            prop_assert_eq!(cohort.customers, members.len() as u64);
            for (k, again) in cohort.again.iter().enumerate() {
                let expected = members
                    .iter()
                    .filter(|b| purchase_days(&shop, &b.id, as_of).iter().any(|d| cohort.month.until(Month::of(*d)) == k as i32 + 1))
                    .count() as u64;
                prop_assert_eq!(*again, expected);
            }
        }
        let repeaters = buyers.iter().filter(|b| purchase_days(&shop, &b.id, as_of).len() >= 2).count() as u64;
        prop_assert_eq!(c.repurchase.repeaters, repeaters);
        let by_channel: u64 = c.by_channel.iter().map(|l| l.buyers).sum();
        prop_assert_eq!(by_channel, buyers.len() as u64);
    }

    #[test]
    fn the_funnel_counts_who_reached_each_stage(shop in shops(), as_of in 0i64..800) {
        let profiles = build_profiles(shop.customers.clone(), profile_orders(&shop), shop.events.clone(), &shop.zone, Some(day(as_of)));
        let steps = funnel(&profiles);
        for s in &steps {
            let reached = profiles.iter().filter(|p| journey(p) >= s.stage).count() as u64;
            prop_assert_eq!(s.reached, reached);
        }
        prop_assert_eq!(steps[0].stage, Journey::Stranger);
        prop_assert_eq!(steps[0].reached, profiles.len() as u64);
        let at_total: u64 = steps.iter().map(|s| s.at).sum();
        prop_assert_eq!(at_total, profiles.len() as u64);
    }

    #[test]
    fn pareto_matches_sorting_by_hand(shop in shops(), from in 0i64..400, to in 400i64..800) {
        let period = Period::new(day(from), day(to)).expect("period");
        let p = pareto(&shop, period);
        let mut spend: HashMap<&CustomerId, i64> = HashMap::new();
        for o in paid(&shop) {
            let d = shop.zone.day_of(o.ordered_at);
            if d >= period.from && d <= period.to {
                *spend.entry(&o.customer_id).or_default() += o.amount.fen();
            }
        }
        let mut values: Vec<i64> = spend.values().copied().collect();
        values.sort_unstable_by(|a, b| b.cmp(a));
        let total: i64 = values.iter().sum();
        prop_assert_eq!(p.revenue.fen(), total);
        let top = values.len().div_ceil(5);
        prop_assert_eq!(p.top_revenue.fen(), values[..top].iter().sum::<i64>());
        // The smallest k whose top-k spend reaches 80%.
        let k = (0..=values.len())
            .find(|&k| 5 * values[..k].iter().sum::<i64>() >= 4 * total)
            .unwrap_or(values.len());
        prop_assert_eq!(p.buyers_for_80, k as u64);
    }

    #[test]
    fn referral_figures_match_the_definitions(shop in shops(), as_of in 0i64..800) {
        let as_of = day(as_of);
        let r = referrals(&shop, as_of, 5);
        let end = shop.zone.start_of(as_of.tomorrow().expect("day"));
        let pool: Vec<&CustomerFact> = shop.customers.iter().filter(|c| c.joined_at < end).collect();
        prop_assert_eq!(r.customers, pool.len() as u64);
        prop_assert_eq!(r.referred, pool.iter().filter(|c| c.referrer_id.is_some()).count() as u64);
        let total: u64 = r.generations.iter().sum();
        prop_assert_eq!(total, pool.len() as u64, "every customer has one generation");
        // Brute force generations on an acyclic pool: depth by recursion.
        let ids: BTreeSet<String> = pool.iter().map(|c| c.id.to_string()).collect();
        let referrer: HashMap<String, String> = pool
            .iter()
            .filter_map(|c| Some((c.id.to_string(), c.referrer_id.as_ref()?.to_string())))
            .filter(|(_, r)| ids.contains(r))
            .collect();
        let mut depths = Some(Vec::new());
        for c in &ids {
            let (mut at, mut d, mut seen) = (c.clone(), 0usize, Vec::new());
            while let Some(r) = referrer.get(&at) {
                if seen.contains(r) {
                    depths = None;
                    break;
                }
                seen.push(r.clone());
                at = r.clone();
                d += 1;
            }
            if let Some(v) = depths.as_mut() {
                v.push(d);
            }
        }
        if let Some(depths) = depths {
            let mut counts = vec![0u64; depths.iter().max().map_or(0, |m| m + 1)];
            for d in depths {
                counts[d] += 1;
            }
            prop_assert_eq!(r.generations.clone(), counts);
        }
        if let (Some(i), Some(c), Some(k)) = (r.invites_per_customer, r.invite_conversion, r.k_factor) {
            prop_assert!((i * c - k).abs() < 1e-12);
            prop_assert!((k - r.referred as f64 / r.customers as f64).abs() < 1e-12);
        }
    }

    #[test]
    fn the_formula_clv_matches_the_definition(shop in shops(), as_of in 0i64..800) {
        let as_of = day(as_of);
        let f = formula_clv(&shop, as_of, None);
        let in_days = |o: &OrderFact, lo: i64, hi: i64| {
            let d = shop.zone.day_of(o.ordered_at);
            let back = i64::from((as_of - d).get_days());
            back >= lo && back <= hi
        };
        let recent: Vec<&OrderFact> = paid(&shop).filter(|o| in_days(o, 0, 364)).collect();
        let previous: BTreeSet<&CustomerId> = paid(&shop).filter(|o| in_days(o, 365, 729)).map(|o| &o.customer_id).collect();
        let recent_buyers: BTreeSet<&CustomerId> = recent.iter().map(|o| &o.customer_id).collect();
        prop_assert_eq!(f.orders, recent.len() as u64);
        prop_assert_eq!(f.buyers, recent_buyers.len() as u64);
        prop_assert_eq!(f.previous_buyers, previous.len() as u64);
        prop_assert_eq!(f.lapsed, previous.iter().filter(|c| !recent_buyers.contains(*c)).count() as u64);
        if let Some(clv) = f.clv {
            let gmv: i64 = recent.iter().map(|o| o.amount.fen()).sum();
            let expected = gmv as f64 / recent_buyers.len() as f64 * previous.len() as f64 / f.lapsed as f64;
            prop_assert!((clv.fen() as f64 - expected).abs() <= 1.0, "{} vs {}", clv.fen(), expected);
        }
    }

    #[test]
    fn channel_entrants_and_buyers_match_the_definition(shop in shops(), from in 0i64..400, to in 400i64..800) {
        let period = Period::new(day(from), day(to)).expect("period");
        let costs = vec![(Channel::parse("douyin").expect("c"), Month::of(day(to)), Money::from_fen(10_000))];
        let lines = channels(&shop, period, &costs, None);
        let (start, end) = (period.start(&shop.zone), period.end(&shop.zone));
        for l in &lines {
            let entrants: Vec<&CustomerFact> = shop
                .customers
                .iter()
                .filter(|c| c.channel == l.channel && c.joined_at >= start && c.joined_at < end)
                .collect();
            prop_assert_eq!(l.entrants, entrants.len() as u64);
            let buyers = entrants
                .iter()
                .filter(|c| paid(&shop).any(|o| o.customer_id == c.id && o.ordered_at < end))
                .count() as u64;
            prop_assert_eq!(l.buyers, buyers);
            let is_douyin = l.channel.as_ref().map(Channel::as_str) == Some("douyin");
            prop_assert_eq!(l.cac.is_some(), is_douyin && !entrants.is_empty());
            // The channel's formula CLV: of its customers (an order of a customer outside
            // the pool counts as of the unknown channel).
            let of_channel = |id: &CustomerId| {
                shop.customers.iter().find(|c| &c.id == id).and_then(|c| c.channel.as_ref())
                    == l.channel.as_ref()
            };
            prop_assert_eq!(&l.formula_clv, &formula_clv(&shop, period.to, Some(&of_channel)));
        }
        let total: u64 = lines.iter().map(|l| l.entrants).sum();
        let all = shop.customers.iter().filter(|c| c.joined_at >= start && c.joined_at < end).count() as u64;
        prop_assert_eq!(total, all);
    }
}

#[test]
fn every_report_works_on_an_empty_shop_and_on_one_customer() {
    let empty = shop_from(&[], &[], &[]);
    let one = shop_from(&[(0, 0, None)], &[(0, 10, 12_300, true)], &[(0, 2, 5)]);
    let period = Period::new(day(0), day(30)).expect("period");
    for shop in [empty, one] {
        let f = gmv_factors(&shop, period, None);
        let c = decompose(f, f);
        assert_eq!(c.change, Money::ZERO);
        assert!(f.product().is_none_or(|p| p.is_finite()));
        let cohort = cohorts(&shop, day(30), 12);
        assert!(cohort.repurchase.rate.is_none_or(f64::is_finite));
        let profiles = build_profiles(
            shop.customers.clone(),
            profile_orders(&shop),
            shop.events.clone(),
            &shop.zone,
            None,
        );
        for s in funnel(&profiles) {
            assert!(s.step_conversion.is_none_or(f64::is_finite));
            assert!(s.share_of_pool.is_none_or(f64::is_finite));
        }
        let p = pareto(&shop, period);
        assert!(p.top_share_of_revenue.is_none_or(f64::is_finite));
        let r = referrals(&shop, day(30), 5);
        assert!(r.k_factor.is_none_or(f64::is_finite));
        let clv = formula_clv(&shop, day(30), None);
        assert!(clv.clv.is_none(), "no previous buyers: no churn, no CLV");
        for l in channels(&shop, period, &[], None) {
            assert!(l.payback_months.is_none() && l.clv_to_cac.is_none());
        }
    }
}
