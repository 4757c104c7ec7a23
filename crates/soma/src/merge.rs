//! Newest-wins merge for arrays without duplicates: when fragments overlap (or a
//! consolidated fragment kept older versions of cells with their timestamps), each
//! coordinate keeps only its newest cell — the latest timestamp, then the latest
//! fragment.

use std::collections::HashMap;

/// One dimension's cells, as gathered by the reader.
pub(crate) enum KeyPart<'a> {
    /// Fixed-size values of `width` bytes each.
    Fixed {
        /// The values.
        data: &'a [u8],
        /// Bytes per value.
        width: usize,
    },
    /// Variable-size values with Arrow-style offsets (one more than the cells).
    Var {
        /// The bytes.
        data: &'a [u8],
        /// Start and end offsets.
        offsets: &'a [i64],
    },
}

impl KeyPart<'_> {
    fn append(&self, row: usize, key: &mut Vec<u8>) {
        match self {
            KeyPart::Fixed { data, width } => {
                key.extend_from_slice(&data[row * width..(row + 1) * width])
            }
            KeyPart::Var { data, offsets } => {
                let (a, b) = (offsets[row] as usize, offsets[row + 1] as usize);
                key.extend_from_slice(&((b - a) as u64).to_le_bytes());
                key.extend_from_slice(&data[a..b]);
            }
        }
    }
}

/// Which rows to keep: for each coordinate (the key parts of a row), the row with the
/// highest `priority` (timestamp, fragment index). On ties — duplicates inside one
/// fragment, which consolidation with timestamps writes newest first — the first row.
/// `parts` must describe exactly `priority.len()` rows each.
pub(crate) fn newest_wins(parts: &[KeyPart<'_>], priority: &[(u64, u32)]) -> Vec<bool> {
    let n = priority.len();
    let mut best: HashMap<Vec<u8>, usize> = HashMap::with_capacity(crate::cursor::capacity_hint(n));
    let mut key = Vec::new();
    for (row, p) in priority.iter().enumerate() {
        key.clear();
        for part in parts {
            part.append(row, &mut key);
        }
        match best.get_mut(key.as_slice()) {
            Some(kept) if priority[*kept] < *p => *kept = row,
            Some(_) => {}
            None => {
                best.insert(key.clone(), row);
            }
        }
    }
    let mut keep = vec![false; n];
    for row in best.into_values() {
        keep[row] = true;
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_cell_per_coordinate() {
        let coords: Vec<u8> = [1i64, 2, 1, 3, 2]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let parts = [KeyPart::Fixed {
            data: &coords,
            width: 8,
        }];
        let priority = [(5, 0), (5, 0), (7, 1), (7, 1), (6, 2)];
        // coordinate 1: timestamp 7 beats 5; coordinate 2: timestamp 6 beats 5.
        assert_eq!(
            newest_wins(&parts, &priority),
            vec![false, false, true, true, true]
        );
        // Equal priorities (one consolidated fragment): the first row wins.
        let same = [(5, 0); 5];
        assert_eq!(
            newest_wins(&parts, &same),
            vec![true, true, false, true, false]
        );
        let names = b"abcab".to_vec();
        let offsets = [0i64, 1, 2, 3, 4, 5];
        let parts = [KeyPart::Var {
            data: &names,
            offsets: &offsets,
        }];
        let priority = [(1, 0), (1, 0), (1, 0), (2, 1), (0, 1)];
        assert_eq!(
            newest_wins(&parts, &priority),
            vec![false, true, true, true, false]
        );
    }
}
