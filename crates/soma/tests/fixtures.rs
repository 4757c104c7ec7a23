//! Every SOMA object of the fixtures in `tests/data/soma` (written by real tiledbsoma
//! 2.3.0, `scripts/make_soma_fixtures.py`) decodes to exactly what tiledbsoma read back:
//! kinds, metadata, group members, and every column of every array (values, nulls,
//! strings, enumerations), compared as multisets of rows.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use atlasflow_soma::{LocalStorage, MetadataValue, SomaKind, SomaObject, Storage, open};
use common::{UNSUPPORTED, array, canon_arrow, canon_json, fixtures, index_at, reference_at};
use serde_json::Value;

/// The trees the comparison reads: `SOMA_FIXTURES` when set (trees from another
/// tiledbsoma version, dumped with `make_soma_fixtures.py --dump-only`), else the
/// checked-in fixtures.
fn compared_trees() -> (PathBuf, bool) {
    match std::env::var_os("SOMA_FIXTURES") {
        Some(dir) => (PathBuf::from(dir), false),
        None => (fixtures(), true),
    }
}

fn rows(columns: &[Vec<String>]) -> Vec<Vec<String>> {
    let n = columns.first().map_or(0, Vec::len);
    let mut rows: Vec<Vec<String>> = (0..n)
        .map(|i| columns.iter().map(|c| c[i].clone()).collect())
        .collect();
    rows.sort();
    rows
}

fn check_metadata(path: &str, obj: &SomaObject, expected: &serde_json::Map<String, Value>) {
    let got = obj.metadata();
    let mut got_keys: Vec<&String> = got.keys().collect();
    let mut want_keys: Vec<&String> = expected.keys().collect();
    got_keys.sort();
    want_keys.sort();
    assert_eq!(got_keys, want_keys, "{path}: metadata keys");
    for (k, want) in expected {
        let v = &got[k];
        let same = match (v, want) {
            (MetadataValue::String(s), Value::String(w)) => s == w,
            (MetadataValue::Int(_) | MetadataValue::UInt(_), Value::Number(n)) => {
                v.as_i64() == n.as_i64()
            }
            (MetadataValue::Float(_), Value::Number(n)) => v.as_f64() == n.as_f64(),
            _ => false,
        };
        assert!(same, "{path}: metadata {k}: {v:?} vs {want}");
    }
}

#[test]
fn every_fixture_object_reads_as_tiledbsoma_reads_it() {
    let (root, checked_in) = compared_trees();
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(&root));
    let index = index_at(&root);
    let objects = index["objects"].as_array().unwrap();
    let mut arrays = 0;
    let mut cells = 0;
    for entry in objects {
        let path = entry["path"].as_str().unwrap();
        let obj = open(Arc::clone(&storage), path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let kind = entry["soma_object_type"].as_str().unwrap();
        let want_kind = match kind {
            "SOMACollection" => SomaKind::Collection,
            "SOMAExperiment" => SomaKind::Experiment,
            "SOMAMeasurement" => SomaKind::Measurement,
            "SOMADataFrame" => SomaKind::DataFrame,
            "SOMASparseNDArray" => SomaKind::SparseNDArray,
            "SOMADenseNDArray" => SomaKind::DenseNDArray,
            other => panic!("{other}"),
        };
        assert_eq!(obj.kind(), &want_kind, "{path}");
        check_metadata(path, &obj, entry["metadata"].as_object().unwrap());
        match obj {
            SomaObject::Group(g) => {
                let want: Vec<&str> = entry["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                assert_eq!(g.member_names(), want, "{path}: members");
                for name in want {
                    g.member(name)
                        .unwrap_or_else(|e| panic!("{path}/{name}: {e}"));
                }
            }
            SomaObject::Array(a) => {
                if entry["file"].as_str().is_none() {
                    continue;
                }
                let mut ref_cols = reference_at(&root, entry);
                let skip: Vec<&str> = UNSUPPORTED
                    .iter()
                    .filter(|u| u.0 == path)
                    .map(|u| u.1)
                    .collect();
                ref_cols.retain(|k, _| !skip.contains(&k.as_str()));
                let all = a.tiledb().column_names();
                let wanted: Vec<&str> = all
                    .iter()
                    .map(String::as_str)
                    .filter(|c| !skip.contains(c))
                    .collect();
                let batch = a
                    .read(Some(&wanted))
                    .unwrap_or_else(|e| panic!("{path}: {e}"));
                let names: Vec<String> = batch
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                let mut want_names: Vec<String> = ref_cols.keys().cloned().collect();
                let mut got_names = names.clone();
                want_names.sort();
                got_names.sort();
                assert_eq!(got_names, want_names, "{path}: columns");
                let got: Vec<Vec<String>> = names
                    .iter()
                    .map(|n| canon_arrow(batch.column_by_name(n).unwrap()))
                    .collect();
                let want: Vec<Vec<String>> =
                    names.iter().map(|n| canon_json(&ref_cols[n])).collect();
                assert_eq!(
                    batch.num_rows() as u64,
                    entry["rows"].as_u64().unwrap(),
                    "{path}: rows"
                );
                let (got, want) = (rows(&got), rows(&want));
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(g, w, "{path}: sorted row {i} (columns {names:?})");
                }
                if let Some(shape) = entry.get("shape") {
                    let want: Vec<Option<u64>> = shape
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(Value::as_u64)
                        .collect();
                    assert_eq!(a.shape(), want, "{path}: shape");
                }
                arrays += 1;
                cells += batch.num_rows();
            }
        }
    }
    if checked_in {
        assert!(arrays >= 16, "only {arrays} arrays checked");
        assert!(cells > 70_000, "only {cells} cells checked");
    }
}

