//! Store conformance: one suite, written once over `&mut dyn Store`, run on SQLite in
//! memory always and on PostgreSQL, in a fresh schema per test, when `SIYU_TEST_POSTGRES`
//! holds a URL (`source .ci/pg.sh` starts a throwaway server and sets it).

use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::civil::date;
use siyu_core::access::Role;
use siyu_core::metrics::cohorts::Month;
use siyu_core::privacy::AuditAction;
use siyu_core::profile::{Interactions, Profile, build_profiles};
use siyu_core::segment::pool::Attributes;
use siyu_core::segment::rules::{Change, Purpose, RuleKind, TagFamily};
use siyu_core::{
    Channel, Customer, CustomerId, EventId, EventType, Gender, Money, NewCustomer, NewEvent,
    NewOrder, OrderFact, OrderId, OrderStatus, SeenCustomer, TenantZone, Timestamp,
};
use siyu_store::{
    AuditEntry, Erased, ImportTx, MemberChange, MemberFilter, PgStore, PoolCustomer, PoolFigures,
    PoolTx, Result, Scope, SqliteStore, Store, StoreError, StoredRule, TableCounts, Tenant,
    TenantStore, WriteCounts,
};
use siyu_store::{Claimed, NewDelivery, Outcome, SendState, WebhookEndpoint};

/// Generates, for each case, `sqlite::<case>` and `postgres::<case>`.
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $case() {
                    let mut store = super::sqlite_store();
                    super::$case(&mut *store).expect(stringify!($case));
                }
            )*
        }

        mod postgres {
            $(
                #[test]
                fn $case() {
                    let Some(url) = super::pg_url() else { return };
                    let schema = super::PgSchema::fresh(&url, stringify!($case));
                    let mut store = schema.store();
                    super::$case(&mut *store).expect(stringify!($case));
                }
            )*
        }
    };
}

// ---- the cases: each runs on every backend; `on_both_backends!` below lists them ------

fn every_committed_write_of_a_tenant_moves_its_change_counter(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let other = store.tenant("other")?;
    assert_eq!(store.changes(&shop)?, 0, "before any write");
    let mut seen = 0;
    let mut moved = |store: &mut dyn Store, what: &str| -> Result<()> {
        let now = store.changes(&shop)?;
        assert!(now > seen, "{what}: {now} after {seen}");
        seen = now;
        Ok(())
    };
    import(store, &shop, |tx| {
        tx.upsert_orders(&[order("o1", "c1", t(1), 100)])
    })?;
    moved(store, "an import")?;
    let mut tx = store.begin_privacy(&shop)?;
    tx.set_opt_out(&cid("c1"), Some(t(2)))?;
    tx.commit()?;
    moved(store, "an opt-out")?;
    let tx = store.begin_pool(&shop)?;
    tx.commit()?;
    moved(store, "a pool transaction")?;
    store.set_setting(&shop, "repurchase_cycle_days", "30")?;
    moved(store, "a setting")?;
    store.set_time_zone(&shop, &TenantZone::named("Asia/Tokyo").expect("zone"))?;
    moved(store, "a time zone")?;
    store.set_channel_cost(
        &shop,
        &Channel::parse("douyin").expect("channel"),
        Month::parse("2026-01").expect("month"),
        Money::from_fen(100),
    )?;
    moved(store, "a channel's spend")?;
    // Neither a read, nor a write that was dropped, nor another tenant's write moves it.
    let tx = store.read_pool(&shop)?;
    tx.commit()?;
    let mut dropped = store.begin_import(&shop)?;
    dropped.upsert_orders(&[order("o2", "c1", t(3), 100)])?;
    drop(dropped);
    import(store, &other, |tx| {
        tx.upsert_orders(&[order("o1", "c1", t(1), 100)])
    })?;
    assert_eq!(store.changes(&shop)?, seen, "unmoved");
    assert!(store.changes(&other)? > 0);
    Ok(())
}

fn migrating_again_applies_nothing(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    import(store, &shop, |tx| {
        tx.upsert_orders(&[order("o1", "c1", t(1), 100)])
    })?;
    assert_eq!(store.migrate()?, 0);
    assert_eq!(store.migrate()?, 0);
    assert_eq!(
        store.table_counts(&shop)?.orders,
        1,
        "data survives a migrate"
    );
    Ok(())
}

fn a_tenant_is_created_once_and_found_again(store: &mut dyn Store) -> Result<()> {
    let first = store.tenant("tea-house")?;
    let again = store.tenant("tea-house")?;
    let other = store.tenant("jewellery")?;
    assert_eq!(first.id, again.id);
    assert_eq!(first.name, "tea-house");
    assert_eq!(first.zone.name(), "Asia/Shanghai");
    assert_ne!(first.id, other.id);
    assert_eq!(store.table_counts(&first)?, TableCounts::default());
    let names: Vec<String> = store.tenants()?.into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["jewellery", "tea-house"]);
    Ok(())
}

