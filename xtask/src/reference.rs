//! `cargo xtask reference`: regenerate every test input and scanpy's expected outputs.
//!
//! - `tests/data/synth/input.h5ad`: `gen` (then rewritten gzip-compressed by anndata) with the test size (300 cells × 2,000 genes, depth 8,000, seed 0:
//!   ~700 genes per cell, a few cells under min_genes = 500);
//! - `tests/data/ziegenhain/input.h5ad`: `scripts/prepare_test_data.py` on the real 78-cell
//!   file (only when its source is present: `--ziegenhain-source`, by default
//!   `../shared/data/…`; otherwise the committed input is kept);
//! - `tests/data/*/expected.h5`: `scripts/reference.py` on each input.
//! - `tests/data/graph/*.h5`: `scripts/reference_graph.py` (neighbors, umap, leiden, louvain
//!   from scanpy's own PCs) on the PBMC, synthetic and 10k mouse inputs.
//!
//! Python is `$ATLASFLOW_PYTHON`, or `.venv-ref/bin/python`, created from
//! `scripts/requirements-reference.txt` when missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::generate::{self, GenArgs};

type BoxError = Box<dyn std::error::Error>;

/// Arguments of `cargo xtask reference`.
#[derive(clap::Args, Debug)]
pub struct RefArgs {
    /// The real Ziegenhain 2017 file (powsimR data, GPL).
    #[arg(long, default_value = "../shared/data/ziegenhain2017_smartseq2_78cells.h5ad")]
    pub ziegenhain_source: PathBuf,
}

/// The synthetic test dataset: small enough to commit (tests/data stays near 15 MB with
/// every stage stored in f64), large enough for 1,000 HVGs.
pub fn synth_args(root: &Path) -> GenArgs {
    GenArgs {
        cells: 300,
        genes: 2_000,
        depth: 8_000.0,
        seed: 0,
        out: root.join("tests/data/synth/input.h5ad"),
        types: 8,
        empty_cells: 5,
        block: 1024,
    }
}

fn run(cmd: &mut Command) -> Result<(), BoxError> {
    eprintln!("+ {cmd:?}");
    let status = cmd.status().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !status.success() {
        return Err(format!("{cmd:?} failed: {status}").into());
    }
    Ok(())
}

fn python(root: &Path) -> Result<PathBuf, BoxError> {
    if let Some(p) = std::env::var_os("ATLASFLOW_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let py = root.join(".venv-ref/bin/python");
    if !py.exists() {
        run(Command::new("python3").args(["-m", "venv", ".venv-ref"]).current_dir(root))?;
        run(Command::new(&py)
            .args(["-m", "pip", "install", "-r", "scripts/requirements-reference.txt"])
            .current_dir(root))?;
    }
    Ok(py)
}

/// Regenerate inputs and expected outputs under `tests/data`.
pub fn main(a: &RefArgs) -> Result<(), BoxError> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().ok_or("xtask has no parent directory")?.to_path_buf();
    let py = python(&root)?;
    let data = root.join("tests/data");
    for d in ["synth", "ziegenhain"] {
        std::fs::create_dir_all(data.join(d))?;
    }
    generate::run(&synth_args(&root))?;
    // atlasflow's writer does not compress; the committed copy is gzip-compressed by anndata.
    run(Command::new(&py)
        .args(["scripts/prepare_test_data.py", "--compress", "tests/data/synth/input.h5ad"])
        .current_dir(&root))?;
    let src = if a.ziegenhain_source.is_absolute() { a.ziegenhain_source.clone() } else { root.join(&a.ziegenhain_source) };
    if src.exists() {
        run(Command::new(&py)
            .arg("scripts/prepare_test_data.py")
            .arg(&src)
            .arg("tests/data/ziegenhain/input.h5ad")
            .current_dir(&root))?;
    } else {
        eprintln!("{} not found: keeping the committed tests/data/ziegenhain/input.h5ad", src.display());
    }
    for d in ["synth", "ziegenhain"] {
        run(Command::new(&py)
            .args(["-W", "ignore", "scripts/reference.py"])
            .arg(format!("tests/data/{d}/input.h5ad"))
            .arg(format!("tests/data/{d}/expected.h5"))
            .args(["--length-column", "feature_length"])
            .current_dir(&root))?;
    }
    // The graph stages (neighbors, umap, leiden, louvain) from scanpy's own PCs.
    for (input, out, labels) in [
        ("tests/data/scanpy_pbmc68k_reduced_recovered_counts_700cells.h5ad", "tests/data/graph/pbmc700.h5", Some("bulk_labels")),
        ("tests/data/synth/input.h5ad", "tests/data/graph/synth300.h5", Some("cell_type")),
        ("tests/data/scanpy_10x_mouse_10k_subset_1000genes.h5ad", "tests/data/graph/mouse10k.h5", None),
    ] {
        let mut cmd = Command::new(&py);
        cmd.args(["-W", "ignore", "scripts/reference_graph.py", input, out]).current_dir(&root);
        if let Some(l) = labels {
            cmd.args(["--labels", l]);
        }
        run(&mut cmd)?;
    }
    Ok(())
}
