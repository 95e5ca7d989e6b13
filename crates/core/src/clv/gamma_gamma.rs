//! The Gamma-Gamma model of spend per purchase (Fader, Hardie & Lee 2005, "RFM and CLV"):
//! a customer's purchase values are Gamma(p, ν) with ν ~ Gamma(q, v) across customers, so
//! the mean m of their x repeat purchases has the density
//! Γ(px+q) / (Γ(px) Γ(q)) · v^q m^(px−1) x^(px) / (v + m x)^(px+q),
//! the log of which is the likelihood summed here, as in Python's `lifetimes`. Fitted on
//! the customers with x > 0 and a positive mean (a mean of 0, from free orders, has no
//! density); predicts the expected spend per purchase of any customer.

use serde::Serialize;

use super::ClvError;
use super::optimize::{self, Evaluation, minimise};
use super::special::{digamma, ln_gamma, trigamma};
use super::summary::History;

/// The three parameters, spend in yuan.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub v: f64,
}

/// A fitted Gamma-Gamma model.
#[derive(Debug, Clone, PartialEq)]
pub struct GammaGammaFit {
    pub params: GammaGamma,
    /// The total log-likelihood at the estimate.
    pub log_likelihood: f64,
    /// The customers fitted on: x > 0 and a positive mean spend.
    pub customers: usize,
    pub standard_errors: Option<GammaGamma>,
    pub iterations: usize,
}

/// Customers with the same x, with what the likelihood needs of their means.
#[derive(Debug)]
struct Frequency {
    x: f64,
    ln_x: f64,
    weight: f64,
    /// Σ ln m over the customers.
    sum_ln_m: f64,
    /// The customers' x·m, each distinct value with its count.
    xm: Vec<(f64, f64)>,
}

#[derive(Debug)]
struct Data {
    total: f64,
    by_x: Vec<Frequency>,
}

/// Whether a customer counts for the fit.
fn fits(c: &History) -> bool {
    c.frequency > 0 && c.monetary_value > 0.0 && c.monetary_value.is_finite()
}

impl Data {
    /// Groups equal (x, m) by sorting them, so that the sums (and so the estimates) do
    /// not depend on the order of the customers.
    fn of(customers: &[History]) -> Data {
        let mut keys: Vec<(u32, u64)> = customers
            .iter()
            .filter(|c| fits(c))
            .map(|c| (c.frequency, c.monetary_value.to_bits()))
            .collect();
        keys.sort_unstable();
        let mut by_x: Vec<Frequency> = Vec::new();
        for (x, bits) in keys {
            let m = f64::from_bits(bits);
            let x = f64::from(x);
            if by_x.last().is_none_or(|f| f.x != x) {
                by_x.push(Frequency {
                    x,
                    ln_x: x.ln(),
                    weight: 0.0,
                    sum_ln_m: 0.0,
                    xm: Vec::new(),
                });
            }
            if let Some(f) = by_x.last_mut() {
                f.weight += 1.0;
                f.sum_ln_m += m.ln();
                match f.xm.last_mut() {
                    Some((xm, n)) if *xm == x * m => *n += 1.0,
                    _ => f.xm.push((x * m, 1.0)),
                }
            }
        }
        let total = by_x.iter().map(|f| f.weight).sum();
        Data { total, by_x }
    }

    /// The total log-likelihood with its gradient and Hessian in (p, q, v).
    fn natural(&self, params: &GammaGamma) -> (f64, [f64; 3], [[f64; 3]; 3]) {
        let GammaGamma { p, q, v } = *params;
        let (ln_v, lg_q, psi_q, psi1_q) = (v.ln(), ln_gamma(q), digamma(q), trigamma(q));
        let mut ll = 0.0;
        let mut g = [0.0; 3];
        let mut h = [[0.0; 3]; 3];
        for f in &self.by_x {
            let (x, w) = (f.x, f.weight);
            let px = p * x;
            let (mut s_ln, mut s_inv, mut s_inv2) = (0.0, 0.0, 0.0);
            for &(xm, n) in &f.xm {
                let d = xm + v;
                let inv = 1.0 / d;
                s_ln += n * d.ln();
                s_inv += n * inv;
                s_inv2 += n * inv * inv;
            }
            let (psi_pxq, psi1_pxq) = (digamma(px + q), trigamma(px + q));
            ll += w * (ln_gamma(px + q) - ln_gamma(px) - lg_q + q * ln_v + px * f.ln_x)
                + (px - 1.0) * f.sum_ln_m
                - (px + q) * s_ln;
            g[0] += x * (w * (psi_pxq - digamma(px) + f.ln_x) + f.sum_ln_m - s_ln);
            g[1] += w * (psi_pxq - psi_q + ln_v) - s_ln;
            g[2] += w * q / v - (px + q) * s_inv;
            h[0][0] += x * x * w * (psi1_pxq - trigamma(px));
            h[0][1] += x * w * psi1_pxq;
            h[0][2] -= x * s_inv;
            h[1][1] += w * (psi1_pxq - psi1_q);
            h[1][2] += w / v - s_inv;
            h[2][2] += -w * q / (v * v) + (px + q) * s_inv2;
        }
        optimize::symmetrise(&mut h);
        (ll, g, h)
    }

