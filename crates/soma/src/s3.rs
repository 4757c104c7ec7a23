//! [`S3Storage`]: the [`Storage`] trait over an S3 bucket, through the `object_store`
//! crate, so the reader opens a Census (or any SOMA tree) where it is published — the
//! public CZ CELLxGENE Census bucket is read anonymously in `us-west-2`, the way
//! `cellxgene_census.open_soma()` reads it.
//!
//! - Listings are delimiter listings: common prefixes are directories. They are cached in
//!   memory for the storage's lifetime (a SOMA tree is read, never written, by us).
//! - [`Storage::read_ranges`] coalesces neighbouring ranges (a gap of at most
//!   [`S3Options::coalesce_gap`] bytes, a request of at most
//!   [`S3Options::max_request_bytes`]) and issues the requests concurrently.
//! - Small TileDB metadata files (see [`S3Options::cache_max_file_size`]) are fetched
//!   whole, once, and cached in memory and, with a cache directory, on disk: TileDB files
//!   are immutable, their names carry timestamps and UUIDs. Data tiles are not cached.
//! - `Storage` is synchronous and is called from rayon threads: each storage owns a small
//!   tokio runtime (two worker threads that drive the connections) and blocks the calling
//!   thread on it. Calls from inside another tokio runtime run on a scoped helper thread
//!   instead, so they cannot panic or starve that runtime.

mod cache;

use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::client::{HttpError, HttpErrorKind};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};

use crate::error::{Result, SomaError, corrupt};
use crate::storage::{Entry, Storage};
use cache::{Hit, MetaCache};

/// The environment variable naming the on-disk metadata cache directory, read by
/// [`S3Options::from_env`]; unset or empty means a memory-only cache.
pub const CACHE_ENV: &str = "ATLASFLOW_SOMA_CACHE";

/// The region used when neither the options nor `AWS_REGION` / `AWS_DEFAULT_REGION`
/// name one: the public Census bucket's region.
pub const DEFAULT_REGION: &str = "us-west-2";

/// How to reach an S3 bucket and how to read it. `Default` is anonymous access to AWS
/// (unless credentials are in the environment) with a memory-only metadata cache;
/// [`S3Options::from_env`] adds the cache directory of [`CACHE_ENV`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Options {
    /// The bucket's region; `None` takes `AWS_REGION` / `AWS_DEFAULT_REGION`, else
    /// [`DEFAULT_REGION`].
    pub region: Option<String>,
    /// An endpoint other than AWS's (minio, a loopback test server), such as
    /// `http://127.0.0.1:9000`; `None` takes `AWS_ENDPOINT_URL`, else AWS. Plain `http://`
    /// endpoints are allowed. Requests use path-style URLs.
    pub endpoint: Option<String>,
    /// Whether to send unsigned requests. `None` decides like `cellxgene_census`:
    /// anonymous unless credentials are configured (`AWS_ACCESS_KEY_ID`, a web identity
    /// token file or container credentials in the environment).
    pub anonymous: Option<bool>,
    /// Where to keep metadata files across runs; `None` keeps them in memory only.
    pub cache_dir: Option<PathBuf>,
    /// How many times a failed request (connection error, 5xx, timeout) is retried.
    pub max_retries: usize,
    /// The time limit of one request.
    pub timeout: Duration,
    /// The time limit of establishing a connection.
    pub connect_timeout: Duration,
    /// Ranges at most this many bytes apart are fetched by one request.
    pub coalesce_gap: u64,
    /// A coalesced request grows to at most this many bytes (a single larger range is
    /// still one request).
    pub max_request_bytes: u64,
    /// How many range requests of one [`Storage::read_ranges`] call run at once.
    pub concurrency: usize,
    /// Metadata files up to this size are fetched whole and cached.
    pub cache_max_file_size: u64,
    /// The in-memory metadata cache holds at most this many bytes.
    pub memory_cache_bytes: u64,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            region: None,
            endpoint: None,
            anonymous: None,
            cache_dir: None,
            max_retries: 4,
            timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            coalesce_gap: 1 << 20,
            max_request_bytes: 32 << 20,
            concurrency: 16,
            cache_max_file_size: 4 << 20,
            memory_cache_bytes: 512 << 20,
        }
    }
}

