//! Fast local moving (Traag et al. 2019, Algorithm A.2; leidenalg's `move_nodes` with
//! `ALL_NEIGH_COMMS` and `consider_empty_community`): all nodes enter a queue in a seeded
//! random order; each popped node moves to the neighbouring (or an empty) community with
//! the largest quality gain, if that gain is positive; when a node moves, its neighbours
//! outside the new community that were settled go back to the end of the queue.
//!
//! Sequential by nature (each move changes the gains of the next); determinism comes from
//! the seeded order and a fixed tie rule (the first community met along the node's sorted
//! adjacency wins among equal gains, the empty community last).

use std::collections::VecDeque;

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::network::Network;
use crate::partition::{NeighbourWeights, Partition};

/// Smallest accepted gain, relative to the moving node's strength. leidenalg accepts any
/// gain above 10·DBL_EPSILON; gains that small are rounding noise on strengths of order
/// one and can make a node bounce between two equivalent communities forever (the
/// "iterate until nothing changes" loop would then not end), so the bar scales with the
/// node's strength, far below any real improvement.
pub(crate) const RELATIVE_MIN_GAIN: f64 = 1e-12;

/// leidenalg's absolute bar, the floor of ours.
pub(crate) const ABSOLUTE_MIN_GAIN: f64 = 10.0 * f64::EPSILON;

/// Move nodes of `net` between communities of `part` until no single move improves the
/// quality. Returns the summed gain of the moves made (0 when nothing moved).
pub(crate) fn move_nodes(
    net: &Network,
    part: &mut Partition,
    resolution: f64,
    rng: &mut ChaCha8Rng,
) -> f64 {
    let n = net.n;
    if n == 0 || net.total <= 0.0 {
        return 0.0;
    }
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.shuffle(rng);
    let mut queue: VecDeque<u32> = order.into();
    // In the queue = not stable.
    let mut stable = vec![false; n];
    let mut nw = NeighbourWeights::new(n);
    let mut improvement = 0.0;
    while let Some(v) = queue.pop_front() {
        let v = v as usize;
        let from = part.membership[v];
        let k = net.strength[v];
        let (adj, w) = net.row(v);
        for (&u, &wu) in adj.iter().zip(w) {
            nw.add(part.membership[u as usize], wu);
        }
        let w_from = nw.get(from);
        let k_from = part.comm_strength[from as usize];
        let scale = 2.0 * resolution * k / net.total;
        let gain = |w_to: f64, k_to: f64| 2.0 * (w_to - w_from) - scale * (k_to - k_from + k);
        let mut best = from;
        let mut best_gain = (RELATIVE_MIN_GAIN * k).max(ABSOLUTE_MIN_GAIN);
        for &c in &nw.comms {
            if c != from {
                let g = gain(nw.get(c), part.comm_strength[c as usize]);
                if g > best_gain {
                    best = c;
                    best_gain = g;
                }
            }
        }
        if part.comm_nodes[from as usize] > 1 {
            let c = part.empty_community();
            let g = gain(0.0, 0.0);
            if g > best_gain {
                best = c;
                best_gain = g;
            }
        }
        nw.clear();
        stable[v] = true;
        if best != from {
            part.move_node(v, k, best);
            improvement += best_gain;
            for &u in adj {
                let ui = u as usize;
                if stable[ui] && part.membership[ui] != best {
                    stable[ui] = false;
                    queue.push_back(u);
                }
            }
        }
    }
    improvement
}
