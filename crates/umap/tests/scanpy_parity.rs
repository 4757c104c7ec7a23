//! UMAP against scanpy 1.11.5 / umap-learn 0.5.12 on the reference graphs
//! (tests/data/graph, written by scripts/reference_graph.py), starting from scanpy's own
//! connectivities. Layouts cannot match bit for bit (MT19937, ARPACK, fastmath), so the
//! quality measure is sklearn's trustworthiness (k = 15) against the PCs.

#![allow(clippy::unwrap_used)]

use atlasflow_core::{CellFrame, Embedding, GlobalStage, Graph, Uns};
use atlasflow_umap::{InitPos, Umap, UmapParams, find_ab_params, umap_embedding};
use rayon::prelude::*;

fn path(name: &str) -> String {
    format!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/graph/{}.h5"), name)
}

struct Reference {
    pcs: Embedding,
    connectivities: Graph,
    scanpy_umap: Embedding,
    trustworthiness: f64,
}

fn load(name: &str) -> Reference {
    let f = hdf5::File::open(path(name)).unwrap();
    let pcs = f.dataset("pcs").unwrap().read_2d::<f32>().unwrap();
    let width = pcs.ncols();
    let pcs = Embedding { values: pcs.iter().copied().collect(), width };
    let data = f.dataset("neighbors/connectivities/data").unwrap().read_raw::<f64>().unwrap();
    let indices = f.dataset("neighbors/connectivities/indices").unwrap().read_raw::<i64>().unwrap();
    let indptr = f.dataset("neighbors/connectivities/indptr").unwrap().read_raw::<i64>().unwrap();
    let n = indptr.len() - 1;
    let connectivities = Graph {
        n,
        indptr: indptr.iter().map(|&x| x as u64).collect(),
        indices: indices.iter().map(|&x| x as u32).collect(),
        values: data,
        float32: true,
    };
    let u = f.dataset("umap/X_umap").unwrap().read_2d::<f32>().unwrap();
    let scanpy_umap = Embedding { values: u.iter().copied().collect(), width: u.ncols() };
    let trustworthiness = f.dataset("umap/trustworthiness").unwrap().read_scalar::<f64>().unwrap();
    Reference { pcs, connectivities, scanpy_umap, trustworthiness }
}

fn sq_dist(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum()
}

/// sklearn.manifold.trustworthiness(X, Y, n_neighbors=k), euclidean, exact:
/// 1 − 2/(n k (2n − 3k − 1)) Σ_i Σ_{j ∈ kNN_Y(i)} max(0, rank_X(i, j) − k), with rank_X the
/// 1-based position of j among i's neighbours in X (self excluded).
fn trustworthiness(x: &Embedding, y: &Embedding, k: usize) -> f64 {
    let n = x.n_rows();
    let total: f64 = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut dy: Vec<(f64, usize)> =
                (0..n).filter(|&j| j != i).map(|j| (sq_dist(y.row(i), y.row(j)), j)).collect();
            dy.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let dx: Vec<f64> = (0..n).map(|j| sq_dist(x.row(i), x.row(j))).collect();
            let mut s = 0.0;
            for &(_, j) in &dy[..k] {
                let rank = 1 + (0..n).filter(|&l| l != i && dx[l] < dx[j]).count();
                if rank > k {
                    s += (rank - k) as f64;
                }
            }
            s
        })
        .sum();
    let (nf, kf) = (n as f64, k as f64);
    1.0 - total * 2.0 / (nf * kf * (2.0 * nf - 3.0 * kf - 1.0))
}

fn check_trustworthiness(name: &str) -> Embedding {
    let r = load(name);
    let emb = umap_embedding(&r.connectivities, Some(&r.pcs), &UmapParams::default()).unwrap();
    assert_eq!(emb.width, 2);
    assert_eq!(emb.n_rows(), r.connectivities.n);
    let ours = trustworthiness(&r.pcs, &emb, 15);
    let theirs = trustworthiness(&r.pcs, &r.scanpy_umap, 15);
    eprintln!(
        "{name}: trustworthiness ours {ours:.4}, scanpy {:.4} (recomputed {theirs:.4})",
        r.trustworthiness
    );
    // The test's metric is sklearn's: it reproduces the stored value on scanpy's layout (to
    // 1e-4: sklearn's argsort orders tied distances of duplicated cells arbitrarily).
    assert!((theirs - r.trustworthiness).abs() < 1e-4, "{theirs} vs {}", r.trustworthiness);
    assert!(ours > r.trustworthiness - 0.01, "{name}: {ours} vs scanpy {}", r.trustworthiness);
    emb
}

