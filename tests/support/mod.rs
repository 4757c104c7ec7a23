//! Helpers of the per-stage comparisons with scanpy: read `expected.h5` (written by
//! `scripts/reference.py`), cut a matrix into cell batches, run map and fit stages the way
//! the engine does (one state per granule, merged in order), and compare numbers.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::datatypes::{DataType, Float64Type};
use atlasflow_core::batch::CELL_ID;
use atlasflow_core::{CellBatch, Csr, FitStage, Fitted, GeneTable, MapStage, XView};

/// Copy the directory tree `from` to `to` (for tests that damage a copy of a fixture).
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_tree(&src, &dst)
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// `tests/data/<name>` of the repository.
pub fn data_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data").join(name)
}

/// scanpy's outputs for one dataset.
pub struct Expected {
    file: hdf5::File,
    /// Dataset name, for messages.
    pub name: String,
}

/// A CSR matrix of expected.h5: the stream's f32 values and scanpy's f64 values.
pub struct ExpCsr {
    /// The matrix with values rounded to f32 (what our stream holds).
    pub csr: Csr,
    /// scanpy's values, in the same order as `csr.values`.
    pub values: Vec<f64>,
    /// Number of rows.
    pub n_rows: usize,
}

impl Expected {
    /// Open `tests/data/<name>/expected.h5`.
    pub fn open(name: &str) -> Self {
        Self::open_path(&data_dir(name).join("expected.h5"))
    }

    /// Open any HDF5 file (e.g. an h5ad atlasflow wrote) with the same readers.
    pub fn open_path(path: &std::path::Path) -> Self {
        let file = hdf5::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Expected { file, name: path.display().to_string() }
    }

    fn ds(&self, path: &str) -> hdf5::Dataset {
        self.file.dataset(path).unwrap_or_else(|e| panic!("{}: {path}: {e}", self.name))
    }

    /// Whether `path` (a dataset or group) exists.
    pub fn has(&self, path: &str) -> bool {
        self.file.dataset(path).is_ok() || self.file.group(path).is_ok()
    }

    /// A numeric dataset as f64 (any stored float or integer type).
    pub fn f64s(&self, path: &str) -> Vec<f64> {
        self.ds(path).read_raw::<f64>().unwrap_or_else(|e| panic!("{}: {path}: {e}", self.name))
    }

    /// An integer dataset as i64.
    pub fn i64s(&self, path: &str) -> Vec<i64> {
        self.ds(path).read_raw::<i64>().unwrap_or_else(|e| panic!("{}: {path}: {e}", self.name))
    }

    /// A boolean dataset (h5py's enum of int8).
    pub fn bools(&self, path: &str) -> Vec<bool> {
        self.ds(path).read_raw::<bool>().unwrap_or_else(|e| panic!("{}: {path}: {e}", self.name))
    }

    /// A UTF-8 string dataset, or an anndata categorical group (codes → categories).
    pub fn strings(&self, path: &str) -> Vec<String> {
        if let Ok(g) = self.file.group(path) {
            let cats = self.strings(&format!("{path}/categories"));
            let codes = self.i64s(&format!("{path}/codes"));
            let _ = g;
            return codes.into_iter().map(|c| if c < 0 { String::new() } else { cats[c as usize].clone() }).collect();
        }
        self.ds(path)
            .read_raw::<hdf5::types::VarLenUnicode>()
            .unwrap_or_else(|e| panic!("{}: {path}: {e}", self.name))
            .into_iter()
            .map(|s| s.as_str().to_string())
            .collect()
    }

    /// The shape of a dataset.
    pub fn shape(&self, path: &str) -> Vec<usize> {
        self.ds(path).shape()
    }

    /// A CSR group `{data, indices, indptr}` with its `shape` attribute.
    pub fn csr(&self, path: &str) -> ExpCsr {
        let values = self.f64s(&format!("{path}/data"));
        let indices: Vec<u32> = self.i64s(&format!("{path}/indices")).into_iter().map(|j| j as u32).collect();
        let indptr: Vec<i32> = self.i64s(&format!("{path}/indptr")).into_iter().map(|p| p as i32).collect();
        let g = self.file.group(path).unwrap();
        let shape = g.attr("shape").unwrap().read_raw::<i64>().unwrap();
        let csr = Csr { indptr, indices, values: values.iter().map(|&v| v as f32).collect(), n_cols: shape[1] as usize };
        ExpCsr { csr, values, n_rows: shape[0] as usize }
    }
}

