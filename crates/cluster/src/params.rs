//! The parameters of `sc.tl.leiden` and `sc.tl.louvain`, with scanpy's names and defaults.

use atlasflow_core::{Result, StageError};

/// `sc.tl.leiden`'s `flavor`: which package scanpy would call. Both run the same optimiser
/// here (RB-configuration = modularity with a resolution, on the symmetric graph); they
/// differ in how clusters are numbered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LeidenFlavor {
    /// "leidenalg" (scanpy 1.11.5's default): clusters numbered by decreasing size.
    #[default]
    Leidenalg,
    /// "igraph" (`community_leiden(objective_function="modularity")`): clusters numbered in
    /// order of first appearance by cell index, as igraph returns them.
    Igraph,
}

/// `sc.tl.leiden`'s parameters (flavor "leidenalg", scanpy 1.11.5's default).
#[derive(Clone, Debug, PartialEq)]
pub struct LeidenParams {
    /// `resolution` (1.0): higher gives more, smaller clusters.
    pub resolution: f64,
    /// `n_iterations` (−1): negative = until an iteration changes nothing; k ≥ 0 = k.
    pub n_iterations: i64,
    /// `random_state` (0): the seed of the optimiser's random stream.
    pub random_state: u64,
    /// `key_added` ("leiden"): the obs column and uns entry; "leiden_R" when left at the
    /// default with `restrict_to`.
    pub key_added: String,
    /// `use_weights` (true): the connectivities as edge weights, else 1 per edge.
    pub use_weights: bool,
    /// `restrict_to`: (obs key, categories) — cluster only those cells, relabel them
    /// "<cat1>-<cat2>,<n>" and keep the old labels elsewhere.
    pub restrict_to: Option<(String, Vec<String>)>,
    /// `neighbors_key`: read obsp `<neighbors_key>_connectivities`.
    pub neighbors_key: Option<String>,
    /// `obsp`: read this obsp graph.
    pub obsp: Option<String>,
    /// `flavor` ("leidenalg"): how clusters are numbered, see [`LeidenFlavor`].
    pub flavor: LeidenFlavor,
}

impl Default for LeidenParams {
    fn default() -> Self {
        LeidenParams {
            resolution: 1.0,
            n_iterations: -1,
            random_state: 0,
            key_added: "leiden".to_string(),
            use_weights: true,
            restrict_to: None,
            neighbors_key: None,
            obsp: None,
            flavor: LeidenFlavor::Leidenalg,
        }
    }
}

/// `sc.tl.louvain`'s `flavor`. Both run the same multilevel optimiser here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LouvainFlavor {
    /// "vtraag" (scanpy's default; the louvain package, absent from the pinned stack so
    /// scanpy raises ImportError): RB-configuration with `resolution`, clusters numbered by
    /// decreasing size.
    #[default]
    Vtraag,
    /// "igraph" (`community_multilevel`, what runs on the pinned stack): `resolution` has
    /// no effect (scanpy warns and ignores it), clusters numbered in order of first
    /// appearance by cell index.
    Igraph,
}

/// `sc.tl.louvain`'s parameters. scanpy's default flavor ("vtraag") needs the louvain
/// package, absent from the pinned stack; its runnable flavor is igraph's
/// `community_multilevel`. Both default to unweighted edges.
#[derive(Clone, Debug, PartialEq)]
pub struct LouvainParams {
    /// `resolution` (None = 1.0), honoured by the vtraag flavor; the igraph flavor ignores
    /// it as scanpy does. Recorded as given (None → null) in uns.
    pub resolution: Option<f64>,
    /// `random_state` (0): the seed of the node order.
    pub random_state: u64,
    /// `key_added` ("louvain"); "louvain_R" when left at the default with `restrict_to`.
    pub key_added: String,
    /// `use_weights` (false): the connectivities as edge weights, else 1 per edge.
    pub use_weights: bool,
    /// `restrict_to`: as for [`LeidenParams::restrict_to`].
    pub restrict_to: Option<(String, Vec<String>)>,
    /// `neighbors_key`: read obsp `<neighbors_key>_connectivities`.
    pub neighbors_key: Option<String>,
    /// `obsp`: read this obsp graph.
    pub obsp: Option<String>,
    /// `flavor` ("vtraag"): see [`LouvainFlavor`].
    pub flavor: LouvainFlavor,
}

impl Default for LouvainParams {
    fn default() -> Self {
        LouvainParams {
            resolution: None,
            random_state: 0,
            key_added: "louvain".to_string(),
            use_weights: false,
            restrict_to: None,
            neighbors_key: None,
            obsp: None,
            flavor: LouvainFlavor::Vtraag,
        }
    }
}

/// The obsp key to read: `obsp`, `<neighbors_key>_connectivities`, or `connectivities`
/// (also for neighbors_key "neighbors", scanpy's default key).
pub(crate) fn connectivities_key(
    stage: &str,
    neighbors_key: &Option<String>,
    obsp: &Option<String>,
) -> Result<String> {
    match (neighbors_key, obsp) {
        (Some(_), Some(_)) => Err(StageError::param(
            stage,
            "obsp",
            "you can't specify both obsp and neighbors_key; select only one",
        )),
        (None, Some(o)) if o.is_empty() => Err(StageError::param(stage, "obsp", "is empty")),
        (None, Some(o)) => Ok(o.clone()),
        (Some(k), None) if k.is_empty() => {
            Err(StageError::param(stage, "neighbors_key", "is empty"))
        }
        (Some(k), None) if k == "neighbors" => Ok("connectivities".to_string()),
        (Some(k), None) => Ok(format!("{k}_connectivities")),
        (None, None) => Ok("connectivities".to_string()),
    }
}

/// Check `key_added` and `restrict_to`; returns the effective key (with "_R" appended when
/// restricting and the key was left at `default_key`).
pub(crate) fn output_key(
    stage: &str,
    key_added: &str,
    default_key: &str,
    restrict_to: &Option<(String, Vec<String>)>,
) -> Result<String> {
    if key_added.is_empty() {
        return Err(StageError::param(stage, "key_added", "is empty"));
    }
    if let Some((key, cats)) = restrict_to {
        if key.is_empty() {
            return Err(StageError::param(
                stage,
                "restrict_to",
                "the obs key is empty",
            ));
        }
        if cats.is_empty() {
            return Err(StageError::param(
                stage,
                "restrict_to",
                "names no categories",
            ));
        }
        if key_added == default_key {
            return Ok(format!("{key_added}_R"));
        }
    }
    Ok(key_added.to_string())
}

/// Check a resolution value.
pub(crate) fn check_resolution(stage: &str, resolution: f64) -> Result<()> {
    if !resolution.is_finite() || resolution < 0.0 {
        return Err(StageError::param(
            stage,
            "resolution",
            format!("must be a finite non-negative number, got {resolution}"),
        ));
    }
    Ok(())
}
