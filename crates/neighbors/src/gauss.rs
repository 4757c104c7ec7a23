//! scanpy's `method="gauss"` connectivities (semantics reference §6.5), computed from the
//! distance graph exactly as scanpy stores it (14 non-self entries per row on the exact
//! path; 16 entries with the self 0 on the approximate path, which gives self-loops of
//! weight 1, as in scanpy).

use atlasflow_core::{Graph, Result, StageError};
use rayon::prelude::*;

use crate::knn::STAGE;
use crate::umap::to_graph;

/// Gaussian kernel connectivities of Haghverdi et al. (2016), scanpy's sparse-kNN variant:
/// σᵢ² = median of the squared distances to row i's "neighbours" as scanpy picks them: the
/// stored columns in index order (scanpy's `power(2)` sorts them), without the first when
/// some row's smallest column is itself, at most `n_neighbors − 1`; wᵢⱼ = √(2σᵢσⱼ/(σᵢ² + σⱼ²))·exp(−dᵢⱼ²/(σᵢ² + σⱼ²)) on every stored entry,
/// then wⱼᵢ = wᵢⱼ where i is not among j's neighbours. Computed in f64; the result is
/// float32 when `distances` is (scanpy keeps the distances' dtype). Columns come out sorted.
pub fn gauss_connectivities(distances: &Graph, n_neighbors: usize) -> Result<Graph> {
    let n = distances.n;
    if n_neighbors < 2 {
        return Err(StageError::param(
            STAGE,
            "n_neighbors",
            "method gauss needs at least 2 neighbours (self included)",
        ));
    }
    // scanpy squares the graph with `power(2)`, which sorts each row's columns; then
    // `_get_indices_distances_from_sparse_matrix` assumes a self column when some row's
    // (smallest) first column is the row itself, prepends one otherwise, keeps
    // `n_neighbors` columns and drops the first. So the "neighbours" are the stored
    // columns in index order, without the smallest when any row starts with itself.
    let sorted_rows: Vec<Vec<(u32, f64)>> = (0..n)
        .map(|i| {
            let (cols, vals) = distances.row(i);
            let mut r: Vec<(u32, f64)> = cols.iter().copied().zip(vals.iter().copied()).collect();
            r.sort_by_key(|e| e.0);
            r
        })
        .collect();
    let has_self = (0..n).any(|i| sorted_rows[i].first().map(|e| e.0) == Some(i as u32));
    let skip = usize::from(has_self);
    let neigh: Vec<Vec<(u32, f64)>> = sorted_rows
        .iter()
        .map(|r| r.iter().copied().skip(skip).take(n_neighbors - 1).collect())
        .collect();
    let sigma_sq: Vec<f64> = neigh
        .par_iter()
        .map(|r| {
            let mut sq: Vec<f64> = r.iter().map(|e| e.1 * e.1).collect();
            median(&mut sq)
        })
        .collect();
    let sigma: Vec<f64> = sigma_sq.iter().map(|s| s.sqrt()).collect();
    let weight = |i: usize, j: usize, d: f64| {
        let num = 2.0 * sigma[i] * sigma[j];
        let den = sigma_sq[i] + sigma_sq[j];
        (num / den).sqrt() * (-(d * d) / den).exp()
    };
    // Stored entries, then the mirrored ones where i is not among j's neighbours.
    let mut rows: Vec<Vec<(u32, f64)>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let (cols, vals) = distances.row(i);
            cols.iter()
                .zip(vals)
                .map(|(&j, &d)| (j, weight(i, j as usize, d)))
                .collect()
        })
        .collect();
    let sorted_neigh: Vec<Vec<u32>> = neigh
        .iter()
        .map(|r| r.iter().map(|e| e.0).collect())
        .collect();
    let mut mirrored: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n];
    for (i, row_neigh) in neigh.iter().enumerate() {
        let (cols, vals) = distances.row(i);
        for &(j, _) in row_neigh {
            if sorted_neigh[j as usize].binary_search(&(i as u32)).is_err() {
                // w[i, j] as stored in row i (the first stored entry for column j).
                let pos = cols.iter().position(|&c| c == j).unwrap_or(0);
                mirrored[j as usize].push((i as u32, weight(i, j as usize, vals[pos])));
            }
        }
    }
    rows.par_iter_mut().zip(mirrored).for_each(|(row, extra)| {
        for (c, v) in extra {
            match row.iter_mut().find(|e| e.0 == c) {
                Some(e) => e.1 = v,
                None => row.push((c, v)),
            }
        }
        row.sort_by_key(|e| e.0);
    });
    Ok(to_graph(n, rows, distances.float32))
}

/// numpy's median (mean of the two middle values for an even count); 0 for none.
fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn median_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
