//! `sc.pp.calculate_qc_metrics` (semantics reference §1.1), split in the two halves a
//! stream needs:
//!
//! - [`QcCells`], a map: the per-cell columns `n_genes_by_counts`, `total_counts`,
//!   `pct_counts_in_top_{N}_genes`, `total_counts_{q}`/`pct_counts_{q}` and their `log1p_*`
//!   companions, computed row by row;
//! - [`QcGenes`], a fit that only annotates: per-gene non-zero counts and sums folded over
//!   every cell, finished into [`GeneColumns`] (identity on batches) whose
//!   [`MapStage::genes`] adds `n_cells_by_counts`, `mean_counts`, `pct_dropout_by_counts`,
//!   `total_counts` and their `log1p_*` companions to var.
//!
//! Only scanpy's default names (`expr_type="counts"`, `var_type="genes"`) are produced.
//!
//! Deviations from scanpy, all documented:
//! - every sum is accumulated in f64 in row (cell) order and stored as f64; scanpy stores
//!   sums in the X dtype (f64 in the Census tutorial, so identical dtypes there; on f32
//!   input scanpy's sums differ by ≤ 2e-7 relative);
//! - `n_genes_by_counts` is Int32 for dense input too (scanpy gives int64 for dense X);
//! - scanpy's `eliminate_zeros()` mutates the user's matrix; here stored zeros are simply
//!   not counted and the stream is untouched.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int32Array, Int64Array};
use arrow::datatypes::DataType;
use atlasflow_core::rows::{Row, checked_x, rows};
use atlasflow_core::stage::downcast_state;
use atlasflow_core::{CellBatch, FitStage, FitState, Fitted, GeneTable, MapStage, Result, StageError};

const STAGE: &str = "calculate_qc_metrics";

/// Per-cell QC columns (the obs half of `sc.pp.calculate_qc_metrics`).
#[derive(Clone, Debug)]
pub struct QcCells {
    /// Sorted, de-duplicated ranks N for `pct_counts_in_top_{N}_genes` (scanpy's
    /// `percent_top`; empty for `None`).
    pub percent_top: Vec<usize>,
    /// Whether to add the `log1p_*` columns (scanpy's `log1p`).
    pub log1p: bool,
    /// Boolean var columns to sum over (scanpy's `qc_vars`, e.g. `mt`).
    pub qc_vars: Vec<String>,
    /// The mask of each qc var, read from the gene table at construction.
    masks: Vec<Vec<bool>>,
    /// Number of genes of the stream this stage was built for.
    n_genes: usize,
}

impl QcCells {
    /// Check the parameters against the stream's genes: every `qc_vars` entry must be a
    /// boolean var column without nulls, and every `percent_top` entry must be in
    /// `1..=n_genes` (scanpy raises IndexError "Positions outside range of features").
    pub fn new(percent_top: Vec<usize>, log1p: bool, qc_vars: Vec<String>, genes: &GeneTable) -> Result<Self> {
        let n_genes = genes.n_genes();
        let mut percent_top = percent_top;
        percent_top.sort_unstable();
        percent_top.dedup();
        if let Some(&n) = percent_top.iter().find(|&&n| n == 0 || n > n_genes) {
            return Err(StageError::param(
                STAGE,
                "percent_top",
                format!(
                    "position {n} outside the range of features 1..={n_genes} (scanpy raises \
                     IndexError \"Positions outside range of features\"); use ranks up to the \
                     number of genes, or no percent_top"
                ),
            ));
        }
        let mut masks = Vec::with_capacity(qc_vars.len());
        for q in &qc_vars {
            let col = genes.column(q).ok_or_else(|| {
                StageError::param(STAGE, "qc_vars", format!("no var column {q:?} (var has: {})", var_columns(genes)))
            })?;
            if col.data_type() != &DataType::Boolean {
                return Err(StageError::param(
                    STAGE,
                    "qc_vars",
                    format!("var column {q:?} is {}, not boolean", col.data_type()),
                ));
            }
            if col.null_count() > 0 {
                return Err(StageError::param(
                    STAGE,
                    "qc_vars",
                    format!("var column {q:?} has {} null values", col.null_count()),
                ));
            }
            let b = col.as_boolean();
            masks.push((0..b.len()).map(|j| b.value(j)).collect());
        }
        Ok(QcCells { percent_top, log1p, qc_vars, masks, n_genes })
    }
}

/// The var column names, for error messages.
fn var_columns(genes: &GeneTable) -> String {
    genes.record_batch().schema().fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
}

