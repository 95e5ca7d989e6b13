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
use siyu::service::reports::{funnel_report, gmv, referral_report};
use siyu_core::import::Kind;
use siyu_core::lifecycle::{LifecycleSettings, spend_over_days, stages};
use siyu_core::metrics::funnel::funnel;
use siyu_core::metrics::gmv::gmv_factors;
use siyu_core::metrics::referrals::referrals;
use siyu_core::metrics::shop::{Period, Shop};
use siyu_core::profile::build_profiles;
use siyu_core::{TenantZone, Timestamp};
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
    let mut customers = String::from("customer_id,referrer_id,joined_at\n");
    for (id, referrer, joined) in &raw.customers {
        let referrer = referrer
            .filter(|r| r != id)
            .map(|r| format!("c{r}"))
            .unwrap_or_default();
        let joined = joined
            .map(|d| local(today, d, u32::from(*id)))
            .unwrap_or_default();
        let _ = writeln!(customers, "c{id},{referrer},{joined}");
    }
    let mut orders = String::from("order_id,customer_id,ordered_at,amount,status\n");
    for (i, (customer, ago, fen, paid)) in raw.orders.iter().enumerate() {
        let _ = writeln!(
            orders,
            "o{i},c{customer},{},{}.{:02},{}",
            local(today, *ago, i as u32),
            fen / 100,
            fen % 100,
            if *paid { "paid" } else { "refunded" },
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
