//! The gene table (scanpy's var): one Arrow row per gene, travelling beside the stream.
//!
//! Its first column is the var index (`gene_id`, scanpy's var_names); other columns are var
//! metadata (`feature_length`, `gene_symbols`, …) and what stages add (`n_cells`,
//! `highly_variable`, `means`, …). Per-gene matrices (scanpy's varm) are
//! `varm/<key>` fixed-size-list columns, e.g. `varm/PCs`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Float64Type, Schema};

use crate::error::{Result, StageError};

/// Name of the var index column.
pub const GENE_ID: &str = "gene_id";
/// Prefix of per-gene matrix columns (`varm/PCs`).
pub const VARM_PREFIX: &str = "varm/";

/// The genes of a stream, in the column order of X.
#[derive(Clone, Debug)]
pub struct GeneTable {
    rb: RecordBatch,
}

impl GeneTable {
    /// A table holding only the var index.
    pub fn from_names(names: Vec<String>) -> Self {
        let col: ArrayRef = Arc::new(StringArray::from(names));
        let schema = Arc::new(Schema::new(vec![Field::new(GENE_ID, DataType::Utf8, false)]));
        // One column of the declared type cannot fail to assemble.
        let rb = RecordBatch::try_new(schema, vec![col]).unwrap_or_else(|_| unreachable!());
        GeneTable { rb }
    }

    /// Wrap a record batch whose first column is the var index (Utf8).
    pub fn try_new(rb: RecordBatch) -> Result<Self> {
        match rb.schema().fields().first() {
            Some(f) if f.name() == GENE_ID && f.data_type() == &DataType::Utf8 => Ok(GeneTable { rb }),
            _ => Err(StageError::Batch(format!("gene table must start with a Utf8 column {GENE_ID}"))),
        }
    }

    /// The underlying Arrow batch.
    pub fn record_batch(&self) -> &RecordBatch {
        &self.rb
    }

    /// Number of genes.
    pub fn n_genes(&self) -> usize {
        self.rb.num_rows()
    }

    /// The var index (gene ids), in X column order.
    pub fn names(&self) -> &StringArray {
        self.rb.column(0).as_string::<i32>()
    }

    /// The name of gene `j`.
    pub fn name(&self, j: usize) -> &str {
        self.names().value(j)
    }

    /// A column by name.
    pub fn column(&self, name: &str) -> Option<&ArrayRef> {
        self.rb.column_by_name(name)
    }

    /// A numeric column cast to f64 (nulls become NaN); None when absent.
    pub fn f64_column(&self, name: &str) -> Result<Option<Vec<f64>>> {
        let Some(col) = self.column(name) else { return Ok(None) };
        if !col.data_type().is_numeric() {
            return Err(StageError::Batch(format!("var column {name} is {}, not numeric", col.data_type())));
        }
        let cast = arrow::compute::cast(col, &DataType::Float64)?;
        let arr = cast.as_primitive::<Float64Type>();
        Ok(Some((0..arr.len()).map(|i| if arr.is_null(i) { f64::NAN } else { arr.value(i) }).collect()))
    }

    /// Add or replace a column (one value per gene).
    pub fn with_column(&self, name: &str, col: ArrayRef) -> Result<Self> {
        if name == GENE_ID {
            return Err(StageError::Batch(format!("{GENE_ID} cannot be replaced")));
        }
        if col.len() != self.n_genes() {
            return Err(StageError::Batch(format!("var column {name} has {} rows for {} genes", col.len(), self.n_genes())));
        }
        let schema = self.rb.schema();
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        let mut cols: Vec<ArrayRef> = self.rb.columns().to_vec();
        let field = Field::new(name, col.data_type().clone(), col.null_count() > 0);
        match fields.iter().position(|f| f.name() == name) {
            Some(i) => {
                fields[i] = field;
                cols[i] = col;
            }
            None => {
                fields.push(field);
                cols.push(col);
            }
        }
        let rb = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?;
        Ok(GeneTable { rb })
    }

    /// Keep the genes where `keep` is true, in order.
    pub fn subset(&self, keep: &[bool]) -> Result<Self> {
        if keep.len() != self.n_genes() {
            return Err(StageError::Batch(format!("gene mask of {} for {} genes", keep.len(), self.n_genes())));
        }
        let rb = arrow::compute::filter_record_batch(&self.rb, &BooleanArray::from(keep.to_vec()))?;
        Ok(GeneTable { rb })
    }
}

/// For a gene mask, the new index of each kept gene (`None` where dropped). Stages that drop
/// genes use it to remap the column indices of CSR rows.
pub fn gene_remap(keep: &[bool]) -> Vec<Option<u32>> {
    let mut next = 0u32;
    keep.iter()
        .map(|&k| {
            if k {
                next += 1;
                Some(next - 1)
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Float64Array;

    #[test]
    fn columns_and_subset() {
        let g = GeneTable::from_names(vec!["a".into(), "b".into(), "c".into()]);
        let g = g.with_column("len", Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0]))).expect("col");
        let s = g.subset(&[true, false, true]).expect("subset");
        assert_eq!(s.n_genes(), 2);
        assert_eq!(s.name(1), "c");
        assert_eq!(s.f64_column("len").expect("ok"), Some(vec![1.0, 3.0]));
        assert_eq!(gene_remap(&[true, false, true]), vec![Some(0), None, Some(1)]);
    }
}
