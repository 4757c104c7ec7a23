//! A human-readable summary of an h5ad file (`atlasflow inspect FILE.h5ad`).
//!
//! Everything is read from HDF5 metadata (shapes, dtypes, attributes, chunking, filters)
//! and from small arrays only: categorical codes and the first categories, nullable masks
//! and float obs/var columns (to count missing values). The values of X, raw/X and the
//! layers are never read, so inspecting a file of millions of cells stays instant.
//!
//! Unlike [`super::H5adReader`], the summary describes what atlasflow would refuse (CSC X,
//! old-style categoricals, …) instead of failing, and lists such things in
//! [`H5adSummary::notes`], so a person can see why a run would not accept the file.

use std::fmt;
use std::path::{Path, PathBuf};

use hdf5::filters::Filter;
use hdf5::types::{FloatSize, IntSize, TypeDescriptor};
use hdf5::{Dataset, Group, LocationType};

use super::encoding::{self, encoding_type, read_str_array_attr, read_str_attr, read_strings};
use crate::{Ctx, Result};

/// How many categories a column kind names before "…".
const CATEGORY_PREVIEW: usize = 5;
/// Longest category text shown in a preview (longer ones are cut with "…").
const CATEGORY_TEXT_MAX: usize = 40;

/// What an h5ad file holds, read from its metadata and small arrays only (never X's data).
#[derive(Clone, Debug, PartialEq)]
pub struct H5adSummary {
    /// The file inspected.
    pub path: PathBuf,
    /// Its size on disk in bytes.
    pub file_bytes: u64,
    /// Number of cells: X's rows (obs's index length when the file has no X).
    pub n_obs: usize,
    /// Number of genes: X's columns (var's index length when the file has no X).
    pub n_vars: usize,
    /// How X is stored.
    pub x: XSummary,
    /// raw/X when the file has a raw (its shape, stored values, …).
    pub raw: Option<XSummary>,
    /// Each layer: (name, description such as "csr_matrix 700 × 765 float32, 1234 stored").
    pub layers: Vec<(String, String)>,
    /// The obs columns in the file's column order (the index excluded).
    pub obs: Vec<ColumnSummary>,
    /// The var columns in the file's column order (the index excluded).
    pub var: Vec<ColumnSummary>,
    /// Each obsm entry: (key, shape and dtype).
    pub obsm: Vec<(String, String)>,
    /// Each varm entry: (key, shape and dtype).
    pub varm: Vec<(String, String)>,
    /// Each obsp entry: (key, shape and dtype).
    pub obsp: Vec<(String, String)>,
    /// Each varp entry: (key, shape and dtype).
    pub varp: Vec<(String, String)>,
    /// The top-level keys of uns, sorted.
    pub uns_keys: Vec<String>,
    /// Things a reader of the summary should know: what atlasflow will refuse or skip, and
    /// inconsistencies found in the metadata (e.g. an index length that differs from X).
    pub notes: Vec<String>,
}

/// How a matrix (X or raw/X) is stored.
#[derive(Clone, Debug, PartialEq)]
pub struct XSummary {
    /// `csr_matrix`, `csc_matrix`, `array` (dense), another encoding-type the file names,
    /// or `none` when the file has no X.
    pub encoding: String,
    /// The value dtype (`float32`, `int32`, …); empty when there is no X.
    pub dtype: String,
    /// Rows and columns.
    pub shape: (usize, usize),
    /// Values stored: the length of `data` for sparse matrices, rows × columns for dense.
    pub stored: u64,
    /// Stored values over rows × columns, for sparse matrices (None for dense or empty).
    pub density: Option<f64>,
    /// The chunk shape of the value dataset, when chunked.
    pub chunks: Option<Vec<usize>>,
    /// The filter pipeline of the value dataset ("gzip level 4", "shuffle", …).
    pub filters: Vec<String>,
}

/// One obs or var column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnSummary {
    /// The column name.
    pub name: String,
    /// What it holds, e.g. `categorical (8 categories: hepatocyte, B cell, …)`, `int64`,
    /// `float32`, `string`, `bool`, `nullable int64`.
    pub kind: String,
    /// Missing values (category code -1, masked entries, float NaN); None where the
    /// storage cannot hold any (plain ints, bools, strings) or they were not counted.
    pub nulls: Option<usize>,
}

use super::read::{join, loc_type, not_h5ad};

fn dtype_of(ctx: &Ctx<'_>, ds: &Dataset, h5path: &str) -> Result<TypeDescriptor> {
    ds.dtype().and_then(|t| t.to_descriptor()).map_err(|e| ctx.h5(h5path, e))
}

/// numpy's name for a dtype (`int64`, `float32`, `bool`, `string`, …).
fn dtype_name(td: &TypeDescriptor) -> String {
    let bits = |s: &IntSize| match s {
        IntSize::U1 => 8,
        IntSize::U2 => 16,
        IntSize::U4 => 32,
        IntSize::U8 => 64,
    };
    match td {
        TypeDescriptor::Integer(s) => format!("int{}", bits(s)),
        TypeDescriptor::Unsigned(s) => format!("uint{}", bits(s)),
        TypeDescriptor::Float(FloatSize::U4) => "float32".to_string(),
        TypeDescriptor::Float(FloatSize::U8) => "float64".to_string(),
        TypeDescriptor::Boolean => "bool".to_string(),
        TypeDescriptor::VarLenUnicode | TypeDescriptor::VarLenAscii => "string".to_string(),
        TypeDescriptor::FixedAscii(n) | TypeDescriptor::FixedUnicode(n) => format!("fixed-length string ({n} bytes)"),
        other => other.to_string(),
    }
}

