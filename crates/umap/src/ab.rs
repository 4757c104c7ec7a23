//! `find_ab_params`: the curve 1/(1 + a·x^(2b)) that umap-learn fits to its target membership
//! (semantics §7.1).
//!
//! umap-learn calls scipy's `curve_fit` (MINPACK Levenberg–Marquardt, a = b = 1 to start) on
//! 300 points x = linspace(0, 3·spread) with targets y = 1 for x < min_dist and
//! exp(−(x − min_dist)/spread) otherwise. The problem has two parameters, so a small
//! hand-written Levenberg–Marquardt with the analytic Jacobian and a 2 × 2 solve does the job:
//! pulling in a general least-squares crate for it would add a dependency for ~60 lines.
//! Run to full convergence it lands on the least-squares minimum that MINPACK approaches
//! (to ~1e-9 on the defaults, a = 0.58303002, b = 1.33416699).

use atlasflow_core::{Result, StageError};

use crate::STAGE;

/// Number of sample points of the fit, as umap-learn.
const N_POINTS: usize = 300;

/// Fit (a, b) for `spread` and `min_dist` as umap-learn's `find_ab_params`.
pub fn find_ab_params(spread: f64, min_dist: f64) -> Result<(f64, f64)> {
    if !(spread.is_finite() && spread > 0.0) {
        return Err(StageError::param(STAGE, "spread", format!("must be > 0, got {spread}")));
    }
    if !(min_dist.is_finite() && min_dist >= 0.0) {
        return Err(StageError::param(STAGE, "min_dist", format!("must be ≥ 0, got {min_dist}")));
    }
    // numpy linspace: start + i·step, step = (stop − start)/(num − 1), last point exact.
    let stop = 3.0 * spread;
    let step = stop / (N_POINTS - 1) as f64;
    let xs: Vec<f64> = (0..N_POINTS)
        .map(|i| if i == N_POINTS - 1 { stop } else { i as f64 * step })
        .collect();
    let ys: Vec<f64> = xs
        .iter()
        .map(|&x| if x < min_dist { 1.0 } else { (-(x - min_dist) / spread).exp() })
        .collect();

    // Residuals r_i = f(x_i) − y_i and Jacobian rows (∂f/∂a, ∂f/∂b).
    let eval = |a: f64, b: f64| -> (f64, [f64; 3], [f64; 2]) {
        let (mut ss, mut jtj, mut jtr) = (0.0, [0.0f64; 3], [0.0f64; 2]);
        for (&x, &y) in xs.iter().zip(&ys) {
            let (p, ln) = if x > 0.0 { (x.powf(2.0 * b), x.ln()) } else { (0.0, 0.0) };
            let den = 1.0 + a * p;
            let f = 1.0 / den;
            let r = f - y;
            let da = -p / (den * den);
            let db = -a * p * 2.0 * ln / (den * den);
            ss += r * r;
            jtj[0] += da * da;
            jtj[1] += da * db;
            jtj[2] += db * db;
            jtr[0] += da * r;
            jtr[1] += db * r;
        }
        (ss, jtj, jtr)
    };

    let (mut a, mut b) = (1.0f64, 1.0f64);
    let mut lambda = 1e-3;
    let (mut ss, mut jtj, mut jtr) = eval(a, b);
    for _ in 0..10_000 {
        // Marquardt's scaling: damp with λ·diag(JᵀJ).
        let m00 = jtj[0] * (1.0 + lambda);
        let m11 = jtj[2] * (1.0 + lambda);
        let m01 = jtj[1];
        let det = m00 * m11 - m01 * m01;
        if !(det.is_finite() && det != 0.0) {
            lambda *= 10.0;
            if lambda > 1e30 {
                break;
            }
            continue;
        }
        let da = -(m11 * jtr[0] - m01 * jtr[1]) / det;
        let db = -(m00 * jtr[1] - m01 * jtr[0]) / det;
        let (na, nb) = (a + da, b + db);
        let (nss, njtj, njtr) = eval(na, nb);
        if nss.is_finite() && nss <= ss {
            let small = da.abs() <= 1e-15 * (1.0 + a.abs()) && db.abs() <= 1e-15 * (1.0 + b.abs());
            a = na;
            b = nb;
            let done = small || (ss - nss) <= 1e-18 * ss.max(1e-300);
            ss = nss;
            jtj = njtj;
            jtr = njtr;
            lambda = (lambda / 10.0).max(1e-15);
            if done {
                break;
            }
        } else {
            lambda *= 10.0;
            if lambda > 1e30 {
                break;
            }
        }
    }
    if !(a.is_finite() && b.is_finite()) {
        return Err(StageError::data(
            STAGE,
            format!("the a/b curve fit failed for spread={spread}, min_dist={min_dist}"),
        ));
    }
    Ok((a, b))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_umap_learn() {
        let (a, b) = find_ab_params(1.0, 0.5).unwrap();
        assert!((a - 0.5830300203414425).abs() < 1e-6, "a = {a}");
        assert!((b - 1.3341669924314914).abs() < 1e-6, "b = {b}");
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(find_ab_params(0.0, 0.5).is_err());
        assert!(find_ab_params(1.0, f64::NAN).is_err());
    }
}
