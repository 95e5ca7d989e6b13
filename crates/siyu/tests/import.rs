//! Importing merchants' files, on SQLite always and on PostgreSQL when
//! `SIYU_TEST_POSTGRES` holds a URL: good files land exactly, bad files are refused with
//! `FILE:LINE: field: reason` and leave the database exactly as it was.

use std::path::{Path, PathBuf};

use siyu::service::import::{ImportOptions, ImportReport, ReadAs, import_export, import_file};
use siyu::service::wecom::{Source, import_contacts, import_source, set_channel_code};
use siyu_core::import::Kind;
use siyu_core::{CustomerId, OrderStatus, Timestamp};
use siyu_store::{Store, Tenant};

/// A store and a tenant of its own, on each backend under test.
struct Fixture {
    store: Box<dyn Store>,
    tenant: Tenant,
    dir: tempfile::TempDir,
    backend: &'static str,
}

fn fixtures(test: &str) -> Vec<Fixture> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("siyu.db");
    let mut store = siyu_store::open(&path.to_string_lossy()).expect("sqlite");
    let tenant = store.tenant("shop").expect("tenant");
    out.push(Fixture {
        store,
        tenant,
        dir,
        backend: "sqlite",
    });
    if let Ok(url) = std::env::var("SIYU_TEST_POSTGRES") {
        let mut store = siyu_store::open(&url).expect("postgres");
        // Tenants never see each other's rows, so a tenant per test run isolates it.
        let name = format!("{test}-{}-{}", std::process::id(), unique());
        let tenant = store.tenant(&name).expect("tenant");
        out.push(Fixture {
            store,
            tenant,
            dir: tempfile::tempdir().expect("tempdir"),
            backend: "postgres",
        });
    }
    out
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

impl Fixture {
    fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    }

    fn import(&mut self, kind: Kind, path: &Path) -> anyhow::Result<ImportReport> {
        import_file(
            self.store.as_mut(),
            &self.tenant,
            kind,
            path,
            ImportOptions::default(),
        )
    }

    fn import_skipping(&mut self, kind: Kind, path: &Path) -> anyhow::Result<ImportReport> {
        let options = ImportOptions {
            skip_invalid: true,
            ..ImportOptions::default()
        };
        import_file(self.store.as_mut(), &self.tenant, kind, path, options)
    }

    /// Everything the tenant holds, as text, to compare before and after.
    fn snapshot(&mut self) -> String {
        let mut out = format!(
            "{:?}\n",
            self.store.table_counts(&self.tenant).expect("counts")
        );
        let mut ids = Vec::new();
        self.store
            .scan_customers(&self.tenant, &mut |c| ids.push(c.id))
            .expect("customers");
        for id in ids {
            let c = self.store.customer(&self.tenant, &id).expect("customer");
            let tags = self.store.customer_tags(&self.tenant, &id).expect("tags");
            out.push_str(&format!("{c:?} {tags:?}\n"));
        }
        self.store
            .scan_orders(&self.tenant, &mut |o| out.push_str(&format!("{o:?}\n")))
            .expect("orders");
        self.store
            .scan_events(&self.tenant, &mut |e| out.push_str(&format!("{e:?}\n")))
            .expect("events");
        out
    }

    /// Seeds the tenant with a little valid data so "unchanged" means something.
    fn seed(&mut self) {
        let customers = self.file(
            "seed_customers.csv",
            "customer_id,name,channel,joined_at,tags\nc1,张三,store,2024-01-05,vip;outdoor\nc2,李四,douyin,2024-02-01,\n",
        );
        self.import(Kind::Customers, &customers)
            .expect("seed customers");
        let orders = self.file(
            "seed_orders.csv",
            "order_id,customer_id,ordered_at,amount\no1,c1,2024-03-01 10:00:00,128.50\no2,c2,2024-03-02 11:00:00,66\n",
        );
        self.import(Kind::Orders, &orders).expect("seed orders");
    }
}

const ORDERS_HEADER: &str =
    "order_id,customer_id,ordered_at,amount,discount,coupon_code,channel,status\n";

/// Imports `bytes` as `kind` into a seeded tenant, expects a refusal, and checks that
/// nothing changed. Returns the error text.
fn refused(test: &str, kind: Kind, name: &str, bytes: &[u8]) -> Vec<String> {
    let mut messages = Vec::new();
    for mut f in fixtures(test) {
        f.seed();
        let before = f.snapshot();
        let path = f.file(name, bytes);
        let err = f
            .import(kind, &path)
            .expect_err("a bad file must be refused");
        let message = format!("{err:#}");
        assert_eq!(f.snapshot(), before, "{}: the database changed", f.backend);
        assert!(
            message.contains(name),
            "{}: the error names the file: {message}",
            f.backend
        );
        messages.push(message);
    }
    messages
}

#[test]
fn an_empty_file_is_refused() {
    for m in refused("empty", Kind::Orders, "empty.csv", b"") {
        assert!(m.contains("empty.csv: the file is empty"), "{m}");
    }
}

#[test]
fn a_semicolon_separated_file_is_refused_naming_the_delimiter() {
    let text = "order_id;customer_id;ordered_at;amount\no9;c1;2024-03-01;10\n";
    for m in refused("semicolon", Kind::Orders, "semi.csv", text.as_bytes()) {
        assert!(m.contains("semi.csv:1: header:"), "{m}");
        assert!(m.contains("semicolon-separated"), "{m}");
    }
}

#[test]
fn a_quoted_newline_is_part_of_a_field_and_later_lines_are_counted_right() {
    // Line 2 holds a coupon code over two lines; the bad amount is on line 4 of the file.
    let text = format!(
        "{ORDERS_HEADER}o10,c1,2024-03-01,10,,\"SPRING\nSALE\",,paid\no11,c1,2024-03-01,12.345,,,,paid\n"
    );
    for m in refused("newline", Kind::Orders, "nl.csv", text.as_bytes()) {
        assert!(
            m.contains("nl.csv:4: amount: '12.345' has more than two decimals"),
            "{m}"
        );
    }
}

