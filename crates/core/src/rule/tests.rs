use jiff::civil::Date;
use proptest::prelude::*;

use super::*;
use crate::channel::Channel;
use crate::customer::CustomerFact;
use crate::customer::Gender;
use crate::ids::CustomerId;
use crate::lifecycle::{Journey, Stage, journey};
use crate::money::Money;
use crate::profile::{Profile, build_profiles};
use crate::segment::rfm::RfmClass;
use crate::time::TenantZone;

const AS_OF: Date = Date::constant(2026, 3, 31);

fn zone() -> TenantZone {
    TenantZone::default()
}

fn days_before(n: i64) -> Date {
    AS_OF.checked_sub(jiff::Span::new().days(n)).expect("a day")
}

/// A customer who joined `joined_back` days before the as-of day and did nothing else.
fn customer(id: &str, joined_back: i64) -> Profile {
    let z = zone();
    build_profiles(
        [CustomerFact {
            id: CustomerId::parse(id).expect("id"),
            channel: None,
            joined_at: z.start_of(days_before(joined_back)),
            referrer_id: None,
        }],
        [],
        [],
        &z,
        None,
    )
    .pop()
    .expect("a profile")
}

/// Gives a customer `orders` paid orders on `days` purchase days, the last `last_back`
/// days ago and the first `span` days before that, for `fen` in all.
fn buyer(mut p: Profile, orders: u32, days: u32, last_back: i64, span: i64, fen: i64) -> Profile {
    let z = zone();
    p.orders = orders;
    p.purchase_days = days;
    p.last_purchase_day = Some(days_before(last_back));
    p.first_purchase_day = Some(days_before(last_back + span));
    p.last_order_at = Some(z.start_of(days_before(last_back)));
    p.first_order_at = Some(z.start_of(days_before(last_back + span)));
    p.net_spend = Money::from_fen(fen);
    p
}

struct Shop {
    rows: Vec<(Profile, CustomerExtras)>,
}

impl Shop {
    fn new() -> Shop {
        Shop { rows: Vec::new() }
    }

    fn add(&mut self, p: Profile, x: CustomerExtras) -> &mut Shop {
        self.rows.push((p, x));
        self
    }

    fn table(&self) -> SegmentTable {
        let (profiles, extras): (Vec<Profile>, Vec<CustomerExtras>) =
            self.rows.iter().cloned().unzip();
        SegmentTable::build(&profiles, &extras, AS_OF, &zone())
    }

