//! umap-learn's `fuzzy_simplicial_set` on a kNN table (semantics reference §6.4), the
//! connectivities of scanpy's default `method="umap"`. All arithmetic is f32 as in
//! umap-learn (the kNN distances are cast to f32 first).

use atlasflow_core::{Graph, Result, StageError};
use rayon::prelude::*;

use crate::knn::{Knn, STAGE};

/// umap-learn's `SMOOTH_K_TOLERANCE`.
const SMOOTH_K_TOLERANCE: f64 = 1e-5;
/// umap-learn's `MIN_K_DIST_SCALE`.
const MIN_K_DIST_SCALE: f32 = 1e-3;
/// Bisection steps of `smooth_knn_dist`.
const N_ITER: usize = 64;

/// Per-cell ρ (distance to the nearest neighbour at `local_connectivity`) and σ (the
/// bandwidth that makes the memberships sum to log2(k)), umap-learn's `smooth_knn_dist`.
/// The target is log2(`k`) (umap's `n_neighbors`); the first min(k, knn.k) columns are
/// used, column 0 taken to be the cell itself.
pub fn smooth_knn_dist(knn: &Knn, k: usize, local_connectivity: f32) -> (Vec<f32>, Vec<f32>) {
    let target = (k as f64).log2();
    let cols = k.min(knn.k);
    let dist = |i: usize| -> Vec<f32> {
        knn.row_distances(i)[..cols]
            .iter()
            .map(|&d| d as f32)
            .collect()
    };
    let mean_all: f32 = {
        let s: f64 = (0..knn.n)
            .map(|i| dist(i).iter().map(|&d| d as f64).sum::<f64>())
            .sum();
        (s / (knn.n * cols).max(1) as f64) as f32
    };
    (0..knn.n)
        .into_par_iter()
        .map(|i| {
            let d = dist(i);
            let positive: Vec<f32> = d.iter().copied().filter(|&v| v > 0.0).collect();
            let mut rho = 0f32;
            if positive.len() as f32 >= local_connectivity {
                let index = local_connectivity.floor() as usize;
                let interpolation = local_connectivity - index as f32;
                if index > 0 {
                    rho = positive[index - 1];
                    if interpolation as f64 > SMOOTH_K_TOLERANCE {
                        rho += interpolation * (positive[index] - positive[index - 1]);
                    }
                } else {
                    rho = interpolation * positive[0];
                }
            } else if let Some(m) = positive.iter().copied().reduce(f32::max) {
                rho = m;
            }
            let (mut lo, mut hi, mut mid) = (0f32, f32::MAX, 1f32);
            for _ in 0..N_ITER {
                let mut psum = 0f32;
                for &dj in &d[1..] {
                    let t = dj - rho;
                    psum += if t > 0.0 { (-(t / mid)).exp() } else { 1.0 };
                }
                if (psum as f64 - target).abs() < SMOOTH_K_TOLERANCE {
                    break;
                }
                if psum as f64 > target {
                    hi = mid;
                    mid = (lo + hi) / 2.0;
                } else {
                    lo = mid;
                    if hi == f32::MAX {
                        mid *= 2.0;
                    } else {
                        mid = (lo + hi) / 2.0;
                    }
                }
            }
            let mut sigma = mid;
            if rho > 0.0 {
                let mean_i = d.iter().sum::<f32>() / cols as f32;
                sigma = sigma.max(MIN_K_DIST_SCALE * mean_i);
            } else {
                sigma = sigma.max(MIN_K_DIST_SCALE * mean_all);
            }
            (rho, sigma)
        })
        .unzip()
}

