//! A partition of a [`Network`] with the bookkeeping the RB-configuration quality needs: the
//! total strength and node count of every community, and a stack of empty communities.
//!
//! The quality (leidenalg's `RBConfigurationVertexPartition.quality()`, unscaled modularity)
//! is Q = Σ_c [ in_c − γ K_c² / T ] with in_c = Σ_{i,j∈c} S_ij over ordered pairs, K_c the
//! community's total strength and T = Σ_i k_i. Moving node v (strength k, self weight s)
//! from community a to b changes it by
//!
//!   ΔQ = 2 (w_vb − w_va) − 2γ k (K_b − K_a + k) / T
//!
//! where w_vc is the weight from v to the *other* members of c and K_a still includes v.
//! This is leidenalg's `diff_move` for a symmetric directed graph.

use crate::network::Network;

/// Membership and per-community totals.
#[derive(Clone, Debug)]
pub(crate) struct Partition {
    /// Community of every node; ids are below the node count.
    pub membership: Vec<u32>,
    /// K_c, the total strength of community c.
    pub comm_strength: Vec<f64>,
    /// Number of nodes in community c.
    pub comm_nodes: Vec<u32>,
    /// Empty community ids, the most recently emptied last.
    empty: Vec<u32>,
    /// Community ids in use so far (one past the largest).
    n_ids: usize,
}

impl Partition {
    /// Every node in its own community.
    pub fn singletons(net: &Network) -> Partition {
        let membership: Vec<u32> = (0..net.n as u32).collect();
        Partition::new(net, membership)
    }

    /// The partition `membership` (ids must be below `net.n`).
    pub fn new(net: &Network, membership: Vec<u32>) -> Partition {
        let n = net.n;
        let mut comm_strength = vec![0.0; n];
        let mut comm_nodes = vec![0u32; n];
        let mut n_ids = 0usize;
        for (v, &c) in membership.iter().enumerate() {
            comm_strength[c as usize] += net.strength[v];
            comm_nodes[c as usize] += 1;
            n_ids = n_ids.max(c as usize + 1);
        }
        let empty = (0..n_ids as u32)
            .filter(|&c| comm_nodes[c as usize] == 0)
            .collect();
        Partition {
            membership,
            comm_strength,
            comm_nodes,
            empty,
            n_ids,
        }
    }

    /// An empty community, opening a new id when none is empty (as leidenalg does).
    pub fn empty_community(&mut self) -> u32 {
        if let Some(&c) = self.empty.last() {
            return c;
        }
        let c = self.n_ids as u32;
        self.n_ids += 1;
        self.empty.push(c);
        c
    }

    /// Move node `v` (strength `k`) to community `to`.
    pub fn move_node(&mut self, v: usize, k: f64, to: u32) {
        let from = self.membership[v];
        if from == to {
            return;
        }
        let (f, t) = (from as usize, to as usize);
        self.comm_strength[f] -= k;
        self.comm_nodes[f] -= 1;
        if self.comm_nodes[f] == 0 {
            // Exactly zero, so that an emptied community looks like a fresh one.
            self.comm_strength[f] = 0.0;
            self.empty.push(from);
        }
        if self.comm_nodes[t] == 0 {
            if let Some(pos) = self.empty.iter().rposition(|&c| c == to) {
                self.empty.remove(pos);
            }
            self.n_ids = self.n_ids.max(t + 1);
        }
        self.comm_strength[t] += k;
        self.comm_nodes[t] += 1;
        self.membership[v] = to;
    }

    /// Number of non-empty communities.
    pub fn n_communities(&self) -> usize {
        self.comm_nodes[..self.n_ids]
            .iter()
            .filter(|&&c| c > 0)
            .count()
    }
}

/// Renumber the ids of `membership` 0..k in order of first appearance; returns k.
pub(crate) fn compact(membership: &mut [u32]) -> usize {
    let ids = membership
        .iter()
        .map(|&c| c as usize + 1)
        .max()
        .unwrap_or(0);
    let mut map = vec![u32::MAX; ids];
    let mut k = 0u32;
    for c in membership.iter_mut() {
        let slot = &mut map[*c as usize];
        if *slot == u32::MAX {
            *slot = k;
            k += 1;
        }
        *c = *slot;
    }
    k as usize
}

/// Scratch for the weights from one node to the communities around it.
pub(crate) struct NeighbourWeights {
    weight: Vec<f64>,
    seen: Vec<bool>,
    /// The communities touched, in order of first encounter.
    pub comms: Vec<u32>,
}

impl NeighbourWeights {
    /// Scratch for community ids below `n`.
    pub fn new(n: usize) -> NeighbourWeights {
        NeighbourWeights {
            weight: vec![0.0; n],
            seen: vec![false; n],
            comms: Vec::new(),
        }
    }

    /// Add `w` to community `c`.
    #[inline]
    pub fn add(&mut self, c: u32, w: f64) {
        let ci = c as usize;
        if !self.seen[ci] {
            self.seen[ci] = true;
            self.comms.push(c);
        }
        self.weight[ci] += w;
    }

    /// The weight to community `c` (0 when not touched).
    #[inline]
    pub fn get(&self, c: u32) -> f64 {
        self.weight[c as usize]
    }

    /// Forget everything.
    pub fn clear(&mut self) {
        for &c in &self.comms {
            self.weight[c as usize] = 0.0;
            self.seen[c as usize] = false;
        }
        self.comms.clear();
    }
}
