//! The weighted undirected graph the optimiser works on, built from an obsp [`Graph`], and
//! its aggregation by a partition.
//!
//! scanpy hands leidenalg a *directed* igraph with one edge per stored non-zero (i, j). For a
//! symmetric matrix (connectivities always are) the directed RB-configuration quality equals
//! the undirected one on the same matrix, so we work on S = (A + Aᵀ)/2, which is A itself
//! (bit for bit: a/2 + a/2 = a) when A is symmetric. For an asymmetric matrix this is what
//! an undirected igraph built from both (i, j) and (j, i) entries sees (the flavor="igraph"
//! paths), up to a factor 2 that modularity ignores.
//!
//! Stored zeros are dropped (scipy's `nonzero()` skips them before igraph sees the edges);
//! `use_weights = false` gives every stored non-zero weight 1.

use atlasflow_core::{Graph, Result, StageError};
use rayon::prelude::*;

/// One row of a network under construction: neighbours, weights, self weight.
type Row = (Vec<u32>, Vec<f64>, f64);

/// Communities per parallel task in [`Network::aggregate`]; each task owns one scratch row.
const AGGREGATE_CHUNK: usize = 4096;

/// A symmetric weighted graph in CSR without self-loops, with the self-loop weight, the
/// strength of every node and the total strength kept beside it.
#[derive(Clone, Debug)]
pub(crate) struct Network {
    /// Number of nodes.
    pub n: usize,
    /// Row offsets into `adj` / `weight`, `n + 1` entries.
    pub indptr: Vec<usize>,
    /// Neighbours (never the node itself), ascending within a row.
    pub adj: Vec<u32>,
    /// Edge weights, parallel to `adj`.
    pub weight: Vec<f64>,
    /// Self-loop weight S_ii (the internal weight of an aggregate node).
    pub self_weight: Vec<f64>,
    /// Strength k_i = Σ_j S_ij, self-loop included.
    pub strength: Vec<f64>,
    /// Σ_i k_i (twice the undirected edge weight), fixed for all aggregation levels.
    pub total: f64,
}

impl Network {
    /// The neighbours and weights of node `v`.
    #[inline]
    pub fn row(&self, v: usize) -> (&[u32], &[f64]) {
        let (a, b) = (self.indptr[v], self.indptr[v + 1]);
        (&self.adj[a..b], &self.weight[a..b])
    }

