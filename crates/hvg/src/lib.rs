//! `highly_variable_genes` (scanpy's `sc.pp.highly_variable_genes`), flavors "seurat" (the
//! default) and "cell_ranger", single batch, as a fit → map stage.
//!
//! The fit folds per-gene first and second moments ([`GeneMoments`], scanpy's K1) of
//! expm1(X) (seurat; expm1(X·ln b) when the log1p step recorded a base b) or of X
//! (cell_ranger). `finish` runs the selection maths of [`select`] on the merged moments and
//! returns a map that adds the var columns `highly_variable` (bool), `means` (f64),
//! `dispersions` (f64) and `dispersions_norm` (f32, computed and selected in f64, as scanpy
//! stores it), records `uns["hvg"] = {"flavor": …}`, and with `subset` drops the other genes
//! from the batches and the gene table.
//!
//! Deviations from scanpy, all documented in [`select`] or here:
//! - the moments are computed in f64 from the f32 stream values (scanpy computes them in the
//!   X dtype, f64 in the tutorial);
//! - `n_top_genes = 0` is refused (scanpy would then select every gene with a non-NaN
//!   normalized dispersion, an accident of `x[n - 1]` with n = 0);
//! - as in scanpy, cutoffs are ignored when `n_top_genes` is set (scanpy also warns).

pub mod select;

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float32Array, Float64Array};
use atlasflow_core::batch::subset_genes;
use atlasflow_core::moments::GeneMoments;
use atlasflow_core::stage::downcast_state;
use atlasflow_core::{
    CellBatch, FitStage, FitState, Fitted, GeneTable, MapStage, Result, StageError, Uns, XView,
};

pub use select::{Cutoff, HvgResult, STAGE};

/// Which of scanpy's HVG flavors to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Flavor {
    /// "seurat": dispersions of expm1(X), log-scaled, z-scored within equal-width mean bins.
    #[default]
    Seurat,
    /// "cell_ranger": dispersions of X, normalized by median/MAD within percentile bins.
    CellRanger,
}

impl Flavor {
    /// scanpy's name of the flavor (`uns["hvg"]["flavor"]`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Flavor::Seurat => "seurat",
            Flavor::CellRanger => "cell_ranger",
        }
    }
}

/// The `highly_variable_genes` stage, with scanpy's parameter names and defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct HighlyVariableGenes {
    /// `flavor` (default seurat).
    pub flavor: Flavor,
    /// `n_top_genes`: select this many genes by normalized dispersion (more on ties); when
    /// set, the four cutoffs are ignored.
    pub n_top_genes: Option<usize>,
    /// `min_mean` (default 0.0125), strict lower bound on `means`.
    pub min_mean: f64,
    /// `max_mean` (default 3), strict upper bound on `means`.
    pub max_mean: f64,
    /// `min_disp` (default 0.5), strict lower bound on `dispersions_norm`.
    pub min_disp: f64,
    /// `max_disp` (default inf), strict upper bound on `dispersions_norm`.
    pub max_disp: f64,
    /// `n_bins` (default 20): equal-width mean bins of flavor seurat (cell_ranger always
    /// uses its percentile bins, as in scanpy).
    pub n_bins: usize,
    /// `subset` (default false): keep only the highly variable genes downstream.
    pub subset: bool,
    /// `uns["log1p"]["base"]` of the data (None for the natural log): seurat un-logs with
    /// expm1(x·ln base). The engine fills it from the log1p stage.
    pub log1p_base: Option<f64>,
}

impl Default for HighlyVariableGenes {
    fn default() -> Self {
        HighlyVariableGenes {
            flavor: Flavor::Seurat,
            n_top_genes: None,
            min_mean: 0.0125,
            max_mean: 3.0,
            min_disp: 0.5,
            max_disp: f64::INFINITY,
            n_bins: 20,
            subset: false,
            log1p_base: None,
        }
    }
}

impl HighlyVariableGenes {
    fn cutoff(&self) -> Cutoff {
        match self.n_top_genes {
            Some(k) => Cutoff::NTopGenes(k),
            None => Cutoff::Bounds {
                min_mean: self.min_mean,
                max_mean: self.max_mean,
                min_disp: self.min_disp,
                max_disp: self.max_disp,
            },
        }
    }

    /// ln(base) for seurat's un-logging, validated.
    fn log_factor(&self) -> Result<Option<f64>> {
        match self.log1p_base {
            None => Ok(None),
            Some(b) if b.is_finite() && b > 0.0 && b != 1.0 => Ok(Some(b.ln())),
            Some(b) => Err(StageError::param(
                STAGE,
                "log1p_base",
                format!("{b} is not a valid logarithm base"),
            )),
        }
    }

    fn validate(&self) -> Result<()> {
        if self.n_top_genes == Some(0) {
            return Err(StageError::param(
                STAGE,
                "n_top_genes",
                "must be at least 1",
            ));
        }
        if self.flavor == Flavor::Seurat && self.n_bins == 0 {
            return Err(StageError::param(
                STAGE,
                "n_bins",
                "must be a positive integer",
            ));
        }
        self.log_factor()?;
        Ok(())
    }

    /// The selection on finished moments (what `finish` runs), for callers holding moments.
    pub fn select(&self, moments: &GeneMoments) -> Result<HvgResult> {
        self.validate()?;
        if moments.n == 0 {
            return Err(StageError::data(
                STAGE,
                "no cells: means and dispersions are undefined",
            ));
        }
        let (mean, var) = moments.mean_var();
        match self.flavor {
            Flavor::Seurat => select::seurat(&mean, &var, self.n_bins, &self.cutoff()),
            Flavor::CellRanger => select::cell_ranger(&mean, &var, &self.cutoff()),
        }
    }
}