    /// The ids of the members of `rule`, checked against the row-by-row evaluation.
    fn members(&self, rule: &str) -> Vec<String> {
        let rule = Rule::parse(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
        let table = self.table();
        let members = rule.members(&table).expect("compiles");
        let naive: Vec<bool> = self
            .rows
            .iter()
            .map(|(p, x)| naive(&rule, p, x, AS_OF))
            .collect();
        assert_eq!(members.to_bools(), naive, "{rule}");
        table.customer_ids(&members).map(str::to_owned).collect()
    }
}

fn extras() -> CustomerExtras {
    CustomerExtras::default()
}

fn error(rule: &str) -> RuleError {
    match Rule::parse(rule) {
        Ok(r) => panic!("{rule} parsed as {r:?}"),
        Err(e) => e,
    }
}

fn message(rule: &str) -> String {
    error(rule).to_string()
}

// ---------------------------------------------------------------- parsing and printing

#[test]
fn the_examples_parse_and_print_back_canonically() {
    for (text, canonical) in [
        (
            r#"rfm = "important_value" and days_since_order > 20 and has_tag("outdoor")"#,
            r#"rfm = "important_value" and days_since_order > 20 and has_tag("outdoor")"#,
        ),
        (
            r#"stage in ("at_risk", "lost") and spend_365d >= 500"#,
            r#"stage in ("at_risk", "lost") and spend_365d >= 500"#,
        ),
        (
            r#"not has_tag("vip") or channel = "douyin""#,
            r#"not has_tag("vip") or channel = "douyin""#,
        ),
        ("joined_at >= today - 30d", "joined_at >= today - 30d"),
        (
            r#"last_order_day < date("2026-01-01")"#,
            r#"last_order_day < date("2026-01-01")"#,
        ),
        (r#"count("post_like") >= 3"#, r#"count("post_like") >= 3"#),
        (
            "(orders>=2)AND(aov<99.50)  Or  Not has_left",
            "orders >= 2 and aov < 99.5 or not has_left = true",
        ),
        (
            "joined_day > today+7d and orders <> 1 and orders == 2",
            "joined_at > today + 7d and orders != 1 and orders = 2",
        ),
        (
            r#"stage NOT IN ("lost") and region = "上海 \"浦东\"""#,
            r#"stage not in ("lost") and region = "上海 \"浦东\"""#,
        ),
        ("today - 0d = last_order_day", "never"),
    ] {
        if canonical == "never" {
            assert!(Rule::parse(text).is_err(), "{text}");
            continue;
        }
        let rule = Rule::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(rule.to_string(), canonical, "{text}");
        assert_eq!(Rule::parse(canonical), Ok(rule));
    }
}

#[test]
fn not_binds_tighter_than_and_and_and_tighter_than_or() {
    let cond = |n: i64| Rule::Compare {
        subject: Subject::Field(Field::Orders),
        op: Op::Eq,
        value: Value::Number(Number::integer(n)),
    };
    assert_eq!(
        Rule::parse("orders = 1 or orders = 2 and not orders = 3"),
        Ok(Rule::Or(vec![
            cond(1),
            Rule::And(vec![cond(2), Rule::Not(Box::new(cond(3)))]),
        ]))
    );
    assert_eq!(
        Rule::parse("(orders = 1 or orders = 2) and not (orders = 3 or orders = 4)"),
        Ok(Rule::And(vec![
            Rule::Or(vec![cond(1), cond(2)]),
            Rule::Not(Box::new(Rule::Or(vec![cond(3), cond(4)]))),
        ]))
    );
    assert_eq!(
        Rule::parse("orders = 1 and (orders = 2 and orders = 3)"),
        Ok(Rule::And(vec![cond(1), cond(2), cond(3)])),
        "nested ands are one and"
    );
    let printed = Rule::Or(vec![
        Rule::And(vec![cond(1), cond(2)]),
        Rule::Not(Box::new(Rule::And(vec![cond(3), cond(4)]))),
    ])
    .to_string();
    assert_eq!(
        printed,
        "orders = 1 and orders = 2 or not (orders = 3 and orders = 4)"
    );
}

#[test]
fn numbers_are_exact_decimals_and_print_without_trailing_zeros() {
    let parsed = |t: &str| match Rule::parse(&format!("coupon_share = {t}")) {
        Ok(Rule::Compare {
            value: Value::Number(n),
            ..
        }) => n,
        other => panic!("{t}: {other:?}"),
    };
    assert_eq!(parsed("0.50"), Number::new(5, 1).expect("number"));
    assert_eq!(parsed("0.50").to_string(), "0.5");
    assert_eq!(parsed("-3.250").to_string(), "-3.25");
    assert_eq!(parsed("0.000000001").to_string(), "0.000000001");
    assert_eq!(parsed("12.000").to_string(), "12");
    assert_eq!(Number::integer(500).as_fen(), Some(50_000));
    assert_eq!(Number::new(995, 1).and_then(Number::as_fen), Some(9_950));
    assert_eq!(Number::new(12_345, 3).and_then(Number::as_fen), None);
}

// ---------------------------------------------------------------- evaluation

fn counts_shop() -> Shop {
    let mut shop = Shop::new();
    for n in 0..5u32 {
        let p = if n == 0 {
            customer("o0", 100)
        } else {
            buyer(customer(&format!("o{n}"), 100), n, n, 5, 10, 1_000)
        };
        shop.add(p, extras());
    }
    shop
}

#[test]
fn each_comparison_operator_selects_the_customers_it_says() {
    let shop = counts_shop();
    assert_eq!(shop.members("orders = 2"), ["o2"]);
    assert_eq!(shop.members("orders != 2"), ["o0", "o1", "o3", "o4"]);
    assert_eq!(shop.members("orders < 2"), ["o0", "o1"]);
    assert_eq!(shop.members("orders <= 2"), ["o0", "o1", "o2"]);
    assert_eq!(shop.members("orders > 2"), ["o3", "o4"]);
    assert_eq!(shop.members("orders >= 2"), ["o2", "o3", "o4"]);
    assert_eq!(shop.members("orders > 99999999999"), Vec::<String>::new());
    assert_eq!(shop.members("orders > -99999999999").len(), 5);
}

#[test]
fn and_or_and_not_combine_conditions() {
    let shop = counts_shop();
    assert_eq!(shop.members("orders >= 1 and orders <= 2"), ["o1", "o2"]);
    assert_eq!(shop.members("orders = 0 or orders = 4"), ["o0", "o4"]);
    assert_eq!(shop.members("not orders = 0"), ["o1", "o2", "o3", "o4"]);
    assert_eq!(
        shop.members("orders = 0 or orders = 4 and orders = 0"),
        ["o0"],
        "and first"
    );
    assert_eq!(
        shop.members("(orders = 0 or orders = 4) and not orders = 0"),
        ["o4"]
    );
}

#[test]
fn a_comparison_with_a_missing_value_is_false_and_not_negates_that() {
    let mut shop = Shop::new();
    shop.add(customer("prospect", 100), extras())
        .add(buyer(customer("buyer", 100), 1, 1, 30, 0, 100), extras());
    assert_eq!(shop.members("days_since_order > 20"), ["buyer"]);
    assert!(shop.members("days_since_order <= 20").is_empty());
    assert!(
        shop.members("days_since_order != 20")
            .contains(&"buyer".to_owned())
    );
    assert_eq!(shop.members("days_since_order != 20"), ["buyer"]);
    assert_eq!(
        shop.members("not (days_since_order > 20)"),
        ["prospect"],
        "a prospect is not in 'more than 20 days', so is in its negation"
    );
    assert_eq!(
        shop.members("days_since_order not in (1, 2)"),
        ["buyer"],
        "not in needs a value too"
    );
    assert_eq!(
        shop.members("not days_since_order in (1, 2)"),
        ["prospect", "buyer"]
    );
    assert!(
        shop.members("stage = \"prospect\" or stage != \"prospect\"")
            .is_empty()
    );
    assert!(
        shop.members("aov >= 0 or coupon_share >= 0")
            .contains(&"buyer".into())
    );
    assert_eq!(shop.members("aov >= 0 or coupon_share >= 0"), ["buyer"]);
    assert!(shop.members("mean_interval_days >= 0").is_empty());
}

#[test]
fn rfm_is_none_for_customers_rfm_did_not_score() {
    let mut shop = Shop::new();
    shop.add(customer("unscored", 10), extras()).add(
        customer("valuable", 10),
        CustomerExtras {
            rfm: Some(RfmClass::ImportantValue),
            ..extras()
        },
    );
    assert_eq!(shop.members(r#"rfm = "none""#), ["unscored"]);
    assert_eq!(shop.members(r#"rfm = "important_value""#), ["valuable"]);
    assert_eq!(shop.members(r#"rfm != "important_value""#), ["unscored"]);
}

#[test]
fn money_compares_in_yuan_to_the_fen() {
    let mut shop = Shop::new();
    for (id, fen) in [("below", 49_999), ("at", 50_000), ("above", 50_001)] {
        shop.add(
            buyer(customer(id, 400), 2, 2, 3, 10, fen),
            CustomerExtras {
                spend_365d: Money::from_fen(fen),
                ..extras()
            },
        );
    }
    assert_eq!(shop.members("spend_365d >= 500"), ["at", "above"]);
    assert_eq!(shop.members("spend_365d > 499.99"), ["at", "above"]);
    assert_eq!(shop.members("net_spend = 500.01"), ["above"]);
    assert_eq!(
        shop.members("aov = 250"),
        ["below", "at"],
        "499.99 / 2 rounds half away from zero"
    );
    assert_eq!(shop.members("aov = 250.01"), ["above"]);
    assert_eq!(
        message("spend_365d >= 500.001"),
        "column 15: '500.001' has more than two decimals: spend_365d is money, in yuan to the fen"
    );
}

#[test]
fn days_and_dates_are_relative_to_the_as_of_day() {
    let mut shop = Shop::new();
    for back in [0, 29, 30, 31] {
        shop.add(
            buyer(customer(&format!("j{back}"), back), 1, 1, back, 0, 100),
            extras(),
        );
    }
    assert_eq!(
        shop.members("joined_at >= today - 30d"),
        ["j0", "j29", "j30"]
    );
    assert_eq!(
        shop.members("days_since_joined <= 30"),
        ["j0", "j29", "j30"]
    );
    assert_eq!(shop.members("days_since_order > 29"), ["j30", "j31"]);
    assert_eq!(shop.members("last_order_day = today"), ["j0"]);
    assert_eq!(
        shop.members("last_order_day > today + 1d"),
        Vec::<String>::new()
    );
    assert_eq!(
        shop.members(r#"last_order_day < date("2026-03-02")"#),
        ["j30", "j31"],
        "2026-03-01 is 30 days before 2026-03-31"
    );
    assert_eq!(
        shop.members(r#"first_order_day in (date("2026-03-01"), today)"#),
        ["j0", "j30"]
    );
}

#[test]
fn in_lists_match_any_value_and_not_in_none_of_them() {
    let mut shop = Shop::new();
    for (id, stage) in [
        ("a", Some(Stage::AtRisk)),
        ("l", Some(Stage::Lost)),
        ("v", Some(Stage::Vip)),
        ("unknown", None),
    ] {
        shop.add(customer(id, 5), CustomerExtras { stage, ..extras() });
    }
    assert_eq!(shop.members(r#"stage in ("at_risk", "lost")"#), ["a", "l"]);
    assert_eq!(shop.members(r#"stage not in ("at_risk", "lost")"#), ["v"]);
    assert_eq!(
        shop.members(r#"not stage in ("at_risk", "lost")"#),
        ["v", "unknown"]
    );
    assert_eq!(shop.members("days_since_joined in (4, 5, 6)").len(), 4);
}

#[test]
fn tags_event_counts_and_channels_are_read() {
    let mut shop = Shop::new();
    let mut liked = customer("liked", 5);
    liked.event_counts.insert("post_like".into(), 3);
    shop.add(
        liked,
        CustomerExtras {
            tags: vec!["outdoor".into(), "vip".into()],
            channel: Some(Channel::parse("抖音").expect("channel")),
            gender: Some(Gender::Female),
            ..extras()
        },
    )
    .add(
        customer("quiet", 5),
        CustomerExtras {
            channel: Some(Channel::parse("store").expect("channel")),
            region: Some("上海".into()),
            ..extras()
        },
    );
    assert_eq!(shop.members(r#"has_tag("outdoor")"#), ["liked"]);
    assert_eq!(
        shop.members(r#"has_tag("unheard_of")"#),
        Vec::<String>::new()
    );
    assert_eq!(shop.members(r#"count("post_like") >= 3"#), ["liked"]);
    assert_eq!(shop.members(r#"count("post_like") = 0"#), ["quiet"]);
    assert_eq!(
        shop.members(r#"count("never_seen") < 1"#),
        ["liked", "quiet"]
    );
    assert_eq!(
        shop.members(r#"not has_tag("vip") or channel = "douyin""#),
        ["liked", "quiet"]
    );
    assert_eq!(
        shop.members(r#"channel = "抖音""#),
        ["liked"],
        "channel names are normalised"
    );
    assert_eq!(shop.members(r#"channel != "douyin""#), ["quiet"]);
    assert_eq!(shop.members(r#"channel = "weibo""#), Vec::<String>::new());
    assert_eq!(shop.members(r#"region = "上海""#), ["quiet"]);
    assert_eq!(shop.members(r#"region != "上海""#), Vec::<String>::new());
    assert_eq!(shop.members(r#"gender = "female""#), ["liked"]);
    assert_eq!(shop.members(r#"journey = "engaged""#), ["liked"]);
}

#[test]
fn shares_and_intervals_compare_exactly_as_fractions() {
    let mut shop = Shop::new();
    let mut third = buyer(customer("third", 400), 3, 3, 1, 10, 300);
    third.coupon_orders = 1;
    let mut half = buyer(customer("half", 400), 2, 2, 1, 7, 300);
    half.coupon_orders = 1;
    shop.add(third, extras()).add(half, extras());
    assert_eq!(shop.members("coupon_share = 0.5"), ["half"]);
    assert_eq!(shop.members("coupon_share < 0.333333334"), ["third"]);
    assert_eq!(
        shop.members("coupon_share > 0.333333333"),
        ["third", "half"]
    );
    assert_eq!(shop.members("mean_interval_days = 5"), ["third"]);
    assert_eq!(shop.members("mean_interval_days >= 7"), ["half"]);
}

#[test]
fn a_true_or_false_field_stands_alone_as_a_condition() {
    let mut shop = Shop::new();
    let mut gone = customer("gone", 10);
    gone.left_at = Some(zone().start_of(days_before(1)));
    shop.add(gone, extras()).add(customer("here", 10), extras());
    assert_eq!(shop.members("has_left"), ["gone"]);
    assert_eq!(shop.members("not has_left"), ["here"]);
    assert_eq!(shop.members("has_left = false"), ["here"]);
    assert_eq!(shop.members("has_left != false"), ["gone"]);
    assert_eq!(shop.members("has_left in (true, false)").len(), 2);
}

#[test]
fn a_rule_compiles_once_and_evaluates_over_an_empty_table() {
    let table = SegmentTable::build(&[], &[], AS_OF, &zone());
    let rule = Rule::parse("orders > 1 and not has_tag(\"x\")").expect("rule");
    assert!(rule.members(&table).expect("compiles").is_empty());
}

// ---------------------------------------------------------------- mistakes

#[test]
fn a_missing_value_is_reported_at_the_end_of_the_rule() {
    let rule = r#"rfm = "important_value" and days_since_order >"#;
    assert_eq!(
        message(rule),
        "column 47: expected a value after '>', found end of rule"
    );
    assert_eq!(
        message("orders > and stage = \"vip\""),
        "column 10: expected a value after '>', found 'and'"
    );
    assert_eq!(
        message("orders > 1 and"),
        "column 15: expected a condition after 'and', found end of rule"
    );
    assert_eq!(
        message("(orders > 1"),
        "column 12: expected 'and', 'or' or ')' after '1', found end of rule"
    );
    assert_eq!(
        message("orders > 1 orders < 3"),
        "column 12: expected 'and', 'or' or the end of the rule after '1', found 'orders'"
    );
    assert_eq!(
        message("orders 3"),
        "column 8: expected a comparison (=, !=, <, <=, >, >=, in, not in) after 'orders', found '3'"
    );
    assert_eq!(
        message("stage in (\"vip\" \"lost\")"),
        "column 17: expected ',' or ')' after '\"vip\"', found '\"lost\"'"
    );
    assert_eq!(
        message("orders > 1 & orders < 3"),
        "column 12: expected a field, a value, an operator or a parenthesis, found '&'"
    );
    assert_eq!(
        message("joined_at > today - 30"),
        "column 21: expected a number of days such as 30d after '-', found '30'"
    );
    assert_eq!(
        message(""),
        "column 1: expected a condition, found end of rule"
    );
}

#[test]
fn an_unknown_field_suggests_the_nearest_known_name() {
    assert_eq!(
        error("orders > 1 and days_since_ordr > 3"),
        RuleError::UnknownField {
            column: 16,
            name: "days_since_ordr".into(),
            suggestion: Some("days_since_order"),
        }
    );
    assert_eq!(
        message("Spend365d > 1"),
        "column 1: unknown field 'Spend365d'; did you mean 'spend_365d'?"
    );
    assert_eq!(message("zzz = 1"), "column 1: unknown field 'zzz'");
}

#[test]
fn an_unknown_function_is_named_with_a_suggestion() {
    assert_eq!(
        message(r#"has_tags("vip")"#),
        "column 1: unknown function 'has_tags'; did you mean 'has_tag'?"
    );
    assert_eq!(
        message("not has_tag"),
        "column 12: expected '(' after 'has_tag', found end of rule"
    );
    assert_eq!(
        message("has_tag(vip)"),
        "column 9: expected a string in double quotes after '(', found 'vip'"
    );
    assert_eq!(
        message(r#"count("Post Like") > 1"#),
        r#"column 7: "Post Like" is not an event type (lowercase letters, digits and '_', e.g. "post_like")"#
    );
}

#[test]
fn a_value_of_the_wrong_type_is_refused() {
    assert_eq!(
        message("stage > 3"),
        "column 7: '>' does not apply to stage, which takes =, !=, in and not in"
    );
    assert_eq!(
        message("rfm = 5"),
        r#"column 7: rfm takes a value in double quotes, such as "important_value"; found 5"#
    );
    assert_eq!(
        message(r#"orders = "two""#),
        r#"column 10: orders is a whole number; found "two""#
    );
    assert_eq!(
        message("orders = 2.5"),
        "column 10: orders is a whole number; found 2.5"
    );
    assert_eq!(
        message("joined_at > 5"),
        r#"column 13: joined_at is a day: compare it with date("YYYY-MM-DD") or today - 30d; found 5"#
    );
    assert_eq!(
        message("has_left = 1"),
        "column 12: has_left is true or false; found 1"
    );
    assert_eq!(
        message("stage in (\"vip\", 3)"),
        r#"column 18: stage takes a value in double quotes, such as "first_purchase"; found 3"#
    );
    assert!(matches!(
        error("region < \"a\""),
        RuleError::WrongType { column: 8, .. }
    ));
}

#[test]
fn a_value_a_choice_does_not_have_suggests_the_nearest() {
    assert_eq!(
        error(r#"stage = "lsot""#),
        RuleError::UnknownValue {
            column: 9,
            field: "stage".into(),
            value: "lsot".into(),
            suggestion: Some("lost"),
            values: field::STAGES,
        }
    );
    assert_eq!(
        message(r#"stage = "lsot""#),
        r#"column 9: stage has no value "lsot"; did you mean "lost"?"#
    );
    assert_eq!(
        message(r#"journey = "zzz""#),
        r#"column 11: journey has no value "zzz" (its values: stranger, engaged, intent, customer, repeat, advocate)"#
    );
}

#[test]
fn strings_dates_and_numbers_that_cannot_be_read_are_refused() {
    assert_eq!(
        error(r#"has_tag("vip) or orders > 1"#),
        RuleError::UnterminatedString {
            column: 9,
            text: r#""vip) or orders > 1"#.into(),
        }
    );
    assert_eq!(
        message(r#"region = "a\nb""#),
        r#"column 12: expected \" or \\ (the only escapes in a string), found '\n'"#
    );
    assert_eq!(
        message(r#"region = '上海'"#),
        r#"column 10: expected a string in straight double quotes ("), found '''"#
    );
    assert_eq!(
        error(r#"last_order_day < date("2026-02-30")"#),
        RuleError::BadDate {
            column: 23,
            text: r#""2026-02-30""#.into(),
        }
    );
    assert_eq!(
        message(r#"last_order_day < date("yesterday")"#),
        r#"column 23: "yesterday" is not a date (expected date("YYYY-MM-DD"))"#
    );
    assert_eq!(
        message("orders > 30d"),
        "column 10: '30d' is a number of days, which only follows 'today +' or 'today -'"
    );
    assert_eq!(message("orders > 1e5"), "column 10: '1e5' is not a number");
    assert_eq!(
        message("orders > 99999999999999999999"),
        "column 10: '99999999999999999999' is too large"
    );
    assert_eq!(
        message("coupon_share > 0.1234567891"),
        "column 16: '0.1234567891' has more than 9 decimals"
    );
}

#[test]
fn a_rule_error_is_a_standard_error_with_its_column() {
    let e: Box<dyn std::error::Error> = Box::new(error("orders >"));
    assert_eq!(
        e.to_string(),
        "column 9: expected a value after '>', found end of rule"
    );
    assert_eq!(error("orders >").column(), 9);
    assert_eq!(error("  zzz").column(), 3);
    assert_eq!(
        error("region = \"上海\" and zzz").column(),
        19,
        "columns count characters"
    );
}

#[test]
fn a_hand_built_rule_with_a_mistake_is_refused_when_compiled() {
    let table = Shop::new().table();
    let rule = Rule::And(vec![
        Rule::HasTag("vip".into()),
        Rule::Compare {
            subject: Subject::Field(Field::Stage),
            op: Op::Gt,
            value: Value::Number(Number::integer(3)),
        },
    ]);
    let Err(e) = rule.compile(&table) else {
        panic!("compiled");
    };
    assert_eq!(
        e.to_string(),
        "column 26: '>' does not apply to stage, which takes =, !=, in and not in"
    );
    assert!(Rule::And(vec![]).compile(&table).is_err());
}

// ---------------------------------------------------------------- properties

/// The row-by-row meaning of a rule, written from the profile without the table.
fn naive(rule: &Rule, p: &Profile, x: &CustomerExtras, as_of: Date) -> bool {
    match rule {
        Rule::Or(rules) => rules.iter().any(|r| naive(r, p, x, as_of)),
        Rule::And(rules) => rules.iter().all(|r| naive(r, p, x, as_of)),
        Rule::Not(r) => !naive(r, p, x, as_of),
        Rule::HasTag(tag) => x.tags.contains(tag),
        Rule::Compare { subject, op, value } => {
            cell(subject, p, x, as_of).is_some_and(|c| holds(&c, *op, value, subject, as_of))
        }
        Rule::In {
            subject,
            values,
            negated,
        } => cell(subject, p, x, as_of).is_some_and(|c| {
            values.iter().any(|v| holds(&c, Op::Eq, v, subject, as_of)) != *negated
        }),
    }
}

#[derive(Debug)]
enum Cell {
    Int(i64),
    Fen(i64),
    Fraction(f64),
    Name(String),
    Bool(bool),
    Day(Date),
}

fn cell(subject: &Subject, p: &Profile, x: &CustomerExtras, as_of: Date) -> Option<Cell> {
    let z = zone();
    let since = |d: Date| Cell::Int(i64::from((as_of - d).get_days()));
    let field = match subject {
        Subject::Count(kind) => return Some(Cell::Int(i64::from(p.count(kind)))),
        Subject::Field(f) => *f,
    };
    Some(match field {
        Field::Orders => Cell::Int(p.orders.into()),
        Field::PurchaseDays => Cell::Int(p.purchase_days.into()),
        Field::Referrals => Cell::Int(p.referrals.into()),
        Field::NetSpend => Cell::Fen(p.net_spend.fen()),
        Field::Spend365d => Cell::Fen(x.spend_365d.fen()),
        Field::Aov => Cell::Fen(p.aov()?.fen()),
        Field::ReferralRevenue => Cell::Fen(p.referral_revenue.fen()),
        Field::DaysSinceOrder => since(p.last_purchase_day?),
        Field::DaysSinceJoined => since(z.day_of(p.joined_at)),
        Field::DaysSinceInteraction => since(z.day_of(p.last_interaction_at?)),
        Field::MeanIntervalDays => Cell::Fraction(p.mean_interval_days()?),
        Field::CouponShare => Cell::Fraction(p.coupon_share()?),
        Field::Stage => Cell::Name(x.stage?.name().into()),
        Field::Journey => Cell::Name(x.journey.unwrap_or_else(|| journey(p)).name().into()),
        Field::Rfm => Cell::Name(x.rfm.map_or("none", RfmClass::name).into()),
        Field::Channel => Cell::Name(x.channel.as_ref()?.as_str().into()),
        Field::Region => Cell::Name(x.region.clone()?),
        Field::Gender => Cell::Name(x.gender?.as_str().into()),
        Field::HasLeft => Cell::Bool(p.has_left()),
        Field::JoinedAt => Cell::Day(z.day_of(p.joined_at)),
        Field::FirstOrderDay => Cell::Day(p.first_purchase_day?),
        Field::LastOrderDay => Cell::Day(p.last_purchase_day?),
        Field::LastInteractionDay => Cell::Day(z.day_of(p.last_interaction_at?)),
    })
}

fn holds(cell: &Cell, op: Op, value: &Value, subject: &Subject, as_of: Date) -> bool {
    match (cell, value) {
        (Cell::Int(a), Value::Number(n)) => n.as_integer().is_some_and(|n| op.holds(*a, n)),
        (Cell::Fen(a), Value::Number(n)) => n.as_fen().is_some_and(|n| op.holds(*a, n)),
        (Cell::Fraction(a), Value::Number(n)) => {
            let b: f64 = n.to_string().parse().expect("a number");
            a.partial_cmp(&b)
                .is_some_and(|o| op.holds(o, std::cmp::Ordering::Equal))
        }
        (Cell::Name(a), Value::Text(b)) => {
            let b = match subject {
                Subject::Field(Field::Channel) => Channel::parse(b)
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_else(|_| b.clone()),
                _ => b.clone(),
            };
            op.holds(a, &b)
        }
        (Cell::Bool(a), Value::Bool(b)) => op.holds(a, b),
        (Cell::Day(a), Value::Date(b)) => op.holds(a, b),
        (Cell::Day(a), Value::Today(n)) => op.holds(
            *a,
            as_of
                .checked_add(jiff::Span::new().days(*n))
                .expect("a day"),
        ),
        other => panic!("no comparison of {other:?}"),
    }
}

/// Constants for a subject of `kind`: `wide` for printing and parsing, else drawn near
/// the values of [`arb_row`] so that comparisons land on both sides and on the boundary.
fn arb_value(kind: Kind, wide: bool) -> BoxedStrategy<Value> {
    fn num(m: i64, s: u8) -> Value {
        Value::Number(Number::new(m, s).expect("a number"))
    }
    match (kind, wide) {
        (Kind::Count, true) => any::<i64>().prop_map(|n| num(n, 0)).boxed(),
        (Kind::Count, false) => (-2i64..45).prop_map(|n| num(n, 0)).boxed(),
        (Kind::Money, true) => (-1_000_000_000_000i64..1_000_000_000_000, 0u8..=2)
            .prop_map(|(m, s)| num(m, s))
            .boxed(),
        (Kind::Money, false) => prop::sample::select(vec![
            num(0, 0),
            num(49_999, 2),
            num(500, 0),
            num(50_001, 2),
            num(25_000, 2),
            num(9_995, 1),
            num(1, 0),
        ])
        .boxed(),
        (Kind::Decimal, true) => (any::<i64>(), 0u8..=MAX_DECIMALS)
            .prop_map(|(m, s)| num(m, s))
            .boxed(),
        (Kind::Decimal, false) => prop::sample::select(vec![
            num(0, 0),
            num(25, 2),
            num(33, 2),
            num(5, 1),
            num(75, 2),
            num(1, 0),
            num(3, 0),
            num(125, 1),
        ])
        .boxed(),
        (Kind::Choice(values), _) => prop::sample::select(values.to_vec())
            .prop_map(|v| Value::Text(v.to_owned()))
            .boxed(),
        (Kind::Text, true) => any::<String>().prop_map(Value::Text).boxed(),
        (Kind::Text, false) => {
            prop::sample::select(vec!["douyin", "抖音", "store", "north", "south"])
                .prop_map(|v| Value::Text(v.to_owned()))
                .boxed()
        }
        (Kind::Bool, _) => any::<bool>().prop_map(Value::Bool).boxed(),
        (Kind::Date, wide) => {
            let range = if wide { 40_000i64 } else { 45 };
            prop_oneof![
                (-range..range).prop_map(|n| Value::Today(n as i32)),
                // A date constant lies in the days accepted, 1900–2100.
                (-range.min(27_000)..range.min(27_000)).prop_map(|n| Value::Date(days_before(n))),
            ]
            .boxed()
        }
    }
}

fn arb_subject(wide: bool) -> BoxedStrategy<Subject> {
    let kinds = if wide {
        "[a-z][a-z0-9_]{0,12}".boxed()
    } else {
        prop::sample::select(vec!["post_like", "view", "share"])
            .prop_map(str::to_owned)
            .boxed()
    };
    prop_oneof![
        4 => prop::sample::select(Field::ALL.to_vec()).prop_map(Subject::Field),
        1 => kinds.prop_map(Subject::Count),
    ]
    .boxed()
}

fn arb_condition(wide: bool) -> BoxedStrategy<Rule> {
    let tags = if wide {
        "\\PC{1,12}"
            .prop_filter("a tag", |t| !t.trim().is_empty())
            .boxed()
    } else {
        prop::sample::select(vec!["outdoor", "vip", "tea"])
            .prop_map(str::to_owned)
            .boxed()
    };
    let comparison = arb_subject(wide).prop_flat_map(move |subject| {
        let kind = parse::subject_kind(&subject).expect("a valid subject");
        let ops = if kind.is_ordered() {
            vec![Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge]
        } else {
            vec![Op::Eq, Op::Ne]
        };
        prop_oneof![
            (prop::sample::select(ops), arb_value(kind, wide)).prop_map({
                let subject = subject.clone();
                move |(op, value)| Rule::Compare {
                    subject: subject.clone(),
                    op,
                    value,
                }
            }),
            (
                prop::collection::vec(arb_value(kind, wide), 1..4),
                any::<bool>()
            )
                .prop_map(move |(values, negated)| Rule::In {
                    subject: subject.clone(),
                    values,
                    negated,
                }),
        ]
    });
    prop_oneof![5 => comparison, 1 => tags.prop_map(Rule::HasTag)].boxed()
}

/// `And` / `Or` of the rules, flattened as the parser flattens them.
fn join(and: bool, rules: Vec<Rule>) -> Rule {
    let mut flat = Vec::new();
    for r in rules {
        match r {
            Rule::And(inner) if and => flat.extend(inner),
            Rule::Or(inner) if !and => flat.extend(inner),
            r => flat.push(r),
        }
    }
    if and { Rule::And(flat) } else { Rule::Or(flat) }
}

fn arb_rule(wide: bool) -> impl Strategy<Value = Rule> {
    arb_condition(wide).prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(|r| join(true, r)),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|r| join(false, r)),
            inner.prop_map(|r| Rule::Not(Box::new(r))),
        ]
    })
}

prop_compose! {
    fn arb_row()(
        id in 0u32..1_000_000,
        joined_back in 0i64..45,
        purchase in prop::option::of((1u32..5, 0i64..45, 0i64..20, 0u32..5)),
        fen in prop::sample::select(vec![0i64, 49_999, 50_000, 50_001, 12_345, 99_950]),
        interaction in prop::option::of(0i64..45),
        likes in 0u32..5,
        views in 0u32..3,
        left in any::<bool>(),
        referrals in 0u32..3,
        stage in prop::option::of(prop::sample::select(Stage::ALL.to_vec())),
        journey in prop::option::of(prop::sample::select(Journey::ALL.to_vec())),
        rfm in prop::option::of(prop::sample::select(RfmClass::ALL.to_vec())),
        spend in prop::sample::select(vec![0i64, 49_999, 50_000, 50_001]),
        tags in prop::sample::subsequence(vec!["outdoor", "vip", "tea"], 0..=3),
        channel in prop::option::of(prop::sample::select(vec!["douyin", "store"])),
        region in prop::option::of(prop::sample::select(vec!["north", "south"])),
        gender in prop::option::of(prop::sample::select(vec![Gender::Female, Gender::Male, Gender::Other])),
    ) -> (Profile, CustomerExtras) {
        let z = zone();
        let mut p = customer(&format!("c{id}"), joined_back);
        if let Some((days, last_back, span, extra_orders)) = purchase {
            p = buyer(p, days + extra_orders, days, last_back, if days > 1 { span } else { 0 }, fen);
            p.coupon_orders = extra_orders.min(p.orders);
        }
        p.last_interaction_at = interaction.map(|b| z.start_of(days_before(b)));
        if likes > 0 {
            p.event_counts.insert("post_like".into(), likes);
        }
        if views > 0 {
            p.event_counts.insert("view".into(), views);
        }
        if left {
            p.left_at = Some(z.start_of(days_before(0)));
        }
        p.referrals = referrals;
        p.referral_revenue = Money::from_fen(i64::from(referrals) * 10_000);
        let x = CustomerExtras {
            stage,
            journey,
            rfm,
            spend_365d: Money::from_fen(spend),
            tags: tags.into_iter().map(str::to_owned).collect(),
            channel: channel.map(|c| Channel::parse(c).expect("channel")),
            region: region.map(str::to_owned),
            gender,
        };
        (p, x)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_printed_rule_parses_back_to_itself(rule in arb_rule(true)) {
        let text = rule.to_string();
        prop_assert_eq!(Rule::parse(&text), Ok(rule), "{}", text);
    }

    #[test]
    fn column_evaluation_equals_row_by_row_evaluation(
        rows in prop::collection::vec(arb_row(), 0..40),
        rule in arb_rule(false),
    ) {
        let (profiles, extras): (Vec<Profile>, Vec<CustomerExtras>) = rows.iter().cloned().unzip();
        let table = SegmentTable::build(&profiles, &extras, AS_OF, &zone());
        let members = rule.members(&table).expect("a generated rule compiles");
        let naive: Vec<bool> = rows.iter().map(|(p, x)| naive(&rule, p, x, AS_OF)).collect();
        prop_assert_eq!(members.to_bools(), naive, "{}", rule);
    }
}

// ---------------------------------------------------------------- speed and memory

/// `cargo test --release -p siyu-core a_million -- --ignored --nocapture`
#[test]
#[ignore = "builds a million customers: run in release"]
fn a_million_profiles_evaluate_within_fifty_milliseconds_and_fit_in_300_mib() {
    let bench = bench_segments(1_000_000, 7, 20);
    println!(
        "{} customers: table built in {:?}, {:.1} MiB",
        bench.customers,
        bench.build,
        bench.heap_bytes as f64 / (1024.0 * 1024.0)
    );
    for r in &bench.rules {
        println!(
            "{:>8} members  best {:>9.3?}  median {:>9.3?}  compile {:>8.3?}  {}",
            r.members, r.best, r.median, r.compile, r.rule
        );
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status
            .lines()
            .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
        {
            println!("process {line}");
        }
    }
    assert!(bench.heap_bytes < 300 * 1024 * 1024);
    if !cfg!(debug_assertions) {
        for r in &bench.rules {
            assert!(r.median.as_millis() < 50, "{}: {:?}", r.rule, r.median);
        }
    }
}

#[test]
fn deep_nesting_is_refused_with_the_limit_not_a_stack_overflow() {
    for depth in [MAX_RULE_DEPTH + 1, 2_000, 100_000] {
        let parens = format!("{}orders > 1{}", "(".repeat(depth), ")".repeat(depth));
        let nots = format!("{}orders > 1", "not ".repeat(depth));
        for rule in [parens, nots] {
            let e = Rule::parse(&rule).expect_err("too deep");
            assert!(
                matches!(e, RuleError::TooDeep { .. } | RuleError::TooLong { .. }),
                "{depth}: {e}"
            );
        }
    }
    let e = error(&format!("{}orders > 1{}", "(".repeat(33), ")".repeat(33)));
    assert_eq!(
        e.to_string(),
        "column 33: the rule nests parentheses and `not` more than 32 deep"
    );
    let e = error(&format!("{}orders > 1", "not ".repeat(33)));
    assert_eq!(e.column(), 129);
}

#[test]
fn nesting_up_to_the_limit_parses_prints_and_evaluates() {
    let shop = counts_shop();
    // An even number of `not`s, so both rules mean `orders > 1`.
    let depth = MAX_RULE_DEPTH;
    let parens = format!("{}orders > 1{}", "(".repeat(depth), ")".repeat(depth));
    let nots = format!("{}orders > 1", "not ".repeat(depth));
    for text in [parens, nots] {
        let rule = Rule::parse(&text).expect("at the limit");
        let printed = rule.to_string();
        assert_eq!(Rule::parse(&printed).expect("printed form"), rule);
        assert_eq!(shop.members(&text), shop.members("orders > 1"));
    }
}

#[test]
fn a_rule_longer_than_the_limit_is_refused_by_its_length() {
    let long = std::iter::repeat_n("orders > 1", MAX_RULE_CHARS / 14 + 2)
        .collect::<Vec<_>>()
        .join(" or ");
    assert!(long.chars().count() > MAX_RULE_CHARS);
    let e = error(&long);
    assert!(
        e.to_string()
            .contains(&format!("at most {MAX_RULE_CHARS} are accepted")),
        "{e}"
    );
    let chinese = format!("has_tag(\"{}\")", "户".repeat(MAX_RULE_CHARS));
    assert!(matches!(error(&chinese), RuleError::TooLong { .. }));
}
