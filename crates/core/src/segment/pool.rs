//! The whole pool as of a day, as segment rules see it: every customer's profile with
//! their lifecycle stage (the tenant's VIP rule included), RFM class, spend over the last
//! 365 days, tags and attributes, in one [`SegmentTable`], built as the customers stream in.

use std::collections::HashMap;

use jiff::civil::Date;

use crate::channel::Channel;
use crate::customer::Gender;
use crate::ids::CustomerId;
use crate::lifecycle::{LifecycleSettings, Stage, StageFacts, stage_of, super_user_threshold};
use crate::money::Money;
use crate::profile::Profile;
use crate::rule::{
    Bitset, CustomerExtras, Field, Rule, RuleError, SegmentTable, SegmentTableBuilder,
};
use crate::segment::rfm::{Means, RfmClass, RfmWindow, Tally, classes_against, classes_of};
use crate::time::TenantZone;
use crate::time::date_number;

/// What a customer is beside their profile: the static attributes rules compare.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub channel: Option<Channel>,
    pub region: Option<String>,
    pub gender: Option<Gender>,
    /// The customer asked for no marketing (or was erased): never in a marketing segment.
    pub opted_out: bool,
}

/// The pool as of a day: the table rules run over, and what each row was judged (row `i`
/// is the `i`-th customer pushed).
#[derive(Debug)]
pub struct Pool {
    pub table: SegmentTable,
    pub rows: Vec<PoolRow>,
    /// The rows of customers who opted out of marketing.
    pub opted_out: Bitset,
}

/// A customer's stage and RFM class in the pool, and the figures behind the stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolRow {
    pub stage: Stage,
    pub rfm: Option<RfmClass>,
    pub purchase_days: u32,
    pub days_since_order: Option<i64>,
    pub spend_365d: Money,
    /// The repurchase cycle applied: span / gaps days, and whether it is their own (3+
    /// purchase days) rather than the tenant's.
    pub cycle: (i64, i64, bool),
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

/// What a row keeps until the stages and classes are decided at the end.
#[derive(Debug, Clone, Copy)]
struct Pending {
    first_purchase_day: Option<Date>,
    last_purchase_day: Option<Date>,
    purchase_days: u32,
    orders: u32,
    net_spend: i64,
    has_left: bool,
    spend_365d: Money,
}

impl Pending {
    /// The customer's RFM tally over all history, if they have a paid order.
    fn tally(&self) -> Option<Tally> {
        match self.last_purchase_day {
            Some(last) if self.orders > 0 => Some(Tally {
                last_day: date_number(last),
                orders: self.orders,
                fen: self.net_spend,
            }),
            _ => None,
        }
    }
}

/// The pool-wide figures stages and RFM classes are judged against, fixed for a day: the
/// super users' spend threshold (the top fifth of spend over 365 days) and the RFM means.
/// Between their recomputations (the tenant's midnight, `segment refresh`, a large
/// import) a customer's memberships depend on their own facts alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// The local day they were computed for, and hold on.
    pub day: Date,
    pub super_user: Option<Money>,
    pub rfm: Means,
}

/// Gathers a whole pool's thresholds customer by customer, without building the pool:
/// about 24 bytes a customer who paid.
pub struct ThresholdsBuilder {
    as_of: Date,
    spends: Vec<Money>,
    tallies: Vec<Tally>,
}

impl ThresholdsBuilder {
    /// Customers pushed must have profiles built as of `as_of`.
    pub fn new(as_of: Date) -> ThresholdsBuilder {
        ThresholdsBuilder {
            as_of,
            spends: Vec::new(),
            tallies: Vec::new(),
        }
    }

    /// Adds a customer: their profile and paid amount over the 365 days to the as-of day.
    pub fn push(&mut self, p: &Profile, spend_365d: Money) {
        self.push_figures(p.last_purchase_day, p.orders, p.net_spend, spend_365d);
    }

    /// Adds a customer by the figures thresholds read: their last purchase day, orders and
    /// net spend (all history), and paid amount over the 365 days to the as-of day.
    pub fn push_figures(
        &mut self,
        last_purchase_day: Option<Date>,
        orders: u32,
        net_spend: Money,
        spend_365d: Money,
    ) {
        if spend_365d.fen() > 0 {
            self.spends.push(spend_365d);
        }
        let pending = Pending {
            first_purchase_day: None,
            last_purchase_day,
            purchase_days: 0,
            orders,
            net_spend: net_spend.fen(),
            has_left: false,
            spend_365d,
        };
        self.tallies.extend(pending.tally());
    }

