//! PCA against scanpy 1.11.5 `sc.pp.pca`: fixtures in `tests/data/` come from
//! `tests/make_fixtures.py` (run with /work/venv-ref/bin/python): a 60 × 12 float32 matrix
//! and, per case, scanpy's X_pca (computed with dtype="float64"), varm PCs and
//! uns variance / variance_ratio.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{AsArray, BooleanArray};
use arrow::datatypes::Float64Type;
use atlasflow_core::{CellBatch, Csr, FitStage, Fitted, GeneTable, MapStage, StageError, Uns};
use atlasflow_pca::{MaskVar, Pca, PcaState};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn read_rows(name: &str) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(data(name)).expect("fixture");
    text.lines()
        .map(|l| {
            l.split(',')
                .map(|v| {
                    v.trim()
                        .parse::<f64>()
                        .unwrap_or_else(|_| panic!("{name}: {v}"))
                })
                .collect()
        })
        .collect()
}

fn x_rows() -> Vec<Vec<f32>> {
    read_rows("x.csv")
        .into_iter()
        .map(|r| r.into_iter().map(|v| v as f32).collect())
        .collect()
}

fn hv_mask() -> Vec<bool> {
    let mut m = vec![false; 12];
    for j in [0, 2, 3, 5, 6, 7, 9, 11] {
        m[j] = true;
    }
    m
}

fn genes(with_hv: bool) -> GeneTable {
    let g = GeneTable::from_names((0..12).map(|j| format!("g{j}")).collect());
    if with_hv {
        g.with_column("highly_variable", Arc::new(BooleanArray::from(hv_mask())))
            .expect("hv")
    } else {
        g
    }
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

fn fit_state(stage: &Pca, granules: &[CellBatch], genes: &GeneTable) -> PcaState {
    let mut states = granules.iter().map(|b| {
        let mut s = stage.new_state(genes).expect("state");
        s.fold(b).expect("fold");
        s
    });
    let mut first = states.next().expect("a granule");
    for s in states {
        first.merge(s).expect("merge");
    }
    *first.into_any().downcast::<PcaState>().expect("pca state")
}

fn fit(stage: &Pca, granules: &[CellBatch], genes: &GeneTable) -> Arc<dyn MapStage> {
    let mut states = granules.iter().map(|b| {
        let mut s = stage.new_state(genes).expect("state");
        s.fold(b).expect("fold");
        s
    });
    let mut first = states.next().expect("a granule");
    for s in states {
        first.merge(s).expect("merge");
    }
    match stage.finish(first, genes).expect("finish") {
        Fitted::Map(m) => m,
        Fitted::Refit(_) => panic!("pca does not refit"),
    }
}

fn assert_close(what: &str, got: &[f64], want: &[f64], abs: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= abs * w.abs().max(1.0),
            "{what}[{i}]: got {g}, scanpy {w}"
        );
    }
}

fn varm(g: &GeneTable, key: &str) -> (Vec<f64>, usize) {
    let col = g.column(&format!("varm/{key}")).expect("varm column");
    let fsl = col.as_fixed_size_list();
    let vals = fsl.values().as_primitive::<Float64Type>().values().to_vec();
    (vals, fsl.value_length() as usize)
}

fn uns_floats(u: &Uns, key: &str) -> Vec<f64> {
    match u.get(key) {
        Some(Uns::FloatArray(v)) => v.clone(),
        other => panic!("uns {key}: {other:?}"),
    }
}

/// Run one scanpy case on the stream (dense, and sparse in three granules) and compare.
fn check_case(case: &str, stage: &Pca, with_hv: bool) {
    let rows = x_rows();
    let g = genes(with_hv);
    let want_scores: Vec<f64> = read_rows(&format!("{case}_x_pca.csv")).concat();
    let want_pcs: Vec<f64> = read_rows(&format!("{case}_pcs.csv")).concat();
    let want_var = read_rows(&format!("{case}_variance.csv"));
    let k = want_var[0].len();
    for (dense, cuts) in [(true, vec![]), (false, vec![11, 40]), (true, vec![30])] {
        let map = fit(stage, &batches(&rows, &cuts, dense), &g);
        let what = format!("{case} (dense {dense}, cuts {cuts:?})");
        // loadings: exact up to rounding once the sign rule is applied
        let g2 = map.genes(&g).expect("genes");
        let (pcs, width) = varm(&g2, stage.key_added.as_deref().unwrap_or("PCs"));
        assert_eq!(width, k, "{what}: n_comps");
        assert_close(&format!("{what} PCs"), &pcs, &want_pcs, 1e-9);
        // variances
        let (key, u) = map.uns().into_iter().next().expect("uns");
        assert_eq!(key, stage.key_added.clone().unwrap_or_else(|| "pca".into()));
        assert_close(
            &format!("{what} variance"),
            &uns_floats(&u, "variance"),
            &want_var[0],
            1e-10,
        );
        assert_close(
            &format!("{what} variance_ratio"),
            &uns_floats(&u, "variance_ratio"),
            &want_var[1],
            1e-10,
        );
        // scores: f32 in the batch
        let mut got = Vec::new();
        for b in batches(&rows, &[25], dense) {
            let out = map.map(b).expect("map");
            let (vals, w) = out
                .obsm(stage.key_added.as_deref().unwrap_or("X_pca"))
                .expect("obsm");
            assert_eq!(w, k);
            got.extend(vals.iter().map(|&v| f64::from(v)));
        }
        assert_close(&format!("{what} X_pca"), &got, &want_scores, 1e-6);
    }
}

