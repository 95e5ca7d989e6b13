//! `siyu remind due`, on SQLite and (with `SIYU_TEST_POSTGRES`) PostgreSQL: who is due
//! within the days asked, by their own cycle from 3 purchase days or the tenant's, with
//! phones masked, opted-out customers left out, and the ids written as an audience list.

mod common;

use std::process::Command;

fn run(db: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_siyu"))
        .args(["--db", db, "--tenant", "shop"])
        .args(args)
        .env_remove("SIYU_DB")
        .env_remove("SIYU_TENANT")
        .output()
        .expect("siyu");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        common::text(&out.stderr)
    );
    common::text(&out.stdout)
}

fn due_by_cycle(db: &str) {
    let dir = tempfile::tempdir().expect("dir");
    let customers = dir.path().join("c.csv");
    std::fs::write(
        &customers,
        "customer_id,name,phone\n\
         a,张三,13800001234\n\
         b,李四,13900005678\n\
         c,王五,13700009999\n\
         d,赵六,13600001111\n",
    )
    .expect("write");
    let orders = dir.path().join("o.csv");
    std::fs::write(
        &orders,
        "order_id,customer_id,ordered_at,amount,status\n\
         1,a,2025-01-01,100,paid\n\
         2,a,2025-01-11,100,paid\n\
         3,a,2025-01-21,100,paid\n\
         4,b,2025-01-05,50,paid\n\
         5,c,2025-01-25,80,paid\n\
         6,d,2025-01-01,100,paid\n\
         7,d,2025-01-11,100,paid\n\
         8,d,2025-01-21,100,paid\n",
    )
    .expect("write");
    run(db, &["config", "set", "repurchase_cycle_days", "30"]);
    run(
        db,
        &["import", "customers", customers.to_str().expect("path")],
    );
    run(db, &["import", "orders", orders.to_str().expect("path")]);
    run(db, &["customer", "opt-out", "d"]);
    let ids = dir.path().join("ids.txt");
    let csv = run(
        db,
        &[
            "remind",
            "due",
            "--as-of",
            "2025-01-30",
            "--days",
            "7",
            "--format",
            "csv",
            "--ids-out",
            ids.to_str().expect("path"),
        ],
    );
    assert_eq!(
        csv,
        "customer_id,name,phone,last_purchase_day,cycle_days,cycle,due_day,days_until_due,orders,net_spend\n\
         a,张三,138****1234,2025-01-21,10,own,2025-01-31,1,3,300.00\n\
         b,李四,139****5678,2025-01-05,30,tenant,2025-02-04,5,1,50.00\n"
    );
    assert_eq!(std::fs::read_to_string(&ids).expect("ids"), "a\nb\n");
    // A day later a is no longer ahead (due yesterday); c comes within 30 days.
    let later = run(
        db,
        &[
            "remind",
            "due",
            "--as-of",
            "2025-02-01",
            "--days",
            "30",
            "--format",
            "csv",
        ],
    );
    let who: Vec<&str> = later
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or_default())
        .collect();
    assert_eq!(who, ["b", "c"]);
}

#[test]
fn due_by_cycle_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    due_by_cycle(dir.path().join("r.db").to_str().expect("path"));
}

#[test]
fn due_by_cycle_on_postgres() {
    let Ok(url) = std::env::var("SIYU_TEST_POSTGRES") else {
        return;
    };
    let schema = format!("siyu_remind_{}", std::process::id());
    let db = siyu_store::PgStore::schema_url(&url, &schema).expect("schema");
    due_by_cycle(&db);
    let _ = siyu_store::PgStore::drop_schema(&url, &schema);
}
