//! `siyu clv` and `/v1/clv`: the calibration summary from the store or an orders file (or
//! a summary file written earlier), the model fit, predictions and the holdout check; and
//! the tenant's kept model, fitted on its stored orders, that the API predicts with one
//! customer at a time. The figures are computed in `siyu_core::clv`; this module gathers
//! the data and hands it over.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, anyhow};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use siyu_core::clv::value::{self, HoldoutBucket, Horizon, Prediction};
use siyu_core::clv::{
    BgNbd, BgNbdFit, CalibrationSummary, ClvError, CustomerSummary, GammaGamma, GammaGammaFit,
    History, PurchaseDays,
};
use siyu_core::import::{Columns, Kind, Record, RecordSource, parse_order};
use siyu_core::{CustomerId, OrderFact, OrderId, TenantZone, Timestamp};
use siyu_store::{Store, Tenant};

use super::import::{InvalidFile, MAX_LISTED, source_error};

/// Paid purchase days of the tenant's stored orders.
pub fn purchase_days_from_store(
    store: &mut dyn Store,
    tenant: &Tenant,
) -> anyhow::Result<PurchaseDays> {
    let mut days = PurchaseDays::new(&tenant.zone);
    store
        .scan_order_facts(tenant, &mut |order| days.add(order))
        .context("reading orders")?;
    Ok(days)
}

/// Paid purchase days straight from an orders CSV, read by the importer's own reader with
/// naive times in `zone`: what importing the file into an empty tenant of that zone would
/// store. A file with any invalid row is refused with its problems listed; an order id
/// that appears twice counts as its last row (a re-import updates the order).
pub fn purchase_days_from_file(
    path: &Path,
    zone: &TenantZone,
    ignore_unknown: bool,
) -> anyhow::Result<PurchaseDays> {
    let open = || File::open(path).with_context(|| format!("opening {}", path.display()));
    let mut source = RecordSource::csv(open()?).map_err(|e| source_error(path, e))?;
    let columns = Columns::from_header(Kind::Orders, source.header(), ignore_unknown)
        .map_err(|e| anyhow!("{}:1: header: {e}", path.display()))?;
    let mut orders: HashMap<OrderId, OrderFact> = HashMap::new();
    let mut record = Record::default();
    let (mut rows, mut invalid) = (0u64, 0u64);
    let mut listed = Vec::new();
    while let Some(early) = source
        .next_record(&mut record)
        .map_err(|e| source_error(path, e))?
    {
        rows += 1;
        let parsed = match early {
            Some(problem) => Err(vec![problem]),
            None => parse_order(&columns, &record, zone),
        };
        match parsed {
            Ok(order) => {
                // The store keeps microseconds.
                let at = Timestamp::from_microsecond(order.ordered_at.as_microsecond())
                    .unwrap_or(order.ordered_at);
                orders.insert(
                    order.id,
                    OrderFact {
                        customer_id: order.customer_id,
                        ordered_at: at,
                        amount: order.amount,
                        status: order.status,
                    },
                );
            }
            Err(problems) => {
                invalid += 1;
                for p in problems {
                    if listed.len() < MAX_LISTED {
                        listed.push(format!("{}:{}: {p}", path.display(), record.line));
                    }
                }
            }
        }
    }
    if rows == 0 {
        anyhow::bail!("{}: no rows after the header", path.display());
    }
    if invalid > 0 {
        return Err(InvalidFile {
            file: path.to_owned(),
            listed,
            rows_with_problems: invalid,
            not_done: "nothing was fitted",
        }
        .into());
    }
    let mut days = PurchaseDays::new(zone);
    for order in orders.into_values() {
        days.add(order);
    }
    Ok(days)
}

/// The summary as of `calibration_end` (default: the day of the last paid order).
pub fn summarise(
    days: &PurchaseDays,
    calibration_end: Option<Date>,
    holdout_end: Option<Date>,
) -> Result<CalibrationSummary, ClvError> {
    let end = match calibration_end {
        Some(day) => day,
        None => days.last_day().ok_or(ClvError::NoCustomers)?,
    };
    let summary = days.summary(end, holdout_end)?;
    if summary.customers.is_empty() {
        return Err(ClvError::NoCustomers);
    }
    Ok(summary)
}

