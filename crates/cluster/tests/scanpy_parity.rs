//! Leiden and Louvain against scanpy 1.11.5 (leidenalg 0.12, igraph 1.0) on the reference
//! graphs of scripts/reference_graph.py: the same `neighbors/connectivities` go in, and the
//! partitions are compared (ARI, quality), since labels are never comparable across
//! implementations.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, DictionaryArray, StringArray};
use arrow::datatypes::Int32Type;
use atlasflow_cluster::{
    Leiden, LeidenFlavor, LeidenParams, Louvain, LouvainFlavor, LouvainParams, leiden, louvain,
    modularity, natural_cmp, rb_quality,
};
use atlasflow_core::{CellFrame, GlobalStage, Graph, Uns};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/graph/");

struct Reference {
    graph: Graph,
    truth: Option<Vec<String>>,
    leiden: Vec<String>,
    leiden_ari: Option<f64>,
    louvain: Vec<String>,
    leiden_igraph: Option<Vec<String>>,
}

fn strings(f: &hdf5::File, key: &str) -> Vec<String> {
    f.dataset(key)
        .unwrap()
        .read_1d::<hdf5::types::VarLenUnicode>()
        .unwrap()
        .iter()
        .map(|s| s.as_str().to_string())
        .collect()
}

fn load(name: &str) -> Reference {
    let f = hdf5::File::open(format!("{DIR}{name}")).unwrap();
    let g = f.group("neighbors/connectivities").unwrap();
    let indptr: Vec<u64> = g
        .dataset("indptr")
        .unwrap()
        .read_1d::<i64>()
        .unwrap()
        .iter()
        .map(|&v| v as u64)
        .collect();
    let graph = Graph {
        n: indptr.len() - 1,
        indptr,
        indices: g
            .dataset("indices")
            .unwrap()
            .read_1d::<i64>()
            .unwrap()
            .iter()
            .map(|&v| v as u32)
            .collect(),
        values: g
            .dataset("data")
            .unwrap()
            .read_1d::<f64>()
            .unwrap()
            .to_vec(),
        float32: true,
    };
    let has = |k: &str| f.link_exists(k);
    Reference {
        graph,
        truth: has("labels").then(|| strings(&f, "labels")),
        leiden: strings(&f, "leiden/labels"),
        leiden_ari: has("leiden/ari").then(|| {
            f.dataset("leiden/ari")
                .unwrap()
                .read_scalar::<f64>()
                .unwrap()
        }),
        louvain: strings(&f, "louvain/labels"),
        leiden_igraph: has("leiden_igraph/labels").then(|| strings(&f, "leiden_igraph/labels")),
    }
}

/// Integer ids for arbitrary labels.
fn ids<T: std::hash::Hash + Eq + Clone>(labels: &[T]) -> Vec<usize> {
    let mut map = HashMap::new();
    labels
        .iter()
        .map(|l| {
            let k = map.len();
            *map.entry(l.clone()).or_insert(k)
        })
        .collect()
}

/// Adjusted Rand index (Hubert & Arabie), as sklearn's adjusted_rand_score.
fn ari(a: &[usize], b: &[usize]) -> f64 {
    assert_eq!(a.len(), b.len());
    let n = a.len() as f64;
    let mut table: HashMap<(usize, usize), f64> = HashMap::new();
    let mut ra: HashMap<usize, f64> = HashMap::new();
    let mut rb: HashMap<usize, f64> = HashMap::new();
    for (&x, &y) in a.iter().zip(b) {
        *table.entry((x, y)).or_default() += 1.0;
        *ra.entry(x).or_default() += 1.0;
        *rb.entry(y).or_default() += 1.0;
    }
    let c2 = |x: f64| x * (x - 1.0) / 2.0;
    let index: f64 = table.values().map(|&v| c2(v)).sum();
    let sa: f64 = ra.values().map(|&v| c2(v)).sum();
    let sb: f64 = rb.values().map(|&v| c2(v)).sum();
    let expected = sa * sb / c2(n);
    let max = (sa + sb) / 2.0;
    if max == expected {
        1.0
    } else {
        (index - expected) / (max - expected)
    }
}

fn as_ids(m: &[u32]) -> Vec<usize> {
    m.iter().map(|&c| c as usize).collect()
}