impl S3Options {
    /// The defaults, with the on-disk cache directory taken from [`CACHE_ENV`].
    pub fn from_env() -> Self {
        let cache_dir = std::env::var_os(CACHE_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        S3Options {
            cache_dir,
            ..S3Options::default()
        }
    }
}

/// Request and cache counters of an [`S3Storage`], to check that reads coalesce and that
/// the metadata cache serves repeated opens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct S3Stats {
    /// GET requests sent (whole files and ranges).
    pub get_requests: u64,
    /// Listing requests sent (one per uncached directory; pages are not counted).
    pub list_requests: u64,
    /// HEAD requests sent (sizes of files not listed or cached).
    pub head_requests: u64,
    /// Bytes received by GET requests.
    pub bytes_fetched: u64,
    /// Metadata reads served from the in-memory cache.
    pub memory_hits: u64,
    /// Metadata reads served from the on-disk cache.
    pub disk_hits: u64,
}

#[derive(Debug, Default)]
struct Counters {
    get: AtomicU64,
    list: AtomicU64,
    head: AtomicU64,
    bytes: AtomicU64,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
}

fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// An S3 bucket as a [`Storage`]: paths are object keys, `/`-separated, relative to the
/// bucket. Cheap to share between threads; see the module documentation.
pub struct S3Storage {
    store: AmazonS3,
    bucket: String,
    /// The endpoint, for messages.
    endpoint: String,
    region: String,
    anonymous: bool,
    options: S3Options,
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    listings: Mutex<HashMap<String, Vec<Entry>>>,
    sizes: Mutex<HashMap<String, u64>>,
    cache: MetaCache,
    counters: Counters,
}

impl std::fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Storage")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("anonymous", &self.anonymous)
            .field("cache_dir", &self.options.cache_dir)
            .finish()
    }
}

