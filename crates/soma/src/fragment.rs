//! Fragment metadata: the footer of `__fragment_metadata.tdb` (or its copy in a
//! consolidated `__fragment_meta/*.meta`), and the generic tiles the footer points at —
//! the R-tree of tile MBRs, tile offsets, variable sizes and validity offsets.

use std::sync::Arc;

use crate::cursor::{Cursor, le_u64s};
use crate::error::{Result, corrupt};
use crate::names::TimestampedName;
use crate::schema::{ArraySchema, Range, VAR_NUM, check_version};
use crate::storage::{Storage, join};
use crate::tile::{fetch_generic_tile, read_generic_tile};

/// The footer of a fragment's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct FragmentFooter {
    /// Format version.
    pub version: u32,
    /// The schema file the fragment was written with.
    pub schema_name: String,
    /// Whether the fragment is dense.
    pub dense: bool,
    /// The non-empty domain, one range per dimension (`None`: empty fragment).
    pub non_empty_domain: Option<Vec<Range>>,
    /// Number of data tiles (sparse fragments).
    pub sparse_tile_num: u64,
    /// Cells in the last tile (the others hold `capacity`).
    pub last_tile_cell_num: u64,
    /// Whether per-cell timestamps (`t.tdb`) are stored (fragment consolidation).
    pub has_timestamps: bool,
    /// Whether delete metadata is stored.
    pub has_delete_meta: bool,
    /// Per field: size of the fixed-size (or offsets) data file.
    pub file_sizes: Vec<u64>,
    /// Per field: size of the variable-size data file.
    pub file_var_sizes: Vec<u64>,
    /// Per field: size of the validity file.
    pub file_validity_sizes: Vec<u64>,
    /// Offset of the R-tree's generic tile in the metadata file.
    pub rtree_offset: u64,
    /// Per field: offset of the tile-offsets generic tile.
    pub tile_offsets: Vec<u64>,
    /// Per field: offset of the variable tile offsets generic tile.
    pub tile_var_offsets: Vec<u64>,
    /// Per field: offset of the variable tile sizes generic tile.
    pub tile_var_sizes: Vec<u64>,
    /// Per field: offset of the validity tile offsets generic tile.
    pub tile_validity_offsets: Vec<u64>,
    /// Per field: offsets of the tile minimum, maximum, sum and null-count generic tiles.
    pub tile_stats: [Vec<u64>; 4],
    /// Offset of the fragment-wide min/max/sum/null-count tile.
    pub fragment_stats_offset: u64,
    /// Offset of the processed-conditions tile.
    pub processed_conditions_offset: u64,
}

/// The number of fields in footer lists: attributes, a legacy `__coords` slot,
/// dimensions, the timestamps, and two delete fields.
pub(crate) fn field_count(schema: &ArraySchema, has_timestamps: bool, has_delete: bool) -> usize {
    schema.attributes.len()
        + 1
        + schema.dimensions.len()
        + usize::from(has_timestamps)
        + 2 * usize::from(has_delete)
}

/// A field of a fragment, as footer lists index it and data files name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Attribute number `i` of the fragment's schema (`a<i>.tdb`).
    Attribute(usize),
    /// Dimension number `i` (`d<i>.tdb`).
    Dimension(usize),
    /// Per-cell timestamps (`t.tdb`).
    Timestamps,
}

impl Field {
    /// The index in the footer's per-field lists.
    pub fn index(self, schema: &ArraySchema) -> usize {
        match self {
            Field::Attribute(i) => i,
            Field::Dimension(i) => schema.attributes.len() + 1 + i,
            Field::Timestamps => schema.attributes.len() + 1 + schema.dimensions.len(),
        }
    }

    /// The data file's base name (`a0`, `d1`, `t`).
    pub fn file_stem(self) -> String {
        match self {
            Field::Attribute(i) => format!("a{i}"),
            Field::Dimension(i) => format!("d{i}"),
            Field::Timestamps => "t".into(),
        }
    }
}

