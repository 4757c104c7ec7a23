//! The stage catalogue: every stage's YAML name, parameters (scanpy's names and defaults),
//! documentation, the checks on its place in the pipeline, and how it becomes the map and
//! fit operators the engine runs. `atlasflow explain` and the README are read from here.

use std::sync::Arc;

use atlasflow_core::{FitStage, GeneTable, GlobalStage, MapStage, StageError};

use crate::error::Result;
use crate::params::{ParamDoc, Params};

/// An operator of the running pipeline.
#[derive(Clone)]
pub enum Op {
    /// Stateless per-batch transformation.
    Map(Arc<dyn MapStage>),
    /// Needs a pass (or rides along in one, for fits that only annotate genes).
    Fit(Arc<dyn FitStage>),
    /// Runs once on the in-memory frame after the stream (neighbors, UMAP, Leiden).
    Global(Arc<dyn GlobalStage>),
}

/// What the steps before a step have done to the data, for order checks.
#[derive(Clone, Debug, Default)]
pub struct Upstream {
    /// `Some(base)` once log1p ran (base None = natural log).
    pub log_base: Option<Option<f64>>,
    /// True once normalize_total ran.
    pub normalized: bool,
    /// True once scale ran (X is centred and may be negative).
    pub scaled: bool,
    /// The step id of the first whole-dataset (global) stage upstream, if any: streaming
    /// stages cannot follow it.
    pub global: Option<String>,
}

/// Builds a step's operators once the gene table at its position is known.
pub type Instantiate = Box<dyn Fn(&GeneTable) -> std::result::Result<Vec<Op>, StageError> + Send + Sync>;

/// A step whose parameters have been checked.
pub struct Configured {
    /// Builds the operators.
    pub instantiate: Instantiate,
    /// How many passes over the data the step needs before the stream can go past it.
    pub passes: usize,
    /// One line on what the step does with these parameters (for `validate`/`explain`).
    pub summary: String,
    /// The number of genes after the step when the parameters fix it (HVG subset).
    pub genes_after: Option<usize>,
    /// The step runs on the in-memory frame after the stream, not on batches.
    pub global: bool,
}

/// A stage of the catalogue.
pub struct StageDef {
    /// YAML name (scanpy's function name).
    pub name: &'static str,
    /// What it computes, and its scanpy counterpart.
    pub doc: &'static str,
    /// Its parameters.
    pub params: &'static [ParamDoc],
    /// Check parameters and order; give the configured step.
    pub build: fn(&mut Params<'_>, &mut Upstream) -> Result<Configured>,
}

/// Find a stage by name.
pub fn stage(name: &str) -> Option<&'static StageDef> {
    STAGES.iter().find(|s| s.name == name)
}

