//! Errors of the engine: spec errors point at the YAML line, stage errors name the step.

use std::path::PathBuf;

use atlasflow_core::StageError;
use atlasflow_io::IoError;
use thiserror::Error;

/// Everything that can stop a pipeline.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The YAML spec is malformed or names something that cannot work.
    #[error("{}{}: {message}", file.display(), location(*line, *column))]
    Spec {
        /// The pipeline file.
        file: PathBuf,
        /// 1-based line (0 when unknown).
        line: u64,
        /// 1-based column (0 when unknown).
        column: u64,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A step failed on the data.
    #[error("step {step} ({stage}, {}:{line}): {source}", file.display())]
    Step {
        /// The step id.
        step: String,
        /// The stage name.
        stage: String,
        /// The pipeline file.
        file: PathBuf,
        /// The step's line in the pipeline file.
        line: u64,
        /// The stage's own error.
        source: StageError,
    },
    /// Reading or writing data failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The memory budget cannot hold what a stage needs.
    #[error("memory budget exceeded: {0}")]
    Budget(String),
    /// The data left nothing to work on (e.g. every cell filtered out).
    #[error("{0}")]
    Empty(String),
    /// An input could not be assembled into cell batches.
    #[error("{}: {message}", path.display())]
    Input {
        /// The input file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// A cluster (its scheduler, an executor or a task) failed.
    #[error("cluster {url}: {message}")]
    Cluster {
        /// The scheduler's address as the user gave it (`df://HOST:PORT`).
        url: String,
        /// What failed.
        message: String,
    },
    /// A file system operation on an output failed.
    #[error("{}: {message}", path.display())]
    Output {
        /// The output path.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// `:LINE:COLUMN`, `:LINE` or nothing, as far as they are known (0 = unknown), so that a
/// message never shows a made-up `:0:0`.
fn location(line: u64, column: u64) -> String {
    match (line, column) {
        (0, _) => String::new(),
        (l, 0) => format!(":{l}"),
        (l, c) => format!(":{l}:{c}"),
    }
}

/// Result with an [`EngineError`].
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