    pub fn finish(self) -> Thresholds {
        Thresholds {
            day: self.as_of,
            super_user: super_user_threshold(self.spends),
            rfm: Means::of(RfmWindow::new(self.as_of, None), self.tallies.iter()),
        }
    }
}

/// Builds the pool one customer at a time, so that the store can stream them in: the
/// stages and RFM classes, which depend on the whole pool (the super users' threshold, the
/// means), are decided when it is finished. Memory: the table and about 40 bytes a customer.
pub struct PoolBuilder {
    as_of: Date,
    settings: LifecycleSettings,
    table: SegmentTableBuilder,
    pending: Vec<Pending>,
    opted_out: Bitset,
}

impl PoolBuilder {
    /// Customers pushed must have profiles built as of `as_of`.
    pub fn new(as_of: Date, zone: &TenantZone, settings: LifecycleSettings) -> PoolBuilder {
        PoolBuilder {
            as_of,
            settings,
            table: SegmentTableBuilder::new(as_of, zone),
            pending: Vec::new(),
            opted_out: Bitset::empty(0),
        }
    }

    pub fn reserve(&mut self, additional: usize) {
        self.table.reserve(additional);
        self.pending.reserve(additional);
    }

    /// Adds a customer: their profile, attributes, manual tags and paid amount over the
    /// 365 days to the as-of day.
    pub fn push(&mut self, p: &Profile, a: &Attributes, tags: &[String], spend_365d: Money) {
        self.table.push(
            p,
            &CustomerExtras {
                stage: None,
                journey: None,
                rfm: None,
                spend_365d,
                tags: tags.to_vec(),
                channel: a.channel.clone(),
                region: a.region.clone(),
                gender: a.gender,
            },
        );
        self.opted_out.push(a.opted_out);
        self.pending.push(Pending {
            first_purchase_day: p.first_purchase_day,
            last_purchase_day: p.last_purchase_day,
            purchase_days: p.purchase_days,
            orders: p.orders,
            net_spend: p.net_spend.fen(),
            has_left: p.has_left(),
            spend_365d,
        });
    }

    /// The pool-wide figures of the customers pushed so far, as of the builder's day: what
    /// [`PoolBuilder::finish_with`] judges stages and classes against.
    pub fn thresholds(&self) -> Thresholds {
        let tallies: Vec<Tally> = self.pending.iter().filter_map(Pending::tally).collect();
        Thresholds {
            day: self.as_of,
            super_user: super_user_threshold(self.pending.iter().map(|p| p.spend_365d)),
            rfm: Means::of(RfmWindow::new(self.as_of, None), tallies.iter()),
        }
    }

    /// Decides every stage (the tenant's VIP rule included) and RFM class (window: all
    /// history) against the thresholds of the customers pushed, and gives the pool.
    pub fn finish(self, vip_rule: Option<&Rule>) -> Result<Pool, RuleError> {
        let thresholds = self.thresholds();
        self.finish_with(&thresholds, vip_rule)
    }

    /// Decides every stage and RFM class against `thresholds`, fixed for the day (they
    /// may come from a larger pool than the customers pushed): each customer is then
    /// judged on their own facts alone, as a whole pool with the same thresholds would.
    pub fn finish_with(
        self,
        thresholds: &Thresholds,
        vip_rule: Option<&Rule>,
    ) -> Result<Pool, RuleError> {
        let PoolBuilder {
            as_of,
            settings,
            table,
            pending,
            opted_out,
        } = self;
        debug_assert_eq!(thresholds.day, as_of, "thresholds of another day");
        let mut table = table.finish();
        let threshold = thresholds.super_user;
        let tallies: Vec<Tally> = pending
            .iter()
            .map(|p| p.tally().unwrap_or_default())
            .collect();
        let classes = classes_against(RfmWindow::new(as_of, None), &thresholds.rfm, &tallies);
        drop(tallies);
        let mut rows: Vec<PoolRow> = Vec::with_capacity(pending.len());
        for (row, (p, rfm)) in pending.iter().zip(classes).enumerate() {
            let facts = StageFacts {
                purchase_days: p.purchase_days,
                first_purchase_day: p.first_purchase_day,
                last_purchase_day: p.last_purchase_day,
                has_left: p.has_left,
                super_user: threshold.is_some_and(|t| p.spend_365d >= t),
            };
            let (stage, days_since_order, cycle) = stage_of(facts, as_of, settings);
            table.set_stage(row, stage);
            table.set_rfm(row, rfm);
            rows.push(PoolRow {
                stage,
                rfm,
                purchase_days: p.purchase_days,
                days_since_order,
                spend_365d: p.spend_365d,
                cycle,
            });
        }
        if let Some(rule) = vip_rule {
            for row in rule.members(&table)?.rows() {
                let r = &mut rows[row];
                if matches!(
                    r.stage,
                    Stage::Prospect | Stage::FirstPurchase | Stage::Repeat
                ) {
                    r.stage = Stage::Vip;
                    table.set_stage(row, Stage::Vip);
                }
            }
        }
        Ok(Pool {
            table,
            rows,
            opted_out,
        })
    }
}

