//! The graph umap-learn lays out (semantics §7.3): the connectivities with duplicates summed,
//! columns sorted within each row, weights below max/n_epochs removed, kept as float32 as
//! scanpy stores them. The edge list is this CSR in row-major order (head = row,
//! tail = column), both directions of every edge.

use atlasflow_core::{Graph, Result, StageError};

use crate::STAGE;

/// The pruned graph in CSR, weights in f32.
#[derive(Clone, Debug, Default)]
pub struct Pruned {
    /// Number of vertices.
    pub n: usize,
    /// Row offsets (n + 1).
    pub indptr: Vec<usize>,
    /// Column (tail) of each edge, sorted within a row.
    pub indices: Vec<u32>,
    /// Weight of each edge.
    pub weights: Vec<f32>,
}

impl Pruned {
    /// Number of edges.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// The (columns, weights) of row `i`.
    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[i], self.indptr[i + 1]);
        (&self.indices[a..b], &self.weights[a..b])
    }

    /// The largest weight (0 for an empty graph).
    pub fn max_weight(&self) -> f32 {
        self.weights.iter().fold(0.0f32, |m, &w| m.max(w))
    }

    /// The subgraph induced by `vertices` (ascending), renumbered 0..len.
    pub fn subgraph(&self, vertices: &[usize], local: &[u32]) -> Pruned {
        let mut out = Pruned { n: vertices.len(), indptr: vec![0], ..Default::default() };
        for &v in vertices {
            let (cols, ws) = self.row(v);
            for (&c, &w) in cols.iter().zip(ws) {
                let l = local[c as usize];
                if l != u32::MAX {
                    out.indices.push(l);
                    out.weights.push(w);
                }
            }
            out.indptr.push(out.indices.len());
        }
        out
    }
}

/// Sum duplicates, sort columns, and remove weights below `max / n_epochs` (or
/// `max / default_epochs` when n_epochs ≤ 10), as `simplicial_set_embedding` does on its copy.
/// The threshold is computed in f32, as numpy 2 does for a float32 array and a Python float.
pub fn prune(graph: &Graph, n_epochs: usize, default_epochs: usize) -> Result<Pruned> {
    let n = graph.n;
    if graph.indptr.len() != n + 1
        || graph.indptr.first() != Some(&0)
        || graph.indptr.last().map(|&e| e as usize) != Some(graph.indices.len())
        || graph.values.len() != graph.indices.len()
    {
        return Err(StageError::data(STAGE, "the connectivities graph is not a valid CSR"));
    }
    let mut full = Pruned { n, indptr: Vec::with_capacity(n + 1), ..Default::default() };
    full.indptr.push(0);
    let mut row: Vec<(u32, f32)> = Vec::new();
    for i in 0..n {
        let (a, b) = (graph.indptr[i] as usize, graph.indptr[i + 1] as usize);
        if a > b {
            return Err(StageError::data(STAGE, "the connectivities graph is not a valid CSR"));
        }
        row.clear();
        for p in a..b {
            let c = graph.indices[p];
            let w = graph.values[p];
            if c as usize >= n {
                return Err(StageError::data(
                    STAGE,
                    format!("connectivities: column {c} out of range for {n} cells"),
                ));
            }
            if !(w.is_finite() && w >= 0.0) {
                return Err(StageError::data(
                    STAGE,
                    format!("connectivities: weight {w} of cells {i}–{c} is negative or not finite"),
                ));
            }
            row.push((c, w as f32));
        }
        row.sort_by_key(|&(c, _)| c);
        let mut k = 0;
        while k < row.len() {
            let c = row[k].0;
            let mut w = 0.0f32;
            while k < row.len() && row[k].0 == c {
                w += row[k].1;
                k += 1;
            }
            full.indices.push(c);
            full.weights.push(w);
        }
        full.indptr.push(full.indices.len());
    }
    let max = full.max_weight();
    let epochs = if n_epochs > 10 { n_epochs } else { default_epochs };
    let threshold = max / epochs as f32;
    let mut out = Pruned { n, indptr: Vec::with_capacity(n + 1), ..Default::default() };
    out.indptr.push(0);
    for i in 0..n {
        let (cols, ws) = full.row(i);
        for (&c, &w) in cols.iter().zip(ws) {
            // `data[data < t] = 0` then eliminate_zeros: zeros go too.
            if w >= threshold && w != 0.0 {
                out.indices.push(c);
                out.weights.push(w);
            }
        }
        out.indptr.push(out.indices.len());
    }
    Ok(out)
}

/// Weakly connected components, labelled in order of their lowest vertex (as scipy's
/// `connected_components`). Returns (number of components, label per vertex).
pub fn connected_components(g: &Pruned) -> (usize, Vec<u32>) {
    let mut parent: Vec<u32> = (0..g.n as u32).collect();
    fn find(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            let p = parent[x as usize];
            parent[x as usize] = parent[p as usize];
            x = p;
        }
        x
    }
    for i in 0..g.n {
        let (cols, _) = g.row(i);
        for &c in cols {
            let (ri, rc) = (find(&mut parent, i as u32), find(&mut parent, c));
            if ri != rc {
                let (lo, hi) = if ri < rc { (ri, rc) } else { (rc, ri) };
                parent[hi as usize] = lo;
            }
        }
    }
    let mut label = vec![u32::MAX; g.n];
    let mut root_label = vec![u32::MAX; g.n];
    let mut count = 0u32;
    for (i, l) in label.iter_mut().enumerate() {
        let r = find(&mut parent, i as u32) as usize;
        if root_label[r] == u32::MAX {
            root_label[r] = count;
            count += 1;
        }
        *l = root_label[r];
    }
    (count as usize, label)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn g(n: usize, edges: &[(u32, u32, f64)]) -> Graph {
        let mut rows = vec![Vec::new(); n];
        for &(i, j, w) in edges {
            rows[i as usize].push((j, w));
            rows[j as usize].push((i, w));
        }
        let mut out = Graph { n, indptr: vec![0], ..Default::default() };
        for r in rows {
            for (c, w) in r {
                out.indices.push(c);
                out.values.push(w);
            }
            out.indptr.push(out.indices.len() as u64);
        }
        out
    }

    #[test]
    fn prunes_below_max_over_epochs() {
        let p = prune(&g(4, &[(0, 1, 1.0), (1, 2, 0.001), (2, 3, 0.5)]), 500, 500).unwrap();
        assert_eq!(p.nnz(), 4);
        let (k, labels) = connected_components(&p);
        assert_eq!(k, 2);
        assert_eq!(labels, vec![0, 0, 1, 1]);
    }
}
