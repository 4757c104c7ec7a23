//! The bundled fonts: DejaVu Sans and DejaVu Sans Bold, matplotlib's default family, so
//! text looks as in scanpy and no system font is needed (assets/LICENSE_DEJAVU: Bitstream
//! Vera licence plus public-domain DejaVu changes, as shipped inside matplotlib).

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, Glyph, PxScale, ScaleFont, point};
use atlasflow_core::{Result, StageError};

use crate::params::STAGE;

static REGULAR_TTF: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static BOLD_TTF: &[u8] = include_bytes!("../assets/DejaVuSans-Bold.ttf");

/// The two faces.
pub struct Fonts {
    regular: FontRef<'static>,
    bold: FontRef<'static>,
}

/// The parsed fonts (parsed once).
pub fn fonts() -> Result<&'static Fonts> {
    static FONTS: OnceLock<Option<Fonts>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            Some(Fonts {
                regular: FontRef::try_from_slice(REGULAR_TTF).ok()?,
                bold: FontRef::try_from_slice(BOLD_TTF).ok()?,
            })
        })
        .as_ref()
        .ok_or_else(|| StageError::data(STAGE, "the bundled DejaVu Sans font failed to parse"))
}

/// Fraction of the em above the baseline in a text box (matplotlib's box of one line of
/// DejaVu Sans is one em high with the baseline 0.764 em below its top).
pub const BOX_ASCENT: f64 = 0.764;
/// Fraction of the em below the baseline in a text box.
pub const BOX_DESCENT: f64 = 0.236;

impl Fonts {
    fn face(&self, bold: bool) -> &FontRef<'static> {
        if bold { &self.bold } else { &self.regular }
    }

    /// ab_glyph's scale for a size given as pixels per em.
    fn scale(&self, bold: bool, em_px: f64) -> PxScale {
        let f = self.face(bold);
        let upem = f.units_per_em().unwrap_or(2048.0);
        PxScale::from((em_px as f32) * f.height_unscaled() / upem)
    }

    /// Glyphs of `text` laid out from `x` on `baseline`, with advances and kerning.
    pub fn layout(&self, text: &str, em_px: f64, bold: bool, x: f64, baseline: f64) -> Vec<Glyph> {
        let face = self.face(bold);
        let scale = self.scale(bold, em_px);
        let scaled = face.as_scaled(scale);
        let mut caret = x as f32;
        let mut prev = None;
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars() {
            let id = face.glyph_id(c);
            if let Some(p) = prev {
                caret += scaled.kern(p, id);
            }
            out.push(id.with_scale_and_position(scale, point(caret, baseline as f32)));
            caret += scaled.h_advance(id);
            prev = Some(id);
        }
        out
    }

    /// Advance width of `text` in pixels.
    pub fn width(&self, text: &str, em_px: f64, bold: bool) -> f64 {
        let face = self.face(bold);
        let scaled = face.as_scaled(self.scale(bold, em_px));
        let mut w = 0.0f32;
        let mut prev = None;
        for c in text.chars() {
            let id = face.glyph_id(c);
            if let Some(p) = prev {
                w += scaled.kern(p, id);
            }
            w += scaled.h_advance(id);
            prev = Some(id);
        }
        f64::from(w)
    }

    /// Call `put(x, y, coverage)` for the pixels of `glyphs`, coverage in [0, 1].
    pub fn rasterize(&self, glyphs: &[Glyph], bold: bool, mut put: impl FnMut(i64, i64, f32)) {
        let face = self.face(bold);
        for g in glyphs {
            if let Some(og) = face.outline_glyph(g.clone()) {
                let b = og.px_bounds();
                let (x0, y0) = (b.min.x as i64, b.min.y as i64);
                og.draw(|x, y, c| put(x0 + i64::from(x), y0 + i64::from(y), c));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn measures_like_matplotlib() {
        let f = fonts().unwrap();
        // matplotlib: "UMAP1" at 10 pt, 100 dpi is 49 px wide.
        let w = f.width("UMAP1", 10.0 * 100.0 / 72.0, false);
        assert!((w - 49.0).abs() < 1.5, "{w}");
        assert!(f.width("UMAP1", 13.9, true) > w);
        let mut n = 0;
        f.rasterize(&f.layout("A", 20.0, false, 0.0, 20.0), false, |_, _, c| if c > 0.5 { n += 1 });
        assert!(n > 20);
    }
}
