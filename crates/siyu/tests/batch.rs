//! Profiles kept current by API batches (identify, track, order, in any mix, with
//! duplicates and items the store has seen through a file) equal a rebuild from the raw
//! data. SQLite always; PostgreSQL too when `SIYU_TEST_POSTGRES` is set.

mod common;

use proptest::prelude::*;
use serde_json::{Value, json};

use siyu::service::import::{ImportOptions, import_file};
use siyu::service::ingest::{Checked, message_id_of, parse_item, write_batch, write_batches};
use siyu::service::profiles::raw_facts;
use siyu::service::segments::rule_settings;
use siyu_core::import::Kind;
use siyu_core::profile::{Profile, build_profiles};
use siyu_store::{Store, Tenant};

/// An item: (kind 0..3, message, customer, day, amount or event kind, referrer).
type Spec = (u8, u8, u8, u8, u16, Option<u8>);

#[derive(Debug, Clone)]
enum Step {
    /// A batch of items.
    Batch(Vec<Spec>),
    /// Events imported from a file (their ids may come again in a batch).
    File(Vec<(u8, u8, u8)>),
}

fn item(kind: u8, message: u8, customer: u8, day: u8, n: u16, referrer: Option<u8>) -> Value {
    let at = format!("2024-03-{:02} 10:00:00", 1 + day % 28);
    let event = ["view", "post_like", "left", "share"][usize::from(n % 4)];
    match kind % 3 {
        0 => {
            json!({"type": "identify", "message_id": format!("m{message}"), "customer_id": format!("c{customer}"),
                    "traits": {"referrer_id": referrer.filter(|r| *r != customer).map(|r| format!("c{r}"))}})
        }
        1 => {
            json!({"type": "track", "message_id": format!("m{message}"), "customer_id": format!("c{customer}"),
                    "timestamp": at, "event": event})
        }
        _ => {
            json!({"type": "order", "message_id": format!("m{message}"), "customer_id": format!("c{customer}"),
                    "timestamp": at, "order_id": format!("o{}", n % 6), "amount": format!("{}.{:02}", n / 100, n % 100),
                    "status": if n.is_multiple_of(7) { "refunded" } else { "paid" }})
        }
    }
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let batch = prop::collection::vec(
        (
            0u8..3,
            0u8..30,
            0u8..6,
            0u8..28,
            100u16..9_000,
            prop::option::of(0u8..6),
        ),
        1..8,
    )
    .prop_map(Step::Batch);
    let file = prop::collection::vec((0u8..30, 0u8..6, 0u8..28), 1..4).prop_map(Step::File);
    prop::collection::vec(prop_oneof![3 => batch, 1 => file], 1..8)
}

fn stored(store: &mut dyn Store, tenant: &Tenant) -> Vec<Profile> {
    let mut out = Vec::new();
    store
        .scan_profiles(tenant, &mut |p| out.push(p))
        .expect("profiles");
    out
}

fn from_raw(store: &mut dyn Store, tenant: &Tenant) -> Vec<Profile> {
    let f = raw_facts(store, tenant).expect("facts");
    build_profiles(f.customers, f.orders, f.events, &tenant.zone, None)
}

fn check(store: &mut dyn Store, tenant: &Tenant, steps: &[Step]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Batch(items) => {
                let settings = rule_settings(store, tenant).expect("settings");
                write_batch(store, tenant, &settings, checked(items, tenant)).expect("batch");
            }
            Step::File(events) => {
                let mut text = String::from("event_id,customer_id,type,occurred_at\n");
                for (m, c, d) in events {
                    text.push_str(&format!(
                        "m{m},c{c},view,2024-03-{:02} 08:00:00\n",
                        1 + d % 28
                    ));
                }
                let path = dir.path().join(format!("{i}.csv"));
                std::fs::write(&path, text).expect("write");
                import_file(store, tenant, Kind::Events, &path, ImportOptions::default())
                    .expect("import");
            }
        }
        prop_assert_eq!(
            stored(store, tenant),
            from_raw(store, tenant),
            "after step {}",
            i
        );
    }
    Ok(())
}

fn checked(items: &[Spec], tenant: &Tenant) -> Vec<Checked> {
    items
        .iter()
        .map(|&(k, m, c, d, n, r)| {
            let v = item(k, m, c, d, n, r);
            parse_item(&v, &tenant.zone).map_err(|e| (message_id_of(&v), e))
        })
        .collect()
}

