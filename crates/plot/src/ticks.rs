//! Colour-bar ticks: matplotlib's `MaxNLocator` (steps 1, 2, 2.5, 5, 10; at most `nbins`
//! intervals) and a label format close to its `ScalarFormatter`.

/// Tick values within [vmin, vmax] for at most `nbins` intervals, as matplotlib's
/// `MaxNLocator(nbins, steps=[1, 2, 2.5, 5, 10])` with at least two ticks shown.
pub fn ticks(vmin: f64, vmax: f64, nbins: usize) -> Vec<f64> {
    if vmax <= vmin || !vmin.is_finite() || !vmax.is_finite() {
        return vec![vmin];
    }
    let nbins = nbins.max(1) as f64;
    let dv = vmax - vmin;
    let meanv = 0.5 * (vmax + vmin);
    // matplotlib's scale_range: an offset when the values sit far from zero.
    let offset = if meanv.abs() / dv < 100.0 {
        0.0
    } else {
        10f64.powf(meanv.abs().log10().floor()).copysign(meanv)
    };
    let scale = 10f64.powf((dv / nbins).log10().floor());
    let (lo, hi) = (vmin - offset, vmax - offset);
    let raw_step = (hi - lo) / nbins;
    const STEPS: [f64; 10] = [0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 20.0];
    let steps: Vec<f64> = STEPS.iter().map(|s| s * scale).collect();
    let istep = steps.iter().position(|&s| s >= raw_step * (1.0 - 1e-10)).unwrap_or(steps.len() - 1);
    let mut best = Vec::new();
    for &step in steps[..=istep].iter().rev() {
        let base = (lo / step).floor() * step;
        let tol = 1e-10 * step.max(dv);
        let low = ((lo - base - tol) / step).ceil() as i64;
        let high = ((hi - base + tol) / step).floor() as i64;
        let t: Vec<f64> = (low..=high).map(|k| k as f64 * step + base + offset).collect();
        let inside: Vec<f64> = t.into_iter().filter(|&v| v >= vmin - tol && v <= vmax + tol).collect();
        let enough = inside.len() >= 2;
        best = inside;
        if enough {
            break;
        }
    }
    best
}

/// Labels for ticks: the fewest decimals that show every tick exactly (as matplotlib's
/// `ScalarFormatter` picks), scientific form for very large or small magnitudes, and the
/// Unicode minus sign matplotlib uses.
pub fn labels(ticks: &[f64]) -> Vec<String> {
    let max_abs = ticks.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let sci = max_abs >= 1e6 || (max_abs > 0.0 && max_abs < 1e-4);
    ticks
        .iter()
        .map(|&v| {
            let s = if sci {
                trim_sci(&format!("{v:.3e}"))
            } else {
                let mut d = 0;
                while d < 10 {
                    let p = 10f64.powi(d);
                    if ticks.iter().all(|t| ((t * p).round() - t * p).abs() < 1e-6 * p.max(1.0)) {
                        break;
                    }
                    d += 1;
                }
                let s = format!("{:.*}", d as usize, v);
                // "-0" and "-0.0" are shown as zero.
                if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') { s.trim_start_matches('-').to_string() } else { s }
            };
            s.replace('-', "\u{2212}")
        })
        .collect()
}

/// "1.500e6" → "1.5e6".
fn trim_sci(s: &str) -> String {
    match s.split_once('e') {
        Some((m, e)) => {
            let m = if m.contains('.') { m.trim_end_matches('0').trim_end_matches('.') } else { m };
            format!("{m}e{e}")
        }
        None => s.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn matches_matplotlib_on_examples() {
        // matplotlib's colour bar of the reference figure: -3.77..12.55 with 9 bins.
        let close = |a: Vec<f64>, b: &[f64]| {
            assert_eq!(a.len(), b.len(), "{a:?}");
            assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9), "{a:?}");
        };
        close(ticks(-3.772, 12.552, 9), &[-2.0, 0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0]);
        close(ticks(0.0, 1.0, 9), &[0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        close(ticks(1000.1, 1000.5, 9), &[1000.1, 1000.15, 1000.2, 1000.25, 1000.3, 1000.35, 1000.4, 1000.45, 1000.5]);
        assert_eq!(labels(&[0.0, 0.25, 0.5]), vec!["0.00", "0.25", "0.50"]);
        assert_eq!(labels(&[-2.0, 0.0, 2.0]), vec!["\u{2212}2", "0", "2"]);
        assert_eq!(labels(&[0.0, 2e6]), vec!["0e0", "2e6"]);
        assert_eq!(ticks(5.0, 5.0, 9), vec![5.0]);
    }
}
