//! The tutorial pipeline end to end, through the `atlasflow` binary: scanpy's numbers on
//! real and generated data, the same bits for any batch size and thread count, a file real
//! scanpy opens, and clear errors with no output for bad input.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{assert_abs, assert_rel, column, corr, data_dir, Expected};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pipeline() -> PathBuf {
    repo().join("pipelines/census-smartseq2-liver.yaml")
}

fn atlasflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_atlasflow")).args(args).output().expect("run atlasflow")
}

fn run_tutorial(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let spec = pipeline();
    let mut args = vec!["run", spec.to_str().unwrap(), "--input", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"];
    args.extend_from_slice(extra);
    atlasflow(&args)
}

fn output_file(out: &Path) -> PathBuf {
    out.join("results/census-smartseq2-liver.h5ad")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn compare_with_scanpy(dataset: &str) {
    let dir = tempfile::tempdir().unwrap();
    let input = data_dir(dataset).join("input.h5ad");
    let o = run_tutorial(&input, dir.path(), &[]);
    assert!(o.status.success(), "{dataset}: {}", stderr(&o));
    let ours = Expected::open_path(&output_file(dir.path()));
    let want = Expected::open(dataset);

    // Same cells and genes (filters, then the highly variable subset).
    let cells = ours.strings("obs/_index");
    assert_eq!(cells, want.strings("filter_cells/obs_names"), "{dataset}: kept cells");
    let genes = ours.strings("var/_index");
    assert_eq!(genes, want.strings("hvg_subset/var_names"), "{dataset}: highly variable genes");

    // Scaled X: float32 stream against scanpy's float64, values up to 10.
    assert_eq!(ours.shape("X"), vec![cells.len(), genes.len()]);
    assert_abs(&format!("{dataset}: scaled X"), &ours.f64s("X"), &want.f64s("scale/X"), 1e-4);
    assert_rel(&format!("{dataset}: var mean"), &ours.f64s("var/mean"), &want.f64s("scale/var/mean"), 1e-5);
    assert_rel(&format!("{dataset}: var std"), &ours.f64s("var/std"), &want.f64s("scale/var/std"), 1e-5);

    // HVG columns of the kept genes.
    let all_genes = want.strings("filter_genes/var_names");
    let pos: Vec<usize> = genes.iter().map(|g| all_genes.iter().position(|a| a == g).unwrap()).collect();
    let pick = |v: Vec<f64>| pos.iter().map(|&i| v[i]).collect::<Vec<f64>>();
    assert_rel(&format!("{dataset}: means"), &ours.f64s("var/means"), &pick(want.f64s("hvg/var/means")), 1e-5);
    assert_abs(&format!("{dataset}: dispersions_norm"), &ours.f64s("var/dispersions_norm"), &pick(want.f64s("hvg/var/dispersions_norm")), 1e-3);

    // QC columns of the kept cells.
    let all_cells: Vec<String> = ours.strings("obs/_index");
    assert_eq!(all_cells.len(), cells.len());
    let n_genes = ours.f64s("obs/n_genes");
    assert_rel(&format!("{dataset}: obs n_genes"), &n_genes, &want.f64s("filter_cells/n_genes"), 0.0);

    // PCA: the first 10 components correlate ≥ 0.999 with scanpy's; variance ratios agree.
    let k = want.shape("pca/X_pca")[1];
    assert_eq!(ours.shape("obsm/X_pca"), vec![cells.len(), k]);
    let (a, b) = (ours.f64s("obsm/X_pca"), want.f64s("pca/X_pca"));
    for j in 0..10.min(k) {
        let c = corr(&column(&a, k, j), &column(&b, k, j)).abs();
        assert!(c >= 0.999, "{dataset}: PC {} |corr| = {c}", j + 1);
    }
    assert_rel(&format!("{dataset}: variance_ratio"), &ours.f64s("uns/pca/variance_ratio")[..10.min(k)], &want.f64s("pca/variance_ratio")[..10.min(k)], 1e-3);
    // Loadings of the first 10 PCs, signs by the same rule.
    let (pa, pb) = (ours.f64s("varm/PCs"), want.f64s("pca/PCs"));
    for j in 0..10.min(k) {
        let c = corr(&column(&pa, k, j), &column(&pb, k, j));
        assert!(c >= 0.999, "{dataset}: loadings of PC {} corr = {c} (sign convention?)", j + 1);
    }

    // The tutorial's second half on our PCs against scanpy's on its own.
    compare_graph_stages(dataset, &ours, &want);

    // The run record.
    let rec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("results/run.json")).unwrap()).unwrap();
    assert_eq!(rec["steps"].as_array().unwrap().len(), 12);
    assert!(rec["peak_rss_bytes"].as_u64().unwrap() > 0);
}

