//! Where the files come from: a small [`Storage`] trait (list, size, read, read ranges)
//! and its local-filesystem implementation.
//!
//! Paths are `/`-separated and relative to the storage's root, the way object stores name
//! keys, so the S3 backend ([`crate::S3Storage`], through object_store) implements the
//! same trait. Reads are whole files or byte ranges; [`Storage::read_ranges`] takes
//! several ranges of one file at once so a backend can coalesce neighbouring tiles into
//! one request.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::PathBuf;

use crate::error::{Result, SomaError, corrupt};

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's name inside the directory (no `/`).
    pub name: String,
    /// Whether it is a directory (a common prefix, on an object store).
    pub is_dir: bool,
    /// Its size in bytes (0 for directories).
    pub size: u64,
}

/// Read-only access to a tree of files. Implementations must be cheap to share between
/// threads; every method names its path in errors.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// The entries of directory `dir`, in no particular order. A directory that does not
    /// exist lists as empty: TileDB's empty directories vanish in git checkouts and do not
    /// exist on object stores.
    fn list(&self, dir: &str) -> Result<Vec<Entry>>;

    /// Whether the file `path` exists.
    fn exists(&self, path: &str) -> Result<bool>;

    /// The size of file `path` in bytes.
    fn size(&self, path: &str) -> Result<u64>;

    /// The whole file `path`.
    fn read(&self, path: &str) -> Result<Vec<u8>>;

    /// Bytes `range` of file `path`; an error when the file is shorter.
    fn read_range(&self, path: &str, range: Range<u64>) -> Result<Vec<u8>>;

    /// Several byte ranges of one file, in the order given. The default reads them one
    /// by one; remote backends should coalesce neighbouring ranges.
    fn read_ranges(&self, path: &str, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>> {
        ranges
            .iter()
            .map(|r| self.read_range(path, r.clone()))
            .collect()
    }

    /// The full location of `path` for messages (a file system path or a URL).
    fn location(&self, path: &str) -> String;
}

/// Joins `/`-separated path parts, skipping empty ones.
pub fn join(base: &str, name: &str) -> String {
    match (base.trim_end_matches('/'), name.trim_start_matches('/')) {
        ("", n) => n.to_string(),
        (b, "") => b.to_string(),
        (b, n) => format!("{b}/{n}"),
    }
}

/// The names of the files (not directories) directly in `dir`: what the `__schema`,
/// `__meta`, `__group` and `__fragment_meta` directories are read from.
pub(crate) fn file_names(storage: &dyn Storage, dir: &str) -> Result<Vec<String>> {
    Ok(storage
        .list(dir)?
        .into_iter()
        .filter(|e| !e.is_dir)
        .map(|e| e.name)
        .collect())
}

/// One coalesced read: a byte span of a file and the requested ranges it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// The bytes to fetch.
    pub range: Range<u64>,
    /// Each served range: its index in the request, and where it starts inside the span.
    pub members: Vec<(usize, u64)>,
}

/// Groups byte ranges into coalesced spans: ranges are sorted by start, and a range that
/// begins at most `max_gap` bytes after the current span's end joins it. Backends use it
/// to turn a band's many neighbouring tiles into a few reads.
pub fn coalesce(ranges: &[Range<u64>], max_gap: u64) -> Vec<Span> {
    coalesce_capped(ranges, max_gap, u64::MAX)
}

/// [`coalesce`] with spans of at most `max_bytes` (a single longer range is a span of its
/// own), so one remote request never grows without bound.
pub fn coalesce_capped(ranges: &[Range<u64>], max_gap: u64, max_bytes: u64) -> Vec<Span> {
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|&i| (ranges[i].start, ranges[i].end));
    let mut out: Vec<Span> = Vec::new();
    for i in order {
        let r = &ranges[i];
        match out.last_mut() {
            Some(span)
                if r.start <= span.range.end.saturating_add(max_gap)
                    && span.range.end.max(r.end) - span.range.start <= max_bytes =>
            {
                span.range.end = span.range.end.max(r.end);
                span.members.push((i, r.start - span.range.start));
            }
            _ => out.push(Span {
                range: r.clone(),
                members: vec![(i, 0)],
            }),
        }
    }
    out
}

/// A directory of the local file system.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    /// Storage rooted at `root`; paths are relative to it.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStorage { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    fn full(&self, path: &str) -> PathBuf {
        if path.is_empty() {
            self.root.clone()
        } else {
            self.root.join(path)
        }
    }

    fn io(&self, path: &str, source: std::io::Error) -> SomaError {
        SomaError::Io {
            path: self.location(path),
            source,
        }
    }
}

