//! The figures of DESIGN.md, each computed in one place from facts the store hands over.

pub mod channels;
pub mod cohorts;
pub mod columns;
pub mod funnel;
pub mod gmv;
pub mod overview;
pub mod pareto;
pub mod referrals;
pub mod shop;

#[cfg(test)]
mod reports_tests;

/// A ratio, `None` when the denominator is zero (printed "n/a", never NaN).
pub fn ratio(num: u64, den: u64) -> Option<f64> {
    (den != 0).then(|| num as f64 / den as f64)
}

/// `total / count` in fen, rounded half away from zero; `None` for no items.
pub fn mean_fen(total: i64, count: u64) -> Option<i64> {
    let count = i64::try_from(count).ok().filter(|&c| c != 0)?;
    let q = total / count;
    let r = total % count;
    Some(if 2 * r.abs() >= count {
        q + total.signum()
    } else {
        q
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_round_half_away_from_zero_and_say_nothing_for_nothing() {
        assert_eq!(mean_fen(10, 4), Some(3));
        assert_eq!(mean_fen(9, 4), Some(2));
        assert_eq!(mean_fen(-10, 4), Some(-3));
        assert_eq!(mean_fen(10, 0), None);
        assert_eq!(ratio(1, 0), None);
    }
}
