//! The client side of a cluster run: each streaming pass becomes a [`PassExec`] plan,
//! submitted to the scheduler as a ready physical plan; the rows that come back are the
//! segments' fit states and, in the final pass, the cells, which the engine merges and
//! writes exactly as a local run does.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::time::Duration;

use atlasflow_core::CellBatch;
use atlasflow_engine::tasks::{PassBackend, PassRequest, PassResult, SegmentOut};
use atlasflow_engine::EngineError;
use ballista_core::execution_plans::execute_physical_plan;
use ballista_core::extension::SessionConfigExt;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{UInt32Type, UInt64Type};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::prelude::SessionConfig;
use datafusion_proto::protobuf::PhysicalPlanNode;
use futures::StreamExt;

use crate::codec::AtlasCodec;
use crate::exec::{col, PassExec, PassTask};
use crate::job::JobSpec;

/// Largest gRPC message between client, scheduler and executors: a pass's plan carries the
/// fit states before it (PCA's Gram matrix is 8 MB at 1,000 genes), and a final pass's
/// rows carry a granule of cells each.
pub const MAX_MESSAGE_BYTES: usize = 1 << 30;

/// Most tasks per pass by default: enough to spread over a few executors and retry a lost
/// one cheaply, few enough that each task's start (rebuilding the plan and the fitted
/// steps before its pass) stays small.
pub const DEFAULT_MAX_TASKS: usize = 16;

/// The session config of every atlasflow cluster process: Ballista's, with atlasflow's
/// codec and large messages.
pub fn session_config() -> SessionConfig {
    SessionConfig::new_with_ballista()
        .with_ballista_physical_extension_codec(AtlasCodec::shared())
        .set_usize("ballista.client.grpc_max_message_size", MAX_MESSAGE_BYTES)
}

/// `df://HOST:PORT` (or `HOST:PORT`) as the gRPC endpoint `http://HOST:PORT`.
pub fn endpoint(url: &str) -> Result<String, EngineError> {
    let bad = |why: &str| EngineError::Cluster { url: url.to_string(), message: format!("{why}; give the scheduler as df://HOST:PORT") };
    let rest = match url.split_once("://") {
        Some(("df", rest)) => rest,
        Some((scheme, _)) => return Err(bad(&format!("unknown scheme {scheme}://"))),
        None => url,
    };
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(format!("http://{host}:{port}")),
        _ => Err(bad("no HOST:PORT")),
    }
}

/// A scheduler to run passes on.
pub struct ClusterBackend {
    url: String,
    endpoint: String,
    job: JobSpec,
    runtime: tokio::runtime::Runtime,
    max_tasks: usize,
    session_id: String,
}

impl ClusterBackend {
    /// Connect to the scheduler at `url` (`df://HOST:PORT`) for `job`; fail clearly when it
    /// cannot be reached.
    pub fn connect(url: &str, job: JobSpec, max_tasks: usize) -> Result<Self, EngineError> {
        let endpoint = endpoint(url)?;
        let err = |message: String| EngineError::Cluster { url: url.to_string(), message };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| err(format!("cannot start the client runtime: {e}")))?;
        runtime.block_on(async {
            match tokio::time::timeout(Duration::from_secs(10), SchedulerGrpcClient::connect(endpoint.clone())).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(err(format!("cannot reach the scheduler: {e} (is `atlasflow scheduler` running there?)"))),
                Err(_) => Err(err("cannot reach the scheduler: no answer in 10 s".into())),
            }
        })?;
        let session_id = format!("atlasflow-{}", uuid::Uuid::new_v4());
        Ok(ClusterBackend { url: url.to_string(), endpoint, job, runtime, max_tasks: max_tasks.max(1), session_id })
    }

    fn err(&self, message: String) -> EngineError {
        EngineError::Cluster { url: self.url.clone(), message }
    }
}

/// A row's non-null u64 at `col`.
fn opt_u64(rb: &RecordBatch, name: &str, row: usize) -> Option<u64> {
    let a = rb.column_by_name(name)?.as_primitive_opt::<UInt64Type>()?;
    (!a.is_null(row)).then(|| a.value(row))
}

