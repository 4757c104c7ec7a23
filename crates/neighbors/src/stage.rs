//! The `neighbors` global stage: kNN search on an embedding, then scanpy's graphs and uns.

use atlasflow_core::{
    CellFrame, FrameKey, GlobalResult, GlobalStage, Graph, Result, StageError, Uns,
};

use crate::exact::exact_knn;
use crate::gauss::gauss_connectivities;
use crate::graph::distances_graph;
use crate::knn::{Knn, Metric, Points, STAGE};
use crate::nndescent::{NnDescentParams, nn_descent, round_half_even};
use crate::params::{Method, NeighborsParams, Transformer};
use crate::umap::fuzzy_simplicial_set;

/// scanpy's exact-search bound for euclidean data.
pub const EXACT_EUCLIDEAN_BELOW: usize = 8192;
/// scanpy's exact-search bound for any metric.
pub const EXACT_ANY_BELOW: usize = 4096;

/// The search a run will use.
#[derive(Clone, Debug, PartialEq)]
pub enum Search {
    /// Brute force, `k` columns (self included).
    Exact {
        /// Columns (self included).
        k: usize,
    },
    /// NN-descent with these settings (`k` = n_neighbors + 1, scanpy's transformer output).
    Approximate(NnDescentParams),
}

/// What `sc.pp.neighbors` computes, before it is put in a frame.
#[derive(Clone, Debug)]
pub struct NeighborsOutput {
    /// The kNN the search returned (self first).
    pub knn: Knn,
    /// `obsp["distances"]` as scanpy stores it.
    pub distances: Graph,
    /// `obsp["connectivities"]`.
    pub connectivities: Graph,
    /// n_neighbors after scanpy's small-data adjustment.
    pub n_neighbors: usize,
}

/// scanpy's `sc.pp.neighbors` as a global stage: reads obsm `use_rep` (default `X_pca`),
/// writes obsp `distances` and `connectivities` (or `<key_added>_…`) and uns `neighbors`
/// (or uns[key_added]).
#[derive(Clone, Debug)]
pub struct Neighbors {
    /// The validated parameters.
    pub params: NeighborsParams,
}

impl Neighbors {
    /// Validate `params` (names the offending parameter).
    pub fn new(params: NeighborsParams) -> Result<Self> {
        params.validate()?;
        Ok(Neighbors { params })
    }

    /// n_neighbors after scanpy's adjustment: 1 + ⌊n/2⌋ when it exceeds n.
    pub fn effective_n_neighbors(&self, n: usize) -> usize {
        if self.params.n_neighbors > n {
            1 + n / 2
        } else {
            self.params.n_neighbors
        }
    }

    /// The search scanpy's rule (or the `transformer` override) picks for `n` cells.
    pub fn search(&self, n: usize) -> Search {
        let k = self.effective_n_neighbors(n);
        let exact = match self.params.transformer {
            Transformer::Sklearn => true,
            Transformer::Pynndescent => false,
            Transformer::Auto => {
                (self.params.metric == Metric::Euclidean && n < EXACT_EUCLIDEAN_BELOW)
                    || n < EXACT_ANY_BELOW
            }
        };
        if exact {
            return Search::Exact { k };
        }
        let mut p = NnDescentParams::scanpy(n, (k + 1).min(n), self.params.random_state);
        if self.params.transformer == Transformer::Pynndescent {
            // pynndescent's own defaults, which scanpy leaves in place for an explicit name.
            p.n_trees = (5 + round_half_even((n as f64).powf(0.25))).min(32);
        }
        Search::Approximate(p)
    }

