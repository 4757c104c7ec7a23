//! The S3 storage against a local S3 endpoint: moto's server on loopback (never the
//! internet), with the Census-shaped fixture uploaded by boto3. Reads through S3 must
//! equal the same reads through `LocalStorage`; range reads must coalesce; the metadata
//! cache must serve a second open without GETs, even with the endpoint gone; wrong
//! buckets, missing keys and dead endpoints must be errors naming the `s3://` URL.
//!
//! The python is `ATLASFLOW_PYTHON` (CI's `.venv-ref`, with `moto[server]` and `boto3`).
//! Without it the tests print "skipped" — except under CI (`CI` set), where they fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use atlasflow_soma::{
    Census, CsrRows, LocalStorage, S3Options, S3Storage, SomaError, Storage, open,
    storage_for_uri_with,
};
use common::fixtures;

const BUCKET: &str = "atlas-test";
const BLOB: &str = "data/blob.bin";
const BLOB_LEN: u64 = 3_000_000;

#[path = "../../../tests/support/moto.rs"]
mod moto;

use moto::{Moto, python};

/// Uploads, readable by anyone like the public Census, the Census fixture under
/// `census/` and a 3 MB blob of bytes `i % 251` at `data/blob.bin`; and a private object
/// at `private/secret.bin`.
fn upload(moto: &Moto, python: &Path) {
    moto.upload_tree(python, BUCKET, "census", &fixtures().join("census"));
    const SCRIPT: &str = r#"
bucket, length = sys.argv[1], int(sys.argv[2])
s3.put_object(Bucket=bucket, Key="data/blob.bin", Body=bytes(i % 251 for i in range(length)),
              ACL="public-read")
s3.put_object(Bucket=bucket, Key="private/secret.bin", Body=b"secret")
"#;
    moto.boto3(python, SCRIPT, &[BUCKET, &BLOB_LEN.to_string()]);
}

fn options(endpoint: &str, cache_dir: Option<&Path>) -> S3Options {
    S3Options {
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint.into()),
        anonymous: Some(true),
        cache_dir: cache_dir.map(Path::to_path_buf),
        max_retries: 1,
        connect_timeout: Duration::from_secs(5),
        ..S3Options::default()
    }
}

fn s3(endpoint: &str, cache_dir: Option<&Path>) -> Arc<S3Storage> {
    Arc::new(S3Storage::new(BUCKET, &options(endpoint, cache_dir)).unwrap())
}

fn local_census() -> Census {
    Census::open_local(fixtures().join("census")).unwrap()
}

fn blob_bytes(r: std::ops::Range<u64>) -> Vec<u8> {
    r.map(|i| (i % 251) as u8).collect()
}

/// Asserts `err` names `url` and says `what`.
fn assert_names(err: &SomaError, url: &str, what: &str) {
    let msg = err.to_string();
    assert!(msg.contains(url), "error does not name {url}: {msg}");
    assert!(msg.contains(what), "error does not say {what:?}: {msg}");
}

