//! AnnData's on-disk encoding: the `encoding-type` / `encoding-version` attributes every
//! element carries, and the HDF5 primitives (string attributes, variable-length UTF-8
//! string arrays) the reader and the writer share.
//!
//! The names and versions are those anndata 0.12 writes (anndata/_io/specs/methods.py).

use std::ops::Range;
use std::str::FromStr;

use hdf5::types::{TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::{Dataset, Location};

/// Attribute naming an element's encoding.
pub const ENCODING_TYPE: &str = "encoding-type";
/// Attribute naming the encoding's version.
pub const ENCODING_VERSION: &str = "encoding-version";

/// An (encoding-type, encoding-version) pair as anndata 0.12 writes it.
pub type Encoding = (&'static str, &'static str);

/// The root group of an h5ad file.
pub const ANNDATA: Encoding = ("anndata", "0.1.0");
/// A pandas DataFrame (obs, var).
pub const DATAFRAME: Encoding = ("dataframe", "0.2.0");
/// A scipy CSR matrix group (data, indices, indptr + `shape`).
pub const CSR_MATRIX: Encoding = ("csr_matrix", "0.1.0");
/// A scipy CSC matrix group (refused by the reader: atlasflow streams rows).
pub const CSC_MATRIX: &str = "csc_matrix";
/// A dense numpy array dataset.
pub const ARRAY: Encoding = ("array", "0.2.0");
/// A variable-length UTF-8 string array dataset.
pub const STRING_ARRAY: Encoding = ("string-array", "0.2.0");
/// A pandas Categorical group (codes + categories + `ordered`).
pub const CATEGORICAL: Encoding = ("categorical", "0.2.0");
/// A mapping group (uns, obsm, varm, obsp, varp, layers).
pub const DICT: Encoding = ("dict", "0.1.0");
/// A numeric (or bool) scalar dataset.
pub const NUMERIC_SCALAR: Encoding = ("numeric-scalar", "0.2.0");
/// A string scalar dataset.
pub const STRING: Encoding = ("string", "0.2.0");
/// Python's None: a dataset with a null dataspace.
pub const NULL: Encoding = ("null", "0.1.0");
/// A pandas nullable integer array group (values + mask).
pub const NULLABLE_INTEGER: Encoding = ("nullable-integer", "0.1.0");
/// A pandas nullable boolean array group (values + mask).
pub const NULLABLE_BOOLEAN: Encoding = ("nullable-boolean", "0.1.0");
/// A pandas nullable string array group (values + mask).
pub const NULLABLE_STRING_ARRAY: Encoding = ("nullable-string-array", "0.1.0");

/// A string attribute (variable-length UTF-8 or ASCII), or None when absent or not a string.
pub fn read_str_attr(loc: &Location, name: &str) -> Option<String> {
    if !loc.attr_names().ok()?.iter().any(|n| n == name) {
        return None;
    }
    let attr = loc.attr(name).ok()?;
    if attr.size() != 1 {
        return None;
    }
    match attr.dtype().ok()?.to_descriptor().ok()? {
        TypeDescriptor::VarLenUnicode => {
            attr.read_raw::<VarLenUnicode>().ok()?.first().map(|s| s.as_str().to_string())
        }
        TypeDescriptor::VarLenAscii => {
            attr.read_raw::<VarLenAscii>().ok()?.first().map(|s| s.as_str().to_string())
        }
        _ => None,
    }
}

/// A string-array attribute (e.g. `column-order`). anndata writes an empty list as an empty
/// float64 array, which reads as an empty list here. None when absent or not strings.
pub fn read_str_array_attr(loc: &Location, name: &str) -> Option<Vec<String>> {
    if !loc.attr_names().ok()?.iter().any(|n| n == name) {
        return None;
    }
    let attr = loc.attr(name).ok()?;
    match attr.dtype().ok()?.to_descriptor().ok()? {
        TypeDescriptor::VarLenUnicode => {
            Some(attr.read_raw::<VarLenUnicode>().ok()?.iter().map(|s| s.as_str().to_string()).collect())
        }
        TypeDescriptor::VarLenAscii => {
            Some(attr.read_raw::<VarLenAscii>().ok()?.iter().map(|s| s.as_str().to_string()).collect())
        }
        _ if attr.size() == 0 => Some(Vec::new()),
        _ => None,
    }
}

/// The element's `encoding-type`, if any.
pub fn encoding_type(loc: &Location) -> Option<String> {
    read_str_attr(loc, ENCODING_TYPE)
}

fn vlen(s: &str) -> hdf5::Result<VarLenUnicode> {
    VarLenUnicode::from_str(s).map_err(|e| hdf5::Error::from(format!("string {s:?} cannot be stored: {e}")))
}

/// Write a scalar variable-length UTF-8 string attribute (as h5py does for `str`).
pub fn write_str_attr(loc: &Location, name: &str, value: &str) -> hdf5::Result<()> {
    let v = vlen(value)?;
    loc.new_attr::<VarLenUnicode>().shape(()).create(name)?.write_scalar(&v)
}

/// Write a 1-D string array attribute; an empty list is written as anndata does (an
/// empty float64 array).
pub fn write_str_array_attr(loc: &Location, name: &str, values: &[String]) -> hdf5::Result<()> {
    if values.is_empty() {
        loc.new_attr::<f64>().shape([0]).create(name)?;
        return Ok(());
    }
    let v = values.iter().map(|s| vlen(s)).collect::<hdf5::Result<Vec<_>>>()?;
    loc.new_attr_builder().with_data(v.as_slice()).create(name)?;
    Ok(())
}

/// Write a scalar boolean attribute (h5py's FALSE/TRUE enum).
pub fn write_bool_attr(loc: &Location, name: &str, value: bool) -> hdf5::Result<()> {
    loc.new_attr::<bool>().shape(()).create(name)?.write_scalar(&value)
}

/// Write a 1-D int64 attribute (e.g. a sparse matrix's `shape`).
pub fn write_i64_array_attr(loc: &Location, name: &str, values: &[i64]) -> hdf5::Result<()> {
    loc.new_attr_builder().with_data(values).create(name)?;
    Ok(())
}

/// Tag an element with its anndata encoding.
pub fn write_encoding(loc: &Location, enc: Encoding) -> hdf5::Result<()> {
    write_str_attr(loc, ENCODING_TYPE, enc.0)?;
    write_str_attr(loc, ENCODING_VERSION, enc.1)
}

/// True for the variable-length string types h5ad uses for strings.
pub fn is_string_type(td: &TypeDescriptor) -> bool {
    matches!(td, TypeDescriptor::VarLenUnicode | TypeDescriptor::VarLenAscii)
}

/// Read a 1-D string dataset (or `range` of it) written as variable-length UTF-8 or ASCII.
pub fn read_strings(ds: &Dataset, range: Option<Range<usize>>) -> hdf5::Result<Vec<String>> {
    let td = ds.dtype()?.to_descriptor()?;
    macro_rules! read_as {
        ($t:ty) => {{
            let v: Vec<$t> = match range {
                Some(r) if r.is_empty() => Vec::new(),
                Some(r) => ds.read_slice_1d::<$t, _>(r)?.into_raw_vec_and_offset().0,
                None => ds.read_raw::<$t>()?,
            };
            Ok(v.iter().map(|s| s.as_str().to_string()).collect())
        }};
    }
    match td {
        TypeDescriptor::VarLenUnicode => read_as!(VarLenUnicode),
        TypeDescriptor::VarLenAscii => read_as!(VarLenAscii),
        other => Err(hdf5::Error::from(format!(
            "strings stored as {other} are not supported (h5ad uses variable-length UTF-8)"
        ))),
    }
}

/// Write a 1-D variable-length UTF-8 string dataset tagged `string-array` (h5py's
/// `special_dtype(vlen=str)`, as anndata writes obs/var indices and string columns).
pub fn write_string_array<S: AsRef<str>>(group: &hdf5::Group, name: &str, values: &[S]) -> hdf5::Result<Dataset> {
    let v = values.iter().map(|s| vlen(s.as_ref())).collect::<hdf5::Result<Vec<_>>>()?;
    let ds = group.new_dataset_builder().with_data(v.as_slice()).create(name)?;
    write_encoding(&ds, STRING_ARRAY)?;
    Ok(ds)
}

/// Write a 1-D numeric (or bool) dataset tagged `array`.
pub fn write_array<T: hdf5::H5Type>(group: &hdf5::Group, name: &str, values: &[T]) -> hdf5::Result<Dataset> {
    let ds = group.new_dataset_builder().with_data(values).create(name)?;
    write_encoding(&ds, ARRAY)?;
    Ok(ds)
}

/// Check a name can be an HDF5 link name and an anndata key.
pub fn check_key(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name.contains('/') {
        Err(format!("{name:?} cannot be an h5ad key (empty, '.', or contains '/')"))
    } else {
        Ok(())
    }
}
