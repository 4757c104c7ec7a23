//! The continuous colour scale: bounds (scanpy's `vmin`/`vmax`, values or percentiles),
//! matplotlib's `Normalize` and the viridis lookup.

use atlasflow_core::{Result, StageError};
use rayon::prelude::*;

use crate::color::Rgb;
use crate::palettes::VIRIDIS;
use crate::params::{STAGE, VBound};

/// A linear map of values onto viridis between `vmin` and `vmax`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ColorScale {
    /// Value drawn with the first colour.
    pub vmin: f64,
    /// Value drawn with the last colour.
    pub vmax: f64,
}

impl ColorScale {
    /// Bounds from the parameters, else the minimum and maximum of the non-missing values
    /// (matplotlib's autoscale). All values missing gives [0, 1].
    pub fn new(values: &[f64], vmin: Option<VBound>, vmax: Option<VBound>) -> Result<ColorScale> {
        let percentiles = matches!(vmin, Some(VBound::Percentile(_))) || matches!(vmax, Some(VBound::Percentile(_)));
        let sorted: Vec<f64> = if percentiles {
            let mut f: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
            f.par_sort_unstable_by(f64::total_cmp);
            f
        } else {
            Vec::new()
        };
        let (min, max) = values
            .iter()
            .filter(|v| !v.is_nan())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let bound = |b: Option<VBound>, is_min: bool| -> f64 {
            match b {
                Some(VBound::Value(v)) => v,
                Some(VBound::Percentile(q)) => percentile(&sorted, q),
                None if min > max => if is_min { 0.0 } else { 1.0 },
                None => if is_min { min } else { max },
            }
        };
        let lo = bound(vmin, true);
        let hi = bound(vmax, false);
        let (lo, hi) = (if lo.is_nan() { 0.0 } else { lo }, if hi.is_nan() { 1.0 } else { hi });
        if lo > hi {
            return Err(StageError::param(STAGE, "vmin", format!("vmin {lo} is above vmax {hi}")));
        }
        Ok(ColorScale { vmin: lo, vmax: hi })
    }

    /// The viridis index of a value (matplotlib: `floor(x · 256)`, clipped to the ends, so
    /// values beyond the bounds take the end colours); None for missing.
    pub fn index(&self, v: f64) -> Option<u8> {
        if v.is_nan() {
            return None;
        }
        if self.vmax == self.vmin {
            return Some(0); // matplotlib's Normalize maps a singular range to 0
        }
        let x = (v - self.vmin) / (self.vmax - self.vmin);
        Some((x * 256.0).floor().clamp(0.0, 255.0) as u8)
    }

    /// The colour of a value, `na` when missing.
    pub fn color(&self, v: f64, na: Rgb) -> Rgb {
        self.index(v).map_or(na, |i| Rgb(VIRIDIS[i as usize]))
    }

    /// The range the colour bar spans: the bounds, widened as matplotlib's `nonsingular`
    /// does (by 10 %) when they coincide.
    pub fn bar_range(&self) -> (f64, f64) {
        if self.vmax > self.vmin {
            (self.vmin, self.vmax)
        } else if self.vmin == 0.0 {
            (-0.1, 0.1)
        } else {
            let d = 0.1 * self.vmin.abs();
            (self.vmin - d, self.vmin + d)
        }
    }
}

/// numpy's `percentile` (linear interpolation) of ascending `sorted`; NaN when empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_indices() {
        let v = [f64::NAN, 0.0, 1.0, 2.0, 4.0];
        let s = ColorScale::new(&v, None, None).unwrap();
        assert_eq!((s.vmin, s.vmax), (0.0, 4.0));
        assert_eq!(s.index(4.0), Some(255));
        assert_eq!(s.index(0.0), Some(0));
        assert_eq!(s.index(2.0), Some(128));
        assert_eq!(s.index(f64::NAN), None);
        assert_eq!(s.color(4.0, Rgb::BLACK), Rgb([0xfd, 0xe7, 0x25])); // viridis yellow
        // np.percentile([0, 1, 2, 4], 50) == 1.5
        let s = ColorScale::new(&v, None, Some(VBound::Percentile(50.0))).unwrap();
        assert_eq!(s.vmax, 1.5);
        assert_eq!(s.index(3.0), Some(255));
        assert!(ColorScale::new(&v, Some(VBound::Value(5.0)), Some(VBound::Value(1.0))).is_err());
        let flat = ColorScale::new(&[2.0, 2.0], None, None).unwrap();
        assert_eq!(flat.index(2.0), Some(0));
        assert_eq!(flat.bar_range(), (1.8, 2.2));
    }
}
