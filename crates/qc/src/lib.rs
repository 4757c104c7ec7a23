//! Quality control stages with scanpy 1.11.5's semantics (`sc.pp.calculate_qc_metrics`,
//! `sc.pp.filter_cells`, `sc.pp.filter_genes`).
//!
//! - [`qc_metrics`]: per-cell QC columns ([`QcCells`], a map) and per-gene QC columns
//!   ([`QcGenes`], a fit that only annotates the gene table).
//! - [`filter`]: [`FilterCells`] (a map that drops cells) and [`FilterGenes`] (a fit whose
//!   finished state drops genes, [`GeneSubset`]).
//!
//! Values in the stream are f32; every sum is accumulated in f64 and stored as f64. scanpy
//! stores these sums in the X dtype, which in the Census tutorial is float64, so the
//! columns have the tutorial's dtypes; on f32 data scanpy would keep f32 sums (a documented
//! deviation of at most ~2e-7 relative).

pub mod filter;
pub mod qc_metrics;

pub use filter::{FilterCells, FilterGenes, GeneSubset};
pub use qc_metrics::{GeneColumns, QcCells, QcGenes};

use atlasflow_core::CellBatch;

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

    /// Number of entries present.
    pub(crate) fn len(&self) -> usize {
        match self {
            Row::Sparse(_, val) | Row::Dense(val) => val.len(),
        }
    }
}

/// The rows of a batch's X, after checking that X has `n_genes` columns and that every
/// sparse gene index is below it (so kernels may index per-gene arrays directly).
pub(crate) fn rows(batch: &CellBatch, n_genes: usize) -> atlasflow_core::Result<Vec<Row<'_>>> {
    use atlasflow_core::{StageError, XView};
    let x = batch.x()?;
    if x.n_cols() != n_genes {
        return Err(StageError::Batch(format!("batch has {} genes, the stage expects {n_genes}", x.n_cols())));
    }
    match x {
        XView::Csr(v) => {
            let a = v.indptr.first().copied().unwrap_or(0) as usize;
            let b = v.indptr.last().copied().unwrap_or(0) as usize;
            if let Some(&j) = v.indices.get(a..b).and_then(|s| s.iter().find(|&&j| j as usize >= n_genes)) {
                return Err(StageError::Batch(format!("gene index {j} out of range for {n_genes} genes")));
            }
            Ok((0..v.n_rows())
                .map(|r| {
                    let (i, x) = v.row(r);
                    Row::Sparse(i, x)
                })
                .collect())
        }
        XView::Dense { data, n_cols } => {
            if n_cols == 0 {
                return Ok(vec![Row::Dense(&[]); batch.num_cells()]);
            }
            Ok(data.chunks_exact(n_cols).map(Row::Dense).collect())
        }
    }
}
