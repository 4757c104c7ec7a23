//! The neighbour heaps of NN-descent and the ordered, one-heap-per-task way offers reach
//! them (what keeps the search independent of the thread count).

use rayon::prelude::*;

/// The neighbour heaps: per cell `k` slots sorted by (distance, index), the worst last.
pub(crate) struct Heaps {
    pub(crate) k: usize,
    pub(crate) idx: Vec<u32>,
    pub(crate) dist: Vec<f32>,
    pub(crate) new: Vec<bool>,
}

/// Offer `(d, j)` to one cell's slots; true when taken.
#[inline(always)]
pub(crate) fn push(idx: &mut [u32], dist: &mut [f32], new: &mut [bool], d: f32, j: u32) -> bool {
    let k = idx.len();
    let last = k - 1;
    if !(d < dist[last] || (d == dist[last] && j < idx[last])) {
        return false;
    }
    if idx.contains(&j) {
        return false;
    }
    let mut pos = last;
    while pos > 0 && (dist[pos - 1] > d || (dist[pos - 1] == d && idx[pos - 1] > j)) {
        idx[pos] = idx[pos - 1];
        dist[pos] = dist[pos - 1];
        new[pos] = new[pos - 1];
        pos -= 1;
    }
    idx[pos] = j;
    dist[pos] = d;
    new[pos] = true;
    true
}

/// Apply offers grouped by receiving cell (`offers[offsets[i]..offsets[i + 1]]` go to cell
/// i, in order), one heap per task; returns how many were taken.
pub(crate) fn apply(heaps: &mut Heaps, offsets: &[usize], offers: &[(u32, f32)]) -> usize {
    let k = heaps.k;
    heaps
        .idx
        .par_chunks_mut(k)
        .zip(heaps.dist.par_chunks_mut(k))
        .zip(heaps.new.par_chunks_mut(k))
        .enumerate()
        .map(|(i, ((idx, dist), new))| {
            offers[offsets[i]..offsets[i + 1]]
                .iter()
                .filter(|&&(j, d)| push(idx, dist, new, d, j))
                .count()
        })
        .sum()
}

/// Group `(receiver, payload)` pairs by receiver, keeping their order.
pub(crate) fn group<T: Copy + Default>(n: usize, triples: &[(u32, T)]) -> (Vec<usize>, Vec<T>) {
    let mut offsets = vec![0usize; n + 1];
    for t in triples {
        offsets[t.0 as usize + 1] += 1;
    }
    for i in 0..n {
        offsets[i + 1] += offsets[i];
    }
    let mut fill = offsets.clone();
    let mut out = vec![T::default(); triples.len()];
    for &(r, payload) in triples {
        out[fill[r as usize]] = payload;
        fill[r as usize] += 1;
    }
    (offsets, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_keeps_sorted_unique_and_breaks_ties_by_index() {
        let (mut idx, mut dist, mut new) =
            (vec![u32::MAX; 3], vec![f32::INFINITY; 3], vec![false; 3]);
        assert!(push(&mut idx, &mut dist, &mut new, 2.0, 7));
        assert!(push(&mut idx, &mut dist, &mut new, 1.0, 9));
        assert!(!push(&mut idx, &mut dist, &mut new, 1.0, 9));
        assert!(push(&mut idx, &mut dist, &mut new, 2.0, 3));
        assert_eq!(idx, [9, 3, 7]);
        assert!(!push(&mut idx, &mut dist, &mut new, 2.0, 8));
        assert!(push(&mut idx, &mut dist, &mut new, 0.5, 1));
        assert_eq!(
            (idx.as_slice(), dist.as_slice()),
            ([1, 9, 3].as_slice(), [0.5, 1.0, 2.0].as_slice())
        );
    }

    #[test]
    fn group_keeps_order_within_receiver() {
        let (offsets, out) = group(3, &[(2, 'a'), (0, 'b'), (2, 'c')]);
        assert_eq!(offsets, [0, 1, 1, 3]);
        assert_eq!(out, ['b', 'a', 'c']);
    }
}
