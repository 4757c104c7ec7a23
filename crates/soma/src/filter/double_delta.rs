//! Double delta: the first two values, then each later value's second difference as a
//! sign bit and a fixed-width magnitude, packed most-significant bit first into
//! little-endian u64 words.

use super::bit_width::read_int;
use crate::cursor::{Cursor, le_u64s};
use crate::datatype::Datatype;
use crate::error::{Result, corrupt};

/// Decodes one double-delta part of type `t`: bit width (u8), value count (u64), then
/// the values. A width of at least the type's bits minus one means the values follow raw.
pub(crate) fn decode(bytes: &[u8], t: Datatype, path: &str) -> Result<Vec<u8>> {
    let size = t.size();
    let signed = t.is_signed();
    let mut c = Cursor::new(bytes, path);
    let bits = c.u8()? as usize;
    let n = c.u64()?;
    let n = usize::try_from(n).map_err(|_| {
        corrupt(
            path,
            format!("double delta: count {n} does not fit in memory"),
        )
    })?;
    if bits + 1 >= size * 8 {
        return Ok(c.rest().to_vec());
    }
    // A corrupt count must not make us allocate: each value takes at least one bit.
    if n.saturating_sub(2) > c.remaining().saturating_mul(8) + 2 {
        return Err(corrupt(
            path,
            format!(
                "double delta: {n} values cannot fit in {} bytes",
                bytes.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(n * size);
    if n == 0 {
        return Ok(out);
    }
    let mut prev2 = read_int(c.take(size)?, signed);
    out.extend_from_slice(&prev2.to_le_bytes()[..size]);
    if n == 1 {
        return Ok(out);
    }
    let mut prev1 = read_int(c.take(size)?, signed);
    out.extend_from_slice(&prev1.to_le_bytes()[..size]);
    let rest = c.rest();
    let words = le_u64s(&rest[..rest.len() - rest.len() % 8]);
    let total_bits = words.len() * 64;
    let mut pos = 0usize;
    let bit = |p: usize| -> u64 { (words[p / 64] >> (63 - p % 64)) & 1 };
    for _ in 2..n {
        if pos + 1 + bits > total_bits {
            return Err(corrupt(path, "double delta: bit stream is truncated"));
        }
        let negative = bit(pos) == 1;
        pos += 1;
        let mut magnitude = 0u64;
        for _ in 0..bits {
            magnitude = (magnitude << 1) | bit(pos);
            pos += 1;
        }
        let dd = if negative {
            magnitude.wrapping_neg()
        } else {
            magnitude
        };
        let value = dd.wrapping_add(prev1.wrapping_mul(2)).wrapping_sub(prev2);
        out.extend_from_slice(&value.to_le_bytes()[..size]);
        prev2 = prev1;
        prev1 = value;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes like TileDB's writer, for the round-trip test.
    fn encode(values: &[i64], bits: usize) -> Vec<u8> {
        let mut out = vec![bits as u8];
        out.extend_from_slice(&(values.len() as u64).to_le_bytes());
        out.extend_from_slice(&values[0].to_le_bytes());
        out.extend_from_slice(&values[1].to_le_bytes());
        let mut stream: Vec<bool> = Vec::new();
        for i in 2..values.len() {
            let dd = values[i] - 2 * values[i - 1] + values[i - 2];
            stream.push(dd < 0);
            let m = dd.unsigned_abs();
            for b in (0..bits).rev() {
                stream.push((m >> b) & 1 == 1);
            }
        }
        for word in stream.chunks(64) {
            let mut w = 0u64;
            for (i, &b) in word.iter().enumerate() {
                if b {
                    w |= 1 << (63 - i);
                }
            }
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    #[test]
    fn round_trips_a_sequence() -> Result<()> {
        let values: Vec<i64> = vec![0, 3, 9, 10, 10, 4, 100, 101, 102, 50];
        let enc = encode(&values, 7);
        let out = decode(&enc, Datatype::Int64, "f")?;
        let got: Vec<i64> = crate::cursor::le_u64s(&out)
            .into_iter()
            .map(|v| v as i64)
            .collect();
        assert_eq!(got, values);
        assert!(decode(&enc[..enc.len() - 8], Datatype::Int64, "f").is_err());
        Ok(())
    }

    #[test]
    fn raw_when_the_width_is_full() -> Result<()> {
        let mut enc = vec![63u8];
        enc.extend_from_slice(&1u64.to_le_bytes());
        enc.extend_from_slice(&42i64.to_le_bytes());
        assert_eq!(decode(&enc, Datatype::Int64, "f")?, 42i64.to_le_bytes());
        Ok(())
    }
}