/// Rows `a..b` of a CSR, offsets from 0.
pub fn csr_rows(m: &Csr, a: usize, b: usize) -> Csr {
    let v = m.view();
    atlasflow_core::CsrView { indptr: &v.indptr[a..=b], ..v }.to_owned()
}

/// The columns `keep` of a CSR (indices remapped), like scanpy's `adata[:, mask]`.
pub fn csr_cols(m: &Csr, keep: &[bool]) -> Csr {
    let remap = atlasflow_core::genes::gene_remap(keep);
    let mut out = Csr::empty(keep.iter().filter(|&&k| k).count());
    let v = m.view();
    for r in 0..v.n_rows() {
        let (idx, val) = v.row(r);
        let (mut i2, mut v2) = (Vec::new(), Vec::new());
        for (&j, &x) in idx.iter().zip(val) {
            if let Some(nj) = remap[j as usize] {
                i2.push(nj);
                v2.push(x);
            }
        }
        out.push_row(&i2, &v2);
    }
    out
}

/// The stream of a CSR in batches of `granule` cells, with `cell_id` from `names`.
pub fn batches_from_csr(m: &Csr, names: &[String], granule: usize) -> Vec<CellBatch> {
    let n = m.indptr.len() - 1;
    assert_eq!(names.len(), n, "one name per cell");
    (0..n)
        .step_by(granule.max(1))
        .map(|a| {
            let b = (a + granule).min(n);
            let ids: ArrayRef = Arc::new(StringArray::from(names[a..b].to_vec()));
            CellBatch::from_csr(vec![(CELL_ID.to_string(), ids)], csr_rows(m, a, b)).unwrap()
        })
        .collect()
}

/// The stream of dense row-major f32 data in batches of `granule` cells.
pub fn batches_from_dense(data: &[f32], n_cols: usize, names: &[String], granule: usize) -> Vec<CellBatch> {
    let n = names.len();
    (0..n)
        .step_by(granule.max(1))
        .map(|a| {
            let b = (a + granule).min(n);
            let ids: ArrayRef = Arc::new(StringArray::from(names[a..b].to_vec()));
            CellBatch::from_dense(vec![(CELL_ID.to_string(), ids)], data[a * n_cols..b * n_cols].to_vec(), n_cols).unwrap()
        })
        .collect()
}

/// Apply a map to every batch, in order.
pub fn run_map(stage: &dyn MapStage, batches: &[CellBatch]) -> Vec<CellBatch> {
    batches.iter().map(|b| stage.map(b.clone()).unwrap()).collect()
}

/// Run a fit as the engine does: one state per batch (granule), merged in order, finished;
/// on `Refit`, another pass with the new fit. Returns the finished map.
pub fn run_fit(stage: Arc<dyn FitStage>, genes: &GeneTable, batches: &[CellBatch]) -> Arc<dyn MapStage> {
    let mut stage = stage;
    for _ in 0..8 {
        let mut merged = stage.new_state(genes).unwrap();
        for (i, b) in batches.iter().enumerate() {
            let mut s = stage.new_state(genes).unwrap();
            s.fold(b).unwrap();
            if i == 0 {
                merged = s;
            } else {
                merged.merge(s).unwrap();
            }
        }
        match stage.finish(merged, genes).unwrap() {
            Fitted::Map(m) => return m,
            Fitted::Refit(next) => stage = next,
        }
    }
    panic!("fit asked for more than 8 passes");
}

/// Like [`run_fit`] but returning finish's error instead of panicking on it.
pub fn try_fit(stage: Arc<dyn FitStage>, genes: &GeneTable, batches: &[CellBatch]) -> Result<Arc<dyn MapStage>, String> {
    let mut merged = stage.new_state(genes).map_err(|e| e.to_string())?;
    for (i, b) in batches.iter().enumerate() {
        let mut s = stage.new_state(genes).map_err(|e| e.to_string())?;
        s.fold(b).map_err(|e| e.to_string())?;
        if i == 0 {
            merged = s;
        } else {
            merged.merge(s).map_err(|e| e.to_string())?;
        }
    }
    match stage.finish(merged, genes).map_err(|e| e.to_string())? {
        Fitted::Map(m) => Ok(m),
        Fitted::Refit(_) => Err("unexpected refit".into()),
    }
}

/// The X of a stream of sparse batches as one CSR.
pub fn concat_csr(batches: &[CellBatch]) -> Csr {
    let n_cols = batches.first().map_or(0, |b| b.n_genes());
    let mut out = Csr::empty(n_cols);
    for b in batches {
        match b.x().unwrap() {
            XView::Csr(v) => {
                for r in 0..v.n_rows() {
                    let (i, x) = v.row(r);
                    out.push_row(i, x);
                }
            }
            XView::Dense { .. } => panic!("expected sparse X"),
        }
    }
    out
}

