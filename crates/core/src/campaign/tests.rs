use proptest::prelude::*;

use super::stats::{Moments, proportion_diff, t_quantile, too_small, welch_diff};
use super::*;

fn offer(off: i64, max_coupons: Option<u64>, max_face: Option<i64>) -> Offer {
    Offer {
        benefit: Benefit::NoThreshold {
            off: Money::yuan(off),
        },
        validity: Validity::Days { days: 14 },
        max_coupons,
        max_face: max_face.map(Money::yuan),
    }
}

fn facts() -> CustomerFacts {
    CustomerFacts {
        unknown: false,
        erased: false,
        opted_out: false,
        holdout: false,
        tier: Some(0),
        days_since_purchase: Some(60),
        cycle: Cycle {
            span: 30,
            gaps: 1,
            own: false,
        },
        touches: 0,
        channel_touches: 0,
    }
}

fn decide_one(f: &CustomerFacts, policy: &Policy, budget: &mut Budget) -> Decision {
    decide(f, policy, Some(budget))
}

#[test]
fn offers_are_checked_and_labelled_as_merchants_write_them() {
    let t = Benefit::Threshold {
        min: Money::yuan(300),
        off: Money::yuan(50),
    };
    assert_eq!(t.label(), "满300减50");
    assert_eq!(t.face_value(), Money::yuan(50));
    assert_eq!(
        Benefit::NoThreshold {
            off: Money::from_fen(1050)
        }
        .label(),
        "无门槛减10.5"
    );
    let bad = Benefit::Threshold {
        min: Money::yuan(50),
        off: Money::yuan(50),
    };
    assert!(matches!(
        bad.check(),
        Err(CampaignError::ThresholdNotAboveOff { .. })
    ));
    assert!(
        Benefit::Percent {
            percent: 100,
            cap: Money::yuan(1)
        }
        .check()
        .is_err()
    );
    assert_eq!(
        Benefit::Percent {
            percent: 20,
            cap: Money::yuan(30)
        }
        .face_value(),
        Money::yuan(30)
    );
    assert!(offer(5, Some(0), None).check().is_err());
}

#[test]
fn a_coupon_valid_for_days_ends_at_the_end_of_the_last_local_day() {
    let zone = TenantZone::default();
    let at = zone.parse_timestamp("2026-03-01 23:30:00").expect("time");
    let until = Validity::Days { days: 1 }.valid_until(at, &zone);
    assert_eq!(
        until,
        zone.parse_timestamp("2026-03-02 00:00:00").expect("time")
    );
    let fixed = Validity::Dates {
        from: Date::constant(2026, 3, 1),
        until: Date::constant(2026, 3, 7),
    };
    assert_eq!(
        fixed.valid_until(at, &zone),
        zone.parse_timestamp("2026-03-08").expect("time")
    );
}

#[test]
fn codes_use_the_unambiguous_alphabet_and_differ() {
    let mut rng = crate::rng::Rng::new(7);
    let codes: std::collections::HashSet<String> =
        (0..10_000).map(|_| coupon_code(&mut rng)).collect();
    assert_eq!(codes.len(), 10_000);
    for c in &codes {
        assert_eq!(c.len(), CODE_LENGTH);
        assert!(!c.contains(['0', 'O', '1', 'I', 'L']));
    }
}

#[test]
fn the_holdout_of_100_000_customers_is_10_percent_within_a_point_and_stable() {
    let ids: Vec<String> = (0..100_000).map(|i| format!("c{i}")).collect();
    let held = |key: &str| -> Vec<bool> {
        ids.iter()
            .map(|id| in_holdout(key, 3, "spring", id, 1000))
            .collect()
    };
    let first = held("k1");
    let share = first.iter().filter(|h| **h).count() as f64 / ids.len() as f64;
    assert!((0.09..=0.11).contains(&share), "holdout share {share}");
    // The same key, tenant and campaign: the same customers on every run.
    assert_eq!(held("k1"), first);
    // Another campaign's key chooses others.
    let other = held("k2");
    let both = first.iter().zip(&other).filter(|(a, b)| **a && **b).count();
    assert!(both < 2_000, "{both} in both holdouts");
    assert!(!in_holdout("k1", 3, "spring", "c1", 0));
    assert!(in_holdout("k1", 3, "spring", "c1", 10_000));
}

