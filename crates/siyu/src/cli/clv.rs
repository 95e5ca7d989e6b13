//! `siyu clv fit|predict|summary`: lifetime value by model (BG/NBD and Gamma-Gamma), from
//! the database or straight from an orders CSV.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use jiff::civil::Date;
use serde::Serialize;

use siyu_core::clv::value::{HOLDOUT_BUCKETS, Horizon, Prediction, WEEKS_PER_MONTH};
use siyu_core::clv::{CalibrationSummary, CustomerSummary, History};
use siyu_core::{Money, TenantZone};

use super::output::{Format, Table, count, thousands, yuan};
use super::{Cli, connect};
use crate::fastcsv::clv as files;
use crate::service::clv::{
    self as service, HorizonError, Models, ModelsJson, PredictionLine, finite,
};

#[derive(Debug, Subcommand)]
pub enum ClvCommand {
    /// Fit the BG/NBD model (purchases, drop-out) and the Gamma-Gamma model (spend per
    /// purchase) by maximum likelihood; print their parameters (time in weeks, spend in
    /// yuan) and log-likelihoods.
    Fit(FitArgs),
    /// Per customer: P(alive), expected purchases over the horizon, expected spend per
    /// purchase and the discounted CLV; with --holdout-end, predicted against actual
    /// repeat purchases after the calibration end.
    Predict(PredictArgs),
    /// Write the calibration summary the models are fitted on as CSV:
    /// customer_id,frequency,recency,T,monetary_value (times in weeks, spend in yuan).
    Summary(SummaryArgs),
}

/// Where the orders come from and where the calibration period ends.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// The last day of the calibration period (YYYY-MM-DD, tenant time); default: the day
    /// of the last paid order.
    #[arg(long, value_name = "D")]
    pub calibration_end: Option<String>,
    /// Compute straight from an orders CSV without the database; the same answer as
    /// importing the file and running the command on the database.
    #[arg(long, value_name = "FILE")]
    pub orders: Option<PathBuf>,
    /// With --orders: the time zone of times without an offset, and of the days.
    #[arg(long, requires = "orders", default_value = siyu_core::time::DEFAULT_TIME_ZONE)]
    pub zone: String,
    /// With --orders: skip columns that are not part of the format instead of refusing the file.
    #[arg(long, requires = "orders")]
    pub ignore_unknown: bool,
}

#[derive(Debug, Args)]
pub struct FitArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Fit on a calibration summary CSV (as `siyu clv summary` writes it) instead of orders.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["orders", "calibration_end"])]
    pub summary: Option<PathBuf>,
    /// Kept with the model fitted on the database (as the tenant's model, that the API
    /// predicts with): weeks to look ahead.
    #[arg(long, value_name = "N", default_value_t = 52.0)]
    pub horizon_weeks: f64,
    /// Kept with the model fitted on the database: the discount rate per month for the CLV.
    #[arg(long, value_name = "R", default_value_t = 0.01)]
    pub discount_monthly: f64,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Weeks to look ahead; the CLV sums whole months of 4.345 weeks (52 weeks: 12 months).
    #[arg(long, value_name = "N", default_value_t = 52.0)]
    pub horizon_weeks: f64,
    /// Discount rate per month for the CLV (0.01: 1% a month).
    #[arg(long, value_name = "R", default_value_t = 0.01)]
    pub discount_monthly: f64,
    /// Check the model on the period after the calibration end up to this day: mean
    /// predicted against actual repeat purchases per calibration frequency (0, 1, …, 7+).
    #[arg(long, value_name = "D", requires = "calibration_end")]
    pub holdout_end: Option<String>,
    /// Customers in the table, highest CLV first (csv and json list every customer).
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// The CSV file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

