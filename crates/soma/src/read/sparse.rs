//! [`SparseReader`]: reads the cells of a sparse array (SparseNDArray or DataFrame) whose
//! dim-0 coordinate is selected, decoding only the data tiles whose R-tree leaf MBR
//! intersects the selection, each fragment with its own schema. Cells come sorted by
//! coordinates (dim 0, then the other int64 dimensions): each fragment's selected tiles
//! are sorted runs (global order: space tiles row-major, cells row-major inside), and a
//! stable sort of the row indices merges them (Rust's stable sort detects and merges
//! runs). Duplicates keep their fragment order (oldest first); arrays without duplicates
//! keep each coordinate's newest cell.
//!
//! Memory: one read holds the decoded cells of the tiles it selects (at most `capacity`
//! cells per tile and fragment, for the columns read plus the dimensions), then the
//! selected cells as Arrow arrays — never the whole array unless the selection covers it.
//! In arrays with duplicates allowed (Census X, obs, var) the reader keeps the decoded
//! tiles of its last read that reach past that read's upper dim-0 bound, so reads in
//! ascending order (bands, blocks) decode a tile straddling their edge once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, UInt32Array, UInt64Array};
use arrow::compute::{filter_record_batch, take_record_batch};
use arrow::datatypes::{Field as ArrowField, Schema, SchemaRef};
use arrow::record_batch::RecordBatchOptions;

use super::column::Column;
use super::field::{FieldCells, read_field_tiles};
use super::plan::{FragmentIndex, ReadPlan, index_fragments, plan};
use super::{ColumnSpec, push_priority, to_arrow};
use crate::array::TileDbArray;
use crate::coords::Coords;
use crate::cursor::le_u64s;
use crate::datatype::Datatype;
use crate::error::{Result, SomaError, corrupt, unsupported};
use crate::fragment::Fragment;
use crate::merge::{KeyPart, newest_wins};

/// Counters of what a [`SparseReader`] decoded, cumulative over its reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Reads run.
    pub reads: u64,
    /// Data tiles decoded (a tile counts once however many columns were read from it).
    pub tiles: u64,
    /// Data tiles reused from the previous read instead of decoded again: tiles that
    /// straddle a band edge are decoded once.
    pub reused_tiles: u64,
    /// Cells those tiles hold.
    pub cells: u64,
    /// Stored bytes fetched for them, over every column's files.
    pub bytes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    reads: AtomicU64,
    tiles: AtomicU64,
    reused_tiles: AtomicU64,
    cells: AtomicU64,
    bytes: AtomicU64,
}

/// Range reads of one sparse array: opened once (R-tree leaves and tile offsets of the
/// columns read are loaded for every fragment), then [`SparseReader::read`] any number of
/// dim-0 selections, from any thread.
#[derive(Debug)]
pub struct SparseReader {
    array: TileDbArray,
    /// Every dimension first (the coordinates filter, merge and sort need them), then the
    /// requested attributes.
    specs: Vec<ColumnSpec>,
    /// Which specs a result holds, in the order requested.
    output: Vec<usize>,
    schema: SchemaRef,
    merge: bool,
    frags: Vec<FragmentIndex>,
    counters: Counters,
    /// The decoded tiles of the last read that reach past its upper dim-0 bound.
    cache: Mutex<TileCache>,
}

/// Decoded tiles by (fragment position, tile index): per column read, the cells.
type TileCache = HashMap<(usize, usize), Vec<Option<FieldCells>>>;

/// Decoded cells before they become Arrow arrays, and the rows to return.
struct Gathered {
    /// Per spec, every cell of the decoded tiles.
    cols: Vec<Column>,
    /// Number of those cells.
    rows: usize,
    /// Their dim-0 coordinates.
    d0: Vec<i64>,
    /// Whether each is selected (and newest).
    keep: Vec<bool>,
    /// The kept cells in coordinate order.
    order: Vec<usize>,
}

/// Cells in coordinate order as plain vectors (see [`SparseReader::read_coo`]).
#[derive(Debug, Default)]
pub(crate) struct Coo {
    /// Dim-0 coordinates, ascending.
    pub(crate) dim0: Vec<i64>,
    /// Dim-1 coordinates.
    pub(crate) dim1: Vec<i64>,
    /// Values.
    pub(crate) values: Vec<f32>,
}

