//! The `census:` source on a TileDB-SOMA Census (atlasflow's own reader, no libtiledb).
//! The tutorial from the Census equals the tutorial from the store and from the dataset's
//! own h5ad.
//!
//! `data/example/census` holds exactly the cells of the example atlas store
//! (`data/example/atlas`), written by tiledbsoma with the Census builder's layout and
//! filters (`scripts/make_example_census.py`): so every query must select the same cells
//! and genes with the same counts from both, and the tutorial pipeline must give the same
//! bits. The store is itself checked against pandas and the dataset's own h5ad in
//! `tests/atlas.rs`. The same pipeline through a loopback S3 endpoint (moto) gives the same
//! bits again.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int32Type;
use atlasflow_atlas::{CensusQuery, CensusReader, GeneSelection};
use atlasflow_core::{CellBatch, XView};

mod support;
#[path = "support/moto.rs"]
mod moto;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn census() -> PathBuf {
    repo().join("data/example/census")
}

fn store() -> PathBuf {
    repo().join("data/example/atlas")
}

fn atlasflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atlasflow")).args(args).output().expect("run atlasflow")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn query(obs: Option<&str>, var: Option<&str>, genes: GeneSelection) -> CensusQuery {
    CensusQuery {
        organism: Some("Mus musculus".into()),
        obs_filter: obs.map(str::to_string),
        var_filter: var.map(str::to_string),
        genes,
        ..CensusQuery::default()
    }
}

/// Strings of an obs column (categoricals decoded), for comparing two readers.
fn column_strings(b: &CellBatch, name: &str) -> Vec<Option<String>> {
    let col = b.obs_column(name).unwrap_or_else(|| panic!("no obs column {name}"));
    let s = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8).unwrap();
    let s = s.as_string::<i32>();
    (0..s.len()).map(|i| s.is_valid(i).then(|| s.value(i).to_string())).collect()
}

/// X of a batch as (indptr, indices, values).
fn csr(b: &CellBatch) -> (Vec<i32>, Vec<u32>, Vec<f32>) {
    match b.x().unwrap() {
        XView::Csr(v) => (v.indptr.to_vec(), v.indices.to_vec(), v.values.to_vec()),
        XView::Dense { .. } => panic!("a census read gives sparse X"),
    }
}

#[test]
fn census_queries_select_what_the_store_selects() {
    let cases: [(Option<&str>, Option<&str>, GeneSelection); 6] = [
        (Some("dataset_title == 'Liver — Smart-seq2, synthetic example'"), None, GeneSelection::DatasetPresence),
        (Some("tissue == 'liver' and is_primary_data == True"), None, GeneSelection::DatasetPresenceAll),
        (Some("cell_type in ['B cell', 'T cell'] and nnz > 700"), Some("feature_length > 2000"), GeneSelection::DatasetPresence),
        (Some("donor_id == 'D1' or sex == 'female'"), None, GeneSelection::All),
        (None, Some("feature_name in ['Gm0', 'Gm905', 'Gm856']"), GeneSelection::All),
        (Some("not (dataset_id == 'tenx-lung-example')"), None, GeneSelection::DatasetPresence),
    ];
    for (obs, var, genes) in cases {
        let q = query(obs, var, genes);
        let (s, c) = (CensusReader::open(&store(), &q).unwrap(), CensusReader::open(&census(), &q).unwrap());
        assert!(matches!(c, CensusReader::Soma(_)), "the census directory is read as SOMA");
        let what = format!("obs {obs:?} var {var:?} {genes:?}");
        assert!(s.n_obs() > 0, "{what}: the case selects nothing");
        assert_eq!(s.soma_joinids(), c.soma_joinids(), "{what}: cells");
        assert_eq!(s.row_nnz(), c.row_nnz(), "{what}: nnz");
        assert_eq!(s.organism(), c.organism(), "{what}");
        assert_eq!(s.datasets(), c.datasets(), "{what}: datasets");
        assert_eq!(s.genes().record_batch(), c.genes().record_batch(), "{what}: genes");
        // Read in uneven ranges, so ranges cross datasets and X's 2,048-row bands.
        let n = s.n_obs();
        let cuts = [0, n / 3, n / 3 + 1, n];
        for w in cuts.windows(2) {
            let (a, b) = (s.read(w[0], w[1]).unwrap(), c.read(w[0], w[1]).unwrap());
            assert_eq!(csr(&a), csr(&b), "{what}: X of {}..{}", w[0], w[1]);
            let ids: Vec<Option<String>> = c.soma_joinids()[w[0]..w[1]].iter().map(|j| Some(j.to_string())).collect();
            assert_eq!(column_strings(&b, "cell_id"), ids, "{what}: cell_id is the soma_joinid");
            for name in ["dataset_id", "cell_type", "donor_id", "is_primary_data", "nnz", "raw_sum", "soma_joinid"] {
                assert_eq!(column_strings(&a, name), column_strings(&b, name), "{what}: obs {name}");
            }
        }
    }
}