fn tenants_never_see_each_others_rows(store: &mut dyn Store) -> Result<()> {
    let a = store.tenant("a")?;
    let b = store.tenant("b")?;
    let mut alice = customer("c1");
    alice.name = Some("Alice".into());
    alice.tags = vec!["vip".into()];
    let mut bob = customer("c1");
    bob.name = Some("Bob".into());
    let only_a = customer("only-a");

    let counts = import(store, &a, |tx| {
        let c = tx.upsert_customers(&[alice.clone(), only_a.clone()], now())?;
        let o = tx.upsert_orders(&[order("o1", "c1", t(1), 100)])?;
        let e = tx.insert_events(&[event("e1", "c1", "view", t(2))])?;
        Ok((c, o, e))
    })?;
    assert_eq!(counts, (inserted(2), inserted(1), inserted(1)));
    // The same ids in another tenant are new rows there, not conflicts.
    let counts = import(store, &b, |tx| {
        let c = tx.upsert_customers(std::slice::from_ref(&bob), now())?;
        let o = tx.upsert_orders(&[order("o1", "c1", t(1), 999)])?;
        let e = tx.insert_events(&[event("e1", "c1", "click", t(3))])?;
        Ok((c, o, e))
    })?;
    assert_eq!(counts, (inserted(1), inserted(1), inserted(1)));

    assert_eq!(
        store.customer(&a, &cid("c1"))?.name.as_deref(),
        Some("Alice")
    );
    assert_eq!(store.customer(&b, &cid("c1"))?.name.as_deref(), Some("Bob"));
    assert!(matches!(
        store.customer(&b, &cid("only-a")),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.customer_tags(&a, &cid("c1"))?, ["vip"]);
    assert!(store.customer_tags(&b, &cid("c1"))?.is_empty());
    assert_eq!(customer_ids(store, &a)?, ["c1", "only-a"]);
    assert_eq!(customer_ids(store, &b)?, ["c1"]);
    assert_eq!(orders(store, &a)?[0].amount, Money::from_fen(100));
    assert_eq!(orders(store, &b)?[0].amount, Money::from_fen(999));
    assert_eq!(facts(store, &b)?.len(), 1);
    assert_eq!(events(store, &a)?[0].kind.as_str(), "view");
    assert_eq!(events(store, &b)?[0].kind.as_str(), "click");
    let counts_a = TableCounts {
        customers: 2,
        orders: 1,
        events: 1,
        tags: 1,
    };
    let counts_b = TableCounts {
        customers: 1,
        orders: 1,
        events: 1,
        tags: 0,
    };
    assert_eq!(store.table_counts(&a)?, counts_a);
    assert_eq!(store.table_counts(&b)?, counts_b);
    Ok(())
}

fn an_unknown_customer_is_not_found(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    assert!(matches!(
        store.customer(&shop, &cid("nobody")),
        Err(StoreError::NotFound(_))
    ));
    assert!(store.customer_tags(&shop, &cid("nobody"))?.is_empty());
    Ok(())
}

fn customer_upserts_count_inserted_updated_and_unchanged(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let batch: Vec<NewCustomer> = ["c1", "c2", "c3"]
        .iter()
        .map(|id| full_customer(id))
        .collect();
    let first = import(store, &shop, |tx| tx.upsert_customers(&batch, now()))?;
    assert_eq!(first, inserted(3));
    let again = import(store, &shop, |tx| tx.upsert_customers(&batch, now()))?;
    assert_eq!(again, unchanged(3));

    let mut renamed = full_customer("c1");
    renamed.name = Some("Renamed".into());
    let mixed = [renamed, full_customer("c2"), full_customer("c4")];
    let counts = import(store, &shop, |tx| tx.upsert_customers(&mixed, now()))?;
    assert_eq!(
        counts,
        WriteCounts {
            inserted: 1,
            updated: 1,
            unchanged: 1
        }
    );
    assert_eq!(
        store.customer(&shop, &cid("c1"))?.name.as_deref(),
        Some("Renamed")
    );
    assert_eq!(store.table_counts(&shop)?.customers, 4);
    Ok(())
}

fn absent_attributes_keep_what_is_stored(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let full = full_customer("c1");
    import(store, &shop, |tx| {
        tx.upsert_customers(std::slice::from_ref(&full), now())
    })?;
    let stored = store.customer(&shop, &cid("c1"))?;
    assert_eq!(stored, as_stored(&full));

    // A row that says nothing new changes nothing.
    let bare = import(store, &shop, |tx| {
        tx.upsert_customers(&[customer("c1")], now())
    })?;
    assert_eq!(bare, unchanged(1));
    assert_eq!(store.customer(&shop, &cid("c1"))?, stored);

    // A row with one new attribute updates that one and keeps the rest.
    let mut moved = customer("c1");
    moved.region = Some("杭州".into());
    let counts = import(store, &shop, |tx| tx.upsert_customers(&[moved], now()))?;
    assert_eq!(counts, updated(1));
    let after = store.customer(&shop, &cid("c1"))?;
    assert_eq!(
        after,
        Customer {
            region: Some("杭州".into()),
            ..stored
        }
    );
    Ok(())
}

fn an_explicit_joined_at_replaces_an_inferred_one(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let counts = import(store, &shop, |tx| {
        tx.upsert_customers(&[customer("c1")], now())
    })?;
    assert_eq!(counts, inserted(1));
    assert_eq!(
        store.customer(&shop, &cid("c1"))?.joined_at,
        now(),
        "joined at import"
    );

    let mut dated = customer("c1");
    dated.joined_at = Some(t(5));
    let counts = import(store, &shop, |tx| {
        tx.upsert_customers(std::slice::from_ref(&dated), now())
    })?;
    assert_eq!(counts, updated(1));
    assert_eq!(store.customer(&shop, &cid("c1"))?.joined_at, t(5));

    let counts = import(store, &shop, |tx| tx.upsert_customers(&[dated], now()))?;
    assert_eq!(counts, unchanged(1));
    let counts = import(store, &shop, |tx| {
        tx.upsert_customers(&[customer("c1")], now())
    })?;
    assert_eq!(counts, unchanged(1));
    assert_eq!(store.customer(&shop, &cid("c1"))?.joined_at, t(5));

    // Explicit now: an earlier sighting no longer moves it.
    let created = import(store, &shop, |tx| {
        tx.see_customers(&[seen("c1", t(1), None)])
    })?;
    assert_eq!(created, 0);
    assert_eq!(store.customer(&shop, &cid("c1"))?.joined_at, t(5));

    // Confirming the very instant that was inferred is news too: the join becomes explicit.
    import(store, &shop, |tx| {
        tx.see_customers(&[seen("c2", t(7), None)])
    })?;
    let mut confirmed = customer("c2");
    confirmed.joined_at = Some(t(7));
    let counts = import(store, &shop, |tx| tx.upsert_customers(&[confirmed], now()))?;
    assert_eq!(counts, updated(1));
    let created = import(store, &shop, |tx| {
        tx.see_customers(&[seen("c2", t(1), None)])
    })?;
    assert_eq!(created, 0);
    assert_eq!(store.customer(&shop, &cid("c2"))?.joined_at, t(7));
    Ok(())
}

/// The trait asks callers not to repeat a key within a batch; if one slips through, the
/// rows still apply in turn, as one-row batches would, rather than failing the import.
fn a_key_repeated_within_a_batch_applies_row_after_row(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let paid = order("o1", "c1", t(1), 500);
    let mut refunded = paid.clone();
    refunded.status = OrderStatus::Refunded;
    let mut named = customer("c1");
    named.name = Some("First".into());
    let mut renamed = customer("c1");
    renamed.name = Some("Second".into());
    let (o, c, s, e) = import(store, &shop, |tx| {
        let o = tx.upsert_orders(&[paid.clone(), order("o2", "c1", t(1), 1), refunded.clone()])?;
        let c = tx.upsert_customers(&[named, renamed], now())?;
        let s = tx.see_customers(&[seen("c9", t(5), None), seen("c9", t(4), None)])?;
        let e = tx.insert_events(&[
            event("e1", "c1", "view", t(1)),
            event("e1", "c1", "click", t(2)),
        ])?;
        Ok((o, c, s, e))
    })?;
    let one_new_one_changed = WriteCounts {
        inserted: 1,
        updated: 1,
        unchanged: 0,
    };
    let o_counts = WriteCounts {
        inserted: 2,
        ..one_new_one_changed
    };
    assert_eq!((o, c), (o_counts, one_new_one_changed));
    assert_eq!(
        (s, e),
        (
            1,
            WriteCounts {
                inserted: 1,
                updated: 0,
                unchanged: 1
            }
        )
    );
    assert_eq!(orders(store, &shop)?[0], refunded);
    assert_eq!(
        store.customer(&shop, &cid("c1"))?.name.as_deref(),
        Some("Second")
    );
    assert_eq!(store.customer(&shop, &cid("c9"))?.joined_at, t(4));
    assert_eq!(events(store, &shop)?[0].kind.as_str(), "view");
    Ok(())
}

fn tags_are_added_and_a_new_tag_alone_counts_as_updated(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let mut tagged = customer("c1");
    tagged.tags = vec!["outdoor".into(), "vip".into(), "家长".into()];
    let counts = import(store, &shop, |tx| {
        tx.upsert_customers(std::slice::from_ref(&tagged), now())
    })?;
    assert_eq!(
        counts,
        inserted(1),
        "a new customer with tags is inserted, once"
    );
    assert_eq!(
        store.customer_tags(&shop, &cid("c1"))?,
        ["outdoor", "vip", "家长"]
    );

    let counts = import(store, &shop, |tx| tx.upsert_customers(&[tagged], now()))?;
    assert_eq!(counts, unchanged(1));

    let mut more = customer("c1");
    more.tags = vec!["Tea".into(), "vip".into()];
    let mut other = customer("c2");
    other.tags = vec!["vip".into()];
    let counts = import(store, &shop, |tx| {
        tx.upsert_customers(&[more.clone(), other], now())
    })?;
    assert_eq!(
        counts,
        WriteCounts {
            inserted: 1,
            updated: 1,
            unchanged: 0
        }
    );
    // Tags are added, never removed, and listed in byte order.
    assert_eq!(
        store.customer_tags(&shop, &cid("c1"))?,
        ["Tea", "outdoor", "vip", "家长"]
    );
    assert_eq!(store.table_counts(&shop)?.tags, 5);

    // A changed attribute and a new tag together still count once.
    more.name = Some("Changed".into());
    more.tags = vec!["new".into()];
    let counts = import(store, &shop, |tx| tx.upsert_customers(&[more], now()))?;
    assert_eq!(counts, updated(1));
    Ok(())
}

fn a_sighting_creates_a_customer_joined_then(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let created = import(store, &shop, |tx| {
        tx.see_customers(&[seen("c1", t(20), Some("douyin")), seen("c2", t(30), None)])
    })?;
    assert_eq!(created, 2);
    let c1 = store.customer(&shop, &cid("c1"))?;
    assert_eq!(c1.joined_at, t(20));
    assert_eq!(c1.channel, Some(channel("douyin")));
    assert_eq!(c1.name, None);

    // Seen again later: nothing happens.
    let created = import(store, &shop, |tx| {
        tx.see_customers(&[seen("c1", t(25), None)])
    })?;
    assert_eq!(created, 0);
    assert_eq!(store.customer(&shop, &cid("c1"))?.joined_at, t(20));

    // Seen earlier: the inferred join moves earlier, and so does the channel (it is that of
    // the earliest order seen); a missing channel is filled.
    let (created, ids) = import(store, &shop, |tx| {
        let n = tx.see_customers(&[
            seen("c1", t(10), Some("zhihu")),
            seen("c2", t(15), Some("store")),
            seen("c3", t(12), None),
        ])?;
        let n4 = tx.see_customers(&[seen("c4", t(12), None), seen("c3", t(11), None)])?;
        Ok((n + n4, tx.created_customers()?))
    })?;
    assert_eq!(created, 2);
    let ids: Vec<&str> = ids.iter().map(CustomerId::as_str).collect();
    assert_eq!(ids, ["c3", "c4"], "the customers created, each once");
    let c1 = store.customer(&shop, &cid("c1"))?;
    assert_eq!((c1.joined_at, c1.channel), (t(10), Some(channel("zhihu"))));
    let c2 = store.customer(&shop, &cid("c2"))?;
    assert_eq!((c2.joined_at, c2.channel), (t(15), Some(channel("store"))));
    assert_eq!(store.table_counts(&shop)?.customers, 4);

    // Later, an import that gives no joined_at keeps the sighting's.
    let counts = import(store, &shop, |tx| {
        tx.upsert_customers(&[customer("c1")], now())
    })?;
    assert_eq!(counts, unchanged(1));
    assert_eq!(store.customer(&shop, &cid("c1"))?.joined_at, t(10));

    // A channel the customers file gives is the customer's: earlier orders leave it.
    let mut from_file = customer("c1");
    from_file.channel = Some(channel("store"));
    let counts = import(store, &shop, |tx| tx.upsert_customers(&[from_file], now()))?;
    assert_eq!(counts, updated(1));
    import(store, &shop, |tx| {
        tx.see_customers(&[seen("c1", t(5), Some("douyin"))])
    })?;
    let c1 = store.customer(&shop, &cid("c1"))?;
    assert_eq!((c1.joined_at, c1.channel), (t(5), Some(channel("store"))));
    Ok(())
}

fn a_sighting_never_overrides_an_explicit_join(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let mut dated = customer("c1");
    dated.joined_at = Some(t(50));
    import(store, &shop, |tx| tx.upsert_customers(&[dated], now()))?;
    let created = import(store, &shop, |tx| {
        tx.see_customers(&[seen("c1", t(1), Some("douyin"))])
    })?;
    assert_eq!(created, 0);
    let c1 = store.customer(&shop, &cid("c1"))?;
    // The join stays; the channel the file left open is filled from the order.
    assert_eq!((c1.joined_at, c1.channel), (t(50), Some(channel("douyin"))));

    // An import without joined_at leaves the join inferred: a sighting moves it earlier.
    import(store, &shop, |tx| {
        tx.upsert_customers(&[customer("c2")], now())
    })?;
    let created = import(store, &shop, |tx| {
        tx.see_customers(&[seen("c2", t(2), None)])
    })?;
    assert_eq!(created, 0);
    assert_eq!(store.customer(&shop, &cid("c2"))?.joined_at, t(2));
    Ok(())
}

fn importing_the_same_orders_twice_changes_nothing(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let batch = many_orders(300);
    assert_eq!(
        import(store, &shop, |tx| tx.upsert_orders(&batch))?,
        inserted(300)
    );
    let before = orders(store, &shop)?;
    assert_eq!(
        import(store, &shop, |tx| tx.upsert_orders(&batch))?,
        unchanged(300)
    );
    assert_eq!(orders(store, &shop)?, before);
    assert_eq!(store.table_counts(&shop)?.orders, 300);
    Ok(())
}

/// An order that breaks the schema's CHECKs (a negative amount or discount) fails its
/// import on both backends, new or replacing one, alone or beside duplicates: it is never
/// skipped as if it were a duplicate (SQLite's `INSERT OR IGNORE` would skip it).
fn an_order_breaking_a_check_fails_the_import_and_is_never_dropped(
    store: &mut dyn Store,
) -> Result<()> {
    let shop = store.tenant("shop")?;
    let negative = |id: &str, fen: i64| order(id, "c1", t(2), fen);
    let mut no_discount = order("o9", "c1", t(2), 100);
    no_discount.discount = Money::from_fen(-1);
    for (what, batch) in [
        (
            "a new order",
            vec![order("o1", "c1", t(1), 100), negative("o2", -1)],
        ),
        ("a new order alone", vec![negative("o2", -1)]),
        ("a negative discount", vec![no_discount]),
    ] {
        let result = import(store, &shop, |tx| tx.upsert_orders(&batch));
        assert!(result.is_err(), "{what}: {result:?}");
        assert_eq!(store.table_counts(&shop)?.orders, 0, "{what}");
    }
    import(store, &shop, |tx| {
        tx.upsert_orders(&[order("o1", "c1", t(1), 100)])
    })?;
    for (what, batch) in [
        (
            "beside a duplicate",
            vec![order("o1", "c1", t(1), 100), negative("o2", -1)],
        ),
        ("replacing an order", vec![negative("o1", -5)]),
    ] {
        let result = import(store, &shop, |tx| tx.upsert_orders(&batch));
        assert!(result.is_err(), "{what}: {result:?}");
        assert_eq!(store.table_counts(&shop)?.orders, 1, "{what}");
    }
    let mut kept = Vec::new();
    store.scan_orders(&shop, &mut |o| kept.push(o.amount))?;
    assert_eq!(kept, vec![Money::from_fen(100)]);
    Ok(())
}

fn a_refund_in_a_later_export_updates_the_order(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let batch = vec![
        order("o1", "c1", t(1), 12_800),
        order("o2", "c1", t(2), 6_400),
        order("o3", "c2", t(3), 100),
    ];
    import(store, &shop, |tx| tx.upsert_orders(&batch))?;
    let mut later = batch.clone();
    later[1].status = OrderStatus::Refunded;
    let counts = import(store, &shop, |tx| tx.upsert_orders(&later))?;
    assert_eq!(
        counts,
        WriteCounts {
            inserted: 0,
            updated: 1,
            unchanged: 2
        }
    );
    assert_eq!(orders(store, &shop)?, later);
    let refunded: Vec<_> = facts(store, &shop)?
        .into_iter()
        .filter(|f| f.status == OrderStatus::Refunded)
        .collect();
    assert_eq!(refunded.len(), 1);
    assert_eq!(refunded[0].amount, Money::from_fen(6_400));

    // Any other field counts as a change too, and back to paid is one as well.
    let mut again = later.clone();
    again[0].coupon_code = Some("SPRING".into());
    again[1].status = OrderStatus::Paid;
    again[2].channel = Some(channel("store"));
    let counts = import(store, &shop, |tx| tx.upsert_orders(&again))?;
    assert_eq!(counts, updated(3));
    assert_eq!(orders(store, &shop)?, again);
    Ok(())
}

fn nineteen_digit_order_ids_survive_exactly(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let ids = [
        "3791234567890123456",
        "0012345678901234567",
        "9999999999999999999",
    ];
    let batch: Vec<NewOrder> = ids.iter().map(|id| order(id, "c1", t(1), 1)).collect();
    import(store, &shop, |tx| tx.upsert_orders(&batch))?;
    let stored: Vec<String> = orders(store, &shop)?
        .iter()
        .map(|o| o.id.as_str().to_owned())
        .collect();
    assert_eq!(
        stored,
        [
            "0012345678901234567",
            "3791234567890123456",
            "9999999999999999999"
        ]
    );
    Ok(())
}

fn a_repeated_event_id_is_skipped_never_doubled(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let mut first = event("e2", "c1", "add_to_cart", t(2));
    first.properties = r#"{"sku":"tea-1"}"#.into();
    let counts = import(store, &shop, |tx| {
        tx.insert_events(&[event("e1", "c1", "view", t(1)), first.clone()])
    })?;
    assert_eq!(counts, inserted(2));

    let mut resent = first.clone();
    resent.properties = r#"{"sku":"other"}"#.into();
    let counts = import(store, &shop, |tx| {
        tx.insert_events(&[resent, event("e3", "c2", "share", t(3))])
    })?;
    assert_eq!(
        counts,
        WriteCounts {
            inserted: 1,
            updated: 0,
            unchanged: 1
        }
    );
    let stored = events(store, &shop)?;
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[1], first, "the first copy of an event is kept");
    assert_eq!(store.table_counts(&shop)?.events, 3);
    Ok(())
}

