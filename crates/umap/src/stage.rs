//! The `umap` global stage (scanpy's `sc.tl.umap`) on the in-memory frame.

use atlasflow_core::{CellFrame, Embedding, FrameKey, GlobalResult, GlobalStage, Result, StageError, Uns};

use crate::STAGE;
use crate::embed::umap_embedding_with_init;
use crate::params::{InitPos, UmapParams};

/// The `umap` stage: reads obsp `connectivities` (or `<neighbors_key>_connectivities`) and
/// writes obsm `X_umap` (f32, n × n_components) and uns `umap = {params: {a, b,
/// [random_state]}}` (both keys become `key_added` when set, as in scanpy).
#[derive(Clone, Debug)]
pub struct Umap {
    /// The parameters.
    pub params: UmapParams,
}

impl Umap {
    /// A stage with validated parameters.
    pub fn new(params: UmapParams) -> Result<Self> {
        params.validate()?;
        Ok(Umap { params })
    }

    /// The representation the neighbors were computed on: `uns[neighbors_key].params.use_rep`
    /// if recorded, else `X_pca`, restricted to its first `n_pcs` columns if recorded. None
    /// when it is not in the frame (e.g. `use_rep="X"`): the multi-component layout then
    /// places components without it.
    fn representation(&self, frame: &CellFrame) -> Option<Embedding> {
        let nparams = frame.uns.get(&self.params.neighbors_key).and_then(|u| u.get("params"));
        let key = match nparams.and_then(|p| p.get("use_rep")) {
            Some(Uns::Str(s)) => s.clone(),
            _ => "X_pca".to_string(),
        };
        let rep = frame.obsm(&key)?;
        let n_pcs = match nparams.and_then(|p| p.get("n_pcs")) {
            Some(Uns::Int(k)) if *k > 0 && (*k as usize) < rep.width => *k as usize,
            _ => return Some(rep.clone()),
        };
        let values = (0..rep.n_rows()).flat_map(|i| rep.row(i)[..n_pcs].to_vec()).collect();
        Some(Embedding { values, width: n_pcs })
    }
}

impl GlobalStage for Umap {
    fn reads(&self) -> Vec<FrameKey> {
        let mut keys = vec![FrameKey::Obsp(self.params.connectivities_key())];
        if let InitPos::Obsm(k) = &self.params.init_pos {
            keys.push(FrameKey::Obsm(k.clone()));
        }
        keys
    }

    fn writes(&self) -> Vec<FrameKey> {
        vec![FrameKey::Obsm(self.params.obsm_key()), FrameKey::Uns(self.params.uns_key())]
    }

    fn memory_bytes(&self, frame: &CellFrame) -> usize {
        let n = frame.n_cells;
        let nnz = frame.obsp(&self.params.connectivities_key()).map_or(0, |g| g.nnz());
        let dim = self.params.n_components;
        // Pruned CSR + per-edge schedules and SGD copies (~50 B/edge, twice for the f64
        // Laplacian copy), Lanczos basis (2 × 48 f64 vectors), positions, snapshot, rng.
        nnz * 100 + n * (96 * 8 + dim * 4 * 4 + 24 + 16)
    }

    fn run(&self, frame: &CellFrame) -> Result<GlobalResult> {
        // scanpy follows uns[neighbors_key]["connectivities_key"]; the naming rule otherwise.
        let key = match frame
            .uns
            .get(&self.params.neighbors_key)
            .and_then(|u| u.get("connectivities_key"))
        {
            Some(Uns::Str(k)) => k.clone(),
            _ => self.params.connectivities_key(),
        };
        let graph = frame.obsp(&key).ok_or_else(|| {
            StageError::data(STAGE, format!("obsp '{key}' not found: run neighbors first"))
        })?;
        if graph.n != frame.n_cells {
            return Err(StageError::data(
                STAGE,
                format!("obsp '{key}' is {} × {}, the frame has {} cells", graph.n, graph.n, frame.n_cells),
            ));
        }
        let init = match &self.params.init_pos {
            InitPos::Obsm(k) => Some(frame.obsm(k).ok_or_else(|| {
                StageError::param(STAGE, "init_pos", format!("obsm '{k}' not found"))
            })?),
            _ => None,
        };
        let rep = self.representation(frame);
        let emb = umap_embedding_with_init(graph, rep.as_ref(), init, &self.params)?;
        let (a, b) = self.params.ab()?;
        let mut params = Uns::map().with("a", Uns::Float(a)).with("b", Uns::Float(b));
        if self.params.random_state != 0 {
            params.insert("random_state", Uns::Int(self.params.random_state as i64));
        }
        Ok(GlobalResult {
            obsm: vec![(self.params.obsm_key(), emb)],
            uns: vec![(self.params.uns_key(), Uns::map().with("params", params))],
            ..Default::default()
        })
    }
}