/// The values at `order` of a fixed-size numeric or boolean column as f32 (`None`: not
/// a numeric type).
fn values_f32(t: Datatype, data: &[u8], order: &[usize]) -> Option<Vec<f32>> {
    fn pick<const N: usize>(
        data: &[u8],
        order: &[usize],
        f: impl Fn([u8; N]) -> f32,
    ) -> Option<Vec<f32>> {
        let (chunks, _) = data.as_chunks::<N>();
        order
            .iter()
            .map(|&r| chunks.get(r).map(|c| f(*c)))
            .collect()
    }
    match t {
        Datatype::Float32 => pick::<4>(data, order, f32::from_le_bytes),
        Datatype::Float64 => pick::<8>(data, order, |b| f64::from_le_bytes(b) as f32),
        Datatype::Int8 => pick::<1>(data, order, |b| f32::from(i8::from_le_bytes(b))),
        Datatype::UInt8 | Datatype::Bool => pick::<1>(data, order, |b| f32::from(b[0])),
        Datatype::Int16 => pick::<2>(data, order, |b| f32::from(i16::from_le_bytes(b))),
        Datatype::UInt16 => pick::<2>(data, order, |b| f32::from(u16::from_le_bytes(b))),
        Datatype::Int32 => pick::<4>(data, order, |b| i32::from_le_bytes(b) as f32),
        Datatype::UInt32 => pick::<4>(data, order, |b| u32::from_le_bytes(b) as f32),
        Datatype::Int64 => pick::<8>(data, order, |b| i64::from_le_bytes(b) as f32),
        Datatype::UInt64 => pick::<8>(data, order, |b| u64::from_le_bytes(b) as f32),
        _ => None,
    }
}

/// Little-endian i64 values of a fixed 8-byte column.
fn i64s(data: &[u8]) -> Vec<i64> {
    le_u64s(data).into_iter().map(|v| v as i64).collect()
}

impl SparseReader {
    /// Prepares range reads of `columns` (dimensions or attributes; `None`: all,
    /// dimensions first) of a sparse array whose dimension 0 is int64 (every SOMA array).
    pub fn new(array: &TileDbArray, columns: Option<&[&str]>) -> Result<Self> {
        let loc = array.location();
        let schema = array.schema();
        if !schema.sparse {
            return Err(unsupported(&loc, "range reads of dense arrays"));
        }
        match schema.dimensions.first() {
            Some(d) if d.datatype == Datatype::Int64 => {}
            Some(d) => {
                return Err(unsupported(
                    &loc,
                    format!(
                        "range reads need an int64 first dimension; {} is {}",
                        d.name,
                        d.datatype.name()
                    ),
                ));
            }
            None => return Err(corrupt(&loc, "the schema has no dimension")),
        }
        let requested: Vec<String> = match columns {
            Some(c) => c.iter().map(|s| s.to_string()).collect(),
            None => array.column_names(),
        };
        let mut names: Vec<String> = schema.dimensions.iter().map(|d| d.name.clone()).collect();
        let mut output = Vec::with_capacity(requested.len());
        for r in &requested {
            match names.iter().position(|n| n == r) {
                Some(k) => output.push(k),
                None => {
                    names.push(r.clone());
                    output.push(names.len() - 1);
                }
            }
        }
        let specs = names
            .iter()
            .map(|n| array.column_spec(n))
            .collect::<Result<Vec<_>>>()?;
        let merge = array.needs_newest_wins();
        let frags = index_fragments(array, &specs, merge)?;
        let mut reader = SparseReader {
            array: array.clone(),
            specs,
            output,
            schema: Arc::new(Schema::empty()),
            merge,
            frags,
            counters: Counters::default(),
            cache: Mutex::new(TileCache::new()),
        };
        // The result schema, from an empty read.
        reader.schema = reader.read(&Coords::range(0, -1))?.schema();
        reader.counters = Counters::default();
        Ok(reader)
    }

    /// The array read.
    pub fn array(&self) -> &TileDbArray {
        &self.array
    }

    /// The schema of every result batch.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The dim-0 tile extent of the latest schema (2048 for Census X), if set.
    pub fn dim0_tile_extent(&self) -> Option<i64> {
        let d = self.array.schema().dimensions.first()?;
        let e = d.tile_extent.as_ref()?;
        let bytes: [u8; 8] = e.as_slice().try_into().ok()?;
        Some(i64::from_le_bytes(bytes)).filter(|&e| e > 0)
    }

