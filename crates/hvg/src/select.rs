//! The selection maths of `sc.pp.highly_variable_genes` for one batch, flavors "seurat" and
//! "cell_ranger" (semantics reference §3.1, §3.2), on per-gene means and variances that the
//! fit has already folded (scanpy's `_get_mean_var`, K1).
//!
//! Everything here is plain f64 arithmetic in the operation order of scanpy, pandas and
//! numpy, so ties (several genes with bit-identical normalized dispersions) come out as ties,
//! exactly as in scanpy:
//! - seurat bins are pandas `cut(means, n_bins)`: numpy `linspace` edges with the first edge
//!   lowered by 0.1 % of the range, right-closed intervals;
//! - per-bin mean (Kahan sum, as pandas' `groupby.mean`) and ddof-1 std (Welford, as pandas'
//!   `groupby.std`), NaN skipped; a bin with fewer than two non-NaN dispersions gets
//!   `dev = avg, avg = 0` (a lone gene's normalized dispersion is exactly 1);
//! - cell_ranger bins are `[-inf, P10, P15, …, P100, inf]` with numpy's linear-interpolation
//!   percentiles; duplicate edges are an error, as pandas' "Bin edges must be unique";
//!   per bin the NaN-skipping median and statsmodels' MAD (each |d − median| divided by
//!   0.6744897501960817 before the median; a NaN in the bin makes the MAD NaN);
//! - with `n_top_genes` the cutoff is the k-th largest non-NaN normalized dispersion and
//!   every gene at or above it is selected (ties select more than k genes).

use atlasflow_core::{Result, StageError};

/// Stage name used in errors.
pub const STAGE: &str = "highly_variable_genes";

/// statsmodels' MAD normalisation constant, Φ⁻¹(3/4) (scipy `norm.ppf(0.75)`).
pub const MAD_C: f64 = 0.6744897501960817;

/// How genes are selected once normalized dispersions are known.
#[derive(Clone, Debug, PartialEq)]
pub enum Cutoff {
    /// scanpy's `n_top_genes`: the genes whose normalized dispersion is at least the k-th
    /// largest (NaN never selected); the mean/dispersion bounds are ignored, as in scanpy.
    NTopGenes(usize),
    /// scanpy's cutoffs, all strict: `min_mean < means < max_mean` and
    /// `min_disp < nan_to_num(dispersions_norm) < max_disp`.
    Bounds {
        /// `min_mean` (default 0.0125).
        min_mean: f64,
        /// `max_mean` (default 3).
        max_mean: f64,
        /// `min_disp` (default 0.5).
        min_disp: f64,
        /// `max_disp` (default inf).
        max_disp: f64,
    },
}

/// Per-gene outputs, under scanpy's column names.
#[derive(Clone, Debug, PartialEq)]
pub struct HvgResult {
    /// var `means`: ln(1 + mean of expm1(X)) for seurat, the raw mean for cell_ranger (with a
    /// zero mean replaced by 1e-12 in both).
    pub means: Vec<f64>,
    /// var `dispersions`: ln(var/mean) for seurat (NaN where var/mean is 0 or negative),
    /// var/mean for cell_ranger.
    pub dispersions: Vec<f64>,
    /// var `dispersions_norm`, in f64 (scanpy stores it as f32 after selecting in f64).
    pub dispersions_norm: Vec<f64>,
    /// var `highly_variable`.
    pub highly_variable: Vec<bool>,
    /// The 0-based mean bin of each gene (scanpy's `mean_bin` category code); `None` for a
    /// NaN mean.
    pub mean_bin: Vec<Option<usize>>,
}

fn check_lengths(means: &[f64], vars: &[f64]) -> Result<()> {
    if means.len() != vars.len() {
        return Err(StageError::Batch(format!(
            "{STAGE}: {} means for {} variances",
            means.len(),
            vars.len()
        )));
    }
    if means.is_empty() {
        return Err(StageError::data(
            STAGE,
            "no genes to select from (pandas: cannot cut an empty array)",
        ));
    }
    Ok(())
}