#[test]
fn full_matches_scanpy() {
    check_case(
        "full",
        &Pca {
            n_comps: Some(5),
            ..Default::default()
        },
        false,
    );
}

#[test]
fn hvg_mask_is_used_automatically() {
    check_case(
        "hvg",
        &Pca {
            n_comps: Some(5),
            ..Default::default()
        },
        true,
    );
    // zero rows outside the mask
    let map = fit(
        &Pca {
            n_comps: Some(5),
            ..Default::default()
        },
        &batches(&x_rows(), &[], true),
        &genes(true),
    );
    let (pcs, k) = varm(&map.genes(&genes(true)).expect("genes"), "PCs");
    for (j, keep) in hv_mask().into_iter().enumerate() {
        assert_eq!(
            pcs[j * k..(j + 1) * k].iter().all(|&v| v == 0.0),
            !keep,
            "gene {j}"
        );
    }
    let (_, u) = map.uns().remove(0);
    let params = u.get("params").expect("params");
    assert_eq!(params.get("use_highly_variable"), Some(&Uns::Bool(true)));
    assert_eq!(
        params.get("mask_var"),
        Some(&Uns::Str("highly_variable".into()))
    );
    assert_eq!(params.get("zero_center"), Some(&Uns::Bool(true)));
}

#[test]
fn explicit_column_mask_matches_the_hvg_case() {
    let g = genes(false)
        .with_column("mine", Arc::new(BooleanArray::from(hv_mask())))
        .expect("col");
    let stage = Pca {
        n_comps: Some(5),
        mask_var: MaskVar::Column("mine".into()),
        ..Default::default()
    };
    let map = fit(&stage, &batches(&x_rows(), &[], false), &g);
    let (pcs, _) = varm(&map.genes(&g).expect("genes"), "PCs");
    assert_close("mine PCs", &pcs, &read_rows("hvg_pcs.csv").concat(), 1e-9);
    let (_, u) = map.uns().remove(0);
    let params = u.get("params").expect("params");
    assert_eq!(params.get("use_highly_variable"), Some(&Uns::Bool(false)));
    assert_eq!(params.get("mask_var"), Some(&Uns::Str("mine".into())));
}

#[test]
fn mask_none_ignores_highly_variable() {
    let stage = Pca {
        n_comps: Some(5),
        mask_var: MaskVar::None,
        ..Default::default()
    };
    let map = fit(&stage, &batches(&x_rows(), &[], true), &genes(true));
    let (pcs, _) = varm(&map.genes(&genes(true)).expect("genes"), "PCs");
    assert_close("none PCs", &pcs, &read_rows("full_pcs.csv").concat(), 1e-9);
    let (_, u) = map.uns().remove(0);
    assert_eq!(
        u.get("params").and_then(|p| p.get("mask_var")),
        Some(&Uns::Null)
    );
}

#[test]
fn default_n_comps_is_d_minus_1() {
    // d = min(12 genes, 60 cells) = 12 <= 50 -> 11 components
    check_case("default", &Pca::default(), false);
}

#[test]
fn uncentered_matches_truncated_svd() {
    check_case(
        "uncentered",
        &Pca {
            n_comps: Some(4),
            zero_center: false,
            ..Default::default()
        },
        false,
    );
}

#[test]
fn key_added_renames_all_three() {
    let stage = Pca {
        n_comps: Some(5),
        key_added: Some("X_mine".into()),
        ..Default::default()
    };
    check_case("full", &stage, false);
}