/// neighbors, umap and leiden of the pipeline against scanpy's run of the same steps on
/// its own PCs (which ours match to ~1e-6): the same kNN graph, a layout as trustworthy,
/// and clusters as good.
fn compare_graph_stages(dataset: &str, ours: &Expected, want: &Expected) {
    let n = ours.strings("obs/_index").len();
    // Connectivities: same pattern and values for (nearly) every cell; a cell whose 14th
    // and 15th neighbours are within float noise of each other may swap them.
    let (a, b) = (ours.csr("obsp/connectivities"), want.csr("neighbors/connectivities"));
    let (a_vals, b_vals, a, b) = (&a.values, &b.values, &a.csr, &b.csr);
    assert_eq!(a.indptr.len(), n + 1);
    let mut same_rows = 0;
    let mut worst: f64 = 0.0;
    for r in 0..n {
        let (ra, rb) = ((a.indptr[r] as usize, a.indptr[r + 1] as usize), (b.indptr[r] as usize, b.indptr[r + 1] as usize));
        if a.indices[ra.0..ra.1] == b.indices[rb.0..rb.1] {
            same_rows += 1;
            for (x, y) in a_vals[ra.0..ra.1].iter().zip(&b_vals[rb.0..rb.1]) {
                worst = worst.max((x - y).abs());
            }
        }
    }
    assert!(same_rows as f64 >= 0.98 * n as f64, "{dataset}: only {same_rows}/{n} rows of connectivities have scanpy's neighbours");
    assert!(worst < 1e-4, "{dataset}: connectivities differ by {worst} on rows with the same neighbours");
    // UMAP: trustworthiness (k = 15) within 0.01 of scanpy's.
    let pcs = ours.f64s("obsm/X_pca");
    let emb = ours.f64s("obsm/X_umap");
    assert_eq!(emb.len(), 2 * n);
    let k = 15.min((n - 1) / 2);
    let t = support::trustworthiness(&pcs, pcs.len() / n, &emb, 2, k);
    let t_scanpy = want.f64s("umap/trustworthiness")[0];
    assert!(t >= t_scanpy - 0.01, "{dataset}: UMAP trustworthiness {t:.4} vs scanpy's {t_scanpy:.4}");
    // Leiden: on our graph, our partition is as good (modularity) as scanpy's labels; with
    // real structure (several cell types) it is the same partition. On one cell type
    // (ziegenhain) the partition of noise is arbitrary, so only the quality is compared.
    let labels = ours.strings("obs/leiden");
    let theirs = want.strings("leiden/labels");
    let (q_ours, q_theirs) = (support::modularity(a, a_vals, &labels), support::modularity(a, a_vals, &theirs));
    assert!(q_ours >= q_theirs - 0.01, "{dataset}: leiden modularity {q_ours:.4} vs scanpy's labels {q_theirs:.4}");
    let types: std::collections::BTreeSet<String> = ours.strings("obs/cell_type").into_iter().collect();
    if types.len() > 1 {
        let ari = support::ari(&labels, &theirs);
        assert!(ari >= 0.9, "{dataset}: leiden ARI {ari:.3} against scanpy's leiden");
    }
    if want.has("leiden/ari_cell_type") {
        let truth = ours.strings("obs/cell_type");
        let ours_ari = support::ari(&labels, &truth);
        let scanpy_ari = want.f64s("leiden/ari_cell_type")[0];
        assert!(ours_ari >= scanpy_ari - 0.02, "{dataset}: leiden ARI with cell_type {ours_ari:.3} vs scanpy's {scanpy_ari:.3}");
    }
}

#[test]
fn tutorial_matches_scanpy_on_generated_smartseq2() {
    compare_with_scanpy("synth");
}

