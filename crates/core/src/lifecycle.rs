//! Lifecycle stage (prospect … lost) and journey stage (stranger … advocate) of every
//! customer as of a day, exactly as DESIGN.md defines them.

use std::collections::HashMap;

use jiff::civil::Date;
use serde::Serialize;

use crate::ids::CustomerId;
use crate::money::Money;
use crate::order::OrderStatus;
use crate::profile::{Profile, ProfileOrder};
use crate::time::TenantZone;

pub mod columns;

/// The tenant's repurchase cycle when nothing is set.
pub const DEFAULT_REPURCHASE_CYCLE_DAYS: u32 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Lost,
    AtRisk,
    Vip,
    Repeat,
    FirstPurchase,
    Prospect,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Prospect,
        Stage::FirstPurchase,
        Stage::Repeat,
        Stage::Vip,
        Stage::AtRisk,
        Stage::Lost,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Lost => "lost",
            Stage::AtRisk => "at_risk",
            Stage::Vip => "vip",
            Stage::Repeat => "repeat",
            Stage::FirstPurchase => "first_purchase",
            Stage::Prospect => "prospect",
        }
    }

    pub fn chinese(self) -> &'static str {
        match self {
            Stage::Lost => "流失",
            Stage::AtRisk => "流失预警",
            Stage::Vip => "超级用户",
            Stage::Repeat => "复购",
            Stage::FirstPurchase => "首购",
            Stage::Prospect => "潜客",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Journey {
    Stranger,
    Engaged,
    Intent,
    Customer,
    Repeat,
    Advocate,
}

impl Journey {
    pub const ALL: [Journey; 6] = [
        Journey::Stranger,
        Journey::Engaged,
        Journey::Intent,
        Journey::Customer,
        Journey::Repeat,
        Journey::Advocate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Journey::Stranger => "stranger",
            Journey::Engaged => "engaged",
            Journey::Intent => "intent",
            Journey::Customer => "customer",
            Journey::Repeat => "repeat",
            Journey::Advocate => "advocate",
        }
    }
}

/// Interactions that make a stranger engaged: liked, commented, messaged.
const ENGAGED: &[&str] = &["post_like", "post_comment", "message"];
/// Interactions that show intent: viewed a product, added to cart, claimed a coupon.
const INTENT: &[&str] = &["view", "add_to_cart", "coupon_claimed"];

/// What the stages depend on that the tenant sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LifecycleSettings {
    pub repurchase_cycle_days: u32,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        LifecycleSettings {
            repurchase_cycle_days: DEFAULT_REPURCHASE_CYCLE_DAYS,
        }
    }
}

/// One customer's stages and the figures behind them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerStage {
    pub customer_id: CustomerId,
    pub stage: Stage,
    pub journey: Journey,
    /// Whole days from the last purchase day to the as-of day.
    pub days_since_order: Option<i64>,
    pub purchase_days: u32,
    /// The repurchase cycle applied: their own mean interval with 3+ purchase days.
    pub cycle_days: f64,
    pub own_cycle: bool,
    /// Paid amount over the 365 days to the as-of day.
    pub spend_365d: Money,
}

/// Paid amount per customer over the `days` local days ending with `as_of` (D − days < d ≤ D).
pub fn spend_over_days<'a>(
    orders: impl IntoIterator<Item = &'a ProfileOrder>,
    zone: &TenantZone,
    as_of: Date,
    days: i32,
) -> HashMap<CustomerId, Money> {
    let mut spend: HashMap<CustomerId, Money> = HashMap::new();
    let start = as_of
        .checked_sub(jiff::Span::new().days(days))
        .unwrap_or(Date::MIN);
    for o in orders {
        let f = &o.fact;
        if f.status != OrderStatus::Paid {
            continue;
        }
        let day = zone.day_of(f.ordered_at);
        if day > start && day <= as_of {
            *spend.entry(f.customer_id.clone()).or_default() += f.amount;
        }
    }
    spend
}

/// The least spend over the 365 days that makes a super user: among customers with spend,
/// the first ⌈20%⌉ by that spend, everyone tied with the last of them included. `None`
/// when nobody spent.
pub fn super_user_threshold(spend_365d: impl IntoIterator<Item = Money>) -> Option<Money> {
    let mut spends: Vec<Money> = spend_365d.into_iter().filter(|m| m.fen() > 0).collect();
    if spends.is_empty() {
        return None;
    }
    let top = spends.len().div_ceil(5);
    let (_, threshold, _) = spends.select_nth_unstable_by_key(top - 1, |m| std::cmp::Reverse(*m));
    Some(*threshold)
}

/// What a customer's lifecycle stage is decided from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageFacts {
    pub purchase_days: u32,
    pub first_purchase_day: Option<Date>,
    pub last_purchase_day: Option<Date>,
    pub has_left: bool,
    pub super_user: bool,
}

