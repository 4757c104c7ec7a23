//! Fuzzing in the test suite's reach (issue #6, part 2): the three fuzz targets of
//! `crates/fuzz` (the YAML spec parser, the h5ad reader, the atlas store reader) run on
//!
//! - every seed in `fuzz/seeds/<target>/` and every crash `cargo xtask fuzz` has found in
//!   `tests/fuzz/crashes/<target>/` (regressions: each must now return without a panic);
//! - a short deterministic mutation run from those inputs (fixed seed and count), which fails
//!   on the first panic and names the file the input was saved to (under
//!   `target/fuzz-smoke/<target>/`; copy it to `tests/fuzz/crashes/<target>/` to keep it).
//!
//! The h5ad mutants run one per child process, because libhdf5 1.10 can loop forever (or
//! crash) on a corrupt file: a crash or panic fails the test, a hang is killed and reported.
//! The long runs with coverage feedback are `cargo xtask fuzz`.

#![allow(clippy::unwrap_used)]

use std::os::unix::process::ExitStatusExt as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use atlasflow_fuzz::{Mutants, atlas_store, h5ad_reader, smoke_in, spec_yaml};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The files of a corpus directory, sorted by name (a missing directory is empty).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).filter(|p| p.is_file() && !is_note(p)).collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// README/notes beside the crash files are not inputs.
fn is_note(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "md" || e == "txt")
}