impl Storage for LocalStorage {
    fn list(&self, dir: &str) -> Result<Vec<Entry>> {
        let full = self.full(dir);
        let iter = match fs::read_dir(&full) {
            Ok(it) => it,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(dir, e)),
        };
        let mut out = Vec::new();
        for entry in iter {
            let entry = entry.map_err(|e| self.io(dir, e))?;
            let meta = entry.metadata().map_err(|e| self.io(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            out.push(Entry {
                name,
                is_dir: meta.is_dir(),
                size: if meta.is_dir() { 0 } else { meta.len() },
            });
        }
        Ok(out)
    }

    fn exists(&self, path: &str) -> Result<bool> {
        Ok(self.full(path).exists())
    }

    fn size(&self, path: &str) -> Result<u64> {
        fs::metadata(self.full(path))
            .map(|m| m.len())
            .map_err(|e| self.io(path, e))
    }

    fn read(&self, path: &str) -> Result<Vec<u8>> {
        fs::read(self.full(path)).map_err(|e| self.io(path, e))
    }

    fn read_range(&self, path: &str, range: Range<u64>) -> Result<Vec<u8>> {
        if range.end < range.start {
            return Err(corrupt(
                &self.location(path),
                format!("bad byte range {range:?}"),
            ));
        }
        let len = usize::try_from(range.end - range.start).map_err(|_| {
            corrupt(
                &self.location(path),
                format!("byte range {range:?} does not fit in memory"),
            )
        })?;
        let mut f = fs::File::open(self.full(path)).map_err(|e| self.io(path, e))?;
        let size = f.metadata().map_err(|e| self.io(path, e))?.len();
        if range.end > size {
            return Err(corrupt(
                &self.location(path),
                format!(
                    "truncated: byte range {range:?} is past the end of the file ({size} bytes)"
                ),
            ));
        }
        f.seek(SeekFrom::Start(range.start))
            .map_err(|e| self.io(path, e))?;
        let mut buf = vec![0u8; len];
        f.read_exact(&mut buf).map_err(|e| self.io(path, e))?;
        Ok(buf)
    }

    /// Opens the file once and reads coalesced spans of touching ranges.
    fn read_ranges(&self, path: &str, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>> {
        if ranges.len() < 2 {
            return ranges
                .iter()
                .map(|r| self.read_range(path, r.clone()))
                .collect();
        }
        if let Some(r) = ranges.iter().find(|r| r.end < r.start) {
            return Err(corrupt(
                &self.location(path),
                format!("bad byte range {r:?}"),
            ));
        }
        let mut f = fs::File::open(self.full(path)).map_err(|e| self.io(path, e))?;
        let size = f.metadata().map_err(|e| self.io(path, e))?.len();
        let mut out = vec![Vec::new(); ranges.len()];
        for Span {
            range: span,
            members,
        } in coalesce(ranges, 0)
        {
            if span.end > size {
                return Err(corrupt(
                    &self.location(path),
                    format!(
                        "truncated: byte range {span:?} is past the end of the file ({size} bytes)"
                    ),
                ));
            }
            let len = usize::try_from(span.end - span.start).map_err(|_| {
                corrupt(
                    &self.location(path),
                    format!("byte range {span:?} does not fit in memory"),
                )
            })?;
            f.seek(SeekFrom::Start(span.start))
                .map_err(|e| self.io(path, e))?;
            let mut buf = vec![0u8; len];
            f.read_exact(&mut buf).map_err(|e| self.io(path, e))?;
            if let [(i, 0)] = members[..]
                && ranges[i].end == span.end
            {
                out[i] = buf; // the span is the range: no copy
                continue;
            }
            for (i, at) in members {
                let r = &ranges[i];
                let at = at as usize;
                let n = (r.end - r.start) as usize;
                out[i] = buf[at..at + n].to_vec();
            }
        }
        Ok(out)
    }

    fn location(&self, path: &str) -> String {
        self.full(path).display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesces_touching_ranges() {
        let spans = coalesce(&[10..20, 0..5, 5..10, 30..40], 0);
        let want = [
            Span {
                range: 0..20,
                members: vec![(1, 0), (2, 5), (0, 10)],
            },
            Span {
                range: 30..40,
                members: vec![(3, 0)],
            },
        ];
        assert_eq!(spans, want);
        assert_eq!(coalesce(&[0..5, 8..9], 3).len(), 1);
    }

    #[test]
    fn joins_paths() {
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("a/", "b"), "a/b");
        assert_eq!(join("a", ""), "a");
    }

    #[test]
    fn missing_directories_list_empty_and_ranges_are_checked() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| SomaError::Io {
            path: "tmp".into(),
            source: e,
        })?;
        let s = LocalStorage::new(dir.path());
        assert!(s.list("nope")?.is_empty());
        fs::write(dir.path().join("f"), b"abcdef").map_err(|e| SomaError::Io {
            path: "f".into(),
            source: e,
        })?;
        assert_eq!(s.read_range("f", 1..3)?, b"bc");
        assert!(s.read_range("f", 4..9).is_err());
        assert_eq!(s.list("")?.len(), 1);
        assert_eq!(
            s.read_ranges("f", &[3..5, 0..2, 2..3, 5..5])?,
            vec![b"de".to_vec(), b"ab".to_vec(), b"c".to_vec(), Vec::new()]
        );
        assert!(s.read_ranges("f", &[0..2, 5..9]).is_err());
        Ok(())
    }
}
