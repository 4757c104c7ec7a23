//! The smallest non-trivial eigenvectors of the symmetric normalized Laplacian
//! L = I − D^(−1/2) W D^(−1/2), what umap-learn gets from ARPACK `eigsh(which="SM")`.
//!
//! No maintained Rust crate solves large sparse symmetric eigenproblems well, so this is a
//! hand-written thick-restart Lanczos with full reorthogonalisation (classical Gram–Schmidt
//! applied twice) on N = D^(−1/2) W D^(−1/2): the smallest eigenvalues of L are the largest of
//! N. The trivial eigenvector sqrt(deg)/‖sqrt(deg)‖ (eigenvalue 1 of N on a connected graph)
//! is known exactly and projected out, so the wanted vectors are the top ones of the rest.
//! Each cycle extends the basis to `m` vectors, does an explicit Rayleigh–Ritz on it, and
//! restarts from the best half of the Ritz vectors plus the next Krylov direction. The start
//! vector is ones (umap-learn's v0) perturbed by seeded noise, so the result is deterministic; every reduction is
//! chunked (see [`crate::linalg`]) so it is also the same bits for any thread count. Small
//! graphs use a dense eigendecomposition (faer) instead.

use faer::Mat;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::graph::Pruned;
use crate::linalg::{CHUNK, combine, cross_gram, dots, norm, subtract_combination, sym_eigen};

/// Graphs up to this many vertices use the dense eigendecomposition.
const DENSE_MAX: usize = 400;

/// Residual tolerance, relative to the eigenvalue of L as ARPACK's `tol=1e-4`, with a floor
/// (see [`converged`]).
const TOL: f64 = 1e-4;

/// The normalized adjacency N = D^(−1/2) W D^(−1/2) in CSR, with D = column sums of W.
pub struct NormAdj {
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f64>,
    /// sqrt(deg) per vertex.
    pub sqrt_deg: Vec<f64>,
}

impl NormAdj {
    /// Build from the pruned graph; None if a vertex has zero degree.
    pub fn new(g: &Pruned) -> Option<Self> {
        let mut deg = vec![0.0f64; g.n];
        for (&c, &w) in g.indices.iter().zip(&g.weights) {
            deg[c as usize] += w as f64;
        }
        if deg.iter().any(|&d| d.is_nan() || d <= 0.0) {
            return None;
        }
        let sqrt_deg: Vec<f64> = deg.iter().map(|d| d.sqrt()).collect();
        let mut values = Vec::with_capacity(g.nnz());
        for i in 0..g.n {
            let (cols, ws) = g.row(i);
            for (&c, &w) in cols.iter().zip(ws) {
                values.push(w as f64 / (sqrt_deg[i] * sqrt_deg[c as usize]));
            }
        }
        Some(NormAdj { indptr: g.indptr.clone(), indices: g.indices.clone(), values, sqrt_deg })
    }

    fn n(&self) -> usize {
        self.sqrt_deg.len()
    }

    /// y = N x, rows in parallel, each row summed sequentially.
    fn apply(&self, x: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; x.len()];
        y.par_chunks_mut(CHUNK).enumerate().for_each(|(c, ys)| {
            for (r, out) in ys.iter_mut().enumerate() {
                let i = c * CHUNK + r;
                let (a, b) = (self.indptr[i], self.indptr[i + 1]);
                let mut s = 0.0;
                for p in a..b {
                    s += self.values[p] * x[self.indices[p] as usize];
                }
                *out = s;
            }
        });
        y
    }

    fn dense_laplacian(&self) -> Mat<f64> {
        let n = self.n();
        let mut l = Mat::<f64>::identity(n, n);
        for i in 0..n {
            for p in self.indptr[i]..self.indptr[i + 1] {
                l[(i, self.indices[p] as usize)] -= self.values[p];
            }
        }
        l
    }
}

