//! Running a plan: passes over the source, granules processed in parallel, fit states merged
//! in granule order, outputs written to a temporary name and renamed when complete.
//!
//! For one output chain the runner repeats: instantiate the steps whose gene table is known;
//! if a fit that blocks the stream is pending, run a pass that replays every map before it
//! and folds it (plus any annotate-only fits on the way); finish the fits; otherwise run the
//! final pass into the sink.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use atlasflow_core::{CellBatch, FitStage, FitState, Fitted, FrameKey, GeneTable, MapStage, Uns};
use atlasflow_io::{H5adWriter, XKind};
use datafusion_execution::DiskManager;
use datafusion_execution::memory_pool::{GreedyMemoryPool, MemoryConsumer, MemoryPool, MemoryReservation};
use rayon::prelude::*;

use crate::checkpoint::{self, Checkpoints, SavedSlot};
use crate::error::{EngineError, Result};
use crate::granules;
use crate::globals::{self, FrameCollector, GlobalStep};
use crate::outputs::PlotOptions;
use crate::plan::{Plan, PlannedOutput};
use crate::spec::OutputKind;
use crate::record::{PassRecord, RunRecord, StepRecord};
pub use crate::rss::peak_rss_bytes;
use crate::rss::PeakSampler;
use crate::registry::Op;
use crate::source::Source;
use crate::spill::{self, Spill, SpillWriter};
use crate::tasks::{PassBackend, PassRequest, SegmentOut, TaskItem, TaskSpec};

/// How a run is bounded and where it writes.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Worker threads (granules processed at once).
    pub threads: usize,
    /// Memory budget in bytes for batches in flight and fit states.
    pub memory_bytes: u64,
    /// Cells per read from the source (does not change results).
    pub read_block: usize,
    /// Directory that relative output paths resolve against.
    pub out_dir: Option<PathBuf>,
    /// A file replacing the pipeline's source.
    pub input: Option<PathBuf>,
    /// Go on from the checkpoints of an interrupted run of the same pipeline and input.
    pub resume: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { threads: 2, memory_bytes: 4 << 30, read_block: 4096, out_dir: None, input: None, resume: false }
    }
}

/// Receives progress: one pass at a time.
pub trait Progress: Sync {
    /// A pass over `total` cells starts.
    fn pass_started(&self, _label: &str, _total: u64) {}
    /// `cells` more cells are done.
    fn advance(&self, _cells: u64) {}
    /// The pass ended.
    fn pass_finished(&self) {}
}

/// Progress that shows nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

enum Slot {
    Map(Arc<dyn MapStage>),
    Pending(Arc<dyn FitStage>),
    Done(Arc<dyn MapStage>),
}

struct StepSlots {
    step: usize,
    slots: Option<Vec<Slot>>,
}

/// What a worker does with a batch at one slot during a pass.
#[derive(Clone)]
enum Work {
    Map(Arc<dyn MapStage>),
    Fold(Arc<dyn FitStage>, GeneTable),
}

struct WorkSlot {
    step: usize,
    work: Work,
    /// For a fit sharing the pass of the fit before it: that fit's index in the work list.
    shared_after: Option<usize>,
}

struct GranuleOut {
    states: Vec<Option<Box<dyn FitState>>>,
    batch: CellBatch,
    cells: Vec<(u64, u64)>,
    /// The batch at the spill point, when this pass writes a spill.
    captured: Option<CellBatch>,
}

/// What one pass gives back: fit states and cells in/out per operator (whole work list).
struct PassOut {
    states: Vec<Option<Box<dyn FitState>>>,
    cells: Vec<(u64, u64)>,
    spill: Option<Spill>,
}

/// Where the next pass should spill: right after the last map that cut the genes to at most
/// [`spill::MAX_GENE_FRACTION`] of the source's, when only maps come before it.
fn spill_point(work: &[WorkSlot], source_genes: usize, current: Option<&Spill>) -> Option<usize> {
    let mut best = None;
    for (i, w) in work.iter().enumerate() {
        let Work::Map(m) = &w.work else { break };
        if let Some(mask) = m.gene_mask() {
            let kept = mask.iter().filter(|k| **k).count();
            if (kept as f64) <= spill::MAX_GENE_FRACTION * source_genes as f64 {
                best = Some(i + 1);
            }
        }
    }
    best.filter(|b| current.is_none_or(|s| *b > s.skip))
}

/// Resolve the source path (the `--input` override wins).
pub fn source_path(plan: &Plan, opts: &RunOptions) -> PathBuf {
    opts.input.clone().unwrap_or_else(|| plan.spec.source.path().to_path_buf())
}

/// Resolve an output path against `--out`.
pub fn output_path(path: &Path, opts: &RunOptions) -> PathBuf {
    match &opts.out_dir {
        Some(d) if path.is_relative() => d.join(path),
        _ => path.to_path_buf(),
    }
}


/// The directory of run.json and the checkpoints: that of the first output.
pub fn record_dir(plan: &Plan, opts: &RunOptions) -> PathBuf {
    let first = plan.outputs.first().map(|o| output_path(&o.spec.path, opts));
    first.as_deref().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default()
}

/// The pass in which to stop and wait to be killed (`ATLASFLOW_STALL_IN_PASS`): a fault
/// injection point for the interruption tests, which kill a run there, mid-pass.
fn stall_pass() -> Option<usize> {
    std::env::var("ATLASFLOW_STALL_IN_PASS").ok().and_then(|v| v.parse().ok())
}

/// Run every output of the plan. Checkpoints are written after each fit pass and removed
/// when the run ends, well or not; with `opts.resume`, saved passes are not run again.
pub fn run(plan: &Plan, opts: &RunOptions, progress: &dyn Progress) -> Result<RunRecord> {
    run_on(plan, opts, progress, None)
}

