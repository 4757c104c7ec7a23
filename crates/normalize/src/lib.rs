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

use arrow::array::{Array, AsArray};
use atlasflow_core::{CellBatch, Csr, Result, StageError, XView};

/// The obs name of cell `i` of a batch for error messages (`#i` when there is no string
/// `cell_id` column).
pub(crate) fn cell_name(batch: &CellBatch, i: usize) -> String {
    batch
        .obs_column(atlasflow_core::batch::CELL_ID)
        .and_then(|c| c.as_string_opt::<i32>().filter(|s| i < s.len() && s.is_valid(i)).map(|s| s.value(i).to_string()))
        .unwrap_or_else(|| format!("#{i}"))
}

/// One cell's entries, sparse or dense, for kernels that treat both alike.
#[derive(Clone, Copy)]
pub(crate) enum Row<'a> {
    /// Stored entries of a CSR row (implicit zeros elsewhere).
    Sparse(&'a [u32], &'a [f32]),
    /// Every entry of a dense row.
    Dense(&'a [f32]),
}

impl Row<'_> {
    /// Call `g(gene, value)` for each entry present (stored, or every entry when dense).
    #[inline]
    pub(crate) fn for_each(&self, mut g: impl FnMut(usize, f32)) {
        match self {
            Row::Sparse(idx, val) => idx.iter().zip(val.iter()).for_each(|(&j, &v)| g(j as usize, v)),
            Row::Dense(val) => val.iter().enumerate().for_each(|(j, &v)| g(j, v)),
        }
    }
}

/// Check that X has `n_genes` columns and that every sparse gene index is below it, so
/// kernels may index per-gene arrays directly.
pub(crate) fn check_x<'a>(batch: &'a CellBatch, n_genes: usize, stage: &str) -> Result<XView<'a>> {
    let x = batch.x()?;
    if x.n_cols() != n_genes {
        return Err(StageError::Batch(format!("{stage}: batch has {} genes, the stage expects {n_genes}", x.n_cols())));
    }
    if let XView::Csr(v) = x {
        let a = v.indptr.first().copied().unwrap_or(0) as usize;
        let b = v.indptr.last().copied().unwrap_or(0) as usize;
        if let Some(&j) = v.indices.get(a..b).and_then(|s| s.iter().find(|&&j| j as usize >= n_genes)) {
            return Err(StageError::Batch(format!("{stage}: gene index {j} out of range for {n_genes} genes")));
        }
    }
    Ok(x)
}

/// The rows of a checked X (see [`check_x`]).
pub(crate) fn rows<'a>(x: &XView<'a>, n_cells: usize) -> Vec<Row<'a>> {
    match *x {
        XView::Csr(v) => (0..v.n_rows())
            .map(|r| {
                let (i, x) = v.row(r);
                Row::Sparse(i, x)
            })
            .collect(),
        XView::Dense { n_cols: 0, .. } => vec![Row::Dense(&[]); n_cells],
        XView::Dense { data, n_cols } => data.chunks_exact(n_cols).map(Row::Dense).collect(),
    }
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