/// Every stage, in the order of the tutorial.
pub static STAGES: &[StageDef] = &[
    StageDef {
        name: "gene_length_normalize",
        doc: "X / var[column] gene by gene (the Census tutorial's division by feature_length for full-length assays). Missing, zero, negative or NaN lengths are an error naming the genes.",
        params: &[ParamDoc { name: "column", default: "feature_length", doc: "var column holding gene lengths" }],
        build: build_gene_length,
    },
    StageDef {
        name: "qc_metrics",
        doc: "sc.pp.calculate_qc_metrics(inplace=True): obs n_genes_by_counts, total_counts, pct_counts_in_top_N_genes, per-qc_var totals; var n_cells_by_counts, mean_counts, pct_dropout_by_counts, total_counts; log1p_ variants.",
        params: &[
            ParamDoc { name: "percent_top", default: "[50, 100, 200, 500]", doc: "top-N gene counts for pct_counts_in_top_N_genes; null for none (the tutorial)" },
            ParamDoc { name: "log1p", default: "true", doc: "also write log1p_ columns" },
            ParamDoc { name: "qc_vars", default: "[]", doc: "boolean var columns (e.g. mt) to total per cell" },
        ],
        build: build_qc,
    },
    StageDef {
        name: "filter_cells",
        doc: "sc.pp.filter_cells: keep cells with min_genes ≤ genes (values > 0) ≤ max_genes and min_counts ≤ counts ≤ max_counts; writes obs n_genes / n_counts.",
        params: &[
            ParamDoc { name: "min_genes", default: "null", doc: "minimum number of genes with a value > 0" },
            ParamDoc { name: "max_genes", default: "null", doc: "maximum number of genes with a value > 0" },
            ParamDoc { name: "min_counts", default: "null", doc: "minimum total of the cell" },
            ParamDoc { name: "max_counts", default: "null", doc: "maximum total of the cell" },
        ],
        build: build_filter_cells,
    },
    StageDef {
        name: "filter_genes",
        doc: "sc.pp.filter_genes: keep genes with min_cells ≤ cells (value > 0) ≤ max_cells and min_counts ≤ counts ≤ max_counts; writes var n_cells / n_counts. One pass.",
        params: &[
            ParamDoc { name: "min_cells", default: "null", doc: "minimum number of cells with a value > 0" },
            ParamDoc { name: "max_cells", default: "null", doc: "maximum number of cells with a value > 0" },
            ParamDoc { name: "min_counts", default: "null", doc: "minimum total of the gene" },
            ParamDoc { name: "max_counts", default: "null", doc: "maximum total of the gene" },
        ],
        build: build_filter_genes,
    },
    StageDef {
        name: "normalize_total",
        doc: "sc.pp.normalize_total: scale each cell to target_sum (median of totals when null, which costs a pass); exclude_highly_expressed leaves out genes above max_fraction of a cell's total (a pass).",
        params: &[
            ParamDoc { name: "target_sum", default: "null", doc: "total after normalization; null = median of cell totals" },
            ParamDoc { name: "exclude_highly_expressed", default: "false", doc: "exclude genes above max_fraction of any cell's total from the totals" },
            ParamDoc { name: "max_fraction", default: "0.05", doc: "threshold for exclude_highly_expressed, in [0, 1]" },
            ParamDoc { name: "key_added", default: "null", doc: "obs column for the size factor (total / target)" },
        ],
        build: build_normalize_total,
    },
    StageDef {
        name: "log1p",
        doc: "sc.pp.log1p: X ← ln(1 + X), divided by ln(base) if base is given; uns log1p.",
        params: &[ParamDoc { name: "base", default: "null", doc: "logarithm base; null = e" }],
        build: build_log1p,
    },
    StageDef {
        name: "highly_variable_genes",
        doc: "sc.pp.highly_variable_genes, flavors seurat and cell_ranger: var highly_variable, means, dispersions, dispersions_norm; subset keeps only those genes. One pass.",
        params: &[
            ParamDoc { name: "flavor", default: "seurat", doc: "seurat or cell_ranger" },
            ParamDoc { name: "n_top_genes", default: "null", doc: "number of genes to keep (ties at the cut keep more, as scanpy); null = use the cut-offs" },
            ParamDoc { name: "min_mean", default: "0.0125", doc: "cut-off on means (without n_top_genes)" },
            ParamDoc { name: "max_mean", default: "3", doc: "cut-off on means" },
            ParamDoc { name: "min_disp", default: "0.5", doc: "cut-off on normalized dispersions" },
            ParamDoc { name: "max_disp", default: ".inf", doc: "cut-off on normalized dispersions" },
            ParamDoc { name: "n_bins", default: "20", doc: "number of mean bins" },
            ParamDoc { name: "subset", default: "false", doc: "keep only the highly variable genes" },
        ],
        build: build_hvg,
    },
    StageDef {
        name: "scale",
        doc: "sc.pp.scale: (X − mean) / std per gene (ddof 1, std 0 → 1), clipped to ±max_value; var mean, std. One pass; X becomes dense when zero_center.",
        params: &[
            ParamDoc { name: "zero_center", default: "true", doc: "subtract the mean (X becomes dense)" },
            ParamDoc { name: "max_value", default: "null", doc: "clip to this value after scaling" },
        ],
        build: build_scale,
    },
    StageDef {
        name: "pca",
        doc: "sc.pp.pca (exact, from the genes × genes covariance): obsm X_pca, varm PCs, uns pca variance and variance_ratio; each component's largest loading is positive (scikit-learn's svd_flip). One pass.",
        params: &[
            ParamDoc { name: "n_comps", default: "null", doc: "number of components; null = 50, or min(n_obs, n_genes) − 1 when that is ≤ 50" },
            ParamDoc { name: "zero_center", default: "true", doc: "centre genes (PCA); false = uncentred SVD" },
            ParamDoc { name: "mask_var", default: "highly_variable if present", doc: "boolean var column selecting the genes; null = all genes" },
            ParamDoc { name: "key_added", default: "null", doc: "name for obsm, varm and uns keys instead of X_pca / PCs / pca" },
        ],
        build: build_pca,
    },
    StageDef {
        name: "neighbors",
        doc: "sc.pp.neighbors: kNN graph on obsm use_rep (X_pca) — exact below 8,192 cells (euclidean), NN-descent above, as scanpy chooses — then umap (fuzzy simplicial set) or gauss connectivities: obsp distances, connectivities; uns neighbors. In memory after the stream.",
        params: &[
            ParamDoc { name: "n_neighbors", default: "15", doc: "neighbours per cell, the cell itself included (as scanpy)" },
            ParamDoc { name: "n_pcs", default: "null", doc: "use the first n_pcs columns of use_rep; null = all" },
            ParamDoc { name: "use_rep", default: "X_pca", doc: "obsm key to search" },
            ParamDoc { name: "metric", default: "euclidean", doc: "euclidean or cosine" },
            ParamDoc { name: "method", default: "umap", doc: "umap (fuzzy simplicial set) or gauss" },
            ParamDoc { name: "transformer", default: "null", doc: "null = scanpy's rule by size; sklearn = exact; pynndescent = approximate (NN-descent)" },
            ParamDoc { name: "random_state", default: "the pipeline seed (0)", doc: "seed of the approximate search" },
            ParamDoc { name: "key_added", default: "null", doc: "write <key>_distances, <key>_connectivities and uns[<key>]" },
            ParamDoc { name: "set_op_mix_ratio", default: "1.0", doc: "fuzzy union (1) to intersection (0), method umap" },
            ParamDoc { name: "local_connectivity", default: "1.0", doc: "neighbours assumed connected, method umap" },
        ],
        build: build_neighbors,
    },
    StageDef {
        name: "umap",
        doc: "sc.tl.umap: umap-learn's layout of the neighbors graph (a, b fitted from min_dist and spread, spectral initialisation, 500 epochs up to 10,000 cells else 200): obsm X_umap, uns umap. In memory after the stream; deterministic for a seed on any number of threads.",
        params: &[
            ParamDoc { name: "min_dist", default: "0.5", doc: "minimum distance between embedded points" },
            ParamDoc { name: "spread", default: "1.0", doc: "scale of the embedded points" },
            ParamDoc { name: "n_components", default: "2", doc: "dimensions of the embedding" },
            ParamDoc { name: "maxiter", default: "null", doc: "epochs; null = 500 (≤ 10,000 cells) or 200" },
            ParamDoc { name: "alpha", default: "1.0", doc: "initial learning rate" },
            ParamDoc { name: "gamma", default: "1.0", doc: "weight of negative samples" },
            ParamDoc { name: "negative_sample_rate", default: "5", doc: "negative samples per positive edge" },
            ParamDoc { name: "init_pos", default: "spectral", doc: "spectral, random, or an obsm key" },
            ParamDoc { name: "random_state", default: "the pipeline seed (0)", doc: "seed" },
            ParamDoc { name: "a", default: "null", doc: "curve parameter; null = fitted from min_dist and spread" },
            ParamDoc { name: "b", default: "null", doc: "curve parameter; null = fitted from min_dist and spread" },
            ParamDoc { name: "neighbors_key", default: "neighbors", doc: "which neighbors result to lay out" },
            ParamDoc { name: "key_added", default: "null", doc: "write obsm X_<key> and uns[<key>] instead of X_umap / umap" },
        ],
        build: build_umap,
    },
    StageDef {
        name: "leiden",
        doc: "sc.tl.leiden (leidenalg flavor, scanpy 1.11.5's default): Leiden communities of the weighted connectivities, numbered by size (largest 0): obs leiden (categorical), uns leiden. In memory after the stream.",
        params: &[
            ParamDoc { name: "resolution", default: "1", doc: "higher gives more, smaller clusters" },
            ParamDoc { name: "n_iterations", default: "-1", doc: "iterations; -1 = until no improvement" },
            ParamDoc { name: "random_state", default: "the pipeline seed (0)", doc: "seed" },
            ParamDoc { name: "key_added", default: "leiden", doc: "obs column and uns key" },
            ParamDoc { name: "use_weights", default: "true", doc: "weight edges by connectivity" },
            ParamDoc { name: "restrict_to", default: "null", doc: "[obs column, [categories]]: recluster only those cells" },
            ParamDoc { name: "neighbors_key", default: "null", doc: "which neighbors result (its connectivities)" },
            ParamDoc { name: "obsp", default: "null", doc: "obsp key of the graph, instead of neighbors_key" },
            ParamDoc { name: "flavor", default: "leidenalg", doc: "leidenalg (clusters numbered by size) or igraph (by first appearance); the same optimiser" },
        ],
        build: build_leiden,
    },
    StageDef {
        name: "louvain",
        doc: "sc.tl.louvain (igraph flavor, the one the pinned scanpy stack runs): multilevel communities, unweighted by default, numbered by size: obs louvain, uns louvain. In memory after the stream.",
        params: &[
            ParamDoc { name: "resolution", default: "null", doc: "null = 1" },
            ParamDoc { name: "random_state", default: "the pipeline seed (0)", doc: "seed" },
            ParamDoc { name: "key_added", default: "louvain", doc: "obs column and uns key" },
            ParamDoc { name: "use_weights", default: "false", doc: "weight edges by connectivity" },
            ParamDoc { name: "restrict_to", default: "null", doc: "[obs column, [categories]]: recluster only those cells" },
            ParamDoc { name: "neighbors_key", default: "null", doc: "which neighbors result (its connectivities)" },
            ParamDoc { name: "obsp", default: "null", doc: "obsp key of the graph, instead of neighbors_key" },
            ParamDoc { name: "flavor", default: "vtraag", doc: "vtraag (resolution honoured, numbered by size) or igraph (resolution ignored, numbered by first appearance)" },
        ],
        build: build_louvain,
    },
];