pub fn run(cli: &Cli, command: &ClvCommand) -> anyhow::Result<()> {
    match command {
        ClvCommand::Fit(args) => run_fit(cli, args),
        ClvCommand::Predict(args) => run_predict(cli, args),
        ClvCommand::Summary(args) => {
            let (summary, source) = load(cli, &args.data, None)?;
            let file = std::fs::File::create(&args.out)
                .with_context(|| format!("creating {}", args.out.display()))?;
            files::write_summary_csv(BufWriter::new(file), &summary.customers)
                .with_context(|| format!("writing {}", args.out.display()))?;
            let n = summary.customers.len();
            println!(
                "wrote the calibration summary of {} customer{} as of {} ({source}) to {}",
                thousands(n as u64),
                if n == 1 { "" } else { "s" },
                summary.calibration_end,
                args.out.display()
            );
            Ok(())
        }
    }
}

/// `--calibration-end`, read.
fn calibration_end(data: &DataArgs) -> anyhow::Result<Option<Date>> {
    data.calibration_end
        .as_deref()
        .map(|t| TenantZone::parse_day(t).context("--calibration-end"))
        .transpose()
}

/// The calibration summary and a line naming where it came from.
fn load(
    cli: &Cli,
    data: &DataArgs,
    holdout_end: Option<&str>,
) -> anyhow::Result<(CalibrationSummary, String)> {
    let day = |text: Option<&String>, flag: &str| {
        text.map(|t| TenantZone::parse_day(t).with_context(|| flag.to_owned()))
            .transpose()
    };
    let calibration_end = calibration_end(data)?;
    let holdout_end = day(holdout_end.map(str::to_owned).as_ref(), "--holdout-end")?;
    let (days, source) = match &data.orders {
        Some(path) => {
            let zone = TenantZone::named(&data.zone).context("--zone")?;
            let days = files::purchase_days_from_file(path, &zone, data.ignore_unknown)
                .with_context(|| format!("reading orders from {}", path.display()))?;
            (days, format!("{} ({})", path.display(), zone.name()))
        }
        None => {
            let mut ctx = connect(cli)?;
            let days = service::purchase_days_from_store(ctx.store.as_mut(), &ctx.tenant)?;
            let source = format!("tenant '{}' ({})", ctx.tenant.name, ctx.tenant.zone.name());
            (days, source)
        }
    };
    let summary = service::summarise(&days, calibration_end, holdout_end)
        .with_context(|| format!("summarising the orders of {source}"))?;
    Ok((summary, source))
}

/// A number with `digits` decimals, or n/a when it is not one.
fn fixed(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "n/a".to_owned()
    }
}

fn fixed_or_na(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| fixed(v, digits))
}

/// A parameter with enough significant digits to reproduce the fit's figures.
fn significant(v: f64) -> String {
    if !v.is_finite() {
        "n/a".to_owned()
    } else if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e7) {
        format!("{v:.6e}")
    } else {
        let int_digits = (v.abs().log10().floor() as i32 + 1).max(1) as usize;
        format!("{v:.*}", 7usize.saturating_sub(int_digits).max(1))
    }
}

fn yuan_of(v: f64) -> String {
    if v.is_finite() && v.abs() < 9e15 {
        yuan(Money::from_fen((v * 100.0).round() as i64))
    } else {
        "n/a".to_owned()
    }
}

/// Says on stderr why the spend model is missing (the figures that need it are n/a).
fn warn_spend(models: &Models) {
    if let Err(e) = &models.gamma_gamma {
        eprintln!("note: {e}; expected spend and CLV are n/a");
    }
}

