//! `cargo xtask bench-graph`: neighbors + UMAP + Leiden, atlasflow and scanpy on the same
//! PCs. A benchmark, never a test: nothing here fails on a number.
//!
//! For each size: a 10x-like file is generated (`cargo xtask gen --depth 3500`, 8 cell
//! types), atlasflow runs the tutorial's preprocessing to PCA and writes obs + X_pca as
//! Parquet, `scripts/scanpy_graph.py --make-input` turns that into an h5ad holding only the
//! PCs; then, each under `/usr/bin/time -v`:
//! - atlasflow with a pipeline of neighbors (15), umap and leiden (Parquet output);
//! - `scripts/scanpy_graph.py`: sc.pp.neighbors, sc.tl.umap, sc.tl.leiden (defaults).
//!
//! Results go to `benchmarks/graph-results.json`; `cargo xtask bench` puts them in
//! BENCHMARKS.md.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bench::{machine, now_utc, parse_bytes, python, root, sh, timed, BoxError, Timed};
use crate::generate::{self, GenArgs};

/// Arguments of `cargo xtask bench-graph`.
#[derive(clap::Args, Debug)]
pub struct GraphArgs {
    /// Numbers of cells, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [20_000usize, 200_000])]
    pub sizes: Vec<usize>,
    /// atlasflow's memory budget (--memory).
    #[arg(long, default_value = "4GiB")]
    pub memory: String,
    /// atlasflow's worker threads (--threads).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Where inputs and outputs go (relative to the repository root).
    #[arg(long, default_value = "data/generated/bench")]
    pub out_dir: PathBuf,
    /// Do not run scanpy.
    #[arg(long)]
    pub skip_scanpy: bool,
}

/// One size, both tools.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct GraphRun {
    /// Cells.
    pub cells: usize,
    /// PCs per cell.
    pub pcs: usize,
    /// atlasflow --threads.
    pub threads: usize,
    /// When (UTC).
    pub date: String,
    /// nproc, memory, CPU.
    pub machine: String,
    /// atlasflow neighbors + umap + leiden (whole process).
    pub atlasflow: Option<Timed>,
    /// atlasflow seconds per step, from run.json.
    pub atlasflow_steps: Vec<(String, f64)>,
    /// scanpy (whole process).
    pub scanpy: Option<Timed>,
    /// scanpy seconds per step.
    pub scanpy_steps: Vec<(String, f64)>,
    /// Leiden clusters found by each.
    pub clusters: (usize, usize),
    /// Why a side has no number (e.g. stopped by hand), if so.
    #[serde(default)]
    pub note: Option<String>,
}

const PREPROCESS: &str = "steps:
  - stage: gene_length_normalize
  - stage: qc_metrics
    percent_top: null
  - stage: filter_cells
    min_genes: 500
  - stage: filter_genes
    min_cells: 5
  - stage: normalize_total
    target_sum: 1e4
  - stage: log1p
  - stage: highly_variable_genes
    n_top_genes: 1000
    subset: true
  - stage: scale
    max_value: 10
  - stage: pca
    n_comps: 50
outputs:
  - parquet: cells.parquet
";

const GRAPH: &str = "steps:
  - stage: neighbors
    n_neighbors: 15
  - stage: umap
  - stage: leiden
outputs:
  - parquet: graph.parquet
";

fn bench_size(a: &GraphArgs, root: &Path, dir: &Path, cells: usize) -> Result<GraphRun, BoxError> {
    let work = dir.join(format!("graph-{cells}"));
    std::fs::create_dir_all(&work)?;
    let pcs = work.join("pcs.h5ad");
    let atlasflow = root.join("target/release/atlasflow");
    let py = python(root);
    if !pcs.exists() {
        let input = dir.join(format!("10x-{cells}.h5ad"));
        if !input.exists() {
            let tmp = input.with_extension("h5ad.tmp");
            generate::run(&GenArgs { cells, genes: 18_000, seed: 0, out: tmp.clone(), depth: 3500.0, types: 8, empty_cells: 5, block: 1024 })?;
            std::fs::rename(&tmp, &input)?;
        }
        let spec = work.join("preprocess.yaml");
        std::fs::write(&spec, format!("name: preprocess\nsource:\n  h5ad: {}\n{PREPROCESS}", input.display()))?;
        let (_, ok, _) = timed(&[sh(&atlasflow), "run".as_ref(), sh(&spec), "--out".as_ref(), sh(&work), "-q".as_ref()], &work.join("preprocess.log"), root)?;
        if !ok {
            return Err(format!("preprocessing failed; see {}", work.join("preprocess.log").display()).into());
        }
        let (_, ok, _) = timed(&[sh(&py), "scripts/scanpy_graph.py".as_ref(), "--make-input".as_ref(), sh(&work.join("cells.parquet")), sh(&pcs)], &work.join("make-input.log"), root)?;
        if !ok {
            return Err(format!("scanpy_graph.py --make-input failed; see {}", work.join("make-input.log").display()).into());
        }
    }
    let mut run = GraphRun { cells, pcs: 50, threads: a.threads, date: now_utc(), machine: machine(), ..GraphRun::default() };
    let spec = work.join("graph.yaml");
    std::fs::write(&spec, format!("name: graph\nsource:\n  h5ad: {}\n{GRAPH}", pcs.display()))?;
    let threads = a.threads.to_string();
    let (t, ok, _) = timed(
        &[sh(&atlasflow), "run".as_ref(), sh(&spec), "--out".as_ref(), sh(&work), "--memory".as_ref(), a.memory.as_ref(), "--threads".as_ref(), threads.as_ref(), "-q".as_ref()],
        &work.join("atlasflow.log"),
        root,
    )?;
    if ok {
        run.atlasflow = Some(t);
        let rec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(work.join("run.json"))?)?;
        for s in rec["steps"].as_array().into_iter().flatten() {
            run.atlasflow_steps.push((s["id"].as_str().unwrap_or("?").to_string(), s["cpu_seconds"].as_f64().unwrap_or(0.0)));
        }
    }
    if !a.skip_scanpy {
        let (t, ok, out) = timed(&[sh(&py), "scripts/scanpy_graph.py".as_ref(), sh(&pcs)], &work.join("scanpy.log"), root)?;
        if ok {
            run.scanpy = Some(t);
            if let Some(line) = out.lines().rev().find(|l| l.starts_with('{')) {
                let v: serde_json::Value = serde_json::from_str(line)?;
                for (k, x) in v.as_object().into_iter().flatten() {
                    if k == "clusters" {
                        run.clusters.1 = x.as_u64().unwrap_or(0) as usize;
                    } else if let Some(x) = x.as_f64() {
                        run.scanpy_steps.push((k.clone(), x));
                    }
                }
            }
        }
    }
    Ok(run)
}