/// The columns of the summary CSV, in order.
pub const SUMMARY_COLUMNS: [&str; 5] =
    ["customer_id", "frequency", "recency", "T", "monetary_value"];

/// `customer_id,frequency,recency,T,monetary_value`, by customer id; times in weeks and
/// spend in yuan, every number written so that it reads back to the same double.
pub fn write_summary_csv(out: impl Write, customers: &[CustomerSummary]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(SUMMARY_COLUMNS)?;
    for c in customers {
        let h = &c.history;
        w.write_record([
            c.customer_id.as_str(),
            &h.frequency.to_string(),
            &h.recency.to_string(),
            &h.age.to_string(),
            &h.monetary_value.to_string(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// Reads a summary CSV (as `write_summary_csv` writes it, or `lifetimes`' summary with the
/// same columns; extra columns are ignored). Every row is checked; a file with a bad row
/// is refused with its problems listed as `FILE:LINE: reason`. The models need no ids, so
/// the ids are checked and left behind. A file without quotes (as siyu writes it) is split
/// in two at a line end and read on two threads; one with quotes goes through the csv
/// reader.
pub fn read_summary_csv(path: &Path) -> anyhow::Result<Vec<History>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| anyhow!("{}: not UTF-8 text ({e})", path.display()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rows: Vec<(u64, Vec<String>)> = if text.contains('"') {
        quoted_rows(path, text)?
    } else {
        Vec::new()
    };
    let mut lines = text.split('\n');
    let header: Vec<String> = if rows.is_empty() {
        lines
            .next()
            .unwrap_or("")
            .trim_end_matches('\r')
            .split(',')
            .map(str::to_owned)
            .collect()
    } else {
        rows[0].1.clone()
    };
    let at = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| anyhow!("{}:1: header: no column '{name}'", path.display()))
    };
    let columns = [
        at("customer_id")?,
        at("frequency")?,
        at("recency")?,
        at("T")?,
        at("monetary_value")?,
    ];
    let parsed: Vec<Result<History, String>> = if rows.is_empty() {
        // The rows after the header, in two halves split at a line end.
        let body = &text[text.find('\n').map_or(text.len(), |n| n + 1)..];
        let middle = body[body.len() / 2..]
            .find('\n')
            .map_or(body.len(), |n| body.len() / 2 + n + 1);
        let (first, second) = body.split_at(middle);
        let second_line = 2 + first.bytes().filter(|&b| b == b'\n').count() as u64;
        // Which of the five fields each column of the file is (NONE for the others).
        let mut slot_of = vec![NONE; header.len()];
        for (slot, &column) in columns.iter().enumerate() {
            slot_of[column] = slot as u8;
        }
        let parse_half = |half: &str, first_line: u64| summary_rows(half, first_line, &slot_of);
        std::thread::scope(|scope| {
            let later = scope.spawn(|| parse_half(second, second_line));
            let mut out = parse_half(first, 2);
            out.extend(
                later
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
            out
        })
    } else {
        rows[1..]
            .iter()
            .filter(|(_, fields)| fields.iter().any(|f| !f.trim().is_empty()))
            .map(|(n, fields)| {
                let mut picked = [""; 5];
                for (slot, &at) in picked.iter_mut().zip(&columns) {
                    *slot = fields.get(at).map_or("", String::as_str);
                }
                summary_row(&picked).map_err(|reason| format!("{n}: {reason}"))
            })
            .collect()
    };
    let mut customers = Vec::with_capacity(parsed.len());
    let mut listed = Vec::new();
    let mut invalid = 0u64;
    for row in parsed {
        match row {
            Ok(c) => customers.push(c),
            Err(problem) => {
                invalid += 1;
                if listed.len() < MAX_LISTED {
                    listed.push(format!("{}:{problem}", path.display()));
                }
            }
        }
    }
    if invalid > 0 {
        return Err(InvalidFile {
            file: path.to_owned(),
            listed,
            rows_with_problems: invalid,
            not_done: "nothing was fitted",
        }
        .into());
    }
    Ok(customers)
}

/// A column of a summary file that is none of the five.
const NONE: u8 = u8::MAX;

/// The rows of a run of lines of a summary file without quotes, starting at line
/// `first_line`, in one pass over the bytes: a comma ends a field, a line end a field and
/// a row. `slot_of[column]` says which of the five fields a column is.
fn summary_rows(text: &str, first_line: u64, slot_of: &[u8]) -> Vec<Result<History, String>> {
    fn place<'t>(fields: &mut [&'t str; 5], slot_of: &[u8], column: usize, field: &'t str) {
        if let Some(&slot) = slot_of.get(column)
            && slot != NONE
        {
            fields[usize::from(slot)] = field.strip_suffix('\r').unwrap_or(field);
        }
    }
    let mut out = Vec::with_capacity(text.len() / 32);
    let mut fields = [""; 5];
    let (mut column, mut start, mut line) = (0, 0, first_line);
    let mut row = |fields: &[&str; 5], column: usize, last: &str, line: u64| {
        // A blank line is no row (as the csv reader has it).
        if column > 0 || !last.trim_ascii().is_empty() {
            out.push(summary_row(fields).map_err(|reason| format!("{line}: {reason}")));
        }
    };
    for (i, b) in text.bytes().enumerate() {
        if b != b',' && b != b'\n' {
            continue;
        }
        let field = &text[start..i];
        place(&mut fields, slot_of, column, field);
        start = i + 1;
        if b == b',' {
            column += 1;
            continue;
        }
        row(&fields, column, field, line);
        fields = [""; 5];
        column = 0;
        line += 1;
    }
    if start < text.len() {
        let field = &text[start..];
        place(&mut fields, slot_of, column, field);
        row(&fields, column, field, line);
    }
    out
}

/// Every record of a CSV text with quoted fields, with the line it starts on.
fn quoted_rows(path: &Path, text: &str) -> anyhow::Result<Vec<(u64, Vec<String>)>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    while reader
        .read_record(&mut record)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?
    {
        let line = record.position().map_or(0, |p| p.line());
        rows.push((line, record.iter().map(str::to_owned).collect()));
    }
    Ok(rows)
}

/// One row of a summary from its five fields (customer_id, frequency, recency, T,
/// monetary_value).
fn summary_row(fields: &[&str; 5]) -> Result<History, String> {
    let field = |i: usize| fields[i].trim_ascii();
    let number = |i: usize, name: &str| {
        field(i)
            .parse::<f64>()
            .map_err(|_| format!("{name}: '{}' is not a number", field(i)))
    };
    check_id(fields[0]).map_err(|e| format!("customer_id: {e}"))?;
    let frequency = match field(1).parse::<u32>() {
        Ok(x) => x,
        Err(_) => {
            let x = number(1, "frequency")?;
            if !(x >= 0.0 && x.fract() == 0.0 && x <= f64::from(u32::MAX)) {
                return Err(format!(
                    "frequency: '{}' is not a whole number of days",
                    field(1)
                ));
            }
            x as u32
        }
    };
    let h = History {
        frequency,
        recency: number(2, "recency")?,
        age: number(3, "T")?,
        monetary_value: number(4, "monetary_value")?,
    };
    h.check()?;
    Ok(h)
}

/// The checks of `CustomerId::parse` without keeping the id (plain ASCII ids, the common
/// case, are checked byte by byte; anything else by the parser itself).
fn check_id(text: &str) -> Result<(), siyu_core::ids::IdError> {
    let plain = text.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    let trimmed = text.trim_ascii();
    if plain && !trimmed.is_empty() && trimmed.len() <= siyu_core::ids::MAX_ID_LEN {
        return Ok(());
    }
    CustomerId::parse(text).map(drop)
}

/// Both models. The BG/NBD model is needed for anything at all; the Gamma-Gamma model
/// may fail on its own (no repeat purchases with a positive spend), and then spend and
/// value are n/a.
#[derive(Debug, Clone)]
pub struct Models {
    pub bgnbd: BgNbdFit,
    pub gamma_gamma: Result<GammaGammaFit, ClvError>,
}

/// Fits both models, side by side on two threads.
pub fn fit(customers: &[History]) -> Result<Models, ClvError> {
    let (bgnbd, gamma_gamma) = std::thread::scope(|scope| {
        let spend = scope.spawn(|| GammaGamma::fit(customers));
        let bgnbd = BgNbd::fit(customers);
        let gamma_gamma = spend
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (bgnbd, gamma_gamma)
    });
    Ok(Models {
        bgnbd: bgnbd?,
        gamma_gamma,
    })
}

/// Every customer's predictions, in the summary's order (by customer id).
pub fn predict(
    models: &Models,
    summary: &CalibrationSummary,
    horizon: &Horizon,
) -> Vec<Prediction> {
    let spend = models.gamma_gamma.as_ref().ok().map(|g| g.params);
    let bg = models.bgnbd.params;
    let customers = &summary.customers;
    // Two halves on two threads: the 2F1 of every month of every customer adds up.
    let half = customers.len().div_ceil(2);
    std::thread::scope(|scope| {
        let (first, second) = customers.split_at(half);
        let run = |part: &[CustomerSummary]| {
            part.iter()
                .map(|c| value::predict(&bg, spend.as_ref(), &c.history, horizon))
                .collect::<Vec<_>>()
        };
        let later = scope.spawn(move || run(second));
        let mut out = run(first);
        out.extend(
            later
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        );
        out
    })
}

/// The holdout check (None without a holdout end).
pub fn holdout(models: &Models, summary: &CalibrationSummary) -> Option<Vec<HoldoutBucket>> {
    value::holdout_check(&models.bgnbd.params, summary)
}

/// A horizon of `weeks` (positive) and a monthly discount rate (above -1); a refusal
/// names the figure as `names` says (the CLI's flags or the API's fields).
pub fn horizon(weeks: f64, discount_monthly: f64, names: (&str, &str)) -> Result<Horizon, String> {
    if !(weeks.is_finite() && weeks > 0.0) {
        return Err(format!(
            "{}: {weeks} is not a positive number of weeks",
            names.0
        ));
    }
    if !(discount_monthly.is_finite() && discount_monthly > -1.0) {
        return Err(format!(
            "{}: {discount_monthly} is not a rate above -1",
            names.1
        ));
    }
    Ok(Horizon {
        weeks,
        discount_monthly,
    })
}

/// The horizon and discount the API predicts with unless a fit says otherwise (as
/// `siyu clv predict`'s defaults).
pub const DEFAULT_HORIZON: Horizon = Horizon {
    weeks: 52.0,
    discount_monthly: 0.01,
};

/// A finite number for JSON (NaN and infinities become null).
pub fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// The BG/NBD fit as `siyu clv fit --format json` prints it (time in weeks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BgNbdJson {
    pub r: Option<f64>,
    pub alpha: Option<f64>,
    pub a: Option<f64>,
    pub b: Option<f64>,
    pub log_likelihood: Option<f64>,
    pub customers: usize,
}

