//! Opening an untrusted h5ad file in a child process first, so that libhdf5's own crashes
//! and endless loops on corrupt files become errors.
//!
//! libhdf5 1.10 (Debian bookworm's, which hdf5-metno links) segfaults or loops forever on
//! some corrupt files: a damaged global heap under a variable-length string, a datatype
//! message read out of bounds (`tests/fuzz/libhdf5/`). No check on the Rust side can prevent
//! that: the library reads the bytes before returning anything. So a program that reads
//! files from anywhere installs a [`Prober`] (the `atlasflow` binary does, pointing at its own
//! hidden `__probe-h5ad` subcommand): the first [`crate::H5adReader::open`] or
//! [`crate::inspect_h5ad`] of a file then runs [`probe_in_process`] on it in a child process
//! with a time limit. A child killed by a signal or out of time means the library cannot read
//! the file, and the open fails with an error naming it; a child that ends (well or with an
//! error the parent will report itself) lets the open go on. A file that passed is not probed
//! again by the same process. Without a prober (libraries, tests) nothing changes.

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use super::read::not_h5ad;
use crate::{H5adReader, Result, inspect_h5ad};

/// Cells whose non-zero counts one `row_nnz` call of the probe reads.
const NNZ_WINDOW: usize = 1 << 16;

/// How to probe a file in a child process: `program args… FILE`.
#[derive(Clone, Debug)]
pub struct Prober {
    /// The executable (usually `std::env::current_exe()`).
    pub program: PathBuf,
    /// Arguments before the file.
    pub args: Vec<OsString>,
    /// How long the child may take before the file is declared unreadable.
    pub timeout: Duration,
}

static PROBER: OnceLock<Prober> = OnceLock::new();

/// Files (path, size, modification time) that passed a probe in this process.
static PASSED: LazyLock<Mutex<HashSet<(PathBuf, u64, Option<SystemTime>)>>> = LazyLock::new(Mutex::default);

/// The set of files that passed, locked.
fn passed() -> std::sync::MutexGuard<'static, HashSet<(PathBuf, u64, Option<SystemTime>)>> {
    PASSED.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Probe every h5ad file this process opens from now on with `prober`. Only the first call
/// counts.
pub fn install(prober: Prober) {
    let _ = PROBER.set(prober);
}

/// What the child does: read everything of the file that opening, inspecting and planning
/// a run read (the metadata, obs and var, uns, obsm's keys, X's row pointers and its first
/// row), so that libhdf5 meets any corrupt structure there first.
pub fn probe_in_process(path: &Path) -> Result<()> {
    let summary = inspect_h5ad(path)?;
    let _ = summary.to_string();
    let reader = H5adReader::open(path)?;
    let genes = reader.genes();
    for j in 0..genes.n_genes() {
        let _ = genes.name(j);
    }
    reader.uns()?;
    let _ = reader.obsm_keys();
    let n = reader.n_obs();
    let mut start = 0;
    while start < n {
        let end = (start + NNZ_WINDOW).min(n);
        reader.row_nnz(start, end)?;
        start = end;
    }
    reader.read_cells(0, n.min(1))?;
    Ok(())
}

/// Probe `path` in a child process if a prober is installed and the file was not probed
/// yet; an error when libhdf5 crashed or hung on it.
pub(crate) fn guard(path: &Path) -> Result<()> {
    let Some(prober) = PROBER.get() else { return Ok(()) };
    let Ok(meta) = std::fs::metadata(path) else { return Ok(()) }; // the open reports it
    if meta.is_dir() {
        return Ok(());
    }
    let key = (std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()), meta.len(), meta.modified().ok());
    if passed().contains(&key) {
        return Ok(());
    }
    let child = Command::new(&prober.program)
        .args(&prober.args)
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    // A probe that cannot start protects nothing but must not stop the read.
    let Ok(mut child) = child else { return Ok(()) };
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < prober.timeout => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(not_h5ad(
                    path,
                    format!(
                        "the HDF5 library did not finish reading the file's structure in {} s (libhdf5 loops \
                         forever on some corrupt files); the file is corrupt (if it is merely huge, set \
                         ATLASFLOW_H5AD_PROBE_SECONDS higher)",
                        prober.timeout.as_secs()
                    ),
                ));
            }
            Err(_) => return Ok(()),
        }
    };
    if let Some(signal) = status.signal() {
        let name = match signal {
            11 => " (SIGSEGV)".to_string(),
            6 => " (SIGABRT)".to_string(),
            7 => " (SIGBUS)".to_string(),
            _ => String::new(),
        };
        return Err(not_h5ad(
            path,
            format!("the HDF5 library crashed reading the file's structure (signal {signal}{name}); the file is corrupt"),
        ));
    }
    passed().insert(key);
    Ok(())
}
