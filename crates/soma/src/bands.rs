//! Streaming rows of a SparseNDArray (Census X) in dim-0 order, one band at a time.
//!
//! A band is `band_rows` consecutive dim-0 coordinates aligned to the dimension's domain
//! (by default the dim-0 space-tile extent, 2048 for Census X, so a band is one row of
//! space tiles and its data tiles sit next to each other in each fragment's files). Each
//! band is one [`SparseReader`] read of the selected rows it holds, returned as CSR.
//! Bands holding no selected row are skipped without any I/O.
//!
//! **Memory bound per band:** the decoded cells of the data tiles whose R-tree leaf
//! intersects the band's selected rows — per fragment at most
//! `ceil(band cells / capacity) + 1` tiles when `band_rows` is the tile extent (a band's
//! cells are contiguous in each fragment's global order; its first and last tile may
//! straddle the band's edges), each `capacity` cells × (8 + 8 + value size) bytes for the
//! two coordinates and the value — plus the tiles kept for the next band (those reaching
//! past this one, about one per fragment; the next band reuses them rather than decoding
//! them again) and the CSR result (12 bytes per kept non-zero, 8 per row). For Census X
//! (capacity 65,536, f32) a tile is ~1.3 MiB decoded; nothing scales with the array.
//! [`CsrRows::stats`] reports the tiles and cells each band decoded.

use std::sync::Arc;

use crate::array::TileDbArray;
use crate::coords::Coords;
use crate::error::{Result, corrupt, unsupported};
use crate::read::{ReadStats, SparseReader};

/// Rows of a sparse matrix in CSR form: the rows' dim-0 joinids (every requested row,
/// also those without a stored cell), row pointers, dim-1 joinids and values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CsrRows {
    /// The rows' dim-0 joinids (obs soma_joinids), ascending.
    pub obs_joinids: Vec<i64>,
    /// Row `i`'s cells are `indptr[i]..indptr[i + 1]` of `var_joinids` and `values`.
    pub indptr: Vec<u64>,
    /// Dim-1 joinids (var soma_joinids), ascending within a row.
    pub var_joinids: Vec<u32>,
    /// Values, as f32 (Census X stores f32; other types are cast).
    pub values: Vec<f32>,
    /// What reading these rows decoded.
    pub stats: ReadStats,
}

impl CsrRows {
    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.obs_joinids.len()
    }

    /// Number of stored values.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }
}

/// Reads rows of a two-dimensional SparseNDArray as CSR.
#[derive(Debug, Clone)]
pub struct XReader {
    reader: Arc<SparseReader>,
    /// Lowest dim-0 coordinate (bands are aligned to it).
    dom_lo: i64,
    /// Highest dim-0 coordinate a row can have (shape − 1).
    rows_hi: i64,
}

impl XReader {
    /// Prepares reading `array`, a SparseNDArray with dimensions `soma_dim_0`,
    /// `soma_dim_1` and attribute `soma_data`.
    pub fn new(array: &TileDbArray) -> Result<Self> {
        let loc = array.location();
        let s = array.schema();
        if s.dimensions.len() != 2 || s.attribute("soma_data").is_none() {
            return Err(unsupported(
                &loc,
                "CSR reads need a two-dimensional SparseNDArray with a soma_data attribute",
            ));
        }
        let names: Vec<&str> = vec![
            s.dimensions[0].name.as_str(),
            s.dimensions[1].name.as_str(),
            "soma_data",
        ];
        let reader = SparseReader::new(array, Some(&names))?;
        let dom_lo = s.dimensions[0]
            .domain
            .as_ref()
            .and_then(|r| r.as_i64())
            .map_or(0, |r| r.0);
        let rows_hi = match s.shape().first().copied().flatten() {
            Some(n) => i64::try_from(n).unwrap_or(i64::MAX).saturating_sub(1),
            None => array
                .fragments()
                .iter()
                .filter_map(|f| f.footer.non_empty_domain.as_ref()?.first()?.as_i64())
                .map(|r| r.1)
                .max()
                .unwrap_or(-1),
        };
        Ok(XReader {
            reader: Arc::new(reader),
            dom_lo,
            rows_hi,
        })
    }

