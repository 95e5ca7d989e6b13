//! The benchmarks behind the speed figures: generated data, a fresh database, wall time
//! and peak memory.

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use siyu_core::import::Kind;
use siyu_core::rng::Rng;
use siyu_store::Store;

use super::import::{ImportOptions, Phases, import_file};

#[derive(Debug, Serialize)]
pub struct ImportBench {
    pub backend: &'static str,
    pub shape: OrdersShape,
    pub orders: u64,
    pub customers_created: u64,
    pub seconds: f64,
    pub orders_per_second: f64,
    /// Where the time went: rows, index rebuild, profiles, segments, commit.
    pub phases: Phases,
    /// Profile update per order, microseconds.
    pub profile_us_per_order: f64,
    /// The raw import alone: orders per second of the time not spent on profiles.
    pub raw_orders_per_second: f64,
    /// Peak resident memory of the whole process, MiB.
    pub peak_rss_mib: Option<f64>,
}

/// The shape of a generated orders file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrdersShape {
    /// siyu's canonical columns.
    #[default]
    Canonical,
    /// Youzan's 60-column order export (UTF-8 with a BOM), read by its preset: the same
    /// orders, with the buyer's phone as the key.
    Youzan,
}

/// The 60 columns of Youzan's order export, 分销员 twice (see docs/import.md).
const YOUZAN_HEADER: &str = "订单号,销售渠道,归属店铺,订单类型,订单状态,推广方式,订单来源,订单创建时间,\
    买家付款时间,交易成功时间,付款方式,支付流水号,商品金额合计,运费,店铺优惠合计,应收订单金额,订单实付金额,\
    支付优惠合计,订单实收金额,订单抵用积分数,店铺优惠方式,支付优惠方式,全部商品名称,商品种类数,订单配送方式,\
    同城送达时间/提货时间,收货人省份,收货人城市,收货人地区,详细收货地址/提货地址,收货人/提货人,\
    收货人手机号/提货人手机号,买家备注,订单星级,买家昵称,买家是否会员,买家手机号,下单网点,收银员,分销员,\
    销售导购,专属导购,订单退款状态,订单已退款金额,商家订单备注,桌号,挂账主体,挂账手机号,团长订单,订单风险标签,\
    分销员,分销员手机号,分销员所属店铺,分销员所属团队,分销员所属分组,分销员等级,订单佣金类型,订单佣金金额,\
    订单下级卖货提成类型,订单下级卖货提成金额";

/// Writes `orders` generated orders of `customers` customers as a canonical orders CSV.
pub fn write_orders_csv(path: &Path, orders: u64, customers: u64, seed: u64) -> anyhow::Result<()> {
    write_orders(path, OrdersShape::Canonical, orders, customers, seed)
}

/// Writes `orders` generated orders of `customers` customers in `shape`: the same orders
/// whatever the shape.
pub fn write_orders(
    path: &Path,
    shape: OrdersShape,
    orders: u64,
    customers: u64,
    seed: u64,
) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    match shape {
        OrdersShape::Canonical => writeln!(
            w,
            "order_id,customer_id,ordered_at,amount,discount,coupon_code,channel,status"
        )?,
        OrdersShape::Youzan => writeln!(w, "\u{feff}{}", YOUZAN_HEADER.replace(' ', ""))?,
    }
    let mut rng = Rng::new(seed);
    let channels = ["mini_program", "store", "wecom", "douyin", "taobao"];
    let mut line = String::with_capacity(512);
    // Two years of orders starting 2024-01-01, local time.
    let start = jiff::civil::date(2024, 1, 1).to_datetime(jiff::civil::Time::midnight());
    for i in 0..orders {
        line.clear();
        let customer = rng.below(customers.max(1));
        let offset = jiff::SignedDuration::from_secs(rng.below(2 * 365 * 86_400) as i64);
        let at = start.checked_add(offset).unwrap_or(start);
        let fen = (rng.lognormal(12_000.0, 0.6) as i64).max(100);
        let coupon = rng.chance(0.12);
        let refunded = rng.chance(0.03);
        let id = 3_700_000_000_000_000_000u64 + i * 7;
        let time = at.strftime("%Y-%m-%d %H:%M:%S");
        let channel = channels[rng.below(channels.len() as u64) as usize];
        match shape {
            OrdersShape::Canonical => {
                let _ = write!(
                    line,
                    "{id},c{customer:08},{time},{}.{:02},{},{},{channel},{}",
                    fen / 100,
                    fen % 100,
                    if coupon { "10.00" } else { "" },
                    if coupon { "NEW10" } else { "" },
                    if refunded { "refunded" } else { "paid" },
                );
            }
            OrdersShape::Youzan => {
                // 订单号,销售渠道,归属店铺,订单类型,订单状态, … (the columns of the header).
                let amount = format!("{}.{:02}", fen / 100, fen % 100);
                let status = if refunded {
                    "交易关闭"
                } else {
                    "交易成功"
                };
                let discount = if coupon { "10.00" } else { "" };
                let phone = 13_000_000_000u64 + customer;
                let _ = write!(
                    line,
                    "E{id},{channel},茶语总店,普通订单,{status},,,{time},{time},,微信支付,,{amount},0.00,\
                     {discount},{amount},{amount},,{amount},,,,明前龙井 250g,1,快递发货,,浙江省,杭州市,西湖区,\
                     某路1号,张*,186******05,,,茶友,否,{phone},,,李导购,,,,,,,,,,,王分销,139****0001,,,,,,,,"
                );
            }
        }
        writeln!(w, "{line}")?;
    }
    w.flush()?;
    Ok(())
}

