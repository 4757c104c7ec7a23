//! Streaming PCA with the results of scanpy's `sc.pp.pca` (semantics reference §5).
//!
//! The fit folds, over the genes used (the `highly_variable` mask by default, as scanpy),
//! the number of cells, the f64 column sums and the f64 Gram matrix Σ x xᵀ (lower
//! triangle), from dense (`x_dense`) or sparse rows. Products of f32 values are exact in
//! f64, so only the sums round. States merge by adding, in granule order.
//!
//! `finish` forms the covariance C = (G − n μμᵀ)/(n − 1) and takes the top `n_comps`
//! eigenvectors of C (faer's self-adjoint eigendecomposition, all in f64). This is the exact
//! top-k SVD of the centred data that scanpy's default ARPACK solver converges to, so
//! loadings, scores and variances agree with scanpy to rounding (up to rotations within
//! near-degenerate eigenvalues, which no two solvers share).
//!
//! **Sign convention** (scikit-learn `svd_flip(u_based_decision=False)`, what scanpy uses):
//! in every component, the loading with the largest absolute value (the first such gene on
//! ties) is made positive; the scores follow the loadings.
//!
//! Outputs, under scanpy's names (`key_added` renames all three):
//! - `obsm/X_pca`: (x − μ)·V per cell, computed in f64 and stored f32 (scanpy's default
//!   `dtype="float32"`); uncentred x·V when `zero_center` is false;
//! - `varm/PCs`: genes × n_comps f64, zero rows for genes outside the mask;
//! - `uns["pca"] = {params: {zero_center, use_highly_variable, mask_var}, variance,
//!   variance_ratio}`: variance = eigenvalues of C (= S²/(n−1)), variance_ratio = variance
//!   divided by the total variance of the used genes (trace of C, Σ ddof-1 variances).
//!
//! `zero_center = false` reproduces scikit-learn's TruncatedSVD, which scanpy uses then:
//! the components are the top eigenvectors of the uncentred Gram matrix; `variance` is the
//! ddof-0 variance of each column of scores and `variance_ratio` divides it by the sum of
//! the genes' ddof-0 variances. TruncatedSVD's default solver is randomized; we compute the
//! exact decomposition it approximates.
//!
//! Memory: a state holds 8·g² bytes for g used genes (plus 3·g² transiently in `finish`);
//! more than [`MAX_GRAM_GENES`] used genes are refused with the size they would need.
//! The dense Gram update runs faer's matmul sequentially, so a granule's state depends only
//! on its cells (parallelism comes from the engine running granules side by side).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, FixedSizeListArray, Float64Array};
use arrow::datatypes::{DataType, Field};
use atlasflow_core::genes::VARM_PREFIX;
use atlasflow_core::stage::downcast_state;
use atlasflow_core::{
    CellBatch, CsrView, FitStage, FitState, Fitted, GeneTable, MapStage, Result, StageError, Uns,
    XView,
};
use faer::linalg::matmul::triangular::{BlockStructure, matmul as tri_matmul};
use faer::{Accum, Mat, MatRef, Par, Side};

/// Stage name used in errors.
pub const STAGE: &str = "pca";

/// The largest number of used genes whose Gram matrix a state will hold (3.2 GB in f64).
pub const MAX_GRAM_GENES: usize = 20_000;

/// scanpy's `settings.N_PCS`, the default number of components when there is room.
pub const N_PCS: usize = 50;

/// Rows densified at a time for the Gram update.
const BLOCK_ROWS: usize = 256;

/// Which genes the PCA uses (scanpy's `mask_var`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum MaskVar {
    /// scanpy's default: the var column `highly_variable` if it exists, else all genes.
    #[default]
    Auto,
    /// All genes (`mask_var=None`).
    None,
    /// The genes where this boolean var column is true.
    Column(String),
}