/// [`run`], with the streaming passes run by `backend` when one is given (a cluster). The
/// source is opened here too, for its cell and gene tables; the in-memory stages and every
/// output stay in this process.
pub fn run_on(plan: &Plan, opts: &RunOptions, progress: &dyn Progress, backend: Option<&dyn PassBackend>) -> Result<RunRecord> {
    let started = Instant::now();
    let source = Source::open(&plan.spec, opts.input.as_deref())?;
    let src_path = source.path().to_path_buf();
    let mut ck = Checkpoints::open(&record_dir(plan, opts), checkpoint::fingerprint(plan, &src_path), opts.resume)?;
    let mode = match backend {
        Some(b) => {
            ck.keep_history();
            Mode::Cluster(b)
        }
        None => Mode::Local,
    };
    let result = run_passes(plan, opts, progress, &source, &mut ck, started, mode);
    ck.remove();
    result
}

/// Run one task of a cluster run: rebuild the work list of `task.pass` from the pipeline and
/// the states of the passes before it, run the pass on `task.segments`, and hand each
/// segment (and, in the final pass, each granule's batch) to `emit`.
pub fn run_task(plan: &Plan, opts: &RunOptions, task: TaskSpec, emit: &mut dyn FnMut(TaskItem) -> Result<()>) -> Result<()> {
    let source = Source::open(&plan.spec, opts.input.as_deref())?;
    let mut ck = Checkpoints::in_memory(task.history);
    let mode = Mode::Task { target: task.target, pass: task.pass, segments: task.segments, emit };
    run_passes(plan, opts, &NoProgress, &source, &mut ck, Instant::now(), mode).map(|_| ())
}

