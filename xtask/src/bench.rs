//! `cargo xtask bench`: atlasflow and scanpy side by side on the same generated files, as
//! ratios. A benchmark, never a test: nothing here fails on a number.
//!
//! For each size and kind (Smart-seq2-like: ~4.5k of 18k genes per cell; 10x-like: ~1.5k,
//! the generator's `--depth 3500`) it generates the input once (`cargo xtask gen`), then runs,
//! one after the other, each under `/usr/bin/time -v` (wall time, peak RSS):
//! - the read+write baseline: atlasflow with a one-step pipeline (`filter_cells` keeping every
//!   cell) — stream-decode the file, write it back;
//! - `atlasflow run pipelines/census-smartseq2-liver.yaml` (per-pass seconds from run.json);
//! - `scripts/scanpy_tutorial.py` (per-step seconds from the JSON line it prints), skipped when
//!   its estimated peak (5 × X as float64 CSR, nnz · 12 · 5 bytes) is over the limit;
//! - `scripts/compare_outputs.py` on the two outputs.
//!
//! Every run is appended to `benchmarks/results.json` (replacing an earlier one of the same
//! kind, size, threads and memory), and BENCHMARKS.md is regenerated from all of them. The
//! results live in the repository, beside BENCHMARKS.md, so a fresh clone can add a size
//! without losing the others; the generated inputs and outputs stay in `--out-dir`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::generate::{self, GenArgs};

pub(crate) type BoxError = Box<dyn std::error::Error>;

/// Where `results.json` and `graph-results.json` live, relative to the repository root
/// (tracked, unlike the generated data).
pub(crate) const RESULTS_DIR: &str = "benchmarks";

/// Which synthetic data to benchmark.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Smart-seq2-like: median depth 30,000 reads, ~4.5k genes detected per cell.
    Smartseq2,
    /// 10x-like: median depth 3,500, ~1.5k genes detected per cell.
    #[value(name = "10x")]
    TenX,
    /// Both.
    Both,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Smartseq2 => "smartseq2",
            Kind::TenX => "10x",
            Kind::Both => "both",
        }
    }
    fn depth(self) -> f64 {
        if self == Kind::TenX { 3_500.0 } else { 30_000.0 }
    }
}

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Numbers of cells, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [20_000usize, 100_000])]
    pub sizes: Vec<usize>,
    /// Kind of synthetic data.
    #[arg(long, value_enum, default_value_t = Kind::Both)]
    pub kind: Kind,
    /// atlasflow's memory budget (--memory).
    #[arg(long, default_value = "4GiB")]
    pub memory: String,
    /// atlasflow's worker threads (--threads).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Where inputs, outputs and results.json go (relative to the repository root).
    #[arg(long, default_value = "data/generated/bench")]
    pub out_dir: PathBuf,
    /// Do not run scanpy (nor the comparison).
    #[arg(long)]
    pub skip_scanpy: bool,
    /// Skip scanpy when its estimated peak memory (nnz · 12 · 5 bytes) exceeds this.
    #[arg(long, default_value = "20GiB")]
    pub scanpy_memory_limit: String,
    /// Keep the output h5ad files (by default they are deleted after the comparison).
    #[arg(long)]
    pub keep_outputs: bool,
    /// Only regenerate BENCHMARKS.md from results.json.
    #[arg(long)]
    pub report_only: bool,
}

/// One program run under `/usr/bin/time -v`.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Timed {
    /// Wall seconds.
    pub wall_s: f64,
    /// Peak resident set size, bytes.
    pub peak_rss: u64,
    /// User + system CPU seconds (less sensitive than wall time to other load on the machine).
    #[serde(default)]
    pub cpu_s: f64,
    /// The machine's 1-minute load average just before the run (other processes included).
    #[serde(default)]
    pub load_before: f64,
}

