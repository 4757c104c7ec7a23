//! The kNN table ↔ scanpy's stored distance graph (semantics reference §6.3).

use atlasflow_core::Graph;

use crate::knn::Knn;

/// The `obsp["distances"]` scanpy stores for a kNN table.
/// - Exact search (`knn.float32 == false`): columns 1.. of each row (the self column
///   dropped), in neighbour order, float64: n_neighbors − 1 entries per row.
/// - NN-descent (`knn.float32`): every column including the self 0 stored explicitly,
///   float32 (scanpy keeps pynndescent's raw output).
pub fn distances_graph(knn: &Knn) -> Graph {
    let skip = usize::from(!knn.float32);
    let per_row = knn.k - skip;
    let mut indptr = Vec::with_capacity(knn.n + 1);
    let mut indices = Vec::with_capacity(knn.n * per_row);
    let mut values = Vec::with_capacity(knn.n * per_row);
    indptr.push(0u64);
    for i in 0..knn.n {
        indices.extend_from_slice(&knn.row_indices(i)[skip..]);
        values.extend_from_slice(&knn.row_distances(i)[skip..]);
        indptr.push(indices.len() as u64);
    }
    Graph {
        n: knn.n,
        indptr,
        indices,
        values,
        float32: knn.float32,
    }
}

/// scanpy's `_get_indices_distances_from_sparse_matrix` on a graph with a constant number
/// of entries per row: when no row starts with itself a self column (distance 0) is
/// prepended; then at most `n_neighbors` columns are kept. This is the table scanpy's
/// connectivities see.
pub fn knn_from_distances(distances: &Graph, n_neighbors: usize) -> Knn {
    let n = distances.n;
    let has_self = (0..n).any(|i| distances.row(i).0.first() == Some(&(i as u32)));
    let width =
        (0..n).map(|i| distances.row(i).0.len()).max().unwrap_or(0) + usize::from(!has_self);
    let k = width.min(n_neighbors);
    let mut indices = Vec::with_capacity(n * k);
    let mut values = Vec::with_capacity(n * k);
    for i in 0..n {
        let (cols, vals) = distances.row(i);
        let mut row: Vec<(u32, f64)> = Vec::with_capacity(width);
        if !has_self {
            row.push((i as u32, 0.0));
        }
        row.extend(cols.iter().copied().zip(vals.iter().copied()));
        row.resize(k, (i as u32, 0.0));
        for (j, d) in row.into_iter().take(k) {
            indices.push(j);
            values.push(d);
        }
    }
    Knn {
        n,
        k,
        indices,
        distances: values,
        float32: distances.float32,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn exact_drops_self_and_round_trips() {
        let knn = Knn {
            n: 2,
            k: 2,
            indices: vec![0, 1, 1, 0],
            distances: vec![0.0, 2.0, 0.0, 2.0],
            float32: false,
        };
        let g = distances_graph(&knn);
        assert_eq!(g.indices, vec![1, 0]);
        assert_eq!(knn_from_distances(&g, 2), knn);
        let approx = Knn {
            float32: true,
            ..knn.clone()
        };
        let g = distances_graph(&approx);
        assert_eq!(g.nnz(), 4);
        assert_eq!(knn_from_distances(&g, 2), approx);
    }
}
