//! The BG/NBD model (Fader, Hardie & Lee 2005, "Counting your customers the easy way"):
//! while alive, a customer buys at a Poisson rate λ ~ Gamma(r, α); after each repeat
//! purchase they drop out with probability p ~ Beta(a, b). Fitted by maximum likelihood on
//! the calibration summary; predicts P(alive) and expected purchases.
//!
//! The likelihood is that of the paper (and of Python's `lifetimes`, term for term):
//! ln L = ln Γ(r+x) − ln Γ(r) + r ln α + ln Γ(a+b) + ln Γ(b+x) − ln Γ(b) − ln Γ(a+b+x)
//!      + ln[(α+T)^−(r+x) + 1{x>0} a/(b+x−1) (α+t_x)^−(r+x)].
//! Customers with the same (x, t_x, T) are counted once with a weight, and ln(α + t) is
//! taken once per distinct time, so one evaluation costs a few flops per distinct history.

use serde::Serialize;

use super::ClvError;
use super::optimize::{self, Evaluation, minimise};
use super::special::{
    digamma, exp_nonpositive, hyp2f1, ln_beta, ln_gamma_ratio, ln_one_plus_unit, trigamma,
};
use super::summary::History;
use crate::fasthash::FastHashMap;

/// The four parameters: λ ~ Gamma(shape r, rate α) with α in weeks; p ~ Beta(a, b).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// A fitted BG/NBD model.
#[derive(Debug, Clone, PartialEq)]
pub struct BgNbdFit {
    pub params: BgNbd,
    /// The total log-likelihood at the estimate (time in weeks).
    pub log_likelihood: f64,
    pub customers: usize,
    /// Asymptotic standard errors (from the observed information), when it is invertible.
    pub standard_errors: Option<BgNbd>,
    /// Newton iterations of the start that gave the estimate.
    pub iterations: usize,
}

/// Customers with the same repeat history (x > 0, t_x, T), counted once.
#[derive(Debug, Clone, Copy)]
struct Repeat {
    /// Indexes of t_x and T in `Data::times`.
    recency: u32,
    age: u32,
    weight: f64,
}

/// The summary compressed for the likelihood.
#[derive(Debug)]
struct Data {
    total: f64,
    /// Distinct values of t_x and T.
    times: Vec<f64>,
    /// Distinct frequencies with the customers who have them, and (for x > 0) the range
    /// of `repeats` that holds their histories.
    by_x: Vec<(f64, f64, std::ops::Range<usize>)>,
    /// Customers with x = 0, by T.
    zeros: Vec<(u32, f64)>,
    /// Sorted by (x, t_x, T).
    repeats: Vec<Repeat>,
}

/// Sorted keys as (key, how many times it occurs).
fn runs<K: Ord + Copy>(mut keys: Vec<K>) -> Vec<(K, f64)> {
    keys.sort_unstable();
    let mut out: Vec<(K, f64)> = Vec::new();
    for k in keys {
        match out.last_mut() {
            Some((last, n)) if *last == k => *n += 1.0,
            _ => out.push((k, 1.0)),
        }
    }
    out
}

