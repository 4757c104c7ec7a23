//! `sc.pp.scale` (semantics reference §4): a fit of per-gene moments (kernel K1,
//! [`atlasflow_core::moments::GeneMoments`]), then a map.
//!
//! - mean_j and var_j from K1 with ddof 1 (n/(n−1) skipped when n == 1); std_j = sqrt(var_j)
//!   with std_j == 0 replaced by 1. As in scanpy the one-pass variance is not clamped, so a
//!   tiny negative variance gives a NaN std (and NaN values for that gene).
//! - With `zero_center` (the default): X becomes dense, x ← (x − mean_j)/std_j in f64, then
//!   clipped to [−max_value, max_value], stored as f32 (`x_dense`).
//! - Without `zero_center`: sparse X stays sparse; each stored value x ← x/std_j, clipped
//!   above only (x > max_value → max_value); dense X likewise, entry by entry.
//! - var gets `mean` and `std` (f64), std with 0 → 1 already applied.
//!
//! Deviations (documented):
//! - squares are computed in f64 from the f32 values; scanpy squares in the input dtype,
//!   which in the tutorial is f64 (our f32 values are the rounding of scanpy's f64 ones);
//! - the output is f32 (scanpy: dense float64 from sparse input); dense f32 input is
//!   computed in one f64 step and rounded once, where scanpy rounds twice (after centring
//!   and after dividing);
//! - `mask_obs` is not supported.

use std::sync::Arc;

use arrow::array::Float64Array;
use atlasflow_core::moments::GeneMoments;
use atlasflow_core::stage::downcast_state;
use atlasflow_core::{CellBatch, FitStage, FitState, Fitted, GeneTable, MapStage, Result, StageError, XView};

use crate::{check_x, map_values};

const STAGE: &str = "scale";

/// `sc.pp.scale`: scale each gene to unit variance, zero mean by default, with optional
/// clipping.
#[derive(Clone, Debug, PartialEq)]
pub struct Scale {
    /// Subtract each gene's mean (scanpy's `zero_center`); densifies X.
    pub zero_center: bool,
    /// Clip the scaled values at this magnitude (scanpy's `max_value`); None for no clip.
    pub max_value: Option<f64>,
}

impl Scale {
    /// Check the parameters: `max_value`, if given, must be a positive number.
    pub fn new(zero_center: bool, max_value: Option<f64>) -> Result<Self> {
        check_max_value(max_value)?;
        Ok(Scale { zero_center, max_value })
    }
}

fn check_max_value(max_value: Option<f64>) -> Result<()> {
    match max_value {
        Some(m) if m.is_nan() || m <= 0.0 => Err(StageError::param(STAGE, "max_value", format!("{m} is not a positive number"))),
        _ => Ok(()),
    }
}

/// The fit state of [`Scale`]: the per-gene moments of the values as stored (f32 → f64).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScaleState(pub GeneMoments);

impl FitState for ScaleState {
    fn fold(&mut self, batch: &CellBatch) -> Result<()> {
        let x = check_x(batch, self.0.n_genes(), STAGE)?;
        match x {
            XView::Csr(v) => self.0.fold_csr(&v, f64::from),
            XView::Dense { data, n_cols } => {
                if n_cols == 0 {
                    self.0.n += batch.num_cells() as u64;
                    Ok(())
                } else {
                    self.0.fold_dense(data, n_cols, f64::from)
                }
            }
        }
    }

    fn merge(&mut self, other: Box<dyn FitState>) -> Result<()> {
        let o = downcast_state::<ScaleState>(other, STAGE)?;
        self.0.merge(&o.0)
    }

    fn size_bytes(&self) -> usize {
        self.0.size_bytes()
    }

    fn save(&self) -> Option<Vec<u8>> {
        atlasflow_core::checkpoint::save(self)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        atlasflow_core::checkpoint::restore(STAGE, bytes, self, |s: &Self| vec![s.0.sum.len(), s.0.sumsq.len()])
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }

    fn subset_genes(&mut self, keep: &[bool]) -> bool {
        self.0.subset(keep).is_ok()
    }
}

impl FitStage for Scale {
    /// Per-gene moments: scale can share the highly-variable-genes pass before it.
    fn gene_separable(&self) -> bool {
        true
    }

    fn new_state(&self, genes: &GeneTable) -> Result<Box<dyn FitState>> {
        check_max_value(self.max_value)?;
        Ok(Box::new(ScaleState(GeneMoments::new(genes.n_genes()))))
    }