/// A customer's repurchase cycle as an exact fraction `span / gaps` days, and whether it
/// is their own: the mean interval between their first and last purchase days with 3 or
/// more purchase days, else the tenant's `repurchase_cycle_days` (over 1).
pub fn repurchase_cycle(
    first_purchase_day: Option<Date>,
    last_purchase_day: Option<Date>,
    purchase_days: u32,
    tenant_cycle_days: u32,
) -> (i64, i64, bool) {
    match (first_purchase_day, last_purchase_day) {
        (Some(first), Some(last)) if purchase_days >= 3 => (
            i64::from((last - first).get_days()),
            i64::from(purchase_days) - 1,
            true,
        ),
        _ => (i64::from(tenant_cycle_days), 1, false),
    }
}

/// A customer's stage as of `as_of`, with the days since their last order and the cycle
/// applied (span / gaps days, and whether it is their own).
pub fn stage_of(
    f: StageFacts,
    as_of: Date,
    settings: LifecycleSettings,
) -> (Stage, Option<i64>, (i64, i64, bool)) {
    let days_since_order = f
        .last_purchase_day
        .map(|last| i64::from((as_of - last).get_days()));
    let (span, gaps, own_cycle) = repurchase_cycle(
        f.first_purchase_day,
        f.last_purchase_day,
        f.purchase_days,
        settings.repurchase_cycle_days,
    );
    let lost_by_time = days_since_order.is_some_and(|d| d > 90 && d * gaps > 3 * span);
    let at_risk = days_since_order.is_some_and(|d| 2 * d * gaps > 3 * span);
    let stage = if f.has_left || lost_by_time {
        Stage::Lost
    } else if at_risk {
        Stage::AtRisk
    } else if f.super_user {
        Stage::Vip
    } else {
        match f.purchase_days {
            0 => Stage::Prospect,
            1 => Stage::FirstPurchase,
            _ => Stage::Repeat,
        }
    };
    (stage, days_since_order, (span, gaps, own_cycle))
}

/// Stages of every profiled customer as of `as_of`. `profiles` must be built as of the
/// same day; `spend_365d` from [`spend_over_days`] with 365 days.
pub fn stages(
    profiles: &[Profile],
    spend_365d: &HashMap<CustomerId, Money>,
    as_of: Date,
    settings: LifecycleSettings,
) -> Vec<CustomerStage> {
    let lines: Vec<StageLine> = profiles
        .iter()
        .map(|p| {
            let mut line = StageLine::of(p);
            line.spend_365d = spend_365d.get(&p.customer_id).copied().unwrap_or_default();
            line
        })
        .collect();
    // Spend of customers outside the pool counts toward the threshold too.
    let threshold = super_user_threshold(spend_365d.values().copied());
    stages_of_lines(
        profiles.iter().map(|p| p.customer_id.clone()),
        &lines,
        threshold,
        as_of,
        settings,
    )
}

/// What a customer's lifecycle and journey stages are decided from, in a few words and
/// no heap: the reports at a million customers hold one per customer, not a [`Profile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageLine {
    pub purchase_days: u32,
    pub first_purchase_day: Option<Date>,
    pub last_purchase_day: Option<Date>,
    pub has_left: bool,
    /// Paid amount over the 365 days to the as-of day.
    pub spend_365d: Money,
    pub journey: Journey,
}

impl StageLine {
    /// The line of a profile (built as of the day), with no spend yet.
    pub fn of(p: &Profile) -> StageLine {
        StageLine {
            purchase_days: p.purchase_days,
            first_purchase_day: p.first_purchase_day,
            last_purchase_day: p.last_purchase_day,
            has_left: p.has_left(),
            spend_365d: Money::ZERO,
            journey: journey(p),
        }
    }
}

/// The lifecycle stage of one line, given the super-user threshold of all of them.
pub fn stage_of_line(
    line: &StageLine,
    threshold: Option<Money>,
    as_of: Date,
    settings: LifecycleSettings,
) -> (Stage, Option<i64>, (i64, i64, bool)) {
    let facts = StageFacts {
        purchase_days: line.purchase_days,
        first_purchase_day: line.first_purchase_day,
        last_purchase_day: line.last_purchase_day,
        has_left: line.has_left,
        super_user: threshold.is_some_and(|t| line.spend_365d >= t),
    };
    stage_of(facts, as_of, settings)
}

