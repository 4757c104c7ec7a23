//! umap-learn's `spectral_layout` (semantics §7.4): the 2nd.. (dim+1)-th eigenvectors of the
//! normalized Laplacian for a connected graph; for a disconnected one, the multi-component
//! layout (component meta-positions, then each component's own spectral layout scaled to
//! half the distance to the nearest other meta-position).

use atlasflow_core::Embedding;
use faer::Mat;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::eigen::laplacian_eigenvectors;
use crate::graph::{Pruned, connected_components};
use crate::linalg::sym_eigen;

/// Row-major n × dim coordinates in f64.
pub type Coords = Vec<f64>;

/// Uniform in [lo, hi) for n × dim values.
pub fn uniform(rng: &mut ChaCha8Rng, len: usize, lo: f64, hi: f64) -> Coords {
    (0..len).map(|_| lo + (hi - lo) * rng.random::<f64>()).collect()
}

/// The spectral layout of `g` (n × dim, row-major), as umap-learn's `spectral_layout`.
/// `representation` (the neighbors' input, e.g. X_pca) places disconnected components.
pub fn spectral_layout(
    g: &Pruned,
    dim: usize,
    representation: Option<&Embedding>,
    rng: &mut ChaCha8Rng,
) -> Coords {
    let (n_comp, labels) = connected_components(g);
    if n_comp > 1 {
        return multi_component_layout(g, dim, n_comp, &labels, representation, rng);
    }
    connected_layout(g, dim, rng)
}

/// Spectral layout of a connected graph, or uniform(−10, 10) if the eigensolver fails
/// (umap-learn's fallback).
fn connected_layout(g: &Pruned, dim: usize, rng: &mut ChaCha8Rng) -> Coords {
    match laplacian_eigenvectors(g, dim) {
        Some(vecs) => {
            let mut out = vec![0.0; g.n * dim];
            for (c, v) in vecs.iter().enumerate() {
                for (r, &x) in v.iter().enumerate() {
                    out[r * dim + c] = x;
                }
            }
            out
        }
        None => uniform(rng, g.n * dim, -10.0, 10.0),
    }
}

fn multi_component_layout(
    g: &Pruned,
    dim: usize,
    n_comp: usize,
    labels: &[u32],
    representation: Option<&Embedding>,
    rng: &mut ChaCha8Rng,
) -> Coords {
    let meta: Vec<Vec<f64>> = if n_comp > 2 * dim {
        component_layout(n_comp, labels, dim, representation, rng)
    } else {
        // ±unit vectors: [I_k 0; −I_k 0] truncated to n_comp rows, k = ceil(C/2) ≤ dim.
        let k = n_comp.div_ceil(2);
        (0..n_comp)
            .map(|c| {
                let mut row = vec![0.0; dim];
                let (i, sign) = if c < k { (c, 1.0) } else { (c - k, -1.0) };
                row[i] = sign;
                row
            })
            .collect()
    };
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n_comp];
    for (v, &l) in labels.iter().enumerate() {
        members[l as usize].push(v);
    }
    let mut result = vec![0.0; g.n * dim];
    let mut local = vec![u32::MAX; g.n];
    for (label, verts) in members.iter().enumerate() {
        let data_range = meta
            .iter()
            .map(|m| m.iter().zip(&meta[label]).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt())
            .filter(|&d| d > 0.0)
            .fold(f64::INFINITY, f64::min)
            / 2.0;
        let data_range = if data_range.is_finite() { data_range } else { 1.0 };
        let size = verts.len();
        if size < 2 * dim || size <= dim + 1 {
            let noise = uniform(rng, size * dim, -data_range, data_range);
            for (i, &v) in verts.iter().enumerate() {
                for d in 0..dim {
                    result[v * dim + d] = noise[i * dim + d] + meta[label][d];
                }
            }
        } else {
            for (i, &v) in verts.iter().enumerate() {
                local[v] = i as u32;
            }
            let sub = g.subgraph(verts, &local);
            for &v in verts {
                local[v] = u32::MAX;
            }
            let emb = connected_layout(&sub, dim, rng);
            let max_abs = emb.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            let expansion = if max_abs > 0.0 { data_range / max_abs } else { 0.0 };
            for (i, &v) in verts.iter().enumerate() {
                for d in 0..dim {
                    result[v * dim + d] = emb[i * dim + d] * expansion + meta[label][d];
                }
            }
        }
    }
    result
}