fn a_dropped_import_leaves_the_store_as_it_was(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let mut tagged = full_customer("c1");
    tagged.tags = vec!["vip".into()];
    import(store, &shop, |tx| {
        tx.upsert_customers(std::slice::from_ref(&tagged), now())?;
        tx.see_customers(&[seen("c2", t(40), None)])?;
        tx.upsert_orders(&many_orders(50))?;
        tx.insert_events(&[event("e1", "c1", "view", t(1))])
    })?;
    let before = snapshot(store, &shop)?;

    {
        let mut tx = store.begin_import(&shop)?;
        let mut renamed = customer("c1");
        renamed.name = Some("Someone else".into());
        renamed.tags = vec!["lost".into()];
        tx.upsert_customers(&[renamed, full_customer("c9")], now())?;
        tx.see_customers(&[seen("c2", t(1), Some("douyin")), seen("c8", t(1), None)])?;
        let mut changed = many_orders(60);
        for o in &mut changed {
            o.status = OrderStatus::Refunded;
        }
        tx.upsert_orders(&changed)?;
        tx.insert_events(&[event("e2", "c1", "click", t(2))])?;
        // Dropped here, without commit.
    }
    assert_eq!(snapshot(store, &shop)?, before);

    // The store is still usable: a new import works and commits.
    let counts = import(store, &shop, |tx| {
        tx.upsert_orders(&[order("new", "c1", t(9), 1)])
    })?;
    assert_eq!(counts, inserted(1));
    assert_eq!(store.table_counts(&shop)?.orders, 51);
    Ok(())
}

fn several_batches_in_one_import_are_counted_each_on_their_own(
    store: &mut dyn Store,
) -> Result<()> {
    let shop = store.tenant("shop")?;
    let all = many_orders(30);
    let counts = import(store, &shop, |tx| {
        let a = tx.upsert_orders(&all[..10])?;
        let b = tx.upsert_orders(&all[5..20])?;
        let c = tx.upsert_orders(&all[..30])?;
        let d = tx.upsert_customers(&[customer("x")], now())?;
        let e = tx.upsert_customers(&[customer("x"), customer("y")], now())?;
        Ok((a, b, c, d, e))
    })?;
    let (a, b, c, d, e) = counts;
    assert_eq!(a, inserted(10));
    assert_eq!(
        b,
        WriteCounts {
            inserted: 10,
            updated: 0,
            unchanged: 5
        }
    );
    assert_eq!(
        c,
        WriteCounts {
            inserted: 10,
            updated: 0,
            unchanged: 20
        }
    );
    assert_eq!(d, inserted(1));
    assert_eq!(
        e,
        WriteCounts {
            inserted: 1,
            updated: 0,
            unchanged: 1
        }
    );
    assert_eq!(orders(store, &shop)?, sorted(all));
    Ok(())
}

fn awkward_text_survives_exactly(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let awkward =
        "tab\there, newline\nthere, cr\r, back\\slash \\N, \"quotes\" 'single', 茶 🍵, \\.";
    let mut c = full_customer("c1");
    c.name = Some(awkward.into());
    c.region = Some(String::new());
    c.tags = vec![awkward.into()];
    let mut o = order("o1", "c1", t(1), 1);
    o.coupon_code = Some(awkward.into());
    let mut e = event("e1", "c1", "message", t(1));
    e.properties = serde_json::json!({ "text": awkward }).to_string();
    import(store, &shop, |tx| {
        tx.upsert_customers(std::slice::from_ref(&c), now())?;
        tx.upsert_orders(std::slice::from_ref(&o))?;
        tx.insert_events(std::slice::from_ref(&e))
    })?;
    assert_eq!(store.customer(&shop, &cid("c1"))?, as_stored(&c));
    assert_eq!(store.customer_tags(&shop, &cid("c1"))?, [awkward]);
    assert_eq!(orders(store, &shop)?, [o]);
    assert_eq!(events(store, &shop)?, [e]);
    Ok(())
}

fn scans_come_in_byte_order_of_ids(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let ids = ["b", "B", "a", "Z", "é", "_x", "10", "9", "a-1", "a_1"];
    let customers: Vec<NewCustomer> = ids.iter().map(|id| customer(id)).collect();
    let batch: Vec<NewOrder> = ids.iter().map(|id| order(id, id, t(1), 1)).collect();
    let evs: Vec<NewEvent> = ids.iter().map(|id| event(id, id, "view", t(1))).collect();
    import(store, &shop, |tx| {
        tx.upsert_customers(&customers, now())?;
        tx.upsert_orders(&batch)?;
        tx.insert_events(&evs)
    })?;
    let mut expected: Vec<&str> = ids.to_vec();
    expected.sort_unstable();
    assert_eq!(customer_ids(store, &shop)?, expected);
    let order_ids: Vec<String> = orders(store, &shop)?
        .iter()
        .map(|o| o.id.as_str().to_owned())
        .collect();
    assert_eq!(order_ids, expected);
    let event_ids: Vec<String> = events(store, &shop)?
        .iter()
        .map(|e| e.id.as_str().to_owned())
        .collect();
    assert_eq!(event_ids, expected);
    Ok(())
}

fn settings_are_kept_per_tenant_and_a_zone_change_is_seen_by_the_next_lookup(
    store: &mut dyn Store,
) -> Result<()> {
    let shop = store.tenant("shop")?;
    let other = store.tenant("other")?;
    assert!(store.settings(&shop)?.is_empty());
    store.set_setting(&shop, "repurchase_cycle_days", "45")?;
    store.set_setting(&shop, "repurchase_cycle_days", "40")?;
    store.set_setting(&other, "repurchase_cycle_days", "7")?;
    assert_eq!(
        store.settings(&shop)?,
        [("repurchase_cycle_days".to_owned(), "40".to_owned())]
    );
    let zone = siyu_core::TenantZone::named("America/New_York").expect("zone");
    store.set_time_zone(&shop, &zone)?;
    assert_eq!(store.tenant("shop")?.zone.name(), "America/New_York");
    assert_eq!(store.tenant("other")?.zone.name(), "Asia/Shanghai");
    Ok(())
}

fn customers_are_scanned_with_their_channel(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let mut a = customer("a");
    a.channel = Some(channel("xiaohongshu"));
    let mut b = customer("b");
    b.referrer_id = Some(cid("a"));
    b.joined_at = Some(t(3));
    import(store, &shop, |tx| {
        tx.upsert_customers(&[a, b], now())?;
        tx.see_customers(&[seen("c", t(1), Some("douyin"))])
    })?;
    let mut scanned = Vec::new();
    let mut facts = Vec::new();
    store.scan_customers(&shop, &mut |f| {
        scanned.push((
            f.id.as_str().to_owned(),
            f.channel.clone().map(|c| c.to_string()),
        ));
        facts.push(f);
    })?;
    assert_eq!(facts[1].referrer_id, Some(cid("a")));
    assert_eq!((facts[1].joined_at, facts[2].joined_at), (t(3), t(1)));
    assert_eq!(facts[0].referrer_id, None);
    let expected = [
        ("a".to_owned(), Some("xiaohongshu".to_owned())),
        ("b".to_owned(), None),
        ("c".to_owned(), Some("douyin".to_owned())),
    ];
    assert_eq!(scanned, expected);
    Ok(())
}

fn ten_thousand_orders_round_trip_exactly(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let batch = many_orders(10_000);
    assert_eq!(
        import(store, &shop, |tx| tx.upsert_orders(&batch))?,
        inserted(10_000)
    );
    let stored = orders(store, &shop)?;
    assert_eq!(stored.len(), 10_000);
    let expected = sorted(batch.clone());
    for (got, want) in stored.iter().zip(&expected) {
        assert_eq!(got, want);
    }
    assert_eq!(stored, expected);

    let mut want_facts: Vec<OrderFact> = batch
        .iter()
        .map(|o| OrderFact {
            customer_id: o.customer_id.clone(),
            ordered_at: o.ordered_at,
            amount: o.amount,
            status: o.status,
        })
        .collect();
    sort_facts(&mut want_facts);
    assert_eq!(facts(store, &shop)?, want_facts);
    assert_eq!(
        import(store, &shop, |tx| tx.upsert_orders(&batch))?,
        unchanged(10_000)
    );
    Ok(())
}