    /// Build S = (A + Aᵀ)/2 from an obsp graph, checking its structure and values.
    /// Sequential and streaming (filter, counting-sort transpose, merge of sorted rows), so
    /// every sum has one fixed order.
    pub fn from_graph(g: &Graph, use_weights: bool, stage: &str) -> Result<Network> {
        check_graph(g, stage)?;
        let n = g.n;
        // A with zeros dropped and values halved, rows sorted by column.
        let mut a_ptr = Vec::with_capacity(n + 1);
        a_ptr.push(0usize);
        let mut a_col: Vec<u32> = Vec::with_capacity(g.nnz());
        let mut a_val: Vec<f64> = Vec::with_capacity(g.nnz());
        for i in 0..n {
            let start = a_col.len();
            let (cs, vs) = g.row(i);
            for (&j, &v) in cs.iter().zip(vs) {
                if v != 0.0 {
                    a_col.push(j);
                    a_val.push(if use_weights { v / 2.0 } else { 0.5 });
                }
            }
            if a_col[start..].windows(2).any(|w| w[0] > w[1]) {
                let mut e: Vec<(u32, f64)> = a_col[start..]
                    .iter()
                    .copied()
                    .zip(a_val[start..].iter().copied())
                    .collect();
                e.sort_by_key(|x| x.0);
                for (k, (j, v)) in e.into_iter().enumerate() {
                    a_col[start + k] = j;
                    a_val[start + k] = v;
                }
            }
            a_ptr.push(a_col.len());
        }
        // Aᵀ by counting sort: its rows come out sorted by column.
        let mut t_ptr = vec![0usize; n + 1];
        for &j in &a_col {
            t_ptr[j as usize + 1] += 1;
        }
        for i in 0..n {
            t_ptr[i + 1] += t_ptr[i];
        }
        let mut fill = t_ptr.clone();
        let mut t_col = vec![0u32; a_col.len()];
        let mut t_val = vec![0.0f64; a_col.len()];
        for i in 0..n {
            for k in a_ptr[i]..a_ptr[i + 1] {
                let j = a_col[k] as usize;
                t_col[fill[j]] = i as u32;
                t_val[fill[j]] = a_val[k];
                fill[j] += 1;
            }
        }
        // Merge row i of A and of Aᵀ, summing equal columns (A's entries first), the
        // diagonal going to the self weight.
        let mut indptr = Vec::with_capacity(n + 1);
        indptr.push(0usize);
        let mut adj = Vec::with_capacity(2 * a_col.len());
        let mut weight: Vec<f64> = Vec::with_capacity(2 * a_col.len());
        let mut self_weight = vec![0.0; n];
        for i in 0..n {
            let (ra, rt) = (a_ptr[i]..a_ptr[i + 1], t_ptr[i]..t_ptr[i + 1]);
            let (ca, va, ct, vt) = (
                &a_col[ra.clone()],
                &a_val[ra],
                &t_col[rt.clone()],
                &t_val[rt],
            );
            let (mut x, mut y) = (0, 0);
            let row_start = adj.len();
            while x < ca.len() || y < ct.len() {
                let take_a = y >= ct.len() || (x < ca.len() && ca[x] <= ct[y]);
                let (j, w) = if take_a {
                    x += 1;
                    (ca[x - 1], va[x - 1])
                } else {
                    y += 1;
                    (ct[y - 1], vt[y - 1])
                };
                if j as usize == i {
                    self_weight[i] += w;
                } else if adj.len() > row_start && adj[adj.len() - 1] == j {
                    if let Some(last) = weight.last_mut() {
                        *last += w;
                    }
                } else {
                    adj.push(j);
                    weight.push(w);
                }
            }
            indptr.push(adj.len());
        }
        let strength: Vec<f64> = (0..n)
            .map(|i| weight[indptr[i]..indptr[i + 1]].iter().sum::<f64>() + self_weight[i])
            .collect();
        let total = strength.iter().sum();
        Ok(Network {
            n,
            indptr,
            adj,
            weight,
            self_weight,
            strength,
            total,
        })
    }

    /// Assemble a network from per-row (neighbours, weights, self weight).
    fn from_rows(rows: Vec<Row>) -> Network {
        let n = rows.len();
        let mut indptr = Vec::with_capacity(n + 1);
        indptr.push(0usize);
        for r in &rows {
            indptr.push(indptr[indptr.len() - 1] + r.0.len());
        }
        let nnz = indptr[n];
        let mut adj = Vec::with_capacity(nnz);
        let mut weight = Vec::with_capacity(nnz);
        let mut self_weight = Vec::with_capacity(n);
        let mut strength = Vec::with_capacity(n);
        for (a, w, s) in rows {
            strength.push(w.iter().sum::<f64>() + s);
            adj.extend_from_slice(&a);
            weight.extend_from_slice(&w);
            self_weight.push(s);
        }
        let total = strength.iter().sum();
        Network {
            n,
            indptr,
            adj,
            weight,
            self_weight,
            strength,
            total,
        }
    }

