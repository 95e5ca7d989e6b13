//! Predictions per customer from the fitted models: P(alive), expected purchases over a
//! horizon, expected spend per purchase, and the discounted lifetime value over the
//! horizon, computed as Python's `lifetimes` computes it
//! (`GammaGammaFitter.customer_lifetime_value` with `freq="W"`): month by month, the
//! expected purchases in the month (the difference of the BG/NBD conditional expectation
//! at its end and its start, a month being 4.345 weeks) times the expected spend, divided
//! by (1 + d)^month. And the holdout check: mean predicted against mean actual repeat
//! purchases after the calibration end, by calibration frequency.

use serde::Serialize;

use super::bgnbd::{BgNbd, IfAlive};
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
    let curve = Curve::of(model, c.frequency, c.age, months, 0.0);
    let monthly = monthly_purchases(model, &curve, model.p_alive(c.frequency, c.recency, c.age));
    discounted(&monthly, spend, discount_monthly)
}

/// The expected purchases in each month of `curve`: the difference of the conditional
/// expectation at the month's end and at its start.
fn monthly_purchases(model: &BgNbd, curve: &Curve, alive: f64) -> Vec<f64> {
    let mut before = 0.0;
    curve
        .months
        .iter()
        .map(|&part| {
            let by_end = model.expected_purchases_given(alive, part);
            let in_month = by_end - before;
            before = by_end;
            in_month
        })
        .collect()
}

/// The recency-free parts of the expectations a prediction takes, for one frequency and
/// age: at the end of each month of the horizon and over the whole horizon. Customers of
/// the same frequency and age share it, whatever their recency and spend.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    months: Vec<IfAlive>,
    whole: IfAlive,
}

impl Curve {
    fn of(model: &BgNbd, frequency: u32, age: f64, months: u32, weeks: f64) -> Curve {
        Curve {
            months: (1..=months)
                .map(|month| model.if_alive(f64::from(month) * WEEKS_PER_MONTH, frequency, age))
                .collect(),
            whole: model.if_alive(weeks, frequency, age),
        }
    }

    /// The curve of the customers of `c`'s frequency and age.
    pub fn of_history(model: &BgNbd, c: &History, horizon: &Horizon) -> Curve {
        Curve::of(model, c.frequency, c.age, horizon.months(), horizon.weeks)
    }
}

/// The value of the months' purchases at `spend` each, month `m` discounted by (1 + d)^m.
fn discounted(monthly: &[f64], spend: f64, discount_monthly: f64) -> f64 {
    let mut value = 0.0;
    for (month, purchases) in (1..).zip(monthly) {
        value += spend * purchases / (1.0 + discount_monthly).powi(month);
    }
    value
}

/// What the BG/NBD model predicts of a history whatever its spend.
#[derive(Debug, Clone, PartialEq)]
pub struct Purchases {
    pub p_alive: f64,
    /// Expected repeat purchases over the horizon.
    pub expected: f64,
    /// The expected purchases in each month of the horizon.
    monthly: Vec<f64>,
}

impl Purchases {
    pub fn of(model: &BgNbd, c: &History, horizon: &Horizon) -> Purchases {
        Purchases::on(model, c, &Curve::of_history(model, c, horizon))
    }

    /// The purchases of `c` on its frequency and age's `curve` (of the same model and
    /// horizon): the same figures as [`Purchases::of`], to the bit.
    pub fn on(model: &BgNbd, c: &History, curve: &Curve) -> Purchases {
        let alive = model.p_alive(c.frequency, c.recency, c.age);
        Purchases {
            p_alive: alive,
            expected: model.expected_purchases_given(alive, curve.whole),
            monthly: monthly_purchases(model, curve, alive),
        }
    }
}

/// The predictions for one customer.
pub fn predict(
    model: &BgNbd,
    spend_model: Option<&GammaGamma>,
    c: &History,
    horizon: &Horizon,
) -> Prediction {
    predict_from(&Purchases::of(model, c, horizon), spend_model, c, horizon)
}

/// The predictions for one customer whose [`Purchases`] (of the same model and horizon)
/// are known: the same figures as [`predict`], to the bit.
pub fn predict_from(
    purchases: &Purchases,
    spend_model: Option<&GammaGamma>,
    c: &History,
    horizon: &Horizon,
) -> Prediction {
    let expected_spend =
        spend_model.and_then(|g| g.conditional_expected_spend(c.frequency, c.monetary_value));
    Prediction {
        p_alive: purchases.p_alive,
        expected_purchases: purchases.expected,
        expected_spend,
        clv: expected_spend.map(|s| discounted(&purchases.monthly, s, horizon.discount_monthly)),
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
