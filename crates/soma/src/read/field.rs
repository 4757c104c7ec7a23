//! One field of one fragment, decoded tile by tile: fixed-size values, variable-size
//! values with their offsets (stored, or rebuilt by dictionary/RLE string filters), and
//! validity. [`FieldTiles`] says where each data tile lies in the field's files, so a
//! read can fetch and decode any subset of tiles (a range read, one band of X); the tiles
//! of a subset are decoded in parallel and joined in the order asked for.

use std::ops::Range;

use rayon::prelude::*;

use crate::cursor::{capacity_hint, le_u64s};
use crate::datatype::Datatype;
use crate::error::{Result, corrupt};
use crate::filter::FilterPipeline;
use crate::fragment::{Field, Fragment};
use crate::schema::VAR_NUM;
use crate::storage::{Storage, join};
use crate::tile::{DecodedTile, decode_tile};

/// One field's cells from one fragment.
#[derive(Debug, Default, Clone)]
pub(crate) struct FieldCells {
    /// Fixed-size values, or the variable-size bytes.
    pub(crate) data: Vec<u8>,
    /// For variable-size fields: start offset of each cell in `data`.
    pub(crate) offsets: Option<Vec<u64>>,
    /// For nullable attributes: one byte per cell, non-zero when valid.
    pub(crate) validity: Option<Vec<u8>>,
}

impl FieldCells {
    /// Splits off the cells from `at` on, of the `n` cells held (the cells of the last
    /// tiles of a decode, kept for the next read).
    pub(crate) fn split_off(&mut self, at: usize, n: usize) -> FieldCells {
        let at = at.min(n);
        let byte = match &self.offsets {
            Some(o) => o.get(at).map_or(self.data.len(), |&b| b as usize),
            None if n == 0 => 0,
            None => self.data.len() / n * at,
        }
        .min(self.data.len());
        let data = self.data.split_off(byte);
        let offsets = self.offsets.as_mut().map(|o| {
            let at = at.min(o.len());
            o.split_off(at)
                .into_iter()
                .map(|x| x.saturating_sub(byte as u64))
                .collect()
        });
        let validity = self.validity.as_mut().map(|v| {
            let at = at.min(v.len());
            v.split_off(at)
        });
        FieldCells {
            data,
            offsets,
            validity,
        }
    }
}

/// Where the data tiles of one field of one fragment lie: byte ranges in the fixed-size
/// (or offsets) file, the variable-size file and the validity file, and the unfiltered
/// size of each variable-size tile. Loaded once per fragment and field from the fragment
/// metadata, then used for any number of tile subsets.
#[derive(Debug, Clone)]
pub(crate) struct FieldTiles {
    field: Field,
    datatype: Datatype,
    cell_val_num: u32,
    nullable: bool,
    /// Whether the pipeline rebuilds the offsets (dictionary/RLE strings): no offsets tile.
    rebuilds: bool,
    fixed: Vec<Range<u64>>,
    var: Vec<Range<u64>>,
    var_sizes: Vec<u64>,
    validity: Vec<Range<u64>>,
}

/// The tile byte ranges of a data file, from the tile offsets and the file size.
fn tile_ranges(offsets: &[u64], file_size: u64, tiles: u64, path: &str) -> Result<Vec<Range<u64>>> {
    if offsets.len() as u64 != tiles {
        return Err(corrupt(
            path,
            format!("{} tile offsets for {tiles} tiles", offsets.len()),
        ));
    }
    let mut out = Vec::with_capacity(offsets.len());
    for (i, &start) in offsets.iter().enumerate() {
        let end = offsets.get(i + 1).copied().unwrap_or(file_size);
        if start > end || end > file_size {
            return Err(corrupt(
                path,
                format!("tile {i} spans bytes {start}..{end} of a {file_size}-byte file"),
            ));
        }
        out.push(start..end);
    }
    Ok(out)
}

/// The file stem (`<fragment>/a0`) of a field.
fn stem(frag: &Fragment, field: Field) -> String {
    join(&frag.dir, &field.file_stem())
}

