//! After the stream: the cells' obs columns and embeddings gathered into a [`CellFrame`],
//! the global stages (neighbors, UMAP, Leiden) run on it in spec order within the memory
//! budget, and the reads of every global stage and plot checked before any of them runs.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::ArrayRef;
use atlasflow_core::{CellBatch, CellFrame, Embedding, FrameKey, GlobalStage, StageError, Uns};
use datafusion_execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};

use crate::error::{EngineError, Result};
use crate::exec::{human, step_error};
use crate::plan::Plan;

/// Gathers, batch by batch of the final pass, what global stages and frame outputs read:
/// every obs column and (when `keep_obsm`) every embedding.
pub(crate) struct FrameCollector {
    names: Option<Vec<String>>,
    parts: Vec<Vec<ArrayRef>>,
    obsm: Vec<(String, Vec<f32>, usize)>,
    keep_obsm: bool,
    n: usize,
}

/// `col` on buffers of its own when it is a small slice of larger buffers: a batch decoded
/// from Arrow IPC (a cluster's final pass) holds its obs columns and its X in one body
/// buffer, and keeping the obs slice would keep every granule's X alive with it.
fn compact(col: arrow::array::ArrayRef) -> arrow::array::ArrayRef {
    let data = col.to_data();
    let slice = data.get_slice_memory_size().unwrap_or(0);
    if col.get_array_memory_size() <= 2 * slice + 4096 {
        return col;
    }
    let mut copy = arrow::array::MutableArrayData::new(vec![&data], false, col.len());
    match copy.try_extend(0, 0, col.len()) {
        Ok(()) => arrow::array::make_array(copy.freeze()),
        Err(_) => col, // cannot overflow for a slice of one array; keep it as it is
    }
}

impl FrameCollector {
    /// Start; `keep_obsm` when a global stage or a Parquet/plot output needs embeddings.
    pub fn new(keep_obsm: bool) -> Self {
        FrameCollector { names: None, parts: Vec::new(), obsm: Vec::new(), keep_obsm, n: 0 }
    }

    /// Cells gathered so far.
    pub fn n_cells(&self) -> usize {
        self.n
    }

    /// Add one batch (they arrive in stream order); returns the bytes it added.
    pub fn push(&mut self, batch: &CellBatch) -> Result<usize> {
        let cols = batch.obs_columns();
        let names: Vec<String> = cols.iter().map(|(n, _)| n.clone()).collect();
        match &self.names {
            None => self.names = Some(names),
            Some(first) if *first != names => {
                return Err(EngineError::Empty(format!("batch at cell {} has obs columns {names:?}, the first had {first:?}", self.n)));
            }
            Some(_) => {}
        }
        // A granule's columns are slices of the read block's buffers: count the slice, not
        // the whole buffer it shares with the other granules of the block (which counted
        // each block up to four times and refused a million cells that fit).
        let mut bytes: usize = cols.iter().map(|(_, c)| c.to_data().get_slice_memory_size().unwrap_or_else(|_| c.get_array_memory_size())).sum();
        self.parts.push(cols.into_iter().map(|(_, c)| compact(c)).collect());
        if self.keep_obsm {
            for key in batch.obsm_keys() {
                let Some((data, width)) = batch.obsm(&key) else { continue };
                bytes += data.len() * 4;
                match self.obsm.iter_mut().find(|(k, _, _)| *k == key) {
                    Some((_, v, w)) if *w == width => v.extend_from_slice(data),
                    Some(_) => return Err(EngineError::Empty(format!("embedding {key} changes width at cell {}", self.n))),
                    None if self.n == 0 => self.obsm.push((key, data.to_vec(), width)),
                    None => return Err(EngineError::Empty(format!("embedding {key} appears at cell {}", self.n))),
                }
            }
        }
        self.n += batch.num_cells();
        Ok(bytes)
    }

    /// The frame of every cell, with `uns` from the streamed stages.
    pub fn finish(self, uns: Uns) -> Result<CellFrame> {
        let names = self.names.unwrap_or_default();
        let mut obs = Vec::with_capacity(names.len());
        for (i, name) in names.into_iter().enumerate() {
            let pieces: Vec<&dyn arrow::array::Array> = self.parts.iter().filter_map(|p| p.get(i)).map(|a| a.as_ref()).collect();
            let col = arrow::compute::concat(&pieces).map_err(|e| EngineError::Empty(format!("obs column {name}: {e}")))?;
            obs.push((name, col));
        }
        let obsm = self.obsm.into_iter().map(|(k, values, width)| (k, Embedding { values, width })).collect();
        Ok(CellFrame { n_cells: self.n, obs, obsm, obsp: Vec::new(), uns })
    }
}