    fn evaluate(&self, phi: &[f64; 3]) -> Option<Evaluation<3>> {
        let theta = phi.map(f64::exp);
        let (ll, g, h) = self.natural(&GammaGamma {
            p: theta[0],
            q: theta[1],
            v: theta[2],
        });
        let n = self.total;
        let mut e = Evaluation {
            value: -ll / n,
            gradient: [0.0; 3],
            hessian: [[0.0; 3]; 3],
        };
        for i in 0..3 {
            e.gradient[i] = -theta[i] * g[i] / n;
            for j in 0..3 {
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

impl GammaGamma {
    /// The maximum-likelihood estimate on the customers with x > 0 and a positive mean
    /// spend: Newton's method on the log-parameters from three fixed starts scaled to the
    /// mean spend, the best kept.
    pub fn fit(customers: &[History]) -> Result<GammaGammaFit, ClvError> {
        const MODEL: &str = "Gamma-Gamma";
        if customers.is_empty() {
            return Err(ClvError::NoCustomers);
        }
        let data = Data::of(customers);
        if data.total == 0.0 {
            return Err(ClvError::NoRepeatPurchases { model: MODEL });
        }
        let mean = data
            .by_x
            .iter()
            .flat_map(|f| f.xm.iter().map(|&(xm, n)| xm / f.x * n))
            .sum::<f64>()
            / data.total;
        // E[spend] = p v / (q − 1): each start puts it at the mean.
        let starts: Vec<[f64; 3]> = [(4.0, 4.0), (1.0, 3.0), (0.5, 1.5)]
            .iter()
            .map(|&(p, q)| [p, q, mean * (q - 1.0) / p].map(f64::ln))
            .collect();
        let best = minimise(&|phi: &[f64; 3]| data.evaluate(phi), &starts).ok_or(
            ClvError::NotIdentified {
                model: MODEL,
                detail: "the likelihood is not finite at any start".to_owned(),
            },
        )?;
        if !optimize::identified(&best, data.total) {
            return Err(ClvError::NotIdentified {
                model: MODEL,
                detail: format!(
                    "the likelihood has no single maximum for {} with repeat purchases \
                     (p = {:.3e}, q = {:.3e}, v = {:.3e} when it stopped); more customers who \
                     bought again, with spends that differ, are needed",
                    super::customers_text(data.total as usize),
                    best.point[0].exp(),
                    best.point[1].exp(),
                    best.point[2].exp()
                ),
            });
        }
        let theta = best.point.map(f64::exp);
        let standard_errors =
            optimize::log_standard_errors(&best.hessian, data.total).map(|se| GammaGamma {
                p: theta[0] * se[0],
                q: theta[1] * se[1],
                v: theta[2] * se[2],
            });
        Ok(GammaGammaFit {
            params: GammaGamma {
                p: theta[0],
                q: theta[1],
                v: theta[2],
            },
            log_likelihood: -best.value * data.total,
            customers: data.total as usize,
            standard_errors,
            iterations: best.iterations,
        })
    }

    /// The total log-likelihood of the customers the model is fitted on.
    pub fn log_likelihood(&self, customers: &[History]) -> f64 {
        Data::of(customers).natural(self).0
    }

    /// The population mean spend per purchase, p v / (q − 1); `None` when q ≤ 1 (the mean
    /// does not exist).
    pub fn mean_spend(&self) -> Option<f64> {
        (self.q > 1.0).then(|| self.p * self.v / (self.q - 1.0))
    }

    /// Expected spend per purchase of a customer with x repeat purchases of mean m: the
    /// weighted mean (1 − w)·pv/(q−1) + w·m with w = px/(px + q − 1). `None` when q ≤ 1.
    pub fn conditional_expected_spend(&self, frequency: u32, monetary_value: f64) -> Option<f64> {
        let mean = self.mean_spend()?;
        let px = self.p * f64::from(frequency);
        let w = px / (px + self.q - 1.0);
        Some((1.0 - w) * mean + w * monetary_value)
    }
}
