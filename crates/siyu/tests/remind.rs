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

/// `siyu remind at-risk`: who is in the at_risk stage now, having entered it within the
/// days asked; opted-out customers left out.
fn at_risk_now(db: &str) {
    let dir = tempfile::tempdir().expect("dir");
    let today = siyu_core::TenantZone::named("Asia/Shanghai")
        .expect("zone")
        .day_of(siyu_core::Timestamp::now());
    let ago = |days: i64| {
        today
            .checked_sub(jiff::Span::new().days(days))
            .expect("day")
            .to_string()
    };
    let customers = dir.path().join("c.csv");
    std::fs::write(
        &customers,
        "customer_id,name,phone\na,张三,13800001234\nb,李四,13900005678\nd,赵六,13600001111\n",
    )
    .expect("write");
    // a and d: every 10 days, the last 20 days ago (past 1.5 cycles, within 3): at risk.
    // b: the same, the last yesterday: active.
    let orders = dir.path().join("o.csv");
    std::fs::write(
        &orders,
        format!(
            "order_id,customer_id,ordered_at,amount,status\n\
             1,a,{},100,paid\n2,a,{},100,paid\n3,a,{},100,paid\n\
             4,b,{},100,paid\n5,b,{},100,paid\n6,b,{},100,paid\n\
             7,d,{},100,paid\n8,d,{},100,paid\n9,d,{},100,paid\n",
            ago(40),
            ago(30),
            ago(20),
            ago(21),
            ago(11),
            ago(1),
            ago(40),
            ago(30),
            ago(20),
        ),
    )
    .expect("write");
    run(db, &["config", "set", "time_zone", "Asia/Shanghai"]);
    run(
        db,
        &["import", "customers", customers.to_str().expect("path")],
    );
    run(db, &["import", "orders", orders.to_str().expect("path")]);
    run(db, &["customer", "opt-out", "d"]);
    let csv = run(db, &["remind", "at-risk", "--days", "7", "--format", "csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(
        lines[1].starts_with("a,张三,138****1234,") && lines[1].ends_with(",3,300.00"),
        "{csv}"
    );
    assert!(lines[1].contains(&ago(20)), "{csv}");
}

#[test]
fn at_risk_now_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    at_risk_now(dir.path().join("r.db").to_str().expect("path"));
}

#[test]
fn at_risk_now_on_postgres() {
    let Ok(url) = std::env::var("SIYU_TEST_POSTGRES") else {
        return;
    };
    let schema = format!("siyu_remind_risk_{}", std::process::id());
    let db = siyu_store::PgStore::schema_url(&url, &schema).expect("schema");
    at_risk_now(&db);
    let _ = siyu_store::PgStore::drop_schema(&url, &schema);
}

/// `siyu remind birthdays`: whose birthday falls within the days asked, over a year's end,
/// a 29 February one on the 28th, opted-out customers left out.
fn birthdays_soon(db: &str) {
    let dir = tempfile::tempdir().expect("dir");
    let customers = dir.path().join("c.csv");
    std::fs::write(
        &customers,
        "customer_id,name,phone,birthday\n\
         a,张三,13800001234,1990-12-30\n\
         b,李四,13900005678,1985-01-02\n\
         c,王五,13700009999,1992-01-20\n\
         d,赵六,13600001111,1991-12-31\n\
         e,钱七,,2000-02-29\n\
         f,孙八,,\n",
    )
    .expect("write");
    run(
        db,
        &["import", "customers", customers.to_str().expect("path")],
    );
    run(db, &["customer", "opt-out", "d"]);
    let ids = dir.path().join("ids.txt");
    let csv = run(
        db,
        &[
            "remind",
            "birthdays",
            "--as-of",
            "2026-12-29",
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
        "customer_id,name,phone,birthday,day,days_until,orders,net_spend\n\
         a,张三,138****1234,1990-12-30,2026-12-30,1,0,0.00\n\
         b,李四,139****5678,1985-01-02,2027-01-02,4,0,0.00\n"
    );
    assert_eq!(std::fs::read_to_string(&ids).expect("ids"), "a\nb\n");
    let leap = run(
        db,
        &[
            "remind",
            "birthdays",
            "--as-of",
            "2027-02-27",
            "--days",
            "1",
            "--format",
            "csv",
        ],
    );
    assert!(
        leap.contains("\ne,钱七,,2000-02-29,2027-02-28,1,"),
        "{leap}"
    );
}

#[test]
fn birthdays_soon_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    birthdays_soon(dir.path().join("r.db").to_str().expect("path"));
}

#[test]
fn birthdays_soon_on_postgres() {
    let Ok(url) = std::env::var("SIYU_TEST_POSTGRES") else {
        return;
    };
    let schema = format!("siyu_remind_b_{}", std::process::id());
    let db = siyu_store::PgStore::schema_url(&url, &schema).expect("schema");
    birthdays_soon(&db);
    let _ = siyu_store::PgStore::drop_schema(&url, &schema);
}
