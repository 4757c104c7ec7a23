//! Per-cell access to X for kernels that treat sparse and dense rows alike, and the checks
//! that let them index per-gene arrays without bounds surprises.
//!
//! Stage crates (qc, normalize, …) all need the same three steps: view X, check that it has
//! the gene count the stage was fitted for (and that no sparse index escapes it), then walk
//! the cells. These live here so every stage checks and iterates X the same way.

use arrow::array::{Array, AsArray};

use crate::batch::{CellBatch, XView, CELL_ID};
use crate::error::{Result, StageError};

/// One cell's entries, sparse or dense, so a kernel is written once for both layouts of X.
#[derive(Clone, Copy, Debug)]
pub enum Row<'a> {
    /// Stored entries of a CSR row: gene indices and values (implicit zeros elsewhere).
    Sparse(&'a [u32], &'a [f32]),
    /// Every entry of a dense row, gene `j` at position `j`.
    Dense(&'a [f32]),
}

impl Row<'_> {
    /// Call `g(gene, value)` for each entry present (stored entries for a sparse row, every
    /// entry for a dense one), so sums over a row skip implicit zeros without branching on
    /// the layout in the kernel.
    #[inline]
    pub fn for_each(&self, mut g: impl FnMut(usize, f32)) {
        match self {
            Row::Sparse(idx, val) => idx.iter().zip(val.iter()).for_each(|(&j, &v)| g(j as usize, v)),
            Row::Dense(val) => val.iter().enumerate().for_each(|(j, &v)| g(j, v)),
        }
    }

    /// Number of entries present (stored entries, or the gene count for a dense row); QC
    /// uses it to count the genes by counts of sparse rows.
    pub fn len(&self) -> usize {
        match self {
            Row::Sparse(_, val) | Row::Dense(val) => val.len(),
        }
    }

    /// Whether no entry is present (an empty sparse row, or a dense row of no genes).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Check that an X view has `n_genes` columns and that every sparse gene index of its rows
/// is below `n_genes`, so kernels may index per-gene arrays directly. Only the entries
/// between the first and last row offsets are checked (a sliced batch shares its buffers).
///
/// The error is [`StageError::Batch`] with a message naming the problem (gene count or
/// offending index); callers may prefix their stage name.
pub fn check_x(x: &XView<'_>, n_genes: usize) -> Result<()> {
    if x.n_cols() != n_genes {
        return Err(StageError::Batch(format!("batch has {} genes, the stage expects {n_genes}", x.n_cols())));
    }
    if let XView::Csr(v) = x {
        let a = v.indptr.first().copied().unwrap_or(0) as usize;
        let b = v.indptr.last().copied().unwrap_or(0) as usize;
        if let Some(&j) = v.indices.get(a..b).and_then(|s| s.iter().find(|&&j| j as usize >= n_genes)) {
            return Err(StageError::Batch(format!("gene index {j} out of range for {n_genes} genes")));
        }
    }
    Ok(())
}

/// X of `batch`, after [`check_x`]: the view a kernel indexing per-gene arrays of length
/// `n_genes` can trust. Errors from reading X itself are returned as [`CellBatch::x`] gives
/// them.
pub fn checked_x<'a>(batch: &'a CellBatch, n_genes: usize) -> Result<XView<'a>> {
    let x = batch.x()?;
    check_x(&x, n_genes)?;
    Ok(x)
}

/// The rows of an X view, one per cell, borrowing X's buffers (no copy). `n_cells` is the
/// batch's cell count, needed because dense X with no genes has no data to chunk. Pass a
/// view from [`checked_x`] when the kernel indexes per-gene arrays.
pub fn rows<'a>(x: &XView<'a>, n_cells: usize) -> Vec<Row<'a>> {
    match *x {
        XView::Csr(v) => (0..v.n_rows())
            .map(|r| {
                let (i, x) = v.row(r);
                Row::Sparse(i, x)
            })
            .collect(),
        XView::Dense { n_cols: 0, .. } => vec![Row::Dense(&[]); n_cells],
        XView::Dense { data, n_cols } => data.chunks_exact(n_cols).map(Row::Dense).collect(),
    }
}

/// The obs name of cell `i` of a batch, for error messages that must point the user at a
/// cell: its `cell_id` value, or `#i` when there is no string `cell_id` column (or the
/// value is null or `i` is out of range).
pub fn cell_name(batch: &CellBatch, i: usize) -> String {
    batch
        .obs_column(CELL_ID)
        .and_then(|c| c.as_string_opt::<i32>().filter(|s| i < s.len() && s.is_valid(i)).map(|s| s.value(i).to_string()))
        .unwrap_or_else(|| format!("#{i}"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, StringArray};

    use super::*;
    use crate::csr::Csr;

    fn sample() -> CellBatch {
        let x = Csr::from_dense(&[vec![1.0, 0.0, 2.0], vec![0.0, 0.0, 0.0], vec![0.0, 3.0, 4.0]]);
        let ids: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "c"]));
        CellBatch::from_csr(vec![(CELL_ID.into(), ids)], x).expect("batch")
    }

    fn entries(r: &Row<'_>) -> Vec<(usize, f32)> {
        let mut out = Vec::new();
        r.for_each(|j, v| out.push((j, v)));
        out
    }

    #[test]
    fn csr_rows_of_a_slice_not_starting_at_zero() {
        let b = sample().slice(1, 2);
        let x = checked_x(&b, 3).expect("checked");
        let r = rows(&x, b.num_cells());
        assert_eq!(r.len(), 2);
        assert!(r[0].is_empty());
        assert_eq!(entries(&r[0]), vec![]);
        assert_eq!(r[1].len(), 2);
        assert_eq!(entries(&r[1]), vec![(1, 3.0), (2, 4.0)]);
        assert_eq!(cell_name(&b, 1), "c");
        assert_eq!(cell_name(&b, 5), "#5");
    }

    #[test]
    fn dense_rows() {
        let d = vec![9.0, 9.0, 9.0, 1.0, 0.0, 2.0, 0.0, 0.0, 0.0];
        let b = sample().with_x_dense(d, 3).expect("dense").slice(1, 2);
        let x = checked_x(&b, 3).expect("checked");
        let r = rows(&x, b.num_cells());
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].len(), 3);
        assert_eq!(entries(&r[0]), vec![(0, 1.0), (1, 0.0), (2, 2.0)]);
        assert_eq!(entries(&r[1]), vec![(0, 0.0), (1, 0.0), (2, 0.0)]);
        // No genes: still one (empty) row per cell.
        let none = XView::Dense { data: &[], n_cols: 0 };
        check_x(&none, 0).expect("checked");
        let r = rows(&none, 3);
        assert_eq!(r.len(), 3);
        assert!(r.iter().all(Row::is_empty));
        assert!(check_x(&none, 1).is_err());
    }

    #[test]
    fn wrong_gene_count_and_out_of_range_index_are_refused() {
        let b = sample();
        let e = checked_x(&b, 4).err().expect("gene count").to_string();
        assert!(e.contains("batch has 3 genes, the stage expects 4"), "{e}");
        let bad = Csr { indptr: vec![0, 1, 2], indices: vec![0, 7], values: vec![1.0, 1.0], n_cols: 3 };
        let b = b.slice(0, 2).with_x_csr(bad).expect("bad csr");
        let e = checked_x(&b, 3).err().expect("index").to_string();
        assert!(e.contains("gene index 7 out of range for 3 genes"), "{e}");
        // The first row alone is fine: only the slice's own entries are checked.
        assert!(checked_x(&b.slice(0, 1), 3).is_ok());
    }
}
