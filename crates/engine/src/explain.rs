//! `atlasflow explain`: the passes a run will make, what each reads and replays, and the
//! memory each stage will hold, computed from the spec and the source's header alone.

use std::fmt::Write as _;

use crate::error::Result;
use crate::exec::{human, RunOptions};
use crate::granules;
use crate::plan::Plan;
use crate::registry::Op;
use crate::source::Source;

/// The plan as text.
pub fn explain(plan: &Plan, opts: &RunOptions) -> Result<String> {
    let source = Source::open(&plan.spec, opts.input.as_deref())?;
    let src_path = source.path().to_path_buf();
    let row_nnz = source.row_nnz()?;
    let nnz: u64 = row_nnz.iter().sum();
    let grans = granules::plan(&row_nnz);
    let n_vars = source.genes().n_genes();
    let in_flight = opts.threads.max(1) * 2;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "source {}: {} cells × {} genes, {} non-zeros ({} as CSR), {} granules (≤ {} cells, ≤ {} non-zeros each)",
        src_path.display(),
        source.n_obs(),
        n_vars,
        nnz,
        human(nnz as usize * 8),
        grans.len(),
        granules::MAX_CELLS,
        granules::MAX_NNZ
    );
    let max_gran = grans.iter().map(|r| row_nnz[r.clone()].iter().sum::<u64>()).max().unwrap_or(0);
    let _ = writeln!(
        s,
        "budget {}, {} threads, {} granules in flight (≈ {} of batches)",
        human(opts.memory_bytes as usize),
        opts.threads,
        in_flight,
        human(in_flight * max_gran as usize * 24)
    );
    for target in &plan.targets {
        let paths: Vec<String> = target.outputs.iter().map(|&o| format!("{} {}", plan.outputs[o].spec.kind.key(), plan.outputs[o].spec.path.display())).collect();
        let _ = writeln!(s, "\noutput {}:", paths.join(", "));
        let (stream, global): (Vec<usize>, Vec<usize>) = target.chain.iter().partition(|&&i| !plan.steps[i].configured.global);
        let mut pass = 0;
        let mut replay: Vec<String> = Vec::new();
        let mut genes = source.genes().clone();
        let mut n_genes_est = n_vars;
        let mut prev_subsets = false;
        let mut spill: Option<SpillPlan> = None;
        // Whether each replayed step is a value-local map (it runs after a gene subset).
        let mut local: Vec<bool> = Vec::new();
        for &i in &stream {
            let st = &plan.steps[i];
            let ops = (st.configured.instantiate)(&genes).map_err(|e| crate::error::EngineError::Step {
                step: st.spec.id.clone(),
                stage: st.spec.stage.value.clone(),
                file: plan.spec.file.clone(),
                line: st.spec.line,
                source: e,
            })?;
            let mut state = 0usize;
            for op in &ops {
                match op {
                    Op::Fit(f) => state += f.state_bytes(n_genes_est),
                    Op::Map(m) => {
                        if let Ok(g) = m.genes(&genes) {
                            genes = g;
                        }
                    }
                    Op::Global(_) => {}
                }
            }
            let shares = prev_subsets && matches!(ops.as_slice(), [Op::Fit(f)] if f.gene_separable());
            prev_subsets = matches!(ops.as_slice(), [Op::Fit(f)] if f.finishes_as_gene_subset());
            if shares {
                let _ = writeln!(s, "    (step {} folds in pass {pass}: per-gene statistics, restricted to the genes kept)", st.spec.id);
            }
            for _ in 0..if shares { 0 } else { st.configured.passes } {
                pass += 1;
                let _ = writeln!(s, "  pass {pass}: {}, fold {}", reads(&mut spill, &replay), st.spec.id);
            }
            let _ = writeln!(
                s,
                "    step {:<24} {:<60} state ≈ {} per granule ({} with {} in flight), genes ≤ {}",
                st.spec.id,
                st.configured.summary,
                human(state),
                human(state * (in_flight + 1)),
                in_flight,
                n_genes_est
            );
            if let Some(n) = st.configured.genes_after {
                n_genes_est = n_genes_est.min(n);
                if (n as f64) <= crate::spill::MAX_GENE_FRACTION * n_vars as f64 {
                    let _ = writeln!(
                        s,
                        "    (keeps ≤ {n} of {n_vars} genes: the next pass spills the stream after it, and the passes after that read the spill, not the source)"
                    );
                    let k = local.iter().rev().take_while(|l| **l).count();
                    spill = Some(SpillPlan {
                        after: st.spec.id.clone(),
                        at: replay.len() + 1,
                        moved: replay[replay.len() - k..].to_vec(),
                        written: false,
                    });
                }
            }
            local.push(matches!(ops.as_slice(), [Op::Map(m)] if m.value_local()));
            replay.push(st.spec.id.clone());
        }
        pass += 1;
        let _ = writeln!(s, "  pass {pass}: {}, write {} (obs and embeddings kept in memory)", reads(&mut spill, &replay), paths.join(", "));
        for &i in &global {
            let st = &plan.steps[i];
            let _ = writeln!(s, "  in memory: step {:<24} {}", st.spec.id, st.configured.summary);
        }
    }
    Ok(s)
}

/// The spill a run will make: after which step, where the replay resumes, and the
/// value-local maps (log1p) that run after the gene subset and so are replayed from it.
struct SpillPlan {
    after: String,
    at: usize,
    moved: Vec<String>,
    written: bool,
}

/// What a pass reads and replays, given the spill plan so far.
fn reads(spill: &mut Option<SpillPlan>, replay: &[String]) -> String {
    match spill {
        Some(sp) if sp.written => {
            let rest: Vec<String> = sp.moved.iter().chain(replay.get(sp.at..).unwrap_or_default()).cloned().collect();
            format!("read the spill after {}, replay [{}]", sp.after, rest.join(", "))
        }
        Some(sp) => {
            sp.written = true;
            format!("read the source, replay [{}] (spilling the stream after {})", replay.join(", "), sp.after)
        }
        None => format!("read the source, replay [{}]", replay.join(", ")),
    }
}
