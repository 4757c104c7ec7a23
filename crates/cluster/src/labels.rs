//! Cluster labels as scanpy stores them: communities numbered by size, written as a
//! categorical of strings whose categories are natural-sorted (natsort's default, `ns.INT`).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, DictionaryArray, Int32Array, StringArray};
use arrow::datatypes::Int32Type;
use atlasflow_core::Result;

/// Renumber communities by decreasing number of members (0 = largest), ties broken by the
/// smallest member index, as leidenalg's final `renumber_communities` does (its own tie
/// order is that of an unstable sort; ours is fixed).
pub fn number_by_size(membership: &[u32]) -> Vec<u32> {
    let k = membership
        .iter()
        .map(|&c| c as usize + 1)
        .max()
        .unwrap_or(0);
    let mut size = vec![0usize; k];
    let mut first = vec![usize::MAX; k];
    for (v, &c) in membership.iter().enumerate() {
        size[c as usize] += 1;
        first[c as usize] = first[c as usize].min(v);
    }
    let mut order: Vec<usize> = (0..k).filter(|&c| size[c] > 0).collect();
    order.sort_by(|&a, &b| size[b].cmp(&size[a]).then(first[a].cmp(&first[b])));
    let mut new_id = vec![0u32; k];
    for (i, &c) in order.iter().enumerate() {
        new_id[c] = i as u32;
    }
    membership.iter().map(|&c| new_id[c as usize]).collect()
}

/// Renumber communities in order of first appearance by node index, as igraph returns
/// them (scanpy's flavor="igraph" labels).
pub fn number_by_first_appearance(membership: &[u32]) -> Vec<u32> {
    let mut m = membership.to_vec();
    crate::partition::compact(&mut m);
    m
}

/// One chunk of natsort's key: text or an unsigned integer (as its digits, leading zeros
/// removed, so any length compares right).
#[derive(Debug, PartialEq, Eq)]
enum Chunk<'a> {
    Text(&'a str),
    Int(&'a str),
}

/// natsort's key for `s`: alternating text and integer chunks, starting with text (an empty
/// text chunk when `s` starts with a digit), so that positions always hold the same kind.
fn natsort_key(s: &str) -> Vec<Chunk<'_>> {
    let mut key = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut want_text = true;
    while i < bytes.len() {
        let start = i;
        let digit = bytes[i].is_ascii_digit();
        while i < bytes.len() && bytes[i].is_ascii_digit() == digit {
            i += 1;
        }
        let part = &s[start..i];
        if digit {
            if want_text {
                key.push(Chunk::Text(""));
            }
            key.push(Chunk::Int(part.trim_start_matches('0')));
            want_text = true;
        } else {
            key.push(Chunk::Text(part));
            want_text = false;
        }
    }
    key
}

fn cmp_chunk(a: &Chunk<'_>, b: &Chunk<'_>) -> Ordering {
    match (a, b) {
        (Chunk::Text(x), Chunk::Text(y)) => x.cmp(y),
        (Chunk::Int(x), Chunk::Int(y)) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
        (Chunk::Int(_), Chunk::Text(_)) => Ordering::Less,
        (Chunk::Text(_), Chunk::Int(_)) => Ordering::Greater,
    }
}

/// natsort's order ('0' < '1' < '2' < '10'; '1' < '1,0' < '1,10' < '2'); strings with equal
/// keys ('07', '7') keep their plain string order, as `natsorted(np.unique(...))` leaves
/// them.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (ka, kb) = (natsort_key(a), natsort_key(b));
    for (x, y) in ka.iter().zip(&kb) {
        let o = cmp_chunk(x, y);
        if o != Ordering::Equal {
            return o;
        }
    }
    ka.len().cmp(&kb.len()).then_with(|| a.cmp(b))
}

/// A categorical obs column (Arrow dictionary of Utf8, Int32 codes) holding `labels`, with
/// the distinct labels natural-sorted as categories.
pub fn categorical(labels: &[String]) -> Result<ArrayRef> {
    let mut categories: Vec<&str> = labels.iter().map(|s| s.as_str()).collect();
    categories.sort_unstable();
    categories.dedup();
    categories.sort_by(|a, b| natural_cmp(a, b));
    let code: HashMap<&str, i32> = categories
        .iter()
        .enumerate()
        .map(|(i, &c)| (c, i as i32))
        .collect();
    let keys = Int32Array::from(
        labels
            .iter()
            .map(|s| code[s.as_str()])
            .collect::<Vec<i32>>(),
    );
    let values = Arc::new(StringArray::from(categories));
    Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(
        keys, values,
    )?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use arrow::array::Array;

    #[test]
    fn by_size_then_first_member() {
        assert_eq!(
            number_by_size(&[5, 5, 2, 2, 9, 9, 9]),
            vec![1, 1, 2, 2, 0, 0, 0]
        );
        assert_eq!(number_by_size(&[3, 1, 3, 1]), vec![0, 1, 0, 1]);
        assert_eq!(number_by_size(&[]), Vec::<u32>::new());
        assert_eq!(
            number_by_first_appearance(&[5, 5, 2, 9, 2]),
            vec![0, 0, 1, 2, 1]
        );
    }

    #[test]
    fn natural_order() {
        let mut v = vec![
            "10", "2", "1", "0", "11", "1,0", "1,10", "1,2", "nan", "a1", "a",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            vec![
                "0", "1", "1,0", "1,2", "1,10", "2", "10", "11", "a", "a1", "nan"
            ]
        );
        assert_eq!(natural_cmp("07", "7"), Ordering::Less);
    }

    #[test]
    fn categories_are_natsorted() {
        let labels: Vec<String> = ["10", "2", "0", "2", "1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let a = categorical(&labels).unwrap();
        let d = a
            .as_any()
            .downcast_ref::<DictionaryArray<Int32Type>>()
            .unwrap();
        let values = d.values().as_any().downcast_ref::<StringArray>().unwrap();
        let cats: Vec<&str> = (0..values.len()).map(|i| values.value(i)).collect();
        assert_eq!(cats, vec!["0", "1", "2", "10"]);
        assert_eq!(d.keys().values().to_vec(), vec![3, 2, 0, 2, 1]);
    }
}
