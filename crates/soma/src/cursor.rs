//! A bounds-checked little-endian reader over a byte slice. Every read returns a
//! `Result` naming the file, so truncated or corrupt input is an error, never a panic.

use crate::error::{Result, corrupt};

/// A position in a byte slice, with the file it came from for error messages.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    path: &'a str,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`, which was read from `path`.
    pub(crate) fn new(buf: &'a [u8], path: &'a str) -> Self {
        Cursor { buf, pos: 0, path }
    }

    /// A cursor at `pos` of `buf`.
    pub(crate) fn at(buf: &'a [u8], pos: usize, path: &'a str) -> Result<Self> {
        if pos > buf.len() {
            return Err(corrupt(
                path,
                format!("offset {pos} is past the end ({} bytes)", buf.len()),
            ));
        }
        Ok(Cursor { buf, pos, path })
    }

    /// The file name errors carry.
    pub(crate) fn path(&self) -> &'a str {
        self.path
    }

    /// The current offset.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(corrupt(
                self.path,
                format!(
                    "truncated: {n} bytes wanted at offset {}, {} left",
                    self.pos,
                    self.remaining()
                ),
            ));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// The next `n` bytes, `n` read from the file as a u64.
    pub(crate) fn take_u64_len(&mut self, n: u64) -> Result<&'a [u8]> {
        let n = usize::try_from(n)
            .map_err(|_| corrupt(self.path, format!("length {n} does not fit in memory")))?;
        self.take(n)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A u8.
    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// A little-endian u32.
    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian i32.
    pub(crate) fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_le_bytes(self.array()?))
    }

    /// A little-endian u64.
    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A u32 count, checked against what is left assuming each item takes at least
    /// `min_item` bytes, so a corrupt count cannot make us allocate wildly.
    pub(crate) fn count_u32(&mut self, min_item: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        self.check_count(n, min_item)
    }

    /// A u64 count, checked like [`Cursor::count_u32`].
    pub(crate) fn count_u64(&mut self, min_item: usize) -> Result<usize> {
        let n = self.u64()?;
        let n = usize::try_from(n)
            .map_err(|_| corrupt(self.path, format!("count {n} does not fit in memory")))?;
        self.check_count(n, min_item)
    }

    fn check_count(&self, n: usize, min_item: usize) -> Result<usize> {
        if n.saturating_mul(min_item) > self.remaining() {
            return Err(corrupt(
                self.path,
                format!(
                    "count {n} at offset {} needs more bytes than the {} left",
                    self.pos,
                    self.remaining()
                ),
            ));
        }
        Ok(n)
    }

    /// A UTF-8 string of `n` bytes.
    pub(crate) fn string(&mut self, n: usize) -> Result<String> {
        let at = self.pos;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| corrupt(self.path, format!("string at offset {at} is not UTF-8")))
    }

    /// A string prefixed by its u32 length.
    pub(crate) fn string_u32(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        self.string(n)
    }

    /// A string prefixed by its u64 length.
    pub(crate) fn string_u64(&mut self) -> Result<String> {
        let n = self.u64()?;
        let n = usize::try_from(n)
            .map_err(|_| corrupt(self.path, format!("length {n} does not fit in memory")))?;
        self.string(n)
    }

    /// A list of u64 values prefixed by their u64 count.
    pub(crate) fn u64_list(&mut self) -> Result<Vec<u64>> {
        let n = self.count_u64(8)?;
        let bytes = self.take(n * 8)?;
        Ok(le_u64s(bytes))
    }
}

/// A capacity to reserve for `n` items announced by a file: at most 4M, so a corrupt
/// count cannot make us allocate wildly before the data proves it.
pub(crate) fn capacity_hint(n: usize) -> usize {
    n.min(1 << 22)
}

/// A big-endian unsigned integer of up to 8 bytes (the string codecs' ids, run lengths
/// and length prefixes).
pub(crate) fn be_uint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

/// The little-endian u64 values of `bytes` (whose length is a multiple of 8).
pub(crate) fn le_u64s(bytes: &[u8]) -> Vec<u64> {
    let (chunks, _) = bytes.as_chunks::<8>();
    chunks.iter().map(|c| u64::from_le_bytes(*c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_and_refuses_short_input() {
        let bytes = [1u8, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 9];
        let mut c = Cursor::new(&bytes, "f");
        assert_eq!(c.u32().ok(), Some(1));
        assert_eq!(c.u64().ok(), Some(2));
        assert_eq!(c.u8().ok(), Some(9));
        let err = c.u32().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("f: corrupt: truncated"), "{err}");
    }

    #[test]
    fn refuses_counts_larger_than_the_input() {
        let bytes = [255u8, 255, 255, 255, 0];
        let mut c = Cursor::new(&bytes, "f");
        assert!(c.count_u32(1).is_err());
    }
}
