//! The atlasflow engine: a YAML pipeline becomes a validated DAG, then passes over the
//! source in which granules of cells stream through map stages and fold into fit states,
//! within a memory budget held in DataFusion's memory pool, on a pool of worker threads.
//!
//! - [`spec`]: the YAML file with line numbers; [`params`] and [`registry`]: the stage
//!   catalogue and its parameter checks; [`plan`]: the DAG.
//! - [`exec`]: the runner; [`granules`]: the fixed cuts that make results reproducible;
//!   [`source`]: where cells come from; [`record`]: run.json; [`explain`]: the pass plan.

pub mod checkpoint;
pub mod error;
pub mod exec;
pub mod explain;
mod globals;
pub mod granules;
pub mod outputs;
pub mod params;
pub mod plan;
pub mod record;
pub mod registry;
pub mod rss;
pub mod source;
pub mod spec;
pub mod spill;
pub mod tasks;

pub use error::{EngineError, Result};
pub use exec::{run, run_on, run_task, NoProgress, Progress, RunOptions};
pub use plan::Plan;
pub use spec::PipelineSpec;