/// Where the passes of `run_passes` run.
enum Mode<'a> {
    /// Here, every pass.
    Local,
    /// Each streaming pass on a backend; the rest here.
    Cluster(&'a dyn PassBackend),
    /// One task: replay the passes before `pass` from the checkpoints, run `pass` on
    /// `segments`, and stop.
    Task { target: usize, pass: usize, segments: Range<usize>, emit: &'a mut dyn FnMut(TaskItem) -> Result<()> },
}

/// Which granules a pass runs, and where their merged states go.
enum Part<'a> {
    /// Every granule; states merge into the pass's result.
    All,
    /// A task's segments; each segment's states (and, with `batches`, each granule's batch)
    /// go to `emit`.
    Task { segments: Range<usize>, batches: bool, emit: &'a mut dyn FnMut(TaskItem) -> Result<()> },
}

fn task_error(message: String) -> EngineError {
    EngineError::Cluster { url: "task".into(), message }
}

#[allow(clippy::too_many_arguments)]
fn run_passes(plan: &Plan, opts: &RunOptions, progress: &dyn Progress, source: &Source, ck: &mut Checkpoints, started: Instant, mut mode: Mode<'_>) -> Result<RunRecord> {
    let src_path = source.path().to_path_buf();
    let stall = stall_pass();
    let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(opts.memory_bytes as usize));
    let threads = opts.threads.max(1);
    let workers = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| EngineError::Budget(format!("cannot start {threads} threads: {e}")))?;
    let disk = Arc::new(
        DiskManager::builder().build().map_err(|e| EngineError::Budget(format!("cannot set up spill files: {e}")))?,
    );
    let row_nnz = source.row_nnz()?;
    let grans = granules::plan(&row_nnz);
    let seg_len = granules::segment_len(grans.len());
    let mut record = RunRecord::new(plan, &src_path, opts);
    let rss = PeakSampler::start();
    let step_nanos: Vec<AtomicU64> = (0..plan.steps.len()).map(|_| AtomicU64::new(0)).collect();
    let mut step_cells = vec![(0u64, 0u64); plan.steps.len()];
    let mut step_genes = vec![(0usize, 0usize); plan.steps.len()];

    for (ti, target) in plan.targets.iter().enumerate() {
        if matches!(&mode, Mode::Task { target: t, .. } if *t != ti) {
            continue;
        }
        let ctx = Ctx { plan, opts, source, pool: &pool, disk: &disk, workers: &workers, grans: &grans, seg_len, row_nnz: &row_nnz, progress, step_nanos: &step_nanos };
        let outs: Vec<&PlannedOutput> = target.outputs.iter().map(|&i| &plan.outputs[i]).collect();
        let (stream, global): (Vec<usize>, Vec<usize>) = target.chain.iter().partition(|&&s| !plan.steps[s].configured.global);
        let mut chain: Vec<StepSlots> = stream.iter().map(|&s| StepSlots { step: s, slots: None }).collect();
        let globals = instantiate_globals(&ctx, &global)?;
        let plots: Vec<(PathBuf, &PlotOptions)> =
            outs.iter().filter_map(|o| o.plot.as_ref().map(|p| (output_path(&o.spec.path, opts), p))).collect();
        let keep_obsm = !globals.is_empty() || outs.iter().any(|o| !matches!(o.spec.kind, OutputKind::H5ad));
        let h5ad_paths: Vec<PathBuf> =
            outs.iter().filter(|o| matches!(o.spec.kind, OutputKind::H5ad)).map(|o| output_path(&o.spec.path, opts)).collect();
        let write_label = outs.iter().map(|o| output_path(&o.spec.path, opts).display().to_string()).collect::<Vec<_>>().join(", ");
        let mut pass_no = 0;
        let mut spill: Option<Spill> = None;
        loop {
            pass_no += 1;
            let (work, blocking, genes_at) = instantiate(&ctx, &mut chain)?;
            for (s, g) in &genes_at {
                step_genes[*s] = *g;
            }
            let label = match blocking {
                Some(step) => format!("pass {pass_no}: fit {}", plan.steps[step].spec.id),
                None => format!("pass {pass_no}: write {write_label}"),
            };
            let label = match &spill {
                Some(_) => format!("{label} (from spill)"),
                None => label,
            };
            let t = Instant::now();
            let steps: Vec<usize> = work.iter().map(|w| w.step).collect();
            if blocking.is_some() {
                if let Some(saved) = ck.take(ti, pass_no, &steps)? {
                    let states = restore_states(&ctx, &work, saved.slots)?;
                    check_not_emptied(plan, &work, &saved.cells, &src_path)?;
                    finish_fits(&ctx, &mut chain, &work, states)?;
                    record.resumed_passes += 1;
                    record.passes.push(PassRecord { label: format!("{label} (resumed from checkpoint)"), cells: 0, seconds: t.elapsed().as_secs_f64(), peak_rss_bytes: rss.take(), tasks_by_executor: None });
                    continue;
                }
                let (out, tasks) = match &mut mode {
                    Mode::Task { pass, segments, emit, .. } => {
                        if pass_no != *pass {
                            return Err(task_error(format!("it was not given the states of pass {pass_no}, which comes before its pass {pass}")));
                        }
                        ctx.pass(&label, &work, None, None, None, false, Part::Task { segments: segments.clone(), batches: false, emit: &mut **emit })?;
                        return Ok(record);
                    }
                    Mode::Cluster(b) => ctx.remote_pass(*b, ti, pass_no, &label, &work, ck.history(), None)?,
                    Mode::Local => {
                        let to = spill_point(&work, source.genes().n_genes(), spill.as_ref())
                            .map(|b| SpillWriter::create(&disk, b).map(|w| (b, w)))
                            .transpose()?;
                        (ctx.pass(&label, &work, None, spill.as_ref(), to, stall == Some(pass_no), Part::All)?, None)
                    }
                };
                check_not_emptied(plan, &work, &out.cells, &src_path)?;
                if let Some(slots) = save_states(&work, &out.states) {
                    ck.save(ti, pass_no, &label, steps, slots, out.cells.clone());
                }
                finish_fits(&ctx, &mut chain, &work, out.states)?;
                if let Some(sp) = out.spill {
                    record.spills.push(format!(
                        "{}: the stream after step {} ({} granules, {})",
                        label,
                        plan.steps[work[sp.skip - 1].step].spec.id,
                        sp.granules,
                        human(sp.bytes as usize)
                    ));
                    spill = Some(sp);
                }
                record.passes.push(PassRecord { label, cells: source.n_obs() as u64, seconds: t.elapsed().as_secs_f64(), peak_rss_bytes: rss.take(), tasks_by_executor: tasks });
                continue;
            }
            if let Mode::Task { pass, segments, emit, .. } = &mut mode {
                if pass_no != *pass {
                    return Err(task_error(format!("pass {pass} is past the last pass ({pass_no})")));
                }
                ctx.pass(&label, &work, None, None, None, false, Part::Task { segments: segments.clone(), batches: true, emit: &mut **emit })?;
                return Ok(record);
            }
            let final_genes = chain_genes(&ctx, &chain)?;
            let mut sink = Sink {
                writers: h5ad_paths.iter().map(|p| (p.clone(), None)).collect(),
                genes: final_genes,
                frame: FrameCollector::new(keep_obsm),
                frame_res: MemoryConsumer::new("obs and embeddings kept for the outputs").register(&pool),
                budget: opts.memory_bytes,
            };
            let (PassOut { states, cells, .. }, tasks) = match &mode {
                Mode::Cluster(b) => ctx.remote_pass(*b, ti, pass_no, &label, &work, ck.history(), Some(&mut sink))?,
                _ => (ctx.pass(&label, &work, Some(&mut sink), spill.as_ref(), None, stall == Some(pass_no), Part::All)?, None),
            };
            for (i, w) in work.iter().enumerate() {
                step_cells[w.step].0 = step_cells[w.step].0.max(cells[i].0);
                step_cells[w.step].1 = cells[i].1;
            }
            check_not_emptied(plan, &work, &cells, &src_path)?;
            let pending = work.iter().any(|w| matches!(w.work, Work::Fold(..)));
            if pending {
                finish_fits(&ctx, &mut chain, &work, states)?;
            }
            let final_genes = chain_genes(&ctx, &chain)?;
            let uns = chain_uns(&chain);
            record.passes.push(PassRecord { label, cells: source.n_obs() as u64, seconds: t.elapsed().as_secs_f64(), peak_rss_bytes: rss.take(), tasks_by_executor: tasks });
            let Sink { writers, frame, frame_res, .. } = sink;
            let mut frame = frame.finish(uns)?;
            if frame.n_cells == 0 {
                return Err(EngineError::Empty("no cell reached the outputs".into()));
            }
            let plot_reads: Vec<(String, Vec<FrameKey>)> = plots
                .iter()
                .map(|(p, o)| {
                    let mut r = vec![FrameKey::Obsm(o.basis.clone())];
                    r.extend(o.color.iter().map(|c| FrameKey::Obs(c.clone())));
                    (p.display().to_string(), r)
                })
                .collect();
            globals::check_reads(plan, &globals, &frame, &plot_reads)?;
            for (step, secs, peak) in globals::run_globals(plan, &globals, &mut frame, &frame_res, &pool, opts.memory_bytes, progress, &rss)? {
                step_nanos[step].fetch_add((secs * 1e9) as u64, Ordering::Relaxed);
                step_cells[step] = (frame.n_cells as u64, frame.n_cells as u64);
                record.passes.push(PassRecord { label: format!("in memory: {}", plan.steps[step].spec.id), cells: frame.n_cells as u64, seconds: secs, peak_rss_bytes: peak, tasks_by_executor: None });
            }
            // Write every output; a failure leaves none of this target's files in place.
            let mut done: Vec<PathBuf> = Vec::new();
            let written = (|| -> Result<()> {
                for o in &outs {
                    let path = output_path(&o.spec.path, opts);
                    match o.spec.kind {
                        OutputKind::H5ad => {}
                        OutputKind::Parquet => crate::outputs::write_parquet(&frame, &path)?,
                        OutputKind::Plot => {
                            if let Some(po) = &o.plot {
                                crate::outputs::write_plot(&mut frame, po, &path)?;
                            }
                        }
                    }
                    if !matches!(o.spec.kind, OutputKind::H5ad) {
                        done.push(path);
                    }
                }
                for (path, writer) in writers {
                    let writer = writer.ok_or_else(|| EngineError::Empty("no batch reached the output".into()))?;
                    writer.finish_with_frame(&final_genes, &frame)?;
                    done.push(path);
                }
                Ok(())
            })();
            if let Err(e) = written {
                for p in &done {
                    let _ = std::fs::remove_file(p);
                }
                return Err(e);
            }
            for o in &outs {
                record.outputs.push(output_path(&o.spec.path, opts).display().to_string());
            }
            break;
        }
    }
    record.steps = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| StepRecord {
            id: s.spec.id.clone(),
            stage: s.spec.stage.value.clone(),
            cpu_seconds: step_nanos[i].load(Ordering::Relaxed) as f64 / 1e9,
            cells_in: step_cells[i].0,
            cells_out: step_cells[i].1,
            genes_in: step_genes[i].0,
            genes_out: step_genes[i].1,
        })
        .collect();
    record.checkpoints = match &ck.disabled {
        Some(why) => format!("not written: {why}"),
        None => format!("{} pass(es) saved in {} while the run went on, removed at its end", ck.saved, ck.dir().display()),
    };
    record.wall_seconds = started.elapsed().as_secs_f64();
    record.peak_rss_bytes = peak_rss_bytes().max(rss.take());
    Ok(record)
}