#[test]
fn unsupported_filters_fail_naming_the_filter_and_the_file() {
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(fixtures()));
    for (path, column, filter) in UNSUPPORTED {
        let a = open(Arc::clone(&storage), path)
            .unwrap()
            .into_array()
            .unwrap();
        let err = a.read(Some(&[column])).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, atlasflow_soma::SomaError::UnsupportedFilter { .. }),
            "{msg}"
        );
        assert!(
            msg.contains(filter) && msg.contains(".tdb") && msg.contains(path),
            "{msg}"
        );
    }
}

fn pipelines(a: &atlasflow_soma::SomaArray) -> Vec<String> {
    let s = a.tiledb().schema();
    let mut out: Vec<String> = s.attributes.iter().map(|x| x.filters.describe()).collect();
    out.extend(s.dimensions.iter().map(|x| x.filters.describe()));
    out.push(s.offsets_filters.describe());
    out.push(s.validity_filters.describe());
    out
}

/// The fixtures really exercise the paths the comparison above claims to cover.
#[test]
fn fixtures_exercise_the_format_paths() {
    // Census X/raw: three fragments, footers from consolidated fragment metadata.
    let raw = array("census/census_data/homo_sapiens/ms/RNA/X/raw");
    let frags = raw.tiledb().fragments();
    assert_eq!(frags.len(), 3);
    assert!(frags.iter().all(|f| f.footer_from_consolidated));
    assert_eq!(raw.shape(), vec![Some(800), Some(200)]);
    assert!(pipelines(&raw).contains(&"BYTESHUFFLE+ZSTD(9)".to_string()));
    // X/normalized: one fragment-consolidated fragment with per-cell timestamps.
    let norm = array("census/census_data/homo_sapiens/ms/RNA/X/normalized");
    assert_eq!(norm.tiledb().fragments().len(), 1);
    assert!(norm.tiledb().fragments()[0].footer.has_timestamps);
    // Census obs: dictionary-encoded strings, double delta, nulls.
    let obs = array("census/census_data/homo_sapiens/obs");
    let p = pipelines(&obs);
    assert!(p.contains(&"DICTIONARY+ZSTD(19)".to_string()), "{p:?}");
    assert!(p.contains(&"DOUBLE_DELTA+ZSTD(19)".to_string()), "{p:?}");
    // from_anndata obs: enumerations, and the default offsets pipeline.
    let eobs = array("experiment/obs");
    let s = eobs.tiledb().schema();
    assert!(
        s.attributes
            .iter()
            .filter(|a| a.enumeration.is_some())
            .count()
            >= 2
    );
    assert!(pipelines(&eobs).contains(&"DOUBLE_DELTA+BIT_WIDTH_REDUCTION+ZSTD(-1)".to_string()));
    // from_anndata X: a data tile larger than a filter chunk (several chunks per tile).
    let x = array("experiment/ms/RNA/X/data");
    let f = &x.tiledb().fragments()[0];
    assert!(f.cell_count() * 4 > u64::from(f.schema.attributes[0].filters.max_chunk_size));
    // tiles/X: many tiles per fragment, a multi-level R-tree with one leaf per tile.
    let t = array("tiles/X");
    let storage = LocalStorage::new(fixtures());
    for f in t.tiledb().fragments() {
        assert!(f.footer.sparse_tile_num > 5);
        let rtree = f.rtree(&storage).unwrap();
        assert!(rtree.levels.len() >= 2);
        assert_eq!(rtree.leaves().len() as u64, f.footer.sparse_tile_num);
        let offsets = f
            .tile_offsets(&storage, atlasflow_soma::fragment::Field::Attribute(0))
            .unwrap();
        assert_eq!(offsets.len() as u64, f.footer.sparse_tile_num);
    }
    // tiles/df: schema evolution; the older fragment was written with the older schema.
    let df = array("tiles/df");
    let frags = df.tiledb().fragments();
    assert_eq!(frags.len(), 2);
    assert_ne!(frags[0].schema.name, frags[1].schema.name);
    assert!(frags[0].schema.attribute("extra").is_none());
    assert!(df.tiledb().schema().attribute("extra").is_some());
    assert!(!df.tiledb().schema().allows_duplicates);
    // Arrays without duplicates over overlapping writes: the newest-wins merge runs.
    let ow = array("tiles/overwrite");
    assert_eq!(ow.tiledb().fragments().len(), 3);
    assert!(ow.tiledb().needs_newest_wins());
    let owc = array("tiles/overwrite_consolidated");
    let f = &owc.tiledb().fragments()[0];
    assert!(f.footer.has_timestamps && owc.tiledb().needs_newest_wins());
    let rows = owc.read(None).unwrap().num_rows() as u64;
    assert!(
        f.cell_count() > rows,
        "the consolidated fragment keeps older versions of cells"
    );
    assert!(array("experiment/obs").tiledb().needs_newest_wins());
    // filters/df: the further filters, each on real TileDB output.
    let p = pipelines(&array("filters/df"));
    for want in [
        "GZIP(-1)",
        "LZ4(-1)",
        "DELTA+ZSTD(9)",
        "POSITIVE_DELTA",
        "BIT_WIDTH_REDUCTION",
        "BIT_WIDTH_REDUCTION+LZ4(-1)",
        "RLE",
        "CHECKSUM_MD5+CHECKSUM_SHA256+ZSTD(9)",
        "POSITIVE_DELTA+BIT_WIDTH_REDUCTION+LZ4(-1)",
        "GZIP(1)",
    ] {
        assert!(p.contains(&want.to_string()), "{want} not in {p:?}");
    }
}
