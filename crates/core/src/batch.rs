//! The cell batch: one Arrow `RecordBatch` row per cell.
//!
//! Columns, in this order of convention:
//! - obs columns: `cell_id` (the obs index) and any metadata (categoricals as
//!   `Dictionary<Int32, Utf8>`), plus what stages add under scanpy's names;
//! - X, either sparse as `x_indices: List<UInt32>` + `x_values: List<Float32>` sharing one
//!   offsets buffer (a zero-copy CSR block whose offsets are the indptr), or dense as
//!   `x_dense: FixedSizeList<Float32>` (after `scale`);
//! - embeddings as `obsm/<key>: FixedSizeList<Float32>` (e.g. `obsm/X_pca`).
//!
//! The number of genes is kept in the schema metadata (`atlasflow.n_genes`), so an empty
//! batch still knows its width.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, FixedSizeListArray, Float32Array, ListArray,
    RecordBatch, RecordBatchOptions, UInt32Array,
};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, Float32Type, Schema, UInt32Type};

use crate::csr::{Csr, CsrView};
use crate::error::{Result, StageError};

/// Name of the obs index column (scanpy's obs_names).
pub const CELL_ID: &str = "cell_id";
/// Column of sparse X gene indices.
pub const X_INDICES: &str = "x_indices";
/// Column of sparse X values.
pub const X_VALUES: &str = "x_values";
/// Column of dense X rows.
pub const X_DENSE: &str = "x_dense";
/// Prefix of embedding columns (`obsm/X_pca`).
pub const OBSM_PREFIX: &str = "obsm/";
/// Schema metadata key holding the number of genes.
pub const N_GENES_KEY: &str = "atlasflow.n_genes";

/// X of a batch, borrowed.
#[derive(Clone, Copy, Debug)]
pub enum XView<'a> {
    /// Sparse rows.
    Csr(CsrView<'a>),
    /// Dense row-major rows, `data.len() == n_rows * n_cols`.
    Dense {
        /// Row-major values.
        data: &'a [f32],
        /// Number of genes.
        n_cols: usize,
    },
}

impl XView<'_> {
    /// Number of genes.
    pub fn n_cols(&self) -> usize {
        match self {
            XView::Csr(c) => c.n_cols,
            XView::Dense { n_cols, .. } => *n_cols,
        }
    }
}

/// A block of cells: obs metadata, X rows and embeddings, as one Arrow `RecordBatch`.
#[derive(Clone, Debug)]
pub struct CellBatch {
    rb: RecordBatch,
    n_genes: usize,
}

fn is_x_column(name: &str) -> bool {
    name == X_INDICES || name == X_VALUES || name == X_DENSE
}

fn float_item() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Float32, false))
}

fn csr_columns(x: Csr) -> (Vec<Field>, Vec<ArrayRef>) {
    let offsets = OffsetBuffer::new(ScalarBuffer::from(x.indptr));
    let idx_item = Arc::new(Field::new("item", DataType::UInt32, false));
    let indices = ListArray::new(
        Arc::clone(&idx_item),
        offsets.clone(),
        Arc::new(UInt32Array::from(x.indices)),
        None,
    );
    let values = ListArray::new(float_item(), offsets, Arc::new(Float32Array::from(x.values)), None);
    (
        vec![
            Field::new(X_INDICES, DataType::List(idx_item), false),
            Field::new(X_VALUES, DataType::List(float_item()), false),
        ],
        vec![Arc::new(indices), Arc::new(values)],
    )
}

fn fixed_list(data: Vec<f32>, width: usize) -> Result<FixedSizeListArray> {
    if width == 0 && !data.is_empty() || width > 0 && data.len() % width != 0 {
        return Err(StageError::Batch(format!("{} values do not fill rows of width {width}", data.len())));
    }
    let w = i32::try_from(width).map_err(|_| StageError::Batch(format!("row width {width} too large")))?;
    Ok(FixedSizeListArray::try_new(float_item(), w, Arc::new(Float32Array::from(data)), None)?)
}

