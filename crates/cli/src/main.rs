//! `atlasflow`: run single-cell RNA-seq pipelines written as YAML, streaming over the data in
//! bounded memory, with scanpy's answers.

use std::path::PathBuf;
use std::process::ExitCode;

use atlasflow_engine::exec::{human, parse_size};
use atlasflow_engine::{EngineError, Plan, PipelineSpec, Progress, RunOptions};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

mod atlas;
#[cfg(feature = "distributed")]
mod cluster;
mod soma_inspect;

/// Single-cell RNA-seq pipelines from YAML, streaming, with scanpy's answers.
#[derive(Parser)]
#[command(name = "atlasflow", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline and write its outputs and run.json.
    Run(RunArgs),
    /// Check a pipeline file and print its steps (reads no data).
    Validate(SpecArgs),
    /// Print the passes over the data, what each reads, and memory per stage.
    Explain(RunArgs),
    /// Build or extend an atlas store (the Census data model as Parquet) from h5ad files.
    Ingest(atlas::IngestArgs),
    /// Run SQL over a store's tables (datasets, summary, obs, var, …).
    Query(atlas::QueryArgs),
    /// Describe an h5ad file, an atlas store, or a TileDB-SOMA object (a Census directory).
    Inspect(atlas::InspectArgs),
    /// Run an atlasflow cluster's scheduler (Apache DataFusion Ballista, with atlasflow's
    /// plan codec); clients run pipelines on it with `run --cluster df://HOST:PORT`.
    #[cfg(feature = "distributed")]
    Scheduler(cluster::SchedulerArgs),
    /// Run an atlasflow cluster executor: it takes tasks of pipeline passes from the
    /// scheduler. The pipelines' inputs must be readable from here at the same path or URL.
    #[cfg(feature = "distributed")]
    Executor(cluster::ExecutorArgs),
    /// Internal: read an h5ad file's structure in this (child) process; see
    /// `atlasflow_io::h5ad::probe`. Exit 0 when it reads, 1 when it reports an error.
    #[command(name = PROBE_COMMAND, hide = true)]
    ProbeH5ad {
        /// The file.
        path: PathBuf,
    },
}

/// The hidden subcommand the h5ad probe runs in a child process.
const PROBE_COMMAND: &str = "__probe-h5ad";

/// Seconds the h5ad probe may take by default (`ATLASFLOW_H5AD_PROBE_SECONDS` overrides):
/// far more than reading the structure of any real file takes, far less than forever.
const PROBE_SECONDS: u64 = 300;

/// Open every h5ad file through a child process first (see `atlasflow_io::h5ad::probe`),
/// so that a corrupt file on which libhdf5 crashes or loops gives an error, not a dead or
/// hung atlasflow.
fn install_h5ad_probe() {
    let Ok(program) = std::env::current_exe() else { return };
    let seconds = std::env::var("ATLASFLOW_H5AD_PROBE_SECONDS").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(PROBE_SECONDS);
    atlasflow_io::h5ad::probe::install(atlasflow_io::h5ad::probe::Prober {
        program,
        args: vec![PROBE_COMMAND.into()],
        timeout: std::time::Duration::from_secs(seconds.max(1)),
    });
}

#[derive(Args)]
struct SpecArgs {
    /// The pipeline file (YAML).
    pipeline: PathBuf,
    /// Override a parameter: STEP.PARAM=VALUE (STEP is a step id or stage name).
    #[arg(long = "set", value_name = "STEP.PARAM=VALUE")]
    set: Vec<String>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    spec: SpecArgs,
    /// An h5ad file replacing the pipeline's source (or, for a census source, another store).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Directory for every relative output path (default: the working directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Memory budget, e.g. 4GiB, 512MiB (default: half of this machine's memory).
    #[arg(long)]
    memory: Option<String>,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Cells per read from the source (default 4096). Results do not depend on it.
    #[arg(long, default_value_t = 4096)]
    batch_size: usize,
    /// No progress bars.
    #[arg(long, short)]
    quiet: bool,
    /// Go on from where an interrupted run of the same pipeline and input stopped: the fit
    /// passes it completed (checkpointed in .atlasflow-checkpoint/ beside the outputs) are
    /// not run again. The result is the same as an uninterrupted run's.
    #[arg(long)]
    resume: bool,
    /// Run the streaming passes on an atlasflow cluster, df://HOST:PORT (needs the
    /// `distributed` feature). The input must be readable by every executor at the same
    /// path or URL; the in-memory stages and the outputs stay on this machine.
    #[arg(long, value_name = "df://HOST:PORT")]
    cluster: Option<String>,
    /// Most tasks per pass on a cluster (default 16).
    #[arg(long, requires = "cluster")]
    cluster_tasks: Option<usize>,
}