impl Data {
    /// Groups equal histories by sorting their keys, so that the sums (and so the
    /// estimates) do not depend on the order of the customers.
    fn of(customers: &[History]) -> Data {
        // Distinct times, numbered as first seen and then renumbered in order of value.
        let mut seen: FastHashMap<u64, u32> = FastHashMap::default();
        let mut first_seen: Vec<f64> = Vec::new();
        let mut number = |t: f64| {
            *seen.entry(t.to_bits()).or_insert_with(|| {
                first_seen.push(t);
                (first_seen.len() - 1) as u32
            })
        };
        let numbered: Vec<(u32, u32, u32)> = customers
            .iter()
            .map(|c| (c.frequency, number(c.recency), number(c.age)))
            .collect();
        let mut order: Vec<u32> = (0..first_seen.len() as u32).collect();
        order.sort_unstable_by(|&i, &j| first_seen[i as usize].total_cmp(&first_seen[j as usize]));
        let mut rank = vec![0u32; order.len()];
        for (k, &i) in order.iter().enumerate() {
            rank[i as usize] = k as u32;
        }
        let times: Vec<f64> = order.iter().map(|&i| first_seen[i as usize]).collect();
        let mut at_age = vec![0.0; times.len()];
        for k in numbered.iter().filter(|k| k.0 == 0) {
            at_age[rank[k.2 as usize] as usize] += 1.0;
        }
        let zeros: Vec<(u32, f64)> = (0..times.len() as u32)
            .zip(at_age)
            .filter(|&(_, w)| w > 0.0)
            .collect();
        // (x, t_x, T) packed into one integer when they fit (they do for any real shop):
        // integers sort fastest.
        let repeats: Vec<((u32, u32, u32), f64)> = {
            let keys = numbered
                .iter()
                .filter(|k| k.0 > 0)
                .map(|&(x, rec, age)| (x, rank[rec as usize], rank[age as usize]));
            let packable = customers.iter().all(|c| c.frequency < 1 << 21) && times.len() < 1 << 21;
            if packable {
                let pack = |(x, rec, age): (u32, u32, u32)| {
                    u64::from(x) << 42 | u64::from(rec) << 21 | u64::from(age)
                };
                let mask = (1u64 << 21) - 1;
                runs(keys.map(pack).collect())
                    .into_iter()
                    .map(|(k, w)| {
                        (
                            ((k >> 42) as u32, (k >> 21 & mask) as u32, (k & mask) as u32),
                            w,
                        )
                    })
                    .collect()
            } else {
                runs(keys.collect())
            }
        };
        let mut counts: Vec<(u32, f64)> = Vec::new();
        let zero = customers.iter().filter(|c| c.frequency == 0).count() as f64;
        if zero > 0.0 {
            counts.push((0, zero));
        }
        for ((x, _, _), w) in &repeats {
            match counts.last_mut() {
                Some((last, n)) if last == x => *n += w,
                _ => counts.push((*x, *w)),
            }
        }
        let mut by_x = Vec::with_capacity(counts.len());
        let mut at = 0;
        for (x, w) in counts {
            let start = at;
            while at < repeats.len() && repeats[at].0.0 == x {
                at += 1;
            }
            by_x.push((f64::from(x), w, start..at));
        }
        Data {
            total: customers.len() as f64,
            repeats: repeats
                .into_iter()
                .map(|((_, recency, age), weight)| Repeat {
                    recency,
                    age,
                    weight,
                })
                .collect(),
            by_x,
            zeros,
            times,
        }
    }

