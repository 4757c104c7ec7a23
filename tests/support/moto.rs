//! A local S3 endpoint for tests: moto's server on a free loopback port (never the
//! internet), run by the python in `ATLASFLOW_PYTHON`, else the repository's `.venv-ref`
//! (both with `moto[server]` and `boto3`), and killed on drop.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The python with moto and boto3, or None (after printing why) when the test should be
/// skipped. Under CI (`CI` set) a missing python is a failure, not a skip.
pub fn python() -> Option<PathBuf> {
    // Else the repository's `.venv-ref` (what `.ci/run` creates); every test crate sits
    // two levels below the repository root.
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-ref/bin/python");
    let chosen = std::env::var_os("ATLASFLOW_PYTHON").map(PathBuf::from).or_else(|| venv.exists().then_some(venv));
    let why = match chosen {
        None => "ATLASFLOW_PYTHON is not set and there is no .venv-ref".to_string(),
        Some(py) => {
            let ok = Command::new(&py)
                .args(["-c", "import moto, moto.server, boto3"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Some(PathBuf::from(py));
            }
            format!("{} cannot import moto and boto3 (pip install -r scripts/requirements-reference.txt)", PathBuf::from(py).display())
        }
    };
    if std::env::var_os("CI").is_some() {
        panic!("the S3 tests need moto[server] and boto3: {why}");
    }
    eprintln!("skipped: {why}");
    None
}

/// A moto S3 server on a free loopback port, killed on drop.
pub struct Moto {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Moto {
    /// Starts the server and waits until it listens.
    pub fn start(python: &Path) -> Moto {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto.server");
        let moto = Moto { child: Some(child), endpoint: format!("http://127.0.0.1:{port}") };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(60), "moto did not listen on port {port} within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// Runs a python `script` with boto3's client for this endpoint bound to `s3` (and
    /// `sys.argv[1:]` = `args`); panics with its stderr when it fails.
    pub fn boto3(&self, python: &Path, script: &str, args: &[&str]) -> String {
        let full = format!(
            "import os, sys, boto3\ns3 = boto3.client('s3', endpoint_url={:?}, region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\n{script}",
            self.endpoint
        );
        let out = Command::new(python).arg("-c").arg(full).args(args).env_remove("AWS_PROFILE").output().unwrap();
        assert!(out.status.success(), "boto3 script failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Creates `bucket` (if new) and uploads the tree `dir` under `prefix/`, readable by
    /// anyone like the public Census.
    pub fn upload_tree(&self, python: &Path, bucket: &str, prefix: &str, dir: &Path) {
        const SCRIPT: &str = r#"
bucket, prefix, root = sys.argv[1], sys.argv[2], sys.argv[3]
if bucket not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
    s3.create_bucket(Bucket=bucket)
for d, _, files in os.walk(root):
    for f in files:
        full = os.path.join(d, f)
        key = prefix + "/" + os.path.relpath(full, root).replace(os.sep, "/")
        with open(full, "rb") as fh:
            s3.put_object(Bucket=bucket, Key=key, Body=fh.read(), ACL="public-read")
"#;
        self.boto3(python, SCRIPT, &[bucket, prefix, dir.to_str().unwrap()]);
    }

    /// Kills the server (reads through it then fail).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}