impl FieldTiles {
    /// Reads where the tiles of `field` lie (the offset lists of the fragment metadata).
    pub(crate) fn load(storage: &dyn Storage, frag: &Fragment, field: Field) -> Result<Self> {
        let schema = &frag.schema;
        let no_field = || {
            corrupt(
                &storage.location(&frag.dir),
                format!("schema {} has no field {field:?}", schema.name),
            )
        };
        let (datatype, cell_val_num, pipeline, nullable) = match field {
            Field::Attribute(i) => {
                let a = schema.attributes.get(i).ok_or_else(no_field)?;
                (a.datatype, a.cell_val_num, &a.filters, a.nullable)
            }
            Field::Dimension(i) => {
                let d = schema.dimensions.get(i).ok_or_else(no_field)?;
                (d.datatype, d.cell_val_num, &d.filters, false)
            }
            Field::Timestamps => (Datatype::UInt64, 1, &schema.coords_filters, false),
        };
        let stem = stem(frag, field);
        let tiles = frag.footer.sparse_tile_num;
        let (fixed_size, var_size, validity_size) = frag.file_sizes(storage, field)?;
        let var = cell_val_num == VAR_NUM;
        let rebuilds = var && pipeline.rebuilds_offsets(datatype);
        let fixed = if rebuilds {
            Vec::new()
        } else {
            tile_ranges(
                &frag.tile_offsets(storage, field)?,
                fixed_size,
                tiles,
                &storage.location(&format!("{stem}.tdb")),
            )?
        };
        let (var_ranges, var_sizes) = if var {
            let ranges = tile_ranges(
                &frag.tile_var_offsets(storage, field)?,
                var_size,
                tiles,
                &storage.location(&format!("{stem}_var.tdb")),
            )?;
            (ranges, frag.tile_var_sizes(storage, field)?)
        } else {
            (Vec::new(), Vec::new())
        };
        let validity = if nullable {
            tile_ranges(
                &frag.tile_validity_offsets(storage, field)?,
                validity_size,
                tiles,
                &storage.location(&format!("{stem}_validity.tdb")),
            )?
        } else {
            Vec::new()
        };
        Ok(FieldTiles {
            field,
            datatype,
            cell_val_num,
            nullable,
            rebuilds,
            fixed,
            var: var_ranges,
            var_sizes,
            validity,
        })
    }

    /// Stored bytes of data tile `t` over the field's files (what fetching it costs).
    pub(crate) fn stored_bytes(&self, t: usize) -> u64 {
        [&self.fixed, &self.var, &self.validity]
            .iter()
            .filter_map(|r| r.get(t))
            .map(|r| r.end - r.start)
            .sum()
    }

    fn pipeline<'a>(&self, frag: &'a Fragment) -> Option<&'a FilterPipeline> {
        let s = &frag.schema;
        match self.field {
            Field::Attribute(i) => s.attributes.get(i).map(|a| &a.filters),
            Field::Dimension(i) => s.dimensions.get(i).map(|d| &d.filters),
            Field::Timestamps => Some(&s.coords_filters),
        }
    }
}

