//! Granules: the fixed cuts of the cell stream that make results reproducible.
//!
//! The source is cut into granules whose boundaries depend only on the data (at most
//! [`MAX_CELLS`] cells and, past the first cell, at most [`MAX_NNZ`] non-zeros). Each granule
//! gets its own fit state and states merge in granule order, so the same input gives the
//! same bits whatever the read batch size or thread count.

use std::ops::Range;

/// Most cells in one granule.
pub const MAX_CELLS: usize = 1024;
/// Most non-zeros in one granule (a single denser cell gets a granule of its own).
pub const MAX_NNZ: u64 = 2_000_000;

/// Cut `0..row_nnz.len()` into granules.
pub fn plan(row_nnz: &[u64]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut nnz) = (0usize, 0u64);
    for (i, &r) in row_nnz.iter().enumerate() {
        if i > start && (i - start >= MAX_CELLS || nnz + r > MAX_NNZ) {
            out.push(start..i);
            start = i;
            nnz = 0;
        }
        nnz += r;
    }
    if start < row_nnz.len() {
        out.push(start..row_nnz.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_by_cells_and_nnz() {
        assert_eq!(plan(&[]), Vec::<Range<usize>>::new());
        let g = plan(&vec![1; 2500]);
        assert_eq!(g, vec![0..1024, 1024..2048, 2048..2500]);
        let g = plan(&[1_500_000, 600_000, 3_000_000, 1]);
        assert_eq!(g, vec![0..1, 1..2, 2..3, 3..4]);
    }
}
