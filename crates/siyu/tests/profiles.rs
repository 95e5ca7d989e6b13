//! Profiles kept current at ingest equal a full rebuild from the raw data, whatever the
//! sequence of imports (new customers, re-imported and refunded orders, orders moving to
//! another customer, referrers changing, events, departures). SQLite always; PostgreSQL
//! too when `SIYU_TEST_POSTGRES` is set.

mod common;

use std::fmt::Write as _;

use proptest::prelude::*;

use siyu::service::import::{ImportOptions, import_file};
use siyu::service::profiles::{raw_facts, rebuild};
use siyu_core::Money;
use siyu_core::import::Kind;
use siyu_core::profile::{Profile, build_profiles};
use siyu_store::{Store, Tenant};

#[derive(Debug, Clone)]
enum Ingest {
    Customers(Vec<(u8, Option<u8>, Option<u8>)>),
    Orders(Vec<(u8, u8, u16, u32, bool, bool)>),
    Events(Vec<(u8, u8, u8, u16)>),
}

impl Ingest {
    fn file(&self) -> (Kind, String) {
        let mut text = String::new();
        match self {
            Ingest::Customers(rows) => {
                text.push_str("customer_id,referrer_id,joined_at\n");
                for (id, referrer, joined) in rows {
                    let referrer = referrer
                        .filter(|r| r != id)
                        .map(|r| format!("c{r}"))
                        .unwrap_or_default();
                    let joined = joined
                        .map(|d| format!("2024-01-{:02}", 1 + d % 28))
                        .unwrap_or_default();
                    let _ = writeln!(text, "c{id},{referrer},{joined}");
                }
                (Kind::Customers, text)
            }
            Ingest::Orders(rows) => {
                text.push_str("order_id,customer_id,ordered_at,amount,coupon_code,status\n");
                for (order, customer, minute, fen, coupon, refunded) in rows {
                    let hours = u32::from(*minute) * 17;
                    let _ = writeln!(
                        text,
                        "o{order},c{customer},2024-02-{:02} {:02}:{:02}:00,{}.{:02},{},{}",
                        1 + (hours / 24) % 28,
                        hours % 24,
                        minute % 60,
                        fen / 100,
                        fen % 100,
                        if *coupon { "NEW10" } else { "" },
                        if *refunded { "refunded" } else { "paid" },
                    );
                }
                (Kind::Orders, text)
            }
            Ingest::Events(rows) => {
                text.push_str("event_id,customer_id,type,occurred_at\n");
                let kinds = ["post_like", "view", "left", "message"];
                for (event, customer, kind, minute) in rows {
                    let hours = u32::from(*minute) * 13;
                    let _ = writeln!(
                        text,
                        "e{event},c{customer},{},2024-02-{:02} {:02}:00:00",
                        kinds[usize::from(*kind) % kinds.len()],
                        1 + (hours / 24) % 28,
                        hours % 24,
                    );
                }
                (Kind::Events, text)
            }
        }
    }
}

fn ingest() -> impl Strategy<Value = Ingest> {
    prop_oneof![
        prop::collection::vec(
            (0u8..8, prop::option::of(0u8..8), prop::option::of(0u8..28)),
            1..6
        )
        .prop_map(Ingest::Customers),
        prop::collection::vec(
            (
                0u8..12,
                0u8..8,
                0u16..400,
                100u32..50_000,
                any::<bool>(),
                prop::bool::weighted(0.2)
            ),
            1..10
        )
        .prop_map(Ingest::Orders),
        prop::collection::vec((0u8..16, 0u8..8, 0u8..4, 0u16..400), 1..8).prop_map(Ingest::Events),
    ]
}

fn stored(store: &mut dyn Store, tenant: &Tenant) -> Vec<Profile> {
    let mut out = Vec::new();
    store
        .scan_profiles(tenant, &mut |p| out.push(p))
        .expect("profiles");
    out
}

/// The profiles by definition: built from everything the store holds.
fn from_raw(store: &mut dyn Store, tenant: &Tenant) -> Vec<Profile> {
    let facts = raw_facts(store, tenant).expect("facts");
    build_profiles(
        facts.customers,
        facts.orders,
        facts.events,
        &tenant.zone,
        None,
    )
}

fn check(store: &mut dyn Store, tenant: &Tenant, ingests: &[Ingest]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, ingest) in ingests.iter().enumerate() {
        let (kind, text) = ingest.file();
        let path = dir.path().join(format!("{i}.csv"));
        std::fs::write(&path, text).expect("write");
        import_file(store, tenant, kind, &path, ImportOptions::default()).expect("import");
        let kept = stored(store, tenant);
        prop_assert_eq!(&kept, &from_raw(store, tenant), "after ingest {}", i);
    }
    let kept = stored(store, tenant);
    rebuild(store, tenant).expect("rebuild");
    prop_assert_eq!(kept, stored(store, tenant));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn profiles_kept_at_ingest_equal_a_rebuild_on_sqlite(ingests in prop::collection::vec(ingest(), 1..7)) {
        let mut store = siyu_store::open(":memory:").expect("sqlite");
        let tenant = store.tenant("shop").expect("tenant");
        check(store.as_mut(), &tenant, &ingests)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn profiles_kept_at_ingest_equal_a_rebuild_on_postgres(ingests in prop::collection::vec(ingest(), 1..7)) {
        let Some((mut store, tenant)) = common::postgres_tenant("profiles") else { return Ok(()) };
        check(store.as_mut(), &tenant, &ingests)?;
    }
}

#[test]
fn a_refund_and_a_moved_order_update_both_customers_and_the_referrer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = siyu_store::open(":memory:").expect("sqlite");
    let tenant = store.tenant("shop").expect("tenant");
    let files = [
        (Kind::Customers, "customer_id,referrer_id\na,\nb,a\n"),
        (
            Kind::Orders,
            "order_id,customer_id,ordered_at,amount\n1,b,2024-02-01,100\n2,b,2024-02-03,50\n",
        ),
        // Order 2 is refunded; order 1 turns out to be c's.
        (
            Kind::Orders,
            "order_id,customer_id,ordered_at,amount,status\n1,c,2024-02-01,100,paid\n2,b,2024-02-03,50,refunded\n",
        ),
    ];
    for (i, (kind, text)) in files.iter().enumerate() {
        let path = dir.path().join(format!("{i}.csv"));
        std::fs::write(&path, text).expect("write");
        import_file(
            store.as_mut(),
            &tenant,
            *kind,
            &path,
            ImportOptions::default(),
        )
        .expect("import");
    }
    let profiles = stored(store.as_mut(), &tenant);
    let get = |id: &str| {
        profiles
            .iter()
            .find(|p| p.customer_id.as_str() == id)
            .expect(id)
    };
    assert_eq!(
        (get("a").referrals, get("a").referral_revenue),
        (1, Money::ZERO)
    );
    assert_eq!((get("b").orders, get("b").net_spend), (0, Money::ZERO));
    assert_eq!(
        (get("c").orders, get("c").net_spend),
        (1, Money::from_fen(10_000))
    );
}