/// Flavor "seurat" (§3.1) on K1 means and ddof-1 variances of expm1(X).
///
/// Errors: no genes; `n_bins` 0; an infinite mean (pandas refuses integer bins on infinite
/// data); `n_top_genes` 0, or given when every normalized dispersion is NaN.
pub fn seurat(
    mean_raw: &[f64],
    var_raw: &[f64],
    n_bins: usize,
    cutoff: &Cutoff,
) -> Result<HvgResult> {
    check_lengths(mean_raw, var_raw)?;
    if n_bins == 0 {
        return Err(StageError::param(
            STAGE,
            "n_bins",
            "must be a positive integer",
        ));
    }
    let mut means = Vec::with_capacity(mean_raw.len());
    let mut dispersions = Vec::with_capacity(mean_raw.len());
    for (&m, &v) in mean_raw.iter().zip(var_raw) {
        let m = if m == 0.0 { 1e-12 } else { m };
        let d = v / m;
        let d = if d == 0.0 { f64::NAN } else { d };
        dispersions.push(d.ln());
        means.push(m.ln_1p());
    }
    let edges = seurat_edges(&means, n_bins)?;
    let mean_bin = assign_bins(&means, &edges);
    let n_groups = edges.len().saturating_sub(1);
    let (avg, dev) = seurat_bin_stats(&dispersions, &mean_bin, n_groups);
    let dispersions_norm = normalize(&dispersions, &mean_bin, &avg, &dev);
    let highly_variable = select(&means, &dispersions_norm, cutoff)?;
    Ok(HvgResult {
        means,
        dispersions,
        dispersions_norm,
        highly_variable,
        mean_bin,
    })
}

/// Flavor "cell_ranger" (§3.2) on K1 means and ddof-1 variances of X as given.
///
/// Errors: no genes; duplicate percentile edges (pandas' "Bin edges must be unique", e.g.
/// more than ~10 % of the genes sharing one mean); NaN means; `n_top_genes` 0, or given
/// when every normalized dispersion is NaN.
pub fn cell_ranger(mean_raw: &[f64], var_raw: &[f64], cutoff: &Cutoff) -> Result<HvgResult> {
    check_lengths(mean_raw, var_raw)?;
    let means: Vec<f64> = mean_raw
        .iter()
        .map(|&m| if m == 0.0 { 1e-12 } else { m })
        .collect();
    let dispersions: Vec<f64> = means.iter().zip(var_raw).map(|(&m, &v)| v / m).collect();
    if let Some(j) = means.iter().position(|m| m.is_nan()) {
        return Err(StageError::data(
            STAGE,
            format!(
                "flavor cell_ranger: the mean of gene {j} is NaN, so its percentile bins are undefined"
            ),
        ));
    }
    let mut edges = vec![f64::NEG_INFINITY];
    let mut sorted = means.clone();
    sorted.sort_by(f64::total_cmp);
    for p in (10..=100).step_by(5) {
        edges.push(percentile_linear(&sorted, f64::from(p)));
    }
    edges.push(f64::INFINITY);
    for w in 1..edges.len() {
        if edges[w] == edges[w - 1] {
            let shared = means.iter().filter(|&&m| m == edges[w]).count();
            return Err(StageError::data(
                STAGE,
                format!(
                    "flavor cell_ranger: bin edges must be unique, but percentiles {} and {} of the \
                     gene means are both {:e} ({shared} of {} genes have that mean; pandas raises \
                     \"Bin edges must be unique\"). Filter unexpressed genes first or use flavor seurat",
                    5 * w,
                    5 * w + 5,
                    edges[w],
                    means.len()
                ),
            ));
        }
    }
    let mean_bin = assign_bins(&means, &edges);
    let n_groups = edges.len() - 1;
    let (avg, dev) = cell_ranger_bin_stats(&dispersions, &mean_bin, n_groups);
    let dispersions_norm = normalize(&dispersions, &mean_bin, &avg, &dev);
    let highly_variable = select(&means, &dispersions_norm, cutoff)?;
    Ok(HvgResult {
        means,
        dispersions,
        dispersions_norm,
        highly_variable,
        mean_bin,
    })
}

/// pandas `cut(x, bins=n_bins)` edges (right-closed): numpy linspace from min to max (NaN
/// ignored) with the first edge lowered by 0.1 % of the range, or ±0.1 % around a constant.
fn seurat_edges(means: &[f64], n_bins: usize) -> Result<Vec<f64>> {
    let finite: Vec<f64> = means.iter().copied().filter(|m| !m.is_nan()).collect();
    if finite.is_empty() {
        return Ok(Vec::new());
    }
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for &m in &finite {
        lo = lo.min(m);
        hi = hi.max(m);
    }
    if lo.is_infinite() || hi.is_infinite() {
        let j = means.iter().position(|m| m.is_infinite()).unwrap_or(0);
        return Err(StageError::data(
            STAGE,
            format!(
                "flavor seurat: the mean of gene {j} is infinite (expm1 overflow?); pandas cannot bin it"
            ),
        ));
    }
    if lo == hi {
        let lo2 = if lo != 0.0 {
            lo - 0.001 * lo.abs()
        } else {
            lo - 0.001
        };
        let hi2 = if hi != 0.0 {
            hi + 0.001 * hi.abs()
        } else {
            hi + 0.001
        };
        Ok(linspace(lo2, hi2, n_bins + 1))
    } else {
        let mut e = linspace(lo, hi, n_bins + 1);
        e[0] -= (hi - lo) * 0.001;
        Ok(e)
    }
}

