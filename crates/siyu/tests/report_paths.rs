//! The reports read the store the fast way (stage lines from stored profiles or from
//! streamed columns, only the events a report needs) and give exactly what the plain way
//! gives: every fact read into memory and the definitions of siyu-core applied. Random
//! shops dated around today, some facts after it; SQLite always, PostgreSQL too when
//! `SIYU_TEST_POSTGRES` is set.

mod common;

use std::fmt::Write as _;

use jiff::civil::Date;
use proptest::prelude::*;

use siyu::service::import::{ImportOptions, import_file};
use siyu::service::lifecycle::lifecycle;
use siyu::service::profiles::raw_facts;
use std::collections::HashMap;

use siyu::service::overview::overview;
use siyu::service::reports::{
    By, channel_report, channel_report_given, cohort_report, formula_clv_report, funnel_report,
    gmv, model_clv, pareto_report, referral_report,
};
use siyu_core::import::Kind;
use siyu_core::lifecycle::{LifecycleSettings, spend_over_days, stages};
use siyu_core::metrics::channels::{channels, formula_clv};
use siyu_core::metrics::cohorts::cohorts;
use siyu_core::metrics::funnel::funnel;
use siyu_core::metrics::gmv::{decompose, gmv_factors};
use siyu_core::metrics::overview::Overview;
use siyu_core::metrics::pareto::pareto;
use siyu_core::metrics::referrals::referrals;
use siyu_core::metrics::shop::{Period, Shop};
use siyu_core::profile::build_profiles;
use siyu_core::{CustomerId, Money, TenantZone, Timestamp};
use siyu_store::{Store, Tenant};

const KINDS: [&str; 7] = [
    "post_like",
    "view",
    "left",
    "message",
    "share",
    "add_to_cart",
    "follow",
];

/// Customers (id, referrer, joined days ago), orders (customer, days ago, fen, paid) and
/// events (customer, kind, days ago); a negative "days ago" is after today.
#[derive(Debug, Clone)]
struct Raw {
    customers: Vec<(u8, Option<u8>, Option<i16>)>,
    orders: Vec<(u8, i16, u32, bool)>,
    events: Vec<(u8, usize, i16)>,
}

fn days_ago() -> impl Strategy<Value = i16> {
    prop_oneof![12 => 0i16..500, 1 => -3i16..0]
}

fn raw() -> impl Strategy<Value = Raw> {
    (
        prop::collection::vec(
            (
                0u8..10,
                prop::option::of(0u8..10),
                prop::option::of(days_ago()),
            ),
            0..10,
        ),
        prop::collection::vec((0u8..12, days_ago(), 100u32..50_000, any::<bool>()), 0..30),
        prop::collection::vec((0u8..12, 0..KINDS.len(), days_ago()), 0..30),
    )
        .prop_map(|(customers, orders, events)| Raw {
            customers,
            orders,
            events,
        })
}

fn local(today: Date, ago: i16, hour: u32) -> String {
    let day = today - jiff::Span::new().days(i64::from(ago));
    format!("{day} {:02}:{:02}:00", hour % 24, (hour * 7) % 60)
}

fn load(store: &mut dyn Store, tenant: &Tenant, raw: &Raw, today: Date) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut customers = String::from("customer_id,referrer_id,joined_at,channel\n");
    for (id, referrer, joined) in &raw.customers {
        let referrer = referrer
            .filter(|r| r != id)
            .map(|r| format!("c{r}"))
            .unwrap_or_default();
        let joined = joined
            .map(|d| local(today, d, u32::from(*id)))
            .unwrap_or_default();
        let channel = ["douyin", "store", ""][usize::from(*id) % 3];
        let _ = writeln!(customers, "c{id},{referrer},{joined},{channel}");
    }
    let mut orders = String::from("order_id,customer_id,ordered_at,amount,status,channel\n");
    for (i, (customer, ago, fen, paid)) in raw.orders.iter().enumerate() {
        let _ = writeln!(
            orders,
            "o{i},c{customer},{},{}.{:02},{},{}",
            local(today, *ago, i as u32),
            fen / 100,
            fen % 100,
            if *paid { "paid" } else { "refunded" },
            ["", "wecom"][i % 2],
        );
    }
    let mut events = String::from("event_id,customer_id,type,occurred_at\n");
    for (i, (customer, kind, ago)) in raw.events.iter().enumerate() {
        let _ = writeln!(
            events,
            "e{i},c{customer},{},{}",
            KINDS[*kind],
            local(today, *ago, 3 * i as u32)
        );
    }
    for (i, (kind, text)) in [
        (Kind::Customers, customers),
        (Kind::Orders, orders),
        (Kind::Events, events),
    ]
    .into_iter()
    .enumerate()
    {
        if text.lines().count() < 2 {
            continue;
        }
        let path = dir.path().join(format!("{i}.csv"));
        std::fs::write(&path, text).expect("write");
        import_file(store, tenant, kind, &path, ImportOptions::default()).expect("import");
    }
}