fn ten_thousand_customers_and_events_round_trip(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let people: Vec<NewCustomer> = (0..10_000)
        .map(|i| {
            let mut c = if i % 2 == 0 {
                full_customer(&format!("u{i:05}"))
            } else {
                customer(&format!("u{i:05}"))
            };
            if i % 3 == 0 {
                c.tags = vec!["a".into(), format!("t{}", i % 7)];
            }
            c
        })
        .collect();
    let evs: Vec<NewEvent> = (0..10_000)
        .map(|i| {
            let mut e = event(
                &format!("ev{i:05}"),
                &format!("u{:05}", i % 500),
                "view",
                at(i),
            );
            e.properties = format!(r#"{{"i":{i}}}"#);
            e
        })
        .collect();
    let sightings: Vec<SeenCustomer> = (0..12_000)
        .map(|i| seen(&format!("u{i:05}"), at(i), None))
        .collect();
    let (c, e, s) = import(store, &shop, |tx| {
        let c = tx.upsert_customers(&people, now())?;
        let e = tx.insert_events(&evs)?;
        let s = tx.see_customers(&sightings)?;
        Ok((c, e, s))
    })?;
    assert_eq!((c, e, s), (inserted(10_000), inserted(10_000), 2_000));
    let counts = store.table_counts(&shop)?;
    assert_eq!((counts.customers, counts.events), (12_000, 10_000));
    assert_eq!(counts.tags, 2 * 3_334);
    assert_eq!(events(store, &shop)?, evs);
    // The odd ones had no joined_at: the earlier sighting moved their join.
    assert_eq!(store.customer(&shop, &cid("u00001"))?.joined_at, at(1));
    assert_eq!(
        store.customer(&shop, &cid("u00000"))?,
        as_stored(&people[0])
    );
    Ok(())
}

fn rules_are_saved_replaced_listed_and_deleted(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let other = store.tenant("other")?;
    let rule = |kind, name: &str, text: &str| StoredRule {
        kind,
        name: name.into(),
        rule: text.into(),
        created_by: "ops".into(),
        created_at: t(1),
        purpose: Purpose::default(),
    };
    pool(store, &shop, |tx| {
        tx.save_rule(&rule(RuleKind::Segment, "高价值", "orders > 3"))?;
        tx.save_rule(&rule(RuleKind::Tag, "高价值", "orders > 5"))?;
        tx.save_rule(&rule(RuleKind::Segment, "a", "orders > 1"))?;
        tx.save_rule(&rule(RuleKind::Segment, "a", "orders > 2"))
    })?;
    let rules = pool(store, &shop, |tx| tx.rules())?;
    let listed: Vec<(RuleKind, &str, &str)> = rules
        .iter()
        .map(|r| (r.kind, r.name.as_str(), r.rule.as_str()))
        .collect();
    assert_eq!(
        listed,
        vec![
            (RuleKind::Segment, "a", "orders > 2"),
            (RuleKind::Segment, "高价值", "orders > 3"),
            (RuleKind::Tag, "高价值", "orders > 5"),
        ]
    );
    assert_eq!(rules[0].created_at, t(1));
    assert_eq!(rules[0].purpose, Purpose::Marketing);
    let mut analysis = rule(RuleKind::Segment, "a", "orders > 2");
    analysis.purpose = Purpose::Analysis;
    pool(store, &shop, |tx| tx.save_rule(&analysis))?;
    assert_eq!(
        pool(store, &shop, |tx| tx.rules())?[0].purpose,
        Purpose::Analysis
    );
    assert!(pool(store, &other, |tx| tx.rules())?.is_empty());
    assert!(pool(store, &shop, |tx| tx.delete_rule(RuleKind::Segment, "a"))?);
    assert!(!pool(store, &shop, |tx| tx.delete_rule(RuleKind::Segment, "a"))?);
    assert_eq!(pool(store, &shop, |tx| tx.rules())?.len(), 2);
    Ok(())
}

fn membership_changes_keep_members_and_history(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let other = store.tenant("other")?;
    let change = |name: &str, id: &str, change| MemberChange {
        kind: RuleKind::Segment,
        name: name.into(),
        customer_id: cid(id),
        change,
    };
    pool(store, &shop, |tx| {
        tx.apply_changes(
            &[
                change("s", "c2", Change::Entered),
                change("s", "c1", Change::Entered),
                change("t", "c1", Change::Entered),
            ],
            t(1),
            "import orders.csv",
        )
    })?;
    pool(store, &shop, |tx| {
        tx.apply_changes(&[change("s", "c2", Change::Exited)], t(2), "refresh")
    })?;
    let members = pool(store, &shop, |tx| tx.members(MemberFilter::All))?;
    let listed: Vec<(&str, &str, Timestamp)> = members
        .iter()
        .map(|m| (m.name.as_str(), m.customer_id.as_str(), m.since))
        .collect();
    assert_eq!(listed, vec![("s", "c1", t(1)), ("t", "c1", t(1))]);
    let of_s = pool(store, &shop, |tx| {
        tx.members(MemberFilter::Rule(RuleKind::Segment, "s"))
    })?;
    assert_eq!(of_s.len(), 1);
    let history = pool(store, &shop, |tx| tx.history(MemberFilter::All, 10))?;
    let listed: Vec<(&str, &str, Change, &str)> = history
        .iter()
        .map(|h| {
            (
                h.name.as_str(),
                h.customer_id.as_str(),
                h.change,
                h.cause.as_str(),
            )
        })
        .collect();
    // Newest first; within one moment, the last recorded first.
    assert_eq!(
        listed,
        vec![
            ("s", "c2", Change::Exited, "refresh"),
            ("t", "c1", Change::Entered, "import orders.csv"),
            ("s", "c1", Change::Entered, "import orders.csv"),
            ("s", "c2", Change::Entered, "import orders.csv"),
        ]
    );
    let of_c2 = pool(store, &shop, |tx| {
        tx.history(MemberFilter::Customer(&cid("c2")), 10)
    })?;
    assert_eq!(of_c2.len(), 2);
    assert_eq!(
        pool(store, &shop, |tx| tx.history(MemberFilter::All, 1))?.len(),
        1
    );
    assert!(pool(store, &other, |tx| tx.history(MemberFilter::All, 10))?.is_empty());
    assert!(pool(store, &other, |tx| tx.members(MemberFilter::All))?.is_empty());
    // A deleted rule takes its members along; its history stays.
    pool(store, &shop, |tx| tx.delete_rule(RuleKind::Segment, "s"))?;
    assert_eq!(
        pool(store, &shop, |tx| tx.members(MemberFilter::All))?.len(),
        1
    );
    assert_eq!(
        pool(store, &shop, |tx| tx.history(MemberFilter::All, 10))?.len(),
        4
    );
    Ok(())
}

fn manual_tags_keep_their_first_source(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let mut c = customer("c1");
    c.tags = vec!["outdoor".into()];
    import(store, &shop, |tx| {
        tx.upsert_customers(&[c, customer("c2")], t(1))
    })?;
    let (added, again, known, unknown) = pool(store, &shop, |tx| {
        Ok((
            tx.add_tag(&cid("c2"), "tea", "manual:li", t(2))?,
            tx.add_tag(&cid("c1"), "outdoor", "manual:li", t(3))?,
            tx.has_customer(&cid("c1"))?,
            tx.has_customer(&cid("nobody"))?,
        ))
    })?;
    assert_eq!((added, again, known, unknown), (true, false, true, false));
    let tags = pool(store, &shop, |tx| tx.manual_tags(None))?;
    let listed: Vec<(&str, &str, &str, Timestamp)> = tags
        .iter()
        .map(|m| {
            (
                m.customer_id.as_str(),
                m.tag.as_str(),
                m.source.as_str(),
                m.since,
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("c1", "outdoor", "import", t(1)),
            ("c2", "tea", "manual:li", t(2)),
        ]
    );
    assert_eq!(
        pool(store, &shop, |tx| tx.manual_tags(Some(&cid("c2"))))?.len(),
        1
    );
    assert!(pool(store, &shop, |tx| tx.remove_tag(&cid("c1"), "outdoor"))?);
    assert!(!pool(store, &shop, |tx| tx.remove_tag(&cid("c1"), "outdoor"))?);
    pool(store, &shop, |tx| {
        tx.set_tag_family("tea", TagFamily::Consumption)?;
        tx.set_tag_family("tea", TagFamily::Behaviour)
    })?;
    assert_eq!(
        pool(store, &shop, |tx| tx.tag_families())?,
        vec![("tea".to_owned(), TagFamily::Behaviour)]
    );
    Ok(())
}

fn the_pool_reads_profiles_with_attributes_tags_and_spend(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let mut c1 = full_customer("c1");
    c1.region = Some("杭州".into());
    c1.tags = vec!["tea".into(), "outdoor".into()];
    import(store, &shop, |tx| {
        tx.upsert_customers(&[c1, customer("c2")], t(1))?;
        let mut refunded = order("o3", "c1", t(4), 300);
        refunded.status = OrderStatus::Refunded;
        tx.upsert_orders(&[
            order("o1", "c1", t(1), 100),
            order("o2", "c1", t(4), 200),
            order("o4", "c1", t(6), 400),
            refunded,
        ])?;
        let facts = tx.customer_facts(Scope::All)?;
        tx.save_profiles(&build_profiles(
            facts,
            Vec::new(),
            Vec::new(),
            &TenantZone::default(),
            None,
        ))
    })?;
    let mut seen = Vec::new();
    pool(store, &shop, |tx| {
        tx.pool_customers(t(3), t(6), &mut |c| seen.push(c))
    })?;
    assert_eq!(seen.len(), 2);
    let (first, second) = (&seen[0], &seen[1]);
    assert_eq!(first.profile.customer_id.as_str(), "c1");
    assert_eq!(first.attributes.region.as_deref(), Some("杭州"));
    assert_eq!(first.attributes.gender, Some(Gender::Female));
    let mut tags = first.tags.clone();
    tags.sort();
    assert_eq!(tags, ["outdoor", "tea"]);
    assert_eq!(first.spend.fen(), 200, "paid, from t(3) until t(6)");
    assert_eq!(second.attributes, Attributes::default());
    assert!(second.tags.is_empty());
    assert_eq!(second.spend, Money::ZERO);
    let mut attributes = Vec::new();
    pool(store, &shop, |tx| {
        tx.attributes(&mut |id, a| attributes.push((id, a)))
    })?;
    assert_eq!(attributes.len(), 2);
    Ok(())
}

/// The reads of the pool by range (a sweep's slices), by ids (the customers a write
/// touched) and as the thresholds' figures give each customer what the whole pool's read
/// gives: tags and spend merged onto the right customer whichever of them has none, and
/// nothing of another tenant's rows under the same ids.
fn the_pool_by_range_by_ids_and_as_figures_reads_as_the_whole(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let other = store.tenant("other")?;
    let ids = ["a", "b1", "b2", "c", "c0", "d", "e"];
    for (tenant, n) in [(&other, 7), (&shop, 1)] {
        import(store, tenant, |tx| {
            let customers: Vec<NewCustomer> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let mut c = customer(id);
                    // Tags on every other customer, two on some.
                    if (i + n) % 2 == 0 {
                        c.tags = vec![format!("t{i}")];
                    }
                    if (i + n) % 3 == 0 {
                        c.tags.push("both".into());
                    }
                    c
                })
                .collect();
            tx.upsert_customers(&customers, t(1))?;
            let mut orders = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                // Orders for some, in and out of the period, some refunded.
                for k in 0..((i + n) % 4) {
                    let at = t(2 + (k as i64 * 3) % 7);
                    let mut o = order(
                        &format!("{id}-{n}-{k}"),
                        id,
                        at,
                        100 * (k as i64 + n as i64),
                    );
                    if (i + k) % 5 == 4 {
                        o.status = OrderStatus::Refunded;
                    }
                    orders.push(o);
                }
            }
            tx.upsert_orders(&orders)?;
            let facts = tx.customer_facts(Scope::All)?;
            tx.save_profiles(&build_profiles(
                facts,
                Vec::new(),
                Vec::new(),
                &TenantZone::default(),
                None,
            ))
        })?;
    }
    let sorted = |mut c: PoolCustomer| {
        c.tags.sort();
        c
    };
    let (from, until) = (t(3), t(7));
    let mut whole = Vec::new();
    pool(store, &shop, |tx| {
        tx.pool_customers(from, until, &mut |c| whole.push(sorted(c)))
    })?;
    assert_eq!(whole.len(), ids.len());
    assert!(whole.iter().any(|c| c.spend > Money::ZERO));
    assert!(whole.iter().any(|c| c.tags.len() == 2));

    for cuts in [
        vec!["e"],
        vec!["b1", "c", "e"],
        vec!["a", "b2", "c0", "d", "e"],
    ] {
        let mut slices = Vec::new();
        let mut after: Option<CustomerId> = None;
        for cut in cuts {
            pool(store, &shop, |tx| {
                tx.pool_customers_between(after.as_ref(), &cid(cut), from, until, &mut |c| {
                    slices.push(sorted(c))
                })
            })?;
            after = Some(cid(cut));
        }
        assert_eq!(slices, whole);
    }
    let some: Vec<CustomerId> = ["b1", "c0", "e", "zz"].into_iter().map(cid).collect();
    let mut of = Vec::new();
    pool(store, &shop, |tx| {
        tx.pool_customers_of(&some, from, until, &mut |c| of.push(sorted(c)))
    })?;
    let expected: Vec<PoolCustomer> = whole
        .iter()
        .filter(|c| some.contains(&c.profile.customer_id))
        .cloned()
        .collect();
    assert_eq!(of, expected);

    let (mut figures, mut ids) = (Vec::new(), Vec::new());
    pool(store, &shop, |tx| {
        tx.pool_figures(from, until, &mut |id, f| {
            ids.push(id.to_owned());
            figures.push(f)
        })
    })?;
    let in_order: Vec<String> = whole
        .iter()
        .map(|c| c.profile.customer_id.as_str().to_owned())
        .collect();
    assert_eq!(
        ids, in_order,
        "each customer's figures with their id, in id order"
    );
    let expected: Vec<PoolFigures> = whole
        .iter()
        .map(|c| PoolFigures {
            last_purchase_day: c.profile.last_purchase_day,
            orders: c.profile.orders,
            net_spend: c.profile.net_spend,
            spend: c.spend,
        })
        .collect();
    figures.sort_by_key(|f| (f.last_purchase_day, f.orders, f.net_spend, f.spend));
    let mut expected = expected;
    expected.sort_by_key(|f| (f.last_purchase_day, f.orders, f.net_spend, f.spend));
    assert_eq!(figures, expected);
    Ok(())
}

