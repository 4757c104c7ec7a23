//! `sc.pp.normalize_total` (semantics reference §2.1), on scanpy's CSR path.
//!
//! - Cell totals: sequential f64 sums of the stored values (over the genes not excluded,
//!   when `exclude_highly_expressed`).
//! - factor_i = total_i / target_sum; each value x ← f32(f64(x) / factor'_i) with
//!   factor' = factor where zeros are replaced by 1 (a zero-count cell stays all zero).
//! - `key_added` writes obs[key_added] = factor_i (f64, zeros kept), which is what scanpy
//!   stores (not the total, despite its docstring).
//!
//! Stages by case ([`normalize_total_stage`]):
//! - `target_sum` given, no exclusion: a plain map, [`NormalizeTotal`].
//! - no `target_sum`: a fit collecting every cell's total, in cell order, whose finish takes
//!   the numpy median over **all** cells, zero totals included (scanpy's CSR path; its dense
//!   path uses non-zero totals only; we always follow the CSR path, which is what the Census
//!   data takes). A median of 0 (more than half the cells empty) is refused: scanpy would
//!   divide by 0 and silently turn X into zeros and NaNs. This fit's state holds 8 bytes per
//!   cell.
//! - `exclude_highly_expressed`: a fit marks the genes with x > max_fraction · total_i in
//!   any cell (OR over granules); then either the map (with `target_sum`) or a refit to the
//!   median of the totals over the remaining genes.

use std::sync::Arc;

use arrow::array::Float64Array;
use atlasflow_core::rows::{cell_name, rows};
use atlasflow_core::stage::downcast_state;
use atlasflow_core::{CellBatch, FitStage, FitState, Fitted, GeneTable, MapStage, Result, StageError};

use crate::{check_x, map_values};

const STAGE: &str = "normalize_total";

/// Per-cell totals: the f64 sum of each row's entries, in stored order, skipping genes
/// with `exclude[j]` true.
pub fn cell_totals(batch: &CellBatch, exclude: Option<&[bool]>) -> Result<Vec<f64>> {
    let n_genes = batch.n_genes();
    if let Some(e) = exclude
        && e.len() != n_genes
    {
        return Err(StageError::Batch(format!("{STAGE}: gene mask of {} for {n_genes} genes", e.len())));
    }
    let x = check_x(batch, n_genes, STAGE)?;
    Ok(rows(&x, batch.num_cells())
        .iter()
        .map(|row| {
            let mut s = 0.0f64;
            match exclude {
                None => row.for_each(|_, v| s += f64::from(v)),
                Some(e) => row.for_each(|j, v| {
                    if !e[j] {
                        s += f64::from(v)
                    }
                }),
            }
            s
        })
        .collect())
}