    fn finish(&self, state: Box<dyn FitState>, genes: &GeneTable) -> Result<Fitted> {
        let s = downcast_state::<ScaleState>(state, STAGE)?;
        if s.0.n_genes() != genes.n_genes() {
            return Err(StageError::Batch(format!("{STAGE}: state of {} genes for {} genes", s.0.n_genes(), genes.n_genes())));
        }
        if s.0.n == 0 {
            return Err(StageError::data(STAGE, "no cells to compute gene means and standard deviations from"));
        }
        Ok(Fitted::Map(Arc::new(ScaleMap::from_moments(&s.0, self.zero_center, self.max_value))))
    }

    fn state_bytes(&self, n_genes: usize) -> usize {
        GeneMoments::new(0).size_bytes() + 16 * n_genes
    }
}

/// The finished [`Scale`]: per-gene mean and std, applied to each batch.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleMap {
    /// Per-gene mean (var `mean`).
    pub mean: Vec<f64>,
    /// Per-gene std with 0 → 1 (var `std`).
    pub std: Vec<f64>,
    /// Whether to subtract the mean (dense output).
    pub zero_center: bool,
    /// The clip, if any.
    pub max_value: Option<f64>,
}

impl ScaleMap {
    /// Means and stds from merged moments (K1, ddof 1; std 0 → 1).
    pub fn from_moments(m: &GeneMoments, zero_center: bool, max_value: Option<f64>) -> Self {
        let (mean, var) = m.mean_var();
        let std = var.iter().map(|v| v.sqrt()).map(|s| if s == 0.0 { 1.0 } else { s }).collect();
        ScaleMap { mean, std, zero_center, max_value }
    }

    /// One scaled entry: ((x − mean) if zero_center) / std, clipped, in f64, rounded to f32.
    #[inline]
    fn scale(&self, j: usize, x: f32) -> f32 {
        let mut y = if self.zero_center { (f64::from(x) - self.mean[j]) / self.std[j] } else { f64::from(x) / self.std[j] };
        if let Some(m) = self.max_value {
            if y > m {
                y = m;
            } else if self.zero_center && y < -m {
                y = -m;
            }
        }
        y as f32
    }
}

impl MapStage for ScaleMap {
    fn map(&self, batch: CellBatch) -> Result<CellBatch> {
        let g = self.mean.len();
        if !self.zero_center {
            return map_values(&batch, g, STAGE, |_, j, x| self.scale(j, x));
        }
        match check_x(&batch, g, STAGE)? {
            XView::Dense { .. } => map_values(&batch, g, STAGE, |_, j, x| self.scale(j, x)),
            XView::Csr(v) => {
                // Every row starts as the scaled zero, then its stored entries overwrite it.
                let zero_row: Vec<f32> = (0..g).map(|j| self.scale(j, 0.0)).collect();
                let mut out = Vec::with_capacity(v.n_rows() * g);
                for r in 0..v.n_rows() {
                    let start = out.len();
                    out.extend_from_slice(&zero_row);
                    let row = &mut out[start..];
                    let (idx, val) = v.row(r);
                    for (&j, &x) in idx.iter().zip(val) {
                        row[j as usize] = self.scale(j as usize, x);
                    }
                }
                batch.with_x_dense(out, g)
            }
        }
    }

