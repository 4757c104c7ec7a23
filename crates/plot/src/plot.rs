//! The two entry points: [`render`] (an embedding and colour values to file bytes) and
//! [`plot_embedding`] (a frame, as scanpy's `sc.pl.embedding(adata, basis, color=...,
//! save=...)`, written atomically).

use std::path::Path;

use atlasflow_core::{CellFrame, Embedding, Result, StageError};
use rayon::prelude::*;

use crate::color::Rgb;
use crate::coloring::{Coloring, ObsValues, obs_values, restrict_to_groups};
use crate::font::fonts;
use crate::layout::{LayoutInput, PixelTransform, layout};
use crate::output::{Format, encode_png, write_atomic};
use crate::palette;
use crate::palettes::VIRIDIS;
use crate::params::{LegendLoc, PlotParams, STAGE};
use crate::scale::ColorScale;
use crate::{order, points, raster, svg};

/// A cell's draw bucket and colour (see [`crate::order`]).
type Style<'a> = dyn Fn(usize) -> (u16, Rgb) + Sync + 'a;

/// What a plot used, for the caller to record (the palette goes to
/// `uns["<color>_colors"]` as scanpy stores it) and for tests to locate cells.
#[derive(Clone, Debug, PartialEq)]
pub struct PlotInfo {
    /// The file format written.
    pub format: Format,
    /// Image width in pixels (for SVG: of the view box).
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// The categories shown, in legend order (empty unless categorical).
    pub categories: Vec<String>,
    /// The colour of each shown category, `#rrggbb`.
    pub colors: Vec<String>,
    /// For a categorical colour from a frame: the key `"<color>_colors"` and the value
    /// scanpy leaves in `uns` after plotting (every category, before `groups`).
    pub uns_colors: Option<(String, Vec<String>)>,
    /// The continuous colour scale used, if the colour is numeric.
    pub color_scale: Option<ColorScale>,
    /// Point diameter in pixels as drawn (at least one pixel).
    pub point_diameter_px: f64,
    /// Where data coordinates land in the image.
    pub transform: PixelTransform,
}

/// A rendered figure.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// The file content.
    pub bytes: Vec<u8>,
    /// What was drawn.
    pub info: PlotInfo,
}

