//! highly_variable_genes against scanpy 1.11.5: the fixtures in `tests/data/` come from
//! `tests/make_fixtures.py` (run with /work/venv-ref/bin/python). Each case CSV holds, per
//! gene, scanpy's K1 mean/variance of the flavor's input and scanpy's output columns.

use std::collections::HashMap;
use std::path::PathBuf;

use arrow::array::AsArray;
use arrow::datatypes::{Float32Type, Float64Type};
use atlasflow_core::{CellBatch, Csr, FitStage, Fitted, GeneTable, StageError, Uns, XView};
use atlasflow_hvg::select::{self, Cutoff};
use atlasflow_hvg::{Flavor, HighlyVariableGenes};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn parse_f64(s: &str) -> f64 {
    s.trim()
        .parse::<f64>()
        .unwrap_or_else(|_| panic!("not a number: {s}"))
}

struct Case {
    params: HashMap<String, String>,
    cols: HashMap<String, Vec<f64>>,
}

impl Case {
    fn load(name: &str) -> Case {
        let text = std::fs::read_to_string(data(&format!("{name}.csv"))).expect("fixture");
        let mut lines = text.lines();
        let head = lines.next().expect("params line");
        let params = head
            .trim_start_matches('#')
            .split(';')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let names: Vec<String> = lines
            .next()
            .expect("header")
            .split(',')
            .map(str::to_string)
            .collect();
        let mut cols: HashMap<String, Vec<f64>> =
            names.iter().map(|n| (n.clone(), Vec::new())).collect();
        for line in lines {
            for (n, v) in names.iter().zip(line.split(',')) {
                cols.get_mut(n).expect("col").push(parse_f64(v));
            }
        }
        Case { params, cols }
    }

    fn col(&self, name: &str) -> &[f64] {
        &self.cols[name]
    }

    fn hv(&self) -> Vec<bool> {
        self.col("highly_variable")
            .iter()
            .map(|&v| v == 1.0)
            .collect()
    }

    fn param(&self, k: &str) -> Option<&str> {
        self.params
            .get(k)
            .map(String::as_str)
            .filter(|v| *v != "None")
    }

    fn stage(&self) -> HighlyVariableGenes {
        let mut s = HighlyVariableGenes {
            flavor: match self.param("flavor") {
                Some("cell_ranger") => Flavor::CellRanger,
                _ => Flavor::Seurat,
            },
            n_top_genes: self.param("n_top_genes").map(|v| v.parse().expect("int")),
            log1p_base: self.param("base").map(parse_f64),
            ..Default::default()
        };
        if let Some(v) = self.param("n_bins") {
            s.n_bins = v.parse().expect("int");
        }
        for (k, slot) in [
            ("min_mean", &mut s.min_mean),
            ("max_mean", &mut s.max_mean),
            ("min_disp", &mut s.min_disp),
            ("max_disp", &mut s.max_disp),
        ] {
            if let Some(v) = self.param(k) {
                *slot = parse_f64(v);
            }
        }
        s
    }