/// The Gamma-Gamma fit as `siyu clv fit --format json` prints it (spend in yuan).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaJson {
    pub p: Option<f64>,
    pub q: Option<f64>,
    pub v: Option<f64>,
    pub customers: usize,
}

/// `siyu clv fit --format json`, and the answer of `POST /v1/clv/fit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelsJson {
    pub bgnbd: BgNbdJson,
    /// None when the spend model could not be fitted.
    pub gamma_gamma: Option<GammaGammaJson>,
}

impl ModelsJson {
    pub fn of(m: &Models) -> ModelsJson {
        let b = &m.bgnbd;
        ModelsJson {
            bgnbd: BgNbdJson {
                r: finite(b.params.r),
                alpha: finite(b.params.alpha),
                a: finite(b.params.a),
                b: finite(b.params.b),
                log_likelihood: finite(b.log_likelihood),
                customers: b.customers,
            },
            gamma_gamma: m.gamma_gamma.as_ref().ok().map(|g| GammaGammaJson {
                p: finite(g.params.p),
                q: finite(g.params.q),
                v: finite(g.params.v),
                customers: g.customers,
            }),
        }
    }
}

/// One customer's line of `siyu clv predict --format json`, and of the API's predictions.
#[derive(Debug, Clone, Serialize)]
pub struct PredictionLine<'a> {
    pub customer_id: &'a str,
    pub frequency: u32,
    pub recency: Option<f64>,
    #[serde(rename = "T")]
    pub age: Option<f64>,
    pub monetary_value: Option<f64>,
    pub p_alive: Option<f64>,
    pub expected_purchases: Option<f64>,
    pub expected_spend: Option<f64>,
    pub clv: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout_predicted: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holdout_actual: Option<u32>,
}