/// The `nwant` eigenvectors of L after the trivial one (ascending eigenvalue), as columns
/// of length n; None when the solver fails (umap-learn then falls back to a random layout).
pub fn laplacian_eigenvectors(g: &Pruned, nwant: usize) -> Option<Vec<Vec<f64>>> {
    let op = NormAdj::new(g)?;
    let n = op.n();
    if n < nwant + 2 {
        return None;
    }
    if n <= DENSE_MAX {
        let l = op.dense_laplacian();
        let h = Mat::from_fn(n, n, |i, j| 0.5 * (l[(i, j)] + l[(j, i)]));
        let (_, vecs) = sym_eigen(&h)?;
        return Some((1..=nwant).map(|c| (0..n).map(|r| vecs[(r, c)]).collect()).collect());
    }
    lanczos(&op, nwant)
}

/// Orthogonalise `w` against `u0` and the basis (classical Gram–Schmidt, repeated when the
/// first pass removed most of `w`, the DGKS criterion); returns its norm after. The last two
/// basis vectors (the bulk of a Lanczos step) are removed first at little cost, so that one
/// full pass usually suffices.
fn orthogonalise(w: &mut [f64], u0: &[f64], basis: &[Vec<f64>]) -> f64 {
    let mut refs: Vec<&[f64]> = Vec::with_capacity(basis.len() + 1);
    refs.push(u0);
    refs.extend(basis.iter().map(|v| v.as_slice()));
    let local = &refs[refs.len().saturating_sub(2).max(1)..];
    if !local.is_empty() {
        let c = dots(local, w);
        subtract_combination(w, local, &c);
    }
    let mut before = norm(w);
    for _ in 0..3 {
        let c = dots(&refs, w);
        subtract_combination(w, &refs, &c);
        let after = norm(w);
        if after > 0.7 * before {
            return after;
        }
        before = after;
    }
    before
}

/// Residual test: ‖N x − θ x‖ ≤ TOL · max(1 − θ, FLOOR), i.e. ARPACK's relative tolerance on
/// the eigenvalue of L, floored (an absolute 1e-6) so that the near-zero eigenvalues of very
/// large graphs do not demand more precision than an initialisation needs: the angle error
/// of a vector is about the residual over the eigengap.
fn converged(res: f64, theta: f64) -> bool {
    res <= TOL * (1.0 - theta).max(FLOOR)
}

/// See [`converged`].
const FLOOR: f64 = 1e-2;