    fn cutoff(&self) -> Cutoff {
        let s = self.stage();
        match s.n_top_genes {
            Some(k) => Cutoff::NTopGenes(k),
            None => Cutoff::Bounds {
                min_mean: s.min_mean,
                max_mean: s.max_mean,
                min_disp: s.min_disp,
                max_disp: s.max_disp,
            },
        }
    }
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

fn assert_cols(what: &str, got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (j, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(close(g, w, rel), "{what}[{j}]: got {g}, scanpy {w}");
    }
}

const CASES: [&str; 8] = [
    "seurat_cutoffs",
    "seurat_ntop_ties",
    "seurat_ntop_10",
    "seurat_bins7",
    "seurat_base2",
    "seurat_cut_custom",
    "cell_ranger_ntop",
    "cell_ranger_cutoffs",
];

/// The pure selection on scanpy's own K1 moments: the same arithmetic, so the outputs agree
/// to the last bits and the selected set is identical (ties included).
#[test]
fn selection_on_scanpy_moments_matches() {
    for name in CASES {
        let c = Case::load(name);
        let s = c.stage();
        let (m, v) = (c.col("mean_raw"), c.col("var_raw"));
        let r = match s.flavor {
            Flavor::Seurat => select::seurat(m, v, s.n_bins, &c.cutoff()),
            Flavor::CellRanger => select::cell_ranger(m, v, &c.cutoff()),
        }
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_cols(&format!("{name} means"), &r.means, c.col("means"), 1e-15);
        assert_cols(
            &format!("{name} dispersions"),
            &r.dispersions,
            c.col("dispersions"),
            1e-15,
        );
        assert_cols(
            &format!("{name} dispersions_norm"),
            &r.dispersions_norm,
            c.col("dispersions_norm"),
            1e-13,
        );
        assert_eq!(r.highly_variable, c.hv(), "{name}: highly_variable");
    }
}

#[test]
fn features_of_the_fixture_are_exercised() {
    // the lone gene in the top seurat bin gets exactly 1
    let c = Case::load("seurat_cutoffs");
    assert_eq!(c.col("dispersions_norm")[59], 1.0);
    // all-zero genes: NaN dispersion, never selected
    for j in [3, 17, 31, 45] {
        assert!(c.col("dispersions")[j].is_nan());
    }
    // ties at the cut select more than n_top_genes
    let t = Case::load("seurat_ntop_ties");
    let n: usize = t.param("n_top_genes").expect("n").parse().expect("int");
    assert_eq!(t.hv().iter().filter(|&&h| h).count(), n + 2);
    assert!(t.hv()[20] && t.hv()[21] && t.hv()[22]);
}

fn load_x() -> Vec<Vec<f32>> {
    let text = std::fs::read_to_string(data("x.csv")).expect("x.csv");
    text.lines()
        .map(|l| l.split(',').map(|v| parse_f64(v) as f32).collect())
        .collect()
}

fn batches(rows: &[Vec<f32>], cuts: &[usize], dense: bool) -> Vec<CellBatch> {
    let mut out = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&rows.len())) {
        let part = &rows[start..end];
        let b = if dense {
            CellBatch::from_dense(Vec::new(), part.concat(), rows[0].len())
        } else {
            CellBatch::from_csr(Vec::new(), Csr::from_dense(part))
        };
        out.push(b.expect("batch"));
        start = end;
    }
    out
}

fn gene_table(n: usize) -> GeneTable {
    GeneTable::from_names((0..n).map(|j| format!("g{j}")).collect())
}

/// Fold granules (one state each, merged in order) and finish.
fn fit(stage: &HighlyVariableGenes, granules: &[CellBatch], genes: &GeneTable) -> Fitted {
    let mut states = granules.iter().map(|b| {
        let mut s = stage.new_state(genes).expect("state");
        s.fold(b).expect("fold");
        s
    });
    let mut first = states.next().expect("a granule");
    for s in states {
        first.merge(s).expect("merge");
    }
    stage.finish(first, genes).expect("finish")
}

/// The whole stage on the matrix itself (f32 values folded in f64), sparse and dense, in
/// one granule and in three merged granules.
#[test]
fn stage_matches_scanpy_on_the_matrix() {
    let rows = load_x();
    let genes = gene_table(rows[0].len());
    for name in CASES {
        let c = Case::load(name);
        let stage = c.stage();
        for (dense, cuts) in [(false, vec![]), (false, vec![7, 23]), (true, vec![13, 14])] {
            let Fitted::Map(map) = fit(&stage, &batches(&rows, &cuts, dense), &genes) else {
                panic!("{name}: expected a map")
            };
            let g = map.genes(&genes).expect("genes");
            let col64 = |n: &str| -> Vec<f64> {
                g.column(n)
                    .expect(n)
                    .as_primitive::<Float64Type>()
                    .values()
                    .to_vec()
            };
            assert_cols(
                &format!("{name} means"),
                &col64("means"),
                c.col("means"),
                1e-10,
            );
            assert_cols(
                &format!("{name} dispersions"),
                &col64("dispersions"),
                c.col("dispersions"),
                1e-10,
            );
            let norm = g
                .column("dispersions_norm")
                .expect("norm")
                .as_primitive::<Float32Type>();
            let want: Vec<f64> = c
                .col("dispersions_norm")
                .iter()
                .map(|&v| f64::from(v as f32))
                .collect();
            let got: Vec<f64> = norm.values().iter().map(|&v| f64::from(v)).collect();
            assert_cols(&format!("{name} dispersions_norm (f32)"), &got, &want, 1e-6);
            let hv: Vec<bool> = g
                .column("highly_variable")
                .expect("hv")
                .as_boolean()
                .iter()
                .map(|v| v == Some(true))
                .collect();
            assert_eq!(
                hv,
                c.hv(),
                "{name} (dense {dense}, cuts {cuts:?}): highly_variable"
            );
            let flavor = if stage.flavor == Flavor::Seurat {
                "seurat"
            } else {
                "cell_ranger"
            };
            assert_eq!(
                map.uns(),
                vec![(
                    "hvg".to_string(),
                    Uns::map().with("flavor", Uns::Str(flavor.into()))
                )]
            );
        }
    }
}

