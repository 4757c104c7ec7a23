//! Time the approximate path (NN-descent + umap connectivities) on 200,000 × 50 generated
//! Gaussian clusters: `cargo run --release -p atlasflow-neighbors --example bench_200k [N]`.

use std::time::Instant;

use atlasflow_neighbors::{Neighbors, NeighborsParams, Points};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("N"))
        .unwrap_or(200_000);
    let (d, clusters) = (50usize, 40usize);
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut unif = || (rng.next_u32() as f64 + 0.5) / 4_294_967_296.0;
    let mut gauss = move || {
        let (u, v) = (unif(), unif());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    };
    let centers: Vec<f32> = (0..clusters * d).map(|_| 4.0 * gauss()).collect();
    let mut values = Vec::with_capacity(n * d);
    for i in 0..n {
        let c = (i * 7919) % clusters;
        // Cluster spread varies, and later PCs carry less variance, as in real PCs.
        let spread = 0.5 + (c % 5) as f32 * 0.3;
        for j in 0..d {
            values.push(
                centers[c * d + j] / (1.0 + j as f32 / 10.0)
                    + spread * gauss() / (1.0 + j as f32 / 20.0),
            );
        }
    }
    let p = Points::new(&values, n, d, d).expect("points");
    let stage = Neighbors::new(NeighborsParams::default()).expect("params");
    println!(
        "{n} × {d}, {} rayon threads, search {:?}",
        rayon::current_num_threads(),
        stage.search(n)
    );
    let t = Instant::now();
    let out = stage.compute(&p).expect("neighbors");
    println!(
        "neighbors (NN-descent + connectivities): {:.2} s; {} connectivities",
        t.elapsed().as_secs_f64(),
        out.connectivities.nnz()
    );
}
