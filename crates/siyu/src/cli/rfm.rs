//! `siyu rfm`: the eight RFM classes (summary table), or every scored customer (csv, json).

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use siyu_core::segment::rfm::{Level, Rfm, RfmClass, RfmWindow};
use siyu_core::{Money, TenantZone, Timestamp};

use super::output::{Format, Table, count, percent, thousands, yuan};
use super::{Cli, connect};
use crate::fastcsv::rfm::{FileOptions, from_orders_file};
use crate::service::rfm::from_store;

/// RFM as DESIGN.md defines it: recency, frequency and monetary value of paid orders.
///
/// The table (default) is the summary: customers and revenue per class, and the means the
/// classes are drawn against. `--format csv` prints every scored customer as
/// `customer_id,recency_days,frequency,monetary,r,f,m,segment`, by customer id, with r, f
/// and m `H` or `L` (or, with `--quintiles`, the quintile scores 1–5). `--format json` prints
/// the summary and every customer with both.
#[derive(Debug, Args)]
pub struct RfmArgs {
    /// As of the end of this day (YYYY-MM-DD, tenant time); default today.
    #[arg(long)]
    pub as_of: Option<String>,
    /// Only paid orders of the last W days up to the as-of day count (default: all history).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub window_days: Option<u32>,
    /// Quintile scores 1–5 (5 best): in the csv the r, f, m columns hold them instead of H/L;
    /// the table adds the customers per score.
    #[arg(long)]
    pub quintiles: bool,
    /// Headings and class names in Chinese (the table).
    #[arg(long)]
    pub chinese: bool,
    /// Compute straight from an orders CSV without the database; the same answer as
    /// importing the file and running `siyu rfm`.
    #[arg(long, value_name = "FILE")]
    pub orders: Option<PathBuf>,
    /// With --orders: the time zone of times without an offset.
    #[arg(long, requires = "orders", default_value = siyu_core::time::DEFAULT_TIME_ZONE)]
    pub zone: String,
    /// With --orders: skip columns that are not part of the format instead of refusing the file.
    #[arg(long, requires = "orders")]
    pub ignore_unknown: bool,
    /// With --orders: reader threads (default: one per core).
    #[arg(
        long,
        requires = "orders",
        default_value_t = 0,
        hide_default_value = true
    )]
    pub threads: usize,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(cli: &Cli, args: &RfmArgs) -> anyhow::Result<()> {
    let as_of = |zone: &TenantZone| match &args.as_of {
        Some(day) => TenantZone::parse_day(day).context("--as-of"),
        None => Ok(zone.day_of(Timestamp::now())),
    };
    let (rfm, source) = match &args.orders {
        Some(path) => {
            let zone = TenantZone::named(&args.zone).context("--zone")?;
            let window = RfmWindow::new(as_of(&zone)?, args.window_days);
            let options = FileOptions {
                ignore_unknown: args.ignore_unknown,
                threads: args.threads,
                ..FileOptions::default()
            };
            let rfm = from_orders_file(path, &zone, window, options)
                .with_context(|| format!("computing RFM from {}", path.display()))?;
            (rfm, format!("{} ({})", path.display(), zone.name()))
        }
        None => {
            let mut ctx = connect(cli)?;
            let window = RfmWindow::new(as_of(&ctx.tenant.zone)?, args.window_days);
            let rfm = from_store(ctx.store.as_mut(), &ctx.tenant, window)?;
            let source = format!("tenant '{}' ({})", ctx.tenant.name, ctx.tenant.zone.name());
            (rfm, source)
        }
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let written = match args.format {
        Format::Table => write_table(&mut out, &rfm, &source, args),
        Format::Csv => write_csv(&mut out, &rfm, args.quintiles),
        Format::Json => write_json(&mut out, &rfm),
    }
    .and_then(|()| out.flush());
    match written {
        // A reader that has seen enough (`| head`) is not a failure.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn level_or_score(level: Level, score: u8, quintiles: bool, buf: &mut Vec<u8>) {
    if quintiles {
        buf.push(b'0' + score);
    } else {
        buf.extend_from_slice(level.letter().as_bytes());
    }
}

/// `customer_id,recency_days,frequency,monetary,r,f,m,segment`, written by hand: a million
/// customers print in a few tens of milliseconds.
pub fn write_csv(out: &mut impl Write, rfm: &Rfm, quintiles: bool) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1 << 16);
    buf.extend_from_slice(b"customer_id,recency_days,frequency,monetary,r,f,m,segment\n");
    for c in &rfm.customers {
        let id = c.customer_id.as_str();
        if id.contains([',', '"']) {
            buf.push(b'"');
            buf.extend_from_slice(id.replace('"', "\"\"").as_bytes());
            buf.push(b'"');
        } else {
            buf.extend_from_slice(id.as_bytes());
        }
        buf.push(b',');
        push_number(&mut buf, u64::from(c.recency_days));
        buf.push(b',');
        push_number(&mut buf, u64::from(c.frequency));
        buf.push(b',');
        push_yuan(&mut buf, c.monetary);
        buf.push(b',');
        level_or_score(c.r, c.quintiles.r, quintiles, &mut buf);
        buf.push(b',');
        level_or_score(c.f, c.quintiles.f, quintiles, &mut buf);
        buf.push(b',');
        level_or_score(c.m, c.quintiles.m, quintiles, &mut buf);
        buf.push(b',');
        buf.extend_from_slice(c.class.name().as_bytes());
        buf.push(b'\n');
        if buf.len() > (1 << 16) - 256 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)
}