struct Bars {
    quiet: bool,
    bar: std::sync::Mutex<Option<ProgressBar>>,
}

impl Progress for Bars {
    fn pass_started(&self, label: &str, total: u64) {
        if self.quiet {
            return;
        }
        let pb = ProgressBar::new(total);
        pb.set_style(
            ProgressStyle::with_template("{msg:40} [{bar:30}] {human_pos}/{human_len} cells {per_sec} ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        pb.set_message(label.to_string());
        if let Ok(mut b) = self.bar.lock() {
            *b = Some(pb);
        }
    }
    fn advance(&self, cells: u64) {
        if let Ok(b) = self.bar.lock() {
            if let Some(pb) = b.as_ref() {
                pb.inc(cells);
            }
        }
    }
    fn pass_finished(&self) {
        if let Ok(mut b) = self.bar.lock() {
            if let Some(pb) = b.take() {
                pb.finish();
            }
        }
    }
}

fn machine_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("MemTotal:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()))
        .map_or(4 << 30, |kb| kb * 1024)
}

fn load(args: &SpecArgs) -> Result<Plan, EngineError> {
    let mut spec = PipelineSpec::from_file(&args.pipeline)?;
    for s in &args.set {
        spec.set_param(s)?;
    }
    Plan::new(spec)
}

fn options(args: &RunArgs) -> Result<RunOptions, String> {
    let memory_bytes = match &args.memory {
        Some(m) => parse_size(m).ok_or_else(|| format!("--memory {m:?}: expected a size such as 4GiB or 512MiB"))?,
        None => machine_memory() / 2,
    };
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    if args.batch_size == 0 {
        return Err("--batch-size must be at least 1".into());
    }
    Ok(RunOptions { threads, memory_bytes, read_block: args.batch_size, out_dir: args.out.clone(), input: args.input.clone(), resume: args.resume })
}

#[cfg(feature = "distributed")]
fn run_on_cluster(url: &str, plan: &Plan, set: &[String], opts: &RunOptions, tasks: Option<usize>, bars: &Bars) -> Result<atlasflow_engine::record::RunRecord, EngineError> {
    cluster::run(url, plan, set, opts, tasks, bars)
}

#[cfg(not(feature = "distributed"))]
fn run_on_cluster(url: &str, _: &Plan, _: &[String], _: &RunOptions, _: Option<usize>, _: &Bars) -> Result<atlasflow_engine::record::RunRecord, EngineError> {
    Err(EngineError::Cluster {
        url: url.to_string(),
        message: "this atlasflow was built without the `distributed` feature; build it with `cargo build --release -p atlasflow-cli --features distributed`".into(),
    })
}

fn record_path(plan: &Plan, opts: &RunOptions) -> PathBuf {
    atlasflow_engine::exec::record_dir(plan, opts).join("run.json")
}

/// The message of a failed run; a step that failed on the data also names the input file,
/// which the step's own message (cells, genes, the YAML line) does not.
fn with_input(e: EngineError, plan: &Plan, opts: &RunOptions) -> String {
    match &e {
        EngineError::Step { .. } => {
            let input = opts.input.as_deref().unwrap_or(plan.spec.source.path());
            format!("{e}\n  input: {}", input.display())
        }
        _ => e.to_string(),
    }
}

/// Write a report to stdout. A reader that stops early (`| head`) is not an error, and
/// `print!` would panic on it.
pub(crate) fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// mimalloc rather than glibc's malloc: glibc keeps freed batch buffers (its mmap threshold
/// grows to 32 MiB) in one arena per thread, so a run's RSS sat far above what it used.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (mimalloc.h); libmimalloc-sys
/// names only the older options.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Milliseconds before freed memory goes back to the system.
const PURGE_DELAY_MS: std::ffi::c_long = 20;

/// Return freed memory to the system after 20 ms rather than mimalloc's default 1 s: the
/// passes free a granule's buffers every few milliseconds, and with the default delay the
/// RSS of a 20,000-cell 10x run was 0.37 GiB against 0.29 GiB at 20 ms and 0.24 GiB at 0,
/// which costs about 10 % more wall time in page faults (measured with
/// `MIMALLOC_PURGE_DELAY`, which overrides this).
#[allow(unsafe_code)]
fn purge_freed_memory_soon() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return; // the user's setting wins
    }
    // SAFETY: mi_option_set only stores an integer option; any value is valid for it, and
    // it is called before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
}