#[test]
fn negative_and_non_numeric_amounts_are_refused_with_their_lines() {
    let text = format!("{ORDERS_HEADER}o20,c1,2024-03-01,-5,,,,\no21,c1,2024-03-01,abc,,,,\n");
    for m in refused("amounts", Kind::Orders, "amounts.csv", text.as_bytes()) {
        assert!(m.contains("amounts.csv:2: amount: '-5' is negative"), "{m}");
        assert!(
            m.contains("amounts.csv:3: amount: 'abc' is not an amount"),
            "{m}"
        );
        assert!(m.contains("2 invalid rows; nothing was imported"), "{m}");
    }
}

#[test]
fn an_unparseable_date_is_refused() {
    let text = format!("{ORDERS_HEADER}o30,c1,31.12.2024,10,,,,\n");
    for m in refused("date", Kind::Orders, "date.csv", text.as_bytes()) {
        assert!(
            m.contains("date.csv:2: ordered_at: '31.12.2024' is not a time"),
            "{m}"
        );
    }
}

#[test]
fn an_empty_customer_id_is_refused() {
    let text = "customer_id,name\n c9 ,王五\n  ,赵六\n";
    for m in refused("emptyid", Kind::Customers, "ids.csv", text.as_bytes()) {
        assert!(m.contains("ids.csv:3: customer_id: is empty"), "{m}");
    }
}

#[test]
fn a_line_with_too_many_fields_is_refused() {
    let text = format!("{ORDERS_HEADER}o40,c1,2024-03-01,10,,,,paid,extra\n");
    for m in refused("wide", Kind::Orders, "wide.csv", text.as_bytes()) {
        assert!(
            m.contains("wide.csv:2: row: has 9 fields, the header has 8"),
            "{m}"
        );
    }
}

#[test]
fn bytes_that_are_neither_utf8_nor_gb18030_are_refused() {
    let mut bytes = b"customer_id,name\nc7,ok\nc8,".to_vec();
    bytes.extend_from_slice(b"\xff\xfe\xff\n");
    for m in refused("encoding", Kind::Customers, "bin.csv", &bytes) {
        assert!(m.contains("neither UTF-8 nor GB18030"), "{m}");
        assert!(m.contains("bin.csv:3"), "{m}");
    }
}

#[test]
fn missing_unknown_and_duplicate_columns_are_refused() {
    let cases: [(&str, &str); 3] = [
        (
            "order_id,customer_id,amount\no1,c1,1\n",
            "missing required column 'ordered_at'",
        ),
        (
            "order_id,customer_id,ordered_at,amount,memo\no1,c1,2024-01-01,1,x\n",
            "unknown column 'memo'",
        ),
        (
            "order_id,customer_id,ordered_at,amount,amount\no1,c1,2024-01-01,1,1\n",
            "column 'amount' appears twice",
        ),
    ];
    for (text, expected) in cases {
        for m in refused("columns", Kind::Orders, "cols.csv", text.as_bytes()) {
            assert!(m.contains(expected), "{m}");
        }
    }
}

#[test]
fn nineteen_digit_ids_and_spreadsheet_guards_survive_exactly() {
    for mut f in fixtures("ids") {
        let path = f.file(
            "taobao.csv",
            format!(
                "{ORDERS_HEADER}=\"3791234567890123456\",'00123,2024/5/1 9:05,\"1,280.00\",0元,,抖音,\n"
            ),
        );
        let report = f.import(Kind::Orders, &path).expect("import");
        assert_eq!((report.inserted, report.customers_created), (1, 1));
        let mut orders = Vec::new();
        f.store
            .scan_orders(&f.tenant, &mut |o| orders.push(o))
            .expect("scan");
        assert_eq!(
            orders[0].id.as_str(),
            "3791234567890123456",
            "{}",
            f.backend
        );
        assert_eq!(orders[0].customer_id.as_str(), "00123");
        assert_eq!(orders[0].amount.fen(), 128_000);
        assert_eq!(orders[0].ordered_at.to_string(), "2024-05-01T01:05:00Z");
        assert_eq!(
            orders[0].channel.as_ref().map(|c| c.as_str()),
            Some("douyin")
        );
    }
}

#[test]
fn gbk_and_bom_files_are_read() {
    for mut f in fixtures("encodings") {
        let (gbk, _, _) =
            encoding_rs::GB18030.encode("customer_id,name,region\nc1,张三,浙江杭州\n");
        let path = f.file("gbk.csv", &gbk);
        let report = f.import(Kind::Customers, &path).expect("gbk");
        assert_eq!(report.encoding, "GB18030");
        let c = f
            .store
            .customer(&f.tenant, &CustomerId::parse("c1").expect("id"))
            .expect("c1");
        assert_eq!(c.name.as_deref(), Some("张三"));
        assert_eq!(c.region.as_deref(), Some("浙江杭州"));
        let path = f.file("bom.csv", "\u{feff}customer_id,name\nc2,李四\n");
        let report = f.import(Kind::Customers, &path).expect("bom");
        assert_eq!((report.encoding, report.inserted), ("UTF-8", 1));
    }
}

#[test]
fn importing_the_same_file_twice_changes_nothing_and_a_refund_updates_the_order() {
    for mut f in fixtures("idempotent") {
        let text = format!(
            "{ORDERS_HEADER}o1,c1,2024-03-01 10:00:00,128.50,10,NEW10,mini_program,paid\no2,c2,2024-03-02,66,,,,\n"
        );
        let path = f.file("orders.csv", &text);
        let first = f.import(Kind::Orders, &path).expect("first");
        assert_eq!((first.inserted, first.updated, first.unchanged), (2, 0, 0));
        assert_eq!(first.customers_created, 2);
        let snapshot = f.snapshot();
        let again = f.import(Kind::Orders, &path).expect("again");
        assert_eq!((again.inserted, again.updated, again.unchanged), (0, 0, 2));
        assert_eq!(again.customers_created, 0);
        assert_eq!(f.snapshot(), snapshot, "{}", f.backend);

        let refunded = f.file(
            "refund.csv",
            format!(
                "{ORDERS_HEADER}o1,c1,2024-03-01 10:00:00,128.50,10,NEW10,mini_program,refunded\n"
            ),
        );
        let r = f.import(Kind::Orders, &refunded).expect("refund");
        assert_eq!((r.inserted, r.updated, r.unchanged), (0, 1, 0));
        let mut statuses = Vec::new();
        f.store
            .scan_orders(&f.tenant, &mut |o| {
                statuses.push((o.id.to_string(), o.status))
            })
            .expect("scan");
        assert_eq!(
            statuses,
            [
                ("o1".to_owned(), OrderStatus::Refunded),
                ("o2".to_owned(), OrderStatus::Paid)
            ]
        );
    }
}

