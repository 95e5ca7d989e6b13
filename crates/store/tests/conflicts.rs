//! A deadlock between two PostgreSQL transactions is told apart from other failures: the
//! ingest writes a group again when it meets one (two servers on one database), and
//! fails at once on anything else. And the ingest's writes do not lock rows they leave as
//! they are, so two servers' groups meet in fewer deadlocks.

use std::sync::{Arc, Barrier};

use siyu_core::profile::Profile;
use siyu_core::{Channel, CustomerId, NewCustomer, SeenCustomer, Timestamp};
use siyu_store::{ImportStore, PgStore, Store, StoreError, TenantStore};

/// Two transactions that take two rows in opposite orders: PostgreSQL stops one of
/// them as a deadlock. The stopped one's error, as the store reports it.
fn deadlock(url: &str, table: &str) -> StoreError {
    let mut setup = postgres::Client::connect(url, postgres::NoTls).expect("connect");
    setup
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int PRIMARY KEY, n int);
             INSERT INTO {table} VALUES (1, 0), (2, 0);"
        ))
        .expect("table");
    let both = Arc::new(Barrier::new(2));
    let sides: Vec<_> = [(1, 2), (2, 1)]
        .into_iter()
        .map(|(first, second)| {
            let (url, table, both) = (url.to_owned(), table.to_owned(), Arc::clone(&both));
            std::thread::spawn(move || -> Result<(), postgres::Error> {
                let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
                let mut tx = c.transaction()?;
                let update = format!("UPDATE {table} SET n = n + 1 WHERE id = $1");
                tx.execute(&update, &[&first])?;
                both.wait();
                tx.execute(&update, &[&second])?;
                tx.commit()
            })
        })
        .collect();
    let failures: Vec<postgres::Error> = sides
        .into_iter()
        .filter_map(|s| s.join().expect("side").err())
        .collect();
    setup
        .batch_execute(&format!("DROP TABLE {table}"))
        .expect("drop");
    assert_eq!(failures.len(), 1, "one of the two is stopped: {failures:?}");
    StoreError::from(failures.into_iter().next().expect("a failure"))
}

#[test]
fn a_deadlock_is_transient_and_a_constraint_violation_is_not() {
    let Ok(url) = std::env::var("SIYU_TEST_POSTGRES") else {
        return;
    };
    let table = format!("t_conflicts_{}", std::process::id());
    let stopped = deadlock(&url, &table);
    assert!(stopped.is_transient(), "{stopped}");
    assert!(stopped.to_string().contains("40P01"), "{stopped}");

    let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let duplicate = c
        .batch_execute(&format!(
            "CREATE TEMP TABLE {table} (id int PRIMARY KEY); INSERT INTO {table} VALUES (1), (1)"
        ))
        .expect_err("a duplicate key");
    let duplicate = StoreError::from(duplicate);
    assert!(!duplicate.is_transient(), "{duplicate}");
    assert!(!StoreError::NotFound("customer c1".into()).is_transient());
}

/// Two servers' group commits sight the same known customers one batch at a time, in
/// opposite orders. A sighting that changes nothing (the customer joined earlier, their
/// channel is known) must not lock the customer's row: before, each transaction locked
/// the rows its sightings met, waited for the other's, and PostgreSQL stopped one of the
/// two as a deadlock.
#[test]
fn sightings_that_change_nothing_take_no_locks() {
    let Ok(url) = std::env::var("SIYU_TEST_POSTGRES") else {
        return;
    };
    let schema = format!("t_sightings_{}", std::process::id());
    let mut setup = PgStore::connect_in_schema(&url, &schema).expect("connect");
    setup.migrate().expect("migrate");
    let shop = setup.tenant("shop").expect("tenant");
    let id = |s: &str| CustomerId::parse(s).expect("an id");
    let joined = Timestamp::from_second(1_700_000_000).expect("a time");
    let known = |s: &str| NewCustomer {
        id: id(s),
        name: None,
        phone: None,
        gender: None,
        birthday: None,
        region: None,
        channel: Some(Channel::parse("store").expect("a channel")),
        referrer_id: None,
        joined_at: Some(joined),
        tags: Vec::new(),
    };
    let mut tx = setup.begin_import(&shop).expect("begin");
    tx.upsert_customers(&[known("c1"), known("c2")], joined)
        .expect("customers");
    tx.commit().expect("commit");

    let later = Timestamp::from_second(1_800_000_000).expect("a time");
    let both = Barrier::new(2);
    let outcomes: Vec<Result<(), StoreError>> = std::thread::scope(|s| {
        let sides: Vec<_> = [("c1", "c2"), ("c2", "c1")]
            .into_iter()
            .map(|(first, second)| {
                let (url, schema, shop, both) = (&url, &schema, &shop, &both);
                s.spawn(move || -> Result<(), StoreError> {
                    let mut store = PgStore::connect_in_schema(url, schema)?;
                    let mut tx = store.begin_import(shop)?;
                    let seen = |c: &str| SeenCustomer {
                        id: id(c),
                        at: later,
                        channel: Some(Channel::parse("online").expect("a channel")),
                    };
                    let first = tx.see_customers(&[seen(first)]);
                    both.wait();
                    assert_eq!(first?, 0, "nobody is new");
                    tx.see_customers(&[seen(second)])?;
                    tx.commit()
                })
            })
            .collect();
        sides.into_iter().map(|s| s.join().expect("side")).collect()
    });
    PgStore::drop_schema(&url, &schema).expect("drop");
    for outcome in outcomes {
        outcome.expect("both groups commit");
    }
}

/// A server's group commit writes its batches' profiles one statement after another, and
/// two servers' groups could lock the same profiles in opposite orders: on the server's
/// ingest connection the first profile written takes the tenant's evaluation lock (which
/// the group's evaluation takes anyway), so the other server's group waits for it before
/// locking any profile. Other connections (an import) take it only to evaluate.
#[test]
fn a_serving_group_takes_the_evaluation_lock_before_its_first_profile() {
    let Ok(url) = std::env::var("SIYU_TEST_POSTGRES") else {
        return;
    };
    let schema = format!("t_profile_lock_{}", std::process::id());
    let mut setup = PgStore::connect_in_schema(&url, &schema).expect("connect");
    setup.migrate().expect("migrate");
    let shop = setup.tenant("shop").expect("tenant");
    let mut watch = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
    let mut evaluation_locks = || -> i64 {
        watch
            .query_one(
                "SELECT count(*) FROM pg_locks
                 WHERE locktype = 'advisory' AND classid = 7301 AND objid = $1 AND granted",
                &[&u32::try_from(shop.id).expect("a small tenant id")],
            )
            .expect("pg_locks")
            .get(0)
    };
    let profile = Profile::new(
        CustomerId::parse("c1").expect("an id"),
        Timestamp::from_second(1_700_000_000).expect("a time"),
        None,
    );
    let mut locks = Vec::new();
    for serving in [false, true] {
        let mut store = PgStore::connect_in_schema(&url, &schema).expect("connect");
        if serving {
            store.serve_writes().expect("serve");
        }
        let mut tx = store.begin_import(&shop).expect("begin");
        tx.save_profiles(std::slice::from_ref(&profile))
            .expect("profiles");
        locks.push(evaluation_locks());
        tx.commit().expect("commit");
    }
    PgStore::drop_schema(&url, &schema).expect("drop");
    assert_eq!(locks, [0, 1], "[an import, a server's group]");
}
