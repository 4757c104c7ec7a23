//! Rendering a [`Scene`] into pixels (the PNG output).

use atlasflow_core::Result;

use crate::color::Rgb;
use crate::font::{Fonts, fonts};
use crate::palettes::VIRIDIS;
use crate::scene::{Anchor, Image, Prim, Scene, Text};

/// Draw `scene` on a white image, with `layer` (the points) at its [`Prim::Layer`].
pub fn render(scene: &Scene, layer: &Image) -> Result<Image> {
    let f = fonts()?;
    let mut img = Image::white(scene.width as usize, scene.height as usize);
    for p in &scene.prims {
        match p {
            Prim::Rect { x0, y0, x1, y1, color } => {
                for y in *y0..*y1 {
                    for x in *x0..*x1 {
                        img.blend(x, y, *color, 255);
                    }
                }
            }
            Prim::Disc { cx, cy, r, color } => disc(&mut img, *cx, *cy, *r, *color),
            Prim::Text(t) => text(&mut img, f, t),
            Prim::Layer { x, y } => blit(&mut img, layer, *x, *y),
            Prim::Gradient { x0, y0, x1, y1 } => {
                let h = (y1 - y0).max(1) as f64;
                for y in *y0..*y1 {
                    // Fraction of the bar below this row's centre.
                    let f = ((*y1 as f64) - (y as f64 + 0.5)) / h;
                    let c = Rgb(VIRIDIS[(f * 256.0).floor().clamp(0.0, 255.0) as usize]);
                    for x in *x0..*x1 {
                        img.blend(x, y, c, 255);
                    }
                }
            }
        }
    }
    Ok(img)
}

/// Copy `layer` onto `img` with its top-left corner at (x, y).
fn blit(img: &mut Image, layer: &Image, x: i64, y: i64) {
    for ly in 0..layer.height {
        let ty = y + ly as i64;
        if ty < 0 || ty >= img.height as i64 {
            continue;
        }
        for lx in 0..layer.width {
            img.blend(x + lx as i64, ty, layer.pixel(lx, ly), 255);
        }
    }
}

/// An anti-aliased disc: coverage falls linearly over the pixel straddling the edge.
pub fn disc(img: &mut Image, cx: f64, cy: f64, r: f64, c: Rgb) {
    let (x0, x1) = ((cx - r - 1.0).floor() as i64, (cx + r + 1.0).ceil() as i64);
    let (y0, y1) = ((cy - r - 1.0).floor() as i64, (cy + r + 1.0).ceil() as i64);
    for y in y0..=y1 {
        for x in x0..=x1 {
            let d = ((x as f64 + 0.5 - cx).powi(2) + (y as f64 + 0.5 - cy).powi(2)).sqrt();
            let cov = (r + 0.5 - d).clamp(0.0, 1.0);
            img.blend(x, y, c, (cov * 255.0).round() as u32);
        }
    }
}

/// Draw one line of black text.
fn text(img: &mut Image, f: &Fonts, t: &Text) {
    let w = f.width(&t.text, t.em_px, t.bold);
    let shift = match t.anchor {
        Anchor::Start => 0.0,
        Anchor::Middle => -w / 2.0,
        Anchor::End => -w,
    };
    if !t.vertical {
        let glyphs = f.layout(&t.text, t.em_px, t.bold, t.x + shift, t.y);
        f.rasterize(&glyphs, t.bold, |x, y, c| img.blend(x, y, Rgb::BLACK, cov(c)));
        return;
    }
    // Vertical text: lay it out horizontally about the origin and rotate each pixel by 90°
    // counter-clockwise: (u, v) → (x + v, y − u), where u runs along the text from the
    // anchor and v down from the baseline.
    let glyphs = f.layout(&t.text, t.em_px, t.bold, shift, 0.0);
    let (bx, by) = (t.x.round() as i64, t.y.round() as i64);
    f.rasterize(&glyphs, t.bold, |u, v, c| img.blend(bx + v, by - u - 1, Rgb::BLACK, cov(c)));
}

/// Glyph coverage in [0, 1] as 0–255.
fn cov(c: f32) -> u32 {
    (c.clamp(0.0, 1.0) * 255.0).round() as u32
}
