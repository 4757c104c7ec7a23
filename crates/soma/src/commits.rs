//! Which fragments count: `.wrt` markers and `.con` consolidated commit lists commit a
//! fragment; `.ign` lists and `.vac` lists (fragments replaced by consolidation but not
//! vacuumed yet) exclude one. Delete and update commits are refused.

use std::collections::HashSet;

use crate::error::{Result, unsupported};
use crate::storage::{Storage, join};

/// The commit state of an array.
#[derive(Debug, Default, Clone)]
pub(crate) struct Commits {
    /// Fragment names with a write commit.
    pub(crate) committed: HashSet<String>,
    /// Fragment names to leave out (ignored or vacuumable).
    pub(crate) excluded: HashSet<String>,
}

/// The last path component of `line` without its extension.
fn stem(line: &str) -> Option<String> {
    let base = line.trim().trim_end_matches('/').rsplit('/').next()?;
    let stem = base.split('.').next()?;
    (!stem.is_empty()).then(|| stem.to_string())
}

fn lines(storage: &dyn Storage, path: &str) -> Result<Vec<String>> {
    let bytes = storage.read(path)?;
    Ok(String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.trim().is_empty())
        .collect())
}

/// Reads `__commits/` of the array at `array`.
pub(crate) fn read_commits(storage: &dyn Storage, array: &str) -> Result<Commits> {
    let dir = join(array, "__commits");
    let mut out = Commits::default();
    for entry in storage.list(&dir)? {
        if entry.is_dir {
            continue;
        }
        let path = join(&dir, &entry.name);
        let name = entry.name.as_str();
        if name.ends_with(".wrt") {
            if let Some(s) = stem(name) {
                out.committed.insert(s);
            }
        } else if name.ends_with(".con") {
            for line in lines(storage, &path)? {
                if line.ends_with(".wrt") {
                    if let Some(s) = stem(&line) {
                        out.committed.insert(s);
                    }
                } else if line.ends_with(".del") || line.ends_with(".upd") {
                    return Err(unsupported(
                        &storage.location(&path),
                        "delete or update commits",
                    ));
                }
            }
        } else if name.ends_with(".ign") || name.ends_with(".vac") {
            out.excluded
                .extend(lines(storage, &path)?.iter().filter_map(|l| stem(l)));
        } else if name.ends_with(".del") || name.ends_with(".upd") {
            return Err(unsupported(
                &storage.location(&path),
                "delete or update commits",
            ));
        }
    }
    Ok(out)
}
