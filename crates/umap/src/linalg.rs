//! Deterministic parallel vector kernels for the eigensolver.
//!
//! Reductions are cut into fixed-size chunks (independent of the thread count), each chunk
//! summed sequentially, and the partial sums added in chunk order: the result is the same
//! bits on 1 thread or 64.

use faer::{Mat, Side};
use rayon::prelude::*;

/// Rows per parallel chunk.
pub const CHUNK: usize = 4096;

/// Dot products of `w` with every vector of `basis`, reduced deterministically.
pub fn dots(basis: &[&[f64]], w: &[f64]) -> Vec<f64> {
    let nb = basis.len();
    let partials: Vec<Vec<f64>> = (0..w.len().div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let (a, b) = (c * CHUNK, ((c + 1) * CHUNK).min(w.len()));
            let ws = &w[a..b];
            basis
                .iter()
                .map(|v| v[a..b].iter().zip(ws).map(|(x, y)| x * y).sum::<f64>())
                .collect()
        })
        .collect();
    let mut out = vec![0.0; nb];
    for p in partials {
        for (o, x) in out.iter_mut().zip(p) {
            *o += x;
        }
    }
    out
}

/// The Euclidean norm, reduced deterministically.
pub fn norm(w: &[f64]) -> f64 {
    dots(&[w], w)[0].sqrt()
}

/// `w -= Σ_j coef_j · basis_j`, chunk by chunk, basis vectors in order (an axpy each, so
/// the chunk of `w` stays in cache).
pub fn subtract_combination(w: &mut [f64], basis: &[&[f64]], coef: &[f64]) {
    w.par_chunks_mut(CHUNK).enumerate().for_each(|(c, ws)| {
        let a = c * CHUNK;
        let len = ws.len();
        for (v, &k) in basis.iter().zip(coef) {
            for (x, y) in ws.iter_mut().zip(&v[a..a + len]) {
                *x -= k * y;
            }
        }
    });
}

/// Rows per block of the small dense products below: the block of every basis vector
/// (m × 512 × 8 bytes) then stays in the L2 cache.
const BLOCK: usize = 512;

/// Columns `Σ_i y[i][c] · basis_i` for each column c of the small matrix `y` (basis.len() × k).
pub fn combine(basis: &[&[f64]], y: &Mat<f64>, k: usize) -> Vec<Vec<f64>> {
    let n = basis.first().map_or(0, |v| v.len());
    // Row-major n × k, filled block by block, then split into columns.
    let mut rm = vec![0.0; n * k];
    rm.par_chunks_mut(BLOCK * k).enumerate().for_each(|(blk, out)| {
        let a = blk * BLOCK;
        let rows = out.len() / k;
        for c in 0..k {
            let mut col = [0.0f64; BLOCK];
            let col = &mut col[..rows];
            for (i, v) in basis.iter().enumerate() {
                let f = y[(i, c)];
                for (x, z) in col.iter_mut().zip(&v[a..a + rows]) {
                    *x += f * z;
                }
            }
            for (r, x) in col.iter().enumerate() {
                out[r * k + c] = *x;
            }
        }
    });
    (0..k).map(|c| (0..n).map(|r| rm[r * k + c]).collect()).collect()
}

/// The Gram-type matrix H[i][j] = v_i · w_j (m × m), symmetrised, reduced deterministically
/// over fixed row blocks.
pub fn cross_gram(v: &[&[f64]], w: &[&[f64]]) -> Mat<f64> {
    let m = v.len();
    let n = v.first().map_or(0, |x| x.len());
    let partials: Vec<Vec<f64>> = (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .map(|c| {
            let (a, b) = (c * BLOCK, ((c + 1) * BLOCK).min(n));
            let mut h = vec![0.0; m * m];
            for i in 0..m {
                let vi = &v[i][a..b];
                for j in 0..m {
                    h[i * m + j] = vi.iter().zip(&w[j][a..b]).map(|(x, y)| x * y).sum::<f64>();
                }
            }
            h
        })
        .collect();
    let mut h = vec![0.0; m * m];
    for p in partials {
        for (o, x) in h.iter_mut().zip(p) {
            *o += x;
        }
    }
    Mat::from_fn(m, m, |i, j| 0.5 * (h[i * m + j] + h[j * m + i]))
}

/// Eigenvalues (ascending) and eigenvectors (columns) of a small symmetric matrix, or None
/// if the decomposition fails or is not finite.
pub fn sym_eigen(h: &Mat<f64>) -> Option<(Vec<f64>, Mat<f64>)> {
    let eig = h.self_adjoint_eigen(Side::Lower).ok()?;
    let s = eig.S().column_vector();
    let vals: Vec<f64> = (0..h.nrows()).map(|i| s[i]).collect();
    let u = eig.U();
    let vecs = Mat::from_fn(h.nrows(), h.ncols(), |i, j| u[(i, j)]);
    if vals.iter().all(|x| x.is_finite()) { Some((vals, vecs)) } else { None }
}