fn global_of<G: GlobalStage + 'static>(g: G, summary: String) -> Configured {
    let g: Arc<dyn GlobalStage> = Arc::new(g);
    Configured {
        instantiate: Box::new(move |_| Ok(vec![Op::Global(Arc::clone(&g))])),
        passes: 0,
        summary,
        genes_after: None,
        global: true,
    }
}

/// A stage error on a parameter, at that parameter's YAML line.
fn at_param(p: &Params<'_>, e: StageError) -> crate::error::EngineError {
    match &e {
        StageError::InvalidParam { param, message, .. } => p.error(param, message.clone()),
        _ => p.step_error(e.to_string()),
    }
}

fn build_neighbors(p: &mut Params<'_>, _up: &mut Upstream) -> Result<Configured> {
    use atlasflow_neighbors::{Method, Metric, Neighbors, NeighborsParams, Transformer};
    let d = NeighborsParams::default();
    let n_neighbors = p.u64_opt("n_neighbors")?.map_or(d.n_neighbors, |n| n as usize);
    let metric = p.choice("metric", &["euclidean", "cosine"], "euclidean")?;
    let method = p.choice("method", &["umap", "gauss"], "umap")?;
    let transformer = p.str_opt("transformer")?;
    let params = NeighborsParams {
        n_neighbors,
        n_pcs: p.u64_opt("n_pcs")?.map(|n| n as usize),
        use_rep: p.str_opt("use_rep")?,
        metric: Metric::parse(&metric).map_err(|e| at_param(p, e))?,
        method: Method::parse(&method).map_err(|e| at_param(p, e))?,
        transformer: Transformer::parse(transformer.as_deref().unwrap_or("auto")).map_err(|e| at_param(p, e))?,
        random_state: p.u64_opt("random_state")?.unwrap_or(p.seed()),
        key_added: p.str_opt("key_added")?,
        set_op_mix_ratio: p.f64_or("set_op_mix_ratio", d.set_op_mix_ratio)?,
        local_connectivity: p.f64_or("local_connectivity", d.local_connectivity)?,
    };
    let summary = format!(
        "in memory: {n_neighbors}-NN of {} ({metric}, {}), {method} connectivities",
        params.use_rep.as_deref().unwrap_or("X_pca"),
        transformer.as_deref().unwrap_or("exact < 8,192 cells, else NN-descent")
    );
    let stage = Neighbors::new(params).map_err(|e| at_param(p, e))?;
    Ok(global_of(stage, summary))
}