impl FragmentFooter {
    /// Reads the footer's first fields (version, schema name) to find its schema; fails
    /// on a format version this reader does not decode.
    pub(crate) fn peek_schema_name(bytes: &[u8], offset: usize, path: &str) -> Result<String> {
        let mut c = Cursor::at(bytes, offset, path)?;
        let version = c.u32()?;
        let name = c.string_u64()?;
        check_version(version, "fragment", path)?;
        Ok(name)
    }

    /// Decodes a footer at `offset` of `bytes`, with the fragment's schema. Returns it
    /// and where it ends.
    pub(crate) fn parse(
        bytes: &[u8],
        offset: usize,
        schema: &ArraySchema,
        path: &str,
    ) -> Result<(Self, usize)> {
        let mut c = Cursor::at(bytes, offset, path)?;
        let version = c.u32()?;
        check_version(version, "fragment", path)?;
        let schema_name = c.string_u64()?;
        let dense = c.u8()? != 0;
        let null_domain = c.u8()? != 0;
        let non_empty_domain = if null_domain {
            None
        } else {
            Some(
                schema
                    .dimensions
                    .iter()
                    .map(|d| Range::parse(&mut c, d))
                    .collect::<Result<Vec<_>>>()?,
            )
        };
        let sparse_tile_num = c.u64()?;
        let last_tile_cell_num = c.u64()?;
        let has_timestamps = c.u8()? != 0;
        let has_delete_meta = c.u8()? != 0;
        let n = field_count(schema, has_timestamps, has_delete_meta);
        let list = |c: &mut Cursor<'_>| -> Result<Vec<u64>> { Ok(le_u64s(c.take(8 * n)?)) };
        let file_sizes = list(&mut c)?;
        let file_var_sizes = list(&mut c)?;
        let file_validity_sizes = list(&mut c)?;
        let rtree_offset = c.u64()?;
        let tile_offsets = list(&mut c)?;
        let tile_var_offsets = list(&mut c)?;
        let tile_var_sizes = list(&mut c)?;
        let tile_validity_offsets = list(&mut c)?;
        let tile_stats = [list(&mut c)?, list(&mut c)?, list(&mut c)?, list(&mut c)?];
        let fragment_stats_offset = c.u64()?;
        let processed_conditions_offset = c.u64()?;
        if version >= 23 {
            // Optional sections (id u64, size u32, bytes), designed to be skipped.
            let sections = c.count_u32(12)?;
            for _ in 0..sections {
                let _id = c.u64()?;
                let size = c.u32()? as usize;
                c.take(size)?;
            }
        }
        let footer = FragmentFooter {
            version,
            schema_name,
            dense,
            non_empty_domain,
            sparse_tile_num,
            last_tile_cell_num,
            has_timestamps,
            has_delete_meta,
            file_sizes,
            file_var_sizes,
            file_validity_sizes,
            rtree_offset,
            tile_offsets,
            tile_var_offsets,
            tile_var_sizes,
            tile_validity_offsets,
            tile_stats,
            fragment_stats_offset,
            processed_conditions_offset,
        };
        Ok((footer, c.pos()))
    }
}

/// The R-tree of a fragment: minimum bounding rectangles, root level first; the leaf
/// level has one MBR per data tile.
#[derive(Debug, Clone, PartialEq)]
pub struct RTree {
    /// Children per node.
    pub fanout: u32,
    /// Levels, root first; each MBR is one range per dimension.
    pub levels: Vec<Vec<Vec<Range>>>,
}

impl RTree {
    /// The leaf MBRs, one per data tile.
    pub fn leaves(&self) -> &[Vec<Range>] {
        self.levels.last().map(Vec::as_slice).unwrap_or(&[])
    }
}

/// A committed fragment of an array, with its footer and the schema it was written with.
#[derive(Debug, Clone)]
pub struct Fragment {
    /// The fragment's directory name.
    pub name: String,
    /// Its timestamps.
    pub timestamps: TimestampedName,
    /// Its directory, relative to the storage root.
    pub dir: String,
    /// Its footer.
    pub footer: FragmentFooter,
    /// The schema it was written with.
    pub schema: Arc<ArraySchema>,
    /// Whether the footer came from consolidated fragment metadata (`__fragment_meta/`)
    /// rather than the fragment's own metadata file.
    pub footer_from_consolidated: bool,
}

