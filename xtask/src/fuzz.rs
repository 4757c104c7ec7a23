//! `cargo xtask fuzz`: run the cargo-fuzz targets in `fuzz/` for a while each, and turn what
//! they find into regression cases.
//!
//! For each target (`spec_yaml`, `h5ad_reader`, `atlas_store`, or the one `--target` names)
//! it runs
//!
//! ```text
//! cargo [+nightly] fuzz run <target> fuzz/corpus/<target> fuzz/seeds/<target> -s <sanitizer> -- -max_total_time=N
//! ```
//!
//! from the repository root: new inputs go to `fuzz/corpus/<target>/` (ignored by git), the
//! committed seeds in `fuzz/seeds/<target>/` are only read. Every `crash-*` file libFuzzer
//! leaves in `fuzz/artifacts/<target>/` is copied to `tests/fuzz/crashes/<target>/`, which
//! `tests/fuzz_smoke.rs` replays on every test run: a crash found once stays a test case.
//!
//! libFuzzer needs cargo-fuzz (`cargo install cargo-fuzz`). It runs on the nightly
//! toolchain when rustup has one (needed for sanitizers), else on stable without a
//! sanitizer (`-s none`: libFuzzer still sees panics, aborts and crashes in C code).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bench::root;

type BoxError = Box<dyn std::error::Error>;

/// The fuzz targets, as named in fuzz/Cargo.toml and under fuzz/seeds.
pub const TARGETS: [&str; 3] = ["spec_yaml", "h5ad_reader", "atlas_store"];

/// Arguments of `cargo xtask fuzz`.
#[derive(clap::Args, Debug)]
pub struct FuzzArgs {
    /// Only this target (spec_yaml, h5ad_reader or atlas_store); default: each in turn.
    #[arg(long)]
    pub target: Option<String>,
    /// Seconds of fuzzing per target.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Sanitizer: none, or (nightly only) address, leak, memory, thread.
    #[arg(long, default_value = "none")]
    pub sanitizer: String,
    /// libFuzzer's RSS limit per process in MiB (an input needing more is reported as an OOM).
    #[arg(long, default_value_t = 4096)]
    pub rss_limit_mb: u64,
    /// Extra libFuzzer options, e.g. --libfuzzer=-max_len=65536 (repeatable).
    #[arg(long = "libfuzzer", allow_hyphen_values = true)]
    pub libfuzzer: Vec<String>,
}

/// Whether `cargo fuzz` runs here.
fn have_cargo_fuzz() -> bool {
    Command::new("cargo").args(["fuzz", "--version"]).output().is_ok_and(|o| o.status.success())
}

/// Whether rustup lists a nightly toolchain.
fn have_nightly() -> bool {
    Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).lines().any(|l| l.starts_with("nightly")))
}

/// Run the fuzzers; see the module docs.
pub fn main(args: &FuzzArgs) -> Result<(), BoxError> {
    let root = root()?;
    let targets: Vec<&str> = match &args.target {
        Some(t) if TARGETS.contains(&t.as_str()) => vec![t.as_str()],
        Some(t) => return Err(format!("unknown fuzz target {t:?}; targets: {}", TARGETS.join(", ")).into()),
        None => TARGETS.to_vec(),
    };
    if !have_cargo_fuzz() {
        return Err("cargo-fuzz is not installed: run `cargo install cargo-fuzz` (it builds from crates.io; \
                    the nightly toolchain, `rustup toolchain install nightly`, adds sanitizers), then rerun \
                    `cargo xtask fuzz`. Without it, `cargo test --release -p atlasflow-cli --test fuzz_smoke` \
                    runs the same targets on a short deterministic mutation loop."
            .into());
    }
    let nightly = have_nightly();
    if !nightly && args.sanitizer != "none" {
        return Err(format!("--sanitizer {} needs the nightly toolchain (rustup toolchain install nightly)", args.sanitizer).into());
    }
    println!(
        "fuzzing {} for {} s each on {} (sanitizer {})",
        targets.join(", "),
        args.seconds,
        if nightly { "nightly" } else { "stable" },
        args.sanitizer
    );
    let mut failed = Vec::new();
    for target in targets {
        let ok = run_target(&root, target, args, nightly)?;
        let copied = collect_crashes(&root, target)?;
        if !ok || !copied.is_empty() {
            failed.push(target);
        }
    }
    if failed.is_empty() {
        println!("no crash found");
        Ok(())
    } else {
        Err(format!(
            "the fuzzer stopped on a finding in {}: see above; crash inputs are now corpus cases in tests/fuzz/crashes/<target>/ \
             (fix the bug, then `cargo test --release -p atlasflow-cli --test fuzz_smoke` replays them)",
            failed.join(", ")
        )
        .into())
    }
}

/// Run one target; true when libFuzzer ended without a finding.
fn run_target(root: &Path, target: &str, args: &FuzzArgs, nightly: bool) -> Result<bool, BoxError> {
    let corpus = root.join("fuzz/corpus").join(target);
    let seeds = root.join("fuzz/seeds").join(target);
    std::fs::create_dir_all(&corpus)?;
    let mut cmd = Command::new("cargo");
    if nightly {
        cmd.arg("+nightly");
    }
    cmd.current_dir(root)
        // The toolchain is chosen above; the fuzz build keeps its own target dir (fuzz/target).
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO_TARGET_DIR")
        // 16 codegen units: cargo fuzz's default of 1 makes the instrumented DataFusion build
        // take far longer, for a few percent of speed.
        .args(["fuzz", "run", "--fuzz-dir", "fuzz", "--codegen-units", "16", "-s", &args.sanitizer, target])
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={}", args.seconds))
        .arg(format!("-rss_limit_mb={}", args.rss_limit_mb))
        .arg("-print_final_stats=1")
        .args(&args.libfuzzer);
    println!("\n== {target}: {cmd:?}");
    let status = cmd.status().map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
    Ok(status.success())
}

/// Copy new `crash-*` artifacts of `target` to tests/fuzz/crashes/<target>/; say what else
/// (OOM, timeout) libFuzzer left.
fn collect_crashes(root: &Path, target: &str) -> Result<Vec<PathBuf>, BoxError> {
    let artifacts = root.join("fuzz/artifacts").join(target);
    let dest = root.join("tests/fuzz/crashes").join(target);
    let mut copied = Vec::new();
    let Ok(entries) = std::fs::read_dir(&artifacts) else {
        return Ok(copied);
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with("crash-") {
            let to = dest.join(&name);
            if to.exists() {
                continue;
            }
            std::fs::create_dir_all(&dest)?;
            std::fs::copy(&path, &to)?;
            println!(
                "{target}: {} is now a corpus case: tests/fuzz/crashes/{target}/{name} (replayed by tests/fuzz_smoke.rs; \
                 reproduce with `cargo fuzz run --fuzz-dir fuzz {target} {}`)",
                path.display(),
                to.display()
            );
            copied.push(to);
        } else if name.starts_with("oom-") || name.starts_with("timeout-") || name.starts_with("slow-unit-") {
            println!("{target}: libFuzzer also left {} (resource use, not a crash: look at it, it is not copied)", path.display());
        }
    }
    Ok(copied)
}