/// The X of a stream of dense batches, row-major.
pub fn concat_dense(batches: &[CellBatch]) -> (Vec<f32>, usize) {
    let mut out = Vec::new();
    let mut w = 0;
    for b in batches {
        match b.x().unwrap() {
            XView::Dense { data, n_cols } => {
                out.extend_from_slice(data);
                w = n_cols;
            }
            XView::Csr(_) => panic!("expected dense X"),
        }
    }
    (out, w)
}

/// An obs column of a stream, cast to f64.
pub fn obs_f64(batches: &[CellBatch], name: &str) -> Vec<f64> {
    let mut out = Vec::new();
    for b in batches {
        let c = b.obs_column(name).unwrap_or_else(|| panic!("no obs column {name}"));
        let c = arrow::compute::cast(c, &DataType::Float64).unwrap();
        let a = c.as_primitive::<Float64Type>();
        out.extend((0..a.len()).map(|i| if a.is_null(i) { f64::NAN } else { a.value(i) }));
    }
    out
}

/// The `cell_id` column of a stream.
pub fn obs_names(batches: &[CellBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let c = b.obs_column(CELL_ID).unwrap().as_string::<i32>();
        out.extend(c.iter().map(|s| s.unwrap_or_default().to_string()));
    }
    out
}

/// A var column as f64 (bool as 0/1).
pub fn var_f64(genes: &GeneTable, name: &str) -> Vec<f64> {
    let c = genes.column(name).unwrap_or_else(|| panic!("no var column {name}"));
    if c.data_type() == &DataType::Boolean {
        return c.as_boolean().iter().map(|b| if b.unwrap_or(false) { 1.0 } else { 0.0 }).collect();
    }
    genes.f64_column(name).unwrap().unwrap()
}

/// A boolean var column.
pub fn var_bool(genes: &GeneTable, name: &str) -> Vec<bool> {
    let c = genes.column(name).unwrap_or_else(|| panic!("no var column {name}"));
    c.as_boolean().iter().map(|b| b.unwrap_or(false)).collect()
}

/// The var index.
pub fn var_names(genes: &GeneTable) -> Vec<String> {
    genes.names().iter().map(|s| s.unwrap_or_default().to_string()).collect()
}

/// Largest |got − want| / |want| (NaN in both places agree; NaN in one is infinite error),
/// with the index where it occurs. `want == 0` requires `got == 0`.
pub fn max_rel(got: &[f64], want: &[f64]) -> (f64, usize) {
    assert_eq!(got.len(), want.len(), "lengths differ");
    let mut worst = (0.0, 0);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let e = if g.is_nan() && w.is_nan() || g == w {
            0.0
        } else if g.is_nan() || w.is_nan() {
            f64::INFINITY
        } else {
            (g - w).abs() / w.abs()
        };
        if e > worst.0 || e.is_nan() {
            worst = (e, i);
        }
    }
    worst
}

/// Largest |got − want| (NaN in both places agree), with its index.
pub fn max_abs(got: &[f64], want: &[f64]) -> (f64, usize) {
    assert_eq!(got.len(), want.len(), "lengths differ");
    let mut worst = (0.0, 0);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let e = if g.is_nan() && w.is_nan() || g == w {
            0.0
        } else if g.is_nan() || w.is_nan() {
            f64::INFINITY
        } else {
            (g - w).abs()
        };
        if e > worst.0 {
            worst = (e, i);
        }
    }
    worst
}

/// Assert max relative error ≤ `tol`, naming what was compared.
pub fn assert_rel(what: &str, got: &[f64], want: &[f64], tol: f64) {
    let (e, i) = max_rel(got, want);
    eprintln!("{what}: max rel error {e:.3e} (tol {tol:.0e})");
    assert!(e <= tol, "{what}: max rel error {e:.3e} > {tol:.0e} at {i}: got {} want {}", got[i], want[i]);
}

/// Assert max absolute error ≤ `tol`, naming what was compared.
pub fn assert_abs(what: &str, got: &[f64], want: &[f64], tol: f64) {
    let (e, i) = max_abs(got, want);
    eprintln!("{what}: max abs error {e:.3e} (tol {tol:.0e})");
    assert!(e <= tol, "{what}: max abs error {e:.3e} > {tol:.0e} at {i}: got {} want {}", got[i], want[i]);
}