    /// The graph whose nodes are the `k` communities of `membership` (ids < k): edge weights
    /// between communities summed, internal weight (both directions) as the self-loop,
    /// strengths summed. Communities are built in parallel, each from its nodes in ascending
    /// order, so the sums do not depend on the thread count.
    pub fn aggregate(&self, membership: &[u32], k: usize) -> Network {
        // Nodes grouped by community, ascending within each.
        let mut start = vec![0usize; k + 1];
        for &c in membership {
            start[c as usize + 1] += 1;
        }
        for c in 0..k {
            start[c + 1] += start[c];
        }
        let mut fill = start.clone();
        let mut nodes = vec![0u32; self.n];
        for (v, &c) in membership.iter().enumerate() {
            nodes[fill[c as usize]] = v as u32;
            fill[c as usize] += 1;
        }
        let chunks: Vec<Vec<Row>> = (0..k.div_ceil(AGGREGATE_CHUNK))
            .into_par_iter()
            .map(|chunk| {
                let mut scratch = vec![0.0f64; k];
                let mut seen = vec![false; k];
                let mut touched: Vec<u32> = Vec::new();
                let lo = chunk * AGGREGATE_CHUNK;
                let hi = (lo + AGGREGATE_CHUNK).min(k);
                (lo..hi)
                    .map(|c| {
                        let mut self_w = 0.0;
                        for &v in &nodes[start[c]..start[c + 1]] {
                            let v = v as usize;
                            self_w += self.self_weight[v];
                            let (adj, w) = self.row(v);
                            for (&u, &wu) in adj.iter().zip(w) {
                                let d = membership[u as usize];
                                if d as usize == c {
                                    self_w += wu;
                                } else {
                                    if !seen[d as usize] {
                                        seen[d as usize] = true;
                                        touched.push(d);
                                    }
                                    scratch[d as usize] += wu;
                                }
                            }
                        }
                        touched.sort_unstable();
                        let adj: Vec<u32> = touched.clone();
                        let weight: Vec<f64> = touched
                            .iter()
                            .map(|&d| {
                                seen[d as usize] = false;
                                std::mem::take(&mut scratch[d as usize])
                            })
                            .collect();
                        touched.clear();
                        (adj, weight, self_w)
                    })
                    .collect()
            })
            .collect();
        let mut agg = Network::from_rows(chunks.into_iter().flatten().collect());
        // Strengths summed from the members (not re-derived from the summed edges) and the
        // total kept, so the quality of a partition is the same on every level.
        for (c, s) in agg.strength.iter_mut().enumerate() {
            *s = nodes[start[c]..start[c + 1]]
                .iter()
                .map(|&v| self.strength[v as usize])
                .sum();
        }
        agg.total = self.total;
        agg
    }
}

/// Check that an obsp graph is a well-formed square CSR with finite, non-negative values.
pub(crate) fn check_graph(g: &Graph, stage: &str) -> Result<()> {
    let n = g.n;
    if n > u32::MAX as usize {
        return Err(StageError::data(
            stage,
            format!("graph has {n} nodes, more than 2^32 - 1"),
        ));
    }
    if g.indptr.len() != n + 1 {
        return Err(StageError::data(
            stage,
            format!(
                "graph indptr has {} entries for {n} cells (expected {})",
                g.indptr.len(),
                n + 1
            ),
        ));
    }
    if g.indptr[0] != 0 || g.indptr.windows(2).any(|w| w[0] > w[1]) {
        return Err(StageError::data(
            stage,
            "graph indptr does not start at 0 or decreases",
        ));
    }
    let nnz = g.indptr[n] as usize;
    if g.indices.len() != nnz || g.values.len() != nnz {
        return Err(StageError::data(
            stage,
            format!(
                "graph has {} indices and {} values but indptr ends at {nnz}",
                g.indices.len(),
                g.values.len()
            ),
        ));
    }
    if let Some(&j) = g.indices.iter().find(|&&j| j as usize >= n) {
        return Err(StageError::data(
            stage,
            format!("graph column {j} is out of range for {n} cells"),
        ));
    }
    if let Some(&v) = g.values.iter().find(|v| !v.is_finite() || **v < 0.0) {
        return Err(StageError::data(
            stage,
            format!("graph weights must be finite and non-negative, found {v}"),
        ));
    }
    Ok(())
}

