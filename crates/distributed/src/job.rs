//! What every task of a cluster run needs to rebuild the run's plan: the pipeline as the
//! user wrote it, the `--set` overrides, and where the input is.

use std::path::{Path, PathBuf};

use atlasflow_engine::{EngineError, Plan, PipelineSpec, RunOptions};
use serde::{Deserialize, Serialize};

/// A pipeline run as its tasks see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The pipeline file (for messages; it need not exist on the executors).
    pub file: PathBuf,
    /// The pipeline's YAML text.
    pub text: String,
    /// `--set` overrides, in order.
    pub set: Vec<String>,
    /// The source every executor reads: an absolute path on shared storage, or a URL.
    pub input: PathBuf,
    /// Cells per read from the source.
    pub read_block: usize,
}

impl JobSpec {
    /// The job of `plan` run with `opts`: the input is made absolute, since executors run
    /// in other directories.
    pub fn new(plan: &Plan, set: &[String], opts: &RunOptions) -> Self {
        let input = atlasflow_engine::exec::source_path(plan, opts);
        let is_url = input.to_string_lossy().contains("://");
        let input = if is_url { input } else { std::path::absolute(&input).unwrap_or(input) };
        JobSpec { file: plan.spec.file.clone(), text: plan.spec.text.clone(), set: set.to_vec(), input, read_block: opts.read_block }
    }

    /// The plan, rebuilt as the client built it.
    pub fn plan(&self) -> Result<Plan, EngineError> {
        let mut spec = PipelineSpec::parse(&self.file, &self.text)?;
        for s in &self.set {
            spec.set_param(s)?;
        }
        Plan::new(spec)
    }

    /// Run options for a task with `threads` worker threads and a `memory_bytes` budget.
    pub fn options(&self, threads: usize, memory_bytes: u64) -> RunOptions {
        RunOptions {
            threads,
            memory_bytes,
            read_block: self.read_block,
            out_dir: None,
            input: Some(self.input.clone()),
            resume: false,
        }
    }

    /// The input as the user should see it in messages.
    pub fn input(&self) -> &Path {
        &self.input
    }
}