    /// The total log-likelihood with its gradient and Hessian in (r, α, a, b).
    fn natural(&self, p: &BgNbd) -> (f64, [f64; 4], [[f64; 4]; 4]) {
        let BgNbd { r, alpha, a, b } = *p;
        let ln_alpha = alpha.ln();
        let mut ll = 0.0;
        let mut g = [0.0; 4];
        let mut h = [[0.0; 4]; 4];
        let (psi_r, psi1_r) = (digamma(r), trigamma(r));
        let (psi_ab, psi1_ab) = (digamma(a + b), trigamma(a + b));
        let (psi_b, psi1_b) = (digamma(b), trigamma(b));
        // ln(α + t) and 1/(α + t) for every distinct time.
        let ln_t: Vec<f64> = self.times.iter().map(|t| (alpha + t).ln()).collect();
        let inv_t: Vec<f64> = self.times.iter().map(|t| 1.0 / (alpha + t)).collect();
        let time = |i: u32| {
            let i = i as usize;
            (ln_t[i], inv_t[i])
        };
        for &(age, w) in &self.zeros {
            let (u, i) = time(age);
            ll -= w * r * u;
            g[0] -= w * u;
            g[1] -= w * r * i;
            h[0][1] -= w * i;
            h[1][1] += w * r * i * i;
        }
        let ia = 1.0 / a;
        let ln_a = a.ln();
        for (x, w, histories) in &self.by_x {
            let (x, w) = (*x, *w);
            // The terms that depend on x alone.
            ll += w * r * ln_alpha;
            g[0] += w * ln_alpha;
            g[1] += w * r / alpha;
            h[0][1] += w / alpha;
            h[1][1] -= w * r / (alpha * alpha);
            if x == 0.0 {
                continue;
            }
            ll += w * (-ln_gamma_ratio(r, x) - ln_gamma_ratio(b, x) + ln_gamma_ratio(a + b, x));
            let (psi_abx, psi1_abx) = (digamma(a + b + x), trigamma(a + b + x));
            g[0] += w * (digamma(r + x) - psi_r);
            g[2] += w * (psi_ab - psi_abx);
            g[3] += w * (psi_ab + digamma(b + x) - psi_b - psi_abx);
            h[0][0] += w * (trigamma(r + x) - psi1_r);
            h[2][2] += w * (psi1_ab - psi1_abx);
            h[2][3] += w * (psi1_ab - psi1_abx);
            h[3][3] += w * (psi1_ab + trigamma(b + x) - psi1_b - psi1_abx);
            // ln[e^A3 + e^A4] over the histories with this x, where
            // A3 = −s ln(α+T), A4 = ln a − ln(b+x−1) − s ln(α+t_x), s = r + x, and
            // q = e^A4 / (e^A3 + e^A4). With d0 = ln(α+T) − ln(α+t_x) and
            // d1 = 1/(α+T) − 1/(α+t_x), the gradient of A4 − A3 is (d0, s·d1, 1/a, −1/(b+x−1)).
            let s = r + x;
            let ib = 1.0 / (b + x - 1.0);
            let c = ln_a + ib.ln();
            let mut sum = [0.0; 11];
            for k in &self.repeats[histories.clone()] {
                let w = k.weight;
                let (u_age, i_age) = time(k.age);
                let (u_rec, i_rec) = time(k.recency);
                let (d0, d1) = (u_age - u_rec, i_age - i_rec);
                let d = c + s * d0;
                let e = exp_nonpositive(-d.abs());
                let q = if d >= 0.0 { 1.0 } else { e } / (1.0 + e);
                let wq = w * q;
                let qq = wq * (1.0 - q);
                // ln(e^A3 + e^A4) = A3 + max(d, 0) + ln(1 + e^−|d|).
                sum[0] += w * (d.max(0.0) + ln_one_plus_unit(e) - s * u_age);
                sum[1] += w * (u_age - q * d0);
                sum[2] += w * (i_age - q * d1);
                sum[3] += w * (i_age * i_age - q * (i_age * i_age - i_rec * i_rec));
                sum[4] += wq;
                sum[5] += qq;
                sum[6] += qq * d0;
                sum[7] += qq * d1;
                sum[8] += qq * d0 * d0;
                sum[9] += qq * d0 * d1;
                sum[10] += qq * d1 * d1;
            }
            let [lse, ga, gb, gc, wq, qq, qd0, qd1, qd00, qd01, qd11] = sum;
            ll += lse;
            g[0] -= ga;
            g[1] -= s * gb;
            g[2] += ia * wq;
            g[3] -= ib * wq;
            h[0][0] += qd00;
            h[0][1] += s * qd01 - gb;
            h[0][2] += ia * qd0;
            h[0][3] -= ib * qd0;
            h[1][1] += s * s * qd11 + s * gc;
            h[1][2] += ia * s * qd1;
            h[1][3] -= ib * s * qd1;
            h[2][2] += ia * ia * (qq - wq);
            h[2][3] -= ia * ib * qq;
            h[3][3] += ib * ib * (qq + wq);
        }
        optimize::symmetrise(&mut h);
        (ll, g, h)
    }

    /// The negative mean log-likelihood in log-parameters, as the optimiser takes it.
    fn evaluate(&self, phi: &[f64; 4]) -> Option<Evaluation<4>> {
        let theta = phi.map(f64::exp);
        let (ll, g, h) = self.natural(&BgNbd::from_array(theta));
        let n = self.total;
        let mut e = Evaluation {
            value: -ll / n,
            gradient: [0.0; 4],
            hessian: [[0.0; 4]; 4],
        };
        for i in 0..4 {
            e.gradient[i] = -theta[i] * g[i] / n;
            for j in 0..4 {
                e.hessian[i][j] = -theta[i] * theta[j] * h[i][j] / n;
            }
            e.hessian[i][i] -= theta[i] * g[i] / n;
        }
        let finite = e.value.is_finite()
            && e.gradient.iter().all(|v| v.is_finite())
            && e.hessian.iter().flatten().all(|v| v.is_finite());
        finite.then_some(e)
    }
}

/// The recency-free part of a conditional expectation (see [`BgNbd::if_alive`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IfAlive {
    /// No time ahead: nothing expected.
    Zero,
    /// The closed form: the expectation is P(alive) · c / (a − 1) · bracket (the history
    /// kept for the integral, should that product not be finite).
    Series {
        c: f64,
        bracket: f64,
        t: f64,
        frequency: u32,
        age: f64,
    },
    /// The integral over p, where the closed form is singular or does not settle.
    Quadrature(f64),
}