#[test]
fn tutorial_matches_scanpy_on_real_smartseq2() {
    compare_with_scanpy("ziegenhain");
}

#[test]
fn same_bits_for_any_batch_size_and_thread_count() {
    // synth keeps half its genes (no spill); ziegenhain keeps a tenth, so its later passes
    // read a spill of the stream after the highly-variable subset.
    for dataset in ["synth", "ziegenhain"] {
        let input = data_dir(dataset).join("input.h5ad");
        let mut outputs = Vec::new();
        for (batch, threads) in [("1", "1"), ("7", "2"), ("10000", "2"), ("10000", "1")] {
            let dir = tempfile::tempdir().unwrap();
            let o = run_tutorial(&input, dir.path(), &["--batch-size", batch, "--threads", threads]);
            assert!(o.status.success(), "{dataset} batch {batch} threads {threads}: {}", stderr(&o));
            let f = Expected::open_path(&output_file(dir.path()));
            outputs.push((batch, threads, f.f64s("X"), f.f64s("obsm/X_pca"), f.f64s("varm/PCs"), f.strings("var/_index"), f.f64s("obsm/X_umap"), f.strings("obs/leiden"), f.csr("obsp/connectivities").values));
        }
        let first = &outputs[0];
        for o in &outputs[1..] {
            assert!(o.2 == first.2, "{dataset}: X differs between batch {} / threads {} and batch {} / threads {}", o.0, o.1, first.0, first.1);
            assert!(o.3 == first.3, "{dataset}: X_pca differs (batch {} threads {})", o.0, o.1);
            assert!(o.4 == first.4, "{dataset}: PCs differ (batch {} threads {})", o.0, o.1);
            assert_eq!(o.5, first.5);
            assert!(o.6 == first.6, "{dataset}: X_umap differs (batch {} threads {})", o.0, o.1);
            assert!(o.7 == first.7, "{dataset}: leiden differs (batch {} threads {})", o.0, o.1);
            assert!(o.8 == first.8, "{dataset}: connectivities differ (batch {} threads {})", o.0, o.1);
        }
    }
}

fn reference_python() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("ATLASFLOW_PYTHON").map(PathBuf::from),
        Some(repo().join(".venv-ref/bin/python")),
    ];
    candidates.into_iter().flatten().find(|p| {
        Command::new(p).args(["-c", "import scanpy"]).output().is_ok_and(|o| o.status.success())
    })
}

