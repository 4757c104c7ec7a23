//! The figure layout, after matplotlib's defaults as scanpy's `embedding` gets them, then
//! cropped as `savefig(bbox_inches="tight")` crops:
//!
//! - the axes span 12.5–90 % of the figure width and 11–88 % of its height (subplot
//!   parameters); a colour bar takes 9 % of the axes width (`fraction=0.08, pad=0.01`),
//!   as tall as the axes and 1/30 of that wide (`aspect=30`), ticks and labels right;
//! - title 12 pt, 6 pt above the axes; axis labels 10 pt, 4 pt from the frame; no ticks;
//! - right-margin legend 10 pt, 0.5 em right of the axes, centred vertically, entries with
//!   a 6 pt marker, matplotlib's paddings (border 0.4 em, handle 2 em, gap 0.8 em, rows
//!   0.5 em apart, columns 2 em apart), filled column by column;
//! - the data limits add 5 % of the data range on each side (matplotlib's margins);
//! - the image is the bounding box of everything drawn plus 0.1 inch.

use atlasflow_core::Result;

use crate::color::Rgb;
use crate::font::{BOX_ASCENT, BOX_DESCENT, Fonts};
use crate::points::LayerTransform;
use crate::scene::{Anchor, Prim, Scene, Text};
use crate::ticks;

/// What the layout needs to know besides the sizes.
pub struct LayoutInput<'a> {
    /// Figure width and height in inches, and dpi.
    pub size: (f64, f64, f64),
    /// Title (empty for none).
    pub title: &'a str,
    /// Axis labels, None when the frame is off.
    pub labels: Option<(String, String)>,
    /// Right-margin legend entries.
    pub legend: &'a [(String, Rgb)],
    /// "on data" labels at data positions.
    pub on_data: &'a [(String, f64, f64)],
    /// The colour bar's value range, if any.
    pub colorbar: Option<(f64, f64)>,
    /// Draw the frame.
    pub frame: bool,
    /// Data limits of the points (min x, max x, min y, max y), before margins.
    pub data: (f64, f64, f64, f64),
}

/// Data coordinates ↔ pixels of the output image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PixelTransform {
    /// Data x at the left edge of the plotting area.
    pub xmin: f64,
    /// Data x at the right edge.
    pub xmax: f64,
    /// Data y at the bottom edge.
    pub ymin: f64,
    /// Data y at the top edge.
    pub ymax: f64,
    /// Pixel x of the left edge of the plotting area (inside the frame).
    pub left: f64,
    /// Pixel y of its top edge.
    pub top: f64,
    /// Pixel x of its right edge.
    pub right: f64,
    /// Pixel y of its bottom edge.
    pub bottom: f64,
}

impl PixelTransform {
    /// The output-image pixel coordinates (continuous: pixel (i, j) covers [i, i+1) ×
    /// [j, j+1)) where data point (x, y) is drawn.
    pub fn to_pixel(&self, x: f64, y: f64) -> (f64, f64) {
        (
            self.left + (x - self.xmin) / (self.xmax - self.xmin) * (self.right - self.left),
            self.bottom - (y - self.ymin) / (self.ymax - self.ymin) * (self.bottom - self.top),
        )
    }
}

/// The laid-out figure: scene, the point layer's size and where points go.
pub struct Layout {
    /// The primitives (the point layer is [`Prim::Layer`]).
    pub scene: Scene,
    /// Point layer width in pixels.
    pub layer_width: usize,
    /// Point layer height in pixels.
    pub layer_height: usize,
    /// Data → layer pixels.
    pub layer_transform: LayerTransform,
    /// Data → output image pixels.
    pub transform: PixelTransform,
}

/// matplotlib's data limits: the range plus 5 % each side; a single value is widened as
/// its `nonsingular` does (±5 % of the value, or ±0.05 around zero) first.
pub fn limits(lo: f64, hi: f64) -> (f64, f64) {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else if lo == 0.0 {
        (-0.05, 0.05)
    } else {
        (lo - 0.05 * lo.abs(), lo + 0.05 * lo.abs())
    };
    let m = 0.05 * (hi - lo);
    (lo - m, hi + m)
}

