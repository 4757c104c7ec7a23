//! The figure as a list of drawing primitives in output pixels (origin top left, y down),
//! which the PNG and SVG writers render the same way: [`crate::raster`] into pixels,
//! [`crate::svg`] into vector elements.

use crate::color::Rgb;

/// Horizontal anchoring of a text at its position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// The text starts at x.
    Start,
    /// The text is centred on x.
    Middle,
    /// The text ends at x.
    End,
}

/// One line of text.
#[derive(Clone, Debug, PartialEq)]
pub struct Text {
    /// Anchor x.
    pub x: f64,
    /// Baseline y (for vertical text: the baseline's x is `x` and `y` the anchor).
    pub y: f64,
    /// The string.
    pub text: String,
    /// Size in pixels per em.
    pub em_px: f64,
    /// Bold face.
    pub bold: bool,
    /// Anchoring along the text direction.
    pub anchor: Anchor,
    /// Rotated 90° counter-clockwise (reads upwards), as matplotlib's y label.
    pub vertical: bool,
}

/// A drawing primitive.
#[derive(Clone, Debug, PartialEq)]
pub enum Prim {
    /// A filled rectangle [x0, x1) × [y0, y1) on whole pixels (frame lines, ticks).
    Rect {
        /// Left.
        x0: i64,
        /// Top.
        y0: i64,
        /// Right (exclusive).
        x1: i64,
        /// Bottom (exclusive).
        y1: i64,
        /// Fill.
        color: Rgb,
    },
    /// A filled, anti-aliased disc (legend markers).
    Disc {
        /// Centre x.
        cx: f64,
        /// Centre y.
        cy: f64,
        /// Radius in pixels.
        r: f64,
        /// Fill.
        color: Rgb,
    },
    /// Text in black.
    Text(Text),
    /// The rasterised point layer, its top-left corner here.
    Layer {
        /// Left.
        x: i64,
        /// Top.
        y: i64,
    },
    /// The colour bar: viridis from the bottom (first colour) to the top (last colour).
    Gradient {
        /// Left.
        x0: i64,
        /// Top.
        y0: i64,
        /// Right (exclusive).
        x1: i64,
        /// Bottom (exclusive).
        y1: i64,
    },
}

/// The whole figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Scene {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Dots per inch (for the SVG's physical size).
    pub dpi: f64,
    /// Primitives, drawn in order.
    pub prims: Vec<Prim>,
}

/// An RGB image, row-major, 3 bytes per pixel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width × height × 3` bytes.
    pub data: Vec<u8>,
}

impl Image {
    /// A white image.
    pub fn white(width: usize, height: usize) -> Image {
        Image { width, height, data: vec![255; width * height * 3] }
    }

    /// The pixel at (x, y).
    pub fn pixel(&self, x: usize, y: usize) -> Rgb {
        let i = (y * self.width + x) * 3;
        Rgb([self.data[i], self.data[i + 1], self.data[i + 2]])
    }

    /// Blend `c` over the pixel (x, y) with coverage `a` (0–255); outside pixels are ignored.
    #[inline]
    pub fn blend(&mut self, x: i64, y: i64, c: Rgb, a: u32) {
        if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 || a == 0 {
            return;
        }
        let i = (y as usize * self.width + x as usize) * 3;
        let px = &mut self.data[i..i + 3];
        if a >= 255 {
            px.copy_from_slice(&c.0);
        } else {
            for (d, s) in px.iter_mut().zip(c.0) {
                *d = ((u32::from(s) * a + u32::from(*d) * (255 - a) + 127) / 255) as u8;
            }
        }
    }
}
