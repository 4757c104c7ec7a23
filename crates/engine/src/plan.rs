//! From a parsed spec to a validated DAG: each step's stage looked up and its parameters
//! checked, inputs resolved (a step reads the previous step unless it names another),
//! cycles and order problems refused, and for each output the chain of steps it needs.

use std::fmt::Write as _;
use std::path::Path;

use crate::error::{EngineError, Result};
use crate::params::{closest, Params};
use crate::registry::{self, Configured, StageDef, Upstream};
use crate::spec::{PipelineSpec, StepSpec};

/// A step ready to run.
pub struct PlannedStep {
    /// The step as written.
    pub spec: StepSpec,
    /// Its stage.
    pub def: &'static StageDef,
    /// Its checked configuration.
    pub configured: Configured,
    /// Index of the step it reads; None = the source.
    pub input: Option<usize>,
}

/// An output and the steps, source first, whose stream it writes.
pub struct PlannedOutput {
    /// The output as written.
    pub spec: crate::spec::OutputSpec,
    /// Step indices from the source to the written step.
    pub chain: Vec<usize>,
    /// A plot's checked options.
    pub plot: Option<crate::outputs::PlotOptions>,
}

/// Outputs that read the same step: one run of the chain writes all of them (the globals
/// run once; a plot and a Parquet table come from the same frame as the h5ad).
pub struct Target {
    /// Step indices from the source to the written step (as [`PlannedOutput::chain`]).
    pub chain: Vec<usize>,
    /// Indices into [`Plan::outputs`].
    pub outputs: Vec<usize>,
}

/// A validated pipeline.
pub struct Plan {
    /// The spec it came from.
    pub spec: PipelineSpec,
    /// Steps in file order.
    pub steps: Vec<PlannedStep>,
    /// Outputs in file order.
    pub outputs: Vec<PlannedOutput>,
    /// Outputs grouped by the step they read, in order of first appearance.
    pub targets: Vec<Target>,
}

fn err(file: &Path, line: u64, column: u64, message: String) -> EngineError {
    EngineError::Spec { file: file.to_path_buf(), line, column, message }
}

