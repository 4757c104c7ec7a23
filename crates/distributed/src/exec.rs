//! `PassExec`: one streaming pass of a pipeline as a DataFusion physical plan, the unit
//! Ballista schedules. Its input is a table of task numbers, one per partition (an
//! in-memory scan, which Ballista knows how to cut so that each of its tasks gets only its
//! own partitions; a custom leaf would be run whole by every task). For each task number
//! `t` it reads, it runs the pass's share of segments `t` with [`atlasflow_engine::run_task`]
//! and streams back one row per segment (its saved fit states) and, in the final pass, one
//! row per granule (the cells as Arrow IPC).

use std::fmt;
use std::io::Cursor;
use std::ops::Range;
use std::sync::Arc;

use atlasflow_engine::checkpoint::PassCheckpoint;
use atlasflow_engine::tasks::{TaskItem, TaskSpec};
use datafusion::arrow::array::{ArrayRef, AsArray, BinaryArray, RecordBatch, StringArray, UInt32Array, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt32Type};
use datafusion::datasource::memory::MemorySourceConfig;
use futures::StreamExt;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties};
use serde::{Deserialize, Serialize};

use crate::job::JobSpec;
use crate::settings::ExecutorSettings;

/// Column names of a pass's output.
pub mod col {
    /// The task (partition) that produced the row.
    pub const TASK: &str = "task";
    /// The executor that ran the task.
    pub const EXECUTOR: &str = "executor";
    /// Segment index, on a segment row.
    pub const SEGMENT: &str = "segment";
    /// Granule index, on a batch row.
    pub const GRANULE: &str = "granule";
    /// A segment row: the `SegmentOut` (postcard); a batch row: the cells (Arrow IPC stream).
    pub const PAYLOAD: &str = "payload";
}

/// Everything a pass's tasks need; what the codec writes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PassTask {
    /// The run.
    pub job: JobSpec,
    /// Output chain.
    pub target: usize,
    /// Pass number within the chain, from 1.
    pub pass: usize,
    /// The saved states of the chain's earlier fit passes.
    pub history: Vec<PassCheckpoint>,
    /// Segments in the pass.
    pub segments: usize,
    /// Tasks (partitions) the segments are shared among.
    pub tasks: usize,
    /// The final pass: tasks send the cells back.
    pub write: bool,
}

impl PassTask {
    /// The segments of task `task`: an even, contiguous share.
    pub fn segments_of(&self, task: usize) -> Range<usize> {
        let t = self.tasks.max(1);
        (task * self.segments / t)..((task + 1) * self.segments / t)
    }
}

/// A pass over a table of task numbers, keeping its input's partitions.
#[derive(Debug)]
pub struct PassExec {
    task: Arc<PassTask>,
    input: Arc<dyn ExecutionPlan>,
    props: Arc<PlanProperties>,
}

/// Column of the task table.
const TASK_NUMBER: &str = "task";

/// The schema of every pass's output.
pub fn pass_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(col::TASK, DataType::UInt32, false),
        Field::new(col::EXECUTOR, DataType::Utf8, false),
        Field::new(col::SEGMENT, DataType::UInt64, true),
        Field::new(col::GRANULE, DataType::UInt64, true),
        Field::new(col::PAYLOAD, DataType::Binary, false),
    ]))
}

impl PassExec {
    /// The plan of one pass: `task.tasks` partitions, partition `t` holding task number `t`.
    pub fn plan(task: PassTask) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = Arc::new(Schema::new(vec![Field::new(TASK_NUMBER, DataType::UInt32, false)]));
        let partitions: Vec<Vec<RecordBatch>> = (0..task.tasks.max(1) as u32)
            .map(|t| RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(UInt32Array::from(vec![t])) as ArrayRef]).map(|b| vec![b]))
            .collect::<std::result::Result<_, _>>()?;
        let input = MemorySourceConfig::try_new_exec(&partitions, schema, None)?;
        Ok(Arc::new(PassExec::new(Arc::new(task), input)))
    }

    /// The pass over `input` (a table of task numbers).
    pub fn new(task: Arc<PassTask>, input: Arc<dyn ExecutionPlan>) -> Self {
        let props = PlanProperties::new(
            EquivalenceProperties::new(pass_schema()),
            Partitioning::UnknownPartitioning(input.properties().output_partitioning().partition_count()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        PassExec { task, input, props: Arc::new(props) }
    }

    /// The shared task description.
    pub fn task_arc(&self) -> &Arc<PassTask> {
        &self.task
    }

    /// What the tasks run.
    pub fn task(&self) -> &PassTask {
        &self.task
    }
}

impl DisplayAs for PassExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let t = &self.task;
        write!(f, "PassExec: {}, pass {} of chain {}, {} segments in {} tasks", t.job.file.display(), t.pass, t.target, t.segments, t.tasks)
    }
}

