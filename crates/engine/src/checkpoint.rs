//! Checkpoints: the merged fit states of each completed pass, saved beside the outputs so
//! that a run killed mid-way can go on from its last completed pass (`--resume`) and give
//! the same bits as a run that was never interrupted.
//!
//! Every run writes them, in `.atlasflow-checkpoint/` of the directory that holds run.json,
//! one file per pass through a temporary name renamed when complete, so a kill leaves whole
//! files only. A run that ends, well or with an error, removes them: they exist only while a
//! run is under way or after it was killed. Each file carries the run's *fingerprint* (the
//! pipeline as planned, `--set` included, and the source's size and modification time) and
//! a CRC; `--resume` refuses checkpoints of another pipeline or input, or damaged ones,
//! rather than fold in states that do not belong.
//!
//! What resumes is the streaming passes, which read the source; the final pass (which
//! writes the outputs) and the in-memory stages after it run again. A spill is not kept:
//! the passes after a resumed one replay from the source, which gives the same bits.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::plan::Plan;

/// Name of the checkpoint directory, beside run.json.
pub const DIR_NAME: &str = ".atlasflow-checkpoint";

/// Version of the checkpoint file layout.
const FORMAT: u32 = 1;

/// One slot of a pass's work list, as saved.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum SavedSlot {
    /// A map: nothing to save.
    Map,
    /// A fit that saw no cell (it starts from a fresh state).
    EmptyFit,
    /// A fit's merged state, as [`atlasflow_core::FitState::save`] wrote it.
    Fit(Vec<u8>),
}

/// What one completed pass leaves for a resume.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PassCheckpoint {
    format: u32,
    fingerprint: String,
    /// Which output chain (index into the plan's targets).
    pub target: usize,
    /// Pass number within the target, from 1.
    pub pass: usize,
    /// The pass's label, for the run record.
    pub label: String,
    /// The step of each slot of the work list, to check the resumed run plans the same.
    pub steps: Vec<usize>,
    /// Each slot's saved state.
    pub slots: Vec<SavedSlot>,
    /// Cells in and out of each slot.
    pub cells: Vec<(u64, u64)>,
}

/// The checkpoints of one run.
pub struct Checkpoints {
    dir: PathBuf,
    fingerprint: String,
    loaded: Vec<PassCheckpoint>,
    /// Why checkpoints are not being written (e.g. the directory cannot be created); the run
    /// goes on without them.
    pub disabled: Option<String>,
    /// Passes saved by this run.
    pub saved: usize,
    /// Directories this run created to hold the checkpoints, deepest first: removed with
    /// them when still empty, so a failed run leaves no empty output directory either.
    created: Vec<PathBuf>,
    /// Every pass saved or taken so far, kept in memory when a cluster run needs to send
    /// them to its tasks (see [`Checkpoints::keep_history`]).
    history: Option<Vec<PassCheckpoint>>,
}

fn ck_err(path: &Path, message: impl Into<String>) -> EngineError {
    EngineError::Input { path: path.to_path_buf(), message: message.into() }
}