/// What an import saw of a customer counts once it commits, and only then: after one that
/// rolled back, the next sighting creates the customer, or moves the stored join, as if
/// the first had never been.
fn sightings_count_from_committed_imports_only(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let mut rolled_back = store.begin_import(&shop)?;
    assert_eq!(rolled_back.see_customers(&[seen("c1", t(5), None)])?, 1);
    drop(rolled_back);
    assert_eq!(store.table_counts(&shop)?.customers, 0);
    let created = import(store, &shop, |tx| {
        tx.see_customers(&[seen("c1", t(5), None)])
    })?;
    assert_eq!(created, 1);

    let mut rolled_back = store.begin_import(&shop)?;
    rolled_back.see_customers(&[seen("c1", t(2), Some("douyin"))])?;
    drop(rolled_back);
    import(store, &shop, |tx| {
        tx.see_customers(&[seen("c1", t(3), Some("zhihu"))])
    })?;
    let c1 = store.customer(&shop, &cid("c1"))?;
    assert_eq!((c1.joined_at, c1.channel), (t(3), Some(channel("zhihu"))));
    Ok(())
}

/// The store does not suppress an erased id (the services do): seen again, in the same
/// import or a later one, it is a customer new to the pool, not the erased one.
fn a_customer_seen_again_after_being_erased_is_created_anew(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    import(store, &shop, |tx| {
        tx.see_customers(&[seen("c1", t(1), None)])
    })?;
    import(store, &shop, |tx| {
        tx.erase_customer(&cid("c1"), &cid("erased:01"), "key-c1", t(2))
    })?;
    let created = import(store, &shop, |tx| {
        tx.see_customers(&[seen("c1", t(4), None)])
    })?;
    assert_eq!(created, 1);
    assert_eq!(store.customer(&shop, &cid("c1"))?.joined_at, t(4));

    let created = import(store, &shop, |tx| {
        let first = tx.see_customers(&[seen("c2", t(1), None)])?;
        tx.erase_customer(&cid("c2"), &cid("erased:02"), "key-c2", t(2))?;
        Ok(first + tx.see_customers(&[seen("c2", t(3), None)])?)
    })?;
    assert_eq!(created, 2);
    assert_eq!(store.customer(&shop, &cid("c2"))?.joined_at, t(3));
    Ok(())
}

fn interactions_are_added_to_stored_profiles_as_one_by_one(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    // c1 has interacted (and left) before, c2 never; c3 has no stored profile.
    let mut c1 = Profile::new(cid("c1"), t(1), None);
    for (kind, day) in [("view", 3), ("left", 5), ("view", 4), ("post_like", 2)] {
        c1.add_event(kind, t(day));
    }
    let c2 = Profile::new(cid("c2"), t(1), None);
    import(store, &shop, |tx| {
        tx.upsert_customers(&[customer("c1"), customer("c2"), customer("c3")], t(1))?;
        tx.save_profiles(&[c1.clone(), c2.clone()])
    })?;
    let batch = |id: &str, events: &[(&str, i64)]| {
        let mut n = Interactions::new(cid(id), events[0].0, t(events[0].1));
        for &(kind, day) in &events[1..] {
            n.add(kind, t(day));
        }
        n
    };
    let news = [
        // Earlier than what is stored, and a later `left`; a kind new to the profile.
        batch("c1", &[("view", 2), ("left", 7), ("share", 1), ("view", 1)]),
        batch("c2", &[("post_like", 9)]),
        batch("c3", &[("view", 9)]),
    ];
    let found = import(store, &shop, |tx| tx.add_interactions(&news))?;
    assert_eq!(found, [true, true, false]);
    let mut expected = vec![c1, c2];
    for (p, n) in expected.iter_mut().zip(&news) {
        n.apply_to(p);
    }
    assert_eq!(expected[0].left_at, Some(t(7)));
    assert_eq!(expected[0].event_counts.get("view"), Some(&4));
    let stored = import(store, &shop, |tx| {
        tx.profiles_of(&[cid("c1"), cid("c2"), cid("c3")])
    })?;
    assert_eq!(stored, expected);
    Ok(())
}

fn channel_costs_are_kept_per_month_and_replaced(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let other = store.tenant("other")?;
    let month = |m: &str| Month::parse(m).expect("month");
    store.set_channel_cost(
        &shop,
        &channel("douyin"),
        month("2025-03"),
        Money::from_fen(100),
    )?;
    store.set_channel_cost(
        &shop,
        &channel("douyin"),
        month("2025-02"),
        Money::from_fen(50),
    )?;
    store.set_channel_cost(
        &shop,
        &channel("store"),
        month("2025-03"),
        Money::from_fen(7),
    )?;
    store.set_channel_cost(
        &shop,
        &channel("douyin"),
        month("2025-03"),
        Money::from_fen(120),
    )?;
    assert_eq!(
        store.channel_costs(&shop)?,
        vec![
            (channel("douyin"), month("2025-02"), Money::from_fen(50)),
            (channel("douyin"), month("2025-03"), Money::from_fen(120)),
            (channel("store"), month("2025-03"), Money::from_fen(7)),
        ]
    );
    assert!(store.channel_costs(&other)?.is_empty());
    Ok(())
}

fn tokens_are_found_by_hash_and_revoked_by_prefix(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let other = store.tenant("other")?;
    let hash = "ab".repeat(32);
    store.create_token(&shop, &hash, Role::Ingest, "bridge", t(1))?;
    store.create_token(&other, &"cd".repeat(32), Role::Admin, "", t(2))?;
    let found = store.token(&hash)?.expect("token");
    assert_eq!(
        (found.tenant.id, found.role, found.label.as_str()),
        (shop.id, Role::Ingest, "bridge")
    );
    assert_eq!(found.created_at, t(1));
    assert!(store.token(&"ef".repeat(32))?.is_none());
    assert_eq!(store.tokens(&shop)?.len(), 1);
    assert!(
        !store.revoke_token(&other, "abababab", t(3))?,
        "another tenant's token"
    );
    assert!(
        !store.revoke_token(&shop, "abab", t(3))?,
        "too short a prefix"
    );
    assert!(store.revoke_token(&shop, "ABABABAB", t(3))?);
    assert_eq!(store.token(&hash)?.expect("token").revoked_at, Some(t(3)));
    Ok(())
}

fn the_orders_of_some_customers_are_read_alone(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let other = store.tenant("other")?;
    let mut refunded = order("o3", "c1", t(3), 50);
    refunded.status = OrderStatus::Refunded;
    import(store, &shop, |tx| {
        tx.upsert_orders(&[
            order("o1", "c1", t(1), 100),
            order("o2", "c2", t(2), 200),
            refunded,
            order("o4", "c3", t(4), 400),
        ])
    })?;
    import(store, &other, |tx| {
        tx.upsert_orders(&[order("o1", "c1", t(1), 999)])
    })?;
    let of = |store: &mut dyn Store, tenant: &Tenant, ids: &[&str]| -> Result<Vec<OrderFact>> {
        let ids: Vec<CustomerId> = ids.iter().map(|id| cid(id)).collect();
        let mut out = Vec::new();
        store.order_facts_of(tenant, &ids, &mut |f| out.push(f))?;
        sort_facts(&mut out);
        Ok(out)
    };
    let all = facts(store, &shop)?;
    let picked = of(store, &shop, &["c1", "c3", "nobody"])?;
    let want: Vec<OrderFact> = all
        .iter()
        .filter(|f| f.customer_id.as_str() != "c2")
        .cloned()
        .collect();
    assert_eq!(picked, want, "refunded orders too, as the scan gives them");
    assert_eq!(of(store, &other, &["c1"])?[0].amount, Money::from_fen(999));
    assert!(
        of(store, &other, &["c3"])?.is_empty(),
        "never another tenant's"
    );
    assert!(of(store, &shop, &[])?.is_empty());
    Ok(())
}

