//! Dividing the customer base: RFM classes and quintiles (and, later, lifecycle stages and
//! saved segment rules).

pub mod rfm;
