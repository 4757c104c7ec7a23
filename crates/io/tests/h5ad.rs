//! h5ad reader and writer: round trips, real files, anndata reading our output, bad input.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, DictionaryArray, FixedSizeListArray, Float32Array, Float64Array,
    Int32Array, Int64Array, StringArray,
};
use arrow::datatypes::{DataType, Field, Int32Type};
use atlasflow_core::batch::CELL_ID;
use atlasflow_core::{CellBatch, Csr, GeneTable, Uns, XView};
use atlasflow_io::h5ad::encoding;
use atlasflow_io::{H5adReader, H5adWriter, XKind};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data")
}

const ZIEGENHAIN: &str = "ziegenhain2017_smartseq2_78cells.h5ad";
const PBMC: &str = "scanpy_pbmc68k_reduced_recovered_counts_700cells.h5ad";

fn dense(b: &CellBatch) -> Vec<Vec<f32>> {
    match b.x().expect("x") {
        XView::Csr(c) => c.to_owned().to_dense(),
        XView::Dense { data, n_cols } => data.chunks(n_cols.max(1)).map(<[f32]>::to_vec).collect(),
    }
}

fn strings(a: &ArrayRef) -> Vec<Option<String>> {
    let s = arrow::compute::cast(a, &DataType::Utf8).expect("cast to utf8");
    s.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect()
}

fn obs<'a>(b: &'a CellBatch, name: &str) -> &'a ArrayRef {
    b.obs_column(name).unwrap_or_else(|| panic!("obs column {name}"))
}

fn expected_x() -> Vec<Vec<f32>> {
    (0..9)
        .map(|i| {
            let mut row = vec![0.0f32; 5];
            row[i % 5] = (i + 1) as f32;
            row[(i + 2) % 5] += 0.5;
            row
        })
        .collect()
}

fn sample_genes() -> GeneTable {
    let g = GeneTable::from_names((0..5).map(|j| format!("g{j}")).collect());
    let g = g.with_column("means", Arc::new(Float64Array::from_iter_values((0..5).map(|j| j as f64 + 0.5)))).expect("means");
    let g = g.with_column("feature_length", Arc::new(Int64Array::from_iter_values((0..5).map(|j| 1000 + 100 * j)))).expect("len");
    let g = g.with_column("highly_variable", Arc::new(BooleanArray::from((0..5).map(|j| j % 2 == 1).collect::<Vec<_>>()))).expect("hv");
    let pcs = FixedSizeListArray::try_new(
        Arc::new(Field::new("item", DataType::Float32, false)),
        3,
        Arc::new(Float32Array::from_iter_values((0..15).map(|v| v as f32))),
        None,
    )
    .expect("pcs");
    g.with_column("varm/PCs", Arc::new(pcs)).expect("varm")
}

/// 9 cells in batches of 4, 0 and 5; see check_h5ad.py for the values.
fn sample_batches() -> Vec<CellBatch> {
    let types = ["T", "B", "T", "B", "NK", "B", "T", "NK", "NK"];
    let rows = expected_x();
    let mut out = Vec::new();
    for (lo, hi, dict) in [(0usize, 4usize, vec!["T", "B"]), (4, 4, vec!["T", "B"]), (4, 9, vec!["NK", "B", "T"])] {
        let ids: ArrayRef = Arc::new(StringArray::from_iter_values((lo..hi).map(|i| format!("cell{i}"))));
        let keys = Int32Array::from_iter_values(
            (lo..hi).map(|i| dict.iter().position(|d| *d == types[i]).expect("in dict") as i32),
        );
        let ct: ArrayRef =
            Arc::new(DictionaryArray::<Int32Type>::try_new(keys, Arc::new(StringArray::from(dict.clone()))).expect("dict"));
        let donor: ArrayRef = Arc::new(StringArray::from_iter_values((lo..hi).map(|i| format!("d{i}"))));
        let score: ArrayRef = Arc::new(Float32Array::from_iter_values((lo..hi).map(|i| i as f32 * 0.25)));
        let count: ArrayRef = Arc::new(Int64Array::from_iter_values((lo..hi).map(|i| i as i64 * 10)));
        let flag: ArrayRef = Arc::new(BooleanArray::from((lo..hi).map(|i| i % 2 == 1).collect::<Vec<_>>()));
        let maybe: ArrayRef = Arc::new(Int32Array::from((lo..hi).map(|i| (i != 2).then_some(i as i32)).collect::<Vec<_>>()));
        let x = Csr::from_dense(&rows[lo..hi]);
        let x = if lo == hi { Csr::empty(5) } else { x };
        let b = CellBatch::from_csr(
            vec![
                (CELL_ID.into(), ids),
                ("cell_type".into(), ct),
                ("donor".into(), donor),
                ("score".into(), score),
                ("count".into(), count),
                ("flag".into(), flag),
                ("maybe".into(), maybe),
            ],
            x,
        )
        .expect("batch");
        let pca: Vec<f32> = (lo..hi).flat_map(|i| [i as f32, -(i as f32)]).collect();
        out.push(b.with_obsm("X_pca", pca, 2).expect("obsm"));
    }
    out
}

