//! umap-learn's Tausworthe generator `tau_rand_int`, which draws the negative samples.
//!
//! The state is three int64 values; each update works on int64 with 32-bit masks and an
//! arithmetic right shift exactly as the numba code, and the result is truncated to int32
//! (numba's `i4(i8[:])` signature). Reproduced bit for bit so that, given the same seeds,
//! the same vertices are drawn.

/// One draw; advances `state`.
#[inline]
pub fn tau_rand_int(state: &mut [i64; 3]) -> i32 {
    let s0 = state[0];
    state[0] = ((s0 & 4294967294).wrapping_shl(12) & 0xFFFF_FFFF)
        ^ (((s0.wrapping_shl(13) & 0xFFFF_FFFF) ^ s0) >> 19);
    let s1 = state[1];
    state[1] = ((s1 & 4294967288).wrapping_shl(4) & 0xFFFF_FFFF)
        ^ (((s1.wrapping_shl(2) & 0xFFFF_FFFF) ^ s1) >> 25);
    let s2 = state[2];
    state[2] = ((s2 & 4294967280).wrapping_shl(17) & 0xFFFF_FFFF)
        ^ (((s2.wrapping_shl(3) & 0xFFFF_FFFF) ^ s2) >> 11);
    (state[0] ^ state[1] ^ state[2]) as i32
}

/// A vertex index in 0..n from one draw, with Python's non-negative modulo.
#[inline]
pub fn tau_rand_index(state: &mut [i64; 3], n: usize) -> usize {
    let r = tau_rand_int(state);
    if n <= i32::MAX as usize {
        // A 32-bit division is much cheaper than a 64-bit one in the SGD's inner loop.
        r.rem_euclid(n as i32) as usize
    } else {
        (r as i64).rem_euclid(n as i64) as usize
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Values from umap.utils.tau_rand_int (numba, pinned stack) on a state with high bits
    /// set, as the per-vertex states are (seed + the bits of an f64).
    #[test]
    fn matches_umap_learn() {
        let mut s = [-5000000000123i64, (1i64 << 40) + 7, -3];
        let got: Vec<i32> = (0..4).map(|_| tau_rand_int(&mut s)).collect();
        assert_eq!(got, vec![-1785290330, 1645054516, 1480374676, -96028061]);
    }
}
