//! Drawing small frames and checking the pixels where cells land.
#![allow(clippy::unwrap_used)]

mod common;

use atlasflow_core::Uns;
use atlasflow_plot::palette::default_palette;
use atlasflow_plot::{Coloring, Format, LegendLoc, PlotParams, Rgb, plot_embedding, render};
use base64::Engine;
use common::{blobs, codes, decode_png, isolated};

fn params(color: &str) -> PlotParams {
    PlotParams { color: Some(color.to_string()), ..PlotParams::default() }
}

#[test]
fn categorical_png_puts_each_category_colour_on_its_cells() {
    let frame = blobs(400);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("umap.png");
    let info = plot_embedding(&frame, &params("cluster"), &path).unwrap();
    let png = decode_png(&std::fs::read(&path).unwrap());
    assert_eq!((png.width, png.height), (info.width as usize, info.height as usize));
    // scanpy: 5 categories take matplotlib's colour cycle.
    let expected = default_palette(5);
    assert_eq!(info.colors, expected.iter().map(|c| c.to_hex()).collect::<Vec<_>>());
    assert_eq!(info.colors[0], "#1f77b4");
    assert_eq!(info.categories, vec!["c0", "c1", "c2", "c3", "c4"]);
    let (key, uns) = info.uns_colors.clone().unwrap();
    assert_eq!(key, "cluster_colors");
    assert_eq!(uns, info.colors);
    // The image is about scanpy's 423 × 368 for this figure.
    assert!((info.width as i64 - 423).abs() <= 6 && (info.height as i64 - 368).abs() <= 6, "{info:?}");
    // Default size 120000/400 = 300 pt², marker "." → 8.7 pt → 12 px at 100 dpi.
    assert!((info.point_diameter_px - 0.5 * 300f64.sqrt() * 100.0 / 72.0).abs() < 1e-9);

    let labels = codes(&frame);
    let cells = isolated(&frame, &labels, 2.0);
    assert!(cells.len() > 100, "{}", cells.len());
    let e = frame.obsm("X_umap").unwrap();
    for &i in cells.iter().step_by(7) {
        let r = e.row(i);
        let (px, py) = info.transform.to_pixel(f64::from(r[0]), f64::from(r[1]));
        assert_eq!(png.pixel(px, py), expected[labels[i]], "cell {i} at ({px:.1}, {py:.1})");
    }
    // Outside the data (the frame's corner inside), white; the frame itself black.
    let t = info.transform;
    assert_eq!(png.pixel(t.left + 1.0, t.top + 1.0), Rgb::WHITE);
    assert_eq!(png.pixel(t.left - 0.5, 0.5 * (t.top + t.bottom)), Rgb::BLACK);
    // The legend's markers, right of the axes, carry the palette colours.
    let legend_colors: std::collections::HashSet<Rgb> = (t.right as usize + 5..png.width)
        .flat_map(|x| (0..png.height).map(move |y| (x, y)))
        .map(|(x, y)| png.pixel(x as f64, y as f64))
        .collect();
    for c in &expected {
        assert!(legend_colors.contains(c), "legend lacks {}", c.to_hex());
    }
}