/// Meta-positions of the components (umap-learn's `component_layout`): sklearn's
/// SpectralEmbedding of the affinity exp(−d²) between component centroids in the
/// representation, divided by its maximum. Without a representation umap-learn draws
/// uniform [0, 10) positions; we do the same from the seeded generator.
fn component_layout(
    n_comp: usize,
    labels: &[u32],
    dim: usize,
    representation: Option<&Embedding>,
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<f64>> {
    let rep = match representation {
        Some(r) if r.width > 0 && r.n_rows() == labels.len() => r,
        _ => {
            let u = uniform(rng, n_comp * dim, 0.0, 10.0);
            return u.chunks(dim).map(|c| c.to_vec()).collect();
        }
    };
    let width = rep.width;
    let mut centroids = vec![vec![0.0f64; width]; n_comp];
    let mut counts = vec![0usize; n_comp];
    for (v, &l) in labels.iter().enumerate() {
        counts[l as usize] += 1;
        for (c, &x) in centroids[l as usize].iter_mut().zip(rep.row(v)) {
            *c += x as f64;
        }
    }
    for (c, &k) in centroids.iter_mut().zip(&counts) {
        c.iter_mut().for_each(|x| *x /= k as f64);
    }
    let affinity = Mat::from_fn(n_comp, n_comp, |i, j| {
        let d2: f64 = centroids[i].iter().zip(&centroids[j]).map(|(x, y)| (x - y) * (x - y)).sum();
        (-d2).exp()
    });
    let mut emb = spectral_embedding_dense(&affinity, dim);
    let max = emb.iter().flatten().fold(f64::NEG_INFINITY, |m, &x| m.max(x));
    if max.is_finite() && max > 0.0 {
        emb.iter_mut().flatten().for_each(|x| *x /= max);
    }
    emb
}

/// sklearn's `spectral_embedding(affinity, n_components=dim, norm_laplacian=True,
/// drop_first=True)` on a small dense affinity: the normalized Laplacian (diagonal of the
/// affinity ignored for the degrees), its eigenvectors 2..dim+1 (ascending), divided by
/// sqrt(degree), each with the sign that makes its largest |entry| positive.
/// Returns one row per node.
fn spectral_embedding_dense(affinity: &Mat<f64>, dim: usize) -> Vec<Vec<f64>> {
    let c = affinity.nrows();
    let deg: Vec<f64> =
        (0..c).map(|i| (0..c).filter(|&j| j != i).map(|j| affinity[(i, j)]).sum()).collect();
    let dd: Vec<f64> = deg.iter().map(|&d| if d > 0.0 { d.sqrt() } else { 1.0 }).collect();
    let lap = Mat::from_fn(c, c, |i, j| {
        if i == j {
            1.0
        } else {
            -affinity[(i, j)] / (dd[i] * dd[j])
        }
    });
    let mut out = vec![vec![0.0; dim]; c];
    let Some((_, vecs)) = sym_eigen(&lap) else {
        return out;
    };
    for k in 0..dim.min(c.saturating_sub(1)) {
        let col: Vec<f64> = (0..c).map(|i| vecs[(i, k + 1)] / dd[i]).collect();
        let arg = col
            .iter()
            .enumerate()
            .fold((0, -1.0f64), |(bi, bv), (i, &x)| if x.abs() > bv { (i, x.abs()) } else { (bi, bv) })
            .0;
        let sign = if col[arg] < 0.0 { -1.0 } else { 1.0 };
        for (i, x) in col.iter().enumerate() {
            out[i][k] = x * sign;
        }
    }
    out
}
