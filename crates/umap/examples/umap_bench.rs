//! Times UMAP on a synthetic 200,000-cell kNN graph (not a test: run by hand with
//! `cargo run --release -p atlasflow-umap --example umap_bench [n_cells | file.h5]`; a
//! reference file from tests/data/graph times UMAP on scanpy's connectivities).
//!
//! Cells are drawn from a mixture of 3-D Gaussian blobs; the exact 15-NN (self included, as
//! scanpy) comes from a uniform grid search; weights are umap-like exp(−(d − d₁)/σ) with
//! σ = the row's mean distance, symmetrized by the fuzzy union w + wᵀ − w∘wᵀ.

#![allow(clippy::unwrap_used)]

use std::time::Instant;

use atlasflow_core::{Embedding, Graph};
use atlasflow_umap::eigen::laplacian_eigenvectors;
use atlasflow_umap::graph::prune;
use atlasflow_umap::{UmapParams, umap_embedding};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

const K: usize = 15;

fn main() {
    if let Some(h5) = std::env::args().nth(1).filter(|a| a.ends_with(".h5")) {
        return time_reference(&h5);
    }
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let centres: Vec<[f64; 3]> =
        (0..12).map(|_| [rng.random::<f64>() * 20.0, rng.random::<f64>() * 20.0, rng.random::<f64>() * 20.0]).collect();
    let pts: Vec<[f64; 3]> = (0..n)
        .map(|_| {
            let c = centres[rng.random_range(0..centres.len())];
            let s = 1.0 + 2.0 * rng.random::<f64>();
            std::array::from_fn(|d| c[d] + s * rng.sample::<f64, _>(StandardNormal))
        })
        .collect();
    let t0 = Instant::now();
    let knn = grid_knn(&pts);
    eprintln!("kNN: {:.1}s {}", t0.elapsed().as_secs_f64(), hwm());
    let g = fuzzy_graph(&knn, n);
    eprintln!("graph: {} edges {}", g.nnz(), hwm());

    let t = Instant::now();
    let pruned = prune(&g, 200, 200).unwrap();
    let wmax = pruned.max_weight();
    let per_epoch: f64 = pruned.weights.iter().map(|&w| (w / wmax) as f64).sum();
    eprintln!("edges sampled per epoch: {per_epoch:.0} (+{} negative)", 5.0 * per_epoch);
    let ev = laplacian_eigenvectors(&pruned, 2);
    eprintln!("spectral eigensolve alone: {:.1}s, converged: {} {}", t.elapsed().as_secs_f64(), ev.is_some(), hwm());

    let t = Instant::now();
    let short = UmapParams { maxiter: Some(20), init_pos: atlasflow_umap::InitPos::Random, ..Default::default() };
    umap_embedding(&g, None, &short).unwrap();
    eprintln!("20 epochs from a random init: {:.1}s", t.elapsed().as_secs_f64());
    let rep = Embedding { values: pts.iter().flatten().map(|&x| x as f32).collect(), width: 3 };
    let t = Instant::now();
    let emb = umap_embedding(&g, Some(&rep), &UmapParams::default()).unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!("UMAP on {n} cells ({} threads): {secs:.1}s; first cell at {:?}", rayon::current_num_threads(), emb.row(0));
}

