//! Passes cut into tasks: what a cluster backend runs for the client, and what one task
//! gives back.
//!
//! A pass's granules fall into segments ([`crate::granules::segment_len`]); a task runs a
//! range of segments of one pass and gives back each segment's merged fit states, and, in
//! the final pass, every granule's batch. The client merges segment states in segment
//! order and writes batches in granule order, which is exactly what a local run does, so a
//! cluster run gives the same bits. A task rebuilds the pass's work list from the pipeline
//! and the states of the passes before it ([`crate::checkpoint::PassCheckpoint`], as a
//! resumed run does): every operator is a function of its step's parameters and the fit
//! states before it, so those are what travels.

use std::collections::BTreeMap;
use std::ops::Range;

use atlasflow_core::CellBatch;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{PassCheckpoint, SavedSlot};
use crate::error::Result;

/// One segment's result from a task.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SegmentOut {
    /// The segment's index in the pass.
    pub segment: usize,
    /// Each slot of the pass's work list: the segment's merged fit state, saved.
    pub slots: Vec<SavedSlot>,
    /// Cells in and out of each slot, summed over the segment.
    pub cells: Vec<(u64, u64)>,
}

/// What a task hands back as it goes.
pub enum TaskItem {
    /// A segment is complete.
    Segment(SegmentOut),
    /// A granule's batch at the end of the final pass (granule index, batch).
    Batch(usize, CellBatch),
}

/// The pass a task runs, and on which segments.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Output chain (index into the plan's targets).
    pub target: usize,
    /// Pass number within the target, from 1.
    pub pass: usize,
    /// The saved states of the target's earlier fit passes.
    pub history: Vec<PassCheckpoint>,
    /// The segments to run.
    pub segments: Range<usize>,
}

/// One pass as the client asks a backend to run it.
pub struct PassRequest<'a> {
    /// Output chain.
    pub target: usize,
    /// Pass number within the target, from 1.
    pub pass: usize,
    /// What the pass does (for messages).
    pub label: &'a str,
    /// The saved states of every earlier fit pass of the run.
    pub history: &'a [PassCheckpoint],
    /// Segments in the pass.
    pub segments: usize,
    /// Whether this is the final pass (tasks give back granule batches).
    pub write: bool,
}

/// What a backend gives back for a pass.
pub struct PassResult {
    /// Every segment, in segment order.
    pub segments: Vec<SegmentOut>,
    /// Tasks run per worker (executor name → tasks), for the run record.
    pub tasks_by_worker: BTreeMap<String, usize>,
}

/// Somewhere other than this process that runs the streaming passes (a Ballista cluster).
pub trait PassBackend: Sync {
    /// Run every segment of a pass; hand each granule batch of a final pass to `emit`, in
    /// any order, with its granule index.
    fn run_pass(&self, req: &PassRequest<'_>, emit: &mut dyn FnMut(usize, CellBatch) -> Result<()>) -> Result<PassResult>;
}
