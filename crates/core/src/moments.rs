//! Per-gene first and second moments over a stream of cells: scanpy's `_get_mean_var`
//! (kernel K1 of the semantics reference), shared by `scale`, `highly_variable_genes` and
//! the QC gene columns.
//!
//! The state is a per-gene f64 sum and f64 sum of squares plus the number of cells folded.
//! States merge by adding, in the engine's fixed granule order, so results do not depend on
//! how cells are split into batches beyond that order.
//!
//! Precision: each stored value is transformed by the caller's `f` into f64, squared in
//! f64, and accumulated in f64. scanpy squares in the input dtype before accumulating in
//! f64; in the Census tutorial the input is f64 at this point, so squaring in f64 from the
//! (exactly representable) f32 value matches the tutorial's precision. It does *not*
//! reproduce scanpy's f32 rounding of each square when a user feeds f32 data straight into
//! scanpy (a documented deviation, about 1e-7 relative on the variance).

use crate::csr::CsrView;
use crate::error::{Result, StageError};

/// Per-gene sums and sums of squares over the cells folded so far.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GeneMoments {
    /// Number of cells folded (implicit zeros included: every row counts).
    pub n: u64,
    /// Per-gene f64 sum of `f(x)`.
    pub sum: Vec<f64>,
    /// Per-gene f64 sum of `f(x)²`.
    pub sumsq: Vec<f64>,
}

impl GeneMoments {
    /// An empty state for `n_genes` genes.
    pub fn new(n_genes: usize) -> Self {
        GeneMoments { n: 0, sum: vec![0.0; n_genes], sumsq: vec![0.0; n_genes] }
    }