fn main() -> ExitCode {
    purge_freed_memory_soon();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::ProbeH5ad { .. }) {
        install_h5ad_probe();
    }
    let result: Result<(), (u8, String)> = match &cli.command {
        Command::ProbeH5ad { path } => atlasflow_io::h5ad::probe::probe_in_process(path).map_err(|e| (1, e.to_string())),
        Command::Ingest(args) => atlas::ingest(args),
        #[cfg(feature = "distributed")]
        Command::Scheduler(args) => cluster::scheduler(args),
        #[cfg(feature = "distributed")]
        Command::Executor(args) => cluster::executor(args, machine_memory()),
        Command::Query(args) => atlas::query(args),
        Command::Inspect(args) => atlas::inspect(args),
        Command::Validate(args) => load(args).map(|p| emit(&p.describe())).map_err(|e| (2, e.to_string())),
        Command::Explain(args) => (|| {
            let plan = load(&args.spec).map_err(|e| (2, e.to_string()))?;
            let opts = options(args).map_err(|e| (2, e))?;
            let text = atlasflow_engine::explain::explain(&plan, &opts).map_err(|e| (1, e.to_string()))?;
            emit(&format!("{}\n{text}", plan.describe()));
            Ok(())
        })(),
        Command::Run(args) => (|| {
            let plan = load(&args.spec).map_err(|e| (2, e.to_string()))?;
            let opts = options(args).map_err(|e| (2, e))?;
            let bars = Bars { quiet: args.quiet, bar: std::sync::Mutex::new(None) };
            let mut record = match &args.cluster {
                None => atlasflow_engine::run(&plan, &opts, &bars),
                Some(url) => run_on_cluster(url, &plan, &args.spec.set, &opts, args.cluster_tasks, &bars),
            }
            .map_err(|e| (1, with_input(e, &plan, &opts)))?;
            record.overrides = args.spec.set.clone();
            let rp = record_path(&plan, &opts);
            record.write(&rp).map_err(|e| (1, format!("{}: cannot write the run record: {e}", rp.display())))?;
            if args.resume {
                match record.resumed_passes {
                    0 => eprintln!("note: --resume found no checkpoint of this pipeline and input; it ran from the start"),
                    n => eprintln!("resumed: {n} pass(es) taken from the checkpoints of the interrupted run"),
                }
            }
            if !args.quiet {
                for o in &record.outputs {
                    eprintln!("wrote {o}");
                }
                eprintln!(
                    "{} passes in {:.1} s, peak memory {}; run record {}",
                    record.passes.len(),
                    record.wall_seconds,
                    human(record.peak_rss_bytes as usize),
                    rp.display()
                );
            }
            Ok(())
        })(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(code)
        }
    }
}

#[cfg(test)]
mod tests {
    /// Option 15 is mimalloc 3's purge delay: its default reads back as 1,000 ms (no other
    /// option of mimalloc 3 defaults to 1,000), so a mimalloc update that renumbers the
    /// options fails here rather than setting the wrong one.
    #[test]
    #[allow(unsafe_code)]
    fn purge_delay_option_number_is_mimallocs() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads an integer option.
        let default = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(default, 1000);
    }
}