    /// The embedding columns searched, checked.
    pub fn points<'a>(&self, frame: &'a CellFrame) -> Result<Points<'a>> {
        let rep = self.params.rep();
        let emb = frame.obsm(rep).ok_or_else(|| {
            StageError::data(
                STAGE,
                format!("obsm '{rep}' not found: compute it first (use_rep)"),
            )
        })?;
        let n = emb.n_rows();
        if n != frame.n_cells {
            return Err(StageError::data(
                STAGE,
                format!("obsm '{rep}' has {n} rows for {} cells", frame.n_cells),
            ));
        }
        let d = match self.params.n_pcs {
            Some(p) if p > emb.width => {
                return Err(StageError::param(
                    STAGE,
                    "n_pcs",
                    format!("{p} exceeds the {} columns of obsm '{rep}'", emb.width),
                ));
            }
            Some(p) => p,
            None => emb.width,
        };
        Points::new(&emb.values, n, d, emb.width)
    }

    /// Search and build both graphs on `points`.
    pub fn compute(&self, points: &Points<'_>) -> Result<NeighborsOutput> {
        let n = points.n;
        if n < 2 {
            return Err(StageError::data(
                STAGE,
                format!("{n} cells: neighbors needs at least 2"),
            ));
        }
        let n_neighbors = self.effective_n_neighbors(n);
        let knn = match self.search(n) {
            Search::Exact { k } => exact_knn(points, k, self.params.metric)?,
            Search::Approximate(p) => nn_descent(points, self.params.metric, &p)?,
        };
        let distances = distances_graph(&knn);
        let connectivities = match self.params.method {
            // scanpy feeds umap the search's raw table (self first), cut to n_neighbors
            // columns, not the stored distance graph.
            Method::Umap => fuzzy_simplicial_set(
                &knn,
                n_neighbors,
                self.params.set_op_mix_ratio as f32,
                self.params.local_connectivity as f32,
            )?,
            Method::Gauss => gauss_connectivities(&distances, n_neighbors)?,
        };
        Ok(NeighborsOutput {
            knn,
            distances,
            connectivities,
            n_neighbors,
        })
    }

    /// `uns["neighbors"]` (or uns[key_added]) as scanpy writes it.
    pub fn uns(&self, n_neighbors: usize) -> Uns {
        let (_, dist_key, conn_key) = self.params.keys();
        let mut params = Uns::map()
            .with("n_neighbors", Uns::Int(n_neighbors as i64))
            .with("method", Uns::Str(self.params.method.name().into()))
            .with("random_state", Uns::Int(self.params.random_state as i64))
            .with("metric", Uns::Str(self.params.metric.name().into()));
        if let Some(rep) = &self.params.use_rep {
            params = params.with("use_rep", Uns::Str(rep.clone()));
        }
        if let Some(p) = self.params.n_pcs {
            params = params.with("n_pcs", Uns::Int(p as i64));
        }
        Uns::map()
            .with("connectivities_key", Uns::Str(conn_key))
            .with("distances_key", Uns::Str(dist_key))
            .with("params", params)
    }
}

/// Peak bytes of a run on `n` cells of `d` columns with `k` neighbours (self included):
/// the data copy, the kNN, both graphs, and the search's own working set.
pub fn memory_estimate(n: usize, d: usize, k: usize, search: &Search) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let graphs = (n + 1) * 8 * 2 + n * k * 12 /* distances */ + n * 2 * k * 12 /* connectivities */;
    let build = n * 2 * k * 16; // per-row vectors while building connectivities
    match search {
        Search::Exact { k } => {
            let block = (crate::exact::BLOCK_ENTRIES / n.max(1)).clamp(1, 256) * n * 8;
            n * d * 8 + n * 8 + Knn::bytes(n, *k) + graphs + build + threads * (block + 1024)
        }
        Search::Approximate(p) => {
            let hk = p.heap_k.max(p.k);
            let c = p.max_candidates;
            let heaps = n * hk * 9;
            // The sampled candidates (flat, per cell), the reverse-edge lists of one chunk of
            // receivers (2·hk entries of 12 bytes per receiver on average; twice that allowed
            // for hubs), then the offers of one block at worst (every pair offered both ways)
            // and their grouped copy.
            let chunk = crate::nndescent::CANDIDATE_CHUNK.min(n);
            let candidates = 2 * n * (c.min(255) * 4 + 1) + (2 * n * hk).min(2 * chunk * 2 * hk) * 12 + (chunk + 1) * 16 + (n + 1) * 8;
            let offers =
                2 * crate::nndescent::BLOCK * (c * c.saturating_sub(1) / 2 + c * c) * (12 + 8);
            let trees = crate::nndescent::TREE_BATCH.min(p.n_trees) * n * 8;
            let refine = if p.n_refine > 0 { n * hk * 4 } else { 0 };
            n * d * 4 * 2
                + heaps
                + (candidates + offers + refine).max(trees)
                + Knn::bytes(n, p.k)
                + graphs
                + build
        }
    }
}

impl GlobalStage for Neighbors {
    fn reads(&self) -> Vec<FrameKey> {
        vec![FrameKey::Obsm(self.params.rep().to_string())]
    }

    fn writes(&self) -> Vec<FrameKey> {
        let (uns, dist, conn) = self.params.keys();
        vec![
            FrameKey::Obsp(dist),
            FrameKey::Obsp(conn),
            FrameKey::Uns(uns),
        ]
    }

    fn memory_bytes(&self, frame: &CellFrame) -> usize {
        let n = frame.n_cells;
        let d = frame
            .obsm(self.params.rep())
            .map(|e| self.params.n_pcs.unwrap_or(e.width).min(e.width))
            .unwrap_or(50);
        memory_estimate(n, d, self.effective_n_neighbors(n).max(1), &self.search(n))
    }

    fn run(&self, frame: &CellFrame) -> Result<GlobalResult> {
        let points = self.points(frame)?;
        let out = self.compute(&points)?;
        let (uns_key, dist_key, conn_key) = self.params.keys();
        Ok(GlobalResult {
            obsp: vec![(dist_key, out.distances), (conn_key, out.connectivities)],
            uns: vec![(uns_key, self.uns(out.n_neighbors))],
            ..Default::default()
        })
    }
}