/// What identifies a run's results: atlasflow's version, the pipeline as planned (steps,
/// parameters after `--set`, seed, outputs) and the source's identity on disk.
pub fn fingerprint(plan: &Plan, source: &Path) -> String {
    let stamp = |p: &Path| {
        std::fs::metadata(p).ok().map(|m| {
            let mtime = m.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
            format!("{} bytes, modified {mtime}", m.len())
        })
    };
    let src = if source.is_dir() {
        // An atlas store: its dataset table is written last by every ingest.
        ["atlasflow-store.json", "census_info/datasets.parquet"]
            .iter()
            .map(|f| format!("{f}: {}", stamp(&source.join(f)).unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        stamp(source).unwrap_or_default()
    };
    format!("atlasflow {}\nsource {} ({src})\n{:?}", env!("CARGO_PKG_VERSION"), source.display(), plan.spec)
}

impl Checkpoints {
    /// The checkpoints of a run writing beside `record_dir`. With `resume`, the saved passes
    /// are read (and must match `fingerprint`); without it, old ones are removed.
    pub fn open(record_dir: &Path, fingerprint: String, resume: bool) -> Result<Self> {
        let dir = record_dir.join(DIR_NAME);
        let mut ck = Checkpoints { dir, fingerprint, loaded: Vec::new(), disabled: None, saved: 0, created: Vec::new(), history: None };
        if resume {
            ck.loaded = ck.read_all()?;
        } else {
            ck.remove();
        }
        Ok(ck)
    }

    /// The passes a task of a cluster run is given: it takes them as a resumed run takes its
    /// checkpoints, so its work list is the client's, and it writes nothing.
    pub fn in_memory(history: Vec<PassCheckpoint>) -> Self {
        Checkpoints {
            dir: PathBuf::new(),
            fingerprint: String::new(),
            loaded: history,
            disabled: Some("a task of a cluster run keeps no checkpoints".into()),
            saved: 0,
            created: Vec::new(),
            history: None,
        }
    }

    /// Keep every pass saved or taken from now on in memory, for [`Checkpoints::history`].
    pub fn keep_history(&mut self) {
        self.history.get_or_insert_with(Vec::new);
    }

    /// The passes saved or taken since [`Checkpoints::keep_history`], in order.
    pub fn history(&self) -> &[PassCheckpoint] {
        self.history.as_deref().unwrap_or_default()
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Passes found to resume from.
    pub fn n_loaded(&self) -> usize {
        self.loaded.len()
    }

    fn read_all(&self) -> Result<Vec<PassCheckpoint>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ck_err(&self.dir, format!("cannot read the checkpoints: {e}"))),
        };
        let mut out = Vec::new();
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "ckpt"))
            .collect();
        paths.sort();
        for p in paths {
            let bytes = std::fs::read(&p).map_err(|e| ck_err(&p, format!("cannot read the checkpoint: {e}")))?;
            let damaged = || ck_err(&p, "the checkpoint is damaged (its CRC does not match); run without --resume to start again");
            if bytes.len() < 4 {
                return Err(damaged());
            }
            let (body, crc) = bytes.split_at(bytes.len() - 4);
            if crc32fast::hash(body).to_le_bytes() != crc {
                return Err(damaged());
            }
            let c: PassCheckpoint = postcard::from_bytes(body).map_err(|_| damaged())?;
            if c.format != FORMAT {
                return Err(ck_err(&p, format!("checkpoint format {} is not this atlasflow's ({FORMAT}); run without --resume", c.format)));
            }
            if c.fingerprint != self.fingerprint {
                return Err(ck_err(
                    &p,
                    format!(
                        "the checkpoint was made by another run: {}; run without --resume to start again",
                        first_difference(&c.fingerprint, &self.fingerprint)
                    ),
                ));
            }
            out.push(c);
        }
        Ok(out)
    }

    /// The saved pass `pass` of target `target`, if any. Its work list must be the one this
    /// run planned (`steps`), which it is whenever the fingerprints agree.
    pub fn take(&mut self, target: usize, pass: usize, steps: &[usize]) -> Result<Option<PassCheckpoint>> {
        let Some(i) = self.loaded.iter().position(|c| c.target == target && c.pass == pass) else { return Ok(None) };
        let c = self.loaded.swap_remove(i);
        if c.steps != steps || c.slots.len() != steps.len() || c.cells.len() != steps.len() {
            return Err(ck_err(&self.dir, format!("the checkpoint of pass {pass} planned other steps than this run; run without --resume")));
        }
        if let Some(h) = self.history.as_mut() {
            h.push(c.clone());
        }
        Ok(Some(c))
    }

    /// Save a completed pass. A failure to write disables checkpoints for the rest of the
    /// run (noted in run.json) instead of stopping a run that can still finish.
    pub fn save(&mut self, target: usize, pass: usize, label: &str, steps: Vec<usize>, slots: Vec<SavedSlot>, cells: Vec<(u64, u64)>) {
        let c = PassCheckpoint { format: FORMAT, fingerprint: self.fingerprint.clone(), target, pass, label: label.to_string(), steps, slots, cells };
        if let Some(h) = self.history.as_mut() {
            h.push(c.clone());
        }
        if self.disabled.is_some() {
            return;
        }
        let written = (|| -> std::result::Result<(), String> {
            let mut body = postcard::to_stdvec(&c).map_err(|e| e.to_string())?;
            let crc = crc32fast::hash(&body);
            body.extend_from_slice(&crc.to_le_bytes());
            let mut d = self.dir.parent();
            while let Some(p) = d.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
                self.created.push(p.to_path_buf());
                d = p.parent();
            }
            std::fs::create_dir_all(&self.dir).map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
            let path = self.dir.join(format!("target-{target:03}-pass-{pass:03}.ckpt"));
            let tmp = path.with_extension("ckpt.tmp");
            std::fs::write(&tmp, &body).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                format!("cannot write {}: {e}", tmp.display())
            })?;
            std::fs::rename(&tmp, &path).map_err(|e| format!("cannot rename {}: {e}", tmp.display()))
        })();
        match written {
            Ok(()) => self.saved += 1,
            Err(e) => self.disabled = Some(e),
        }
    }

    /// Remove the checkpoints (the run ended, or starts afresh).
    pub fn remove(&self) {
        if self.dir.as_os_str().is_empty() {
            return; // in memory only
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        for d in &self.created {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// The first line where two fingerprints differ, for the message.
fn first_difference(saved: &str, now: &str) -> String {
    for (a, b) in saved.lines().zip(now.lines()) {
        if a != b {
            let cut = |s: &str| s.chars().take(160).collect::<String>();
            return format!("it has \"{}\" where this run has \"{}\"", cut(a), cut(b));
        }
    }
    "the pipelines differ".to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn saves_loads_and_refuses_others_and_damage() {
        let d = tempfile::tempdir().unwrap();
        let mut ck = Checkpoints::open(d.path(), "fp one".into(), false).unwrap();
        ck.save(0, 1, "pass 1", vec![0, 1], vec![SavedSlot::Map, SavedSlot::Fit(vec![1, 2, 3])], vec![(5, 5), (5, 5)]);
        assert_eq!(ck.saved, 1);
        let mut again = Checkpoints::open(d.path(), "fp one".into(), true).unwrap();
        assert_eq!(again.n_loaded(), 1);
        assert!(again.take(0, 2, &[0, 1]).unwrap().is_none());
        let c = again.take(0, 1, &[0, 1]).unwrap().unwrap();
        assert_eq!(c.slots[1], SavedSlot::Fit(vec![1, 2, 3]));
        let e = Checkpoints::open(d.path(), "fp two".into(), true).err().unwrap().to_string();
        assert!(e.contains("another run") && e.contains("\"fp one\" where this run has \"fp two\""), "{e}");
        let f = d.path().join(DIR_NAME).join("target-000-pass-001.ckpt");
        let mut bytes = std::fs::read(&f).unwrap();
        bytes[3] ^= 1;
        std::fs::write(&f, bytes).unwrap();
        let e = Checkpoints::open(d.path(), "fp one".into(), true).err().unwrap().to_string();
        assert!(e.contains("damaged"), "{e}");
        Checkpoints::open(d.path(), "fp one".into(), false).unwrap();
        assert!(!d.path().join(DIR_NAME).exists());
    }
}