impl Fragment {
    /// The fragment-metadata file.
    pub fn metadata_path(&self) -> String {
        join(&self.dir, "__fragment_metadata.tdb")
    }

    /// Number of cells in data tile `tile`.
    pub fn tile_cells(&self, tile: u64) -> u64 {
        if tile.saturating_add(1) == self.footer.sparse_tile_num {
            self.footer.last_tile_cell_num
        } else {
            self.schema.capacity
        }
    }

    /// Total number of cells (saturating: a corrupt footer fails later, when tiles do
    /// not hold these cells).
    pub fn cell_count(&self) -> u64 {
        match self.footer.sparse_tile_num {
            0 => 0,
            n => (n - 1)
                .saturating_mul(self.schema.capacity)
                .saturating_add(self.footer.last_tile_cell_num),
        }
    }

    /// The u64 values of the footer tile that `list`'s entry for `field` points at
    /// (`what` names the tile in errors).
    fn u64_tile(
        &self,
        storage: &dyn Storage,
        list: &[u64],
        field: Field,
        what: &str,
    ) -> Result<Vec<u64>> {
        let offset = self.list_entry(list, field, storage)?;
        let path = self.metadata_path();
        let bytes = fetch_generic_tile(storage, &path, offset)?;
        let loc = storage.location(&path);
        let mut c = Cursor::new(&bytes, &loc);
        let values = c
            .u64_list()
            .map_err(|e| corrupt(&loc, format!("{what}: {e}")))?;
        Ok(values)
    }

    fn list_entry(&self, list: &[u64], field: Field, storage: &dyn Storage) -> Result<u64> {
        list.get(field.index(&self.schema)).copied().ok_or_else(|| {
            corrupt(
                &storage.location(&self.metadata_path()),
                format!("footer has no entry for field {field:?}"),
            )
        })
    }

    /// Byte offsets of each data tile of `field` in its fixed-size (or offsets) file.
    pub fn tile_offsets(&self, storage: &dyn Storage, field: Field) -> Result<Vec<u64>> {
        self.u64_tile(storage, &self.footer.tile_offsets, field, "tile offsets")
    }

    /// Byte offsets of each data tile of `field` in its variable-size file.
    pub fn tile_var_offsets(&self, storage: &dyn Storage, field: Field) -> Result<Vec<u64>> {
        self.u64_tile(
            storage,
            &self.footer.tile_var_offsets,
            field,
            "variable tile offsets",
        )
    }

    /// Unfiltered size of each variable-size data tile of `field`.
    pub fn tile_var_sizes(&self, storage: &dyn Storage, field: Field) -> Result<Vec<u64>> {
        self.u64_tile(
            storage,
            &self.footer.tile_var_sizes,
            field,
            "variable tile sizes",
        )
    }

    /// Byte offsets of each validity tile of `field`.
    pub fn tile_validity_offsets(&self, storage: &dyn Storage, field: Field) -> Result<Vec<u64>> {
        self.u64_tile(
            storage,
            &self.footer.tile_validity_offsets,
            field,
            "validity tile offsets",
        )
    }

    /// Sizes of the data files of `field`: (fixed or offsets, variable, validity).
    pub fn file_sizes(&self, storage: &dyn Storage, field: Field) -> Result<(u64, u64, u64)> {
        Ok((
            self.list_entry(&self.footer.file_sizes, field, storage)?,
            self.list_entry(&self.footer.file_var_sizes, field, storage)?,
            self.list_entry(&self.footer.file_validity_sizes, field, storage)?,
        ))
    }

