//! The pbmc700 reference UMAP (tests/data/graph/pbmc700.h5) drawn as scanpy draws it, compared
//! with numbers measured on scanpy's own figure by scripts/reference_plot.py (scanpy 1.11.5,
//! matplotlib Agg, 4×4 inches at 100 dpi, `bbox_inches="tight"`).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use arrow::array::{ArrayRef, DictionaryArray, Int32Array, StringArray};
use arrow::datatypes::Int32Type;
use atlasflow_core::{CellFrame, Embedding, Uns};
use atlasflow_plot::{PlotParams, Rgb, plot_embedding};
use common::decode_png;

const PBMC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/graph/pbmc700.h5");

/// scanpy's figure: image size, axes interior (2 px in from the frame) and, per category,
/// the pixels of exactly its colour inside the axes.
const SCANPY_IMAGE: (i64, i64) = (637, 368);
const SCANPY_INNER: (i64, i64) = (306, 304);
const SCANPY_COLORS: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
];
const SCANPY_COUNTS: [(&str, f64); 10] = [
    ("CD14+ Monocyte", 1691.0),
    ("CD19+ B", 1584.0),
    ("CD34+", 202.0),
    ("CD4+/CD25 T Reg", 956.0),
    ("CD4+/CD45RA+/CD25- Naive T", 177.0),
    ("CD4+/CD45RO+ Memory", 279.0),
    ("CD56+ NK", 652.0),
    ("CD8+ Cytotoxic T", 846.0),
    ("CD8+/CD45RA+ Naive Cytotoxic", 619.0),
    ("Dendritic", 3720.0),
];

fn pbmc_frame() -> CellFrame {
    let f = hdf5::File::open(PBMC).unwrap();
    let umap = f.dataset("umap/X_umap").unwrap().read_2d::<f32>().unwrap();
    let labels: Vec<String> = f
        .dataset("labels")
        .unwrap()
        .read_1d::<hdf5::types::VarLenUnicode>()
        .unwrap()
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    // pandas' Categorical of strings: the distinct values sorted.
    let mut cats = labels.clone();
    cats.sort();
    cats.dedup();
    let keys: Vec<i32> = labels.iter().map(|l| cats.binary_search(l).unwrap() as i32).collect();
    let dict = DictionaryArray::<Int32Type>::try_new(Int32Array::from(keys), Arc::new(StringArray::from(cats))).unwrap();
    CellFrame {
        n_cells: labels.len(),
        obs: vec![("bulk_labels".into(), Arc::new(dict) as ArrayRef)],
        obsm: vec![("X_umap".into(), Embedding { values: umap.iter().copied().collect(), width: 2 })],
        obsp: vec![],
        uns: Uns::map(),
    }
}

#[test]
fn pbmc700_umap_matches_scanpys_figure() {
    let frame = pbmc_frame();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("umap.png");
    let params = PlotParams { color: Some("bulk_labels".into()), ..PlotParams::default() };
    let info = plot_embedding(&frame, &params, &path).unwrap();
    if let Ok(keep) = std::env::var("PLOT_EXAMPLES") {
        std::fs::copy(&path, std::path::Path::new(&keep).join("pbmc700.png")).unwrap();
    }

    // Same categories, same colours, same uns entry.
    let names: Vec<&str> = SCANPY_COUNTS.iter().map(|c| c.0).collect();
    assert_eq!(info.categories, names);
    assert_eq!(info.colors, SCANPY_COLORS);
    assert_eq!(info.uns_colors.as_ref().unwrap().1, SCANPY_COLORS);

    // Same figure within a few pixels (text is measured with the same font).
    let (w, h) = (i64::from(info.width), i64::from(info.height));
    println!("image {w} × {h} (scanpy {} × {})", SCANPY_IMAGE.0, SCANPY_IMAGE.1);
    assert!((w - SCANPY_IMAGE.0).abs() <= 8 && (h - SCANPY_IMAGE.1).abs() <= 4);

    // Inside the axes, each category covers as many pixels as in scanpy's figure.
    let png = decode_png(&std::fs::read(&path).unwrap());
    let t = info.transform;
    let (x0, x1) = (t.left as usize + 2, t.right as usize - 2);
    let (y0, y1) = (t.top as usize + 2, t.bottom as usize - 2);
    let inner = ((x1 - x0) as i64, (y1 - y0) as i64);
    assert!((inner.0 - SCANPY_INNER.0).abs() <= 2 && (inner.1 - SCANPY_INNER.1).abs() <= 2, "{inner:?}");
    let mut counts = [0f64; 10];
    for y in y0..y1 {
        for x in x0..x1 {
            let p = png.pixel(x as f64, y as f64);
            if let Some(k) = SCANPY_COLORS.iter().position(|c| Rgb::parse(c) == Some(p)) {
                counts[k] += 1.0;
            }
        }
    }
    let total: f64 = counts.iter().sum();
    let scanpy_total: f64 = SCANPY_COUNTS.iter().map(|c| c.1).sum();
    println!("covered pixels {total} (scanpy {scanpy_total})");
    assert!((total / scanpy_total - 1.0).abs() < 0.05, "{total} vs {scanpy_total}");
    for (k, (name, want)) in SCANPY_COUNTS.iter().enumerate() {
        let (share, want_share) = (counts[k] / total, want / scanpy_total);
        println!("{name}: {} pixels, share {share:.4} (scanpy {want}, {want_share:.4})", counts[k]);
        assert!((share - want_share).abs() < 0.005, "{name}: share {share:.4} vs scanpy {want_share:.4}");
    }
}
