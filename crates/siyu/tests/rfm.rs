//! `siyu rfm` end to end: straight from an orders file it gives exactly what importing the
//! file and running `siyu rfm` gives; the CSV is exactly the documented one; a bad file is
//! refused with the importer's own `FILE:LINE: field: reason` lines.

use std::path::Path;
use std::process::Output;

mod common;

use common::{siyu, text};

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// The same figures from the database and from the file, in every format and option.
fn assert_file_equals_database(db: &Path, orders: &Path, as_of: &str) {
    let file = orders.to_string_lossy();
    let variants: [&[&str]; 5] = [
        &["--format", "csv"],
        &["--format", "csv", "--quintiles"],
        &["--format", "csv", "--window-days", "90"],
        &["--format", "json", "--window-days", "365"],
        &["--quintiles"],
    ];
    for extra in variants {
        let mut args = vec!["rfm", "--as-of", as_of];
        args.extend_from_slice(extra);
        let from_db = ok(siyu(db, &args));
        args.extend_from_slice(&["--orders", &file]);
        let from_file = ok(siyu(db, &args));
        if extra.contains(&"csv") || extra.contains(&"json") {
            assert_eq!(from_file, from_db, "{extra:?}");
        } else {
            // The table names its source; the figures below the first line are the same.
            let body = |s: &str| s.lines().skip(1).collect::<Vec<_>>().join("\n");
            assert_eq!(body(&from_file), body(&from_db), "{extra:?}");
        }
    }
}

#[test]
fn an_orders_file_gives_what_importing_it_and_running_rfm_give_for_the_demo_shop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("shop.db");
    let out = dir.path().join("shop");
    ok(siyu(
        &db,
        &[
            "demo",
            "--customers",
            "1500",
            "--seed",
            "11",
            "--until",
            "2026-10-31",
            "--out",
            &out.to_string_lossy(),
        ],
    ));
    assert_file_equals_database(&db, &out.join("orders.csv"), "2026-10-31");
    // As of a day inside the history: later orders count nowhere.
    assert_file_equals_database(&db, &out.join("orders.csv"), "2026-03-15");
}

#[test]
fn an_orders_file_gives_what_importing_it_and_running_rfm_give_for_the_bench_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("bench.db");
    let orders = dir.path().join("orders.csv");
    let file = orders.to_string_lossy().into_owned();
    ok(siyu(
        &db,
        &[
            "bench",
            "gen-orders",
            "--orders",
            "30000",
            "--customers",
            "4000",
            "--seed",
            "5",
            "--out",
            &file,
        ],
    ));
    ok(siyu(&db, &["import", "orders", &file]));
    assert_file_equals_database(&db, &orders, "2025-12-31");
}

#[test]
fn an_order_id_repeated_in_the_file_counts_as_its_last_row_as_a_reimport_would() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("siyu.db");
    let orders = dir.path().join("orders.csv");
    std::fs::write(
        &orders,
        "order_id,customer_id,ordered_at,amount,status\r\n\
         o1,c1,2024-06-01 10:00:00,100,paid\r\n\
         o2,c2,2024-06-02 10:00:00,50,paid\r\n\
         o1,c1,2024-06-01 10:00:00,100,refunded\r\n\
         o3,c2,2024-06-29 23:30:00,10,paid\r\n\
         o2,c3,2024-06-10 10:00:00,70.5,paid\r\n",
    )
    .expect("write");
    ok(siyu(&db, &["import", "orders", &orders.to_string_lossy()]));
    assert_file_equals_database(&db, &orders, "2024-06-30");
    let csv = ok(siyu(
        &db,
        &[
            "rfm",
            "--as-of",
            "2024-06-30",
            "--format",
            "csv",
            "--orders",
            &orders.to_string_lossy(),
        ],
    ));
    assert_eq!(
        csv,
        "customer_id,recency_days,frequency,monetary,r,f,m,segment\n\
         c2,1,1,10.00,H,L,L,general_development\n\
         c3,20,1,70.50,L,L,H,important_winback\n"
    );
}

