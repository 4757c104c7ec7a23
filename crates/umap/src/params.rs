//! The parameters of `sc.tl.umap`, with scanpy's names and defaults.

use atlasflow_core::{Result, StageError};

use crate::STAGE;

/// Where the layout starts (scanpy's `init_pos`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InitPos {
    /// `"spectral"` (the default): eigenvectors of the normalized Laplacian of the graph.
    Spectral,
    /// `"random"`: uniform in ±10 from the seeded generator.
    Random,
    /// The name of an obsm embedding (n × n_components) to start from.
    Obsm(String),
}

impl InitPos {
    /// Parse scanpy's string form: "spectral", "random", else an obsm key.
    /// ("paga" needs a PAGA result, which this engine does not compute: it is an error.)
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "spectral" => Ok(InitPos::Spectral),
            "random" => Ok(InitPos::Random),
            "paga" => Err(StageError::param(STAGE, "init_pos", "\"paga\" is not supported")),
            "" => Err(StageError::param(STAGE, "init_pos", "empty")),
            key => Ok(InitPos::Obsm(key.to_string())),
        }
    }
}

/// `sc.tl.umap`'s parameters. `Default` gives scanpy's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct UmapParams {
    /// `min_dist` (0.5): the effective minimum distance between embedded points.
    pub min_dist: f64,
    /// `spread` (1.0): the effective scale of embedded points.
    pub spread: f64,
    /// `n_components` (2): dimensions of the embedding.
    pub n_components: usize,
    /// `maxiter` (None): the number of epochs; None gives 500 for ≤ 10,000 cells, else 200.
    pub maxiter: Option<usize>,
    /// `alpha` (1.0): the initial learning rate.
    pub alpha: f64,
    /// `gamma` (1.0): the weight of the repulsion.
    pub gamma: f64,
    /// `negative_sample_rate` (5): negative samples per positive edge sample.
    pub negative_sample_rate: usize,
    /// `init_pos` ("spectral").
    pub init_pos: InitPos,
    /// `random_state` (0): the seed.
    pub random_state: u64,
    /// `a` (None): the curve parameter; fitted from spread/min_dist unless both a and b are given.
    pub a: Option<f64>,
    /// `b` (None): see `a`.
    pub b: Option<f64>,
    /// `neighbors_key` ("neighbors"): which neighbors result to lay out.
    pub neighbors_key: String,
    /// `key_added` (None): obsm and uns key instead of `X_umap` and `umap` (scanpy uses the
    /// very same name for both).
    pub key_added: Option<String>,
}

impl Default for UmapParams {
    fn default() -> Self {
        UmapParams {
            min_dist: 0.5,
            spread: 1.0,
            n_components: 2,
            maxiter: None,
            alpha: 1.0,
            gamma: 1.0,
            negative_sample_rate: 5,
            init_pos: InitPos::Spectral,
            random_state: 0,
            a: None,
            b: None,
            neighbors_key: "neighbors".to_string(),
            key_added: None,
        }
    }
}

impl UmapParams {
    /// Check every value, with an error naming the parameter.
    pub fn validate(&self) -> Result<()> {
        if !(self.spread.is_finite() && self.spread > 0.0) {
            return Err(StageError::param(STAGE, "spread", format!("must be > 0, got {}", self.spread)));
        }
        if !(self.min_dist.is_finite() && self.min_dist >= 0.0) {
            return Err(StageError::param(
                STAGE,
                "min_dist",
                format!("must be ≥ 0, got {}", self.min_dist),
            ));
        }
        if self.n_components == 0 || self.n_components > crate::sgd::MAX_DIM {
            return Err(StageError::param(
                STAGE,
                "n_components",
                format!("must be between 1 and {}, got {}", crate::sgd::MAX_DIM, self.n_components),
            ));
        }
        if self.maxiter == Some(0) {
            return Err(StageError::param(STAGE, "maxiter", "must be ≥ 1"));
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(StageError::param(STAGE, "alpha", format!("must be > 0, got {}", self.alpha)));
        }
        if !(self.gamma.is_finite() && self.gamma >= 0.0) {
            return Err(StageError::param(STAGE, "gamma", format!("must be ≥ 0, got {}", self.gamma)));
        }
        for (name, v) in [("a", self.a), ("b", self.b)] {
            if let Some(v) = v.filter(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(StageError::param(STAGE, name, format!("must be > 0, got {v}")));
            }
        }
        if self.neighbors_key.is_empty() {
            return Err(StageError::param(STAGE, "neighbors_key", "empty"));
        }
        if self.key_added.as_deref() == Some("") {
            return Err(StageError::param(STAGE, "key_added", "empty"));
        }
        Ok(())
    }

    /// The curve parameters: (a, b) if both are given, else the fit of `find_ab_params`.
    pub fn ab(&self) -> Result<(f64, f64)> {
        match (self.a, self.b) {
            (Some(a), Some(b)) => Ok((a, b)),
            _ => crate::ab::find_ab_params(self.spread, self.min_dist),
        }
    }

    /// The number of SGD epochs for `n` cells: `maxiter`, else 500 up to 10,000 cells, else 200.
    pub fn n_epochs(&self, n: usize) -> usize {
        self.maxiter.unwrap_or(default_epochs(n))
    }

    /// The obsm key written (`X_umap`, or `key_added` as scanpy does).
    pub fn obsm_key(&self) -> String {
        self.key_added.clone().unwrap_or_else(|| "X_umap".to_string())
    }

    /// The uns key written (`umap`, or `key_added`).
    pub fn uns_key(&self) -> String {
        self.key_added.clone().unwrap_or_else(|| "umap".to_string())
    }

    /// The obsp key of the connectivities: `connectivities` for the default neighbors key,
    /// else `<neighbors_key>_connectivities` (what `sc.pp.neighbors(key_added=…)` writes).
    pub fn connectivities_key(&self) -> String {
        if self.neighbors_key == "neighbors" {
            "connectivities".to_string()
        } else {
            format!("{}_connectivities", self.neighbors_key)
        }
    }
}

/// umap-learn's default epochs: 500 for graphs of at most 10,000 vertices, else 200.
pub fn default_epochs(n: usize) -> usize {
    if n <= 10_000 { 500 } else { 200 }
}