/// One benchmark run: one file, both tools.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Run {
    /// smartseq2 or 10x.
    pub kind: String,
    /// Cells in the file.
    pub cells: usize,
    /// Genes in the file.
    pub genes: usize,
    /// Non-zeros in X.
    pub nnz: u64,
    /// File size, bytes.
    pub file_bytes: u64,
    /// atlasflow --threads.
    pub threads: usize,
    /// atlasflow --memory.
    pub memory: String,
    /// When (UTC).
    pub date: String,
    /// nproc, memory, CPU model.
    #[serde(default)]
    pub machine: String,
    /// atlasflow on the tutorial pipeline.
    pub atlasflow: Option<Timed>,
    /// Seconds per pass, from run.json.
    pub atlasflow_passes: Vec<(String, f64)>,
    /// Peak resident bytes per pass, from run.json (sampled by the run itself).
    #[serde(default)]
    pub atlasflow_pass_rss: Vec<(String, f64)>,
    /// Leiden's iterations and whether it converged (uns['leiden'] of atlasflow's output).
    #[serde(default)]
    pub leiden_iterations: Option<(i64, bool)>,
    /// CPU seconds per step, from run.json.
    pub atlasflow_steps: Vec<(String, f64)>,
    /// Read, decode and write only.
    pub read_write: Option<Timed>,
    /// scanpy_tutorial.py.
    pub scanpy: Option<Timed>,
    /// Seconds per step, from scanpy_tutorial.py's JSON line.
    pub scanpy_steps: Vec<(String, f64)>,
    /// Why scanpy did not run or failed, if so.
    pub scanpy_note: Option<String>,
    /// compare_outputs.py: Some(true) passed, Some(false) failed, None not run.
    pub compare_ok: Option<bool>,
    /// compare_outputs.py's output.
    pub compare_output: String,
}

pub(crate) fn parse_bytes(s: &str) -> Result<u64, BoxError> {
    let s = s.trim();
    let i = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(i);
    let n: f64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "tib" => 1024f64.powi(4),
        u => return Err(format!("bad size unit {u:?} in {s:?}").into()),
    };
    Ok((n * mult) as u64)
}

pub(crate) fn root() -> Result<PathBuf, BoxError> {
    Ok(Path::new(env!("CARGO_MANIFEST_DIR")).parent().ok_or("xtask has no parent directory")?.to_path_buf())
}

pub(crate) fn python(root: &Path) -> PathBuf {
    std::env::var_os("ATLASFLOW_PYTHON").map_or_else(|| root.join(".venv-ref/bin/python"), PathBuf::from)
}

/// Run `cmd` under `/usr/bin/time -v`, stdout and stderr to `log`; returns the timing, the
/// exit status and stdout.
pub(crate) fn timed(cmd: &[&std::ffi::OsStr], log: &Path, cwd: &Path) -> Result<(Timed, bool, String), BoxError> {
    let tfile = log.with_extension("time");
    let out = std::fs::File::create(log.with_extension("out"))?;
    let err = std::fs::File::create(log)?;
    let load_before = loadavg();
    eprintln!("+ {}", cmd.iter().map(|s| s.to_string_lossy()).collect::<Vec<_>>().join(" "));
    let t0 = Instant::now();
    let status = Command::new("/usr/bin/time")
        .arg("-v")
        .arg("-o")
        .arg(&tfile)
        .args(cmd)
        .current_dir(cwd)
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|e| format!("/usr/bin/time: {e} (apt-get install -y time)"))?;
    let wall_s = t0.elapsed().as_secs_f64();
    let tv = std::fs::read_to_string(&tfile).unwrap_or_default();
    let kb: u64 = tv
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let field = |name: &str| -> f64 {
        tv.lines().find_map(|l| l.trim().strip_prefix(name)).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0)
    };
    let cpu_s = field("User time (seconds):") + field("System time (seconds):");
    let stdout = std::fs::read_to_string(log.with_extension("out")).unwrap_or_default();
    if !status.success() {
        eprintln!("  failed ({status}); see {}", log.display());
    }
    Ok((Timed { wall_s, peak_rss: kb * 1024, cpu_s, load_before }, status.success(), stdout))
}

fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

pub(crate) fn sh(s: &Path) -> &std::ffi::OsStr {
    s.as_os_str()
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())))
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| l.strip_prefix("MemTotal:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok()))
        })
        .map_or_else(|| "unknown".into(), |kb| format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0));
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{n} cores (nproc), {mem} memory, CPU: {cpu}")
}

pub(crate) fn now_utc() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn load(results: &Path) -> Result<Vec<Run>, BoxError> {
    if !results.exists() {
        return Ok(Vec::new());
    }
    Ok(serde_json::from_str(&std::fs::read_to_string(results)?)?)
}

fn save(results: &Path, runs: &[Run]) -> Result<(), BoxError> {
    let tmp = results.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(runs)?)?;
    std::fs::rename(tmp, results)?;
    Ok(())
}