/// A box in figure pixels being accumulated for the tight crop.
struct Bounds {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

impl Bounds {
    fn add(&mut self, x0: f64, y0: f64, x1: f64, y1: f64) {
        self.x0 = self.x0.min(x0);
        self.y0 = self.y0.min(y0);
        self.x1 = self.x1.max(x1);
        self.y1 = self.y1.max(y1);
    }
    fn add_text(&mut self, f: &Fonts, t: &Text) {
        let w = f.width(&t.text, t.em_px, t.bold);
        let start = match t.anchor {
            Anchor::Start => 0.0,
            Anchor::Middle => -w / 2.0,
            Anchor::End => -w,
        };
        if t.vertical {
            self.add(t.x - BOX_ASCENT * t.em_px, t.y - start - w, t.x + BOX_DESCENT * t.em_px, t.y - start);
        } else {
            self.add(t.x + start, t.y - BOX_ASCENT * t.em_px, t.x + start + w, t.y + BOX_DESCENT * t.em_px);
        }
    }
}

/// Lay the figure out.
pub fn layout(f: &Fonts, input: &LayoutInput) -> Result<Layout> {
    let (win, hin, dpi) = input.size;
    let (fw, fh) = (win * dpi, hin * dpi);
    let pt = |p: f64| p * dpi / 72.0;
    let em10 = pt(10.0);
    let em12 = pt(12.0);
    let line = pt(0.8).round().max(1.0) as i64;

    // Axes box, snapped to whole pixels.
    let (ax0, ax1, ay0, ay1) = (0.125 * fw, 0.9 * fw, 0.12 * fh, 0.89 * fh);
    let full_w = ax1 - ax0;
    let ax1 = if input.colorbar.is_some() { ax0 + 0.91 * full_w } else { ax1 };
    let (l, r, t, b) = (ax0.round() as i64, ax1.round() as i64, ay0.round() as i64, ay1.round() as i64);
    let (l, t) = (l, t);
    let r = r.max(l + 1);
    let b = b.max(t + 1);
    let (lf, rf, tf, bf) = (l as f64, r as f64, t as f64, b as f64);
    let cy = 0.5 * (tf + bf);

    let mut prims = vec![Prim::Layer { x: l, y: t }];
    let mut bounds = Bounds { x0: lf, y0: tf, x1: rf, y1: bf };
    if input.frame {
        let k = Rgb::BLACK;
        prims.push(Prim::Rect { x0: l - line, y0: t - line, x1: r + line, y1: t, color: k });
        prims.push(Prim::Rect { x0: l - line, y0: b, x1: r + line, y1: b + line, color: k });
        prims.push(Prim::Rect { x0: l - line, y0: t, x1: l, y1: b, color: k });
        prims.push(Prim::Rect { x0: r, y0: t, x1: r + line, y1: b, color: k });
        bounds.add((l - line) as f64, (t - line) as f64, (r + line) as f64, (b + line) as f64);
    }
    let mut texts = Vec::new();
    if !input.title.is_empty() {
        texts.push(Text {
            x: 0.5 * (lf + rf),
            y: tf - pt(6.0),
            text: input.title.to_string(),
            em_px: em12,
            bold: false,
            anchor: Anchor::Middle,
            vertical: false,
        });
    }
    if let Some((xl, yl)) = &input.labels {
        texts.push(Text {
            x: 0.5 * (lf + rf),
            y: bf + pt(4.0) + BOX_ASCENT * em10,
            text: xl.clone(),
            em_px: em10,
            bold: false,
            anchor: Anchor::Middle,
            vertical: false,
        });
        texts.push(Text {
            x: lf - pt(4.0) - BOX_DESCENT * em10,
            y: cy,
            text: yl.clone(),
            em_px: em10,
            bold: false,
            anchor: Anchor::Middle,
            vertical: true,
        });
    }

    // Data limits and transforms (in figure pixels for now).
    let (dx0, dx1, dy0, dy1) = input.data;
    let (xmin, xmax) = limits(dx0, dx1);
    let (ymin, ymax) = limits(dy0, dy1);
    let layer_transform = LayerTransform {
        xmin,
        ymax,
        sx: (rf - lf) / (xmax - xmin),
        sy: (bf - tf) / (ymax - ymin),
    };

    for (label, x, y) in input.on_data {
        let (u, v) = layer_transform.apply(*x, *y);
        texts.push(Text {
            x: lf + u,
            y: tf + v + (0.5 - BOX_DESCENT) * em10,
            text: label.clone(),
            em_px: em10,
            bold: true,
            anchor: Anchor::Middle,
            vertical: false,
        });
    }

    if !input.legend.is_empty() {
        legend(f, input.legend, rf + 0.5 * em10, cy, em10, pt(3.0), &mut prims, &mut texts, &mut bounds);
    }

    if let Some((vlo, vhi)) = input.colorbar {
        let cx0 = (ax0 + 0.92 * full_w).round() as i64;
        let cx1 = cx0 + ((bf - tf) / 30.0).round().max(1.0) as i64;
        prims.push(Prim::Gradient { x0: cx0, y0: t, x1: cx1, y1: b });
        let k = Rgb::BLACK;
        prims.push(Prim::Rect { x0: cx0 - line, y0: t - line, x1: cx1 + line, y1: t, color: k });
        prims.push(Prim::Rect { x0: cx0 - line, y0: b, x1: cx1 + line, y1: b + line, color: k });
        prims.push(Prim::Rect { x0: cx0 - line, y0: t, x1: cx0, y1: b, color: k });
        prims.push(Prim::Rect { x0: cx1, y0: t, x1: cx1 + line, y1: b, color: k });
        bounds.add((cx0 - line) as f64, (t - line) as f64, (cx1 + line) as f64, (b + line) as f64);
        // matplotlib's tick space: the bar's length in points over twice the label size.
        let nbins = (((bf - tf) * 72.0 / dpi) / 20.0).floor().clamp(1.0, 9.0) as usize;
        let tv = ticks::ticks(vlo, vhi, nbins);
        let tl = ticks::labels(&tv);
        let tick_len = pt(3.5).round().max(1.0) as i64;
        for (v, s) in tv.iter().zip(tl) {
            let y = bf - (v - vlo) / (vhi - vlo) * (bf - tf);
            let yi = y.round() as i64;
            let y0 = (yi - line / 2).clamp(t - line, b);
            prims.push(Prim::Rect { x0: cx1 + line, y0, x1: cx1 + line + tick_len, y1: y0 + line, color: k });
            texts.push(Text {
                x: (cx1 + line + tick_len) as f64 + pt(3.5),
                y: y + (0.5 - BOX_DESCENT) * em10,
                text: s,
                em_px: em10,
                bold: false,
                anchor: Anchor::Start,
                vertical: false,
            });
        }
    }

    for tx in &texts {
        bounds.add_text(f, tx);
    }
    prims.extend(texts.into_iter().map(Prim::Text));

    // Tight crop: everything plus 0.1 inch; the size truncated to whole pixels as
    // matplotlib's canvas does, the origin rounded so that the frame stays on whole pixels.
    let pad = 0.1 * dpi;
    let ox = (bounds.x0 - pad).round();
    let oy = (bounds.y0 - pad).round();
    let width = (bounds.x1 - bounds.x0 + 2.0 * pad).floor().max(1.0) as u32;
    let height = (bounds.y1 - bounds.y0 + 2.0 * pad).floor().max(1.0) as u32;
    let (oxi, oyi) = (ox as i64, oy as i64);
    for p in &mut prims {
        match p {
            Prim::Rect { x0, y0, x1, y1, .. } | Prim::Gradient { x0, y0, x1, y1 } => {
                *x0 -= oxi;
                *x1 -= oxi;
                *y0 -= oyi;
                *y1 -= oyi;
            }
            Prim::Disc { cx, cy, .. } => {
                *cx -= ox;
                *cy -= oy;
            }
            Prim::Text(tx) => {
                tx.x -= ox;
                tx.y -= oy;
            }
            Prim::Layer { x, y } => {
                *x -= oxi;
                *y -= oyi;
            }
        }
    }
    let transform = PixelTransform { xmin, xmax, ymin, ymax, left: lf - ox, top: tf - oy, right: rf - ox, bottom: bf - oy };
    Ok(Layout {
        scene: Scene { width, height, dpi, prims },
        layer_width: (r - l) as usize,
        layer_height: (b - t) as usize,
        layer_transform,
        transform,
    })
}

/// The right-margin legend with its left edge at `x0`, centred on `cy`.
#[allow(clippy::too_many_arguments)]
fn legend(
    f: &Fonts,
    entries: &[(String, Rgb)],
    x0: f64,
    cy: f64,
    em: f64,
    marker_r: f64,
    prims: &mut Vec<Prim>,
    texts: &mut Vec<Text>,
    bounds: &mut Bounds,
) {
    let n = entries.len();
    let ncol = if n <= 14 { 1 } else if n <= 30 { 2 } else { 3 };
    // numpy's array_split: the first n % ncol columns get one more entry.
    let (base, extra) = (n / ncol, n % ncol);
    let mut columns = Vec::with_capacity(ncol);
    let mut start = 0;
    for c in 0..ncol {
        let len = base + usize::from(c < extra);
        columns.push(&entries[start..start + len]);
        start += len;
    }
    let nrows = columns.iter().map(|c| c.len()).max().unwrap_or(0);
    // Row height of a DejaVu Sans legend line in matplotlib (measured: 1.0325 em).
    let row_h = 1.0325 * em;
    let gap = 0.5 * em;
    let border = 0.4 * em;
    let height = 2.0 * border + nrows as f64 * row_h + nrows.saturating_sub(1) as f64 * gap;
    let top = cy - 0.5 * height;
    let mut x = x0 + border;
    for (ci, col) in columns.iter().enumerate() {
        let text_w = col.iter().map(|(s, _)| f.width(s, em, false)).fold(0.0, f64::max);
        for (ri, (label, color)) in col.iter().enumerate() {
            let row_top = top + border + ri as f64 * (row_h + gap);
            let baseline = row_top + row_h - BOX_DESCENT * em;
            prims.push(Prim::Disc { cx: x + em, cy: baseline - 0.33 * em, r: marker_r, color: *color });
            texts.push(Text {
                x: x + 2.8 * em,
                y: baseline,
                text: label.clone(),
                em_px: em,
                bold: false,
                anchor: Anchor::Start,
                vertical: false,
            });
        }
        x += 2.8 * em + text_w;
        if ci + 1 < columns.len() {
            x += 2.0 * em;
        }
    }
    bounds.add(x0, top, x + border, top + height);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::font::fonts;

    #[test]
    fn margins_are_five_percent() {
        let (a, b) = limits(0.0, 10.0);
        assert!((a + 0.5).abs() < 1e-12 && (b - 10.5).abs() < 1e-12);
        let (a, b) = limits(2.0, 2.0);
        assert!(a < 2.0 && b > 2.0);
    }

    #[test]
    fn default_figure_matches_matplotlib_geometry() {
        let legend: Vec<(String, Rgb)> = (0..5).map(|i| (format!("c{i}"), Rgb::BLACK)).collect();
        let input = LayoutInput {
            size: (4.0, 4.0, 100.0),
            title: "cluster",
            labels: Some(("UMAP1".into(), "UMAP2".into())),
            legend: &legend,
            on_data: &[],
            colorbar: None,
            frame: true,
            data: (0.0, 1.0, 0.0, 1.0),
        };
        let lay = layout(fonts().unwrap(), &input).unwrap();
        // matplotlib + bbox_inches="tight" gives 423 × 368 pixels for this figure.
        assert!((lay.scene.width as i64 - 423).abs() <= 4, "{}", lay.scene.width);
        assert!((lay.scene.height as i64 - 368).abs() <= 4, "{}", lay.scene.height);
        assert_eq!((lay.layer_width, lay.layer_height), (310, 308));
    }
}