impl Drop for S3Storage {
    /// Shuts the runtime down without waiting, which is allowed from any thread
    /// (dropping a runtime inside another runtime's task would panic).
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Splits `s3://bucket/prefix` into the bucket and the prefix (no leading or trailing
/// `/`); an error naming the URI when it is not one.
pub fn parse_s3_uri(uri: &str) -> Result<(String, String)> {
    let bad = |why: &str| SomaError::Io {
        path: uri.to_string(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("not an S3 URI (s3://bucket/prefix): {why}"),
        ),
    };
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| bad("no s3:// scheme"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(bad("no bucket name"));
    }
    if bucket.contains(['?', '#', ' ']) {
        return Err(bad("bad bucket name"));
    }
    let prefix = prefix
        .split('/')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/");
    Ok((bucket.to_string(), prefix))
}

impl S3Storage {
    /// Storage of bucket `bucket`, configured by `options` over the `AWS_*` environment
    /// (`AmazonS3Builder::from_env`). Nothing is requested yet: a wrong bucket or an
    /// unreachable endpoint shows in the first read's error.
    pub fn new(bucket: &str, options: &S3Options) -> Result<Self> {
        let config_err = |message: String| SomaError::Io {
            path: format!("s3://{bucket}"),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, message),
        };
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        let region = options
            .region
            .clone()
            .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Region))
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        builder = builder.with_region(&region);
        if let Some(endpoint) = &options.endpoint {
            builder = builder.with_endpoint(endpoint.trim_end_matches('/'));
        }
        let endpoint = builder.get_config_value(&AmazonS3ConfigKey::Endpoint);
        if endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"))
        {
            builder = builder.with_allow_http(true);
        }
        let has_credentials = [
            AmazonS3ConfigKey::AccessKeyId,
            AmazonS3ConfigKey::WebIdentityTokenFile,
            AmazonS3ConfigKey::ContainerCredentialsRelativeUri,
            AmazonS3ConfigKey::ContainerCredentialsFullUri,
        ]
        .iter()
        .any(|k| builder.get_config_value(k).is_some_and(|v| !v.is_empty()));
        let anonymous = options.anonymous.unwrap_or(!has_credentials);
        builder = builder
            .with_skip_signature(anonymous)
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: options.max_retries,
                retry_timeout: options.timeout.saturating_mul(2),
            })
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(options.timeout)
                    .with_connect_timeout(options.connect_timeout)
                    .with_allow_http(
                        endpoint
                            .as_deref()
                            .is_some_and(|e| e.starts_with("http://")),
                    ),
            );
        let store = builder
            .build()
            .map_err(|e| config_err(format!("bad S3 configuration: {e}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("atlasflow-s3")
            .enable_all()
            .build()
            .map_err(|e| SomaError::Io {
                path: format!("s3://{bucket}"),
                source: e,
            })?;
        let handle = runtime.handle().clone();
        let endpoint_text = endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let disk = options.cache_dir.as_ref().map(|dir| {
            let host = match &endpoint {
                Some(e) => cache::dir_name(
                    e.trim_start_matches("https://")
                        .trim_start_matches("http://")
                        .trim_end_matches('/'),
                ),
                None => "aws".to_string(),
            };
            dir.join("s3").join(host).join(cache::dir_name(bucket))
        });
        Ok(S3Storage {
            store,
            bucket: bucket.to_string(),
            endpoint: endpoint_text,
            region,
            anonymous,
            options: options.clone(),
            runtime: Some(runtime),
            handle,
            listings: Mutex::new(HashMap::new()),
            sizes: Mutex::new(HashMap::new()),
            cache: MetaCache::new(options.memory_cache_bytes, disk),
            counters: Counters::default(),
        })
    }

    /// Storage of the bucket of `uri` (`s3://bucket/prefix`) and the prefix: the path of
    /// the object the URI names, to pass to [`crate::open`] or [`crate::Census::open`].
    pub fn from_uri(uri: &str, options: &S3Options) -> Result<(Self, String)> {
        let (bucket, prefix) = parse_s3_uri(uri)?;
        Ok((Self::new(&bucket, options)?, prefix))
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The endpoint requests go to (AWS's regional endpoint unless configured).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether requests are unsigned.
    pub fn is_anonymous(&self) -> bool {
        self.anonymous
    }

    /// The request and cache counters so far.
    pub fn stats(&self) -> S3Stats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        S3Stats {
            get_requests: get(&c.get),
            list_requests: get(&c.list),
            head_requests: get(&c.head),
            bytes_fetched: get(&c.bytes),
            memory_hits: get(&c.memory_hits),
            disk_hits: get(&c.disk_hits),
        }
    }

    /// Runs `fut` to completion on the storage's runtime from a synchronous caller.
    /// From inside some tokio runtime (where blocking on another would panic) it runs on
    /// a scoped helper thread.
    fn run<T: Send>(&self, path: &str, fut: impl Future<Output = Result<T>> + Send) -> Result<T> {
        if tokio::runtime::Handle::try_current().is_err() {
            return self.handle.block_on(fut);
        }
        std::thread::scope(|scope| {
            let joined = std::thread::Builder::new()
                .name("atlasflow-s3-call".into())
                .spawn_scoped(scope, || self.handle.block_on(fut))
                .map_err(|e| self.io(path, e))?
                .join();
            joined.unwrap_or_else(|_| {
                Err(self.io(
                    path,
                    std::io::Error::other("the S3 request thread panicked"),
                ))
            })
        })
    }

    fn io(&self, path: &str, source: std::io::Error) -> SomaError {
        SomaError::Io {
            path: self.location(path),
            source,
        }
    }

    /// An `object_store` error as a [`SomaError::Io`] naming the `s3://` URL, with a
    /// short diagnosis first (no such bucket, no such key, access denied, endpoint
    /// unreachable) and the request's own message after it.
    fn error(&self, path: &str, e: object_store::Error) -> SomaError {
        use std::io::ErrorKind;
        let detail = error_chain(&e);
        let http = http_kind(&e);
        let (kind, what) = if detail.contains("NoSuchBucket") {
            (
                ErrorKind::NotFound,
                format!("no such bucket {:?} at {}", self.bucket, self.endpoint),
            )
        } else if matches!(e, object_store::Error::NotFound { .. }) {
            (ErrorKind::NotFound, "no such key".to_string())
        } else if matches!(
            e,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        ) {
            let how = if self.anonymous {
                "anonymous access; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY if the bucket is private"
            } else {
                "signed access"
            };
            (
                ErrorKind::PermissionDenied,
                format!("access denied ({how}; region {})", self.region),
            )
        } else if http == Some(HttpErrorKind::Connect) {
            (
                ErrorKind::NotConnected,
                format!("cannot reach the S3 endpoint {}", self.endpoint),
            )
        } else if http == Some(HttpErrorKind::Timeout) {
            (
                ErrorKind::TimedOut,
                format!("the S3 endpoint {} timed out", self.endpoint),
            )
        } else if detail.contains("PermanentRedirect") || detail.contains("redirect") {
            (
                ErrorKind::Other,
                format!(
                    "the bucket is not in region {} (set AWS_REGION or the region option)",
                    self.region
                ),
            )
        } else {
            (ErrorKind::Other, "S3 request failed".to_string())
        };
        self.io(path, std::io::Error::new(kind, format!("{what}: {detail}")))
    }

    fn key(path: &str) -> String {
        path.trim_matches('/').to_string()
    }

    fn known_size(&self, key: &str) -> Option<u64> {
        if let Some(s) = lock(&self.sizes).get(key) {
            return Some(*s);
        }
        let (dir, name) = key.rsplit_once('/').unwrap_or(("", key));
        lock(&self.listings)
            .get(dir)
            .and_then(|l| l.iter().find(|e| e.name == name && !e.is_dir))
            .map(|e| e.size)
    }

    fn cached(&self, key: &str) -> Option<Arc<Vec<u8>>> {
        let (bytes, hit) = self.cache.get(key, self.known_size(key))?;
        match hit {
            Hit::Memory => bump(&self.counters.memory_hits, 1),
            Hit::Disk => bump(&self.counters.disk_hits, 1),
        }
        Some(bytes)
    }

    /// A metadata file's whole content, from the cache or fetched (and cached) when it is
    /// small enough; `Err(size)` when it is too large to cache.
    fn metadata_file(&self, key: &str) -> Result<std::result::Result<Arc<Vec<u8>>, u64>> {
        if let Some(b) = self.cached(key) {
            return Ok(Ok(b));
        }
        let limit = self.options.cache_max_file_size;
        if let Some(size) = self.known_size(key)
            && size > limit
        {
            return Ok(Err(size));
        }
        let location = ObjectPath::from(key);
        let fetched = self.run(key, async {
            bump(&self.counters.get, 1);
            let got = self
                .store
                .get(&location)
                .await
                .map_err(|e| self.error(key, e))?;
            let size = got.meta.size;
            if size > limit {
                return Ok(Err(size)); // dropping the body ends the transfer
            }
            let bytes = got.bytes().await.map_err(|e| self.error(key, e))?;
            bump(&self.counters.bytes, bytes.len() as u64);
            Ok(Ok(bytes.to_vec()))
        })?;
        match fetched {
            Ok(bytes) => {
                lock(&self.sizes).insert(key.to_string(), bytes.len() as u64);
                let bytes = Arc::new(bytes);
                self.cache.put(key, &bytes);
                Ok(Ok(bytes))
            }
            Err(size) => {
                lock(&self.sizes).insert(key.to_string(), size);
                Ok(Err(size))
            }
        }
    }

    /// Byte range `range` of `bytes` (the whole file `key`), or a truncation error.
    fn slice(&self, key: &str, bytes: &[u8], range: &Range<u64>) -> Result<Vec<u8>> {
        let size = bytes.len() as u64;
        if range.end > size {
            return Err(corrupt(
                &self.location(key),
                format!(
                    "truncated: byte range {range:?} is past the end of the file ({size} bytes)"
                ),
            ));
        }
        Ok(bytes[range.start as usize..range.end as usize].to_vec())
    }

    /// Fetches the coalesced spans of `ranges` concurrently and cuts them up.
    fn fetch_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>> {
        let mut out = vec![Vec::new(); ranges.len()];
        let wanted: Vec<usize> = (0..ranges.len())
            .filter(|&i| ranges[i].end > ranges[i].start)
            .collect();
        let nonempty: Vec<Range<u64>> = wanted.iter().map(|&i| ranges[i].clone()).collect();
        let spans = crate::storage::coalesce_capped(
            &nonempty,
            self.options.coalesce_gap,
            self.options.max_request_bytes,
        );
        let location = ObjectPath::from(key);
        let requests: Vec<Range<u64>> = spans.iter().map(|s| s.range.clone()).collect();
        let fetched: Vec<_> = self.run(key, async {
            futures::stream::iter(requests.into_iter().map(|r| {
                bump(&self.counters.get, 1);
                let location = &location;
                async move {
                    let got = self.store.get_range(location, r.clone()).await;
                    got.map(|b| (r, b))
                }
            }))
            .buffered(self.options.concurrency.max(1))
            .try_collect()
            .await
            .map_err(|e| self.error(key, e))
        })?;
        for (span, (range, bytes)) in spans.iter().zip(fetched) {
            bump(&self.counters.bytes, bytes.len() as u64);
            if (bytes.len() as u64) < range.end - range.start {
                return Err(corrupt(
                    &self.location(key),
                    format!(
                        "truncated: byte range {range:?} is past the end of the file ({} bytes returned)",
                        bytes.len()
                    ),
                ));
            }
            for &(member, at) in &span.members {
                let r = &nonempty[member];
                let n = r.end - r.start;
                out[wanted[member]] = bytes[at as usize..(at + n) as usize].to_vec();
            }
        }
        Ok(out)
    }

    fn head(&self, key: &str) -> Result<Option<u64>> {
        let location = ObjectPath::from(key);
        let meta = self.run(key, async {
            bump(&self.counters.head, 1);
            match self.store.head(&location).await {
                Ok(m) => Ok(Some(m.size)),
                Err(object_store::Error::NotFound { source, .. })
                    if !format!("{source}").contains("NoSuchBucket") =>
                {
                    Ok(None)
                }
                Err(e) => Err(self.error(key, e)),
            }
        })?;
        if let Some(size) = meta {
            lock(&self.sizes).insert(key.to_string(), size);
        }
        Ok(meta)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The messages of an error and its sources, joined by `: `, skipping repeats (each
/// layer of `object_store` quotes the one below), and cut to a readable length.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let m = s.to_string();
        if !text.contains(&m) {
            text.push_str(": ");
            text.push_str(&m);
        }
        source = s.source();
    }
    const MAX: usize = 600;
    if text.len() > MAX {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

/// The kind of the HTTP-level error under `e`, if there is one.
fn http_kind(e: &(dyn std::error::Error + 'static)) -> Option<HttpErrorKind> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<HttpError>() {
            return Some(h.kind());
        }
        source = s.source();
    }
    None
}

impl Storage for S3Storage {
    /// A delimiter listing of `dir/`: common prefixes are directories. Cached for the
    /// storage's lifetime; a missing directory lists as empty, a missing bucket fails.
    fn list(&self, dir: &str) -> Result<Vec<Entry>> {
        let dir = Self::key(dir);
        if let Some(l) = lock(&self.listings).get(&dir) {
            return Ok(l.clone());
        }
        let prefix = (!dir.is_empty()).then(|| ObjectPath::from(dir.as_str()));
        let listed = self.run(&dir, async {
            bump(&self.counters.list, 1);
            self.store
                .list_with_delimiter(prefix.as_ref())
                .await
                .map_err(|e| self.error(&dir, e))
        })?;
        let mut entries = Vec::new();
        for p in &listed.common_prefixes {
            if let Some(name) = p.filename().filter(|n| !n.is_empty()) {
                entries.push(Entry {
                    name: name.to_string(),
                    is_dir: true,
                    size: 0,
                });
            }
        }
        for m in &listed.objects {
            if let Some(name) = m.location.filename().filter(|n| !n.is_empty()) {
                if m.location.as_ref() == dir {
                    continue; // a "directory marker" object
                }
                entries.push(Entry {
                    name: name.to_string(),
                    is_dir: false,
                    size: m.size,
                });
            }
        }
        lock(&self.listings).insert(dir, entries.clone());
        Ok(entries)
    }

    /// Answered from the parent directory's (cached) listing: one listing serves the
    /// existence checks of all its siblings.
    fn exists(&self, path: &str) -> Result<bool> {
        let key = Self::key(path);
        if key.is_empty() {
            return Ok(true);
        }
        if self.known_size(&key).is_some() {
            return Ok(true);
        }
        if cache::is_metadata(&key) && self.cached(&key).is_some() {
            return Ok(true);
        }
        let (dir, name) = key.rsplit_once('/').unwrap_or(("", key.as_str()));
        Ok(self.list(dir)?.iter().any(|e| e.name == name))
    }

    fn size(&self, path: &str) -> Result<u64> {
        let key = Self::key(path);
        if let Some(size) = self.known_size(&key) {
            return Ok(size);
        }
        if cache::is_metadata(&key) {
            return Ok(match self.metadata_file(&key)? {
                Ok(bytes) => bytes.len() as u64,
                Err(size) => size,
            });
        }
        self.head(&key)?.ok_or_else(|| {
            self.io(
                &key,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such key"),
            )
        })
    }

    fn read(&self, path: &str) -> Result<Vec<u8>> {
        let key = Self::key(path);
        if cache::is_metadata(&key)
            && let Ok(bytes) = self.metadata_file(&key)?
        {
            return Ok(bytes.to_vec());
        }
        let location = ObjectPath::from(key.as_str());
        self.run(&key, async {
            bump(&self.counters.get, 1);
            let got = self
                .store
                .get(&location)
                .await
                .map_err(|e| self.error(&key, e))?;
            let bytes = got.bytes().await.map_err(|e| self.error(&key, e))?;
            bump(&self.counters.bytes, bytes.len() as u64);
            Ok(bytes.to_vec())
        })
    }

    fn read_range(&self, path: &str, range: Range<u64>) -> Result<Vec<u8>> {
        Ok(self
            .read_ranges(path, std::slice::from_ref(&range))?
            .into_iter()
            .next()
            .unwrap_or_default())
    }

    /// Metadata files come from the cache (fetched whole once); other files by coalesced
    /// range requests, issued concurrently.
    fn read_ranges(&self, path: &str, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>> {
        let key = Self::key(path);
        if let Some(r) = ranges.iter().find(|r| r.end < r.start) {
            return Err(corrupt(
                &self.location(&key),
                format!("bad byte range {r:?}"),
            ));
        }
        if cache::is_metadata(&key)
            && let Ok(bytes) = self.metadata_file(&key)?
        {
            return ranges.iter().map(|r| self.slice(&key, &bytes, r)).collect();
        }
        self.fetch_ranges(&key, ranges)
    }

    fn location(&self, path: &str) -> String {
        let key = Self::key(path);
        if key.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{key}", self.bucket)
        }
    }
}

/// Storage for `uri` and the path of the object it names inside that storage:
/// `s3://bucket/prefix` is an [`S3Storage`] of the bucket (configured by `options`) with
/// path `prefix`; `file:///dir` and a plain path are a [`crate::LocalStorage`] rooted at
/// that directory, with path `""`. Other schemes are an error naming the URI.
pub fn storage_for_uri_with(uri: &str, options: &S3Options) -> Result<(Arc<dyn Storage>, String)> {
    if uri.starts_with("s3://") {
        let (storage, path) = S3Storage::from_uri(uri, options)?;
        return Ok((Arc::new(storage), path));
    }
    let local = match uri.strip_prefix("file://") {
        Some(rest) => rest.strip_prefix("localhost").unwrap_or(rest),
        None => {
            if let Some((scheme, _)) = uri.split_once("://")
                && !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '+')
            {
                return Err(SomaError::Unsupported {
                    path: uri.to_string(),
                    message: format!(
                        "storage scheme {scheme}:// (s3:// and local paths are supported)"
                    ),
                });
            }
            uri
        }
    };
    if local.is_empty() {
        return Err(SomaError::Io {
            path: uri.to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty path"),
        });
    }
    Ok((Arc::new(crate::LocalStorage::new(local)), String::new()))
}

/// [`storage_for_uri_with`] with [`S3Options::from_env`]: the way a command line opens a
/// SOMA tree given as `s3://bucket/prefix`, `file:///dir` or a directory.
pub fn storage_for_uri(uri: &str) -> Result<(Arc<dyn Storage>, String)> {
    storage_for_uri_with(uri, &S3Options::from_env())
}

/// Opens the object at `uri` (see [`storage_for_uri`]): a group or an array.
pub fn open_uri(uri: &str) -> Result<crate::SomaObject> {
    let (storage, path) = storage_for_uri(uri)?;
    crate::open(storage, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_uris() {
        let ok = |u: &str| parse_s3_uri(u).ok();
        assert_eq!(
            ok("s3://cellxgene-census-public-us-west-2/cell-census/2025-01-30/soma/"),
            Some((
                "cellxgene-census-public-us-west-2".to_string(),
                "cell-census/2025-01-30/soma".to_string()
            ))
        );
        assert_eq!(ok("s3://b"), Some(("b".to_string(), String::new())));
        assert!(ok("s3:///x").is_none());
        assert!(ok("gs://b/x").is_none());
    }

    #[test]
    fn plans_coalesced_capped_requests() {
        let spans = crate::storage::coalesce_capped(&[10..20, 0..5, 30..40, 100..200], 10, 50);
        let ranges: Vec<_> = spans.iter().map(|s| s.range.clone()).collect();
        assert_eq!(ranges, vec![0..40, 100..200]);
        assert_eq!(spans[0].members, vec![(1, 0), (0, 10), (2, 30)]);
        // The cap splits between members.
        let spans = crate::storage::coalesce_capped(&[0..30, 30..60], 0, 50);
        assert_eq!(spans.len(), 2);
    }

    #[test]
    fn picks_storage_by_scheme() -> Result<()> {
        let (_, path) = storage_for_uri_with("/tmp/x", &S3Options::default())?;
        assert_eq!(path, "");
        let (s, path) = storage_for_uri_with("file:///tmp/x", &S3Options::default())?;
        assert_eq!(path, "");
        assert_eq!(s.location("a"), "/tmp/x/a");
        let (s, path) = storage_for_uri_with(
            "s3://bucket/some/prefix",
            &S3Options {
                anonymous: Some(true),
                ..S3Options::default()
            },
        )?;
        assert_eq!(path, "some/prefix");
        assert_eq!(s.location("some/prefix/x"), "s3://bucket/some/prefix/x");
        let err = storage_for_uri_with("gs://b/x", &S3Options::default()).map(|_| ());
        assert!(matches!(err, Err(SomaError::Unsupported { .. })));
        Ok(())
    }
}
