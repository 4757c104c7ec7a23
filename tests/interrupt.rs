//! Interrupted runs (issue #6, part 3): a run killed at any moment leaves the previous
//! complete outputs or none, and `--resume` goes on from the last completed pass to the same
//! bits as a run that was never interrupted.
//!
//! The kills are real (SIGKILL) and mid-pass: `ATLASFLOW_STALL_IN_PASS=N` makes the run stop
//! after the first granules of pass N and wait, and the test kills it there.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{data_dir, Expected};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn base_args(out: &Path) -> Vec<String> {
    let input = data_dir("synth").join("input.h5ad");
    let spec = repo().join("pipelines/census-smartseq2-liver.yaml");
    ["run", spec.to_str().unwrap(), "--input", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn run(out: &Path, extra: &[&str]) -> Output {
    let mut args = base_args(out);
    args.extend(extra.iter().map(|s| s.to_string()));
    Command::new(env!("CARGO_BIN_EXE_atlasflow")).args(&args).output().expect("run atlasflow")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Start a run that stalls in pass `pass`, wait until it says so, and kill it (SIGKILL).
fn kill_in_pass(out: &Path, pass: usize) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_atlasflow"))
        .args(base_args(out))
        .env("ATLASFLOW_STALL_IN_PASS", pass.to_string())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) if line.contains("stalled") => break,
            Ok(line) => seen.push(line),
            Err(_) => {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!("the run ended ({status}) before stalling in pass {pass}: {}", seen.join("\n"));
                }
                assert!(Instant::now() < deadline, "the run never stalled in pass {pass}");
            }
        }
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed run exited cleanly");
}