fn finish(written: io::Result<()>) -> anyhow::Result<()> {
    match written {
        // A reader that has seen enough (`| head`) is not a failure.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// The horizon of `--horizon-weeks` and `--discount-monthly`, a refusal naming the flag.
fn horizon(weeks: f64, discount_monthly: f64) -> anyhow::Result<Horizon> {
    service::horizon(weeks, discount_monthly).map_err(|e| {
        let flag = match e {
            HorizonError::Weeks(_) => "--horizon-weeks",
            HorizonError::Discount(_) => "--discount-monthly",
        };
        anyhow::anyhow!("{flag}: {e}")
    })
}

fn run_fit(cli: &Cli, args: &FitArgs) -> anyhow::Result<()> {
    let horizon = horizon(args.horizon_weeks, args.discount_monthly)?;
    let (models, heading) = match (&args.summary, &args.data.orders) {
        (Some(path), _) => {
            let customers = files::read_summary_csv(path)
                .with_context(|| format!("reading the summary {}", path.display()))?;
            (
                service::fit(&customers)?,
                format!("the summary {}", path.display()),
            )
        }
        (None, Some(_)) => {
            let (summary, source) = load(cli, &args.data, None)?;
            let heading = format!("{source}, calibration end {}", summary.calibration_end);
            let customers: Vec<History> = summary.customers.iter().map(|c| c.history).collect();
            (service::fit(&customers)?, heading)
        }
        (None, None) => {
            let calibration_end = calibration_end(&args.data)?;
            let mut ctx = connect(cli)?;
            let fitted =
                service::fit_tenant(ctx.store.as_mut(), &ctx.tenant, calibration_end, horizon)?;
            let end = fitted.stored.calibration_end;
            eprintln!(
                "kept as the model of tenant '{}' (calibration end {end}); the API predicts with it",
                ctx.tenant.name
            );
            let heading = format!(
                "tenant '{}' ({}), calibration end {end}",
                ctx.tenant.name,
                ctx.tenant.zone.name()
            );
            (fitted.models, heading)
        }
    };
    warn_spend(&models);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let written = match args.format {
        Format::Json => serde_json::to_writer_pretty(&mut out, &ModelsJson::of(&models))
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out)),
        Format::Csv => write_fit_csv(&mut out, &models),
        Format::Table => write_fit_table(&mut out, &models, &heading),
    }
    .and_then(|()| out.flush());
    finish(written)
}

fn write_fit_csv(out: &mut impl Write, m: &Models) -> io::Result<()> {
    writeln!(out, "model,parameter,value")?;
    let b = &m.bgnbd;
    for (name, v) in [
        ("r", b.params.r),
        ("alpha", b.params.alpha),
        ("a", b.params.a),
        ("b", b.params.b),
        ("log_likelihood", b.log_likelihood),
        ("customers", b.customers as f64),
    ] {
        writeln!(
            out,
            "bgnbd,{name},{}",
            if v.is_finite() {
                v.to_string()
            } else {
                "n/a".to_owned()
            }
        )?;
    }
    match &m.gamma_gamma {
        Ok(g) => {
            for (name, v) in [
                ("p", g.params.p),
                ("q", g.params.q),
                ("v", g.params.v),
                ("log_likelihood", g.log_likelihood),
                ("customers", g.customers as f64),
            ] {
                writeln!(
                    out,
                    "gamma_gamma,{name},{}",
                    if v.is_finite() {
                        v.to_string()
                    } else {
                        "n/a".to_owned()
                    }
                )?;
            }
        }
        Err(_) => {
            for name in ["p", "q", "v", "log_likelihood", "customers"] {
                writeln!(out, "gamma_gamma,{name},n/a")?;
            }
        }
    }
    Ok(())
}

