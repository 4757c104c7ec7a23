//! X streamed band by band equals what tiledbsoma reads back, for every two-dimensional
//! SparseNDArray of the fixtures, band sizes from 1 row to more than the array, whole
//! and partial cell selections, across fragments; and a band decodes exactly the data
//! tiles whose R-tree leaf intersects its selected rows, fetching only their bytes with
//! one coalesced request per file.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use atlasflow_soma::{
    Coords, CsrRows, Entry, LocalStorage, Result, SomaKind, SomaObject, Storage, XReader, open,
};
use common::{array, fixtures, index, json_f32, json_i64s, reference, total_sparse_tiles};

/// Per row: its (dim-1, value bits) pairs, sorted.
type Rows = BTreeMap<i64, Vec<(i64, u32)>>;

fn reference_rows(entry: &serde_json::Value) -> Rows {
    let cols = reference(entry);
    let d0 = json_i64s(&cols["soma_dim_0"]);
    let d1 = json_i64s(&cols["soma_dim_1"]);
    let v = cols["soma_data"]["values"].as_array().unwrap();
    let mut rows = Rows::new();
    for i in 0..d0.len() {
        rows.entry(d0[i])
            .or_default()
            .push((d1[i], json_f32(&v[i]).to_bits()));
    }
    for r in rows.values_mut() {
        r.sort_unstable();
    }
    rows
}

/// Checks one CSR batch is well formed and appends its rows to `out`.
fn collect(csr: &CsrRows, out: &mut Rows, what: &str) {
    assert_eq!(csr.indptr.len(), csr.n_rows() + 1, "{what}");
    assert_eq!(csr.var_joinids.len(), csr.nnz(), "{what}");
    assert_eq!(*csr.indptr.last().unwrap() as usize, csr.nnz(), "{what}");
    for (i, &row) in csr.obs_joinids.iter().enumerate() {
        let (a, b) = (csr.indptr[i] as usize, csr.indptr[i + 1] as usize);
        let cells: Vec<(i64, u32)> = (a..b)
            .map(|k| (i64::from(csr.var_joinids[k]), csr.values[k].to_bits()))
            .collect();
        assert!(
            cells.windows(2).all(|w| w[0].0 <= w[1].0),
            "{what}: row {row} unsorted"
        );
        let mut cells = cells;
        cells.sort_unstable();
        assert!(out.insert(row, cells).is_none(), "{what}: row {row} twice");
    }
}

#[test]
fn bands_equal_what_tiledbsoma_reads() {
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(fixtures()));
    let mut checked = 0;
    for entry in index()["objects"].as_array().unwrap() {
        if entry["soma_object_type"] != "SOMASparseNDArray" || entry.get("file").is_none() {
            continue;
        }
        let path = entry["path"].as_str().unwrap();
        let a = open(Arc::clone(&storage), path)
            .unwrap()
            .into_array()
            .unwrap();
        if a.tiledb().schema().dimensions.len() != 2 {
            continue;
        }
        let x = a.x_reader().unwrap();
        let want = reference_rows(entry);
        let n = a.shape()[0].unwrap() as i64;
        let selections = [
            ("all", Coords::all()),
            (
                "every 3rd and outside",
                Coords::points((-5..n + 5).step_by(3)),
            ),
            (
                "ranges",
                Coords::ranges([(0, 2), (n / 2, n / 2 + 40), (n - 3, n + 9)]),
            ),
            ("one", Coords::points([n - 1])),
            ("none", Coords::points([])),
        ];
        for band in [None, Some(1), Some(7), Some(32), Some(100), Some(n + 1000)] {
            for (what, cells) in &selections {
                let what = format!("{path} band {band:?} {what}");
                let mut got = Rows::new();
                let mut bands = 0;
                for csr in x.bands(cells.clone(), band) {
                    let csr = csr.unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert!(csr.n_rows() > 0, "{what}: an empty band was streamed");
                    let b = band.unwrap_or_else(|| x.default_band_rows());
                    let first = csr.obs_joinids[0].div_euclid(b);
                    assert!(
                        csr.obs_joinids.iter().all(|r| r.div_euclid(b) == first),
                        "{what}: rows of two bands in one batch"
                    );
                    collect(&csr, &mut got, &what);
                    bands += 1;
                }
                // Every selected row inside the shape appears, empty or not.
                let rows: Vec<i64> = (0..n).filter(|&r| cells.contains(r)).collect();
                assert_eq!(
                    got.keys().copied().collect::<Vec<_>>(),
                    rows,
                    "{what}: rows"
                );
                for r in rows {
                    let w = want.get(&r).cloned().unwrap_or_default();
                    assert_eq!(got[&r], w, "{what}: row {r}");
                }
                if let Some(b) = band {
                    assert!(bands <= (n / b + 1) as usize, "{what}: {bands} bands");
                }
            }
        }
        // All bands joined equal one read of every row.
        let all: Vec<i64> = (0..n).collect();
        let whole = x.read_rows(&all).unwrap();
        let mut from_bands = Rows::new();
        for csr in x.bands(Coords::all(), Some(13)) {
            collect(&csr.unwrap(), &mut from_bands, path);
        }
        let mut from_whole = Rows::new();
        collect(&whole, &mut from_whole, path);
        assert_eq!(from_bands, from_whole, "{path}");
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} arrays streamed");
}