/// Assert that two CSR matrices have the same structure; returns our values as f64.
pub fn same_structure(what: &str, got: &Csr, want: &ExpCsr) -> Vec<f64> {
    assert_eq!(got.indptr, want.csr.indptr, "{what}: indptr differs");
    assert_eq!(got.indices, want.csr.indices, "{what}: indices differ");
    assert_eq!(got.n_cols, want.csr.n_cols, "{what}: number of genes differs");
    got.values.iter().map(|&v| f64::from(v)).collect()
}

/// Column `k` of a row-major matrix of width `w`, to compare embeddings and loadings one
/// component at a time (their signs are arbitrary, so components are compared by
/// correlation rather than value by value).
pub fn column(m: &[f64], w: usize, k: usize) -> Vec<f64> {
    m.chunks_exact(w).map(|r| r[k]).collect()
}

/// Pearson correlation of two equally long vectors: how closely one PCA component matches
/// scanpy's up to sign and scale (NaN when either is constant).
pub fn corr(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    sab / (saa * sbb).sqrt()
}

/// Trustworthiness of an embedding (scikit-learn's `trustworthiness`, k neighbours): how
/// far the embedding's nearest neighbours are from being the data's. Exact, O(n²).
pub fn trustworthiness(x: &[f64], dx: usize, y: &[f64], dy: usize, k: usize) -> f64 {
    let n = x.len() / dx;
    let dist = |v: &[f64], d: usize, i: usize, j: usize| -> f64 { (0..d).map(|c| (v[i * d + c] - v[j * d + c]).powi(2)).sum() };
    let mut t = 0.0;
    for i in 0..n {
        let mut by_x: Vec<usize> = (0..n).filter(|&j| j != i).collect();
        by_x.sort_by(|&a, &b| dist(x, dx, i, a).total_cmp(&dist(x, dx, i, b)).then(a.cmp(&b)));
        let mut rank = vec![0usize; n];
        for (r, &j) in by_x.iter().enumerate() {
            rank[j] = r + 1;
        }
        let mut by_y: Vec<usize> = (0..n).filter(|&j| j != i).collect();
        by_y.sort_by(|&a, &b| dist(y, dy, i, a).total_cmp(&dist(y, dy, i, b)).then(a.cmp(&b)));
        for &j in &by_y[..k] {
            t += (rank[j] as f64 - k as f64).max(0.0);
        }
    }
    let (n, k) = (n as f64, k as f64);
    1.0 - t * 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))
}

/// Adjusted Rand index of two labelings.
pub fn ari(a: &[String], b: &[String]) -> f64 {
    use std::collections::HashMap;
    let mut pairs: HashMap<(&str, &str), f64> = HashMap::new();
    let mut ca: HashMap<&str, f64> = HashMap::new();
    let mut cb: HashMap<&str, f64> = HashMap::new();
    for (x, y) in a.iter().zip(b) {
        *pairs.entry((x, y)).or_default() += 1.0;
        *ca.entry(x).or_default() += 1.0;
        *cb.entry(y).or_default() += 1.0;
    }
    let c2 = |v: f64| v * (v - 1.0) / 2.0;
    let index: f64 = pairs.values().map(|&v| c2(v)).sum();
    let (sa, sb): (f64, f64) = (ca.values().map(|&v| c2(v)).sum(), cb.values().map(|&v| c2(v)).sum());
    let expected = sa * sb / c2(a.len() as f64);
    let max = (sa + sb) / 2.0;
    if max == expected { 1.0 } else { (index - expected) / (max - expected) }
}

/// Newman modularity (resolution 1) of a labelling on a weighted symmetric graph.
pub fn modularity(g: &Csr, values: &[f64], labels: &[String]) -> f64 {
    use std::collections::HashMap;
    let n = g.indptr.len() - 1;
    let mut degree = vec![0.0; n];
    let mut inside = 0.0;
    let mut total = 0.0;
    for r in 0..n {
        for p in g.indptr[r] as usize..g.indptr[r + 1] as usize {
            let w = values[p];
            degree[r] += w;
            total += w;
            if labels[g.indices[p] as usize] == labels[r] {
                inside += w;
            }
        }
    }
    let mut by_label: HashMap<&str, f64> = HashMap::new();
    for (r, d) in degree.iter().enumerate() {
        *by_label.entry(labels[r].as_str()).or_default() += d;
    }
    inside / total - by_label.values().map(|d| (d / total).powi(2)).sum::<f64>()
}
