//! `sc.pp.filter_cells` and `sc.pp.filter_genes` (semantics reference §1.2).
//!
//! scanpy takes exactly one bound per call; these stages take any non-empty combination
//! (a superset) and keep what satisfies every given bound. A "gene expressed" here is a
//! value > 0 (explicit zeros and negative values do not count, unlike
//! `n_genes_by_counts`). Counts are f64 sums in cell order, stored as f64 (scanpy stores
//! them in the X dtype: f64 in the Census tutorial). Bounds are inclusive.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array};
use atlasflow_core::rows::{checked_x, rows};
use atlasflow_core::stage::downcast_state;
use atlasflow_core::{CellBatch, FitStage, FitState, Fitted, GeneTable, MapStage, Result, StageError, subset_genes};

/// Whether `x` lies within the optional inclusive bounds.
fn within<T: PartialOrd + Copy>(x: T, min: Option<T>, max: Option<T>) -> bool {
    min.is_none_or(|m| x >= m) && max.is_none_or(|m| x <= m)
}

/// Check one (min, max) pair of bounds: counts must be numbers, and min ≤ max.
fn check_pair<T: PartialOrd + Copy + std::fmt::Display>(
    stage: &str,
    what: &str,
    min: Option<T>,
    max: Option<T>,
) -> Result<()> {
    for (name, v) in [(format!("min_{what}"), min), (format!("max_{what}"), max)] {
        if let Some(v) = v
            && v.partial_cmp(&v).is_none()
        {
            return Err(StageError::param(stage, &name, format!("{v} is not a number")));
        }
    }
    if let (Some(a), Some(b)) = (min, max)
        && a > b
    {
        return Err(StageError::param(
            stage,
            &format!("min_{what}"),
            format!("min_{what}={a} is above max_{what}={b}, which would remove everything"),
        ));
    }
    Ok(())
}

/// A description of the given bounds, e.g. "min_genes=500, max_counts=1e6".
fn describe(bounds: &[(&str, Option<String>)]) -> String {
    bounds.iter().filter_map(|(n, v)| v.as_ref().map(|v| format!("{n}={v}"))).collect::<Vec<_>>().join(", ")
}

/// Per-cell numbers filter_cells compares: entries > 0 and the f64 row sum.
pub fn cell_genes_and_counts(batch: &CellBatch) -> Result<(Vec<i64>, Vec<f64>)> {
    let rows = rows(&checked_x(batch, batch.n_genes())?, batch.num_cells());
    let mut n_genes = Vec::with_capacity(rows.len());
    let mut n_counts = Vec::with_capacity(rows.len());
    for row in &rows {
        let (mut n, mut s) = (0i64, 0.0f64);
        row.for_each(|_, v| {
            if v > 0.0 {
                n += 1;
            }
            s += f64::from(v);
        });
        n_genes.push(n);
        n_counts.push(s);
    }
    Ok((n_genes, n_counts))
}

/// `sc.pp.filter_cells`: keep the cells whose number of expressed genes (values > 0)
/// and total counts satisfy every given bound; writes obs `n_genes` (Int64) when a genes
/// bound is given and `n_counts` (f64) when a counts bound is given, for the kept cells.
/// A batch may come out empty; the engine reports when no cell is left at all.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterCells {
    /// Keep cells with at least this many genes > 0.
    pub min_genes: Option<u64>,
    /// Keep cells with at most this many genes > 0.
    pub max_genes: Option<u64>,
    /// Keep cells with a total of at least this.
    pub min_counts: Option<f64>,
    /// Keep cells with a total of at most this.
    pub max_counts: Option<f64>,
}

const FILTER_CELLS: &str = "filter_cells";
const FILTER_GENES: &str = "filter_genes";

impl FilterCells {
    /// Check the bounds: at least one is required, counts must be numbers, min ≤ max.
    pub fn new(min_genes: Option<u64>, max_genes: Option<u64>, min_counts: Option<f64>, max_counts: Option<f64>) -> Result<Self> {
        if min_genes.is_none() && max_genes.is_none() && min_counts.is_none() && max_counts.is_none() {
            return Err(StageError::param(
                FILTER_CELLS,
                "min_genes",
                "give at least one of min_genes, max_genes, min_counts, max_counts",
            ));
        }
        check_pair(FILTER_CELLS, "genes", min_genes, max_genes)?;
        check_pair(FILTER_CELLS, "counts", min_counts, max_counts)?;
        Ok(FilterCells { min_genes, max_genes, min_counts, max_counts })
    }