/// numpy `linspace(start, stop, num)` with endpoint: `k·step + start`, last edge exactly
/// `stop` (and `k/div·delta + start` when the step underflows to 0).
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let div = num.saturating_sub(1);
    if div == 0 {
        return vec![start; num];
    }
    let delta = stop - start;
    let step = delta / div as f64;
    let mut y: Vec<f64> = (0..num)
        .map(|k| {
            let k = k as f64;
            if step == 0.0 {
                k / div as f64 * delta + start
            } else {
                k * step + start
            }
        })
        .collect();
    if let Some(last) = y.last_mut() {
        *last = stop;
    }
    y
}

/// Right-closed bin codes: `searchsorted(edges, x, side="left") − 1`, `None` outside
/// `(edges[0], edges[last]]` or for NaN.
fn assign_bins(x: &[f64], edges: &[f64]) -> Vec<Option<usize>> {
    x.iter()
        .map(|&v| {
            if v.is_nan() || edges.is_empty() {
                return None;
            }
            // first index with edges[i] >= v
            let i = edges.partition_point(|&e| e < v);
            if i == 0 || i == edges.len() {
                None
            } else {
                Some(i - 1)
            }
        })
        .collect()
}

/// numpy `percentile(sorted, p)` with the default "linear" method on an ascending,
/// NaN-free array.
fn percentile_linear(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    let q = p / 100.0;
    let virtual_index = (n as f64 - 1.0) * q;
    let (prev, next, gamma) = if virtual_index >= n as f64 - 1.0 {
        // numpy points both neighbours at the last element
        (n - 1, n - 1, virtual_index + 1.0)
    } else {
        let f = virtual_index.floor();
        let p = f as usize;
        (p, p + 1, virtual_index - f)
    };
    lerp(sorted[prev], sorted[next], gamma)
}

/// numpy's `_lerp`: `a + (b−a)·t`, or `b − (b−a)·(1−t)` when `t ≥ 0.5`.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// Group the non-NaN dispersions by bin, in gene order.
fn grouped(disp: &[f64], bins: &[Option<usize>], n_groups: usize) -> (Vec<Vec<f64>>, Vec<bool>) {
    let mut groups = vec![Vec::new(); n_groups];
    let mut has_nan = vec![false; n_groups];
    for (&d, b) in disp.iter().zip(bins) {
        if let Some(b) = *b {
            if d.is_nan() {
                has_nan[b] = true;
            } else {
                groups[b].push(d);
            }
        }
    }
    (groups, has_nan)
}

/// pandas groupby mean (Kahan-compensated sum, NaN skipped) and std (Welford, ddof 1), then
/// scanpy's single-gene rule: where the std is NaN, dev ← avg and avg ← 0.
fn seurat_bin_stats(disp: &[f64], bins: &[Option<usize>], n_groups: usize) -> (Vec<f64>, Vec<f64>) {
    let (groups, _) = grouped(disp, bins, n_groups);
    let mut avg = Vec::with_capacity(n_groups);
    let mut dev = Vec::with_capacity(n_groups);
    for g in &groups {
        let (mut sum, mut comp) = (0.0f64, 0.0f64);
        let (mut wmean, mut m2) = (0.0f64, 0.0f64);
        for (i, &v) in g.iter().enumerate() {
            let y = v - comp;
            let t = sum + y;
            comp = t - sum - y;
            if !comp.is_finite() {
                comp = 0.0;
            }
            sum = t;
            let old = wmean;
            wmean += (v - old) / (i + 1) as f64;
            m2 += (v - old) * (v - wmean);
        }
        let n = g.len();
        let a = if n == 0 { f64::NAN } else { sum / n as f64 };
        let s = if n > 1 {
            (m2 / (n - 1) as f64).sqrt()
        } else {
            f64::NAN
        };
        if s.is_nan() {
            avg.push(0.0);
            dev.push(a);
        } else {
            avg.push(a);
            dev.push(s);
        }
    }
    (avg, dev)
}