#[test]
fn ab_params_match_umap_learn_grid() {
    let (a, b) = find_ab_params(1.0, 0.5).unwrap();
    assert!((a - 0.5830300203414425).abs() < 1e-6 && (b - 1.3341669924314914).abs() < 1e-6);
    for name in ["pbmc700", "synth300", "mouse10k"] {
        let f = hdf5::File::open(path(name)).unwrap();
        let rd = |k: &str| f.dataset(k).unwrap().read_raw::<f64>().unwrap();
        let (md, sp, ra, rb) = (rd("ab/min_dist"), rd("ab/spread"), rd("ab/a"), rd("ab/b"));
        assert!(md.len() >= 10);
        for i in 0..md.len() {
            let (a, b) = find_ab_params(sp[i], md[i]).unwrap();
            // MINPACK stops at ftol = 1.5e-8 on the sum of squares, a few 1e-6 (relative)
            // short of the minimum on some grid points (spread 0.5, min_dist 0.5: b is
            // 2.6e-6 off; scipy with ftol = xtol = 1e-15 gives our value there).
            let (ea, eb) = ((a - ra[i]).abs() / ra[i], (b - rb[i]).abs() / rb[i]);
            assert!(
                ea < 1e-5 && eb < 1e-5,
                "spread {} min_dist {}: ({a}, {b}) vs ({}, {})",
                sp[i],
                md[i],
                ra[i],
                rb[i]
            );
        }
        let ua = f.dataset("umap/a").unwrap().read_scalar::<f64>().unwrap();
        let ub = f.dataset("umap/b").unwrap().read_scalar::<f64>().unwrap();
        assert!((ua - a).abs() < 1e-6 && (ub - b).abs() < 1e-6);
    }
}

#[test]
fn pbmc700_trustworthiness() {
    check_trustworthiness("pbmc700");
}

/// 8 well-separated cell types: a disconnected graph, the multi-component layout.
#[test]
fn synth300_trustworthiness_multi_component() {
    check_trustworthiness("synth300");
}

#[test]
fn mouse10k_trustworthiness() {
    check_trustworthiness("mouse10k");
}

/// Same bits for 1 and 3 threads, on a graph of several SGD chunks.
#[test]
fn deterministic_across_thread_counts() {
    let r = load("mouse10k");
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let p = UmapParams { maxiter: Some(60), ..Default::default() };
                umap_embedding(&r.connectivities, Some(&r.pcs), &p).unwrap()
            })
    };
    let (one, three) = (run(1), run(3));
    assert!(one.values.iter().zip(&three.values).all(|(a, b)| a.to_bits() == b.to_bits()));
    // And the seed matters.
    let other = umap_embedding(
        &r.connectivities,
        Some(&r.pcs),
        &UmapParams { maxiter: Some(60), random_state: 7, ..Default::default() },
    )
    .unwrap();
    assert_ne!(one.values, other.values);
}

fn frame(r: &Reference) -> CellFrame {
    CellFrame {
        n_cells: r.connectivities.n,
        obsm: vec![("X_pca".into(), r.pcs.clone())],
        obsp: vec![("connectivities".into(), r.connectivities.clone())],
        uns: Uns::map().with(
            "neighbors",
            Uns::map().with("params", Uns::map().with("n_neighbors", Uns::Int(15))),
        ),
        ..Default::default()
    }
}

