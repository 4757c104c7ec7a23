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