/// The fit state: per-gene moments of the flavor's input.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct HvgState {
    /// Sums and sums of squares of expm1(x·ln b) (seurat) or x (cell_ranger).
    pub moments: GeneMoments,
    flavor: Flavor,
    log_factor: Option<f64>,
}

impl HvgState {
    fn fold_x(&mut self, x: XView<'_>) -> Result<()> {
        match (self.flavor, self.log_factor, x) {
            (Flavor::CellRanger, _, XView::Csr(c)) => self.moments.fold_csr(&c, f64::from),
            (Flavor::CellRanger, _, XView::Dense { data, n_cols }) => {
                self.moments.fold_dense(data, n_cols, f64::from)
            }
            (Flavor::Seurat, None, XView::Csr(c)) => {
                self.moments.fold_csr(&c, |v| f64::from(v).exp_m1())
            }
            (Flavor::Seurat, None, XView::Dense { data, n_cols }) => {
                self.moments
                    .fold_dense(data, n_cols, |v| f64::from(v).exp_m1())
            }
            (Flavor::Seurat, Some(l), XView::Csr(c)) => {
                self.moments.fold_csr(&c, |v| (f64::from(v) * l).exp_m1())
            }
            (Flavor::Seurat, Some(l), XView::Dense { data, n_cols }) => {
                self.moments
                    .fold_dense(data, n_cols, |v| (f64::from(v) * l).exp_m1())
            }
        }
    }
}

impl FitState for HvgState {
    fn fold(&mut self, batch: &CellBatch) -> Result<()> {
        self.fold_x(batch.x()?)
    }

    fn merge(&mut self, other: Box<dyn FitState>) -> Result<()> {
        let other = downcast_state::<HvgState>(other, STAGE)?;
        self.moments.merge(&other.moments)
    }

    fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.moments.size_bytes()
    }

    fn save(&self) -> Option<Vec<u8>> {
        atlasflow_core::checkpoint::save(self)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        atlasflow_core::checkpoint::restore(STAGE, bytes, self, |s: &Self| vec![s.moments.sum.len(), s.moments.sumsq.len()])
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

impl FitStage for HighlyVariableGenes {
    fn new_state(&self, genes: &GeneTable) -> Result<Box<dyn FitState>> {
        self.validate()?;
        Ok(Box::new(HvgState {
            moments: GeneMoments::new(genes.n_genes()),
            flavor: self.flavor,
            log_factor: self.log_factor()?,
        }))
    }

    fn finish(&self, state: Box<dyn FitState>, genes: &GeneTable) -> Result<Fitted> {
        let state = downcast_state::<HvgState>(state, STAGE)?;
        if state.moments.n_genes() != genes.n_genes() {
            return Err(StageError::Batch(format!(
                "{STAGE}: state of {} genes for a table of {}",
                state.moments.n_genes(),
                genes.n_genes()
            )));
        }
        let result = self.select(&state.moments)?;
        Ok(Fitted::Map(Arc::new(HvgMap {
            result,
            flavor: self.flavor,
            subset: self.subset,
        })))
    }

    fn state_bytes(&self, n_genes: usize) -> usize {
        std::mem::size_of::<HvgState>() + 16 * n_genes
    }

    /// Its map only drops genes (or none, without `subset`): scale's per-gene moments
    /// can share this pass. It is not annotate-only even without `subset`, because a later
    /// fit (pca's default mask) reads the `highly_variable` column it writes.
    fn finishes_as_gene_subset(&self) -> bool {
        true
    }
}

/// The map a finished HVG fit returns: annotates the gene table and, with `subset`, drops
/// the genes that are not highly variable.
#[derive(Clone, Debug)]
pub struct HvgMap {
    /// The per-gene outputs.
    pub result: HvgResult,
    /// The flavor, recorded in `uns["hvg"]`.
    pub flavor: Flavor,
    /// Whether non-HV genes are dropped.
    pub subset: bool,
}

impl MapStage for HvgMap {
    fn map(&self, batch: CellBatch) -> Result<CellBatch> {
        if self.subset {
            subset_genes(&batch, &self.result.highly_variable)
        } else {
            Ok(batch)
        }
    }

    fn gene_mask(&self) -> Option<Vec<bool>> {
        Some(if self.subset { self.result.highly_variable.clone() } else { vec![true; self.result.highly_variable.len()] })
    }

    fn genes(&self, genes: &GeneTable) -> Result<GeneTable> {
        let r = &self.result;
        let hv: ArrayRef = Arc::new(BooleanArray::from(r.highly_variable.clone()));
        let means: ArrayRef = Arc::new(Float64Array::from(r.means.clone()));
        let disp: ArrayRef = Arc::new(Float64Array::from(r.dispersions.clone()));
        let norm: ArrayRef = Arc::new(Float32Array::from(
            r.dispersions_norm
                .iter()
                .map(|&v| v as f32)
                .collect::<Vec<_>>(),
        ));
        let g = genes
            .with_column("highly_variable", hv)?
            .with_column("means", means)?
            .with_column("dispersions", disp)?
            .with_column("dispersions_norm", norm)?;
        if self.subset {
            g.subset(&r.highly_variable)
        } else {
            Ok(g)
        }
    }

    fn uns(&self) -> Vec<(String, Uns)> {
        vec![(
            "hvg".to_string(),
            Uns::map().with("flavor", Uns::Str(self.flavor.as_str().to_string())),
        )]
    }
}