/// Merge `states` into `acc`, slot by slot (a state merges into the one before it, in order).
fn merge_into(acc: &mut [Option<Box<dyn FitState>>], states: Vec<Option<Box<dyn FitState>>>, plan: &Plan, work: &[WorkSlot]) -> Result<()> {
    for ((a, st), w) in acc.iter_mut().zip(states).zip(work) {
        if let Some(st) = st {
            match a.as_mut() {
                Some(a) => a.merge(st).map_err(|e| step_error(plan, w.step, e))?,
                None => *a = Some(st),
            }
        }
    }
    Ok(())
}

/// Add the cells in and out of each slot of `more` to `acc`.
fn add_cells(acc: &mut [(u64, u64)], more: &[(u64, u64)]) {
    for (c, o) in acc.iter_mut().zip(more) {
        c.0 += o.0;
        c.1 += o.1;
    }
}

/// The saved form of a pass's states, or None when one of them cannot be saved.
fn save_states(work: &[WorkSlot], states: &[Option<Box<dyn FitState>>]) -> Option<Vec<SavedSlot>> {
    work.iter()
        .zip(states)
        .map(|(w, st)| match (&w.work, st) {
            (Work::Map(_), _) => Some(SavedSlot::Map),
            (Work::Fold(..), None) => Some(SavedSlot::EmptyFit),
            (Work::Fold(..), Some(s)) => s.save().map(SavedSlot::Fit),
        })
        .collect()
}

/// The states of a checkpointed pass, each restored into a fresh state of its fit.
fn restore_states(ctx: &Ctx<'_>, work: &[WorkSlot], slots: Vec<SavedSlot>) -> Result<Vec<Option<Box<dyn FitState>>>> {
    work.iter()
        .zip(slots)
        .map(|(w, slot)| match (&w.work, slot) {
            (Work::Fold(f, genes), SavedSlot::Fit(bytes)) => {
                let mut st = f.new_state(genes).map_err(|e| step_error(ctx.plan, w.step, e))?;
                st.restore(&bytes).map_err(|e| step_error(ctx.plan, w.step, e))?;
                Ok(Some(st))
            }
            (Work::Fold(..), SavedSlot::EmptyFit) | (Work::Map(_), SavedSlot::Map) => Ok(None),
            _ => Err(EngineError::Input {
                path: PathBuf::from(checkpoint::DIR_NAME),
                message: "a checkpoint's states do not fit this run's passes; run without --resume".into(),
            }),
        })
        .collect()
}

/// Refuse to go on when the source is empty or a step removed every cell.
fn check_not_emptied(plan: &Plan, work: &[WorkSlot], cells: &[(u64, u64)], src: &Path) -> Result<()> {
    if cells.first().is_some_and(|c| c.0 == 0) {
        return Err(EngineError::Empty(format!("{} holds no cells", src.display())));
    }
    if let Some((w, c)) = work.iter().zip(cells).find(|(_, c)| c.0 > 0 && c.1 == 0) {
        let s = &plan.steps[w.step].spec;
        return Err(EngineError::Empty(format!(
            "step {} ({}, {}:{}) removed all {} cells: nothing is left for the steps after it",
            s.id,
            s.stage.value,
            plan.spec.file.display(),
            s.line,
            c.0
        )));
    }
    Ok(())
}

struct Ctx<'a> {
    plan: &'a Plan,
    opts: &'a RunOptions,
    source: &'a Source,
    pool: &'a Arc<dyn MemoryPool>,
    disk: &'a Arc<DiskManager>,
    workers: &'a rayon::ThreadPool,
    grans: &'a [std::ops::Range<usize>],
    /// Granules per segment (see [`granules::segment_len`]).
    seg_len: usize,
    row_nnz: &'a [u64],
    progress: &'a dyn Progress,
    step_nanos: &'a [AtomicU64],
}