fn lanczos(op: &NormAdj, nwant: usize) -> Option<Vec<Vec<f64>>> {
    let n = op.n();
    let nrm = norm(&op.sqrt_deg);
    let u0: Vec<f64> = op.sqrt_deg.iter().map(|x| x / nrm).collect();
    let m = (n - 1).min(48).max(nwant + 2);
    let keep = (m / 2).max(nwant + 1).min(m - 1);
    let max_matvecs = (5 * n).clamp(1000, 30_000);

    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    // umap-learn passes v0 = ones to ARPACK. A vector with structure can miss the wanted
    // eigenvectors entirely (e.g. on a graph with periodic degrees ones − its projection on
    // sqrt(deg) has no low-frequency part), so ones is perturbed by seeded uniform noise.
    let mut start: Vec<f64> = (0..n).map(|_| 0.5 + rng.random::<f64>()).collect();
    let mut random_unit = |basis: &[Vec<f64>]| -> Option<Vec<f64>> {
        for _ in 0..10 {
            let mut w: Vec<f64> = (0..n).map(|_| rng.random::<f64>() - 0.5).collect();
            let nw = orthogonalise(&mut w, &u0, basis);
            if nw > 1e-8 {
                w.iter_mut().for_each(|x| *x /= nw);
                return Some(w);
            }
        }
        None
    };

    let ns = orthogonalise(&mut start, &u0, &[]);
    let start = if ns > 1e-8 * (n as f64).sqrt() {
        start.iter().map(|x| x / ns).collect()
    } else {
        random_unit(&[])?
    };
    let mut v: Vec<Vec<f64>> = vec![start];
    let mut w: Vec<Vec<f64>> = vec![op.apply(&v[0])];
    let mut matvecs = 1usize;
    loop {
        // Extend the Krylov basis to m vectors.
        while v.len() < m {
            let mut cand = w[v.len() - 1].clone();
            let scale = norm(&cand).max(1e-300);
            let nc = orthogonalise(&mut cand, &u0, &v);
            let next = if nc > 1e-10 * scale {
                cand.iter().map(|x| x / nc).collect()
            } else {
                // Invariant subspace: continue with a fresh direction.
                random_unit(&v)?
            };
            w.push(op.apply(&next));
            v.push(next);
            matvecs += 1;
        }
        // Rayleigh–Ritz on span(v).
        let vr: Vec<&[f64]> = v.iter().map(|x| x.as_slice()).collect();
        let wr: Vec<&[f64]> = w.iter().map(|x| x.as_slice()).collect();
        let h = cross_gram(&vr, &wr);
        let (vals, vecs) = sym_eigen(&h)?;
        // Largest first.
        let order: Vec<usize> = (0..vals.len()).rev().collect();
        let y = Mat::from_fn(m, keep, |i, j| vecs[(i, order[j])]);
        let x = combine(&vr, &y, keep);
        let ax = combine(&wr, &y, keep);
        let mut all = true;
        for c in 0..nwant {
            let theta = vals[order[c]];
            let mut r = ax[c].clone();
            r.iter_mut().zip(&x[c]).for_each(|(ri, xi)| *ri -= theta * xi);
            if !converged(norm(&r), theta) {
                all = false;
            }
        }
        if all {
            return Some(x.into_iter().take(nwant).collect());
        }
        if matvecs >= max_matvecs {
            return None;
        }
        // The next Krylov direction, orthogonal to the old basis (hence to the Ritz vectors).
        let mut f = w[m - 1].clone();
        let scale = norm(&f).max(1e-300);
        let nf = orthogonalise(&mut f, &u0, &v);
        v = x;
        w = ax;
        let next = if nf > 1e-10 * scale {
            let mut f: Vec<f64> = f.iter().map(|z| z / nf).collect();
            let nf2 = orthogonalise(&mut f, &u0, &v);
            if nf2 > 1e-8 {
                f.iter_mut().for_each(|z| *z /= nf2);
                f
            } else {
                random_unit(&v)?
            }
        } else {
            random_unit(&v)?
        };
        w.push(op.apply(&next));
        v.push(next);
        matvecs += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A ring of n vertices with a few chords: compare Lanczos with the dense solver.
    #[test]
    fn lanczos_matches_dense() {
        let n = 600;
        let mut rows: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n];
        let mut add = |i: usize, j: usize, w: f32| {
            rows[i].push((j as u32, w));
            rows[j].push((i as u32, w));
        };
        for i in 0..n {
            add(i, (i + 1) % n, 1.0);
            add(i, (i + 2) % n, 0.3 + (i % 7) as f32 * 0.1);
        }
        let mut g = Pruned { n, indptr: vec![0], ..Default::default() };
        for mut r in rows {
            r.sort_by_key(|x| x.0);
            for (c, w) in r {
                g.indices.push(c);
                g.weights.push(w);
            }
            g.indptr.push(g.indices.len());
        }
        let op = NormAdj::new(&g).unwrap();
        let lz = lanczos(&op, 2).unwrap();
        let l = op.dense_laplacian();
        let (vals, vecs) = sym_eigen(&l).unwrap();
        // Compare the spanned subspaces (the ring has near-degenerate pairs).
        for x in &lz {
            let mut proj = 0.0;
            for c in 1..=2 {
                let d: f64 = (0..n).map(|r| vecs[(r, c)] * x[r]).sum();
                proj += d * d;
            }
            assert!(proj > 0.999, "projection {proj}, eigenvalues {:?}", &vals[..4]);
        }
    }
}
