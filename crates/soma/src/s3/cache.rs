//! The metadata cache of [`super::S3Storage`]: whole small files (schemas, fragment
//! footers, metadata, group members, commits) kept in memory and, when a cache directory
//! is configured, on disk across runs.
//!
//! TileDB never rewrites a file: fragment directories and schema, commit, metadata and
//! group file names carry timestamps and UUIDs, so a cached copy stays valid for as long
//! as the object exists. Entries are keyed by endpoint, bucket and key, and checked
//! against the file's size whenever that size is known (a listing or a HEAD gave it).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Where a cache hit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hit {
    Memory,
    Disk,
}

/// In-memory (bounded by a byte budget) and optional on-disk copies of whole files.
#[derive(Debug)]
pub(crate) struct MetaCache {
    memory: Mutex<Memory>,
    budget: u64,
    /// `<cache dir>/s3/<endpoint>/<bucket>`, when a cache directory is configured.
    disk: Option<PathBuf>,
    /// Makes temporary file names unique between threads of one process.
    counter: AtomicU64,
}

#[derive(Debug, Default)]
struct Memory {
    files: HashMap<String, Arc<Vec<u8>>>,
    used: u64,
}

impl MetaCache {
    /// A cache of at most `budget` bytes in memory, and on disk under `disk` if given.
    pub(crate) fn new(budget: u64, disk: Option<PathBuf>) -> Self {
        MetaCache {
            memory: Mutex::new(Memory::default()),
            budget,
            disk,
            counter: AtomicU64::new(0),
        }
    }

    /// The cached bytes of `key`, from memory or else from disk (then kept in memory).
    /// `size`, when known, must match: a copy of another size is ignored.
    pub(crate) fn get(&self, key: &str, size: Option<u64>) -> Option<(Arc<Vec<u8>>, Hit)> {
        let fits = |b: &Arc<Vec<u8>>| size.is_none_or(|s| b.len() as u64 == s);
        if let Some(b) = self.lock().files.get(key)
            && fits(b)
        {
            return Some((Arc::clone(b), Hit::Memory));
        }
        let file = self.disk_path(key)?;
        let bytes = Arc::new(fs::read(&file).ok()?);
        if !fits(&bytes) {
            return None;
        }
        self.remember(key, &bytes);
        Some((bytes, Hit::Disk))
    }

    /// Caches `bytes` as the whole content of `key`: in memory while the budget lasts, and
    /// on disk (written to a temporary file, then renamed into place, so a reader never
    /// sees half a file). Disk errors are ignored: the cache is only an optimisation.
    pub(crate) fn put(&self, key: &str, bytes: &Arc<Vec<u8>>) {
        self.remember(key, bytes);
        if let Some(file) = self.disk_path(key) {
            self.write_atomically(&file, bytes);
        }
    }

    fn remember(&self, key: &str, bytes: &Arc<Vec<u8>>) {
        let mut mem = self.lock();
        let len = bytes.len() as u64;
        if mem.files.contains_key(key) || mem.used.saturating_add(len) > self.budget {
            return;
        }
        mem.used += len;
        mem.files.insert(key.to_string(), Arc::clone(bytes));
    }

    fn write_atomically(&self, file: &Path, bytes: &[u8]) {
        let Some(dir) = file.parent() else { return };
        if fs::create_dir_all(dir).is_err() {
            return;
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        if fs::write(&tmp, bytes).is_err() || fs::rename(&tmp, file).is_err() {
            let _ = fs::remove_file(&tmp);
        }
    }

    /// The disk file of `key`, or None when there is no cache directory or the key has a
    /// part that cannot safely be a file name (empty, `.`, `..`, a backslash, a NUL).
    fn disk_path(&self, key: &str) -> Option<PathBuf> {
        let mut path = self.disk.clone()?;
        for part in key.split('/') {
            if !safe_part(part) {
                return None;
            }
            path.push(part);
        }
        Some(path)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether `part` can be one component of a cache file path as it is.
pub(crate) fn safe_part(part: &str) -> bool {
    !part.is_empty()
        && part != "."
        && part != ".."
        && !part.contains(['\\', '\0', ':'])
        && !part.starts_with('.')
}

/// A directory name for an endpoint (`host:port` and the like): letters, digits, `.`,
/// `-` and `_` are kept, anything else becomes `_`.
pub(crate) fn dir_name(text: &str) -> String {
    let name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    name.trim_start_matches('.').to_string()
}

/// Whether `path` is a TileDB metadata file whose whole content is worth caching: the
/// files under `__schema`, `__fragment_meta`, `__meta`, `__group` and `__commits`, a
/// fragment's `__fragment_metadata.tdb` and a group's `__tiledb_group.tdb`. Data tiles
/// are not: they are large, read by range, and read once.
pub(crate) fn is_metadata(path: &str) -> bool {
    let mut parts = path.trim_matches('/').rsplit('/');
    let Some(name) = parts.next() else {
        return false;
    };
    if name == "__fragment_metadata.tdb" || name == "__tiledb_group.tdb" {
        return true;
    }
    parts.any(|dir| {
        matches!(
            dir,
            "__schema" | "__fragment_meta" | "__meta" | "__group" | "__commits"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_metadata_files() {
        assert!(is_metadata("c/obs/__schema/__1_2_abc"));
        assert!(is_metadata("c/obs/__schema/__enumerations/__x_y"));
        assert!(is_metadata(
            "c/obs/__fragments/__1_1_u_22/__fragment_metadata.tdb"
        ));
        assert!(is_metadata("c/__tiledb_group.tdb"));
        assert!(is_metadata("c/__group/__1_1_u_2"));
        assert!(is_metadata("a/__commits/__1_1_u_22.wrt"));
        assert!(is_metadata("a/__fragment_meta/__1_1_u_22.meta"));
        assert!(!is_metadata("c/obs/__fragments/__1_1_u_22/a0.tdb"));
        assert!(!is_metadata("__schema"));
    }

    #[test]
    fn caches_in_memory_and_on_disk() {
        let dir = tempfile::tempdir().ok();
        let Some(dir) = dir else { return };
        let c = MetaCache::new(10, Some(dir.path().join("b")));
        let bytes = Arc::new(b"abcdef".to_vec());
        c.put("k/__schema/f", &bytes);
        assert_eq!(
            c.get("k/__schema/f", Some(6)).map(|h| h.1),
            Some(Hit::Memory)
        );
        assert!(c.get("k/__schema/f", Some(7)).is_none());
        // A second cache on the same directory finds it on disk.
        let d = MetaCache::new(10, Some(dir.path().join("b")));
        assert_eq!(d.get("k/__schema/f", None).map(|h| h.1), Some(Hit::Disk));
        // The memory budget: a second 6-byte file does not fit in 10 bytes.
        d.put("k/__schema/g", &bytes);
        assert_eq!(d.get("k/__schema/g", None).map(|h| h.1), Some(Hit::Disk));
        assert!(c.disk_path("k/../x").is_none());
        assert!(!safe_part(".tmp"));
        assert_eq!(dir_name("127.0.0.1:9000"), "127.0.0.1_9000");
    }
}