/// The quality leidenalg's `RBConfigurationVertexPartition(g, weights, initial_membership=
/// scanpy's labels).quality()` printed, checked by the probe in the report: our quality
/// function must give the same number.
const LEIDENALG_QUALITY: [(&str, f64); 3] = [
    ("pbmc700.h5", 3675.0245606867047),
    ("synth300.h5", 1862.5934690657484),
    ("mouse10k.h5", 44081.162387579505),
];

#[test]
fn quality_function_matches_leidenalg() {
    for (name, q) in LEIDENALG_QUALITY {
        let r = load(name);
        let ours = rb_quality(&r.graph, &as_ids_u32(&r.leiden), 1.0, true).unwrap();
        assert!(
            (ours - q).abs() < 1e-9 * q,
            "{name}: {ours} vs leidenalg {q}"
        );
    }
}

fn as_ids_u32(labels: &[String]) -> Vec<u32> {
    ids(labels).into_iter().map(|c| c as u32).collect()
}

/// Leiden with scanpy's defaults on one reference; returns (ARI vs scanpy, our quality,
/// scanpy's quality).
fn leiden_case(name: &str, min_ari_vs_scanpy: f64, quality_slack: f64) {
    let r = load(name);
    let ours = leiden(&r.graph, 1.0, -1, 0, true).unwrap();
    let scanpy = ids(&r.leiden);
    let vs_scanpy = ari(&as_ids(&ours), &scanpy);
    let q_ours = rb_quality(&r.graph, &ours, 1.0, true).unwrap();
    let q_scanpy = rb_quality(&r.graph, &as_ids_u32(&r.leiden), 1.0, true).unwrap();
    let k_ours = ours.iter().max().map_or(0, |&m| m + 1);
    let k_scanpy = r
        .leiden
        .iter()
        .collect::<std::collections::HashSet<_>>()
        .len();
    println!(
        "{name}: leiden ARI vs scanpy {vs_scanpy:.4}; clusters {k_ours} vs {k_scanpy}; \
         quality {q_ours:.4} vs scanpy {q_scanpy:.4} (modularity {:.5} vs {:.5})",
        modularity(&r.graph, &ours, 1.0, true).unwrap(),
        modularity(&r.graph, &as_ids_u32(&r.leiden), 1.0, true).unwrap(),
    );
    if let (Some(truth), Some(scanpy_ari)) = (&r.truth, r.leiden_ari) {
        let vs_truth = ari(&as_ids(&ours), &ids(truth));
        println!("{name}: leiden ARI vs known labels {vs_truth:.4} (scanpy {scanpy_ari:.4})");
        assert!(
            vs_truth >= scanpy_ari - 0.02,
            "{name}: ARI vs labels {vs_truth} < scanpy {scanpy_ari} - 0.02"
        );
    }
    assert!(
        vs_scanpy >= min_ari_vs_scanpy,
        "{name}: ARI vs scanpy {vs_scanpy} < {min_ari_vs_scanpy}"
    );
    assert!(
        q_ours >= q_scanpy - quality_slack * q_scanpy.abs(),
        "{name}: quality {q_ours} < scanpy {q_scanpy} - {quality_slack} relative"
    );
}

// Tolerances. leidenalg itself, with seeds 0..5 on pbmc700, reaches ARI 0.91–1.0 against
// its seed-0 partition (scanpy's) and qualities down to 0.4 % below it; ours, with seeds
// 0..9 (`seed_spread`), mostly lands on the two optima leidenalg finds (quality 3675.025,
// ARI 1.0, or 3674.478, ARI 0.9915), once on 3674.034 (ARI 0.98). On synth300 every seed of
// both finds the same partition.
#[test]
fn leiden_pbmc700() {
    leiden_case("pbmc700.h5", 0.85, 0.005);
}

#[test]
fn leiden_synth300() {
    leiden_case("synth300.h5", 0.95, 1e-9);
}

// mouse10k has no known labels and a flat quality landscape: leidenalg's own seeds 1..5
// agree with its seed 0 at ARI 0.57–0.60, with qualities from 0.45 % below to 2.5 % above
// it; ours (seeds 0..9) at ARI 0.44–0.80, qualities 0.26 % to 2.4 % above. So the quality
// is held to scanpy's within 1 % and the ARI only to a floor.
#[test]
fn leiden_mouse10k() {
    leiden_case("mouse10k.h5", 0.4, 0.01);
}

