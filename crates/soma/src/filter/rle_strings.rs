//! RLE-encoded strings: runs of (run length, string length, string bytes), both lengths
//! big-endian with widths given in the chunk metadata. As with dictionary encoding, the
//! cell offsets are not stored and are rebuilt here.

use super::StringsHeader;
use crate::cursor::{Cursor, be_uint, capacity_hint};
use crate::error::{Result, corrupt};

/// Decodes one chunk. The metadata holds the two part counts (u32 each), the unfiltered
/// size, the runs' byte size and the offsets' byte size (u32 each), then the run-length
/// width and the string-length width (u8 each). Returns (string bytes, cell start offsets).
pub(crate) fn decode(md: &mut Cursor<'_>, data: &[u8]) -> Result<(Vec<u8>, Vec<u64>)> {
    let path = md.path();
    let StringsHeader {
        unfiltered,
        data_len: runs_len,
        offsets_len,
        first_width: run_width,
        len_width,
    } = StringsHeader::parse(md)?;
    if !(1..=8).contains(&run_width) || !(1..=8).contains(&len_width) {
        return Err(corrupt(
            path,
            format!("RLE strings: bad run width {run_width} or length width {len_width}"),
        ));
    }
    let cells = offsets_len / 8;
    let mut runs = Cursor::new(Cursor::new(data, path).take(runs_len)?, path);
    let mut out = Vec::with_capacity(capacity_hint(unfiltered));
    let mut offsets = Vec::with_capacity(capacity_hint(cells));
    while runs.remaining() > 0 {
        let run = be_uint(runs.take(run_width)?);
        let len = be_uint(runs.take(len_width)?);
        let s = runs.take_u64_len(len)?;
        if run > (cells - offsets.len()) as u64 {
            return Err(corrupt(
                path,
                format!("RLE strings: runs exceed the {cells} cells"),
            ));
        }
        for _ in 0..run {
            offsets.push(out.len() as u64);
            out.extend_from_slice(s);
        }
    }
    if offsets.len() != cells || out.len() != unfiltered {
        return Err(corrupt(
            path,
            format!(
                "RLE strings: {} cells and {} bytes decoded, {cells} and {unfiltered} expected",
                offsets.len(),
                out.len()
            ),
        ));
    }
    Ok((out, offsets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_string_runs() -> Result<()> {
        // As tiledbsoma writes it: 2 x "", 1 x "bb", 3 x "a".
        let data = [2u8, 0, 1, 2, b'b', b'b', 3, 1, b'a'];
        let mut md = Vec::new();
        for v in [0u32, 1, 5, data.len() as u32, 48] {
            md.extend_from_slice(&v.to_le_bytes());
        }
        md.extend_from_slice(&[1, 1]);
        let (bytes, offs) = decode(&mut Cursor::new(&md, "f"), &data)?;
        assert_eq!(bytes, b"bbaaa");
        assert_eq!(offs, vec![0, 0, 0, 2, 3, 4]);
        assert!(decode(&mut Cursor::new(&md, "f"), &data[..7]).is_err());
        Ok(())
    }
}
