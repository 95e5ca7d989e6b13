//! The `siyu` binary end to end: the demo shop, imports through the command line, and
//! what is printed when the output is piped.

use std::path::Path;

mod common;

use common::{siyu, text};

#[test]
fn the_demo_shop_is_the_same_for_the_same_seed_and_prints_its_overview() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let args = |out: &Path| {
        vec![
            "demo".to_owned(),
            "--customers".to_owned(),
            "400".to_owned(),
            "--seed".to_owned(),
            "7".to_owned(),
            "--until".to_owned(),
            "2026-10-31".to_owned(),
            "--out".to_owned(),
            out.to_string_lossy().into_owned(),
        ]
    };
    let run = |db: &str, out: &Path| {
        let args = args(out);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        siyu(&dir.path().join(db), &args)
    };
    let first = run("a.db", &a);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let stdout = text(&first.stdout);
    assert!(stdout.contains("customers in the pool"), "{stdout}");
    assert!(stdout.contains("400"), "{stdout}");
    assert!(stdout.contains("By source channel"), "{stdout}");
    assert!(stdout.contains("imported orders from"), "{stdout}");
    assert_eq!(text(&first.stderr), "", "nothing but results when piped");

    let second = run("b.db", &b);
    assert!(second.status.success(), "{}", text(&second.stderr));
    for file in ["customers.csv", "orders.csv", "events.csv"] {
        let x = std::fs::read(a.join(file)).expect("a");
        let y = std::fs::read(b.join(file)).expect("b");
        assert!(!x.is_empty());
        assert!(x == y, "{file} differs between two runs with one seed");
    }
    let overview = |db: &str| {
        let out = siyu(
            &dir.path().join(db),
            &["report", "overview", "--format", "json"],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    assert_eq!(overview("a.db"), overview("b.db"));

    // Running the demo again into the same database changes nothing.
    let again = run("a.db", &a);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains(" 0 inserted, 0 updated"),
        "{}",
        text(&again.stdout)
    );
}

#[test]
fn a_refused_import_exits_non_zero_naming_file_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("siyu.db");
    let file = dir.path().join("orders.csv");
    std::fs::write(
        &file,
        "order_id,customer_id,ordered_at,amount\no1,c1,2024-05-01,12,5\no2,c1,2024-05-01,\"12,5\"\n",
    )
    .expect("write");
    let out = siyu(&db, &["import", "orders", &file.to_string_lossy()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.starts_with("error: importing orders from"), "{err}");
    assert!(
        err.contains("orders.csv:2: row: has 5 fields, the header has 4"),
        "{err}"
    );
    assert!(
        err.contains("orders.csv:3: amount: '12,5' is not an amount"),
        "{err}"
    );
    assert_eq!(text(&out.stdout), "");

    let json = siyu(&db, &["report", "overview", "--format", "json"]);
    assert!(
        text(&json.stdout).contains("\"customers\": 0"),
        "{}",
        text(&json.stdout)
    );
}

#[test]
fn an_import_prints_its_counts_and_json_on_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("siyu.db");
    let file = dir.path().join("customers.csv");
    std::fs::write(
        &file,
        "customer_id,name,channel\nc1,张三,小红书\nc2,李四,store\n",
    )
    .expect("write");
    let out = siyu(
        &db,
        &[
            "import",
            "customers",
            &file.to_string_lossy(),
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["inserted"], 2);
    assert_eq!(report["rejected"], 0);
    let again = siyu(&db, &["import", "customers", &file.to_string_lossy()]);
    assert!(
        text(&again.stdout).contains("2 rows: 0 inserted, 0 updated, 2 unchanged, 0 rejected"),
        "{}",
        text(&again.stdout)
    );
}

