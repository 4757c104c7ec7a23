//! The order points are drawn in, as scanpy's `embedding` orders them with `sort_order`:
//!
//! - continuous: `np.argsort(-values, kind="stable")[::-1]`, i.e. missing values first (in
//!   reverse cell order), then values ascending so the highest end on top, equal values in
//!   reverse cell order;
//! - categorical: `np.argsort(~isnull, kind="stable")`, missing values first, then all
//!   others, each in cell order;
//! - without `sort_order` or without colour: cell order.
//!
//! Drawing uses the equivalent bucket form ([`continuous_bucket`], [`categorical_bucket`]):
//! points are drawn bucket by bucket, in cell order within a bucket. For categories that is
//! exactly scanpy's order. For continuous values a bucket is one viridis colour (missing
//! first), so the colours are laid down in scanpy's order; only points of the very same
//! colour may be drawn in another order among themselves, which changes no pixel of a
//! fully covered disc (only the rounding of overlapping anti-aliased edges). [`continuous`]
//! is scanpy's exact order, kept as the reference the buckets are tested against.

use rayon::prelude::*;

/// Number of draw buckets for continuous values: missing, then one per viridis colour.
pub const CONTINUOUS_BUCKETS: usize = 257;

/// The draw bucket of a continuous value: 0 when missing, 1 + its viridis index otherwise.
pub fn continuous_bucket(color_index: Option<u8>) -> u16 {
    color_index.map_or(0, |i| 1 + u16::from(i))
}

/// The draw bucket of a category code: 0 when missing (drawn first), else 1.
pub fn categorical_bucket(code: i32) -> u16 {
    u16::from(code >= 0)
}

/// Cell order for continuous values (see the module doc). Each cell becomes one integer
/// key (missing first, then the value's order-preserving bits, then the reversed cell
/// index), so a plain parallel sort of distinct keys gives one answer whatever the thread
/// count, without random access during the sort.
pub fn continuous(values: &[f64]) -> Vec<u32> {
    let mut keys: Vec<(u64, u32)> = values
        .par_iter()
        .with_min_len(1 << 14)
        .enumerate()
        .map(|(i, &v)| (value_key(v), u32::MAX - i as u32))
        .collect();
    keys.par_sort_unstable();
    keys.into_par_iter().with_min_len(1 << 14).map(|(_, r)| u32::MAX - r).collect()
}

/// An integer with the order of the values: 0 for NaN (first), then all others ascending,
/// −0 equal to 0 as numpy compares them.
fn value_key(v: f64) -> u64 {
    if v.is_nan() {
        return 0;
    }
    let v = if v == 0.0 { 0.0 } else { v };
    let b = v.to_bits();
    // Flip negatives entirely and set the sign bit of positives: unsigned order = value order.
    let k = if b >> 63 == 1 { !b } else { b | (1 << 63) };
    k.max(1)
}

/// Cell order for category codes (−1 missing): missing first, then the rest, each in cell
/// order (the reference for [`categorical_bucket`]).
pub fn categorical(codes: &[i32]) -> Vec<u32> {
    let missing = codes.iter().enumerate().filter(|(_, c)| **c < 0).map(|(i, _)| i as u32);
    let present = codes.iter().enumerate().filter(|(_, c)| **c >= 0).map(|(i, _)| i as u32);
    missing.chain(present).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn continuous_matches_numpy_reverse_stable_argsort() {
        // np.argsort(-[1, nan, 1, 0, nan, 2], kind="stable")[::-1] == [4, 1, 3, 2, 0, 5]
        let v = [1.0, f64::NAN, 1.0, 0.0, f64::NAN, 2.0];
        assert_eq!(continuous(&v), vec![4, 1, 3, 2, 0, 5]);
        assert_eq!(continuous(&[0.0, -0.0]), vec![1, 0]);
        assert_eq!(continuous(&[-1.0, -2.0, 3.0, f64::NEG_INFINITY, 1e-300, -1e-300]), vec![3, 1, 0, 5, 4, 2]);
    }

    #[test]
    fn categorical_puts_missing_first() {
        assert_eq!(categorical(&[0, -1, 2, -1, 1]), vec![1, 3, 0, 2, 4]);
    }

    /// Drawing by bucket lays colours down in the order scanpy's sort does.
    #[test]
    fn buckets_follow_the_reference_orders() {
        let scale = crate::scale::ColorScale { vmin: 0.0, vmax: 10.0 };
        let v: Vec<f64> = (0..500).map(|i| if i % 37 == 0 { f64::NAN } else { ((i * 7919) % 1000) as f64 / 100.0 }).collect();
        let bucket_of = |i: usize| continuous_bucket(scale.index(v[i]));
        let reference: Vec<u16> = continuous(&v).iter().map(|&i| bucket_of(i as usize)).collect();
        let mut by_bucket: Vec<u16> = (0..v.len()).map(bucket_of).collect();
        by_bucket.sort();
        assert_eq!(reference, by_bucket);
        let codes = [0, -1, 2, -1, 1];
        let mut idx: Vec<usize> = (0..codes.len()).collect();
        idx.sort_by_key(|&i| categorical_bucket(codes[i]));
        assert_eq!(idx.iter().map(|&i| i as u32).collect::<Vec<_>>(), categorical(&codes));
    }
}