impl CellBatch {
    /// Wrap a record batch that follows the conventions of this module.
    pub fn try_new(rb: RecordBatch) -> Result<Self> {
        let n_genes = rb
            .schema()
            .metadata()
            .get(N_GENES_KEY)
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or_else(|| StageError::Batch(format!("schema metadata lacks {N_GENES_KEY}")))?;
        let b = CellBatch { rb, n_genes };
        b.x()?;
        Ok(b)
    }

    /// Build a batch from obs columns (possibly none) and a sparse X block.
    pub fn from_csr(obs: Vec<(String, ArrayRef)>, x: Csr) -> Result<Self> {
        let n_rows = x.indptr.len().saturating_sub(1);
        let n_genes = x.n_cols;
        let (xf, xc) = csr_columns(x);
        Self::assemble(obs, xf, xc, n_rows, n_genes)
    }

    /// Build a batch from obs columns and dense row-major X.
    pub fn from_dense(obs: Vec<(String, ArrayRef)>, data: Vec<f32>, n_genes: usize) -> Result<Self> {
        let n_rows = if n_genes == 0 { 0 } else { data.len() / n_genes };
        let arr = fixed_list(data, n_genes)?;
        let f = Field::new(X_DENSE, arr.data_type().clone(), false);
        Self::assemble(obs, vec![f], vec![Arc::new(arr)], n_rows, n_genes)
    }

    fn assemble(
        obs: Vec<(String, ArrayRef)>,
        x_fields: Vec<Field>,
        x_cols: Vec<ArrayRef>,
        n_rows: usize,
        n_genes: usize,
    ) -> Result<Self> {
        let mut fields = Vec::new();
        let mut cols = Vec::new();
        for (name, col) in obs {
            if col.len() != n_rows {
                return Err(StageError::Batch(format!(
                    "obs column {name} has {} rows, X has {n_rows}",
                    col.len()
                )));
            }
            // Always nullable: whether a slice happens to hold a null must not change the
            // schema, or batches of one stream could not be concatenated.
            fields.push(Field::new(name, col.data_type().clone(), true));
            cols.push(col);
        }
        fields.extend(x_fields);
        cols.extend(x_cols);
        let meta = HashMap::from([(N_GENES_KEY.to_string(), n_genes.to_string())]);
        let schema = Arc::new(Schema::new_with_metadata(fields, meta));
        let rb = RecordBatch::try_new_with_options(
            schema,
            cols,
            &RecordBatchOptions::new().with_row_count(Some(n_rows)),
        )?;
        Ok(CellBatch { rb, n_genes })
    }

    /// The underlying Arrow batch.
    pub fn record_batch(&self) -> &RecordBatch {
        &self.rb
    }

    /// Number of cells.
    pub fn num_cells(&self) -> usize {
        self.rb.num_rows()
    }

    /// Number of genes (columns of X).
    pub fn n_genes(&self) -> usize {
        self.n_genes
    }

