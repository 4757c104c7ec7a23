//! Exact brute-force kNN, what scanpy runs below 8,192 cells (scikit-learn's
//! `KNeighborsTransformer(algorithm="brute")`).
//!
//! Squared euclidean distances take scikit-learn's GEMM form |x|² − 2x·y + |y|² in f64 (the
//! f32 input upcast), one block of query rows at a time: each block is one sequential faer
//! matmul against all cells and blocks run in parallel with rayon, so the result does not
//! depend on the thread count. Each row keeps a few more candidates than asked; those are
//! re-measured directly as Σ(x − y)² in f64 (exactly 0 for the cell itself and for exact
//! duplicates) and sorted by that distance, ties by lower index, as scikit-learn orders them.
//!
//! Returned euclidean distances are what scikit-learn gives for float32 input (its
//! `DistanceMetric32`): the square root, in f32, of the squared distance rounded to f32,
//! held as f64. About 97 % of them equal scanpy's bit for bit, the rest are one f32 ulp away.
//! Cosine distances are 1 − x·y/(|x||y|) in f64, clipped to [0, 2], rounded to f32 as
//! scikit-learn's float32 `cosine_distances` returns them; the cell itself gets 0.

use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::knn::{Knn, Metric, Points, check_input};
use atlasflow_core::Result;

/// Extra candidates kept per row from the GEMM form before the direct re-measure, so that
/// rounding in the GEMM form cannot push a true neighbour out at the k-th place.
const EXTRA: usize = 4;
/// Distance-matrix entries one block may hold (32 MB of f64).
pub(crate) const BLOCK_ENTRIES: usize = 1 << 22;

/// The exact `k` nearest neighbours (the cell itself included) of every row of `points`.
pub fn exact_knn(points: &Points<'_>, k: usize, metric: Metric) -> Result<Knn> {
    check_input(points, k)?;
    let (n, d) = (points.n, points.d);
    // f64 copy of the used columns; cosine works on unit rows.
    let mut x: Vec<f64> = Vec::with_capacity(n * d);
    for i in 0..n {
        x.extend(points.row(i).iter().map(|&v| v as f64));
    }
    if metric == Metric::Cosine {
        x.par_chunks_mut(d).for_each(|r| {
            let norm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm > 0.0 {
                r.iter_mut().for_each(|v| *v /= norm);
            }
        });
    }
    let sq: Vec<f64> = x.chunks(d).map(|r| r.iter().map(|v| v * v).sum()).collect();
    let all = MatRef::from_row_major_slice(&x, n, d);
    let m = (k + EXTRA).min(n);
    let block = (BLOCK_ENTRIES / n).clamp(1, 256);

    let mut indices = vec![0u32; n * k];
    let mut distances = vec![0f64; n * k];
    indices
        .par_chunks_mut(block * k)
        .zip(distances.par_chunks_mut(block * k))
        .enumerate()
        .for_each(|(b, (idx_out, dist_out))| {
            let start = b * block;
            let rows = idx_out.len() / k;
            let mut prod = vec![0f64; rows * n];
            faer::linalg::matmul::matmul(
                MatMut::from_row_major_slice_mut(&mut prod, rows, n),
                Accum::Replace,
                all.subrows(start, rows),
                all.transpose(),
                1.0,
                Par::Seq,
            );
            let mut best: Vec<(f64, u32)> = Vec::with_capacity(m + 1);
            for r in 0..rows {
                let i = start + r;
                let dots = &prod[r * n..(r + 1) * n];
                best.clear();
                for (j, &dot) in dots.iter().enumerate() {
                    let v = if j == i {
                        0.0
                    } else {
                        match metric {
                            Metric::Euclidean => (sq[i] - 2.0 * dot + sq[j]).max(0.0),
                            Metric::Cosine => 1.0 - dot,
                        }
                    };
                    push_bounded(&mut best, m, (v, j as u32));
                }
                // Re-measure the candidates directly and sort them by that.
                let xi = &x[i * d..(i + 1) * d];
                for c in best.iter_mut() {
                    let xj = &x[c.1 as usize * d..(c.1 as usize + 1) * d];
                    c.0 = match metric {
                        Metric::Euclidean => xi
                            .iter()
                            .zip(xj)
                            .map(|(a, b)| (a - b) * (a - b))
                            .sum::<f64>(),
                        Metric::Cosine if c.1 as usize == i => 0.0,
                        Metric::Cosine => (1.0
                            - xi.iter().zip(xj).map(|(a, b)| a * b).sum::<f64>())
                        .clamp(0.0, 2.0),
                    };
                }
                best.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                for (s, c) in best.iter().take(k).enumerate() {
                    idx_out[r * k + s] = c.1;
                    dist_out[r * k + s] = match metric {
                        Metric::Euclidean => (c.0 as f32).sqrt() as f64,
                        Metric::Cosine => c.0 as f32 as f64,
                    };
                }
            }
        });
    Ok(Knn {
        n,
        k,
        indices,
        distances,
        float32: false,
    })
}

