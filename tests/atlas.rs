//! The atlas store end to end: ingest, value filters against pandas, presence subsetting
//! against the Census tutorial's logic, the tutorial from the atlas equal to the tutorial
//! from the dataset's own h5ad, and the errors a user meets.
//!
//! Expected selections come from `scripts/reference_atlas.py` (pandas `DataFrame.query`
//! over the store's obs; presence rebuilt from the input h5ads with scipy, as
//! `cellxgene_census.get_presence_matrix` defines it). Inputs: `data/example/*.h5ad`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::AsArray;
use atlasflow_atlas::{AtlasStore, CensusQuery, CensusReader, GeneSelection, IngestOptions};

mod support;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn inputs() -> Vec<PathBuf> {
    ["smartseq2-liver-example", "tenx-liver-example", "tenx-lung-example"]
        .iter()
        .map(|n| repo().join(format!("data/example/{n}.h5ad")))
        .collect()
}

fn atlasflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atlasflow")).args(args).output().expect("run atlasflow")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(repo().join("tests/data/atlas/expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("json")
}

fn build(dir: &Path, files: &[PathBuf]) -> PathBuf {
    let store = dir.join("atlas");
    atlasflow_atlas::ingest(&store, files, &IngestOptions::new("Mus musculus"), &mut |_, _, _| {}).expect("ingest");
    store
}

fn query(filter: Option<&str>, genes: GeneSelection) -> CensusQuery {
    CensusQuery { obs_filter: filter.map(str::to_string), genes, ..CensusQuery::default() }
}