#[test]
fn scanpy_opens_the_output() {
    let Some(py) = reference_python() else {
        assert!(std::env::var_os("CI").is_none(), "CI must install the reference python (.venv-ref)");
        eprintln!("skipped: no reference python with scanpy (set ATLASFLOW_PYTHON or create .venv-ref)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let o = run_tutorial(&data_dir("synth").join("input.h5ad"), dir.path(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let script = r#"
import sys, numpy as np, scanpy as sc
a = sc.read_h5ad(sys.argv[1])
assert a.X.dtype == np.float32 and a.X.ndim == 2, a.X.dtype
assert a.obsm["X_pca"].shape == (a.n_obs, 50), a.obsm["X_pca"].shape
assert a.varm["PCs"].shape == (a.n_vars, 50)
assert a.var["highly_variable"].all() and a.n_vars >= 1000
for c in ("means", "dispersions", "dispersions_norm", "mean", "std", "n_cells", "n_cells_by_counts", "mean_counts"):
    assert c in a.var.columns, c
for c in ("n_genes_by_counts", "total_counts", "n_genes"):
    assert c in a.obs.columns, c
assert str(a.obs["cell_type"].dtype) == "category"
assert set(a.uns["pca"]) >= {"variance", "variance_ratio", "params"}
assert a.uns["hvg"]["flavor"] == "seurat"
assert "log1p" in a.uns
# The tutorial's second half, as scanpy reads it back.
assert a.obsp["connectivities"].shape == (a.n_obs, a.n_obs) and a.obsp["connectivities"].dtype == np.float32
assert abs(a.obsp["connectivities"] - a.obsp["connectivities"].T).max() < 1e-6
assert a.uns["neighbors"]["connectivities_key"] == "connectivities" and a.uns["neighbors"]["params"]["n_neighbors"] == 15
assert a.obsm["X_umap"].shape == (a.n_obs, 2) and a.obsm["X_umap"].dtype == np.float32
assert set(a.uns["umap"]["params"]) >= {"a", "b"}
assert str(a.obs["leiden"].dtype) == "category" and list(a.obs["leiden"].cat.categories[:2]) == ["0", "1"]
assert len(a.uns["cell_type_colors"]) == a.obs["cell_type"].nunique()
import matplotlib; matplotlib.use("Agg")
sc.pl.umap(a, color=["cell_type", "leiden"], show=False)  # sc.pl.umap draws our X_umap
sc.tl.leiden(a, key_added="leiden_scanpy")                 # and clusters our graph
import pandas as pd
t = pd.read_parquet(sys.argv[2])
assert list(t["cell_id"]) == list(a.obs_names), "parquet cell order"
assert np.allclose(t[["X_umap-0", "X_umap-1"]].to_numpy(), a.obsm["X_umap"])
assert str(t["leiden"].dtype) == "category"
sc.pp.neighbors(a, n_pcs=10)  # scanpy works on our PCs
print("ok", a.shape)
"#;
    let parquet = dir.path().join("results/census-smartseq2-liver-cells.parquet");
    let o = Command::new(&py).args(["-c", script, output_file(dir.path()).to_str().unwrap(), parquet.to_str().unwrap()]).output().unwrap();
    assert!(o.status.success(), "scanpy could not use our output:\n{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
}

fn assert_fails_cleanly(o: &Output, out: &Path, needle: &str) {
    assert!(!o.status.success(), "expected a failure mentioning {needle:?}");
    let err = stderr(o);
    assert!(err.contains(needle), "error should mention {needle:?}: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    let leftovers: Vec<_> = walk(out);
    assert!(leftovers.is_empty(), "a failed run left files: {leftovers:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() { files.extend(walk(&p)); } else { files.push(p); }
        }
    }
    files
}

/// A copy of the synthetic input with one stored value of X replaced.
fn with_x_value(dir: &Path, value: f32) -> PathBuf {
    let p = dir.join("bad.h5ad");
    std::fs::copy(data_dir("synth").join("input.h5ad"), &p).unwrap();
    let f = hdf5::File::open_rw(&p).unwrap();
    let ds = f.dataset("X/data").unwrap();
    let mut v = ds.read_raw::<f32>().unwrap();
    v[3] = value;
    ds.write_raw(&v).unwrap();
    p
}

#[test]
fn bad_inputs_fail_with_a_clear_message_and_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // No feature_length in var (10x data has none).
    let o = run_tutorial(&repo().join("tests/data/scanpy_pbmc68k_reduced_recovered_counts_700cells.h5ad"), &out, &[]);
    assert_fails_cleanly(&o, &out, "feature_length");
    // A truncated file.
    let src = std::fs::read(data_dir("synth").join("input.h5ad")).unwrap();
    let trunc = tmp.path().join("truncated.h5ad");
    std::fs::write(&trunc, &src[..src.len() / 2]).unwrap();
    let o = run_tutorial(&trunc, &out, &[]);
    assert_fails_cleanly(&o, &out, "truncated.h5ad");
    // NaN and negative counts.
    let nan = with_x_value(tmp.path(), f32::NAN);
    let o = run_tutorial(&nan, &out, &[]);
    assert_fails_cleanly(&o, &out, "bad.h5ad");
    let neg = with_x_value(tmp.path(), -2.0);
    let o = run_tutorial(&neg, &out, &[]);
    assert_fails_cleanly(&o, &out, "negative");
    // Every cell filtered out.
    let o = run_tutorial(&data_dir("synth").join("input.h5ad"), &out, &["--set", "filter_cells.min_genes=1000000"]);
    assert_fails_cleanly(&o, &out, "filter_cells");
    // A memory budget too small for the PCA state is refused up front.
    let o = run_tutorial(&data_dir("synth").join("input.h5ad"), &out, &["--memory", "2MiB"]);
    assert_fails_cleanly(&o, &out, "--memory");
}

#[test]
fn spec_errors_name_the_yaml_line() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(pipeline()).unwrap();
    let cases = [
        (text.replace("stage: log1p", "stage: log1pp"), "unknown stage \"log1pp\" (did you mean log1p?)"),
        (text.replace("min_genes: 500", "min_gene: 500"), "unknown parameter \"min_gene\" (did you mean min_genes?)"),
        (text.replace("min_genes: 500", "min_genes: many"), "expected a whole number"),
        (text.replace("flavor: seurat", "flavor: seurat_v9"), "allowed: seurat, cell_ranger"),
        (text.replace("  - stage: log1p", "  - stage: log1p\n    input: nowhere"), "input \"nowhere\" is not a step id"),
        (text.replace("  - stage: leiden                     # sc.tl.leiden (leidenalg flavor)", "  - stage: leiden\n  - stage: filter_cells\n    min_genes: 1"), "cannot follow neighbors"),
        (text.replace("n_neighbors: 15", "n_neighbors: 15\n    metric: manhattan"), "allowed: euclidean, cosine"),
        (text.replace("  - stage: umap ", "  - stage: umap\n    min_dists: 0.3 "), "did you mean min_dist?"),
        (text.replace("results/umap.png ", "results/umap.jpg "), "must end in .png or .svg"),
        (text.replace("    color: cell_type", "    colour: cell_type"), "unknown parameter \"colour\" (did you mean color?)"),
        (text.replace("  - stage: leiden ", "  - stage: leiden\n    restrict_to: [cell_type] "), "restrict_to"),
    ];
    for (yaml, needle) in cases {
        let p = tmp.path().join("bad.yaml");
        std::fs::write(&p, &yaml).unwrap();
        let o = atlasflow(&["validate", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{needle}");
        let err = stderr(&o);
        assert!(err.contains(needle), "{err}");
        // file:line:column: …
        let loc = err.trim_start_matches("error: ").split(':').nth(1).unwrap_or("");
        assert!(loc.parse::<u64>().is_ok_and(|l| l > 0), "no line number in {err}");
    }
}

#[test]
fn validate_and_explain_describe_the_plan() {
    let o = atlasflow(&["validate", pipeline().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for step in ["gene_length_normalize", "filter_genes", "highly_variable_genes", "pca", "neighbors", "umap", "leiden", "plot results/umap.png"] {
        assert!(text.contains(step), "{text}");
    }
    let input = data_dir("synth").join("input.h5ad");
    let o = atlasflow(&["explain", pipeline().to_str().unwrap(), "--input", input.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("pass 1: read the source"), "{text}");
    assert!(text.contains("pass 4: read the source, replay [gene_length_normalize"), "{text}");
    assert!(text.contains("(step scale folds in pass 2"), "{text}");
    assert!(text.contains("in memory: step neighbors"), "{text}");
    // A tenth of the genes kept: the last pass reads the spill.
    let input = data_dir("ziegenhain").join("input.h5ad");
    let o = atlasflow(&["explain", pipeline().to_str().unwrap(), "--input", input.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("pass 4: read the spill after highly_variable_genes"), "{text}");
}

#[test]
fn graph_outputs_fail_cleanly_when_what_they_read_is_missing() {
    // A plot coloured by a column the data lack: refused after the stream, before any
    // global stage runs, and no file is left.
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(pipeline()).unwrap().replace("    color: cell_type", "    color: cell_typ");
    let spec = tmp.path().join("p.yaml");
    std::fs::write(&spec, text.replace("../data/example/", &format!("{}/data/example/", repo().display()))).unwrap();
    let out = tmp.path().join("out");
    let input = data_dir("synth").join("input.h5ad");
    let o = atlasflow(&["run", spec.to_str().unwrap(), "--input", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"]);
    assert_fails_cleanly(&o, &out, "needs obs column 'cell_typ'");
    // umap without neighbors: the same, naming the step and what to add.
    let text = std::fs::read_to_string(pipeline()).unwrap().replace("  - stage: neighbors                  # sc.pp.neighbors(n_neighbors=15)\n    n_neighbors: 15\n", "");
    std::fs::write(&spec, &text).unwrap();
    let o = atlasflow(&["run", spec.to_str().unwrap(), "--input", input.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"]);
    assert_fails_cleanly(&o, &out, "add a neighbors step before it");
}