#[test]
fn stage_writes_x_umap_and_uns() {
    let r = load("synth300");
    let stage = Umap::new(UmapParams { random_state: 3, ..Default::default() }).unwrap();
    let f = frame(&r);
    let out = stage.run(&f).unwrap();
    assert_eq!(out.obsm.len(), 1);
    assert_eq!(out.obsm[0].0, "X_umap");
    assert_eq!(out.obsm[0].1.n_rows(), 300);
    let params = out.uns[0].1.get("params").unwrap();
    assert_eq!(out.uns[0].0, "umap");
    match (params.get("a"), params.get("b"), params.get("random_state")) {
        (Some(Uns::Float(a)), Some(Uns::Float(b)), Some(Uns::Int(3))) => {
            assert!((a - 0.58303002).abs() < 1e-6 && (b - 1.33416699).abs() < 1e-6)
        }
        other => panic!("{other:?}"),
    }
    // Default seed: no random_state entry; key_added renames both outputs.
    let stage = Umap::new(UmapParams { key_added: Some("U".into()), ..Default::default() }).unwrap();
    let out = stage.run(&f).unwrap();
    assert_eq!((out.obsm[0].0.as_str(), out.uns[0].0.as_str()), ("U", "U"));
    assert!(out.uns[0].1.get("params").unwrap().get("random_state").is_none());
    // Starting from scanpy's layout keeps a good layout.
    let mut f2 = f.clone();
    f2.obsm.push(("X_start".into(), r.scanpy_umap.clone()));
    let stage = Umap::new(UmapParams {
        init_pos: InitPos::parse("X_start").unwrap(),
        maxiter: Some(50),
        ..Default::default()
    })
    .unwrap();
    let out = stage.run(&f2).unwrap();
    assert!(trustworthiness(&r.pcs, &out.obsm[0].1, 15) > r.trustworthiness - 0.02);
    // Missing inputs and bad parameters are errors.
    assert!(Umap::new(UmapParams { n_components: 0, ..Default::default() }).is_err());
    assert!(Umap::new(UmapParams { spread: -1.0, ..Default::default() }).is_err());
    let stage = Umap::new(UmapParams { neighbors_key: "other".into(), ..Default::default() }).unwrap();
    assert!(stage.run(&f).is_err());
}

fn graph(n: usize, edges: &[(u32, u32, f64)]) -> Graph {
    let mut rows = vec![Vec::new(); n];
    for &(i, j, w) in edges {
        rows[i as usize].push((j, w));
        rows[j as usize].push((i, w));
    }
    let mut g = Graph { n, indptr: vec![0], float32: true, ..Default::default() };
    for r in rows {
        for (c, w) in r {
            g.indices.push(c);
            g.values.push(w);
        }
        g.indptr.push(g.indices.len() as u64);
    }
    g
}

/// Tiny and degenerate graphs give a layout or a clear error, never a panic.
#[test]
fn tiny_and_degenerate_inputs() {
    let p = UmapParams::default();
    assert!(umap_embedding(&graph(0, &[]), None, &p).is_err());
    assert!(umap_embedding(&graph(1, &[]), None, &p).is_err());
    assert!(umap_embedding(&graph(5, &[]), None, &p).is_err());
    for g in [
        graph(2, &[(0, 1, 1.0)]),
        graph(3, &[(0, 1, 1.0), (1, 2, 0.5)]),
        graph(3, &[(0, 1, 1.0)]),                          // an isolated vertex
        graph(6, &[(0, 1, 1.0), (2, 3, 1.0), (4, 5, 1.0)]), // 3 components
        graph(12, &(0..6).map(|i| (2 * i, 2 * i + 1, 1.0)).collect::<Vec<_>>()), // 6 > 2·dim
    ] {
        let e = umap_embedding(&g, None, &p).unwrap();
        assert_eq!(e.n_rows(), g.n);
        assert!(e.values.iter().all(|x| x.is_finite()));
        let e = umap_embedding(&g, None, &UmapParams { init_pos: InitPos::Random, ..p.clone() }).unwrap();
        assert!(e.values.iter().all(|x| x.is_finite()));
    }
    // Invalid weights and CSR are errors.
    assert!(umap_embedding(&graph(2, &[(0, 1, f64::NAN)]), None, &p).is_err());
    let mut bad = graph(3, &[(0, 1, 1.0)]);
    bad.indices[0] = 9;
    assert!(umap_embedding(&bad, None, &p).is_err());
    // A representation with NaN is an error, a wrong-sized one is ignored.
    let g = graph(12, &(0..6).map(|i| (2 * i, 2 * i + 1, 1.0)).collect::<Vec<_>>());
    let nan = Embedding { values: vec![f32::NAN; 24], width: 2 };
    assert!(umap_embedding(&g, Some(&nan), &p).is_err());
    let small = Embedding { values: vec![1.0; 4], width: 2 };
    assert!(umap_embedding(&g, Some(&small), &p).is_ok());
}