#[test]
fn louvain_matches_igraph_multilevel() {
    // igraph's community_multilevel, rerun on pbmc700, agrees with the stored run at ARI
    // 0.89–1.0; on synth300 at 0.96–1.0. Ours, seeds 0..9: 0.885–0.992 and 1.0.
    for (name, min_ari) in [("pbmc700.h5", 0.85), ("synth300.h5", 0.95)] {
        let r = load(name);
        let ours = louvain(&r.graph, 1.0, 0, false).unwrap();
        let vs_scanpy = ari(&as_ids(&ours), &ids(&r.louvain));
        let q_ours = modularity(&r.graph, &ours, 1.0, false).unwrap();
        let q_scanpy = modularity(&r.graph, &as_ids_u32(&r.louvain), 1.0, false).unwrap();
        println!(
            "{name}: louvain ARI vs scanpy {vs_scanpy:.4}; modularity {q_ours:.5} vs scanpy {q_scanpy:.5}"
        );
        assert!(
            vs_scanpy >= min_ari,
            "{name}: louvain ARI vs scanpy {vs_scanpy} < {min_ari}"
        );
        assert!(
            q_ours >= q_scanpy - 0.005,
            "{name}: modularity {q_ours} < scanpy {q_scanpy} - 0.005"
        );
    }
}

#[test]
fn igraph_flavor_numbers_by_first_appearance() {
    for (name, min_ari) in [("pbmc700.h5", 0.9), ("synth300.h5", 0.95)] {
        let r = load(name);
        let f = frame(r.graph.clone());
        let stage = Leiden::new(LeidenParams {
            flavor: LeidenFlavor::Igraph,
            n_iterations: 2,
            key_added: "leiden_igraph".to_string(),
            ..Default::default()
        })
        .unwrap();
        let out = stage.run(&f).unwrap();
        let (labels, _) = column(&out.obs[0].1);
        let reference = r.leiden_igraph.as_ref().unwrap();
        let vs = ari(&ids(&labels), &ids(reference));
        println!("{name}: leiden flavor=igraph n_iterations=2 ARI vs scanpy {vs:.4}");
        assert!(vs >= min_ari, "{name}: {vs}");
        // First appearance: each new label is one more than the largest seen so far.
        let mut next = 0usize;
        for l in &labels {
            let v: usize = l.parse().unwrap();
            assert!(v <= next, "{l} before {next}");
            if v == next {
                next += 1;
            }
        }
        // The same partition as the leidenalg flavor with the same iterations.
        let m = leiden(&r.graph, 1.0, 2, 0, true).unwrap();
        assert_eq!(ari(&ids(&labels), &as_ids(&m)), 1.0);
    }
}

#[test]
fn louvain_igraph_flavor() {
    let r = load("pbmc700.h5");
    let f = frame(r.graph.clone());
    let run = |resolution: Option<f64>| {
        let p = LouvainParams {
            flavor: LouvainFlavor::Igraph,
            resolution,
            ..Default::default()
        };
        column(&Louvain::new(p).unwrap().run(&f).unwrap().obs[0].1).0
    };
    let labels = run(None);
    // Numbered by first appearance, like scanpy's stored igraph labels.
    assert_eq!(labels[0], "0");
    let vs = ari(&ids(&labels), &ids(&r.louvain));
    println!("pbmc700.h5: louvain flavor=igraph ARI vs scanpy {vs:.4}");
    assert!(vs >= 0.85, "{vs}");
    // scanpy's igraph flavor ignores the resolution.
    assert_eq!(run(Some(3.0)), labels);
}

fn frame(graph: Graph) -> CellFrame {
    CellFrame {
        n_cells: graph.n,
        obsp: vec![("connectivities".to_string(), graph)],
        ..Default::default()
    }
}

fn column(a: &ArrayRef) -> (Vec<String>, Vec<String>) {
    let d = a
        .as_any()
        .downcast_ref::<DictionaryArray<Int32Type>>()
        .unwrap();
    let values: &StringArray = d.values().as_string::<i32>();
    let cats: Vec<String> = (0..values.len())
        .map(|i| values.value(i).to_string())
        .collect();
    let labels = d
        .keys()
        .values()
        .iter()
        .map(|&k| cats[k as usize].clone())
        .collect();
    (labels, cats)
}