/// Draw `embedding` (columns `params.dimensions`) coloured by `coloring`, as a `format` file.
/// The title defaults to `params.color`; axis labels come from `params.basis`.
pub fn render(embedding: &Embedding, coloring: &Coloring, params: &PlotParams, format: Format) -> Result<Rendered> {
    params.validate()?;
    let n = embedding.n_rows();
    let (d0, d1) = params.dimensions;
    if n == 0 {
        return Err(StageError::data(STAGE, format!("basis '{}' has no cells to plot", params.basis)));
    }
    if d0 >= embedding.width || d1 >= embedding.width {
        return Err(StageError::param(
            STAGE,
            "dimensions",
            format!("({d0}, {d1}) but basis '{}' has {} columns", params.basis, embedding.width),
        ));
    }
    let len = match coloring {
        Coloring::None => n,
        Coloring::Categorical { codes, categories, palette } => {
            if palette.len() < categories.len() {
                return Err(StageError::param(STAGE, "palette", format!("{} colours for {} categories", palette.len(), categories.len())));
            }
            if let Some(c) = codes.iter().find(|&&c| c >= categories.len() as i32) {
                return Err(StageError::data(STAGE, format!("category code {c} with {} categories", categories.len())));
            }
            codes.len()
        }
        Coloring::Continuous(v) => v.len(),
    };
    if len != n {
        return Err(StageError::data(STAGE, format!("{len} colour values for {n} cells of basis '{}'", params.basis)));
    }
    let data = data_range(embedding, (d0, d1))?;
    let na = params.na_color_rgb()?;

    // Draw order, colours, legend.
    let mut legend: Vec<(String, Rgb)> = Vec::new();
    let mut on_data: Vec<(String, f64, f64)> = Vec::new();
    let mut colorbar = None;
    let mut scale = None;
    let (info_cats, info_colors): (Vec<String>, Vec<String>) = match coloring {
        Coloring::None => (Vec::new(), Vec::new()),
        Coloring::Categorical { codes, categories, palette } => {
            let any_missing = codes.iter().any(|&c| c < 0);
            let mut entries: Vec<(String, Rgb)> = categories.iter().cloned().zip(palette.iter().copied()).collect();
            if params.na_in_legend && any_missing {
                entries.push(("NA".to_string(), na));
            }
            match params.legend_loc {
                LegendLoc::RightMargin => legend = entries,
                LegendLoc::OnData => {
                    let na_label = params.na_in_legend.then_some("NA");
                    on_data = medians(embedding, (d0, d1), codes, categories, na_label);
                }
                LegendLoc::None => {}
            }
            (categories.clone(), palette[..categories.len()].iter().map(|c| c.to_hex()).collect())
        }
        Coloring::Continuous(values) => {
            let s = ColorScale::new(values, params.vmin, params.vmax)?;
            scale = Some(s);
            if params.colorbar()? {
                colorbar = Some(s.bar_range());
            }
            (Vec::new(), Vec::new())
        }
    };

    let f = fonts()?;
    let title = params.title.clone().or_else(|| params.color.clone()).unwrap_or_default();
    let name = params.axis_name();
    let labels = params.frameon.then(|| (format!("{name}{}", d0 + 1), format!("{name}{}", d1 + 1)));
    let lay = layout(
        f,
        &LayoutInput {
            size: (params.width, params.height, params.dpi),
            title: &title,
            labels,
            legend: &legend,
            on_data: &on_data,
            colorbar,
            frame: params.frameon,
            data,
        },
    )?;

    let size = params.size.unwrap_or(120_000.0 / n as f64);
    // scanpy's default marker is "." (matplotlib's point: a circle half the diameter of
    // "o"), so a marker of area `s` points² is sqrt(s)/2 points across.
    let diameter = (0.5 * size.sqrt() * params.dpi / 72.0).max(1.0);
    let sort = params.sort_order;
    let (n_buckets, style): (usize, Box<Style>) = match coloring {
        Coloring::None => (1, Box::new(move |_| (0, na))),
        Coloring::Categorical { codes, palette, .. } => (
            2,
            Box::new(move |i| {
                let c = codes[i];
                let color = if c < 0 { na } else { palette[c as usize] };
                (if sort { order::categorical_bucket(c) } else { 0 }, color)
            }),
        ),
        Coloring::Continuous(values) => {
            let s = scale.unwrap_or(ColorScale { vmin: 0.0, vmax: 1.0 });
            (
                order::CONTINUOUS_BUCKETS,
                Box::new(move |i| {
                    let k = s.index(values[i]);
                    let color = k.map_or(na, |k| Rgb(VIRIDIS[k as usize]));
                    (if sort { order::continuous_bucket(k) } else { 0 }, color)
                }),
            )
        }
    };
    let layer = points::draw(
        embedding,
        (d0, d1),
        n_buckets,
        &*style,
        &lay.layer_transform,
        diameter,
        lay.layer_width,
        lay.layer_height,
    );
    let bytes = match format {
        Format::Png => encode_png(&raster::render(&lay.scene, &layer)?, Some(params.dpi))?,
        Format::Svg => svg::render(&lay.scene, &layer)?.into_bytes(),
    };
    Ok(Rendered {
        bytes,
        info: PlotInfo {
            format,
            width: lay.scene.width,
            height: lay.scene.height,
            categories: info_cats,
            colors: info_colors,
            uns_colors: None,
            color_scale: scale,
            point_diameter_px: diameter,
            transform: lay.transform,
        },
    })
}

/// scanpy's `sc.pl.embedding(adata, basis, color=...)` saved to `path` (format by
/// extension, `.png` or `.svg`), written atomically. The basis is found as given or with
/// an `X_` prefix; the colour is an obs column. Categorical colours come from `palette`,
/// else `uns["<color>_colors"]`, else scanpy's defaults; [`PlotInfo::uns_colors`] says
/// what scanpy would leave in `uns`.
pub fn plot_embedding(frame: &CellFrame, params: &PlotParams, path: &Path) -> Result<PlotInfo> {
    let format = Format::from_path(path)?;
    params.validate()?;
    let embedding = find_basis(frame, &params.basis)?;
    if embedding.n_rows() != frame.n_cells {
        return Err(StageError::data(
            STAGE,
            format!("basis '{}' has {} rows for {} cells", params.basis, embedding.n_rows(), frame.n_cells),
        ));
    }
    let mut uns_colors = None;
    let coloring = match &params.color {
        None => Coloring::None,
        Some(key) => {
            let array = frame.obs(key).ok_or_else(|| {
                let names: Vec<&str> = frame.obs.iter().map(|(k, _)| k.as_str()).collect();
                StageError::param(
                    STAGE,
                    "color",
                    format!("obs column '{key}' not found; obs columns are: {}", names.join(", ")),
                )
            })?;
            if array.len() != frame.n_cells {
                return Err(StageError::data(
                    STAGE,
                    format!("obs column '{key}' has {} values for {} cells", array.len(), frame.n_cells),
                ));
            }
            match obs_values(key, array)? {
                ObsValues::Continuous(v) => Coloring::Continuous(v),
                ObsValues::Categorical { mut codes, categories } => {
                    let given = params.palette_rgb()?;
                    let pal = palette::resolve(key, categories.len(), given.as_deref(), &frame.uns);
                    uns_colors = Some((format!("{key}_colors"), pal.uns_colors));
                    match &params.groups {
                        Some(groups) => {
                            let kept = restrict_to_groups(&mut codes, &categories, groups)?;
                            Coloring::Categorical {
                                codes,
                                categories: kept.iter().map(|&i| categories[i].clone()).collect(),
                                palette: kept.iter().map(|&i| pal.colors[i]).collect(),
                            }
                        }
                        None => Coloring::Categorical { codes, categories, palette: pal.colors },
                    }
                }
            }
        }
    };
    let mut out = render(embedding, &coloring, params, format)?;
    write_atomic(path, &out.bytes)?;
    out.info.uns_colors = uns_colors;
    Ok(out.info)
}