fn is_float(td: &TypeDescriptor) -> bool {
    matches!(td, TypeDescriptor::Float(_))
}

/// A filter as a person would name it.
fn filter_name(f: &Filter) -> String {
    match f {
        Filter::Deflate(level) => format!("gzip level {level}"),
        Filter::Shuffle => "shuffle".to_string(),
        Filter::Fletcher32 => "fletcher32".to_string(),
        Filter::SZip(..) => "szip".to_string(),
        Filter::NBit => "nbit".to_string(),
        Filter::ScaleOffset(_) => "scale-offset".to_string(),
        Filter::User(id, _) => match id {
            307 => "bzip2".to_string(),
            32000 => "lzf".to_string(),
            32001 => "blosc".to_string(),
            32004 => "lz4".to_string(),
            32008 => "bitshuffle".to_string(),
            32013 => "zfp".to_string(),
            32015 => "zstd".to_string(),
            other => format!("filter {other}"),
        },
        #[allow(unreachable_patterns)]
        other => format!("{other:?}"),
    }
}

fn shape_text(dims: &[usize]) -> String {
    if dims.is_empty() {
        "scalar".to_string()
    } else {
        dims.iter().map(usize::to_string).collect::<Vec<_>>().join(" × ")
    }
}

/// Summarise an h5ad file for a person: shape, size, how X is stored, obs/var columns,
/// obsm/varm/obsp/varp/layers entries and uns keys. Reads metadata and small arrays only.
///
/// A file that is not HDF5, is truncated, or is not an AnnData file gives
/// [`crate::IoError::NotH5ad`]; a missing file gives [`crate::IoError::Io`].
pub fn inspect_h5ad(path: &Path) -> Result<H5adSummary> {
    let ctx = Ctx::new(path);
    let meta = std::fs::metadata(path).map_err(|e| ctx.io(e))?;
    if meta.is_dir() {
        return Err(not_h5ad(path, "it is a directory"));
    }
    super::probe::guard(path)?;
    let file = hdf5::File::open(path).map_err(|e| not_h5ad(path, e.to_string()))?;
    let root: &Group = &file;
    if let Some(enc) = encoding_type(root)
        && enc != encoding::ANNDATA.0
    {
        return Err(not_h5ad(path, format!("root encoding-type is {enc:?}, not \"anndata\"")));
    }
    for needed in ["obs", "var"] {
        if loc_type(root, needed) != Some(LocationType::Group) {
            return Err(not_h5ad(path, format!("no /{needed} group in the file")));
        }
    }
    let mut notes = Vec::new();

    let obs_g = file.group("obs").map_err(|e| ctx.h5("/obs", e))?;
    let var_g = file.group("var").map_err(|e| ctx.h5("/var", e))?;
    let n_obs_index = index_len(&ctx, &obs_g, "/obs")?;
    let n_vars_index = index_len(&ctx, &var_g, "/var")?;

    let x = match loc_type(root, "X") {
        None => {
            notes.push("the file has no X; atlasflow needs one to run".to_string());
            XSummary {
                encoding: "none".to_string(),
                dtype: String::new(),
                shape: (n_obs_index.unwrap_or(0), n_vars_index.unwrap_or(0)),
                stored: 0,
                density: None,
                chunks: None,
                filters: Vec::new(),
            }
        }
        Some(_) => matrix_summary(&ctx, root, "X", "/X")?,
    };
    let (n_obs, n_vars) = x.shape;
    match x.encoding.as_str() {
        "csr_matrix" | "array" | "none" => {}
        "csc_matrix" => notes.push(
            "X is CSC; atlasflow streams cells by rows: convert with adata.X = adata.X.tocsr() and write again".to_string(),
        ),
        other => notes.push(format!("X has encoding {other:?}; atlasflow reads csr_matrix or dense arrays")),
    }
    for (what, got, want) in [("/obs", n_obs_index, n_obs), ("/var", n_vars_index, n_vars)] {
        match got {
            Some(n) if n != want => notes.push(format!("{what} index has {n} entries, X has {want} along this axis")),
            None => notes.push(format!("{what} has no index dataset")),
            _ => {}
        }
    }

    let raw = if loc_type(root, "raw") == Some(LocationType::Group) {
        let g = file.group("raw").map_err(|e| ctx.h5("/raw", e))?;
        if loc_type(&g, "X").is_some() { Some(matrix_summary(&ctx, &g, "X", "/raw/X")?) } else { None }
    } else {
        None
    };

    let obs = dataframe_columns(&ctx, &obs_g, "/obs", &mut notes)?;
    let var = dataframe_columns(&ctx, &var_g, "/var", &mut notes)?;
    let layers = mapping(&ctx, root, "layers")?;
    let obsm = mapping(&ctx, root, "obsm")?;
    let varm = mapping(&ctx, root, "varm")?;
    let obsp = mapping(&ctx, root, "obsp")?;
    let varp = mapping(&ctx, root, "varp")?;
    let uns_keys = if loc_type(root, "uns") == Some(LocationType::Group) {
        let g = file.group("uns").map_err(|e| ctx.h5("/uns", e))?;
        let mut k = g.member_names().map_err(|e| ctx.h5("/uns", e))?;
        k.sort();
        k
    } else {
        Vec::new()
    };

    Ok(H5adSummary {
        path: path.to_path_buf(),
        file_bytes: meta.len(),
        n_obs,
        n_vars,
        x,
        raw,
        layers,
        obs,
        var,
        obsm,
        varm,
        obsp,
        varp,
        uns_keys,
        notes,
    })
}

