//! The whole pool as of a day, as segment rules see it: every customer's profile with
//! their lifecycle stage (the tenant's VIP rule included), RFM class, spend over the last
//! 365 days, tags and attributes, in one [`SegmentTable`].

use std::collections::HashMap;

use jiff::civil::Date;

use crate::channel::Channel;
use crate::customer::Gender;
use crate::ids::CustomerId;
use crate::lifecycle::{CustomerStage, LifecycleSettings, Stage, stages};
use crate::money::Money;
use crate::profile::Profile;
use crate::rule::{CustomerExtras, Field, Rule, RuleError, SegmentTable, SegmentTableBuilder};
use crate::segment::rfm::{RfmClass, RfmWindow, Tally, date_number, score};
use crate::time::TenantZone;

/// What a customer is beside their profile: the static attributes rules compare.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub channel: Option<Channel>,
    pub region: Option<String>,
    pub gender: Option<Gender>,
}

/// The pool as of a day: the table rules run over, and the stage and RFM class of each
/// row (row `i` is the `i`-th profile given).
#[derive(Debug)]
pub struct Pool {
    pub table: SegmentTable,
    pub stages: Vec<CustomerStage>,
    pub rfm: Vec<Option<RfmClass>>,
}

/// Why a VIP rule cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VipRuleError {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("a VIP rule decides the stage, so it cannot compare `stage` itself")]
    UsesStage,
}

/// Checks a tenant's VIP rule: it must read, and must not depend on the stage it decides.
pub fn check_vip_rule(text: &str) -> Result<Rule, VipRuleError> {
    let rule = Rule::parse(text)?;
    if rule.fields().contains(&Field::Stage) {
        return Err(VipRuleError::UsesStage);
    }
    Ok(rule)
}

/// The RFM class of every customer with a paid order up to `as_of` (window: all history),
/// from profiles built as of that day. By customer id.
pub fn rfm_classes(profiles: &[Profile], as_of: Date) -> HashMap<CustomerId, RfmClass> {
    let tallies = profiles.iter().filter(|p| p.orders > 0).filter_map(|p| {
        let last = p.last_purchase_day?;
        let tally = Tally {
            last_day: date_number(last),
            orders: p.orders,
            fen: p.net_spend.fen(),
        };
        Some((p.customer_id.clone(), tally))
    });
    score(RfmWindow::new(as_of, None), tallies.collect::<Vec<_>>())
        .customers
        .into_iter()
        .map(|c| (c.customer_id, c.class))
        .collect()
}

/// The stages of `profiles` (built as of `as_of`) with the tenant's VIP rule applied: a
/// customer the rule selects is `vip` unless lost or at risk (the stages above it).
/// `table` must hold the same customers in the same order.
pub fn apply_vip_rule(
    customers: &mut [CustomerStage],
    table: &mut SegmentTable,
    vip_rule: &Rule,
) -> Result<(), RuleError> {
    let selected = vip_rule.members(table)?;
    for row in selected.rows() {
        let c = &mut customers[row];
        if matches!(
            c.stage,
            Stage::Prospect | Stage::FirstPurchase | Stage::Repeat
        ) {
            c.stage = Stage::Vip;
            table.set_stage(row, Stage::Vip);
        }
    }
    Ok(())
}