#[test]
fn a_file_big_enough_to_be_a_load_is_all_or_nothing_like_any_other() {
    for mut f in fixtures("load") {
        f.seed();
        let before = f.snapshot();
        // Over the 8 MiB from which a file is written as a load (`ImportStore::begin_import_of`).
        let path = f.dir.path().join("big.csv");
        siyu::service::bench::write_orders_csv(&path, 120_000, 12_000, 3).expect("generate");
        let mut bad = std::fs::read(&path).expect("read");
        assert!(bad.len() >= 8 << 20, "{} bytes is not a load", bad.len());
        bad.extend_from_slice(b"3799999999999999999,c1,2024-05-01,abc,,,,paid\n");
        let bad = f.file("big_bad.csv", bad);

        let err = f.import(Kind::Orders, &bad).expect_err("refused");
        let message = format!("{err:#}");
        assert!(
            message.contains("big_bad.csv:120002: amount"),
            "{}: {message}",
            f.backend
        );
        assert_eq!(f.snapshot(), before, "{}: the database changed", f.backend);

        let loaded = f.import(Kind::Orders, &path).expect("load");
        assert_eq!(
            (loaded.inserted, loaded.updated, loaded.rejected),
            (120_000, 0, 0),
            "{}",
            f.backend
        );
        let again = f.import(Kind::Orders, &path).expect("again");
        assert_eq!(
            (again.inserted, again.unchanged),
            (0, 120_000),
            "{}",
            f.backend
        );
        assert_eq!(
            f.store.table_counts(&f.tenant).expect("counts").orders,
            120_002
        );
        if f.backend == "sqlite" {
            let header = std::fs::read(f.dir.path().join("siyu.db")).expect("db");
            assert_eq!(
                (header[18], header[19]),
                (2, 2),
                "the file is in WAL mode again"
            );
        }
    }
}

#[test]
fn an_order_id_twice_in_one_file_is_inserted_then_updated() {
    for mut f in fixtures("twice") {
        let path = f.file(
            "twice.csv",
            format!(
                "{ORDERS_HEADER}o1,c1,2024-03-01,10,,,,paid\no1,c1,2024-03-01,10,,,,refunded\n"
            ),
        );
        let r = f.import(Kind::Orders, &path).expect("import");
        assert_eq!(
            (r.inserted, r.updated, r.unchanged),
            (1, 1, 0),
            "{}",
            f.backend
        );
    }
}

#[test]
fn customers_first_seen_in_orders_join_at_their_first_order() {
    for mut f in fixtures("joined") {
        let path = f.file(
            "orders.csv",
            format!("{ORDERS_HEADER}o2,c9,2024-05-02 08:00:00,10,,,store,\no1,c9,2024-04-01 08:00:00,10,,,douyin,\n"),
        );
        f.import(Kind::Orders, &path).expect("import");
        let c = f
            .store
            .customer(&f.tenant, &CustomerId::parse("c9").expect("id"))
            .expect("c9");
        assert_eq!(
            c.joined_at.to_string(),
            "2024-04-01T00:00:00Z",
            "{}",
            f.backend
        );
        assert_eq!(c.channel.as_ref().map(|c| c.as_str()), Some("douyin"));
    }
}

#[test]
fn skipping_invalid_rows_imports_the_rest_and_writes_each_reject_with_its_reason() {
    for mut f in fixtures("skip") {
        let text = format!(
            "{ORDERS_HEADER}o1,c1,2024-03-01,10,,,,\no2,c1,soon,10,,,,\no3,c2,2024-03-02,1.999,,,,\no4,c2,2024-03-03,20,,,,\n"
        );
        let path = f.file("mixed.csv", &text);
        let r = f.import_skipping(Kind::Orders, &path).expect("import");
        assert_eq!((r.rows, r.inserted, r.rejected), (4, 2, 2));
        let rejects =
            std::fs::read_to_string(r.rejects_file.as_ref().expect("rejects")).expect("read");
        assert_eq!(
            rejects,
            "order_id,customer_id,ordered_at,amount,discount,coupon_code,channel,status,reason\n\
             o2,c1,soon,10,,,,,\"line 3: ordered_at: 'soon' is not a time (expected RFC 3339, YYYY-MM-DD HH:MM:SS, YYYY-MM-DD, YYYY/M/D H:MM, 2026年5月1日 9:30 or seconds since the epoch)\"\n\
             o3,c2,2024-03-02,1.999,,,,,line 4: amount: '1.999' has more than two decimals\n"
        );
        assert_eq!(f.store.table_counts(&f.tenant).expect("counts").orders, 2);
    }
}

/// One of the exports in `tests/data/exports`, made from the platforms' documented
/// formats (see EXPORTS.md of the project): imported with `--skip-invalid`.
fn import_export_file(f: &mut Fixture, name: &str) -> ImportReport {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/exports")
        .join(name);
    let copy = f.file(name, std::fs::read(&path).expect("read"));
    let options = ImportOptions {
        skip_invalid: true,
        ..ImportOptions::default()
    };
    import_export(
        f.store.as_mut(),
        &f.tenant,
        Kind::Orders,
        &copy,
        options,
        &ReadAs::default(),
    )
    .expect("import")
}

