//! The Census tutorial's gene-length normalization (semantics reference §0 step 3, §9.4):
//! `X = csr_matrix((X.T / var[["feature_length"]].to_numpy()).T)`, i.e. every count is
//! divided by its gene's length.
//!
//! x ← f32(f64(x) / len_j). scanpy/numpy keep the f64 quotient (the tutorial's X becomes
//! float64 here); we store its f32 rounding (the crate-wide documented deviation). Lengths
//! must be positive finite numbers: a zero, negative, NaN or missing length is refused at
//! construction, naming the genes, instead of silently producing inf/NaN as numpy would.

use arrow::array::Array;
use atlasflow_core::rows::cell_name;
use atlasflow_core::{CellBatch, GeneTable, MapStage, Result, StageError, XView};

use crate::map_values;

const STAGE: &str = "gene_length_normalize";

/// Divides each gene's values by its length from a var column (`feature_length` in the
/// Census). Works on sparse and dense X; leaves var and uns unchanged.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneLengthNormalize {
    /// The var column the lengths were read from.
    column: String,
    /// One positive, finite length per gene.
    lengths: Vec<f64>,
    /// Gene ids, to name a gene in errors.
    names: Vec<String>,
}

impl GeneLengthNormalize {
    /// Read and check the lengths from var[`column`]: a missing column is an error listing
    /// the var columns; a non-numeric column, or zero, negative, NaN, infinite or null
    /// lengths are errors naming up to 10 offending genes and their count.
    pub fn new(column: &str, genes: &GeneTable) -> Result<Self> {
        let Some(col) = genes.column(column) else {
            let names: Vec<String> =
                genes.record_batch().schema().fields().iter().map(|f| f.name().clone()).collect();
            return Err(StageError::param(
                STAGE,
                "column",
                format!("var has no column {column:?}; var columns are: {}", names.join(", ")),
            ));
        };
        if !col.data_type().is_numeric() {
            return Err(StageError::param(
                STAGE,
                "column",
                format!("var column {column:?} is {}, not numeric gene lengths", col.data_type()),
            ));
        }
        let nulls = col.logical_nulls();
        let lengths = genes.f64_column(column)?.unwrap_or_default();
        let bad: Vec<usize> = (0..lengths.len())
            .filter(|&j| nulls.as_ref().is_some_and(|n| n.is_null(j)) || !(lengths[j] > 0.0 && lengths[j].is_finite()))
            .collect();
        if !bad.is_empty() {
            let shown: Vec<String> = bad
                .iter()
                .take(10)
                .map(|&j| {
                    let v = if nulls.as_ref().is_some_and(|n| n.is_null(j)) { "null".to_string() } else { lengths[j].to_string() };
                    format!("{} ({v})", genes.name(j))
                })
                .collect();
            let more = if bad.len() > 10 { format!(", … and {} more", bad.len() - 10) } else { String::new() };
            return Err(StageError::data(
                STAGE,
                format!(
                    "{} of {} genes have a zero, negative, NaN or missing length in var column {column:?}: {}{more}",
                    bad.len(),
                    lengths.len(),
                    shown.join(", ")
                ),
            ));
        }
        let names = (0..genes.n_genes()).map(|j| genes.name(j).to_string()).collect();
        Ok(GeneLengthNormalize { column: column.to_string(), lengths, names })
    }

    /// The var column the lengths come from.
    pub fn column(&self) -> &str {
        &self.column
    }

    /// The length of each gene, as f64.
    pub fn lengths(&self) -> &[f64] {
        &self.lengths
    }
}

