//! The three kinds of stage that let one engine stream everything.
//!
//! - [`MapStage`]: batch in, batch out, no state (normalize_total, log1p, filter_cells, a
//!   gene subset, a projection onto PCs).
//! - [`FitStage`]: a pass folds batches into a small mergeable [`FitState`]; the finished
//!   state becomes a map (filter_genes, highly_variable_genes, scale, PCA) plus var columns
//!   and `uns` entries.
//! - [`GlobalStage`]: runs on a small in-memory result of the whole stream (neighbors,
//!   UMAP, Leiden on `X_pca`).
//!
//! The engine cuts the stream into granules whose boundaries depend only on the data; each
//! granule gets its own state, and states merge in granule order. That is what makes
//! results independent of batch size and thread count: a state's `merge` need not be
//! commutative, only run in that fixed order.

use std::any::Any;
use std::sync::Arc;

use crate::batch::CellBatch;
use crate::error::Result;
use crate::genes::GeneTable;
use crate::uns::Uns;

/// A stateless per-batch transformation.
pub trait MapStage: Send + Sync {
    /// Transform one batch. The batch's genes are those of [`MapStage::genes`]'s input.
    fn map(&self, batch: CellBatch) -> Result<CellBatch>;

    /// The gene table after this stage, given the one before (unchanged by default).
    fn genes(&self, genes: &GeneTable) -> Result<GeneTable> {
        Ok(genes.clone())
    }

    /// Entries this stage adds to `uns` (none by default).
    fn uns(&self) -> Vec<(String, Uns)> {
        Vec::new()
    }

    /// `Some(keep)` when the map only drops genes (values untouched), e.g. the highly
    /// variable subset: a per-gene fit after it can then share the pass before it.
    fn gene_mask(&self) -> Option<Vec<bool>> {
        None
    }

    /// True when the map transforms each value alone, whatever its gene or cell (log1p):
    /// a gene subset that follows it may then run first, so the map touches only the kept
    /// genes. The result is the same bits either way.
    fn value_local(&self) -> bool {
        false
    }
}

/// The mergeable state a fit folds batches into.
pub trait FitState: Send + Any {
    /// Fold one batch of the fit's input into the state.
    fn fold(&mut self, batch: &CellBatch) -> Result<()>;

    /// Merge the state of the following granule into this one. The engine always merges
    /// in granule order, so `self` covers the cells before `other`.
    fn merge(&mut self, other: Box<dyn FitState>) -> Result<()>;

    /// Bytes held, for the memory budget.
    fn size_bytes(&self) -> usize;

    /// For downcasting in `merge` and `finish`.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;

    /// Keep only the genes where `keep` is true, for states that are per gene. Returns false
    /// (the default) when the state cannot be restricted, and the engine then gives the fit
    /// a pass of its own.
    fn subset_genes(&mut self, _keep: &[bool]) -> bool {
        false
    }
}

/// What a finished fit gives the rest of the pipeline.
pub enum Fitted {
    /// The map applied to the stream after the fit (e.g. [`Identity`] with new var columns
    /// for fits that only annotate).
    Map(Arc<dyn MapStage>),
    /// Another pass is needed first: e.g. normalize_total with exclude_highly_expressed and
    /// no target_sum finds the excluded genes, then the median of the remaining totals.
    Refit(Arc<dyn FitStage>),
}

/// A stage that needs a pass over all cells before it can transform any.
pub trait FitStage: Send + Sync {
    /// A new, empty state for the stream whose genes are `genes`.
    fn new_state(&self, genes: &GeneTable) -> Result<Box<dyn FitState>>;

    /// Turn the merged state into the map that follows.
    fn finish(&self, state: Box<dyn FitState>, genes: &GeneTable) -> Result<Fitted>;

    /// Bytes one state will hold for `n_genes` genes, for the memory plan.
    fn state_bytes(&self, n_genes: usize) -> usize;

    /// True when the stream after this stage does not depend on the state (e.g. per-gene
    /// QC columns): the fit then rides along in an earlier pass instead of forcing one.
    fn annotates_only(&self) -> bool {
        false
    }

    /// True when the finished map is certain to only drop genes (see
    /// [`MapStage::gene_mask`]): a per-gene fit right after it then folds in the same pass,
    /// on all genes, and is restricted to the kept ones afterwards ("fits needing the same
    /// statistics share a pass": highly_variable_genes with subset, then scale).
    fn finishes_as_gene_subset(&self) -> bool {
        false
    }

    /// True when this fit's state is per gene and supports [`FitState::subset_genes`].
    fn gene_separable(&self) -> bool {
        false
    }
}

/// Downcast a boxed state to its concrete type, or say which stage got a foreign one.
pub fn downcast_state<T: 'static>(state: Box<dyn FitState>, stage: &str) -> Result<Box<T>> {
    state
        .into_any()
        .downcast::<T>()
        .map_err(|_| crate::error::StageError::Batch(format!("{stage}: state of another stage")))
}

/// The identity map, for fits that only annotate the gene table.
pub struct Identity;

impl MapStage for Identity {
    fn map(&self, batch: CellBatch) -> Result<CellBatch> {
        Ok(batch)
    }
}

/// What a global stage returns: columns and matrices to add to the output.
#[derive(Default)]
pub struct GlobalResult {
    /// New obs columns, one value per cell in stream order (e.g. `leiden`).
    pub obs: Vec<(String, arrow::array::ArrayRef)>,
    /// New embeddings: key, row-major values, width (e.g. `X_umap`).
    pub obsm: Vec<(String, Vec<f32>, usize)>,
    /// New cell × cell graphs (e.g. `distances`, `connectivities`), CSR with `n_cols` = cells.
    pub obsp: Vec<(String, crate::csr::Csr)>,
    /// New `uns` entries.
    pub uns: Vec<(String, Uns)>,
}

/// A stage that needs every cell at once, on a small in-memory result of the stream — an
/// embedding such as `X_pca` (neighbors, UMAP, Leiden). The engine gathers the input rows,
/// checks [`GlobalStage::memory_bytes`] against the budget before it starts, and adds the
/// result to the output. No stage of the preprocessing needs one; neighbors, UMAP and
/// Leiden implement it.
pub trait GlobalStage: Send + Sync {
    /// The embedding (obsm key) it reads, e.g. `X_pca`.
    fn input_key(&self) -> &str;

    /// Bytes it will hold for `n_cells` cells of `width` columns, for the budget check.
    fn memory_bytes(&self, n_cells: usize, width: usize) -> usize;

    /// Compute on all cells: `data` is row-major `n_cells × width`.
    fn run(&self, data: &[f32], n_cells: usize, width: usize) -> Result<GlobalResult>;
}
