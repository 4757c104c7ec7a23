//! The quality Leiden and Louvain maximise, for tests and reports.

use atlasflow_core::{Graph, Result, StageError};

use crate::network::Network;

/// leidenalg's `RBConfigurationVertexPartition.quality()` of `membership` on `graph` (as
/// scanpy builds it: directed, one edge per stored non-zero; we evaluate it on
/// S = (A + Aᵀ)/2, equal for a symmetric graph): Σ_c [ in_c − γ K_c² / T ], with in_c the
/// weight inside community c over ordered pairs, K_c its total strength and T the total
/// strength. Unscaled, so comparable with the numbers leidenalg prints.
pub fn rb_quality(
    graph: &Graph,
    membership: &[u32],
    resolution: f64,
    use_weights: bool,
) -> Result<f64> {
    let net = Network::from_graph(graph, use_weights, "quality")?;
    if membership.len() != net.n {
        return Err(StageError::data(
            "quality",
            format!(
                "membership has {} entries for {} nodes",
                membership.len(),
                net.n
            ),
        ));
    }
    if net.total <= 0.0 {
        return Ok(0.0);
    }
    let k = membership
        .iter()
        .map(|&c| c as usize + 1)
        .max()
        .unwrap_or(0);
    let mut inside = vec![0.0; k];
    let mut strength = vec![0.0; k];
    for v in 0..net.n {
        let c = membership[v] as usize;
        strength[c] += net.strength[v];
        inside[c] += net.self_weight[v];
        let (adj, w) = net.row(v);
        for (&u, &wu) in adj.iter().zip(w) {
            if membership[u as usize] as usize == c {
                inside[c] += wu;
            }
        }
    }
    Ok(inside
        .iter()
        .zip(&strength)
        .map(|(&i, &s)| i - resolution * s * s / net.total)
        .sum())
}

/// Newman's modularity with a resolution: [`rb_quality`] divided by the total strength
/// (what igraph's `modularity(membership, weights, resolution)` returns).
pub fn modularity(
    graph: &Graph,
    membership: &[u32],
    resolution: f64,
    use_weights: bool,
) -> Result<f64> {
    let net_total = Network::from_graph(graph, use_weights, "quality")?.total;
    if net_total <= 0.0 {
        return Ok(0.0);
    }
    Ok(rb_quality(graph, membership, resolution, use_weights)? / net_total)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn two_triangles() {
        // Two triangles joined by one edge: modularity of the split is 5/14.
        let edges = [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)];
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); 6];
        for &(a, b) in &edges {
            rows[a].push(b as u32);
            rows[b].push(a as u32);
        }
        let mut indptr = vec![0u64];
        let mut indices = Vec::new();
        for mut r in rows {
            r.sort();
            indices.extend(r);
            indptr.push(indices.len() as u64);
        }
        let values = vec![1.0; indices.len()];
        let g = Graph {
            n: 6,
            indptr,
            indices,
            values,
            float32: true,
        };
        let q = modularity(&g, &[0, 0, 0, 1, 1, 1], 1.0, true).unwrap();
        assert!((q - 5.0 / 14.0).abs() < 1e-15, "{q}");
        assert_eq!(modularity(&g, &[0; 6], 1.0, true).unwrap(), 0.0);
    }
}