fn check(store: &mut dyn Store, tenant: &Tenant, raw: &Raw) -> Result<(), TestCaseError> {
    let zone: TenantZone = tenant.zone.clone();
    let today = zone.day_of(Timestamp::now());
    load(store, tenant, raw, today);
    let facts = raw_facts(store, tenant).expect("facts");
    let shop = Shop {
        customers: facts.customers.clone(),
        orders: facts.orders.iter().map(|o| o.fact.clone()).collect(),
        events: facts.events.clone(),
        zone: zone.clone(),
    };
    for as_of in [
        today,
        today - jiff::Span::new().days(40),
        today.tomorrow().expect("day"),
    ] {
        let profiles = build_profiles(
            facts.customers.clone(),
            facts.orders.clone(),
            facts.events.clone(),
            &zone,
            Some(as_of),
        );
        let spend = spend_over_days(&facts.orders, &zone, as_of, 365);
        let plain = stages(&profiles, &spend, as_of, LifecycleSettings::default());
        let fast = lifecycle(store, tenant, as_of).expect("lifecycle");
        prop_assert_eq!(&fast.customers, &plain, "lifecycle as of {}", as_of);
        let steps = funnel_report(store, tenant, as_of).expect("funnel");
        prop_assert_eq!(steps.customers, profiles.len() as u64);
        prop_assert_eq!(&steps.steps, &funnel(&profiles), "funnel as of {}", as_of);
        prop_assert_eq!(
            referral_report(store, tenant, as_of, 5).expect("referrals"),
            referrals(&shop, as_of, 5)
        );
        let period = Period::new(as_of - jiff::Span::new().days(90), as_of).expect("period");
        let report = gmv(store, tenant, period, None, None, None).expect("gmv");
        prop_assert_eq!(report.slices[0].factors, gmv_factors(&shop, period, None));
        // Against an earlier period, whose end many customers' latest `left` is after.
        let compare = Period::new(
            as_of - jiff::Span::new().days(200),
            as_of - jiff::Span::new().days(91),
        )
        .expect("period");
        let report = gmv(store, tenant, period, Some(compare), None, None).expect("gmv");
        let (before, after) = (
            gmv_factors(&shop, compare, None),
            gmv_factors(&shop, period, None),
        );
        prop_assert_eq!(report.slices[0].factors, after);
        prop_assert_eq!(
            format!("{:?}", report.slices[0].compared),
            format!("{:?}", Some(decompose(before, after))),
            "compared with {:?}",
            compare
        );
        shop_reports(store, tenant, &shop, as_of, period)?;
    }
    Ok(())
}

