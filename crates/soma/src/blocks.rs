//! Streaming a DataFrame (or any sparse array) by dim-0 blocks: one Arrow record batch
//! per block of `block_rows` consecutive soma_joinids holding selected rows, so a
//! DataFusion scan over obs reads the Census in bounded memory. Blocks without selected
//! rows are skipped without I/O.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;

use crate::coords::Coords;
use crate::error::Result;
use crate::read::SparseReader;

/// The iterator of [`blocks`]: one record batch per block holding selected rows.
#[derive(Debug)]
pub struct Blocks {
    reader: Arc<SparseReader>,
    coords: Coords,
    block: i64,
    next: Option<i64>,
}

/// Streams `reader`'s cells selected by `coords`, `block_rows` dim-0 coordinates (aligned
/// to multiples of `block_rows`) per batch; batches are sorted by coordinates and never
/// empty. Memory: the tiles intersecting one block.
pub fn blocks(reader: Arc<SparseReader>, coords: Coords, block_rows: i64) -> Blocks {
    // Only the stored extent can hold cells: blocks outside it are never visited.
    let coords = match reader.dim0_bounds() {
        Some((lo, hi)) => coords.restrict(lo, hi),
        None => Coords::range(0, -1),
    };
    Blocks {
        reader,
        coords,
        block: block_rows.max(1),
        next: Some(i64::MIN),
    }
}

impl Iterator for Blocks {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let from = self.next?;
            let first = self.coords.next_at_or_after(from)?;
            let lo = first.div_euclid(self.block).saturating_mul(self.block);
            let hi = lo.saturating_add(self.block - 1);
            self.next = hi.checked_add(1);
            match self.reader.read(&self.coords.restrict(lo, hi)) {
                Ok(b) if b.num_rows() == 0 => continue,
                Ok(b) => return Some(Ok(b)),
                Err(e) => {
                    self.next = None;
                    return Some(Err(e));
                }
            }
        }
    }
}