fn push_number(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

fn push_yuan(buf: &mut Vec<u8>, m: Money) {
    let fen = m.fen();
    if fen < 0 {
        buf.push(b'-');
    }
    let abs = fen.unsigned_abs();
    push_number(buf, abs / 100);
    buf.push(b'.');
    buf.push(b'0' + (abs % 100 / 10) as u8);
    buf.push(b'0' + (abs % 10) as u8);
}

fn window_text(w: &RfmWindow, chinese: bool) -> String {
    match (w.window_days, chinese) {
        (Some(days), false) => format!("the last {days} days"),
        (Some(days), true) => format!("近 {days} 天"),
        (None, false) => "all history".to_owned(),
        (None, true) => "全部历史".to_owned(),
    }
}

fn write_table(out: &mut impl Write, rfm: &Rfm, source: &str, args: &RfmArgs) -> io::Result<()> {
    let zh = args.chinese || super::lang::zh();
    let m = &rfm.means;
    let mean = |v: Option<f64>, digits: usize| {
        v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.digits$}"))
    };
    let mean_money = m.monetary_fen().map_or_else(
        || "n/a".to_owned(),
        |f| yuan(Money::from_fen(f.round() as i64)),
    );
    if zh {
        writeln!(
            out,
            "RFM 分层 — 截至 {}（{}），{}：{} 位有付款订单的客户",
            rfm.window.as_of,
            window_text(&rfm.window, true),
            source,
            thousands(m.customers)
        )?;
        writeln!(
            out,
            "阈值（平均值，优于平均为 H）：R 最近一次消费 {} 天，F 消费频次 {} 单，M 消费金额 {}",
            mean(m.recency_days(), 1),
            mean(m.frequency(), 2),
            mean_money
        )?;
    } else {
        writeln!(
            out,
            "RFM as of {} ({}), {}: {} with paid orders scored",
            rfm.window.as_of,
            window_text(&rfm.window, false),
            source,
            count(m.customers, "customer")
        )?;
        writeln!(
            out,
            "Thresholds (the means; better than the mean is H): recency {} days, frequency {} orders, monetary {}",
            mean(m.recency_days(), 1),
            mean(m.frequency(), 2),
            mean_money
        )?;
    }
    writeln!(out)?;
    let headers: [&str; 9] = if zh {
        [
            "类别",
            "class",
            "R",
            "F",
            "M",
            "客户数",
            "客户占比",
            "消费金额",
            "金额占比",
        ]
    } else {
        [
            "class",
            "类别",
            "R",
            "F",
            "M",
            "customers",
            "share",
            "revenue",
            "share of revenue",
        ]
    };
    let mut t = Table::new(headers);
    for line in &rfm.classes {
        let (r, f, mm) = levels_of(line.class);
        let (first, second) = if zh {
            (line.class.chinese(), line.class.name())
        } else {
            (line.class.name(), line.class.chinese())
        };
        t.row([
            first.to_owned(),
            second.to_owned(),
            r.to_owned(),
            f.to_owned(),
            mm.to_owned(),
            thousands(line.customers),
            percent(line.share_of_customers),
            yuan(line.revenue),
            percent(line.share_of_revenue),
        ]);
    }
    let scored = m.customers;
    t.row([
        if zh { "合计" } else { "total" }.to_owned(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        thousands(scored),
        percent((scored > 0).then_some(1.0)),
        yuan(m.monetary_total),
        percent((m.monetary_total.fen() > 0).then_some(1.0)),
    ]);
    out.write_all(t.render().as_bytes())?;
    if args.quintiles {
        writeln!(out)?;
        writeln!(
            out,
            "{}",
            if zh {
                "五分位得分（5 最好）：各得分的客户数"
            } else {
                "Quintile scores (5 is best): customers per score"
            }
        )?;
        let mut counts = [[0u64; 5]; 3];
        for c in &rfm.customers {
            for (d, s) in [c.quintiles.r, c.quintiles.f, c.quintiles.m]
                .into_iter()
                .enumerate()
            {
                counts[d][usize::from(s.clamp(1, 5) - 1)] += 1;
            }
        }
        let mut t = Table::new(["", "1", "2", "3", "4", "5"]);
        for (name, row) in ["R", "F", "M"].into_iter().zip(counts) {
            let mut cells = vec![name.to_owned()];
            cells.extend(row.iter().map(|&n| thousands(n)));
            t.row(cells);
        }
        out.write_all(t.render().as_bytes())?;
    }
    Ok(())
}

fn levels_of(class: RfmClass) -> (&'static str, &'static str, &'static str) {
    let name = |l: Level| l.letter();
    use Level::{High as H, Low as L};
    for r in [H, L] {
        for f in [H, L] {
            for m in [H, L] {
                if RfmClass::of(r, f, m) == class {
                    return (name(r), name(f), name(m));
                }
            }
        }
    }
    ("", "", "")
}

#[derive(Serialize)]
struct JsonRfm<'a> {
    as_of: String,
    window_days: Option<u32>,
    scored: u64,
    means: &'a siyu_core::segment::rfm::Means,
    classes: Vec<JsonClass>,
    customers: Vec<JsonCustomer<'a>>,
}