/// An error of a task, as the client will show it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TaskFailed(String);

fn fail(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(TaskFailed(message)))
}

/// One output row.
fn row(task: u32, executor: &str, segment: Option<u64>, granule: Option<u64>, payload: &[u8]) -> Result<RecordBatch> {
    let cols: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from(vec![task])),
        Arc::new(StringArray::from(vec![executor])),
        Arc::new(UInt64Array::from(vec![segment])),
        Arc::new(UInt64Array::from(vec![granule])),
        Arc::new(BinaryArray::from(vec![payload])),
    ];
    Ok(RecordBatch::try_new(pass_schema(), cols)?)
}

fn encode(task: u32, executor: &str, item: TaskItem) -> Result<RecordBatch> {
    match item {
        TaskItem::Segment(s) => {
            let bytes = postcard::to_stdvec(&s).map_err(|e| fail(format!("cannot encode segment {}: {e}", s.segment)))?;
            row(task, executor, Some(s.segment as u64), None, &bytes)
        }
        TaskItem::Batch(gi, b) => {
            let rb = b.record_batch();
            let mut buf = Vec::new();
            {
                let mut w = StreamWriter::try_new(Cursor::new(&mut buf), &rb.schema())?;
                w.write(rb)?;
                w.finish()?;
            }
            row(task, executor, None, Some(gi as u64), &buf)
        }
    }
}

/// Fault injection for the stopped-executor test: an executor started with
/// `ATLASFLOW_STALL_IN_TASK=1` never finishes a task, as if it hung or its machine went away.
fn stall_requested() -> bool {
    std::env::var("ATLASFLOW_STALL_IN_TASK").is_ok_and(|v| v == "1")
}

impl ExecutionPlan for PassExec {
    fn name(&self) -> &str {
        "PassExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(&self, _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        match <[_; 1]>::try_from(children) {
            Ok([input]) => Ok(Arc::new(PassExec::new(Arc::clone(&self.task), input))),
            Err(_) => Err(DataFusionError::Internal("PassExec takes one input".into())),
        }
    }

    fn execute(&self, partition: usize, ctx: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let settings = ctx.session_config().get_extension::<ExecutorSettings>().unwrap_or_else(|| Arc::new(ExecutorSettings::here()));
        let task = Arc::clone(&self.task);
        let mut numbers = self.input.execute(partition, ctx)?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(2);
        let start = async move {
            // The task numbers of this partition (one, unless Ballista merged partitions).
            let mut tasks = Vec::new();
            while let Some(b) = numbers.next().await {
                let b = b?;
                let col = b.column(0).as_primitive_opt::<UInt32Type>().ok_or_else(|| fail("PassExec: the task table is not UInt32".into()))?;
                tasks.extend(col.values().iter().copied());
            }
            // The engine's passes are blocking (a thread pool of their own): run them off
            // the async runtime and stream the rows as they come.
            std::thread::Builder::new()
                .name(format!("atlasflow-tasks-{partition}"))
                .spawn(move || run_tasks(&task, &settings, &tasks, &tx))
                .map_err(|e| fail(format!("cannot start a task thread: {e}")))?;
            Ok::<_, DataFusionError>(rx)
        };
        let stream = futures::stream::once(start).flat_map(|r| match r {
            Ok(rx) => futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }).left_stream(),
            Err(e) => futures::stream::once(async move { Err(e) }).right_stream(),
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(pass_schema(), stream)))
    }
}

/// Run the pass's share for each task number in turn, sending rows to `tx`.
fn run_tasks(task: &PassTask, settings: &ExecutorSettings, numbers: &[u32], tx: &tokio::sync::mpsc::Sender<Result<RecordBatch>>) {
    let name = &settings.name;
    for &t in numbers {
        let segments = task.segments_of(t as usize);
        if stall_requested() {
            eprintln!("atlasflow executor {name}: stalling in task {t} (ATLASFLOW_STALL_IN_TASK)");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        let result = (|| -> std::result::Result<(), atlasflow_engine::EngineError> {
            let plan = task.job.plan()?;
            let opts = task.job.options(settings.threads_per_task, settings.memory_per_task);
            let spec = TaskSpec { target: task.target, pass: task.pass, history: task.history.clone(), segments: segments.clone() };
            let cluster_err = |message: String| atlasflow_engine::EngineError::Cluster { url: name.clone(), message };
            atlasflow_engine::run_task(&plan, &opts, spec, &mut |item| {
                let rb = encode(t, name, item).map_err(|e| cluster_err(e.to_string()))?;
                tx.blocking_send(Ok(rb)).map_err(|_| cluster_err("the task was cancelled".into()))
            })
        })();
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(fail(format!("executor {name}, task {t} (segments {segments:?}): {e}"))));
            return;
        }
    }
}