/// The embedding `basis`, or `X_<basis>`, else an error listing the obsm keys.
pub fn find_basis<'a>(frame: &'a CellFrame, basis: &str) -> Result<&'a Embedding> {
    frame.obsm(basis).or_else(|| frame.obsm(&format!("X_{basis}"))).ok_or_else(|| {
        let names: Vec<&str> = frame.obsm.iter().map(|(k, _)| k.as_str()).collect();
        StageError::param(
            STAGE,
            "basis",
            format!("could not find '{basis}' or 'X_{basis}' in obsm; obsm has: {}", names.join(", ")),
        )
    })
}

/// Min and max of the two plotted columns; a non-finite coordinate is an error naming the cell.
fn data_range(emb: &Embedding, (d0, d1): (usize, usize)) -> Result<(f64, f64, f64, f64)> {
    let n = emb.n_rows();
    if let Some(i) = (0..n).into_par_iter().find_first(|&i| {
        let r = emb.row(i);
        !r[d0].is_finite() || !r[d1].is_finite()
    }) {
        return Err(StageError::data(STAGE, format!("cell {i} has a non-finite embedding coordinate")));
    }
    let init = (f32::INFINITY, f32::NEG_INFINITY, f32::INFINITY, f32::NEG_INFINITY);
    let (a, b, c, d) = (0..n)
        .into_par_iter()
        .with_min_len(1 << 14)
        .fold(
            || init,
            |(a, b, c, d), i| {
                let r = emb.row(i);
                (a.min(r[d0]), b.max(r[d0]), c.min(r[d1]), d.max(r[d1]))
            },
        )
        .reduce(|| init, |x, y| (x.0.min(y.0), x.1.max(y.1), x.2.min(y.2), x.3.max(y.3)));
    Ok((f64::from(a), f64::from(b), f64::from(c), f64::from(d)))
}

/// "on data" label positions: each category's (and, with `na_label`, the missing values')
/// median x and y (pandas' median: the mean of the two middle values for even counts), for
/// categories with at least one cell, in category order, missing last.
fn medians(
    emb: &Embedding,
    (d0, d1): (usize, usize),
    codes: &[i32],
    categories: &[String],
    na_label: Option<&str>,
) -> Vec<(String, f64, f64)> {
    let k = categories.len();
    let mut xs: Vec<Vec<f32>> = vec![Vec::new(); k + 1];
    let mut ys: Vec<Vec<f32>> = vec![Vec::new(); k + 1];
    for (i, &c) in codes.iter().enumerate() {
        let g = if c < 0 { k } else { c as usize };
        let r = emb.row(i);
        xs[g].push(r[d0]);
        ys[g].push(r[d1]);
    }
    let mut out = Vec::new();
    for g in 0..=k {
        let label = if g < k { categories[g].as_str() } else { match na_label { Some(l) => l, None => continue } };
        if xs[g].is_empty() {
            continue;
        }
        out.push((label.to_string(), median(&mut xs[g]), median(&mut ys[g])));
    }
    out
}

/// Median of non-empty `v` (reordered in place).
fn median(v: &mut [f32]) -> f64 {
    let n = v.len();
    let mid = n / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f32::total_cmp);
    let hi = f64::from(*m);
    if n % 2 == 1 {
        return hi;
    }
    let lo = v[..mid].iter().copied().fold(f32::NEG_INFINITY, f32::max);
    0.5 * (f64::from(lo) + hi)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn median_like_pandas() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn rejects_bad_inputs() {
        let p = PlotParams::default();
        let emb = Embedding { values: vec![0.0, f32::NAN], width: 2 };
        let e = render(&emb, &Coloring::None, &p, Format::Png).unwrap_err().to_string();
        assert!(e.contains("cell 0"), "{e}");
        let empty = Embedding { values: vec![], width: 2 };
        assert!(render(&empty, &Coloring::None, &p, Format::Png).is_err());
        let emb = Embedding { values: vec![0.0, 1.0], width: 2 };
        let e = render(&emb, &Coloring::Continuous(vec![1.0, 2.0]), &p, Format::Png).unwrap_err().to_string();
        assert!(e.contains("2 colour values for 1 cells"), "{e}");
        let q = PlotParams { dimensions: (0, 2), ..PlotParams::default() };
        assert!(render(&emb, &Coloring::None, &q, Format::Png).unwrap_err().to_string().contains("dimensions"));
    }
}
