//! The array schema (one generic tile per evolution step under `__schema/`): array
//! type, dimensions, attributes, filter pipelines, enumeration names and the current
//! domain, where SOMA keeps an array's shape.

use crate::cursor::Cursor;
use crate::datatype::Datatype;
use crate::error::{Result, SomaError, corrupt, unsupported};
use crate::filter::FilterPipeline;

/// Format versions this reader decodes.
pub const SUPPORTED_VERSIONS: &str = "22 and 23";

/// Whether format version `v` is one this reader decodes.
pub(crate) fn version_supported(v: u32) -> bool {
    v == 22 || v == 23
}

/// Fails with [`SomaError::UnsupportedVersion`] unless format version `version` of the
/// `what` (array schema, fragment) at `path` is one this reader decodes.
pub(crate) fn check_version(version: u32, what: &'static str, path: &str) -> Result<()> {
    if version_supported(version) {
        Ok(())
    } else {
        Err(SomaError::UnsupportedVersion {
            path: path.into(),
            what,
            version,
            supported: SUPPORTED_VERSIONS,
        })
    }
}

/// `cell_val_num` of variable-size fields.
pub const VAR_NUM: u32 = u32::MAX;

/// Cell or tile layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Row-major.
    RowMajor,
    /// Column-major.
    ColMajor,
    /// TileDB's global order.
    GlobalOrder,
    /// No order.
    Unordered,
    /// Hilbert curve order.
    Hilbert,
}

impl Layout {
    fn from_code(code: u8, path: &str) -> Result<Self> {
        Ok(match code {
            0 => Layout::RowMajor,
            1 => Layout::ColMajor,
            2 => Layout::GlobalOrder,
            3 => Layout::Unordered,
            4 => Layout::Hilbert,
            other => return Err(corrupt(path, format!("unknown layout code {other}"))),
        })
    }
}

/// A range of a dimension: two values for fixed-size types, two byte strings for
/// variable-size (string) dimensions.
#[derive(Debug, Clone, PartialEq)]
pub enum Range {
    /// Little-endian bytes of the low and high value.
    Fixed(Vec<u8>, Vec<u8>),
    /// Low and high string.
    Var(Vec<u8>, Vec<u8>),
}

impl Range {
    /// The range as i64 bounds, for the integer dimensions SOMA uses.
    pub fn as_i64(&self) -> Option<(i64, i64)> {
        match self {
            Range::Fixed(lo, hi) if lo.len() == 8 && hi.len() == 8 => {
                let mut a = [0u8; 8];
                let mut b = [0u8; 8];
                a.copy_from_slice(lo);
                b.copy_from_slice(hi);
                Some((i64::from_le_bytes(a), i64::from_le_bytes(b)))
            }
            _ => None,
        }
    }

    /// Reads one range of dimension `dim` at the cursor.
    pub(crate) fn parse(c: &mut Cursor<'_>, dim: &Dimension) -> Result<Self> {
        if dim.cell_val_num == VAR_NUM {
            let size = c.u64()?;
            let start = c.u64()?;
            let bytes = c.take_u64_len(size)?;
            let start = usize::try_from(start)
                .ok()
                .filter(|s| *s <= bytes.len())
                .ok_or_else(|| {
                    corrupt(c.path(), format!("range start size {start} exceeds {size}"))
                })?;
            Ok(Range::Var(bytes[..start].to_vec(), bytes[start..].to_vec()))
        } else {
            let w = dim.datatype.size();
            Ok(Range::Fixed(c.take(w)?.to_vec(), c.take(w)?.to_vec()))
        }
    }
}

/// A dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct Dimension {
    /// Its name (`soma_joinid`, `soma_dim_0`, ...).
    pub name: String,
    /// Its datatype.
    pub datatype: Datatype,
    /// Values per cell ([`VAR_NUM`] for strings).
    pub cell_val_num: u32,
    /// Its filters (the schema's coordinate filters when its own list is empty).
    pub filters: FilterPipeline,
    /// Its domain, when set (string dimensions have none).
    pub domain: Option<Range>,
    /// The space-tile extent, little-endian bytes.
    pub tile_extent: Option<Vec<u8>>,
}

/// An attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// Its name.
    pub name: String,
    /// Its datatype (the code type for enumerated attributes).
    pub datatype: Datatype,
    /// Values per cell ([`VAR_NUM`] for variable size).
    pub cell_val_num: u32,
    /// Its filters.
    pub filters: FilterPipeline,
    /// The fill value's bytes (what cells written before the attribute existed hold).
    pub fill_value: Vec<u8>,
    /// Whether cells may be null (a validity file is stored).
    pub nullable: bool,
    /// Whether the fill value is valid (not null).
    pub fill_valid: bool,
    /// The enumeration its values index, when any.
    pub enumeration: Option<String>,
}

/// The current domain: SOMA's shape, one range per dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentDomain {
    /// Its version (0 as written by TileDB 2.30).
    pub version: u32,
    /// One range per dimension; empty when the domain is not set (pre-2.25 writers).
    pub ranges: Vec<Range>,
}

/// An array schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ArraySchema {
    /// The schema file's name (fragments name the schema they were written with).
    pub name: String,
    /// Format version.
    pub version: u32,
    /// Whether duplicate coordinates are allowed (Census arrays allow them).
    pub allows_duplicates: bool,
    /// Dense (false) or sparse (true).
    pub sparse: bool,
    /// Tile order.
    pub tile_order: Layout,
    /// Cell order.
    pub cell_order: Layout,
    /// Cells per data tile of sparse fragments.
    pub capacity: u64,
    /// Filters of coordinate tiles (default for dimensions).
    pub coords_filters: FilterPipeline,
    /// Filters of variable-size offsets tiles.
    pub offsets_filters: FilterPipeline,
    /// Filters of validity tiles.
    pub validity_filters: FilterPipeline,
    /// The dimensions.
    pub dimensions: Vec<Dimension>,
    /// The attributes.
    pub attributes: Vec<Attribute>,
    /// Enumeration name → file name under `__schema/__enumerations/`.
    pub enumerations: Vec<(String, String)>,
    /// The current domain.
    pub current_domain: CurrentDomain,
}

