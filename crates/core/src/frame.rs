//! The in-memory frame of whole-dataset results that global stages (neighbors, UMAP,
//! Leiden) read and extend: per-cell obs columns, embeddings (obsm), cell × cell graphs
//! (obsp) and `uns`. It is small next to X: tens of floats per cell.

use arrow::array::ArrayRef;

use crate::uns::Uns;

/// A dense per-cell embedding (obsm), e.g. `X_pca` or `X_umap`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Embedding {
    /// Row-major values, `n_cells × width`.
    pub values: Vec<f32>,
    /// Number of columns.
    pub width: usize,
}

impl Embedding {
    /// Number of cells (rows).
    pub fn n_rows(&self) -> usize {
        if self.width == 0 { 0 } else { self.values.len() / self.width }
    }
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.width..(i + 1) * self.width]
    }
}

/// A square cell × cell sparse graph in CSR (obsp), e.g. `distances` or `connectivities`.
/// Values are held as f64 and written as float32 when [`Graph::float32`] is set, so that the
/// h5ad carries scanpy's dtype for each graph (float64 brute-force distances, float32
/// connectivities).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    /// Number of cells (rows and columns).
    pub n: usize,
    /// Row offsets, `n + 1` entries starting at 0.
    pub indptr: Vec<u64>,
    /// Column (cell) index of each stored value; within a row in the order the producer
    /// defines (scanpy keeps kNN distances in neighbour order, connectivities sorted).
    pub indices: Vec<u32>,
    /// The stored values.
    pub values: Vec<f64>,
    /// Write as float32 rather than float64.
    pub float32: bool,
}

impl Graph {
    /// The (columns, values) of row `i`.
    pub fn row(&self, i: usize) -> (&[u32], &[f64]) {
        let (a, b) = (self.indptr[i] as usize, self.indptr[i + 1] as usize);
        (&self.indices[a..b], &self.values[a..b])
    }
    /// Number of stored values.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }
    /// Bytes held.
    pub fn size_bytes(&self) -> usize {
        self.indptr.len() * 8 + self.indices.len() * 4 + self.values.len() * 8
    }
}

/// Names a thing in the frame, for [`crate::GlobalStage::reads`] and `writes`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrameKey {
    /// An obs column.
    Obs(String),
    /// An embedding.
    Obsm(String),
    /// A graph.
    Obsp(String),
    /// A top-level `uns` entry.
    Uns(String),
}

impl std::fmt::Display for FrameKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameKey::Obs(k) => write!(f, "obs column '{k}'"),
            FrameKey::Obsm(k) => write!(f, "obsm '{k}'"),
            FrameKey::Obsp(k) => write!(f, "obsp '{k}'"),
            FrameKey::Uns(k) => write!(f, "uns '{k}'"),
        }
    }
}

/// The cells after the streamed stages, as global stages see them.
#[derive(Clone, Debug, Default)]
pub struct CellFrame {
    /// Number of cells.
    pub n_cells: usize,
    /// Obs columns, one value per cell in stream order (including `cell_id`).
    pub obs: Vec<(String, ArrayRef)>,
    /// Embeddings.
    pub obsm: Vec<(String, Embedding)>,
    /// Graphs.
    pub obsp: Vec<(String, Graph)>,
    /// The `uns` tree (a mapping).
    pub uns: Uns,
}

impl CellFrame {
    /// The obs column `key`.
    pub fn obs(&self, key: &str) -> Option<&ArrayRef> {
        self.obs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    /// The embedding `key`.
    pub fn obsm(&self, key: &str) -> Option<&Embedding> {
        self.obsm.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    /// The graph `key`.
    pub fn obsp(&self, key: &str) -> Option<&Graph> {
        self.obsp.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    /// Add a global stage's result, replacing entries of the same name (as scanpy
    /// overwrites `adata.obsm[key]` when a stage runs twice).
    pub fn apply(&mut self, result: GlobalResult) {
        fn put<T>(list: &mut Vec<(String, T)>, key: String, value: T) {
            match list.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => list.push((key, value)),
            }
        }
        for (k, v) in result.obs {
            put(&mut self.obs, k, v);
        }
        for (k, v) in result.obsm {
            put(&mut self.obsm, k, v);
        }
        for (k, v) in result.obsp {
            put(&mut self.obsp, k, v);
        }
        if !matches!(self.uns, Uns::Map(_)) {
            self.uns = Uns::map();
        }
        for (k, v) in result.uns {
            self.uns.insert(&k, v);
        }
    }
    /// Bytes held by embeddings and graphs (obs columns are counted by the stream).
    pub fn size_bytes(&self) -> usize {
        self.obsm.iter().map(|(_, e)| e.values.len() * 4).sum::<usize>()
            + self.obsp.iter().map(|(_, g)| g.size_bytes()).sum::<usize>()
    }
}

/// What a global stage returns: what to add to the frame and the output.
#[derive(Default)]
pub struct GlobalResult {
    /// New obs columns, one value per cell in stream order (e.g. `leiden`, categorical).
    pub obs: Vec<(String, ArrayRef)>,
    /// New embeddings (e.g. `X_umap`).
    pub obsm: Vec<(String, Embedding)>,
    /// New graphs (e.g. `distances`, `connectivities`).
    pub obsp: Vec<(String, Graph)>,
    /// New top-level `uns` entries (e.g. `neighbors`, `umap`, `leiden`).
    pub uns: Vec<(String, Uns)>,
}
