//! An in-process cluster: atlasflow's scheduler and two executors on loopback, in this
//! test's process, through the same functions the `scheduler` and `executor` subcommands
//! call. The Census tutorial run on it gives exactly the bits of a local run, and both
//! executors take tasks.

#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use atlasflow_distributed::{serve_executor, serve_scheduler, ClusterBackend, ExecutorOptions, JobSpec, SchedulerOptions};
use atlasflow_engine::{NoProgress, Plan, PipelineSpec, RunOptions};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for(addr: SocketAddr) {
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A scheduler and executors named `names`, one task slot each, in a runtime of their own.
fn start_cluster(names: &[&str], work: &Path) -> (tokio::runtime::Runtime, String) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    let bind: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let sched = SchedulerOptions { bind, external_host: "127.0.0.1".into(), executor_timeout_seconds: 30 };
    rt.spawn(async move { serve_scheduler(&sched).await.unwrap() });
    wait_for(bind);
    let url = format!("df://127.0.0.1:{}", bind.port());
    for name in names {
        let o = ExecutorOptions {
            scheduler: url.clone(),
            bind_host: "127.0.0.1".into(),
            external_host: None,
            port: free_port(),
            grpc_port: free_port(),
            name: Some(name.to_string()),
            task_slots: 1,
            threads_per_task: 1,
            memory_bytes: 1 << 30,
            work_dir: Some(work.join(name)),
        };
        std::fs::create_dir_all(work.join(name)).unwrap();
        let flight: SocketAddr = format!("127.0.0.1:{}", o.port).parse().unwrap();
        rt.spawn(async move { serve_executor(&o).await.unwrap() });
        wait_for(flight);
    }
    (rt, url)
}

fn tutorial() -> Plan {
    Plan::new(PipelineSpec::from_file(&repo().join("pipelines/census-smartseq2-liver.yaml")).unwrap()).unwrap()
}

fn options(out: &Path, threads: usize, read_block: usize) -> RunOptions {
    RunOptions { threads, memory_bytes: 2 << 30, read_block, out_dir: Some(out.to_path_buf()), input: None, resume: false }
}

#[test]
fn tutorial_on_two_executors_equals_the_local_run() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, url) = start_cluster(&["exec-a", "exec-b"], dir.path());
    let plan = tutorial();
    let (local, remote) = (dir.path().join("local"), dir.path().join("cluster"));
    atlasflow_engine::run(&plan, &options(&local, 2, 4096), &NoProgress).unwrap();
    let opts = options(&remote, 1, 97);
    let backend = ClusterBackend::connect(&url, JobSpec::new(&plan, &[], &opts), 16).unwrap();
    let record = atlasflow_engine::run_on(&plan, &opts, &NoProgress, Some(&backend)).unwrap();

    // Every streaming pass ran on the cluster, and both executors took tasks.
    let streamed: Vec<_> = record.passes.iter().filter(|p| !p.label.starts_with("in memory")).collect();
    assert!(streamed.len() >= 4, "{:?}", record.passes);
    let mut seen = std::collections::BTreeMap::new();
    for p in &streamed {
        let tasks = p.tasks_by_executor.as_ref().unwrap_or_else(|| panic!("{} did not run on the cluster", p.label));
        for (e, n) in tasks {
            *seen.entry(e.clone()).or_insert(0) += n;
        }
    }
    assert_eq!(seen.keys().cloned().collect::<Vec<_>>(), ["exec-a", "exec-b"], "tasks per executor: {seen:?}");

    let open = |d: &Path| hdf5::File::open(d.join("results/census-smartseq2-liver.h5ad")).unwrap();
    let (a, b) = (open(&local), open(&remote));
    for ds in ["X", "obsm/X_pca", "obsm/X_umap", "varm/PCs", "obsp/connectivities/data", "obsp/distances/data", "obs/raw_sum", "obs/n_genes_by_counts", "var/mean", "var/std", "var/dispersions_norm"] {
        let (x, y) = (a.dataset(ds).unwrap().read_raw::<f64>().unwrap(), b.dataset(ds).unwrap().read_raw::<f64>().unwrap());
        assert!(!x.is_empty(), "{ds}");
        assert!(x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()) && x.len() == y.len(), "{ds} differs between the local and the cluster run");
    }
    for ds in ["obs/leiden/codes", "obs/cell_type/codes", "obsp/connectivities/indices", "obsp/connectivities/indptr"] {
        let read = |f: &hdf5::File| f.dataset(ds).unwrap().read_raw::<i64>().unwrap();
        assert_eq!(read(&a), read(&b), "{ds}");
    }
    for ds in ["obs/_index", "var/_index"] {
        let read = |f: &hdf5::File| f.dataset(ds).unwrap().read_raw::<hdf5::types::VarLenUnicode>().unwrap();
        assert_eq!(read(&a), read(&b), "{ds}");
    }
    assert_eq!(
        std::fs::read(local.join("results/census-smartseq2-liver-cells.parquet")).unwrap(),
        std::fs::read(remote.join("results/census-smartseq2-liver-cells.parquet")).unwrap(),
        "the Parquet output differs"
    );
}

#[test]
fn an_input_the_executors_cannot_read_fails_naming_it_with_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, url) = start_cluster(&["exec-c"], dir.path());
    let plan = tutorial();
    let out = dir.path().join("out");
    let opts = options(&out, 1, 4096);
    // The client reads the store; the executors are told a path that is not there, as when
    // the input is on a disk only the client has.
    let mut job = JobSpec::new(&plan, &[], &opts);
    job.input = dir.path().join("only-on-the-client/atlas");
    let backend = ClusterBackend::connect(&url, job, 4).unwrap();
    let e = atlasflow_engine::run_on(&plan, &opts, &NoProgress, Some(&backend)).err().unwrap().to_string();
    assert!(e.contains("only-on-the-client/atlas") && e.contains("exec-c"), "{e}");
    assert!(!out.join("results/census-smartseq2-liver.h5ad").exists());
}

#[test]
fn a_scheduler_that_is_not_there_is_a_clear_error() {
    let port = free_port();
    let plan = tutorial();
    let opts = options(Path::new("/nonexistent"), 1, 4096);
    let e = ClusterBackend::connect(&format!("df://127.0.0.1:{port}"), JobSpec::new(&plan, &[], &opts), 4).err().unwrap().to_string();
    assert!(e.contains(&format!("df://127.0.0.1:{port}")) && e.contains("cannot reach the scheduler"), "{e}");
    let e = ClusterBackend::connect("http://x:1", JobSpec::new(&plan, &[], &opts), 4).err().unwrap().to_string();
    assert!(e.contains("df://HOST:PORT"), "{e}");
}
