//! Shared helpers of the range and band tests: the fixtures, tiledbsoma's reference
//! dumps, and canonical cell strings to compare Arrow columns with them.

#![allow(clippy::unwrap_used, dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float32Type, Float64Type};
use atlasflow_soma::{LocalStorage, SomaArray, Storage, open};
use serde_json::Value;

/// Columns whose filters the reader does not undo yet (skipped): (array, column, filter).
pub const UNSUPPORTED: &[(&str, &str, &str)] = &[("filters/df", "f32_bitshuffle", "BITSHUFFLE")];

/// The checked-in fixtures.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/soma")
}

/// The array at `path` of the checked-in fixtures.
pub fn array(path: &str) -> SomaArray {
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(fixtures()));
    open(storage, path).unwrap().into_array().unwrap()
}

/// The reference index (`reference/index.json`) of the checked-in fixtures.
pub fn index() -> Value {
    index_at(&fixtures())
}

/// The reference index (`reference/index.json`) of the fixture tree at `root`.
pub fn index_at(root: &Path) -> Value {
    let text = std::fs::read_to_string(root.join("reference/index.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The reference columns of one array entry of the checked-in fixtures' index.
pub fn reference(entry: &Value) -> serde_json::Map<String, Value> {
    reference_at(&fixtures(), entry)
}

/// The reference columns of one array entry of the index of the fixture tree at `root`.
pub fn reference_at(root: &Path, entry: &Value) -> serde_json::Map<String, Value> {
    let file = entry["file"].as_str().unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(root.join("reference").join(file)).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["columns"].as_object().unwrap().clone()
}

fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v:?}")
    }
}

/// A canonical string per cell of an Arrow column.
pub fn canon_arrow(array: &ArrayRef) -> Vec<String> {
    let array = match array.data_type() {
        DataType::Dictionary(_, value_type) => arrow::compute::cast(array, value_type).unwrap(),
        _ => Arc::clone(array),
    };
    (0..array.len())
        .map(|i| {
            if array.is_null(i) {
                return "null".to_string();
            }
            match array.data_type() {
                DataType::Float32 => float(f64::from(array.as_primitive::<Float32Type>().value(i))),
                DataType::Float64 => float(array.as_primitive::<Float64Type>().value(i)),
                DataType::Boolean => array.as_boolean().value(i).to_string(),
                DataType::LargeUtf8 => array.as_string::<i64>().value(i).to_string(),
                DataType::Utf8 => array.as_string::<i32>().value(i).to_string(),
                _ => arrow::util::display::array_value_to_string(&array, i).unwrap(),
            }
        })
        .collect()
}

/// A canonical string per cell of a reference column (`{"type", "values"}`; floats are
/// Python repr strings, which parse exactly).
pub fn canon_json(column: &Value) -> Vec<String> {
    let is_float = matches!(column["type"].as_str(), Some("float" | "double"));
    column["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| match v {
            Value::Null => "null".into(),
            Value::String(s) if is_float => float(s.parse::<f64>().unwrap()),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) if n.is_f64() => float(n.as_f64().unwrap()),
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            other => panic!("unexpected reference value {other}"),
        })
        .collect()
}

/// The number of data tiles over all fragments of `a`.
pub fn total_sparse_tiles(a: &SomaArray) -> u64 {
    a.tiledb()
        .fragments()
        .iter()
        .map(|f| f.footer.sparse_tile_num)
        .sum()
}

/// A reference value as f32 (what CSR rows carry).
pub fn json_f32(v: &Value) -> f32 {
    match v {
        Value::Bool(b) => f32::from(u8::from(*b)),
        Value::Number(n) => n.as_f64().unwrap() as f32,
        Value::String(s) => s.parse::<f64>().unwrap() as f32,
        other => panic!("unexpected reference value {other}"),
    }
}

/// The i64 values of a reference integer column.
pub fn json_i64s(column: &Value) -> Vec<i64> {
    column["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}