#[test]
fn erased_unknown_and_opted_out_customers_are_never_sent_to_even_in_the_holdout() {
    let policy = Policy::default();
    let mut budget = Budget::of(&offer(5, None, None), 0, Money::ZERO);
    for f in [
        CustomerFacts {
            erased: true,
            ..facts()
        },
        CustomerFacts {
            unknown: true,
            ..facts()
        },
        CustomerFacts {
            opted_out: true,
            holdout: true,
            ..facts()
        },
    ] {
        let d = decide_one(&f, &policy, &mut budget);
        assert_eq!(d.outcome, Outcome::Never, "{f:?}");
        assert!(!d.coupon);
    }
    assert_eq!(budget.issued, 0);
}

#[test]
fn the_frequency_cap_holds_back_the_third_touch_in_seven_days() {
    let policy = Policy::default();
    let mut budget = Budget::of(&offer(5, None, None), 0, Money::ZERO);
    let one = decide_one(
        &CustomerFacts {
            touches: 1,
            ..facts()
        },
        &policy,
        &mut budget,
    );
    assert_eq!(one.outcome, Outcome::Send);
    let two = decide_one(
        &CustomerFacts {
            touches: 2,
            ..facts()
        },
        &policy,
        &mut budget,
    );
    assert_eq!(two.outcome, Outcome::Held);
    assert_eq!(two.reason.detail(), "2 touches in 7 days, cap 2");
}

#[test]
fn the_platform_cap_holds_back_sends_beyond_it_on_the_channel() {
    let policy = Policy {
        platform_cap: Some((1, 1)),
        ..Policy::default()
    };
    let mut budget = Budget::of(&offer(5, None, None), 0, Money::ZERO);
    let f = CustomerFacts {
        channel_touches: 1,
        ..facts()
    };
    let d = decide_one(&f, &policy, &mut budget);
    assert_eq!(
        (d.outcome, d.reason.code()),
        (Outcome::Held, "platform_cap")
    );
    let free = decide_one(&f, &Policy::default(), &mut budget);
    assert_eq!(free.outcome, Outcome::Send);
}

#[test]
fn the_budget_stops_coupons_at_its_count_and_at_its_face_value() {
    let policy = Policy::default();
    let mut by_count = Budget::of(&offer(5, Some(2), None), 0, Money::ZERO);
    let outcomes: Vec<&str> = (0..4)
        .map(|_| decide_one(&facts(), &policy, &mut by_count).reason.code())
        .collect();
    assert_eq!(outcomes, ["offer", "offer", "budget", "budget"]);
    // ¥5 coupons under ¥12 of face value: two, then the third would pass it.
    let mut by_face = Budget::of(&offer(5, None, Some(12)), 0, Money::ZERO);
    let issued = (0..4)
        .filter(|_| decide_one(&facts(), &policy, &mut by_face).coupon)
        .count();
    assert_eq!(issued, 2);
    assert_eq!(by_face.issued_face, Money::yuan(10));
    // What earlier runs issued counts.
    let mut spent = Budget::of(&offer(5, Some(2), None), 2, Money::yuan(10));
    assert_eq!(
        decide_one(&facts(), &policy, &mut spent).reason,
        Reason::Budget
    );
}