fn sample_uns() -> Uns {
    Uns::map()
        .with("hvg", Uns::map().with("flavor", Uns::Str("seurat".into())))
        .with("log1p", Uns::map().with("base", Uns::Null))
        .with("names", Uns::StrArray(vec!["a".into(), "b".into()]))
        .with(
            "pca",
            Uns::map()
                .with("params", Uns::map().with("n_comps", Uns::Int(2)).with("zero_center", Uns::Bool(true)))
                .with("variance_ratio", Uns::FloatArray(vec![0.6, 0.3])),
        )
        .with("pi", Uns::Float(3.25))
}

/// Sort map keys recursively (the reader returns HDF5's name order).
fn sorted(u: &Uns) -> Uns {
    match u {
        Uns::Map(e) => {
            let mut e: Vec<(String, Uns)> = e.iter().map(|(k, v)| (k.clone(), sorted(v))).collect();
            e.sort_by(|a, b| a.0.cmp(&b.0));
            Uns::Map(e)
        }
        other => other.clone(),
    }
}

/// Child processes inherit HDF5's file descriptors (opened without close-on-exec) and
/// with them the file locks of files other tests are writing at that moment: tests that
/// spawn python and tests that reopen their files read-write take turns.
static SPAWN_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn write_sample(path: &Path, kind: XKind) {
    write_sample_with(path, kind, None);
}

fn write_sample_with(path: &Path, kind: XKind, int32_limit: Option<usize>) {
    let mut w = H5adWriter::create(path, &sample_genes(), kind).expect("create");
    if let Some(l) = int32_limit {
        w.set_int32_limit_for_tests(l);
    }
    for b in sample_batches() {
        w.write_batch(&b).expect("write batch");
    }
    w.finish(&sample_uns()).expect("finish");
}

fn check_sample(path: &Path) {
    let r = H5adReader::open(path).expect("open");
    assert_eq!((r.n_obs(), r.n_vars()), (9, 5));
    let b = r.read_cells(0, 9).expect("read");
    assert_eq!(dense(&b), expected_x());
    assert_eq!(strings(obs(&b, CELL_ID)), (0..9).map(|i| Some(format!("cell{i}"))).collect::<Vec<_>>());
    let ct = obs(&b, "cell_type");
    assert!(matches!(ct.data_type(), DataType::Dictionary(_, _)), "{}", ct.data_type());
    let dict = ct.as_any_dictionary_opt().expect("dict");
    assert_eq!(strings(dict.values()), vec![Some("T".into()), Some("B".into()), Some("NK".into())]);
    assert_eq!(
        strings(ct).into_iter().flatten().collect::<Vec<_>>(),
        ["T", "B", "T", "B", "NK", "B", "T", "NK", "NK"]
    );
    assert_eq!(strings(obs(&b, "donor"))[4].as_deref(), Some("d4"));
    assert_eq!(obs(&b, "score").as_primitive::<arrow::datatypes::Float32Type>().value(3), 0.75);
    assert_eq!(obs(&b, "count").as_primitive::<arrow::datatypes::Int64Type>().value(8), 80);
    let flag = obs(&b, "flag").as_boolean();
    assert!(flag.value(1) && !flag.value(0));
    let maybe = obs(&b, "maybe").as_primitive::<Int32Type>();
    assert!(maybe.is_null(2) && maybe.value(3) == 3 && maybe.null_count() == 1);
    assert_eq!(b.obsm("X_pca").map(|(d, w)| (d[..4].to_vec(), w)), Some((vec![0.0, -0.0, 1.0, -1.0], 2)));
    assert_eq!(r.obsm_keys(), vec![("X_pca".to_string(), 2)]);

    let g = r.genes();
    assert_eq!(g.n_genes(), 5);
    assert_eq!(g.name(3), "g3");
    assert_eq!(g.f64_column("means").expect("means"), Some(vec![0.5, 1.5, 2.5, 3.5, 4.5]));
    assert_eq!(g.column("feature_length").map(|c| c.data_type().clone()), Some(DataType::Int64));
    assert_eq!(g.f64_column("feature_length").expect("len"), Some(vec![1000.0, 1100.0, 1200.0, 1300.0, 1400.0]));
    assert!(g.column("highly_variable").expect("hv").as_boolean().value(1));
    let pcs = g.column("varm/PCs").expect("varm").as_fixed_size_list();
    assert_eq!(pcs.value_length(), 3);
    assert_eq!(pcs.value(4).as_primitive::<arrow::datatypes::Float32Type>().values().to_vec(), vec![12.0, 13.0, 14.0]);
    assert_eq!(r.uns().expect("uns"), sorted(&sample_uns()));
}