#[test]
fn subset_drops_genes_from_batches_and_table() {
    let rows = load_x();
    let genes = gene_table(rows[0].len());
    let c = Case::load("seurat_ntop_ties");
    let stage = HighlyVariableGenes {
        subset: true,
        ..c.stage()
    };
    assert!(!stage.annotates_only() && stage.finishes_as_gene_subset());
    let Fitted::Map(map) = fit(&stage, &batches(&rows, &[20], false), &genes) else {
        panic!("map")
    };
    let keep = c.hv();
    let kept: Vec<usize> = (0..keep.len()).filter(|&j| keep[j]).collect();
    let g = map.genes(&genes).expect("genes");
    assert_eq!(g.n_genes(), kept.len());
    for (i, &j) in kept.iter().enumerate() {
        assert_eq!(g.name(i), format!("g{j}"));
    }
    for dense in [false, true] {
        let b = map.map(batches(&rows, &[], dense).remove(0)).expect("map");
        assert_eq!(b.n_genes(), kept.len());
        let got: Vec<Vec<f32>> = match b.x().expect("x") {
            XView::Csr(x) => x.to_owned().to_dense(),
            XView::Dense { data, n_cols } => data.chunks(n_cols).map(<[f32]>::to_vec).collect(),
        };
        let want: Vec<Vec<f32>> = rows
            .iter()
            .map(|r| kept.iter().map(|&j| r[j]).collect())
            .collect();
        assert_eq!(got, want);
    }
}

#[test]
fn duplicate_percentile_edges_are_an_error() {
    let c = Case::load("cell_ranger_dup_edges");
    assert!(
        c.param("error")
            .expect("scanpy raised")
            .starts_with("Bin edges must be unique")
    );
    let err = select::cell_ranger(c.col("mean_raw"), c.col("var_raw"), &Cutoff::NTopGenes(12))
        .expect_err("must fail");
    let msg = err.to_string();
    assert!(matches!(err, StageError::InvalidData { .. }), "{msg}");
    assert!(
        msg.contains("highly_variable_genes") && msg.contains("bin edges must be unique"),
        "{msg}"
    );
}

#[test]
fn bad_parameters_and_empty_streams_are_errors() {
    let genes = gene_table(3);
    for stage in [
        HighlyVariableGenes {
            n_top_genes: Some(0),
            ..Default::default()
        },
        HighlyVariableGenes {
            n_bins: 0,
            ..Default::default()
        },
        HighlyVariableGenes {
            log1p_base: Some(-2.0),
            ..Default::default()
        },
        HighlyVariableGenes {
            log1p_base: Some(1.0),
            ..Default::default()
        },
    ] {
        assert!(matches!(
            stage.new_state(&genes),
            Err(StageError::InvalidParam { .. })
        ));
    }
    let stage = HighlyVariableGenes::default();
    let state = stage.new_state(&genes).expect("state");
    assert!(matches!(
        stage.finish(state, &genes),
        Err(StageError::InvalidData { .. })
    ));
    // a batch of the wrong width is refused, not a panic
    let mut state = stage.new_state(&genes).expect("state");
    let b = CellBatch::from_csr(Vec::new(), Csr::from_dense(&[vec![1.0, 2.0]])).expect("batch");
    assert!(state.fold(&b).is_err());
    assert!(!stage.annotates_only() && stage.finishes_as_gene_subset());
    assert_eq!(
        stage,
        HighlyVariableGenes {
            flavor: Flavor::Seurat,
            n_top_genes: None,
            min_mean: 0.0125,
            max_mean: 3.0,
            min_disp: 0.5,
            max_disp: f64::INFINITY,
            n_bins: 20,
            subset: false,
            log1p_base: None,
        }
    );
}