#[test]
fn a_customer_within_their_cycle_gets_no_discount_but_may_get_the_message() {
    let f = CustomerFacts {
        days_since_purchase: Some(3),
        ..facts()
    };
    let mut budget = Budget::of(&offer(5, None, None), 0, Money::ZERO);
    let d = decide_one(&f, &Policy::default(), &mut budget);
    assert_eq!(d.outcome, Outcome::Held);
    assert_eq!(
        d.reason.detail(),
        "bought 3 days ago, cycle 30 days (the shop's)"
    );
    let message = Policy {
        message_in_cycle: true,
        ..Policy::default()
    };
    let d = decide_one(&f, &message, &mut budget);
    assert_eq!((d.outcome, d.coupon), (Outcome::Send, false));
    assert_eq!(d.reason.code(), "message_in_cycle");
    // A message-only tier is not a discount: the cycle does not hold it back.
    let d = decide(&f, &Policy::default(), None);
    assert_eq!((d.outcome, d.reason), (Outcome::Send, Reason::Message));
}

#[test]
fn quiet_hours_hold_a_send_until_the_morning_in_the_tenant_zone() {
    let zone = TenantZone::default();
    let t = |s: &str| zone.parse_timestamp(s).expect("time");
    let quiet = Policy::default().quiet_hours;
    assert_eq!(
        not_before(t("2026-03-01 22:15:00"), &zone, quiet),
        t("2026-03-02 08:00:00")
    );
    assert_eq!(
        not_before(t("2026-03-02 06:00:00"), &zone, quiet),
        t("2026-03-02 08:00:00")
    );
    assert_eq!(
        not_before(t("2026-03-02 10:00:00"), &zone, quiet),
        t("2026-03-02 10:00:00")
    );
    assert_eq!(
        not_before(t("2026-03-01 22:15:00"), &zone, None),
        t("2026-03-01 22:15:00")
    );
    // Quiet hours within a day (13:00–14:00).
    let noon = Some((Time::constant(13, 0, 0, 0), Time::constant(14, 0, 0, 0)));
    assert_eq!(
        not_before(t("2026-03-02 13:30:00"), &zone, noon),
        t("2026-03-02 14:00:00")
    );
}

proptest! {
    /// Random shops: whoever bought within their cycle never gets a coupon, whatever the
    /// rest of their facts and the policy.
    #[test]
    fn nobody_within_their_cycle_receives_a_discount(
        days in proptest::option::of(0i64..400),
        span in 1i64..400,
        gaps in 1i64..20,
        own in any::<bool>(),
        touches in 0u32..4,
        holdout in any::<bool>(),
        message_in_cycle in any::<bool>(),
        tier_has_offer in any::<bool>(),
    ) {
        let f = CustomerFacts {
            holdout,
            days_since_purchase: days,
            cycle: Cycle { span, gaps, own },
            touches,
            ..facts()
        };
        let policy = Policy { message_in_cycle, ..Policy::default() };
        let mut budget = Budget::of(&offer(5, None, None), 0, Money::ZERO);
        let d = if tier_has_offer {
            decide_one(&f, &policy, &mut budget)
        } else {
            decide(&f, &policy, None)
        };
        let within = days.is_some_and(|d| (d as f64) < span as f64 / gaps as f64);
        if within {
            prop_assert!(!d.coupon, "{f:?} got a coupon: {d:?}");
        }
        prop_assert_eq!(d.coupon, budget.issued == 1);
        if d.coupon {
            prop_assert_eq!(d.outcome, Outcome::Send);
        }
    }
}

// Reference values from bench/campaign_reference.py (scipy 1.x), for fixed data.
#[test]
fn lift_intervals_match_scipy() {
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * b.abs().max(1.0);
    // Conversion: 120 of 900 treated, 8 of 100 held out.
    let p = proportion_diff(120, 900, 8, 100).expect("interval");
    assert!(close(p.diff, PROP_DIFF), "{p:?}");
    assert!(close(p.low, PROP_LOW), "{p:?}");
    assert!(close(p.high, PROP_HIGH), "{p:?}");
    // Revenue per customer (fen): the groups of the script.
    let (t, h) = (revenue_groups().0, revenue_groups().1);
    let (mut mt, mut mh) = (Moments::default(), Moments::default());
    t.iter().for_each(|x| mt.push(*x));
    h.iter().for_each(|x| mh.push(*x));
    let w = welch_diff(&mt, &mh).expect("interval");
    assert!(close(w.diff, WELCH_DIFF), "{w:?}");
    assert!(close(w.low, WELCH_LOW), "{w:?}");
    assert!(close(w.high, WELCH_HIGH), "{w:?}");
    assert!(close(t_quantile(0.975, 3.5), T_975_3_5));
    assert!(close(t_quantile(0.975, 1000.0), T_975_1000));
}

