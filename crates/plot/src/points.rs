//! The point layer: every cell stamped as a disc into a pixel buffer, in draw order.
//!
//! Hand-written because no plotting crate draws tens of millions of markers in seconds:
//! positions and colours are computed in parallel (order-preserving), then one sequential
//! pass stamps a precomputed anti-aliased disc per point (16 sub-pixel phases), with no
//! allocation per point. The result depends only on the draw order, never on threads.
//! Blending is integer arithmetic, so the bytes are the same on every machine.

use atlasflow_core::Embedding;
use rayon::prelude::*;

use crate::color::Rgb;
use crate::scene::Image;

/// Sub-pixel resolution of point centres (per axis).
const PHASES: i64 = 4;

/// The affine map from data coordinates to layer pixels (continuous coordinates: pixel
/// (i, j) covers [i, i+1) × [j, j+1)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerTransform {
    /// Data x at the layer's left edge.
    pub xmin: f64,
    /// Data y at the layer's top edge.
    pub ymax: f64,
    /// Pixels per data unit along x.
    pub sx: f64,
    /// Pixels per data unit along y (downwards).
    pub sy: f64,
}

impl LayerTransform {
    /// Layer pixel coordinates of data point (x, y).
    #[inline]
    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        ((x - self.xmin) * self.sx, (self.ymax - y) * self.sy)
    }
}

/// A disc footprint for each sub-pixel phase: (dx, dy, coverage 0–255) around the pixel
/// holding the centre.
struct Stamps {
    phases: Vec<Vec<(i32, i32, u8)>>,
}

impl Stamps {
    /// Discs of `diameter` pixels. Below 1.5 px a disc is a single full pixel, so that
    /// millions of tiny points stay visible (matplotlib would draw them faint).
    fn new(diameter: f64) -> Stamps {
        let r = diameter / 2.0;
        if diameter < 1.5 {
            return Stamps { phases: vec![vec![(0, 0, 255)]; (PHASES * PHASES) as usize] };
        }
        let k = r.ceil() as i32 + 1;
        let mut phases = Vec::with_capacity((PHASES * PHASES) as usize);
        for py in 0..PHASES {
            for px in 0..PHASES {
                // Centre within its pixel, at the middle of the phase's sub-cell.
                let cx = (px as f64 + 0.5) / PHASES as f64;
                let cy = (py as f64 + 0.5) / PHASES as f64;
                let mut s = Vec::new();
                for dy in -k..=k {
                    for dx in -k..=k {
                        let d = ((f64::from(dx) + 0.5 - cx).powi(2) + (f64::from(dy) + 0.5 - cy).powi(2)).sqrt();
                        let a = ((r + 0.5 - d).clamp(0.0, 1.0) * 255.0).round() as u8;
                        if a > 0 {
                            s.push((dx, dy, a));
                        }
                    }
                }
                phases.push(s);
            }
        }
        Stamps { phases }
    }
}

/// One point ready to stamp: centre in 1/PHASES pixels, colour and draw bucket.
#[derive(Clone, Copy, Default)]
struct Placed {
    qx: i32,
    qy: i32,
    color: Rgb,
    bucket: u16,
}

/// Draw the cells of `emb` (columns `dims`) on a white `width × height` layer, each a disc
/// of `diameter` pixels. `style(cell)` gives the cell's draw bucket (< `n_buckets`) and
/// colour: buckets are drawn in increasing order, cells within a bucket in cell order
/// (see [`crate::order`]). The bucketing is a counting sort over the placed points, so
/// nothing is read out of order: ten million points take well under a second.
#[allow(clippy::too_many_arguments)]
pub fn draw(
    emb: &Embedding,
    dims: (usize, usize),
    n_buckets: usize,
    style: &(dyn Fn(usize) -> (u16, Rgb) + Sync),
    t: &LayerTransform,
    diameter: f64,
    width: usize,
    height: usize,
) -> Image {
    let n_buckets = n_buckets.max(1);
    let placed: Vec<Placed> = (0..emb.n_rows())
        .into_par_iter()
        .with_min_len(1 << 14)
        .map(|i| {
            let row = emb.row(i);
            let (u, v) = t.apply(f64::from(row[dims.0]), f64::from(row[dims.1]));
            // Clamp far outside values so the conversion cannot overflow (they are clipped anyway).
            let q = |c: f64| (c * PHASES as f64).floor().clamp(-1e9, 1e9) as i32;
            let (bucket, color) = style(i);
            Placed { qx: q(u), qy: q(v), color, bucket: bucket.min(n_buckets as u16 - 1) }
        })
        .collect();
    let placed = if n_buckets == 1 { placed } else { bucket_sort(placed, n_buckets) };
    let mut img = Image::white(width, height);
    if diameter > MAX_STAMP {
        // Few, large discs: compute each pixel's coverage directly, within the layer only.
        for p in &placed {
            let c = |q: i32| (f64::from(q) + 0.5) / PHASES as f64;
            disc_direct(&mut img, c(p.qx), c(p.qy), diameter / 2.0, p.color);
        }
        return img;
    }
    let stamps = Stamps::new(diameter);
    let (w, h) = (width as i64, height as i64);
    for p in &placed {
        let (cx, cy) = (i64::from(p.qx).div_euclid(PHASES), i64::from(p.qy).div_euclid(PHASES));
        let phase = i64::from(p.qy).rem_euclid(PHASES) * PHASES + i64::from(p.qx).rem_euclid(PHASES);
        for &(dx, dy, a) in &stamps.phases[phase as usize] {
            let (x, y) = (cx + i64::from(dx), cy + i64::from(dy));
            if x >= 0 && y >= 0 && x < w && y < h {
                img.blend(x, y, p.color, u32::from(a));
            }
        }
    }
    img
}

