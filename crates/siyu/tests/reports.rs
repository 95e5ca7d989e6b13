//! The reports from the command line: every report in every format on an empty database,
//! on a shop of one customer and on the demo shop, never printing NaN or infinity; and the
//! GMV decomposition's parts adding up to the change in the JSON a dashboard would read.

mod common;

use std::path::Path;

use common::{siyu, text};

const REPORTS: &[&[&str]] = &[
    &["report", "overview"],
    &[
        "report",
        "gmv",
        "--from",
        "2025-05-01",
        "--to",
        "2025-05-31",
    ],
    &[
        "report",
        "gmv",
        "--from",
        "2025-05-01",
        "--to",
        "2025-05-31",
        "--compare-from",
        "2025-04-01",
        "--compare-to",
        "2025-04-30",
        "--what-if",
        "retention=+10%,aov=-5%",
        "--by",
        "channel",
    ],
    &[
        "report",
        "gmv",
        "--from",
        "2025-05-01",
        "--to",
        "2025-05-31",
        "--by",
        "stage",
    ],
    &["report", "cohorts", "--as-of", "2025-06-30"],
    &["report", "funnel", "--as-of", "2025-06-30"],
    &["report", "pareto", "--to", "2025-06-30"],
    &[
        "report",
        "channels",
        "--from",
        "2024-07-01",
        "--to",
        "2025-06-30",
    ],
    &["report", "referrals", "--as-of", "2025-06-30"],
    &["report", "clv", "--as-of", "2025-06-30", "--by", "channel"],
];

fn all_reports_are_clean(db: &Path) {
    for report in REPORTS {
        for format in ["table", "csv", "json"] {
            let mut args: Vec<&str> = report.to_vec();
            args.extend(["--format", format]);
            let out = siyu(db, &args);
            let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
            assert!(out.status.success(), "siyu {args:?}: {stderr}");
            for bad in ["NaN", "nan", "inf"] {
                assert!(
                    !stdout
                        .split(|c: char| !c.is_alphanumeric())
                        .any(|w| w == bad),
                    "siyu {args:?} printed {bad}:\n{stdout}"
                );
            }
            if format == "json" {
                serde_json::from_str::<serde_json::Value>(&stdout)
                    .unwrap_or_else(|e| panic!("siyu {args:?} gave invalid JSON ({e}):\n{stdout}"));
            }
        }
    }
}

#[test]
fn every_report_runs_on_an_empty_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    all_reports_are_clean(&dir.path().join("empty.db"));
}

#[test]
fn every_report_runs_on_a_shop_of_one_customer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("one.db");
    let orders = dir.path().join("orders.csv");
    std::fs::write(
        &orders,
        "order_id,customer_id,ordered_at,amount\n1,c1,2025-05-10 10:00:00,99.50\n",
    )
    .expect("write");
    let out = siyu(&db, &["import", "orders", orders.to_str().expect("path")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    all_reports_are_clean(&db);
}

#[test]
fn the_demo_shop_reports_agree_with_their_definitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("demo.db");
    let out = siyu(
        &db,
        &[
            "demo",
            "--customers",
            "1500",
            "--seed",
            "5",
            "--until",
            "2025-06-30",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = siyu(&db, &["channel-cost", "set", "douyin", "2025-05", "3000"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    all_reports_are_clean(&db);

    let out = siyu(
        &db,
        &[
            "report",
            "gmv",
            "--from",
            "2025-05-01",
            "--to",
            "2025-05-31",
            "--compare-from",
            "2025-03-01",
            "--compare-to",
            "2025-03-31",
            "--by",
            "channel",
            "--format",
            "json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&text(&out.stdout)).expect("json");
    let slices = report["slices"].as_array().expect("slices");
    assert!(slices.len() > 1, "all and the channels");
    let mut channel_gmv = 0i64;
    for s in slices {
        // Money in JSON is integer fen.
        let fen = |v: &serde_json::Value| -> i64 { v.as_i64().expect("fen") };
        let f = &s["factors"];
        let gmv = fen(&f["gmv"]);
        if s["slice"] != "all" {
            channel_gmv += gmv;
        }
        let c = &s["compared"];
        let parts = c["parts"].as_array().expect("parts");
        if !parts.is_empty() {
            let sum: i64 = parts.iter().map(|p| fen(&p["share"])).sum();
            assert_eq!(
                sum,
                fen(&c["change"]),
                "the parts add up to the change: {s}"
            );
        }
    }
    let all = slices[0]["factors"]["gmv"].as_i64().expect("fen");
    assert_eq!(channel_gmv, all, "the channels add up to all");

    let out = siyu(
        &db,
        &[
            "report",
            "channels",
            "--from",
            "2025-05-01",
            "--to",
            "2025-05-31",
            "--format",
            "csv",
        ],
    );
    let csv = text(&out.stdout);
    let douyin = csv
        .lines()
        .find(|l| l.starts_with("douyin,"))
        .expect("douyin line");
    assert!(douyin.contains(",3000.00,"), "the recorded spend: {douyin}");
}
