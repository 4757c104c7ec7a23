//! Range reads equal the corresponding slices of what tiledbsoma reads back, for every
//! sparse array and DataFrame of the fixtures: whole, empty, single-row, tile- and
//! band-crossing ranges, several ranges, point lists (with points outside the domain).
//! Results are sorted by coordinates; DataFrames stream by blocks to the same rows.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use atlasflow_soma::{Coords, LocalStorage, SomaObject, SparseReader, Storage, open};
use common::{
    UNSUPPORTED, array, canon_arrow, canon_json, fixtures, index, json_i64s, reference,
    total_sparse_tiles,
};

/// The selections tried on an array with `n` rows and dim-0 tile extent `e`.
fn selections(n: i64, e: i64) -> Vec<(String, Coords)> {
    let mut out = vec![
        ("all".to_string(), Coords::all()),
        ("everything as a range".into(), Coords::range(0, n - 1)),
        ("past the end".into(), Coords::range(n + 10, n + 20)),
        ("reversed".into(), Coords::range(5, 4)),
        ("negative".into(), Coords::range(-50, -1)),
        ("first row".into(), Coords::range(0, 0)),
        ("last row".into(), Coords::range(n - 1, n - 1)),
        ("middle third".into(), Coords::range(n / 3, 2 * n / 3)),
        (
            "across a tile edge".into(),
            Coords::range((e - 3).max(0), e + 3),
        ),
        (
            "over two tile edges".into(),
            Coords::range(2 * e - 1, 3 * e + 1),
        ),
        (
            "several ranges".into(),
            Coords::ranges([(1, 3), (e, e + 1), (n - 5, n + 5)]),
        ),
        ("every 7th row".into(), Coords::points((0..n).step_by(7))),
        (
            "points around tile edges, some outside".into(),
            Coords::points([-3, e - 1, e, 2 * e - 1, 2 * e, n - 1, n, n + 100]),
        ),
        ("no points".into(), Coords::points([])),
    ];
    out.push(("one point".into(), Coords::points([n / 2])));
    out
}

fn dim0_extent(r: &SparseReader) -> i64 {
    r.dim0_tile_extent().unwrap_or(64)
}

/// The rows (canonical strings, in `names` order) of `batch`.
fn batch_rows(batch: &RecordBatch, names: &[String]) -> Vec<Vec<String>> {
    let cols: Vec<Vec<String>> = names
        .iter()
        .map(|n| canon_arrow(batch.column_by_name(n).unwrap()))
        .collect();
    (0..batch.num_rows())
        .map(|i| cols.iter().map(|c| c[i].clone()).collect())
        .collect()
}

/// Checks `batch` is sorted by its int64 dimensions.
fn assert_sorted(batch: &RecordBatch, dims: &[String], what: &str) {
    let keys: Vec<&[i64]> = dims
        .iter()
        .map(|d| {
            batch
                .column_by_name(d)
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .as_ref()
        })
        .collect();
    for i in 1..batch.num_rows() {
        let a: Vec<i64> = keys.iter().map(|k| k[i - 1]).collect();
        let b: Vec<i64> = keys.iter().map(|k| k[i]).collect();
        assert!(a <= b, "{what}: row {i} out of order: {a:?} then {b:?}");
    }
}