#[test]
fn stage_writes_scanpy_outputs() {
    let r = load("pbmc700.h5");
    // A high resolution gives more than ten clusters, to see the natural sort.
    let stage = Leiden::new(LeidenParams {
        resolution: 3.0,
        ..Default::default()
    })
    .unwrap();
    let out = stage.run(&frame(r.graph.clone())).unwrap();
    assert_eq!(out.obs.len(), 1);
    assert_eq!(out.obs[0].0, "leiden");
    let (labels, cats) = column(&out.obs[0].1);
    assert!(cats.len() > 10, "{} clusters", cats.len());
    let expected: Vec<String> = (0..cats.len()).map(|i| i.to_string()).collect();
    assert_eq!(cats, expected, "categories natural-sorted");
    // Numbered by size: counts never increase with the label.
    let mut count = vec![0usize; cats.len()];
    for l in &labels {
        count[l.parse::<usize>().unwrap()] += 1;
    }
    assert!(count.windows(2).all(|w| w[0] >= w[1]), "{count:?}");
    let Uns::Map(entries) = &out.uns[0].1 else {
        panic!("uns['leiden'] is not a mapping: {:?}", out.uns)
    };
    let iterations = match entries.iter().find(|(k, _)| k == "iterations_run") {
        Some((_, Uns::Int(i))) => *i,
        other => panic!("iterations_run: {other:?}"),
    };
    assert!(iterations >= 2, "{iterations} iterations");
    assert_eq!(
        out.uns,
        vec![(
            "leiden".to_string(),
            Uns::map()
                .with(
                    "params",
                    Uns::map()
                        .with("resolution", Uns::Float(3.0))
                        .with("random_state", Uns::Int(0))
                        .with("n_iterations", Uns::Int(-1))
                )
                .with("iterations_run", Uns::Int(iterations))
                .with("converged", Uns::Bool(true))
        )]
    );
    let lv = Louvain::new(LouvainParams::default())
        .unwrap()
        .run(&frame(r.graph))
        .unwrap();
    assert_eq!(lv.obs[0].0, "louvain");
    assert_eq!(
        lv.uns[0].1,
        Uns::map().with(
            "params",
            Uns::map()
                .with("resolution", Uns::Null)
                .with("random_state", Uns::Int(0))
        )
    );
}

#[test]
fn deterministic_across_threads_and_runs() {
    let r = load("pbmc700.h5");
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let a = leiden(&r.graph, 1.0, -1, 7, true).unwrap();
            let b = louvain(&r.graph, 1.0, 7, false).unwrap();
            let c = Leiden::new(LeidenParams::default())
                .unwrap()
                .run(&frame(r.graph.clone()))
                .unwrap();
            (a, b, column(&c.obs[0].1))
        })
    };
    let one = run(1);
    assert_eq!(one, run(3));
    assert_eq!(one, run(1));
    assert_eq!(one, run(2));
}

