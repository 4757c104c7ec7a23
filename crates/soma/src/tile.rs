//! Tiles: the chunk framing every data tile uses, and generic tiles, the self-describing
//! form (header + pipeline + one tile) of schemas, metadata, group and
//! fragment-metadata files.
//!
//! Exposed for inspection tools and tests: [`decode_generic_tile`] and
//! [`encode_generic_tile_unfiltered`].

use crate::cursor::Cursor;
use crate::datatype::Datatype;
use crate::error::{Result, corrupt, unsupported};
use crate::filter::{FilterPipeline, unfilter_chunk};
use crate::storage::Storage;

/// A tile after its chunks were unfiltered and joined.
#[derive(Debug, Default)]
pub(crate) struct DecodedTile {
    /// The cell bytes.
    pub(crate) data: Vec<u8>,
    /// Cell start offsets into `data`, when the pipeline rebuilt them (dictionary strings).
    pub(crate) offsets: Option<Vec<u64>>,
}

/// The most a tile's announced size reserves before its chunks prove it (16 MiB).
const MAX_RESERVE: usize = 16 << 20;

/// Decodes one tile: a u64 chunk count, then per chunk its unfiltered length, filtered
/// length and metadata length (u32 each), the metadata and the filtered bytes.
/// `var_strings`: string data whose offsets the pipeline rebuilds.
pub(crate) fn decode_tile(
    bytes: &[u8],
    pipeline: &FilterPipeline,
    datatype: Datatype,
    var_strings: bool,
    path: &str,
) -> Result<DecodedTile> {
    let mut c = Cursor::new(bytes, path);
    let chunks = c.count_u64(12)?;
    let mut out = DecodedTile::default();
    for i in 0..chunks {
        let unfiltered_len = c.u32()? as usize;
        let filtered_len = c.u32()? as usize;
        let md_len = c.u32()? as usize;
        let md = c.take(md_len)?;
        let data = c.take(filtered_len)?;
        let chunk = unfilter_chunk(pipeline, datatype, var_strings, md, data, path)?;
        if chunk.data.len() != unfiltered_len {
            return Err(corrupt(
                path,
                format!(
                    "chunk {i} unfiltered to {} bytes, {unfiltered_len} expected",
                    chunk.data.len()
                ),
            ));
        }
        if let Some(offs) = chunk.offsets {
            let base = out.data.len() as u64;
            out.offsets
                .get_or_insert_with(Vec::new)
                .extend(offs.into_iter().map(|o| o + base));
        }
        if i == 0 {
            if chunks == 1 {
                out.data = chunk.data; // one chunk: no copy
                continue;
            }
            // Chunks are of equal size but the last: reserve once (capped, as the
            // count comes from the file).
            out.data
                .reserve(unfiltered_len.saturating_mul(chunks).min(MAX_RESERVE));
        }
        out.data.extend_from_slice(&chunk.data);
    }
    Ok(out)
}

/// Bytes of a generic tile's header before its filter pipeline.
const GENERIC_HEADER: usize = 4 + 8 + 8 + 1 + 8 + 1 + 4;

/// The header of a generic tile.
#[derive(Debug)]
struct GenericHeader {
    persisted_size: usize,
    tile_size: usize,
    datatype: Datatype,
    pipeline_len: usize,
}

fn generic_header(c: &mut Cursor<'_>) -> Result<GenericHeader> {
    let path = c.path();
    let _version = c.u32()?;
    let persisted = c.u64()?;
    let tile_size = c.u64()?;
    let datatype = Datatype::from_code(c.u8()?, path)?;
    let _cell_size = c.u64()?;
    let encryption = c.u8()?;
    if encryption != 0 {
        return Err(unsupported(
            path,
            format!("encrypted tiles (encryption type {encryption})"),
        ));
    }
    let pipeline_len = c.u32()? as usize;
    let size = |v: u64| {
        usize::try_from(v)
            .map_err(|_| corrupt(path, format!("tile size {v} does not fit in memory")))
    };
    Ok(GenericHeader {
        persisted_size: size(persisted)?,
        tile_size: size(tile_size)?,
        datatype,
        pipeline_len,
    })
}