impl ArraySchema {
    /// Decodes a schema from the generic tile's bytes. `name` is the schema file's name,
    /// `path` its location for errors.
    pub fn parse(bytes: &[u8], name: &str, path: &str) -> Result<Self> {
        let mut c = Cursor::new(bytes, path);
        let version = c.u32()?;
        check_version(version, "array schema", path)?;
        let allows_duplicates = c.u8()? != 0;
        let sparse = match c.u8()? {
            0 => false,
            1 => true,
            other => return Err(corrupt(path, format!("unknown array type {other}"))),
        };
        let tile_order = Layout::from_code(c.u8()?, path)?;
        let cell_order = Layout::from_code(c.u8()?, path)?;
        let capacity = c.u64()?;
        let coords_filters = FilterPipeline::parse(&mut c)?;
        let offsets_filters = FilterPipeline::parse(&mut c)?;
        let validity_filters = FilterPipeline::parse(&mut c)?;
        let n_dims = c.count_u32(10)?;
        let mut dimensions = Vec::with_capacity(n_dims);
        for _ in 0..n_dims {
            let name = c.string_u32()?;
            let datatype = Datatype::from_code(c.u8()?, path)?;
            let cell_val_num = c.u32()?;
            let mut filters = FilterPipeline::parse(&mut c)?;
            if filters.filters.is_empty() {
                filters = coords_filters.clone();
            }
            let dom_len = c.u64()?;
            let dom = c.take_u64_len(dom_len)?;
            let domain = if dom.is_empty() {
                None
            } else {
                let (lo, hi) = dom.split_at(dom.len() / 2);
                Some(Range::Fixed(lo.to_vec(), hi.to_vec()))
            };
            let null_extent = c.u8()? != 0;
            let tile_extent = if null_extent {
                None
            } else {
                Some(c.take(datatype.size())?.to_vec())
            };
            dimensions.push(Dimension {
                name,
                datatype,
                cell_val_num,
                filters,
                domain,
                tile_extent,
            });
        }
        let n_attrs = c.count_u32(10)?;
        let mut attributes = Vec::with_capacity(n_attrs);
        for _ in 0..n_attrs {
            let name = c.string_u32()?;
            let datatype = Datatype::from_code(c.u8()?, path)?;
            let cell_val_num = c.u32()?;
            let filters = FilterPipeline::parse(&mut c)?;
            let fill_len = c.u64()?;
            let fill_value = c.take_u64_len(fill_len)?.to_vec();
            let nullable = c.u8()? != 0;
            let fill_valid = c.u8()? != 0;
            let _order = c.u8()?;
            // The enumeration name (v20+), missing from the spec's attribute table.
            let n = c.u32()? as usize;
            let enumeration = if n == 0 { None } else { Some(c.string(n)?) };
            attributes.push(Attribute {
                name,
                datatype,
                cell_val_num,
                filters,
                fill_value,
                nullable,
                fill_valid,
                enumeration,
            });
        }
        let labels = c.u32()?;
        if labels != 0 {
            return Err(unsupported(path, format!("{labels} dimension labels")));
        }
        let n_enums = c.count_u32(8)?;
        let mut enumerations = Vec::with_capacity(n_enums);
        for _ in 0..n_enums {
            let name = c.string_u32()?;
            let file = c.string_u32()?;
            enumerations.push((name, file));
        }
        let cd_version = c.u32()?;
        let empty = c.u8()? != 0;
        let mut ranges = Vec::new();
        if !empty {
            let kind = c.u8()?;
            if kind != 0 {
                return Err(unsupported(
                    path,
                    format!("current domain type {kind} (only n-dimensional rectangles)"),
                ));
            }
            for d in &dimensions {
                ranges.push(Range::parse(&mut c, d)?);
            }
        }
        if c.remaining() != 0 {
            return Err(corrupt(
                path,
                format!("{} bytes after the schema", c.remaining()),
            ));
        }
        Ok(ArraySchema {
            name: name.to_string(),
            version,
            allows_duplicates,
            sparse,
            tile_order,
            cell_order,
            capacity,
            coords_filters,
            offsets_filters,
            validity_filters,
            dimensions,
            attributes,
            enumerations,
            current_domain: CurrentDomain {
                version: cd_version,
                ranges,
            },
        })
    }

    /// The attribute named `name` and its index.
    pub fn attribute(&self, name: &str) -> Option<(usize, &Attribute)> {
        self.attributes
            .iter()
            .enumerate()
            .find(|(_, a)| a.name == name)
    }

    /// The dimension named `name` and its index.
    pub fn dimension(&self, name: &str) -> Option<(usize, &Dimension)> {
        self.dimensions
            .iter()
            .enumerate()
            .find(|(_, d)| d.name == name)
    }

    /// The SOMA shape: the current domain's extent per integer dimension (`hi + 1`), or
    /// the dimension domain's when the current domain is empty.
    pub fn shape(&self) -> Vec<Option<u64>> {
        self.dimensions
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let r = self.current_domain.ranges.get(i).or(d.domain.as_ref())?;
                let (_, hi) = r.as_i64()?;
                u64::try_from(hi).ok().map(|h| h + 1)
            })
            .collect()
    }
}