pub(crate) fn step_error(plan: &Plan, step: usize, e: atlasflow_core::StageError) -> EngineError {
    let s = &plan.steps[step].spec;
    EngineError::Step { step: s.id.clone(), stage: s.stage.value.clone(), file: plan.spec.file.clone(), line: s.line, source: e }
}

/// Instantiate steps as far as the gene table is known; return the work of the next pass,
/// the step of the fit that blocks (None = the final pass) and genes in/out per step.
fn instantiate(ctx: &Ctx<'_>, chain: &mut [StepSlots]) -> Result<(Vec<WorkSlot>, Option<usize>, Vec<(usize, (usize, usize))>)> {
    let mut genes = ctx.source.genes().clone();
    let mut work = Vec::new();
    let mut genes_at = Vec::new();
    for ci in 0..chain.len() {
        let step = chain[ci].step;
        let genes_in = genes.n_genes();
        if chain[ci].slots.is_none() {
            let ops = (ctx.plan.steps[step].configured.instantiate)(&genes).map_err(|e| step_error(ctx.plan, step, e))?;
            chain[ci].slots = Some(stream_slots(ctx, step, ops)?);
        }
        let mut blocking: Option<Arc<dyn FitStage>> = None;
        for slot in chain[ci].slots.iter().flatten() {
            match slot {
                Slot::Map(m) | Slot::Done(m) => {
                    genes = m.genes(&genes).map_err(|e| step_error(ctx.plan, step, e))?;
                    work.push(WorkSlot { step, work: Work::Map(Arc::clone(m)), shared_after: None });
                }
                Slot::Pending(f) => {
                    work.push(WorkSlot { step, work: Work::Fold(Arc::clone(f), genes.clone()), shared_after: None });
                    if !f.annotates_only() {
                        blocking = Some(Arc::clone(f));
                        break;
                    }
                }
            }
        }
        genes_at.push((step, (genes_in, genes.n_genes())));
        if let Some(f) = blocking {
            if f.finishes_as_gene_subset() {
                let owner = work.len() - 1;
                if let Some(shared) = share_next(ctx, chain, ci, &genes, owner)? {
                    work.push(shared);
                }
            }
            push_subsets_down(&mut work);
            return Ok((work, Some(step), genes_at));
        }
    }
    push_subsets_down(&mut work);
    Ok((work, None, genes_at))
}

/// Move each gene-subsetting map before the value-local maps just before it (log1p before
/// the highly-variable subset becomes the subset, then log1p on the kept genes only).
fn push_subsets_down(work: &mut [WorkSlot]) {
    for i in 1..work.len() {
        let mut k = i;
        while k > 0 {
            let (a, b) = (&work[k - 1].work, &work[k].work);
            let swap = matches!((a, b), (Work::Map(m1), Work::Map(m2)) if m1.value_local() && m2.gene_mask().is_some());
            if !swap {
                break;
            }
            work.swap(k - 1, k);
            k -= 1;
        }
    }
}

/// If the step after `chain[ci]` is a single per-gene fit, fold it in the same pass on the
/// genes before the subset (see `FitStage::finishes_as_gene_subset`). Such fits do not read
/// the gene table when they are built, so building it early is safe.
fn share_next(ctx: &Ctx<'_>, chain: &mut [StepSlots], ci: usize, genes: &GeneTable, owner: usize) -> Result<Option<WorkSlot>> {
    let Some(next) = chain.get_mut(ci + 1) else { return Ok(None) };
    if next.slots.is_none() {
        let ops = (ctx.plan.steps[next.step].configured.instantiate)(genes).map_err(|e| step_error(ctx.plan, next.step, e))?;
        next.slots = Some(stream_slots(ctx, next.step, ops)?);
    }
    match next.slots.as_deref() {
        Some([Slot::Pending(f)]) if f.gene_separable() && !f.annotates_only() => Ok(Some(WorkSlot {
            step: next.step,
            work: Work::Fold(Arc::clone(f), genes.clone()),
            shared_after: Some(owner),
        })),
        _ => Ok(None),
    }
}

/// The gene table at the end of the chain (every step instantiated).
fn chain_genes(ctx: &Ctx<'_>, chain: &[StepSlots]) -> Result<GeneTable> {
    let mut genes = ctx.source.genes().clone();
    for st in chain {
        for slot in st.slots.iter().flatten() {
            if let Slot::Map(m) | Slot::Done(m) = slot {
                genes = m.genes(&genes).map_err(|e| step_error(ctx.plan, st.step, e))?;
            }
        }
    }
    Ok(genes)
}

/// The `uns` entries of every step, in order.
fn chain_uns(chain: &[StepSlots]) -> Uns {
    let mut uns = Uns::map();
    for st in chain {
        for slot in st.slots.iter().flatten() {
            if let Slot::Map(m) | Slot::Done(m) = slot {
                for (k, v) in m.uns() {
                    uns.insert(&k, v);
                }
            }
        }
    }
    uns
}

/// Replace each folded fit by what its finished state gives.
fn finish_fits(ctx: &Ctx<'_>, chain: &mut [StepSlots], work: &[WorkSlot], states: Vec<Option<Box<dyn FitState>>>) -> Result<()> {
    let mut finished: Vec<Option<Arc<dyn MapStage>>> = vec![None; work.len()];
    for (wi, (w, state)) in work.iter().zip(states).enumerate() {
        let Work::Fold(fit, genes) = &w.work else { continue };
        let mut state = match state {
            Some(s) => s,
            None => fit.new_state(genes).map_err(|e| step_error(ctx.plan, w.step, e))?,
        };
        let mut genes = genes.clone();
        if let Some(owner) = w.shared_after {
            // Restrict to the genes the fit before it kept; if that fails, it gets its own pass.
            let Some(map) = finished[owner].clone() else { continue };
            let Some(keep) = map.gene_mask() else { continue };
            if !state.subset_genes(&keep) {
                continue;
            }
            genes = map.genes(&genes).map_err(|e| step_error(ctx.plan, w.step, e))?;
        }
        let fitted = fit.finish(state, &genes).map_err(|e| step_error(ctx.plan, w.step, e))?;
        if let Fitted::Map(m) = &fitted {
            finished[wi] = Some(Arc::clone(m));
        }
        let st = chain.iter_mut().find(|s| s.step == w.step).and_then(|s| s.slots.as_mut());
        let Some(slots) = st else { continue };
        for slot in slots.iter_mut() {
            if let Slot::Pending(f) = slot {
                if Arc::ptr_eq(f, fit) {
                    *slot = match fitted {
                        Fitted::Map(m) => Slot::Done(m),
                        Fitted::Refit(f2) => Slot::Pending(f2),
                    };
                    break;
                }
            }
        }
    }
    Ok(())
}