#[test]
fn census_sized_bands_cross_fragments() {
    // bands/X: 5,000 rows, the Census's 2048-row tile extent, two fragments overlapping in
    // rows 2500..3000: the default band is the tile extent, three bands in all.
    let a = array("bands/X");
    assert_eq!(a.tiledb().fragments().len(), 2);
    let x = a.x_reader().unwrap();
    assert_eq!(x.default_band_rows(), 2048);
    let bands: Vec<CsrRows> = x.bands(Coords::all(), None).map(|b| b.unwrap()).collect();
    let firsts: Vec<i64> = bands.iter().map(|b| b.obs_joinids[0]).collect();
    assert_eq!(firsts, vec![0, 2048, 4096]);
    assert_eq!(bands.iter().map(CsrRows::n_rows).sum::<usize>(), 5000);
    let empty = bands
        .iter()
        .flat_map(|b| b.indptr.windows(2).filter(|w| w[0] == w[1]))
        .count();
    assert!(empty > 2000, "{empty} empty rows");
    // Each band decodes part of the tiles, and a tile straddling a band edge is decoded
    // once: the next band reuses it. Over all bands, every tile is decoded exactly once.
    let total = total_sparse_tiles(&a);
    assert!(bands.iter().all(|b| b.stats.tiles < total), "{total}");
    let decoded: u64 = bands.iter().map(|b| b.stats.tiles).sum();
    let reused: u64 = bands.iter().map(|b| b.stats.reused_tiles).sum();
    assert_eq!(decoded, total, "{reused} reused");
    assert!(reused > 0);
}

#[test]
fn rows_must_be_ascending() {
    let a = array("tiles/X");
    let err = a
        .x_reader()
        .unwrap()
        .read_rows(&[3, 2])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ascending") && err.contains("tiles/X"),
        "{err}"
    );
    let df = open(Arc::new(LocalStorage::new(fixtures())), "tiles/df")
        .unwrap()
        .into_array()
        .unwrap();
    assert_eq!(df.kind(), &SomaKind::DataFrame);
    assert!(df.x_reader().is_err());
}

/// One storage request: the file, the byte ranges, and whether the whole file was read.
#[derive(Debug, Clone)]
struct Request {
    path: String,
    ranges: Vec<Range<u64>>,
    whole: bool,
}

/// Local storage that logs every read.
#[derive(Debug)]
struct Logged {
    inner: LocalStorage,
    log: Mutex<Vec<Request>>,
}