#[test]
fn numeric_colour_puts_viridis_yellow_on_the_maximum() {
    let frame = blobs(300);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("val.png");
    let info = plot_embedding(&frame, &params("val"), &path).unwrap();
    assert!(info.uns_colors.is_none());
    let png = decode_png(&std::fs::read(&path).unwrap());
    let e = frame.obsm("X_umap").unwrap();
    let (imax, imin) = {
        let xs: Vec<f32> = (0..frame.n_cells).map(|i| e.row(i)[0]).collect();
        let imax = (0..xs.len()).max_by(|&a, &b| xs[a].total_cmp(&xs[b])).unwrap();
        let imin = (0..xs.len()).min_by(|&a, &b| xs[a].total_cmp(&xs[b])).unwrap();
        (imax, imin)
    };
    let s = info.color_scale.unwrap();
    assert_eq!(s.vmax, f64::from(e.row(imax)[0]));
    let (px, py) = info.transform.to_pixel(f64::from(e.row(imax)[0]), f64::from(e.row(imax)[1]));
    assert_eq!(png.pixel(px, py), Rgb([0xfd, 0xe7, 0x25]), "viridis yellow at the max cell");
    // The minimum cell is the leftmost; its left edge shows viridis' darkest purples (a
    // neighbour with a slightly higher value may cover part of it).
    let (px, py) = info.transform.to_pixel(f64::from(e.row(imin)[0]), f64::from(e.row(imin)[1]));
    let c = png.pixel(px - 0.3 * info.point_diameter_px, py).0;
    assert!(c.iter().zip([0x44u8, 0x01, 0x54]).all(|(a, b)| a.abs_diff(b) <= 6), "{c:?}");
    // The colour bar sits right of the axes: its top row is yellow, its bottom row purple.
    let t = info.transform;
    let bar_x = (t.right as usize..png.width).find(|&x| png.pixel(x as f64, t.top) == Rgb([0xfd, 0xe7, 0x25]));
    let bar_x = bar_x.expect("a yellow colour bar top right of the axes") as f64;
    assert_eq!(png.pixel(bar_x, t.bottom - 1.0), Rgb([0x44, 0x01, 0x54]));
}

#[test]
fn missing_values_are_light_grey_and_drawn_first() {
    let mut frame = blobs(300);
    let e = frame.obsm("X_umap").unwrap().clone();
    // Missing value for every cell of the c4 blob (centre (5, 5)), NaN values elsewhere on
    // cell 0 only.
    let labels = codes(&frame);
    let vals: Vec<Option<f64>> = (0..frame.n_cells).map(|i| if labels[i] == 4 { None } else { Some(f64::from(e.row(i)[0])) }).collect();
    frame.obs[1].1 = std::sync::Arc::new(arrow::array::Float64Array::from(vals));
    let r = render(
        &e,
        &Coloring::Continuous(
            (0..frame.n_cells).map(|i| if labels[i] == 4 { f64::NAN } else { f64::from(e.row(i)[0]) }).collect(),
        ),
        &params("val"),
        Format::Png,
    )
    .unwrap();
    let png = decode_png(&r.bytes);
    let lightgray = Rgb([0xd3, 0xd3, 0xd3]);
    let isolated_c4: Vec<usize> = isolated(&frame, &labels, 2.0).into_iter().filter(|&i| labels[i] == 4).collect();
    assert!(!isolated_c4.is_empty());
    for i in isolated_c4 {
        let (px, py) = r.info.transform.to_pixel(f64::from(e.row(i)[0]), f64::from(e.row(i)[1]));
        assert_eq!(png.pixel(px, py), lightgray);
    }
}

#[test]
fn no_colour_draws_light_grey_without_legend_or_title() {
    let frame = blobs(200);
    let e = frame.obsm("X_umap").unwrap();
    let r = render(e, &Coloring::None, &PlotParams::default(), Format::Png).unwrap();
    let png = decode_png(&r.bytes);
    let (px, py) = r.info.transform.to_pixel(f64::from(e.row(0)[0]), f64::from(e.row(0)[1]));
    assert_eq!(png.pixel(px, py), Rgb([0xd3, 0xd3, 0xd3]));
    // Narrower than the categorical figure (no legend): scanpy gives 349 × 347.
    assert!((r.info.width as i64 - 349).abs() <= 6 && (r.info.height as i64 - 347).abs() <= 6, "{:?}", r.info);
}

