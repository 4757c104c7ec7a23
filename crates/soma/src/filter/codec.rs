//! The general-purpose decompressors: gzip (zlib stream), zstd, LZ4 block, and RLE of
//! fixed-size values.

use std::cell::RefCell;
use std::io::Read;

use crate::error::{Result, corrupt};

/// Inflates a zlib stream (TileDB's GZIP filter) of `expected` bytes.
pub(crate) fn inflate(bytes: &[u8], expected: usize, path: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(crate::cursor::capacity_hint(expected));
    flate2::read::ZlibDecoder::new(bytes)
        .take(expected as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(path, format!("gzip: {e}")))?;
    Ok(out)
}

/// Decompresses one zstd frame of `expected` bytes. The frame header's content size
/// (TileDB writes it) must agree before `expected` bytes are allocated; without one the
/// frame is streamed.
pub(crate) fn zstd(bytes: &[u8], expected: usize, path: &str) -> Result<Vec<u8>> {
    match zstd::zstd_safe::get_frame_content_size(bytes) {
        Ok(Some(n)) if n == expected as u64 => {
            zstd_bulk(bytes, expected).map_err(|e| corrupt(path, format!("zstd: {e}")))
        }
        Ok(Some(n)) => Err(corrupt(
            path,
            format!("zstd: frame holds {n} bytes, {expected} expected"),
        )),
        _ => {
            let mut out = Vec::with_capacity(crate::cursor::capacity_hint(expected));
            zstd::stream::read::Decoder::with_buffer(bytes)
                .and_then(|d| d.take(expected as u64 + 1).read_to_end(&mut out))
                .map_err(|e| corrupt(path, format!("zstd: {e}")))?;
            Ok(out)
        }
    }
}

thread_local! {
    /// One zstd decompression context per thread: creating one per chunk (what
    /// `zstd::bulk::decompress` does) costs as much as decoding a small chunk.
    static ZSTD_CONTEXT: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Decompresses a frame of known content size with this thread's context.
fn zstd_bulk(bytes: &[u8], expected: usize) -> std::io::Result<Vec<u8>> {
    ZSTD_CONTEXT.with(|cell| {
        let mut slot = cell.borrow_mut();
        let ctx = match slot.as_mut() {
            Some(ctx) => ctx,
            None => slot.insert(zstd::bulk::Decompressor::new()?),
        };
        ctx.decompress(bytes, expected)
    })
}

/// Decompresses an LZ4 block of `expected` bytes.
pub(crate) fn lz4(bytes: &[u8], expected: usize, path: &str) -> Result<Vec<u8>> {
    // LZ4 expands at most about 255 times; refuse to allocate more than that.
    if expected > bytes.len().saturating_mul(255).saturating_add(64) {
        return Err(corrupt(
            path,
            format!(
                "lz4: {expected} bytes cannot come from {} bytes",
                bytes.len()
            ),
        ));
    }
    lz4_flex::block::decompress(bytes, expected).map_err(|e| corrupt(path, format!("lz4: {e}")))
}

/// Expands runs of fixed-size values: each run is the value (`size` bytes) then its
/// length as a big-endian u16.
pub(crate) fn rle(bytes: &[u8], size: usize, path: &str) -> Result<Vec<u8>> {
    let run = size + 2;
    if !bytes.len().is_multiple_of(run) {
        return Err(corrupt(
            path,
            format!(
                "RLE: {} bytes is not a whole number of {run}-byte runs",
                bytes.len()
            ),
        ));
    }
    let mut out = Vec::new();
    for r in bytes.chunks_exact(run) {
        let (value, len) = r.split_at(size);
        let n = u16::from_be_bytes([len[0], len[1]]) as usize;
        for _ in 0..n {
            out.extend_from_slice(value);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn rle_expands_big_endian_runs() -> Result<()> {
        assert_eq!(rle(&[1, 0, 3, 0, 0, 2], 1, "f")?, vec![1, 1, 1, 0, 0]);
        assert_eq!(rle(&[7, 0, 0, 1], 2, "f")?, vec![7, 0]);
        assert!(rle(&[1, 0], 1, "f").is_err());
        Ok(())
    }

    #[test]
    fn inflates_zlib_and_lz4() -> Result<()> {
        let raw = b"hello hello hello hello".to_vec();
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&raw)
            .map_err(|e| corrupt("t", e.to_string()))?;
        let z = enc.finish().map_err(|e| corrupt("t", e.to_string()))?;
        assert_eq!(inflate(&z, raw.len(), "t")?, raw);
        assert!(
            inflate(&z[..z.len() / 2], raw.len(), "t").is_err()
                || inflate(&z[..z.len() / 2], raw.len(), "t")? != raw
        );
        let l = lz4_flex::block::compress(&raw);
        assert_eq!(lz4(&l, raw.len(), "t")?, raw);
        assert!(zstd(&[1, 2, 3], 10, "t").is_err());
        Ok(())
    }
}
