//! Minimising a smooth function of a few parameters (the models' negative mean
//! log-likelihood in log-parameters) by Newton's method with Levenberg–Marquardt damping:
//! deterministic, quadratically convergent near the optimum, and safe far from it (a step
//! is taken only if it lowers the function; otherwise the damping grows until it does).

/// The function, its gradient and its Hessian at one point.
#[derive(Debug, Clone, Copy)]
pub struct Evaluation<const N: usize> {
    pub value: f64,
    pub gradient: [f64; N],
    pub hessian: [[f64; N]; N],
}

/// Where a run from one start ended.
#[derive(Debug, Clone, Copy)]
pub struct Minimum<const N: usize> {
    pub point: [f64; N],
    pub value: f64,
    pub gradient: [f64; N],
    pub hessian: [[f64; N]; N],
    pub iterations: usize,
    /// The gradient vanished (or the steps did) with every coordinate inside `BOUND`.
    pub converged: bool,
    /// A coordinate ran past `BOUND`: the optimum is at the edge of the parameter space.
    pub ran_away: bool,
}

/// Largest gradient entry at which a point counts as the minimum.
const GRADIENT_TOLERANCE: f64 = 1e-10;
/// Undamped steps smaller than this (in every coordinate: parameters changing by less
/// than this, relatively) end the run as converged.
const STEP_TOLERANCE: f64 = 1e-9;
/// Where no step lowers the function any more (rounding), a gradient this small is
/// converged too: the sums of many terms leave noise of about this size.
const ROUNDING_GRADIENT: f64 = 1e-7;
/// Longest step in any coordinate (log-parameters: a factor of e⁴ at most).
const MAX_STEP: f64 = 4.0;
/// A log-parameter beyond ±BOUND (a parameter above 5e10 or below 2e-11) has run away.
pub const BOUND: f64 = 25.0;
const MAX_ITERATIONS: usize = 300;