    /// X, borrowed without copying.
    pub fn x(&self) -> Result<XView<'_>> {
        if let Some(d) = self.rb.column_by_name(X_DENSE) {
            let fsl = d
                .as_fixed_size_list_opt()
                .ok_or_else(|| StageError::Batch("x_dense is not a fixed-size list".into()))?;
            let vals = fsl
                .values()
                .as_primitive_opt::<Float32Type>()
                .ok_or_else(|| StageError::Batch("x_dense items are not float32".into()))?;
            let start = if fsl.is_empty() { 0 } else { fsl.value_offset(0) as usize };
            let len = fsl.len() * self.n_genes;
            let data = vals
                .values()
                .get(start..start + len)
                .ok_or_else(|| StageError::Batch("x_dense shorter than its rows".into()))?;
            return Ok(XView::Dense { data, n_cols: self.n_genes });
        }
        let (ic, vc) = match (self.rb.column_by_name(X_INDICES), self.rb.column_by_name(X_VALUES)) {
            (Some(i), Some(v)) => (i, v),
            _ => return Err(StageError::Batch("batch has neither x_dense nor x_indices/x_values".into())),
        };
        let (il, vl) = match (ic.as_list_opt::<i32>(), vc.as_list_opt::<i32>()) {
            (Some(i), Some(v)) => (i, v),
            _ => return Err(StageError::Batch("x_indices/x_values are not lists".into())),
        };
        if il.offsets() != vl.offsets() {
            return Err(StageError::Batch("x_indices and x_values have different offsets".into()));
        }
        let indices = il
            .values()
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| StageError::Batch("x_indices items are not uint32".into()))?;
        let values = vl
            .values()
            .as_primitive_opt::<Float32Type>()
            .ok_or_else(|| StageError::Batch("x_values items are not float32".into()))?;
        Ok(XView::Csr(CsrView {
            indptr: il.offsets(),
            indices: indices.values(),
            values: values.values(),
            n_cols: self.n_genes,
        }))
    }

    /// The obs columns (everything but X and embeddings), in order.
    pub fn obs_columns(&self) -> Vec<(String, ArrayRef)> {
        let schema = self.rb.schema();
        schema
            .fields()
            .iter()
            .zip(self.rb.columns())
            .filter(|(f, _)| !is_x_column(f.name()) && !f.name().starts_with(OBSM_PREFIX))
            .map(|(f, c)| (f.name().clone(), Arc::clone(c)))
            .collect()
    }

    /// One obs column by name.
    pub fn obs_column(&self, name: &str) -> Option<&ArrayRef> {
        if is_x_column(name) {
            return None;
        }
        self.rb.column_by_name(name)
    }

    /// Embedding `key` (without the `obsm/` prefix) as row-major values and its width.
    pub fn obsm(&self, key: &str) -> Option<(&[f32], usize)> {
        let col = self.rb.column_by_name(&format!("{OBSM_PREFIX}{key}"))?;
        let fsl = col.as_fixed_size_list_opt()?;
        let w = fsl.value_length() as usize;
        let vals = fsl.values().as_primitive_opt::<Float32Type>()?;
        let start = if fsl.is_empty() { 0 } else { fsl.value_offset(0) as usize };
        Some((vals.values().get(start..start + fsl.len() * w)?, w))
    }

    /// Names of the embeddings (without prefix).
    pub fn obsm_keys(&self) -> Vec<String> {
        self.rb
            .schema()
            .fields()
            .iter()
            .filter_map(|f| f.name().strip_prefix(OBSM_PREFIX).map(str::to_string))
            .collect()
    }

    fn parts(&self) -> (Vec<(String, ArrayRef)>, Vec<(Field, ArrayRef)>) {
        let schema = self.rb.schema();
        let mut obs = Vec::new();
        let mut obsm = Vec::new();
        for (f, c) in schema.fields().iter().zip(self.rb.columns()) {
            if f.name().starts_with(OBSM_PREFIX) {
                obsm.push((f.as_ref().clone(), Arc::clone(c)));
            } else if !is_x_column(f.name()) {
                obs.push((f.name().clone(), Arc::clone(c)));
            }
        }
        (obs, obsm)
    }

    fn rebuild(
        &self,
        obs: Vec<(String, ArrayRef)>,
        x: Option<(Vec<Field>, Vec<ArrayRef>)>,
        obsm: Vec<(Field, ArrayRef)>,
        n_genes: usize,
    ) -> Result<Self> {
        let (mut xf, mut xc) = match x {
            Some(x) => x,
            None => {
                let schema = self.rb.schema();
                let mut f = Vec::new();
                let mut c = Vec::new();
                for (fi, ci) in schema.fields().iter().zip(self.rb.columns()) {
                    if is_x_column(fi.name()) {
                        f.push(fi.as_ref().clone());
                        c.push(Arc::clone(ci));
                    }
                }
                (f, c)
            }
        };
        for (f, c) in obsm {
            xf.push(f);
            xc.push(c);
        }
        Self::assemble(obs, xf, xc, self.num_cells(), n_genes)
    }

    /// The same cells with a new sparse X (same number of rows; any number of genes).
    pub fn with_x_csr(&self, x: Csr) -> Result<Self> {
        if x.indptr.len() != self.num_cells() + 1 {
            return Err(StageError::Batch(format!(
                "new X has {} rows, batch has {}",
                x.indptr.len().saturating_sub(1),
                self.num_cells()
            )));
        }
        let (obs, obsm) = self.parts();
        let n = x.n_cols;
        self.rebuild(obs, Some(csr_columns(x)), obsm, n)
    }

    /// The same cells with a new dense X of `n_genes` columns.
    pub fn with_x_dense(&self, data: Vec<f32>, n_genes: usize) -> Result<Self> {
        if data.len() != self.num_cells() * n_genes {
            return Err(StageError::Batch(format!(
                "dense X of {} values is not {} cells x {n_genes} genes",
                data.len(),
                self.num_cells()
            )));
        }
        let (obs, obsm) = self.parts();
        let arr = fixed_list(data, n_genes)?;
        let f = Field::new(X_DENSE, arr.data_type().clone(), false);
        self.rebuild(obs, Some((vec![f], vec![Arc::new(arr)])), obsm, n_genes)
    }

    /// Add or replace an obs column.
    pub fn with_obs_column(&self, name: &str, col: ArrayRef) -> Result<Self> {
        let (mut obs, obsm) = self.parts();
        match obs.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = col,
            None => obs.push((name.to_string(), col)),
        }
        self.rebuild(obs, None, obsm, self.n_genes)
    }

    /// Add or replace embedding `key` (row-major, `width` columns).
    pub fn with_obsm(&self, key: &str, data: Vec<f32>, width: usize) -> Result<Self> {
        if data.len() != self.num_cells() * width {
            return Err(StageError::Batch(format!("obsm {key}: {} values for {} cells", data.len(), self.num_cells())));
        }
        let (obs, mut obsm) = self.parts();
        let name = format!("{OBSM_PREFIX}{key}");
        let arr: ArrayRef = Arc::new(fixed_list(data, width)?);
        let f = Field::new(&name, arr.data_type().clone(), false);
        match obsm.iter_mut().find(|(fi, _)| fi.name() == &name) {
            Some(slot) => *slot = (f, arr),
            None => obsm.push((f, arr)),
        }
        self.rebuild(obs, None, obsm, self.n_genes)
    }

    /// Keep the cells where `keep` is true, in order.
    pub fn filter_cells(&self, keep: &[bool]) -> Result<Self> {
        if keep.len() != self.num_cells() {
            return Err(StageError::Batch(format!("mask of {} for {} cells", keep.len(), self.num_cells())));
        }
        let mask = BooleanArray::from(keep.to_vec());
        let rb = arrow::compute::filter_record_batch(&self.rb, &mask)?;
        Ok(CellBatch { rb, n_genes: self.n_genes })
    }

    /// Cells `offset .. offset + len`, without copying.
    pub fn slice(&self, offset: usize, len: usize) -> Self {
        CellBatch { rb: self.rb.slice(offset, len), n_genes: self.n_genes }
    }

    /// Concatenate batches of one schema, in order.
    pub fn concat(batches: &[CellBatch]) -> Result<Self> {
        let first = batches.first().ok_or_else(|| StageError::Batch("concat of no batches".into()))?;
        let rbs: Vec<RecordBatch> = batches.iter().map(|b| b.rb.clone()).collect();
        let rb = arrow::compute::concat_batches(&first.rb.schema(), &rbs)?;
        Ok(CellBatch { rb, n_genes: first.n_genes })
    }
}

