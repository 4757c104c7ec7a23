//! What colours the points: read from an obs column as scanpy reads it.
//!
//! - Categorical (Arrow dictionary with string values): the dictionary is the category
//!   list, in its order (pandas' `.cat.categories`); a null key is a missing value.
//! - Strings: categories are the distinct values sorted (scanpy's `sanitize_anndata`).
//! - Booleans: categories "False"/"True" among those present (scanpy's `astype(str)`).
//! - Any integer or float column: continuous; nulls and non-finite values are missing.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use atlasflow_core::{Result, StageError};

use crate::color::Rgb;
use crate::params::STAGE;

/// The values that colour the points, as [`crate::render`] takes them.
#[derive(Clone, Debug, PartialEq)]
pub enum Coloring {
    /// No colour key: every point in grey.
    None,
    /// Categories: `codes[i]` indexes `categories` and `palette`; −1 is missing.
    Categorical {
        /// Category code per cell, −1 for missing (drawn in `na_color`, below the others).
        codes: Vec<i32>,
        /// The category names, in legend order.
        categories: Vec<String>,
        /// One colour per category.
        palette: Vec<Rgb>,
    },
    /// A continuous value per cell (NaN = missing), drawn with viridis.
    Continuous(Vec<f64>),
}

/// The source values of an obs column before colours are chosen.
#[derive(Clone, Debug, PartialEq)]
pub enum ObsValues {
    /// Category codes (−1 missing) and category names.
    Categorical {
        /// Category code per cell, −1 for missing.
        codes: Vec<i32>,
        /// The categories in order.
        categories: Vec<String>,
    },
    /// Values, NaN for missing.
    Continuous(Vec<f64>),
}

/// Read obs column `key` (`array`) as scanpy would colour by it.
pub fn obs_values(key: &str, array: &ArrayRef) -> Result<ObsValues> {
    let arrow_err = |e: arrow::error::ArrowError| {
        StageError::data(STAGE, format!("obs column '{key}': {e}"))
    };
    match array.data_type() {
        DataType::Dictionary(_, value_type) => {
            let dict = array.as_any_dictionary();
            let values = cast(dict.values(), &DataType::Utf8).map_err(|_| {
                StageError::data(
                    STAGE,
                    format!("obs column '{key}': categories of type {value_type} cannot be shown as labels"),
                )
            })?;
            let values = values.as_string::<i32>();
            let categories: Vec<String> =
                (0..values.len()).map(|i| values.value(i).to_string()).collect();
            let keys = cast(dict.keys(), &DataType::Int64).map_err(arrow_err)?;
            let keys = keys.as_primitive::<arrow::datatypes::Int64Type>();
            let n_cat = categories.len() as i64;
            let mut codes = Vec::with_capacity(keys.len());
            for i in 0..keys.len() {
                if keys.is_null(i) {
                    codes.push(-1);
                    continue;
                }
                let k = keys.value(i);
                if k < 0 || k >= n_cat {
                    return Err(StageError::data(
                        STAGE,
                        format!("obs column '{key}': cell {i} has category code {k}, but there are {n_cat} categories"),
                    ));
                }
                // A null entry of the dictionary itself is a missing value too.
                codes.push(if values.is_null(k as usize) { -1 } else { k as i32 });
            }
            Ok(ObsValues::Categorical { codes, categories })
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let s = cast(array, &DataType::Utf8).map_err(arrow_err)?;
            let s = s.as_string::<i32>();
            let mut categories: Vec<String> =
                s.iter().flatten().map(str::to_string).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
            categories.shrink_to_fit();
            let codes = s
                .iter()
                .map(|v| match v {
                    None => -1,
                    Some(v) => categories.binary_search_by(|c| c.as_str().cmp(v)).map_or(-1, |i| i as i32),
                })
                .collect();
            Ok(ObsValues::Categorical { codes, categories })
        }
        DataType::Boolean => {
            let b = array.as_boolean();
            let (mut has_false, mut has_true) = (false, false);
            for v in b.iter().flatten() {
                if v { has_true = true } else { has_false = true }
            }
            let mut categories = Vec::new();
            if has_false {
                categories.push("False".to_string());
            }
            if has_true {
                categories.push("True".to_string());
            }
            let true_code = if has_false { 1 } else { 0 };
            let codes = b.iter().map(|v| match v {
                None => -1,
                Some(false) => 0,
                Some(true) => true_code,
            }).collect();
            Ok(ObsValues::Categorical { codes, categories })
        }
        t if t.is_numeric() => {
            let f = cast(array, &DataType::Float64).map_err(arrow_err)?;
            let f = f.as_primitive::<arrow::datatypes::Float64Type>();
            let values = (0..f.len())
                .map(|i| {
                    let v = f.value(i);
                    if f.is_null(i) || !v.is_finite() { f64::NAN } else { v }
                })
                .collect();
            Ok(ObsValues::Continuous(values))
        }
        t => Err(StageError::data(
            STAGE,
            format!("obs column '{key}' has type {t}, which cannot colour points (use a categorical, string, boolean or numeric column)"),
        )),
    }
}

