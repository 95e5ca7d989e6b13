//! Dividing the customer base: RFM classes and quintiles, the pool as segment rules see
//! it, and saved segments and tags with their entered / exited changes.

pub mod pool;
pub mod rfm;
pub mod rules;