/// Decodes the generic tile at `offset` of `bytes`; returns its bytes and where it ends.
pub(crate) fn read_generic_tile(
    bytes: &[u8],
    offset: usize,
    path: &str,
) -> Result<(Vec<u8>, usize)> {
    let mut c = Cursor::at(bytes, offset, path)?;
    let h = generic_header(&mut c)?;
    let pipeline = FilterPipeline::parse(&mut Cursor::new(c.take(h.pipeline_len)?, path))?;
    let tile = decode_tile(
        c.take(h.persisted_size)?,
        &pipeline,
        h.datatype,
        false,
        path,
    )?;
    if tile.data.len() != h.tile_size {
        return Err(corrupt(
            path,
            format!(
                "generic tile at {offset}: {} bytes decoded, {} expected",
                tile.data.len(),
                h.tile_size
            ),
        ));
    }
    Ok((tile.data, c.pos()))
}

/// Reads and decodes the generic tile at `offset` of file `path` with two range reads
/// (header, then the rest), so a large metadata file is never read whole.
pub(crate) fn fetch_generic_tile(
    storage: &dyn Storage,
    path: &str,
    offset: u64,
) -> Result<Vec<u8>> {
    let loc = storage.location(path);
    let past_end = || {
        corrupt(
            &loc,
            format!("generic tile at offset {offset} runs past any file"),
        )
    };
    let head_end = offset
        .checked_add(GENERIC_HEADER as u64)
        .ok_or_else(past_end)?;
    let head = storage.read_range(path, offset..head_end)?;
    let h = generic_header(&mut Cursor::new(&head, &loc))?;
    let end = (h.pipeline_len as u64)
        .checked_add(h.persisted_size as u64)
        .and_then(|n| n.checked_add(head_end))
        .ok_or_else(past_end)?;
    let bytes = storage.read_range(path, offset..end)?;
    Ok(read_generic_tile(&bytes, 0, &loc)?.0)
}

/// Decodes a whole file that is one generic tile (schema, metadata, group, enumeration,
/// consolidated fragment metadata), for inspection tools and tests.
pub fn decode_generic_tile(bytes: &[u8], path: &str) -> Result<Vec<u8>> {
    Ok(read_generic_tile(bytes, 0, path)?.0)
}

/// Encodes `data` as a generic tile with an empty filter pipeline (one chunk), which
/// TileDB reads like any other; for tests and tools that patch decoded files.
pub fn encode_generic_tile_unfiltered(data: &[u8], version: u32) -> Vec<u8> {
    let mut tile = 1u64.to_le_bytes().to_vec();
    tile.extend_from_slice(&(data.len() as u32).to_le_bytes());
    tile.extend_from_slice(&(data.len() as u32).to_le_bytes());
    tile.extend_from_slice(&0u32.to_le_bytes());
    tile.extend_from_slice(data);
    let mut pipeline = 0u32.to_le_bytes().to_vec();
    pipeline.extend_from_slice(&0u32.to_le_bytes());
    let mut out = version.to_le_bytes().to_vec();
    out.extend_from_slice(&(tile.len() as u64).to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.push(Datatype::Char.code());
    out.extend_from_slice(&1u64.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&(pipeline.len() as u32).to_le_bytes());
    out.extend_from_slice(&pipeline);
    out.extend_from_slice(&tile);
    out
}

/// Reads a file that is one generic tile, refusing trailing bytes.
pub(crate) fn read_generic_file(storage: &dyn Storage, path: &str) -> Result<Vec<u8>> {
    let loc = storage.location(path);
    let bytes = storage.read(path)?;
    let (data, end) = read_generic_tile(&bytes, 0, &loc)?;
    if end != bytes.len() {
        return Err(corrupt(
            &loc,
            format!("{} bytes after the generic tile", bytes.len() - end),
        ));
    }
    Ok(data)
}