#[test]
fn restrict_to_names_like_scanpy() {
    let r = load("pbmc700.h5");
    let base = Leiden::new(LeidenParams::default())
        .unwrap()
        .run(&frame(r.graph.clone()))
        .unwrap();
    let (old, _) = column(&base.obs[0].1);
    let mut f = frame(r.graph);
    f.obs
        .push(("leiden".to_string(), Arc::clone(&base.obs[0].1)));
    let stage = Leiden::new(LeidenParams {
        resolution: 2.0,
        restrict_to: Some(("leiden".to_string(), vec!["0".to_string(), "2".to_string()])),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(stage.key(), "leiden_R");
    let out = stage.run(&f).unwrap();
    assert_eq!(out.obs[0].0, "leiden_R");
    assert_eq!(out.uns[0].0, "leiden_R");
    let (labels, cats) = column(&out.obs[0].1);
    let mut split = std::collections::HashSet::new();
    for (o, l) in old.iter().zip(&labels) {
        if o == "0" || o == "2" {
            assert!(l.starts_with("0-2,"), "{o} -> {l}");
            split.insert(l.clone());
        } else {
            assert_eq!(o, l);
        }
    }
    assert!(split.len() >= 2, "{split:?}");
    assert!(
        cats.windows(2).all(|w| natural_cmp(&w[0], &w[1]).is_lt()),
        "{cats:?}"
    );
    // A named key_added is kept as is; an unknown category is a clear error.
    let named = Leiden::new(LeidenParams {
        key_added: "sub".to_string(),
        restrict_to: Some(("leiden".to_string(), vec!["1".to_string()])),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(named.run(&f).unwrap().obs[0].0, "sub");
    let bad = Leiden::new(LeidenParams {
        restrict_to: Some(("leiden".to_string(), vec!["99".to_string()])),
        ..Default::default()
    })
    .unwrap();
    let e = bad.run(&f).err().unwrap().to_string();
    assert!(e.contains("'99' is not a valid category"), "{e}");
}

#[test]
fn degenerate_inputs_give_a_result_or_a_clear_error() {
    let empty = Graph {
        n: 0,
        indptr: vec![0],
        indices: vec![],
        values: vec![],
        float32: true,
    };
    let out = Leiden::new(LeidenParams::default())
        .unwrap()
        .run(&frame(empty))
        .unwrap();
    assert_eq!(out.obs[0].1.len(), 0);
    let one = Graph {
        n: 1,
        indptr: vec![0, 0],
        indices: vec![],
        values: vec![],
        float32: true,
    };
    let out = Louvain::new(LouvainParams::default())
        .unwrap()
        .run(&frame(one))
        .unwrap();
    assert_eq!(
        column(&out.obs[0].1),
        (vec!["0".to_string()], vec!["0".to_string()])
    );
    let isolated = Graph {
        n: 3,
        indptr: vec![0, 1, 2, 2],
        indices: vec![1, 0],
        values: vec![1.0, 1.0],
        float32: true,
    };
    let out = Leiden::new(LeidenParams::default())
        .unwrap()
        .run(&frame(isolated))
        .unwrap();
    assert_eq!(column(&out.obs[0].1).0, vec!["0", "0", "1"]);
    // Missing graph, wrong size, bad parameters: errors naming the problem.
    let e = Leiden::new(LeidenParams::default())
        .unwrap()
        .run(&CellFrame::default())
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("obsp has no 'connectivities'"),
        "{e}"
    );
    let mut f = frame(Graph {
        n: 2,
        indptr: vec![0, 0, 0],
        ..Default::default()
    });
    f.n_cells = 3;
    assert!(
        Leiden::new(LeidenParams::default())
            .unwrap()
            .run(&f)
            .is_err()
    );
    assert!(
        Leiden::new(LeidenParams {
            resolution: f64::NAN,
            ..Default::default()
        })
        .is_err()
    );
    assert!(
        Leiden::new(LeidenParams {
            key_added: String::new(),
            ..Default::default()
        })
        .is_err()
    );
    assert!(
        Leiden::new(LeidenParams {
            neighbors_key: Some("a".into()),
            obsp: Some("b".into()),
            ..Default::default()
        })
        .is_err()
    );
    let nk = Louvain::new(LouvainParams {
        neighbors_key: Some("nb".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        nk.reads(),
        vec![atlasflow_core::FrameKey::Obsp("nb_connectivities".into())]
    );
}

/// A kNN-like graph of `n` cells: `clusters` groups on a ring, each cell linked to `k`
/// others mostly in its own group, symmetrised (about 2k stored entries per cell).
fn synthetic_knn(n: usize, k: usize, clusters: usize, seed: u64) -> Graph {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let size = n / clusters;
    let mut rows: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n];
    for i in 0..n {
        let c = (i / size).min(clusters - 1);
        for _ in 0..k {
            let target_c = if next() % 10 == 0 {
                (c + 1) % clusters
            } else {
                c
            };
            let lo = target_c * size;
            let hi = if target_c == clusters - 1 {
                n
            } else {
                lo + size
            };
            let j = lo + (next() as usize) % (hi - lo);
            if j != i {
                let w = 0.2 + (next() % 800) as f64 / 1000.0;
                rows[i].push((j as u32, w));
                rows[j].push((i as u32, w));
            }
        }
    }
    let mut indptr = vec![0u64];
    let (mut indices, mut values) = (Vec::new(), Vec::new());
    for mut r in rows {
        r.sort_by_key(|e| e.0);
        r.dedup_by_key(|e| e.0);
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

/// A kNN graph of `n` points in the plane drawn from `blobs` Gaussian blobs: each point
/// linked to its `k` nearest others (grid search), weight exp(−d/σ_i) with σ_i the distance
/// to its k-th neighbour, then symmetrised by the maximum, as a stand-in for scanpy's
/// connectivities (k = 15 gives about 22 stored entries per cell).
fn planar_knn(n: usize, k: usize, blobs: usize, seed: u64) -> Graph {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let centres: Vec<(f64, f64)> = (0..blobs)
        .map(|_| (uniform() * 100.0, uniform() * 100.0))
        .collect();
    let pts: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let (cx, cy) = centres[i % blobs];
            let r = (-2.0 * uniform().max(1e-300).ln()).sqrt() * 2.0;
            let t = std::f64::consts::TAU * uniform();
            (cx + r * t.cos(), cy + r * t.sin())
        })
        .collect();
    let cell = 0.25;
    let key = |p: (f64, f64)| ((p.0 / cell).floor() as i64, (p.1 / cell).floor() as i64);
    let mut grid: HashMap<(i64, i64), Vec<u32>> = HashMap::new();
    for (i, &p) in pts.iter().enumerate() {
        grid.entry(key(p)).or_default().push(i as u32);
    }
    let mut rows: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n];
    for (i, &p) in pts.iter().enumerate() {
        let (gx, gy) = key(p);
        let mut cand: Vec<(f64, u32)> = Vec::new();
        let mut ring = 0i64;
        loop {
            for dx in -ring..=ring {
                for dy in -ring..=ring {
                    if dx.abs() != ring && dy.abs() != ring {
                        continue;
                    }
                    for &j in grid.get(&(gx + dx, gy + dy)).map_or(&[][..], |v| &v[..]) {
                        if j as usize != i {
                            let q = pts[j as usize];
                            cand.push((((p.0 - q.0).powi(2) + (p.1 - q.1).powi(2)).sqrt(), j));
                        }
                    }
                }
            }
            cand.sort_by(|a, b| a.0.total_cmp(&b.0));
            if cand.len() >= k && cand[k - 1].0 <= ring as f64 * cell {
                break;
            }
            ring += 1;
        }
        let sigma = cand[k - 1].0.max(1e-12);
        for &(d, j) in &cand[..k] {
            let w = (-d / sigma).exp();
            rows[i].push((j, w));
            rows[j as usize].push((i as u32, w));
        }
    }
    let mut indptr = vec![0u64];
    let (mut indices, mut values) = (Vec::new(), Vec::new());
    for mut r in rows {
        r.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
        r.dedup_by_key(|e| e.0);
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

/// Timing on 200,000-cell graphs (~22 stored edges per cell): run with
/// `cargo test --release -p atlasflow-cluster -- --ignored --nocapture timing_200k`.
#[test]
#[ignore]
fn timing_200k() {
    for (what, g) in [
        ("planar kNN, 40 blobs", planar_knn(200_000, 15, 40, 1)),
        ("random within 40 groups", synthetic_knn(200_000, 11, 40, 1)),
    ] {
        println!(
            "{what}: {} cells, {:.1} stored edges per cell",
            g.n,
            g.nnz() as f64 / g.n as f64
        );
        let t = std::time::Instant::now();
        let m = leiden(&g, 1.0, -1, 0, true).unwrap();
        println!(
            "  leiden: {:.2} s, {} clusters, modularity {:.4}",
            t.elapsed().as_secs_f64(),
            m.iter().max().unwrap() + 1,
            modularity(&g, &m, 1.0, true).unwrap()
        );
        let t = std::time::Instant::now();
        let m = louvain(&g, 1.0, 0, false).unwrap();
        println!(
            "  louvain: {:.2} s, {} clusters",
            t.elapsed().as_secs_f64(),
            m.iter().max().unwrap() + 1
        );
    }
}

/// How our Leiden varies with the seed (reported, for choosing the tolerances above):
/// `cargo test --release -p atlasflow-cluster -- --ignored --nocapture seed_spread`.
#[test]
#[ignore]
fn seed_spread() {
    for name in ["pbmc700.h5", "synth300.h5", "mouse10k.h5"] {
        let r = load(name);
        let scanpy = ids(&r.leiden);
        for seed in 0..10 {
            let m = leiden(&r.graph, 1.0, -1, seed, true).unwrap();
            let truth = r
                .truth
                .as_ref()
                .map_or(f64::NAN, |t| ari(&as_ids(&m), &ids(t)));
            let lv = louvain(&r.graph, 1.0, seed, false).unwrap();
            println!(
                "{name} seed {seed}: ARI vs scanpy {:.4}, vs labels {truth:.4}, quality {:.3}; louvain ARI vs scanpy {:.4}",
                ari(&as_ids(&m), &scanpy),
                rb_quality(&r.graph, &m, 1.0, true).unwrap(),
                ari(&as_ids(&lv), &ids(&r.louvain)),
            );
        }
    }
}