/// Keep only the categories in `groups` (scanpy's `groups`): the others become missing.
/// Returns the kept category indices (into the full list) and rewrites `codes` to index them.
pub fn restrict_to_groups(codes: &mut [i32], categories: &[String], groups: &[String]) -> Result<Vec<usize>> {
    for g in groups {
        if !categories.contains(g) {
            return Err(StageError::param(
                STAGE,
                "groups",
                format!("'{g}' is not a category; categories are: {}", categories.join(", ")),
            ));
        }
    }
    let kept: Vec<usize> = (0..categories.len()).filter(|&i| groups.contains(&categories[i])).collect();
    let mut remap = vec![-1i32; categories.len()];
    for (new, &old) in kept.iter().enumerate() {
        remap[old] = new as i32;
    }
    for c in codes.iter_mut() {
        if *c >= 0 {
            *c = remap[*c as usize];
        }
    }
    Ok(kept)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use arrow::array::{BooleanArray, DictionaryArray, Float32Array, Int64Array, StringArray};
    use arrow::datatypes::Int32Type;
    use std::sync::Arc;

    #[test]
    fn reads_each_kind() {
        let d: DictionaryArray<Int32Type> = vec![Some("b"), None, Some("a"), Some("b")].into_iter().collect();
        let a: ArrayRef = Arc::new(d);
        let ObsValues::Categorical { codes, categories } = obs_values("k", &a).unwrap() else { panic!() };
        assert_eq!(categories, vec!["b", "a"]); // dictionary order
        assert_eq!(codes, vec![0, -1, 1, 0]);

        let s: ArrayRef = Arc::new(StringArray::from(vec![Some("z"), Some("a"), None]));
        let ObsValues::Categorical { codes, categories } = obs_values("k", &s).unwrap() else { panic!() };
        assert_eq!(categories, vec!["a", "z"]);
        assert_eq!(codes, vec![1, 0, -1]);

        let b: ArrayRef = Arc::new(BooleanArray::from(vec![true, true]));
        let ObsValues::Categorical { codes, categories } = obs_values("k", &b).unwrap() else { panic!() };
        assert_eq!(categories, vec!["True"]);
        assert_eq!(codes, vec![0, 0]);

        let f: ArrayRef = Arc::new(Float32Array::from(vec![Some(1.5), None, Some(f32::INFINITY)]));
        let ObsValues::Continuous(v) = obs_values("k", &f).unwrap() else { panic!() };
        assert_eq!(v[0], 1.5);
        assert!(v[1].is_nan() && v[2].is_nan());

        let i: ArrayRef = Arc::new(Int64Array::from(vec![3, 4]));
        assert_eq!(obs_values("k", &i).unwrap(), ObsValues::Continuous(vec![3.0, 4.0]));
    }

    #[test]
    fn groups_keep_order_and_reject_unknown() {
        let cats: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let mut codes = vec![0, 1, 2, -1];
        let kept = restrict_to_groups(&mut codes, &cats, &["c".into(), "a".into()]).unwrap();
        assert_eq!(kept, vec![0, 2]);
        assert_eq!(codes, vec![0, -1, 1, -1]);
        assert!(restrict_to_groups(&mut codes, &cats, &["x".into()]).is_err());
    }
}
