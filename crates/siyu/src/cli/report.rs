//! `siyu report …` and `siyu channel-cost …`.

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use siyu_core::metrics::cohorts::Month;
use siyu_core::metrics::gmv::{Factor, GmvFactors, parse_what_if};
use siyu_core::metrics::shop::Period;
use siyu_core::{Channel, Money, TenantZone};
use siyu_store::{Store, Tenant};

use super::lang::{pick, tr};
use super::lifecycle::as_of_day;
use super::output::{Format, Table, count, percent, thousands, yuan};
use crate::service::reports::{self, By};

#[derive(Debug, Subcommand)]
pub enum Report {
    /// Pool, buyers, orders, GMV, AOV, repurchase rate, and customers by source channel.
    Overview {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// GMV as users × retention × conversion × purchases per buyer × AOV; with a
    /// comparison period, the change split among the five (LMDI); what-ifs; slices.
    Gmv(GmvArgs),
    /// Customers by month of first purchase and the share buying again in each month after;
    /// the repurchase rate overall and per channel.
    Cohorts {
        #[arg(long)]
        as_of: Option<String>,
        /// Months after the first to show.
        #[arg(long, default_value_t = 12)]
        months: u32,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Customers reaching each journey stage and the conversion between steps.
    Funnel {
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Revenue share of the top 20% of buyers, the buyers making 80% of it, super users.
    Pareto {
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// Super users to list.
        #[arg(long, default_value_t = 20)]
        top: usize,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Per source channel: entrants, buyers, conversion, revenue, CAC, CLV, CLV/CAC, payback.
    Channels {
        /// The period (default: the 365 days to today).
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Share rate, invites per customer, invite conversion, K-factor, generations, top referrers.
    Referrals {
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long, default_value_t = 10)]
        top: usize,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// The formula CLV (AOV × frequency × lifetime), overall and per channel or segment.
    Clv {
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long, value_enum)]
        by: Option<ByArg>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ByArg {
    Channel,
    Segment,
    Stage,
}

impl From<ByArg> for By {
    fn from(b: ByArg) -> By {
        match b {
            ByArg::Channel => By::Channel,
            ByArg::Segment => By::Segment,
            ByArg::Stage => By::Stage,
        }
    }
}

#[derive(Debug, Args)]
pub struct GmvArgs {
    /// First day of the period (default: 29 days before --to).
    #[arg(long)]
    pub from: Option<String>,
    /// Last day of the period (default: today, tenant time).
    #[arg(long)]
    pub to: Option<String>,
    #[arg(long, requires = "compare_to")]
    pub compare_from: Option<String>,
    #[arg(long, requires = "compare_from")]
    pub compare_to: Option<String>,
    /// Factors moved by percentages, e.g. retention=+10%,aov=-5%.
    #[arg(long)]
    pub what_if: Option<String>,
    /// Repeat the figures per slice.
    #[arg(long, value_enum)]
    pub by: Option<ByArg>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum ChannelCostCommand {
    /// Record what a channel cost in a month (replaces an earlier figure): e.g.
    /// `siyu channel-cost set douyin 2025-03 12000` (yuan).
    Set {
        channel: String,
        month: String,
        amount: String,
        /// Record a channel no customer has come from yet (a typo is refused otherwise).
        #[arg(long)]
        new: bool,
    },
    /// Every recorded cost.
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

fn day(text: &str, what: &str) -> anyhow::Result<jiff::civil::Date> {
    TenantZone::parse_day(text).with_context(|| format!("--{what}"))
}

fn period(
    from: Option<&str>,
    to: Option<&str>,
    tenant: &Tenant,
    days: i64,
) -> anyhow::Result<Period> {
    let to = match to {
        Some(t) => day(t, "to")?,
        None => tenant.zone.day_of(siyu_core::Timestamp::now()),
    };
    let from = match from {
        Some(f) => day(f, "from")?,
        None => to
            .checked_sub(jiff::Span::new().days(days - 1))
            .context("--from")?,
    };
    Period::new(from, to).map_err(|e| anyhow!(e))
}

fn opt(value: Option<f64>, show: impl Fn(f64) -> String) -> String {
    value.map_or_else(|| "n/a".to_owned(), show)
}

fn money(m: Option<Money>) -> String {
    m.map_or_else(|| "n/a".to_owned(), yuan)
}

fn json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn csv_rows(header: &[&str], rows: Vec<Vec<String>>) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(std::io::stdout());
    w.write_record(header)?;
    for r in rows {
        w.write_record(r)?;
    }
    w.flush()?;
    Ok(())
}

/// The CSV of a report with headline figures beside its lists: one figure a line,
/// `section,key,figure,value` (key names the line of a list: a channel, a customer), so
/// a program gets everything the table shows from one file. Money in yuan, shares as
/// fractions, as in the other CSVs.
#[derive(Default)]
pub(super) struct Figures(Vec<[String; 4]>);

impl Figures {
    pub(super) fn push(&mut self, section: &str, key: &str, figure: &str, value: impl ToString) {
        self.0.push([
            section.to_owned(),
            key.to_owned(),
            figure.to_owned(),
            value.to_string(),
        ]);
    }

    pub(super) fn share(&mut self, section: &str, key: &str, figure: &str, value: Option<f64>) {
        self.push(section, key, figure, opt(value, |x| format!("{x:.4}")));
    }

    pub(super) fn print(self) -> anyhow::Result<()> {
        csv_rows(
            &["section", "key", "figure", "value"],
            self.0.into_iter().map(Vec::from).collect(),
        )
    }
}

fn factor_text(f: Factor, v: Option<f64>) -> String {
    match f {
        Factor::Users => opt(v, |x| thousands(x as u64)),
        Factor::Retention | Factor::Conversion => percent(v),
        Factor::PurchasesPerBuyer => opt(v, |x| format!("{x:.3}")),
        Factor::Aov => opt(v, |x| yuan(Money::from_fen(x.round() as i64))),
    }
}

fn factors_rows(f: &GmvFactors) -> Vec<(Factor, Option<f64>)> {
    Factor::ALL.into_iter().map(|k| (k, f.value(k))).collect()
}

pub fn run_report(store: &mut dyn Store, tenant: &Tenant, report: &Report) -> anyhow::Result<()> {
    match report {
        Report::Overview { .. } => unreachable!("handled by the caller"),
        Report::Gmv(args) => {
            let p = period(args.from.as_deref(), args.to.as_deref(), tenant, 30)?;
            let compare = match (&args.compare_from, &args.compare_to) {
                (Some(f), Some(t)) => Some(
                    Period::new(day(f, "compare-from")?, day(t, "compare-to")?)
                        .map_err(|e| anyhow!(e))?,
                ),
                _ => None,
            };
            let moves = args
                .what_if
                .as_deref()
                .map(parse_what_if)
                .transpose()
                .map_err(|e| anyhow!("--what-if: {e}"))?;
            let r = reports::gmv(
                store,
                tenant,
                p,
                compare,
                moves.as_ref(),
                args.by.map(By::from),
            )?;
            match args.format {
                Format::Json => json(&r)?,
                Format::Csv => {
                    let mut rows = Vec::new();
                    for s in &r.slices {
                        let f = &s.factors;
                        let before = |k: Factor| {
                            s.compared
                                .as_ref()
                                .and_then(|c| c.before.value(k))
                                .map(|x| format!("{x}"))
                                .unwrap_or_default()
                        };
                        for (k, v) in factors_rows(f) {
                            let part = s.compared.as_ref().and_then(|c| {
                                c.parts
                                    .iter()
                                    .find(|p| p.factor == k)
                                    .map(|p| p.share.to_string())
                            });
                            rows.push(vec![
                                s.slice.clone(),
                                k.name().to_owned(),
                                v.map(|x| format!("{x}")).unwrap_or_default(),
                                before(k),
                                part.unwrap_or_default(),
                            ]);
                        }
                        rows.push(vec![
                            s.slice.clone(),
                            "gmv".into(),
                            f.gmv.to_string(),
                            s.compared
                                .as_ref()
                                .map(|c| c.before.gmv.to_string())
                                .unwrap_or_default(),
                            s.compared
                                .as_ref()
                                .map(|c| c.change.to_string())
                                .unwrap_or_default(),
                        ]);
                        let count = |name: &str, now: u64, then: Option<u64>| {
                            vec![
                                s.slice.clone(),
                                name.to_owned(),
                                now.to_string(),
                                then.map(|n| n.to_string()).unwrap_or_default(),
                                String::new(),
                            ]
                        };
                        let c = s.compared.as_ref().map(|c| &c.before);
                        rows.push(count("retained", f.retained, c.map(|b| b.retained)));
                        rows.push(count("buyers", f.buyers, c.map(|b| b.buyers)));
                        rows.push(count("paid_orders", f.orders, c.map(|b| b.orders)));
                        if let Some(w) = s.what_if {
                            rows.push(vec![
                                s.slice.clone(),
                                "what_if_gmv".into(),
                                w.to_string(),
                                String::new(),
                                String::new(),
                            ]);
                        }
                        if let Some(note) = s.compared.as_ref().and_then(|c| c.note.as_ref()) {
                            rows.push(vec![
                                s.slice.clone(),
                                "note".into(),
                                note.to_string(),
                                String::new(),
                                String::new(),
                            ]);
                        }
                    }
                    csv_rows(
                        &["slice", "factor", "value", "compared", "share_of_change"],
                        rows,
                    )?;
                }
                Format::Table => {
                    println!(
                        "{}",
                        pick(
                            format!(
                                "GMV {} … {} ({}){}",
                                p.from,
                                p.to,
                                tenant.zone.name(),
                                compare.map_or_else(String::new, |c| format!(
                                    ", against {} … {}",
                                    c.from, c.to
                                ))
                            ),
                            format!(
                                "GMV {} … {}（{}）{}",
                                p.from,
                                p.to,
                                tenant.zone.name(),
                                compare.map_or_else(String::new, |c| format!(
                                    "，对比 {} … {}",
                                    c.from, c.to
                                ))
                            )
                        )
                    );
                    for s in &r.slices {
                        println!();
                        println!("{}", super::lang::slice(&s.slice));
                        let f = &s.factors;
                        let mut t = match &s.compared {
                            Some(_) => {
                                Table::new(["factor", "compared", "period", "share of change"])
                            }
                            None => Table::new(["factor", "period"]),
                        };
                        for (k, v) in factors_rows(f) {
                            match &s.compared {
                                Some(c) => {
                                    let share = c
                                        .parts
                                        .iter()
                                        .find(|p| p.factor == k)
                                        .map_or_else(|| "n/a".to_owned(), |p| yuan(p.share));
                                    t.row([
                                        tr(k.name()),
                                        factor_text(k, c.before.value(k)),
                                        factor_text(k, v),
                                        share,
                                    ]);
                                }
                                None => t.row([tr(k.name()), factor_text(k, v)]),
                            }
                        }
                        match &s.compared {
                            Some(c) => {
                                t.row([tr("GMV"), yuan(c.before.gmv), yuan(f.gmv), yuan(c.change)])
                            }
                            None => t.row([tr("GMV"), yuan(f.gmv)]),
                        }
                        print!("{}", t.render());
                        let product = opt(f.product(), |x| yuan(Money::from_fen(x.round() as i64)));
                        println!(
                            "{}",
                            pick(
                                format!(
                                    "  users {} · retained {} · buyers {} · paid orders {}; the five factors multiply to {product}",
                                    thousands(f.users),
                                    thousands(f.retained),
                                    thousands(f.buyers),
                                    thousands(f.orders),
                                ),
                                format!(
                                    "  用户 {} · 留存 {} · 购买 {} · 付款订单 {}；五个因子相乘为 {product}",
                                    thousands(f.users),
                                    thousands(f.retained),
                                    thousands(f.buyers),
                                    thousands(f.orders),
                                )
                            )
                        );
                        if let Some(note) = s.compared.as_ref().and_then(|c| c.note.as_ref()) {
                            println!("  note: {note}");
                        }
                        if let (Some(w), Some(moves)) = (s.what_if, &args.what_if) {
                            println!(
                                "  what if {moves}: GMV {} ({} of now)",
                                yuan(w),
                                percent(ratio_money(w, f.gmv))
                            );
                        }
                    }
                }
            }
        }
        Report::Cohorts {
            as_of,
            months,
            format,
        } => {
            let as_of = as_of_day(as_of.as_deref(), tenant)?;
            let r = reports::cohort_report(store, tenant, as_of, *months)?;
            match format {
                Format::Json => json(&r)?,
                Format::Csv => {
                    let mut f = Figures::default();
                    for c in &r.cohorts {
                        let month = c.month.to_string();
                        f.push("cohort", &month, "customers", c.customers);
                        for k in 0..*months as usize {
                            if let Some(share) = c.shares.get(k) {
                                f.share("cohort", &month, &format!("m{}", k + 1), *share);
                            }
                        }
                    }
                    let mut repurchase = |key: &str, buyers: u64, repeaters: u64, rate| {
                        f.push("repurchase", key, "buyers", buyers);
                        f.push("repurchase", key, "repeaters", repeaters);
                        f.share("repurchase", key, "rate", rate);
                    };
                    repurchase(
                        "all",
                        r.repurchase.buyers,
                        r.repurchase.repeaters,
                        r.repurchase.rate,
                    );
                    for l in &r.by_channel {
                        let channel = l.channel.as_ref().map_or("unknown", |c| c.as_str());
                        repurchase(channel, l.buyers, l.repeaters, l.rate);
                    }
                    f.print()?;
                }
                Format::Table => {
                    println!(
                        "{}",
                        pick(
                            format!(
                                "Cohorts by month of first purchase, as of {as_of}: share buying again in month k after"
                            ),
                            format!("按首购月份的同期群，截至 {as_of}：第 k 个月再次购买的占比")
                        )
                    );
                    let mut header = vec!["cohort".to_owned(), "customers".to_owned()];
                    header.extend((1..=*months).map(|k| format!("M{k}")));
                    let mut t = Table::new(header);
                    for c in &r.cohorts {
                        let mut row = vec![c.month.to_string(), thousands(c.customers)];
                        row.extend((0..*months as usize).map(|k| match c.shares.get(k) {
                            Some(s) => percent(*s),
                            None => String::new(),
                        }));
                        t.row(row);
                    }
                    print!("{}", t.render());
                    println!();
                    println!("{}", tr("Repurchase rate (buyers with 2+ purchase days)"));
                    let mut t = Table::new(["channel", "buyers", "repeaters", "rate"]);
                    t.row([
                        tr("all"),
                        thousands(r.repurchase.buyers),
                        thousands(r.repurchase.repeaters),
                        percent(r.repurchase.rate),
                    ]);
                    for l in &r.by_channel {
                        t.row([
                            tr(l.channel.as_ref().map_or("unknown", |c| c.as_str())),
                            thousands(l.buyers),
                            thousands(l.repeaters),
                            percent(l.rate),
                        ]);
                    }
                    print!("{}", t.render());
                }
            }
        }
        Report::Funnel { as_of, format } => {
            let as_of = as_of_day(as_of.as_deref(), tenant)?;
            let r = reports::funnel_report(store, tenant, as_of)?;
            let rows: Vec<Vec<String>> = r
                .steps
                .iter()
                .map(|s| {
                    vec![
                        s.stage.name().to_owned(),
                        s.reached.to_string(),
                        s.at.to_string(),
                        opt(s.step_conversion, |x| format!("{x:.4}")),
                        opt(s.share_of_pool, |x| format!("{x:.4}")),
                    ]
                })
                .collect();
            match format {
                Format::Json => json(&r)?,
                Format::Csv => csv_rows(
                    &["stage", "reached", "at", "step_conversion", "share_of_pool"],
                    rows,
                )?,
                Format::Table => {
                    println!(
                        "{}",
                        pick(
                            format!(
                                "Journey funnel as of {as_of}: {}",
                                count(r.customers, "customer")
                            ),
                            format!(
                                "用户旅程漏斗，截至 {as_of}：{} 位客户",
                                thousands(r.customers)
                            )
                        )
                    );
                    let mut t = Table::new([
                        "stage",
                        "reached",
                        "furthest here",
                        "from the step before",
                        "of the pool",
                    ]);
                    for s in &r.steps {
                        t.row([
                            tr(s.stage.name()),
                            thousands(s.reached),
                            thousands(s.at),
                            percent(s.step_conversion),
                            percent(s.share_of_pool),
                        ]);
                    }
                    print!("{}", t.render());
                    println!(
                        "{}",
                        tr(
                            "A customer counts as reaching every stage up to their furthest: one who shared (advocate) without buying counts as reached for customer and repeat too."
                        )
                    );
                }
            }
        }
        Report::Pareto {
            from,
            to,
            top,
            format,
        } => {
            let as_of = match to {
                Some(t) => day(t, "to")?,
                None => tenant.zone.day_of(siyu_core::Timestamp::now()),
            };
            let p = match from {
                Some(f) => Some(Period::new(day(f, "from")?, as_of).map_err(|e| anyhow!(e))?),
                None => None,
            };
            let mut r = reports::pareto_report(store, tenant, p, as_of)?;
            match format {
                Format::Json => json(&r)?,
                Format::Csv => {
                    let mut f = Figures::default();
                    let h = "pareto";
                    f.push(h, "", "from", r.period.from);
                    f.push(h, "", "to", r.period.to);
                    f.push(h, "", "buyers", r.buyers);
                    f.push(h, "", "revenue", r.revenue);
                    f.push(h, "", "top_buyers", r.top_buyers);
                    f.push(h, "", "top_revenue", r.top_revenue);
                    f.share(h, "", "top_share_of_revenue", r.top_share_of_revenue);
                    f.push(h, "", "buyers_for_80", r.buyers_for_80);
                    f.share(h, "", "share_of_buyers_for_80", r.share_of_buyers_for_80);
                    f.push(h, "", "super_users", r.super_users.len());
                    r.super_users.truncate(*top);
                    for u in &r.super_users {
                        f.push(
                            "super_user",
                            u.customer_id.as_str(),
                            "spend_365d",
                            u.spend_365d,
                        );
                    }
                    f.print()?;
                }
                Format::Table => {
                    println!(
                        "{}",
                        pick(
                            format!(
                                "Pareto over {} … {}: {}, revenue {}",
                                r.period.from,
                                r.period.to,
                                count(r.buyers, "buyer"),
                                yuan(r.revenue)
                            ),
                            format!(
                                "帕累托分析 {} … {}：{} 位买家，收入 {}",
                                r.period.from,
                                r.period.to,
                                thousands(r.buyers),
                                yuan(r.revenue)
                            )
                        )
                    );
                    let mut t = Table::new(["figure", "value"]);
                    t.row([
                        pick(
                            format!("revenue of the top 20% ({})", count(r.top_buyers, "buyer")),
                            format!("前 20% 买家（{} 位）的收入", thousands(r.top_buyers)),
                        ),
                        format!(
                            "{} ({})",
                            yuan(r.top_revenue),
                            percent(r.top_share_of_revenue)
                        ),
                    ]);
                    t.row([
                        tr("buyers making 80% of revenue"),
                        pick(
                            format!(
                                "{} ({} of buyers)",
                                thousands(r.buyers_for_80),
                                percent(r.share_of_buyers_for_80)
                            ),
                            format!(
                                "{}（占买家 {}）",
                                thousands(r.buyers_for_80),
                                percent(r.share_of_buyers_for_80)
                            ),
                        ),
                    ]);
                    t.row([
                        pick(
                            format!(
                                "super users (top 20% by spend over the 365 days to {})",
                                r.period.to
                            ),
                            format!("超级用户（截至 {} 的 365 天消费前 20%）", r.period.to),
                        ),
                        thousands(r.super_users.len() as u64),
                    ]);
                    print!("{}", t.render());
                    r.super_users.truncate(*top);
                    if !r.super_users.is_empty() {
                        println!();
                        let mut t = Table::new(["super user", "spend 365d"]);
                        for s in &r.super_users {
                            t.row([s.customer_id.to_string(), yuan(s.spend_365d)]);
                        }
                        print!("{}", t.render());
                    }
                }
            }
        }
        Report::Channels { from, to, format } => {
            let p = period(from.as_deref(), to.as_deref(), tenant, 365)?;
            let r = reports::channel_report(store, tenant, p)?;
            let name =
                |c: &Option<Channel>| c.as_ref().map_or("unknown", |c| c.as_str()).to_owned();
            match format {
                Format::Json => json(&r)?,
                Format::Csv => csv_rows(
                    &[
                        "channel",
                        "entrants",
                        "buyers",
                        "conversion",
                        "revenue",
                        "spend",
                        "cac",
                        "formula_clv",
                        "model_clv",
                        "clv_to_cac",
                        "payback_months",
                    ],
                    r.channels
                        .iter()
                        .map(|c| {
                            vec![
                                name(&c.channel),
                                c.entrants.to_string(),
                                c.buyers.to_string(),
                                opt(c.conversion, |x| format!("{x:.4}")),
                                c.revenue.to_string(),
                                c.spend.to_string(),
                                c.cac.map(|m| m.to_string()).unwrap_or_else(|| "n/a".into()),
                                c.formula_clv
                                    .clv
                                    .map(|m| m.to_string())
                                    .unwrap_or_else(|| "n/a".into()),
                                c.model_clv
                                    .map(|m| m.to_string())
                                    .unwrap_or_else(|| "n/a".into()),
                                opt(c.clv_to_cac, |x| format!("{x:.2}")),
                                opt(c.payback_months, |x| format!("{x:.1}")),
                            ]
                        })
                        .collect(),
                )?,
                Format::Table => {
                    println!(
                        "{}",
                        pick(
                            format!("Channels, customers who joined {} … {}", p.from, p.to),
                            format!("渠道，{} … {} 加入的客户", p.from, p.to)
                        )
                    );
                    let mut t = Table::new([
                        "channel",
                        "entrants",
                        "buyers",
                        "conversion",
                        "revenue",
                        "spend",
                        "CAC",
                        "formula CLV",
                        "model CLV",
                        "CLV/CAC",
                        "payback months",
                    ]);
                    for c in &r.channels {
                        t.row([
                            name(&c.channel),
                            thousands(c.entrants),
                            thousands(c.buyers),
                            percent(c.conversion),
                            yuan(c.revenue),
                            yuan(c.spend),
                            money(c.cac),
                            money(c.formula_clv.clv),
                            money(c.model_clv),
                            opt(c.clv_to_cac, |x| format!("{x:.2}")),
                            opt(c.payback_months, |x| format!("{x:.1}")),
                        ]);
                    }
                    print!("{}", t.render());
                    if super::lang::zh() {
                        println!(
                            "获客成本 = 本期涉及月份的投放花费 / 新增客户（用 siyu channel-cost set 记录）。公式 CLV：渠道每位买家在预期生命周期内的价值。模型 CLV：每位新增客户未来 52 周的价值（BG/NBD + Gamma-Gamma，月折现 1%）。CLV/获客成本与回本月数按新增客户计：有模型 CLV 时用它（否则转化率 × 公式 CLV），回本 = 获客成本 / (转化率 × 客单价 × 频次 / 12)。"
                        );
                    } else {
                        println!(
                            "CAC = spend of the months the period touches / entrants (record it with siyu channel-cost set). Formula CLV: per buyer of the channel, over their expected lifetime. Model CLV: per entrant, the next 52 weeks by BG/NBD + Gamma-Gamma at 1% a month. CLV/CAC and payback per entrant: the model CLV when there is one (else conversion × formula CLV), and CAC / (conversion × AOV × frequency / 12)."
                        );
                    }
                }
            }
        }
        Report::Referrals { as_of, top, format } => {
            let as_of = as_of_day(as_of.as_deref(), tenant)?;
            let r = reports::referral_report(store, tenant, as_of, *top)?;
            match format {
                Format::Json => json(&r)?,
                Format::Csv => {
                    let mut f = Figures::default();
                    let h = "referrals";
                    f.push(h, "", "as_of", r.as_of);
                    f.push(h, "", "customers", r.customers);
                    f.push(h, "", "sharers", r.sharers);
                    f.share(h, "", "share_rate", r.share_rate);
                    f.push(h, "", "shares", r.shares);
                    f.share(h, "", "invites_per_customer", r.invites_per_customer);
                    f.push(h, "", "referred", r.referred);
                    f.push(h, "", "referred_buyers", r.referred_buyers);
                    f.share(h, "", "invite_conversion", r.invite_conversion);
                    f.share(h, "", "k_factor", r.k_factor);
                    for (g, n) in r.generations.iter().enumerate() {
                        f.push("generation", &g.to_string(), "customers", n);
                    }
                    for t in &r.top_referrers {
                        let id = t.customer_id.as_str();
                        f.push("top_referrer", id, "referrals", t.referrals);
                        f.push("top_referrer", id, "buyers", t.buyers);
                        f.push("top_referrer", id, "revenue", t.revenue);
                    }
                    f.print()?;
                }
                Format::Table => {
                    println!(
                        "{}",
                        pick(
                            format!("Referrals as of {as_of}"),
                            format!("推荐裂变，截至 {as_of}")
                        )
                    );
                    let mut t = Table::new(["figure", "value"]);
                    t.row([tr("customers"), thousands(r.customers)]);
                    t.row([
                        tr("share rate (customers who shared)"),
                        format!("{} ({})", percent(r.share_rate), thousands(r.sharers)),
                    ]);
                    t.row([
                        tr("invites per customer (shares / customers)"),
                        opt(r.invites_per_customer, |x| format!("{x:.3}")),
                    ]);
                    t.row([
                        tr("invite conversion (referred / shares)"),
                        pick(
                            format!(
                                "{} ({} referred, {} of them bought)",
                                percent(r.invite_conversion),
                                thousands(r.referred),
                                thousands(r.referred_buyers)
                            ),
                            format!(
                                "{}（被推荐 {} 人，其中 {} 人购买）",
                                percent(r.invite_conversion),
                                thousands(r.referred),
                                thousands(r.referred_buyers)
                            ),
                        ),
                    ]);
                    t.row([tr("K-factor"), opt(r.k_factor, |x| format!("{x:.3}"))]);
                    t.row([
                        tr("generations"),
                        r.generations
                            .iter()
                            .enumerate()
                            .map(|(g, n)| format!("{g}: {}", thousands(*n)))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ]);
                    print!("{}", t.render());
                    if !r.top_referrers.is_empty() {
                        println!();
                        let mut t = Table::new([
                            "top referrer",
                            "referrals",
                            "who bought",
                            "their revenue",
                        ]);
                        for x in &r.top_referrers {
                            t.row([
                                x.customer_id.to_string(),
                                thousands(x.referrals),
                                thousands(x.buyers),
                                yuan(x.revenue),
                            ]);
                        }
                        print!("{}", t.render());
                    }
                }
            }
        }
        Report::Clv { as_of, by, format } => {
            let as_of = as_of_day(as_of.as_deref(), tenant)?;
            let r = reports::formula_clv_report(store, tenant, as_of, by.map(By::from))?;
            match format {
                Format::Json => json(&r)?,
                Format::Csv => csv_rows(
                    &[
                        "slice",
                        "buyers",
                        "orders",
                        "gmv",
                        "aov",
                        "frequency",
                        "churn",
                        "lifetime_years",
                        "clv",
                    ],
                    r.iter()
                        .map(|s| {
                            let c = &s.clv;
                            vec![
                                s.slice.clone(),
                                c.buyers.to_string(),
                                c.orders.to_string(),
                                c.gmv.to_string(),
                                c.aov.map(|m| m.to_string()).unwrap_or_else(|| "n/a".into()),
                                opt(c.frequency, |x| format!("{x:.4}")),
                                opt(c.churn, |x| format!("{x:.4}")),
                                opt(c.lifetime_years, |x| format!("{x:.3}")),
                                c.clv.map(|m| m.to_string()).unwrap_or_else(|| "n/a".into()),
                            ]
                        })
                        .collect(),
                )?,
                Format::Table => {
                    println!(
                        "{}",
                        pick(
                            format!(
                                "Formula CLV as of {as_of}: AOV × purchases per buyer per year × lifetime (1 / churn years), over the 365 days to then"
                            ),
                            format!(
                                "公式 CLV，截至 {as_of}：客单价 × 每位买家年购买次数 × 生命周期（1 / 流失率，年），按截至当日的 365 天计"
                            )
                        )
                    );
                    let mut t = Table::new([
                        "slice",
                        "buyers",
                        "AOV",
                        "frequency",
                        "churn",
                        "lifetime (years)",
                        "CLV",
                    ]);
                    for s in &r {
                        let c = &s.clv;
                        t.row([
                            super::lang::slice(&s.slice),
                            thousands(c.buyers),
                            money(c.aov),
                            opt(c.frequency, |x| format!("{x:.2}")),
                            percent(c.churn),
                            opt(c.lifetime_years, |x| format!("{x:.2}")),
                            money(c.clv),
                        ]);
                    }
                    print!("{}", t.render());
                    if r.iter().any(|s| s.clv.clv.is_none()) {
                        println!(
                            "{}",
                            tr(
                                "n/a: AOV and frequency need buyers in the 365 days; churn needs buyers in the 365 days before; lifetime and CLV need churn above 0."
                            )
                        );
                        if matches!(by, Some(ByArg::Stage)) {
                            println!(
                                "{}",
                                tr(
                                    "By stage, a stage is where a customer stands on the as-of day, so some stages lack what a figure needs: prospects never bought (no AOV or frequency); a stage whose buyers all began within the 365 days (first purchasers always; in a young shop repeat, VIP and at-risk customers too) has no buyers the year before, so no churn; and a stage none of whose earlier buyers lapsed has churn 0, so no finite lifetime or CLV."
                                )
                            );
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// Refuses a channel no customer came from and that is neither well known nor costed
/// before, naming the closest one: a typo would otherwise cost a channel no one is in.
pub fn known_channel(
    store: &mut dyn Store,
    tenant: &Tenant,
    channel: &Channel,
) -> anyhow::Result<()> {
    let mut known: std::collections::BTreeSet<String> = siyu_core::channel::KNOWN
        .iter()
        .map(|c| (*c).to_owned())
        .collect();
    store
        .scan_customers(tenant, &mut |c| {
            if let Some(ch) = c.channel {
                known.insert(ch.as_str().to_owned());
            }
        })
        .context("reading customers")?;
    for (c, _, _) in store.channel_costs(tenant)? {
        known.insert(c.as_str().to_owned());
    }
    if known.contains(channel.as_str()) {
        return Ok(());
    }
    let hint = match siyu_core::channel::closest(channel.as_str(), known.iter().map(String::as_str))
    {
        Some(c) => format!("did you mean {c}? "),
        None => String::new(),
    };
    anyhow::bail!(
        "no customer came from a channel '{channel}' and it is not a well-known one: {hint}(--new records it anyway)"
    )
}

fn ratio_money(a: Money, b: Money) -> Option<f64> {
    (b.fen() != 0).then(|| a.fen() as f64 / b.fen() as f64)
}

pub fn run_channel_cost(
    store: &mut dyn Store,
    tenant: &Tenant,
    command: &ChannelCostCommand,
) -> anyhow::Result<()> {
    match command {
        ChannelCostCommand::Set {
            channel,
            month,
            amount,
            new,
        } => {
            let channel = Channel::parse(channel).map_err(|e| anyhow!("channel: {e}"))?;
            if !new {
                known_channel(store, tenant, &channel)?;
            }
            let month = Month::parse(month).map_err(|e| anyhow!("month: {e}"))?;
            let amount = Money::parse_yuan(amount).map_err(|e| anyhow!("amount: {e}"))?;
            store.set_channel_cost(tenant, &channel, month, amount)?;
            println!(
                "{}",
                pick(
                    format!("{} cost {} in {month}", channel.as_str(), yuan(amount)),
                    format!("{} 在 {month} 的花费为 {}", channel.as_str(), yuan(amount))
                )
            );
        }
        ChannelCostCommand::List { format } => {
            let costs = store.channel_costs(tenant)?;
            match format {
                Format::Json => {
                    #[derive(Serialize)]
                    struct Line {
                        channel: String,
                        month: String,
                        amount: Money,
                    }
                    let lines: Vec<Line> = costs
                        .iter()
                        .map(|(c, m, a)| Line {
                            channel: c.as_str().to_owned(),
                            month: m.to_string(),
                            amount: *a,
                        })
                        .collect();
                    json(&lines)?;
                }
                Format::Csv => csv_rows(
                    &["channel", "month", "amount"],
                    costs
                        .iter()
                        .map(|(c, m, a)| vec![c.as_str().to_owned(), m.to_string(), a.to_string()])
                        .collect(),
                )?,
                Format::Table => {
                    let mut t = Table::new(["channel", "month", "cost"]);
                    for (c, m, a) in &costs {
                        t.row([c.as_str().to_owned(), m.to_string(), yuan(*a)]);
                    }
                    print!("{}", t.render());
                }
            }
        }
    }
    Ok(())
}