fn build_umap(p: &mut Params<'_>, _up: &mut Upstream) -> Result<Configured> {
    use atlasflow_umap::{InitPos, Umap, UmapParams};
    let d = UmapParams::default();
    let init = p.str_opt("init_pos")?.unwrap_or_else(|| "spectral".into());
    let params = UmapParams {
        min_dist: p.f64_or("min_dist", d.min_dist)?,
        spread: p.f64_or("spread", d.spread)?,
        n_components: p.u64_opt("n_components")?.map_or(d.n_components, |n| n as usize),
        maxiter: p.u64_opt("maxiter")?.map(|n| n as usize),
        alpha: p.f64_or("alpha", d.alpha)?,
        gamma: p.f64_or("gamma", d.gamma)?,
        negative_sample_rate: p.u64_opt("negative_sample_rate")?.map_or(d.negative_sample_rate, |n| n as usize),
        init_pos: InitPos::parse(&init).map_err(|e| at_param(p, e))?,
        random_state: p.u64_opt("random_state")?.unwrap_or(p.seed()),
        a: p.f64_opt("a")?,
        b: p.f64_opt("b")?,
        neighbors_key: p.str_opt("neighbors_key")?.unwrap_or(d.neighbors_key),
        key_added: p.str_opt("key_added")?,
    };
    let summary = format!("in memory: UMAP layout (min_dist {}, spread {}, {} init)", params.min_dist, params.spread, init);
    let stage = Umap::new(params).map_err(|e| at_param(p, e))?;
    Ok(global_of(stage, summary))
}

