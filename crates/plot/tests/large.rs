//! Ignored by default: a timing of ten million points, and example figures to look at.
//! Run with `cargo test --release -p atlasflow-plot --test large -- --ignored --nocapture`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use atlasflow_core::Embedding;
use atlasflow_plot::palette::default_palette;
use atlasflow_plot::{Coloring, Format, LegendLoc, PlotParams, plot_embedding};
use common::{Rng, blobs};

fn big_frame(n: usize) -> atlasflow_core::CellFrame {
    let mut f = blobs(10);
    let mut rng = Rng::new(11);
    let mut values = Vec::with_capacity(2 * n);
    let mut codes = Vec::with_capacity(n);
    for _ in 0..n {
        let c = (rng.next_u64() % 12) as i32;
        let (cx, cy) = ((c % 4) as f64 * 8.0, (c / 4) as f64 * 8.0);
        values.push((cx + 1.5 * rng.normal()) as f32);
        values.push((cy + 1.5 * rng.normal()) as f32);
        codes.push(c);
    }
    let keys = arrow::array::Int32Array::from(codes);
    let names: Vec<String> = (0..12).map(|i| format!("cluster {i}")).collect();
    let dict = arrow::array::DictionaryArray::<arrow::datatypes::Int32Type>::try_new(
        keys,
        std::sync::Arc::new(arrow::array::StringArray::from(names)),
    )
    .unwrap();
    let vals: Vec<f64> = (0..n).map(|i| f64::from(values[2 * i + 1])).collect();
    f.n_cells = n;
    f.obs = vec![
        ("leiden".into(), std::sync::Arc::new(dict)),
        ("score".into(), std::sync::Arc::new(arrow::array::Float64Array::from(vals))),
    ];
    f.obsm = vec![("X_umap".into(), Embedding { values, width: 2 })];
    f
}

#[test]
#[ignore]
fn ten_million_points_timing() {
    let n = 10_000_000;
    let frame = big_frame(n);
    let dir = tempfile::tempdir().unwrap();
    for (color, ext) in [("leiden", "png"), ("score", "png"), ("leiden", "svg")] {
        let p = PlotParams { color: Some(color.into()), ..PlotParams::default() };
        let path = dir.path().join(format!("big_{color}.{ext}"));
        let t = Instant::now();
        plot_embedding(&frame, &p, &path).unwrap();
        let secs = t.elapsed().as_secs_f64();
        let size = std::fs::metadata(&path).unwrap().len();
        println!("{n} points, colour {color}, {ext}: {secs:.2} s, {size} bytes");
    }
}

#[test]
#[ignore]
fn write_examples() {
    let out = std::path::PathBuf::from(std::env::var("PLOT_EXAMPLES").unwrap_or_else(|_| "/tmp/plot-examples".into()));
    std::fs::create_dir_all(&out).unwrap();
    let frame = blobs(300);
    let base = PlotParams::default();
    let cases = [
        ("cat.png", PlotParams { color: Some("cluster".into()), ..base.clone() }),
        ("cat.svg", PlotParams { color: Some("cluster".into()), ..base.clone() }),
        ("cont.png", PlotParams { color: Some("val".into()), ..base.clone() }),
        ("cont.svg", PlotParams { color: Some("val".into()), ..base.clone() }),
        ("none.png", base.clone()),
        ("ondata.png", PlotParams { color: Some("cluster".into()), legend_loc: LegendLoc::OnData, ..base.clone() }),
        ("noframe.png", PlotParams { color: Some("cluster".into()), frameon: false, ..base.clone() }),
        ("hidpi.png", PlotParams { color: Some("val".into()), dpi: 300.0, ..base.clone() }),
    ];
    for (name, p) in cases {
        plot_embedding(&frame, &p, &out.join(name)).unwrap();
    }
    // Many categories: two and three legend columns.
    let e = frame.obsm("X_umap").unwrap();
    for k in [25usize, 40] {
        let c = Coloring::Categorical {
            codes: (0..frame.n_cells).map(|i| (i % k) as i32).collect(),
            categories: (0..k).map(|i| format!("type {i}")).collect(),
            palette: default_palette(k),
        };
        let r = atlasflow_plot::render(e, &c, &PlotParams { color: Some("many".into()), ..base.clone() }, Format::Png).unwrap();
        std::fs::write(out.join(format!("many{k}.png")), r.bytes).unwrap();
    }
    let big = big_frame(1_000_000);
    plot_embedding(&big, &PlotParams { color: Some("leiden".into()), ..base.clone() }, &out.join("million.png")).unwrap();
    plot_embedding(&big, &PlotParams { color: Some("score".into()), ..base }, &out.join("million_score.png")).unwrap();
}