impl BgNbd {
    fn from_array([r, alpha, a, b]: [f64; 4]) -> BgNbd {
        BgNbd { r, alpha, a, b }
    }

    /// The maximum-likelihood estimate for the summary: Newton's method on the
    /// log-parameters from three fixed starts scaled to the data's purchase rate, the best
    /// kept.
    pub fn fit(customers: &[History]) -> Result<BgNbdFit, ClvError> {
        const MODEL: &str = "BG/NBD";
        if customers.is_empty() {
            return Err(ClvError::NoCustomers);
        }
        let data = Data::of(customers);
        if data.repeats.is_empty() {
            return Err(ClvError::NoRepeatPurchases { model: MODEL });
        }
        // The purchase rate of the whole base, summed in the data's own (sorted) order so
        // that the starts, and so the estimate, do not depend on the order of customers.
        let repeat: f64 = data.by_x.iter().map(|(x, w, _)| x * w).sum();
        let age: f64 = data
            .zeros
            .iter()
            .map(|&(t, w)| (t, w))
            .chain(data.repeats.iter().map(|k| (k.age, k.weight)))
            .map(|(t, w)| data.times[t as usize] * w)
            .sum();
        let rate = repeat / age;
        let starts: Vec<[f64; 4]> = [(0.25, 0.5, 1.0), (1.0, 1.0, 3.0), (4.0, 2.0, 10.0)]
            .iter()
            .map(|&(r, a, b)| [r, r / rate, a, b].map(f64::ln))
            .collect();
        let best = minimise(&|phi: &[f64; 4]| data.evaluate(phi), &starts).ok_or(
            ClvError::NotIdentified {
                model: MODEL,
                detail: "the likelihood is not finite at any start".to_owned(),
            },
        )?;
        if !optimize::identified(&best, data.total) {
            return Err(ClvError::NotIdentified {
                model: MODEL,
                detail: format!(
                    "the likelihood has no single maximum for {} (r = {:.3e}, alpha = {:.3e}, \
                     a = {:.3e}, b = {:.3e} when it stopped); more customers or a longer \
                     calibration period are needed",
                    super::customers_text(customers.len()),
                    best.point[0].exp(),
                    best.point[1].exp(),
                    best.point[2].exp(),
                    best.point[3].exp()
                ),
            });
        }
        let theta = best.point.map(f64::exp);
        let params = BgNbd::from_array(theta);
        let standard_errors = optimize::log_standard_errors(&best.hessian, data.total)
            .map(|se| BgNbd::from_array([0, 1, 2, 3].map(|i| theta[i] * se[i])));
        Ok(BgNbdFit {
            params,
            log_likelihood: -best.value * data.total,
            customers: customers.len(),
            standard_errors,
            iterations: best.iterations,
        })
    }

    /// The total log-likelihood of the summary under these parameters.
    pub fn log_likelihood(&self, customers: &[History]) -> f64 {
        Data::of(customers).natural(self).0
    }