/// The per-cell QC numbers of one block, before they become obs columns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CellQc {
    /// Stored (or dense) entries != 0 per cell.
    pub n_genes_by_counts: Vec<i32>,
    /// f64 row sums.
    pub total_counts: Vec<f64>,
    /// For each N of `percent_top`, 100 × (sum of the N largest entries) / total, per cell.
    pub pct_top: Vec<Vec<f64>>,
    /// For each qc var, the f64 row sum over its genes, per cell.
    pub qc_totals: Vec<Vec<f64>>,
}

/// Sum of the `ns` largest entries of one row (implicit zeros included), as scanpy's
/// `top_segment_proportions`: the row's values sorted in descending order, accumulated by
/// segments `[prev, N)`. `ns` is sorted ascending and each N is at most the number of genes.
pub fn top_sums(row: &[f64], n_implicit_zeros: usize, ns: &[usize]) -> Vec<f64> {
    let Some(&max_n) = ns.last() else { return Vec::new() };
    let mut v: Vec<f64> = row.to_vec();
    v.extend(std::iter::repeat_n(0.0, n_implicit_zeros.min(max_n)));
    v.sort_unstable_by(|a, b| b.total_cmp(a));
    let mut out = Vec::with_capacity(ns.len());
    let (mut acc, mut prev) = (0.0f64, 0usize);
    for &n in ns {
        let end = n.min(v.len());
        let seg: f64 = v.get(prev.min(end)..end).map_or(0.0, |s| s.iter().sum());
        acc += seg;
        out.push(acc);
        prev = end;
    }
    out
}

/// The per-cell kernel: one pass over each row of `rows` (see [`QcCells`] for the
/// definitions). `masks` are the qc var masks, each `n_genes` long.
pub(crate) fn cell_qc(rows: &[Row<'_>], n_genes: usize, percent_top: &[usize], masks: &[Vec<bool>]) -> CellQc {
    let n = rows.len();
    let mut out = CellQc {
        n_genes_by_counts: Vec::with_capacity(n),
        total_counts: Vec::with_capacity(n),
        pct_top: vec![Vec::with_capacity(n); percent_top.len()],
        qc_totals: vec![Vec::with_capacity(n); masks.len()],
    };
    let mut buf: Vec<f64> = Vec::new();
    let mut q_sums = vec![0.0f64; masks.len()];
    for row in rows {
        let (mut nnz, mut total) = (0i32, 0.0f64);
        q_sums.iter_mut().for_each(|s| *s = 0.0);
        buf.clear();
        row.for_each(|j, v| {
            let v = f64::from(v);
            if v != 0.0 {
                nnz += 1;
            }
            total += v;
            for (s, m) in q_sums.iter_mut().zip(masks) {
                if m[j] {
                    *s += v;
                }
            }
            if !percent_top.is_empty() {
                buf.push(v);
            }
        });
        out.n_genes_by_counts.push(nnz);
        out.total_counts.push(total);
        if !percent_top.is_empty() {
            let sums = top_sums(&buf, n_genes.saturating_sub(row.len()), percent_top);
            for (col, s) in out.pct_top.iter_mut().zip(sums) {
                col.push(s / total * 100.0);
            }
        }
        for (col, s) in out.qc_totals.iter_mut().zip(&q_sums) {
            col.push(*s);
        }
    }
    out
}

fn f64_col(v: Vec<f64>) -> ArrayRef {
    Arc::new(Float64Array::from(v))
}

fn log1p_col(v: &[f64]) -> ArrayRef {
    f64_col(v.iter().map(|x| x.ln_1p()).collect())
}

impl MapStage for QcCells {
    /// Adds the obs columns, in scanpy's order: `n_genes_by_counts` (Int32),
    /// `log1p_n_genes_by_counts`, `total_counts`, `log1p_total_counts`,
    /// `pct_counts_in_top_{N}_genes` per N, then per qc var `total_counts_{q}`,
    /// `log1p_total_counts_{q}`, `pct_counts_{q}` (all f64; `log1p_*` only with `log1p`).
    /// A cell with zero total gets NaN percentages (0/0), as in scanpy.
    fn map(&self, batch: CellBatch) -> Result<CellBatch> {
        let rows = rows(&checked_x(&batch, self.n_genes)?, batch.num_cells());
        let qc = cell_qc(&rows, self.n_genes, &self.percent_top, &self.masks);
        drop(rows);
        let mut cols: Vec<(String, ArrayRef)> = Vec::new();
        let ngenes_f: Vec<f64> = qc.n_genes_by_counts.iter().map(|&n| f64::from(n)).collect();
        cols.push(("n_genes_by_counts".into(), Arc::new(Int32Array::from(qc.n_genes_by_counts))));
        if self.log1p {
            cols.push(("log1p_n_genes_by_counts".into(), log1p_col(&ngenes_f)));
        }
        cols.push(("total_counts".into(), f64_col(qc.total_counts.clone())));
        if self.log1p {
            cols.push(("log1p_total_counts".into(), log1p_col(&qc.total_counts)));
        }
        for (n, pct) in self.percent_top.iter().zip(qc.pct_top) {
            cols.push((format!("pct_counts_in_top_{n}_genes"), f64_col(pct)));
        }
        for (q, tot) in self.qc_vars.iter().zip(qc.qc_totals) {
            let pct: Vec<f64> = tot.iter().zip(&qc.total_counts).map(|(s, t)| s / t * 100.0).collect();
            if self.log1p {
                cols.push((format!("total_counts_{q}"), f64_col(tot.clone())));
                cols.push((format!("log1p_total_counts_{q}"), log1p_col(&tot)));
            } else {
                cols.push((format!("total_counts_{q}"), f64_col(tot)));
            }
            cols.push((format!("pct_counts_{q}"), f64_col(pct)));
        }
        let mut out = batch;
        for (name, col) in cols {
            out = out.with_obs_column(&name, col)?;
        }
        Ok(out)
    }
}

/// Per-gene QC columns (the var half of `sc.pp.calculate_qc_metrics`): a fit over all
/// cells whose finished map leaves batches unchanged and only adds var columns.
#[derive(Clone, Debug)]
pub struct QcGenes {
    /// Whether to add `log1p_mean_counts` and `log1p_total_counts` (scanpy's `log1p`).
    pub log1p: bool,
}

/// The mergeable state of [`QcGenes`]: per-gene count of entries != 0, per-gene f64 sum,
/// and the number of cells folded.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GeneQcState {
    /// Per gene, the number of cells with a value != 0.
    pub nnz: Vec<u64>,
    /// Per gene, the f64 sum over cells in cell order.
    pub sum: Vec<f64>,
    /// Cells folded.
    pub n_cells: u64,
}