/// The subgraph of `g` on the cells where `keep` is true, renumbered in cell order.
pub(crate) fn subgraph(g: &Graph, keep: &[bool]) -> Graph {
    let mut new_index = vec![u32::MAX; g.n];
    let mut m = 0u32;
    for (i, &k) in keep.iter().enumerate() {
        if k {
            new_index[i] = m;
            m += 1;
        }
    }
    let mut indptr = vec![0u64];
    let mut indices = Vec::new();
    let mut values = Vec::new();
    for i in (0..g.n).filter(|&i| keep[i]) {
        let (cols, vals) = g.row(i);
        for (&j, &v) in cols.iter().zip(vals) {
            if keep[j as usize] {
                indices.push(new_index[j as usize]);
                values.push(v);
            }
        }
        indptr.push(indices.len() as u64);
    }
    Graph {
        n: m as usize,
        indptr,
        indices,
        values,
        float32: g.float32,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn graph(n: usize, edges: &[(u32, u32, f64)]) -> Graph {
        let mut rows: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n];
        for &(i, j, w) in edges {
            rows[i as usize].push((j, w));
        }
        let mut indptr = vec![0u64];
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        for r in rows {
            for (j, w) in r {
                indices.push(j);
                values.push(w);
            }
            indptr.push(indices.len() as u64);
        }
        Graph {
            n,
            indptr,
            indices,
            values,
            float32: true,
        }
    }

    #[test]
    fn symmetrises_and_splits_self_loops() {
        let g = graph(
            3,
            &[
                (0, 1, 2.0),
                (1, 0, 2.0),
                (1, 2, 1.0),
                (2, 2, 3.0),
                (0, 2, 0.0),
            ],
        );
        let net = Network::from_graph(&g, true, "t").unwrap();
        assert_eq!(net.row(0), (&[1u32][..], &[2.0][..]));
        assert_eq!(net.row(1), (&[0u32, 2][..], &[2.0, 0.5][..]));
        assert_eq!(net.row(2), (&[1u32][..], &[0.5][..]));
        assert_eq!(net.self_weight, vec![0.0, 0.0, 3.0]);
        assert_eq!(net.strength, vec![2.0, 2.5, 3.5]);
        assert_eq!(net.total, 8.0);
        let unweighted = Network::from_graph(&g, false, "t").unwrap();
        assert_eq!(unweighted.strength, vec![1.0, 1.5, 1.5]);
    }

    #[test]
    fn aggregate_keeps_internal_weight_and_strength() {
        let g = graph(
            4,
            &[
                (0, 1, 1.0),
                (1, 0, 1.0),
                (1, 2, 2.0),
                (2, 1, 2.0),
                (2, 3, 1.0),
                (3, 2, 1.0),
            ],
        );
        let net = Network::from_graph(&g, true, "t").unwrap();
        let agg = net.aggregate(&[0, 0, 1, 1], 2);
        assert_eq!(agg.n, 2);
        assert_eq!(agg.self_weight, vec![2.0, 2.0]);
        assert_eq!(agg.row(0), (&[1u32][..], &[2.0][..]));
        assert_eq!(agg.strength, vec![4.0, 4.0]);
        assert_eq!(agg.total, 8.0);
    }

    #[test]
    fn rejects_bad_graphs() {
        let mut g = graph(2, &[(0, 1, f64::NAN)]);
        assert!(Network::from_graph(&g, true, "t").is_err());
        g.values[0] = -1.0;
        assert!(Network::from_graph(&g, true, "t").is_err());
        g.values[0] = 1.0;
        g.indices[0] = 5;
        assert!(Network::from_graph(&g, true, "t").is_err());
        g.indices[0] = 1;
        g.indptr = vec![0, 1];
        assert!(Network::from_graph(&g, true, "t").is_err());
    }

    #[test]
    fn subgraph_renumbers() {
        let g = graph(
            4,
            &[
                (0, 2, 1.0),
                (2, 0, 1.0),
                (1, 3, 1.0),
                (3, 1, 1.0),
                (0, 1, 5.0),
            ],
        );
        let s = subgraph(&g, &[true, false, true, false]);
        assert_eq!(s.n, 2);
        assert_eq!(s.indptr, vec![0, 1, 2]);
        assert_eq!(s.indices, vec![1, 0]);
    }
}
