//! The results' statistics: lift of treated over holdout with 95% confidence intervals —
//! the difference of two proportions (Wald, unpooled) for conversion, Welch's t interval
//! for revenue per customer. The formulas are in docs/campaigns.md; the values are checked
//! against scipy (bench/campaign_reference.py).

use crate::clv::special::ln_beta;

/// z for a two-sided 95% interval: the normal's 0.975 quantile.
pub const Z_975: f64 = 1.959_963_984_540_054;

/// A difference and its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub diff: f64,
    pub low: f64,
    pub high: f64,
}

impl Interval {
    /// Whether the interval excludes zero: a lift (or a loss) at the 5% level.
    pub fn excludes_zero(&self) -> bool {
        self.low > 0.0 || self.high < 0.0
    }
}

/// Treated rate − holdout rate, `x` successes of `n` in each, with the Wald interval
/// d ± z·√(p₁(1−p₁)/n₁ + p₀(1−p₀)/n₀). None when a group is empty.
pub fn proportion_diff(x1: u64, n1: u64, x0: u64, n0: u64) -> Option<Interval> {
    if n1 == 0 || n0 == 0 {
        return None;
    }
    let (p1, p0) = (x1 as f64 / n1 as f64, x0 as f64 / n0 as f64);
    let se = (p1 * (1.0 - p1) / n1 as f64 + p0 * (1.0 - p0) / n0 as f64).sqrt();
    let diff = p1 - p0;
    Some(Interval {
        diff,
        low: diff - Z_975 * se,
        high: diff + Z_975 * se,
    })
}

/// Count, mean and sum of squared deviations of one group, added to one value at a time
/// (Welford), so that a million customers' revenues need no list.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    pub n: u64,
    pub mean: f64,
    m2: f64,
}

impl Moments {
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// The sample variance (n − 1 in the denominator); none below two values.
    pub fn variance(&self) -> Option<f64> {
        (self.n >= 2).then(|| self.m2 / (self.n - 1) as f64)
    }
}

/// Treated mean − holdout mean with Welch's interval: d ± t(0.975, ν)·se, se² = s₁²/n₁ +
/// s₀²/n₀, ν by Welch–Satterthwaite. None below two values in a group; a zero se (every
/// value equal in both) gives the point.
pub fn welch_diff(treated: &Moments, holdout: &Moments) -> Option<Interval> {
    let (v1, v0) = (treated.variance()?, holdout.variance()?);
    let (a, b) = (v1 / treated.n as f64, v0 / holdout.n as f64);
    let se2 = a + b;
    let diff = treated.mean - holdout.mean;
    if se2 <= 0.0 {
        return Some(Interval {
            diff,
            low: diff,
            high: diff,
        });
    }
    let df = se2 * se2 / (a * a / (treated.n - 1) as f64 + b * b / (holdout.n - 1) as f64);
    let half = t_quantile(0.975, df) * se2.sqrt();
    Some(Interval {
        diff,
        low: diff - half,
        high: diff + half,
    })
}

/// The `p` quantile (½ < p < 1) of Student's t with `df` degrees of freedom, by bisection
/// on its distribution function.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    while t_cdf(hi, df) < p && hi < 1e6 {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-13 * hi.max(1.0) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// P(T ≤ t) for Student's t with `df` degrees of freedom.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    let x = df / (df + t * t);
    let tail = 0.5 * incomplete_beta(0.5 * df, 0.5, x);
    if t >= 0.0 { 1.0 - tail } else { tail }
}

/// The regularized incomplete beta function I_x(a, b), by its continued fraction
/// (modified Lentz), on the side where it converges fast.
pub fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (a * x.ln() + b * (1.0 - x).ln() - ln_beta(a, b)).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// Why the groups are too small for a conclusion, if they are: each needs 30 customers,
/// and the conversion interval 5 buyers and 5 non-buyers in each (where the normal
/// approximation behind it starts to hold).
pub fn too_small(x1: u64, n1: u64, x0: u64, n0: u64) -> Option<String> {
    if n1 < 30 || n0 < 30 {
        return Some(format!(
            "too few customers for a conclusion: {n1} treated and {n0} held out (at least 30 in each)"
        ));
    }
    let few = |x: u64, n: u64| x < 5 || n - x < 5;
    if few(x1, n1) || few(x0, n0) {
        return Some(format!(
            "too few buyers for a conclusion: {x1} of {n1} treated and {x0} of {n0} held out bought (at least 5 buyers and 5 non-buyers in each)"
        ));
    }
    None
}