/// Builds the pool as of `as_of` from profiles built as of that day and the customers'
/// attributes, manual tags and spend over the 365 days to `as_of` (missing ones: none).
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
    let none = Attributes::default();
    let mut builder = PoolBuilder::new(as_of, zone, settings);
    builder.reserve(profiles.len());
    for p in profiles {
        builder.push(
            p,
            attributes.get(&p.customer_id).unwrap_or(&none),
            tags.get(&p.customer_id).map_or(&[], Vec::as_slice),
            spend_365d.get(&p.customer_id).copied().unwrap_or_default(),
        );
    }
    builder.finish(vip_rule)
}

/// The RFM class of every customer with a paid order up to `as_of` (window: all history),
/// from profiles built as of that day. By customer id.
pub fn rfm_classes(profiles: &[Profile], as_of: Date) -> HashMap<CustomerId, RfmClass> {
    let tallies: Vec<Tally> = profiles
        .iter()
        .map(|p| match p.last_purchase_day {
            Some(last) if p.orders > 0 => Tally {
                last_day: date_number(last),
                orders: p.orders,
                fen: p.net_spend.fen(),
            },
            _ => Tally::default(),
        })
        .collect();
    profiles
        .iter()
        .zip(classes_of(RfmWindow::new(as_of, None), &tallies))
        .filter_map(|(p, class)| Some((p.customer_id.clone(), class?)))
        .collect()
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
    fn an_opted_out_customer_is_left_out_of_marketing_segments_only() {
        use crate::segment::rules::{Definition, Purpose, RuleKind, evaluate};
        let as_of = Date::constant(2026, 6, 30);
        let (profiles, spend, _) = shop(as_of);
        let mut attributes = HashMap::new();
        for n in [3, 5] {
            attributes.insert(
                id(&format!("c{n}")),
                Attributes {
                    opted_out: true,
                    ..Attributes::default()
                },
            );
        }
        let mut pool = build_pool(
            &profiles,
            &attributes,
            &HashMap::new(),
            &spend,
            as_of,
            &TenantZone::default(),
            LifecycleSettings::default(),
            None,
        )
        .expect("pool");
        let def = |kind, name: &str, purpose| Definition {
            kind,
            name: name.into(),
            rule: Rule::parse("orders >= 2").expect("rule"),
            purpose,
        };
        let defs = [
            def(RuleKind::Segment, "coupon", Purpose::Marketing),
            def(RuleKind::Segment, "count", Purpose::Analysis),
            // A tag describes the customer: opting out changes nothing about it.
            def(RuleKind::Tag, "repeat", Purpose::Marketing),
        ];
        let selections = evaluate(&mut pool, &defs).expect("evaluate");
        let members = |name: &str| -> Vec<String> {
            let s = selections.iter().find(|s| s.name == name).expect(name);
            let mut ids: Vec<String> = s
                .members
                .rows()
                .map(|row| pool.table.customer_id(row).to_owned())
                .collect();
            ids.sort();
            ids
        };
        let everyone: Vec<String> = (2..10).map(|n| format!("c{n}")).collect();
        let mut reachable = everyone.clone();
        reachable.retain(|c| c != "c3" && c != "c5");
        assert_eq!(members("count"), everyone);
        assert_eq!(members("repeat"), everyone);
        assert_eq!(members("coupon"), reachable);
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
            pool.rows
                .iter()
                .enumerate()
                .filter(|(_, r)| r.stage == Stage::Vip)
                .map(|(row, _)| pool.table.customer_id(row).to_owned())
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
        assert_eq!(pool.table.customer_id(2), "c10");
        assert_eq!(pool.rows[2].stage, Stage::Lost);
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