/// Each batch step is cut into batches of three items, written as one group (one
/// transaction, as `siyu serve` writes what its writers sent meanwhile) on `group`, and
/// one after the other on `alone`: the answers and the profiles must be the same.
fn check_groups(
    group: (&mut dyn Store, &Tenant),
    alone: (&mut dyn Store, &Tenant),
    steps: &[Step],
) -> Result<(), TestCaseError> {
    let ((group, g), (alone, a)) = (group, alone);
    for (i, step) in steps.iter().enumerate() {
        let Step::Batch(items) = step else { continue };
        let settings = rule_settings(group, g).expect("settings");
        let batches = items.chunks(3).map(|c| checked(c, g)).collect();
        let together = write_batches(group, g, &settings, batches).expect("group");
        let settings = rule_settings(alone, a).expect("settings");
        let one_by_one: Vec<_> = items
            .chunks(3)
            .map(|c| write_batch(alone, a, &settings, checked(c, a)).expect("batch"))
            .collect();
        prop_assert_eq!(&together, &one_by_one, "answers after step {}", i);
        // An identify without a join joins a customer at the time it is written.
        let written_at = |store: &mut dyn Store, tenant: &Tenant| {
            let cut = siyu_core::Timestamp::from_second(1_735_689_600).expect("2025");
            let mut profiles = stored(store, tenant);
            for p in &mut profiles {
                p.joined_at = p.joined_at.min(cut);
            }
            profiles
        };
        prop_assert_eq!(
            written_at(group, g),
            written_at(alone, a),
            "after step {}",
            i
        );
        prop_assert_eq!(stored(group, g), from_raw(group, g), "after step {}", i);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_group_of_batches_is_answered_and_written_as_its_batches_one_by_one_on_sqlite(steps in steps()) {
        let mut group = siyu_store::open(":memory:").expect("sqlite");
        let mut alone = siyu_store::open(":memory:").expect("sqlite");
        let g = group.tenant("shop").expect("tenant");
        let a = alone.tenant("shop").expect("tenant");
        check_groups((group.as_mut(), &g), (alone.as_mut(), &a), &steps)?;
    }

    #[test]
    fn profiles_kept_by_batches_equal_a_rebuild_on_sqlite(steps in steps()) {
        let mut store = siyu_store::open(":memory:").expect("sqlite");
        let tenant = store.tenant("shop").expect("tenant");
        check(store.as_mut(), &tenant, &steps)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn profiles_kept_by_batches_equal_a_rebuild_on_postgres(steps in steps()) {
        let Some((mut store, tenant)) = common::postgres_tenant("batch") else { return Ok(()) };
        check(store.as_mut(), &tenant, &steps)?;
    }

    #[test]
    fn a_group_of_batches_is_answered_and_written_as_its_batches_one_by_one_on_postgres(steps in steps()) {
        let Some((mut group, g)) = common::postgres_tenant("group") else { return Ok(()) };
        let Some((mut alone, a)) = common::postgres_tenant("alone") else { return Ok(()) };
        check_groups((group.as_mut(), &g), (alone.as_mut(), &a), &steps)?;
    }
}

/// The answers to `items`, as one batch.
fn answers(store: &mut dyn Store, tenant: &Tenant, items: &[Value]) -> Vec<String> {
    let settings = rule_settings(store, tenant).expect("settings");
    let checked = items
        .iter()
        .map(|v| parse_item(v, &tenant.zone).map_err(|e| (message_id_of(v), e)))
        .collect();
    write_batch(store, tenant, &settings, checked)
        .expect("batch")
        .into_iter()
        .map(|r| {
            serde_json::to_value(r).expect("json")["status"]
                .as_str()
                .expect("status")
                .to_owned()
        })
        .collect()
}

/// A track item's message id is its event's id: an event already stored (imported from a
/// file, too) makes it a duplicate, and a message id is one id whatever the items' types.
fn a_message_id_is_taken_by_an_event_of_that_id(store: &mut dyn Store, tenant: &Tenant) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.csv");
    std::fs::write(
        &path,
        "event_id,customer_id,type,occurred_at\ne1,c1,view,2024-03-01 08:00:00\n",
    )
    .expect("write");
    import_file(store, tenant, Kind::Events, &path, ImportOptions::default()).expect("import");
    let track = |m: &str| -> Value {
        json!({"type": "track", "message_id": m, "customer_id": "c1",
               "timestamp": "2024-03-02 10:00:00", "event": "view"})
    };
    let identify =
        |m: &str| -> Value { json!({"type": "identify", "message_id": m, "customer_id": "c2"}) };
    assert_eq!(
        answers(
            store,
            tenant,
            &[track("e1"), track("t1"), identify("t1"), track("i1")]
        ),
        ["duplicate", "accepted", "duplicate", "accepted"]
    );
    assert_eq!(
        answers(
            store,
            tenant,
            &[identify("i1"), track("t1"), identify("i2"), track("i2")]
        ),
        ["duplicate", "duplicate", "accepted", "duplicate"]
    );
    assert_eq!(stored(store, tenant), from_raw(store, tenant));
}

#[test]
fn a_message_id_is_taken_by_an_event_of_that_id_on_sqlite() {
    let mut store = siyu_store::open(":memory:").expect("sqlite");
    let tenant = store.tenant("shop").expect("tenant");
    a_message_id_is_taken_by_an_event_of_that_id(store.as_mut(), &tenant);
}

#[test]
fn a_message_id_is_taken_by_an_event_of_that_id_on_postgres() {
    let Some((mut store, tenant)) = common::postgres_tenant("batch_ids") else {
        return;
    };
    a_message_id_is_taken_by_an_event_of_that_id(store.as_mut(), &tenant);
}