#[test]
fn categoricals_keep_the_categories_of_the_selected_cells() {
    let q = query(Some("dataset_id == 'smartseq2-liver-example'"), None, GeneSelection::DatasetPresence);
    let (s, c) = (CensusReader::open(&store(), &q).unwrap(), CensusReader::open(&census(), &q).unwrap());
    let (a, b) = (s.read(0, s.n_obs()).unwrap(), c.read(0, c.n_obs()).unwrap());
    // cell_type is a TileDB enumeration of the 11 cell types of the atlas; donor_id a
    // dictionary-filtered string. Both come out as the dataset's own categoricals.
    for name in ["cell_type", "donor_id", "dataset_id", "development_stage"] {
        let (x, y) = (a.obs_column(name).unwrap(), b.obs_column(name).unwrap());
        let (x, y) = (x.as_dictionary::<Int32Type>(), y.as_dictionary::<Int32Type>());
        assert_eq!(x.values().as_ref(), y.values().as_ref(), "{name} categories");
        assert_eq!(x.keys(), y.keys(), "{name} codes");
    }
}

#[test]
fn tutorial_from_the_census_equals_the_tutorial_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let spec = repo().join("pipelines/census-smartseq2-liver.yaml");
    let (a, b, h) = (dir.path().join("store-run"), dir.path().join("census-run"), dir.path().join("h5ad-run"));
    let h5ad = repo().join("data/example/smartseq2-liver-example.h5ad");
    for (input, out, threads, batch) in [(store(), &a, "2", "4096"), (census(), &b, "1", "97"), (h5ad, &h, "2", "4096")] {
        let o = atlasflow(&[
            "run", spec.to_str().unwrap(), "--input", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q",
            "--threads", threads, "--batch-size", batch,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let open = |d: &Path| hdf5::File::open(d.join("results/census-smartseq2-liver.h5ad")).unwrap();
    let (fa, fb, fh) = (open(&a), open(&b), open(&h));
    for ds in ["X", "obsm/X_pca", "obsm/X_umap", "varm/PCs", "obsp/connectivities/data", "obsp/distances/data", "obs/raw_sum", "var/mean"] {
        let (x, y) = (fa.dataset(ds).unwrap().read_raw::<f64>().unwrap(), fb.dataset(ds).unwrap().read_raw::<f64>().unwrap());
        assert!(!x.is_empty());
        assert!(x == y, "{ds} differs between the store and the census run");
        // And the dataset's own h5ad (the h5ad has no raw_sum: the Census computes it).
        if ds != "obs/raw_sum" {
            assert!(fh.dataset(ds).unwrap().read_raw::<f64>().unwrap() == y, "{ds} differs between the h5ad and the census run");
        }
    }
    let read = |f: &hdf5::File| f.dataset("obs/leiden/codes").unwrap().read_raw::<i64>().unwrap();
    assert_eq!(read(&fh), read(&fb), "leiden: h5ad and census runs");
    for ds in ["var/_index", "obs/cell_type/categories", "obs/donor_id/categories"] {
        let read = |f: &hdf5::File| f.dataset(ds).unwrap().read_raw::<hdf5::types::VarLenUnicode>().unwrap();
        assert_eq!(read(&fa), read(&fb), "{ds}");
    }
    for ds in ["obs/leiden/codes", "obs/cell_type/codes", "obs/donor_id/codes", "obs/soma_joinid"] {
        let read = |f: &hdf5::File| f.dataset(ds).unwrap().read_raw::<i64>().unwrap();
        assert_eq!(read(&fa), read(&fb), "{ds}");
    }
    // The Census has no per-dataset cell name: cells are named by soma_joinid.
    let names = fb.dataset("obs/_index").unwrap().read_raw::<hdf5::types::VarLenUnicode>().unwrap();
    let ids = fb.dataset("obs/soma_joinid").unwrap().read_raw::<i64>().unwrap();
    assert!(names.iter().zip(&ids).all(|(n, i)| n.as_str() == i.to_string()));
    assert!(b.join("results/umap.png").exists());
}

#[test]
fn bad_census_queries_and_damaged_arrays_fail_with_a_clear_message() {
    let err = |q: CensusQuery, path: &Path| CensusReader::open(path, &q).unwrap_err().to_string();
    let mut q = query(None, None, GeneSelection::All);
    q.organism = Some("Homo sapiens".into());
    let e = err(q, &census());
    assert!(e.contains("Homo sapiens") && e.contains("mus_musculus"), "{e}");
    let e = err(query(Some("cell_typ == 'B cell'"), None, GeneSelection::All), &census());
    assert!(e.contains("unknown column 'cell_typ'") && e.contains("did you mean 'cell_type'"), "{e}");
    let e = err(query(Some("nnz == 'many'"), None, GeneSelection::All), &census());
    assert!(e.contains("type mismatch") && e.contains("nnz"), "{e}");
    let e = err(query(Some("tissue == 'brain'"), None, GeneSelection::All), &census());
    assert!(e.contains("matches no cells"), "{e}");
    let e = err(query(None, Some("feature_lenght > 1"), GeneSelection::All), &census());
    assert!(e.contains("var_filter") && e.contains("feature_length"), "{e}");

    // Truncated X data (every fragment's values): the pipeline names the file, exits
    // non-zero, writes nothing.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("census");
    support::copy_tree(&census(), &copy);
    let frags = copy.join("census_data/mus_musculus/ms/RNA/X/raw/__fragments");
    for frag in std::fs::read_dir(&frags).unwrap().flatten() {
        let data = frag.path().join("a0.tdb");
        let bytes = std::fs::read(&data).unwrap();
        std::fs::write(&data, &bytes[..bytes.len() / 2]).unwrap();
    }
    let out = dir.path().join("out");
    let spec = repo().join("pipelines/census-smartseq2-liver.yaml");
    let o = atlasflow(&["run", spec.to_str().unwrap(), "--input", copy.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("a0.tdb") && !e.contains("panicked"), "{e}");
    assert!(!out.join("results").exists(), "a failed run left outputs");
}

/// The tutorial with its source at `s3://…` on a loopback S3 endpoint (moto, anonymous
/// reads as from the public Census bucket) equals the run from the local directory; a
/// bucket that does not exist is an error naming the URL, with no output.
#[test]
fn tutorial_from_a_census_on_s3_equals_the_local_run() {
    let Some(py) = moto::python() else { return };
    let server = moto::Moto::start(&py);
    server.upload_tree(&py, "census-test", "release/soma", &census());
    let dir = tempfile::tempdir().unwrap();
    let spec = repo().join("pipelines/census-smartseq2-liver.yaml");
    let run = |input: &str, out: &Path| {
        Command::new(env!("CARGO_BIN_EXE_atlasflow"))
            .args(["run", spec.to_str().unwrap(), "--input", input, "--out", out.to_str().unwrap(), "-q"])
            .env("AWS_ENDPOINT_URL", &server.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("ATLASFLOW_SOMA_CACHE", dir.path().join("cache"))
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_PROFILE")
            .output()
            .expect("run atlasflow")
    };
    let (a, b) = (dir.path().join("local"), dir.path().join("s3"));
    let o = run(census().to_str().unwrap(), &a);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run("s3://census-test/release/soma", &b);
    assert!(o.status.success(), "{}", stderr(&o));
    let open = |d: &Path| hdf5::File::open(d.join("results/census-smartseq2-liver.h5ad")).unwrap();
    let (fa, fb) = (open(&a), open(&b));
    for ds in ["X", "obsm/X_pca", "obsm/X_umap", "obsp/connectivities/data"] {
        let (x, y) = (fa.dataset(ds).unwrap().read_raw::<f64>().unwrap(), fb.dataset(ds).unwrap().read_raw::<f64>().unwrap());
        assert!(!x.is_empty() && x == y, "{ds} differs between the local and the S3 run");
    }
    let read = |f: &hdf5::File| f.dataset("obs/leiden/codes").unwrap().read_raw::<i64>().unwrap();
    assert_eq!(read(&fa), read(&fb));
    // Metadata was cached on disk for the next run.
    assert!(dir.path().join("cache").exists());
    // `inspect` reads the Census from S3 too.
    let o = Command::new(env!("CARGO_BIN_EXE_atlasflow"))
        .args(["inspect", "s3://census-test/release/soma"])
        .env("AWS_ENDPOINT_URL", &server.endpoint)
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_ACCESS_KEY_ID")
        .output()
        .expect("run atlasflow");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(text.contains("mus_musculus: SOMAExperiment") && text.contains("raw: SOMASparseNDArray [2400 × 6550]"), "{text}");

    let out = dir.path().join("missing");
    let o = run("s3://no-such-bucket/soma", &out);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("s3://no-such-bucket") && !e.contains("panicked"), "{e}");
    assert!(!out.join("results").exists(), "a failed run left outputs");
}