/// (order, customer, fen, status, time, channel) of every order, by order id.
fn orders_of(f: &mut Fixture) -> Vec<(String, String, i64, OrderStatus, Timestamp, String)> {
    let mut orders = Vec::new();
    f.store
        .scan_orders(&f.tenant, &mut |o| orders.push(o))
        .expect("orders");
    orders.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    orders
        .iter()
        .map(|o| {
            (
                o.id.to_string(),
                o.customer_id.to_string(),
                o.amount.fen(),
                o.status,
                o.ordered_at,
                o.channel
                    .as_ref()
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

fn rejects_of(r: &ImportReport) -> String {
    std::fs::read_to_string(r.rejects_file.as_ref().expect("rejects")).expect("read")
}

/// Youzan's customer list (客户列表) is recognised by its header: the key is the unmasked
/// phone, else the nickname; a masked phone is kept as masked and is never a key or a
/// phone identity; 未知 is no gender, `****` no region; tags may be comma-separated.
#[test]
fn a_youzan_customer_list_is_recognised_and_keeps_masked_phones_masked() {
    for mut f in fixtures("youzan-customers") {
        let name = "youzan_customers.csv";
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/exports")
            .join(name);
        let copy = f.file(name, std::fs::read(&path).expect("read"));
        let r = import_export(
            f.store.as_mut(),
            &f.tenant,
            Kind::Customers,
            &copy,
            ImportOptions::default(),
            &ReadAs::default(),
        )
        .expect("import");
        assert_eq!((r.preset, r.preset_recognised), (Some("youzan"), true));
        assert_eq!((r.rows, r.inserted), (3, 3), "{}", f.backend);
        let get = |f: &mut Fixture, id: &str| {
            f.store
                .customer(&f.tenant, &CustomerId::parse(id).expect("id"))
                .expect(id)
        };
        let wang = get(&mut f, "18618486065");
        assert_eq!(wang.name.as_deref(), Some("王小明"));
        assert_eq!(
            wang.channel.as_ref().map(|c| c.as_str()),
            Some("mini_program")
        );
        let tags = f.store.customer_tags(&f.tenant, &wang.id).expect("tags");
        assert_eq!(tags, ["绿茶", "老客"]);
        let xiang = get(&mut f, "阿香");
        assert_eq!(xiang.phone.as_deref(), Some("186******05"));
        assert_eq!(xiang.channel.as_ref().map(|c| c.as_str()), Some("douyin"));
        assert_eq!(
            xiang.joined_at,
            f.tenant
                .zone
                .parse_timestamp("2026-04-02 11:58")
                .expect("time")
        );
        let lin = get(&mut f, "林木");
        assert_eq!((lin.gender, lin.region.as_deref()), (None, None));
        assert_eq!(
            lin.channel, None,
            "a customers row leaves what it does not give"
        );
        // Identities: each key as a Youzan buyer; only the unmasked phone as a phone.
        let ids = |f: &mut Fixture, id: &CustomerId| -> Vec<(String, String)> {
            f.store
                .identities_of(&f.tenant, id)
                .expect("ids")
                .into_iter()
                .map(|i| (i.namespace, i.value))
                .collect()
        };
        assert_eq!(
            ids(&mut f, &wang.id),
            [
                ("phone".to_owned(), "18618486065".to_owned()),
                ("youzan".to_owned(), "18618486065".to_owned())
            ]
        );
        assert_eq!(
            ids(&mut f, &xiang.id),
            [("youzan".to_owned(), "阿香".to_owned())]
        );
        assert_eq!(
            f.store
                .identity_holder(&f.tenant, "phone", "186******05")
                .expect("holder"),
            None
        );
    }
}

/// Taobao's order list as 千牛 writes it: GBK, `="…"` guards on the order numbers,
/// `2016/5/23 22:02` times, its own status words, and an order closed before payment.
#[test]
fn a_taobao_order_list_in_gbk_is_recognised_and_read() {
    for mut f in fixtures("taobao") {
        let r = import_export_file(&mut f, "taobao_orders.csv");
        assert_eq!(r.encoding, "GB18030");
        assert_eq!((r.preset, r.preset_recognised), (Some("taobao"), true));
        assert_eq!((r.rows, r.inserted, r.rejected), (4, 4, 0), "{}", f.backend);
        assert!(
            r.columns_read_as
                .contains(&("订单付款时间".into(), "ordered_at".into()))
        );
        let s = |v: &str| v.to_owned();
        let zone = f.tenant.zone.clone();
        let at = |v: &str| zone.parse_timestamp(v).expect("time");
        assert_eq!(
            orders_of(&mut f),
            [
                (
                    s("1930679858170647"),
                    s("tb_alice"),
                    9_900,
                    OrderStatus::Paid,
                    at("2016-05-23 22:05:00"),
                    s("taobao")
                ),
                (
                    s("1930679858170648"),
                    s("tb_bob"),
                    128_000,
                    OrderStatus::Paid,
                    at("2016-05-24 09:01:00"),
                    s("taobao")
                ),
                // Closed before payment: no payment time, so the creation time.
                (
                    s("1930679858170649"),
                    s("tb_alice"),
                    0,
                    OrderStatus::Refunded,
                    at("2016-05-25 10:00:00"),
                    s("taobao")
                ),
                (
                    s("1930679858170650"),
                    s("tb_carol"),
                    5_800,
                    OrderStatus::Paid,
                    at("2016-05-26 11:02:00"),
                    s("taobao")
                ),
            ],
            "{}",
            f.backend
        );
    }
}

/// Youzan's 60-column order export (UTF-8 with a BOM, 分销员 twice): the buyer's phone
/// is the key, else the buyer's nickname (masked phones never); unpaid orders are refused.
#[test]
fn a_youzan_order_export_is_recognised_and_read() {
    for mut f in fixtures("youzan") {
        let r = import_export_file(&mut f, "youzan_orders.csv");
        assert_eq!((r.preset, r.encoding), (Some("youzan"), "UTF-8"));
        assert_eq!((r.rows, r.inserted, r.rejected), (5, 4, 1), "{}", f.backend);
        assert!(rejects_of(&r).contains("status: '待付款' is an order not paid yet"));
        // The buyers' keys are their identities on the platform (a phone also as a phone).
        let ids = |f: &mut Fixture, id: &str| -> Vec<(String, String)> {
            f.store
                .identities_of(&f.tenant, &CustomerId::parse(id).expect("id"))
                .expect("ids")
                .into_iter()
                .map(|i| (i.namespace, i.value))
                .collect()
        };
        let phone = |n: &str, v: &str| (n.to_owned(), v.to_owned());
        assert_eq!(
            ids(&mut f, "18618486065"),
            [
                phone("phone", "18618486065"),
                phone("youzan", "18618486065")
            ],
            "{}",
            f.backend
        );
        assert_eq!(ids(&mut f, "老客"), [phone("youzan", "老客")]);
        let s = |v: &str| v.to_owned();
        let zone = f.tenant.zone.clone();
        let at = |v: &str| zone.parse_timestamp(v).expect("time");
        assert_eq!(
            orders_of(&mut f),
            [
                (
                    s("E20260501093000012345"),
                    s("18618486065"),
                    12_800,
                    OrderStatus::Paid,
                    at("2026-05-01 09:30:12"),
                    s("微商城")
                ),
                (
                    s("E20260502101500023456"),
                    s("13900001111"),
                    128_000,
                    OrderStatus::Paid,
                    at("2026-05-02 10:15:40"),
                    s("微商城")
                ),
                (
                    s("E20260503120000034567"),
                    s("18618486065"),
                    6_600,
                    OrderStatus::Refunded,
                    at("2026-05-03 12:00:05"),
                    s("store")
                ),
                (
                    s("E20260504080000045678"),
                    s("老客"),
                    4_550,
                    OrderStatus::Paid,
                    at("2026-05-04 08:01:00"),
                    s("微商城")
                ),
            ],
            "{}",
            f.backend
        );
    }
}

/// Douyin's export has a row per item: tab-prefixed 19-digit ids, `-` for empty and
/// `##密文` for encrypted buyers, whose rows have no key and are refused with the reason.
#[test]
fn a_douyin_export_of_items_is_summed_into_orders() {
    for mut f in fixtures("douyin") {
        let r = import_export_file(&mut f, "douyin_orders.csv");
        assert_eq!(r.preset, Some("douyin"));
        assert_eq!((r.rows, r.inserted, r.rejected), (5, 2, 1), "{}", f.backend);
        assert!(
            rejects_of(&r).contains("customer_id: is empty"),
            "{}",
            rejects_of(&r)
        );
        let s = |v: &str| v.to_owned();
        let zone = f.tenant.zone.clone();
        let at = |v: &str| zone.parse_timestamp(v).expect("time");
        assert_eq!(
            orders_of(&mut f),
            [
                (
                    s("6917926768823643751"),
                    s("13800138000"),
                    15_800,
                    OrderStatus::Paid,
                    at("2026-05-01 20:15:31"),
                    s("douyin")
                ),
                // The refunded item is left out of what the order's buyer paid.
                (
                    s("6917926768823643770"),
                    s("13900139000"),
                    4_500,
                    OrderStatus::Paid,
                    at("2026-05-03 19:30:00"),
                    s("douyin")
                ),
            ],
            "{}",
            f.backend
        );
        // An order's items apart from each other are refused: they cannot be summed.
        let text = "主订单编号,子订单编号,订单应付金额,收件人手机号,订单提交时间,订单状态\n\
                    A1,A1-1,10,13800000001,2026-05-01 10:00,已完成\n\
                    B1,B1-1,20,13800000002,2026-05-01 11:00,已完成\n\
                    A1,A1-2,5,13800000001,2026-05-01 10:00,已完成\n";
        let path = f.file("apart.csv", text);
        let refused = f.import(Kind::Orders, &path).expect_err("apart");
        assert!(
            format!("{refused:#}").contains("apart.csv:4: order_id: order A1 has rows apart"),
            "{refused:#}"
        );
    }
}

/// PDD's order details come as xlsx: number and date cells, a masked receiver with no key,
/// a blank row, and a second sheet; problems are placed as FILE:SHEET:ROW.
#[test]
fn a_pdd_workbook_is_read_from_its_first_sheet() {
    for mut f in fixtures("pdd") {
        let r = import_export_file(&mut f, "pdd_orders.xlsx");
        assert_eq!((r.preset, r.encoding), (Some("pdd"), "workbook"));
        assert_eq!((r.rows, r.inserted, r.rejected), (5, 4, 1), "{}", f.backend);
        let s = |v: &str| v.to_owned();
        let zone = f.tenant.zone.clone();
        let at = |v: &str| zone.parse_timestamp(v).expect("time");
        assert_eq!(
            orders_of(&mut f),
            [
                (
                    s("231205-026348765510273"),
                    s("13800138000"),
                    8_990,
                    OrderStatus::Paid,
                    at("2026-05-01 09:30:12"),
                    s("pdd")
                ),
                (
                    s("231205-026348765510274"),
                    s("13900139000"),
                    128_000,
                    OrderStatus::Paid,
                    at("2026-05-02 10:00:30"),
                    s("pdd")
                ),
                (
                    s("231205-026348765510275"),
                    s("13800138000"),
                    2_550,
                    OrderStatus::Paid,
                    at("2026-05-03 11:00:05"),
                    s("pdd")
                ),
                (
                    s("231205-026348765510277"),
                    s("13700137000"),
                    1_500,
                    OrderStatus::Paid,
                    at("2026-05-05 13:00:02"),
                    s("pdd")
                ),
            ],
            "{}",
            f.backend
        );
        let path = f.file(
            "pdd.xlsx",
            std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/exports/pdd_orders.xlsx"),
            )
            .expect("read"),
        );
        let refused = f
            .import(Kind::Orders, &path)
            .expect_err("a row without a key");
        assert!(
            format!("{refused:#}").contains("pdd.xlsx:订单明细:5: customer_id: is empty"),
            "{refused:#}"
        );
    }
}

/// WeCom's external contacts as the API returns them (`externalcontact/get` and a
/// `batch/get_by_user` page, a JSON value per line): customers with their nickname,
/// gender, noted phone, tags and first add, the source from the merchant's channel codes,
/// and each staff member's add an event; again, nothing changes.
#[test]
fn wecom_contacts_become_customers_with_their_source_and_adds() {
    for mut f in fixtures("wecom") {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/wecom/contacts.jsonl");
        set_channel_code(f.store.as_mut(), &f.tenant, "dy_live", "抖音直播").expect("code");
        let r = import_contacts(f.store.as_mut(), &f.tenant, &path, ImportOptions::default())
            .expect("contacts");
        assert_eq!(
            (r.contacts, r.customers.inserted, r.events.inserted),
            (3, 3, 4),
            "{}",
            f.backend
        );
        assert_eq!(r.unmapped_codes.get("xhs_note_0501"), Some(&1));
        let wang = f
            .store
            .customer(
                &f.tenant,
                &CustomerId::parse("wmJ8aQBgAAqVH1_FHuB0ZlY2Fw3Ao7Fg").expect("id"),
            )
            .expect("wang");
        assert_eq!(wang.name.as_deref(), Some("茶友小王"));
        assert_eq!(wang.phone.as_deref(), Some("18618486065"));
        assert_eq!(
            wang.channel.as_ref().map(|c| c.as_str()),
            Some("douyin_live")
        );
        assert_eq!(
            wang.joined_at,
            Timestamp::from_second(1_777_599_000).expect("t")
        );
        let tags = f.store.customer_tags(&f.tenant, &wang.id).expect("tags");
        assert_eq!(tags, ["绿茶", "老客"]);
        let xiang = f
            .store
            .customer(
                &f.tenant,
                &CustomerId::parse("wmJ8aQBgAAqVH1_FHuB0ZlY2Fw3Ao7Fh").expect("id"),
            )
            .expect("xiang");
        // Added from a group chat, with no code.
        assert_eq!(
            xiang.channel.as_ref().map(|c| c.as_str()),
            Some("wechat_group")
        );
        let mut adds = 0;
        f.store
            .scan_events(&f.tenant, &mut |e| {
                adds += usize::from(e.kind.as_str() == "wecom_add")
            })
            .expect("events");
        assert_eq!(adds, 4);
        // Their ids in the sources, kept as identities (erased with the customer).
        let ids: Vec<(String, String)> = f
            .store
            .identities_of(&f.tenant, &wang.id)
            .expect("ids")
            .into_iter()
            .map(|i| (i.namespace, i.value))
            .collect();
        assert_eq!(
            ids,
            [
                ("phone".to_owned(), "18618486065".to_owned()),
                (
                    "unionid".to_owned(),
                    "ozynqsulJFCZ2z1aYeS8h-nuasdE".to_owned()
                ),
                (
                    "wecom".to_owned(),
                    "wmJ8aQBgAAqVH1_FHuB0ZlY2Fw3Ao7Fg".to_owned()
                ),
            ],
            "{}",
            f.backend
        );
        assert_eq!(r.identities, 6);
        let before = f.snapshot();
        let again = import_contacts(f.store.as_mut(), &f.tenant, &path, ImportOptions::default())
            .expect("again");
        assert_eq!((again.customers.unchanged, again.events.unchanged), (3, 4));
        assert_eq!(f.snapshot(), before, "{}", f.backend);
        // A contact without its id is refused with its line, and nothing is written.
        let bad = f.file(
            "bad.jsonl",
            "{\"external_contact\":{\"external_userid\":\"wm1\"},\"follow_user\":[]}\n{\"external_contact\":{\"name\":\"x\"}}\n",
        );
        let refused = import_contacts(f.store.as_mut(), &f.tenant, &bad, ImportOptions::default())
            .expect_err("no id");
        assert!(
            format!("{refused:#}")
                .contains("bad.jsonl:2: external_contact.external_userid: is missing"),
            "{refused:#}"
        );
        assert_eq!(f.snapshot(), before);
        let export = siyu::service::privacy::export(f.store.as_mut(), &f.tenant, &wang.id, "test")
            .expect("export");
        assert_eq!(export.identities.len(), 3, "the export holds their ids");
        siyu::service::privacy::erase(f.store.as_mut(), &f.tenant, &wang.id, "test")
            .expect("erase");
        assert!(
            f.store
                .identities_of(&f.tenant, &wang.id)
                .expect("ids")
                .is_empty()
        );
        assert_eq!(
            f.store
                .identity_holder(&f.tenant, "unionid", "ozynqsulJFCZ2z1aYeS8h-nuasdE")
                .expect("holder"),
            None,
            "an erased customer's unionid names nobody"
        );
    }
}

/// WeCom customer groups (`groupchat/get`, pretty-printed as one array): each external
/// member's join is a `group_join` event, staff are no customers, and a member unknown to
/// the pool is created at their join; official-account users (`user/info` and a
/// `batchget` page): followers join at their subscription from the scene's channel, an
/// unsubscribed user the pool knows gets an `unfollow`, one it never knew is nobody.
#[test]
fn wecom_groups_and_official_account_followers_become_events_and_customers() {
    for mut f in fixtures("groups") {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/wecom");
        let r = import_source(
            f.store.as_mut(),
            &f.tenant,
            &data.join("groups.json"),
            ImportOptions::default(),
            Source::Groups,
        )
        .expect("groups");
        assert_eq!((r.contacts, r.events.inserted), (2, 3), "{}", f.backend);
        let newcomer = f
            .store
            .customer(
                &f.tenant,
                &CustomerId::parse("wmJ8aQBgAAqVH1_FHuB0ZlY2Fw3AoNEW").expect("id"),
            )
            .expect("created by the join");
        assert_eq!(
            newcomer.joined_at,
            Timestamp::from_second(1_777_690_000).expect("t")
        );
        assert!(
            f.store
                .customer(&f.tenant, &CustomerId::parse("zhangsan").expect("id"))
                .is_err()
        );
        let again = import_source(
            f.store.as_mut(),
            &f.tenant,
            &data.join("groups.json"),
            ImportOptions::default(),
            Source::Groups,
        )
        .expect("again");
        assert_eq!(again.events.unchanged, 3);

        set_channel_code(f.store.as_mut(), &f.tenant, "store_hz_01", "门店").expect("code");
        // The unsubscribed user becomes known first, so their unfollow is recorded.
        let known = f.file("known.csv", "customer_id\no6_bmjrPTlm6_2sgVt7hMZOPfL4X\n");
        f.import(Kind::Customers, &known).expect("known");
        let r = import_source(
            f.store.as_mut(),
            &f.tenant,
            &data.join("followers.jsonl"),
            ImportOptions::default(),
            Source::Followers,
        )
        .expect("followers");
        assert_eq!(
            (r.customers.inserted, r.events.inserted),
            (2, 3),
            "{}",
            f.backend
        );
        let qr = f
            .store
            .customer(
                &f.tenant,
                &CustomerId::parse("o6_bmjrPTlm6_2sgVt7hMZOPfL2M").expect("id"),
            )
            .expect("follower");
        assert_eq!(qr.channel.as_ref().map(|c| c.as_str()), Some("store"));
        assert_eq!(
            qr.joined_at,
            Timestamp::from_second(1_777_500_000).expect("t")
        );
        let search = f
            .store
            .customer(
                &f.tenant,
                &CustomerId::parse("o6_bmjrPTlm6_2sgVt7hMZOPfL3N").expect("id"),
            )
            .expect("follower");
        assert_eq!(
            search.channel.as_ref().map(|c| c.as_str()),
            Some("official_account")
        );
        let mut kinds = Vec::new();
        f.store
            .scan_events(&f.tenant, &mut |e| kinds.push(e.kind.as_str().to_owned()))
            .expect("events");
        kinds.sort();
        assert_eq!(
            kinds,
            [
                "group_join",
                "group_join",
                "group_join",
                "oa_follow",
                "oa_follow",
                "unfollow"
            ]
        );
    }
}

/// A groups file is a snapshot: a member the pool saw join a chat of the file and who is no
/// longer among its members has left it (a `group_leave` at the import), once; a chat the
/// file does not hold is left alone.
#[test]
fn a_later_snapshot_of_groups_records_who_left() {
    for mut f in fixtures("group-leave") {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/wecom");
        import_source(
            f.store.as_mut(),
            &f.tenant,
            &data.join("groups.json"),
            ImportOptions::default(),
            Source::Groups,
        )
        .expect("first snapshot");
        let first = std::fs::read_to_string(data.join("groups.json")).expect("read");
        // The tea friend leaves the first chat; the file holds that chat alone.
        let mut groups: serde_json::Value = serde_json::from_str(&first).expect("json");
        let chat = groups[0].clone();
        let mut chat = chat;
        chat["group_chat"]["member_list"]
            .as_array_mut()
            .expect("members")
            .retain(|m| m["userid"] != "wmJ8aQBgAAqVH1_FHuB0ZlY2Fw3Ao7Fg");
        groups = serde_json::Value::Array(vec![chat]);
        let later = f.file("later.json", groups.to_string());
        let kinds = |f: &mut Fixture| {
            let mut leaves = Vec::new();
            f.store
                .scan_events(&f.tenant, &mut |e| {
                    if e.kind.as_str() == "group_leave" {
                        leaves.push(e.customer_id.to_string());
                    }
                })
                .expect("events");
            leaves
        };
        let r = import_source(
            f.store.as_mut(),
            &f.tenant,
            &later,
            ImportOptions::default(),
            Source::Groups,
        )
        .expect("later snapshot");
        assert_eq!(r.events.inserted, 1, "{}", f.backend);
        assert_eq!(kinds(&mut f), ["wmJ8aQBgAAqVH1_FHuB0ZlY2Fw3Ao7Fg"]);
        // The same snapshot again: nothing new.
        let again = import_source(
            f.store.as_mut(),
            &f.tenant,
            &later,
            ImportOptions::default(),
            Source::Groups,
        )
        .expect("again");
        assert_eq!(again.events.inserted, 0);
        assert_eq!(kinds(&mut f).len(), 1);
    }
}

/// Weimob's orders as its order-list API's pages: millisecond times, numeric statuses
/// (pending left out and counted, cancelled as refunded), the buyer's phone as the key
/// (a masked one gives way to the nickname), the items' prices × counts as the amount.
#[test]
fn weimob_api_pages_are_read_as_orders() {
    for mut f in fixtures("weimob") {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/exports/weimob_orders.jsonl");
        let r = siyu::service::weimob::import_orders(
            f.store.as_mut(),
            &f.tenant,
            &path,
            ImportOptions::default(),
        )
        .expect("weimob");
        assert_eq!((r.unpaid, r.orders.inserted), (1, 3), "{}", f.backend);
        let s = |v: &str| v.to_owned();
        assert_eq!(
            orders_of(&mut f),
            [
                (
                    s("31200011122233"),
                    s("18618486065"),
                    14_050,
                    OrderStatus::Paid,
                    Timestamp::from_second(1_777_599_000).expect("t"),
                    s("weimob")
                ),
                (
                    s("31200011122234"),
                    s("阿香"),
                    128_000,
                    OrderStatus::Paid,
                    Timestamp::from_second(1_777_685_400).expect("t"),
                    s("weimob")
                ),
                (
                    s("31200011122236"),
                    s("18618486065"),
                    2_500,
                    OrderStatus::Refunded,
                    Timestamp::from_second(1_777_858_200).expect("t"),
                    s("weimob")
                ),
            ],
            "{}",
            f.backend
        );
        let bad = f.file("bad.json", "{\"data\": {\"pageList\": [{\"orderInfo\": {\"orderBaseInfo\": {\"orderNo\": \"x1\", \"createTime\": 1777599000000, \"orderStatus\": 6}}}]}}");
        let refused = siyu::service::weimob::import_orders(
            f.store.as_mut(),
            &f.tenant,
            &bad,
            ImportOptions::default(),
        )
        .expect_err("status 6");
        assert!(
            format!("{refused:#}")
                .contains("bad.json:1: order x1: orderStatus 6 is not one Weimob documents"),
            "{refused:#}"
        );
    }
}

/// The JSON sources (WeCom contacts, groups, followers; Weimob's pages) lose nothing
/// either: with `--skip-invalid` the valid records are imported and each invalid one is
/// written whole, with its line and reason, to `FILE.rejects.jsonl`; a later clean run
/// removes the stale file.
#[test]
fn json_sources_skipping_invalid_records_write_each_with_its_reason() {
    for mut f in fixtures("json-rejects") {
        let skipping = ImportOptions {
            skip_invalid: true,
            ..ImportOptions::default()
        };
        let contacts = f.file(
            "contacts.jsonl",
            "{\"external_contact\":{\"external_userid\":\"wm1\",\"name\":\"茶友\"},\"follow_user\":[]}\n\
             {\"external_contact\":{\"name\":\"无名\"},\"follow_user\":[]}\n",
        );
        let r = import_contacts(f.store.as_mut(), &f.tenant, &contacts, skipping).expect("skip");
        assert_eq!((r.contacts, r.rejected), (1, 1), "{}", f.backend);
        let written = r.rejects_file.clone().expect("a rejects file");
        assert_eq!(written, contacts.with_extension("jsonl.rejects.jsonl"));
        let rows: Vec<serde_json::Value> = std::fs::read_to_string(&written)
            .expect("read")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["line"], 2);
        assert_eq!(
            rows[0]["reason"],
            "external_contact.external_userid: is missing"
        );
        assert_eq!(rows[0]["record"]["external_contact"]["name"], "无名");
        assert!(r.to_string().contains("rejects.jsonl"), "{r}");
        // Mended, the file imports clean and the stale rejects go.
        std::fs::write(
            &contacts,
            "{\"external_contact\":{\"external_userid\":\"wm1\",\"name\":\"茶友\"},\"follow_user\":[]}\n",
        )
        .expect("mend");
        let r = import_contacts(f.store.as_mut(), &f.tenant, &contacts, skipping).expect("clean");
        assert_eq!((r.rejected, r.rejects_file), (0, None));
        assert!(!written.exists(), "the stale rejects file is removed");

        let pages = f.file(
            "weimob.json",
            "{\"data\": {\"pageList\": [{\"orderInfo\": {\"orderBaseInfo\": {\"orderNo\": \"x1\", \"createTime\": 1777599000000, \"orderStatus\": 6}}}]}}\n{\"page\": 2}\n",
        );
        let r = siyu::service::weimob::import_orders(f.store.as_mut(), &f.tenant, &pages, skipping)
            .expect("skip");
        assert_eq!((r.orders.inserted, r.orders.rejected), (0, 2));
        let text = std::fs::read_to_string(r.orders.rejects_file.as_ref().expect("rejects"))
            .expect("read");
        let rows: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(
            (rows[0]["line"].as_u64(), rows[1]["line"].as_u64()),
            (Some(1), Some(2))
        );
        assert!(
            rows[0]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("orderStatus 6")),
            "{text}"
        );
        assert_eq!(
            rows[0]["record"]["orderInfo"]["orderBaseInfo"]["orderNo"],
            "x1"
        );
        assert_eq!(rows[1]["record"]["page"], 2);
    }
}

/// Taobao's item list must not be read as orders: it says which export to use.
#[test]
fn an_item_list_is_refused_naming_the_order_export() {
    for mut f in fixtures("items") {
        let path = f.file(
            "items.csv",
            "订单编号,主订单编号,标题,价格,购买数量,订单状态\n1,2,茶,10,1,交易成功\n",
        );
        let refused = f.import(Kind::Orders, &path).expect_err("items");
        assert!(
            format!("{refused:#}").contains("import the order list"),
            "{refused:#}"
        );
        assert_eq!(f.store.table_counts(&f.tenant).expect("counts").orders, 0);
    }
}

#[test]
fn events_from_json_lines_are_never_doubled() {
    for mut f in fixtures("events") {
        let text = r#"{"event_id":"e1","customer_id":"c1","type":"post_like","occurred_at":"2024-05-01T09:00:00+08:00","properties":{"post":"p1"}}
{"event_id":"e2","customer_id":"c1","type":"view","occurred_at":"2024-05-01 09:05:00"}

{"event_id":"e1","customer_id":"c1","type":"post_like","occurred_at":"2024-05-01T09:00:00+08:00"}
"#;
        let path = f.file("events.jsonl", text);
        let r = f.import(Kind::Events, &path).expect("import");
        assert_eq!(
            (r.inserted, r.unchanged, r.customers_created),
            (2, 1, 1),
            "{}",
            f.backend
        );
        let again = f.import(Kind::Events, &path).expect("again");
        assert_eq!((again.inserted, again.unchanged), (0, 3));
        let mut events = Vec::new();
        f.store
            .scan_events(&f.tenant, &mut |e| events.push(e))
            .expect("scan");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].properties, r#"{"post":"p1"}"#);

        let bad = f.file("bad.jsonl", "{\"event_id\":\"e3\",\"customer_id\":\"c1\",\"type\":\"view\",\"occurred_at\":\"2024-05-01\",\"colour\":\"red\"}\nnot json\n");
        let err = f.import(Kind::Events, &bad).expect_err("refused");
        let m = format!("{err:#}");
        assert!(m.contains("bad.jsonl:1: colour: unknown field"), "{m}");
        assert!(m.contains("bad.jsonl:2: row: is not a JSON object"), "{m}");
    }
}

