//! `siyu clv`: the calibration summary from the store or an orders file, the model fit,
//! predictions and the holdout check.
