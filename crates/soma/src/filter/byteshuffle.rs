//! Byte shuffle: each part stores byte 0 of every value, then byte 1, and so on.

use crate::cursor::Cursor;
use crate::error::{Result, corrupt};

/// Undoes the byte shuffle of `data` (values of `width` bytes). The metadata holds the
/// part count (u32) then each part's length (u32). Bytes past the last whole value of a
/// part were not shuffled.
pub(crate) fn unshuffle(md: &mut Cursor<'_>, data: &[u8], width: usize) -> Result<Vec<u8>> {
    let path = md.path();
    let parts = md.count_u32(4)?;
    let mut input = Cursor::new(data, path);
    let mut out = Vec::with_capacity(data.len());
    for _ in 0..parts {
        let len = md.u32()? as usize;
        let part = input.take(len)?;
        if width <= 1 {
            out.extend_from_slice(part);
            continue;
        }
        let n = len / width;
        let start = out.len();
        out.resize(start + n * width, 0);
        for (b, plane) in part[..n * width]
            .chunks_exact(n.max(1))
            .enumerate()
            .take(width)
        {
            for (i, &byte) in plane.iter().enumerate() {
                out[start + i * width + b] = byte;
            }
        }
        out.extend_from_slice(&part[n * width..]);
    }
    if input.remaining() != 0 {
        return Err(corrupt(
            path,
            format!(
                "byteshuffle: {} bytes left after the parts",
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
    fn unshuffles_planes() -> crate::error::Result<()> {
        // values 0x0201, 0x0403, 0x0605 (u16) shuffled: low bytes then high bytes, plus a stray byte
        let data = [1u8, 3, 5, 2, 4, 6, 9];
        let mut md = 1u32.to_le_bytes().to_vec();
        md.extend_from_slice(&7u32.to_le_bytes());
        let out = unshuffle(&mut Cursor::new(&md, "f"), &data, 2)?;
        assert_eq!(out, vec![1, 2, 3, 4, 5, 6, 9]);
        Ok(())
    }

    #[test]
    fn refuses_parts_longer_than_the_data() {
        let mut md = 1u32.to_le_bytes().to_vec();
        md.extend_from_slice(&70u32.to_le_bytes());
        assert!(unshuffle(&mut Cursor::new(&md, "f"), &[0; 8], 4).is_err());
    }
}