/// Minimises from each start and keeps the lowest minimum found (the first start on a
/// tie). The first start runs to the end; the others are there to catch a second, better
/// optimum, so each of them stops as soon as it reaches the first one's (every
/// log-parameter within `SAME_POINT`, where Newton's method would only polish it), and
/// they run side by side on threads of their own. `f` returns `None` where the function
/// is not defined or not finite.
pub fn minimise<const N: usize>(
    f: &(impl Fn(&[f64; N]) -> Option<Evaluation<N>> + Sync),
    starts: &[[f64; N]],
) -> Option<Minimum<N>> {
    let (first, rest) = starts.split_first()?;
    let first = newton(f, *first, None);
    let target = first.filter(|m| m.converged).map(|m| m.point);
    let others: Vec<Option<Minimum<N>>> = std::thread::scope(|scope| {
        let runs: Vec<_> = rest
            .iter()
            .map(|start| scope.spawn(move || newton(f, *start, target.as_ref())))
            .collect();
        runs.into_iter()
            .map(|run| {
                run.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut best = first;
    for m in others.into_iter().flatten() {
        if best.is_none_or(|b| m.value < b.value) {
            best = Some(m);
        }
    }
    best
}

/// Log-parameters this close (in every coordinate: parameters within 1%) to a converged
/// minimum are at it: from there the method only polishes the same point.
const SAME_POINT: f64 = 1e-2;

fn max_abs<const N: usize>(v: &[f64; N]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Newton's method from `start`; `None` where `f` is undefined at the start, or when the
/// run reaches `known` (a minimum already found), which it then has nothing to add to.
fn newton<const N: usize>(
    f: &impl Fn(&[f64; N]) -> Option<Evaluation<N>>,
    start: [f64; N],
    known: Option<&[f64; N]>,
) -> Option<Minimum<N>> {
    let mut x = start;
    let mut e = f(&x)?;
    let mut lambda = 0.0_f64;
    let mut iterations = 0;
    let mut converged = false;
    let mut ran_away = false;
    while iterations < MAX_ITERATIONS {
        if max_abs(&e.gradient) <= GRADIENT_TOLERANCE {
            converged = true;
            break;
        }
        iterations += 1;
        let scale = (0..N).fold(1e-12_f64, |m, i| m.max(e.hessian[i][i].abs()));
        let mut step_taken = None;
        for _ in 0..60 {
            let mut a = e.hessian;
            for (i, row) in a.iter_mut().enumerate() {
                row[i] += lambda;
            }
            let mut rhs = e.gradient.map(|g| -g);
            if cholesky_solve(&mut a, &mut rhs) {
                let longest = max_abs(&rhs);
                if longest > MAX_STEP {
                    for s in &mut rhs {
                        *s *= MAX_STEP / longest;
                    }
                }
                let mut next = x;
                for (n, s) in next.iter_mut().zip(&rhs) {
                    *n += s;
                }
                if let Some(en) = f(&next) {
                    // Lower, or as low within rounding with a smaller gradient (near the
                    // optimum the values differ only in their last bits).
                    let tie = (en.value - e.value).abs() <= 4.0 * f64::EPSILON * e.value.abs()
                        && max_abs(&en.gradient) < max_abs(&e.gradient);
                    if en.value < e.value || tie {
                        step_taken = Some((next, en, max_abs(&rhs), lambda));
                        break;
                    }
                }
            }
            lambda = if lambda == 0.0 {
                1e-3 * scale
            } else {
                lambda * 10.0
            };
        }
        let Some((next, en, length, damping)) = step_taken else {
            // No step lowers the function: as far as the arithmetic goes.
            converged = max_abs(&e.gradient) <= ROUNDING_GRADIENT;
            break;
        };
        x = next;
        e = en;
        lambda = if lambda < 1e-4 * scale {
            0.0
        } else {
            lambda / 10.0
        };
        if max_abs(&x) > BOUND {
            ran_away = true;
            break;
        }
        if let Some(k) = known
            && (0..N).all(|i| (x[i] - k[i]).abs() <= SAME_POINT)
        {
            return None;
        }
        // A tiny undamped Newton step: the optimum is closer than that (quadratically).
        if length <= STEP_TOLERANCE && damping == 0.0 {
            converged = true;
            break;
        }
    }
    Some(Minimum {
        point: x,
        value: e.value,
        gradient: e.gradient,
        hessian: e.hessian,
        iterations,
        converged: converged && !ran_away,
        ran_away,
    })
}

/// Solves A s = b in place (A symmetric positive definite, overwritten by its Cholesky
/// factor; b by s). False when A is not positive definite.
#[expect(
    clippy::needless_range_loop,
    reason = "matrix code reads best with indexes"
)]
fn cholesky_solve<const N: usize>(a: &mut [[f64; N]; N], b: &mut [f64; N]) -> bool {
    for j in 0..N {
        let mut d = a[j][j];
        for k in 0..j {
            d -= a[j][k] * a[j][k];
        }
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j][j] = d;
        for i in j + 1..N {
            let mut s = a[i][j];
            for k in 0..j {
                s -= a[i][k] * a[j][k];
            }
            a[i][j] = s / d;
        }
    }
    for i in 0..N {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i][k] * b[k];
        }
        b[i] = s / a[i][i];
    }
    for i in (0..N).rev() {
        let mut s = b[i];
        for k in i + 1..N {
            s -= a[k][i] * b[k];
        }
        b[i] = s / a[i][i];
    }
    true
}

/// The largest standard error of a log-parameter accepted as an estimate: beyond it
/// (a factor of e⁵ ≈ 150 either way) the data do not pin the parameter down.
pub const MAX_LOG_STANDARD_ERROR: f64 = 5.0;

/// The standard errors of the log-parameters at a minimum of the negative mean
/// log-likelihood of `n` observations: √((H⁻¹)ᵢᵢ / n). `None` when H is not invertible.
pub fn log_standard_errors<const N: usize>(h: &[[f64; N]; N], n: f64) -> Option<[f64; N]> {
    let inv = inverse(h)?;
    let mut se = [0.0; N];
    for i in 0..N {
        se[i] = (inv[i][i] / n).sqrt();
    }
    se.iter().all(|s| s.is_finite()).then_some(se)
}

/// Whether a minimum of the negative mean log-likelihood of `n` observations is an
/// estimate: converged, inside the bounds, with a Hessian that is positive definite and
/// not flat in any direction, and every log-parameter known to within
/// `MAX_LOG_STANDARD_ERROR`.
pub fn identified<const N: usize>(m: &Minimum<N>, n: f64) -> bool {
    m.converged
        && well_conditioned(&m.hessian)
        && log_standard_errors(&m.hessian, n)
            .is_some_and(|se| se.iter().all(|&s| s <= MAX_LOG_STANDARD_ERROR))
}

