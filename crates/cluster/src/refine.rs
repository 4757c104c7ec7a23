//! The refinement phase, as leidenalg 0.12 runs it (`merge_nodes_constrained` with its
//! default `refine_consider_comms = RAND_NEIGH_COMM`): start from singletons; visit the nodes
//! in a seeded random order; a node still alone in its refined community draws, among the
//! refined communities of its neighbours inside the same (non-refined) community, one at
//! random, after a draw that leaves it where it is with probability 1/(k+1) for k
//! candidates; it merges when the quality does not decrease.
//!
//! This is leidenalg's randomized greedy variant, not the paper's θ-weighted draw (that
//! one is igraph's `community_leiden`). Either way, refined communities only split
//! communities of the moving phase, so aggregation never merges across them.
//!
//! Communities of the moving phase are refined independently (nothing crosses them), so
//! they run in parallel. Each gets its own ChaCha8 stream (one seed drawn from the
//! optimiser's stream, the community's index as the stream number) and visits its own nodes
//! in a random order: the result does not depend on the thread count. (leidenalg shuffles
//! all nodes at once; the distribution of visiting orders within a community is the same.)

use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::network::Network;
use crate::partition::compact;

/// Refine `parent` (a partition of `net`, ids need not be compact): returns the refined
/// membership, ids 0..r grouped by parent community, and r.
pub(crate) fn refine(
    net: &Network,
    parent: &[u32],
    resolution: f64,
    rng: &mut ChaCha8Rng,
) -> (Vec<u32>, usize) {
    let n = net.n;
    let seed = rng.next_u64();
    // Nodes grouped by parent community, ascending within each; `local` = position there.
    let k = parent.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
    let mut start = vec![0usize; k + 1];
    for &c in parent {
        start[c as usize + 1] += 1;
    }
    for c in 0..k {
        start[c + 1] += start[c];
    }
    let mut fill = start.clone();
    let mut nodes = vec![0u32; n];
    let mut local = vec![0u32; n];
    for (v, &c) in parent.iter().enumerate() {
        let c = c as usize;
        local[v] = (fill[c] - start[c]) as u32;
        nodes[fill[c]] = v as u32;
        fill[c] += 1;
    }
    let groups: Vec<(Vec<u32>, usize)> = (0..k)
        .into_par_iter()
        .map(|c| {
            let members = &nodes[start[c]..start[c + 1]];
            let mut g_rng = ChaCha8Rng::seed_from_u64(seed);
            g_rng.set_stream(c as u64);
            refine_community(net, parent, &local, members, resolution, &mut g_rng)
        })
        .collect();
    let mut refined = vec![0u32; n];
    let mut offset = 0u32;
    for (c, (membership, r)) in groups.into_iter().enumerate() {
        for (&v, &m) in nodes[start[c]..start[c + 1]].iter().zip(&membership) {
            refined[v as usize] = offset + m;
        }
        offset += r as u32;
    }
    (refined, offset as usize)
}

/// Refine one community whose nodes are `members` (ascending; `local[v]` is v's position):
/// returns the refined membership of the members, ids 0..r by first appearance, and r.
fn refine_community(
    net: &Network,
    parent: &[u32],
    local: &[u32],
    members: &[u32],
    resolution: f64,
    rng: &mut ChaCha8Rng,
) -> (Vec<u32>, usize) {
    let size = members.len();
    let mut membership: Vec<u32> = (0..size as u32).collect();
    if net.total > 0.0 && size > 1 {
        let mut comm_strength: Vec<f64> =
            members.iter().map(|&v| net.strength[v as usize]).collect();
        let mut comm_nodes = vec![1u32; size];
        let mut weight = vec![0.0f64; size];
        let mut seen = vec![false; size];
        let mut cands: Vec<u32> = Vec::new();
        let mut order: Vec<u32> = (0..size as u32).collect();
        order.shuffle(rng);
        for x in order {
            let x = x as usize;
            let from = membership[x];
            if comm_nodes[from as usize] != 1 {
                continue;
            }
            let v = members[x] as usize;
            // leidenalg lists the node's own community too when it has a self-loop
            // (aggregate nodes do), which only adds a way to stay.
            if net.self_weight[v] > 0.0 {
                seen[from as usize] = true;
                cands.push(from);
            }
            let (adj, w) = net.row(v);
            for (&u, &wu) in adj.iter().zip(w) {
                if parent[u as usize] == parent[v] {
                    let c = membership[local[u as usize] as usize] as usize;
                    if !seen[c] {
                        seen[c] = true;
                        cands.push(c as u32);
                    }
                    weight[c] += wu;
                }
            }
            let n_cands = cands.len();
            if n_cands > 0 && rng.random_range(0..=n_cands) > 0 {
                let to = cands[rng.random_range(0..n_cands)];
                if to != from {
                    let k = net.strength[v];
                    // v is alone: no weight to the rest of its community, K_from = k.
                    let gain = 2.0 * weight[to as usize]
                        - 2.0 * resolution * k * comm_strength[to as usize] / net.total;
                    if gain >= 0.0 {
                        comm_strength[from as usize] = 0.0;
                        comm_nodes[from as usize] = 0;
                        comm_strength[to as usize] += k;
                        comm_nodes[to as usize] += 1;
                        membership[x] = to;
                    }
                }
            }
            for &c in &cands {
                weight[c as usize] = 0.0;
                seen[c as usize] = false;
            }
            cands.clear();
        }
    }
    let r = compact(&mut membership);
    (membership, r)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use atlasflow_core::Graph;

    #[test]
    fn refined_communities_stay_inside_their_parent() {
        // A path 0-1-2-3-4-5-6 plus 1-7, parents {0,1,2}, {3,4,5}, {6,7}: 6 and 7 share a
        // parent but no edge inside it.
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); 8];
        for (a, b) in [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (1, 7)] {
            rows[a].push(b as u32);
            rows[b].push(a as u32);
        }
        let mut indptr = vec![0u64];
        let mut indices = Vec::new();
        for r in rows {
            indices.extend(r);
            indptr.push(indices.len() as u64);
        }
        let values = vec![1.0; indices.len()];
        let g = Graph {
            n: 8,
            indptr,
            indices,
            values,
            float32: true,
        };
        let net = Network::from_graph(&g, true, "t").unwrap();
        let parent = [0, 0, 0, 1, 1, 1, 2, 2];
        for seed in 0..20 {
            let (refined, r) = refine(&net, &parent, 1.0, &mut ChaCha8Rng::seed_from_u64(seed));
            assert!((4..=8).contains(&r), "{r}");
            for u in 0..8 {
                for v in 0..8 {
                    if refined[u] == refined[v] {
                        assert_eq!(parent[u], parent[v], "seed {seed}: {refined:?}");
                    }
                }
            }
            assert_ne!(refined[6], refined[7], "unlinked nodes never merge");
        }
    }
}