impl Plan {
    /// Validate a spec before any data is read.
    pub fn new(spec: PipelineSpec) -> Result<Self> {
        let file = spec.file.clone();
        let n = spec.steps.len();
        // Resolve inputs.
        let mut inputs: Vec<Option<usize>> = Vec::with_capacity(n);
        for (i, s) in spec.steps.iter().enumerate() {
            let input = match &s.input {
                Some(id) => {
                    let found = spec.steps.iter().position(|o| o.id == id.value);
                    match found {
                        Some(j) if j == i => return Err(err(&file, id.line, id.column, format!("step {} reads itself (a cycle)", s.id))),
                        Some(j) => Some(j),
                        None => {
                            let ids: Vec<&str> = spec.steps.iter().map(|o| o.id.as_str()).collect();
                            let hint = closest(&id.value, &ids).map(|c| format!(" (did you mean {c}?)")).unwrap_or_default();
                            return Err(err(&file, id.line, id.column, format!("input {:?} is not a step id{hint}; ids: {}", id.value, ids.join(", "))));
                        }
                    }
                }
                None => i.checked_sub(1),
            };
            inputs.push(input);
        }
        // Cycles: follow inputs from each step; a path longer than n revisits a step.
        for start in 0..n {
            let mut seen = vec![false; n];
            let mut cur = Some(start);
            let mut path = Vec::new();
            while let Some(c) = cur {
                if seen[c] {
                    path.push(spec.steps[c].id.clone());
                    let s = &spec.steps[start];
                    return Err(err(&file, s.line, 0, format!("steps form a cycle: {}", path.join(" ← "))));
                }
                seen[c] = true;
                path.push(spec.steps[c].id.clone());
                cur = inputs[c];
            }
        }
        // Build steps in dependency order so each sees what its upstream did.
        let mut order: Vec<usize> = Vec::with_capacity(n);
        let mut placed = vec![false; n];
        while order.len() < n {
            for i in 0..n {
                if !placed[i] && inputs[i].is_none_or(|j| placed[j]) {
                    placed[i] = true;
                    order.push(i);
                }
            }
        }
        let mut ups: Vec<Option<Upstream>> = (0..n).map(|_| None).collect();
        let mut configured: Vec<Option<(&'static StageDef, Configured)>> = (0..n).map(|_| None).collect();
        for &i in &order {
            let s = &spec.steps[i];
            let def = registry::stage(&s.stage.value).ok_or_else(|| {
                let names: Vec<&str> = registry::STAGES.iter().map(|d| d.name).collect();
                let hint = closest(&s.stage.value, &names).map(|c| format!(" (did you mean {c}?)")).unwrap_or_default();
                err(&file, s.stage.line, s.stage.column, format!("unknown stage {:?}{hint}; stages: {}", s.stage.value, names.join(", ")))
            })?;
            let mut up = inputs[i].and_then(|j| ups[j].clone()).unwrap_or_default();
            let mut params = Params::new(s, &file).with_seed(spec.seed);
            params.check_known(def.params)?;
            let c = (def.build)(&mut params, &mut up)?;
            params.finish(def.params)?;
            match (&up.global, c.global) {
                (Some(g), false) => {
                    return Err(err(&file, s.line, 0, format!(
                        "{} streams over cells and cannot follow {g}, which works on the whole dataset in memory; put streaming stages before neighbors, umap and leiden",
                        s.stage.value
                    )));
                }
                (None, true) => up.global = Some(s.id.clone()),
                _ => {}
            }
            ups[i] = Some(up);
            configured[i] = Some((def, c));
        }
        let mut steps = Vec::with_capacity(n);
        for (i, (s, c)) in spec.steps.iter().zip(configured).enumerate() {
            let (def, configured) = c.ok_or_else(|| err(&file, s.line, 0, format!("step {} could not be configured", s.id)))?;
            steps.push(PlannedStep { spec: s.clone(), def, configured, input: inputs[i] });
        }
        // Outputs.
        if spec.outputs.is_empty() {
            return Err(err(&file, 0, 0, "the pipeline has no outputs; add e.g.\noutputs:\n  - h5ad: results/out.h5ad".into()));
        }
        let mut outputs = Vec::new();
        let mut paths = std::collections::BTreeSet::new();
        for o in &spec.outputs {
            if !paths.insert(o.path.clone()) {
                return Err(err(&file, o.line, 0, format!("two outputs write {}", o.path.display())));
            }
            let last = match &o.from {
                Some(id) => spec.steps.iter().position(|s| s.id == id.value).ok_or_else(|| {
                    err(&file, id.line, id.column, format!("output reads {:?}, which is not a step id", id.value))
                })?,
                None => n - 1,
            };
            let mut chain = vec![last];
            while let Some(j) = steps[*chain.last().unwrap_or(&last)].input {
                chain.push(j);
            }
            chain.reverse();
            let plot = match o.kind {
                crate::spec::OutputKind::Plot => Some(crate::outputs::plot_params(o, &file)?),
                _ => None,
            };
            outputs.push(PlannedOutput { spec: o.clone(), chain, plot });
        }
        let mut targets: Vec<Target> = Vec::new();
        for (i, o) in outputs.iter().enumerate() {
            match targets.iter_mut().find(|t| t.chain == o.chain) {
                Some(t) => t.outputs.push(i),
                None => targets.push(Target { chain: o.chain.clone(), outputs: vec![i] }),
            }
        }
        Ok(Plan { spec, steps, outputs, targets })
    }

    /// The DAG as text, for `atlasflow validate`.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "pipeline {} (seed {})", self.spec.name, self.spec.seed);
        let _ = writeln!(s, "source: {}", self.spec.source.describe());
        for (i, st) in self.steps.iter().enumerate() {
            let from = match st.input {
                Some(j) if j + 1 != i => format!("  [reads {}]", self.steps[j].spec.id),
                _ => String::new(),
            };
            let _ = writeln!(s, "  {:>2}. {:<24} {}{}", i + 1, st.spec.id, st.configured.summary, from);
        }
        let _ = writeln!(s, "outputs:");
        for o in &self.outputs {
            let names: Vec<&str> = o.chain.iter().map(|&i| self.steps[i].spec.id.as_str()).collect();
            let _ = writeln!(s, "  {} {} ← source → {}", o.spec.kind.key(), o.spec.path.display(), names.join(" → "));
        }
        s
    }
}
