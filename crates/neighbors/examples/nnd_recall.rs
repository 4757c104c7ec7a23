//! Recall of NN-descent variants on mouse10k (a tuning aid):
//! `cargo run --release -p atlasflow-neighbors --example nnd_recall -- HEAP_K MAX_CAND N_TREES DELTA`.

use atlasflow_neighbors::{Metric, NnDescentParams, Points, exact_knn, nn_descent};

fn main() {
    let args: Vec<f64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("number"))
        .collect();
    let f = hdf5::File::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/graph/mouse10k.h5"
    ))
    .expect("file");
    let a = f
        .dataset("pcs")
        .expect("pcs")
        .read_2d::<f32>()
        .expect("read");
    let (n, d) = a.dim();
    let values: Vec<f32> = a.iter().copied().collect();
    let p = Points::new(&values, n, d, d).expect("points");
    let exact = exact_knn(&p, 15, Metric::Euclidean).expect("exact");
    let mut params = NnDescentParams::scanpy(n, 16, 0);
    if let Some(&v) = args.first() {
        params.heap_k = v as usize;
    }
    if let Some(&v) = args.get(1) {
        params.max_candidates = v as usize;
    }
    if let Some(&v) = args.get(2) {
        params.n_trees = v as usize;
    }
    if let Some(&v) = args.get(3) {
        params.delta = v;
    }
    if let Some(&v) = args.get(4) {
        params.n_refine = v as usize;
    }
    let t = std::time::Instant::now();
    let approx = nn_descent(&p, Metric::Euclidean, &params).expect("nnd");
    let secs = t.elapsed().as_secs_f64();
    let mut hits = 0;
    for i in 0..n {
        hits += approx.row_indices(i)[..15]
            .iter()
            .filter(|j| exact.row_indices(i).contains(j))
            .count();
    }
    println!(
        "{params:?}: recall@15 {:.4} in {secs:.2} s",
        hits as f64 / (n * 15) as f64
    );
}