/// numpy's median: the middle value, or the mean of the two middle values for an even
/// count; None for no values. NaN values must have been rejected before.
pub fn median(values: &[f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mut v = values.to_vec();
    let (_, &mut hi, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        return Some(hi);
    }
    let lo = v[..n / 2].iter().copied().max_by(f64::total_cmp).unwrap_or(hi);
    Some((lo + hi) / 2.0)
}

/// The normalize_total map: divide each cell by total / `target_sum`.
#[derive(Clone, Debug, PartialEq)]
pub struct NormalizeTotal {
    /// Each cell's total after normalization (scanpy's `target_sum`).
    target_sum: f64,
    /// Genes left out of the totals (true = excluded), from exclude_highly_expressed.
    exclude: Option<Vec<bool>>,
    /// Obs column for the factors, if any (scanpy's `key_added`).
    key_added: Option<String>,
}

impl NormalizeTotal {
    /// The map for a known target: `target_sum` must be a positive finite number;
    /// `exclude` (one entry per gene, true = left out of the totals) is checked against each
    /// batch's width.
    pub fn new(target_sum: f64, exclude: Option<Vec<bool>>, key_added: Option<String>) -> Result<Self> {
        check_target(target_sum)?;
        Ok(NormalizeTotal { target_sum, exclude, key_added })
    }

    /// The target sum.
    pub fn target_sum(&self) -> f64 {
        self.target_sum
    }

    /// The excluded genes (true = left out of the totals), if any.
    pub fn exclude(&self) -> Option<&[bool]> {
        self.exclude.as_deref()
    }

    /// The obs column the factors go to, if any.
    pub fn key_added(&self) -> Option<&str> {
        self.key_added.as_deref()
    }
}

fn check_target(t: f64) -> Result<()> {
    if t > 0.0 && t.is_finite() {
        Ok(())
    } else {
        Err(StageError::param(STAGE, "target_sum", format!("{t} is not a positive number")))
    }
}

impl MapStage for NormalizeTotal {
    fn map(&self, batch: CellBatch) -> Result<CellBatch> {
        let totals = cell_totals(&batch, self.exclude.as_deref())?;
        let factors: Vec<f64> = totals.iter().map(|t| t / self.target_sum).collect();
        let divisors: Vec<f64> = factors.iter().map(|&f| if f == 0.0 { 1.0 } else { f }).collect();
        let out = map_values(&batch, batch.n_genes(), STAGE, |i, _, x| (f64::from(x) / divisors[i]) as f32)?;
        match &self.key_added {
            Some(k) => out.with_obs_column(k, Arc::new(Float64Array::from(factors))),
            None => Ok(out),
        }
    }
}

/// What [`normalize_total_stage`] gives: a map when no pass is needed, else a fit.
pub enum NormalizeTotalPlan {
    /// `target_sum` given and no exclusion.
    Map(NormalizeTotal),
    /// A pass is needed first (median target and/or highly expressed genes).
    Fit(Arc<dyn FitStage>),
}

/// Build normalize_total from scanpy's parameters (`target_sum=None` means the median of
/// the cell totals). `max_fraction` must lie in [0, 1] (scanpy raises ValueError
/// otherwise, whether or not exclusion is on); `target_sum`, if given, must be positive.
pub fn normalize_total_stage(
    target_sum: Option<f64>,
    exclude_highly_expressed: bool,
    max_fraction: f64,
    key_added: Option<String>,
) -> Result<NormalizeTotalPlan> {
    if !(0.0..=1.0).contains(&max_fraction) {
        return Err(StageError::param(STAGE, "max_fraction", format!("{max_fraction} is not between 0 and 1")));
    }
    if let Some(t) = target_sum {
        check_target(t)?;
    }
    Ok(match (exclude_highly_expressed, target_sum) {
        (false, Some(t)) => NormalizeTotalPlan::Map(NormalizeTotal::new(t, None, key_added)?),
        (false, None) => NormalizeTotalPlan::Fit(Arc::new(MedianFit { exclude: None, key_added })),
        (true, _) => NormalizeTotalPlan::Fit(Arc::new(HighlyExpressedFit { max_fraction, target_sum, key_added })),
    })
}

/// The fit finding the highly expressed genes: x > max_fraction · total_i in any cell,
/// compared in f64 with the full totals.
#[derive(Clone, Debug, PartialEq)]
pub struct HighlyExpressedFit {
    /// scanpy's `max_fraction`.
    pub max_fraction: f64,
    /// The target, or None for the median (then a [`MedianFit`] follows).
    pub target_sum: Option<f64>,
    /// Obs column for the factors.
    pub key_added: Option<String>,
}

/// State of [`HighlyExpressedFit`]: per gene, whether some cell so far had it above the
/// fraction.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HighlyExpressedState {
    /// The fraction the values are compared with.
    pub max_fraction: f64,
    /// Per gene, true once some cell had x > max_fraction · total.
    pub high: Vec<bool>,
}

impl FitState for HighlyExpressedState {
    fn fold(&mut self, batch: &CellBatch) -> Result<()> {
        let totals = cell_totals(batch, None)?;
        let x = check_x(batch, self.high.len(), STAGE)?;
        for (row, t) in rows(&x, batch.num_cells()).iter().zip(&totals) {
            let lim = self.max_fraction * t;
            row.for_each(|j, v| {
                if f64::from(v) > lim {
                    self.high[j] = true;
                }
            });
        }
        Ok(())
    }