#[test]
fn reads_the_census_through_s3_like_local() {
    let Some(py) = python() else { return };
    let moto = Moto::start(&py);
    upload(&moto, &py);
    let storage = s3(&moto.endpoint, None);
    let dynamic: Arc<dyn Storage> = Arc::clone(&storage) as Arc<dyn Storage>;

    // The Census navigates and reads the same through S3 as locally.
    let remote = Census::open(Arc::clone(&dynamic), "census").unwrap();
    let local = local_census();
    assert_eq!(remote.metadata(), local.metadata());
    assert_eq!(
        remote.datasets().unwrap().read(None).unwrap(),
        local.datasets().unwrap().read(None).unwrap()
    );
    assert_eq!(remote.organisms().unwrap(), local.organisms().unwrap());
    let (re, le) = (
        remote.experiment("homo_sapiens").unwrap(),
        local.experiment("homo_sapiens").unwrap(),
    );
    assert_eq!(
        re.obs().unwrap().read(None).unwrap(),
        le.obs().unwrap().read(None).unwrap()
    );
    assert_eq!(
        re.var("RNA").unwrap().read(None).unwrap(),
        le.var("RNA").unwrap().read(None).unwrap()
    );
    let (rx, lx) = (
        re.x("RNA", "raw").unwrap().x_reader().unwrap(),
        le.x("RNA", "raw").unwrap().x_reader().unwrap(),
    );
    let some = [0i64, 5, 6, 7, 300, 799];
    assert_same_rows(&rx.read_rows(&some).unwrap(), &lx.read_rows(&some).unwrap());
    let all: Vec<i64> = (0..800).collect();
    let full = rx.read_rows(&all).unwrap();
    assert_same_rows(&full, &lx.read_rows(&all).unwrap());
    assert!(full.nnz() > 0);

    // A second read of the same arrays is served by the metadata cache: no new GETs for
    // schemas and fragment footers, only the data tiles.
    let before = storage.stats();
    let again = Census::open(Arc::clone(&dynamic), "census").unwrap();
    again.datasets().unwrap().tiledb();
    let after = storage.stats();
    assert_eq!(
        after.get_requests, before.get_requests,
        "{before:?} {after:?}"
    );
    assert_eq!(
        after.list_requests, before.list_requests,
        "{before:?} {after:?}"
    );
    assert!(after.memory_hits > before.memory_hits);

    // Neighbouring ranges coalesce into few requests, issued concurrently.
    let ranges = [
        100..300,
        0..100,
        5_000..6_000,
        7_000..7_000,
        2_000_000..2_000_010,
        2_900_000..3_000_000,
    ];
    let before = storage.stats();
    let got = storage.read_ranges(BLOB, &ranges).unwrap();
    let after = storage.stats();
    for (r, bytes) in ranges.iter().zip(&got) {
        assert_eq!(bytes, &blob_bytes(r.clone()), "range {r:?}");
    }
    // 0..6000 is one request; 2_000_000.. and 2_900_000.. are 900 kB apart: one more.
    assert_eq!(after.get_requests - before.get_requests, 2, "{after:?}");
    assert_eq!(
        storage.read_range(BLOB, 10..20).unwrap(),
        blob_bytes(10..20)
    );
    assert_eq!(storage.size(BLOB).unwrap(), BLOB_LEN);
    assert!(storage.exists(BLOB).unwrap());
    assert!(!storage.exists("data/nope.bin").unwrap());
    let names: Vec<String> = storage
        .list("")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(names.contains(&"census".to_string()) && names.contains(&"data".to_string()));
    assert!(storage.list("no/such/dir").unwrap().is_empty());

    // Many threads at once (rayon's pool reads tiles in parallel), and a call from inside
    // another tokio runtime: no deadlock, no panic.
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let storage = Arc::clone(&storage);
            s.spawn(move || {
                for k in 0..5u64 {
                    let start = (t * 100_000 + k * 7_919) % (BLOB_LEN - 5_000);
                    let r = [start..start + 1_000, start + 1_000..start + 4_000];
                    let got = storage.read_ranges(BLOB, &r).unwrap();
                    assert_eq!(got[1], blob_bytes(r[1].clone()));
                }
            });
        }
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let inside = rt.block_on(async { storage.read_range(BLOB, 0..10) });
    assert_eq!(inside.unwrap(), blob_bytes(0..10));
    rows_in_parallel(&rx, &lx);

    // Errors name the s3:// URL.
    let err = storage
        .read_range(BLOB, BLOB_LEN - 5..BLOB_LEN + 5)
        .unwrap_err();
    assert_names(&err, &format!("s3://{BUCKET}/{BLOB}"), "truncated");
    let err = storage.read("census/no_such_file").unwrap_err();
    assert_names(
        &err,
        &format!("s3://{BUCKET}/census/no_such_file"),
        "no such key",
    );
    let err = storage.size("data/nope.bin").unwrap_err();
    assert_names(&err, &format!("s3://{BUCKET}/data/nope.bin"), "no such key");
    let (wrong, path) =
        storage_for_uri_with("s3://no-such-bucket/census", &options(&moto.endpoint, None)).unwrap();
    let err = Census::open(wrong, &path).unwrap_err();
    assert_names(&err, "s3://no-such-bucket/census", "no such bucket");
    let err = storage.read("private/secret.bin").unwrap_err();
    assert_names(
        &err,
        &format!("s3://{BUCKET}/private/secret.bin"),
        "access denied",
    );
    let err = open(Arc::clone(&dynamic), "census/not_there").unwrap_err();
    assert!(
        err.to_string().contains("s3://atlas-test/census/not_there"),
        "{err}"
    );
}