#[test]
fn value_filters_select_what_pandas_selects() {
    let dir = tempfile::tempdir().unwrap();
    let store = build(dir.path(), &inputs());
    let want = expected();
    let cases = want["filters"].as_array().unwrap();
    assert!(cases.len() >= 30, "{} filters", cases.len());
    let mut tried = 0;
    for case in cases {
        let f = case["filter"].as_str().unwrap();
        let ids: Vec<i64> = case["soma_joinids"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        match CensusReader::open(&store, &query(Some(f), GeneSelection::All)) {
            Ok(r) => assert_eq!(r.soma_joinids(), ids.as_slice(), "filter {f}"),
            Err(e) => {
                assert!(ids.is_empty(), "filter {f} failed: {e}");
                assert!(e.to_string().contains("matches no cells"), "filter {f}: {e}");
            }
        }
        tried += 1;
    }
    assert_eq!(tried, cases.len());
}

#[test]
fn presence_keeps_the_genes_each_dataset_measured() {
    let dir = tempfile::tempdir().unwrap();
    let store = build(dir.path(), &inputs());
    let want = expected();
    let var: Vec<&str> = want["var_feature_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let all = CensusReader::open(&store, &query(None, GeneSelection::All)).unwrap();
    let got: Vec<&str> = (0..all.genes().n_genes()).map(|j| all.genes().name(j)).collect();
    assert_eq!(got, var, "var soma_joinid order");
    for (dataset, genes) in want["presence"].as_object().unwrap() {
        let f = format!("dataset_id == '{dataset}'");
        let r = CensusReader::open(&store, &query(Some(&f), GeneSelection::DatasetPresence)).unwrap();
        let got: Vec<&str> = (0..r.genes().n_genes()).map(|j| r.genes().name(j)).collect();
        let want: Vec<&str> = genes.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(got, want, "presence of {dataset}");
        let info = &expected()["datasets"][dataset];
        assert_eq!(r.n_obs() as u64, info["n_obs"].as_u64().unwrap());
        // The first cells' obs_id, nnz and raw_sum as the store computed them.
        let b = r.read(0, 5).unwrap();
        let ids = b.obs_column("cell_id").unwrap().as_string::<i32>().clone();
        let x = b.x().unwrap();
        let atlasflow_core::XView::Csr(x) = x else { panic!("sparse X") };
        for (k, cell) in info["first_cells"].as_array().unwrap().iter().enumerate() {
            assert_eq!(ids.value(k), cell["obs_id"].as_str().unwrap());
            let (_, vals) = x.row(k);
            assert_eq!(vals.len() as u64, cell["nnz"].as_u64().unwrap(), "nnz of {dataset} cell {k}");
            let sum: f64 = vals.iter().map(|&v| f64::from(v)).sum();
            assert_eq!(sum, cell["raw_sum"].as_f64().unwrap(), "raw_sum of {dataset} cell {k}");
        }
    }
    // Union and intersection over two datasets.
    let two = "dataset_id in ['tenx-liver-example', 'tenx-lung-example']";
    let union = CensusReader::open(&store, &query(Some(two), GeneSelection::DatasetPresence)).unwrap();
    let inter = CensusReader::open(&store, &query(Some(two), GeneSelection::DatasetPresenceAll)).unwrap();
    let p = want["presence"].as_object().unwrap();
    let a: std::collections::BTreeSet<&str> = p["tenx-liver-example"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let b: std::collections::BTreeSet<&str> = p["tenx-lung-example"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(union.genes().n_genes(), a.union(&b).count());
    assert_eq!(inter.genes().n_genes(), a.intersection(&b).count());
}

#[test]
fn reading_by_ranges_gives_the_dataset_rows() {
    // Cells of the 10x liver dataset read through the store equal its h5ad rows, remapped.
    let dir = tempfile::tempdir().unwrap();
    let store = build(dir.path(), &inputs());
    let r = CensusReader::open(&store, &query(Some("dataset_id == 'tenx-liver-example'"), GeneSelection::DatasetPresence)).unwrap();
    let h = atlasflow_io::H5adReader::open(&inputs()[1]).unwrap();
    let whole = h.read_cells(0, h.n_obs()).unwrap();
    let atlasflow_core::XView::Csr(hx) = whole.x().unwrap() else { panic!() };
    let col_of: std::collections::HashMap<&str, usize> = (0..r.genes().n_genes()).map(|j| (r.genes().name(j), j)).collect();
    for (a, b) in [(0, 1), (0, 333), (333, 800), (797, 800)] {
        let batch = r.read(a, b).unwrap();
        assert_eq!(batch.num_cells(), b - a);
        let atlasflow_core::XView::Csr(x) = batch.x().unwrap() else { panic!() };
        for i in 0..(b - a) {
            let (hi, hv) = hx.row(a + i);
            let mut want: Vec<(usize, f32)> = hi.iter().zip(hv).filter(|p| *p.1 != 0.0).map(|(&j, &v)| (col_of[h.genes().name(j as usize)], v)).collect();
            want.sort_by_key(|p| p.0);
            let (ri, rv) = x.row(i);
            let got: Vec<(usize, f32)> = ri.iter().zip(rv).map(|(&j, &v)| (j as usize, v)).collect();
            assert_eq!(got, want, "cell {}", a + i);
        }
    }
    assert!(r.read(0, 0).unwrap().num_cells() == 0);
}

#[test]
fn tutorial_from_the_atlas_equals_the_tutorial_from_the_h5ad() {
    let dir = tempfile::tempdir().unwrap();
    let spec = repo().join("pipelines/census-smartseq2-liver.yaml");
    let (a, b) = (dir.path().join("atlas-run"), dir.path().join("h5ad-run"));
    let store = build(dir.path(), &inputs());
    let o = atlasflow(&["run", spec.to_str().unwrap(), "--input", store.to_str().unwrap(), "--out", a.to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = atlasflow(&["run", spec.to_str().unwrap(), "--input", inputs()[0].to_str().unwrap(), "--out", b.to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let open = |d: &Path| hdf5::File::open(d.join("results/census-smartseq2-liver.h5ad")).unwrap();
    let (fa, fb) = (open(&a), open(&b));
    for ds in ["X", "obsm/X_pca", "obsm/X_umap", "varm/PCs"] {
        let (x, y) = (fa.dataset(ds).unwrap().read_raw::<f64>().unwrap(), fb.dataset(ds).unwrap().read_raw::<f64>().unwrap());
        assert!(!x.is_empty());
        assert!(x == y, "{ds} differs between the atlas and the h5ad run");
    }
    for ds in ["obsp/connectivities/data", "obsp/distances/data"] {
        let (x, y) = (fa.dataset(ds).unwrap().read_raw::<f64>().unwrap(), fb.dataset(ds).unwrap().read_raw::<f64>().unwrap());
        assert!(x == y, "{ds} differs");
    }
    for ds in ["obs/_index", "var/_index"] {
        let read = |f: &hdf5::File| f.dataset(ds).unwrap().read_raw::<hdf5::types::VarLenUnicode>().unwrap();
        assert_eq!(read(&fa), read(&fb), "{ds}");
    }
    for ds in ["obs/leiden/codes", "obs/cell_type/codes"] {
        let read = |f: &hdf5::File| f.dataset(ds).unwrap().read_raw::<i64>().unwrap();
        assert_eq!(read(&fa), read(&fb), "{ds}");
    }
    let read = |f: &hdf5::File| f.dataset("obs/cell_type/categories").unwrap().read_raw::<hdf5::types::VarLenUnicode>().unwrap();
    assert_eq!(read(&fa), read(&fb), "cell_type categories");
    // The census columns ride along.
    assert!(fa.link_exists("obs/soma_joinid") && fa.link_exists("var/soma_joinid"));
}

#[test]
fn the_shipped_example_atlas_is_what_ingest_builds() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = IngestOptions::new("Mus musculus");
    opts.collection_name = "atlasflow examples".into();
    let fresh = dir.path().join("atlas");
    atlasflow_atlas::ingest(&fresh, &inputs(), &opts, &mut |_, _, _| {}).unwrap();
    let shipped = AtlasStore::open(&repo().join("data/example/atlas")).unwrap();
    let new = AtlasStore::open(&fresh).unwrap();
    assert_eq!(shipped.datasets(), new.datasets());
    for sql in [
        "SELECT * FROM var ORDER BY soma_joinid",
        "SELECT * FROM obs ORDER BY soma_joinid",
        "SELECT soma_joinid, x_indices, x_values FROM x_raw ORDER BY soma_joinid",
        "SELECT * FROM feature_dataset_presence_matrix ORDER BY soma_dim_0, soma_dim_1",
    ] {
        let (a, b) = (shipped.sql(None, sql).unwrap(), new.sql(None, sql).unwrap());
        let cat = |v: &[arrow::array::RecordBatch]| arrow::compute::concat_batches(&v[0].schema(), v).unwrap();
        assert_eq!(cat(&a), cat(&b), "{sql}: regenerate data/example/atlas (see data/example/README.md)");
    }
}

#[test]
fn extending_a_store_equals_building_it_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let once = build(&dir.path().join("a"), &inputs());
    let step = dir.path().join("b/atlas");
    let opts = IngestOptions::new("Mus musculus");
    atlasflow_atlas::ingest(&step, &inputs()[..2], &opts, &mut |_, _, _| {}).unwrap();
    atlasflow_atlas::ingest(&step, &inputs()[2..], &opts, &mut |_, _, _| {}).unwrap();
    let (a, b) = (AtlasStore::open(&once).unwrap(), AtlasStore::open(&step).unwrap());
    assert_eq!(a.datasets(), b.datasets());
    for sql in ["SELECT * FROM var ORDER BY soma_joinid", "SELECT soma_joinid, obs_id, nnz, n_measured_vars FROM obs ORDER BY soma_joinid"] {
        let (x, y) = (a.sql(None, sql).unwrap(), b.sql(None, sql).unwrap());
        let cat = |v: &[arrow::array::RecordBatch]| arrow::compute::concat_batches(&v[0].schema(), v).unwrap();
        assert_eq!(cat(&x), cat(&y), "{sql}");
    }
    // The same dataset twice is refused, and the store is left as it was.
    let e = atlasflow_atlas::ingest(&step, &inputs()[..1], &opts, &mut |_, _, _| {}).unwrap_err();
    assert!(e.to_string().contains("already in the store"), "{e}");
    assert_eq!(AtlasStore::open(&step).unwrap().datasets().len(), 3);
}

#[test]
fn gene_lengths_come_from_var_or_a_table_else_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // A copy of the lung dataset without var/feature_length.
    let bare = dir.path().join("bare.h5ad");
    std::fs::copy(&inputs()[2], &bare).unwrap();
    {
        let f = hdf5::File::open_rw(&bare).unwrap();
        let var = f.group("var").unwrap();
        var.unlink("feature_length").unwrap();
        let order: Vec<hdf5::types::VarLenUnicode> = var.attr("column-order").unwrap().read_raw().unwrap();
        let keep: Vec<hdf5::types::VarLenUnicode> = order.into_iter().filter(|c| c.as_str() != "feature_length").collect();
        var.delete_attr("column-order").unwrap();
        var.new_attr_builder().with_data(&keep).create("column-order").unwrap();
    }
    let o = atlasflow(&["ingest", "-q", "--organism", "Mus musculus", "--out", dir.path().join("s1").to_str().unwrap(), bare.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("bare.h5ad") && err.contains("no feature_length") && err.contains("--gene-lengths"), "{err}");
    assert!(!dir.path().join("s1/census_info/datasets.parquet").exists(), "a failed ingest committed a dataset");
    let table = repo().join("data/example/gene-lengths.tsv");
    let s2 = dir.path().join("s2");
    let o = atlasflow(&["ingest", "-q", "--organism", "Mus musculus", "--out", s2.to_str().unwrap(), "--gene-lengths", table.to_str().unwrap(), bare.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let with = build(&dir.path().join("s3"), &inputs()[2..]);
    let sql = "SELECT feature_id, feature_length FROM var ORDER BY soma_joinid";
    assert_eq!(AtlasStore::open(&s2).unwrap().sql(None, sql).unwrap(), AtlasStore::open(&with).unwrap().sql(None, sql).unwrap());
}

#[test]
fn obs_columns_of_other_datasets_are_left_out_or_all_missing() {
    // A dataset without donor_id next to ones with it.
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("no-donor.h5ad");
    std::fs::copy(&inputs()[2], &bare).unwrap();
    {
        let f = hdf5::File::open_rw(&bare).unwrap();
        let obs = f.group("obs").unwrap();
        obs.unlink("donor_id").unwrap();
        let order: Vec<hdf5::types::VarLenUnicode> = obs.attr("column-order").unwrap().read_raw().unwrap();
        let keep: Vec<hdf5::types::VarLenUnicode> = order.into_iter().filter(|c| c.as_str() != "donor_id").collect();
        obs.delete_attr("column-order").unwrap();
        obs.new_attr_builder().with_data(&keep).create("column-order").unwrap();
    }
    let store = build(dir.path(), &[inputs()[0].clone(), bare]);
    let r = CensusReader::open(&store, &query(Some("dataset_id == 'no-donor'"), GeneSelection::All)).unwrap();
    assert!(r.read(0, 10).unwrap().obs_column("donor_id").is_none(), "a column the dataset lacks is left out");
    let q = CensusQuery { obs_columns: Some(vec!["donor_id".into()]), ..query(Some("dataset_id == 'no-donor'"), GeneSelection::All) };
    let b = CensusReader::open(&store, &q).unwrap().read(0, 10).unwrap();
    assert_eq!(b.obs_column("donor_id").unwrap().null_count(), 10, "asked for, it is all missing");
    // And such a column is written to h5ad as a categorical with no categories.
    let spec = repo().join("pipelines/census-smartseq2-liver.yaml");
    let text = std::fs::read_to_string(&spec).unwrap();
    let start = text.find("source:\n").unwrap();
    let end = text.find("steps:\n").unwrap();
    let steps_end = text.find("  - stage: filter_cells").unwrap();
    let yaml = format!(
        "{}source:\n  census: {}\n  obs_filter: \"dataset_id == 'no-donor'\"\n  obs_columns: [cell_type, donor_id]\n{}outputs:\n  - h5ad: out.h5ad\n",
        &text[..start],
        store.display(),
        &text[end..steps_end]
    );
    let p = dir.path().join("p.yaml");
    std::fs::write(&p, yaml).unwrap();
    let o = atlasflow(&["run", p.to_str().unwrap(), "--out", dir.path().join("o").to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let f = hdf5::File::open(dir.path().join("o/out.h5ad")).unwrap();
    let codes = f.dataset("obs/donor_id/codes").unwrap().read_raw::<i64>().unwrap();
    assert!(!codes.is_empty() && codes.iter().all(|&c| c == -1));
}

fn with_source(dir: &Path, source: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("pipelines/census-smartseq2-liver.yaml")).unwrap();
    let start = text.find("source:\n").unwrap();
    let end = text.find("steps:\n").unwrap();
    let store = repo().join("data/example/atlas");
    let text = format!("{}source:\n  census: {}\n{source}{}", &text[..start], store.display(), &text[end..]);
    let p = dir.join("p.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn run(spec: &Path, out: &Path) -> Output {
    atlasflow(&["run", spec.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"])
}

fn assert_clean_failure(o: &Output, out: &Path, needles: &[&str]) {
    assert!(!o.status.success(), "expected a failure");
    let err = stderr(o);
    for n in needles {
        assert!(err.contains(n), "error should mention {n:?}: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.join("results").exists(), "a failed run left outputs");
}

#[test]
fn bad_census_sources_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let line = |spec: &Path, key: &str| {
        let t = std::fs::read_to_string(spec).unwrap();
        format!(":{}", t.lines().position(|l| l.trim_start().starts_with(key)).unwrap() + 1)
    };
    // A filter that matches nothing.
    let p = with_source(dir.path(), "  obs_filter: \"tissue == 'brain'\"\n  genes: dataset_presence\n");
    assert_clean_failure(&run(&p, &out), &out, &["matches no cells", "tissue == 'brain'"]);
    // An unknown column: the YAML line, the column and a suggestion.
    let p = with_source(dir.path(), "  obs_filter: \"celltype == 'B cell'\"\n");
    assert_clean_failure(&run(&p, &out), &out, &[&line(&p, "obs_filter"), "unknown column 'celltype'", "cell_type"]);
    // A malformed filter is caught when the YAML is read, with its line and position.
    let p = with_source(dir.path(), "  obs_filter: \"tissue == \"\n");
    assert_clean_failure(&run(&p, &out), &out, &[&line(&p, "obs_filter"), "character"]);
    let o = atlasflow(&["validate", p.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("obs_filter"), "{}", stderr(&o));
    // A type mismatch, an unknown gene rule, an unknown key, a var filter on a missing column.
    let p = with_source(dir.path(), "  obs_filter: \"nnz == 'many'\"\n");
    assert_clean_failure(&run(&p, &out), &out, &["nnz"]);
    let p = with_source(dir.path(), "  genes: measured\n");
    assert_clean_failure(&run(&p, &out), &out, &[&line(&p, "genes"), "dataset_presence"]);
    let p = with_source(dir.path(), "  obs_filtr: \"tissue == 'liver'\"\n");
    assert_clean_failure(&run(&p, &out), &out, &["obs_filtr", "obs_filter"]);
    let p = with_source(dir.path(), "  var_filter: \"length > 100\"\n");
    assert_clean_failure(&run(&p, &out), &out, &[&line(&p, "var_filter"), "unknown column 'length'", "feature_length"]);
    // An organism the store does not hold; a directory that is not a store.
    let p = with_source(dir.path(), "  organism: Homo sapiens\n");
    assert_clean_failure(&run(&p, &out), &out, &["Homo sapiens", "Mus musculus"]);
    let spec = repo().join("pipelines/census-smartseq2-liver.yaml");
    let o = atlasflow(&["run", spec.to_str().unwrap(), "--input", dir.path().to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"]);
    assert_clean_failure(&o, &out, &["not an atlas store"]);
}

#[test]
fn a_var_filter_and_dataset_columns_select_as_the_census_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = build(dir.path(), &inputs());
    // Select by the dataset table's title, as the tutorial finds its dataset.
    let by_title = CensusReader::open(&store, &query(Some("dataset_title == 'Lung — 10x 3\\' v3, synthetic example'"), GeneSelection::All)).unwrap();
    let by_id = CensusReader::open(&store, &query(Some("dataset_id == 'tenx-lung-example'"), GeneSelection::All)).unwrap();
    assert_eq!(by_title.soma_joinids(), by_id.soma_joinids());
    assert_eq!(by_title.n_obs(), 600);
    let q = CensusQuery { var_filter: Some("feature_length > 10000".into()), ..query(Some("tissue == 'lung'"), GeneSelection::DatasetPresence) };
    let r = CensusReader::open(&store, &q).unwrap();
    let lengths = r.genes().f64_column("feature_length").unwrap().unwrap();
    assert!(!lengths.is_empty() && lengths.iter().all(|&l| l > 10000.0));
    let n_long_present = {
        let want = expected();
        let present: std::collections::BTreeSet<&str> = want["presence"]["tenx-lung-example"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let all = CensusReader::open(&store, &query(None, GeneSelection::All)).unwrap();
        let l = all.genes().f64_column("feature_length").unwrap().unwrap();
        (0..all.genes().n_genes()).filter(|&j| l[j] > 10000.0 && present.contains(all.genes().name(j))).count()
    };
    assert_eq!(r.genes().n_genes(), n_long_present);
}

#[test]
fn query_and_inspect_print_what_a_person_reads() {
    let store = repo().join("data/example/atlas");
    let o = atlasflow(&["query", store.to_str().unwrap(), "SELECT dataset_id, dataset_total_cell_count FROM datasets WHERE dataset_title LIKE 'Liver%' ORDER BY soma_joinid"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("smartseq2-liver-example") && text.contains("1000") && text.contains("tenx-liver-example") && text.contains("2 rows"), "{text}");
    let o = atlasflow(&["query", store.to_str().unwrap(), "SELECT cell_type, count(*) AS n FROM obs WHERE tissue = 'lung' GROUP BY cell_type ORDER BY n DESC", "--csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let total: u64 = text.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().parse::<u64>().unwrap()).sum();
    assert_eq!(total, 600);
    let o = atlasflow(&["query", store.to_str().unwrap(), "SELECT nope FROM obs"]);
    assert!(!o.status.success() && stderr(&o).contains("nope"), "{}", stderr(&o));
    let o = atlasflow(&["inspect", store.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("2400 cells × 6550 genes") && text.contains("Liver — Smart-seq2, synthetic example"), "{text}");
    // A reader that stops early (`| head`) ends the command quietly, without a panic.
    for args in [vec!["inspect", store.to_str().unwrap()], vec!["query", store.to_str().unwrap(), "SELECT * FROM obs"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_atlasflow"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
    let o = atlasflow(&["inspect", inputs()[1].to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("800"), "{}", String::from_utf8_lossy(&o.stdout));
}

/// Issue #6's determinism matrix, with partitions: the same cells read from the h5ad and
/// from stores whose X is cut into row groups of very different sizes, with several batch
/// sizes and thread counts, give the same bits.
#[test]
fn results_do_not_depend_on_partitions_batch_size_or_threads() {
    let dir = tempfile::tempdir().unwrap();
    let spec = repo().join("pipelines/census-smartseq2-liver.yaml");
    let h5ad = inputs()[0].clone();
    let mut stores = Vec::new();
    for (name, rg) in [("atlas-1Mi", "1048576"), ("atlas-40k", "40000")] {
        let store = dir.path().join(name);
        let mut args = vec!["ingest", "-q", "--organism", "Mus musculus", "--row-group-nnz", rg, "--out", store.to_str().unwrap()];
        let files: Vec<String> = inputs().iter().map(|p| p.display().to_string()).collect();
        args.extend(files.iter().map(String::as_str));
        let o = atlasflow(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        stores.push(store);
    }
    // The 40,000-non-zero store really is cut finer: count the row groups of its X part.
    let groups = |store: &Path| {
        let part = store.join("census_data/mus_musculus/ms/RNA/X/raw/part-000000.parquet");
        let f = std::fs::File::open(part).unwrap();
        parquet::file::reader::FileReader::metadata(&parquet::file::serialized_reader::SerializedFileReader::new(f).unwrap()).num_row_groups()
    };
    let (coarse, fine) = (groups(&stores[0]), groups(&stores[1]));
    assert!(fine >= 10 * coarse, "row groups: {coarse} and {fine}");
    let runs: [(&Path, &str, &str); 5] = [
        (&h5ad, "4096", "2"),
        (&h5ad, "1", "1"),
        (&stores[0], "7", "2"),
        (&stores[1], "10000", "1"),
        (&stores[1], "33", "2"),
    ];
    let mut first: Option<Vec<(String, Vec<u64>)>> = None;
    for (i, (input, batch, threads)) in runs.iter().enumerate() {
        let out = dir.path().join(format!("run-{i}"));
        let o = atlasflow(&["run", spec.to_str().unwrap(), "--input", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q", "--batch-size", batch, "--threads", threads]);
        assert!(o.status.success(), "{}", stderr(&o));
        let f = hdf5::File::open(out.join("results/census-smartseq2-liver.h5ad")).unwrap();
        let mut got = Vec::new();
        for ds in ["X", "obsm/X_pca", "obsm/X_umap", "varm/PCs", "obsp/connectivities/data", "obsp/distances/data"] {
            got.push((ds.to_string(), f.dataset(ds).unwrap().read_raw::<f64>().unwrap().into_iter().map(f64::to_bits).collect()));
        }
        got.push(("obs/leiden/codes".into(), f.dataset("obs/leiden/codes").unwrap().read_raw::<i64>().unwrap().into_iter().map(|c| c as u64).collect()));
        match &first {
            None => first = Some(got),
            Some(want) => {
                for ((name, g), (_, w)) in got.iter().zip(want) {
                    assert!(!g.is_empty() && g == w, "{name} differs: {} batch {batch} threads {threads}", input.display());
                }
            }
        }
    }
}

/// `atlasflow inspect` on a Census-shaped TileDB-SOMA tree (written by tiledbsoma, see
/// scripts/make_soma_fixtures.py) describes it with atlasflow's own reader; a damaged schema
/// gives an error naming the file, never a panic.
#[test]
fn inspect_describes_a_tiledb_soma_census() {
    let census = repo().join("tests/data/soma/census");
    let o = atlasflow(&["inspect", census.to_str().expect("utf-8")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for want in [
        "census_schema_version: 2.1.0",
        "homo_sapiens: SOMAExperiment",
        "raw: SOMASparseNDArray [800 × 200], 3 fragment(s), format version 22",
        "feature_length (int64)",
        "datasets: SOMADataFrame [3]",
    ] {
        assert!(out.contains(want), "inspect output lacks {want:?}:\n{out}");
    }

    let tmp = tempfile::tempdir().expect("tempdir");
    let copy = tmp.path().join("census");
    support::copy_tree(&census, &copy);
    let schemas = copy.join("census_data/homo_sapiens/obs/__schema");
    let schema = std::fs::read_dir(&schemas)
        .expect("obs schema dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.is_file())
        .expect("a schema file");
    let bytes = std::fs::read(&schema).expect("read schema");
    std::fs::write(&schema, &bytes[..bytes.len() / 2]).expect("truncate");
    let o = atlasflow(&["inspect", copy.to_str().expect("utf-8")]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("__schema") && !err.contains("panicked"), "{err}");
}