/// Length of a dataframe's index dataset (None when it has none).
fn index_len(ctx: &Ctx<'_>, g: &Group, gpath: &str) -> Result<Option<usize>> {
    let key = read_str_attr(g, "_index").unwrap_or_else(|| "_index".to_string());
    if loc_type(g, &key) != Some(LocationType::Dataset) {
        return Ok(None);
    }
    let p = join(gpath, &key);
    let ds = g.dataset(&key).map_err(|e| ctx.h5(&p, e))?;
    Ok(Some(ds.shape().first().copied().unwrap_or(0)))
}

/// Summarise a matrix element `name` of `parent` (X, raw/X): a sparse group or a dense
/// dataset. Reads only attributes and dataset metadata.
fn matrix_summary(ctx: &Ctx<'_>, parent: &Group, name: &str, p: &str) -> Result<XSummary> {
    match loc_type(parent, name) {
        Some(LocationType::Dataset) => {
            let ds = parent.dataset(name).map_err(|e| ctx.h5(p, e))?;
            let shape = ds.shape();
            let td = dtype_of(ctx, &ds, p)?;
            let (r, c) = match shape.as_slice() {
                [r, c] => (*r, *c),
                [r] => (*r, 1),
                _ => return Err(ctx.invalid(p, format!("dense matrix has {} dimensions, expected 2", shape.len()))),
            };
            Ok(XSummary {
                encoding: encoding_type(&ds).unwrap_or_else(|| encoding::ARRAY.0.to_string()),
                dtype: dtype_name(&td),
                shape: (r, c),
                stored: (r as u64).saturating_mul(c as u64),
                density: None,
                chunks: ds.chunk(),
                filters: ds.filters().iter().map(filter_name).collect(),
            })
        }
        Some(LocationType::Group) => {
            let g = parent.group(name).map_err(|e| ctx.h5(p, e))?;
            let (enc, shape_attr) = match encoding_type(&g) {
                Some(t) => (t, "shape"),
                None => match read_str_attr(&g, "h5sparse_format") {
                    Some(f) => (format!("{f}_matrix"), "h5sparse_shape"),
                    None => return Err(ctx.invalid(p, "a group without an encoding-type attribute: not a matrix anndata wrote")),
                },
            };
            if loc_type(&g, "data") != Some(LocationType::Dataset) {
                return Err(ctx.invalid(p, format!("encoding {enc:?} but no data dataset")));
            }
            let (shape, dp) = (sparse_shape(ctx, &g, shape_attr, p)?, join(p, "data"));
            let data = g.dataset("data").map_err(|e| ctx.h5(&dp, e))?;
            let td = dtype_of(ctx, &data, &dp)?;
            let stored = data.size() as u64;
            let cells = (shape.0 as f64) * (shape.1 as f64);
            Ok(XSummary {
                encoding: enc,
                dtype: dtype_name(&td),
                shape,
                stored,
                density: (cells > 0.0).then(|| stored as f64 / cells),
                chunks: data.chunk(),
                filters: data.filters().iter().map(filter_name).collect(),
            })
        }
        _ => Err(ctx.invalid(p, "neither a group nor a dataset")),
    }
}

/// A sparse group's `shape` attribute as (rows, columns).
fn sparse_shape(ctx: &Ctx<'_>, g: &Group, attr: &str, p: &str) -> Result<(usize, usize)> {
    let ap = format!("{p}@{attr}");
    if !g.attr_names().map_err(|e| ctx.h5(p, e))?.iter().any(|n| n == attr) {
        return Err(ctx.invalid(p, format!("sparse matrix without a {attr} attribute")));
    }
    let shape: Vec<i64> = g.attr(attr).and_then(|a| a.read_raw::<i64>()).map_err(|e| ctx.h5(&ap, e))?;
    match shape.as_slice() {
        [r, c] if *r >= 0 && *c >= 0 => Ok((*r as usize, *c as usize)),
        _ => Err(ctx.invalid(&ap, format!("{shape:?} is not two non-negative sizes"))),
    }
}

