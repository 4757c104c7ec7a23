//! `atlasflow scheduler`, `atlasflow executor` and `atlasflow run --cluster`: the same
//! pipelines on an Apache DataFusion Ballista cluster (the `distributed` feature).

use std::net::SocketAddr;
use std::path::PathBuf;

use atlasflow_engine::exec::parse_size;
use atlasflow_engine::{EngineError, Plan, Progress, RunOptions};
use atlasflow_engine::record::RunRecord;
use clap::Args;

/// `atlasflow scheduler`.
#[derive(Args)]
pub struct SchedulerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:50050")]
    bind: SocketAddr,
    /// Host name executors and clients reach this scheduler by.
    #[arg(long, default_value = "localhost")]
    external_host: String,
    /// Seconds without a word from an executor after which it counts as lost and its
    /// running tasks go to the others.
    #[arg(long, default_value_t = 60)]
    executor_timeout: u64,
}

/// `atlasflow executor`.
#[derive(Args)]
pub struct ExecutorArgs {
    /// The scheduler, df://HOST:PORT.
    #[arg(long, default_value = "df://localhost:50050")]
    scheduler: String,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    bind_host: String,
    /// Host name the client and other executors reach this one by (default: --bind-host,
    /// or this machine's host name when binding to all addresses).
    #[arg(long)]
    external_host: Option<String>,
    /// Arrow Flight port (results are fetched from it).
    #[arg(long, default_value_t = 50051)]
    port: u16,
    /// gRPC port.
    #[arg(long, default_value_t = 50052)]
    grpc_port: u16,
    /// Name in the run record (default HOST:PID).
    #[arg(long)]
    name: Option<String>,
    /// Tasks at once (default: all cores).
    #[arg(long)]
    slots: Option<usize>,
    /// Worker threads per task.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Memory budget of the executor, shared by its slots (default: half of this machine's).
    #[arg(long)]
    memory: Option<String>,
    /// Directory for shuffle files (default: a temporary directory).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

fn runtime() -> Result<tokio::runtime::Runtime, (u8, String)> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| (1, format!("cannot start the runtime: {e}")))
}

/// Run a scheduler until killed.
pub fn scheduler(args: &SchedulerArgs) -> Result<(), (u8, String)> {
    let o = atlasflow_distributed::SchedulerOptions {
        bind: args.bind,
        external_host: args.external_host.clone(),
        executor_timeout_seconds: args.executor_timeout,
    };
    eprintln!("atlasflow scheduler listening on {} (clients: --cluster df://{}:{})", args.bind, args.external_host, args.bind.port());
    runtime()?.block_on(atlasflow_distributed::serve_scheduler(&o)).map_err(|e| (1, e))
}

/// Run an executor until killed.
pub fn executor(args: &ExecutorArgs, machine_memory: u64) -> Result<(), (u8, String)> {
    let memory_bytes = match &args.memory {
        Some(m) => parse_size(m).ok_or_else(|| (2, format!("--memory {m:?}: expected a size such as 4GiB or 512MiB")))?,
        None => machine_memory / 2,
    };
    let o = atlasflow_distributed::ExecutorOptions {
        scheduler: args.scheduler.clone(),
        bind_host: args.bind_host.clone(),
        external_host: args.external_host.clone(),
        port: args.port,
        grpc_port: args.grpc_port,
        name: args.name.clone(),
        task_slots: args.slots.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        threads_per_task: args.threads,
        memory_bytes,
        work_dir: args.work_dir.clone(),
    };
    eprintln!("atlasflow executor {} on {}:{}, scheduler {}", o.name.clone().unwrap_or_else(atlasflow_distributed::default_name), o.bind_host, o.port, o.scheduler);
    runtime()?.block_on(atlasflow_distributed::serve_executor(&o)).map_err(|e| (1, e))
}

/// Run `plan` with its streaming passes on the scheduler at `url`.
pub fn run(url: &str, plan: &Plan, set: &[String], opts: &RunOptions, max_tasks: Option<usize>, progress: &dyn Progress) -> Result<RunRecord, EngineError> {
    let job = atlasflow_distributed::JobSpec::new(plan, set, opts);
    let backend = atlasflow_distributed::ClusterBackend::connect(url, job, max_tasks.unwrap_or(atlasflow_distributed::DEFAULT_MAX_TASKS))?;
    atlasflow_engine::run_on(plan, opts, progress, Some(&backend))
}
