//! Delta (a compressor: count, first value, differences) and positive delta (windows of
//! non-negative differences from a base value).

use super::bit_width::read_int;
use crate::cursor::Cursor;
use crate::datatype::Datatype;
use crate::error::{Result, corrupt};

/// The value width TileDB's delta compressor uses for type `t` (floats go through 4-byte
/// integers in TileDB's implementation).
fn delta_width(t: Datatype) -> usize {
    match t {
        Datatype::Float32 | Datatype::Float64 => 4,
        other => other.size(),
    }
}

/// Undoes the delta compressor on one part: a u64 count, the first value, then the
/// differences, all of the (reinterpreted) type's width; sums wrap like C integers.
pub(crate) fn undo_delta(bytes: &[u8], t: Datatype, path: &str) -> Result<Vec<u8>> {
    let w = delta_width(t);
    let mut c = Cursor::new(bytes, path);
    let n = c.count_u64(w)?;
    let mut out = Vec::with_capacity(n * w);
    if n == 0 {
        return Ok(out);
    }
    let mut last = read_int(c.take(w)?, false);
    out.extend_from_slice(&last.to_le_bytes()[..w]);
    for _ in 1..n {
        last = last.wrapping_add(read_int(c.take(w)?, false));
        out.extend_from_slice(&last.to_le_bytes()[..w]);
    }
    Ok(out)
}

/// Undoes positive delta on integer data of `width` bytes. The metadata holds the window
/// count (u32), then per window the base value and the window's byte length (u32); a
/// window whose length is not whole values is stored as is.
pub(crate) fn undo_positive_delta(
    md: &mut Cursor<'_>,
    data: &[u8],
    width: usize,
) -> Result<Vec<u8>> {
    let path = md.path();
    let windows = md.count_u32(width + 4)?;
    let mut input = Cursor::new(data, path);
    let mut out = Vec::with_capacity(data.len());
    for _ in 0..windows {
        let mut prev = read_int(md.take(width)?, false);
        let nbytes = md.u32()? as usize;
        if !nbytes.is_multiple_of(width) {
            out.extend_from_slice(input.take(nbytes)?);
            continue;
        }
        for d in input.take(nbytes)?.chunks_exact(width) {
            prev = prev.wrapping_add(read_int(d, false));
            out.extend_from_slice(&prev.to_le_bytes()[..width]);
        }
    }
    if input.remaining() != 0 {
        return Err(corrupt(
            path,
            format!(
                "positive delta: {} bytes left after the windows",
                input.remaining()
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_sums_with_wrapping() -> Result<()> {
        let mut b = 3u64.to_le_bytes().to_vec();
        for v in [5i32, -2, 10] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        let out = undo_delta(&b, Datatype::Int32, "f")?;
        assert_eq!(
            out,
            [5i32, 3, 13]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<_>>()
        );
        assert!(undo_delta(&b[..10], Datatype::Int32, "f").is_err());
        Ok(())
    }

    #[test]
    fn positive_delta_windows() -> Result<()> {
        let mut md = 1u32.to_le_bytes().to_vec();
        md.extend_from_slice(&100u32.to_le_bytes());
        md.extend_from_slice(&12u32.to_le_bytes());
        let data: Vec<u8> = [0u32, 5, 1].iter().flat_map(|v| v.to_le_bytes()).collect();
        let out = undo_positive_delta(&mut Cursor::new(&md, "f"), &data, 4)?;
        assert_eq!(
            out,
            [100u32, 105, 106]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<_>>()
        );
        Ok(())
    }
}