    /// The log-likelihood of one history (x, t_x, T).
    pub fn individual_log_likelihood(&self, frequency: u32, recency: f64, age: f64) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let x = f64::from(frequency);
        let mut ll = r * alpha.ln() - (r + x) * (alpha + age).ln();
        if frequency > 0 {
            ll += -ln_gamma_ratio(r, x) - ln_gamma_ratio(b, x) + ln_gamma_ratio(a + b, x);
            let a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + recency).ln();
            let a3 = -(r + x) * (alpha + age).ln();
            let d = a4 - a3;
            ll += if d > 0.0 {
                d + (-d).exp().ln_1p()
            } else {
                d.exp().ln_1p()
            };
        }
        ll
    }

    /// P(alive | x, t_x, T): 1 for a customer with no repeat purchase.
    pub fn p_alive(&self, frequency: u32, recency: f64, age: f64) -> f64 {
        if frequency == 0 {
            return 1.0;
        }
        let BgNbd { r, alpha, a, b } = *self;
        let x = f64::from(frequency);
        let ln_odds = (a / (b + x - 1.0)).ln() + (r + x) * ((alpha + age) / (alpha + recency)).ln();
        1.0 / (1.0 + ln_odds.exp())
    }

    /// Expected repeat purchases in the next `t` weeks of a customer with history
    /// (x, t_x, T) (FHL 2005, eq. 10). 2F1 is taken after Euler's transformation, which keeps
    /// it and its factor of order one for any x:
    /// (α+T)^(r+x)/(α+T+t)^(r+x) 2F1(r+x, b+x; a+b+x−1; z) = (1−z)^(a−1) 2F1(a+b−1−r, a−1; a+b+x−1; z)
    /// with z = t/(α+T+t). Where that form is singular (a = 1, or a + b + x − 1 a pole) or
    /// 2F1 does not settle, the expectation is integrated over p instead.
    pub fn conditional_expected_purchases(
        &self,
        t: f64,
        frequency: u32,
        recency: f64,
        age: f64,
    ) -> f64 {
        let if_alive = self.if_alive(t, frequency, age);
        self.expected_purchases_given(self.p_alive(frequency, recency, age), if_alive)
    }

    /// The part of [`BgNbd::conditional_expected_purchases`] that does not depend on the
    /// recency (only P(alive) does): the expensive part (2F1), shared by every customer
    /// of that frequency and age.
    pub fn if_alive(&self, t: f64, frequency: u32, age: f64) -> IfAlive {
        if t <= 0.0 {
            return IfAlive::Zero;
        }
        let BgNbd { r, alpha, a, b } = *self;
        let x = f64::from(frequency);
        let c = a + b + x - 1.0;
        let near_pole = c < 0.5 && (c - c.round()).abs() < 1e-6;
        if (a - 1.0).abs() > 1e-6 && !near_pole {
            let z = t / (alpha + age + t);
            let f = hyp2f1(a + b - 1.0 - r, a - 1.0, c, z);
            if f.is_finite() {
                let bracket = -((a - 1.0) * (-z).ln_1p()).exp().mul_add(f, -1.0);
                return IfAlive::Series {
                    c,
                    bracket,
                    t,
                    frequency,
                    age,
                };
            }
        }
        IfAlive::Quadrature(self.alive_expectation_by_quadrature(t, frequency, age))
    }

    /// The conditional expectation of a customer alive with probability `alive`, from its
    /// [`BgNbd::if_alive`] part: the same figure as [`BgNbd::conditional_expected_purchases`].
    pub fn expected_purchases_given(&self, alive: f64, if_alive: IfAlive) -> f64 {
        match if_alive {
            IfAlive::Zero => 0.0,
            IfAlive::Series {
                c,
                bracket,
                t,
                frequency,
                age,
            } => {
                let value = alive * c / (self.a - 1.0) * bracket;
                if value.is_finite() {
                    value.max(0.0)
                } else {
                    alive * self.alive_expectation_by_quadrature(t, frequency, age)
                }
            }
            IfAlive::Quadrature(expectation) => alive * expectation,
        }
    }

    /// E[(1 − e^(−λpt))/p] over the posterior of an alive customer (λ ~ Gamma(r+x, α+T),
    /// p ~ Beta(a, b+x)) by tanh-sinh quadrature, split at p = ½ and with p = y^(1/a)
    /// (resp. 1 − p = y^(1/(b+x))) so that the Beta density's end points are smooth.
    fn alive_expectation_by_quadrature(&self, t: f64, frequency: u32, age: f64) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let x = f64::from(frequency);
        let (s, u, beta) = (r + x, t / (alpha + age), b + x);
        // (1 − (1 + p u)^−s) / p, and its limit s·u at p = 0.
        let h = |p: f64| {
            if p <= 0.0 {
                s * u
            } else {
                -(-s * (p * u).ln_1p()).exp_m1() / p
            }
        };
        let norm = (-ln_beta(a, beta)).exp();
        // p in (0, ½]: p = y^(1/a), dp p^(a−1) = dy / a.
        let lower = tanh_sinh(0.5_f64.powf(a), |y| {
            let p = y.powf(1.0 / a);
            ((beta - 1.0) * (-p).ln_1p()).exp() * h(p) / a
        });
        // p in [½, 1): 1 − p = y^(1/β), dp (1−p)^(β−1) = dy / β.
        let upper = tanh_sinh(0.5_f64.powf(beta), |y| {
            let q = y.powf(1.0 / beta);
            let p = 1.0 - q;
            ((a - 1.0) * (-q).ln_1p()).exp() * h(p) / beta
        });
        norm * (lower + upper)
    }

    /// E[X(t)]: expected repeat purchases in the first `t` weeks of a new customer.
    pub fn expected_purchases(&self, t: f64) -> f64 {
        self.conditional_expected_purchases(t, 0, 0.0, 0.0)
    }
}

