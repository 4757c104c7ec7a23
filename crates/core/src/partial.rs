//! Temporary names for outputs being written. Every writer of atlasflow (h5ad, Parquet,
//! plots) writes to `.NAME.tmp-PID` beside the target and renames it when complete, so a
//! reader never sees a partial file and a failed or killed run leaves the previous complete
//! output, or none. A run killed outright cannot remove its temporary file; the next write of
//! the same target removes those whose process is gone.

use std::path::{Path, PathBuf};

fn parts(target: &Path) -> (PathBuf, String) {
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target.file_name().map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    (dir, name)
}

/// The temporary name this process writes `target` under.
pub fn temp_path(target: &Path) -> PathBuf {
    let (dir, name) = parts(target);
    dir.join(format!(".{name}.tmp-{}", std::process::id()))
}

/// Remove temporaries of `target` left by processes that no longer run (killed runs).
/// Those of live processes, this one included, are left alone.
pub fn remove_stale_temps(target: &Path) {
    let (dir, name) = parts(target);
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(pid) = file.to_str().and_then(|f| f.strip_prefix(&prefix)).and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stale_temps_of_dead_processes_go_and_others_stay() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("out.h5ad");
        let dead = d.path().join(".out.h5ad.tmp-4294967295");
        let other = d.path().join(".other.h5ad.tmp-4294967295");
        let mine = temp_path(&target);
        for p in [&dead, &other, &mine] {
            std::fs::write(p, b"x").unwrap();
        }
        remove_stale_temps(&target);
        assert!(!dead.exists());
        assert!(other.exists() && mine.exists());
        assert_eq!(mine.file_name().unwrap().to_string_lossy(), format!(".out.h5ad.tmp-{}", std::process::id()));
    }
}