/// Benchmark one file.
fn bench_one(a: &BenchArgs, root: &Path, dir: &Path, kind: Kind, cells: usize, limit: u64) -> Result<Run, BoxError> {
    let input = dir.join(format!("{}-{cells}.h5ad", kind.name()));
    if !input.exists() {
        let tmp = input.with_extension("h5ad.tmp");
        generate::run(&GenArgs {
            cells,
            genes: 18_000,
            seed: 0,
            out: tmp.clone(),
            depth: kind.depth(),
            types: 8,
            empty_cells: 5,
            block: 1024,
        })?;
        std::fs::rename(&tmp, &input)?;
    }
    let reader = atlasflow_io::H5adReader::open(&input)?;
    let nnz = hdf5::File::open(&input)?.dataset("X/indices")?.size() as u64;
    let mut run = Run {
        kind: kind.name().into(),
        cells: reader.n_obs(),
        genes: reader.n_vars(),
        nnz,
        file_bytes: std::fs::metadata(&input)?.len(),
        threads: a.threads,
        memory: a.memory.clone(),
        date: now_utc(),
        machine: machine(),
        ..Run::default()
    };
    drop(reader);
    let work = dir.join(format!("{}-{cells}", kind.name()));
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    let atlasflow = root.join("target/release/atlasflow");
    if !atlasflow.exists() {
        return Err(format!("{} missing: cargo build --release -p atlasflow-cli", atlasflow.display()).into());
    }
    let threads = a.threads.to_string();
    let af = |spec: &Path, out: &Path, log: &str| {
        timed(
            &[
                sh(&atlasflow),
                "run".as_ref(),
                sh(spec),
                "--input".as_ref(),
                sh(&input),
                "--out".as_ref(),
                sh(out),
                "--memory".as_ref(),
                a.memory.as_ref(),
                "--threads".as_ref(),
                threads.as_ref(),
                "-q".as_ref(),
            ],
            &work.join(log),
            root,
        )
    };

    // Read+write baseline: a pipeline that keeps every cell.
    for (i, filter) in ["min_genes: 0", "max_genes: 1000000000"].iter().enumerate() {
        let spec = work.join("read-write.yaml");
        std::fs::write(
            &spec,
            format!(
                "name: read-write\nseed: 0\nsource:\n  h5ad: {}\nsteps:\n  - stage: filter_cells\n    {filter}\noutputs:\n  - h5ad: read-write.h5ad\n",
                input.display()
            ),
        )?;
        let (t, ok, _) = af(&spec, &work.join("read-write"), &format!("read-write-{i}.log"))?;
        let _ = std::fs::remove_dir_all(work.join("read-write"));
        if ok {
            run.read_write = Some(t);
            break;
        }
    }

    // The tutorial pipeline.
    let af_out = work.join("atlasflow");
    let (t, ok, _) = af(&root.join("pipelines/census-smartseq2-liver.yaml"), &af_out, "atlasflow.log")?;
    let ours = af_out.join("results/census-smartseq2-liver.h5ad");
    if ok {
        run.atlasflow = Some(t);
        let rj: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(af_out.join("results/run.json"))?)?;
        let list = |key: &str, name: &str, secs: &str| -> Vec<(String, f64)> {
            rj[key]
                .as_array()
                .map(|v| {
                    v.iter()
                        .map(|p| (p[name].as_str().unwrap_or("?").to_string(), p[secs].as_f64().unwrap_or(f64::NAN)))
                        .collect()
                })
                .unwrap_or_default()
        };
        run.atlasflow_passes = list("passes", "label", "seconds");
        run.atlasflow_pass_rss = list("passes", "label", "peak_rss_bytes");
        run.atlasflow_steps = list("steps", "id", "cpu_seconds");
        run.leiden_iterations = leiden_iterations(&ours);
    }

    // scanpy.
    let estimate = nnz.saturating_mul(12 * 5);
    let theirs = work.join("scanpy.h5ad");
    if a.skip_scanpy {
        run.scanpy_note = Some("skipped (--skip-scanpy)".into());
    } else if estimate > limit {
        run.scanpy_note = Some(format!(
            "skipped: estimated peak {:.1} GiB > --scanpy-memory-limit {}",
            estimate as f64 / GIB,
            a.scanpy_memory_limit
        ));
    } else {
        let py = python(root);
        let (t, ok, stdout) = timed(
            &[sh(&py), "-W".as_ref(), "ignore".as_ref(), sh(&root.join("scripts/scanpy_tutorial.py")), sh(&input), sh(&theirs)],
            &work.join("scanpy.log"),
            root,
        )?;
        if ok {
            run.scanpy = Some(t);
            if let Some(line) = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')) {
                let v: serde_json::Value = serde_json::from_str(line)?;
                if let Some(m) = v.as_object() {
                    run.scanpy_steps = m.iter().map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(f64::NAN))).collect();
                }
            }
        } else {
            run.scanpy_note = Some(format!(
                "failed after {:.0} s, peak {:.1} GiB (see {})",
                t.wall_s,
                t.peak_rss as f64 / GIB,
                work.join("scanpy.log").display()
            ));
        }
        if ok && ours.exists() {
            let out = Command::new(&py)
                .args(["-W", "ignore"])
                .arg(root.join("scripts/compare_outputs.py"))
                .arg(&ours)
                .arg(&theirs)
                .current_dir(root)
                .output()?;
            run.compare_ok = Some(out.status.success());
            run.compare_output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            eprint!("{}", run.compare_output);
        }
    }
    if !a.keep_outputs {
        let _ = std::fs::remove_file(&ours);
        let _ = std::fs::remove_file(&theirs);
    }
    Ok(run)
}