/// Exact kNN (self first) by a uniform grid with a growing search shell.
fn grid_knn(pts: &[[f64; 3]]) -> Vec<Vec<(u32, f64)>> {
    let n = pts.len();
    let lo: [f64; 3] = std::array::from_fn(|d| pts.iter().map(|p| p[d]).fold(f64::INFINITY, f64::min));
    let hi: [f64; 3] = std::array::from_fn(|d| pts.iter().map(|p| p[d]).fold(f64::NEG_INFINITY, f64::max));
    let cells_per_axis = ((n as f64 / 16.0).cbrt().ceil() as usize).max(1);
    let size: [f64; 3] = std::array::from_fn(|d| ((hi[d] - lo[d]) / cells_per_axis as f64).max(1e-9));
    let cell_of = |p: &[f64; 3]| -> [usize; 3] {
        std::array::from_fn(|d| (((p[d] - lo[d]) / size[d]) as usize).min(cells_per_axis - 1))
    };
    let m = cells_per_axis;
    let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); m * m * m];
    for (i, p) in pts.iter().enumerate() {
        let c = cell_of(p);
        buckets[(c[0] * m + c[1]) * m + c[2]].push(i as u32);
    }
    let min_size = size.iter().cloned().fold(f64::INFINITY, f64::min);
    (0..n)
        .into_par_iter()
        .map(|i| {
            let c = cell_of(&pts[i]);
            let mut best: Vec<(f64, u32)> = Vec::new();
            let mut r = 1usize;
            loop {
                best.clear();
                let range = |d: usize| c[d].saturating_sub(r)..=(c[d] + r).min(m - 1);
                for x in range(0) {
                    for y in range(1) {
                        for z in range(2) {
                            for &j in &buckets[(x * m + y) * m + z] {
                                let p = &pts[j as usize];
                                let d2: f64 = (0..3).map(|d| (p[d] - pts[i][d]).powi(2)).sum();
                                best.push((d2, j));
                            }
                        }
                    }
                }
                if best.len() > K {
                    best.select_nth_unstable_by(K - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                    best.truncate(K);
                }
                best.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                // Exact once the k-th distance is within the searched shell.
                if best.len() >= K && (best[K - 1].0.sqrt() <= r as f64 * min_size || r >= m) {
                    break;
                }
                r += 1;
            }
            best.truncate(K);
            // A fresh, exact-size vector (collecting in place would keep the scan's capacity).
            let mut out: Vec<(u32, f64)> = best.iter().map(|&(d2, j)| (j, d2.sqrt())).collect();
            out.shrink_to_fit();
            out
        })
        .collect()
}

fn fuzzy_graph(knn: &[Vec<(u32, f64)>], n: usize) -> Graph {
    let mut rows: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n];
    for (i, nb) in knn.iter().enumerate() {
        let others: Vec<&(u32, f64)> = nb.iter().filter(|(j, _)| *j as usize != i).collect();
        let rho = others.first().map_or(0.0, |x| x.1);
        let sigma = (others.iter().map(|x| x.1).sum::<f64>() / others.len().max(1) as f64).max(1e-9);
        for &&(j, d) in &others {
            rows[i].push((j, (-(d - rho).max(0.0) / sigma).exp()));
        }
    }
    // Fuzzy union.
    let mut sym: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n];
    for i in 0..n {
        for &(j, w) in &rows[i] {
            let back = rows[j as usize].iter().find(|x| x.0 as usize == i).map_or(0.0, |x| x.1);
            let u = w + back - w * back;
            sym[i].push((j, u));
            if back == 0.0 {
                sym[j as usize].push((i as u32, u));
            }
        }
    }
    let mut g = Graph { n, indptr: vec![0], float32: true, ..Default::default() };
    for mut r in sym {
        r.sort_by_key(|x| x.0);
        r.dedup_by_key(|x| x.0);
        for (c, w) in r {
            g.indices.push(c);
            g.values.push(w as f32 as f64);
        }
        g.indptr.push(g.indices.len() as u64);
    }
    g
}

/// Times UMAP on a reference file's scanpy connectivities (tests/data/graph/*.h5).
fn time_reference(path: &str) {
    let f = hdf5::File::open(path).unwrap();
    let rd = |k: &str| f.dataset(k).unwrap();
    let data = rd("neighbors/connectivities/data").read_raw::<f64>().unwrap();
    let indices = rd("neighbors/connectivities/indices").read_raw::<i64>().unwrap();
    let indptr = rd("neighbors/connectivities/indptr").read_raw::<i64>().unwrap();
    let pcs = rd("pcs").read_2d::<f32>().unwrap();
    let rep = Embedding { values: pcs.iter().copied().collect(), width: pcs.ncols() };
    let g = Graph {
        n: indptr.len() - 1,
        indptr: indptr.iter().map(|&x| x as u64).collect(),
        indices: indices.iter().map(|&x| x as u32).collect(),
        values: data,
        float32: true,
    };
    let t = Instant::now();
    umap_embedding(&g, Some(&rep), &UmapParams::default()).unwrap();
    println!("UMAP on {path}: {:.1}s", t.elapsed().as_secs_f64());
}

/// Peak resident memory so far (Linux).
fn hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM")).map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")))
        .map(|s| format!("(peak RSS {s})"))
        .unwrap_or_default()
}