impl<'a> PredictionLine<'a> {
    /// The line without a holdout.
    pub fn new(c: &'a CustomerSummary, p: &Prediction) -> PredictionLine<'a> {
        PredictionLine {
            customer_id: c.customer_id.as_str(),
            frequency: c.history.frequency,
            recency: finite(c.history.recency),
            age: finite(c.history.age),
            monetary_value: finite(c.history.monetary_value),
            p_alive: finite(p.p_alive),
            expected_purchases: finite(p.expected_purchases),
            expected_spend: p.expected_spend.and_then(finite),
            clv: p.clv.and_then(finite),
            holdout_predicted: None,
            holdout_actual: None,
        }
    }
}

/// The tenant setting a fitted model is kept under.
pub const MODEL_SETTING: &str = "clv_model";

/// A tenant's fitted model as kept (JSON in the setting `clv_model`): the parameters, the
/// calibration end they were fitted as of, and the horizon and discount to predict with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredModel {
    pub calibration_end: Date,
    pub horizon_weeks: f64,
    pub discount_monthly: f64,
    pub fitted_at: Timestamp,
    pub bgnbd: BgNbdJson,
    pub gamma_gamma: Option<GammaGammaJson>,
}

impl StoredModel {
    pub fn horizon(&self) -> Horizon {
        Horizon {
            weeks: self.horizon_weeks,
            discount_monthly: self.discount_monthly,
        }
    }