/// Builds the pool as of `as_of`. `profiles` must be built as of that day and sorted by
/// customer id; `attributes` and `tags` are by customer (missing ones are unknown / none);
/// `spend_365d` is the paid amount over the 365 days to `as_of`.
#[allow(clippy::too_many_arguments)]
pub fn build_pool(
    profiles: &[Profile],
    attributes: &HashMap<CustomerId, Attributes>,
    tags: &HashMap<CustomerId, Vec<String>>,
    spend_365d: &HashMap<CustomerId, Money>,
    as_of: Date,
    zone: &TenantZone,
    settings: LifecycleSettings,
    vip_rule: Option<&Rule>,
) -> Result<Pool, RuleError> {
    let mut customer_stages = stages(profiles, spend_365d, as_of, settings);
    let classes = rfm_classes(profiles, as_of);
    let rfm: Vec<Option<RfmClass>> = profiles
        .iter()
        .map(|p| classes.get(&p.customer_id).copied())
        .collect();
    let none = Attributes::default();
    let mut builder = SegmentTableBuilder::new(as_of, zone);
    builder.reserve(profiles.len());
    for (i, p) in profiles.iter().enumerate() {
        let a = attributes.get(&p.customer_id).unwrap_or(&none);
        let s = &customer_stages[i];
        builder.push(
            p,
            &CustomerExtras {
                stage: Some(s.stage),
                journey: Some(s.journey),
                rfm: rfm[i],
                spend_365d: s.spend_365d,
                tags: tags.get(&p.customer_id).cloned().unwrap_or_default(),
                channel: a.channel.clone(),
                region: a.region.clone(),
                gender: a.gender,
            },
        );
    }
    let mut table = builder.finish();
    if let Some(rule) = vip_rule {
        apply_vip_rule(&mut customer_stages, &mut table, rule)?;
    }
    Ok(Pool {
        table,
        stages: customer_stages,
        rfm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customer::CustomerFact;
    use crate::lifecycle::spend_over_days;
    use crate::order::{OrderFact, OrderStatus};
    use crate::profile::{ProfileOrder, build_profiles};
    use crate::time::Timestamp;

    fn id(s: &str) -> CustomerId {
        CustomerId::parse(s).expect("id")
    }

    /// `cN` for N < 10 bought on N days (c0 never) a week apart, ¥100 each, the last on the
    /// as-of day; c10 bought once, 200 days before (lost).
    fn shop(as_of: Date) -> (Vec<Profile>, HashMap<CustomerId, Money>, Vec<OrderFact>) {
        let zone = TenantZone::default();
        let customers = (0..11).map(|n| CustomerFact {
            id: id(&format!("c{n}")),
            channel: None,
            joined_at: Timestamp::UNIX_EPOCH,
            referrer_id: None,
        });
        let mut orders = Vec::new();
        for n in 0..11i64 {
            let days: Vec<i64> = match n {
                10 => vec![200],
                n => (0..n).map(|k| 7 * k).collect(),
            };
            for back in days {
                let day = as_of
                    .checked_sub(jiff::Span::new().days(back))
                    .expect("day");
                orders.push(ProfileOrder {
                    fact: OrderFact {
                        customer_id: id(&format!("c{n}")),
                        ordered_at: zone.start_of(day),
                        amount: Money::from_fen(10_000),
                        status: OrderStatus::Paid,
                    },
                    used_coupon: false,
                });
            }
        }
        let spend = spend_over_days(&orders, &zone, as_of, 365);
        let facts = orders.iter().map(|o| o.fact.clone()).collect();
        let profiles = build_profiles(customers, orders, Vec::new(), &zone, Some(as_of));
        (profiles, spend, facts)
    }

    #[test]
    fn the_vip_rule_adds_vips_beside_the_top_fifth_but_never_rescues_the_lost() {
        let as_of = Date::constant(2026, 6, 30);
        let (profiles, spend, _) = shop(as_of);
        let mut attributes = HashMap::new();
        attributes.insert(
            id("c3"),
            Attributes {
                channel: Some(Channel::parse("store").expect("channel")),
                ..Attributes::default()
            },
        );
        let build = |rule: Option<&Rule>| {
            build_pool(
                &profiles,
                &attributes,
                &HashMap::new(),
                &spend,
                as_of,
                &TenantZone::default(),
                LifecycleSettings::default(),
                rule,
            )
            .expect("pool")
        };
        let vips = |pool: &Pool| -> Vec<String> {
            pool.stages
                .iter()
                .filter(|s| s.stage == Stage::Vip)
                .map(|s| s.customer_id.to_string())
                .collect()
        };
        // Ten spenders: the top ⌈2⌉ by spend are the super users.
        assert_eq!(vips(&build(None)), ["c8", "c9"]);
        let rule = check_vip_rule(r#"channel = "store" or purchase_days >= 7"#).expect("rule");
        let pool = build(Some(&rule));
        assert_eq!(vips(&pool), ["c3", "c7", "c8", "c9"]);
        // The table the segments read agrees.
        let in_table = Rule::parse(r#"stage = "vip""#)
            .expect("rule")
            .members(&pool.table)
            .expect("members")
            .count();
        assert_eq!(in_table, 4);
        // A prospect can be vip by rule; a lost customer stays lost.
        let rule = check_vip_rule("orders <= 1").expect("rule");
        let pool = build(Some(&rule));
        assert_eq!(vips(&pool), ["c0", "c1", "c8", "c9"]);
        assert_eq!(pool.stages[2].customer_id.as_str(), "c10");
        assert_eq!(pool.stages[2].stage, Stage::Lost);
        assert_eq!(
            check_vip_rule(r#"stage = "repeat""#),
            Err(VipRuleError::UsesStage)
        );
    }

    #[test]
    fn rfm_classes_from_profiles_match_rfm_from_orders() {
        let as_of = Date::constant(2026, 6, 30);
        let (profiles, _, orders) = shop(as_of);
        let classes = rfm_classes(&profiles, as_of);
        let from_orders =
            crate::segment::rfm::rfm(orders, &TenantZone::default(), RfmWindow::new(as_of, None));
        assert_eq!(from_orders.customers.len(), classes.len());
        for c in &from_orders.customers {
            assert_eq!(classes[&c.customer_id], c.class, "{}", c.customer_id);
        }
        assert_eq!(classes.len(), 10, "c0 never bought: not scored");
        // Mean recency 20 days: all but c10 are recent. Mean frequency 4.6 and spend ¥460:
        // c5…c9 are above both.
        assert_eq!(classes[&id("c9")], RfmClass::ImportantValue);
        assert_eq!(classes[&id("c5")], RfmClass::ImportantValue);
        assert_eq!(classes[&id("c4")], RfmClass::GeneralDevelopment);
        assert_eq!(classes[&id("c10")], RfmClass::GeneralWinback);
    }
}