impl GeneQcState {
    /// An empty state for `n_genes` genes.
    pub fn new(n_genes: usize) -> Self {
        GeneQcState { nnz: vec![0; n_genes], sum: vec![0.0; n_genes], n_cells: 0 }
    }
}

impl FitState for GeneQcState {
    fn fold(&mut self, batch: &CellBatch) -> Result<()> {
        let rows = rows(&checked_x(batch, self.nnz.len())?, batch.num_cells());
        for row in &rows {
            row.for_each(|j, v| {
                if v != 0.0 {
                    self.nnz[j] += 1;
                }
                self.sum[j] += f64::from(v);
            });
        }
        self.n_cells += rows.len() as u64;
        Ok(())
    }

    fn merge(&mut self, other: Box<dyn FitState>) -> Result<()> {
        let o = downcast_state::<GeneQcState>(other, STAGE)?;
        if o.nnz.len() != self.nnz.len() {
            return Err(StageError::Batch(format!("{STAGE}: merging states of {} and {} genes", self.nnz.len(), o.nnz.len())));
        }
        self.nnz.iter_mut().zip(&o.nnz).for_each(|(a, b)| *a += b);
        self.sum.iter_mut().zip(&o.sum).for_each(|(a, b)| *a += b);
        self.n_cells += o.n_cells;
        Ok(())
    }

    fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + 16 * self.nnz.len()
    }

    fn save(&self) -> Option<Vec<u8>> {
        atlasflow_core::checkpoint::save(self)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        atlasflow_core::checkpoint::restore(STAGE, bytes, self, |s: &Self| vec![s.nnz.len(), s.sum.len()])
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

impl FitStage for QcGenes {
    fn new_state(&self, genes: &GeneTable) -> Result<Box<dyn FitState>> {
        Ok(Box::new(GeneQcState::new(genes.n_genes())))
    }

    fn finish(&self, state: Box<dyn FitState>, genes: &GeneTable) -> Result<Fitted> {
        let s = downcast_state::<GeneQcState>(state, STAGE)?;
        if s.nnz.len() != genes.n_genes() {
            return Err(StageError::Batch(format!("{STAGE}: state of {} genes for {} genes", s.nnz.len(), genes.n_genes())));
        }
        Ok(Fitted::Map(Arc::new(GeneColumns::from_state(&s, self.log1p))))
    }

    fn state_bytes(&self, n_genes: usize) -> usize {
        std::mem::size_of::<GeneQcState>() + 16 * n_genes
    }

    fn annotates_only(&self) -> bool {
        true
    }
}

/// The finished [`QcGenes`]: the identity on batches, adding the per-gene QC columns to
/// var in scanpy's order.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneColumns {
    /// `n_cells_by_counts`: cells with a value != 0 (Int64).
    pub n_cells_by_counts: Vec<i64>,
    /// `mean_counts`: sum / number of cells (K1's mean; NaN when there are no cells).
    pub mean_counts: Vec<f64>,
    /// `pct_dropout_by_counts`: (1 − n_cells_by_counts / n) × 100.
    pub pct_dropout_by_counts: Vec<f64>,
    /// `total_counts`: the f64 column sum.
    pub total_counts: Vec<f64>,
    /// Whether `log1p_mean_counts` and `log1p_total_counts` are added.
    pub log1p: bool,
}