fn a_message_id_is_claimed_once_per_tenant(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let other = store.tenant("other")?;
    let first = import(store, &shop, |tx| {
        tx.claim_messages(&["m1", "m2", "m1"], t(1))
    })?;
    assert_eq!(first, vec![true, true, false]);
    let again = import(store, &shop, |tx| tx.claim_messages(&["m2", "m3"], t(2)))?;
    assert_eq!(again, vec![false, true]);
    let elsewhere = import(store, &other, |tx| tx.claim_messages(&["m1"], t(2)))?;
    assert_eq!(elsewhere, vec![true]);
    // A rolled-back claim is no claim.
    {
        let mut tx = store.begin_import(&shop)?;
        assert_eq!(tx.claim_messages(&["m9"], t(3))?, vec![true]);
    }
    assert_eq!(
        import(store, &shop, |tx| tx.claim_messages(&["m9"], t(4)))?,
        vec![true]
    );
    Ok(())
}

/// A track item's message id is its event's id: the stored event is its claim, and the id
/// of any stored event (imported, too) is taken for every kind of item.
fn an_events_id_is_a_claimed_message_id(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let other = store.tenant("other")?;
    import(store, &shop, |tx| {
        tx.insert_events(&[event("e1", "c1", "view", t(1))])?;
        Ok(())
    })?;
    let first = import(store, &shop, |tx| {
        let claimed = tx.claim_event_ids(&["e1", "e2", "m1", "e2"], t(2))?;
        tx.insert_events(&[
            event("e2", "c1", "view", t(2)),
            event("m1", "c1", "view", t(2)),
        ])?;
        Ok(claimed)
    })?;
    assert_eq!(first, vec![false, true, true, false]);
    assert_eq!(
        import(store, &shop, |tx| tx
            .claim_messages(&["e1", "e2", "m2"], t(3)))?,
        vec![false, false, true],
        "events' ids are taken for any item"
    );
    assert_eq!(
        import(store, &shop, |tx| tx
            .claim_event_ids(&["m1", "m2", "m3"], t(4)))?,
        vec![false, false, true],
        "and message ids for track items"
    );
    assert_eq!(
        import(store, &other, |tx| tx.claim_event_ids(&["e1", "m2"], t(4)))?,
        vec![true, true],
        "never another tenant's"
    );
    Ok(())
}

fn a_customer_is_viewed_whole_and_listed_by_page(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let other = store.tenant("other")?;
    let mut c1 = full_customer("c1");
    c1.tags = vec!["tea".into()];
    import(store, &shop, |tx| {
        tx.upsert_customers(&[c1, customer("c2"), customer("c3")], t(1))?;
        tx.upsert_orders(&[
            order("o1", "c1", t(2), 100),
            order("o2", "c1", t(5), 200),
            order("o3", "c1", t(3), 300),
        ])?;
        tx.insert_events(&[event("e1", "c1", "view", t(4))])?;
        tx.apply_changes(
            &[MemberChange {
                kind: RuleKind::Segment,
                name: "s".into(),
                customer_id: cid("c1"),
                change: Change::Entered,
            }],
            t(6),
            "test",
        )
    })?;
    let view = store.customer_view(&shop, &cid("c1"), 2)?.expect("view");
    let orders: Vec<&str> = view.recent_orders.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(orders, ["o2", "o3"], "newest first, at most 2");
    assert_eq!(view.recent_events.len(), 1);
    assert_eq!(view.manual_tags.len(), 1);
    assert_eq!(view.memberships.len(), 1);
    assert_eq!(view.customer.name.as_deref(), Some("顾客 c1"));
    assert!(
        store.customer_view(&other, &cid("c1"), 2)?.is_none(),
        "another tenant's"
    );
    assert!(store.customer_view(&shop, &cid("c9"), 2)?.is_none());
    let page = store.customers_page(&shop, None, 2)?;
    let ids: Vec<&str> = page.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["c1", "c2"]);
    let next = store.customers_page(&shop, Some(&cid("c2")), 2)?;
    assert_eq!(next.len(), 1);
    assert!(store.customers_page(&other, None, 10)?.is_empty());
    Ok(())
}

fn an_erased_customer_leaves_only_orders_under_the_remains_id(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    let other = store.tenant("other")?;
    let mut c1 = full_customer("c1");
    c1.tags = vec!["vip".into()];
    let mut referee = customer("c2");
    referee.referrer_id = Some(cid("c1"));
    for tenant in [&shop, &other] {
        import(store, tenant, |tx| {
            tx.upsert_customers(&[c1.clone(), referee.clone()], t(1))?;
            tx.upsert_orders(&[order("o1", "c1", t(2), 100), order("o2", "c1", t(3), 250)])?;
            tx.insert_events(&[
                event("e1", "c1", "view", t(2)),
                event("e2", "c2", "view", t(2)),
            ])?;
            let facts = tx.customer_facts(Scope::All)?;
            tx.save_profiles(&build_profiles(
                facts,
                Vec::new(),
                Vec::new(),
                &TenantZone::default(),
                None,
            ))?;
            tx.apply_changes(
                &[MemberChange {
                    kind: RuleKind::Segment,
                    name: "s".into(),
                    customer_id: cid("c1"),
                    change: Change::Entered,
                }],
                t(2),
                "test",
            )
        })?;
    }
    let before_orders = facts(store, &shop)?;
    let remains = cid("erased:00ff");
    let erased = import(store, &shop, |tx| {
        tx.erase_customer(&cid("c1"), &remains, "key-c1", t(5))
    })?;
    assert_eq!(
        erased,
        Erased {
            orders: 2,
            events: 1,
            tags: 1,
            referees: 1
        }
    );
    // The orders are all there, each under the remains' id; totals stay right.
    let after_orders = facts(store, &shop)?;
    assert_eq!(after_orders.len(), before_orders.len());
    assert!(after_orders.iter().all(|o| o.customer_id == remains));
    let total = |o: &[OrderFact]| o.iter().map(|o| o.amount.fen()).sum::<i64>();
    assert_eq!(total(&after_orders), total(&before_orders));
    // Nothing personal is left under either id.
    assert!(matches!(
        store.customer(&shop, &cid("c1")),
        Err(StoreError::NotFound(_))
    ));
    let kept = store.customer(&shop, &remains)?;
    assert_eq!(
        (
            kept.name,
            kept.phone,
            kept.gender,
            kept.birthday,
            kept.region
        ),
        (None, None, None, None, None)
    );
    assert_eq!(kept.channel, Some(channel("douyin")));
    assert_eq!(
        store.customer(&shop, &cid("c2"))?.referrer_id,
        Some(remains.clone())
    );
    let left: Vec<String> = events(store, &shop)?
        .iter()
        .map(|e| e.customer_id.to_string())
        .collect();
    assert_eq!(left, ["c2"]);
    let view = store.customer_view(&shop, &remains, 10)?.expect("remains");
    assert!(view.manual_tags.is_empty() && view.memberships.is_empty());
    let (members, tags) = pool(store, &shop, |tx| {
        Ok((
            tx.members(MemberFilter::Customer(&cid("c1")))?,
            tx.manual_tags(Some(&cid("c1")))?,
        ))
    })?;
    assert!(
        members.is_empty() && tags.is_empty(),
        "nothing left under the id"
    );
    assert_eq!(
        view.opted_out_at,
        Some(t(5)),
        "the remains are never marketed to"
    );
    assert_eq!(
        view.profile
            .expect("the profile moved with the orders")
            .customer_id,
        remains
    );
    let history = pool(store, &shop, |tx| {
        tx.history(MemberFilter::Customer(&cid("c1")), 10)
    })?;
    assert!(history.is_empty());
    assert_eq!(
        import(store, &shop, |tx| tx.suppression_keys())?,
        ["key-c1"]
    );
    // An unknown customer is not found, and nothing changes.
    assert!(matches!(
        import(store, &shop, |tx| tx.erase_customer(
            &cid("nobody"),
            &cid("erased:01"),
            "k",
            t(6)
        )),
        Err(StoreError::NotFound(_))
    ));
    // The other tenant's c1 is untouched.
    assert_eq!(store.customer(&other, &cid("c1"))?.name, c1.name);
    assert!(import(store, &other, |tx| tx.suppression_keys())?.is_empty());
    assert_eq!(events(store, &other)?.len(), 2);
    Ok(())
}

