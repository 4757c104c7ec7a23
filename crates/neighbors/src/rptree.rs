//! Random-projection trees (pynndescent's euclidean `make_euclidean_tree`), whose leaves seed
//! NN-descent with nearby points.
//!
//! A node splits on the hyperplane halfway between two of its points drawn at random; points
//! on the hyperplane (|margin| < EPS) and nodes where every point falls on one side are
//! split by coin flips. A node of at most `leaf_size` points is a leaf. Each tree draws from
//! its own ChaCha stream seeded by (random_state, tree), so trees can be built in parallel
//! and come out the same whatever the thread count.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::distance::dot;

/// pynndescent's margin below which a point is sent to a random side.
const EPS: f32 = 1e-8;
/// pynndescent's default `max_rptree_depth`.
const MAX_DEPTH: usize = 200;

/// One tree's leaves: a permutation of all points, cut into consecutive leaves.
pub struct Leaves {
    /// The points, leaf after leaf.
    pub order: Vec<u32>,
    /// Leaf `l` is `order[bounds[l]..bounds[l + 1]]`.
    pub bounds: Vec<usize>,
}

impl Leaves {
    /// For every point, the leaf holding it.
    pub fn leaf_of(&self, n: usize) -> Vec<u32> {
        let mut out = vec![0u32; n];
        for l in 0..self.bounds.len() - 1 {
            for &p in &self.order[self.bounds[l]..self.bounds[l + 1]] {
                out[p as usize] = l as u32;
            }
        }
        out
    }
    /// The points of leaf `l`.
    pub fn leaf(&self, l: usize) -> &[u32] {
        &self.order[self.bounds[l]..self.bounds[l + 1]]
    }
}

/// Build one random-projection tree over the `n × d` row-major `data`.
pub fn build_tree(
    data: &[f32],
    n: usize,
    d: usize,
    leaf_size: usize,
    seed: u64,
    tree: u64,
) -> Leaves {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(tree);
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut bounds = vec![0usize];
    // Depth-first over (start, end, depth), left child first, so leaves come out in order.
    let mut stack = vec![(0usize, n, 0usize)];
    let mut hyperplane = vec![0f32; d];
    let mut side: Vec<bool> = Vec::new();
    while let Some((start, end, depth)) = stack.pop() {
        let len = end - start;
        if len <= leaf_size.max(1) || depth >= MAX_DEPTH {
            bounds.push(end);
            continue;
        }
        let node = &mut order[start..end];
        let left = (rng.next_u32() as usize) % len;
        let mut right = (rng.next_u32() as usize) % len;
        if right == left {
            right = (right + 1) % len;
        }
        let (a, b) = (node[left] as usize, node[right] as usize);
        let (xa, xb) = (&data[a * d..(a + 1) * d], &data[b * d..(b + 1) * d]);
        let mut offset = 0f32;
        for c in 0..d {
            hyperplane[c] = xa[c] - xb[c];
            offset -= hyperplane[c] * (xa[c] + xb[c]) / 2.0;
        }
        side.clear();
        let mut n_left = 0usize;
        for &p in node.iter() {
            let p = p as usize;
            let margin = offset + dot(&hyperplane, &data[p * d..(p + 1) * d]);
            let s = if margin.abs() < EPS {
                rng.next_u32() & 1 == 0
            } else {
                margin > 0.0
            };
            n_left += usize::from(s);
            side.push(s);
        }
        if n_left == 0 || n_left == len {
            n_left = 0;
            for s in side.iter_mut() {
                *s = rng.next_u32() & 1 == 0;
                n_left += usize::from(*s);
            }
            if n_left == 0 || n_left == len {
                // Degenerate coin flips: halve by position.
                for (t, s) in side.iter_mut().enumerate() {
                    *s = t < len / 2;
                }
                n_left = len / 2;
            }
        }
        // Stable partition: left side first.
        let mut lefts: Vec<u32> = Vec::with_capacity(n_left);
        let mut rights: Vec<u32> = Vec::with_capacity(len - n_left);
        for (&p, &s) in node.iter().zip(&side) {
            if s { lefts.push(p) } else { rights.push(p) }
        }
        node[..n_left].copy_from_slice(&lefts);
        node[n_left..].copy_from_slice(&rights);
        stack.push((start + n_left, end, depth + 1));
        stack.push((start, start + n_left, depth + 1));
    }
    Leaves { order, bounds }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn leaves_partition_all_points_and_respect_leaf_size() {
        let (n, d) = (1000, 4);
        let data: Vec<f32> = (0..n * d).map(|t| ((t * 7919) % 997) as f32).collect();
        let leaves = build_tree(&data, n, d, 16, 7, 3);
        let mut seen = leaves.order.clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..n as u32).collect::<Vec<_>>());
        for l in 0..leaves.bounds.len() - 1 {
            assert!(leaves.leaf(l).len() <= 16 && !leaves.leaf(l).is_empty());
        }
        assert_eq!(build_tree(&data, n, d, 16, 7, 3).order, leaves.order);
    }
}
