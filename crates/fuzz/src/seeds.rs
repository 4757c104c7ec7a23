//! Small valid inputs the fuzzers start from: two tiny h5ad files (CSR and dense X, with
//! categorical and numeric obs, var lengths, an embedding and uns) written with the
//! project's own h5ad writer, and an atlas store ingested from them.
//!
//! The committed corpus in `fuzz/seeds/` was written by [`write_corpus`] (the ignored test
//! `write_seeds` in `tests/fuzz_smoke.rs` reruns it); the store target rebuilds its store
//! template from the same h5ad files at start-up, so corpus and template agree.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, DictionaryArray, Float32Array, Int32Array, Int64Array, StringArray};
use arrow::datatypes::Int32Type;
use atlasflow_atlas::{IngestOptions, ingest};
use atlasflow_core::batch::CELL_ID;
use atlasflow_core::{CellBatch, Csr, GeneTable, Uns};
use atlasflow_io::{H5adWriter, XKind};

/// One tiny dataset: which genes of a shared pool it measures and how X is stored.
struct Tiny {
    id: &'static str,
    tissue: &'static str,
    genes: std::ops::Range<usize>,
    cells: usize,
    kind: XKind,
}

const TINY: [Tiny; 2] = [
    Tiny { id: "liver-a", tissue: "liver", genes: 0..8, cells: 10, kind: XKind::Csr },
    Tiny { id: "lung-b", tissue: "lung", genes: 4..12, cells: 6, kind: XKind::Dense },
];

/// The file names of the tiny h5ad datasets, in the order [`write_tiny_h5ads`] writes them.
pub const TINY_H5AD: [&str; 2] = ["liver-a.h5ad", "lung-b.h5ad"];

fn err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

/// Count of gene `j` in cell `i`: mostly zeros, small integers elsewhere (ingest wants
/// non-negative counts; the presence matrix wants some genes absent).
fn count(i: usize, j: usize) -> f32 {
    let v = (i * 7 + j * 3) % 5;
    if v < 2 { 0.0 } else { (v + i % 3) as f32 }
}

fn genes_of(t: &Tiny) -> Result<GeneTable, String> {
    let g = GeneTable::from_names(t.genes.clone().map(|j| format!("ENSMUSG{j:011}")).collect());
    let g = g
        .with_column("feature_name", Arc::new(StringArray::from_iter_values(t.genes.clone().map(|j| format!("Gene{j}")))))
        .map_err(|e| err("feature_name", e))?;
    g.with_column("feature_length", Arc::new(Int64Array::from_iter_values(t.genes.clone().map(|j| 800 + 37 * j as i64))))
        .map_err(|e| err("feature_length", e))
}

fn batch_of(t: &Tiny) -> Result<CellBatch, String> {
    let n = t.cells;
    let width = t.genes.len();
    let types = ["hepatocyte", "T cell", "B cell"];
    let ids: ArrayRef = Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("{}-{i}", t.id))));
    let keys = Int32Array::from_iter_values((0..n).map(|i| (i % types.len()) as i32));
    let cell_type: ArrayRef = Arc::new(
        DictionaryArray::<Int32Type>::try_new(keys, Arc::new(StringArray::from(types.to_vec()))).map_err(|e| err("cell_type", e))?,
    );
    let tissue: ArrayRef = Arc::new(
        DictionaryArray::<Int32Type>::try_new(Int32Array::from(vec![0; n]), Arc::new(StringArray::from(vec![t.tissue])))
            .map_err(|e| err("tissue", e))?,
    );
    let donor: ArrayRef = Arc::new(StringArray::from_iter((0..n).map(|i| (i != 1).then(|| format!("donor{}", i % 2)))));
    let score: ArrayRef = Arc::new(Float32Array::from_iter_values((0..n).map(|i| i as f32 * 0.5)));
    let n_genes: ArrayRef = Arc::new(Int32Array::from_iter_values((0..n).map(|i| (i * 3) as i32)));
    let primary: ArrayRef = Arc::new(BooleanArray::from((0..n).map(|i| i % 2 == 0).collect::<Vec<_>>()));
    let rows: Vec<Vec<f32>> = (0..n).map(|i| t.genes.clone().map(|j| count(i, j)).collect()).collect();
    let obs = vec![
        (CELL_ID.to_string(), ids),
        ("cell_type".to_string(), cell_type),
        ("tissue".to_string(), tissue),
        ("donor_id".to_string(), donor),
        ("score".to_string(), score),
        ("n_genes".to_string(), n_genes),
        ("is_primary_data".to_string(), primary),
    ];
    let b = match t.kind {
        XKind::Csr => CellBatch::from_csr(obs, Csr::from_dense(&rows)),
        XKind::Dense => CellBatch::from_dense(obs, rows.concat(), width),
    }
    .map_err(|e| err("batch", e))?;
    let pca: Vec<f32> = (0..n).flat_map(|i| [i as f32, 1.0 - i as f32]).collect();
    b.with_obsm("X_pca", pca, 2).map_err(|e| err("obsm", e))
}