/// Every file under `dir` (relative path → bytes), hidden ones and the checkpoint
/// directory left out: what a user sees as the outputs.
fn outputs(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(d) else { return };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// Hidden entries of `dir/results` (temporaries, checkpoints).
fn hidden(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("results"))
        .map(|it| it.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with('.')).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn checkpoints(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("results/.atlasflow-checkpoint"))
        .map(|it| it.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The results of a run as bits: every array of the h5ad that a pass computes, and the
/// Parquet table and plots as bytes.
fn results(dir: &Path) -> Vec<(String, Vec<u64>)> {
    let f = Expected::open_path(&dir.join("results/census-smartseq2-liver.h5ad"));
    let bits = |v: Vec<f64>| v.into_iter().map(f64::to_bits).collect::<Vec<_>>();
    let mut out = vec![
        ("X".to_string(), bits(f.f64s("X"))),
        ("obsm/X_pca".to_string(), bits(f.f64s("obsm/X_pca"))),
        ("varm/PCs".to_string(), bits(f.f64s("varm/PCs"))),
        ("obsm/X_umap".to_string(), bits(f.f64s("obsm/X_umap"))),
        ("obsp/connectivities".to_string(), bits(f.csr("obsp/connectivities").values)),
        ("var/means".to_string(), bits(f.f64s("var/means"))),
        ("var/dispersions_norm".to_string(), bits(f.f64s("var/dispersions_norm"))),
    ];
    let strings = |p: &str| f.strings(p).iter().map(|s| s.len() as u64).chain(f.strings(p).concat().bytes().map(u64::from)).collect::<Vec<_>>();
    for p in ["obs/_index", "var/_index", "obs/leiden"] {
        out.push((p.to_string(), strings(p)));
    }
    for (name, bytes) in outputs(dir) {
        if !name.ends_with(".h5ad") && !name.ends_with("run.json") {
            out.push((name, bytes.into_iter().map(u64::from).collect()));
        }
    }
    out
}

fn assert_same(what: &str, got: &[(String, Vec<u64>)], want: &[(String, Vec<u64>)]) {
    assert_eq!(got.len(), want.len(), "{what}: different outputs");
    for ((n, g), (_, w)) in got.iter().zip(want) {
        assert!(g == w, "{what}: {n} differs from the uninterrupted run");
    }
}

fn record(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results/run.json")).unwrap()).unwrap()
}

#[test]
fn a_killed_run_loses_nothing_and_resume_gives_the_same_bits() {
    // The uninterrupted run.
    let reference = tempfile::tempdir().unwrap();
    let o = run(reference.path(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let want = results(reference.path());
    let rec = record(reference.path());
    let labels: Vec<String> = rec["passes"].as_array().unwrap().iter().map(|p| p["label"].as_str().unwrap().to_string()).collect();
    let fits = labels.iter().filter(|l| l.contains(": fit ")).count();
    let write_pass = labels.iter().position(|l| l.contains(": write ")).unwrap() + 1;
    assert!(fits >= 3 && write_pass == fits + 1, "passes: {labels:?}");
    assert!(hidden(reference.path()).is_empty(), "a finished run leaves its checkpoints or temporaries: {:?}", hidden(reference.path()));

    // Killed in the middle of the third pass: no output, the first two passes checkpointed.
    let dir = tempfile::tempdir().unwrap();
    kill_in_pass(dir.path(), 3);
    assert!(outputs(dir.path()).is_empty(), "a killed run left outputs: {:?}", outputs(dir.path()).keys().collect::<Vec<_>>());
    assert_eq!(checkpoints(dir.path()), vec!["target-000-pass-001.ckpt", "target-000-pass-002.ckpt"]);

    // A resume with other parameters is refused, and keeps the checkpoints.
    let o = run(dir.path(), &["--resume", "--set", "pca.n_comps=20"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("another run") && e.contains("without --resume") && !e.contains("panicked"), "{e}");
    assert!(outputs(dir.path()).is_empty());
    assert_eq!(checkpoints(dir.path()).len(), 2);

    // The resume runs the two remaining passes and gives the same bits.
    let o = run(dir.path(), &["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resumed: 2 pass(es)"), "{}", stderr(&o));
    assert_eq!(record(dir.path())["resumed_passes"], 2);
    assert_same("resumed after a kill in pass 3", &results(dir.path()), &want);
    assert!(hidden(dir.path()).is_empty(), "left behind: {:?}", hidden(dir.path()));

    // Killed while writing the outputs: the previous complete outputs stay as they were.
    let before = outputs(dir.path());
    kill_in_pass(dir.path(), write_pass);
    assert!(outputs(dir.path()) == before, "a run killed while writing changed the previous outputs");
    assert!(hidden(dir.path()).iter().any(|h| h.contains(".tmp-")), "expected the killed writer's temporary: {:?}", hidden(dir.path()));
    // Resuming from there skips every fit pass; the killed run's temporaries are removed.
    let o = run(dir.path(), &["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(record(dir.path())["resumed_passes"], fits as u64);
    assert_same("resumed after a kill in the write pass", &results(dir.path()), &want);
    assert!(hidden(dir.path()).is_empty(), "left behind: {:?}", hidden(dir.path()));

    // --resume with nothing to resume runs from the start, and says so.
    let o = run(dir.path(), &["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("found no checkpoint"), "{}", stderr(&o));
    assert_same("a --resume with nothing to resume", &results(dir.path()), &want);
}

/// A spill directory on a file system that fills up: `unshare` gives the run its own small
/// tmpfs (root, or a user namespace); where that is not allowed, a file size limit
/// (RLIMIT_FSIZE) makes the same write fail. Either way the run must say which file could
/// not be written and why, exit ≠ 0, leave no output, and remove its spill files.
#[test]
fn a_disk_that_fills_while_spilling_gives_a_clear_error_and_removes_the_spill() {
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    let out = dir.path().join("out");
    let spec = repo().join("pipelines/census-smartseq2-liver.yaml");
    let input = repo().join("data/example/smartseq2-liver-example.h5ad");
    let args: Vec<String> = ["run", spec.to_str().unwrap(), "--input", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"]
        .iter()
        .map(|s| s.to_string())
        .collect();

    // With room, this run spills (after the highly variable subset), and cleans up.
    let o = Command::new(env!("CARGO_BIN_EXE_atlasflow")).args(&args).env("TMPDIR", &spill).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let rec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("results/run.json")).unwrap()).unwrap();
    assert!(!rec["spills"].as_array().unwrap().is_empty(), "the run did not spill: {rec}");
    assert_eq!(std::fs::read_dir(&spill).unwrap().count(), 0, "spill files left after a run");
    std::fs::remove_dir_all(&out).unwrap();

    let bin = env!("CARGO_BIN_EXE_atlasflow");
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let script = format!(
        "mount -t tmpfs -o size=256k atlasflow-test '{d}' || exit 99; TMPDIR='{d}' '{bin}' {a}; rc=$?; echo LEFT:; ls -A '{d}'; exit $rc",
        d = spill.display(),
        a = quoted.join(" ")
    );
    let o = Command::new("unshare").args(["-rm", "sh", "-c", &script]).output();
    let (o, left, why) = match o {
        Ok(o) if o.status.code() != Some(99) && o.status.code().is_some() => {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let left = text.split("LEFT:").nth(1).unwrap_or("?").trim().to_string();
            (o, left, "No space left on device")
        }
        _ => {
            // No mount namespace here: the same fault through a file size limit (the shell
            // ignores SIGXFSZ, so the write fails with EFBIG instead of killing the run).
            let script = format!("trap '' XFSZ; exec prlimit --fsize={} -- '{bin}' {}", 256 << 10, quoted.join(" "));
            let mut cmd = Command::new("sh");
            cmd.args(["-c", &script]).env("TMPDIR", &spill);
            let o = cmd.output().unwrap();
            let left = std::fs::read_dir(&spill).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ");
            (o, left, "File too large")
        }
    };
    assert!(!o.status.success(), "the run succeeded with a full disk");
    let e = stderr(&o);
    assert!(e.contains("spill") && e.contains(why) && !e.contains("panicked"), "{e}");
    assert!(e.contains(spill.to_str().unwrap()), "the message does not name the spill directory: {e}");
    assert!(left.is_empty(), "spill files left on the full disk: {left}");
    assert!(!out.exists(), "the failed run left its output directory: {:?}", outputs(&out).keys().collect::<Vec<_>>());
}
