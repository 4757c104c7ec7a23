//! Read planning: per fragment, the dim-0 extent of each data tile (from the leaf MBRs of
//! its R-tree, with the fragment's own schema) and where the tiles of the columns read
//! lie; and, for a dim-0 selection, which tiles of which fragments intersect it.

use super::ColumnSpec;
use super::field::FieldTiles;
use super::stored_field;
use crate::array::TileDbArray;
use crate::coords::Coords;
use crate::error::{Result, corrupt, unsupported};
use crate::fragment::Field;

/// One fragment, indexed for selective reads.
#[derive(Debug, Clone)]
pub(crate) struct FragmentIndex {
    /// The fragment's position in the array's fragment list (oldest first).
    pub(crate) fragment: usize,
    /// The dim-0 extent (inclusive) of each data tile.
    pub(crate) leaves: Vec<(i64, i64)>,
    /// Running maximum of the leaves' upper ends (`max hi` over leaves `..=i`).
    prefix_max_hi: Vec<i64>,
    /// Running minimum of the leaves' lower ends from the back (`min lo` over `i..`).
    suffix_min_lo: Vec<i64>,
    /// Per column read: where its tiles lie, or `None` when the fragment predates the
    /// column (it reads as fill values).
    pub(crate) columns: Vec<Option<FieldTiles>>,
    /// The per-cell timestamps' tiles, when the fragment stores them and a newest-wins
    /// merge needs them.
    pub(crate) timestamps: Option<FieldTiles>,
}

/// The tiles a read decodes: per fragment (by position, oldest first), the indices of
/// its data tiles whose leaf MBR intersects the selection, ascending.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadPlan {
    /// (fragment position, data tile indices).
    pub tiles: Vec<(usize, Vec<usize>)>,
}

impl ReadPlan {
    /// Number of data tiles the plan decodes (per field read).
    pub fn tile_count(&self) -> usize {
        self.tiles.iter().map(|(_, t)| t.len()).sum()
    }
}

/// Indexes every fragment of `array` for reading the columns `specs`.
pub(crate) fn index_fragments(
    array: &TileDbArray,
    specs: &[ColumnSpec],
    merge: bool,
) -> Result<Vec<FragmentIndex>> {
    let storage = array.storage.as_ref();
    let mut out = Vec::with_capacity(array.fragments.len());
    for (i, frag) in array.fragments.iter().enumerate() {
        let loc = storage.location(&frag.dir);
        if frag.footer.dense {
            return Err(unsupported(&loc, "dense fragments"));
        }
        if frag.footer.sparse_tile_num == 0 {
            continue;
        }
        let rtree = frag.rtree(storage)?;
        let leaves = rtree
            .leaves()
            .iter()
            .map(|mbr| {
                mbr.first().and_then(|r| r.as_i64()).ok_or_else(|| {
                    corrupt(
                        &storage.location(&frag.metadata_path()),
                        "an R-tree leaf has no int64 range on dimension 0",
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if leaves.len() as u64 != frag.footer.sparse_tile_num {
            return Err(corrupt(
                &storage.location(&frag.metadata_path()),
                format!(
                    "the R-tree has {} leaves for {} data tiles",
                    leaves.len(),
                    frag.footer.sparse_tile_num
                ),
            ));
        }
        let columns = specs
            .iter()
            .map(|spec| match stored_field(frag, spec, &loc)? {
                Some(field) => FieldTiles::load(storage, frag, field).map(Some),
                None => Ok(None),
            })
            .collect::<Result<Vec<_>>>()?;
        let timestamps = if merge && frag.footer.has_timestamps {
            Some(FieldTiles::load(storage, frag, Field::Timestamps)?)
        } else {
            None
        };
        let mut prefix_max_hi = Vec::with_capacity(leaves.len());
        let mut max = i64::MIN;
        for &(_, hi) in &leaves {
            max = max.max(hi);
            prefix_max_hi.push(max);
        }
        let mut suffix_min_lo = vec![0; leaves.len()];
        let mut min = i64::MAX;
        for (k, &(lo, _)) in leaves.iter().enumerate().rev() {
            min = min.min(lo);
            suffix_min_lo[k] = min;
        }
        out.push(FragmentIndex {
            fragment: i,
            leaves,
            prefix_max_hi,
            suffix_min_lo,
            columns,
            timestamps,
        });
    }
    Ok(out)
}

/// The tiles of `frags` whose dim-0 extent intersects `coords`.
pub(crate) fn plan(frags: &[FragmentIndex], coords: &Coords) -> ReadPlan {
    let mut tiles = Vec::new();
    if coords.is_empty() {
        return ReadPlan { tiles };
    }
    let (qlo, qhi) = coords.bounds().unwrap_or((i64::MIN, i64::MAX));
    for f in frags {
        // Leaves before `start` end below the selection and leaves from `end` on start
        // above it (both bounds are monotone), so only `start..end` is scanned: in
        // global order that is about the tiles of the selection's bands.
        let start = f.prefix_max_hi.partition_point(|&hi| hi < qlo);
        let end = f.suffix_min_lo.partition_point(|&lo| lo <= qhi);
        let t: Vec<usize> = (start..end.max(start))
            .filter(|&i| {
                f.leaves
                    .get(i)
                    .is_some_and(|&(lo, hi)| coords.intersects(lo, hi))
            })
            .collect();
        if !t.is_empty() {
            tiles.push((f.fragment, t));
        }
    }
    ReadPlan { tiles }
}