fn build_leiden(p: &mut Params<'_>, _up: &mut Upstream) -> Result<Configured> {
    use atlasflow_cluster::{Leiden, LeidenFlavor, LeidenParams};
    let d = LeidenParams::default();
    let flavor = match p.choice("flavor", &["leidenalg", "igraph"], "leidenalg")?.as_str() {
        "igraph" => LeidenFlavor::Igraph,
        _ => LeidenFlavor::Leidenalg,
    };
    let params = LeidenParams {
        flavor,
        resolution: p.f64_or("resolution", d.resolution)?,
        n_iterations: p.i64_or("n_iterations", d.n_iterations)?,
        random_state: p.u64_opt("random_state")?.unwrap_or(p.seed()),
        key_added: p.str_opt("key_added")?.unwrap_or(d.key_added),
        use_weights: p.bool_or("use_weights", d.use_weights)?,
        restrict_to: p.restrict_to("restrict_to")?,
        neighbors_key: p.str_opt("neighbors_key")?,
        obsp: p.str_opt("obsp")?,
    };
    let summary = format!("in memory: Leiden communities (resolution {})", params.resolution);
    let stage = Leiden::new(params).map_err(|e| at_param(p, e))?;
    Ok(global_of(stage, summary))
}

fn build_louvain(p: &mut Params<'_>, _up: &mut Upstream) -> Result<Configured> {
    use atlasflow_cluster::{Louvain, LouvainFlavor, LouvainParams};
    let d = LouvainParams::default();
    let flavor = match p.choice("flavor", &["vtraag", "igraph"], "vtraag")?.as_str() {
        "igraph" => LouvainFlavor::Igraph,
        _ => LouvainFlavor::Vtraag,
    };
    let params = LouvainParams {
        flavor,
        resolution: p.f64_opt("resolution")?,
        random_state: p.u64_opt("random_state")?.unwrap_or(p.seed()),
        key_added: p.str_opt("key_added")?.unwrap_or(d.key_added),
        use_weights: p.bool_or("use_weights", d.use_weights)?,
        restrict_to: p.restrict_to("restrict_to")?,
        neighbors_key: p.str_opt("neighbors_key")?,
        obsp: p.str_opt("obsp")?,
    };
    let summary = "in memory: Louvain communities".to_string();
    let stage = Louvain::new(params).map_err(|e| at_param(p, e))?;
    Ok(global_of(stage, summary))
}

