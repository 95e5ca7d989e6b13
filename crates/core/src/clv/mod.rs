//! Customer lifetime value by model: the BG/NBD model (Fader, Hardie & Lee 2005) of
//! purchases and P(alive), and the Gamma-Gamma model of spend per purchase, fitted by
//! maximum likelihood on a calibration summary (DESIGN.md "Customer lifetime value").
//!
//! - [`summary`]: the calibration summary (x, t_x, T in weeks, mean repeat spend) from
//!   paid orders, with an optional holdout.
//! - [`bgnbd`], [`gamma_gamma`]: the likelihoods, the fits and the predictions.
//! - [`value`]: per-customer predictions, the discounted CLV and the holdout check.
//! - [`special`], [`optimize`]: ln Γ, digamma, 2F1, and the Newton optimiser they use.
//!
//! Pure: no I/O (the optimiser runs its extra starts on scoped threads). Estimates match
//! Python's `lifetimes` (penalizer 0) on the same summary.

pub mod bgnbd;
pub mod gamma_gamma;
pub mod optimize;
pub mod special;
pub mod summary;
pub mod value;

#[cfg(test)]
mod tests;

use jiff::civil::Date;

pub use bgnbd::{BgNbd, BgNbdFit};
pub use gamma_gamma::{GammaGamma, GammaGammaFit};
pub use summary::{
    CalibrationSummary, CustomerSummary, History, PurchaseDays, calibration_summary,
};
pub use value::{HoldoutBucket, Horizon, Prediction, holdout_check, predict};

/// Why a model could not be fitted or a summary drawn.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClvError {
    #[error(
        "no customer has a paid order on or before the calibration end, so there is nothing to fit"
    )]
    NoCustomers,
    #[error(
        "no customer bought again after their first purchase day, so the {model} model cannot be fitted"
    )]
    NoRepeatPurchases { model: &'static str },
    #[error("the {model} model cannot be fitted: {detail}")]
    NotIdentified { model: &'static str, detail: String },
    #[error("the holdout end {holdout_end} is not after the calibration end {calibration_end}")]
    HoldoutNotAfterCalibration {
        calibration_end: Date,
        holdout_end: Date,
    },
}

/// "1 customer", "2 customers".
fn customers_text(n: usize) -> String {
    if n == 1 {
        "1 customer".to_owned()
    } else {
        format!("{n} customers")
    }
}