    /// The keep mask for per-cell numbers.
    pub fn keep(&self, n_genes: &[i64], n_counts: &[f64]) -> Vec<bool> {
        let (lo, hi) = (self.min_genes.map(|v| v as i128), self.max_genes.map(|v| v as i128));
        n_genes
            .iter()
            .zip(n_counts)
            .map(|(&g, &c)| within(i128::from(g), lo, hi) && within(c, self.min_counts, self.max_counts))
            .collect()
    }
}

impl MapStage for FilterCells {
    fn map(&self, batch: CellBatch) -> Result<CellBatch> {
        let (n_genes, n_counts) = cell_genes_and_counts(&batch)?;
        let keep = self.keep(&n_genes, &n_counts);
        let mut out = batch;
        if self.min_genes.is_some() || self.max_genes.is_some() {
            out = out.with_obs_column("n_genes", Arc::new(Int64Array::from(n_genes)))?;
        }
        if self.min_counts.is_some() || self.max_counts.is_some() {
            out = out.with_obs_column("n_counts", Arc::new(Float64Array::from(n_counts)))?;
        }
        if keep.iter().all(|&k| k) {
            return Ok(out);
        }
        out.filter_cells(&keep)
    }
}

/// `sc.pp.filter_genes`: a fit counting, per gene, the cells with a value > 0 and the f64
/// sum; it finishes into a [`GeneSubset`] keeping the genes that satisfy every given bound.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterGenes {
    /// Keep genes expressed (> 0) in at least this many cells.
    pub min_cells: Option<u64>,
    /// Keep genes expressed (> 0) in at most this many cells.
    pub max_cells: Option<u64>,
    /// Keep genes with a total of at least this.
    pub min_counts: Option<f64>,
    /// Keep genes with a total of at most this.
    pub max_counts: Option<f64>,
}

impl FilterGenes {
    /// Check the bounds: at least one is required, counts must be numbers, min ≤ max.
    pub fn new(min_cells: Option<u64>, max_cells: Option<u64>, min_counts: Option<f64>, max_counts: Option<f64>) -> Result<Self> {
        if min_cells.is_none() && max_cells.is_none() && min_counts.is_none() && max_counts.is_none() {
            return Err(StageError::param(
                FILTER_GENES,
                "min_cells",
                "give at least one of min_cells, max_cells, min_counts, max_counts",
            ));
        }
        check_pair(FILTER_GENES, "cells", min_cells, max_cells)?;
        check_pair(FILTER_GENES, "counts", min_counts, max_counts)?;
        Ok(FilterGenes { min_cells, max_cells, min_counts, max_counts })
    }

    fn bounds(&self) -> String {
        describe(&[
            ("min_cells", self.min_cells.map(|v| v.to_string())),
            ("max_cells", self.max_cells.map(|v| v.to_string())),
            ("min_counts", self.min_counts.map(|v| v.to_string())),
            ("max_counts", self.max_counts.map(|v| v.to_string())),
        ])
    }
}

/// The mergeable state of [`FilterGenes`]: per gene, the cells with a value > 0 and the
/// f64 sum over cells in cell order.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FilterGenesState {
    /// Per gene, cells with a value > 0.
    pub n_cells: Vec<u64>,
    /// Per gene, the f64 sum.
    pub n_counts: Vec<f64>,
}

impl FitState for FilterGenesState {
    fn fold(&mut self, batch: &CellBatch) -> Result<()> {
        for row in rows(&checked_x(batch, self.n_cells.len())?, batch.num_cells()) {
            row.for_each(|j, v| {
                if v > 0.0 {
                    self.n_cells[j] += 1;
                }
                self.n_counts[j] += f64::from(v);
            });
        }
        Ok(())
    }

    fn merge(&mut self, other: Box<dyn FitState>) -> Result<()> {
        let o = downcast_state::<FilterGenesState>(other, FILTER_GENES)?;
        if o.n_cells.len() != self.n_cells.len() {
            return Err(StageError::Batch(format!(
                "{FILTER_GENES}: merging states of {} and {} genes",
                self.n_cells.len(),
                o.n_cells.len()
            )));
        }
        self.n_cells.iter_mut().zip(&o.n_cells).for_each(|(a, b)| *a += b);
        self.n_counts.iter_mut().zip(&o.n_counts).for_each(|(a, b)| *a += b);
        Ok(())
    }