#[test]
fn range_reads_equal_the_slices_tiledbsoma_reads() {
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(fixtures()));
    let index = index();
    let mut arrays = 0;
    let mut compared = 0usize;
    for entry in index["objects"].as_array().unwrap() {
        if entry.get("file").is_none() {
            continue;
        }
        let path = entry["path"].as_str().unwrap();
        let SomaObject::Array(a) = open(Arc::clone(&storage), path).unwrap() else {
            panic!("{path} is not an array");
        };
        let mut ref_cols = reference(entry);
        ref_cols.retain(|k, _| !UNSUPPORTED.iter().any(|u| u.0 == path && u.1 == k));
        let dims: Vec<String> = a
            .tiledb()
            .schema()
            .dimensions
            .iter()
            .map(|d| d.name.clone())
            .collect();
        let names: Vec<String> = a
            .tiledb()
            .column_names()
            .into_iter()
            .filter(|c| ref_cols.contains_key(c))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let reader = a
            .reader(Some(&refs))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let want_cols: Vec<Vec<String>> = names.iter().map(|n| canon_json(&ref_cols[n])).collect();
        let d0 = json_i64s(&ref_cols[&dims[0]]);
        let n = a.shape()[0].map_or_else(|| d0.iter().max().map_or(0, |m| m + 1), |s| s as i64);
        let e = dim0_extent(&reader);
        for (what, coords) in selections(n, e) {
            let got = reader
                .read(&coords)
                .unwrap_or_else(|err| panic!("{path} {what}: {err}"));
            assert_eq!(got.schema(), reader.schema(), "{path} {what}: schema");
            assert_sorted(&got, &dims, &format!("{path} {what}"));
            let mut got_rows = batch_rows(&got, &names);
            let mut want_rows: Vec<Vec<String>> = (0..d0.len())
                .filter(|&i| coords.contains(d0[i]))
                .map(|i| want_cols.iter().map(|c| c[i].clone()).collect())
                .collect();
            got_rows.sort();
            want_rows.sort();
            assert_eq!(got_rows.len(), want_rows.len(), "{path} {what}: rows");
            assert_eq!(got_rows, want_rows, "{path} {what}");
            compared += got_rows.len();
        }
        // read_range with a wanted list: the points inside the range only.
        let wanted: Vec<i64> = (0..n).step_by(3).collect();
        let got = reader.read_range(e - 2, 2 * e + 2, Some(&wanted)).unwrap();
        let want = (0..d0.len())
            .filter(|&i| d0[i] % 3 == 0 && (e - 2..=2 * e + 2).contains(&d0[i]))
            .count();
        assert_eq!(got.num_rows(), want, "{path}: read_range with points");
        arrays += 1;
    }
    assert!(arrays >= 16, "only {arrays} arrays compared");
    assert!(compared > 100_000, "only {compared} rows compared");
}

#[test]
fn selective_reads_decode_only_intersecting_tiles() {
    let a = array("tiles/X");
    let reader = a.reader(None).unwrap();
    let total = total_sparse_tiles(&a);
    let all = reader.plan(&Coords::all()).tile_count() as u64;
    assert_eq!(all, total);
    let one = reader.plan(&Coords::range(40, 45));
    assert!(
        one.tile_count() > 0 && (one.tile_count() as u64) < total / 4,
        "{one:?}"
    );
    assert_eq!(reader.plan(&Coords::range(1000, 2000)).tile_count(), 0);
    let (_, stats) = reader.read_with_stats(&Coords::range(1000, 2000)).unwrap();
    assert_eq!((stats.tiles, stats.bytes), (0, 0));
}

#[test]
fn dataframes_stream_by_blocks_to_the_same_rows() {
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(fixtures()));
    for path in [
        "census/census_data/homo_sapiens/obs",
        "tiles/df",
        "experiment/obs",
    ] {
        let a = open(Arc::clone(&storage), path)
            .unwrap()
            .into_array()
            .unwrap();
        for coords in [
            Coords::all(),
            Coords::points((0..1000).step_by(5)),
            Coords::ranges([(3, 90), (150, 420)]),
        ] {
            let whole = a.read_coords(None, &coords).unwrap();
            let blocks: Vec<RecordBatch> = a
                .blocks(None, coords.clone(), 64)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(
                blocks.iter().all(|b| b.num_rows() > 0),
                "{path}: empty block"
            );
            let joined = arrow::compute::concat_batches(&whole.schema(), &blocks).unwrap();
            assert_eq!(joined, whole, "{path} {coords:?}");
        }
    }
}