/// Stages of every customer as of `as_of` from their lines (`ids` in the same order),
/// `threshold` the [`super_user_threshold`] of everyone's spend over the 365 days.
pub fn stages_of_lines(
    ids: impl IntoIterator<Item = CustomerId>,
    lines: &[StageLine],
    threshold: Option<Money>,
    as_of: Date,
    settings: LifecycleSettings,
) -> Vec<CustomerStage> {
    ids.into_iter()
        .zip(lines)
        .map(|(customer_id, line)| {
            let (stage, days_since_order, (span, gaps, own_cycle)) =
                stage_of_line(line, threshold, as_of, settings);
            CustomerStage {
                customer_id,
                stage,
                journey: line.journey,
                days_since_order,
                purchase_days: line.purchase_days,
                cycle_days: span as f64 / gaps as f64,
                own_cycle,
                spend_365d: line.spend_365d,
            }
        })
        .collect()
}

/// The furthest journey stage a customer has reached.
pub fn journey(p: &Profile) -> Journey {
    let any = |kinds: &[&str]| kinds.iter().any(|k| p.count(k) > 0);
    journey_of(p.referrals > 0, p.purchase_days, any(INTENT), any(ENGAGED))
}

/// The journey stage from what it is decided by: whether anyone names the customer as
/// referrer, their purchase days, and whether they showed intent or engaged.
pub fn journey_of(
    referred_someone: bool,
    purchase_days: u32,
    intent: bool,
    engaged: bool,
) -> Journey {
    if referred_someone {
        Journey::Advocate
    } else if purchase_days >= 2 {
        Journey::Repeat
    } else if purchase_days == 1 {
        Journey::Customer
    } else if intent {
        Journey::Intent
    } else if engaged {
        Journey::Engaged
    } else {
        Journey::Stranger
    }
}

/// Whether an interaction kind shows intent.
pub fn is_intent(kind: &str) -> bool {
    INTENT.contains(&kind)
}