#[derive(Serialize)]
struct JsonClass {
    segment: &'static str,
    chinese: &'static str,
    customers: u64,
    share_of_customers: Option<f64>,
    revenue_fen: i64,
    share_of_revenue: Option<f64>,
}

#[derive(Serialize)]
struct JsonCustomer<'a> {
    customer_id: &'a str,
    recency_days: u32,
    frequency: u32,
    monetary_fen: i64,
    r: Level,
    f: Level,
    m: Level,
    segment: &'static str,
    quintiles: siyu_core::segment::rfm::Quintiles,
}

fn write_json(out: &mut impl Write, rfm: &Rfm) -> io::Result<()> {
    let json = JsonRfm {
        as_of: rfm.window.as_of.to_string(),
        window_days: rfm.window.window_days,
        scored: rfm.means.customers,
        means: &rfm.means,
        classes: rfm
            .classes
            .iter()
            .map(|c| JsonClass {
                segment: c.class.name(),
                chinese: c.chinese,
                customers: c.customers,
                share_of_customers: c.share_of_customers,
                revenue_fen: c.revenue.fen(),
                share_of_revenue: c.share_of_revenue,
            })
            .collect(),
        customers: rfm
            .customers
            .iter()
            .map(|c| JsonCustomer {
                customer_id: c.customer_id.as_str(),
                recency_days: c.recency_days,
                frequency: c.frequency,
                monetary_fen: c.monetary.fen(),
                r: c.r,
                f: c.f,
                m: c.m,
                segment: c.class.name(),
                quintiles: c.quintiles,
            })
            .collect(),
    };
    serde_json::to_writer_pretty(&mut *out, &json)?;
    writeln!(out)
}