/// The columns of a dataframe group in column order (the index excluded).
fn dataframe_columns(ctx: &Ctx<'_>, g: &Group, gpath: &str, notes: &mut Vec<String>) -> Result<Vec<ColumnSummary>> {
    let idx_key = read_str_attr(g, "_index").unwrap_or_else(|| "_index".to_string());
    let names = match read_str_array_attr(g, "column-order") {
        Some(o) => o,
        None => {
            let mut n: Vec<String> =
                g.member_names().map_err(|e| ctx.h5(gpath, e))?.into_iter().filter(|n| n != &idx_key).collect();
            // anndata < 0.7 kept old-style categories in a __categories group.
            n.retain(|n| n != "__categories");
            n
        }
    };
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let p = join(gpath, &name);
        let col = column_summary(ctx, g, &name, &p)?;
        if col.kind.starts_with("old-style categorical") {
            notes.push(format!("{p} is an old-style (anndata < 0.7) categorical; atlasflow skips it"));
        } else if col.kind == "missing" {
            notes.push(format!("{p} is listed in column-order but missing from the file"));
        }
        out.push(col);
    }
    Ok(out)
}

/// Describe one dataframe column.
fn column_summary(ctx: &Ctx<'_>, g: &Group, name: &str, p: &str) -> Result<ColumnSummary> {
    let (kind, nulls) = match loc_type(g, name) {
        None => ("missing".to_string(), None),
        Some(LocationType::Dataset) => {
            let ds = g.dataset(name).map_err(|e| ctx.h5(p, e))?;
            let td = dtype_of(ctx, &ds, p)?;
            if ds.attr_names().map(|n| n.iter().any(|a| a == "categories")).unwrap_or(false) {
                ("old-style categorical".to_string(), None)
            } else if ds.ndim() != 1 {
                (format!("{} {}", shape_text(&ds.shape()), dtype_name(&td)), None)
            } else if is_float(&td) {
                (dtype_name(&td), Some(count_nan(ctx, &ds, p)?))
            } else {
                (dtype_name(&td), None)
            }
        }
        Some(LocationType::Group) => {
            let sub = g.group(name).map_err(|e| ctx.h5(p, e))?;
            match encoding_type(&sub).as_deref() {
                Some("categorical") => categorical_kind(ctx, &sub, p)?,
                Some(enc @ ("nullable-integer" | "nullable-boolean" | "nullable-string-array")) => {
                    nullable_kind(ctx, &sub, p, enc)?
                }
                Some(other) => (other.to_string(), None),
                None => ("group without encoding-type".to_string(), None),
            }
        }
        Some(other) => (format!("{other:?}"), None),
    };
    Ok(ColumnSummary { name: name.to_string(), kind, nulls })
}

/// NaN count of a 1-D float dataset.
fn count_nan(ctx: &Ctx<'_>, ds: &Dataset, p: &str) -> Result<usize> {
    let v = ds.read_raw::<f64>().map_err(|e| ctx.h5(p, e))?;
    Ok(v.iter().filter(|x| x.is_nan()).count())
}

/// "categorical (8 categories: a, b, c, d, e, …)" and the number of rows with code -1.
fn categorical_kind(ctx: &Ctx<'_>, g: &Group, p: &str) -> Result<(String, Option<usize>)> {
    let (cp, kp) = (join(p, "codes"), join(p, "categories"));
    if loc_type(g, "codes") != Some(LocationType::Dataset) || loc_type(g, "categories") != Some(LocationType::Dataset) {
        return Err(ctx.invalid(p, "categorical without codes and categories datasets"));
    }
    let codes = g.dataset("codes").map_err(|e| ctx.h5(&cp, e))?.read_raw::<i64>().map_err(|e| ctx.h5(&cp, e))?;
    let nulls = codes.iter().filter(|&&c| c < 0).count();
    let cats = g.dataset("categories").map_err(|e| ctx.h5(&kp, e))?;
    let n = cats.size();
    let k = n.min(CATEGORY_PREVIEW);
    let td = dtype_of(ctx, &cats, &kp)?;
    let preview: Vec<String> = match &td {
        _ if k == 0 => Vec::new(),
        td if encoding::is_string_type(td) => read_strings(&cats, Some(0..k)).map_err(|e| ctx.h5(&kp, e))?,
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) => {
            let v = cats.read_slice_1d::<i64, _>(0..k).map_err(|e| ctx.h5(&kp, e))?;
            v.iter().map(i64::to_string).collect()
        }
        TypeDescriptor::Float(_) => {
            let v = cats.read_slice_1d::<f64, _>(0..k).map_err(|e| ctx.h5(&kp, e))?;
            v.iter().map(f64::to_string).collect()
        }
        TypeDescriptor::Boolean => {
            let v = cats.read_slice_1d::<bool, _>(0..k).map_err(|e| ctx.h5(&kp, e))?;
            v.iter().map(|b| if *b { "True".to_string() } else { "False".to_string() }).collect()
        }
        other => vec![format!("<{}>", dtype_name(other))],
    };
    let mut shown: Vec<String> = preview.iter().map(|s| shorten(s)).collect();
    if n > k {
        shown.push("…".to_string());
    }
    let ordered = g
        .attr("ordered")
        .ok()
        .and_then(|a| a.read_scalar::<bool>().ok())
        .unwrap_or(false);
    let word = if n == 1 { "category" } else { "categories" };
    let list = if shown.is_empty() { String::new() } else { format!(": {}", shown.join(", ")) };
    let prefix = if ordered { "ordered categorical" } else { "categorical" };
    Ok((format!("{prefix} ({n} {word}{list})"), Some(nulls)))
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= CATEGORY_TEXT_MAX {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(CATEGORY_TEXT_MAX - 1).collect();
        t.push('…');
        t
    }
}

