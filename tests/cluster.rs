//! `atlasflow scheduler`, `atlasflow executor` and `atlasflow run --cluster` as separate
//! processes on loopback (built with the `distributed` feature). An executor that stops
//! in the middle of a run: its tasks go to the other executor and the run completes with
//! the local run's bits, or the run fails clearly and leaves no output.

#![allow(clippy::unwrap_used)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(60), "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed when the test ends, its stderr in a file.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn start(args: &[&str], env: &[(&str, &str)], log: PathBuf) -> Proc {
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_atlasflow"))
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .unwrap();
        Proc { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn executor(dir: &Path, sched: u16, name: &str, env: &[(&str, &str)]) -> Proc {
    let port = free_port();
    let work = dir.join(format!("work-{name}"));
    std::fs::create_dir_all(&work).unwrap();
    let p = Proc::start(
        &[
            "executor", "--scheduler", &format!("df://127.0.0.1:{sched}"), "--bind-host", "127.0.0.1", "--port", &port.to_string(),
            "--grpc-port", &free_port().to_string(), "--name", name, "--slots", "1", "--memory", "1GiB", "--work-dir", work.to_str().unwrap(),
        ],
        env,
        dir.join(format!("{name}.log")),
    );
    wait_for_port(port);
    p
}

fn h5ad(dir: &Path) -> PathBuf {
    dir.join("results/census-smartseq2-liver.h5ad")
}

#[test]
fn a_stopped_executor_loses_its_tasks_to_the_other_or_the_run_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = repo().join("pipelines/census-smartseq2-liver.yaml");
    let local = d.join("local");
    let o = Command::new(env!("CARGO_BIN_EXE_atlasflow"))
        .args(["run", spec.to_str().unwrap(), "--out", local.to_str().unwrap(), "-q", "--threads", "2"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let sched = free_port();
    let _scheduler = Proc::start(
        &["scheduler", "--bind", &format!("127.0.0.1:{sched}"), "--external-host", "127.0.0.1", "--executor-timeout", "4"],
        &[],
        d.join("scheduler.log"),
    );
    wait_for_port(sched);
    // Two executors; one takes a task and hangs in it (fault injection), as a machine that
    // went away would, and is then killed.
    let healthy = executor(d, sched, "healthy", &[]);
    let mut stalled = executor(d, sched, "stalled", &[("ATLASFLOW_STALL_IN_TASK", "1")]);
    let remote = d.join("cluster");
    let mut run = Proc::start(
        &["run", spec.to_str().unwrap(), "--out", remote.to_str().unwrap(), "-q", "--cluster", &format!("df://127.0.0.1:{sched}")],
        &[],
        d.join("run.log"),
    );
    let start = Instant::now();
    while !stalled.log().contains("stalling in task") {
        assert!(start.elapsed() < Duration::from_secs(120), "the executor never got a task; its log:\n{}\nrun:\n{}", stalled.log(), run.log());
        assert!(run.child.try_wait().unwrap().is_none(), "the run ended before the executor got a task; run:\n{}", run.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    stalled.kill();

    let start = Instant::now();
    let status = loop {
        if let Some(s) = run.child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(600), "the run neither finished nor failed in 10 min; its log:\n{}", run.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    if status.success() {
        // Retried on the healthy executor: the local run's bits.
        let (a, b) = (hdf5::File::open(h5ad(&local)).unwrap(), hdf5::File::open(h5ad(&remote)).unwrap());
        for ds in ["X", "obsm/X_pca", "obsm/X_umap", "obsp/connectivities/data"] {
            let read = |f: &hdf5::File| f.dataset(ds).unwrap().read_raw::<f64>().unwrap();
            assert!(read(&a) == read(&b), "{ds} differs after the retry");
        }
        let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(remote.join("results/run.json")).unwrap()).unwrap();
        let healthy_tasks: u64 = record["passes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["tasks_by_executor"]["healthy"].as_u64())
            .sum();
        assert!(healthy_tasks > 0, "{record}");
        println!("stopped executor: its tasks were retried on the other one; the run completed with the local run's bits");
    } else {
        let log = run.log();
        assert_eq!(status.code(), Some(1), "{log}");
        assert!(log.contains("cluster df://127.0.0.1:"), "{log}");
        assert!(!h5ad(&remote).exists(), "a failed run left {}", h5ad(&remote).display());
        println!("stopped executor: the run failed clearly: {log}\nthe other executor's log:\n{}", healthy.log());
    }
}

#[test]
fn run_cluster_without_a_scheduler_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let spec = repo().join("pipelines/census-smartseq2-liver.yaml");
    let port = free_port();
    let o = Command::new(env!("CARGO_BIN_EXE_atlasflow"))
        .args(["run", spec.to_str().unwrap(), "--out", dir.path().to_str().unwrap(), "-q", "--cluster", &format!("df://127.0.0.1:{port}")])
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains(&format!("cluster df://127.0.0.1:{port}: cannot reach the scheduler")), "{e}");
    assert!(!h5ad(dir.path()).exists());
}