/// ∫₀^len f(y) dy by the tanh-sinh rule (step 1/32, |t| ≤ 4.5): exact to rounding for
/// integrands analytic inside the interval, whatever they do at its ends.
fn tanh_sinh(len: f64, f: impl Fn(f64) -> f64) -> f64 {
    const STEP: f64 = 1.0 / 32.0;
    let half = std::f64::consts::FRAC_PI_2;
    let mut sum = 0.0;
    for k in -144i32..=144 {
        let t = f64::from(k) * STEP;
        let v = half * t.sinh();
        // y = len·(1 + tanh v)/2 = len / (1 + e^(−2v)), kept accurate near both ends.
        let e = (-2.0 * v).exp();
        let y = len / (1.0 + e);
        let weight = half * t.cosh() / (2.0 * v.cosh() * v.cosh());
        if y > 0.0 && y < len && weight > 0.0 {
            sum += weight * f(y);
        }
    }
    sum * len * STEP
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CDNOW's published estimates (Fader, Hardie & Lee 2005), as `lifetimes` also finds them.
    const CDNOW: BgNbd = BgNbd {
        r: 0.242_593,
        alpha: 4.413_532,
        a: 0.792_886,
        b: 2.425_752,
    };

    #[test]
    fn p_alive_is_one_without_repeats_and_falls_with_time_since_the_last_purchase() {
        assert_eq!(CDNOW.p_alive(0, 0.0, 30.0), 1.0);
        let recent = CDNOW.p_alive(3, 29.0, 30.0);
        let lapsed = CDNOW.p_alive(3, 5.0, 30.0);
        assert!(recent > lapsed && lapsed > 0.0 && recent < 1.0);
    }

    #[test]
    fn the_closed_form_expectation_agrees_with_the_integral_over_p() {
        let models = [
            CDNOW,
            BgNbd {
                r: 2.0,
                alpha: 12.0,
                a: 3.5,
                b: 7.0,
            },
            BgNbd {
                r: 0.8,
                alpha: 3.0,
                a: 0.2,
                b: 0.6,
            },
        ];
        for m in models {
            for (x, tx, age) in [
                (0, 0.0, 0.0),
                (0, 0.0, 20.0),
                (1, 3.0, 10.0),
                (7, 30.0, 38.0),
            ] {
                for t in [0.5, 4.345, 13.0, 52.0, 520.0] {
                    let closed = m.conditional_expected_purchases(t, x, tx, age);
                    let integral =
                        m.p_alive(x, tx, age) * m.alive_expectation_by_quadrature(t, x, age);
                    assert!(
                        (closed - integral).abs() <= 1e-10 * integral.max(1e-3),
                        "{m:?} t={t} x={x}: {closed} vs {integral}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_expectation_is_continuous_where_the_closed_form_is_singular() {
        // a = 1 exactly goes to the integral; either side goes to 2F1.
        let at = |a: f64| {
            BgNbd {
                r: 0.5,
                alpha: 5.0,
                a,
                b: 2.0,
            }
            .conditional_expected_purchases(26.0, 2, 10.0, 20.0)
        };
        let (below, one, above) = (at(1.0 - 2e-6), at(1.0), at(1.0 + 2e-6));
        assert!((below - one).abs() < 1e-5 * one && (above - one).abs() < 1e-5 * one);
    }

    #[test]
    fn cdnow_predictions_match_lifetimes() {
        // lifetimes 0.11.3 (scipy's hyp2f1) with the parameters above.
        let close = |got: f64, want: f64| (got - want).abs() <= 1e-12 * want;
        let e = CDNOW.conditional_expected_purchases(39.0, 2, 30.43, 38.86);
        assert!(close(e, 1.225_910_385_693_889_8), "{e}");
        let e = CDNOW.expected_purchases(39.0);
        assert!(close(e, 1.195_016_524_495_533_7), "{e}");
        let p = CDNOW.p_alive(2, 30.43, 38.86);
        assert!((p - 0.726_609_1).abs() < 1e-7, "{p}");
    }
}
