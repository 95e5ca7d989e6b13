//! Predictions per customer from the fitted models: P(alive), expected purchases over a
//! horizon, expected spend per purchase, and the discounted lifetime value over the
//! horizon, computed as Python's `lifetimes` computes it
//! (`GammaGammaFitter.customer_lifetime_value` with `freq="W"`): month by month, the
//! expected purchases in the month (the difference of the BG/NBD conditional expectation
//! at its end and its start, a month being 4.345 weeks) times the expected spend, divided
//! by (1 + d)^month. And the holdout check: mean predicted against mean actual repeat
//! purchases after the calibration end, by calibration frequency.

use serde::Serialize;

use super::bgnbd::BgNbd;
use super::gamma_gamma::GammaGamma;
use super::summary::{CalibrationSummary, History};

/// Weeks in a month, as `lifetimes` converts them.
pub const WEEKS_PER_MONTH: f64 = 4.345;

/// How far ahead to look and how to discount.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Horizon {
    pub weeks: f64,
    /// The discount rate per month (0.01 is 1% a month).
    pub discount_monthly: f64,
}

impl Horizon {
    /// The whole months the value is summed over: weeks / 4.345, rounded (52 weeks are 12).
    pub fn months(&self) -> u32 {
        (self.weeks / WEEKS_PER_MONTH).round().max(0.0) as u32
    }
}

/// One customer's predictions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prediction {
    pub p_alive: f64,
    /// Expected repeat purchases over the horizon.
    pub expected_purchases: f64,
    /// Expected spend per purchase (yuan); `None` without a Gamma-Gamma model (or with q ≤ 1).
    pub expected_spend: Option<f64>,
    /// Discounted value over the horizon's months (yuan).
    pub clv: Option<f64>,
}

/// Discounted value over `months` of a customer who spends `spend` per purchase.
pub fn lifetime_value(
    model: &BgNbd,
    c: &History,
    spend: f64,
    months: u32,
    discount_monthly: f64,
) -> f64 {
    let mut value = 0.0;
    let mut before = 0.0;
    for month in 1..=months {
        let t = f64::from(month) * WEEKS_PER_MONTH;
        let by_end = model.conditional_expected_purchases(t, c.frequency, c.recency, c.age);
        value += spend * (by_end - before) / (1.0 + discount_monthly).powi(month as i32);
        before = by_end;
    }
    value
}

/// The predictions for one customer.
pub fn predict(
    model: &BgNbd,
    spend_model: Option<&GammaGamma>,
    c: &History,
    horizon: &Horizon,
) -> Prediction {
    let expected_spend =
        spend_model.and_then(|g| g.conditional_expected_spend(c.frequency, c.monetary_value));
    Prediction {
        p_alive: model.p_alive(c.frequency, c.recency, c.age),
        expected_purchases: model.conditional_expected_purchases(
            horizon.weeks,
            c.frequency,
            c.recency,
            c.age,
        ),
        expected_spend,
        clv: expected_spend
            .map(|s| lifetime_value(model, c, s, horizon.months(), horizon.discount_monthly)),
    }
}

/// Customers of one calibration frequency (the last bucket: that frequency or more).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HoldoutBucket {
    pub frequency: u32,
    pub and_more: bool,
    pub customers: usize,
    /// Mean predicted repeat purchases in (D, holdout end]; `None` with no customers.
    pub predicted: Option<f64>,
    /// Mean actual repeat purchase days in (D, holdout end].
    pub actual: Option<f64>,
}

/// The last bucket of the holdout check holds this frequency and more.
pub const HOLDOUT_BUCKETS: u32 = 7;

/// Mean predicted against mean actual repeat purchases in the holdout, by calibration
/// frequency 0, 1, …, 6, 7+; `None` when the summary has no holdout.
pub fn holdout_check(model: &BgNbd, summary: &CalibrationSummary) -> Option<Vec<HoldoutBucket>> {
    let weeks = summary.holdout_weeks()?;
    let mut sums = vec![(0usize, 0.0, 0.0); HOLDOUT_BUCKETS as usize + 1];
    for customer in &summary.customers {
        let c = &customer.history;
        let slot = &mut sums[c.frequency.min(HOLDOUT_BUCKETS) as usize];
        slot.0 += 1;
        slot.1 += model.conditional_expected_purchases(weeks, c.frequency, c.recency, c.age);
        slot.2 += f64::from(customer.holdout_frequency);
    }
    Some(
        sums.into_iter()
            .enumerate()
            .map(|(i, (n, predicted, actual))| HoldoutBucket {
                frequency: i as u32,
                and_more: i as u32 == HOLDOUT_BUCKETS,
                customers: n,
                predicted: (n > 0).then(|| predicted / n as f64),
                actual: (n > 0).then(|| actual / n as f64),
            })
            .collect(),
    )
}