    /// Keep only the genes where `keep` is true (a per-gene state restricted to a subset).
    pub fn subset(&mut self, keep: &[bool]) -> Result<()> {
        if keep.len() != self.sum.len() {
            return Err(StageError::Batch(format!("gene mask of {} for moments of {} genes", keep.len(), self.sum.len())));
        }
        let pick = |v: &[f64]| v.iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| *x).collect::<Vec<f64>>();
        self.sum = pick(&self.sum);
        self.sumsq = pick(&self.sumsq);
        Ok(())
    }

    /// Number of genes.
    pub fn n_genes(&self) -> usize {
        self.sum.len()
    }

    /// Fold a CSR block. Each stored value `x` contributes `f(x)` and `f(x)²`; implicit
    /// zeros contribute nothing, so `f` must map 0 to 0 (identity, `expm1`, a division…).
    /// Column indices outside the gene range are a malformed batch and give an error.
    pub fn fold_csr(&mut self, x: &CsrView, f: impl Fn(f32) -> f64) -> Result<()> {
        self.check_width(x.n_cols)?;
        let (a, b) = match (x.indptr.first(), x.indptr.last()) {
            (Some(&a), Some(&b)) => (a as usize, b as usize),
            _ => return Ok(()),
        };
        let idx = x.indices.get(a..b).ok_or_else(|| StageError::Batch("CSR indptr beyond indices".into()))?;
        let val = x.values.get(a..b).ok_or_else(|| StageError::Batch("CSR indptr beyond values".into()))?;
        // Sum per row in row order: the same order whatever the block boundaries are.
        for (&j, &v) in idx.iter().zip(val) {
            let j = j as usize;
            if j >= self.sum.len() {
                return Err(StageError::Batch(format!("gene index {j} out of range for {} genes", self.sum.len())));
            }
            let y = f(v);
            self.sum[j] += y;
            self.sumsq[j] += y * y;
        }
        self.n += x.n_rows() as u64;
        Ok(())
    }

    /// Fold dense row-major rows of `n_cols` genes (`data.len()` a multiple of `n_cols`).
    /// Every entry contributes `f(x)`, zeros included, so `f(0)` should be 0 here too for
    /// the dense and sparse results to agree.
    pub fn fold_dense(&mut self, data: &[f32], n_cols: usize, f: impl Fn(f32) -> f64) -> Result<()> {
        self.check_width(n_cols)?;
        if n_cols == 0 {
            return Ok(());
        }
        if !data.len().is_multiple_of(n_cols) {
            return Err(StageError::Batch(format!("{} dense values do not fill rows of {n_cols} genes", data.len())));
        }
        for row in data.chunks_exact(n_cols) {
            for (j, &v) in row.iter().enumerate() {
                let y = f(v);
                self.sum[j] += y;
                self.sumsq[j] += y * y;
            }
        }
        self.n += (data.len() / n_cols) as u64;
        Ok(())
    }

    /// Add the state of the cells that come after this one's.
    pub fn merge(&mut self, other: &GeneMoments) -> Result<()> {
        self.check_width(other.sum.len())?;
        self.n += other.n;
        for (a, b) in self.sum.iter_mut().zip(&other.sum) {
            *a += b;
        }
        for (a, b) in self.sumsq.iter_mut().zip(&other.sumsq) {
            *a += b;
        }
        Ok(())
    }

    /// scanpy's K1: mean = Σx/n, var = (Σx²/n − mean²)·n/(n−1) (ddof 1; the factor is
    /// skipped when n == 1). One-pass, no compensation, no clamping: the variance can come
    /// out slightly negative, as in scanpy. With n == 0 every entry is NaN.
    pub fn mean_var(&self) -> (Vec<f64>, Vec<f64>) {
        let n = self.n as f64;
        let mean: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        let var = mean
            .iter()
            .zip(&self.sumsq)
            .map(|(m, sq)| {
                let v = sq / n - m * m;
                if self.n > 1 { v * (n / (n - 1.0)) } else { v }
            })
            .collect();
        (mean, var)
    }

    /// Bytes held, for the memory budget.
    pub fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + 16 * self.sum.len()
    }

    fn check_width(&self, n_cols: usize) -> Result<()> {
        if n_cols != self.sum.len() {
            return Err(StageError::Batch(format!("moments of {} genes given {n_cols} genes", self.sum.len())));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csr::Csr;

    fn rows() -> Vec<Vec<f32>> {
        vec![vec![1.0, 0.0, 2.0], vec![0.0, 0.0, 4.0], vec![3.0, 0.0, 0.0], vec![0.0, 0.0, 6.0]]
    }

    #[test]
    fn k1_by_hand() {
        // gene 0: values 1,0,3,0 → mean 1, Σx²=10, m2=2.5, var=(2.5−1)·4/3 = 2
        // gene 1: all zero → mean 0, var 0
        // gene 2: 2,4,0,6 → mean 3, Σx²=56, m2=14, var=(14−9)·4/3 = 20/3
        // (numpy: np.var([2,4,0,6], ddof=1) = 6.666…)
        let m = Csr::from_dense(&rows());
        let mut g = GeneMoments::new(3);
        g.fold_csr(&m.view(), f64::from).expect("fold");
        let (mean, var) = g.mean_var();
        assert_eq!(mean, vec![1.0, 0.0, 3.0]);
        assert!((var[0] - 2.0).abs() < 1e-12);
        assert_eq!(var[1], 0.0);
        assert!((var[2] - 20.0 / 3.0).abs() < 1e-12);
        assert_eq!(g.n, 4);
    }

    #[test]
    fn split_merge_and_dense_agree() {
        let m = Csr::from_dense(&rows());
        let mut whole = GeneMoments::new(3);
        whole.fold_csr(&m.view(), f64::from).expect("fold");
        let mut a = GeneMoments::new(3);
        a.fold_csr(&CsrView { indptr: &m.indptr[..2], ..m.view() }, f64::from).expect("a");
        let mut b = GeneMoments::new(3);
        b.fold_csr(&CsrView { indptr: &m.indptr[1..], ..m.view() }, f64::from).expect("b");
        a.merge(&b).expect("merge");
        assert_eq!(a, whole);
        let dense: Vec<f32> = rows().concat();
        let mut d = GeneMoments::new(3);
        d.fold_dense(&dense, 3, f64::from).expect("dense");
        assert_eq!(d, whole);
    }

    #[test]
    fn transform_single_cell_and_errors() {
        let m = Csr::from_dense(&[vec![1.0, 0.0]]);
        let mut g = GeneMoments::new(2);
        g.fold_csr(&m.view(), |x| f64::from(x).exp_m1()).expect("fold");
        let (mean, var) = g.mean_var();
        assert!((mean[0] - (1f64.exp() - 1.0)).abs() < 1e-15);
        assert_eq!(var[0], 0.0); // n == 1: no n/(n−1) factor
        assert!(GeneMoments::new(3).fold_csr(&m.view(), f64::from).is_err());
        assert!(GeneMoments::new(3).merge(&g).is_err());
        assert!(GeneMoments::new(2).fold_dense(&[1.0, 2.0, 3.0], 2, f64::from).is_err());
        assert!(GeneMoments::new(0).mean_var().0.is_empty());
    }
}