/// Erasure, opt-out and audit come in by a transaction of their own: all or nothing,
/// like an import.
fn a_privacy_transaction_is_all_or_nothing(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    import(store, &shop, |tx| {
        tx.upsert_customers(&[full_customer("c1")], t(1))?;
        tx.upsert_orders(&[order("o1", "c1", t(2), 100)])
    })?;
    let remains = cid("erased:0a");
    let entry = AuditEntry {
        at: t(5),
        actor: "dpo".into(),
        action: AuditAction::Erase,
        subject: "key-c1".into(),
        detail: String::new(),
    };
    let mut dropped = store.begin_privacy(&shop)?;
    dropped.erase_customer(&cid("c1"), &remains, "key-c1", t(5))?;
    dropped.record_audit(&entry)?;
    drop(dropped);
    assert_eq!(
        store.customer(&shop, &cid("c1"))?,
        as_stored(&full_customer("c1"))
    );
    assert!(store.audit_log(&shop, None, 10)?.is_empty());

    let mut tx = store.begin_privacy(&shop)?;
    assert!(matches!(
        tx.erase_customer(&cid("c9"), &remains, "key-c9", t(5)),
        Err(StoreError::NotFound(_))
    ));
    assert!(!tx.set_opt_out(&cid("c9"), Some(t(5)))?);
    let erased = tx.erase_customer(&cid("c1"), &remains, "key-c1", t(5))?;
    assert_eq!(erased.orders, 1);
    tx.record_audit(&entry)?;
    assert_eq!(tx.suppression_keys()?, ["key-c1"]);
    tx.commit()?;
    assert!(matches!(
        store.customer(&shop, &cid("c1")),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.audit_log(&shop, None, 10)?, [entry]);
    Ok(())
}

fn an_opt_out_is_kept_seen_by_the_pool_and_withdrawn(store: &mut dyn Store) -> Result<()> {
    let shop = store.tenant("shop")?;
    import(store, &shop, |tx| {
        tx.upsert_customers(&[customer("c1"), customer("c2")], t(1))?;
        let facts = tx.customer_facts(Scope::All)?;
        tx.save_profiles(&build_profiles(
            facts,
            Vec::new(),
            Vec::new(),
            &TenantZone::default(),
            None,
        ))
    })?;
    assert!(import(store, &shop, |tx| tx.set_opt_out(&cid("c1"), Some(t(4))))?);
    assert!(!import(store, &shop, |tx| tx
        .set_opt_out(&cid("nobody"), Some(t(4))))?);
    let opted = |store: &mut dyn Store| -> Result<Vec<bool>> {
        let mut seen = Vec::new();
        pool(store, &shop, |tx| {
            tx.pool_customers(t(0), t(9), &mut |c| {
                seen.push((c.profile.customer_id, c.attributes.opted_out))
            })
        })?;
        let mut plain = Vec::new();
        pool(store, &shop, |tx| {
            tx.attributes(&mut |id, a| plain.push((id, a.opted_out)))
        })?;
        plain.sort();
        assert_eq!(seen, plain);
        Ok(seen.into_iter().map(|(_, opted)| opted).collect())
    };
    assert_eq!(opted(store)?, [true, false]);
    assert_eq!(
        store
            .customer_view(&shop, &cid("c1"), 1)?
            .expect("c1")
            .opted_out_at,
        Some(t(4))
    );
    assert!(import(store, &shop, |tx| tx.set_opt_out(&cid("c1"), None))?);
    assert_eq!(opted(store)?, [false, false]);
    Ok(())
}

fn the_audit_log_is_read_newest_first_by_subject_within_the_tenant(
    store: &mut dyn Store,
) -> Result<()> {
    let shop = store.tenant("shop")?;
    let other = store.tenant("other")?;
    let entry = |at: i64, action, subject: &str| AuditEntry {
        at: t(at),
        actor: "li".into(),
        action,
        subject: subject.into(),
        detail: "细节".into(),
    };
    import(store, &shop, |tx| {
        tx.record_audit(&entry(1, AuditAction::Export, "a"))?;
        tx.record_audit(&entry(2, AuditAction::OptOut, "b"))?;
        tx.record_audit(&entry(3, AuditAction::Erase, "a"))
    })?;
    import(store, &other, |tx| {
        tx.record_audit(&entry(4, AuditAction::OptIn, "a"))
    })?;
    let all = store.audit_log(&shop, None, 10)?;
    let listed: Vec<(AuditAction, &str)> =
        all.iter().map(|e| (e.action, e.subject.as_str())).collect();
    assert_eq!(
        listed,
        [
            (AuditAction::Erase, "a"),
            (AuditAction::OptOut, "b"),
            (AuditAction::Export, "a")
        ]
    );
    assert_eq!(all[0], entry(3, AuditAction::Erase, "a"));
    assert_eq!(store.audit_log(&shop, Some("a"), 10)?.len(), 2);
    assert_eq!(store.audit_log(&shop, Some("a"), 1)?.len(), 1);
    assert_eq!(store.audit_log(&other, None, 10)?.len(), 1);
    Ok(())
}

/// The outbox's claim is a lease: a claimed send is not claimed again until the lease ends,
/// then again with the next attempt; a failure of an attempt that is not the latest is
/// ignored; a delivered or dead send is never claimed; a send not yet due waits.
fn the_outbox_claims_by_lease_and_records_only_the_latest_attempt(
    store: &mut dyn Store,
) -> Result<()> {
    let shop = store.tenant("shop")?;
    let endpoint = WebhookEndpoint {
        name: "crm".into(),
        url: "http://127.0.0.1:9/".into(),
        secret: "0123456789abcdef".into(),
        max_attempts: 3,
        max_in_flight: 4,
        max_per_second: 0,
        timeout_ms: 1000,
        backoff_ms: 10,
        created_at: t(0),
    };
    assert!(store.add_webhook(&shop, &endpoint)?);
    assert!(!store.add_webhook(&shop, &endpoint)?, "the name is taken");
    let send = |id: &str, not_before| NewDelivery {
        send_id: id.into(),
        endpoint: "crm".into(),
        payload: format!(r#"{{"customer_id":"{id}"}}"#),
        not_before,
    };
    assert_eq!(
        store.enqueue(
            &shop,
            &[send("s1", t(1)), send("s2", t(1)), send("later", t(9))],
            t(1)
        )?,
        3
    );
    let ids = |c: &[Claimed]| {
        c.iter()
            .map(|c| (c.send_id.clone(), c.attempt))
            .collect::<Vec<_>>()
    };
    // Claimed at day 2, leased until day 3.
    let first = store.claim_deliveries(&shop, "crm", t(2), t(3), 10)?;
    assert_eq!(ids(&first), [("s1".to_owned(), 1), ("s2".to_owned(), 1)]);
    assert!(
        store
            .claim_deliveries(&shop, "crm", t(2), t(3), 10)?
            .is_empty(),
        "leased"
    );
    // s1 delivered; s2's outcome never recorded (its dispatcher died).
    store.record_outcomes(
        &shop,
        &[Outcome::Delivered {
            send_id: "s1".into(),
            at: t(2),
        }],
    )?;
    let again = store.claim_deliveries(&shop, "crm", t(4), t(5), 10)?;
    assert_eq!(
        ids(&again),
        [("s2".to_owned(), 2)],
        "sent again after the lease"
    );
    // The first attempt's failure, come late, changes nothing; the second's counts.
    let failed = |attempt, retry_at| Outcome::Failed {
        send_id: "s2".into(),
        attempt,
        error: "answered 500".into(),
        retry_at,
    };
    store.record_outcomes(&shop, &[failed(1, Some(t(4)))])?;
    assert!(
        store
            .claim_deliveries(&shop, "crm", t(4), t(5), 10)?
            .is_empty()
    );
    store.record_outcomes(&shop, &[failed(2, Some(t(6)))])?;
    assert!(
        store
            .claim_deliveries(&shop, "crm", t(5), t(6), 10)?
            .is_empty(),
        "backing off"
    );
    let third = store.claim_deliveries(&shop, "crm", t(6), t(7), 10)?;
    assert_eq!(ids(&third), [("s2".to_owned(), 3)]);
    store.record_outcomes(&shop, &[failed(3, None)])?;
    assert!(
        store
            .claim_deliveries(&shop, "crm", t(8), t(9), 10)?
            .is_empty(),
        "dead"
    );
    let last = store.claim_deliveries(&shop, "crm", t(9), t(10), 10)?;
    assert_eq!(ids(&last), [("later".to_owned(), 1)]);
    let states: Vec<(String, SendState, u32)> = store
        .outbox_rows(&shop, None, 10)?
        .into_iter()
        .map(|r| (r.send_id, r.state, r.attempts))
        .collect();
    assert_eq!(
        states,
        [
            ("later".to_owned(), SendState::Pending, 1),
            ("s1".to_owned(), SendState::Delivered, 1),
            ("s2".to_owned(), SendState::Dead, 3),
        ]
    );
    // Another tenant sees none of it.
    let other = store.tenant("other")?;
    assert!(store.outbox_counts(&other)?.is_empty());
    assert!(store.webhooks(&other)?.is_empty());
    Ok(())
}

on_both_backends!(
    every_committed_write_of_a_tenant_moves_its_change_counter,
    the_outbox_claims_by_lease_and_records_only_the_latest_attempt,
    an_erased_customer_leaves_only_orders_under_the_remains_id,
    a_privacy_transaction_is_all_or_nothing,
    an_opt_out_is_kept_seen_by_the_pool_and_withdrawn,
    the_audit_log_is_read_newest_first_by_subject_within_the_tenant,
    migrating_again_applies_nothing,
    a_tenant_is_created_once_and_found_again,
    tenants_never_see_each_others_rows,
    an_unknown_customer_is_not_found,
    customer_upserts_count_inserted_updated_and_unchanged,
    absent_attributes_keep_what_is_stored,
    an_explicit_joined_at_replaces_an_inferred_one,
    a_key_repeated_within_a_batch_applies_row_after_row,
    tags_are_added_and_a_new_tag_alone_counts_as_updated,
    a_sighting_creates_a_customer_joined_then,
    a_sighting_never_overrides_an_explicit_join,
    importing_the_same_orders_twice_changes_nothing,
    a_refund_in_a_later_export_updates_the_order,
    an_order_breaking_a_check_fails_the_import_and_is_never_dropped,
    nineteen_digit_order_ids_survive_exactly,
    a_repeated_event_id_is_skipped_never_doubled,
    a_dropped_import_leaves_the_store_as_it_was,
    several_batches_in_one_import_are_counted_each_on_their_own,
    awkward_text_survives_exactly,
    scans_come_in_byte_order_of_ids,
    customers_are_scanned_with_their_channel,
    settings_are_kept_per_tenant_and_a_zone_change_is_seen_by_the_next_lookup,
    ten_thousand_orders_round_trip_exactly,
    ten_thousand_customers_and_events_round_trip,
    rules_are_saved_replaced_listed_and_deleted,
    membership_changes_keep_members_and_history,
    manual_tags_keep_their_first_source,
    the_pool_reads_profiles_with_attributes_tags_and_spend,
    the_pool_by_range_by_ids_and_as_figures_reads_as_the_whole,
    interactions_are_added_to_stored_profiles_as_one_by_one,
    sightings_count_from_committed_imports_only,
    a_customer_seen_again_after_being_erased_is_created_anew,
    channel_costs_are_kept_per_month_and_replaced,
    tokens_are_found_by_hash_and_revoked_by_prefix,
    a_message_id_is_claimed_once_per_tenant,
    an_events_id_is_a_claimed_message_id,
    a_customer_is_viewed_whole_and_listed_by_page,
    the_orders_of_some_customers_are_read_alone,
);

// ---- PostgreSQL only: several connections at once -------------------------------------

mod postgres_only {
    use std::sync::Barrier;

    use super::*;

    #[test]
    fn concurrent_migrations_apply_each_migration_once() {
        let Some(url) = pg_url() else { return };
        let schema = PgSchema::fresh(&url, "concurrent_migrate");
        let together = Barrier::new(4);
        let applied: Vec<usize> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let mut store = PgStore::connect_in_schema(&url, &schema.name)
                            .expect("connect in schema");
                        together.wait();
                        store.migrate().expect("migrate")
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("worker"))
                .collect()
        });
        assert_eq!(applied.iter().filter(|n| **n > 0).count(), 1, "{applied:?}");
        let mut store = PgStore::connect_in_schema(&url, &schema.name).expect("connect");
        assert_eq!(store.migrate().expect("migrate"), 0);
    }

    #[test]
    fn concurrent_tenant_creation_gives_one_tenant() {
        let Some(url) = pg_url() else { return };
        let schema = PgSchema::fresh(&url, "concurrent_tenant");
        PgStore::connect_in_schema(&url, &schema.name)
            .and_then(|mut s| s.migrate())
            .expect("migrate");
        let together = Barrier::new(8);
        let ids: Vec<i64> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        let mut store =
                            PgStore::connect_in_schema(&url, &schema.name).expect("connect");
                        together.wait();
                        store.tenant("rush").expect("tenant").id
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("worker"))
                .collect()
        });
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    }

    /// SQLite runs without foreign keys and trusts the `Tenant` it is given; PostgreSQL
    /// checks it once per import (in place of its per-row foreign keys).
    #[test]
    fn an_import_for_an_unknown_tenant_is_refused() {
        let Some(url) = pg_url() else { return };
        let schema = PgSchema::fresh(&url, "unknown_tenant");
        let mut store = schema.store();
        let shop = store.tenant("shop").expect("tenant");
        let ghost = Tenant {
            id: shop.id + 1_000,
            name: "ghost".into(),
            zone: TenantZone::default(),
        };
        assert!(matches!(
            store.begin_import(&ghost).err(),
            Some(StoreError::NotFound(_))
        ));
        assert_eq!(
            store.table_counts(&ghost).expect("counts"),
            TableCounts::default()
        );
    }

    #[test]
    fn open_selects_postgres_by_its_url_and_migrates() {
        let Some(url) = pg_url() else { return };
        let schema = PgSchema::fresh(&url, "open_by_url");
        PgStore::connect_in_schema(&url, &schema.name).expect("create the schema");
        let sep = if url.contains('?') { '&' } else { '?' };
        let with_path = format!("{url}{sep}options=-c%20search_path%3D{}", schema.name);
        let mut store = siyu_store::open(&with_path).expect("open");
        assert_eq!(store.backend(), "postgres");
        assert_eq!(
            store.migrate().expect("migrate"),
            0,
            "open migrated already"
        );
        let shop = store.tenant("shop").expect("tenant");
        assert_eq!(
            store.table_counts(&shop).expect("counts"),
            TableCounts::default()
        );
    }
}

