//! f32 distance kernels for NN-descent, with a fixed summation order (eight lanes, then the
//! tail) so results do not depend on anything but the inputs.

/// Squared euclidean distance.
#[inline(always)]
pub fn sq_euclidean(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            let t = x[l] - y[l];
            acc[l] += t * t;
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += (x - y) * (x - y);
    }
    s
}

/// Dot product.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn kernels_agree_with_plain_sums() {
        let a: Vec<f32> = (0..19).map(|t| t as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|t| 3.0 - t as f32).collect();
        let sq: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum();
        let dp: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((sq_euclidean(&a, &b) - sq).abs() < 1e-3);
        assert!((dot(&a, &b) - dp).abs() < 1e-3);
    }
}
