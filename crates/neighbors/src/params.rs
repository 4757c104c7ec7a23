//! The parameters of `sc.pp.neighbors`, with scanpy's names and defaults.

use atlasflow_core::{Result, StageError};

use crate::knn::{Metric, STAGE};

/// How connectivities are computed from the kNN (scanpy's `method`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Method {
    /// umap-learn's fuzzy simplicial set (scanpy's default).
    #[default]
    Umap,
    /// Gaussian kernel (Haghverdi et al. 2016).
    Gauss,
}

impl Method {
    /// Parse scanpy's name.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "umap" => Ok(Method::Umap),
            "gauss" => Ok(Method::Gauss),
            other => Err(StageError::param(
                STAGE,
                "method",
                format!("'{other}' is not one of umap, gauss"),
            )),
        }
    }
    /// scanpy's name, as recorded in `uns`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Umap => "umap",
            Method::Gauss => "gauss",
        }
    }
}

/// Which kNN search runs (scanpy's `transformer`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transformer {
    /// scanpy's rule (`transformer=None`): exact when (euclidean and n < 8,192) or
    /// n < 4,096, NN-descent otherwise with umap's tree and iteration counts.
    #[default]
    Auto,
    /// Exact brute force (`"sklearn"`).
    Sklearn,
    /// NN-descent with pynndescent's own defaults (`"pynndescent"`): n_trees =
    /// min(32, 5 + round(n^¼)), n_iters = max(5, round(log2 n)).
    Pynndescent,
}

impl Transformer {
    /// Parse scanpy's name (`None`/`"auto"` for the default rule).
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "auto" | "None" | "none" | "" => Ok(Transformer::Auto),
            "sklearn" => Ok(Transformer::Sklearn),
            "pynndescent" => Ok(Transformer::Pynndescent),
            other => Err(StageError::param(
                STAGE,
                "transformer",
                format!("'{other}' is not one of sklearn, pynndescent (or none for scanpy's rule)"),
            )),
        }
    }
}

/// `sc.pp.neighbors` parameters; `Default` gives scanpy's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct NeighborsParams {
    /// `n_neighbors` (15): neighbours per cell, the cell itself included.
    pub n_neighbors: usize,
    /// `n_pcs`: use only the first n_pcs columns of the representation (all when None).
    pub n_pcs: Option<usize>,
    /// `use_rep`: the obsm key to search on (`X_pca` when None).
    pub use_rep: Option<String>,
    /// `metric` (euclidean).
    pub metric: Metric,
    /// `method` (umap).
    pub method: Method,
    /// `transformer` (scanpy's size rule).
    pub transformer: Transformer,
    /// `random_state` (0): seeds NN-descent.
    pub random_state: u64,
    /// `key_added`: `<key>_distances`, `<key>_connectivities` and `uns[key]` instead of
    /// `distances`, `connectivities` and `uns["neighbors"]`.
    pub key_added: Option<String>,
    /// umap's `set_op_mix_ratio` (1.0): 1 is the fuzzy union, 0 the intersection.
    pub set_op_mix_ratio: f64,
    /// umap's `local_connectivity` (1.0): neighbours assumed connected at distance ρ.
    pub local_connectivity: f64,
}

impl Default for NeighborsParams {
    fn default() -> Self {
        NeighborsParams {
            n_neighbors: 15,
            n_pcs: None,
            use_rep: None,
            metric: Metric::Euclidean,
            method: Method::Umap,
            transformer: Transformer::Auto,
            random_state: 0,
            key_added: None,
            set_op_mix_ratio: 1.0,
            local_connectivity: 1.0,
        }
    }
}

impl NeighborsParams {
    /// Refuse values that cannot work on any data.
    pub fn validate(&self) -> Result<()> {
        if self.n_neighbors < 2 {
            return Err(StageError::param(
                STAGE,
                "n_neighbors",
                format!("{} < 2: self plus at least one neighbour", self.n_neighbors),
            ));
        }
        if self.n_pcs == Some(0) {
            return Err(StageError::param(
                STAGE,
                "n_pcs",
                "0 means X in scanpy; X is not available to global stages, give use_rep",
            ));
        }
        if matches!(self.use_rep.as_deref(), Some("X")) {
            return Err(StageError::param(
                STAGE,
                "use_rep",
                "X is not available to global stages; use an obsm embedding",
            ));
        }
        if !(0.0..=1.0).contains(&self.set_op_mix_ratio) {
            return Err(StageError::param(
                STAGE,
                "set_op_mix_ratio",
                format!("{} is not in [0, 1]", self.set_op_mix_ratio),
            ));
        }
        if !(self.local_connectivity >= 0.0 && self.local_connectivity.is_finite()) {
            return Err(StageError::param(
                STAGE,
                "local_connectivity",
                format!("{} must be a finite value ≥ 0", self.local_connectivity),
            ));
        }
        if matches!(self.key_added.as_deref(), Some("")) {
            return Err(StageError::param(STAGE, "key_added", "empty key"));
        }
        Ok(())
    }
    /// The obsm key searched.
    pub fn rep(&self) -> &str {
        self.use_rep.as_deref().unwrap_or("X_pca")
    }
    /// The uns key and the two obsp keys (distances, connectivities).
    pub fn keys(&self) -> (String, String, String) {
        match &self.key_added {
            None => (
                "neighbors".into(),
                "distances".into(),
                "connectivities".into(),
            ),
            Some(k) => (
                k.clone(),
                format!("{k}_distances"),
                format!("{k}_connectivities"),
            ),
        }
    }
}
