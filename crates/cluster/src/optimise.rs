//! The Leiden and Louvain drivers: local moving, (for Leiden) refinement, aggregation,
//! repeated as leidenalg's `Optimiser.optimise_partition` and igraph's / the louvain
//! package's multilevel method do.
//!
//! Hand-written rather than taken from crates.io: the Leiden crates there (leiden-rs,
//! rune-leiden, …) are young, each fixes its own refinement, iteration and numbering rules,
//! and none promises leidenalg's semantics (continue from the previous partition until an
//! iteration changes nothing, randomized greedy refinement, communities numbered by size)
//! together with bit-identical output whatever the rayon thread count; nor do they share a
//! Louvain on the same machinery. The algorithm is a few hundred lines here.

use atlasflow_core::{Graph, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::labels::number_by_size;
use crate::moving::move_nodes;
use crate::network::Network;
use crate::params::check_resolution;
use crate::partition::{Partition, compact};
use crate::refine::refine;

/// Most Leiden iterations run when `n_iterations` is negative ("until nothing changes").
/// Every iteration that continues has raised the quality, so the loop ends on its own; the
/// cap only guards against pathological inputs. Real graphs stop after a handful.
pub const MAX_ITERATIONS: usize = 1000;

/// Stage name for errors from the kernels.
const KERNEL: &str = "leiden";

/// What a Leiden run did besides its labels.
#[derive(Clone, Debug, PartialEq)]
pub struct LeidenRun {
    /// One community per node, numbered as [`leiden`] numbers them.
    pub membership: Vec<u32>,
    /// Iterations run.
    pub iterations: usize,
    /// False when `n_iterations` was negative and [`MAX_ITERATIONS`] ran out before an
    /// iteration moved nothing (the labels are then those of the last iteration).
    pub converged: bool,
}

/// Leiden (Traag, Waltman & van Eck 2019) on the RB-configuration quality (modularity with
/// `resolution`), as `leidenalg.find_partition(g, RBConfigurationVertexPartition,
/// weights, resolution_parameter, n_iterations, seed)` computes it on scanpy's graph.
///
/// - `n_iterations`: negative = iterate until an iteration moves no node; k ≥ 0 = exactly
///   k iterations (0 leaves every cell alone). Each iteration starts from the previous
///   partition.
/// - `use_weights`: the stored values as weights, else 1 per stored non-zero.
/// - `seed`: the ChaCha8 stream that orders the nodes and drives the refinement.
///
/// Returns one community per node, numbered by decreasing size (0 = largest; ties go to
/// the community holding the smallest node index), as leidenalg numbers them. An empty
/// graph gives an empty vector.
pub fn leiden(
    graph: &Graph,
    resolution: f64,
    n_iterations: i64,
    seed: u64,
    use_weights: bool,
) -> Result<Vec<u32>> {
    Ok(leiden_run(graph, resolution, n_iterations, seed, use_weights)?.membership)
}

/// [`leiden`], also saying how many iterations ran and whether "until nothing changes"
/// was reached: on large graphs every iteration's random refinement tends to find a few
/// more improving moves, so the count grows with the number of cells.
pub fn leiden_run(
    graph: &Graph,
    resolution: f64,
    n_iterations: i64,
    seed: u64,
    use_weights: bool,
) -> Result<LeidenRun> {
    check_resolution(KERNEL, resolution)?;
    let net = Network::from_graph(graph, use_weights, KERNEL)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut membership: Vec<u32> = (0..net.n as u32).collect();
    let max_iter = if n_iterations < 0 {
        MAX_ITERATIONS
    } else {
        n_iterations as usize
    };
    let mut iterations = 0;
    let mut converged = n_iterations >= 0;
    while iterations < max_iter {
        let improved = leiden_iteration(&net, &mut membership, resolution, &mut rng);
        iterations += 1;
        if n_iterations < 0 && !improved {
            converged = true;
            break;
        }
    }
    Ok(LeidenRun {
        membership: number_by_size(&membership),
        iterations,
        converged,
    })
}

/// One call of leidenalg's `optimise_partition`: returns true when a node moved.
fn leiden_iteration(
    base: &Network,
    membership: &mut [u32],
    resolution: f64,
    rng: &mut ChaCha8Rng,
) -> bool {
    let mut initial = membership.to_vec();
    compact(&mut initial);
    let mut part = Partition::new(base, initial);
    // Aggregate node of every base node at the current level.
    let mut node_of: Vec<u32> = (0..base.n as u32).collect();
    let mut level: Option<Network> = None;
    let mut moved = false;
    loop {
        let net = level.as_ref().unwrap_or(base);
        moved |= move_nodes(net, &mut part, resolution, rng) > 0.0;
        for (m, &a) in membership.iter_mut().zip(&node_of) {
            *m = part.membership[a as usize];
        }
        let n_comms = part.n_communities();
        let (refined, r) = refine(net, &part.membership, resolution, rng);
        let aggregate_further = r < net.n && net.n > n_comms;
        if !aggregate_further {
            break;
        }
        for a in node_of.iter_mut() {
            *a = refined[*a as usize];
        }
        let agg = net.aggregate(&refined, r);
        // Each refined community starts in the community of the moving phase it lies in.
        let mut agg_membership = vec![0u32; r];
        for (v, &c) in refined.iter().enumerate() {
            agg_membership[c as usize] = part.membership[v];
        }
        compact(&mut agg_membership);
        part = Partition::new(&agg, agg_membership);
        level = Some(agg);
    }
    moved
}

/// Louvain (Blondel et al. 2008), multilevel: fast local moving from singletons, then
/// aggregation by the communities found, until a level moves no node or merges nothing.
/// The same moving phase as [`leiden`] without refinement — what igraph's
/// `community_multilevel` and the louvain package compute, with the resolution honoured.
///
/// Returns one community per node, numbered by decreasing size as [`leiden`] does.
pub fn louvain(graph: &Graph, resolution: f64, seed: u64, use_weights: bool) -> Result<Vec<u32>> {
    check_resolution("louvain", resolution)?;
    let base = Network::from_graph(graph, use_weights, "louvain")?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut membership: Vec<u32> = (0..base.n as u32).collect();
    let mut node_of: Vec<u32> = membership.clone();
    let mut level: Option<Network> = None;
    loop {
        let net = level.as_ref().unwrap_or(&base);
        let mut part = Partition::singletons(net);
        let moved = move_nodes(net, &mut part, resolution, &mut rng) > 0.0;
        let mut comms = part.membership;
        let k = compact(&mut comms);
        for (m, &a) in membership.iter_mut().zip(&node_of) {
            *m = comms[a as usize];
        }
        if !moved || k == net.n {
            break;
        }
        for a in node_of.iter_mut() {
            *a = comms[*a as usize];
        }
        level = Some(net.aggregate(&comms, k));
    }
    Ok(number_by_size(&membership))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::quality::rb_quality;

    /// `cliques` cliques of `size` nodes in a ring, joined by single weak edges.
    pub(crate) fn ring_of_cliques(cliques: usize, size: usize, bridge: f64) -> Graph {
        let n = cliques * size;
        let mut rows: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n];
        let mut add = |i: usize, j: usize, w: f64| {
            rows[i].push((j as u32, w));
            rows[j].push((i as u32, w));
        };
        for c in 0..cliques {
            for a in 0..size {
                for b in a + 1..size {
                    add(c * size + a, c * size + b, 1.0);
                }
            }
            add(c * size, ((c + 1) % cliques) * size + 1, bridge);
        }
        let mut indptr = vec![0u64];
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        for mut r in rows {
            r.sort_by_key(|e| e.0);
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
    fn finds_the_cliques() {
        let g = ring_of_cliques(12, 6, 0.1);
        for seed in 0..5 {
            let m = leiden(&g, 1.0, -1, seed, true).unwrap();
            for c in 0..12 {
                let first = m[c * 6];
                assert!((0..6).all(|a| m[c * 6 + a] == first), "seed {seed}: {m:?}");
            }
            assert_eq!(*m.iter().max().unwrap(), 11);
            let l = louvain(&g, 1.0, seed, true).unwrap();
            assert_eq!(
                rb_quality(&g, &l, 1.0, true).unwrap(),
                rb_quality(&g, &m, 1.0, true).unwrap()
            );
        }
    }

    #[test]
    fn reports_iterations_and_convergence() {
        let g = ring_of_cliques(12, 6, 0.1);
        let r = leiden_run(&g, 1.0, -1, 0, true).unwrap();
        assert!(r.converged && r.iterations >= 2, "{r:?}");
        assert_eq!(r.membership, leiden(&g, 1.0, -1, 0, true).unwrap());
        let fixed = leiden_run(&g, 1.0, 3, 0, true).unwrap();
        assert_eq!((fixed.iterations, fixed.converged), (3, true));
    }

    #[test]
    fn resolution_zero_merges_components() {
        let g = ring_of_cliques(4, 5, 0.5);
        let m = leiden(&g, 0.0, -1, 0, true).unwrap();
        assert!(m.iter().all(|&c| c == 0));
    }

    #[test]
    fn fixed_iterations_and_zero() {
        let g = ring_of_cliques(6, 5, 0.2);
        let m0 = leiden(&g, 1.0, 0, 0, true).unwrap();
        assert_eq!(m0.len(), 30);
        // Singletons, numbered by size then smallest index.
        assert_eq!(m0, (0..30).collect::<Vec<u32>>());
        let m2 = leiden(&g, 1.0, 2, 0, true).unwrap();
        assert_eq!(*m2.iter().max().unwrap(), 5);
    }

    #[test]
    fn degenerate_graphs() {
        let empty = Graph {
            n: 0,
            indptr: vec![0],
            indices: vec![],
            values: vec![],
            float32: true,
        };
        assert_eq!(leiden(&empty, 1.0, -1, 0, true).unwrap(), Vec::<u32>::new());
        assert_eq!(louvain(&empty, 1.0, 0, false).unwrap(), Vec::<u32>::new());
        let one = Graph {
            n: 1,
            indptr: vec![0, 0],
            indices: vec![],
            values: vec![],
            float32: true,
        };
        assert_eq!(leiden(&one, 1.0, -1, 0, true).unwrap(), vec![0]);
        let isolated = Graph {
            n: 3,
            indptr: vec![0, 0, 0, 0],
            indices: vec![],
            values: vec![],
            float32: true,
        };
        assert_eq!(leiden(&isolated, 1.0, -1, 0, true).unwrap(), vec![0, 1, 2]);
        assert_eq!(louvain(&isolated, 1.0, 0, true).unwrap(), vec![0, 1, 2]);
        let self_loop = Graph {
            n: 2,
            indptr: vec![0, 1, 1],
            indices: vec![0],
            values: vec![1.0],
            float32: true,
        };
        assert_eq!(leiden(&self_loop, 1.0, -1, 0, true).unwrap(), vec![0, 1]);
        assert!(leiden(&one, f64::NAN, -1, 0, true).is_err());
        assert!(leiden(&one, -1.0, -1, 0, true).is_err());
    }
}
