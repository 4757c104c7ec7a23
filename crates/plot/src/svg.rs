//! Rendering a [`Scene`] as SVG: frame, legend, colour bar and text as vector elements, the
//! point layer as one embedded PNG `<image>` (as scanpy's `rasterized` scatter), so the file
//! stays small whatever the number of cells.

use std::fmt::Write;

use atlasflow_core::Result;
use base64::Engine;

use crate::output::encode_png;
use crate::palettes::VIRIDIS;
use crate::scene::{Anchor, Image, Prim, Scene};

/// The font families named in the SVG: DejaVu Sans is what the PNG is drawn with (and
/// matplotlib's default); viewers without it fall back to a sans-serif.
const FONT_FAMILY: &str = "'DejaVu Sans', 'Bitstream Vera Sans', sans-serif";

/// The SVG text of `scene`, embedding `layer` as a base64 PNG.
pub fn render(scene: &Scene, layer: &Image) -> Result<String> {
    let (w, h) = (scene.width, scene.height);
    let pt = |px: u32| f64::from(px) * 72.0 / scene.dpi;
    let mut s = String::new();
    // Writing to a String cannot fail; the results are ignored below for that reason.
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="utf-8" standalone="no"?>"#);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" version="1.1" width="{:.2}pt" height="{:.2}pt" viewBox="0 0 {w} {h}">"#,
        pt(w),
        pt(h)
    );
    let _ = writeln!(s, r##"<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>"##);
    for p in &scene.prims {
        match p {
            Prim::Rect { x0, y0, x1, y1, color } => {
                let _ = writeln!(
                    s,
                    r#"<rect x="{x0}" y="{y0}" width="{}" height="{}" fill="{}" shape-rendering="crispEdges"/>"#,
                    x1 - x0,
                    y1 - y0,
                    color.to_hex()
                );
            }
            Prim::Disc { cx, cy, r, color } => {
                let _ = writeln!(s, r#"<circle cx="{cx:.2}" cy="{cy:.2}" r="{r:.2}" fill="{}"/>"#, color.to_hex());
            }
            Prim::Text(t) => {
                let anchor = match t.anchor {
                    Anchor::Start => "start",
                    Anchor::Middle => "middle",
                    Anchor::End => "end",
                };
                let weight = if t.bold { r#" font-weight="bold""# } else { "" };
                let rotate = if t.vertical {
                    format!(r#" transform="rotate(-90 {:.2} {:.2})""#, t.x, t.y)
                } else {
                    String::new()
                };
                let _ = writeln!(
                    s,
                    r#"<text x="{:.2}" y="{:.2}" font-family="{FONT_FAMILY}" font-size="{:.2}px"{weight} text-anchor="{anchor}"{rotate}>{}</text>"#,
                    t.x,
                    t.y,
                    t.em_px,
                    escape(&t.text)
                );
            }
            Prim::Layer { x, y } => {
                let png = encode_png(layer, None)?;
                let b64 = base64::engine::general_purpose::STANDARD.encode(png);
                let _ = writeln!(
                    s,
                    r#"<image x="{x}" y="{y}" width="{}" height="{}" preserveAspectRatio="none" style="image-rendering:pixelated" xlink:href="data:image/png;base64,{b64}"/>"#,
                    layer.width, layer.height
                );
            }
            Prim::Gradient { x0, y0, x1, y1 } => {
                // 256 stops (one per viridis entry) as a vertical linear gradient.
                let _ = writeln!(s, r#"<defs><linearGradient id="viridis" x1="0" y1="1" x2="0" y2="0">"#);
                for (i, c) in VIRIDIS.iter().enumerate() {
                    let hex = crate::color::Rgb(*c).to_hex();
                    let _ = writeln!(s, r#"<stop offset="{:.5}" stop-color="{hex}"/><stop offset="{:.5}" stop-color="{hex}"/>"#, i as f64 / 256.0, (i + 1) as f64 / 256.0);
                }
                let _ = writeln!(s, "</linearGradient></defs>");
                let _ = writeln!(
                    s,
                    r#"<rect x="{x0}" y="{y0}" width="{}" height="{}" fill="url(#viridis)"/>"#,
                    x1 - x0,
                    y1 - y0
                );
            }
        }
    }
    let _ = writeln!(s, "</svg>");
    Ok(s)
}

/// Escape XML special characters in text content.
fn escape(t: &str) -> String {
    let mut o = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn escapes() {
        assert_eq!(super::escape("a<b & 'c'"), "a&lt;b &amp; &apos;c&apos;");
    }
}