/// Imports `orders` generated orders into `store` (which should be fresh) and measures it.
pub fn import(
    store: &mut dyn Store,
    shape: OrdersShape,
    orders: u64,
    customers: u64,
    seed: u64,
) -> anyhow::Result<ImportBench> {
    let dir = tempfile::tempdir().context("creating a scratch directory")?;
    let path = dir.path().join("orders.csv");
    write_orders(&path, shape, orders, customers, seed)?;
    let tenant = store.tenant("bench")?;
    let started = Instant::now();
    let report = import_file(
        store,
        &tenant,
        Kind::Orders,
        &path,
        ImportOptions::default(),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(ImportBench {
        backend: store.backend(),
        shape,
        orders: report.inserted + report.updated + report.unchanged,
        customers_created: report.customers_created,
        seconds,
        orders_per_second: report.rows as f64 / seconds,
        phases: report.phases,
        profile_us_per_order: report.phases.profiles * 1e6 / report.rows.max(1) as f64,
        raw_orders_per_second: report.rows as f64 / (seconds - report.phases.profiles),
        peak_rss_mib: peak_rss_mib(),
    })
}

/// The process's peak resident set (VmHWM), where the system tells it.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// One command of `bench reports`: its wall time as a process and its peak memory.
#[derive(Debug, Serialize)]
pub struct CommandRun {
    pub command: String,
    pub seconds: f64,
    pub peak_rss_mib: Option<f64>,
}

/// The reports and `lifecycle`, each as a user runs it (a table, output dropped).
pub const REPORT_COMMANDS: &[&[&str]] = &[
    &["report", "overview"],
    &["report", "gmv"],
    &["report", "cohorts"],
    &["report", "funnel"],
    &["report", "pareto"],
    &["report", "channels"],
    &["report", "referrals"],
    &["report", "clv"],
    &["lifecycle"],
    &["rfm"],
];

/// Builds a demo shop of `customers` into the tenant `default` of the SQLite file `db`
/// unless it holds customers already (so a pool is built once and measured many times);
/// whether it built one, and in how many seconds.
pub fn demo_pool(db: &Path, customers: u64, seed: u64) -> anyhow::Result<Option<f64>> {
    let mut store = siyu_store::open(&db.to_string_lossy())?;
    let tenant = store.tenant("default")?;
    if crate::service::overview::overview(store.as_mut(), &tenant)?.customers > 0 {
        return Ok(None);
    }
    let started = Instant::now();
    let config = siyu_core::demo::DemoConfig {
        customers: usize::try_from(customers).context("--customers")?,
        seed,
        ..siyu_core::demo::DemoConfig::new(tenant.zone.day_of(siyu_core::Timestamp::now()))
    };
    crate::service::demo::build(store.as_mut(), &tenant, &config, None, false)?;
    Ok(Some(started.elapsed().as_secs_f64()))
}

/// Runs `siyu --db DB ARGS…` as a child process, output dropped: its wall
/// time and peak memory (the child's VmHWM, sampled every 2 ms until it exits).
pub fn run_command(db: &Path, args: &[&str]) -> anyhow::Result<CommandRun> {
    let exe = std::env::current_exe().context("finding the siyu binary")?;
    let started = Instant::now();
    let mut child = std::process::Command::new(exe)
        .arg("--db")
        .arg(db)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("starting siyu")?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak: Option<f64> = None;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Some(kib) = std::fs::read_to_string(&status_file).ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        }) {
            peak = Some(peak.map_or(kib, |p| p.max(kib)));
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let seconds = started.elapsed().as_secs_f64();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        anyhow::bail!("siyu {}: {}", args.join(" "), err.trim());
    }
    Ok(CommandRun {
        command: format!("siyu {}", args.join(" ")),
        seconds,
        peak_rss_mib: peak.map(|kib| kib / 1024.0),
    })
}