fn uns_of(t: &Tiny) -> Uns {
    Uns::map()
        .with("title", Uns::Str(format!("Tiny {} example", t.tissue)))
        .with("log1p", Uns::map().with("base", Uns::Null))
        .with("pca", Uns::map().with("variance_ratio", Uns::FloatArray(vec![0.5, 0.25])).with("n", Uns::Int(2)))
        .with("flags", Uns::map().with("on", Uns::Bool(true)).with("x", Uns::Float(1.5)))
        .with("names", Uns::StrArray(vec!["a".into(), "b".into()]))
}

/// Write the tiny h5ad files into `dir` (names [`TINY_H5AD`]) and return their paths.
pub fn write_tiny_h5ads(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for (t, name) in TINY.iter().zip(TINY_H5AD) {
        let path = dir.join(name);
        let genes = genes_of(t)?;
        let mut w = H5adWriter::create(&path, &genes, t.kind).map_err(|e| err(name, e))?;
        w.write_batch(&batch_of(t)?).map_err(|e| err(name, e))?;
        w.finish(&uns_of(t)).map_err(|e| err(name, e))?;
        out.push(path);
    }
    Ok(out)
}

/// Build a store at `store` (a directory that does not exist yet, or is empty) from the
/// tiny h5ad files written into `scratch`: two datasets of one organism, Mus musculus.
pub fn write_tiny_store(store: &Path, scratch: &Path) -> Result<(), String> {
    std::fs::create_dir_all(scratch).map_err(|e| err(&scratch.display().to_string(), e))?;
    let inputs = write_tiny_h5ads(scratch)?;
    let mut opts = IngestOptions::new("Mus musculus");
    opts.dataset_ids = TINY.iter().map(|t| t.id.to_string()).collect();
    opts.collection_name = "atlasflow fuzz seeds".into();
    // Small row groups so a part has several and reads exercise row-group selection.
    opts.row_group_nnz = 16;
    ingest(store, &inputs, &opts, &mut |_, _, _| {}).map_err(|e| err("ingest", e))?;
    Ok(())
}

