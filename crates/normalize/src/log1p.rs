//! `sc.pp.log1p` (semantics reference §2.2): x ← ln(1 + x), divided by ln(base) when a
//! base is given, on stored values only (implicit zeros stay 0), sparse or dense.
//!
//! Computed in f64 from the f32 value and rounded once (scanpy: f64 in the tutorial).
//! Writes `uns["log1p"] = {"base": base}` with `Null` for None, as scanpy does; HVG reads it.

use atlasflow_core::{CellBatch, MapStage, Result, StageError, Uns};

use crate::map_values;

const STAGE: &str = "log1p";

/// The log1p transform, optionally in another base.
#[derive(Clone, Debug, PartialEq)]
pub struct Log1p {
    /// The logarithm base (scanpy's `base`); None for the natural log.
    pub base: Option<f64>,
}

impl Log1p {
    /// Check the base: a positive finite number other than 1 (else ln(base) is 0 or NaN).
    pub fn new(base: Option<f64>) -> Result<Self> {
        let s = Log1p { base };
        s.divisor()?;
        Ok(s)
    }

    /// ln(base), or None for the natural log.
    fn divisor(&self) -> Result<Option<f64>> {
        match self.base {
            None => Ok(None),
            Some(b) if b > 0.0 && b.is_finite() && b != 1.0 => Ok(Some(b.ln())),
            Some(b) => Err(StageError::param(STAGE, "base", format!("{b} is not a positive number other than 1"))),
        }
    }
}

/// Smallest f32 input for which 1 + x is exact in f64: x's 24 significant bits then sit
/// at or above 2^-52.
const EXACT_SUM_MIN: f64 = 1.0 / (1u64 << 29) as f64;

/// ln(1 + x) in f64, divided by `ln_base` if given, rounded to f32.
///
/// For x ≥ 2^-29 (every value normalized counts take) 1 + x is exact in f64, so ln(1 + x)
/// is as accurate as log1p; glibc's `log` is several times faster than its `log1p`, and
/// log1p was the dearest step of the Smart-seq2 passes. Smaller, negative and NaN inputs
/// take `ln_1p`.
#[inline]
pub fn log1p_value(x: f32, ln_base: Option<f64>) -> f32 {
    let x = f64::from(x);
    let y = if x >= EXACT_SUM_MIN { (1.0 + x).ln() } else { x.ln_1p() };
    match ln_base {
        Some(d) => (y / d) as f32,
        None => y as f32,
    }
}

impl MapStage for Log1p {
    fn map(&self, batch: CellBatch) -> Result<CellBatch> {
        let d = self.divisor()?;
        map_values(&batch, batch.n_genes(), STAGE, |_, _, x| log1p_value(x, d))
    }

    fn value_local(&self) -> bool {
        true
    }

    fn uns(&self) -> Vec<(String, Uns)> {
        let base = self.base.map_or(Uns::Null, Uns::Float);
        vec![("log1p".to_string(), Uns::map().with("base", base))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atlasflow_core::{Csr, XView};

    #[test]
    fn log1p_by_hand() {
        let rows = vec![vec![0.0, 1.0, 3.0], vec![0.0, 0.0, 0.0]];
        let b = CellBatch::from_csr(vec![], Csr::from_dense(&rows)).expect("b");
        let out = Log1p::new(None).expect("new").map(b.clone()).expect("map");
        let XView::Csr(v) = out.x().expect("x") else { panic!("csr") };
        // ln 2 = 0.693147…, ln 4 = 1.386294… (rounded to f32)
        assert_eq!(v.values, &[2f64.ln() as f32, 4f64.ln() as f32]);
        assert_eq!(v.indptr, &[0, 2, 2]);
        // base 2: log2(2) = 1, log2(4) = 2
        let out = Log1p::new(Some(2.0)).expect("new").map(b.clone()).expect("map");
        let XView::Csr(v) = out.x().expect("x") else { panic!("csr") };
        assert_eq!(v.values, &[1.0, 2.0]);
        let d = b.with_x_dense(rows.concat(), 3).expect("dense");
        let out = Log1p { base: Some(2.0) }.map(d).expect("map");
        let XView::Dense { data, .. } = out.x().expect("x") else { panic!("dense") };
        assert_eq!(data, &[0.0, 1.0, 2.0, 0.0, 0.0, 0.0]);
    }

    /// The fast path rounds to the same f32 as f64's ln_1p (checked on a spread of values
    /// across magnitudes, around the switch and at the extremes).
    #[test]
    fn same_as_ln_1p() {
        let mut x = 1e-12f32;
        let mut differ = 0;
        let mut n = 0;
        while x < 1e30 {
            for v in [x, x * 1.000_001, x * 1.37, x * 2.9] {
                let want = f64::from(v).ln_1p() as f32;
                differ += usize::from(log1p_value(v, None) != want);
                n += 1;
            }
            x *= 1.01;
        }
        assert!(n > 10_000 && differ * 10_000 <= n, "{differ} of {n} differ");
        for v in [0.0, -0.5, -1.0, f32::MIN_POSITIVE, 1.0 / (1u32 << 29) as f32, f32::MAX] {
            let (a, b) = (log1p_value(v, None), f64::from(v).ln_1p() as f32);
            assert!(a == b || (a - b).abs() <= f32::EPSILON * b.abs(), "{v}: {a} vs {b}");
        }
        assert!(log1p_value(f32::NAN, None).is_nan());
        assert_eq!(log1p_value(f32::INFINITY, None), f32::INFINITY);
    }

    #[test]
    fn uns_and_bad_base() {
        assert_eq!(Log1p { base: None }.uns(), vec![("log1p".to_string(), Uns::map().with("base", Uns::Null))]);
        assert_eq!(Log1p { base: Some(10.0) }.uns()[0].1.get("base"), Some(&Uns::Float(10.0)));
        for b in [1.0, 0.0, -2.0, f64::NAN, f64::INFINITY] {
            assert!(Log1p::new(Some(b)).is_err());
        }
        let b = CellBatch::from_csr(vec![], Csr::from_dense(&[vec![1.0]])).expect("b");
        assert!(Log1p { base: Some(1.0) }.map(b).is_err());
    }
}