    /// Adds var `mean` and `std` (f64).
    fn genes(&self, genes: &GeneTable) -> Result<GeneTable> {
        genes
            .with_column("mean", Arc::new(Float64Array::from(self.mean.clone())))?
            .with_column("std", Arc::new(Float64Array::from(self.std.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atlasflow_core::Csr;

    fn rows() -> Vec<Vec<f32>> {
        // gene 0: 1,0,3,0 (mean 1, var 2); gene 1: constant 0 (std → 1);
        // gene 2: 2,4,0,6 (mean 3, var 20/3); gene 3: constant 5 (var 0 → std 1)
        vec![vec![1.0, 0.0, 2.0, 5.0], vec![0.0, 0.0, 4.0, 5.0], vec![3.0, 0.0, 0.0, 5.0], vec![0.0, 0.0, 6.0, 5.0]]
    }

    fn batch() -> CellBatch {
        CellBatch::from_csr(vec![], Csr::from_dense(&rows())).expect("b")
    }

    fn fit(s: &Scale, parts: &[CellBatch], g: &GeneTable) -> Arc<dyn MapStage> {
        let mut st = s.new_state(g).expect("state");
        for (i, p) in parts.iter().enumerate() {
            if i == 0 {
                st.fold(p).expect("fold");
            } else {
                let mut o = s.new_state(g).expect("state");
                o.fold(p).expect("fold");
                st.merge(o).expect("merge");
            }
        }
        match s.finish(st, g).expect("finish") {
            Fitted::Map(m) => m,
            Fitted::Refit(_) => panic!("refit"),
        }
    }

    fn genes() -> GeneTable {
        GeneTable::from_names((0..4).map(|j| format!("g{j}")).collect())
    }

    #[test]
    fn zero_center_by_hand() {
        let s = Scale::new(true, Some(1.0)).expect("new");
        let b = batch();
        let m = fit(&s, &[b.slice(0, 1), b.slice(1, 3)], &genes());
        let g = m.genes(&genes()).expect("genes");
        assert_eq!(g.f64_column("mean").expect("ok"), Some(vec![1.0, 0.0, 3.0, 5.0]));
        let std = g.f64_column("std").expect("ok").expect("std");
        assert!((std[0] - 2f64.sqrt()).abs() < 1e-15 && std[1] == 1.0 && std[3] == 1.0);
        assert!((std[2] - (20.0f64 / 3.0).sqrt()).abs() < 1e-15);
        let out = m.map(b.clone()).expect("map");
        let XView::Dense { data, n_cols } = out.x().expect("x") else { panic!("dense") };
        assert_eq!(n_cols, 4);
        // gene 0: (1−1)/√2 = 0, (0−1)/√2 = −0.7071, (3−1)/√2 = 1.414 → clipped to 1
        // gene 2: (2−3)/2.582 = −0.3873, (6−3)/2.582 = 1.162 → 1
        let s2 = (20.0f64 / 3.0).sqrt();
        let expect: Vec<f32> = vec![
            0.0, 0.0, (-1.0 / s2) as f32, 0.0,
            (-1.0 / 2f64.sqrt()) as f32, 0.0, (1.0 / s2) as f32, 0.0,
            1.0, 0.0, -1.0, 0.0,
            (-1.0 / 2f64.sqrt()) as f32, 0.0, 1.0, 0.0,
        ];
        assert_eq!(data, expect.as_slice());
        // dense input gives the same
        let d = b.with_x_dense(rows().concat(), 4).expect("dense");
        let out = m.map(d).expect("map");
        let XView::Dense { data, .. } = out.x().expect("x") else { panic!("dense") };
        assert_eq!(data, expect.as_slice());
    }

    #[test]
    fn no_zero_center_keeps_sparse_and_clips_above_only() {
        let s = Scale::new(false, Some(1.0)).expect("new");
        let b = batch();
        let m = fit(&s, std::slice::from_ref(&b), &genes());
        let out = m.map(b).expect("map");
        let XView::Csr(v) = out.x().expect("x") else { panic!("csr") };
        let s2 = (20.0f64 / 3.0).sqrt();
        // row 0: 1/√2, 2/2.582, 5/1 → clipped to 1
        assert_eq!(&v.values[..3], &[(1.0 / 2f64.sqrt()) as f32, (2.0 / s2) as f32, 1.0]);
        assert_eq!(v.nnz(), 9);
        // negative values are not clipped below without centring
        let neg = CellBatch::from_csr(vec![], Csr::from_dense(&[vec![-4.0], vec![0.0]])).expect("b");
        let g1 = GeneTable::from_names(vec!["a".into()]);
        let m = fit(&Scale::new(false, Some(1.0)).expect("new"), std::slice::from_ref(&neg), &g1);
        let out = m.map(neg).expect("map");
        let XView::Csr(v) = out.x().expect("x") else { panic!("csr") };
        // mean −2, var ((16/2) − 4)·2 = 8, std 2√2: −4/2.828 = −1.414 (not clipped)
        assert_eq!(v.values, &[(-4.0 / 8f64.sqrt()) as f32]);
    }

    #[test]
    fn bad_params_and_shapes() {
        assert!(Scale::new(true, Some(0.0)).is_err());
        assert!(Scale::new(true, Some(f64::NAN)).is_err());
        let s = Scale::new(true, None).expect("new");
        let st = s.new_state(&genes()).expect("state");
        assert!(s.finish(st, &genes()).is_err()); // no cells
        let m = fit(&s, &[batch()], &genes());
        let narrow = CellBatch::from_csr(vec![], Csr::from_dense(&[vec![1.0]])).expect("b");
        assert!(m.map(narrow).is_err());
        // one cell: n/(n−1) skipped, var 0 → std 1, scaled values 0
        let one = batch().slice(0, 1);
        let m = fit(&s, std::slice::from_ref(&one), &genes());
        let out = m.map(one).expect("map");
        let XView::Dense { data, .. } = out.x().expect("x") else { panic!("dense") };
        assert_eq!(data, &[0.0; 4]);
    }
}