/// A granule of a cluster's final pass that arrived before its turn.
enum Waiting {
    /// Held in memory (bytes reserved).
    Memory(CellBatch, usize),
    /// Written to a spill file.
    Spilled(Spill),
}

/// Where the final pass goes: the h5ad outputs (X streamed to disk) and the frame of obs
/// and embeddings kept for the global stages and the other outputs.
struct Sink {
    writers: Vec<(PathBuf, Option<H5adWriter>)>,
    genes: GeneTable,
    frame: FrameCollector,
    /// The frame's memory, held from the pool like every other buffer.
    frame_res: MemoryReservation,
    budget: u64,
}

impl Sink {
    fn write(&mut self, batch: &CellBatch) -> Result<()> {
        for (path, writer) in &mut self.writers {
            if writer.is_none() {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| EngineError::Output { path: dir.to_path_buf(), message: format!("cannot create the output directory: {e}") })?;
                }
                let kind = match batch.x().map_err(|e| EngineError::Empty(e.to_string()))? {
                    atlasflow_core::XView::Csr(_) => XKind::Csr,
                    atlasflow_core::XView::Dense { .. } => XKind::Dense,
                };
                let mut w = H5adWriter::create(path, &self.genes, kind)?;
                w.obs_at_finish();
                *writer = Some(w);
            }
            if let Some(w) = writer.as_mut() {
                w.write_batch(batch)?;
            }
        }
        let bytes = self.frame.push(batch)?;
        if self.frame_res.try_grow(bytes).is_err() {
            return Err(EngineError::Budget(format!(
                "the obs columns and embeddings of {} cells, kept in memory for the global stages and outputs, need {} beyond the budget of {}; give --memory {} or more",
                self.frame.n_cells(),
                human(self.frame_res.size() + bytes),
                human(self.budget as usize),
                human((self.frame_res.size() + bytes) * 2 + (256 << 20))
            )));
        }
        Ok(())
    }
}

/// The slots of a streaming step (the plan keeps global steps out of stream chains).
fn stream_slots(ctx: &Ctx<'_>, step: usize, ops: Vec<Op>) -> Result<Vec<Slot>> {
    ops.into_iter()
        .map(|op| match op {
            Op::Map(m) => Ok(Slot::Map(m)),
            Op::Fit(f) => Ok(Slot::Pending(f)),
            Op::Global(_) => Err(step_error(ctx.plan, step, atlasflow_core::StageError::Batch("a whole-dataset step in the stream".into()))),
        })
        .collect()
}

/// Build the global steps of a chain (they do not depend on the gene table).
fn instantiate_globals(ctx: &Ctx<'_>, steps: &[usize]) -> Result<Vec<GlobalStep>> {
    let mut out = Vec::new();
    for &s in steps {
        let ops = (ctx.plan.steps[s].configured.instantiate)(ctx.source.genes()).map_err(|e| step_error(ctx.plan, s, e))?;
        for op in ops {
            match op {
                Op::Global(g) => out.push((s, g)),
                _ => return Err(step_error(ctx.plan, s, atlasflow_core::StageError::Batch("a whole-dataset step built a streaming operator".into()))),
            }
        }
    }
    Ok(out)
}