/// The `pca` stage (scanpy's `sc.pp.pca` / `sc.tl.pca`), with scanpy's parameter names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pca {
    /// `n_comps`: None gives d − 1 for d = min(n_vars used, n_obs) ≤ 50, else 50.
    pub n_comps: Option<usize>,
    /// `zero_center` (default true): PCA of the centred data; false gives TruncatedSVD.
    pub zero_center: bool,
    /// `mask_var` (default: `highly_variable` if present).
    pub mask_var: MaskVar,
    /// `key_added`: the obsm, varm and uns key instead of `X_pca`, `PCs`, `pca`.
    pub key_added: Option<String>,
}

impl Default for Pca {
    fn default() -> Self {
        Pca {
            n_comps: None,
            zero_center: true,
            mask_var: MaskVar::Auto,
            key_added: None,
        }
    }
}

/// The genes a PCA uses, resolved against a gene table.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResolvedMask {
    /// The mask column name recorded in `uns` (`mask_var`), None for all genes.
    pub column: Option<String>,
    /// Indices of the used genes, ascending.
    pub used: Vec<usize>,
    /// Number of genes of the table.
    pub n_genes: usize,
}

impl Pca {
    /// Resolve `mask_var` against the gene table: the used genes and the uns name.
    pub fn resolve_mask(&self, genes: &GeneTable) -> Result<ResolvedMask> {
        let n_genes = genes.n_genes();
        let column = match &self.mask_var {
            MaskVar::None => None,
            MaskVar::Auto => genes
                .column("highly_variable")
                .map(|_| "highly_variable".to_string()),
            MaskVar::Column(c) => Some(c.clone()),
        };
        let used: Vec<usize> = match &column {
            None => (0..n_genes).collect(),
            Some(name) => {
                let col = genes.column(name).ok_or_else(|| {
                    StageError::param(STAGE, "mask_var", format!("var has no column {name}"))
                })?;
                let b = col.as_boolean_opt().ok_or_else(|| {
                    StageError::param(
                        STAGE,
                        "mask_var",
                        format!("var column {name} is {}, not boolean", col.data_type()),
                    )
                })?;
                if let Some(j) = (0..b.len()).find(|&j| b.is_null(j)) {
                    return Err(StageError::data(
                        STAGE,
                        format!(
                            "mask_var column {name} is missing for gene {}",
                            genes.name(j)
                        ),
                    ));
                }
                (0..b.len()).filter(|&j| b.value(j)).collect()
            }
        };
        if used.is_empty() {
            return Err(StageError::data(
                STAGE,
                "no genes to compute PCA on (the mask selects none)",
            ));
        }
        if used.len() > MAX_GRAM_GENES {
            let g = used.len() as u128;
            return Err(StageError::data(
                STAGE,
                format!(
                    "PCA over {g} genes needs a {g} x {g} f64 Gram matrix of {:.1} GB per state; at most \
                     {MAX_GRAM_GENES} genes are supported: select highly variable genes first (mask_var)",
                    (8 * g * g) as f64 / 1e9
                ),
            ));
        }
        Ok(ResolvedMask {
            column,
            used,
            n_genes,
        })
    }

    /// The number of components for `n_obs` cells and `n_vars` used genes, validated as
    /// scikit-learn does (arpack: 1 ≤ n_comps < min(n_obs, n_vars); TruncatedSVD:
    /// 1 ≤ n_comps ≤ n_vars).
    pub fn resolve_n_comps(&self, n_obs: usize, n_vars: usize) -> Result<usize> {
        let d = n_obs.min(n_vars);
        let k = self.n_comps.unwrap_or(if d <= N_PCS {
            d.saturating_sub(1)
        } else {
            N_PCS
        });
        if self.zero_center {
            if k == 0 || k >= d {
                return Err(StageError::param(
                    STAGE,
                    "n_comps",
                    format!(
                        "n_comps={k} must be between 1 and min(n_obs, n_vars) - 1 = {} \
                         ({n_obs} cells, {n_vars} genes used)",
                        d as i64 - 1
                    ),
                ));
            }
        } else if k == 0 || k > n_vars {
            return Err(StageError::param(
                STAGE,
                "n_comps",
                format!(
                    "n_comps={k} must be between 1 and the {n_vars} genes used (zero_center=false)"
                ),
            ));
        }
        Ok(k)
    }