#[test]
fn customer_rows_merge_into_what_the_pool_knows() {
    for mut f in fixtures("merge") {
        f.seed();
        let path = f.file(
            "more.csv",
            "customer_id,phone,region,tags\nc1,138-0013-8000,上海,outdoor;parent\nc2,,,\nc3,,,\n",
        );
        let r = f.import(Kind::Customers, &path).expect("import");
        assert_eq!(
            (r.inserted, r.updated, r.unchanged),
            (1, 1, 1),
            "{}",
            f.backend
        );
        let id = CustomerId::parse("c1").expect("id");
        let c = f.store.customer(&f.tenant, &id).expect("c1");
        assert_eq!(c.name.as_deref(), Some("张三"));
        assert_eq!(c.phone.as_deref(), Some("13800138000"));
        assert_eq!(
            f.store.customer_tags(&f.tenant, &id).expect("tags"),
            ["outdoor", "parent", "vip"]
        );
    }
}

#[test]
fn a_newest_first_export_joins_customers_at_their_first_order_and_its_channel() {
    for mut f in fixtures("newest-first") {
        // c1's latest order opens the file, its first order is three batches later.
        let mut text = String::from(ORDERS_HEADER);
        text.push_str("o-last,c1,2024-06-30 12:00:00,10,,,store,\n");
        for i in 0..20_000 {
            text.push_str(&format!(
                "o{i},c{},2024-06-01 12:00:00,10,,,,\n",
                2 + i % 500
            ));
        }
        text.push_str("o-first,c1,2024-01-02 12:00:00,10,,,douyin,\n");
        let path = f.file("newest_first.csv", &text);
        let r = f.import(Kind::Orders, &path).expect("import");
        assert_eq!(
            (r.inserted, r.customers_created),
            (20_002, 501),
            "{}",
            f.backend
        );
        let c = f
            .store
            .customer(&f.tenant, &CustomerId::parse("c1").expect("id"))
            .expect("c1");
        assert_eq!(
            c.joined_at.to_string(),
            "2024-01-02T04:00:00Z",
            "{}",
            f.backend
        );
        assert_eq!(
            c.channel.as_ref().map(|c| c.as_str()),
            Some("douyin"),
            "{}",
            f.backend
        );
    }
}
