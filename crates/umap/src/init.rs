//! The initial layout before SGD (semantics §7.4–7.5): spectral (then umap-learn's
//! `noisy_scale_coords`), random, or given coordinates; then every axis min-max rescaled to
//! [0, 10] in f32, as `simplicial_set_embedding` does for all inits.

use atlasflow_core::{Embedding, Result, StageError};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::STAGE;
use crate::graph::Pruned;
use crate::spectral::{spectral_layout, uniform};

/// Spectral layout, scaled so the largest |coordinate| is 10 (one global max), cast to f32,
/// plus N(0, 1e-4) noise in f32.
pub fn spectral_init(
    g: &Pruned,
    dim: usize,
    representation: Option<&Embedding>,
    rng: &mut ChaCha8Rng,
) -> Vec<f32> {
    let coords = spectral_layout(g, dim, representation, rng);
    noisy_scale(&coords, rng)
}

/// umap-learn's `noisy_scale_coords(max_coord=10, noise=0.0001)`.
fn noisy_scale(coords: &[f64], rng: &mut ChaCha8Rng) -> Vec<f32> {
    let max = coords.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let expansion = if max > 0.0 { 10.0 / max } else { 1.0 };
    coords
        .iter()
        .map(|&x| {
            let noise: f64 = rng.sample(StandardNormal);
            (x * expansion) as f32 + (noise * 1e-4) as f32
        })
        .collect()
}

/// uniform(−10, 10) in f32, umap-learn's `init="random"`.
pub fn random_init(n: usize, dim: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    uniform(rng, n * dim, -10.0, 10.0).into_iter().map(|x| x as f32).collect()
}

/// Given coordinates (an obsm entry). As umap-learn, when some rows are duplicated, adds
/// N(0, (0.001 · mean nearest-neighbour distance)²) noise so that no two points coincide.
pub fn given_init(init: &Embedding, n: usize, dim: usize, rng: &mut ChaCha8Rng) -> Result<Vec<f32>> {
    if init.width != dim || init.n_rows() != n || init.values.len() != n * dim {
        return Err(StageError::param(
            STAGE,
            "init_pos",
            format!(
                "the initial coordinates are {} × {}, expected {n} cells × {dim} components",
                init.n_rows(),
                init.width
            ),
        ));
    }
    if init.values.iter().any(|x| !x.is_finite()) {
        return Err(StageError::param(STAGE, "init_pos", "the initial coordinates contain NaN or inf"));
    }
    let mut out = init.values.clone();
    if has_duplicate_rows(&out, dim) {
        let scale = 0.001 * mean_nn_distance(&out, dim);
        for x in out.iter_mut() {
            let z: f64 = rng.sample(StandardNormal);
            *x += (z * scale) as f32;
        }
    }
    Ok(out)
}

fn has_duplicate_rows(x: &[f32], dim: usize) -> bool {
    let mut rows: Vec<&[f32]> = x.chunks(dim).collect();
    rows.sort_by(|a, b| {
        a.iter().zip(*b).map(|(p, q)| p.total_cmp(q)).find(|o| o.is_ne()).unwrap_or(std::cmp::Ordering::Equal)
    });
    rows.windows(2).any(|w| w[0] == w[1])
}

/// Mean distance to the nearest other point (exact; a sweep along the first axis).
fn mean_nn_distance(x: &[f32], dim: usize) -> f64 {
    let n = x.len() / dim;
    if n < 2 {
        return 0.0;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| x[i * dim].total_cmp(&x[j * dim]));
    let d2 = |i: usize, j: usize| -> f64 {
        (0..dim).map(|d| (x[i * dim + d] as f64 - x[j * dim + d] as f64).powi(2)).sum()
    };
    let mut total = 0.0;
    for (p, &i) in order.iter().enumerate() {
        let mut best = f64::INFINITY;
        for &j in order[p + 1..].iter() {
            let dx = x[j * dim] as f64 - x[i * dim] as f64;
            if dx * dx >= best {
                break;
            }
            best = best.min(d2(i, j));
        }
        for &j in order[..p].iter().rev() {
            let dx = x[i * dim] as f64 - x[j * dim] as f64;
            if dx * dx >= best {
                break;
            }
            best = best.min(d2(i, j));
        }
        total += best.sqrt();
    }
    total / n as f64
}

/// Each axis to [0, 10]: 10·(x − min)/(max − min), in f32 as numpy computes it. A constant
/// axis (where umap-learn would divide by zero) becomes 0.
pub fn min_max_scale(x: &mut [f32], dim: usize) {
    for d in 0..dim {
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for row in x.chunks(dim) {
            lo = lo.min(row[d]);
            hi = hi.max(row[d]);
        }
        let range = hi - lo;
        for row in x.chunks_mut(dim) {
            row[d] = if range > 0.0 { 10.0f32 * (row[d] - lo) / range } else { 0.0 };
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn min_max_to_0_10() {
        let mut x = vec![1.0, 5.0, 3.0, -5.0, 2.0, 0.0];
        min_max_scale(&mut x, 2);
        assert_eq!(x, vec![0.0, 10.0, 10.0, 0.0, 5.0, 5.0]);
    }

    #[test]
    fn nn_distance_sweep() {
        let x = vec![0.0, 0.0, 3.0, 4.0, 0.0, 1.0];
        assert!((mean_nn_distance(&x, 2) - (1.0 + 4.242640687119285 + 1.0) / 3.0).abs() < 1e-12);
        assert!(!has_duplicate_rows(&x, 2));
        assert!(has_duplicate_rows(&[1.0, 2.0, 1.0, 2.0], 2));
    }
}