/// The steps of scripts/scanpy_tutorial.py, in order ("total" last).
const SCANPY_ORDER: [&str; 13] = [
    "read",
    "gene_length_normalize",
    "qc_metrics",
    "filter_cells",
    "filter_genes",
    "normalize_total",
    "log1p",
    "highly_variable_genes",
    "hvg_subset",
    "scale",
    "pca",
    "write",
    "total",
];

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

fn secs(t: &Option<Timed>) -> String {
    t.as_ref().map_or_else(|| "—".into(), |t| format!("{:.1}", t.wall_s))
}

fn full(t: &Option<Timed>) -> String {
    t.as_ref().map_or_else(|| "—".into(), |t| format!("{:.1} s / {:.1} s / {:.2} GiB", t.wall_s, t.cpu_s, t.peak_rss as f64 / GIB))
}

fn rss(t: &Option<Timed>) -> String {
    t.as_ref().map_or_else(|| "—".into(), |t| format!("{:.2} GiB", t.peak_rss as f64 / GIB))
}

fn report(runs: &[Run], machine: &str) -> String {
    let mut s = String::new();
    s.push_str("# Benchmarks: atlasflow vs scanpy\n\n");
    s.push_str(
        "The Census tutorial pipeline (`pipelines/census-smartseq2-liver.yaml`: gene-length \
         normalization, QC, filter_cells 500, filter_genes 5, normalize_total 1e4, log1p, 1,000 \
         seurat HVGs, scale 10, PCA 50, neighbors 15, UMAP, Leiden, the UMAP plots) run by atlasflow \
         and by scanpy 1.11.5 (`scripts/scanpy_tutorial.py`) on the same synthetic files, one after \
         the other, each under `/usr/bin/time -v`. Ratios are scanpy / atlasflow: above 1, atlasflow is faster or smaller. \
         This file is generated by `cargo xtask bench` from `benchmarks/results.json`; \
         do not edit it by hand.\n\n",
    );
    s.push_str(&format!("Machine: {machine}. Written {}.\n\n", now_utc()));
    s.push_str(
        "Data (`cargo xtask gen`, 18,000 genes, seed 0): *smartseq2* = median depth 30,000 reads \
         (~4.5k genes detected per cell); *10x* = `--depth 3500` (~1.5k genes per cell).\n\n",
    );
    s.push_str("## Reproduce\n\n```sh\ncargo build --release --workspace\n");
    s.push_str("export ATLASFLOW_PYTHON=.venv-ref/bin/python   # scanpy 1.11.5 (scripts/requirements-reference.txt)\n");
    s.push_str("cargo xtask bench --sizes 20000 --kind both     # --memory 4GiB --threads 2 by default\n");
    s.push_str("cargo xtask bench --sizes 100000 --kind 10x\n");
    s.push_str("cargo xtask bench --sizes 1000000 --kind 10x       # scanpy skipped: estimated peak 84 GiB > 20 GiB\n");
    s.push_str("cargo xtask bench --report-only                # rewrite this file from results.json\n```\n\n");
    s.push_str(
        "Per file: `atlasflow run pipelines/census-smartseq2-liver.yaml --input F --out D --memory M \
         --threads T -q`; `python scripts/scanpy_tutorial.py F OUT.h5ad`; then \
         `python scripts/compare_outputs.py` on the two outputs (same cells, same HVGs, scaled X \
         within 1e-4, first 10 PCs |corr| ≥ 0.999). *read+write* is atlasflow with a one-step \
         pipeline (`filter_cells` keeping every cell): decode the file and write it back, the floor \
         under any pipeline. scanpy is skipped when its estimated peak (nnz · 12 bytes · 5) is over \
         `--scanpy-memory-limit` (20 GiB by default).\n\n",
    );
    s.push_str("## Summary\n\n");
    s.push_str(
        "| data | cells | genes | nnz | file | atlasflow wall s / CPU s / peak | read+write wall s / peak | scanpy wall s / CPU s / peak | speed × (wall) | CPU × | memory × | load | compare |\n",
    );
    s.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n");
    for r in runs {
        let ratio = |f: &dyn Fn(&Timed) -> f64| match (&r.scanpy, &r.atlasflow) {
            (Some(sc), Some(af)) if f(af) > 0.0 => format!("{:.1}", f(sc) / f(af)),
            _ => "—".into(),
        };
        let compare = match r.compare_ok {
            Some(true) => "pass".to_string(),
            Some(false) => "**FAIL**".to_string(),
            None => r.scanpy_note.clone().unwrap_or_else(|| "not run".into()),
        };
        let load = [&r.atlasflow, &r.read_write, &r.scanpy].iter().filter_map(|t| t.as_ref().map(|t| t.load_before)).fold(0.0, f64::max);
        s.push_str(&format!(
            "| {} | {} | {} | {:.1} M | {:.2} GB | {} | {} s / {} | {} | {} | {} | {} | {load:.1} | {} |\n",
            r.kind,
            r.cells,
            r.genes,
            r.nnz as f64 / 1e6,
            r.file_bytes as f64 / 1e9,
            full(&r.atlasflow),
            secs(&r.read_write),
            rss(&r.read_write),
            full(&r.scanpy),
            ratio(&|t| t.wall_s),
            ratio(&|t| t.cpu_s),
            ratio(&|t| t.peak_rss as f64),
            compare,
        ));
    }
    s.push_str(
        "\nSpeed × and memory × are scanpy / atlasflow (wall seconds, peak RSS); CPU × compares \
         user+system CPU seconds, which other load on the machine disturbs less than wall time. \
         *load* is the highest 1-minute load average seen just before the three runs: on this \
         2-core machine, a load well above 2 means other processes (builds, tests) shared the \
         cores, and wall times are then pessimistic for both tools.\n",
    );
    s.push('\n');
    for r in runs {
        s.push_str(&format!(
            "## {} {} cells ({} genes, {:.1} M non-zeros, {:.2} GB)\n\n",
            r.kind,
            r.cells,
            r.genes,
            r.nnz as f64 / 1e6,
            r.file_bytes as f64 / 1e9
        ));
        s.push_str(&format!(
            "{} on {}; atlasflow `--threads {} --memory {}`. atlasflow {} s, peak {}; read+write {} s, peak {}; scanpy {} s, peak {}. Load average before atlasflow / read+write / scanpy: {}.\n\n",
            r.date,
            r.machine,
            r.threads,
            r.memory,
            secs(&r.atlasflow),
            rss(&r.atlasflow),
            secs(&r.read_write),
            rss(&r.read_write),
            secs(&r.scanpy),
            rss(&r.scanpy),
            [&r.atlasflow, &r.read_write, &r.scanpy]
                .iter()
                .map(|t| t.as_ref().map_or_else(|| "—".into(), |t| format!("{:.1}", t.load_before)))
                .collect::<Vec<_>>()
                .join(" / ")
        ));
        if let Some((it, converged)) = r.leiden_iterations {
            s.push_str(&format!(
                "atlasflow's Leiden (n_iterations = -1): {it} iterations, {}.\n\n",
                if converged { "converged (the last moved no cell)" } else { "stopped at the iteration cap" }
            ));
        }
        if let Some(n) = &r.scanpy_note {
            s.push_str(&format!("scanpy: {n}.\n\n"));
        }
        if !r.atlasflow_passes.is_empty() {
            s.push_str("| atlasflow pass | s | peak RSS in the pass (GiB, sampled every 10 ms) |\n|---|--:|--:|\n");
            for (i, (l, t)) in r.atlasflow_passes.iter().enumerate() {
                // The write pass's label names a temporary path: keep its first words.
                let l = if l.contains(": write ") { l.split(": write ").next().unwrap_or(l).to_string() + ": write" } else { l.clone() };
                let peak = r.atlasflow_pass_rss.get(i).map_or_else(|| "—".into(), |(_, b)| format!("{:.2}", b / GIB));
                s.push_str(&format!("| {l} | {t:.2} | {peak} |\n"));
            }
            if let Some(peak) = streaming_peak(r) {
                s.push_str(&format!("\nPeak RSS of the streaming fit passes: {:.2} GiB (the write pass also collects obs and the embeddings of every cell for the in-memory stages).\n", peak / GIB));
            }
            s.push('\n');
        }
        if !r.atlasflow_steps.is_empty() {
            s.push_str("| atlasflow step | s in the step, summed over worker threads and passes (run.json `cpu_seconds`) |\n|---|--:|\n");
            for (l, t) in &r.atlasflow_steps {
                s.push_str(&format!("| {l} | {t:.2} |\n"));
            }
            s.push('\n');
        }
        if !r.scanpy_steps.is_empty() {
            s.push_str("| scanpy step | s |\n|---|--:|\n");
            // serde_json's map sorts keys: put the steps back in scanpy_tutorial.py's order.
            let mut steps = r.scanpy_steps.clone();
            steps.sort_by_key(|(l, _)| SCANPY_ORDER.iter().position(|o| o == l).unwrap_or(SCANPY_ORDER.len() - 1));
            for (l, t) in &steps {
                s.push_str(&format!("| {l} | {t:.2} |\n"));
            }
            s.push('\n');
        }
        if !r.compare_output.is_empty() {
            s.push_str(&format!("compare_outputs.py:\n\n```\n{}```\n\n", r.compare_output));
        }
    }
    s
}

