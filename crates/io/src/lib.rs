//! Sources and sinks of atlasflow: the formats cells come from and go to.
//!
//! - [`h5ad`]: AnnData's HDF5 files. [`H5adReader`] streams X by row blocks (never loading
//!   the whole matrix) and reads obs/var into Arrow; [`H5adWriter`] streams row blocks into
//!   a file that anndata 0.12 / scanpy 1.11.5 read with everything in place.
//!
//! Every error names the file and, where there is one, the HDF5 path inside it, because the
//! message reaches the user as it is.

use std::path::{Path, PathBuf};

use thiserror::Error;

pub mod h5ad;

pub use h5ad::{ColumnSummary, H5adReader, H5adSummary, H5adWriter, XKind, XSummary, inspect_h5ad};

/// What went wrong reading or writing a file. Each variant carries the file and, when the
/// problem is inside it, the HDF5 path (e.g. `/X/indptr`).
#[derive(Debug, Error)]
pub enum IoError {
    /// The file is not an HDF5/AnnData file at all, or is truncated or corrupt.
    #[error("not an h5ad file: {}: {reason}", path.display())]
    NotH5ad {
        /// The file.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// The HDF5 library failed on an object of the file.
    #[error("{}: {h5path}: {source}", path.display())]
    Hdf5 {
        /// The file.
        path: PathBuf,
        /// The HDF5 object concerned.
        h5path: String,
        /// The library's error.
        source: hdf5::Error,
    },
    /// The content violates the h5ad format or what atlasflow needs (bad indptr, index out
    /// of range, NaN, CSC X, …); the message names the row, cell or gene.
    #[error("{}: {h5path}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The HDF5 object concerned.
        h5path: String,
        /// What is wrong.
        message: String,
    },
    /// The caller asked for something the file cannot give or take (rows out of range, a
    /// batch of the wrong width, …).
    #[error("{}: {message}", path.display())]
    Usage {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Operating-system I/O (rename, remove, open).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Building or reading a cell batch or gene table failed.
    #[error("{}: {source}", path.display())]
    Core {
        /// The file.
        path: PathBuf,
        /// The core error.
        source: atlasflow_core::StageError,
    },
}

/// Result with an [`IoError`].
pub type Result<T, E = IoError> = std::result::Result<T, E>;

/// Error constructors bound to one file, so call sites stay short and never forget the path.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx<'a> {
    pub(crate) path: &'a Path,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(path: &'a Path) -> Self {
        Ctx { path }
    }

    pub(crate) fn h5(&self, h5path: &str, source: hdf5::Error) -> IoError {
        IoError::Hdf5 { path: self.path.to_path_buf(), h5path: h5path.to_string(), source }
    }

    pub(crate) fn invalid(&self, h5path: &str, message: impl Into<String>) -> IoError {
        IoError::Invalid { path: self.path.to_path_buf(), h5path: h5path.to_string(), message: message.into() }
    }

    pub(crate) fn usage(&self, message: impl Into<String>) -> IoError {
        IoError::Usage { path: self.path.to_path_buf(), message: message.into() }
    }

    pub(crate) fn core(&self, source: atlasflow_core::StageError) -> IoError {
        IoError::Core { path: self.path.to_path_buf(), source }
    }

    pub(crate) fn io(&self, source: std::io::Error) -> IoError {
        IoError::Io { path: self.path.to_path_buf(), source }
    }

    pub(crate) fn arrow(&self, e: arrow::error::ArrowError) -> IoError {
        self.core(atlasflow_core::StageError::Arrow(e))
    }
}