fn map_of<M: MapStage + 'static>(m: M) -> Vec<Op> {
    vec![Op::Map(Arc::new(m))]
}

fn build_gene_length(p: &mut Params<'_>, up: &mut Upstream) -> Result<Configured> {
    let column = p.str_opt("column")?.unwrap_or_else(|| "feature_length".into());
    if up.normalized || up.log_base.is_some() || up.scaled {
        return Err(p.step_error("gene_length_normalize divides raw counts: put it before normalize_total, log1p and scale"));
    }
    let summary = format!("map: X / var.{column}");
    Ok(Configured {
        instantiate: Box::new(move |genes| Ok(map_of(atlasflow_normalize::GeneLengthNormalize::new(&column, genes)?))),
        passes: 0,
        summary,
        genes_after: None,
        global: false,
    })
}

fn build_qc(p: &mut Params<'_>, _up: &mut Upstream) -> Result<Configured> {
    let mut percent_top = p.usize_list("percent_top", &[50, 100, 200, 500])?;
    percent_top.sort_unstable();
    let log1p = p.bool_or("log1p", true)?;
    let qc_vars = p.str_list("qc_vars")?;
    let summary = "map: per-cell QC columns; per-gene QC columns ride along in the next pass".to_string();
    Ok(Configured {
        instantiate: Box::new(move |genes| {
            let cells = atlasflow_qc::QcCells::new(percent_top.clone(), log1p, qc_vars.clone(), genes)?;
            Ok(vec![Op::Map(Arc::new(cells)), Op::Fit(Arc::new(atlasflow_qc::QcGenes { log1p }))])
        }),
        passes: 0,
        summary,
        genes_after: None,
        global: false,
    })
}

fn build_filter_cells(p: &mut Params<'_>, _up: &mut Upstream) -> Result<Configured> {
    let (min_genes, max_genes) = (p.u64_opt("min_genes")?, p.u64_opt("max_genes")?);
    let (min_counts, max_counts) = (p.f64_opt("min_counts")?, p.f64_opt("max_counts")?);
    let stage = atlasflow_qc::FilterCells::new(min_genes, max_genes, min_counts, max_counts)
        .map_err(|e| p.step_error(e.to_string()))?;
    let stage = Arc::new(stage);
    Ok(Configured {
        instantiate: Box::new(move |_| Ok(vec![Op::Map(Arc::clone(&stage) as Arc<dyn MapStage>)])),
        passes: 0,
        summary: "map: drop cells outside the bounds".into(),
        genes_after: None,
        global: false,
    })
}