/// A global step ready to run: its step index and stage.
pub(crate) type GlobalStep = (usize, Arc<dyn GlobalStage>);

fn missing(frame_has: &[FrameKey], key: &FrameKey) -> String {
    let list = |f: fn(&FrameKey) -> Option<&String>| frame_has.iter().filter_map(f).cloned().collect::<Vec<_>>().join(", ");
    let hint = match key {
        FrameKey::Obsm(k) if k == "X_pca" => " (add a pca step before it)",
        FrameKey::Obsp(k) if k.ends_with("connectivities") => " (add a neighbors step before it)",
        FrameKey::Obsm(k) if k.starts_with("X_umap") => " (add a umap step before it)",
        _ => "",
    };
    format!(
        "needs {key}{hint}, which the data do not have; obsm: [{}]; obsp: [{}]; obs: [{}]",
        list(|k| if let FrameKey::Obsm(s) = k { Some(s) } else { None }),
        list(|k| if let FrameKey::Obsp(s) = k { Some(s) } else { None }),
        list(|k| if let FrameKey::Obs(s) = k { Some(s) } else { None }),
    )
}

/// What the frame holds, as keys.
fn keys_of(frame: &CellFrame) -> Vec<FrameKey> {
    let mut keys: Vec<FrameKey> = frame.obs.iter().map(|(k, _)| FrameKey::Obs(k.clone())).collect();
    keys.extend(frame.obsm.iter().map(|(k, _)| FrameKey::Obsm(k.clone())));
    keys.extend(frame.obsp.iter().map(|(k, _)| FrameKey::Obsp(k.clone())));
    if let Uns::Map(entries) = &frame.uns {
        keys.extend(entries.iter().map(|(k, _)| FrameKey::Uns(k.clone())));
    }
    keys
}

/// Check that each global stage, then each plot, finds what it reads in the frame or in
/// what the stages before it write — before the first (possibly long) global stage runs.
pub(crate) fn check_reads(plan: &Plan, globals: &[GlobalStep], frame: &CellFrame, plots: &[(String, Vec<FrameKey>)]) -> Result<()> {
    let mut have = keys_of(frame);
    for (step, g) in globals {
        for r in g.reads() {
            if !have.contains(&r) {
                return Err(step_error(plan, *step, StageError::data(&plan.steps[*step].spec.stage.value, missing(&have, &r))));
            }
        }
        have.extend(g.writes());
    }
    for (path, reads) in plots {
        for r in reads {
            if !have.contains(r) {
                return Err(EngineError::Output { path: path.into(), message: format!("plot {}", missing(&have, r)) });
            }
        }
    }
    Ok(())
}

/// Run the global stages in order on `frame`, each within the budget; returns the seconds
/// each took and its peak resident memory (from `rss`). `frame_res` holds the frame's memory (obs and the streamed embeddings) and
/// grows with the graphs and embeddings the stages add.
pub(crate) fn run_globals(
    plan: &Plan,
    globals: &[GlobalStep],
    frame: &mut CellFrame,
    frame_res: &MemoryReservation,
    pool: &Arc<dyn MemoryPool>,
    budget: u64,
    progress: &dyn crate::exec::Progress,
    rss: &crate::rss::PeakSampler,
) -> Result<Vec<(usize, f64, u64)>> {
    let mut times = Vec::new();
    let obs_bytes = frame_res.size().saturating_sub(frame.size_bytes());
    for (step, g) in globals {
        let id = &plan.steps[*step].spec.id;
        let need = g.memory_bytes(frame);
        let r = MemoryConsumer::new(format!("step {id}")).register(pool);
        if r.try_grow(need).is_err() {
            return Err(EngineError::Budget(format!(
                "step {id} needs {} for {} cells beside the {} frame; the budget is {} — give --memory {} or more",
                human(need),
                frame.n_cells,
                human(frame_res.size()),
                human(budget as usize),
                human(need + frame_res.size() + (256 << 20))
            )));
        }
        progress.pass_started(&format!("{id} ({} cells, in memory)", frame.n_cells), 1);
        rss.take();
        let t = Instant::now();
        let out = g.run(frame).map_err(|e| step_error(plan, *step, e));
        progress.advance(1);
        progress.pass_finished();
        frame.apply(out?);
        times.push((*step, t.elapsed().as_secs_f64(), rss.take()));
        drop(r);
        let now = obs_bytes + frame.size_bytes();
        if frame_res.try_resize(now).is_err() {
            return Err(EngineError::Budget(format!(
                "after step {id} the frame of {} cells holds {}, beyond the budget of {}; give --memory {} or more",
                frame.n_cells,
                human(now),
                human(budget as usize),
                human(now * 2 + (256 << 20))
            )));
        }
    }
    Ok(times)
}
