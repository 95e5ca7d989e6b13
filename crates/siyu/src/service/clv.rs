//! `siyu clv` and `/v1/clv`: the calibration summary from the store or an orders file (or
//! a summary file written earlier), the model fit, predictions and the holdout check; and
//! the tenant's kept model, fitted on its stored orders, that the API predicts with one
//! customer at a time. The figures are computed in `siyu_core::clv`; this module gathers
//! the data and hands it over.

use anyhow::Context;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use siyu_core::clv::value::{self, HoldoutBucket, Horizon, Prediction};
use siyu_core::clv::{
    BgNbd, BgNbdFit, CalibrationSummary, ClvError, CustomerSummary, GammaGamma, GammaGammaFit,
    History, PurchaseDays,
};
use siyu_core::fasthash::FastHashMap;
use siyu_core::{CustomerId, Timestamp};
use siyu_store::{Store, Tenant};

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
    predict_each(models, &summary.customers, |c| &c.history, horizon)
}

/// The predictions of each history, in order.
pub fn predict_histories(
    models: &Models,
    histories: &[History],
    horizon: &Horizon,
) -> Vec<Prediction> {
    predict_each(models, histories, |h| h, horizon)
}

/// The predictions of `items`, in order. A prediction depends on the history alone, so
/// each distinct history (to the bit) is predicted once: most customers of a large shop
/// share theirs (one purchase day, the same age).
fn predict_each<T>(
    models: &Models,
    items: &[T],
    history: impl Fn(&T) -> &History,
    horizon: &Horizon,
) -> Vec<Prediction> {
    let key = |h: &History| {
        (
            h.frequency,
            h.recency.to_bits(),
            h.age.to_bits(),
            h.monetary_value.to_bits(),
        )
    };
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_unstable_by_key(|&i| key(history(&items[i])));
    let mut distinct: Vec<History> = Vec::new();
    let mut which = vec![0usize; items.len()];
    for &i in &order {
        let h = *history(&items[i]);
        if distinct.last().is_none_or(|d| key(d) != key(&h)) {
            distinct.push(h);
        }
        which[i] = distinct.len() - 1;
    }
    drop(order);
    let spend = models.gamma_gamma.as_ref().ok().map(|g| g.params);
    let bg = models.bgnbd.params;
    // The 2F1s of a prediction depend on the frequency and age alone: each pair's curve
    // is computed once (a few thousand pairs among a million customers).
    let run = |part: &[History]| {
        let mut curves: FastHashMap<(u32, u64), value::Curve> = FastHashMap::default();
        part.iter()
            .map(|h| {
                let curve = curves
                    .entry((h.frequency, h.age.to_bits()))
                    .or_insert_with(|| value::Curve::of_history(&bg, h, horizon));
                let purchases = value::Purchases::on(&bg, h, curve);
                value::predict_from(&purchases, spend.as_ref(), h, horizon)
            })
            .collect::<Vec<_>>()
    };
    // Two halves on two threads: the 2F1 of every month of every history adds up.
    let half = distinct.len().div_ceil(2);
    let predictions = std::thread::scope(|scope| {
        let (first, second) = distinct.split_at(half);
        let later = scope.spawn(|| run(second));
        let mut out = run(first);
        out.extend(
            later
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        );
        out
    });
    which.into_iter().map(|d| predictions[d]).collect()
}

/// The holdout check (None without a holdout end).
pub fn holdout(models: &Models, summary: &CalibrationSummary) -> Option<Vec<HoldoutBucket>> {
    value::holdout_check(&models.bgnbd.params, summary)
}

/// Why a horizon is refused; the caller names the figure (its flag or field).
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum HorizonError {
    #[error("{0} is not a positive number of weeks")]
    Weeks(f64),
    #[error("{0} is not a rate above -1")]
    Discount(f64),
}

/// A horizon of `weeks` (positive) and a monthly discount rate (above -1).
pub fn horizon(weeks: f64, discount_monthly: f64) -> Result<Horizon, HorizonError> {
    if !(weeks.is_finite() && weeks > 0.0) {
        return Err(HorizonError::Weeks(weeks));
    }
    if !(discount_monthly.is_finite() && discount_monthly > -1.0) {
        return Err(HorizonError::Discount(discount_monthly));
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
    use crate::fastcsv::clv::{read_summary_csv, write_summary_csv};

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
        write_summary_csv(std::fs::File::create(&path).expect("create"), &customers)
            .expect("write");
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

    #[test]
    fn histories_predicted_once_each_give_every_customer_their_own_prediction() {
        // Many customers share a history; the order is mixed.
        let histories: Vec<History> = (0..3_000u32)
            .map(|i| {
                let x = i % 5;
                let age = f64::from(10 + (i * 7) % 40);
                let recency = if x == 0 {
                    0.0
                } else {
                    age * f64::from(i % 7 + 1) / 8.0
                };
                let m = if x == 0 { 0.0 } else { f64::from(10 + i % 13) };
                History {
                    frequency: x,
                    recency,
                    age,
                    monetary_value: m,
                }
            })
            .collect();
        // Parameters of the order lifetimes fits on its CDNOW sample.
        let models = Models {
            bgnbd: BgNbdFit {
                params: BgNbd {
                    r: 0.243,
                    alpha: 4.414,
                    a: 0.793,
                    b: 2.426,
                },
                log_likelihood: 0.0,
                customers: histories.len(),
                standard_errors: None,
                iterations: 0,
            },
            gamma_gamma: Ok(GammaGammaFit {
                params: GammaGamma {
                    p: 6.25,
                    q: 3.74,
                    v: 15.45,
                },
                log_likelihood: 0.0,
                customers: histories.len(),
                standard_errors: None,
                iterations: 0,
            }),
        };
        let spend = models.gamma_gamma.as_ref().ok().map(|g| g.params);
        let each: Vec<Prediction> = histories
            .iter()
            .map(|h| value::predict(&models.bgnbd.params, spend.as_ref(), h, &DEFAULT_HORIZON))
            .collect();
        assert!(each.iter().any(|p| p.clv.is_some_and(|v| v > 0.0)));
        assert_eq!(
            predict_histories(&models, &histories, &DEFAULT_HORIZON),
            each
        );
    }
}