#[test]
fn the_csv_is_exactly_the_documented_one_sorted_by_customer_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let orders = dir.path().join("orders.csv");
    // Means over a, b, "c,1", é: R = (1 + 10 + 0 + 1) / 4 = 3, F = 6/4, M = 1500/4 fen.
    std::fs::write(
        &orders,
        "order_id,customer_id,ordered_at,amount,status\n\
         1,b,2024-06-20 08:00:00,1.00,paid\n\
         2,a,2024-06-29 23:30:00,5.50,paid\n\
         3,a,2024-06-01 00:00:00,0.50,paid\n\
         4,\"c,1\",2024-06-30 12:00:00,3,paid\n\
         5,\"c,1\",2024-06-30 12:00:00,3,paid\n\
         6,é,2024-06-29 00:00:00,2.00,\n\
         7,a,2024-07-01 00:00:00,900,paid\n\
         8,b,2024-06-21 00:00:00,900,refunded\n",
    )
    .expect("write");
    let db = dir.path().join("unused.db");
    let file = orders.to_string_lossy().into_owned();
    let args = [
        "rfm",
        "--orders",
        &file,
        "--as-of",
        "2024-06-30",
        "--format",
        "csv",
    ];
    let csv = ok(siyu(&db, &args));
    assert_eq!(
        csv,
        "customer_id,recency_days,frequency,monetary,r,f,m,segment\n\
         a,1,2,6.00,H,H,H,important_value\n\
         b,10,1,1.00,L,L,L,general_winback\n\
         \"c,1\",0,2,6.00,H,H,H,important_value\n\
         é,1,1,2.00,H,L,L,general_development\n"
    );
    let mut quintile_args = args.to_vec();
    quintile_args.push("--quintiles");
    let csv = ok(siyu(&db, &quintile_args));
    // R: days 1, 10, 0, 1 → worse than a: 1 (b) → 1 + ⌊5·1/4⌋ = 2; c,1 has 3 worse → 4.
    assert_eq!(
        csv,
        "customer_id,recency_days,frequency,monetary,r,f,m,segment\n\
         a,1,2,6.00,2,3,3,important_value\n\
         b,10,1,1.00,1,1,1,general_winback\n\
         \"c,1\",0,2,6.00,4,3,3,important_value\n\
         é,1,1,2.00,2,1,2,general_development\n"
    );
    assert!(!db.exists(), "--orders needs no database");
    let table = ok(siyu(
        &db,
        &["rfm", "--orders", &file, "--as-of", "2024-06-30"],
    ));
    assert!(table.contains("important_value        重要价值"), "{table}");
    assert!(
        table.contains("4 customers with paid orders scored"),
        "{table}"
    );
}

#[test]
fn a_bad_file_is_refused_with_the_lines_the_importer_gives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("siyu.db");
    let orders = dir.path().join("orders.csv");
    std::fs::write(
        &orders,
        "order_id,customer_id,ordered_at,amount\n\
         o1,c1,2024-05-01,12\n\
         o2,c1,2024-05-01,12,5\n\
         o3,c1,2024-05-01,\"12,5\"\n\
         o4,,someday,1\n",
    )
    .expect("write");
    let file = orders.to_string_lossy().into_owned();
    let rfm = siyu(&db, &["rfm", "--orders", &file, "--as-of", "2024-06-30"]);
    assert!(!rfm.status.success());
    assert_eq!(text(&rfm.stdout), "");
    let err = text(&rfm.stderr);
    assert!(err.starts_with("error: computing RFM from "), "{err}");
    assert!(err.contains("has 3 invalid rows"), "{err}");
    let listed = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.starts_with("  "))
            .map(|l| l.trim().to_owned())
            .collect()
    };
    let import = siyu(&db, &["import", "orders", &file]);
    assert!(!import.status.success());
    assert_eq!(listed(&err), listed(&text(&import.stderr)));
    let name = orders.display();
    assert_eq!(
        listed(&err),
        [
            format!("{name}:3: row: has 5 fields, the header has 4"),
            format!("{name}:4: amount: '12,5' is not an amount"),
            format!("{name}:5: customer_id: is empty"),
            format!(
                "{name}:5: ordered_at: 'someday' is not a time (expected RFC 3339, YYYY-MM-DD HH:MM:SS, YYYY-MM-DD, YYYY/M/D H:MM, 2026年5月1日 9:30 or seconds since the epoch)"
            ),
        ]
    );

    std::fs::write(&orders, "order_id;customer_id;ordered_at;amount\n").expect("write");
    let err = text(&siyu(&db, &["rfm", "--orders", &file]).stderr);
    assert!(err.contains(":1: header:"), "{err}");
    std::fs::write(&orders, "order_id,customer_id,ordered_at,amount\n").expect("write");
    let err = text(&siyu(&db, &["rfm", "--orders", &file]).stderr);
    assert!(err.contains("no rows after the header"), "{err}");
}

#[test]
fn rfm_of_an_empty_shop_scores_no_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("siyu.db");
    let table = ok(siyu(&db, &["rfm", "--as-of", "2024-06-30"]));
    assert!(
        table.contains("0 customers with paid orders scored"),
        "{table}"
    );
    let csv = ok(siyu(&db, &["rfm", "--format", "csv"]));
    assert_eq!(
        csv,
        "customer_id,recency_days,frequency,monetary,r,f,m,segment\n"
    );
}