/// Diameter in pixels above which discs are not precomputed (16 phases of a large disc
/// would take much memory, and large discs mean few points).
const MAX_STAMP: f64 = 64.0;

/// An anti-aliased disc computed pixel by pixel, clipped to the image.
fn disc_direct(img: &mut Image, cx: f64, cy: f64, r: f64, c: Rgb) {
    let clip = |v: f64, hi: usize| v.clamp(0.0, hi as f64) as i64;
    let (x0, x1) = (clip((cx - r - 1.0).floor(), img.width), clip((cx + r + 1.0).ceil(), img.width));
    let (y0, y1) = (clip((cy - r - 1.0).floor(), img.height), clip((cy + r + 1.0).ceil(), img.height));
    for y in y0..y1 {
        let dy2 = (y as f64 + 0.5 - cy).powi(2);
        for x in x0..x1 {
            let d = ((x as f64 + 0.5 - cx).powi(2) + dy2).sqrt();
            let a = ((r + 0.5 - d).clamp(0.0, 1.0) * 255.0).round() as u32;
            img.blend(x, y, c, a);
        }
    }
}

/// Stable counting sort of the points by bucket.
fn bucket_sort(placed: Vec<Placed>, n_buckets: usize) -> Vec<Placed> {
    let mut start = vec![0usize; n_buckets + 1];
    for p in &placed {
        start[p.bucket as usize + 1] += 1;
    }
    for b in 0..n_buckets {
        start[b + 1] += start[b];
    }
    let mut out = vec![Placed::default(); placed.len()];
    for p in placed {
        let slot = &mut start[p.bucket as usize];
        out[*slot] = p;
        *slot += 1;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stamps_cover_the_centre_and_are_round() {
        let s = Stamps::new(10.0);
        for ph in &s.phases {
            assert!(ph.iter().any(|&(dx, dy, a)| dx == 0 && dy == 0 && a == 255));
            let full = ph.iter().filter(|e| e.2 == 255).count();
            // Area of a disc of diameter 10 is ~78.5 pixels.
            assert!((60..=90).contains(&full), "{full}");
        }
        assert_eq!(Stamps::new(0.2).phases[5], vec![(0, 0, 255)]);
    }

    #[test]
    fn later_points_cover_earlier_ones() {
        let emb = Embedding { values: vec![1.0, 1.0, 1.0, 1.0], width: 2 };
        let t = LayerTransform { xmin: 0.0, ymax: 2.0, sx: 5.0, sy: 5.0 };
        let colors = [Rgb([255, 0, 0]), Rgb([0, 0, 255])];
        let img = draw(&emb, (0, 1), 1, &|i| (0, colors[i]), &t, 4.0, 10, 10);
        assert_eq!(img.pixel(5, 5), Rgb([0, 0, 255]));
        // Cell 1 in an earlier bucket: cell 0 ends on top.
        let img = draw(&emb, (0, 1), 2, &|i| (1 - i as u16, colors[i]), &t, 4.0, 10, 10);
        assert_eq!(img.pixel(5, 5), Rgb([255, 0, 0]));
        assert_eq!(img.pixel(0, 0), Rgb::WHITE);
    }

    #[test]
    fn huge_discs_are_drawn_directly_and_clipped() {
        let emb = Embedding { values: vec![1.0, 1.0], width: 2 };
        let t = LayerTransform { xmin: 0.0, ymax: 2.0, sx: 5.0, sy: 5.0 };
        let img = draw(&emb, (0, 1), 1, &|_| (0, Rgb::BLACK), &t, 1e9, 10, 10);
        assert!(img.data.iter().all(|&b| b == 0));
        let img = draw(&emb, (0, 1), 1, &|_| (0, Rgb::BLACK), &t, 100.0, 10, 10);
        assert_eq!(img.pixel(9, 9), Rgb::BLACK);
    }
}