fn write_fit_table(out: &mut impl Write, m: &Models, heading: &str) -> io::Result<()> {
    let b = &m.bgnbd;
    writeln!(
        out,
        "Lifetime value models — {heading}; time in weeks, spend in yuan"
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "BG/NBD (purchases while alive ~ Poisson(λ), λ ~ Gamma(r, alpha); drop-out after a purchase p ~ Beta(a, b))"
    )?;
    writeln!(
        out,
        "{}, log-likelihood {}, {}",
        count(b.customers as u64, "customer"),
        fixed(b.log_likelihood, 4),
        count(b.iterations as u64, "Newton iteration")
    )?;
    let se = b.standard_errors;
    let mut t = Table::new(["parameter", "estimate", "std. error"]);
    for (name, v, e) in [
        ("r", b.params.r, se.map(|s| s.r)),
        ("alpha", b.params.alpha, se.map(|s| s.alpha)),
        ("a", b.params.a, se.map(|s| s.a)),
        ("b", b.params.b, se.map(|s| s.b)),
    ] {
        t.row([
            name.to_owned(),
            significant(v),
            e.map_or_else(|| "n/a".to_owned(), significant),
        ]);
    }
    out.write_all(t.render().as_bytes())?;
    let p = b.params;
    writeln!(
        out,
        "mean purchase rate r/alpha = {} a week ({} a year); mean drop-out chance a/(a+b) = {}",
        fixed(p.r / p.alpha, 4),
        fixed(52.0 * p.r / p.alpha, 2),
        fixed(p.a / (p.a + p.b), 4)
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Gamma-Gamma (spend per purchase ~ Gamma(p, ν), ν ~ Gamma(q, v)), fitted on customers with repeat purchases"
    )?;
    match &m.gamma_gamma {
        Ok(g) => {
            writeln!(
                out,
                "{}, log-likelihood {}, {}",
                count(g.customers as u64, "customer"),
                fixed(g.log_likelihood, 4),
                count(g.iterations as u64, "Newton iteration")
            )?;
            let se = g.standard_errors;
            let mut t = Table::new(["parameter", "estimate", "std. error"]);
            for (name, v, e) in [
                ("p", g.params.p, se.map(|s| s.p)),
                ("q", g.params.q, se.map(|s| s.q)),
                ("v", g.params.v, se.map(|s| s.v)),
            ] {
                t.row([
                    name.to_owned(),
                    significant(v),
                    e.map_or_else(|| "n/a".to_owned(), significant),
                ]);
            }
            out.write_all(t.render().as_bytes())?;
            writeln!(
                out,
                "mean spend per purchase p·v/(q−1) = {}",
                g.params
                    .mean_spend()
                    .map_or_else(|| "n/a (q ≤ 1)".to_owned(), yuan_of)
            )?;
        }
        Err(e) => {
            let mut t = Table::new(["parameter", "estimate", "std. error"]);
            for name in ["p", "q", "v"] {
                t.row([name, "n/a", "n/a"]);
            }
            out.write_all(t.render().as_bytes())?;
            writeln!(out, "not fitted: {e}")?;
        }
    }
    Ok(())
}

fn run_predict(cli: &Cli, args: &PredictArgs) -> anyhow::Result<()> {
    let horizon = horizon(args.horizon_weeks, args.discount_monthly)?;
    let (summary, source) = load(cli, &args.data, args.holdout_end.as_deref())?;
    let histories: Vec<History> = summary.customers.iter().map(|c| c.history).collect();
    let models = service::fit(&histories)?;
    warn_spend(&models);
    let predictions = service::predict(&models, &summary, &horizon);
    let report = Report {
        summary: &summary,
        source: &source,
        models: &models,
        horizon,
        predictions: &predictions,
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let written = match args.format {
        Format::Table => write_predict_table(&mut out, &report, args.top),
        Format::Csv => write_predict_csv(&mut out, &report),
        Format::Json => write_predict_json(&mut out, &report),
    }
    .and_then(|()| out.flush());
    finish(written)
}

struct Report<'a> {
    summary: &'a CalibrationSummary,
    source: &'a str,
    models: &'a Models,
    horizon: Horizon,
    predictions: &'a [Prediction],
}

impl Report<'_> {
    /// Each customer's predicted repeat purchases in the holdout period.
    fn holdout_predicted(&self, c: &CustomerSummary) -> Option<f64> {
        let weeks = self.summary.holdout_weeks()?;
        let h = &c.history;
        Some(self.models.bgnbd.params.conditional_expected_purchases(
            weeks,
            h.frequency,
            h.recency,
            h.age,
        ))
    }
}