/// The median of an ascending NaN-free slice (numpy/pandas: mean of the two middle values).
fn median_sorted(s: &[f64]) -> f64 {
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// pandas groupby median (NaN skipped) and statsmodels MAD (NaN propagates).
fn cell_ranger_bin_stats(
    disp: &[f64],
    bins: &[Option<usize>],
    n_groups: usize,
) -> (Vec<f64>, Vec<f64>) {
    let (groups, has_nan) = grouped(disp, bins, n_groups);
    let mut avg = Vec::with_capacity(n_groups);
    let mut dev = Vec::with_capacity(n_groups);
    for (g, nan) in groups.iter().zip(has_nan) {
        let mut s = g.clone();
        s.sort_by(f64::total_cmp);
        let med = median_sorted(&s);
        avg.push(med);
        if nan {
            dev.push(f64::NAN);
            continue;
        }
        let mut err: Vec<f64> = g.iter().map(|&d| (d - med).abs() / MAD_C).collect();
        if err.iter().any(|e| e.is_nan()) {
            dev.push(f64::NAN);
            continue;
        }
        err.sort_by(f64::total_cmp);
        dev.push(median_sorted(&err));
    }
    (avg, dev)
}

fn normalize(disp: &[f64], bins: &[Option<usize>], avg: &[f64], dev: &[f64]) -> Vec<f64> {
    disp.iter()
        .zip(bins)
        .map(|(&d, b)| match *b {
            Some(b) => (d - avg[b]) / dev[b],
            None => f64::NAN,
        })
        .collect()
}

/// numpy `nan_to_num`: NaN → 0, ±inf → ±f64::MAX.
fn nan_to_num(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else if x == f64::INFINITY {
        f64::MAX
    } else if x == f64::NEG_INFINITY {
        f64::MIN
    } else {
        x
    }
}

/// The selection step (§3.1 step 9), shared by both flavors.
fn select(means: &[f64], norm: &[f64], cutoff: &Cutoff) -> Result<Vec<bool>> {
    match *cutoff {
        Cutoff::Bounds {
            min_mean,
            max_mean,
            min_disp,
            max_disp,
        } => Ok(means
            .iter()
            .zip(norm)
            .map(|(&m, &d)| {
                let d = nan_to_num(d);
                m > min_mean && m < max_mean && d > min_disp && d < max_disp
            })
            .collect()),
        Cutoff::NTopGenes(k) => {
            if k == 0 {
                return Err(StageError::param(
                    STAGE,
                    "n_top_genes",
                    "must be at least 1",
                ));
            }
            let mut vals: Vec<f64> = norm.iter().copied().filter(|v| !v.is_nan()).collect();
            if vals.is_empty() {
                return Err(StageError::data(
                    STAGE,
                    "every normalized dispersion is NaN (constant or unexpressed genes only): \
                     no gene can be ranked for n_top_genes",
                ));
            }
            let k = k.min(norm.len()).min(vals.len());
            vals.sort_by(|a, b| b.total_cmp(a));
            let cut = vals[k - 1];
            Ok(norm
                .iter()
                .map(|&v| (if v.is_nan() { f64::NEG_INFINITY } else { v }) >= cut)
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_matches_numpy() {
        // np.linspace(0.1, 2.3, 5) == [0.1, 0.6499999999999999, 1.2, 1.75, 2.3]
        assert_eq!(
            linspace(0.1, 2.3, 5),
            vec![0.1, 0.6499999999999999, 1.2, 1.75, 2.3]
        );
    }

    #[test]
    fn percentile_matches_numpy() {
        // np.percentile([0.5, 1., 3., 7., 8.], [10, 15, 55, 100])
        // == [0.7, 0.8, 3.8000000000000007, 8.0]
        let s = [0.5, 1.0, 3.0, 7.0, 8.0];
        assert_eq!(percentile_linear(&s, 10.0), 0.7);
        assert_eq!(percentile_linear(&s, 15.0), 0.8);
        assert_eq!(percentile_linear(&s, 55.0), 3.8000000000000007);
        assert_eq!(percentile_linear(&s, 100.0), 8.0);
    }

    #[test]
    fn right_closed_bins() {
        let e = [0.0, 1.0, 2.0];
        assert_eq!(
            assign_bins(&[0.0, 0.5, 1.0, 1.5, 2.0, 2.5, f64::NAN], &e),
            vec![None, Some(0), Some(0), Some(1), Some(1), None, None]
        );
    }

    #[test]
    fn constant_means_use_widened_edges() {
        // pandas.cut([2., 2., 2.], 2) edges: [1.998, 2.0, 2.002]
        let e = seurat_edges(&[2.0, 2.0, 2.0], 2).expect("edges");
        assert_eq!(e, vec![1.998, 2.0, 2.002]);
    }

    #[test]
    fn ntop_zero_and_all_nan_are_errors() {
        let m = [0.0, 0.0];
        assert!(seurat(&m, &m, 20, &Cutoff::NTopGenes(0)).is_err());
        assert!(seurat(&m, &m, 20, &Cutoff::NTopGenes(1)).is_err());
        assert!(seurat(&[], &[], 20, &Cutoff::NTopGenes(1)).is_err());
        assert!(seurat(&[1.0], &[1.0], 0, &Cutoff::NTopGenes(1)).is_err());
    }
}
