//! atlasflow on an Apache DataFusion Ballista cluster: the same YAML pipeline, its
//! streaming passes run as Ballista jobs.
//!
//! ```text
//!  client (atlasflow run --cluster df://HOST:PORT)         executors (atlasflow executor)
//!  ─────────────────────────────────────────────          ──────────────────────────────
//!  plan the run; for each streaming pass:                  task p of PassExec:
//!    PassExec{pipeline, pass, states before it} ──► sched ──► rebuild the plan, replay the
//!    rows ◄── segment states, granule cells (Flight) ◄──     fitted steps, run segments
//!  merge states in segment order, write cells in            p's share of the granules
//!  granule order, run neighbors/UMAP/Leiden, write
//! ```
//!
//! Every operator of a pass is a function of its step's parameters and of the fit states
//! of the passes before it, so those are what a plan carries ([`PassTask`]); the states a
//! task sends back are the engine's saved states. Merging by segment in a fixed order is
//! the engine's own order (see `atlasflow_engine::granules::segment_len`), so a cluster run
//! gives exactly the bits of a local run.

mod client;
mod codec;
mod exec;
mod job;
mod serve;
mod settings;

pub use client::{endpoint, session_config, ClusterBackend, DEFAULT_MAX_TASKS, MAX_MESSAGE_BYTES};
pub use codec::AtlasCodec;
pub use exec::{col, pass_schema, PassExec, PassTask};
pub use job::JobSpec;
pub use serve::{serve_executor, serve_scheduler, ExecutorOptions, SchedulerOptions};
pub use settings::{default_name, ExecutorSettings};
