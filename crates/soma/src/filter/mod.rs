//! Filter pipelines: their serialised form (in schemas and generic tiles) and undoing
//! them on one chunk.
//!
//! TileDB runs a pipeline forward when writing; reading runs it in reverse. Each filter
//! takes a (metadata, data) pair and returns a new pair. Compression-style filters keep
//! the earlier filters' metadata *inside* their compressed parts, so undoing them yields
//! the metadata for the next filter; the other filters take their header off the front of
//! the metadata and pass the rest on. The datatype each filter sees is the tile's, changed
//! only by a delta or double-delta reinterpret type.

mod bit_width;
pub(crate) use bit_width::read_int;
mod byteshuffle;
mod codec;
mod delta;
mod dictionary;
mod double_delta;
mod rle_strings;

use crate::cursor::Cursor;
use crate::datatype::Datatype;
use crate::error::{Result, SomaError, corrupt};

/// A filter type, with TileDB's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterType {
    /// No-op (0).
    None,
    /// Gzip / zlib (1).
    Gzip,
    /// Zstandard (2).
    Zstd,
    /// LZ4 block format (3).
    Lz4,
    /// Run-length encoding (4).
    Rle,
    /// Bzip2 (5).
    Bzip2,
    /// Double delta (6).
    DoubleDelta,
    /// Bit-width reduction (7).
    BitWidthReduction,
    /// Bit shuffle (8).
    Bitshuffle,
    /// Byte shuffle (9).
    Byteshuffle,
    /// Positive delta (10).
    PositiveDelta,
    /// MD5 checksum (12).
    ChecksumMd5,
    /// SHA-256 checksum (13).
    ChecksumSha256,
    /// Dictionary-encoded strings (14).
    Dictionary,
    /// Float scaling (15).
    ScaleFloat,
    /// XOR (16).
    Xor,
    /// WebP images (18).
    Webp,
    /// Delta (19).
    Delta,
    /// A code this reader does not know.
    Unknown(u8),
}

impl FilterType {
    /// The filter type of `code`.
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => FilterType::None,
            1 => FilterType::Gzip,
            2 => FilterType::Zstd,
            3 => FilterType::Lz4,
            4 => FilterType::Rle,
            5 => FilterType::Bzip2,
            6 => FilterType::DoubleDelta,
            7 => FilterType::BitWidthReduction,
            8 => FilterType::Bitshuffle,
            9 => FilterType::Byteshuffle,
            10 => FilterType::PositiveDelta,
            12 => FilterType::ChecksumMd5,
            13 => FilterType::ChecksumSha256,
            14 => FilterType::Dictionary,
            15 => FilterType::ScaleFloat,
            16 => FilterType::Xor,
            18 => FilterType::Webp,
            19 => FilterType::Delta,
            other => FilterType::Unknown(other),
        }
    }

    /// TileDB's name for the filter, for messages.
    pub fn name(self) -> String {
        match self {
            FilterType::None => "NONE".into(),
            FilterType::Gzip => "GZIP".into(),
            FilterType::Zstd => "ZSTD".into(),
            FilterType::Lz4 => "LZ4".into(),
            FilterType::Rle => "RLE".into(),
            FilterType::Bzip2 => "BZIP2".into(),
            FilterType::DoubleDelta => "DOUBLE_DELTA".into(),
            FilterType::BitWidthReduction => "BIT_WIDTH_REDUCTION".into(),
            FilterType::Bitshuffle => "BITSHUFFLE".into(),
            FilterType::Byteshuffle => "BYTESHUFFLE".into(),
            FilterType::PositiveDelta => "POSITIVE_DELTA".into(),
            FilterType::ChecksumMd5 => "CHECKSUM_MD5".into(),
            FilterType::ChecksumSha256 => "CHECKSUM_SHA256".into(),
            FilterType::Dictionary => "DICTIONARY".into(),
            FilterType::ScaleFloat => "SCALE_FLOAT".into(),
            FilterType::Xor => "XOR".into(),
            FilterType::Webp => "WEBP".into(),
            FilterType::Delta => "DELTA".into(),
            FilterType::Unknown(code) => format!("unknown filter type {code}"),
        }
    }

    /// Whether the filter uses the compressor protocol (metadata parts and data parts,
    /// each compressed on its own) and the compressor options.
    fn is_compressor(self) -> bool {
        matches!(
            self,
            FilterType::Gzip
                | FilterType::Zstd
                | FilterType::Lz4
                | FilterType::Rle
                | FilterType::Bzip2
                | FilterType::DoubleDelta
                | FilterType::Delta
                | FilterType::Dictionary
        )
    }
}

