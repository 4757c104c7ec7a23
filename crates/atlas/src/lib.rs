//! The atlas store: the CELLxGENE Census data model as a directory of Parquet files.
//!
//! A store holds what the Census holds — a dataset table, and per organism obs, var (with
//! `feature_length`), X/raw and the dataset × gene presence matrix — so a pipeline can pick
//! cells the way the Census tutorial does (a value filter on obs, the genes its datasets
//! measured) without the Census service or TileDB. [`layout`] says where each table lives.
//!
//! - [`ingest()`]: build or extend a store from h5ad files, in bounded memory.
//! - [`AtlasStore`]: open a store, list its datasets, run SQL over its tables with DataFusion.
//! - [`CensusReader`]: the cells a [`CensusQuery`] selects from a store or a TileDB-SOMA
//!   Census ([`soma_census`]), streamed by row range.
//! - [`filter`]: SOMA value filters (`dataset_id == '…' and tissue in ['liver']`).
//!
//! The store gets its own crate because it brings DataFusion's SQL layer, which the rest of
//! the engine does not need.

use std::path::{Path, PathBuf};

use thiserror::Error;

pub mod census;
pub mod filter;
pub mod ingest;
pub mod layout;
pub mod reader;
pub mod soma_census;
pub mod store;

pub use census::{CensusQuery, GeneSelection, Selection, StoreReader};
pub use reader::{CensusReader, is_url};
pub use soma_census::SomaCensusReader;
pub use filter::{FilterError, ValueFilter};
pub use ingest::{IngestOptions, IngestReport, ingest};
pub use store::AtlasStore;

/// What went wrong with a store, a query or an ingest. Every message names the file, the
/// table or the filter concerned, because it reaches the user as it is.
#[derive(Debug, Error)]
pub enum AtlasError {
    /// The directory is not a store, or a file of it is missing, corrupt or of another version.
    #[error("{}: {message}", path.display())]
    Store {
        /// The store or the file inside it.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An input of `ingest` cannot be taken (duplicate dataset, no gene lengths, negative counts…).
    #[error("{}: {message}", path.display())]
    Input {
        /// The input file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A value filter does not parse or does not fit the table it filters.
    #[error("{which}: {source}")]
    Filter {
        /// `obs_filter` or `var_filter`.
        which: String,
        /// The parse or check error.
        source: FilterError,
    },
    /// The query is valid but cannot be answered (matches no cells, unknown organism…).
    #[error("{0}")]
    Query(String),
    /// An h5ad input failed to read.
    #[error(transparent)]
    H5ad(#[from] atlasflow_io::IoError),
    /// An Arrow kernel failed on a store's data.
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A TileDB-SOMA Census could not be read (the message names the file).
    #[error(transparent)]
    Soma(#[from] atlasflow_soma::SomaError),
    /// DataFusion failed (a SQL error, or a Parquet file it could not read).
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
}

/// Result with [`AtlasError`].
pub type Result<T> = std::result::Result<T, AtlasError>;

pub(crate) fn store_err(path: &Path, message: impl Into<String>) -> AtlasError {
    AtlasError::Store { path: path.to_path_buf(), message: message.into() }
}

pub(crate) fn input_err(path: &Path, message: impl Into<String>) -> AtlasError {
    AtlasError::Input { path: path.to_path_buf(), message: message.into() }
}

/// Run a DataFusion future to completion on a small runtime of our own: the engine's
/// threads are not async, and queries over a store are short.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| AtlasError::Query(format!("cannot start the query runtime: {e}")))?;
    Ok(rt.block_on(f))
}
