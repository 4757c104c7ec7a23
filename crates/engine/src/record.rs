//! The run record (`run.json`) written beside the outputs: what ran, on what, how long,
//! with how much memory, and how many cells and genes went in and out of each step.

use std::path::Path;

use serde::Serialize;

use crate::exec::RunOptions;
use crate::plan::Plan;

/// One pass over the data.
#[derive(Clone, Debug, Serialize)]
pub struct PassRecord {
    /// What the pass did.
    pub label: String,
    /// Cells read.
    pub cells: u64,
    /// Wall time.
    pub seconds: f64,
    /// Peak resident memory of the process during the pass (sampled; see [`crate::rss`]).
    pub peak_rss_bytes: u64,
    /// On a cluster: the tasks of the pass each executor ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks_by_executor: Option<std::collections::BTreeMap<String, usize>>,
}

/// One step.
#[derive(Clone, Debug, Serialize)]
pub struct StepRecord {
    /// Step id.
    pub id: String,
    /// Stage name.
    pub stage: String,
    /// Time spent in the step, summed over threads and passes.
    pub cpu_seconds: f64,
    /// Cells into the step (final pass).
    pub cells_in: u64,
    /// Cells out of the step (final pass).
    pub cells_out: u64,
    /// Genes into the step.
    pub genes_in: usize,
    /// Genes out of the step.
    pub genes_out: usize,
}

/// Everything `run.json` holds.
#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    /// atlasflow's version.
    pub atlasflow_version: String,
    /// Pipeline name.
    pub pipeline: String,
    /// The pipeline file.
    pub spec_file: String,
    /// The pipeline text as run (before `--set` overrides, which are listed in `overrides`).
    pub spec: String,
    /// `--set` overrides.
    pub overrides: Vec<String>,
    /// Seed.
    pub seed: u64,
    /// The input file.
    pub input: String,
    /// Threads.
    pub threads: usize,
    /// Memory budget in bytes.
    pub memory_budget_bytes: u64,
    /// Outputs written.
    pub outputs: Vec<String>,
    /// Passes in order.
    pub passes: Vec<PassRecord>,
    /// Spills written (later passes read them instead of the source).
    pub spills: Vec<String>,
    /// Passes taken from the checkpoints of an interrupted run (`--resume`), not run again.
    pub resumed_passes: usize,
    /// What became of this run's checkpoints.
    pub checkpoints: String,
    /// Steps in file order.
    pub steps: Vec<StepRecord>,
    /// Total wall time.
    pub wall_seconds: f64,
    /// Peak resident memory of the process.
    pub peak_rss_bytes: u64,
    /// Seconds since the Unix epoch at the start.
    pub started_unix: u64,
}

impl RunRecord {
    /// A record for a run about to start.
    pub fn new(plan: &Plan, input: &Path, opts: &RunOptions) -> Self {
        RunRecord {
            atlasflow_version: env!("CARGO_PKG_VERSION").to_string(),
            pipeline: plan.spec.name.clone(),
            spec_file: plan.spec.file.display().to_string(),
            spec: plan.spec.text.clone(),
            overrides: Vec::new(),
            seed: plan.spec.seed,
            input: input.display().to_string(),
            threads: opts.threads,
            memory_budget_bytes: opts.memory_bytes,
            outputs: Vec::new(),
            passes: Vec::new(),
            spills: Vec::new(),
            resumed_passes: 0,
            checkpoints: String::new(),
            steps: Vec::new(),
            wall_seconds: 0.0,
            peak_rss_bytes: 0,
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    /// Write as pretty JSON to `path`, through a temporary file renamed when complete.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }
}
