//! The data model every atlasflow crate shares: the cell batch (an Arrow `RecordBatch`, one
//! row per cell, X as CSR list columns), the gene table that travels beside the stream, the
//! `uns` tree, the three stage kinds (map, fit → map, global) and the error type.
//!
//! Nothing here reads files or knows the engine: stage crates depend on this crate alone.

pub mod batch;
pub mod checkpoint;
pub mod contain;
pub mod csr;
pub mod error;
pub mod frame;
pub mod genes;
pub mod moments;
pub mod partial;
pub mod rows;
pub mod stage;
pub mod uns;

pub use batch::{subset_genes, CellBatch, XView};
pub use csr::{Csr, CsrView};
pub use error::{Result, StageError};
pub use frame::{CellFrame, Embedding, FrameKey, Graph, GlobalResult};
pub use genes::GeneTable;
pub use stage::{FitStage, FitState, Fitted, GlobalStage, MapStage};
pub use uns::Uns;