/// "nullable int64" / "nullable bool" / "nullable string" and the masked count.
fn nullable_kind(ctx: &Ctx<'_>, g: &Group, p: &str, enc: &str) -> Result<(String, Option<usize>)> {
    let (vp, mp) = (join(p, "values"), join(p, "mask"));
    if loc_type(g, "values") != Some(LocationType::Dataset) || loc_type(g, "mask") != Some(LocationType::Dataset) {
        return Err(ctx.invalid(p, format!("{enc} without values and mask datasets")));
    }
    let values = g.dataset("values").map_err(|e| ctx.h5(&vp, e))?;
    let td = dtype_of(ctx, &values, &vp)?;
    let mask = g.dataset("mask").map_err(|e| ctx.h5(&mp, e))?.read_raw::<bool>().map_err(|e| ctx.h5(&mp, e))?;
    let name = match enc {
        "nullable-boolean" => "bool".to_string(),
        "nullable-string-array" => "string".to_string(),
        _ => dtype_name(&td),
    };
    Ok((format!("nullable {name}"), Some(mask.iter().filter(|&&m| m).count())))
}

/// Entries of a mapping group (layers, obsm, …): (key, description), in HDF5 order.
fn mapping(ctx: &Ctx<'_>, root: &Group, name: &str) -> Result<Vec<(String, String)>> {
    if loc_type(root, name) != Some(LocationType::Group) {
        return Ok(Vec::new());
    }
    let gp = format!("/{name}");
    let g = root.group(name).map_err(|e| ctx.h5(&gp, e))?;
    let mut out = Vec::new();
    for key in g.member_names().map_err(|e| ctx.h5(&gp, e))? {
        let p = join(&gp, &key);
        out.push((key.clone(), describe_element(ctx, &g, &key, &p)?));
    }
    Ok(out)
}

/// A short description of any element: "1000 × 50 float32", "csr_matrix 700 × 700
/// float64, 4321 stored", "dataframe 78 × 92", …
fn describe_element(ctx: &Ctx<'_>, parent: &Group, name: &str, p: &str) -> Result<String> {
    match loc_type(parent, name) {
        Some(LocationType::Dataset) => {
            let ds = parent.dataset(name).map_err(|e| ctx.h5(p, e))?;
            if ds.space().map_err(|e| ctx.h5(p, e))?.is_null() {
                return Ok("None".to_string());
            }
            let td = dtype_of(ctx, &ds, p)?;
            Ok(format!("{} {}", shape_text(&ds.shape()), dtype_name(&td)))
        }
        Some(LocationType::Group) => {
            let g = parent.group(name).map_err(|e| ctx.h5(p, e))?;
            let enc = encoding_type(&g);
            match enc.as_deref() {
                Some("csr_matrix" | "csc_matrix") => {
                    let m = matrix_summary(ctx, parent, name, p)?;
                    Ok(format!("{} {} {}, {} stored", m.encoding, shape_text(&[m.shape.0, m.shape.1]), m.dtype, m.stored))
                }
                Some("dataframe") => {
                    let rows = index_len(ctx, &g, p)?.unwrap_or(0);
                    let cols = match read_str_array_attr(&g, "column-order") {
                        Some(c) => c.len(),
                        None => g.member_names().map_err(|e| ctx.h5(p, e))?.len().saturating_sub(1),
                    };
                    Ok(format!("dataframe {rows} × {cols}"))
                }
                Some("dict") | None => {
                    let n = g.member_names().map_err(|e| ctx.h5(p, e))?.len();
                    Ok(format!("dict ({n} keys)"))
                }
                Some(other) => Ok(other.to_string()),
            }
        }
        _ => Ok("unknown element".to_string()),
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl fmt::Display for XSummary {
    /// One line: "csr_matrix float32, 2175282 stored values (density 36.25%), chunks 8498, gzip level 4".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.encoding == "none" {
            return write!(f, "none");
        }
        write!(f, "{} {}", self.encoding, self.dtype)?;
        match self.density {
            Some(d) => write!(f, ", {} stored values (density {:.2}%)", self.stored, d * 100.0)?,
            None if self.encoding.ends_with("_matrix") => write!(f, ", {} stored values", self.stored)?,
            None => {}
        }
        match &self.chunks {
            Some(c) => write!(f, ", chunks {}", shape_text(c))?,
            None => write!(f, ", contiguous")?,
        }
        if self.filters.is_empty() {
            write!(f, ", uncompressed")
        } else {
            write!(f, ", {}", self.filters.join(" + "))
        }
    }
}