#[test]
fn round_trip_csr() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("out.h5ad");
    write_sample(&path, XKind::Csr);
    let r = H5adReader::open(&path).expect("open");
    assert_eq!(r.x_encoding(), "csr_matrix");
    assert_eq!(r.row_nnz(0, 9).expect("nnz"), vec![2; 9]);
    check_sample(&path);
    // Nothing but the output is left in the directory.
    let names: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("out.h5ad")]);
}

#[test]
fn round_trip_dense() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("dense.h5ad");
    write_sample(&path, XKind::Dense);
    let r = H5adReader::open(&path).expect("open");
    assert_eq!(r.x_encoding(), "array");
    check_sample(&path);
    // Blocks of a dense file agree with the whole.
    let parts: Vec<CellBatch> = (0..9).step_by(2).map(|s| r.read_cells(s, (s + 2).min(9)).expect("block")).collect();
    assert_eq!(dense(&CellBatch::concat(&parts).expect("concat")), expected_x());
}

#[test]
fn int64_indices_when_int32_overflows() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("wide.h5ad");
    write_sample_with(&path, XKind::Csr, Some(5));
    {
        let f = hdf5::File::open(&path).expect("open");
        for name in ["X/indices", "X/indptr"] {
            let td = f.dataset(name).and_then(|d| d.dtype()).and_then(|t| t.to_descriptor()).expect("dtype");
            assert_eq!(td, hdf5::types::TypeDescriptor::Integer(hdf5::types::IntSize::U8), "{name}");
        }
    }
    check_sample(&path);
    let small = dir.path().join("small.h5ad");
    write_sample(&small, XKind::Csr);
    let f = hdf5::File::open(&small).expect("open");
    for name in ["X/indices", "X/indptr"] {
        let td = f.dataset(name).and_then(|d| d.dtype()).and_then(|t| t.to_descriptor()).expect("dtype");
        assert_eq!(td, hdf5::types::TypeDescriptor::Integer(hdf5::types::IntSize::U4), "{name}");
    }
}