/// umap-learn's `fuzzy_simplicial_set` from a precomputed kNN: memberships
/// exp(−(d − ρ)/σ) on the first min(`k`, knn.k) columns of `knn` (σ targets log2 `k`, umap's
/// `n_neighbors`), then the fuzzy union
/// `ratio·(P + Pᵀ − P∘Pᵀ) + (1 − ratio)·P∘Pᵀ`, in f32. Returns the symmetric CSR (sorted
/// columns, no diagonal, zeros dropped), float32.
pub fn fuzzy_simplicial_set(
    knn: &Knn,
    k: usize,
    set_op_mix_ratio: f32,
    local_connectivity: f32,
) -> Result<Graph> {
    if k < 2 || knn.k < 2 {
        return Err(StageError::param(
            STAGE,
            "n_neighbors",
            format!("{k} neighbours of a kNN with {} columns: need 2", knn.k),
        ));
    }
    let cols = k.min(knn.k);
    if !(0.0..=1.0).contains(&set_op_mix_ratio) {
        return Err(StageError::param(
            STAGE,
            "set_op_mix_ratio",
            format!("{set_op_mix_ratio} is not in [0, 1]"),
        ));
    }
    if local_connectivity.is_nan() || local_connectivity < 0.0 {
        return Err(StageError::param(
            STAGE,
            "local_connectivity",
            format!("{local_connectivity} must be ≥ 0"),
        ));
    }
    let n = knn.n;
    let (rho, sigma) = smooth_knn_dist(knn, k, local_connectivity);
    // P row by row: (column, weight), sorted by column, zeros dropped.
    let p: Vec<Vec<(u32, f32)>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut row: Vec<(u32, f32)> = Vec::with_capacity(cols);
            for (&j, &dj) in knn.row_indices(i)[..cols]
                .iter()
                .zip(&knn.row_distances(i)[..cols])
            {
                if j as usize == i {
                    continue;
                }
                let t = dj as f32 - rho[i];
                let w = if t <= 0.0 || sigma[i] == 0.0 {
                    1.0
                } else {
                    (-(t / sigma[i])).exp()
                };
                if w != 0.0 {
                    row.push((j, w));
                }
            }
            row.sort_by_key(|e| e.0);
            row
        })
        .collect();
    // Pᵀ rows (counting sort by column: deterministic order by source row).
    let pt = transpose(&p, n);
    let rows: Vec<Vec<(u32, f32)>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let (a, b) = (&p[i], &pt[i]);
            let mut out = Vec::with_capacity(a.len() + b.len());
            let (mut x, mut y) = (0, 0);
            while x < a.len() || y < b.len() {
                let (j, pa, pb) = match (a.get(x), b.get(y)) {
                    (Some(&(ja, va)), Some(&(jb, vb))) if ja == jb => {
                        x += 1;
                        y += 1;
                        (ja, va, vb)
                    }
                    (Some(&(ja, va)), Some(&(jb, _))) if ja < jb => {
                        x += 1;
                        (ja, va, 0.0)
                    }
                    (Some(&(ja, va)), None) => {
                        x += 1;
                        (ja, va, 0.0)
                    }
                    (_, Some(&(jb, vb))) => {
                        y += 1;
                        (jb, 0.0, vb)
                    }
                    (None, None) => break,
                };
                let prod = pa * pb;
                let union = (pa + pb) - prod;
                let w = set_op_mix_ratio * union + (1.0 - set_op_mix_ratio) * prod;
                if w != 0.0 {
                    out.push((j, w));
                }
            }
            out
        })
        .collect();
    Ok(to_graph(n, rows, true))
}

/// The transpose of a sparse matrix held as rows of (column, value), columns sorted.
pub(crate) fn transpose<T: Copy>(rows: &[Vec<(u32, T)>], n: usize) -> Vec<Vec<(u32, T)>> {
    let mut out: Vec<Vec<(u32, T)>> = vec![Vec::new(); n];
    for (i, row) in rows.iter().enumerate() {
        for &(j, v) in row {
            out[j as usize].push((i as u32, v));
        }
    }
    out
}

/// Assemble rows of (column, value) into a [`Graph`].
pub(crate) fn to_graph<T: Copy + Into<f64>>(
    n: usize,
    rows: Vec<Vec<(u32, T)>>,
    float32: bool,
) -> Graph {
    let nnz: usize = rows.iter().map(|r| r.len()).sum();
    let mut indptr = Vec::with_capacity(n + 1);
    let mut indices = Vec::with_capacity(nnz);
    let mut values = Vec::with_capacity(nnz);
    indptr.push(0u64);
    for row in rows {
        for (j, v) in row {
            indices.push(j);
            values.push(v.into());
        }
        indptr.push(indices.len() as u64);
    }
    Graph {
        n,
        indptr,
        indices,
        values,
        float32,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_without_diagonal_and_in_unit_interval() {
        let values: Vec<f32> = (0..60 * 3)
            .map(|t| ((t * 37) % 101) as f32 / 10.0)
            .collect();
        let p = crate::knn::Points::new(&values, 60, 3, 3).unwrap();
        let knn = crate::exact::exact_knn(&p, 6, crate::knn::Metric::Euclidean).unwrap();
        let g = fuzzy_simplicial_set(&knn, 6, 1.0, 1.0).unwrap();
        for i in 0..g.n {
            let (cols, vals) = g.row(i);
            assert!(cols.windows(2).all(|w| w[0] < w[1]));
            for (&j, &v) in cols.iter().zip(vals) {
                assert_ne!(j as usize, i);
                assert!(v > 0.0 && v <= 1.0);
                let (cj, vj) = g.row(j as usize);
                let pos = cj.iter().position(|&c| c as usize == i).unwrap();
                assert_eq!(vj[pos], v);
            }
        }
    }

    #[test]
    fn sigma_bisection_hits_log2_k() {
        let knn = Knn {
            n: 1,
            k: 4,
            indices: vec![0, 0, 0, 0],
            distances: vec![0.0, 1.0, 2.0, 3.0],
            float32: false,
        };
        let (rho, sigma) = smooth_knn_dist(&knn, 4, 1.0);
        assert_eq!(rho[0], 1.0);
        let psum: f32 = [0.0f32, 1.0, 2.0]
            .iter()
            .map(|t| if *t > 0.0 { (-t / sigma[0]).exp() } else { 1.0 })
            .sum();
        assert!((psum - 2.0).abs() < 1e-4);
    }
}