fn write_columns(f: &mut fmt::Formatter<'_>, title: &str, cols: &[ColumnSummary]) -> fmt::Result {
    let s = if cols.len() == 1 { "" } else { "s" };
    if cols.is_empty() {
        return writeln!(f, "{title}: no columns");
    }
    writeln!(f, "{title} ({} column{s}):", cols.len())?;
    let w = cols.iter().map(|c| c.name.chars().count()).max().unwrap_or(0);
    for c in cols {
        let pad = w - c.name.chars().count();
        write!(f, "  {}{}  {}", c.name, " ".repeat(pad), c.kind)?;
        match c.nulls {
            Some(n) if n > 0 => writeln!(f, "  [{n} missing]")?,
            _ => writeln!(f)?,
        }
    }
    Ok(())
}

fn write_mapping(f: &mut fmt::Formatter<'_>, title: &str, items: &[(String, String)]) -> fmt::Result {
    writeln!(f, "{title}:")?;
    let w = items.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    for (k, v) in items {
        writeln!(f, "  {k}{}  {v}", " ".repeat(w - k.chars().count()))?;
    }
    Ok(())
}

impl fmt::Display for H5adSummary {
    /// A multi-line report: header (path, size, shape, X, raw), obs and var columns
    /// aligned, then layers/obsm/varm/obsp/varp, uns keys and notes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}  ({:.2} MiB)", self.path.display(), mib(self.file_bytes))?;
        writeln!(f, "  {} cells × {} genes", self.n_obs, self.n_vars)?;
        writeln!(f, "  X:   {}", self.x)?;
        match &self.raw {
            Some(r) => writeln!(f, "  raw: {} × {}, {r}", r.shape.0, r.shape.1)?,
            None => writeln!(f, "  raw: none")?,
        }
        write_columns(f, "obs", &self.obs)?;
        write_columns(f, "var", &self.var)?;
        let mappings = [
            ("layers", &self.layers),
            ("obsm", &self.obsm),
            ("varm", &self.varm),
            ("obsp", &self.obsp),
            ("varp", &self.varp),
        ];
        for (title, items) in mappings.iter().filter(|(_, items)| !items.is_empty()) {
            write_mapping(f, title, items)?;
        }
        let empty: Vec<&str> = mappings.iter().filter(|(_, items)| items.is_empty()).map(|(t, _)| *t).collect();
        if !empty.is_empty() {
            writeln!(f, "empty: {}", empty.join(", "))?;
        }
        if self.uns_keys.is_empty() {
            writeln!(f, "uns: none")?;
        } else {
            writeln!(f, "uns: {}", self.uns_keys.join(", "))?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::IoError;
    use std::io::Write;

    const ZIEGENHAIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/ziegenhain2017_smartseq2_78cells.h5ad");
    const PBMC: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/scanpy_pbmc68k_reduced_recovered_counts_700cells.h5ad");
    const LIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/example/smartseq2-liver-example.h5ad");

    fn col<'a>(cols: &'a [ColumnSummary], name: &str) -> &'a ColumnSummary {
        cols.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no column {name}"))
    }

    // Numbers checked with /work/venv-ref/bin/python (anndata 0.12): read_h5ad(p).shape,
    // .X.nnz, .X.dtype, obs/var dtypes, len(cat.categories), isna().sum(), os.path.getsize.
    #[test]
    fn inspect_ziegenhain() {
        let s = inspect_h5ad(Path::new(ZIEGENHAIN)).unwrap();
        assert_eq!((s.n_obs, s.n_vars), (78, 10000));
        assert_eq!(s.file_bytes, 1_295_583);
        assert_eq!(s.x.encoding, "csr_matrix");
        assert_eq!(s.x.dtype, "int32");
        assert_eq!(s.x.stored, 188_131);
        assert!((s.x.density.unwrap() - 0.241194).abs() < 1e-6);
        assert_eq!(s.x.chunks, Some(vec![2940]));
        assert_eq!(s.x.filters, vec!["gzip level 4".to_string()]);
        assert!(s.raw.is_none());
        let names: Vec<&str> = s.obs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["protocol", "batch"]);
        assert_eq!(col(&s.obs, "protocol").kind, "categorical (1 category: Smart-seq2)");
        assert_eq!(col(&s.obs, "batch").kind, "categorical (2 categories: A, B)");
        assert_eq!(col(&s.obs, "batch").nulls, Some(0));
        assert_eq!(col(&s.var, "length").kind, "int64");
        assert_eq!(col(&s.var, "length").nulls, None);
        assert_eq!(s.obsm, vec![("ercc_counts".to_string(), "dataframe 78 × 92".to_string())]);
        assert!(s.layers.is_empty() && s.varm.is_empty() && s.obsp.is_empty() && s.varp.is_empty());
        assert_eq!(s.uns_keys, ["ercc_info", "source"]);
        assert!(s.notes.is_empty(), "{:?}", s.notes);
    }

    #[test]
    fn inspect_pbmc() {
        let s = inspect_h5ad(Path::new(PBMC)).unwrap();
        assert_eq!((s.n_obs, s.n_vars), (700, 765));
        assert_eq!(s.x.stored, 174_400);
        assert_eq!(s.x.dtype, "int32");
        assert!((s.x.density.unwrap() - 0.325677).abs() < 1e-6);
        let names: Vec<&str> = s.obs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["bulk_labels", "louvain", "phase", "n_counts", "n_genes", "percent_mito"]);
        assert_eq!(
            col(&s.obs, "bulk_labels").kind,
            "categorical (10 categories: CD4+/CD25 T Reg, CD4+/CD45RA+/CD25- Naive T, CD4+/CD45RO+ Memory, \
             CD8+ Cytotoxic T, CD8+/CD45RA+ Naive Cytotoxic, …)"
        );
        assert_eq!(col(&s.obs, "louvain").kind, "categorical (11 categories: 0, 1, 2, 3, 4, …)");
        assert_eq!(col(&s.obs, "phase").kind, "categorical (3 categories: G1, G2M, S)");
        assert_eq!(col(&s.obs, "n_counts").kind, "float32");
        assert_eq!(col(&s.obs, "n_counts").nulls, Some(0));
        assert_eq!(col(&s.obs, "n_genes").kind, "int64");
        assert_eq!(col(&s.obs, "percent_mito").kind, "float32");
        assert!(s.var.is_empty());
        assert_eq!(s.uns_keys, ["source"]);
    }

    /// The shipped example (regenerated at 10:05 on 2026-11-26 with CELLxGENE-style obs);
    /// the size is taken from the file system so a regenerated file only fails on content.
    #[test]
    fn inspect_liver_example_and_display() {
        let s = inspect_h5ad(Path::new(LIVER)).unwrap();
        assert_eq!((s.n_obs, s.n_vars), (1000, 6000));
        assert_eq!(s.file_bytes, std::fs::metadata(LIVER).unwrap().len());
        assert_eq!(s.x.dtype, "float32");
        assert_eq!(s.x.stored, 2_175_282);
        assert!((s.x.density.unwrap() - 0.362547).abs() < 1e-6);
        assert_eq!(
            col(&s.obs, "cell_type").kind,
            "categorical (8 categories: B cell, Kupffer cell, T cell, cholangiocyte, endothelial cell of hepatic sinusoid, …)"
        );
        assert_eq!(col(&s.obs, "cell_type").nulls, Some(0));
        assert_eq!(col(&s.obs, "sex").kind, "categorical (2 categories: female, male)");
        assert_eq!(col(&s.obs, "donor_id").kind, "categorical (4 categories: M1, M2, M3, M4)");
        assert_eq!(col(&s.obs, "is_primary_data").kind, "bool");
        assert_eq!(s.obs.len(), 11);
        assert_eq!(col(&s.var, "feature_name").kind, "categorical (5938 categories: Gm0, Gm2, Gm3, Gm4, Gm5, …)");
        assert_eq!(col(&s.var, "feature_length").kind, "int64");
        assert!(s.uns_keys.iter().any(|k| k == "atlasflow_gen"), "{:?}", s.uns_keys);

        let text = s.to_string();
        assert!(text.contains(&format!("({:.2} MiB)", s.file_bytes as f64 / 1048576.0)), "{text}");
        assert!(text.contains("1000 cells × 6000 genes"), "{text}");
        assert!(text.contains("X:   csr_matrix float32, 2175282 stored values (density 36.25%), chunks "), "{text}");
        assert!(text.contains("  feature_name    categorical (5938"), "{text}");
        assert!(text.contains("  feature_length  int64"), "{text}");
        assert!(text.contains("uns: atlasflow_gen"), "{text}");
        assert!(text.contains("obs (11 columns):"), "{text}");
    }

    #[test]
    fn inspect_truncated_and_text_files_are_not_h5ad() {
        let bytes = std::fs::read(PBMC).unwrap();
        for keep in [bytes.len() / 2, 4096, 100, 0] {
            let mut t = tempfile::NamedTempFile::new().unwrap();
            t.write_all(&bytes[..keep]).unwrap();
            t.flush().unwrap();
            match inspect_h5ad(t.path()) {
                Err(IoError::NotH5ad { path, .. }) => assert_eq!(path, t.path()),
                other => panic!("truncated to {keep} bytes: {other:?}"),
            }
        }
        let mut t = tempfile::NamedTempFile::new().unwrap();
        writeln!(t, "cell,gene,count\nA,B,1").unwrap();
        t.flush().unwrap();
        let err = inspect_h5ad(t.path()).unwrap_err();
        assert!(matches!(err, IoError::NotH5ad { .. }), "{err:?}");
        assert!(err.to_string().contains(&t.path().display().to_string()), "{err}");

        let missing = inspect_h5ad(Path::new("/nonexistent/x.h5ad")).unwrap_err();
        assert!(matches!(missing, IoError::Io { .. }), "{missing:?}");
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(inspect_h5ad(dir.path()), Err(IoError::NotH5ad { .. })));
    }

    /// A hand-built file with what the fixtures lack: CSC X, raw, a layer, obsp, a
    /// nullable column, missing categories, NaN, bool and string columns.
    #[test]
    fn inspect_synthetic_csc_raw_nullable() {
        use crate::h5ad::encoding::*;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("synth.h5ad");
        {
            let f = hdf5::File::create(&p).unwrap();
            write_encoding(&f, ANNDATA).unwrap();
            let sparse = |g: &hdf5::Group, name: &str, enc: Encoding, shape: [i64; 2], nnz: usize| {
                let x = g.create_group(name).unwrap();
                write_encoding(&x, enc).unwrap();
                write_i64_array_attr(&x, "shape", &shape).unwrap();
                write_array(&x, "data", &vec![1.0f64; nnz]).unwrap();
                write_array(&x, "indices", &vec![0i32; nnz]).unwrap();
                write_array(&x, "indptr", &vec![0i64; shape[1] as usize + 1]).unwrap();
            };
            sparse(&f, "X", (CSC_MATRIX, "0.1.0"), [4, 3], 5);
            let raw = f.create_group("raw").unwrap();
            sparse(&raw, "X", CSR_MATRIX, [4, 6], 7);
            let layers = f.create_group("layers").unwrap();
            write_encoding(&layers, DICT).unwrap();
            layers.new_dataset_builder().with_data(&ndarray::Array2::<f32>::zeros((4, 3))).create("dense").unwrap();
            let obsp = f.create_group("obsp").unwrap();
            sparse(&obsp, "distances", CSR_MATRIX, [4, 4], 2);

            let obs = f.create_group("obs").unwrap();
            write_encoding(&obs, DATAFRAME).unwrap();
            write_str_attr(&obs, "_index", "_index").unwrap();
            write_string_array(&obs, "_index", &["a", "b", "c", "d"]).unwrap();
            let order: Vec<String> = ["ct", "n", "score", "flag", "label"].iter().map(|s| s.to_string()).collect();
            write_str_array_attr(&obs, "column-order", &order).unwrap();
            let ct = obs.create_group("ct").unwrap();
            write_encoding(&ct, CATEGORICAL).unwrap();
            write_bool_attr(&ct, "ordered", true).unwrap();
            write_array(&ct, "codes", &[0i8, -1, 1, -1]).unwrap();
            write_string_array(&ct, "categories", &["x", "y"]).unwrap();
            let n = obs.create_group("n").unwrap();
            write_encoding(&n, NULLABLE_INTEGER).unwrap();
            write_array(&n, "values", &[1i32, 2, 3, 4]).unwrap();
            write_array(&n, "mask", &[false, true, false, false]).unwrap();
            write_array(&obs, "score", &[0.5f64, f64::NAN, f64::NAN, 1.0]).unwrap();
            write_array(&obs, "flag", &[true, false, true, true]).unwrap();
            write_string_array(&obs, "label", &["p", "q", "r", "s"]).unwrap();

            let var = f.create_group("var").unwrap();
            write_encoding(&var, DATAFRAME).unwrap();
            write_str_attr(&var, "_index", "_index").unwrap();
            write_string_array(&var, "_index", &["g1", "g2"]).unwrap(); // 2 ≠ 3: a note
            write_str_array_attr(&var, "column-order", &[]).unwrap();
        }
        let s = inspect_h5ad(&p).unwrap();
        assert_eq!((s.n_obs, s.n_vars), (4, 3));
        assert_eq!((s.x.encoding.as_str(), s.x.dtype.as_str(), s.x.stored), ("csc_matrix", "float64", 5));
        let raw = s.raw.as_ref().unwrap();
        assert_eq!((raw.encoding.as_str(), raw.shape, raw.stored), ("csr_matrix", (4, 6), 7));
        assert_eq!(s.layers, vec![("dense".to_string(), "4 × 3 float32".to_string())]);
        assert_eq!(s.obsp, vec![("distances".to_string(), "csr_matrix 4 × 4 float64, 2 stored".to_string())]);
        let kinds: Vec<(&str, Option<usize>)> = s.obs.iter().map(|c| (c.kind.as_str(), c.nulls)).collect();
        assert_eq!(
            kinds,
            [
                ("ordered categorical (2 categories: x, y)", Some(2)),
                ("nullable int32", Some(1)),
                ("float64", Some(2)),
                ("bool", None),
                ("string", None),
            ]
        );
        assert_eq!(s.notes.len(), 2, "{:?}", s.notes);
        assert!(s.notes[0].contains("CSC"), "{:?}", s.notes);
        assert!(s.notes[1].contains("/var index has 2 entries"), "{:?}", s.notes);
        let text = s.to_string();
        assert!(text.contains("  ct     ordered categorical (2 categories: x, y)  [2 missing]"), "{text}");
        assert!(text.contains("raw: 4 × 6, csr_matrix float64, 7 stored values (density 29.17%)"), "{text}");
        assert!(text.contains("var: no columns"), "{text}");
        assert!(text.contains("layers:\n  dense  4 × 3 float32\n"), "{text}");
        assert!(text.contains("empty: obsm, varm, varp\n"), "{text}");
    }

    #[test]
    fn inspect_hdf5_that_is_not_anndata() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("plain.h5");
        {
            let f = hdf5::File::create(&p).unwrap();
            f.new_dataset_builder().with_data(&[1.0f32, 2.0]).create("values").unwrap();
        }
        assert!(matches!(inspect_h5ad(&p), Err(IoError::NotH5ad { .. })));
    }
}