fn build_filter_genes(p: &mut Params<'_>, _up: &mut Upstream) -> Result<Configured> {
    let (min_cells, max_cells) = (p.u64_opt("min_cells")?, p.u64_opt("max_cells")?);
    let (min_counts, max_counts) = (p.f64_opt("min_counts")?, p.f64_opt("max_counts")?);
    let stage = atlasflow_qc::FilterGenes::new(min_cells, max_cells, min_counts, max_counts)
        .map_err(|e| p.step_error(e.to_string()))?;
    let stage = Arc::new(stage);
    Ok(Configured {
        instantiate: Box::new(move |_| Ok(vec![Op::Fit(Arc::clone(&stage) as Arc<dyn FitStage>)])),
        passes: 1,
        summary: "fit: cells (value > 0) and totals per gene; then drop genes".into(),
        genes_after: None,
        global: false,
    })
}

fn build_normalize_total(p: &mut Params<'_>, up: &mut Upstream) -> Result<Configured> {
    let target_sum = p.f64_opt("target_sum")?;
    if let Some(t) = target_sum {
        if !(t > 0.0 && t.is_finite()) {
            return Err(p.error("target_sum", format!("must be a positive number, found {t}")));
        }
    }
    let exclude = p.bool_or("exclude_highly_expressed", false)?;
    let max_fraction = p.f64_or("max_fraction", 0.05)?;
    if !(0.0..=1.0).contains(&max_fraction) {
        return Err(p.error("max_fraction", format!("must be in [0, 1], found {max_fraction}")));
    }
    let key_added = p.str_opt("key_added")?;
    if up.log_base.is_some() || up.scaled {
        return Err(p.step_error("normalize_total works on counts: put it before log1p and scale"));
    }
    up.normalized = true;
    let passes = usize::from(exclude) + usize::from(target_sum.is_none());
    let summary = match (target_sum, exclude) {
        (Some(t), false) => format!("map: scale each cell to {t}"),
        (None, false) => "fit: median of cell totals; then scale each cell to it".into(),
        (_, true) => "fit: highly expressed genes (and the median when no target_sum); then scale cells".into(),
    };
    Ok(Configured {
        instantiate: Box::new(move |_| {
            use atlasflow_normalize::NormalizeTotalPlan;
            Ok(match atlasflow_normalize::normalize_total_stage(target_sum, exclude, max_fraction, key_added.clone())? {
                NormalizeTotalPlan::Map(m) => map_of(m),
                NormalizeTotalPlan::Fit(f) => vec![Op::Fit(f)],
            })
        }),
        passes,
        summary,
        genes_after: None,
        global: false,
    })
}

fn build_log1p(p: &mut Params<'_>, up: &mut Upstream) -> Result<Configured> {
    let base = p.f64_opt("base")?;
    if let Some(b) = base {
        if !(b > 0.0 && b != 1.0 && b.is_finite()) {
            return Err(p.error("base", format!("must be positive and not 1, found {b}")));
        }
    }
    if up.log_base.is_some() {
        return Err(p.step_error("the data are already logarithmized by an earlier log1p step"));
    }
    if up.scaled {
        return Err(p.step_error("log1p after scale: scaled values below −1 would give NaN; put log1p before scale"));
    }
    up.log_base = Some(base);
    Ok(Configured {
        instantiate: Box::new(move |_| Ok(map_of(atlasflow_normalize::Log1p { base }))),
        passes: 0,
        summary: "map: ln(1 + X)".into(),
        genes_after: None,
        global: false,
    })
}