/// Every merchant's file of `tests/data` through the command line into one shop, as a
/// merchant brings them: each platform's export recognised without being named (CSV in
/// both encodings, xlsx, Weimob's JSON pages), the WeCom and WeChat sources, then the
/// figures over all of it.
#[test]
fn every_kind_of_merchants_file_imports_through_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("siyu.db");
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let out = siyu(&db, &["channel-code", "set", "dy_live", "抖音直播"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for (kind, file, preset, inserted) in [
        ("orders", "exports/youzan_orders.csv", "youzan", 4),
        ("orders", "exports/taobao_orders.csv", "taobao", 4),
        ("orders", "exports/douyin_orders.csv", "douyin", 2),
        ("orders", "exports/pdd_orders.xlsx", "pdd", 4),
        ("orders", "exports/weimob_orders.jsonl", "weimob", 3),
        // Youzan's customer list: its phone buyer and 阿香 are known by now, 林木 is new.
        ("customers", "exports/youzan_customers.csv", "youzan", 1),
    ] {
        // Copied first: the rejects file is written beside the file.
        let copy = dir.path().join(file.replace('/', "_"));
        std::fs::copy(data.join(file), &copy).expect("copy");
        let out = siyu(
            &db,
            &[
                "import",
                kind,
                &copy.to_string_lossy(),
                "--skip-invalid",
                "--format",
                "json",
            ],
        );
        assert!(out.status.success(), "{file}: {}", text(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let orders = report.get("orders").unwrap_or(&report);
        assert_eq!(orders["preset"], preset, "{file}");
        assert_eq!(orders["inserted"], inserted, "{file}");
    }
    for (kind, file) in [
        ("contacts", "wecom/contacts.jsonl"),
        ("groups", "wecom/groups.json"),
        ("followers", "wecom/followers.jsonl"),
    ] {
        let out = siyu(&db, &["import", kind, &data.join(file).to_string_lossy()]);
        assert!(out.status.success(), "{file}: {}", text(&out.stderr));
    }
    let out = siyu(&db, &["report", "overview", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let overview: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    // 17 orders imported, 3 of them refunded or cancelled; 17 ids, 14 persons: two WeCom
    // contacts are shop buyers by their noted phone, and one of those buyers an
    // official-account follower by the contact's unionid (docs/identity.md).
    assert_eq!(
        (
            &overview["paid_orders"],
            &overview["refunded_orders"],
            &overview["customers"]
        ),
        (
            &serde_json::json!(14),
            &serde_json::json!(3),
            &serde_json::json!(14)
        ),
        "{overview}"
    );
}

#[test]
fn lifecycle_stages_cover_every_customer_and_follow_the_repurchase_cycle_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("siyu.db");
    let demo = siyu(
        &db,
        &["demo", "--customers", "500", "--until", "2026-10-31"],
    );
    assert!(demo.status.success(), "{}", text(&demo.stderr));
    let stages = |db: &Path| {
        let out = siyu(
            db,
            &["lifecycle", "--as-of", "2026-10-31", "--format", "json"],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let count = |stage: &str| {
            report["stages"]
                .as_array()
                .expect("stages")
                .iter()
                .find(|s| s["stage"] == stage)
                .and_then(|s| s["customers"].as_u64())
                .expect("count")
        };
        let total: u64 = [
            "prospect",
            "first_purchase",
            "repeat",
            "vip",
            "at_risk",
            "lost",
        ]
        .into_iter()
        .map(count)
        .sum();
        assert_eq!(total, 500);
        assert_eq!(report["customers"].as_array().map(Vec::len), Some(500));
        count("lost")
    };
    let lost_30 = stages(&db);

    let bad = siyu(&db, &["config", "set", "repurchase_cycle_days", "0"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("repurchase_cycle_days: '0' is not a whole number"),
        "{}",
        text(&bad.stderr)
    );
    let set = siyu(&db, &["config", "set", "repurchase_cycle_days", "90"]);
    assert!(set.status.success(), "{}", text(&set.stderr));
    let get = siyu(&db, &["config", "get", "repurchase_cycle_days"]);
    assert_eq!(text(&get.stdout), "90\n");
    assert!(
        stages(&db) < lost_30,
        "a longer cycle counts fewer customers lost"
    );

    let csv = siyu(
        &db,
        &["lifecycle", "--as-of", "2026-10-31", "--format", "csv"],
    );
    let csv = text(&csv.stdout);
    assert!(csv.starts_with(
        "customer_id,stage,journey,days_since_order,purchase_days,cycle_days,spend_365d\n"
    ));
    assert_eq!(csv.lines().count(), 501);
}

#[test]
fn a_config_change_that_moves_stages_records_them_under_its_own_occasion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("config.db");
    let day = siyu_core::TenantZone::default()
        .day_of(siyu_core::Timestamp::now())
        .checked_sub(jiff::Span::new().days(40))
        .expect("a day");
    let orders = dir.path().join("orders.csv");
    std::fs::write(
        &orders,
        format!("order_id,customer_id,ordered_at,amount\no1,c1,{day} 12:00:00,100\n"),
    )
    .expect("write");
    let run = |args: &[&str]| {
        let out = siyu(&db, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    run(&["import", "orders", &orders.to_string_lossy()]);
    // 40 days since the order: first_purchase with a 30-day cycle, at risk with 20 days.
    run(&["segment", "refresh"]);
    let said = run(&["config", "set", "repurchase_cycle_days", "20"]);
    assert!(said.contains("recorded across segments and tags"), "{said}");
    let history = run(&["segment", "history", "--customer", "c1", "--format", "json"]);
    assert!(
        history.contains("stage:at_risk") && history.contains("config repurchase_cycle_days"),
        "{history}"
    );
}