/// The BENCHMARKS.md section for `graph-results.json` in `dir` (empty when there is none).
pub fn section(dir: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(dir.join("graph-results.json")) else { return String::new() };
    let Ok(runs) = serde_json::from_str::<Vec<GraphRun>>(&text) else { return String::new() };
    let gib = |t: &Timed| t.peak_rss as f64 / (1u64 << 30) as f64;
    let mut s = String::from(
        "\n## neighbors + UMAP + Leiden on the same PCs\n\n\
         `cargo xtask bench-graph`: 50 PCs of generated 10x-like cells (8 types) from atlasflow's \
         preprocessing, given to both tools as one h5ad; atlasflow runs `neighbors` (15), `umap`, \
         `leiden`; scanpy runs `scripts/scanpy_graph.py` (sc.pp.neighbors, sc.tl.umap, sc.tl.leiden \
         with their defaults: pynndescent above 8,192 cells, 200 epochs above 10,000, leidenalg). \
         Whole-process wall time and peak RSS; ratios are scanpy / atlasflow. scanpy's times include \
         numba's compilation of pynndescent and umap-learn in a fresh process, which every user \
         run pays too.\n\n\
         | cells | atlasflow | scanpy | time ratio | memory ratio | atlasflow steps (s) | scanpy steps (s) |\n\
         |---:|---|---|---:|---:|---|---|\n",
    );
    for r in &runs {
        let cell = |t: &Option<Timed>| t.as_ref().map_or("—".to_string(), |t| format!("{:.1} s, {:.2} GiB", t.wall_s, gib(t)));
        let ratio = |f: fn(&Timed) -> f64| match (&r.atlasflow, &r.scanpy) {
            (Some(a), Some(b)) if f(a) > 0.0 => format!("{:.1}×", f(b) / f(a)),
            _ => "—".into(),
        };
        let steps = |v: &[(String, f64)]| v.iter().map(|(k, x)| format!("{k} {x:.1}")).collect::<Vec<_>>().join(", ");
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.cells,
            cell(&r.atlasflow),
            cell(&r.scanpy),
            ratio(|t| t.wall_s),
            ratio(|t| t.peak_rss as f64),
            steps(&r.atlasflow_steps),
            steps(&r.scanpy_steps)
        ));
    }
    for r in runs.iter().filter(|r| r.note.is_some()) {
        s.push_str(&format!("\n{} cells: {}\n", r.cells, r.note.as_deref().unwrap_or("")));
    }
    if let Some(r) = runs.first() {
        s.push_str(&format!("\nMachine: {}; atlasflow --threads {}.\n", r.machine, r.threads));
    }
    s
}

/// Run the graph benchmark.
pub fn main(a: &GraphArgs) -> Result<(), BoxError> {
    let root = root()?;
    let dir = if a.out_dir.is_absolute() { a.out_dir.clone() } else { root.join(&a.out_dir) };
    std::fs::create_dir_all(&dir)?;
    parse_bytes(&a.memory)?;
    let kept = root.join(crate::bench::RESULTS_DIR);
    std::fs::create_dir_all(&kept)?;
    let results = kept.join("graph-results.json");
    let mut runs: Vec<GraphRun> = match std::fs::read_to_string(&results) {
        Ok(t) => serde_json::from_str(&t)?,
        Err(_) => Vec::new(),
    };
    for &cells in &a.sizes {
        eprintln!("== graph stages, {cells} cells");
        let run = bench_size(a, &root, &dir, cells)?;
        runs.retain(|r| !(r.cells == run.cells && r.threads == run.threads));
        runs.push(run);
        runs.sort_by_key(|r| (r.cells, r.threads));
        let tmp = results.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&runs)?)?;
        std::fs::rename(&tmp, &results)?;
    }
    eprintln!("{}", section(&kept));
    eprintln!("run `cargo xtask bench --report-only` to put this in BENCHMARKS.md");
    Ok(())
}
