//! Normalization stages with scanpy 1.11.5's semantics:
//!
//! - [`gene_length`] — the Census tutorial's division of counts by `feature_length`;
//! - [`normalize_total`] — `sc.pp.normalize_total` (a map, or fits when it needs a pass);
//! - [`log1p`] — `sc.pp.log1p`;
//! - [`scale`] — `sc.pp.scale` (a fit of per-gene moments, then a map).
//!
//! Precision: stream values are f32. Every stage computes in f64 from the f32 value and
//! rounds to f32 once when storing. scanpy runs the tutorial in float64 from the gene-length
//! step on, so our stored values are the f32 rounding of (nearly) scanpy's f64 values; this
//! is the one documented deviation shared by all stages here.

pub mod gene_length;
pub mod log1p;
pub mod normalize_total;
pub mod scale;

pub use gene_length::GeneLengthNormalize;
pub use log1p::Log1p;
pub use normalize_total::{NormalizeTotal, NormalizeTotalPlan, normalize_total_stage};
pub use scale::{Scale, ScaleMap};

use atlasflow_core::rows;
use atlasflow_core::{CellBatch, Csr, Result, StageError, XView};

/// [`atlasflow_core::rows::checked_x`] with the stage name prefixed to the shape errors
/// (`malformed cell batch: {stage}: …`); errors reading X itself are passed through as is.
pub(crate) fn check_x<'a>(batch: &'a CellBatch, n_genes: usize, stage: &str) -> Result<XView<'a>> {
    let x = batch.x()?;
    rows::check_x(&x, n_genes).map_err(|e| match e {
        StageError::Batch(m) => StageError::Batch(format!("{stage}: {m}")),
        e => e,
    })?;
    Ok(x)
}

/// A new batch whose X has the same structure and each entry `x` of cell `i`, gene `j`
/// replaced by `f(i, j, x)` (stored entries only for CSR; every entry for dense X, so `f`
/// should map 0 to 0 when the structures must agree). X must have `n_genes` columns.
pub(crate) fn map_values(
    batch: &CellBatch,
    n_genes: usize,
    stage: &str,
    f: impl Fn(usize, usize, f32) -> f32,
) -> Result<CellBatch> {
    let x = check_x(batch, n_genes, stage)?;
    match x {
        XView::Csr(v) => {
            let mut values = Vec::with_capacity(v.nnz());
            for i in 0..v.n_rows() {
                let (idx, val) = v.row(i);
                values.extend(idx.iter().zip(val).map(|(&j, &x)| f(i, j as usize, x)));
            }
            let base = v.indptr.first().copied().unwrap_or(0);
            let a = base as usize;
            let indices = v
                .indices
                .get(a..a + values.len())
                .ok_or_else(|| StageError::Batch(format!("{stage}: CSR offsets beyond the indices")))?
                .to_vec();
            let indptr = v.indptr.iter().map(|p| p - base).collect();
            batch.with_x_csr(Csr { indptr, indices, values, n_cols: n_genes })
        }
        XView::Dense { data, n_cols } => {
            let mut out = Vec::with_capacity(data.len());
            if n_cols > 0 {
                for (i, row) in data.chunks_exact(n_cols).enumerate() {
                    out.extend(row.iter().enumerate().map(|(j, &x)| f(i, j, x)));
                }
            }
            batch.with_x_dense(out, n_cols)
        }
    }
}