#[test]
fn writer_dropped_without_finish_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("never.h5ad");
    {
        let mut w = H5adWriter::create(&path, &sample_genes(), XKind::Csr).expect("create");
        w.write_batch(&sample_batches()[0]).expect("write");
    }
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
    // A final gene table of the wrong size is refused, and the temporary file goes too.
    let w = H5adWriter::create(&path, &sample_genes(), XKind::Csr).expect("create");
    let err = w.finish_with_genes(&GeneTable::from_names(vec!["a".into()]), &Uns::map()).expect_err("mismatch");
    assert!(err.to_string().contains("never.h5ad") && err.to_string().contains("1 genes"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
}

fn read_in_blocks(r: &H5adReader, size: usize) -> CellBatch {
    let mut parts = Vec::new();
    let mut s = 0;
    while s < r.n_obs() {
        let e = (s + size).min(r.n_obs());
        parts.push(r.read_cells(s, e).expect("block"));
        s = e;
    }
    CellBatch::concat(&parts).expect("concat")
}

fn assert_same(a: &CellBatch, b: &CellBatch) {
    assert_eq!(dense(a), dense(b));
    let (oa, ob) = (a.obs_columns(), b.obs_columns());
    assert_eq!(oa.len(), ob.len());
    for ((na, ca), (nb, cb)) in oa.iter().zip(&ob) {
        assert_eq!(na, nb);
        assert_eq!(strings(ca), strings(cb), "column {na}");
    }
}

fn x_sum_and_nnz(b: &CellBatch) -> (f64, usize) {
    match b.x().expect("x") {
        XView::Csr(c) => (c.values.iter().map(|&v| v as f64).sum(), c.nnz()),
        XView::Dense { .. } => panic!("dense"),
    }
}

#[test]
fn read_real_ziegenhain() {
    let r = H5adReader::open(&data_dir().join(ZIEGENHAIN)).expect("open");
    assert_eq!((r.n_obs(), r.n_vars()), (78, 10_000));
    let whole = r.read_cells(0, 78).expect("whole");
    for size in [1, 7, 1000] {
        assert_same(&read_in_blocks(&r, size), &whole);
    }
    // Spot values from /work/venv-ref/bin/python with anndata 0.12.19:
    //   a = ad.read_h5ad(path); a.X.nnz, a.X.sum(dtype=float64), a.X[0].indices[:2], a.X[0].data[:2],
    //   a.X[77].indices[-2:], a.X[77].data[-2:], a.X[10].sum(), a.obs_names[:2], a.var_names[:2],
    //   a.obs.batch.cat.categories, a.var.length[:3], a.var.length.sum()
    assert_eq!(x_sum_and_nnz(&whole), (8_323_970.0, 188_131));
    let d = dense(&whole);
    assert_eq!((d[0][5], d[0][7]), (12.0, 25.0));
    assert_eq!((d[77][9986], d[77][9988]), (119.0, 112.0));
    assert_eq!(d[10].iter().map(|&v| v as f64).sum::<f64>(), 84_055.0);
    assert_eq!(r.row_nnz(0, 1).expect("nnz"), vec![2531]);
    assert_eq!(r.row_nnz(77, 78).expect("nnz"), vec![2417]);
    assert_eq!(strings(obs(&whole, CELL_ID))[..2], [Some("SmartSeq2B_D7".into()), Some("SmartSeq2A_B11".into())]);
    let batch = obs(&whole, "batch");
    assert_eq!(strings(batch.as_any_dictionary_opt().expect("dict").values()), vec![Some("A".into()), Some("B".into())]);
    assert_eq!(strings(batch)[..3], [Some("B".into()), Some("A".into()), Some("A".into())]);
    let g = r.genes();
    assert_eq!((g.name(0), g.name(1)), ("ENSMUSG00000089679", "ENSMUSG00000064758"));
    assert_eq!(g.column("length").map(|c| c.data_type().clone()), Some(DataType::Int64));
    let len = g.f64_column("length").expect("length").expect("present");
    assert_eq!((len[0], len[1], len[2], len.iter().sum::<f64>()), (2766.0, 107.0, 1829.0, 23_548_565.0));
    // obsm/ercc_counts is a dataframe: not an embedding.
    assert!(r.obsm_keys().is_empty());
    assert_eq!(r.uns().expect("uns").get("source").map(|v| matches!(v, Uns::Str(_))), Some(true));
}

#[test]
fn read_real_pbmc() {
    let r = H5adReader::open(&data_dir().join(PBMC)).expect("open");
    assert_eq!((r.n_obs(), r.n_vars()), (700, 765));
    let whole = r.read_cells(0, 700).expect("whole");
    for size in [1, 7, 1000] {
        assert_same(&read_in_blocks(&r, size), &whole);
    }
    // Spot values from /work/venv-ref/bin/python with anndata 0.12.19 (as for Ziegenhain).
    assert_eq!(x_sum_and_nnz(&whole), (486_651.0, 174_400));
    let d = dense(&whole);
    assert_eq!((d[699][759], d[699][761]), (1.0, 3.0));
    assert_eq!(d[10].iter().sum::<f32>(), 535.0);
    assert_eq!(strings(obs(&whole, CELL_ID))[699].as_deref(), Some("TTGAGGTGGAGAGC-8"));
    let names: Vec<String> = whole.obs_columns().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, [CELL_ID, "bulk_labels", "louvain", "phase", "n_counts", "n_genes", "percent_mito"]);
    let bl = obs(&whole, "bulk_labels");
    let cats = strings(bl.as_any_dictionary_opt().expect("dict").values());
    assert_eq!(cats.len(), 10);
    assert_eq!(cats[0].as_deref(), Some("CD4+/CD25 T Reg"));
    assert_eq!(strings(bl)[699].as_deref(), Some("Dendritic"));
    assert_eq!(strings(obs(&whole, "phase").as_any_dictionary_opt().expect("dict").values()).len(), 3);
    assert_eq!(obs(&whole, "n_genes").as_primitive::<arrow::datatypes::Int64Type>().value(699), 1552);
    assert_eq!(obs(&whole, "n_counts").data_type(), &DataType::Float32);
    assert_eq!(obs(&whole, "percent_mito").as_primitive::<arrow::datatypes::Float32Type>().value(699), 0.010885806);
    assert_eq!((r.genes().name(0), r.genes().name(1)), ("HES4", "TNFRSF4"));
    assert_eq!(r.genes().record_batch().num_columns(), 1);
}