/// Whether a Hessian at a minimum pins the point down: positive definite once scaled to a
/// unit diagonal, with no direction flatter than 1e-10 of the others (a flat direction
/// means the data do not tell the parameters apart).
#[expect(
    clippy::needless_range_loop,
    reason = "matrix code reads best with indexes"
)]
pub fn well_conditioned<const N: usize>(h: &[[f64; N]; N]) -> bool {
    let mut scaled = *h;
    for i in 0..N {
        if !(h[i][i] > 0.0 && h[i][i].is_finite()) {
            return false;
        }
        for j in 0..N {
            scaled[i][j] = h[i][j] / (h[i][i] * h[j][j]).sqrt();
        }
    }
    for i in 0..N {
        scaled[i][i] -= 1e-10;
    }
    let mut rhs = [0.0; N];
    cholesky_solve(&mut scaled, &mut rhs)
}

/// The inverse of a symmetric positive definite matrix (for standard errors); `None` when
/// it is not positive definite.
pub fn inverse<const N: usize>(m: &[[f64; N]; N]) -> Option<[[f64; N]; N]> {
    let mut out = [[0.0; N]; N];
    for j in 0..N {
        let mut a = *m;
        let mut e = [0.0; N];
        e[j] = 1.0;
        if !cholesky_solve(&mut a, &mut e) {
            return None;
        }
        for i in 0..N {
            out[i][j] = e[i];
        }
    }
    Some(out)
}

/// Fills the lower triangle of a matrix from its upper triangle.
#[expect(
    clippy::needless_range_loop,
    reason = "matrix code reads best with indexes"
)]
pub fn symmetrise<const N: usize>(h: &mut [[f64; N]; N]) {
    for i in 0..N {
        for j in 0..i {
            h[i][j] = h[j][i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rosenbrock's valley, a classic hard case for Newton's method without damping.
    fn rosenbrock(p: &[f64; 2]) -> Option<Evaluation<2>> {
        let [x, y] = *p;
        Some(Evaluation {
            value: (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2),
            gradient: [
                -2.0 * (1.0 - x) - 400.0 * x * (y - x * x),
                200.0 * (y - x * x),
            ],
            hessian: [
                [2.0 - 400.0 * (y - 3.0 * x * x), -400.0 * x],
                [-400.0 * x, 200.0],
            ],
        })
    }

    #[test]
    fn the_damped_newton_method_finds_the_bottom_of_rosenbrocks_valley() {
        let m = minimise(&rosenbrock, &[[-1.2, 1.0], [3.0, -2.0]]).expect("a minimum");
        assert!(m.converged, "{m:?}");
        assert!(
            (m.point[0] - 1.0).abs() < 1e-9 && (m.point[1] - 1.0).abs() < 1e-9,
            "{m:?}"
        );
    }

    #[test]
    fn a_function_falling_forever_ends_flat_or_out_of_bounds() {
        let f = |p: &[f64; 1]| {
            Some(Evaluation {
                value: (-p[0]).exp(),
                gradient: [-(-p[0]).exp()],
                hessian: [[(-p[0]).exp()]],
            })
        };
        let m = minimise(&f, &[[0.0]]).expect("a run");
        assert!(m.ran_away || m.hessian[0][0] < 1e-9, "{m:?}");
    }

    #[test]
    fn well_conditioned_means_positive_definite_once_scaled() {
        assert!(well_conditioned(&[[4.0, 0.001], [0.001, 1e-6]]));
        assert!(!well_conditioned(&[[1.0, 1.0], [1.0, 1.0]]));
        assert!(!well_conditioned(&[[1.0, 0.0], [0.0, -1.0]]));
    }

    #[test]
    #[expect(
        clippy::needless_range_loop,
        reason = "matrix code reads best with indexes"
    )]
    fn the_inverse_undoes_the_matrix() {
        let m = [[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]];
        let inv = inverse(&m).expect("positive definite");
        for i in 0..3 {
            for j in 0..3 {
                let v: f64 = (0..3).map(|k| m[i][k] * inv[k][j]).sum();
                assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-14);
            }
        }
        assert!(inverse(&[[1.0, 2.0], [2.0, 1.0]]).is_none());
    }
}