// ---- fixtures ---------------------------------------------------------------------------

fn sqlite_store() -> Box<dyn Store> {
    let mut store = SqliteStore::open(":memory:").expect("open in memory");
    assert!(store.migrate().expect("migrate") > 0);
    Box::new(store)
}

/// The PostgreSQL URL of the test server, or `None` (and a note) when there is none.
fn pg_url() -> Option<String> {
    match std::env::var("SIYU_TEST_POSTGRES") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            eprintln!("skipped: SIYU_TEST_POSTGRES is not set (source .ci/pg.sh to run it)");
            None
        }
    }
}

/// A schema of its own for one test, dropped afterwards (kept when the test failed).
struct PgSchema {
    url: String,
    name: String,
}

impl PgSchema {
    fn fresh(url: &str, test: &str) -> PgSchema {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let short: String = test.chars().take(32).collect();
        let name = format!(
            "t_{short}_{}_{nanos}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        PgSchema {
            url: url.to_owned(),
            name,
        }
    }

    fn store(&self) -> Box<dyn Store> {
        let mut store = PgStore::connect_in_schema(&self.url, &self.name)
            .unwrap_or_else(|e| panic!("connecting to SIYU_TEST_POSTGRES: {e}"));
        assert!(store.migrate().expect("migrate") > 0, "a fresh schema");
        Box::new(store)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("keeping schema {} for a look", self.name);
            return;
        }
        if let Ok(mut client) = ::postgres::Client::connect(&self.url, ::postgres::NoTls) {
            let _ =
                client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name));
        }
    }
}

// ---- helpers ----------------------------------------------------------------------------

fn import<T>(
    store: &mut dyn Store,
    tenant: &Tenant,
    work: impl FnOnce(&mut dyn ImportTx) -> Result<T>,
) -> Result<T> {
    let mut tx = store.begin_import(tenant)?;
    let out = work(&mut *tx)?;
    tx.commit()?;
    Ok(out)
}

fn pool<T>(
    store: &mut dyn Store,
    tenant: &Tenant,
    work: impl FnOnce(&mut dyn PoolTx) -> Result<T>,
) -> Result<T> {
    let mut tx = store.begin_pool(tenant)?;
    let out = work(&mut *tx)?;
    tx.commit()?;
    Ok(out)
}

fn inserted(n: u64) -> WriteCounts {
    WriteCounts {
        inserted: n,
        ..WriteCounts::default()
    }
}

fn updated(n: u64) -> WriteCounts {
    WriteCounts {
        updated: n,
        ..WriteCounts::default()
    }
}

fn unchanged(n: u64) -> WriteCounts {
    WriteCounts {
        unchanged: n,
        ..WriteCounts::default()
    }
}

fn cid(id: &str) -> CustomerId {
    CustomerId::parse(id).expect("a valid customer id")
}

fn channel(name: &str) -> Channel {
    Channel::parse(name).expect("a valid channel")
}

/// An instant with microseconds, `micros` after a fixed moment (negative: before it).
fn at(micros: i64) -> Timestamp {
    Timestamp::from_microsecond(1_714_500_000_123_456 + micros).expect("in range")
}

/// `day` days after a fixed moment (in May 2024, with microseconds).
fn t(day: i64) -> Timestamp {
    at(day * 86_400_000_000)
}

/// The moment imports run at.
fn now() -> Timestamp {
    at(100 * 86_400_000_000)
}

fn customer(id: &str) -> NewCustomer {
    NewCustomer {
        id: cid(id),
        name: None,
        phone: None,
        gender: None,
        birthday: None,
        region: None,
        channel: None,
        referrer_id: None,
        joined_at: None,
        tags: Vec::new(),
    }
}

fn full_customer(id: &str) -> NewCustomer {
    NewCustomer {
        name: Some(format!("顾客 {id}")),
        phone: Some("+8613800138000".into()),
        gender: Some(Gender::Female),
        birthday: Some(date(1990, 2, 28)),
        region: Some("上海".into()),
        channel: Some(channel("douyin")),
        referrer_id: Some(cid("referrer-1")),
        joined_at: Some(t(3)),
        ..customer(id)
    }
}

fn as_stored(c: &NewCustomer) -> Customer {
    Customer {
        id: c.id.clone(),
        name: c.name.clone(),
        phone: c.phone.clone(),
        gender: c.gender,
        birthday: c.birthday,
        region: c.region.clone(),
        channel: c.channel.clone(),
        referrer_id: c.referrer_id.clone(),
        joined_at: c.joined_at.unwrap_or_else(now),
    }
}

fn seen(id: &str, at: Timestamp, via: Option<&str>) -> SeenCustomer {
    SeenCustomer {
        id: cid(id),
        at,
        channel: via.map(channel),
    }
}

fn order(id: &str, customer: &str, at: Timestamp, fen: i64) -> NewOrder {
    NewOrder {
        id: OrderId::parse(id).expect("a valid order id"),
        customer_id: cid(customer),
        ordered_at: at,
        amount: Money::from_fen(fen),
        discount: Money::ZERO,
        coupon_code: None,
        channel: None,
        status: OrderStatus::Paid,
    }
}

fn event(id: &str, customer: &str, kind: &str, at: Timestamp) -> NewEvent {
    NewEvent {
        id: EventId::parse(id).expect("a valid event id"),
        customer_id: cid(customer),
        kind: EventType::parse(kind).expect("a valid event type"),
        occurred_at: at,
        properties: "{}".into(),
    }
}

/// Orders with every field varied: 19-digit and short ids, instants before and after
/// the epoch with microseconds, absent and present optional fields, both statuses.
fn many_orders(n: i64) -> Vec<NewOrder> {
    (0..n)
        .map(|i| {
            let id = match i % 3 {
                0 => format!("{}", 3_791_234_567_890_000_000 + i * 7_919),
                1 => format!("T{i:07}"),
                _ => format!("订单-{i}"),
            };
            let when = if i % 97 == 0 {
                Timestamp::from_microsecond(-86_400_000_000 * 365 + i).expect("in range")
            } else {
                at(i * 1_234_567_891 % 100_000_000_000_000)
            };
            let mut o = order(&id, &format!("c{}", i % 997), when, i * 37 % 100_000);
            if i % 5 == 0 {
                o.discount = Money::from_fen(i % 300);
            }
            if i % 4 == 0 {
                o.coupon_code = Some(format!("券-{i}"));
            }
            o.channel = match i % 3 {
                0 => None,
                1 => Some(channel("douyin")),
                _ => Some(channel("mini_program")),
            };
            if i % 10 == 0 {
                o.status = OrderStatus::Refunded;
            }
            o
        })
        .collect()
}

fn sorted(mut orders: Vec<NewOrder>) -> Vec<NewOrder> {
    orders.sort_by(|a, b| a.id.cmp(&b.id));
    orders
}

fn sort_facts(facts: &mut [OrderFact]) {
    facts.sort_by(|a, b| {
        (&a.customer_id, a.ordered_at, a.amount, a.status.as_str()).cmp(&(
            &b.customer_id,
            b.ordered_at,
            b.amount,
            b.status.as_str(),
        ))
    });
}

fn orders(store: &mut dyn Store, tenant: &Tenant) -> Result<Vec<NewOrder>> {
    let mut out = Vec::new();
    store.scan_orders(tenant, &mut |o| out.push(o))?;
    Ok(out)
}

/// Order facts in a fixed order (their scan promises none).
fn facts(store: &mut dyn Store, tenant: &Tenant) -> Result<Vec<OrderFact>> {
    let mut out = Vec::new();
    store.scan_order_facts(tenant, &mut |f| out.push(f))?;
    sort_facts(&mut out);
    Ok(out)
}

fn events(store: &mut dyn Store, tenant: &Tenant) -> Result<Vec<NewEvent>> {
    let mut out = Vec::new();
    store.scan_events(tenant, &mut |e| out.push(e))?;
    Ok(out)
}

fn customer_ids(store: &mut dyn Store, tenant: &Tenant) -> Result<Vec<String>> {
    let mut out = Vec::new();
    store.scan_customers(tenant, &mut |c| out.push(c.id.as_str().to_owned()))?;
    Ok(out)
}

/// Everything a tenant's store shows, to compare before and after.
#[derive(Debug, PartialEq)]
struct Snapshot {
    counts: TableCounts,
    customers: Vec<(Customer, Vec<String>)>,
    orders: Vec<NewOrder>,
    facts: Vec<OrderFact>,
    events: Vec<NewEvent>,
}

fn snapshot(store: &mut dyn Store, tenant: &Tenant) -> Result<Snapshot> {
    let mut customers = Vec::new();
    for id in customer_ids(store, tenant)? {
        let id = cid(&id);
        customers.push((
            store.customer(tenant, &id)?,
            store.customer_tags(tenant, &id)?,
        ));
    }
    Ok(Snapshot {
        counts: store.table_counts(tenant)?,
        customers,
        orders: orders(store, tenant)?,
        facts: facts(store, tenant)?,
        events: events(store, tenant)?,
    })
}