    fn size_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + 16 * self.n_cells.len()
    }

    fn save(&self) -> Option<Vec<u8>> {
        atlasflow_core::checkpoint::save(self)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        atlasflow_core::checkpoint::restore(FILTER_GENES, bytes, self, |s: &Self| vec![s.n_cells.len(), s.n_counts.len()])
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

impl FitStage for FilterGenes {
    /// Its map only drops genes.
    fn finishes_as_gene_subset(&self) -> bool {
        true
    }

    fn new_state(&self, genes: &GeneTable) -> Result<Box<dyn FitState>> {
        let n = genes.n_genes();
        Ok(Box::new(FilterGenesState { n_cells: vec![0; n], n_counts: vec![0.0; n] }))
    }

    /// Keeps the genes within every bound; refuses when none is left, naming the bounds.
    fn finish(&self, state: Box<dyn FitState>, genes: &GeneTable) -> Result<Fitted> {
        let s = downcast_state::<FilterGenesState>(state, FILTER_GENES)?;
        if s.n_cells.len() != genes.n_genes() {
            return Err(StageError::Batch(format!(
                "{FILTER_GENES}: state of {} genes for {} genes",
                s.n_cells.len(),
                genes.n_genes()
            )));
        }
        let keep: Vec<bool> = s
            .n_cells
            .iter()
            .zip(&s.n_counts)
            .map(|(&c, &t)| within(c, self.min_cells, self.max_cells) && within(t, self.min_counts, self.max_counts))
            .collect();
        if !keep.iter().any(|&k| k) {
            return Err(StageError::data(
                FILTER_GENES,
                format!("{} removes all {} genes", self.bounds(), genes.n_genes()),
            ));
        }
        let mut columns: Vec<(String, ArrayRef)> = Vec::new();
        if self.min_cells.is_some() || self.max_cells.is_some() {
            let v: Vec<i64> = s.n_cells.iter().map(|&c| i64::try_from(c).unwrap_or(i64::MAX)).collect();
            columns.push(("n_cells".into(), Arc::new(Int64Array::from(v))));
        }
        if self.min_counts.is_some() || self.max_counts.is_some() {
            columns.push(("n_counts".into(), Arc::new(Float64Array::from(s.n_counts.clone()))));
        }
        Ok(Fitted::Map(Arc::new(GeneSubset { keep, columns })))
    }

    fn state_bytes(&self, n_genes: usize) -> usize {
        std::mem::size_of::<FilterGenesState>() + 16 * n_genes
    }
}

/// A map that keeps the genes of a mask: batches lose the other genes' entries (indices
/// remapped), and the gene table is subset after adding `columns` (one value per gene of
/// the input, e.g. filter_genes' `n_cells`).
#[derive(Clone, Debug)]
pub struct GeneSubset {
    /// One entry per input gene: true to keep it.
    pub keep: Vec<bool>,
    /// Var columns to add before subsetting, each as long as `keep`.
    pub columns: Vec<(String, ArrayRef)>,
}

impl MapStage for GeneSubset {
    fn map(&self, batch: CellBatch) -> Result<CellBatch> {
        if batch.n_genes() == self.keep.len() && self.keep.iter().all(|&k| k) {
            return Ok(batch);
        }
        subset_genes(&batch, &self.keep)
    }

    fn gene_mask(&self) -> Option<Vec<bool>> {
        Some(self.keep.clone())
    }

    fn genes(&self, genes: &GeneTable) -> Result<GeneTable> {
        let mut g = genes.clone();
        for (name, col) in &self.columns {
            g = g.with_column(name, Arc::clone(col))?;
        }
        g.subset(&self.keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray, StringArray};
    use arrow::datatypes::{Float64Type, Int64Type};
    use atlasflow_core::{Csr, XView};

    fn rows5() -> Vec<Vec<f32>> {
        vec![
            vec![1.0, 0.0, 3.0, 0.0],   // 2 genes, 4 counts
            vec![0.0, 0.0, 0.0, 0.0],   // 0 genes, 0 counts
            vec![2.0, 2.0, 0.0, 0.0],   // 2 genes, 4 counts
            vec![5.0, -1.0, 1.0, 0.0],  // 2 genes (−1 is not expressed), 5 counts
            vec![1.0, 1.0, 1.0, 0.0],   // 3 genes, 3 counts
        ]
    }

    fn batch(rows: &[Vec<f32>]) -> CellBatch {
        let ids: ArrayRef = Arc::new(StringArray::from((0..rows.len()).map(|i| format!("c{i}")).collect::<Vec<_>>()));
        CellBatch::from_csr(vec![("cell_id".into(), ids)], Csr::from_dense(rows)).expect("batch")
    }

    fn ids(b: &CellBatch) -> Vec<String> {
        b.obs_column("cell_id").expect("ids").as_string::<i32>().iter().flatten().map(str::to_string).collect()
    }

    #[test]
    fn filter_cells_by_hand() {
        let f = FilterCells::new(Some(2), None, None, None).expect("new");
        let out = f.map(batch(&rows5())).expect("map");
        assert_eq!(ids(&out), ["c0", "c2", "c3", "c4"]);
        let n = out.obs_column("n_genes").expect("n_genes").as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(n, vec![2, 2, 2, 3]);
        assert!(out.obs_column("n_counts").is_none());
        // both bounds of both kinds, inclusive
        let f = FilterCells::new(Some(2), Some(2), Some(4.0), Some(4.0)).expect("new");
        let out = f.map(batch(&rows5())).expect("map");
        assert_eq!(ids(&out), ["c0", "c2"]);
        let c = out.obs_column("n_counts").expect("n_counts").as_primitive::<Float64Type>().values().to_vec();
        assert_eq!(c, vec![4.0, 4.0]);
        // everything removed: an empty batch, not an error
        let f = FilterCells::new(None, None, Some(100.0), None).expect("new");
        assert_eq!(f.map(batch(&rows5())).expect("map").num_cells(), 0);
        // dense X
        let d = batch(&rows5()).with_x_dense(rows5().concat(), 4).expect("dense");
        let f = FilterCells::new(None, Some(2), None, None).expect("new");
        assert_eq!(ids(&f.map(d).expect("map")), ["c0", "c1", "c2", "c3"]);
    }

    #[test]
    fn bad_bounds() {
        assert!(FilterCells::new(None, None, None, None).is_err());
        assert!(FilterCells::new(Some(5), Some(4), None, None).is_err());
        assert!(FilterCells::new(None, None, Some(f64::NAN), None).is_err());
        assert!(FilterGenes::new(None, None, None, None).is_err());
        assert!(FilterGenes::new(None, None, Some(3.0), Some(2.0)).is_err());
    }

    fn fit(f: &FilterGenes, parts: &[CellBatch], g: &GeneTable) -> Result<Fitted> {
        let mut st = f.new_state(g)?;
        for (i, p) in parts.iter().enumerate() {
            if i == 0 {
                st.fold(p)?;
            } else {
                let mut s = f.new_state(g)?;
                s.fold(p)?;
                st.merge(s)?;
            }
        }
        f.finish(st, g)
    }

    #[test]
    fn filter_genes_by_hand() {
        let g = GeneTable::from_names((0..4).map(|j| format!("g{j}")).collect());
        let b = batch(&rows5());
        // cells > 0 per gene: 4, 2, 3, 0; sums: 9, 2, 5, 0
        let f = FilterGenes::new(Some(2), None, None, Some(8.0)).expect("new");
        let Fitted::Map(m) = fit(&f, std::slice::from_ref(&b), &g).expect("fit") else { panic!("map") };
        let gt = m.genes(&g).expect("genes");
        assert_eq!(gt.n_genes(), 2);
        assert_eq!((gt.name(0), gt.name(1)), ("g1", "g2"));
        let nc = gt.column("n_cells").expect("n_cells").as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(nc, vec![2, 3]);
        assert_eq!(gt.f64_column("n_counts").expect("ok"), Some(vec![2.0, 5.0]));
        let out = m.map(b.clone()).expect("map");
        assert_eq!(out.n_genes(), 2);
        let XView::Csr(v) = out.x().expect("x") else { panic!("csr") };
        assert_eq!(
            v.to_owned().to_dense(),
            vec![vec![0.0, 3.0], vec![0.0, 0.0], vec![2.0, 0.0], vec![-1.0, 1.0], vec![1.0, 1.0]]
        );
        // split into granules gives the same result
        let Fitted::Map(m2) = fit(&f, &[b.slice(0, 2), b.slice(2, 0), b.slice(2, 3)], &g).expect("fit") else {
            panic!("map")
        };
        let gt2 = m2.genes(&g).expect("genes");
        assert_eq!(gt2.record_batch(), gt.record_batch());
        // nothing left: an error naming the bound
        let f = FilterGenes::new(Some(5), None, None, None).expect("new");
        let e = fit(&f, &[b], &g).err().expect("error").to_string();
        assert_eq!(e, "filter_genes: min_cells=5 removes all 4 genes");
        assert!(gt.column("n_cells").expect("c").null_count() == 0);
    }
}