/// Whether an interaction kind engages.
pub fn is_engaged(kind: &str) -> bool {
    ENGAGED.contains(&kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::CustomerFact;
    use crate::order::OrderFact;
    use crate::profile::{EventFact, build_profiles};
    use crate::time::Timestamp;

    fn zone() -> TenantZone {
        TenantZone::default()
    }

    fn day(s: &str) -> Date {
        TenantZone::parse_day(s).expect("day")
    }

    struct Shop {
        customers: Vec<CustomerFact>,
        orders: Vec<ProfileOrder>,
        events: Vec<EventFact>,
    }

    impl Shop {
        fn new() -> Shop {
            Shop {
                customers: Vec::new(),
                orders: Vec::new(),
                events: Vec::new(),
            }
        }

        fn customer(&mut self, id: &str) -> &mut Self {
            self.customers.push(CustomerFact {
                id: CustomerId::parse(id).expect("id"),
                channel: None,
                joined_at: Timestamp::UNIX_EPOCH,
                referrer_id: None,
            });
            self
        }

        fn orders(&mut self, id: &str, days: &[&str], fen: i64) -> &mut Self {
            self.customer(id);
            for d in days {
                self.orders.push(ProfileOrder {
                    fact: OrderFact {
                        customer_id: CustomerId::parse(id).expect("id"),
                        ordered_at: zone().parse_timestamp(&format!("{d} 12:00:00")).expect("t"),
                        amount: Money::from_fen(fen),
                        status: OrderStatus::Paid,
                    },
                    used_coupon: false,
                });
            }
            self
        }

        fn event(&mut self, id: &str, kind: &str, at: &str) -> &mut Self {
            self.events.push(EventFact {
                customer_id: CustomerId::parse(id).expect("id"),
                kind: kind.to_owned(),
                occurred_at: zone().parse_timestamp(at).expect("t"),
            });
            self
        }

        fn stages(&self, as_of: &str, cycle: u32) -> HashMap<String, CustomerStage> {
            let as_of = day(as_of);
            let profiles = build_profiles(
                self.customers.clone(),
                self.orders.clone(),
                self.events.clone(),
                &zone(),
                Some(as_of),
            );
            let spend = spend_over_days(&self.orders, &zone(), as_of, 365);
            let settings = LifecycleSettings {
                repurchase_cycle_days: cycle,
            };
            stages(&profiles, &spend, as_of, settings)
                .into_iter()
                .map(|s| (s.customer_id.to_string(), s))
                .collect()
        }
    }

    #[test]
    fn a_customer_with_no_orders_is_a_prospect_and_one_purchase_day_a_first_purchase() {
        let mut shop = Shop::new();
        shop.customer("p")
            .orders("f", &["2024-06-01", "2024-06-01"], 100);
        // f must not be a super user: give five others bigger spend.
        for i in 0..5 {
            shop.orders(&format!("big{i}"), &["2024-06-02"], 10_000);
        }
        let s = shop.stages("2024-06-10", 30);
        assert_eq!(s["p"].stage, Stage::Prospect);
        assert_eq!(s["f"].stage, Stage::FirstPurchase);
        assert_eq!(s["f"].purchase_days, 1);
    }

    #[test]
    fn at_risk_starts_after_one_and_a_half_cycles_and_lost_after_three_or_ninety_days() {
        let mut shop = Shop::new();
        for i in 0..5 {
            shop.orders(&format!("big{i}"), &["2024-06-28"], 10_000);
        }
        shop.orders("a45", &["2024-05-17"], 1) // 45 days before 2024-07-01: not above 1.5·30
            .orders("a46", &["2024-05-16"], 1) // 46 days: at risk
            .orders("l90", &["2024-04-02"], 1) // 90 days: max(3·30, 90) = 90, not above
            .orders("l91", &["2024-04-01"], 1); // 91 days: lost
        let s = shop.stages("2024-07-01", 30);
        assert_eq!(s["a45"].stage, Stage::FirstPurchase);
        assert_eq!(s["a46"].stage, Stage::AtRisk);
        assert_eq!(s["l90"].stage, Stage::AtRisk);
        assert_eq!(s["l91"].stage, Stage::Lost);
        // A long tenant cycle moves the lost line to 3·C.
        let s = shop.stages("2024-07-01", 40);
        assert_eq!(s["l91"].stage, Stage::AtRisk);
    }

    #[test]
    fn three_purchase_days_use_the_customers_own_cycle() {
        let mut shop = Shop::new();
        for i in 0..9 {
            shop.orders(&format!("big{i}"), &["2024-06-28"], 10_000);
        }
        // Every 10 days: own cycle 10, at risk after 15 days.
        shop.orders("own", &["2024-06-01", "2024-06-11", "2024-06-21"], 1);
        let s = shop.stages("2024-07-06", 30);
        assert_eq!(
            (s["own"].days_since_order, s["own"].stage),
            (Some(15), Stage::Repeat)
        );
        assert!(s["own"].own_cycle);
        let s = shop.stages("2024-07-07", 30);
        assert_eq!(s["own"].stage, Stage::AtRisk);
    }

    #[test]
    fn a_left_event_after_the_last_order_means_lost_but_a_later_order_brings_them_back() {
        let mut shop = Shop::new();
        shop.orders("gone", &["2024-06-01"], 100)
            .event("gone", "left", "2024-06-05 10:00:00")
            .orders("back", &["2024-06-10"], 100)
            .event("back", "left", "2024-06-05 10:00:00")
            .customer("never")
            .event("never", "left", "2024-06-05 10:00:00");
        let s = shop.stages("2024-06-12", 30);
        assert_eq!(s["gone"].stage, Stage::Lost);
        assert_eq!(s["never"].stage, Stage::Lost);
        assert_ne!(s["back"].stage, Stage::Lost);
    }

    #[test]
    fn super_users_are_the_top_fifth_by_spend_with_ties_included() {
        let mut shop = Shop::new();
        // Ten spenders: the top ⌈2⌉ are 900 and 800; 800 is tied with another.
        for (i, fen) in [900, 800, 800, 700, 600, 500, 400, 300, 200, 100]
            .iter()
            .enumerate()
        {
            shop.orders(&format!("c{i}"), &["2024-06-20", "2024-06-25"], *fen);
        }
        let s = shop.stages("2024-06-30", 30);
        let vips: Vec<&str> = ["c0", "c1", "c2", "c3"]
            .into_iter()
            .filter(|c| s[*c].stage == Stage::Vip)
            .collect();
        assert_eq!(vips, ["c0", "c1", "c2"]);
        assert_eq!(s["c3"].stage, Stage::Repeat);
    }

    #[test]
    fn the_journey_is_the_furthest_stage_reached() {
        let mut shop = Shop::new();
        shop.customer("s")
            .customer("e")
            .event("e", "post_like", "2024-06-01 10:00:00")
            .customer("i")
            .event("i", "post_like", "2024-06-01 10:00:00")
            .event("i", "add_to_cart", "2024-06-02 10:00:00")
            .orders("c", &["2024-06-03"], 100)
            .orders("r", &["2024-06-03", "2024-06-04"], 100);
        shop.customers.push(CustomerFact {
            id: CustomerId::parse("invitee").expect("id"),
            channel: None,
            joined_at: Timestamp::UNIX_EPOCH,
            referrer_id: CustomerId::parse("c").ok(),
        });
        let s = shop.stages("2024-06-10", 30);
        let journeys: Vec<Journey> = ["s", "e", "i", "r", "c"]
            .iter()
            .map(|c| s[*c].journey)
            .collect();
        assert_eq!(
            journeys,
            [
                Journey::Stranger,
                Journey::Engaged,
                Journey::Intent,
                Journey::Repeat,
                Journey::Advocate
            ]
        );
    }
}