impl MapStage for GeneLengthNormalize {
    /// Refuses negative values: the division is meant for raw counts, and a negative count
    /// means the input is not counts (or is corrupt).
    fn map(&self, batch: CellBatch) -> Result<CellBatch> {
        let len = &self.lengths;
        if let XView::Csr(x) = batch.x()? {
            for r in 0..x.n_rows() {
                let (idx, val) = x.row(r);
                if let Some(k) = val.iter().position(|v| *v < 0.0) {
                    let j = idx[k] as usize;
                    let cell = cell_name(&batch, r);
                    return Err(StageError::data(
                        STAGE,
                        format!(
                            "negative count {} in cell {cell}, gene {} (column {j}): X must hold raw counts",
                            val[k],
                            self.names.get(j).map_or("?", String::as_str)
                        ),
                    ));
                }
            }
        }
        map_values(&batch, len.len(), STAGE, |_, j, x| (f64::from(x) / len[j]) as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, StringArray};
    use atlasflow_core::{Csr, XView};
    use std::sync::Arc;

    fn genes(lengths: Vec<Option<i64>>) -> GeneTable {
        let g = GeneTable::from_names((0..lengths.len()).map(|j| format!("g{j}")).collect());
        g.with_column("feature_length", Arc::new(Int64Array::from(lengths))).expect("col")
    }

    #[test]
    fn divides_by_length() {
        let g = genes(vec![Some(1000), Some(3), Some(7)]);
        let st = GeneLengthNormalize::new("feature_length", &g).expect("new");
        let rows = vec![vec![5.0, 0.0, 1.0], vec![0.0, 2.0, 0.0]];
        let b = CellBatch::from_csr(vec![], Csr::from_dense(&rows)).expect("b");
        let out = st.map(b.slice(0, 2)).expect("map");
        let XView::Csr(v) = out.x().expect("x") else { panic!("csr") };
        // f32(5/1000) = 0.005f32; f32(1/7); f32(2/3): the f64 quotient rounded once
        assert_eq!(v.to_owned().to_dense(), vec![vec![0.005, 0.0, (1.0f64 / 7.0) as f32], vec![0.0, (2.0f64 / 3.0) as f32, 0.0]]);
        // on the second row alone (offsets not starting at 0) and dense
        let out = st.map(b.slice(1, 1)).expect("map");
        let XView::Csr(v) = out.x().expect("x") else { panic!("csr") };
        assert_eq!(v.to_owned().to_dense(), vec![vec![0.0, (2.0f64 / 3.0) as f32, 0.0]]);
        let d = b.with_x_dense(rows.concat(), 3).expect("dense");
        let out = st.map(d).expect("map");
        let XView::Dense { data, .. } = out.x().expect("x") else { panic!("dense") };
        assert_eq!(data[0], 0.005);
        assert_eq!(st.genes(&g).expect("g").record_batch(), g.record_batch());
    }

    #[test]
    fn bad_lengths_and_columns() {
        let g = genes(vec![Some(10), Some(0), None, Some(-3)]);
        let e = GeneLengthNormalize::new("feature_length", &g).expect_err("bad").to_string();
        assert!(e.contains("3 of 4 genes") && e.contains("g1 (0)") && e.contains("g2 (null)") && e.contains("g3 (-3)"), "{e}");
        let e = GeneLengthNormalize::new("length", &g).expect_err("missing").to_string();
        assert!(e.contains("\"length\"") && e.contains("feature_length") && e.contains("gene_id"), "{e}");
        let many = genes(vec![Some(0); 12]);
        let e = GeneLengthNormalize::new("feature_length", &many).expect_err("bad").to_string();
        assert!(e.contains("and 2 more") && !e.contains("g10 "), "{e}");
        let f = GeneTable::from_names(vec!["a".into()]);
        let f = f.with_column("len", Arc::new(Float64Array::from(vec![f64::NAN]))).expect("c");
        assert!(GeneLengthNormalize::new("len", &f).is_err());
        let s = f.with_column("name", Arc::new(StringArray::from(vec!["x"]))).expect("c");
        assert!(GeneLengthNormalize::new("name", &s).is_err());
        // a batch of another width is refused
        let st = GeneLengthNormalize::new("feature_length", &genes(vec![Some(1), Some(2)])).expect("new");
        let b = CellBatch::from_csr(vec![], Csr::from_dense(&[vec![1.0, 2.0, 3.0]])).expect("b");
        assert!(st.map(b).is_err());
    }
}
