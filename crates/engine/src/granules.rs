//! Granules: the fixed cuts of the cell stream that make results reproducible.
//!
//! The source is cut into granules whose boundaries depend only on the data (at most
//! [`MAX_CELLS`] cells and, past the first cell, at most [`MAX_NNZ`] non-zeros). Each granule
//! gets its own fit state; states merge in granule order within a segment (a run of
//! granules, also fixed by the data), then segment by segment, so the same input gives the
//! same bits whatever the read batch size, thread count, or cluster tasks.

use std::ops::Range;

/// Most cells in one granule.
pub const MAX_CELLS: usize = 1024;
/// Most non-zeros in one granule (a single denser cell gets a granule of its own).
pub const MAX_NNZ: u64 = 2_000_000;

/// Most segments a pass is cut into.
pub const MAX_SEGMENTS: usize = 64;

/// Granules per segment for a source of `n_granules` granules.
///
/// A segment is a run of consecutive granules whose fit states are merged together first;
/// segment states are then merged in segment order. A cluster task processes whole
/// segments and ships one state per segment, so the merge tree (and with it every bit of a
/// floating-point state) is the same on one machine and on a cluster. The length depends
/// only on the data, never on threads or tasks.
pub fn segment_len(n_granules: usize) -> usize {
    n_granules.div_ceil(MAX_SEGMENTS).max(1)
}

/// The number of segments of a source of `n_granules` granules.
pub fn n_segments(n_granules: usize) -> usize {
    n_granules.div_ceil(segment_len(n_granules))
}

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

    #[test]
    fn segments_cover_granules_in_at_most_max_segments() {
        assert_eq!((segment_len(0), n_segments(0)), (1, 0));
        assert_eq!((segment_len(3), n_segments(3)), (1, 3));
        assert_eq!((segment_len(64), n_segments(64)), (1, 64));
        assert_eq!((segment_len(65), n_segments(65)), (2, 33));
        assert_eq!((segment_len(977), n_segments(977)), (16, 62));
    }
}
