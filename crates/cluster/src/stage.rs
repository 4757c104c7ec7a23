//! The `leiden` and `louvain` global stages: read the neighbor graph from obsp, cluster
//! (optionally only the cells of some categories), write the categorical obs column and
//! `uns[key_added] = {params: …}` as scanpy does.

use arrow::array::{Array, AsArray, StringArray};
use arrow::datatypes::Int32Type;
use atlasflow_core::{
    CellFrame, FrameKey, GlobalResult, GlobalStage, Graph, Result, StageError, Uns,
};

use crate::labels::{categorical, number_by_first_appearance};
use crate::network::subgraph;
use crate::optimise::{leiden_run, louvain};
use crate::params::{
    LeidenFlavor, LeidenParams, LouvainFlavor, LouvainParams, check_resolution, connectivities_key,
    output_key,
};

/// Stage name of Leiden in errors.
pub const LEIDEN: &str = "leiden";
/// Stage name of Louvain in errors.
pub const LOUVAIN: &str = "louvain";

/// `sc.tl.leiden` as a global stage.
#[derive(Clone, Debug)]
pub struct Leiden {
    params: LeidenParams,
    graph_key: String,
    key: String,
}

impl Leiden {
    /// Validate the parameters (naming the one at fault).
    pub fn new(params: LeidenParams) -> Result<Self> {
        check_resolution(LEIDEN, params.resolution)?;
        let graph_key = connectivities_key(LEIDEN, &params.neighbors_key, &params.obsp)?;
        let key = output_key(LEIDEN, &params.key_added, "leiden", &params.restrict_to)?;
        Ok(Leiden {
            params,
            graph_key,
            key,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &LeidenParams {
        &self.params
    }

    /// The obs column and uns key written (`key_added`, with "_R" when restricting).
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl GlobalStage for Leiden {
    fn reads(&self) -> Vec<FrameKey> {
        reads(&self.graph_key, &self.params.restrict_to)
    }

    fn writes(&self) -> Vec<FrameKey> {
        vec![
            FrameKey::Obs(self.key.clone()),
            FrameKey::Uns(self.key.clone()),
        ]
    }

    fn memory_bytes(&self, frame: &CellFrame) -> usize {
        memory_bytes(frame, &self.graph_key)
    }

    fn run(&self, frame: &CellFrame) -> Result<GlobalResult> {
        let p = &self.params;
        let run = std::cell::Cell::new((0usize, true));
        let labels = cluster(LEIDEN, frame, &self.graph_key, &p.restrict_to, |g| {
            let r = leiden_run(
                g,
                p.resolution,
                p.n_iterations,
                p.random_state,
                p.use_weights,
            )?;
            run.set((r.iterations, r.converged));
            let m = r.membership;
            Ok(match p.flavor {
                LeidenFlavor::Leidenalg => m,
                LeidenFlavor::Igraph => number_by_first_appearance(&m),
            })
        })?;
        let uns = Uns::map().with(
            "params",
            Uns::map()
                .with("resolution", Uns::Float(p.resolution))
                .with("random_state", Uns::Int(p.random_state as i64))
                .with("n_iterations", Uns::Int(p.n_iterations)),
        );
        // Not in scanpy's uns: how many iterations ran, and whether n_iterations = -1
        // stopped because an iteration changed nothing or because MAX_ITERATIONS ran out.
        let (iterations, converged) = run.get();
        let uns = uns
            .with("iterations_run", Uns::Int(iterations as i64))
            .with("converged", Uns::Bool(converged));
        Ok(GlobalResult {
            obs: vec![(self.key.clone(), categorical(&labels)?)],
            uns: vec![(self.key.clone(), uns)],
            ..Default::default()
        })
    }
}

/// `sc.tl.louvain` as a global stage (flavor "vtraag" by default: resolution honoured,
/// clusters numbered by size).
#[derive(Clone, Debug)]
pub struct Louvain {
    params: LouvainParams,
    graph_key: String,
    key: String,
}

impl Louvain {
    /// Validate the parameters (naming the one at fault).
    pub fn new(params: LouvainParams) -> Result<Self> {
        if let Some(r) = params.resolution {
            check_resolution(LOUVAIN, r)?;
        }
        let graph_key = connectivities_key(LOUVAIN, &params.neighbors_key, &params.obsp)?;
        let key = output_key(LOUVAIN, &params.key_added, "louvain", &params.restrict_to)?;
        Ok(Louvain {
            params,
            graph_key,
            key,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &LouvainParams {
        &self.params
    }

    /// The obs column and uns key written (`key_added`, with "_R" when restricting).
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl GlobalStage for Louvain {
    fn reads(&self) -> Vec<FrameKey> {
        reads(&self.graph_key, &self.params.restrict_to)
    }

    fn writes(&self) -> Vec<FrameKey> {
        vec![
            FrameKey::Obs(self.key.clone()),
            FrameKey::Uns(self.key.clone()),
        ]
    }

    fn memory_bytes(&self, frame: &CellFrame) -> usize {
        memory_bytes(frame, &self.graph_key)
    }

    fn run(&self, frame: &CellFrame) -> Result<GlobalResult> {
        let p = &self.params;
        let labels = cluster(LOUVAIN, frame, &self.graph_key, &p.restrict_to, |g| {
            Ok(match p.flavor {
                LouvainFlavor::Vtraag => louvain(
                    g,
                    p.resolution.unwrap_or(1.0),
                    p.random_state,
                    p.use_weights,
                )?,
                LouvainFlavor::Igraph => {
                    number_by_first_appearance(&louvain(g, 1.0, p.random_state, p.use_weights)?)
                }
            })
        })?;
        let uns = Uns::map().with(
            "params",
            Uns::map()
                .with("resolution", p.resolution.map_or(Uns::Null, Uns::Float))
                .with("random_state", Uns::Int(p.random_state as i64)),
        );
        Ok(GlobalResult {
            obs: vec![(self.key.clone(), categorical(&labels)?)],
            uns: vec![(self.key.clone(), uns)],
            ..Default::default()
        })
    }
}

fn reads(graph_key: &str, restrict_to: &Option<(String, Vec<String>)>) -> Vec<FrameKey> {
    let mut r = vec![FrameKey::Obsp(graph_key.to_string())];
    if let Some((key, _)) = restrict_to {
        r.push(FrameKey::Obs(key.clone()));
    }
    r
}

/// The optimiser's network (about 24 bytes per stored edge, twice, plus the first
/// aggregate) and per-cell state.
fn memory_bytes(frame: &CellFrame, graph_key: &str) -> usize {
    let nnz = frame.obsp(graph_key).map_or(0, Graph::nnz);
    nnz * 2 * 24 * 2 + frame.n_cells * 96
}

/// Find the graph, restrict it if asked, run `kernel`, and give every cell its label string.
fn cluster(
    stage: &str,
    frame: &CellFrame,
    graph_key: &str,
    restrict_to: &Option<(String, Vec<String>)>,
    kernel: impl Fn(&Graph) -> Result<Vec<u32>>,
) -> Result<Vec<String>> {
    let graph = frame.obsp(graph_key).ok_or_else(|| {
        StageError::data(
            stage,
            format!("obsp has no '{graph_key}': run neighbors first (or name the graph with obsp / neighbors_key)"),
        )
    })?;
    if graph.n != frame.n_cells {
        return Err(StageError::data(
            stage,
            format!(
                "obsp '{graph_key}' is {0} × {0} but there are {1} cells",
                graph.n, frame.n_cells
            ),
        ));
    }
    match restrict_to {
        None => Ok(kernel(graph)?.iter().map(|c| c.to_string()).collect()),
        Some((key, categories)) => {
            let (old, keep) = restrict_labels(stage, frame, key, categories)?;
            let sub = subgraph(graph, &keep);
            let groups = kernel(&sub)?;
            let prefix = format!("{},", categories.join("-"));
            let mut groups = groups.into_iter();
            let mut labels = Vec::with_capacity(old.len());
            for (o, k) in old.into_iter().zip(keep) {
                labels.push(match (k, if k { groups.next() } else { None }) {
                    (true, Some(g)) => format!("{prefix}{g}"),
                    _ => o,
                });
            }
            Ok(labels)
        }
    }
}

/// The labels of obs column `key` as strings (missing → "nan", as pandas' `astype("U")`
/// writes it) and which cells are in `categories`, checked as scanpy's
/// `restrict_adjacency` checks them.
fn restrict_labels(
    stage: &str,
    frame: &CellFrame,
    key: &str,
    categories: &[String],
) -> Result<(Vec<String>, Vec<bool>)> {
    let col = frame.obs(key).ok_or_else(|| {
        StageError::param(stage, "restrict_to", format!("obs has no column '{key}'"))
    })?;
    let dict = col.as_dictionary_opt::<Int32Type>().ok_or_else(|| {
        StageError::param(
            stage,
            "restrict_to",
            format!("obs column '{key}' is {}, not categorical", col.data_type()),
        )
    })?;
    let values: &StringArray = dict.values().as_string_opt::<i32>().ok_or_else(|| {
        StageError::param(
            stage,
            "restrict_to",
            format!("categories of obs column '{key}' are not strings"),
        )
    })?;
    let names: Vec<&str> = (0..values.len()).map(|i| values.value(i)).collect();
    for c in categories {
        if !names.contains(&c.as_str()) {
            return Err(StageError::param(
                stage,
                "restrict_to",
                format!("'{c}' is not a valid category for '{key}'"),
            ));
        }
    }
    let keys = dict.keys();
    let mut old = Vec::with_capacity(keys.len());
    let mut keep = Vec::with_capacity(keys.len());
    for i in 0..keys.len() {
        if keys.is_null(i) {
            old.push("nan".to_string());
            keep.push(false);
        } else {
            let code = keys.value(i);
            let name = usize::try_from(code)
                .ok()
                .and_then(|c| names.get(c))
                .ok_or_else(|| {
                    StageError::data(
                        stage,
                        format!("obs column '{key}' has code {code} beyond its categories"),
                    )
                })?;
            old.push(name.to_string());
            keep.push(categories.iter().any(|c| c == name));
        }
    }
    Ok((old, keep))
}
