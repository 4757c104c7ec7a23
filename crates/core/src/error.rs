//! The error every stage and kernel returns.

use thiserror::Error;

/// What went wrong inside a stage or kernel. Messages name the stage, the parameter or the
/// genes/cells concerned, because they reach the user as they are.
#[derive(Debug, Error)]
pub enum StageError {
    /// The data do not satisfy what the stage needs (e.g. a missing or invalid gene length).
    #[error("{stage}: {message}")]
    InvalidData {
        /// The stage that refused the data.
        stage: String,
        /// What is wrong, naming genes or cells.
        message: String,
    },
    /// A parameter value cannot work on these data (e.g. more PCs than genes).
    #[error("{stage}: parameter {param}: {message}")]
    InvalidParam {
        /// The stage.
        stage: String,
        /// The parameter name as the YAML spells it.
        param: String,
        /// Why the value cannot work.
        message: String,
    },
    /// The batch does not have the shape the stage expects (an engine or source bug, or a
    /// malformed input file surfaced late).
    #[error("malformed cell batch: {0}")]
    Batch(String),
    /// An Arrow operation failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

impl StageError {
    /// Shorthand for [`StageError::InvalidData`].
    pub fn data(stage: &str, message: impl Into<String>) -> Self {
        StageError::InvalidData { stage: stage.to_string(), message: message.into() }
    }
    /// Shorthand for [`StageError::InvalidParam`].
    pub fn param(stage: &str, param: &str, message: impl Into<String>) -> Self {
        StageError::InvalidParam {
            stage: stage.to_string(),
            param: param.to_string(),
            message: message.into(),
        }
    }
}

/// Result with a [`StageError`].
pub type Result<T, E = StageError> = std::result::Result<T, E>;