/// Replay seeds and saved crashes; returns the seeds (the mutation run's starting points).
fn replay(name: &str, target: fn(&[u8])) -> Vec<Vec<u8>> {
    let seeds = files(&repo().join("fuzz/seeds").join(name));
    assert!(!seeds.is_empty(), "no seeds in fuzz/seeds/{name}");
    let crashes = files(&repo().join("tests/fuzz/crashes").join(name));
    let mut failures = Vec::new();
    for path in seeds.iter().chain(&crashes) {
        let data = std::fs::read(path).unwrap();
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| target(&data))) {
            let msg = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_default();
            failures.push(format!("{}: panic: {msg}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{name}: inputs that panic:\n{}", failures.join("\n"));
    eprintln!("{name}: replayed {} seeds and {} saved crashes", seeds.len(), crashes.len());
    seeds.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// The mutation runs' seed.
const SEED: u64 = 0x6174_6c61_7366_6c6f;

fn run(name: &str, target: fn(&[u8]), iterations: usize) {
    let seeds = replay(name, target);
    let out = repo().join("target/fuzz-smoke").join(name);
    match smoke_in(&out, target, &seeds, iterations, SEED) {
        Ok(stats) => eprintln!("{name}: {} mutated inputs in {:.1} s", stats.executions, stats.elapsed.as_secs_f64()),
        Err(e) => panic!("{name}: {e}\n(copy the file to tests/fuzz/crashes/{name}/ to keep it as a regression case)"),
    }
}

#[test]
fn spec_yaml_smoke() {
    run("spec_yaml", spec_yaml, 2_000);
}

/// h5ad mutants run one per child process (this test binary, re-run as `h5ad_child`): a
/// corrupt file can send libhdf5 1.10 into an endless loop (tests/fuzz/libhdf5/h5ad_reader/)
/// that nothing in-process can interrupt. A child that panics or dies by a signal fails
/// the test, except a segfault, which only libhdf5 can cause here; one still running after
/// [`HANG_SECONDS`] is killed. Hangs and segfaults are saved (`hang-*`, `libhdf5-segv-*`) and
/// reported but do not fail the test: they are libhdf5 1.10's bugs (tests/fuzz/libhdf5/).
#[test]
fn h5ad_reader_smoke() {
    let seeds = replay("h5ad_reader", h5ad_reader);
    let out = repo().join("target/fuzz-smoke/h5ad_reader");
    std::fs::create_dir_all(&out).unwrap();
    let exe = std::env::current_exe().unwrap();
    let input = out.join(format!("current-{}", std::process::id()));
    let started = std::time::Instant::now();
    let (mut hangs, mut failures) = (Vec::new(), Vec::new());
    for data in Mutants::new(&seeds, SEED).take(H5AD_ITERATIONS) {
        std::fs::write(&input, &data).unwrap();
        let mut child = std::process::Command::new(&exe)
            .args(["h5ad_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_INPUT, &input)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let t0 = std::time::Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break Some(s);
            }
            if t0.elapsed().as_secs() >= HANG_SECONDS {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        let name = format!("{:016x}", fnv(&data));
        match status {
            Some(s) if s.success() => {}
            None => {
                let f = out.join(format!("hang-{name}"));
                std::fs::write(&f, &data).unwrap();
                hangs.push(f);
            }
            // SIGSEGV: safe Rust cannot segfault (a stack overflow aborts), so this is libhdf5
            // reading out of bounds on a corrupt file (tests/fuzz/libhdf5/): kept, reported,
            // not failing; a panic (exit 101) or an abort fails.
            Some(s) if s.signal() == Some(11) => {
                let f = out.join(format!("libhdf5-segv-{name}"));
                std::fs::write(&f, &data).unwrap();
                hangs.push(f);
            }
            Some(s) => {
                let mut err = String::new();
                let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
                let f = out.join(format!("crash-{name}"));
                std::fs::write(&f, &data).unwrap();
                failures.push(format!("{} ({s}): {}", f.display(), err.lines().filter(|l| l.contains("panicked") || l.contains("fatal")).collect::<Vec<_>>().join(" ")));
            }
        }
    }
    let _ = std::fs::remove_file(&input);
    eprintln!(
        "h5ad_reader: {H5AD_ITERATIONS} mutated inputs in {:.1} s, {} libhdf5 hangs (killed after {HANG_SECONDS} s) or segfaults{}",
        started.elapsed().as_secs_f64(),
        hangs.len(),
        hangs.iter().map(|h| format!("\n  {}", h.display())).collect::<String>()
    );
    assert!(failures.is_empty(), "h5ad_reader: inputs that panic or crash (copy them to tests/fuzz/crashes/h5ad_reader/ to keep them):\n{}", failures.join("\n"));
}

const H5AD_ITERATIONS: usize = 300;
const HANG_SECONDS: u64 = 3;
const CHILD_INPUT: &str = "ATLASFLOW_FUZZ_CHILD_INPUT";

/// One h5ad input, in a child process of [`h5ad_reader_smoke`]; does nothing in a normal run.
#[test]
fn h5ad_child() {
    if let Some(p) = std::env::var_os(CHILD_INPUT) {
        h5ad_reader(&std::fs::read(p).unwrap());
    }
}

/// FNV-1a, to name a saved input by its content.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[test]
fn atlas_store_smoke() {
    run("atlas_store", atlas_store, 300);
}

/// The smoke loop really fails on a panic (and so would a target that starts panicking).
#[test]
fn smoke_fails_on_a_panic() {
    fn panics_on_colon(data: &[u8]) {
        assert!(!data.contains(&b':'), "a colon");
    }
    let dir = tempfile::tempdir().unwrap();
    let e = smoke_in(dir.path(), panics_on_colon, &[b"name".to_vec(), b"a: b".to_vec()], 500, 1).unwrap_err();
    assert!(e.contains("a colon"), "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// Rewrite the committed seed corpus from the tiny datasets of `atlasflow_fuzz::seeds`:
/// `cargo test --release -p atlasflow-cli --test fuzz_smoke -- --ignored write_seeds`.
#[test]
#[ignore = "rewrites fuzz/seeds; run by hand after changing the seed datasets"]
fn write_seeds() {
    let mut pipelines = files(&repo().join("pipelines"));
    pipelines.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    atlasflow_fuzz::seeds::write_corpus(&repo().join("fuzz/seeds"), &pipelines).unwrap();
}