    fn keys(&self) -> (String, String, String) {
        match &self.key_added {
            Some(k) => (k.clone(), k.clone(), k.clone()),
            None => ("X_pca".into(), "PCs".into(), "pca".into()),
        }
    }
}

/// The fit state: cell count, column sums and the Gram matrix of the used genes.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PcaState {
    mask: ResolvedMask,
    /// For each gene of the table, its position among the used genes (u32::MAX if unused).
    pos: Vec<u32>,
    /// Cells folded.
    pub n: u64,
    /// Per used gene, Σ x.
    pub sums: Vec<f64>,
    /// Σ x xᵀ over the used genes, column-major g × g; only the lower triangle is kept.
    pub gram: Vec<f64>,
}

impl PcaState {
    /// An empty state for the used genes of `mask`.
    pub fn new(mask: ResolvedMask) -> Self {
        let g = mask.used.len();
        let mut pos = vec![u32::MAX; mask.n_genes];
        for (p, &j) in mask.used.iter().enumerate() {
            pos[j] = p as u32;
        }
        PcaState {
            mask,
            pos,
            n: 0,
            sums: vec![0.0; g],
            gram: vec![0.0; g * g],
        }
    }

    fn g(&self) -> usize {
        self.sums.len()
    }

    /// Add blockᵀ·block (rows × g, column-major) to the lower triangle of the Gram matrix.
    fn add_block(&mut self, block: &[f64], rows: usize) {
        let g = self.g();
        let b = MatRef::from_column_major_slice(block, rows, g);
        let dst = faer::MatMut::from_column_major_slice_mut(&mut self.gram, g, g);
        tri_matmul(
            dst,
            BlockStructure::TriangularLower,
            Accum::Add,
            b.transpose(),
            BlockStructure::Rectangular,
            b,
            BlockStructure::Rectangular,
            1.0,
            Par::Seq,
        );
    }

    fn fold_dense(&mut self, data: &[f32], n_cols: usize) -> Result<()> {
        if n_cols != self.mask.n_genes {
            return Err(StageError::Batch(format!(
                "{STAGE}: batch of {n_cols} genes for a state of {}",
                self.mask.n_genes
            )));
        }
        if n_cols == 0 || !data.len().is_multiple_of(n_cols) {
            return Err(StageError::Batch(format!(
                "{STAGE}: {} dense values do not fill rows of {n_cols}",
                data.len()
            )));
        }
        let g = self.g();
        let n_rows = data.len() / n_cols;
        let mut block = vec![0.0f64; BLOCK_ROWS.min(n_rows.max(1)) * g];
        let mut r0 = 0;
        while r0 < n_rows {
            let rows = BLOCK_ROWS.min(n_rows - r0);
            let blk = &mut block[..rows * g];
            for r in 0..rows {
                let row = &data[(r0 + r) * n_cols..(r0 + r + 1) * n_cols];
                for (p, &j) in self.mask.used.iter().enumerate() {
                    let v = f64::from(row[j]);
                    blk[p * rows + r] = v;
                    self.sums[p] += v;
                }
            }
            self.add_block(&block[..rows * g], rows);
            r0 += rows;
        }
        self.n += n_rows as u64;
        Ok(())
    }