#[test]
fn one_granule_equals_three_merged() {
    let rows = x_rows();
    let stage = Pca {
        n_comps: Some(5),
        ..Default::default()
    };
    let g = genes(false);
    let one = stage
        .compute(&fit_state(&stage, &batches(&rows, &[], true), &g))
        .expect("one");
    for (dense, cuts) in [(true, vec![7, 33]), (false, vec![1, 59]), (false, vec![])] {
        let three = stage
            .compute(&fit_state(&stage, &batches(&rows, &cuts, dense), &g))
            .expect("three");
        assert_close("components", &three.components, &one.components, 1e-9);
        assert_close("variance", &three.variance, &one.variance, 1e-9);
        assert_close("mean", &three.mean, &one.mean, 1e-12);
    }
}

#[test]
fn sparse_paths_agree_with_dense() {
    // a mostly-zero matrix takes the sparse outer-product path; the same rows dense must agree
    let rows: Vec<Vec<f32>> = x_rows()
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.into_iter()
                .enumerate()
                .map(|(j, v)| if (i + j) % 23 == 0 { v } else { 0.0 })
                .collect()
        })
        .collect();
    let stage = Pca {
        n_comps: Some(3),
        ..Default::default()
    };
    let g = genes(false);
    let a = fit_state(&stage, &batches(&rows, &[], true), &g);
    let b = fit_state(&stage, &batches(&rows, &[], false), &g);
    assert_close("gram", &lower(&b), &lower(&a), 1e-12);
    assert_close("sums", &b.sums, &a.sums, 1e-12);
}

fn lower(s: &PcaState) -> Vec<f64> {
    let g = s.sums.len();
    let mut v = Vec::new();
    for j in 0..g {
        for i in j..g {
            v.push(s.gram[j * g + i]);
        }
    }
    v
}

#[test]
fn errors_are_reported_not_panics() {
    let rows = x_rows();
    let g = genes(false);
    let fit_err = |stage: Pca, rows: &[Vec<f32>]| -> StageError {
        let mut s = stage.new_state(&g).expect("state");
        s.fold(&batches(rows, &[], true)[0]).expect("fold");
        match stage.finish(s, &g) {
            Err(e) => e,
            Ok(_) => panic!("expected an error"),
        }
    };
    // n_comps >= min(n_obs, n_vars) like sklearn arpack
    let e = fit_err(
        Pca {
            n_comps: Some(12),
            ..Default::default()
        },
        &rows,
    );
    assert!(
        matches!(&e, StageError::InvalidParam { param, .. } if param == "n_comps"),
        "{e}"
    );
    let e = fit_err(
        Pca {
            n_comps: Some(5),
            ..Default::default()
        },
        &rows[..5],
    );
    assert!(matches!(&e, StageError::InvalidParam { .. }), "{e}");
    // TruncatedSVD allows up to n_vars
    assert!(
        Pca {
            n_comps: Some(12),
            zero_center: false,
            ..Default::default()
        }
        .resolve_n_comps(60, 12)
        .is_ok()
    );
    assert!(
        Pca {
            n_comps: Some(13),
            zero_center: false,
            ..Default::default()
        }
        .resolve_n_comps(60, 12)
        .is_err()
    );
    // n_comps 0
    assert!(matches!(
        Pca {
            n_comps: Some(0),
            ..Default::default()
        }
        .new_state(&g),
        Err(StageError::InvalidParam { .. })
    ));
    // masks
    let bad = [
        MaskVar::Column("absent".into()),
        MaskVar::Column("gene_id".into()), // not boolean
    ];
    for m in bad {
        let stage = Pca {
            mask_var: m,
            ..Default::default()
        };
        assert!(matches!(
            stage.new_state(&g),
            Err(StageError::InvalidParam { .. })
        ));
    }
    let none = g
        .with_column(
            "highly_variable",
            Arc::new(BooleanArray::from(vec![false; 12])),
        )
        .expect("col");
    assert!(matches!(
        Pca::default().new_state(&none),
        Err(StageError::InvalidData { .. })
    ));
    // too many genes for a Gram matrix: refused with the size
    let big = GeneTable::from_names((0..20_001).map(|j| format!("g{j}")).collect());
    match Pca::default().new_state(&big) {
        Err(StageError::InvalidData { message, .. }) => {
            assert!(message.contains("GB"), "{message}")
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("expected an error"),
    }
    // wrong batch width
    let mut s = Pca::default().new_state(&g).expect("state");
    let b = CellBatch::from_csr(Vec::new(), Csr::from_dense(&[vec![1.0, 2.0]])).expect("batch");
    assert!(s.fold(&b).is_err());
    // state bytes are honest: 8 g^2 dominates
    assert!(Pca::default().state_bytes(1000) >= 8_000_000);
}