/// Keep the genes (columns of X) where `keep` is true, in order, remapping the column
/// indices of sparse rows (see [`crate::genes::gene_remap`]); dense X keeps the chosen
/// columns. Obs columns and embeddings are untouched. Used by filter_genes and the HVG
/// subset, which drop genes mid-stream.
pub fn subset_genes(batch: &CellBatch, keep: &[bool]) -> Result<CellBatch> {
    if keep.len() != batch.n_genes() {
        return Err(StageError::Batch(format!("gene mask of {} for {} genes", keep.len(), batch.n_genes())));
    }
    let n_kept = keep.iter().filter(|&&k| k).count();
    match batch.x()? {
        XView::Csr(v) => {
            let remap = crate::genes::gene_remap(keep);
            let mut out = Csr::empty(n_kept);
            out.indptr.reserve(v.n_rows());
            for r in 0..v.n_rows() {
                let (idx, val) = v.row(r);
                for (&j, &x) in idx.iter().zip(val) {
                    match remap.get(j as usize) {
                        Some(Some(nj)) => {
                            out.indices.push(*nj);
                            out.values.push(x);
                        }
                        Some(None) => {}
                        None => {
                            return Err(StageError::Batch(format!(
                                "gene index {j} out of range for {} genes",
                                batch.n_genes()
                            )));
                        }
                    }
                }
                let end = i32::try_from(out.indices.len())
                    .map_err(|_| StageError::Batch("CSR block too large for i32 offsets".into()))?;
                out.indptr.push(end);
            }
            batch.with_x_csr(out)
        }
        XView::Dense { data, n_cols } => {
            let mut out = Vec::with_capacity(batch.num_cells() * n_kept);
            if n_cols > 0 {
                for row in data.chunks_exact(n_cols) {
                    out.extend(row.iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| *x));
                }
            }
            batch.with_x_dense(out, n_kept)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;

    fn sample() -> CellBatch {
        let x = Csr::from_dense(&[vec![1.0, 0.0, 2.0], vec![0.0, 0.0, 0.0], vec![0.0, 3.0, 0.0]]);
        let ids: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "c"]));
        CellBatch::from_csr(vec![(CELL_ID.into(), ids)], x).expect("batch")
    }

    fn dense_of(b: &CellBatch) -> Vec<Vec<f32>> {
        match b.x().expect("x") {
            XView::Csr(c) => c.to_owned().to_dense(),
            XView::Dense { .. } => panic!("dense"),
        }
    }

    #[test]
    fn slice_concat_filter_keep_rows() {
        let b = sample();
        let parts = [b.slice(0, 1), b.slice(1, 2)];
        let c = CellBatch::concat(&parts).expect("concat");
        assert_eq!(dense_of(&c), dense_of(&b));
        assert_eq!(dense_of(&b.slice(2, 1)), vec![vec![0.0, 3.0, 0.0]]);
        let f = b.filter_cells(&[true, false, true]).expect("filter");
        assert_eq!(dense_of(&f), vec![vec![1.0, 0.0, 2.0], vec![0.0, 3.0, 0.0]]);
        let ids = f.obs_column(CELL_ID).expect("ids").as_string::<i32>().iter().flatten().collect::<Vec<_>>().join("");
        assert_eq!(ids, "ac");
    }

    #[test]
    fn subset_genes_csr_and_dense() {
        let b = sample();
        let s = subset_genes(&b, &[false, true, true]).expect("subset");
        assert_eq!(s.n_genes(), 2);
        assert_eq!(dense_of(&s), vec![vec![0.0, 2.0], vec![0.0, 0.0], vec![3.0, 0.0]]);
        assert_eq!(s.obs_columns().len(), 1);
        // on a slice whose offsets do not start at 0
        let s = subset_genes(&b.slice(1, 2), &[true, true, false]).expect("slice");
        assert_eq!(dense_of(&s), vec![vec![0.0, 0.0], vec![0.0, 3.0]]);
        let d = b.with_x_dense(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], 3).expect("dense");
        let s = subset_genes(&d, &[true, false, true]).expect("dense subset");
        match s.x().expect("x") {
            XView::Dense { data, n_cols } => {
                assert_eq!(n_cols, 2);
                assert_eq!(data, &[1.0, 3.0, 4.0, 6.0, 7.0, 9.0]);
            }
            XView::Csr(_) => panic!("sparse"),
        }
        assert!(subset_genes(&b, &[true]).is_err());
    }

    #[test]
    fn dense_and_obsm_columns() {
        let b = sample().with_x_dense(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2).expect("dense");
        let b = b.with_obsm("X_pca", vec![0.5; 3], 1).expect("obsm");
        let s = b.slice(1, 2);
        match s.x().expect("x") {
            XView::Dense { data, n_cols } => {
                assert_eq!(n_cols, 2);
                assert_eq!(data, &[3.0, 4.0, 5.0, 6.0]);
            }
            XView::Csr(_) => panic!("sparse"),
        }
        assert_eq!(s.obsm("X_pca").map(|(d, w)| (d.len(), w)), Some((2, 1)));
        assert_eq!(s.obs_columns().len(), 1);
        assert_eq!(s.obsm_keys(), vec!["X_pca".to_string()]);
    }
}