/// One filter of a pipeline with its options.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The filter type.
    pub kind: FilterType,
    /// Compression level, for compressors.
    pub level: Option<i32>,
    /// The type delta and double delta reinterpret the data as (`None`: the tile's type).
    pub reinterpret: Option<Datatype>,
    /// Maximum window in bytes, for bit-width reduction and positive delta.
    pub max_window: Option<u32>,
    /// The raw options of filters whose options are not decoded (float scale, ...).
    pub raw_options: Vec<u8>,
}

/// A filter pipeline: filters applied in order on write, undone in reverse on read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FilterPipeline {
    /// Maximum chunk size in bytes.
    pub max_chunk_size: u32,
    /// The filters, in write order.
    pub filters: Vec<Filter>,
}

impl FilterPipeline {
    /// Reads a serialised pipeline at the cursor.
    pub(crate) fn parse(c: &mut Cursor<'_>) -> Result<Self> {
        let max_chunk_size = c.u32()?;
        let n = c.count_u32(5)?;
        let mut filters = Vec::with_capacity(n);
        for _ in 0..n {
            let kind = FilterType::from_code(c.u8()?);
            let len = c.u32()? as usize;
            let opts = c.take(len)?;
            let mut o = Cursor::new(opts, c.path());
            let mut f = Filter {
                kind,
                level: None,
                reinterpret: None,
                max_window: None,
                raw_options: Vec::new(),
            };
            if kind.is_compressor() && !opts.is_empty() {
                let _compressor = o.u8()?;
                f.level = Some(o.i32()?);
                if o.remaining() > 0 {
                    let t = o.u8()?;
                    // ANY (17) means "no reinterpretation".
                    if t != 17 {
                        f.reinterpret = Some(Datatype::from_code(t, c.path())?);
                    }
                }
            } else if matches!(
                kind,
                FilterType::BitWidthReduction | FilterType::PositiveDelta
            ) && !opts.is_empty()
            {
                f.max_window = Some(o.u32()?);
            } else {
                f.raw_options = opts.to_vec();
            }
            filters.push(f);
        }
        Ok(FilterPipeline {
            max_chunk_size,
            filters,
        })
    }

    /// Whether variable-size data of `datatype` through this pipeline is stored without
    /// offsets: the dictionary filter and RLE on ASCII/UTF-8 strings rebuild them.
    pub fn rebuilds_offsets(&self, datatype: Datatype) -> bool {
        matches!(datatype, Datatype::StringAscii | Datatype::StringUtf8)
            && self
                .filters
                .iter()
                .any(|f| matches!(f.kind, FilterType::Dictionary | FilterType::Rle))
    }

    /// A short description such as `BYTESHUFFLE+ZSTD(9)`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .filters
            .iter()
            .map(|f| match f.level {
                Some(l)
                    if matches!(
                        f.kind,
                        FilterType::Gzip | FilterType::Zstd | FilterType::Lz4
                    ) =>
                {
                    format!("{}({l})", f.kind.name())
                }
                _ => f.kind.name(),
            })
            .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join("+")
        }
    }
}

/// The head of the chunk metadata that both string codecs (dictionary and RLE strings)
/// write: the two part counts, the unfiltered size, the encoded data's byte size and the
/// offsets' byte size (u32 each), then two widths (u8 each).
struct StringsHeader {
    /// The size of the decoded strings.
    unfiltered: usize,
    /// The byte size of the encoded data (the ids, or the runs).
    data_len: usize,
    /// The byte size of the cell offsets (8 per cell).
    offsets_len: usize,
    /// The width of an id (dictionary) or of a run length (RLE).
    first_width: usize,
    /// The width of a string length.
    len_width: usize,
}

impl StringsHeader {
    fn parse(md: &mut Cursor<'_>) -> Result<Self> {
        let _parts_md = md.u32()?;
        let _parts_data = md.u32()?;
        Ok(StringsHeader {
            unfiltered: md.u32()? as usize,
            data_len: md.u32()? as usize,
            offsets_len: md.u32()? as usize,
            first_width: md.u8()? as usize,
            len_width: md.u8()? as usize,
        })
    }
}

