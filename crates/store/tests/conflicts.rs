//! A deadlock between two PostgreSQL transactions is told apart from other failures: the
//! ingest writes a group again when it meets one (two servers on one database), and
//! fails at once on anything else.

use std::sync::{Arc, Barrier};

use siyu_store::StoreError;

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