/// Write the seed corpus of every target under `seeds_dir/<target>/`: the pipeline YAMLs
/// given (plus small variants that reach overrides, census filters and plots), the tiny h5ad
/// files, and each file of the tiny store prefixed by the two selector bytes that make the
/// store target put it in place (and pick a query).
pub fn write_corpus(seeds_dir: &Path, pipelines: &[PathBuf]) -> Result<(), String> {
    let scratch = tempfile::tempdir().map_err(|e| err("temp dir", e))?;
    let spec_dir = seeds_dir.join("spec_yaml");
    let h5ad_dir = seeds_dir.join("h5ad_reader");
    let store_dir = seeds_dir.join("atlas_store");
    for d in [&spec_dir, &h5ad_dir, &store_dir] {
        std::fs::create_dir_all(d).map_err(|e| err(&d.display().to_string(), e))?;
    }
    let write = |p: PathBuf, bytes: &[u8]| std::fs::write(&p, bytes).map_err(|e| err(&p.display().to_string(), e));
    for p in pipelines {
        let text = std::fs::read(p).map_err(|e| err(&p.display().to_string(), e))?;
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "pipeline.yaml".into());
        write(spec_dir.join(name), &text)?;
    }
    for (name, text) in EXTRA_SPECS {
        write(spec_dir.join(name), text.as_bytes())?;
    }
    for p in write_tiny_h5ads(scratch.path())? {
        let bytes = std::fs::read(&p).map_err(|e| err(&p.display().to_string(), e))?;
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        write(h5ad_dir.join(name), &bytes)?;
    }
    let store = scratch.path().join("store");
    write_tiny_store(&store, &scratch.path().join("inputs"))?;
    for (k, rel) in crate::STORE_FILES.iter().enumerate() {
        let bytes = std::fs::read(store.join(rel)).map_err(|e| err(rel, e))?;
        // Byte 0 picks the file, byte 1 the query (see `atlas_store`).
        let mut seed = vec![k as u8, (k % 3) as u8];
        seed.extend_from_slice(&bytes);
        let name = rel.rsplit('/').take(2).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("-");
        write(store_dir.join(format!("{k}-{name}")), &seed)?;
    }
    Ok(())
}

/// Hand-written pipelines that reach what the tutorial file does not: `#set` overrides, a
/// census source with both filters and a column list, explicit ids and inputs, a plot with
/// options, and global stages.
const EXTRA_SPECS: [(&str, &str); 3] = [
    (
        "h5ad-overrides.yaml",
        "name: o\nseed: 3\nsource:\n  h5ad: in.h5ad\nsteps:\n  - stage: qc_metrics\n    qc_vars: [mt]\n    percent_top: [5, 10]\n  - stage: filter_cells\n    min_genes: 2\n    max_counts: 1e6\n  - stage: filter_genes\n    min_cells: 1\n  - stage: normalize_total\n    exclude_highly_expressed: true\n    max_fraction: 0.2\n  - stage: log1p\n    base: 2\n    id: lg\n  - stage: highly_variable_genes\n    flavor: cell_ranger\n    n_top_genes: 10\n    subset: true\n  - stage: scale\n    zero_center: false\n  - stage: pca\n    n_comps: 5\n    input: lg\noutputs:\n  - h5ad: out.h5ad\n  - parquet: cells.parquet\n    from: lg\n#set lg.base=10\n#set pca.n_comps=3\n#set filter_cells.max_genes=null\n",
    ),
    (
        "census-filters.yaml",
        "name: c\nsource:\n  census: store/\n  organism: Mus musculus\n  measurement: RNA\n  obs_filter: \"tissue in ['liver', 'lung'] and (score >= 0.5 or not is_primary_data) and dataset_title != 'x'\"\n  var_filter: \"feature_length > 900 and feature_name != 'Gene3'\"\n  genes: dataset_presence_all\n  obs_columns: [cell_type, tissue]\nsteps:\n  - stage: gene_length_normalize\n    column: feature_length\n  - stage: normalize_total\n    target_sum: 1e4\n    key_added: size_factor\n  - stage: log1p\noutputs:\n  - h5ad: out.h5ad\n",
    ),
    (
        "globals-plot.yaml",
        "name: g\nsource:\n  h5ad: in.h5ad\nsteps:\n  - stage: pca\n    n_comps: 4\n    zero_center: true\n  - stage: neighbors\n    n_neighbors: 5\n    metric: cosine\n    method: gauss\n  - stage: umap\n    min_dist: 0.1\n    init_pos: random\n    maxiter: 10\n  - stage: leiden\n    resolution: 0.5\noutputs:\n  - plot: umap.png\n    color: leiden\n  - h5ad: out.h5ad\n",
    ),
];