impl Ctx<'_> {
    fn granule_bytes(&self, r: &std::ops::Range<usize>, dense_width: usize) -> usize {
        let nnz: u64 = self.row_nnz[r.clone()].iter().sum();
        // CSR indices + values, a copy per map in flight, and a dense block after scale.
        (nnz as usize) * 8 * 3 + r.len() * dense_width * 4 * 2
    }

    fn reserve_states(&self, work: &[WorkSlot], in_flight: usize) -> Result<MemoryReservation> {
        let r = MemoryConsumer::new("fit states").register(self.pool);
        for w in work {
            if let Work::Fold(f, genes) = &w.work {
                let need = f.state_bytes(genes.n_genes()) * (in_flight + 1);
                if r.try_grow(need).is_err() {
                    let s = &self.plan.steps[w.step].spec;
                    return Err(EngineError::Budget(format!(
                        "step {} ({}) needs {} for its state on {} genes with {in_flight} granules in flight, beyond the budget of {} ({} already reserved); --memory {} would do",
                        s.id,
                        s.stage.value,
                        human(need),
                        genes.n_genes(),
                        human(self.opts.memory_bytes as usize),
                        human(self.pool.reserved() - r.size()),
                        human(self.pool.reserved() + need + (64 << 20))
                    )));
                }
            }
        }
        Ok(r)
    }

    /// One pass: stream the source through `work`, fold the fits, write to `sink`.
    ///
    /// Granule states merge into their segment's state in granule order, and segment
    /// states into the pass's in segment order (or, for a task, go out one per segment).
    #[allow(clippy::too_many_arguments)]
    fn pass(
        &self,
        label: &str,
        work: &[WorkSlot],
        mut sink: Option<&mut Sink>,
        from: Option<&Spill>,
        to: Option<(usize, SpillWriter)>,
        stall: bool,
        mut part: Part<'_>,
    ) -> Result<PassOut> {
        let skip = from.map_or(0, |s| s.skip);
        let active = &work[skip..];
        let capture = to.as_ref().map(|(b, _)| b - skip);
        let mut spill_out = to.map(|(_, w)| w);
        let in_flight = self.opts.threads.max(1) * 2;
        // One state per granule in flight, the segment's and the pass's.
        let _states_res = self.reserve_states(work, in_flight + 1)?;
        let batch_res = MemoryConsumer::new("batches in flight").register(self.pool);
        let dense_width = work.iter().map(|w| match &w.work { Work::Fold(_, g) => g.n_genes(), Work::Map(_) => 0 }).max().unwrap_or(0);
        let dense_width = dense_width.max(self.source.genes().n_genes().min(4096));
        let fresh = || -> Vec<Option<Box<dyn FitState>>> { (0..work.len()).map(|_| None).collect() };
        let mut acc = fresh();
        let mut seg_acc = fresh();
        let mut cells = vec![(0u64, 0u64); work.len()];
        let mut seg_cells = vec![(0u64, 0u64); work.len()];
        if let Some(sp) = from {
            cells[..skip].copy_from_slice(&sp.cells);
        }
        let n_grans = self.grans.len();
        let range = match &part {
            Part::All => 0..n_grans,
            Part::Task { segments, .. } => (segments.start * self.seg_len).min(n_grans)..(segments.end * self.seg_len).min(n_grans),
        };
        let total: u64 = self.grans[range.clone()].iter().map(|r| r.len() as u64).sum();
        self.progress.pass_started(label, total);
        let (tx, rx) = crossbeam_channel::bounded::<Result<(usize, CellBatch)>>(in_flight);
        let result = std::thread::scope(|scope| -> Result<()> {
            let source = self.source;
            let block = self.opts.read_block;
            let grans = &self.grans[range.clone()];
            let first = range.start;
            scope.spawn(move || {
                if let Some(sp) = from {
                    let batches = match sp.read() {
                        Ok(it) => it,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    for (gi, b) in batches.enumerate() {
                        let b = b.map(|b| (gi, b));
                        let stop = b.is_err();
                        if tx.send(b).is_err() || stop {
                            break;
                        }
                    }
                    return;
                }
                for (gi, r) in grans.iter().enumerate() {
                    let b = source.read(r.start, r.end, block).map(|b| (first + gi, b));
                    let stop = b.is_err();
                    if tx.send(b).is_err() || stop {
                        break;
                    }
                }
            });
            loop {
                let mut window = Vec::with_capacity(in_flight);
                while window.len() < in_flight {
                    match rx.recv() {
                        Ok(item) => window.push(item?),
                        Err(_) => break,
                    }
                }
                if window.is_empty() {
                    break;
                }
                let bytes: usize = window.iter().map(|(gi, _)| self.granule_bytes(&self.grans[*gi], dense_width)).sum();
                if batch_res.try_resize(bytes).is_err() {
                    return Err(EngineError::Budget(format!(
                        "{} granule(s) in flight need {} on top of {} already reserved for fit states, beyond the budget of {}; use --memory {} or --threads 1",
                        window.len(),
                        human(bytes),
                        human(self.pool.reserved() - batch_res.size()),
                        human(self.opts.memory_bytes as usize),
                        human(self.pool.reserved() - batch_res.size() + bytes + (64 << 20))
                    )));
                }
                let index: Vec<(usize, u64)> = window.iter().map(|(gi, _)| (*gi, self.grans.get(*gi).map_or(0, |r| r.len() as u64))).collect();
                let outs: Vec<Result<GranuleOut>> = self.workers.install(|| {
                    window.into_par_iter().map(|(_, b)| self.process(b, active, capture)).collect()
                });
                for (out, (gi, size)) in outs.into_iter().zip(index) {
                    let out = out?;
                    if let (Some(w), Some(b)) = (spill_out.as_mut(), out.captured.as_ref()) {
                        w.write(b)?;
                    }
                    merge_into(&mut seg_acc[skip..], out.states, self.plan, &work[skip..])?;
                    add_cells(&mut seg_cells[skip..], &out.cells);
                    match &mut part {
                        Part::Task { batches: true, emit, .. } => emit(TaskItem::Batch(gi, out.batch))?,
                        _ => {
                            if let Some(s) = sink.as_deref_mut() {
                                s.write(&out.batch)?;
                            }
                        }
                    }
                    self.progress.advance(size);
                    if (gi + 1) % self.seg_len == 0 || gi + 1 == n_grans {
                        let states = std::mem::replace(&mut seg_acc, fresh());
                        let counts = std::mem::replace(&mut seg_cells, vec![(0, 0); work.len()]);
                        match &mut part {
                            Part::All => {
                                merge_into(&mut acc, states, self.plan, work)?;
                                add_cells(&mut cells, &counts);
                            }
                            Part::Task { emit, .. } => {
                                let slots = save_states(work, &states)
                                    .ok_or_else(|| task_error(format!("{label}: a fit state cannot be saved to be sent back")))?;
                                emit(TaskItem::Segment(SegmentOut { segment: gi / self.seg_len, slots, cells: counts }))?;
                            }
                        }
                    }
                }
                if stall {
                    eprintln!("atlasflow: {label}: stalled after its first granules (ATLASFLOW_STALL_IN_PASS), waiting to be killed");
                    loop {
                        std::thread::sleep(Duration::from_secs(3600));
                    }
                }
            }
            drop(rx);
            Ok(())
        });
        self.progress.pass_finished();
        result?;
        let spill = match spill_out {
            Some(w) => Some(w.finish(cells[..skip + capture.unwrap_or(0)].to_vec())?),
            None => None,
        };
        Ok(PassOut { states: acc, cells, spill })
    }

    /// One pass run by a backend: its segments' states merged in segment order, the final
    /// pass's batches written to `sink` in granule order, and the tasks each worker ran.
    #[allow(clippy::too_many_arguments)]
    fn remote_pass(
        &self,
        backend: &dyn PassBackend,
        target: usize,
        pass: usize,
        label: &str,
        work: &[WorkSlot],
        history: &[checkpoint::PassCheckpoint],
        mut sink: Option<&mut Sink>,
    ) -> Result<(PassOut, Option<BTreeMap<String, usize>>)> {
        let n_segments = granules::n_segments(self.grans.len());
        self.progress.pass_started(label, self.source.n_obs() as u64);
        let write = sink.is_some();
        // Granules may arrive in any order (Ballista fetches task outputs in its own order);
        // they are written in granule order. Those that arrive early wait in memory up to a
        // quarter of the budget, then in spill files.
        let mut pending: BTreeMap<usize, Waiting> = BTreeMap::new();
        let waiting_res = MemoryConsumer::new("granules waiting for their turn").register(self.pool);
        let waiting_cap = (self.opts.memory_bytes / 4) as usize;
        let mut next = 0usize;
        let req = PassRequest { target, pass, label, history, segments: n_segments, write };
        let mut emit = |gi: usize, batch: CellBatch| -> Result<()> {
            let Some(s) = sink.as_deref_mut() else {
                return Err(task_error(format!("{label}: a task sent cells in a fit pass")));
            };
            if gi < next || gi >= self.grans.len() || pending.contains_key(&gi) {
                return Err(task_error(format!("{label}: granule {gi} arrived twice or does not exist")));
            }
            if gi == next {
                s.write(&batch)?;
                self.progress.advance(self.grans[next].len() as u64);
                next += 1;
            } else {
                let bytes = batch.record_batch().get_array_memory_size();
                let waiting = if waiting_res.size() + bytes <= waiting_cap && waiting_res.try_grow(bytes).is_ok() {
                    Waiting::Memory(batch, bytes)
                } else {
                    let mut w = SpillWriter::create(self.disk, 0)?;
                    w.write(&batch)?;
                    Waiting::Spilled(w.finish(Vec::new())?)
                };
                pending.insert(gi, waiting);
            }
            while let Some(w) = pending.remove(&next) {
                match w {
                    Waiting::Memory(b, bytes) => {
                        s.write(&b)?;
                        waiting_res.shrink(bytes);
                    }
                    Waiting::Spilled(sp) => {
                        for b in sp.read()? {
                            s.write(&b?)?;
                        }
                    }
                }
                self.progress.advance(self.grans[next].len() as u64);
                next += 1;
            }
            Ok(())
        };
        let result = backend.run_pass(&req, &mut emit)?;
        if write && next != self.grans.len() {
            return Err(task_error(format!("{label}: the tasks sent {next} of {} granules", self.grans.len())));
        }
        let mut acc: Vec<Option<Box<dyn FitState>>> = (0..work.len()).map(|_| None).collect();
        let mut cells = vec![(0u64, 0u64); work.len()];
        let got: Vec<usize> = result.segments.iter().map(|s| s.segment).collect();
        if got != (0..n_segments).collect::<Vec<_>>() {
            return Err(task_error(format!("{label}: the tasks gave segments {got:?}, not each of 0..{n_segments} once in order")));
        }
        for seg in result.segments {
            if seg.slots.len() != work.len() || seg.cells.len() != work.len() {
                return Err(task_error(format!("{label}: a task planned {} operators where this run plans {}", seg.slots.len(), work.len())));
            }
            let states = restore_states(self, work, seg.slots)?;
            merge_into(&mut acc, states, self.plan, work)?;
            add_cells(&mut cells, &seg.cells);
        }
        if !write {
            self.progress.advance(self.source.n_obs() as u64);
        }
        self.progress.pass_finished();
        Ok((PassOut { states: acc, cells, spill: None }, Some(result.tasks_by_worker)))
    }

    /// Run one granule through `work`; keep a copy of the batch before `work[capture]`.
    fn process(&self, mut batch: CellBatch, work: &[WorkSlot], capture: Option<usize>) -> Result<GranuleOut> {
        let mut states: Vec<Option<Box<dyn FitState>>> = Vec::with_capacity(work.len());
        let mut cells = Vec::with_capacity(work.len());
        let mut captured = None;
        for (wi, w) in work.iter().enumerate() {
            if capture == Some(wi) {
                captured = Some(batch.clone());
            }
            let t = Instant::now();
            let n_in = batch.num_cells() as u64;
            match &w.work {
                Work::Map(m) => {
                    batch = m.map(batch).map_err(|e| step_error(self.plan, w.step, e))?;
                    states.push(None);
                }
                Work::Fold(f, genes) => {
                    let mut st = f.new_state(genes).map_err(|e| step_error(self.plan, w.step, e))?;
                    st.fold(&batch).map_err(|e| step_error(self.plan, w.step, e))?;
                    states.push(Some(st));
                }
            }
            cells.push((n_in, batch.num_cells() as u64));
            self.step_nanos[w.step].fetch_add(dur_nanos(t.elapsed()), Ordering::Relaxed);
        }
        Ok(GranuleOut { states, batch, cells, captured })
    }
}

fn dur_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Bytes as a person reads them (binary units).
pub fn human(bytes: usize) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// Parse a size like `4GiB`, `512M`, `2g`, `1000000`.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0f64.powi(4),
        _ => return None,
    };
    let bytes = v * mult;
    (bytes.is_finite() && bytes >= 1.0).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4GiB"), Some(4 << 30));
        assert_eq!(parse_size("512m"), Some(512 << 20));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("x"), None);
        assert_eq!(human(3 << 20), "3.0 MiB");
    }
}
