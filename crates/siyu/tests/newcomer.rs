//! What a newcomer stumbled over on the command line (issue 15): output piped into a
//! reader that stops early, times and widths for people, reports that carry their figures
//! in every format, and the messages people read.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

mod common;

use common::{siyu, text};

/// A database with a small demo shop as of 2026-10-31.
fn demo(dir: &Path, customers: &str) -> std::path::PathBuf {
    let db = dir.join("siyu.db");
    let out = siyu(
        &db,
        &["demo", "--customers", customers, "--until", "2026-10-31"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    db
}

/// Runs `siyu --db DB ARGS…`, reads one line of its output and closes the pipe, as
/// `siyu … | head -1` does; returns the line, the exit status and what went to stderr.
fn first_line_then_close(db: &Path, args: &[&str]) -> (String, std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_siyu"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("SIYU_DB")
        .env_remove("SIYU_TENANT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("siyu runs");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).expect("read") == 1 && byte[0] != b'\n' {
        first.push(byte[0]);
    }
    drop(stdout);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    let status = child.wait().expect("wait");
    (text(&first), status, stderr)
}

#[test]
fn output_piped_into_a_reader_that_stops_early_ends_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = demo(dir.path(), "3000");
    let made = siyu(
        &db,
        &[
            "segment",
            "create",
            "everyone",
            "net_spend >= 0",
            "--purpose",
            "analysis",
        ],
    );
    assert!(made.status.success(), "{}", text(&made.stderr));
    for args in [
        &["segment", "members", "everyone", "--format", "csv"][..],
        &["segment", "members", "everyone", "--format", "json"][..],
        &["lifecycle", "--as-of", "2026-10-31", "--format", "csv"][..],
        &["lifecycle", "--as-of", "2026-10-31", "--format", "json"][..],
        &["rfm", "--as-of", "2026-10-31", "--format", "csv"][..],
    ] {
        let (line, status, stderr) = first_line_then_close(&db, args);
        assert!(!line.is_empty(), "{args:?}");
        assert_eq!(stderr, "", "{args:?}: nothing on stderr");
        assert!(
            status.success() || status.code() == Some(141),
            "{args:?}: {status}"
        );
    }
}

/// The display width of a line of a terminal: CJK characters take two cells.
fn cells(s: &str) -> usize {
    s.chars()
        .map(|c| {
            if ('\u{4E00}'..='\u{9FFF}').contains(&c) {
                2
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn the_caret_under_a_rule_error_stands_under_the_word_with_chinese_before_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("siyu.db");
    let rule = r#"has_tag("户外用品") and stag = 1"#;
    let out = siyu(&db, &["segment", "create", "outdoor", rule]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    let shown = lines
        .iter()
        .position(|l| l.trim_start() == rule)
        .unwrap_or_else(|| panic!("the rule is shown: {err}"));
    let caret = lines[shown + 1];
    let at = lines[shown].find("stag").expect("stag");
    assert_eq!(
        cells(&caret[..caret.find('^').expect("caret")]),
        cells(&lines[shown][..at]),
        "{err}"
    );
}

#[test]
fn times_shown_to_people_are_local_to_the_second_and_programs_get_rfc3339() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = demo(dir.path(), "50");
    let made = siyu(&db, &["segment", "create", "all", "days_since_order >= 0"]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let before = jiff::Timestamp::now();
    let tagged = siyu(&db, &["tag", "add", "c000001", "户外", "--by", "李"]);
    assert!(tagged.status.success(), "{}", text(&tagged.stderr));
    // Asia/Shanghai, the demo's zone: eight hours ahead of UTC, no seconds' fractions.
    let local = |at: jiff::Timestamp| {
        jiff::tz::TimeZone::get("Asia/Shanghai")
            .expect("zone")
            .to_datetime(at)
            .strftime("%Y-%m-%d %H:%M")
            .to_string()
    };
    let show = text(&siyu(&db, &["segment", "show", "all"]).stdout);
    let created = show
        .lines()
        .find(|l| l.trim_start().starts_with("created:"))
        .unwrap_or_else(|| panic!("{show}"));
    assert!(created.contains(&local(before)), "{created}");
    assert!(
        !created.contains('T') && !created.contains('.'),
        "{created}"
    );

    let tags = text(&siyu(&db, &["tag", "list", "--customer", "c000001"]).stdout);
    let line = tags
        .lines()
        .find(|l| l.starts_with("户外"))
        .unwrap_or_else(|| panic!("{tags}"));
    assert!(line.contains(&local(before)), "{tags}");
    assert!(!line.contains('Z'), "{tags}");
    // The columns line up on the screen: "source" starts in one cell on every line.
    let header = tags.lines().next().expect("header");
    assert_eq!(
        cells(&header[..header.find("source").expect("source")]),
        cells(&line[..line.find("manual:李").expect("source")]),
        "{tags}"
    );

    let audit_made = siyu(&db, &["customer", "opt-out", "c000001", "--by", "ops"]);
    assert!(audit_made.status.success(), "{}", text(&audit_made.stderr));
    let audit = text(&siyu(&db, &["customer", "audit"]).stdout);
    assert!(audit.contains(&local(before)), "{audit}");

    let csv = text(&siyu(&db, &["segment", "history", "all", "--format", "csv"]).stdout);
    let row = csv.lines().nth(1).unwrap_or_else(|| panic!("{csv}"));
    assert!(
        row.split(',')
            .next()
            .is_some_and(|at| at.ends_with('Z') && at.contains('T')),
        "CSV keeps RFC 3339 UTC: {csv}"
    );
}

#[test]
fn every_report_csv_carries_its_headline_figures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = demo(dir.path(), "300");
    let csv = |args: &[&str]| {
        let mut args = args.to_vec();
        args.extend(["--format", "csv"]);
        let out = siyu(&db, &args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let overview = csv(&["report", "overview"]);
    assert!(
        overview.starts_with("section,key,figure,value\n"),
        "{overview}"
    );
    for line in [
        "overview,,customers,300",
        "overview,,paid_orders,",
        "overview,,aov,",
    ] {
        assert!(overview.contains(line), "{line}: {overview}");
    }
    assert!(overview.contains("\nchannel,"), "{overview}");

    let pareto = csv(&["report", "pareto", "--to", "2026-10-31", "--top", "3"]);
    for line in [
        "pareto,,buyers,",
        "pareto,,top_share_of_revenue,0.",
        "pareto,,buyers_for_80,",
    ] {
        assert!(pareto.contains(line), "{line}: {pareto}");
    }
    assert_eq!(pareto.matches("\nsuper_user,").count(), 3, "{pareto}");

    let referrals = csv(&["report", "referrals", "--as-of", "2026-10-31"]);
    for line in [
        "referrals,,customers,300",
        "referrals,,k_factor,",
        "generation,0,customers,",
    ] {
        assert!(referrals.contains(line), "{line}: {referrals}");
    }

    let cohorts = csv(&["report", "cohorts", "--as-of", "2026-10-31"]);
    assert!(cohorts.contains("repurchase,all,rate,0."), "{cohorts}");

    let gmv = csv(&["report", "gmv", "--to", "2026-10-31"]);
    assert!(gmv.contains(",buyers,"), "{gmv}");

    // The JSON carries the shares the table shows, not only what they are made of.
    let json = siyu(&db, &["report", "overview", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert!(json["buyer_share"].is_f64(), "{json}");
    assert!(json["channels"][0]["conversion"].is_f64(), "{json}");
}

#[test]
fn customer_show_is_the_360_view_in_yuan_for_people_and_fen_in_json_without_an_audit_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = demo(dir.path(), "400");
    let fit = siyu(&db, &["clv", "fit"]);
    assert!(fit.status.success(), "{}", text(&fit.stderr));
    // A buyer with a prediction: the first customer the kept model predicts for.
    let predict = siyu(&db, &["clv", "predict", "--format", "json"]);
    assert!(predict.status.success(), "{}", text(&predict.stderr));
    let predicted: serde_json::Value = serde_json::from_slice(&predict.stdout).expect("json");
    let line = predicted
        .as_array()
        .or_else(|| predicted["customers"].as_array())
        .and_then(|a| {
            a.iter()
                .find(|c| c["monetary_value"].as_f64().is_some_and(|x| x > 1.0))
        })
        .expect("a prediction")
        .clone();
    let id = line["customer_id"].as_str().expect("id");

    let json = siyu(&db, &["customer", "show", id, "--format", "json"]);
    assert!(json.status.success(), "{}", text(&json.stderr));
    let view: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(view["customer"]["id"], id);
    assert!(view["profile"]["net_spend"].is_i64(), "fen: {view}");
    let mean_yuan = line["monetary_value"].as_f64().expect("yuan");
    assert_eq!(
        view["model_clv"]["monetary_value"],
        serde_json::json!((mean_yuan * 100.0).round() as i64),
        "the model's money in fen like the rest: {view}"
    );

    let table = siyu(&db, &["customer", "show", id]);
    assert!(table.status.success(), "{}", text(&table.stderr));
    let shown = text(&table.stdout);
    let net = view["profile"]["net_spend"].as_i64().expect("fen");
    let net_yuan = format!("{}.{:02}", net / 100, net % 100);
    let spend = shown
        .lines()
        .find(|l| l.starts_with("net spend"))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        spend.replace(',', "").contains(&format!("¥{net_yuan}")),
        "{spend}"
    );
    let mean = shown
        .lines()
        .find(|l| l.starts_with("model: mean order value"))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        mean.replace(',', "").contains(&format!("¥{mean_yuan:.2}")),
        "{mean} against {mean_yuan}"
    );
    assert!(shown.contains("latest orders"), "{shown}");

    let audit = siyu(&db, &["customer", "audit", "--format", "json"]);
    assert_eq!(text(&audit.stdout).trim(), "[]", "a look is not an export");

    let nobody = siyu(&db, &["customer", "show", "nobody"]);
    assert!(!nobody.status.success());
    assert!(text(&nobody.stderr).contains("no customer 'nobody'"));
}

#[test]
fn a_header_without_rows_imports_nothing_on_both_backends_and_a_demo_of_one_customer_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files = [
        (
            siyu_core::import::Kind::Customers,
            "customers.csv",
            "customer_id,name,channel\n",
        ),
        (
            siyu_core::import::Kind::Orders,
            "orders.csv",
            "order_id,customer_id,ordered_at,amount\n",
        ),
        (
            siyu_core::import::Kind::Events,
            "events.csv",
            "event_id,customer_id,type,occurred_at\n",
        ),
    ];
    let mut stores = vec![];
    let path = dir.path().join("siyu.db");
    let mut sqlite = siyu_store::open(&path.to_string_lossy()).expect("sqlite");
    let tenant = sqlite.tenant("shop").expect("tenant");
    stores.push((sqlite, tenant));
    stores.extend(common::postgres_tenant("header-only"));
    for (mut store, tenant) in stores {
        for (kind, name, header) in files {
            let file = dir.path().join(name);
            std::fs::write(&file, header).expect("write");
            let report = siyu::service::import::import_file(
                store.as_mut(),
                &tenant,
                kind,
                &file,
                siyu::service::import::ImportOptions::default(),
            )
            .unwrap_or_else(|e| panic!("{} {name}: {e:#}", store.backend()));
            assert_eq!((report.rows, report.inserted), (0, 0), "{name}");
        }
    }
    // Through the command line, as a daily cron runs it.
    let file = dir.path().join("orders.csv");
    let out = siyu(&path, &["import", "orders", &file.to_string_lossy()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("0 rows"),
        "{}",
        text(&out.stdout)
    );

    let one = siyu(
        &dir.path().join("one.db"),
        &["demo", "--customers", "1", "--until", "2026-10-31"],
    );
    assert!(one.status.success(), "{}", text(&one.stderr));
    assert!(text(&one.stdout).contains("customers in the pool"));
}

#[test]
fn messages_read_right_and_mistakes_are_refused_with_a_suggestion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = demo(dir.path(), "200");
    let err = |args: &[&str]| {
        let out = siyu(&db, args);
        assert!(!out.status.success(), "{args:?} should be refused");
        text(&out.stderr)
    };
    let ok = |args: &[&str]| {
        let out = siyu(&db, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    };

    let one = dir.path().join("one.csv");
    std::fs::write(&one, "customer_id,name\nnew-1,王五\n").expect("write");
    let (line, _) = ok(&["import", "customers", &one.to_string_lossy()]);
    assert!(line.contains(": 1 row: 1 inserted"), "{line}");
    let refused = err(&[
        "import",
        "customers",
        &one.to_string_lossy(),
        "--format",
        "csv",
    ]);
    assert!(refused.contains("not the file's format"), "{refused}");

    let (_, said) = ok(&["token", "create", "--role", "admin"]);
    assert!(said.starts_with("an admin token"), "{said}");
    let short = err(&["token", "revoke", "ab"]);
    assert!(short.contains("'ab' is not 8 to 64 hex digits"), "{short}");

    let zone = err(&["config", "set", "time_zone", "Asia/Beijing"]);
    assert!(zone.contains("did you mean Asia/Shanghai?"), "{zone}");

    let typo = err(&["channel-cost", "set", "douyn", "2026-10", "1000"]);
    assert!(typo.contains("did you mean douyin?"), "{typo}");
    ok(&[
        "channel-cost",
        "set",
        "bilibili",
        "2026-10",
        "1000",
        "--new",
    ]);
    ok(&["channel-cost", "set", "douyin", "2026-10", "1000"]);

    let (first, _) = ok(&["customer", "opt-out", "c000001", "--by", "ops"]);
    let (second, _) = ok(&["customer", "opt-out", "c000001", "--by", "ops"]);
    assert_ne!(first, second);
    assert!(second.contains("already"), "{second}");
    let (audit, _) = ok(&["customer", "audit", "c000001", "--format", "json"]);
    let audit: serde_json::Value = serde_json::from_str(&audit).expect("json");
    assert_eq!(
        audit.as_array().map(Vec::len),
        Some(1),
        "one entry: {audit}"
    );

    let (funnel, _) = ok(&["report", "funnel", "--as-of", "2026-10-31"]);
    assert!(
        funnel.contains("shared (advocate) without buying"),
        "{funnel}"
    );
    let (clv, _) = ok(&["report", "clv", "--as-of", "2026-10-31", "--by", "stage"]);
    assert!(clv.contains("n/a: ") && clv.contains("By stage"), "{clv}");
}

#[test]
fn tables_speak_the_language_asked_for_or_the_tenants_and_csv_stays_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = demo(dir.path(), "200");
    let run = |args: &[&str]| {
        let out = siyu(&db, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let overview = run(&["report", "overview", "--lang", "zh"]);
    assert!(
        overview.contains("店铺概览") && overview.contains("客户池人数"),
        "{overview}"
    );
    assert!(overview.contains("按来源渠道"), "{overview}");
    let lifecycle = run(&["lifecycle", "--as-of", "2026-10-31", "--lang", "zh"]);
    assert!(lifecycle.starts_with("生命周期"), "{lifecycle}");
    assert!(
        lifecycle.contains("流失预警") && lifecycle.contains("用户旅程"),
        "{lifecycle}"
    );
    let funnel = run(&["report", "funnel", "--as-of", "2026-10-31", "--lang", "zh"]);
    assert!(
        funnel.contains("到达人数") && funnel.contains("推荐者"),
        "{funnel}"
    );
    for report in [
        &["report", "gmv", "--to", "2026-10-31"][..],
        &["report", "cohorts", "--as-of", "2026-10-31"][..],
        &["report", "pareto", "--to", "2026-10-31"][..],
        &["report", "channels", "--to", "2026-10-31"][..],
        &["report", "referrals", "--as-of", "2026-10-31"][..],
        &["report", "clv", "--as-of", "2026-10-31", "--by", "stage"][..],
    ] {
        let mut zh = report.to_vec();
        zh.extend(["--lang", "zh"]);
        let (en, zh) = (run(report), run(&zh));
        assert_ne!(en, zh, "{report:?} in Chinese");
        let header = zh
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default();
        assert!(header.chars().any(|c| c > '\u{2E7F}'), "{report:?}: {zh}");
    }

    // The tenant's setting, until --lang says otherwise; CSV the same in both.
    let csv_en = run(&["report", "pareto", "--to", "2026-10-31", "--format", "csv"]);
    run(&["config", "set", "lang", "zh"]);
    assert!(run(&["report", "overview"]).contains("店铺概览"));
    assert!(run(&["report", "overview", "--lang", "en"]).contains("Shop overview"));
    let csv_zh = run(&["report", "pareto", "--to", "2026-10-31", "--format", "csv"]);
    assert_eq!(csv_en, csv_zh);
    let bad = siyu(&db, &["config", "set", "lang", "fr"]);
    assert!(!bad.status.success());
}

#[test]
fn segments_tags_and_customers_speak_chinese_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = demo(dir.path(), "100");
    let run = |args: &[&str]| {
        let out = siyu(&db, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    run(&["config", "set", "lang", "zh"]);
    assert!(run(&["segment", "create", "all", "net_spend >= 0"]).starts_with("已创建分群"));
    assert!(run(&["segment", "show", "all"]).contains("规则："));
    assert!(run(&["tag", "add", "c000001", "户外"]).starts_with("已给"));
    assert!(run(&["customer", "opt-out", "c000001"]).contains("已退订营销"));
    let card = run(&["customer", "show", "c000001"]);
    assert!(card.contains("加入时间") && card.contains("标签"), "{card}");
}

#[test]
fn an_opt_out_asked_twice_is_one_audit_entry_on_both_backends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("siyu.db");
    let mut sqlite = siyu_store::open(&path.to_string_lossy()).expect("sqlite");
    let tenant = sqlite.tenant("shop").expect("tenant");
    let mut stores = vec![(sqlite, tenant)];
    stores.extend(common::postgres_tenant("opt-out-twice"));
    let file = dir.path().join("customers.csv");
    std::fs::write(&file, "customer_id,name\nc1,张三\n").expect("write");
    for (mut store, tenant) in stores {
        siyu::service::import::import_file(
            store.as_mut(),
            &tenant,
            siyu_core::import::Kind::Customers,
            &file,
            siyu::service::import::ImportOptions::default(),
        )
        .expect("import");
        let id = siyu_core::CustomerId::parse("c1").expect("id");
        let set = |store: &mut dyn siyu_store::Store, out: bool| {
            siyu::service::privacy::set_opt_out(store, &tenant, &id, out, "ops").expect("opt-out")
        };
        assert!(set(store.as_mut(), true));
        assert!(!set(store.as_mut(), true), "{}: again", store.backend());
        let log = siyu::service::privacy::audit_log(store.as_mut(), &tenant, Some(&id), 10)
            .expect("audit");
        assert_eq!(log.len(), 1, "{}", store.backend());
        assert!(set(store.as_mut(), false));
        assert!(!set(store.as_mut(), false));
        let log = siyu::service::privacy::audit_log(store.as_mut(), &tenant, Some(&id), 10)
            .expect("audit");
        assert_eq!(log.len(), 2, "{}", store.backend());
    }
}
