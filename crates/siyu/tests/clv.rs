//! `siyu clv` end to end on a small demo shop: the fit prints the documented JSON, the
//! database, the orders file and the summary file give the same estimates, predictions are
//! in range and never NaN, the holdout check has its buckets; an empty or one-customer
//! database gets a clear error, never a panic or a NaN.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

mod common;

use common::{siyu, text};

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// The demo shop of 2,000 customers (seed 3, until 2025-06-30), with its CSV files.
fn shop(dir: &Path) -> (PathBuf, PathBuf) {
    let db = dir.join("shop.db");
    let files = dir.join("shop");
    ok(siyu(
        &db,
        &[
            "demo",
            "--customers",
            "2000",
            "--seed",
            "3",
            "--until",
            "2025-06-30",
            "--out",
            &files.to_string_lossy(),
        ],
    ));
    (db, files.join("orders.csv"))
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// The keys of an object, in the order the text holds them (serde_json's map sorts them).
fn keys<'a>(v: &'a Value, text: &str) -> Vec<&'a str> {
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_by_key(|k| {
        text.find(&format!("\"{k}\":"))
            .expect("the key is in the text")
    });
    keys
}

fn positive(v: &Value) -> f64 {
    let x = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert!(x.is_finite() && x > 0.0, "{x}");
    x
}

/// Neither a panic nor a NaN anywhere in what a run printed.
fn assert_clean(out: &Output) {
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains("panicked"), "{all}");
    let words = all.split(|c: char| !c.is_alphanumeric());
    for word in words.map(str::to_lowercase) {
        assert!(
            !["nan", "inf", "infinity"].contains(&word.as_str()),
            "{all}"
        );
    }
}

#[test]
fn fit_prints_the_documented_json_and_agrees_across_database_file_and_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, orders) = shop(dir.path());
    let from_db = ok(siyu(&db, &["clv", "fit", "--format", "json"]));
    let v = json(&from_db);
    assert_eq!(keys(&v, &from_db), ["bgnbd", "gamma_gamma"]);
    assert_eq!(
        keys(&v["bgnbd"], &from_db),
        ["r", "alpha", "a", "b", "log_likelihood", "customers"]
    );
    let gamma_gamma = &from_db[from_db.find("\"gamma_gamma\"").expect("gamma_gamma")..];
    assert_eq!(
        keys(&v["gamma_gamma"], gamma_gamma),
        ["p", "q", "v", "customers"]
    );
    for k in ["r", "alpha", "a", "b"] {
        positive(&v["bgnbd"][k]);
    }
    for k in ["p", "q", "v"] {
        positive(&v["gamma_gamma"][k]);
    }
    let ll = v["bgnbd"]["log_likelihood"].as_f64().expect("a number");
    assert!(ll.is_finite() && ll < 0.0);
    let buyers = v["bgnbd"]["customers"].as_u64().expect("a count");
    let repeaters = v["gamma_gamma"]["customers"].as_u64().expect("a count");
    assert!(buyers > 300 && repeaters > 50 && repeaters < buyers, "{v}");

    // Straight from the orders file (no database) and from the summary: the same estimates.
    let empty = dir.path().join("unused.db");
    let from_file = ok(siyu(
        &empty,
        &[
            "clv",
            "fit",
            "--format",
            "json",
            "--orders",
            &orders.to_string_lossy(),
        ],
    ));
    assert_eq!(from_file, from_db);
    let summary = dir.path().join("summary.csv");
    let wrote = ok(siyu(
        &db,
        &["clv", "summary", "--out", &summary.to_string_lossy()],
    ));
    assert!(wrote.contains(&format!("{buyers} customers")), "{wrote}");
    let csv = std::fs::read_to_string(&summary).expect("summary written");
    assert_eq!(
        csv.lines().next(),
        Some("customer_id,frequency,recency,T,monetary_value")
    );
    assert_eq!(csv.lines().count() as u64, buyers + 1);
    let from_summary = ok(siyu(
        &empty,
        &[
            "clv",
            "fit",
            "--format",
            "json",
            "--summary",
            &summary.to_string_lossy(),
        ],
    ));
    assert_eq!(from_summary, from_db);

    // The table for people names the parameters and the log-likelihoods.
    let table = ok(siyu(&db, &["clv", "fit"]));
    for word in [
        "BG/NBD",
        "Gamma-Gamma",
        "alpha",
        "log-likelihood",
        "std. error",
    ] {
        assert!(table.contains(word), "{word}: {table}");
    }
    assert!(!table.contains("NaN"), "{table}");
}