    fn fold_csr(&mut self, x: &CsrView<'_>) -> Result<()> {
        if x.n_cols != self.mask.n_genes {
            return Err(StageError::Batch(format!(
                "{STAGE}: batch of {} genes for a state of {}",
                x.n_cols, self.mask.n_genes
            )));
        }
        let g = self.g();
        let n_rows = x.n_rows();
        // Sparse outer products cost Σ nnz²; a dense block costs rows·g² at a far higher
        // rate. Go dense when the used part of the block is more than 5 % full.
        let mut nnz_used = 0usize;
        for r in 0..n_rows {
            let (idx, _) = row_checked(x, r)?;
            for &j in idx {
                let p = *self
                    .pos
                    .get(j as usize)
                    .ok_or_else(|| gene_out_of_range(j, self.mask.n_genes))?;
                if p != u32::MAX {
                    nnz_used += 1;
                }
            }
        }
        let dense = (nnz_used as f64) > 0.05 * (n_rows as f64) * (g as f64);
        if dense {
            let mut block = vec![0.0f64; BLOCK_ROWS.min(n_rows.max(1)) * g];
            let mut r0 = 0;
            while r0 < n_rows {
                let rows = BLOCK_ROWS.min(n_rows - r0);
                let blk = &mut block[..rows * g];
                blk.fill(0.0);
                for r in 0..rows {
                    let (idx, val) = row_checked(x, r0 + r)?;
                    for (&j, &v) in idx.iter().zip(val) {
                        let p = self.pos[j as usize];
                        if p != u32::MAX {
                            let v = f64::from(v);
                            blk[p as usize * rows + r] = v;
                            self.sums[p as usize] += v;
                        }
                    }
                }
                self.add_block(&block[..rows * g], rows);
                r0 += rows;
            }
        } else {
            let mut ps: Vec<(usize, f64)> = Vec::new();
            for r in 0..n_rows {
                let (idx, val) = row_checked(x, r)?;
                ps.clear();
                for (&j, &v) in idx.iter().zip(val) {
                    let p = self.pos[j as usize];
                    if p != u32::MAX {
                        ps.push((p as usize, f64::from(v)));
                    }
                }
                ps.sort_by_key(|&(p, _)| p);
                for (a, &(pa, va)) in ps.iter().enumerate() {
                    self.sums[pa] += va;
                    let col = &mut self.gram[pa * g..(pa + 1) * g];
                    for &(pb, vb) in &ps[a..] {
                        col[pb] += va * vb;
                    }
                }
            }
        }
        self.n += n_rows as u64;
        Ok(())
    }

    /// Bytes of a state over `g` used genes.
    pub fn bytes_for(g: usize, n_genes: usize) -> usize {
        std::mem::size_of::<PcaState>() + 8 * g * g + 16 * g + 4 * n_genes
    }
}

fn gene_out_of_range(j: u32, n: usize) -> StageError {
    StageError::Batch(format!(
        "{STAGE}: gene index {j} out of range for {n} genes"
    ))
}

fn row_checked<'a>(x: &CsrView<'a>, r: usize) -> Result<(&'a [u32], &'a [f32])> {
    let (a, b) = (x.indptr[r], x.indptr[r + 1]);
    let (a, b) = (usize::try_from(a), usize::try_from(b));
    match (a, b) {
        (Ok(a), Ok(b)) if a <= b && b <= x.indices.len() && b <= x.values.len() => {
            Ok((&x.indices[a..b], &x.values[a..b]))
        }
        _ => Err(StageError::Batch(format!(
            "{STAGE}: malformed CSR offsets at row {r}"
        ))),
    }
}

impl FitState for PcaState {
    fn fold(&mut self, batch: &CellBatch) -> Result<()> {
        match batch.x()? {
            XView::Dense { data, n_cols } => self.fold_dense(data, n_cols),
            XView::Csr(c) => self.fold_csr(&c),
        }
    }

    fn merge(&mut self, other: Box<dyn FitState>) -> Result<()> {
        let other = downcast_state::<PcaState>(other, STAGE)?;
        if other.mask != self.mask {
            return Err(StageError::Batch(format!(
                "{STAGE}: merging states over different genes"
            )));
        }
        self.n += other.n;
        for (a, b) in self.sums.iter_mut().zip(&other.sums) {
            *a += b;
        }
        for (a, b) in self.gram.iter_mut().zip(&other.gram) {
            *a += b;
        }
        Ok(())
    }