    /// The R-tree: fanout u32, level count u32, then per level (root first) an MBR count
    /// u64 and the MBRs.
    pub fn rtree(&self, storage: &dyn Storage) -> Result<RTree> {
        let path = self.metadata_path();
        let bytes = fetch_generic_tile(storage, &path, self.footer.rtree_offset)?;
        let loc = storage.location(&path);
        let mut c = Cursor::new(&bytes, &loc);
        let fanout = c.u32()?;
        let n_levels = c.count_u32(8)?;
        let mut levels = Vec::with_capacity(n_levels);
        for _ in 0..n_levels {
            let n = c.count_u64(1)?;
            let mut level = Vec::with_capacity(n);
            for _ in 0..n {
                level.push(
                    self.schema
                        .dimensions
                        .iter()
                        .map(|d| Range::parse(&mut c, d))
                        .collect::<Result<Vec<_>>>()?,
                );
            }
            levels.push(level);
        }
        Ok(RTree { fanout, levels })
    }

    /// Whether `field` stores variable-size values.
    pub fn is_var(&self, field: Field) -> bool {
        match field {
            Field::Attribute(i) => self
                .schema
                .attributes
                .get(i)
                .is_some_and(|a| a.cell_val_num == VAR_NUM),
            Field::Dimension(i) => self
                .schema
                .dimensions
                .get(i)
                .is_some_and(|d| d.cell_val_num == VAR_NUM),
            Field::Timestamps => false,
        }
    }
}

/// Reads a fragment's own footer from the end of its metadata file: the last 8 bytes
/// are the footer's length.
pub(crate) fn read_own_footer(
    storage: &dyn Storage,
    meta_path: &str,
    schema_for: &mut dyn FnMut(&str) -> Result<Arc<ArraySchema>>,
) -> Result<(FragmentFooter, Arc<ArraySchema>)> {
    let loc = storage.location(meta_path);
    let size = storage.size(meta_path)?;
    if size < 8 {
        return Err(corrupt(
            &loc,
            format!("truncated: {size} bytes cannot hold a footer"),
        ));
    }
    let tail = storage.read_range(meta_path, size - 8..size)?;
    let len = Cursor::new(&tail, &loc).u64()?;
    if len > size - 8 {
        return Err(corrupt(
            &loc,
            format!("footer length {len} exceeds the file ({size} bytes)"),
        ));
    }
    let start = size - 8 - len;
    let bytes = storage.read_range(meta_path, start..size - 8)?;
    let schema_name = FragmentFooter::peek_schema_name(&bytes, 0, &loc)?;
    let schema = schema_for(&schema_name)?;
    let (footer, end) = FragmentFooter::parse(&bytes, 0, &schema, &loc)?;
    if end != bytes.len() {
        return Err(corrupt(
            &loc,
            format!("footer is {} bytes, {} expected", end, bytes.len()),
        ));
    }
    Ok((footer, schema))
}

/// Reads a consolidated fragment-metadata file: one generic tile holding a u32 fragment
/// count, then per fragment its name (u64 length + bytes) and the offset of its footer
/// copy in the tile. Returns (fragment directory name, footer, schema).
pub(crate) fn read_consolidated(
    storage: &dyn Storage,
    path: &str,
    schema_for: &mut dyn FnMut(&str) -> Result<Arc<ArraySchema>>,
) -> Result<Vec<(String, FragmentFooter, Arc<ArraySchema>)>> {
    let loc = storage.location(path);
    let file = storage.read(path)?;
    let (bytes, _) = read_generic_tile(&file, 0, &loc)?;
    let mut c = Cursor::new(&bytes, &loc);
    let n = c.count_u32(16)?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let name = c.string_u64()?;
        let offset = c.u64()?;
        entries.push((name, offset));
    }
    let mut out = Vec::with_capacity(n);
    for (name, offset) in entries {
        let offset = usize::try_from(offset)
            .map_err(|_| corrupt(&loc, format!("footer offset {offset} is too large")))?;
        let schema_name = FragmentFooter::peek_schema_name(&bytes, offset, &loc)?;
        let schema = schema_for(&schema_name)?;
        let (footer, _) = FragmentFooter::parse(&bytes, offset, &schema, &loc)?;
        let base = name.rsplit('/').next().unwrap_or(&name).to_string();
        out.push((base, footer, schema));
    }
    Ok(out)
}