fn write_predict_table(out: &mut impl Write, r: &Report, top: usize) -> io::Result<()> {
    let s = r.summary;
    let months = r.horizon.months();
    writeln!(
        out,
        "Lifetime value by model — {}, calibration end {}: {}",
        r.source,
        s.calibration_end,
        count(s.customers.len() as u64, "customer")
    )?;
    writeln!(
        out,
        "Horizon {} weeks; CLV over {months} months of {WEEKS_PER_MONTH} weeks, discounted {}% a month",
        fixed(r.horizon.weeks, 1),
        fixed(r.horizon.discount_monthly * 100.0, 2)
    )?;
    let b = r.models.bgnbd.params;
    let spend = match &r.models.gamma_gamma {
        Ok(g) => format!(
            "Gamma-Gamma p = {}, q = {}, v = {}",
            significant(g.params.p),
            significant(g.params.q),
            significant(g.params.v)
        ),
        Err(_) => "Gamma-Gamma not fitted".to_owned(),
    };
    writeln!(
        out,
        "BG/NBD r = {}, alpha = {}, a = {}, b = {}; {spend}",
        significant(b.r),
        significant(b.alpha),
        significant(b.a),
        significant(b.b)
    )?;
    writeln!(out)?;
    let n = r.predictions.len().max(1) as f64;
    let purchases: f64 = r.predictions.iter().map(|p| p.expected_purchases).sum();
    let alive: f64 = r.predictions.iter().map(|p| p.p_alive).sum();
    let likely = r.predictions.iter().filter(|p| p.p_alive >= 0.5).count();
    let values: Option<f64> = r.predictions.iter().map(|p| p.clv).sum();
    let mut t = Table::new(["figure", "value"]);
    t.row([
        "expected repeat purchases, all customers".to_owned(),
        fixed(purchases, 1),
    ]);
    t.row([
        "expected repeat purchases per customer".to_owned(),
        fixed(purchases / n, 3),
    ]);
    t.row(["mean P(alive)".to_owned(), fixed(alive / n, 3)]);
    t.row([
        "customers with P(alive) ≥ 0.5".to_owned(),
        thousands(likely as u64),
    ]);
    t.row([
        "discounted CLV, all customers".to_owned(),
        values.map_or_else(|| "n/a".to_owned(), yuan_of),
    ]);
    t.row([
        "discounted CLV per customer".to_owned(),
        values.map_or_else(|| "n/a".to_owned(), |v| yuan_of(v / n)),
    ]);
    out.write_all(t.render().as_bytes())?;
    if top > 0 {
        writeln!(out)?;
        writeln!(
            out,
            "Top {top} customers by CLV (--format csv lists everyone)"
        )?;
        let mut order: Vec<usize> = (0..r.predictions.len()).collect();
        let key = |i: usize| {
            let p = &r.predictions[i];
            p.clv.unwrap_or(p.expected_purchases)
        };
        order.sort_by(|&i, &j| key(j).total_cmp(&key(i)).then(i.cmp(&j)));
        let mut t = Table::new([
            "customer",
            "x",
            "t_x (wk)",
            "T (wk)",
            "P(alive)",
            "purchases",
            "spend",
            "CLV",
        ]);
        for &i in order.iter().take(top) {
            let (c, p) = (&s.customers[i], &r.predictions[i]);
            let h = &c.history;
            t.row([
                c.customer_id.to_string(),
                h.frequency.to_string(),
                fixed(h.recency, 1),
                fixed(h.age, 1),
                fixed(p.p_alive, 3),
                fixed(p.expected_purchases, 3),
                p.expected_spend.map_or_else(|| "n/a".to_owned(), yuan_of),
                p.clv.map_or_else(|| "n/a".to_owned(), yuan_of),
            ]);
        }
        out.write_all(t.render().as_bytes())?;
    }
    if let (Some(end), Some(buckets)) = (s.holdout_end, service::holdout(r.models, s)) {
        writeln!(out)?;
        writeln!(
            out,
            "Holdout check: repeat purchase days from {} to {end} ({} weeks), mean per customer by calibration frequency",
            s.calibration_end
                .tomorrow()
                .map_or_else(|_| "?".to_owned(), |d| d.to_string()),
            fixed(s.holdout_weeks().unwrap_or(f64::NAN), 1)
        )?;
        let mut t = Table::new(["frequency", "customers", "predicted", "actual"]);
        let (mut n, mut predicted, mut actual) = (0usize, 0.0, 0.0);
        for b in &buckets {
            t.row([
                if b.and_more {
                    format!("{}+", b.frequency)
                } else {
                    b.frequency.to_string()
                },
                thousands(b.customers as u64),
                fixed_or_na(b.predicted, 3),
                fixed_or_na(b.actual, 3),
            ]);
            n += b.customers;
            predicted += b.predicted.unwrap_or(0.0) * b.customers as f64;
            actual += b.actual.unwrap_or(0.0) * b.customers as f64;
        }
        let mean = |v: f64| (n > 0).then(|| v / n as f64);
        t.row([
            "all".to_owned(),
            thousands(n as u64),
            fixed_or_na(mean(predicted), 3),
            fixed_or_na(mean(actual), 3),
        ]);
        out.write_all(t.render().as_bytes())?;
    }
    Ok(())
}