#[test]
fn uns_colors_are_honoured_or_replaced_like_scanpy() {
    let mut frame = blobs(300);
    let mine = ["#ff0000", "#00ff00", "#0000ff", "#ffff00", "#00ffff", "#ff00ff"];
    frame.uns.insert("cluster_colors", Uns::StrArray(mine.iter().map(|s| s.to_string()).collect()));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.png");
    let info = plot_embedding(&frame, &params("cluster"), &path).unwrap();
    assert_eq!(info.colors, mine[..5].to_vec());
    assert_eq!(info.uns_colors.unwrap().1.len(), 6); // kept as it was
    let png = decode_png(&std::fs::read(&path).unwrap());
    let labels = codes(&frame);
    let e = frame.obsm("X_umap").unwrap();
    let i = isolated(&frame, &labels, 2.0)[0];
    let (px, py) = info.transform.to_pixel(f64::from(e.row(i)[0]), f64::from(e.row(i)[1]));
    assert_eq!(png.pixel(px, py).to_hex(), mine[labels[i]]);

    // Too few colours: scanpy's defaults replace them.
    frame.uns.insert("cluster_colors", Uns::StrArray(vec!["#ff0000".into()]));
    let info = plot_embedding(&frame, &params("cluster"), &path).unwrap();
    assert_eq!(info.colors[0], "#1f77b4");
    assert_eq!(info.uns_colors.unwrap().1.len(), 5);

    // An explicit palette wins over uns.
    let p = PlotParams { palette: Some(vec!["black".into(), "white".into()]), ..params("cluster") };
    let info = plot_embedding(&frame, &p, &path).unwrap();
    assert_eq!(info.colors, vec!["#000000", "#ffffff", "#000000", "#ffffff", "#000000"]);
}