    /// The underlying range reader.
    pub fn sparse(&self) -> &SparseReader {
        &self.reader
    }

    /// The rows `rows` (ascending, without duplicates), each present in the result even
    /// when it holds no cell. Decodes only the tiles intersecting them.
    pub fn read_rows(&self, rows: &[i64]) -> Result<CsrRows> {
        let loc = self.reader.array().location();
        if rows.windows(2).any(|w| w[0] >= w[1]) {
            return Err(corrupt(
                &loc,
                "rows to read must be ascending without duplicates",
            ));
        }
        // Consecutive rows (a band of every cell) filter as one range: cheaper than points.
        let coords = match (rows.first(), rows.last()) {
            (Some(&a), Some(&b)) if b - a + 1 == rows.len() as i64 => Coords::range(a, b),
            _ => Coords::points(rows.iter().copied()),
        };
        let (coo, stats) = self.reader.read_coo(&coords)?;
        let mut indptr = Vec::with_capacity(rows.len() + 1);
        indptr.push(0u64);
        let mut k = 0usize;
        for &row in rows {
            while coo.dim0.get(k) == Some(&row) {
                k += 1;
            }
            indptr.push(k as u64);
        }
        if let Some(d) = coo.dim0.get(k) {
            return Err(corrupt(
                &loc,
                format!("a cell of row {d} was not asked for"),
            ));
        }
        let var_joinids = coo
            .dim1
            .iter()
            .map(|&d| {
                u32::try_from(d)
                    .map_err(|_| corrupt(&loc, format!("dim-1 coordinate {d} is not a u32")))
            })
            .collect::<Result<Vec<u32>>>()?;
        let values = coo.values;
        Ok(CsrRows {
            obs_joinids: rows.to_vec(),
            indptr,
            var_joinids,
            values,
            stats,
        })
    }

    /// The dim-0 band size [`XReader::bands`] uses by default: the dim-0 tile extent.
    pub fn default_band_rows(&self) -> i64 {
        self.reader.dim0_tile_extent().unwrap_or(2048)
    }

    /// Streams the selected rows (`cells`, within the shape) band by band in dim-0
    /// order; `band_rows` defaults to the dim-0 tile extent.
    pub fn bands(&self, cells: Coords, band_rows: Option<i64>) -> XBands {
        let band = band_rows.unwrap_or_else(|| self.default_band_rows()).max(1);
        XBands {
            x: self.clone(),
            cells: cells.restrict(self.dom_lo, self.rows_hi),
            band,
            next: Some(self.dom_lo),
        }
    }
}

/// The iterator of [`XReader::bands`]: one [`CsrRows`] per band holding selected rows.
#[derive(Debug)]
pub struct XBands {
    x: XReader,
    cells: Coords,
    band: i64,
    /// The first coordinate not yet streamed (`None`: done).
    next: Option<i64>,
}

impl XBands {
    /// The dim-0 range (inclusive) of the next band to read and its rows, advancing.
    fn next_band(&mut self) -> Option<(i64, i64, Vec<i64>)> {
        let from = self.next?;
        let first = self.cells.next_at_or_after(from)?;
        let lo = self.x.dom_lo;
        let band_lo = lo.saturating_add((first - lo).div_euclid(self.band) * self.band);
        let band_hi = band_lo.saturating_add(self.band - 1);
        self.next = band_hi.checked_add(1);
        Some((band_lo, band_hi, self.cells.list_in(band_lo, band_hi)))
    }
}

impl Iterator for XBands {
    type Item = Result<CsrRows>;

    fn next(&mut self) -> Option<Self::Item> {
        let (_, _, rows) = self.next_band()?;
        let out = self.x.read_rows(&rows);
        if out.is_err() {
            self.next = None;
        }
        Some(out)
    }
}