impl Logged {
    fn take(&self) -> Vec<Request> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

impl Storage for Logged {
    fn list(&self, dir: &str) -> Result<Vec<Entry>> {
        self.inner.list(dir)
    }
    fn exists(&self, path: &str) -> Result<bool> {
        self.inner.exists(path)
    }
    fn size(&self, path: &str) -> Result<u64> {
        self.inner.size(path)
    }
    fn read(&self, path: &str) -> Result<Vec<u8>> {
        self.log.lock().unwrap().push(Request {
            path: path.into(),
            ranges: Vec::new(),
            whole: true,
        });
        self.inner.read(path)
    }
    fn read_range(&self, path: &str, range: Range<u64>) -> Result<Vec<u8>> {
        self.read_ranges(path, &[range]).map(|mut v| v.remove(0))
    }
    fn read_ranges(&self, path: &str, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>> {
        self.log.lock().unwrap().push(Request {
            path: path.into(),
            ranges: ranges.to_vec(),
            whole: false,
        });
        self.inner.read_ranges(path, ranges)
    }
    fn location(&self, path: &str) -> String {
        self.inner.location(path)
    }
}

fn is_data_file(path: &str) -> bool {
    path.contains("/__fragments/") && !path.ends_with("__fragment_metadata.tdb")
}

#[test]
fn a_band_decodes_only_the_tiles_that_intersect_it() {
    let logged = Arc::new(Logged {
        inner: LocalStorage::new(fixtures()),
        log: Mutex::new(Vec::new()),
    });
    let storage: Arc<dyn Storage> = Arc::clone(&logged) as Arc<dyn Storage>;
    let plain = LocalStorage::new(fixtures());
    for (path, band, cells) in [
        ("bands/X", None, Coords::all()),
        ("bands/X", None, Coords::points([5, 2047, 2048, 2600, 4999])),
        (
            "bands/X",
            Some(500),
            Coords::ranges([(0, 900), (2400, 3100)]),
        ),
        ("tiles/X", None, Coords::all()),
        (
            "tiles/X",
            Some(10),
            Coords::points([3, 4, 77, 78, 200, 299]),
        ),
        (
            "census/census_data/homo_sapiens/ms/RNA/X/raw",
            Some(64),
            Coords::all(),
        ),
        (
            "experiment/ms/RNA/X/data",
            Some(100),
            Coords::ranges([(10, 20), (500, 650)]),
        ),
    ] {
        let SomaObject::Array(a) = open(Arc::clone(&storage), path).unwrap() else {
            panic!("{path}");
        };
        let x: XReader = a.x_reader().unwrap();
        // The leaves of every fragment, read independently of the reader.
        let leaves: Vec<Vec<(i64, i64)>> = a
            .tiledb()
            .fragments()
            .iter()
            .map(|f| {
                f.rtree(&plain)
                    .unwrap()
                    .leaves()
                    .iter()
                    .map(|m| m[0].as_i64().unwrap())
                    .collect()
            })
            .collect();
        let total: usize = leaves.iter().map(Vec::len).sum();
        let capacity = a.tiledb().schema().capacity;
        logged.take();
        let mut n_bands = 0;
        for csr in x.bands(cells.clone(), band) {
            let requests = logged.take();
            let csr = csr.unwrap();
            let rows = Coords::points(csr.obs_joinids.iter().copied());
            let want: usize = leaves
                .iter()
                .flatten()
                .filter(|(lo, hi)| rows.intersects(*lo, *hi))
                .count();
            let what = format!("{path} band at row {}", csr.obs_joinids[0]);
            assert_eq!(
                (csr.stats.tiles + csr.stats.reused_tiles) as usize,
                want,
                "{what}: tiles decoded or reused"
            );
            assert!(
                want < total || total == 1,
                "{what}: a band decoded every tile"
            );
            assert!(
                csr.stats.cells <= (csr.stats.tiles + csr.stats.reused_tiles) * capacity,
                "{what}"
            );
            assert!(
                requests.iter().all(|r| !(r.whole && is_data_file(&r.path))),
                "{what}: a data file was read whole"
            );
            let data: Vec<&Request> = requests.iter().filter(|r| is_data_file(&r.path)).collect();
            let bytes: u64 = data
                .iter()
                .flat_map(|r| r.ranges.iter())
                .map(|r| r.end - r.start)
                .sum();
            assert_eq!(bytes, csr.stats.bytes, "{what}: bytes fetched");
            let mut files: Vec<&str> = data.iter().map(|r| r.path.as_str()).collect();
            let calls = files.len();
            files.sort_unstable();
            files.dedup();
            assert_eq!(calls, files.len(), "{what}: one request per data file");
            n_bands += 1;
        }
        assert!(n_bands > 1, "{path}: {n_bands} bands");
    }
}

#[test]
fn readers_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<XReader>();
    shared::<atlasflow_soma::SparseReader>();
    shared::<atlasflow_soma::Census>();
    // Two threads reading disjoint row ranges of one reader get what one read gets.
    let a = array("tiles/X");
    let x = a.x_reader().unwrap();
    let (lo, hi): (Vec<i64>, Vec<i64>) = ((0..150).collect(), (150..300).collect());
    let (r1, r2) = std::thread::scope(|s| {
        let t1 = s.spawn(|| x.read_rows(&lo).unwrap());
        let t2 = s.spawn(|| x.read_rows(&hi).unwrap());
        (t1.join().unwrap(), t2.join().unwrap())
    });
    let all: Vec<i64> = (0..300).collect();
    let whole = x.read_rows(&all).unwrap();
    let mut joined = Rows::new();
    collect(&r1, &mut joined, "first half");
    collect(&r2, &mut joined, "second half");
    let mut want = Rows::new();
    collect(&whole, &mut want, "whole");
    assert_eq!(joined, want);
}