    fn size_bytes(&self) -> usize {
        PcaState::bytes_for(self.g(), self.mask.n_genes)
    }

    fn save(&self) -> Option<Vec<u8>> {
        atlasflow_core::checkpoint::save(self)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        atlasflow_core::checkpoint::restore(STAGE, bytes, self, |s: &Self| vec![s.mask.used.len(), s.mask.n_genes, s.pos.len(), s.sums.len(), s.gram.len()])
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

/// What the PCA of a finished state gives: loadings, variances and the centring.
#[derive(Clone, Debug, PartialEq)]
pub struct PcaResult {
    /// The used genes and the mask name.
    pub mask: ResolvedMask,
    /// Loadings, used genes × n_comps, row-major (`varm/PCs` rows of the used genes).
    pub components: Vec<f64>,
    /// Number of components.
    pub n_comps: usize,
    /// Column means of the used genes (subtracted from x before projecting when centring).
    pub mean: Vec<f64>,
    /// Whether scores are centred.
    pub zero_center: bool,
    /// `uns[..]["variance"]`.
    pub variance: Vec<f64>,
    /// `uns[..]["variance_ratio"]`.
    pub variance_ratio: Vec<f64>,
}

impl Pca {
    /// The decomposition of a merged state (what `finish` computes).
    pub fn compute(&self, state: &PcaState) -> Result<PcaResult> {
        let g = state.g();
        let n_obs = usize::try_from(state.n).unwrap_or(usize::MAX);
        if n_obs == 0 {
            return Err(StageError::data(STAGE, "no cells"));
        }
        let k = self.resolve_n_comps(n_obs, g)?;
        let n = state.n as f64;
        let mean: Vec<f64> = state.sums.iter().map(|s| s / n).collect();
        // full symmetric matrices from the lower triangle
        let lower = |i: usize, j: usize| {
            if i >= j {
                state.gram[j * g + i]
            } else {
                state.gram[i * g + j]
            }
        };
        // ddof-1 covariance (zero_center) or ddof-0 covariance (TruncatedSVD's variances)
        let cov =
            |i: usize, j: usize, ddof: f64| (lower(i, j) - state.sums[i] * mean[j]) / (n - ddof);
        let (target, cov_for_var) = if self.zero_center {
            if n_obs < 2 {
                return Err(StageError::data(STAGE, "PCA needs at least 2 cells"));
            }
            let c = Mat::from_fn(g, g, |i, j| cov(i, j, 1.0));
            (c.clone(), c)
        } else {
            (
                Mat::from_fn(g, g, |i, j| lower(i, j) / n),
                Mat::from_fn(g, g, |i, j| cov(i, j, 0.0)),
            )
        };
        if (0..g).any(|i| !target[(i, i)].is_finite()) {
            return Err(StageError::data(
                STAGE,
                "the data contain NaN or infinite values",
            ));
        }
        let eig = target.self_adjoint_eigen(Side::Lower).map_err(|e| {
            StageError::data(STAGE, format!("eigendecomposition did not converge: {e:?}"))
        })?;
        let u = eig.U();
        let s = eig.S().column_vector();
        let mut components = vec![0.0; g * k];
        let mut eigvals = Vec::with_capacity(k);
        for c in 0..k {
            let src = g - 1 - c; // eigenvalues ascend
            let mut best = 0;
            for i in 1..g {
                if u[(i, src)].abs() > u[(best, src)].abs() {
                    best = i;
                }
            }
            let sign = if u[(best, src)] < 0.0 { -1.0 } else { 1.0 };
            for i in 0..g {
                components[i * k + c] = sign * u[(i, src)];
            }
            eigvals.push(s[src]);
        }
        let total: f64 = (0..g).map(|i| cov_for_var[(i, i)]).sum();
        let variance: Vec<f64> = if self.zero_center {
            eigvals
        } else {
            (0..k)
                .map(|c| {
                    let mut acc = 0.0;
                    for i in 0..g {
                        let mut row = 0.0;
                        for j in 0..g {
                            row += cov_for_var[(i, j)] * components[j * k + c];
                        }
                        acc += components[i * k + c] * row;
                    }
                    acc
                })
                .collect()
        };
        let variance_ratio = variance.iter().map(|v| v / total).collect();
        Ok(PcaResult {
            mask: state.mask.clone(),
            components,
            n_comps: k,
            mean,
            zero_center: self.zero_center,
            variance,
            variance_ratio,
        })
    }
}

impl FitStage for Pca {
    fn new_state(&self, genes: &GeneTable) -> Result<Box<dyn FitState>> {
        if let Some(0) = self.n_comps {
            return Err(StageError::param(STAGE, "n_comps", "must be at least 1"));
        }
        Ok(Box::new(PcaState::new(self.resolve_mask(genes)?)))
    }

    fn finish(&self, state: Box<dyn FitState>, genes: &GeneTable) -> Result<Fitted> {
        let state = downcast_state::<PcaState>(state, STAGE)?;
        if state.mask.n_genes != genes.n_genes() {
            return Err(StageError::Batch(format!(
                "{STAGE}: state of {} genes for a table of {}",
                state.mask.n_genes,
                genes.n_genes()
            )));
        }
        let result = self.compute(&state)?;
        let (obsm, varm, uns) = self.keys();
        Ok(Fitted::Map(Arc::new(PcaMap::new(result, obsm, varm, uns))))
    }

    fn state_bytes(&self, n_genes: usize) -> usize {
        PcaState::bytes_for(n_genes.min(MAX_GRAM_GENES), n_genes)
    }
}

/// Projects cells onto the components and annotates var and uns.
#[derive(Clone, Debug)]
pub struct PcaMap {
    /// The decomposition.
    pub result: PcaResult,
    /// The obsm key (`X_pca`).
    pub obsm_key: String,
    /// The varm key (`PCs`).
    pub varm_key: String,
    /// The uns key (`pca`).
    pub uns_key: String,
    /// μ·V, subtracted from sparse scores instead of densifying (zeros when uncentred).
    mean_proj: Vec<f64>,
}

impl PcaMap {
    /// A map from a finished decomposition and its three keys.
    pub fn new(result: PcaResult, obsm_key: String, varm_key: String, uns_key: String) -> Self {
        let k = result.n_comps;
        let mut mean_proj = vec![0.0; k];
        if result.zero_center {
            for (p, &m) in result.mean.iter().enumerate() {
                for (mp, &w) in mean_proj
                    .iter_mut()
                    .zip(&result.components[p * k..(p + 1) * k])
                {
                    *mp += m * w;
                }
            }
        }
        PcaMap {
            result,
            obsm_key,
            varm_key,
            uns_key,
            mean_proj,
        }
    }

    /// Scores of a batch, row-major cells × n_comps, in f64.
    pub fn scores(&self, batch: &CellBatch) -> Result<Vec<f64>> {
        let r = &self.result;
        let k = r.n_comps;
        let n_genes = r.mask.n_genes;
        let n_cells = batch.num_cells();
        let mut out = vec![0.0f64; n_cells * k];
        match batch.x()? {
            XView::Dense { data, n_cols } => {
                if n_cols != n_genes || data.len() != n_cells * n_cols {
                    return Err(StageError::Batch(format!(
                        "{STAGE}: batch of {n_cols} genes, PCA fitted on {n_genes}"
                    )));
                }
                let mut xc = vec![0.0f64; r.mask.used.len()];
                for (row, o) in data.chunks_exact(n_cols).zip(out.chunks_exact_mut(k)) {
                    for (p, &j) in r.mask.used.iter().enumerate() {
                        let v = f64::from(row[j]);
                        xc[p] = if r.zero_center { v - r.mean[p] } else { v };
                    }
                    for (p, &v) in xc.iter().enumerate() {
                        let comp = &r.components[p * k..(p + 1) * k];
                        for (oc, &w) in o.iter_mut().zip(comp) {
                            *oc += v * w;
                        }
                    }
                }
            }
            XView::Csr(x) => {
                if x.n_cols != n_genes {
                    return Err(StageError::Batch(format!(
                        "{STAGE}: batch of {} genes, PCA fitted on {n_genes}",
                        x.n_cols
                    )));
                }
                let mut pos = vec![u32::MAX; n_genes];
                for (p, &j) in r.mask.used.iter().enumerate() {
                    pos[j] = p as u32;
                }
                for (i, o) in out.chunks_exact_mut(k).enumerate() {
                    let (idx, val) = row_checked(&x, i)?;
                    for (&j, &v) in idx.iter().zip(val) {
                        let p = *pos
                            .get(j as usize)
                            .ok_or_else(|| gene_out_of_range(j, n_genes))?;
                        if p == u32::MAX {
                            continue;
                        }
                        let comp = &r.components[p as usize * k..(p as usize + 1) * k];
                        for (oc, &w) in o.iter_mut().zip(comp) {
                            *oc += f64::from(v) * w;
                        }
                    }
                    for (oc, &m) in o.iter_mut().zip(&self.mean_proj) {
                        *oc -= m;
                    }
                }
            }
        }
        Ok(out)
    }

    /// `varm/PCs` rows for all genes of the table (zero rows outside the mask), row-major.
    pub fn loadings_all_genes(&self) -> Vec<f64> {
        let r = &self.result;
        let k = r.n_comps;
        let mut all = vec![0.0; r.mask.n_genes * k];
        for (p, &j) in r.mask.used.iter().enumerate() {
            all[j * k..(j + 1) * k].copy_from_slice(&r.components[p * k..(p + 1) * k]);
        }
        all
    }
}

impl MapStage for PcaMap {
    fn map(&self, batch: CellBatch) -> Result<CellBatch> {
        let scores = self.scores(&batch)?;
        let data: Vec<f32> = scores.iter().map(|&v| v as f32).collect();
        batch.with_obsm(&self.obsm_key, data, self.result.n_comps)
    }

    fn genes(&self, genes: &GeneTable) -> Result<GeneTable> {
        if genes.n_genes() != self.result.mask.n_genes {
            return Err(StageError::Batch(format!(
                "{STAGE}: gene table of {} genes, PCA fitted on {}",
                genes.n_genes(),
                self.result.mask.n_genes
            )));
        }
        let k = self.result.n_comps;
        let width =
            i32::try_from(k).map_err(|_| StageError::param(STAGE, "n_comps", "too large"))?;
        let item = Arc::new(Field::new("item", DataType::Float64, false));
        let values = Arc::new(Float64Array::from(self.loadings_all_genes()));
        let arr: ArrayRef = Arc::new(FixedSizeListArray::try_new(item, width, values, None)?);
        genes.with_column(&format!("{VARM_PREFIX}{}", self.varm_key), arr)
    }

    fn uns(&self) -> Vec<(String, Uns)> {
        let r = &self.result;
        let mask = match &r.mask.column {
            Some(c) => Uns::Str(c.clone()),
            None => Uns::Null,
        };
        let params = Uns::map()
            .with("zero_center", Uns::Bool(r.zero_center))
            .with(
                "use_highly_variable",
                Uns::Bool(r.mask.column.as_deref() == Some("highly_variable")),
            )
            .with("mask_var", mask);
        let entry = Uns::map()
            .with("params", params)
            .with("variance", Uns::FloatArray(r.variance.clone()))
            .with("variance_ratio", Uns::FloatArray(r.variance_ratio.clone()));
        vec![(self.uns_key.clone(), entry)]
    }
}
