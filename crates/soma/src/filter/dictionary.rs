//! Dictionary-encoded strings: a dictionary of distinct strings in the chunk metadata and
//! a run of big-endian ids as the data. Decoding rebuilds both the bytes and the cell
//! offsets, which are not stored for such fields.

use super::StringsHeader;
use crate::cursor::{Cursor, be_uint, capacity_hint};
use crate::error::{Result, corrupt};

/// Decodes one chunk. The metadata holds the two part counts (u32 each), the unfiltered
/// size, the ids' byte size and the offsets' size (u32 each), the id width and the
/// length-prefix width (u8 each), the dictionary's byte size (u32), then the dictionary
/// as big-endian length-prefixed strings. Returns (string bytes, cell start offsets).
pub(crate) fn decode(md: &mut Cursor<'_>, data: &[u8]) -> Result<(Vec<u8>, Vec<u64>)> {
    let path = md.path();
    let StringsHeader {
        unfiltered,
        data_len: ids_len,
        offsets_len: _,
        first_width: id_width,
        len_width,
    } = StringsHeader::parse(md)?;
    let dict_len = md.u32()? as usize;
    let dict = md.take(dict_len)?;
    if !matches!(id_width, 1 | 2 | 4 | 8) || !matches!(len_width, 1 | 2 | 4 | 8) {
        return Err(corrupt(
            path,
            format!("dictionary: bad id width {id_width} or length width {len_width}"),
        ));
    }
    let mut words: Vec<&[u8]> = Vec::new();
    let mut d = Cursor::new(dict, path);
    while d.remaining() > 0 {
        let n = be_uint(d.take(len_width)?);
        words.push(d.take_u64_len(n)?);
    }
    let ids = Cursor::new(data, path).take(ids_len)?;
    if !ids_len.is_multiple_of(id_width) {
        return Err(corrupt(
            path,
            format!("dictionary: {ids_len} id bytes is not a multiple of {id_width}"),
        ));
    }
    let mut out = Vec::with_capacity(capacity_hint(unfiltered));
    let mut offsets = Vec::with_capacity(ids_len / id_width);
    for id in ids.chunks_exact(id_width) {
        let k = be_uint(id);
        let word = usize::try_from(k)
            .ok()
            .and_then(|k| words.get(k))
            .ok_or_else(|| {
                corrupt(
                    path,
                    format!("dictionary: id {k} is past the {} words", words.len()),
                )
            })?;
        offsets.push(out.len() as u64);
        out.extend_from_slice(word);
    }
    Ok((out, offsets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuilds_strings_and_offsets() -> Result<()> {
        let dict = [0u8, 1, b'a', 0, 3, b'b', b'c', b'd', 0, 0];
        let mut md = Vec::new();
        for v in [0u32, 1, 8, 4, 0] {
            md.extend_from_slice(&v.to_le_bytes());
        }
        md.push(1);
        md.push(2);
        md.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        md.extend_from_slice(&dict);
        let (bytes, offs) = decode(&mut Cursor::new(&md, "f"), &[1, 0, 2, 1])?;
        assert_eq!(bytes, b"bcdabcd");
        assert_eq!(offs, vec![0, 3, 4, 4]);
        assert!(decode(&mut Cursor::new(&md, "f"), &[1, 0, 7, 1]).is_err());
        Ok(())
    }
}
