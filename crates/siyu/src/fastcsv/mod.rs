//! Merchants' CSV files read fast, without a database: the orders file of `siyu rfm
//! --orders` and `siyu clv … --orders`, and the calibration summary of `clv fit --summary`.
//! Block readers on every core and hand-written checks, each giving exactly what the
//! importer's own reader (and a database) would give; the figures themselves are computed
//! in siyu-core.

pub mod clv;
pub mod rfm;