/// One chunk after the pipeline was undone.
#[derive(Debug, Default)]
pub(crate) struct Unfiltered {
    /// The bytes.
    pub(crate) data: Vec<u8>,
    /// Cell start offsets, relative to the chunk, when the pipeline rebuilt them
    /// (dictionary-encoded strings).
    pub(crate) offsets: Option<Vec<u64>>,
}

/// Undoes `pipeline` on one chunk of a tile of type `datatype`, read from `path`.
/// `var_strings`: the chunk is variable-size string data whose offsets the dictionary
/// or RLE filter rebuilds ([`FilterPipeline::rebuilds_offsets`]).
pub(crate) fn unfilter_chunk(
    pipeline: &FilterPipeline,
    datatype: Datatype,
    var_strings: bool,
    metadata: &[u8],
    data: &[u8],
    path: &str,
) -> Result<Unfiltered> {
    // The datatype each filter worked on when writing: a delta or double delta with a
    // reinterpret type works on that type and passes it on.
    let mut types = Vec::with_capacity(pipeline.filters.len());
    let mut t = datatype;
    for f in &pipeline.filters {
        if matches!(f.kind, FilterType::Delta | FilterType::DoubleDelta)
            && let Some(r) = f.reinterpret
        {
            t = r;
        }
        types.push(t);
    }
    let mut md: Vec<u8> = metadata.to_vec();
    let mut data: Vec<u8> = data.to_vec();
    let mut offsets = None;
    for (f, &t) in pipeline.filters.iter().zip(&types).rev() {
        let mut c = Cursor::new(&md, path);
        match f.kind {
            FilterType::None => continue,
            FilterType::Dictionary if var_strings => {
                let (strings, offs) = dictionary::decode(&mut c, &data)?;
                data = strings;
                offsets = Some(offs);
            }
            FilterType::Rle if var_strings => {
                let (strings, offs) = rle_strings::decode(&mut c, &data)?;
                data = strings;
                offsets = Some(offs);
            }
            kind if kind.is_compressor() => {
                let (new_md, new_data) = undo_compressor(kind, t, &mut c, &data)?;
                let mut next = new_md;
                next.extend_from_slice(c.rest());
                md = next;
                data = new_data;
                continue;
            }
            FilterType::Byteshuffle => data = byteshuffle::unshuffle(&mut c, &data, t.size())?,
            FilterType::BitWidthReduction => {
                if !t.is_integer_like() || t.size() == 1 {
                    continue; // the filter does nothing on these types
                }
                data = bit_width::expand(&mut c, &data, t)?;
            }
            FilterType::PositiveDelta => {
                if !t.is_integer() {
                    continue;
                }
                data = delta::undo_positive_delta(&mut c, &data, t.size())?;
            }
            FilterType::ChecksumMd5 | FilterType::ChecksumSha256 => {
                // Checksums are not verified: skip the per-part (size, digest) records.
                let digest = if f.kind == FilterType::ChecksumMd5 {
                    16
                } else {
                    32
                };
                let parts = c.u32()? as usize + c.u32()? as usize;
                for _ in 0..parts {
                    c.u64()?;
                    c.take(digest)?;
                }
            }
            other => {
                return Err(SomaError::UnsupportedFilter {
                    path: path.into(),
                    filter: other.name(),
                });
            }
        }
        md = c.rest().to_vec();
    }
    Ok(Unfiltered { data, offsets })
}