fn build_hvg(p: &mut Params<'_>, up: &mut Upstream) -> Result<Configured> {
    use atlasflow_hvg::{Flavor, HighlyVariableGenes};
    let d = HighlyVariableGenes::default();
    let flavor = match p.choice("flavor", &["seurat", "cell_ranger"], "seurat")?.as_str() {
        "cell_ranger" => Flavor::CellRanger,
        _ => Flavor::Seurat,
    };
    let n_top_genes = p.u64_opt("n_top_genes")?.map(|n| n as usize);
    if n_top_genes == Some(0) {
        return Err(p.error("n_top_genes", "must be at least 1"));
    }
    let n_bins = p.u64_opt("n_bins")?.map_or(d.n_bins, |n| n as usize);
    if n_bins == 0 {
        return Err(p.error("n_bins", "must be at least 1"));
    }
    let stage = HighlyVariableGenes {
        flavor,
        n_top_genes,
        min_mean: p.f64_or("min_mean", d.min_mean)?,
        max_mean: p.f64_or("max_mean", d.max_mean)?,
        min_disp: p.f64_or("min_disp", d.min_disp)?,
        max_disp: p.f64_or("max_disp", d.max_disp)?,
        n_bins,
        subset: p.bool_or("subset", false)?,
        log1p_base: up.log_base.flatten(),
    };
    if up.log_base.is_none() {
        return Err(p.step_error("highly_variable_genes (seurat, cell_ranger) expects logarithmized data: add a log1p step before it"));
    }
    if up.scaled {
        return Err(p.step_error("highly_variable_genes after scale: dispersions of scaled data are meaningless; put it before scale"));
    }
    let summary = format!(
        "fit: per-gene mean and variance; then {} {}",
        n_top_genes.map_or("cut-offs".to_string(), |n| format!("top {n} genes")),
        if stage.subset { "(subset)" } else { "(flag)" }
    );
    let genes_after = if stage.subset { n_top_genes } else { None };
    let stage = Arc::new(stage);
    Ok(Configured {
        instantiate: Box::new(move |_| Ok(vec![Op::Fit(Arc::clone(&stage) as Arc<dyn FitStage>)])),
        passes: 1,
        summary,
        genes_after,
        global: false,
    })
}

fn build_scale(p: &mut Params<'_>, up: &mut Upstream) -> Result<Configured> {
    let zero_center = p.bool_or("zero_center", true)?;
    let max_value = p.f64_opt("max_value")?;
    if let Some(m) = max_value {
        if !(m > 0.0) {
            return Err(p.error("max_value", format!("must be positive, found {m}")));
        }
    }
    if up.scaled {
        return Err(p.step_error("the data are already scaled by an earlier scale step"));
    }
    up.scaled = true;
    let stage = Arc::new(atlasflow_normalize::Scale { zero_center, max_value });
    Ok(Configured {
        instantiate: Box::new(move |_| Ok(vec![Op::Fit(Arc::clone(&stage) as Arc<dyn FitStage>)])),
        passes: 1,
        summary: format!(
            "fit: per-gene mean and std; then {}scale{}",
            if zero_center { "centre and " } else { "" },
            max_value.map_or(String::new(), |m| format!(", clip at {m}"))
        ),
        genes_after: None,
        global: false,
    })
}

fn build_pca(p: &mut Params<'_>, _up: &mut Upstream) -> Result<Configured> {
    use atlasflow_pca::{MaskVar, Pca};
    let n_comps = p.u64_opt("n_comps")?.map(|n| n as usize);
    if n_comps == Some(0) {
        return Err(p.error("n_comps", "must be at least 1"));
    }
    let zero_center = p.bool_or("zero_center", true)?;
    let mask_var = if p.has("mask_var") {
        match p.str_opt("mask_var")? {
            Some(c) => MaskVar::Column(c),
            None => MaskVar::None,
        }
    } else {
        MaskVar::Auto
    };
    let key_added = p.str_opt("key_added")?;
    let stage = Arc::new(Pca { n_comps, zero_center, mask_var, key_added });
    Ok(Configured {
        instantiate: Box::new(move |_| Ok(vec![Op::Fit(Arc::clone(&stage) as Arc<dyn FitStage>)])),
        passes: 1,
        summary: format!("fit: genes × genes covariance; then project onto {} components", n_comps.map_or("the default number of".into(), |n| n.to_string())),
        genes_after: None,
        global: false,
    })
}