#[test]
fn strings_booleans_groups_and_on_data() {
    let frame = blobs(300);
    let dir = tempfile::tempdir().unwrap();
    let info = plot_embedding(&frame, &params("label"), &dir.path().join("s.png")).unwrap();
    assert_eq!(info.categories, vec!["c0", "c1", "c2", "c3", "c4"]);
    let info = plot_embedding(&frame, &params("flag"), &dir.path().join("b.png")).unwrap();
    assert_eq!(info.categories, vec!["False", "True"]);
    assert_eq!(info.uns_colors.unwrap().0, "flag_colors");

    // groups: only c1 keeps its colour; the others are light grey (missing).
    let p = PlotParams { groups: Some(vec!["c1".into()]), ..params("cluster") };
    let path = dir.path().join("g.png");
    let info = plot_embedding(&frame, &p, &path).unwrap();
    assert_eq!(info.categories, vec!["c1"]);
    assert_eq!(info.colors, vec!["#ff7f0e"]);
    let png = decode_png(&std::fs::read(&path).unwrap());
    let labels = codes(&frame);
    let e = frame.obsm("X_umap").unwrap();
    for &i in isolated(&frame, &labels, 2.0).iter().step_by(11) {
        let (px, py) = info.transform.to_pixel(f64::from(e.row(i)[0]), f64::from(e.row(i)[1]));
        let want = if labels[i] == 1 { Rgb([0xff, 0x7f, 0x0e]) } else { Rgb([0xd3, 0xd3, 0xd3]) };
        assert_eq!(png.pixel(px, py), want);
    }
    assert!(plot_embedding(&frame, &PlotParams { groups: Some(vec!["zz".into()]), ..params("cluster") }, &path).is_err());

    // Missing values get an "NA" legend entry in na_color (scanpy's na_in_legend).
    let svg_path = dir.path().join("na.svg");
    let p = PlotParams { groups: Some(vec!["c1".into(), "c3".into()]), ..params("cluster") };
    plot_embedding(&frame, &p, &svg_path).unwrap();
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.contains(">NA</text>") && svg.contains(r##"fill="#d3d3d3""##));
    let p = PlotParams { na_in_legend: false, ..p };
    plot_embedding(&frame, &p, &svg_path).unwrap();
    assert!(!std::fs::read_to_string(&svg_path).unwrap().contains(">NA</text>"));

    // "on data": narrower than the right-margin legend, bold labels in the SVG.
    let p = PlotParams { legend_loc: LegendLoc::OnData, ..params("cluster") };
    let path = dir.path().join("o.svg");
    let info = plot_embedding(&frame, &p, &path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert_eq!(svg.matches(r#"font-weight="bold""#).count(), 5);
    assert!(info.width < 400);
}

#[test]
fn svg_has_vector_text_and_the_points_as_an_embedded_png() {
    let frame = blobs(300);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("umap.svg");
    let info = plot_embedding(&frame, &PlotParams { title: Some("A & B".into()), ..params("cluster") }, &path).unwrap();
    assert_eq!(info.format, Format::Svg);
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<?xml"));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<svg").count(), 1);
    assert_eq!(svg.matches("<image").count(), 1);
    assert!(svg.contains(">A &amp; B</text>"));
    for t in ["UMAP1", "UMAP2", "c0", "c4"] {
        assert!(svg.contains(&format!(">{t}</text>")), "{t}");
    }
    // Every element opened is closed: texts paired, others self-closing.
    assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
    // The embedded layer carries the category colours at the cells.
    let b64 = svg.split("base64,").nth(1).unwrap().split('"').next().unwrap();
    let layer = decode_png(&base64::engine::general_purpose::STANDARD.decode(b64).unwrap());
    let t = info.transform;
    assert_eq!(layer.width as f64, t.right - t.left);
    let labels = codes(&frame);
    let e = frame.obsm("X_umap").unwrap();
    let pal = default_palette(5);
    for &i in isolated(&frame, &labels, 2.0).iter().step_by(9) {
        let (px, py) = t.to_pixel(f64::from(e.row(i)[0]), f64::from(e.row(i)[1]));
        assert_eq!(layer.pixel(px - t.left, py - t.top), pal[labels[i]]);
    }
}

#[test]
fn errors_name_what_is_missing_and_leave_no_file() {
    let frame = blobs(50);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.png");
    let e = plot_embedding(&frame, &params("nope"), &path).unwrap_err().to_string();
    assert!(e.contains("'nope'") && e.contains("cluster, val, label, flag"), "{e}");
    let e = plot_embedding(&frame, &PlotParams { basis: "tsne".into(), ..PlotParams::default() }, &path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("'tsne'") && e.contains("X_tsne") && e.contains("X_umap"), "{e}");
    let pdf = dir.path().join("x.pdf");
    let e = plot_embedding(&frame, &params("cluster"), &pdf).unwrap_err().to_string();
    assert!(e.contains("x.pdf"), "{e}");
    let e = plot_embedding(&frame, &params("cluster"), &dir.path().join("missing/x.png")).unwrap_err().to_string();
    assert!(e.contains("missing/x.png"), "{e}");
    // Nothing was written, not even a temporary file.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    // A failed plot leaves an existing file as it was.
    std::fs::write(&path, b"old").unwrap();
    assert!(plot_embedding(&frame, &params("nope"), &path).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"old");
    plot_embedding(&frame, &params("cluster"), &path).unwrap();
    assert_ne!(std::fs::read(&path).unwrap(), b"old");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn same_bytes_whatever_the_thread_count() {
    let frame = blobs(200_000);
    let e = frame.obsm("X_umap").unwrap();
    let vals: Vec<f64> = (0..frame.n_cells).map(|i| if i % 97 == 0 { f64::NAN } else { f64::from(e.row(i)[1]) }).collect();
    let run = |threads: usize, color: &Coloring, format: Format| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| render(e, color, &params("v"), format).unwrap().bytes)
    };
    let cont = Coloring::Continuous(vals);
    assert_eq!(run(1, &cont, Format::Png), run(3, &cont, Format::Png));
    assert_eq!(run(1, &cont, Format::Svg), run(3, &cont, Format::Svg));
    let labels = codes(&frame);
    let cat = Coloring::Categorical {
        codes: labels.iter().map(|&c| if c == 2 { -1 } else { c as i32 }).collect(),
        categories: (0..5).map(|i| format!("c{i}")).collect(),
        palette: default_palette(5),
    };
    assert_eq!(run(1, &cat, Format::Png), run(3, &cat, Format::Png));
}