/// The script's groups: treated revenue i*37 % 500 for i in 0..60 and holdout i*53 % 300
/// for i in 0..25, in fen.
fn revenue_groups() -> (Vec<f64>, Vec<f64>) {
    (
        (0..60).map(|i| f64::from(i * 37 % 500)).collect(),
        (0..25).map(|i| f64::from(i * 53 % 300)).collect(),
    )
}

const PROP_DIFF: f64 = 0.05333333333333333;
const PROP_LOW: f64 = -0.004290776503096991;
const PROP_HIGH: f64 = 0.11095744316976365;
const WELCH_DIFF: f64 = 109.5;
const WELCH_LOW: f64 = 57.119790495523496;
const WELCH_HIGH: f64 = 161.8802095044765;
const T_975_3_5: f64 = 2.9400886379827282;
const T_975_1000: f64 = 1.9623390808264083;

#[test]
fn small_groups_are_said_to_be_too_small() {
    assert!(too_small(3, 20, 1, 10).is_some());
    assert!(too_small(2, 900, 1, 100).is_some());
    assert!(too_small(120, 900, 8, 100).is_none());
}

#[test]
fn a_list_audience_is_bounded_and_holds_customer_ids_only() {
    let spec = |ids: Vec<String>| CampaignSpec {
        audience: Audience::List { ids },
        tiers: default_tiers(None, None),
        message: "hi".to_owned(),
        channel: SendChannel::Export,
        policy: Policy::default(),
        start_at: None,
        trigger: None,
        steps: Vec::new(),
    };
    assert!(spec(vec!["a".to_owned(), "b".to_owned()]).check().is_ok());
    assert!(matches!(
        spec(Vec::new()).check(),
        Err(CampaignError::ListSize(0))
    ));
    let bad = "x".repeat(10_000);
    assert!(matches!(
        spec(vec!["a".to_owned(), bad]).check(),
        Err(CampaignError::BadListId { line: 2, .. })
    ));
    assert!(matches!(
        spec(vec!["a".to_owned(); MAX_LIST + 1]).check(),
        Err(CampaignError::ListSize(n)) if n == MAX_LIST + 1
    ));
    let mut many = spec(vec!["a".to_owned()]);
    many.tiers = (0..=MAX_TIERS)
        .map(|i| Tier {
            name: format!("t{i}"),
            rule: String::new(),
            offer: None,
        })
        .collect();
    assert!(matches!(many.check(), Err(CampaignError::TooManyTiers(21))));
}

#[test]
fn a_step_reads_a_delay_in_units_and_an_optional_tier() {
    let step = |t: &str| Step::parse(t).map(|s| (s.delay_secs, s.tier));
    assert_eq!(step("0").ok(), Some((0, None)));
    assert_eq!(step("30m").ok(), Some((1_800, None)));
    assert_eq!(
        step("3d:care").ok(),
        Some((259_200, Some("care".to_owned())))
    );
    assert_eq!(step("365d").ok(), Some((MAX_STEP_DELAY_SECS, None)));
    for bad in ["", "3w", "-1d", "366d", "3d:", "d", "99999999999999999d"] {
        assert!(step(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_trigger_names_a_known_stage_or_a_valid_event_type() {
    assert_eq!(
        Trigger::stage("first_purchase")
            .map(|t| t.membership())
            .ok(),
        Some(("level", "stage:first_purchase".to_owned()))
    );
    assert!(Trigger::stage("customer").is_err());
    assert!(Trigger::event("cart_abandoned").is_ok_and(|t| !t.can_leave()));
    assert!(Trigger::event("Cart Abandoned").is_err());
}
