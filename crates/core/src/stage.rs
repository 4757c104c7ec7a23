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
//! granule gets its own state, and states merge in granule order within fixed segments of
//! granules, then segment by segment. That is what makes results independent of batch
//! size, thread count and cluster tasks: a state's `merge` need not be commutative or
//! associative, only run in that fixed tree.

use std::any::Any;
use std::sync::Arc;

use crate::batch::CellBatch;
use crate::error::Result;
use crate::genes::GeneTable;
use crate::frame::{CellFrame, FrameKey, GlobalResult};
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

    /// Merge the state of the following granule (or segment) into this one. The engine
    /// always merges in order, so `self` covers the cells before `other`.
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

    /// The merged state as bytes, saved after a pass so that an interrupted run can resume
    /// there (`--resume`) instead of reading the source again. None (the default) when the
    /// state cannot be saved: the engine then runs that pass again on resume.
    fn save(&self) -> Option<Vec<u8>> {
        None
    }

    /// Replace this fresh state (from [`FitStage::new_state`]) by one that [`FitState::save`]
    /// wrote. Refuses bytes that do not decode or whose shape differs from this state's.
    fn restore(&mut self, _bytes: &[u8]) -> Result<()> {
        Err(crate::error::StageError::Batch("this fit state cannot be restored from a checkpoint".into()))
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

/// A stage that needs every cell at once, on the small in-memory [`CellFrame`] the stream
/// leaves behind (obs columns and embeddings such as `X_pca`): neighbors, UMAP, Leiden.
/// The engine checks [`GlobalStage::memory_bytes`] against the budget before it starts, runs
/// the global stages in spec order, each seeing what the earlier ones added, and writes the
/// result with the outputs.
pub trait GlobalStage: Send + Sync {
    /// What it reads from the frame (obsm/obsp keys, obs columns), checked before any pass
    /// runs so that a missing input is a spec error, not a late failure.
    fn reads(&self) -> Vec<FrameKey> {
        Vec::new()
    }

    /// What it adds to the frame, so that later stages' [`GlobalStage::reads`] can be checked.
    fn writes(&self) -> Vec<FrameKey>;

    /// Bytes it will hold at peak on this frame (beyond the frame itself), for the budget.
    fn memory_bytes(&self, frame: &CellFrame) -> usize;

    /// Compute on all cells.
    fn run(&self, frame: &CellFrame) -> Result<GlobalResult>;
}
