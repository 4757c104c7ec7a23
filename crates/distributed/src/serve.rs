//! Starting atlasflow's scheduler and executors: Ballista's, with atlasflow's codec (so
//! they can decode pass plans) and each executor's [`ExecutorSettings`] attached to the
//! session config its tasks see.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ballista_core::ConfigProducer;
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;

use crate::client::{session_config, MAX_MESSAGE_BYTES};
use crate::codec::AtlasCodec;
use crate::settings::ExecutorSettings;

/// How to run a scheduler.
#[derive(Clone, Debug)]
pub struct SchedulerOptions {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Host name executors and clients reach this scheduler by.
    pub external_host: String,
    /// Seconds without a word from an executor after which it counts as lost and its
    /// running tasks are given to others.
    pub executor_timeout_seconds: u64,
}

/// How to run an executor.
#[derive(Clone, Debug)]
pub struct ExecutorOptions {
    /// The scheduler, `df://HOST:PORT`.
    pub scheduler: String,
    /// Address to listen on (Arrow Flight, where results are fetched).
    pub bind_host: String,
    /// Host name others reach this executor by (default: `bind_host`).
    pub external_host: Option<String>,
    /// Arrow Flight port.
    pub port: u16,
    /// gRPC port.
    pub grpc_port: u16,
    /// The executor's name (default `HOST:PID`).
    pub name: Option<String>,
    /// Tasks at once.
    pub task_slots: usize,
    /// Worker threads per task.
    pub threads_per_task: usize,
    /// Memory budget of the executor, shared evenly by its task slots.
    pub memory_bytes: u64,
    /// Directory for shuffle files (default: a temporary directory).
    pub work_dir: Option<PathBuf>,
}

/// Run a scheduler until the process ends.
pub async fn serve_scheduler(o: &SchedulerOptions) -> Result<(), String> {
    let timeout = o.executor_timeout_seconds.max(1);
    let mut config = SchedulerConfig::default()
        .with_hostname(o.external_host.clone())
        .with_port(o.bind.port())
        .with_grpc_server_max_decoding_message_size(MAX_MESSAGE_BYTES as u32)
        .with_grpc_server_max_encoding_message_size(MAX_MESSAGE_BYTES as u32)
        .with_grpc_client_max_message_size(MAX_MESSAGE_BYTES as u32);
    config.bind_host = o.bind.ip().to_string();
    config.executor_timeout_seconds = timeout;
    config.expire_dead_executor_interval_seconds = (timeout / 4).max(1);
    config.no_executors_grace_period_seconds = timeout;
    config.override_physical_codec = Some(AtlasCodec::shared());
    let producer: ConfigProducer = Arc::new(session_config);
    config.override_config_producer = Some(producer);
    let cluster = BallistaCluster::new_from_config(&config).await.map_err(|e| format!("cannot set up the scheduler: {e}"))?;
    start_server(cluster, o.bind, Arc::new(config)).await.map_err(|e| format!("scheduler on {}: {e}", o.bind))
}

/// The host others reach an executor by when it did not say: its bind address, or, for a
/// wildcard bind (`0.0.0.0`, `::`), this machine's host name.
fn reachable_host(bind_host: &str) -> String {
    match bind_host {
        "0.0.0.0" | "::" | "[::]" => crate::settings::host_name(),
        other => other.to_string(),
    }
}

/// Run an executor until the process ends.
pub async fn serve_executor(o: &ExecutorOptions) -> Result<(), String> {
    let endpoint = crate::client::endpoint(&o.scheduler).map_err(|e| e.to_string())?;
    let hostport = endpoint.trim_start_matches("http://");
    let (host, port) = hostport.rsplit_once(':').ok_or_else(|| format!("{}: no HOST:PORT", o.scheduler))?;
    let port: u16 = port.parse().map_err(|_| format!("{}: bad port", o.scheduler))?;
    let slots = o.task_slots.max(1);
    let name = o.name.clone().unwrap_or_else(crate::settings::default_name);
    let settings = Arc::new(ExecutorSettings {
        name: name.clone(),
        threads_per_task: o.threads_per_task.max(1),
        memory_per_task: o.memory_bytes / slots as u64,
    });
    let producer: ConfigProducer = Arc::new(move || session_config().with_extension(Arc::clone(&settings)));
    let config = ExecutorProcessConfig {
        executor_id: name,
        bind_host: o.bind_host.clone(),
        external_host: Some(o.external_host.clone().unwrap_or_else(|| reachable_host(&o.bind_host))),
        port: o.port,
        grpc_port: o.grpc_port,
        scheduler_host: host.to_string(),
        scheduler_port: port,
        scheduler_connect_timeout_seconds: 30,
        vcores: slots,
        work_dir: o.work_dir.as_ref().map(|d| d.display().to_string()),
        grpc_max_decoding_message_size: MAX_MESSAGE_BYTES as u32,
        grpc_max_encoding_message_size: MAX_MESSAGE_BYTES as u32,
        override_physical_codec: Some(AtlasCodec::shared()),
        override_config_producer: Some(producer),
        ..Default::default()
    };
    start_executor_process(Arc::new(config)).await.map_err(|e| format!("executor (scheduler {}): {e}", o.scheduler))
}