    /// The parameters to predict with; none if the BG/NBD ones are not all numbers.
    pub fn params(&self) -> Option<(BgNbd, Option<GammaGamma>)> {
        let b = &self.bgnbd;
        let bgnbd = BgNbd {
            r: b.r?,
            alpha: b.alpha?,
            a: b.a?,
            b: b.b?,
        };
        let spend = self.gamma_gamma.as_ref().and_then(|g| {
            Some(GammaGamma {
                p: g.p?,
                q: g.q?,
                v: g.v?,
            })
        });
        Some((bgnbd, spend))
    }

    pub fn models(&self) -> ModelsJson {
        ModelsJson {
            bgnbd: self.bgnbd.clone(),
            gamma_gamma: self.gamma_gamma.clone(),
        }
    }
}

/// A fit of the tenant's stored orders, kept as the tenant's model.
pub struct TenantFit {
    pub models: Models,
    pub stored: StoredModel,
}

/// Why the tenant's model was not fitted.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    /// The orders by the calibration end allow no summary (none paid).
    #[error("summarising the orders of tenant '{tenant}' ({zone})")]
    Summary {
        tenant: String,
        zone: String,
        #[source]
        source: ClvError,
    },
    /// The orders allow no model (no repeat purchases, say).
    #[error(transparent)]
    Model(ClvError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl FitError {
    /// Why the orders allow no fit, if that is the failure (rather than the store's).
    pub fn cannot_fit(&self) -> Option<&ClvError> {
        match self {
            FitError::Summary { source, .. } | FitError::Model(source) => Some(source),
            FitError::Other(_) => None,
        }
    }
}

/// `siyu clv fit` on the database and `POST /v1/clv/fit`: fits both models on the
/// tenant's paid orders up to `calibration_end` (default: the day of the last paid order)
/// and keeps them as the tenant's model, with the horizon and discount to predict with.
/// Orders that allow no fit are [`FitError::Summary`] or [`FitError::Model`].
pub fn fit_tenant(
    store: &mut dyn Store,
    tenant: &Tenant,
    calibration_end: Option<Date>,
    horizon: Horizon,
) -> Result<TenantFit, FitError> {
    let days = purchase_days_from_store(store, tenant)?;
    let summary = summarise(&days, calibration_end, None).map_err(|source| FitError::Summary {
        tenant: tenant.name.clone(),
        zone: tenant.zone.name().to_owned(),
        source,
    })?;
    let histories: Vec<History> = summary.customers.iter().map(|c| c.history).collect();
    let models = fit(&histories).map_err(FitError::Model)?;
    let json = ModelsJson::of(&models);
    let stored = StoredModel {
        calibration_end: summary.calibration_end,
        horizon_weeks: horizon.weeks,
        discount_monthly: horizon.discount_monthly,
        fitted_at: Timestamp::now(),
        bgnbd: json.bgnbd,
        gamma_gamma: json.gamma_gamma,
    };
    let text = serde_json::to_string(&stored).context("writing the model as JSON")?;
    store
        .set_setting(tenant, MODEL_SETTING, &text)
        .context("keeping the fitted model")?;
    Ok(TenantFit { models, stored })
}

/// The tenant's kept model, if one was fitted.
pub fn stored_model(store: &mut dyn Store, tenant: &Tenant) -> anyhow::Result<Option<StoredModel>> {
    let settings = store
        .settings(tenant)
        .context("reading the tenant's settings")?;
    settings
        .into_iter()
        .find(|(k, _)| k == MODEL_SETTING)
        .map(|(_, v)| {
            serde_json::from_str(&v).with_context(|| format!("reading the kept {MODEL_SETTING}"))
        })
        .transpose()
}

/// A customer's calibration figures and their prediction.
pub type Predicted = (CustomerSummary, Prediction);

/// These customers' calibration figures as of the model's calibration end and their
/// predictions by the kept model, by customer id; read from their own orders alone.
/// Customers without a paid order by then have none. Empty if the model is unusable.
pub fn predict_kept(
    store: &mut dyn Store,
    tenant: &Tenant,
    model: &StoredModel,
    customers: &[CustomerId],
) -> anyhow::Result<Vec<Predicted>> {
    let Some((bgnbd, spend)) = model.params() else {
        return Ok(Vec::new());
    };
    let mut days = PurchaseDays::new(&tenant.zone);
    store
        .order_facts_of(tenant, customers, &mut |order| days.add(order))
        .context("reading orders")?;
    let summary = days.summary(model.calibration_end, None)?;
    let horizon = model.horizon();
    Ok(summary
        .customers
        .into_iter()
        .map(|c| {
            let p = value::predict(&bgnbd, spend.as_ref(), &c.history, &horizon);
            (c, p)
        })
        .collect())
}

/// Customers read per round when paging predictions.
const PAGE_READ: usize = 500;

/// A page of predictions.
pub struct PredictedPage {
    pub predictions: Vec<Predicted>,
    /// The id to pass as `after` for the next page; none on the last.
    pub next: Option<CustomerId>,
}

/// Up to `limit` predictions by the kept model for customers after `after` in id order.
pub fn predict_kept_page(
    store: &mut dyn Store,
    tenant: &Tenant,
    model: &StoredModel,
    after: Option<&CustomerId>,
    limit: usize,
) -> anyhow::Result<PredictedPage> {
    let mut out = Vec::new();
    let mut cursor = after.cloned();
    loop {
        let page = store
            .customers_page(tenant, cursor.as_ref(), PAGE_READ)
            .context("reading customers")?;
        let Some(last) = page.last() else { break };
        cursor = Some(last.id.clone());
        let ids: Vec<CustomerId> = page.iter().map(|c| c.id.clone()).collect();
        out.extend(predict_kept(store, tenant, model, &ids)?);
        if out.len() > limit || page.len() < PAGE_READ {
            break;
        }
    }
    let next = (out.len() > limit).then(|| out[limit - 1].0.customer_id.clone());
    out.truncate(limit);
    Ok(PredictedPage {
        predictions: out,
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(id: &str, frequency: u32, recency: f64, age: f64, m: f64) -> CustomerSummary {
        CustomerSummary {
            customer_id: CustomerId::parse(id).expect("id"),
            history: History {
                frequency,
                recency,
                age,
                monetary_value: m,
            },
            holdout_frequency: 0,
        }
    }

    #[test]
    fn a_written_summary_reads_back_to_the_same_doubles() {
        let customers = vec![
            customer("c1", 0, 0.0, 55.857_142_857_142_854, 0.0),
            customer("c2", 3, 1.0 / 7.0, 2.0 / 7.0, 123.456_789),
            customer("c3", 12, 40.0, 50.5, 0.01),
        ];
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("summary.csv");
        write_summary_csv(File::create(&path).expect("create"), &customers).expect("write");
        let read = read_summary_csv(&path).expect("reads");
        let want: Vec<History> = customers.iter().map(|c| c.history).collect();
        assert_eq!(read, want);
    }

    #[test]
    fn quotes_crlf_blank_lines_and_extra_columns_read_as_plain_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let plain = dir.path().join("plain.csv");
        std::fs::write(
            &plain,
            "customer_id,frequency,recency,T,monetary_value\nc1,2,3.5,10,20.25\nc2,0,0,4,0\n",
        )
        .expect("write");
        let odd = dir.path().join("odd.csv");
        std::fs::write(
            &odd,
            "\u{feff}T,note,monetary_value,customer_id,recency,frequency\r\n\
             10,\"a, b\",20.25,c1,3.5,2\r\n\
             \r\n\
             4,,0,\"c2\",0,0.0\r\n",
        )
        .expect("write");
        let unquoted = dir.path().join("unquoted.csv");
        std::fs::write(
            &unquoted,
            "T,note,monetary_value,customer_id,recency,frequency\r\n\
             10,x,20.25,c1,3.5,2\r\n\
             \r\n\
             4,,0,c2,0,0",
        )
        .expect("write");
        let want = read_summary_csv(&plain).expect("reads");
        assert_eq!(want.len(), 2);
        assert_eq!(read_summary_csv(&odd).expect("reads"), want);
        assert_eq!(read_summary_csv(&unquoted).expect("reads"), want);
    }

    #[test]
    fn bad_rows_are_listed_with_their_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("summary.csv");
        std::fs::write(
            &path,
            "customer_id,frequency,recency,T,monetary_value\n\
             c1,2,3.5,10,20\n\
             c2,1,12,10,5\n\
             ,1,1,2,3\n\
             c4,x,1,2,3\n\
             c5,0,1,2,0\n",
        )
        .expect("write");
        let err = read_summary_csv(&path).expect_err("refused").to_string();
        let file = path.display().to_string();
        assert!(err.contains("4 invalid rows"), "{err}");
        for line in [
            format!("{file}:3: recency 12 is larger than T 10"),
            format!("{file}:4: customer_id: empty id"),
            format!("{file}:5: frequency: 'x' is not a number"),
            format!("{file}:6: recency 1 with frequency 0"),
        ] {
            assert!(err.contains(&line), "{line} in {err}");
        }
        let missing = dir.path().join("missing.csv");
        std::fs::write(&missing, "customer_id,frequency,recency\nc1,1,1\n").expect("write");
        let err = read_summary_csv(&missing).expect_err("refused").to_string();
        assert!(err.contains(":1: header: no column 'T'"), "{err}");
    }
}