/// Undoes one compression-style filter: metadata parts then data parts, each
/// decompressed on its own. Returns (metadata for the next filter, data).
fn undo_compressor(
    kind: FilterType,
    t: Datatype,
    md: &mut Cursor<'_>,
    data: &[u8],
) -> Result<(Vec<u8>, Vec<u8>)> {
    let path = md.path();
    let n_md = md.u32()? as usize;
    let n_data = md.u32()? as usize;
    let mut input = Cursor::new(data, path);
    let mut new_md = Vec::new();
    let mut new_data = Vec::new();
    for part in 0..n_md.saturating_add(n_data) {
        let unfiltered_len = md.u32()? as usize;
        let filtered_len = md.u32()? as usize;
        let bytes = input.take(filtered_len)?;
        let out = match kind {
            FilterType::Gzip => codec::inflate(bytes, unfiltered_len, path)?,
            FilterType::Zstd => codec::zstd(bytes, unfiltered_len, path)?,
            FilterType::Lz4 => codec::lz4(bytes, unfiltered_len, path)?,
            FilterType::Rle => codec::rle(bytes, t.size(), path)?,
            FilterType::DoubleDelta => double_delta::decode(bytes, t, path)?,
            FilterType::Delta => delta::undo_delta(bytes, t, path)?,
            other => {
                return Err(SomaError::UnsupportedFilter {
                    path: path.into(),
                    filter: other.name(),
                });
            }
        };
        if out.len() != unfiltered_len {
            return Err(corrupt(
                path,
                format!(
                    "{} part {part} gave {} bytes, {unfiltered_len} expected",
                    kind.name(),
                    out.len()
                ),
            ));
        }
        if part < n_md {
            new_md.extend_from_slice(&out);
        } else {
            new_data.extend_from_slice(&out);
        }
    }
    Ok((new_md, new_data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compressor(kind: u8, level: i32) -> Vec<u8> {
        let mut v = vec![kind];
        v.extend_from_slice(&5u32.to_le_bytes());
        v.push(kind);
        v.extend_from_slice(&level.to_le_bytes());
        v
    }

    #[test]
    fn parses_a_pipeline() -> Result<()> {
        let mut bytes = 65536u32.to_le_bytes().to_vec();
        bytes.extend_from_slice(&2u32.to_le_bytes());
        bytes.extend_from_slice(&[9, 0, 0, 0, 0]);
        bytes.extend_from_slice(&compressor(2, 9));
        let p = FilterPipeline::parse(&mut Cursor::new(&bytes, "f"))?;
        assert_eq!(p.describe(), "BYTESHUFFLE+ZSTD(9)");
        Ok(())
    }

    #[test]
    fn unknown_filters_are_named_in_the_error() {
        let p = FilterPipeline {
            max_chunk_size: 0,
            filters: vec![Filter {
                kind: FilterType::Xor,
                level: None,
                reinterpret: None,
                max_window: None,
                raw_options: vec![],
            }],
        };
        let err =
            unfilter_chunk(&p, Datatype::Int32, false, &[], &[1, 2, 3, 4], "dir/a0.tdb").err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("dir/a0.tdb") && msg.contains("XOR"), "{msg}");
    }

    #[test]
    fn skips_checksums_and_passes_the_data_on() -> Result<()> {
        let filter = |kind| Filter {
            kind,
            level: None,
            reinterpret: None,
            max_window: None,
            raw_options: vec![],
        };
        let p = FilterPipeline {
            max_chunk_size: 0,
            filters: vec![
                filter(FilterType::ChecksumMd5),
                filter(FilterType::ChecksumSha256),
            ],
        };
        // Reverse order: SHA-256 (one data part: size + 32 bytes), then MD5 (size + 16).
        let mut md = 0u32.to_le_bytes().to_vec();
        md.extend_from_slice(&1u32.to_le_bytes());
        md.extend_from_slice(&4u64.to_le_bytes());
        md.extend_from_slice(&[0xAB; 32]);
        md.extend_from_slice(&0u32.to_le_bytes());
        md.extend_from_slice(&1u32.to_le_bytes());
        md.extend_from_slice(&4u64.to_le_bytes());
        md.extend_from_slice(&[0xCD; 16]);
        let out = unfilter_chunk(&p, Datatype::Int32, false, &md, &[1, 2, 3, 4], "t")?;
        assert_eq!(out.data, vec![1, 2, 3, 4]);
        assert!(unfilter_chunk(&p, Datatype::Int32, false, &md[..40], &[1, 2, 3, 4], "t").is_err());
        Ok(())
    }

    #[test]
    fn undoes_zstd_with_the_part_protocol() -> Result<()> {
        let raw: Vec<u8> = (0..1000u32).flat_map(|v| v.to_le_bytes()).collect();
        let packed = zstd::bulk::compress(&raw, 3).map_err(|e| corrupt("t", e.to_string()))?;
        let mut md = 0u32.to_le_bytes().to_vec();
        md.extend_from_slice(&1u32.to_le_bytes());
        md.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        md.extend_from_slice(&(packed.len() as u32).to_le_bytes());
        let p = FilterPipeline {
            max_chunk_size: 0,
            filters: vec![Filter {
                kind: FilterType::Zstd,
                level: Some(3),
                reinterpret: None,
                max_window: None,
                raw_options: vec![],
            }],
        };
        let out = unfilter_chunk(&p, Datatype::UInt32, false, &md, &packed, "t")?;
        assert_eq!(out.data, raw);
        Ok(())
    }
}