impl PassBackend for ClusterBackend {
    fn run_pass(&self, req: &PassRequest<'_>, emit: &mut dyn FnMut(usize, CellBatch) -> atlasflow_engine::Result<()>) -> atlasflow_engine::Result<PassResult> {
        let history = req.history.iter().filter(|c| c.target == req.target).cloned().collect();
        let tasks = req.segments.clamp(1, self.max_tasks);
        let plan = PassExec::plan(PassTask {
            job: self.job.clone(),
            target: req.target,
            pass: req.pass,
            history,
            segments: req.segments,
            tasks,
            write: req.write,
        })
        .map_err(|e| self.err(format!("{}: cannot build the plan: {e}", req.label)))?;
        let label = req.label;
        let mut segments: Vec<SegmentOut> = Vec::with_capacity(req.segments);
        let mut ran: BTreeSet<(String, u32)> = BTreeSet::new();
        self.runtime.block_on(async {
            let config = session_config().set_str("ballista.job.name", &format!("atlasflow {label}"));
            let ballista = config.ballista_config();
            let mut stream = execute_physical_plan::<PhysicalPlanNode>(
                self.endpoint.clone(),
                &ballista,
                plan,
                &AtlasCodec::default(),
                self.session_id.clone(),
                config,
            )
            .await
            .map_err(|e| self.err(format!("{label}: {}", clean(&e.to_string()))))?;
            while let Some(rb) = stream.next().await {
                let rb = rb.map_err(|e| self.err(format!("{label}: {}", clean(&e.to_string()))))?;
                let bad = || self.err(format!("{label}: a task sent a row this client cannot read"));
                let task = rb.column_by_name(col::TASK).and_then(|c| c.as_primitive_opt::<UInt32Type>()).ok_or_else(bad)?;
                let executor = rb.column_by_name(col::EXECUTOR).and_then(|c| c.as_string_opt::<i32>()).ok_or_else(bad)?;
                let payload = rb.column_by_name(col::PAYLOAD).and_then(|c| c.as_binary_opt::<i32>()).ok_or_else(bad)?;
                for r in 0..rb.num_rows() {
                    ran.insert((executor.value(r).to_string(), task.value(r)));
                    if let Some(gi) = opt_u64(&rb, col::GRANULE, r) {
                        let mut reader = StreamReader::try_new(Cursor::new(payload.value(r)), None)
                            .map_err(|e| self.err(format!("{label}: granule {gi}: {e}")))?;
                        let batch = reader
                            .next()
                            .ok_or_else(|| self.err(format!("{label}: granule {gi} arrived empty")))?
                            .map_err(|e| self.err(format!("{label}: granule {gi}: {e}")))?;
                        let batch = CellBatch::try_new(batch).map_err(|e| self.err(format!("{label}: granule {gi}: {e}")))?;
                        emit(gi as usize, batch)?;
                    } else if opt_u64(&rb, col::SEGMENT, r).is_some() {
                        let seg: SegmentOut = postcard::from_bytes(payload.value(r)).map_err(|e| self.err(format!("{label}: a segment's states: {e}")))?;
                        segments.push(seg);
                    } else {
                        return Err(bad());
                    }
                }
            }
            Ok::<(), EngineError>(())
        })?;
        segments.sort_by_key(|s| s.segment);
        let mut tasks_by_worker = BTreeMap::new();
        for (executor, _) in ran {
            *tasks_by_worker.entry(executor).or_insert(0) += 1;
        }
        Ok(PassResult { segments, tasks_by_worker })
    }
}

/// Ballista wraps a task's error in layers of `Execution error: ... Internal error:`; keep
/// the innermost message, which names the executor, the task and what failed.
fn clean(message: &str) -> String {
    match message.find("executor ") {
        Some(i) if message[i..].contains(", task ") => message[i..].trim_end_matches(['"', ')', ' ']).to_string(),
        _ => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(endpoint("df://node1:50050").ok().as_deref(), Some("http://node1:50050"));
        assert_eq!(endpoint("127.0.0.1:7").ok().as_deref(), Some("http://127.0.0.1:7"));
        assert!(endpoint("http://x:1").is_err());
        assert!(endpoint("df://x").is_err());
    }
}