    /// The smallest and largest stored dim-0 coordinate (the union of the fragments'
    /// non-empty domains; `None`: no cell).
    pub fn dim0_bounds(&self) -> Option<(i64, i64)> {
        self.array
            .fragments
            .iter()
            .filter_map(|f| f.footer.non_empty_domain.as_ref()?.first()?.as_i64())
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
    }

    /// What the reader decoded so far.
    pub fn stats(&self) -> ReadStats {
        ReadStats {
            reads: self.counters.reads.load(Ordering::Relaxed),
            tiles: self.counters.tiles.load(Ordering::Relaxed),
            reused_tiles: self.counters.reused_tiles.load(Ordering::Relaxed),
            cells: self.counters.cells.load(Ordering::Relaxed),
            bytes: self.counters.bytes.load(Ordering::Relaxed),
        }
    }

    /// The tiles a read of `coords` decodes.
    pub fn plan(&self, coords: &Coords) -> ReadPlan {
        plan(&self.frags, coords)
    }

    /// The cells whose dim-0 coordinate lies in `lo..=hi` and, when `wanted` is given, is
    /// one of those joinids (any order).
    pub fn read_range(&self, lo: i64, hi: i64, wanted: Option<&[i64]>) -> Result<RecordBatch> {
        let coords = match wanted {
            Some(w) => Coords::points(w.iter().copied()).restrict(lo, hi),
            None => Coords::range(lo, hi),
        };
        self.read(&coords)
    }

    /// The cells whose dim-0 coordinate `coords` selects, sorted by coordinates.
    pub fn read(&self, coords: &Coords) -> Result<RecordBatch> {
        Ok(self.read_with_stats(coords)?.0)
    }

    /// [`SparseReader::read`], with what this read alone decoded.
    pub fn read_with_stats(&self, coords: &Coords) -> Result<(RecordBatch, ReadStats)> {
        let mut stats = ReadStats {
            reads: 1,
            ..ReadStats::default()
        };
        let batch = self.read_inner(coords, &mut stats)?;
        self.count(&stats);
        Ok((batch, stats))
    }

    /// Decodes `tiles` of `frag` for every column read (`None`: the fragment predates the
    /// column), with the stored bytes fetched.
    fn decode(
        &self,
        frag: &Fragment,
        index: &FragmentIndex,
        tiles: &[usize],
    ) -> Result<(Vec<Option<FieldCells>>, u64)> {
        let storage = self.array.storage.as_ref();
        let mut bytes = 0;
        let mut out = Vec::with_capacity(self.specs.len());
        for k in 0..self.specs.len() {
            match index.columns.get(k).and_then(Option::as_ref) {
                Some(ft) => {
                    out.push(Some(read_field_tiles(storage, frag, ft, tiles)?));
                    bytes += tiles.iter().map(|&t| ft.stored_bytes(t)).sum::<u64>();
                }
                None => out.push(None),
            }
        }
        Ok((out, bytes))
    }