/// The same cells (the decode statistics differ: a reader reuses tiles it decoded).
fn assert_same_rows(a: &CsrRows, b: &CsrRows) {
    assert_eq!(a.obs_joinids, b.obs_joinids);
    assert_eq!(a.indptr, b.indptr);
    assert_eq!(a.var_joinids, b.var_joinids);
    assert_eq!(a.values, b.values);
}

/// X rows read on rayon's pool from both storages at once.
fn rows_in_parallel(rx: &atlasflow_soma::XReader, lx: &atlasflow_soma::XReader) {
    use rayon::prelude::*;
    let chunks: Vec<Vec<i64>> = (0..16).map(|c| (c * 50..c * 50 + 50).collect()).collect();
    let remote: Vec<_> = chunks
        .par_iter()
        .map(|rows| rx.read_rows(rows).unwrap())
        .collect();
    for (rows, r) in chunks.iter().zip(remote) {
        assert_same_rows(&r, &lx.read_rows(rows).unwrap());
    }
}

#[test]
fn the_disk_cache_serves_metadata_without_the_endpoint() {
    let Some(py) = python() else { return };
    let mut moto = Moto::start(&py);
    upload(&moto, &py);
    let cache = tempfile::tempdir().unwrap();

    // A first storage fetches the metadata and writes it to the cache directory.
    let first = s3(&moto.endpoint, Some(cache.path()));
    let census = Census::open(Arc::clone(&first) as Arc<dyn Storage>, "census").unwrap();
    let datasets = census.datasets().unwrap().read(None).unwrap();
    let first_stats = first.stats();
    assert!(first_stats.get_requests > 0, "{first_stats:?}");
    assert_eq!(first_stats.disk_hits, 0, "{first_stats:?}");

    // A second storage (a new run) on the same cache directory: the same open and
    // schema reads send listings but no GETs for metadata.
    let second = s3(&moto.endpoint, Some(cache.path()));
    let census = Census::open(Arc::clone(&second) as Arc<dyn Storage>, "census").unwrap();
    let arr = census.datasets().unwrap();
    let stats = second.stats();
    assert_eq!(stats.get_requests, 0, "{stats:?}");
    assert!(stats.disk_hits > 0, "{stats:?}");
    // Only the data tiles are fetched.
    assert_eq!(arr.read(None).unwrap(), datasets);

    // With the endpoint gone, a third storage still reads cached metadata files...
    moto.stop();
    let third = s3(&moto.endpoint, Some(cache.path()));
    let schema_dir = "census/census_info/datasets/__schema";
    let local = LocalStorage::new(fixtures());
    let mut read_one = false;
    for entry in local.list(schema_dir).unwrap() {
        if entry.is_dir {
            continue;
        }
        let path = format!("{schema_dir}/{}", entry.name);
        assert_eq!(third.read(&path).unwrap(), local.read(&path).unwrap());
        read_one = true;
    }
    assert!(read_one);
    assert_eq!(third.stats().get_requests, 0);
    // ... and what is not cached fails with an error naming the URL and the endpoint.
    let err = Census::open(Arc::clone(&third) as Arc<dyn Storage>, "census").unwrap_err();
    assert_names(&err, &format!("s3://{BUCKET}/census"), "cannot reach");
    assert!(err.to_string().contains(&moto.endpoint), "{err}");
    let err = third.read_range(BLOB, 0..10).unwrap_err();
    assert_names(&err, &format!("s3://{BUCKET}/{BLOB}"), "cannot reach");
}
