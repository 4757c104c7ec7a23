//! The error type of the reader: every variant names the file (or object) concerned,
//! because the message reaches the user as it is and a SOMA tree holds hundreds of files.

use thiserror::Error;

/// What went wrong reading a TileDB-SOMA object.
#[derive(Debug, Error)]
pub enum SomaError {
    /// The storage could not list, stat or read a file.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes do not decode: truncated, inconsistent sizes, bad codes.
    #[error("{path}: corrupt: {message}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong, and where.
        message: String,
    },
    /// A format version this reader does not know (it reads 22 and 23).
    #[error(
        "{path}: {what} format version {version} is not supported (this reader reads {supported})"
    )]
    UnsupportedVersion {
        /// The file.
        path: String,
        /// Which structure carries the version (array schema, fragment, ...).
        what: &'static str,
        /// The version found.
        version: u32,
        /// The versions this reader reads.
        supported: &'static str,
    },
    /// A filter this reader cannot undo.
    #[error("{path}: filter {filter} is not supported by this reader")]
    UnsupportedFilter {
        /// The file whose tile uses the filter.
        path: String,
        /// The filter's name (or its numeric code when unknown).
        filter: String,
    },
    /// A valid TileDB feature this reader does not implement yet (dense reads, deletes,
    /// encryption, ...).
    #[error("{path}: not supported: {message}")]
    Unsupported {
        /// The file or object.
        path: String,
        /// The feature.
        message: String,
    },
    /// The object, member or column asked for does not exist.
    #[error("{path}: {message}")]
    NotFound {
        /// The object searched.
        path: String,
        /// What is missing.
        message: String,
    },
    /// The object exists but is of another SOMA kind than the one asked for.
    #[error("{path}: is a {found}, not a {expected}")]
    WrongKind {
        /// The object.
        path: String,
        /// The `soma_object_type` asked for.
        expected: String,
        /// The `soma_object_type` found (or "plain TileDB object").
        found: String,
    },
    /// Building an Arrow array from decoded values failed.
    #[error("{path}: {source}")]
    Arrow {
        /// The array being read.
        path: String,
        /// The Arrow error.
        source: arrow::error::ArrowError,
    },
}

/// Result with [`SomaError`].
pub type Result<T> = std::result::Result<T, SomaError>;

/// A [`SomaError::Corrupt`] for `path`.
pub(crate) fn corrupt(path: &str, message: impl Into<String>) -> SomaError {
    SomaError::Corrupt {
        path: path.to_string(),
        message: message.into(),
    }
}

/// A [`SomaError::Unsupported`] for `path`.
pub(crate) fn unsupported(path: &str, message: impl Into<String>) -> SomaError {
    SomaError::Unsupported {
        path: path.to_string(),
        message: message.into(),
    }
}

/// A [`SomaError::NotFound`] for `path`.
pub(crate) fn not_found(path: &str, message: impl Into<String>) -> SomaError {
    SomaError::NotFound {
        path: path.to_string(),
        message: message.into(),
    }
}