#[test]
fn predictions_are_in_range_and_never_nan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, _) = shop(dir.path());
    let csv = ok(siyu(
        &db,
        &[
            "clv",
            "predict",
            "--format",
            "csv",
            "--horizon-weeks",
            "26",
            "--discount-monthly",
            "0.02",
        ],
    ));
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "customer_id,frequency,recency,T,monetary_value,p_alive,expected_purchases,expected_spend,clv"
        )
    );
    let mut rows = 0;
    for line in lines {
        rows += 1;
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 9, "{line}");
        let num = |i: usize| -> f64 {
            f[i].parse()
                .unwrap_or_else(|_| panic!("field {i} of {line}"))
        };
        let p_alive = num(5);
        assert!((0.0..=1.0).contains(&p_alive), "{line}");
        assert!(num(6) >= 0.0 && num(7) > 0.0 && num(8) >= 0.0, "{line}");
        for i in 1..9 {
            assert!(num(i).is_finite(), "{line}");
        }
    }
    assert!(rows > 300, "{rows}");

    let table = ok(siyu(&db, &["clv", "predict", "--top", "5"]));
    assert!(table.contains("Top 5 customers by CLV"), "{table}");
    assert!(table.contains("CLV over 12 months"), "{table}");
    assert!(!table.contains("NaN") && !table.contains("n/a"), "{table}");
}

#[test]
fn the_holdout_check_compares_predicted_and_actual_repeat_purchases_by_frequency() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, _) = shop(dir.path());
    let args = [
        "clv",
        "predict",
        "--calibration-end",
        "2025-03-31",
        "--holdout-end",
        "2025-06-30",
    ];
    let table = ok(siyu(&db, &args));
    assert!(table.contains("Holdout check"), "{table}");
    let rows: Vec<&str> = table
        .lines()
        .skip_while(|l| !l.starts_with("frequency"))
        .collect();
    assert_eq!(rows.len(), 1 + 8 + 1, "{table}");
    assert!(
        rows[8].starts_with("7+") && rows[9].starts_with("all"),
        "{table}"
    );

    let mut with_json = args.to_vec();
    with_json.extend(["--format", "json"]);
    let v = json(&ok(siyu(&db, &with_json)));
    let buckets = v["holdout"].as_array().expect("the holdout buckets");
    assert_eq!(buckets.len(), 8);
    let (mut n, mut predicted, mut actual) = (0.0, 0.0, 0.0);
    for b in buckets {
        let c = b["customers"].as_f64().expect("a count");
        if c > 0.0 {
            predicted += c * b["predicted"].as_f64().expect("a mean");
            actual += c * b["actual"].as_f64().expect("a mean");
        }
        n += c;
    }
    assert_eq!(
        n as usize,
        v["customers"].as_array().expect("customers").len()
    );
    // The demo shop buys by the BG/NBD process: over the base, the prediction is close.
    let (predicted, actual) = (predicted / n, actual / n);
    assert!(
        actual > 0.0 && (predicted / actual - 1.0).abs() < 0.3,
        "predicted {predicted} vs actual {actual}"
    );
    for c in v["customers"].as_array().expect("customers") {
        let p = c["p_alive"].as_f64().expect("P(alive)");
        assert!((0.0..=1.0).contains(&p), "{c}");
        assert!(c["holdout_predicted"].as_f64().is_some_and(f64::is_finite));
    }

    // The holdout needs a calibration end before it.
    let out = siyu(&db, &["clv", "predict", "--holdout-end", "2025-06-30"]);
    assert!(!out.status.success());
    let out = siyu(
        &db,
        &[
            "clv",
            "predict",
            "--calibration-end",
            "2025-06-30",
            "--holdout-end",
            "2025-06-01",
        ],
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("is not after the calibration end"));
}

#[test]
fn an_empty_database_gets_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("empty.db");
    for command in [
        &["clv", "fit"][..],
        &["clv", "fit", "--format", "json"],
        &["clv", "predict"],
    ] {
        let out = siyu(&db, command);
        assert!(!out.status.success(), "{command:?}");
        assert_clean(&out);
        assert!(
            text(&out.stderr).contains("nothing to fit"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn a_one_customer_database_gets_a_clear_error_or_na_never_a_nan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("one.db");
    let orders = dir.path().join("orders.csv");
    std::fs::write(
        &orders,
        "order_id,customer_id,ordered_at,amount\n\
         o1,c1,2025-01-02 10:00:00,88\n\
         o2,c1,2025-02-10 10:00:00,120.50\n\
         o3,c1,2025-04-01 10:00:00,99\n",
    )
    .expect("write");
    ok(siyu(&db, &["import", "orders", &orders.to_string_lossy()]));
    for command in [
        &["clv", "fit"][..],
        &["clv", "fit", "--format", "json"],
        &["clv", "predict", "--format", "csv"],
    ] {
        let out = siyu(&db, command);
        assert_clean(&out);
        if !out.status.success() {
            assert!(
                text(&out.stderr).contains("cannot be fitted"),
                "{}",
                text(&out.stderr)
            );
        }
    }
}

#[test]
fn an_orders_file_with_bad_rows_is_refused_with_its_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let orders = dir.path().join("orders.csv");
    std::fs::write(
        &orders,
        "order_id,customer_id,ordered_at,amount\n\
         o1,c1,2025-01-02,88\n\
         o2,c1,someday,12\n\
         o3,c2,2025-01-03,12.345\n",
    )
    .expect("write");
    let out = siyu(
        &dir.path().join("unused.db"),
        &["clv", "fit", "--orders", &orders.to_string_lossy()],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("2 invalid rows"), "{err}");
    assert!(err.contains("orders.csv:3: ordered_at"), "{err}");
    assert!(err.contains("orders.csv:4: amount"), "{err}");
}