/// Fetches tiles `tiles` of one file (`ranges` indexed by tile) through one
/// `read_ranges` call, so a backend can coalesce neighbouring tiles.
fn fetch(
    storage: &dyn Storage,
    path: &str,
    ranges: &[Range<u64>],
    tiles: &[usize],
) -> Result<Vec<Vec<u8>>> {
    let wanted = tiles
        .iter()
        .map(|&t| {
            ranges.get(t).cloned().ok_or_else(|| {
                corrupt(
                    &storage.location(path),
                    format!("no data tile {t} ({} tiles)", ranges.len()),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    storage.read_ranges(path, &wanted)
}

/// Decodes `tiles` in parallel (rayon), returning them in the order given.
fn decode_all(
    bytes: &[Vec<u8>],
    pipeline: &FilterPipeline,
    datatype: Datatype,
    var_strings: bool,
    loc: &str,
) -> Result<Vec<DecodedTile>> {
    if bytes.len() < 2 {
        return bytes
            .iter()
            .map(|b| decode_tile(b, pipeline, datatype, var_strings, loc))
            .collect();
    }
    bytes
        .par_iter()
        .map(|b| decode_tile(b, pipeline, datatype, var_strings, loc))
        .collect()
}

/// Decodes every tile of `field` in `frag`.
pub(crate) fn read_field(
    storage: &dyn Storage,
    frag: &Fragment,
    field: Field,
) -> Result<FieldCells> {
    let tiles = FieldTiles::load(storage, frag, field)?;
    let all: Vec<usize> = (0..frag.footer.sparse_tile_num as usize).collect();
    read_field_tiles(storage, frag, &tiles, &all)
}

/// Decodes data tiles `tiles` (indices into the fragment's tiles, in the order the cells
/// should come) of the field `ft` describes, and joins their cells.
pub(crate) fn read_field_tiles(
    storage: &dyn Storage,
    frag: &Fragment,
    ft: &FieldTiles,
    tiles: &[usize],
) -> Result<FieldCells> {
    let schema = &frag.schema;
    let pipeline = ft.pipeline(frag).ok_or_else(|| {
        corrupt(
            &storage.location(&frag.dir),
            format!("schema {} has no field {:?}", schema.name, ft.field),
        )
    })?;
    let datatype = ft.datatype;
    let stem = stem(frag, ft.field);
    let fixed_path = format!("{stem}.tdb");
    let fixed_loc = storage.location(&fixed_path);
    let cells_of = |t: usize| frag.tile_cells(t as u64) as usize;
    let mut out = FieldCells::default();
    if ft.cell_val_num == VAR_NUM {
        let var_path = format!("{stem}_var.tdb");
        let var_loc = storage.location(&var_path);
        let var_tiles = fetch(storage, &var_path, &ft.var, tiles)?;
        let decoded = decode_all(&var_tiles, pipeline, datatype, ft.rebuilds, &var_loc)?;
        drop(var_tiles);
        let offset_tiles = if ft.rebuilds {
            Vec::new()
        } else {
            let raw = fetch(storage, &fixed_path, &ft.fixed, tiles)?;
            decode_all(
                &raw,
                &schema.offsets_filters,
                Datatype::UInt64,
                false,
                &fixed_loc,
            )?
        };
        let total: usize = tiles.iter().map(|&t| cells_of(t)).sum();
        let mut offsets = Vec::with_capacity(capacity_hint(total));
        for (k, (&t, tile)) in tiles.iter().zip(decoded).enumerate() {
            let cells = cells_of(t);
            let expected = ft.var_sizes.get(t).copied();
            if expected != Some(tile.data.len() as u64) {
                return Err(corrupt(
                    &var_loc,
                    format!(
                        "tile {t}: {} bytes decoded, {expected:?} expected",
                        tile.data.len()
                    ),
                ));
            }
            let tile_offsets = if ft.rebuilds {
                tile.offsets.ok_or_else(|| {
                    corrupt(&var_loc, format!("tile {t}: the pipeline gave no offsets"))
                })?
            } else {
                let raw = offset_tiles
                    .get(k)
                    .ok_or_else(|| corrupt(&fixed_loc, format!("tile {t}: no offsets tile")))?;
                if raw.data.len() % 8 != 0 {
                    return Err(corrupt(
                        &fixed_loc,
                        format!("tile {t}: offsets are {} bytes", raw.data.len()),
                    ));
                }
                le_u64s(&raw.data)
            };
            if tile_offsets.len() != cells {
                return Err(corrupt(
                    &fixed_loc,
                    format!("tile {t}: {} offsets for {cells} cells", tile_offsets.len()),
                ));
            }
            let len = tile.data.len() as u64;
            if tile_offsets.windows(2).any(|w| w[0] > w[1])
                || tile_offsets.last().is_some_and(|&o| o > len)
            {
                return Err(corrupt(
                    &fixed_loc,
                    format!("tile {t}: offsets are not increasing within {len} bytes"),
                ));
            }
            let base = out.data.len() as u64;
            offsets.extend(tile_offsets.into_iter().map(|o| o + base));
            out.data.extend_from_slice(&tile.data);
        }
        out.offsets = Some(offsets);
    } else {
        let cell_size = datatype
            .size()
            .checked_mul(ft.cell_val_num as usize)
            .ok_or_else(|| {
                corrupt(
                    &fixed_loc,
                    format!("cell value count {} is too large", ft.cell_val_num),
                )
            })?;
        let raw = fetch(storage, &fixed_path, &ft.fixed, tiles)?;
        let decoded = decode_all(&raw, pipeline, datatype, false, &fixed_loc)?;
        drop(raw);
        let total: usize = decoded.iter().map(|d| d.data.len()).sum();
        out.data.reserve(total);
        for (&t, tile) in tiles.iter().zip(decoded) {
            let cells = cells_of(t);
            if Some(tile.data.len()) != cells.checked_mul(cell_size) {
                return Err(corrupt(
                    &fixed_loc,
                    format!(
                        "tile {t}: {} bytes decoded for {cells} cells of {cell_size} bytes",
                        tile.data.len()
                    ),
                ));
            }
            if out.data.is_empty() {
                out.data = tile.data;
            } else {
                out.data.extend_from_slice(&tile.data);
            }
        }
    }
    if ft.nullable {
        let path = format!("{stem}_validity.tdb");
        let loc = storage.location(&path);
        let raw = fetch(storage, &path, &ft.validity, tiles)?;
        let decoded = decode_all(&raw, &schema.validity_filters, Datatype::UInt8, false, &loc)?;
        let mut validity = Vec::new();
        for (&t, tile) in tiles.iter().zip(decoded) {
            let cells = cells_of(t);
            if tile.data.len() != cells {
                return Err(corrupt(
                    &loc,
                    format!(
                        "tile {t}: {} validity bytes for {cells} cells",
                        tile.data.len()
                    ),
                ));
            }
            validity.extend_from_slice(&tile.data);
        }
        out.validity = Some(validity);
    }
    Ok(out)
}