/// The shop reports read as columns from the store against the same reports of the
/// whole shop in memory: overview, cohorts, pareto, channels (with a model CLV for some
/// customers), the formula CLV and GMV by channel.
fn shop_reports(
    store: &mut dyn Store,
    tenant: &Tenant,
    shop: &Shop,
    as_of: Date,
    period: Period,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        overview(store, tenant).expect("overview"),
        Overview::compute(shop.customers.clone(), shop.orders.clone(), &shop.zone)
    );
    prop_assert_eq!(
        cohort_report(store, tenant, as_of, 6).expect("cohorts"),
        cohorts(shop, as_of, 6)
    );
    prop_assert_eq!(
        pareto_report(store, tenant, Some(period), as_of).expect("pareto"),
        pareto(shop, period)
    );
    let model: Vec<(CustomerId, Money)> = shop
        .customers
        .iter()
        .step_by(2)
        .enumerate()
        .map(|(i, c)| (c.id.clone(), Money::from_fen(100 * i as i64 + 7)))
        .collect();
    let by_id: HashMap<CustomerId, Money> = model.iter().cloned().collect();
    for m in [None, Some(&model)] {
        let costs = store.channel_costs(tenant).expect("costs");
        prop_assert_eq!(
            channel_report_given(store, tenant, period, m.map(|m| m.as_slice()))
                .expect("channels")
                .channels,
            channels(shop, period, &costs, m.map(|_| &by_id))
        );
    }
    // The model fitted on the columns, against the model fitted on the summary by id.
    let plain = model_clv(store, tenant, period.to).expect("model");
    prop_assert_eq!(
        channel_report(store, tenant, period).expect("channels"),
        channel_report_given(store, tenant, period, plain.as_deref()).expect("channels")
    );
    let clv = formula_clv_report(store, tenant, as_of, Some(By::Channel)).expect("clv");
    let by_channel = gmv(store, tenant, period, None, None, Some(By::Channel)).expect("gmv");
    prop_assert_eq!(&clv[0].clv, &formula_clv(shop, as_of, None));
    let mut labels: Vec<String> = shop
        .customers
        .iter()
        .map(|c| {
            format!(
                "channel {}",
                c.channel.as_ref().map_or("unknown", |c| c.as_str())
            )
        })
        .collect();
    labels.sort();
    labels.dedup();
    prop_assert_eq!(clv.len(), labels.len() + 1);
    prop_assert_eq!(by_channel.slices.len(), labels.len() + 1);
    for ((label, slice), factors) in labels.iter().zip(&clv[1..]).zip(&by_channel.slices[1..]) {
        let member = |id: &CustomerId| {
            shop.customers.iter().any(|c| {
                &c.id == id
                    && &format!(
                        "channel {}",
                        c.channel.as_ref().map_or("unknown", |c| c.as_str())
                    ) == label
            })
        };
        prop_assert_eq!(&slice.slice, label);
        prop_assert_eq!(&slice.clv, &formula_clv(shop, as_of, Some(&member)));
        prop_assert_eq!(&factors.slice, label);
        prop_assert_eq!(factors.factors, gmv_factors(shop, period, Some(&member)));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_fast_reads_give_the_plain_figures_on_sqlite(raw in raw()) {
        let mut store = siyu_store::open(":memory:").expect("sqlite");
        let tenant = store.tenant("shop").expect("tenant");
        check(store.as_mut(), &tenant, &raw)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn the_fast_reads_give_the_plain_figures_on_postgres(raw in raw()) {
        let Some((mut store, tenant)) = common::postgres_tenant("paths") else { return Ok(()) };
        check(store.as_mut(), &tenant, &raw)?;
    }
}

/// On a shop large enough to fit the models: the model CLVs fitted on the columns are
/// those fitted on the summary by id, to the fen, in every channel's figures.
#[test]
fn the_channels_model_clv_from_columns_is_the_one_by_id() {
    let mut store = siyu_store::open(":memory:").expect("sqlite");
    let tenant = store.tenant("shop").expect("tenant");
    let today = tenant.zone.day_of(Timestamp::now());
    let config = siyu_core::demo::DemoConfig {
        customers: 3_000,
        ..siyu_core::demo::DemoConfig::new(today)
    };
    siyu::service::demo::build(store.as_mut(), &tenant, &config, None, false).expect("demo");
    let period = Period::new(today - jiff::Span::new().days(500), today).expect("period");
    let plain = model_clv(store.as_mut(), &tenant, period.to).expect("model");
    assert!(
        plain.as_ref().is_some_and(|m| m.len() > 1_000),
        "a model is fitted: {:?}",
        plain.as_ref().map(|m| m.len())
    );
    let fast = channel_report(store.as_mut(), &tenant, period).expect("channels");
    assert!(
        fast.channels
            .iter()
            .any(|c| c.model_clv.is_some_and(|m| m.fen() > 0))
    );
    assert_eq!(
        fast,
        channel_report_given(store.as_mut(), &tenant, period, plain.as_deref()).expect("channels")
    );
}