    /// Decodes the planned tiles of every column and decides which rows to keep, in
    /// which order.
    fn gather(&self, coords: &Coords, stats: &mut ReadStats) -> Result<Gathered> {
        let plan = plan(&self.frags, coords);
        let storage = self.array.storage.as_ref();
        let loc = self.array.location();
        let mut cols: Vec<Column> = self.specs.iter().map(|_| Column::default()).collect();
        let mut priority: Vec<(u64, u32)> = Vec::new();
        let mut rows = 0usize;
        // Tiles the previous read kept because they reach past its upper bound (the
        // next band starts inside them): reused instead of decoded again. Only without
        // the newest-wins merge, which would need their timestamps too.
        let upper = coords.bounds().map(|b| b.1).filter(|_| !self.merge);
        let mut cached = match upper {
            Some(_) => std::mem::take(&mut *self.cache.lock().unwrap_or_else(|e| e.into_inner())),
            None => TileCache::new(),
        };
        let mut next_cache = TileCache::new();
        for (fi, tiles) in &plan.tiles {
            let (Some(frag), Some(index)) = (
                self.array.fragments.get(*fi),
                self.frags.iter().find(|f| f.fragment == *fi),
            ) else {
                return Err(corrupt(&loc, format!("no fragment {fi}")));
            };
            let frag_loc = storage.location(&frag.dir);
            let n: usize = tiles
                .iter()
                .map(|&t| frag.tile_cells(t as u64) as usize)
                .sum();
            let cells_of = |ts: &[usize]| -> usize {
                ts.iter().map(|&t| frag.tile_cells(t as u64) as usize).sum()
            };
            // Tiles in ascending order: those reused from the previous read, then one
            // decode of the rest, whose last tiles — those reaching past the upper bound —
            // are split off and kept for the next read.
            let reused = tiles
                .iter()
                .take_while(|&&t| cached.contains_key(&(*fi, t)))
                .count();
            let kept_from = match upper {
                Some(hi) => {
                    tiles.len()
                        - tiles[reused..]
                            .iter()
                            .rev()
                            .take_while(|&&t| index.leaves.get(t).is_some_and(|l| l.1 > hi))
                            .count()
                }
                None => tiles.len(),
            };
            let mut segments: Vec<(usize, Vec<Option<FieldCells>>)> = Vec::new();
            for &t in &tiles[..reused] {
                if let Some(cells) = cached.remove(&(*fi, t)) {
                    segments.push((cells_of(&[t]), cells));
                }
            }
            let mut bytes = 0u64;
            let fresh = &tiles[reused..];
            if !fresh.is_empty() {
                // One decode (one request per file), then the kept tiles split off the end.
                let (mut cells, b) = self.decode(frag, index, fresh)?;
                bytes += b;
                let mut body_cells = cells_of(fresh);
                let mut kept = Vec::new();
                for &t in tiles[kept_from..].iter().rev() {
                    let m = cells_of(&[t]);
                    let total = body_cells;
                    body_cells = body_cells.saturating_sub(m);
                    let tile: Vec<Option<FieldCells>> = cells
                        .iter_mut()
                        .map(|c| c.as_mut().map(|c| c.split_off(body_cells, total)))
                        .collect();
                    next_cache.insert((*fi, t), tile.clone());
                    kept.push((m, tile));
                }
                if body_cells > 0 {
                    segments.push((body_cells, cells));
                }
                segments.extend(kept.into_iter().rev());
            }
            // Dimensions come first and are always stored: decoding them proves the cell
            // count before fill columns are allocated from it.
            for (m, columns) in segments {
                for (k, (spec, cells)) in self.specs.iter().zip(columns).enumerate() {
                    match cells {
                        Some(cells) => cols[k].push_cells(spec, cells, m, &frag_loc)?,
                        None => cols[k].push_fill(spec, m, &frag_loc)?,
                    }
                }
            }
            if self.merge {
                let timestamps = match &index.timestamps {
                    Some(ft) => Some(read_field_tiles(storage, frag, ft, tiles)?.data),
                    None => None,
                };
                push_priority(&mut priority, frag, *fi, timestamps, n, &frag_loc)?;
            }
            rows += n;
            stats.tiles += (tiles.len() - reused) as u64;
            stats.reused_tiles += reused as u64;
            stats.cells += n as u64;
            stats.bytes += bytes;
        }
        if upper.is_some() {
            *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = next_cache;
        }

        // Which rows to keep (selected, newest), in coordinate order.
        let n_dims = self.array.schema().dimensions.len();
        let d0 = i64s(&cols[0].data);
        if d0.len() != rows {
            return Err(corrupt(
                &loc,
                format!("{} coordinates for {rows} cells", d0.len()),
            ));
        }
        let mut keep: Vec<bool> = d0.iter().map(|&v| coords.contains(v)).collect();
        if self.merge {
            let parts: Vec<KeyPart<'_>> = (0..n_dims)
                .map(|k| cols[k].key_part(&self.specs[k]))
                .collect();
            let newest = newest_wins(&parts, &priority);
            for (k, n) in keep.iter_mut().zip(newest) {
                *k &= n;
            }
        }
        let others: Vec<Vec<i64>> = (1..n_dims)
            .filter(|&k| self.specs[k].datatype == Datatype::Int64 && !self.specs[k].var)
            .map(|k| i64s(&cols[k].data))
            .collect();
        let mut order: Vec<usize> = (0..rows).filter(|&r| keep[r]).collect();
        order.sort_by(|&a, &b| {
            d0[a].cmp(&d0[b]).then_with(|| {
                others
                    .iter()
                    .map(|c| c[a].cmp(&c[b]))
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
        });
        Ok(Gathered {
            cols,
            rows,
            d0,
            keep,
            order,
        })
    }

    /// The coordinate-sorted kept cells of a two-dimensional array with its value
    /// attribute read third (what [`crate::XReader`] asks for), as plain vectors: no
    /// Arrow arrays in between. Values are converted to f32.
    pub(crate) fn read_coo(&self, coords: &Coords) -> Result<(Coo, ReadStats)> {
        let mut stats = ReadStats {
            reads: 1,
            ..ReadStats::default()
        };
        let loc = self.array.location();
        let g = self.gather(coords, &mut stats)?;
        self.count(&stats);
        let (Some(d1_spec), Some(value_spec), Some(d1_col), Some(value_col)) = (
            self.specs.get(1),
            self.specs.get(2),
            g.cols.get(1),
            g.cols.get(2),
        ) else {
            return Err(corrupt(&loc, "a COO read needs two dimensions and a value"));
        };
        if d1_spec.datatype != Datatype::Int64 || d1_spec.var || value_spec.var {
            return Err(unsupported(
                &loc,
                "COO reads need an int64 second dimension and fixed-size values",
            ));
        }
        if value_col.validity.iter().any(|v| !v) {
            return Err(corrupt(&loc, format!("{} holds nulls", value_spec.name)));
        }
        let d1 = i64s(&d1_col.data);
        let values =
            values_f32(value_spec.datatype, &value_col.data, &g.order).ok_or_else(|| {
                unsupported(
                    &loc,
                    format!(
                        "{} values of type {} as f32",
                        value_spec.name,
                        value_spec.datatype.name()
                    ),
                )
            })?;
        let coo = Coo {
            dim0: g.order.iter().map(|&r| g.d0[r]).collect(),
            dim1: g.order.iter().map(|&r| d1[r]).collect(),
            values,
        };
        if coo.values.len() != coo.dim0.len() || d1.len() != g.rows {
            return Err(corrupt(&loc, "columns of different lengths"));
        }
        Ok((coo, stats))
    }

    fn count(&self, stats: &ReadStats) {
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        self.counters
            .tiles
            .fetch_add(stats.tiles, Ordering::Relaxed);
        self.counters
            .reused_tiles
            .fetch_add(stats.reused_tiles, Ordering::Relaxed);
        self.counters
            .cells
            .fetch_add(stats.cells, Ordering::Relaxed);
        self.counters
            .bytes
            .fetch_add(stats.bytes, Ordering::Relaxed);
    }

    fn read_inner(&self, coords: &Coords, stats: &mut ReadStats) -> Result<RecordBatch> {
        let Gathered {
            cols,
            rows,
            keep,
            order,
            ..
        } = self.gather(coords, stats)?;
        let loc = self.array.location();
        let arrow_err = |source| SomaError::Arrow {
            path: loc.clone(),
            source,
        };
        let mut fields = Vec::with_capacity(self.output.len());
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.output.len());
        let mut cols: Vec<Option<Column>> = cols.into_iter().map(Some).collect();
        for &k in &self.output {
            let spec = &self.specs[k];
            let col = cols
                .get_mut(k)
                .and_then(Option::take)
                .ok_or_else(|| corrupt(&loc, format!("column {} read twice", spec.name)))?;
            let array = to_arrow::column_to_arrow(&self.array, spec, col)?;
            fields.push(ArrowField::new(
                &spec.name,
                array.data_type().clone(),
                spec.nullable,
            ));
            arrays.push(array);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        let batch =
            RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)
                .map_err(arrow_err)?;
        if rows == 0 {
            return Ok(batch);
        }
        if order.len() == rows && order.iter().enumerate().all(|(i, &r)| i == r) {
            return Ok(batch);
        }
        if order.windows(2).all(|w| w[0] < w[1]) {
            // Already in order: a filter is cheaper than a gather.
            return filter_record_batch(&batch, &BooleanArray::from(keep)).map_err(arrow_err);
        }
        if let Ok(idx) = order
            .iter()
            .map(|&r| u32::try_from(r))
            .collect::<std::result::Result<Vec<u32>, _>>()
        {
            take_record_batch(&batch, &UInt32Array::from(idx)).map_err(arrow_err)
        } else {
            let idx: Vec<u64> = order.iter().map(|&r| r as u64).collect();
            take_record_batch(&batch, &UInt64Array::from(idx)).map_err(arrow_err)
        }
    }
}
