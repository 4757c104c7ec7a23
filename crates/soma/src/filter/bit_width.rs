//! Bit-width reduction: windows of integers stored as small offsets from a base value.

use crate::cursor::{Cursor, capacity_hint};
use crate::datatype::Datatype;
use crate::error::{Result, corrupt};

/// Reads a little-endian integer of `width` bytes, sign-extended when `signed`.
pub(crate) fn read_int(bytes: &[u8], signed: bool) -> u64 {
    let mut buf = [0u8; 8];
    let w = bytes.len().min(8);
    buf[..w].copy_from_slice(&bytes[..w]);
    let v = u64::from_le_bytes(buf);
    if signed && w < 8 && w > 0 && bytes[w - 1] & 0x80 != 0 {
        v | (u64::MAX << (8 * w))
    } else {
        v
    }
}

/// Expands bit-width-reduced integers of type `t`. The metadata holds the original
/// length (u32) and the window count (u32), then per window the base value (one value
/// of `t`), the reduced width in bits (u8) and the window's byte length (u32). A window
/// whose width is not smaller, or whose length is not whole values, is stored as is.
pub(crate) fn expand(md: &mut Cursor<'_>, data: &[u8], t: Datatype) -> Result<Vec<u8>> {
    let path = md.path();
    let size = t.size();
    let signed = t.is_signed();
    let original = md.u32()? as usize;
    let windows = md.count_u32(size + 5)?;
    let mut input = Cursor::new(data, path);
    let mut out = Vec::with_capacity(capacity_hint(original));
    for _ in 0..windows {
        let base = read_int(md.take(size)?, signed);
        let bits = md.u8()? as usize;
        let nbytes = md.u32()? as usize;
        if bits >= size * 8 || !nbytes.is_multiple_of(size) {
            out.extend_from_slice(input.take(nbytes)?);
            continue;
        }
        let small = bits / 8;
        if small == 0 || !bits.is_multiple_of(8) {
            return Err(corrupt(
                path,
                format!("bit-width reduction: bad width {bits} bits"),
            ));
        }
        let count = nbytes / size;
        let packed = input.take(count * small)?;
        for v in packed.chunks_exact(small) {
            let value = read_int(v, signed).wrapping_add(base);
            out.extend_from_slice(&value.to_le_bytes()[..size]);
        }
    }
    if out.len() != original {
        return Err(corrupt(
            path,
            format!(
                "bit-width reduction gave {} bytes, {original} expected",
                out.len()
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_windows() -> Result<()> {
        // u64 values 100, 101, 355 as base 100 + u16 offsets; then a raw window of one value.
        let mut md = 32u32.to_le_bytes().to_vec();
        md.extend_from_slice(&2u32.to_le_bytes());
        md.extend_from_slice(&100u64.to_le_bytes());
        md.push(16);
        md.extend_from_slice(&24u32.to_le_bytes());
        md.extend_from_slice(&0u64.to_le_bytes());
        md.push(64);
        md.extend_from_slice(&8u32.to_le_bytes());
        let mut data = vec![0u8, 0, 1, 0, 255, 0];
        data.extend_from_slice(&7u64.to_le_bytes());
        let out = expand(&mut Cursor::new(&md, "f"), &data, Datatype::UInt64)?;
        let vals = crate::cursor::le_u64s(&out);
        assert_eq!(vals, vec![100, 101, 355, 7]);
        Ok(())
    }

    #[test]
    fn sign_extends_signed_offsets() -> Result<()> {
        let mut md = 4u32.to_le_bytes().to_vec();
        md.extend_from_slice(&1u32.to_le_bytes());
        md.extend_from_slice(&10i16.to_le_bytes());
        md.push(8);
        md.extend_from_slice(&4u32.to_le_bytes());
        let out = expand(&mut Cursor::new(&md, "f"), &[0xFF, 0x02], Datatype::Int16)?;
        assert_eq!(out, [9i16.to_le_bytes(), 12i16.to_le_bytes()].concat());
        Ok(())
    }
}