/// Reading a real file and writing it again gives back the same cells.
#[test]
fn real_file_rewrite() {
    let r = H5adReader::open(&data_dir().join(PBMC)).expect("open");
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("pbmc.h5ad");
    let mut w = H5adWriter::create(&path, r.genes(), XKind::Csr).expect("create");
    for s in (0..700).step_by(256) {
        w.write_batch(&r.read_cells(s, (s + 256).min(700)).expect("read")).expect("write");
    }
    w.finish(&r.uns().expect("uns")).expect("finish");
    let r2 = H5adReader::open(&path).expect("reopen");
    assert_same(&r2.read_cells(0, 700).expect("read"), &r.read_cells(0, 700).expect("read"));
    assert_eq!(r2.uns().expect("uns"), r.uns().expect("uns"));
}

fn reference_python() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = std::env::var_os("ATLASFLOW_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([PathBuf::from("/work/venv-ref/bin/python")])
        .collect();
    candidates.into_iter().find(|py| {
        Command::new(py).args(["-c", "import anndata"]).output().map(|o| o.status.success()).unwrap_or(false)
    })
}

#[test]
fn anndata_reads_our_output() {
    let Some(py) = reference_python() else {
        println!("skipped: no reference python (set ATLASFLOW_PYTHON to a python with anndata)");
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    for (name, kind, limit, arg) in [
        ("csr.h5ad", XKind::Csr, None, "csr"),
        ("csr64.h5ad", XKind::Csr, Some(5), "csr"),
        ("dense.h5ad", XKind::Dense, None, "dense"),
    ] {
        let path = dir.path().join(name);
        write_sample_with(&path, kind, limit);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check_h5ad.py");
        let _turn = SPAWN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let out = Command::new(&py).arg(&script).arg(&path).arg(arg).output().expect("run python");
        assert!(
            out.status.success(),
            "anndata check failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------- bad input

fn open_err(path: &Path) -> String {
    match H5adReader::open(path) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => e.to_string(),
    }
}

/// Write the sample file, then let `f` damage it.
fn tampered(dir: &Path, name: &str, f: impl FnOnce(&hdf5::File)) -> PathBuf {
    let _turn = SPAWN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let path = dir.join(name);
    write_sample(&path, XKind::Csr);
    // A python child spawned by another test may still hold an inherited descriptor (and
    // HDF5's lock) for a moment: retry briefly.
    let mut tries = 0;
    let file = loop {
        match hdf5::File::open_rw(&path) {
            Ok(f) => break f,
            Err(e) if tries < 100 => {
                tries += 1;
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            Err(e) => panic!("open rw {name}: {e}"),
        }
    };
    f(&file);
    file.close().expect("close");
    path
}

#[test]
fn truncated_and_non_hdf5_files_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let bytes = std::fs::read(data_dir().join(PBMC)).expect("read");
    let trunc = dir.path().join("truncated.h5ad");
    std::fs::write(&trunc, &bytes[..bytes.len() / 2]).expect("write");
    let msg = open_err(&trunc);
    assert!(msg.contains("truncated.h5ad") && msg.starts_with("not an h5ad file"), "{msg}");

    let text = dir.path().join("notes.h5ad");
    std::fs::write(&text, "cell,gene,count\n").expect("write");
    let msg = open_err(&text);
    assert!(msg.starts_with("not an h5ad file") && msg.contains("notes.h5ad"), "{msg}");

    let msg = open_err(&dir.path().join("missing.h5ad"));
    assert!(msg.contains("missing.h5ad"), "{msg}");
}

#[test]
fn csc_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = tampered(dir.path(), "csc.h5ad", |f| {
        let x = f.group("X").expect("X");
        x.delete_attr(encoding::ENCODING_TYPE).expect("delete");
        encoding::write_str_attr(&x, encoding::ENCODING_TYPE, "csc_matrix").expect("attr");
    });
    let msg = open_err(&path);
    assert!(msg.contains("csc.h5ad") && msg.contains("X is CSC") && msg.contains("tocsr()"), "{msg}");
}

fn read_err(path: &Path) -> String {
    let r = H5adReader::open(path).expect("open");
    match r.read_cells(0, r.n_obs()) {
        Ok(_) => panic!("{} read", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_csr_content_is_an_error_naming_the_row() {
    let dir = tempfile::tempdir().expect("tmp");
    // Row 0 holds genes 0 and 2 (see expected_x): point one at gene 99.
    let p = tampered(dir.path(), "range.h5ad", |f| {
        f.dataset("X/indices").expect("indices").write_slice(&[99i32][..], 1..2).expect("write");
    });
    let msg = read_err(&p);
    assert!(msg.contains("range.h5ad") && msg.contains("/X/indices") && msg.contains("row 0") && msg.contains("99"), "{msg}");

    let p = tampered(dir.path(), "dup.h5ad", |f| {
        f.dataset("X/indices").expect("indices").write_slice(&[2i32, 2][..], 2..4).expect("write");
    });
    let msg = read_err(&p);
    assert!(msg.contains("/X/indices") && msg.contains("row 1") && msg.contains("twice"), "{msg}");

    let p = tampered(dir.path(), "indptr.h5ad", |f| {
        f.dataset("X/indptr").expect("indptr").write_slice(&[5i64][..], 1..2).expect("write");
    });
    let msg = read_err(&p);
    assert!(msg.contains("indptr.h5ad") && msg.contains("/X/indptr") && msg.contains("monotone"), "{msg}");

    let p = tampered(dir.path(), "nan.h5ad", |f| {
        f.dataset("X/data").expect("data").write_slice(&[f32::NAN][..], 3..4).expect("write");
    });
    let msg = read_err(&p);
    assert!(msg.contains("nan.h5ad") && msg.contains("/X/data") && msg.contains("NaN") && msg.contains("cell1"), "{msg}");
}

#[test]
fn unsorted_rows_are_sorted() {
    let dir = tempfile::tempdir().expect("tmp");
    // Row 1 holds (1, 2.0) and (3, 0.5): store them in reverse order.
    let p = tampered(dir.path(), "unsorted.h5ad", |f| {
        f.dataset("X/indices").expect("indices").write_slice(&[3i32, 1][..], 2..4).expect("write");
        f.dataset("X/data").expect("data").write_slice(&[0.5f32, 2.0][..], 2..4).expect("write");
    });
    let r = H5adReader::open(&p).expect("open");
    assert_eq!(dense(&r.read_cells(0, 9).expect("read")), expected_x());
}

#[test]
fn out_of_range_requests_are_errors() {
    let r = H5adReader::open(&data_dir().join(PBMC)).expect("open");
    let msg = r.read_cells(690, 701).expect_err("past the end").to_string();
    assert!(msg.contains(PBMC) && msg.contains("700 cells"), "{msg}");
    assert!(r.row_nnz(5, 4).is_err());
    assert_eq!(r.read_cells(700, 700).expect("empty").num_cells(), 0);
}