impl GeneColumns {
    /// The columns of a merged state.
    pub fn from_state(s: &GeneQcState, log1p: bool) -> Self {
        let n = s.n_cells as f64;
        GeneColumns {
            n_cells_by_counts: s.nnz.iter().map(|&c| i64::try_from(c).unwrap_or(i64::MAX)).collect(),
            mean_counts: s.sum.iter().map(|x| x / n).collect(),
            pct_dropout_by_counts: s.nnz.iter().map(|&c| (1.0 - c as f64 / n) * 100.0).collect(),
            total_counts: s.sum.clone(),
            log1p,
        }
    }
}

impl MapStage for GeneColumns {
    fn map(&self, batch: CellBatch) -> Result<CellBatch> {
        Ok(batch)
    }

    /// Adds `n_cells_by_counts` (Int64), `mean_counts`, `log1p_mean_counts`,
    /// `pct_dropout_by_counts`, `total_counts`, `log1p_total_counts` (f64).
    fn genes(&self, genes: &GeneTable) -> Result<GeneTable> {
        let mut g = genes.with_column("n_cells_by_counts", Arc::new(Int64Array::from(self.n_cells_by_counts.clone())))?;
        g = g.with_column("mean_counts", f64_col(self.mean_counts.clone()))?;
        if self.log1p {
            g = g.with_column("log1p_mean_counts", log1p_col(&self.mean_counts))?;
        }
        g = g.with_column("pct_dropout_by_counts", f64_col(self.pct_dropout_by_counts.clone()))?;
        g = g.with_column("total_counts", f64_col(self.total_counts.clone()))?;
        if self.log1p {
            g = g.with_column("log1p_total_counts", log1p_col(&self.total_counts))?;
        }
        Ok(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BooleanArray, StringArray};
    use arrow::datatypes::{Float64Type, Int32Type, Int64Type};
    use atlasflow_core::Csr;

    fn genes(n: usize) -> GeneTable {
        let g = GeneTable::from_names((0..n).map(|j| format!("g{j}")).collect());
        let mt: Vec<bool> = (0..n).map(|j| j == 0).collect();
        g.with_column("mt", Arc::new(BooleanArray::from(mt))).expect("mt")
    }

    fn rows4() -> Vec<Vec<f32>> {
        vec![
            vec![1.0, 0.0, 3.0, 4.0],
            vec![0.0, 0.0, 0.0, 0.0],
            vec![2.0, 2.0, 0.0, 0.0],
        ]
    }

    fn batch(rows: &[Vec<f32>]) -> CellBatch {
        let ids: ArrayRef = Arc::new(StringArray::from((0..rows.len()).map(|i| format!("c{i}")).collect::<Vec<_>>()));
        CellBatch::from_csr(vec![("cell_id".into(), ids)], Csr::from_dense(rows)).expect("batch")
    }

    fn f64s(b: &CellBatch, name: &str) -> Vec<f64> {
        b.obs_column(name).unwrap_or_else(|| panic!("{name}")).as_primitive::<Float64Type>().values().to_vec()
    }

    #[test]
    fn top_sums_by_hand() {
        // values 1,3,4 with one implicit zero: sorted 4,3,1,0 → top1 4, top2 7, top4 8
        assert_eq!(top_sums(&[1.0, 3.0, 4.0], 1, &[1, 2, 4]), vec![4.0, 7.0, 8.0]);
        // negatives rank below implicit zeros
        assert_eq!(top_sums(&[-1.0, 2.0], 2, &[2, 3]), vec![2.0, 2.0]);
        assert!(top_sums(&[1.0], 0, &[]).is_empty());
    }

    #[test]
    fn cell_columns_by_hand() {
        let g = genes(4);
        let st = QcCells::new(vec![2, 1], true, vec!["mt".into()], &g).expect("new");
        assert_eq!(st.percent_top, vec![1, 2]);
        let out = st.map(batch(&rows4())).expect("map");
        let n = out.obs_column("n_genes_by_counts").expect("n").as_primitive::<Int32Type>().values().to_vec();
        assert_eq!(n, vec![3, 0, 2]);
        assert_eq!(f64s(&out, "total_counts"), vec![8.0, 0.0, 4.0]);
        assert_eq!(f64s(&out, "log1p_total_counts")[0], 8f64.ln_1p());
        assert_eq!(f64s(&out, "log1p_n_genes_by_counts")[2], 2f64.ln_1p());
        // top1: 4/8 = 50 %, 0/0 = NaN, 2/4 = 50 %; top2: 7/8 = 87.5 %, NaN, 100 %
        let t1 = f64s(&out, "pct_counts_in_top_1_genes");
        assert_eq!((t1[0], t1[2]), (50.0, 50.0));
        assert!(t1[1].is_nan());
        let t2 = f64s(&out, "pct_counts_in_top_2_genes");
        assert_eq!((t2[0], t2[2]), (87.5, 100.0));
        assert_eq!(f64s(&out, "total_counts_mt"), vec![1.0, 0.0, 2.0]);
        let p = f64s(&out, "pct_counts_mt");
        assert_eq!((p[0], p[2]), (12.5, 50.0));
        let names: Vec<String> = out.obs_columns().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "cell_id", "n_genes_by_counts", "log1p_n_genes_by_counts", "total_counts", "log1p_total_counts",
                "pct_counts_in_top_1_genes", "pct_counts_in_top_2_genes", "total_counts_mt",
                "log1p_total_counts_mt", "pct_counts_mt"
            ]
        );
        // without log1p, and dense X gives the same numbers
        let st = QcCells::new(vec![], false, vec![], &g).expect("new");
        let dense = batch(&rows4()).with_x_dense(rows4().concat(), 4).expect("dense");
        let out = st.map(dense).expect("map");
        let names: Vec<String> = out.obs_columns().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["cell_id", "n_genes_by_counts", "total_counts"]);
        assert_eq!(f64s(&out, "total_counts"), vec![8.0, 0.0, 4.0]);
    }

    #[test]
    fn bad_params() {
        let g = genes(4);
        assert!(QcCells::new(vec![5], true, vec![], &g).is_err());
        assert!(QcCells::new(vec![0], true, vec![], &g).is_err());
        let e = QcCells::new(vec![], true, vec!["ribo".into()], &g).expect_err("missing");
        assert!(e.to_string().contains("ribo") && e.to_string().contains("mt"), "{e}");
        assert!(QcCells::new(vec![], true, vec!["gene_id".into()], &g).is_err());
        let st = QcCells::new(vec![], true, vec![], &genes(3)).expect("new");
        assert!(st.map(batch(&rows4())).is_err());
    }

    #[test]
    fn gene_columns_by_hand_and_split_invariance() {
        let g = genes(4);
        let st = QcGenes { log1p: true };
        let b = batch(&rows4());
        let mut whole = st.new_state(&g).expect("state");
        whole.fold(&b).expect("fold");
        let mut a = st.new_state(&g).expect("state");
        a.fold(&b.slice(0, 2)).expect("fold");
        let mut c = st.new_state(&g).expect("state");
        c.fold(&b.slice(2, 1)).expect("fold");
        a.merge(c).expect("merge");
        let whole = downcast_state::<GeneQcState>(whole, "t").expect("w");
        let a = downcast_state::<GeneQcState>(a, "t").expect("a");
        assert_eq!(whole, a);
        let Fitted::Map(m) = st.finish(whole, &g).expect("finish") else { panic!("map") };
        let out = m.genes(&g).expect("genes");
        let col = |n: &str| out.f64_column(n).expect("ok").unwrap_or_else(|| panic!("{n}"));
        // gene sums 3,2,3,4 over 3 cells; non-zeros 2,1,1,1
        let nc = out.column("n_cells_by_counts").expect("n").as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(nc, vec![2, 1, 1, 1]);
        assert_eq!(col("mean_counts"), vec![1.0, 2.0 / 3.0, 1.0, 4.0 / 3.0]);
        assert_eq!(col("total_counts"), vec![3.0, 2.0, 3.0, 4.0]);
        assert_eq!(col("log1p_total_counts")[3], 4f64.ln_1p());
        assert_eq!(col("log1p_mean_counts")[0], 1f64.ln_1p());
        let d = col("pct_dropout_by_counts");
        assert!((d[0] - 100.0 / 3.0).abs() < 1e-12 && (d[1] - 200.0 / 3.0).abs() < 1e-12);
        assert!(st.annotates_only());
        assert!(m.map(b).is_ok());
    }
}