/// Insert `c` into `best` (sorted ascending by (distance, index), at most `m` long) if it
/// belongs among the `m` smallest.
fn push_bounded(best: &mut Vec<(f64, u32)>, m: usize, c: (f64, u32)) {
    let less = |a: &(f64, u32), b: &(f64, u32)| a.0 < b.0 || (a.0 == b.0 && a.1 < b.1);
    if best.len() == m {
        match best.last() {
            Some(last) if less(&c, last) => {
                best.pop();
            }
            _ => return,
        }
    }
    let pos = best.partition_point(|b| less(b, &c));
    best.insert(pos, c);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn naive(values: &[f32], n: usize, d: usize, k: usize) -> Vec<u32> {
        let mut out = Vec::new();
        for i in 0..n {
            let mut all: Vec<(f64, u32)> = (0..n)
                .map(|j| {
                    let s: f64 = (0..d)
                        .map(|c| (values[i * d + c] as f64 - values[j * d + c] as f64).powi(2))
                        .sum();
                    (s, j as u32)
                })
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            out.extend(all.iter().take(k).map(|c| c.1));
        }
        out
    }

    #[test]
    fn matches_naive_search_and_puts_self_first() {
        let (n, d, k) = (97, 5, 7);
        let values: Vec<f32> = (0..n * d)
            .map(|t| ((t * 7919) % 1013) as f32 / 101.0)
            .collect();
        let p = Points::new(&values, n, d, d).unwrap();
        let knn = exact_knn(&p, k, Metric::Euclidean).unwrap();
        assert_eq!(knn.indices, naive(&values, n, d, k));
        for i in 0..n {
            assert_eq!(knn.row_indices(i)[0] as usize, i);
            assert_eq!(knn.row_distances(i)[0], 0.0);
        }
    }

    #[test]
    fn duplicates_tie_by_lower_index() {
        let values = vec![1.0f32, 2.0, 0.0, 0.0, 1.0, 2.0, 5.0, 5.0];
        let p = Points::new(&values, 4, 2, 2).unwrap();
        let knn = exact_knn(&p, 2, Metric::Euclidean).unwrap();
        assert_eq!(knn.row_indices(0), &[0, 2]);
        assert_eq!(knn.row_indices(2), &[0, 2]);
        assert_eq!(knn.row_distances(2), &[0.0, 0.0]);
    }

    #[test]
    fn cosine_ignores_scale() {
        let values = vec![1.0f32, 0.0, 10.0, 0.5, 0.0, 3.0];
        let p = Points::new(&values, 3, 2, 2).unwrap();
        let knn = exact_knn(&p, 3, Metric::Cosine).unwrap();
        assert_eq!(knn.row_indices(0), &[0, 1, 2]);
        assert!((knn.row_distances(0)[2] - 1.0).abs() < 1e-7);
    }
}