    fn merge(&mut self, other: Box<dyn FitState>) -> Result<()> {
        let o = downcast_state::<HighlyExpressedState>(other, STAGE)?;
        if o.high.len() != self.high.len() {
            return Err(StageError::Batch(format!("{STAGE}: merging states of {} and {} genes", self.high.len(), o.high.len())));
        }
        self.high.iter_mut().zip(&o.high).for_each(|(a, b)| *a |= b);
        Ok(())
    }

    fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.high.len()
    }

    fn save(&self) -> Option<Vec<u8>> {
        atlasflow_core::checkpoint::save(self)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        atlasflow_core::checkpoint::restore(STAGE, bytes, self, |s: &Self| vec![s.high.len()])
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

impl FitStage for HighlyExpressedFit {
    fn new_state(&self, genes: &GeneTable) -> Result<Box<dyn FitState>> {
        Ok(Box::new(HighlyExpressedState { max_fraction: self.max_fraction, high: vec![false; genes.n_genes()] }))
    }

    fn finish(&self, state: Box<dyn FitState>, genes: &GeneTable) -> Result<Fitted> {
        let s = downcast_state::<HighlyExpressedState>(state, STAGE)?;
        if s.high.len() != genes.n_genes() {
            return Err(StageError::Batch(format!("{STAGE}: state of {} genes for {} genes", s.high.len(), genes.n_genes())));
        }
        let exclude = Some(s.high);
        Ok(match self.target_sum {
            Some(t) => Fitted::Map(Arc::new(NormalizeTotal::new(t, exclude, self.key_added.clone())?)),
            None => Fitted::Refit(Arc::new(MedianFit { exclude, key_added: self.key_added.clone() })),
        })
    }

    fn state_bytes(&self, n_genes: usize) -> usize {
        std::mem::size_of::<HighlyExpressedState>() + n_genes
    }
}

/// The fit taking the median of all cell totals (over the non-excluded genes) as the
/// target.
#[derive(Clone, Debug, PartialEq)]
pub struct MedianFit {
    /// Genes left out of the totals (true = excluded).
    pub exclude: Option<Vec<bool>>,
    /// Obs column for the factors.
    pub key_added: Option<String>,
}

/// State of [`MedianFit`]: every cell's total, in cell order (8 bytes per cell).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TotalsState {
    /// Genes left out of the totals.
    pub exclude: Option<Vec<bool>>,
    /// The totals so far, in cell order.
    pub totals: Vec<f64>,
}

impl FitState for TotalsState {
    fn fold(&mut self, batch: &CellBatch) -> Result<()> {
        let t = cell_totals(batch, self.exclude.as_deref())?;
        if let Some(i) = t.iter().position(|v| v.is_nan()) {
            return Err(StageError::data(
                STAGE,
                format!("cell {} has a NaN total, so the median of the totals is undefined", cell_name(batch, i)),
            ));
        }
        self.totals.extend(t);
        Ok(())
    }

    fn merge(&mut self, other: Box<dyn FitState>) -> Result<()> {
        let o = downcast_state::<TotalsState>(other, STAGE)?;
        self.totals.extend(o.totals);
        Ok(())
    }

    fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + 8 * self.totals.len() + self.exclude.as_ref().map_or(0, Vec::len)
    }

    fn save(&self) -> Option<Vec<u8>> {
        atlasflow_core::checkpoint::save(self)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        atlasflow_core::checkpoint::restore(STAGE, bytes, self, |s: &Self| vec![s.exclude.as_ref().map_or(0, Vec::len)])
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

impl FitStage for MedianFit {
    fn new_state(&self, _genes: &GeneTable) -> Result<Box<dyn FitState>> {
        Ok(Box::new(TotalsState { exclude: self.exclude.clone(), totals: Vec::new() }))
    }

    /// The median of all totals (zeros included) becomes the target; a median of 0 or no
    /// cells at all is an error.
    fn finish(&self, state: Box<dyn FitState>, _genes: &GeneTable) -> Result<Fitted> {
        let s = downcast_state::<TotalsState>(state, STAGE)?;
        let Some(m) = median(&s.totals) else {
            return Err(StageError::data(STAGE, "no cells to take the median of the totals from (target_sum is unset)"));
        };
        if m <= 0.0 {
            let zeros = s.totals.iter().filter(|&&t| t == 0.0).count();
            return Err(StageError::data(
                STAGE,
                format!(
                    "the median cell total is {m}: {zeros} of {} cells have zero counts{}, more than half. \
                     scanpy would divide by it and silently zero X; filter empty cells first \
                     (filter_cells min_counts/min_genes) or give target_sum",
                    s.totals.len(),
                    if self.exclude.is_some() { " outside the highly expressed genes" } else { "" }
                ),
            ));
        }
        Ok(Fitted::Map(Arc::new(NormalizeTotal::new(m, self.exclude.clone(), self.key_added.clone())?)))
    }

    /// The per-gene part only: the state also grows by 8 bytes per cell folded.
    fn state_bytes(&self, n_genes: usize) -> usize {
        std::mem::size_of::<TotalsState>() + self.exclude.as_ref().map_or(0, |_| n_genes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, StringArray};
    use arrow::datatypes::Float64Type;
    use atlasflow_core::{Csr, XView};

    fn batch(rows: &[Vec<f32>]) -> CellBatch {
        let ids: arrow::array::ArrayRef =
            Arc::new(StringArray::from((0..rows.len()).map(|i| format!("c{i}")).collect::<Vec<_>>()));
        CellBatch::from_csr(vec![("cell_id".into(), ids)], Csr::from_dense(rows)).expect("batch")
    }

    fn dense(b: &CellBatch) -> Vec<Vec<f32>> {
        match b.x().expect("x") {
            XView::Csr(v) => v.to_owned().to_dense(),
            XView::Dense { data, n_cols } => data.chunks(n_cols).map(<[f32]>::to_vec).collect(),
        }
    }

    /// scanpy's docstring example (normalize_total): X = [[3,3,3,6,6],[1,1,1,2,2],[1,22,1,2,2]].
    fn doc_rows() -> Vec<Vec<f32>> {
        vec![vec![3.0, 3.0, 3.0, 6.0, 6.0], vec![1.0, 1.0, 1.0, 2.0, 2.0], vec![1.0, 22.0, 1.0, 2.0, 2.0]]
    }

    fn genes(n: usize) -> GeneTable {
        GeneTable::from_names((0..n).map(|j| format!("g{j}")).collect())
    }

    /// Run a plan to its map over the given granules (each folded into its own state and
    /// merged in order, as the engine does).
    fn run(plan: NormalizeTotalPlan, parts: &[CellBatch], g: &GeneTable) -> Arc<dyn MapStage> {
        let mut fit = match plan {
            NormalizeTotalPlan::Map(m) => return Arc::new(m),
            NormalizeTotalPlan::Fit(f) => f,
        };
        loop {
            let mut st = fit.new_state(g).expect("state");
            for (i, p) in parts.iter().enumerate() {
                if i == 0 {
                    st.fold(p).expect("fold");
                } else {
                    let mut s = fit.new_state(g).expect("state");
                    s.fold(p).expect("fold");
                    st.merge(s).expect("merge");
                }
            }
            match fit.finish(st, g).expect("finish") {
                Fitted::Map(m) => return m,
                Fitted::Refit(f) => fit = f,
            }
        }
    }

    #[test]
    fn target_sum_map_by_hand() {
        // totals 21, 7, 28; target 1 → factors 21, 7, 28 (scanpy's docstring output:
        // [[0.14,0.14,0.14,0.29,0.29], [same], [0.04,0.79,0.04,0.07,0.07]])
        let NormalizeTotalPlan::Map(m) = normalize_total_stage(Some(1.0), false, 0.05, Some("norm".into())).expect("plan")
        else {
            panic!("map")
        };
        let out = m.map(batch(&doc_rows())).expect("map");
        let x = dense(&out);
        assert_eq!(x[0][0], (3.0f64 / 21.0) as f32);
        assert_eq!(x[2][1], (22.0f64 / 28.0) as f32);
        let f = out.obs_column("norm").expect("key").as_primitive::<Float64Type>().values().to_vec();
        assert_eq!(f, vec![21.0, 7.0, 28.0]);
    }

    #[test]
    fn zero_cells_stay_zero_and_factor_zero_is_kept() {
        let m = NormalizeTotal::new(1e4, None, Some("f".into())).expect("new");
        let out = m.map(batch(&[vec![0.0, 0.0], vec![1.0, 3.0]])).expect("map");
        assert_eq!(dense(&out), vec![vec![0.0, 0.0], vec![2500.0, 7500.0]]);
        let f = out.obs_column("f").expect("f").as_primitive::<Float64Type>().values().to_vec();
        assert_eq!(f, vec![0.0, 4e-4]);
    }

    #[test]
    fn exclude_highly_expressed_docstring() {
        // scanpy's docstring: target_sum=1, exclude_highly_expressed, max_fraction=0.2 →
        // genes 1, 3, 4 excluded; totals over genes 0, 2: 6, 2, 2 →
        // [[0.5,0.5,0.5,1,1],[0.5,0.5,0.5,1,1],[0.5,11,0.5,1,1]]
        let b = batch(&doc_rows());
        let plan = normalize_total_stage(Some(1.0), true, 0.2, None).expect("plan");
        let m = run(plan, &[b.slice(0, 1), b.slice(1, 2)], &genes(5));
        let x = dense(&m.map(b).expect("map"));
        assert_eq!(x, vec![vec![0.5, 0.5, 0.5, 1.0, 1.0], vec![0.5, 0.5, 0.5, 1.0, 1.0], vec![0.5, 11.0, 0.5, 1.0, 1.0]]);
    }

    #[test]
    fn median_target() {
        // totals 21, 7, 28 → median 21; with exclusion (max_fraction 0.2) the totals are
        // 6, 2, 2 → median 2.
        let b = batch(&doc_rows());
        let g = genes(5);
        let m = run(normalize_total_stage(None, false, 0.05, None).expect("plan"), std::slice::from_ref(&b), &g);
        let x = dense(&m.map(b.clone()).expect("map"));
        assert_eq!(x[1], vec![3.0, 3.0, 3.0, 6.0, 6.0]);
        let m = run(normalize_total_stage(None, true, 0.2, None).expect("plan"), &[b.slice(0, 2), b.slice(2, 1)], &g);
        let x = dense(&m.map(b).expect("map"));
        assert_eq!(x[0], vec![1.0, 1.0, 1.0, 2.0, 2.0]);
        // numpy: np.median([0, 1, 4, 10]) = 2.5, np.median([3, 1, 2]) = 2
        assert_eq!(median(&[10.0, 0.0, 4.0, 1.0]), Some(2.5));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn median_zero_and_bad_params() {
        let b = batch(&[vec![0.0, 0.0], vec![0.0, 0.0], vec![1.0, 0.0]]);
        let NormalizeTotalPlan::Fit(f) = normalize_total_stage(None, false, 0.05, None).expect("plan") else {
            panic!("fit")
        };
        let mut st = f.new_state(&genes(2)).expect("state");
        st.fold(&b).expect("fold");
        let e = f.finish(st, &genes(2)).err().expect("median 0").to_string();
        assert!(e.contains("2 of 3 cells have zero counts"), "{e}");
        assert!(normalize_total_stage(Some(1e4), true, 1.5, None).is_err());
        assert!(normalize_total_stage(Some(1e4), false, -0.1, None).is_err());
        assert!(normalize_total_stage(Some(0.0), false, 0.05, None).is_err());
        assert!(NormalizeTotal::new(f64::NAN, None, None).is_err());
        let m = NormalizeTotal::new(1.0, Some(vec![true]), None).expect("new");
        assert!(m.map(b).is_err());
    }

    #[test]
    fn dense_input_matches_sparse() {
        let b = batch(&doc_rows());
        let d = b.with_x_dense(doc_rows().concat(), 5).expect("dense");
        let m = NormalizeTotal::new(10.0, None, None).expect("new");
        assert_eq!(dense(&m.map(b).expect("s")), dense(&m.map(d).expect("d")));
    }
}