fn csv_field(id: &str) -> String {
    if id.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", id.replace('"', "\"\""))
    } else {
        id.to_owned()
    }
}

fn write_predict_csv(out: &mut impl Write, r: &Report) -> io::Result<()> {
    let holdout = r.summary.holdout_end.is_some();
    write!(
        out,
        "customer_id,frequency,recency,T,monetary_value,p_alive,expected_purchases,expected_spend,clv"
    )?;
    if holdout {
        write!(out, ",holdout_predicted,holdout_actual")?;
    }
    writeln!(out)?;
    for (c, p) in r.summary.customers.iter().zip(r.predictions) {
        let h = &c.history;
        write!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            csv_field(c.customer_id.as_str()),
            h.frequency,
            fixed(h.recency, 6),
            fixed(h.age, 6),
            fixed(h.monetary_value, 2),
            fixed(p.p_alive, 6),
            fixed(p.expected_purchases, 6),
            fixed_or_na(p.expected_spend, 2),
            fixed_or_na(p.clv, 2),
        )?;
        if holdout {
            write!(
                out,
                ",{},{}",
                fixed_or_na(r.holdout_predicted(c), 6),
                c.holdout_frequency
            )?;
        }
        writeln!(out)?;
    }
    Ok(())
}

#[derive(Serialize)]
struct JsonBucket {
    frequency: String,
    customers: usize,
    predicted: Option<f64>,
    actual: Option<f64>,
}

#[derive(Serialize)]
struct JsonPredict<'a> {
    calibration_end: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    holdout_end: Option<String>,
    horizon_weeks: f64,
    months: u32,
    discount_monthly: f64,
    #[serde(flatten)]
    models: ModelsJson,
    customers: Vec<PredictionLine<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    holdout: Option<Vec<JsonBucket>>,
}

fn write_predict_json(out: &mut impl Write, r: &Report) -> io::Result<()> {
    let s = r.summary;
    let holdout = service::holdout(r.models, s).map(|buckets| {
        buckets
            .iter()
            .map(|b| JsonBucket {
                frequency: if b.frequency == HOLDOUT_BUCKETS {
                    format!("{}+", b.frequency)
                } else {
                    b.frequency.to_string()
                },
                customers: b.customers,
                predicted: b.predicted.and_then(finite),
                actual: b.actual.and_then(finite),
            })
            .collect()
    });
    let json = JsonPredict {
        calibration_end: s.calibration_end.to_string(),
        holdout_end: s.holdout_end.map(|d| d.to_string()),
        horizon_weeks: r.horizon.weeks,
        months: r.horizon.months(),
        discount_monthly: r.horizon.discount_monthly,
        models: ModelsJson::of(r.models),
        customers: s
            .customers
            .iter()
            .zip(r.predictions)
            .map(|(c, p)| PredictionLine {
                holdout_predicted: r.holdout_predicted(c).and_then(finite),
                holdout_actual: s.holdout_end.map(|_| c.holdout_frequency),
                ..PredictionLine::new(c, p)
            })
            .collect(),
        holdout,
    };
    serde_json::to_writer_pretty(&mut *out, &json)?;
    writeln!(out)
}
