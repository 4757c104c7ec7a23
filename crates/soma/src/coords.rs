//! Which dim-0 coordinates (soma_joinids) a read keeps: every one, a set of inclusive
//! ranges, or a list of points. Normalised on construction (sorted, disjoint,
//! deduplicated) so tile pruning and row filtering are binary searches.

/// A selection of dim-0 coordinates, the unit of range reads and band streaming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coords(Inner);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Inner {
    All,
    /// Inclusive, sorted, disjoint and not touching.
    Ranges(Vec<(i64, i64)>),
    /// Sorted, without duplicates.
    Points(Vec<i64>),
}

impl Coords {
    /// Every coordinate.
    pub fn all() -> Self {
        Coords(Inner::All)
    }

    /// The coordinates in `lo..=hi` (none when `lo > hi`).
    pub fn range(lo: i64, hi: i64) -> Self {
        Self::ranges([(lo, hi)])
    }

    /// The union of inclusive ranges; empty ranges (`lo > hi`) are dropped.
    pub fn ranges(ranges: impl IntoIterator<Item = (i64, i64)>) -> Self {
        let mut v: Vec<(i64, i64)> = ranges.into_iter().filter(|(a, b)| a <= b).collect();
        v.sort_unstable();
        let mut out: Vec<(i64, i64)> = Vec::with_capacity(v.len());
        for (a, b) in v {
            match out.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => out.push((a, b)),
            }
        }
        Coords(Inner::Ranges(out))
    }

    /// The given points (any order, duplicates allowed).
    pub fn points(points: impl IntoIterator<Item = i64>) -> Self {
        let mut v: Vec<i64> = points.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        Coords(Inner::Points(v))
    }

    /// Whether nothing is selected.
    pub fn is_empty(&self) -> bool {
        match &self.0 {
            Inner::All => false,
            Inner::Ranges(r) => r.is_empty(),
            Inner::Points(p) => p.is_empty(),
        }
    }

    /// Whether every coordinate is selected.
    pub fn is_all(&self) -> bool {
        matches!(self.0, Inner::All)
    }

    /// The selected points, when the selection is a point list.
    pub fn as_points(&self) -> Option<&[i64]> {
        match &self.0 {
            Inner::Points(p) => Some(p),
            _ => None,
        }
    }

    /// The part of the selection inside `lo..=hi`.
    pub fn restrict(&self, lo: i64, hi: i64) -> Self {
        if lo > hi {
            return Coords(Inner::Ranges(Vec::new()));
        }
        match &self.0 {
            Inner::All => Coords(Inner::Ranges(vec![(lo, hi)])),
            Inner::Ranges(r) => Coords(Inner::Ranges(
                r.iter()
                    .filter(|(a, b)| *a <= hi && lo <= *b)
                    .map(|(a, b)| ((*a).max(lo), (*b).min(hi)))
                    .collect(),
            )),
            Inner::Points(p) => {
                let a = p.partition_point(|&x| x < lo);
                let b = p.partition_point(|&x| x <= hi);
                Coords(Inner::Points(p[a..b].to_vec()))
            }
        }
    }

    /// Whether coordinate `v` is selected.
    pub fn contains(&self, v: i64) -> bool {
        match &self.0 {
            Inner::All => true,
            Inner::Ranges(r) => {
                let i = r.partition_point(|&(_, b)| b < v);
                r.get(i).is_some_and(|&(a, _)| a <= v)
            }
            Inner::Points(p) => p.binary_search(&v).is_ok(),
        }
    }

    /// Whether any selected coordinate lies in `lo..=hi` (a tile's MBR).
    pub fn intersects(&self, lo: i64, hi: i64) -> bool {
        if lo > hi {
            return false;
        }
        match &self.0 {
            Inner::All => true,
            Inner::Ranges(r) => {
                let i = r.partition_point(|&(_, b)| b < lo);
                r.get(i).is_some_and(|&(a, _)| a <= hi)
            }
            Inner::Points(p) => {
                let i = p.partition_point(|&x| x < lo);
                p.get(i).is_some_and(|&x| x <= hi)
            }
        }
    }

    /// The smallest and largest selected coordinate (`None`: empty or all).
    pub fn bounds(&self) -> Option<(i64, i64)> {
        match &self.0 {
            Inner::All => None,
            Inner::Ranges(r) => Some((r.first()?.0, r.last()?.1)),
            Inner::Points(p) => Some((*p.first()?, *p.last()?)),
        }
    }

    /// The smallest selected coordinate that is `>= from`, if any (`All`: `from`).
    pub fn next_at_or_after(&self, from: i64) -> Option<i64> {
        match &self.0 {
            Inner::All => Some(from),
            Inner::Ranges(r) => {
                let i = r.partition_point(|&(_, b)| b < from);
                r.get(i).map(|&(a, _)| a.max(from))
            }
            Inner::Points(p) => p.get(p.partition_point(|&x| x < from)).copied(),
        }
    }

    /// The selected coordinates inside `lo..=hi`, listed (what a band's rows are).
    pub fn list_in(&self, lo: i64, hi: i64) -> Vec<i64> {
        match self.restrict(lo, hi).0 {
            Inner::Points(p) => p,
            Inner::Ranges(r) => r.into_iter().flat_map(|(a, b)| a..=b).collect(),
            Inner::All => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_searches() {
        let r = Coords::ranges([(10, 20), (0, 3), (4, 5), (30, 29)]);
        assert_eq!(r, Coords(Inner::Ranges(vec![(0, 5), (10, 20)])));
        assert!(r.contains(4) && !r.contains(7) && r.contains(20) && !r.contains(21));
        assert!(r.intersects(6, 10) && !r.intersects(6, 9) && !r.intersects(9, 6));
        assert_eq!(r.restrict(3, 12), Coords::ranges([(3, 5), (10, 12)]));
        assert_eq!(r.next_at_or_after(6), Some(10));
        assert_eq!(r.list_in(4, 11), vec![4, 5, 10, 11]);
        let p = Coords::points([5, 1, 5, 9]);
        assert_eq!(p.as_points(), Some(&[1, 5, 9][..]));
        assert!(p.intersects(2, 5) && !p.intersects(6, 8));
        assert_eq!(p.restrict(2, 9).as_points(), Some(&[5, 9][..]));
        assert_eq!(p.bounds(), Some((1, 9)));
        assert!(Coords::range(3, 2).is_empty() && !Coords::all().is_empty());
        assert_eq!(Coords::all().restrict(2, 4).list_in(0, 10), vec![2, 3, 4]);
    }
}