/// Run the benchmark.
pub fn main(a: &BenchArgs) -> Result<(), BoxError> {
    let root = root()?;
    let dir = if a.out_dir.is_absolute() { a.out_dir.clone() } else { root.join(&a.out_dir) };
    std::fs::create_dir_all(&dir)?;
    let kept = root.join(RESULTS_DIR);
    std::fs::create_dir_all(&kept)?;
    let results = kept.join("results.json");
    let mut runs = load(&results)?;
    if !a.report_only {
        if !Path::new("/usr/bin/time").exists() {
            return Err("/usr/bin/time not found: apt-get install -y time".into());
        }
        let limit = parse_bytes(&a.scanpy_memory_limit)?;
        parse_bytes(&a.memory)?;
        let kinds = if a.kind == Kind::Both { vec![Kind::Smartseq2, Kind::TenX] } else { vec![a.kind] };
        for &cells in &a.sizes {
            for &kind in &kinds {
                eprintln!("== {} {cells} cells", kind.name());
                let run = bench_one(a, &root, &dir, kind, cells, limit)?;
                runs.retain(|r| !(r.kind == run.kind && r.cells == run.cells && r.threads == run.threads && r.memory == run.memory));
                runs.push(run);
                runs.sort_by(|x, y| (x.cells, &x.kind, x.threads).cmp(&(y.cells, &y.kind, y.threads)));
                save(&results, &runs)?;
                std::fs::write(root.join("BENCHMARKS.md"), report(&runs, &machine()) + &crate::bench_graph::section(&kept))?;
            }
        }
    }
    std::fs::write(root.join("BENCHMARKS.md"), report(&runs, &machine()) + &crate::bench_graph::section(&kept))?;
    eprintln!("wrote {} ({} runs)", root.join("BENCHMARKS.md").display(), runs.len());
    Ok(())
}

/// The largest peak RSS among the streaming fit passes (not the write pass, which collects
/// per-cell results, nor the in-memory stages), when run.json recorded it.
fn streaming_peak(r: &Run) -> Option<f64> {
    r.atlasflow_pass_rss.iter().filter(|(l, _)| l.contains(": fit ")).map(|(_, b)| *b).reduce(f64::max)
}

/// `uns['leiden']`'s `iterations_run` and `converged` in an atlasflow output, when present.
fn leiden_iterations(h5ad: &Path) -> Option<(i64, bool)> {
    let f = hdf5::File::open(h5ad).ok()?;
    let it = f.dataset("uns/leiden/iterations_run").ok()?.read_scalar::<i64>().ok()?;
    let converged = f.dataset("uns/leiden/converged").ok()?.read_scalar::<bool>().ok()?;
    Some((it, converged))
}
