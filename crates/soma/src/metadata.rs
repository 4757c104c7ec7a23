//! Key-value metadata (`__meta/`): one generic tile per write, replayed in timestamp
//! order. SOMA keeps `soma_object_type` and `soma_encoding_version` here.

use std::collections::{BTreeMap, HashSet};

use crate::cursor::Cursor;
use crate::datatype::Datatype;
use crate::error::{Result, corrupt};
use crate::names::sort_by_time;
use crate::storage::{Storage, file_names, join};
use crate::tile::read_generic_file;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    /// Text (char, ASCII or UTF-8).
    String(String),
    /// Signed integers.
    Int(Vec<i64>),
    /// Unsigned integers.
    UInt(Vec<u64>),
    /// Floats.
    Float(Vec<f64>),
    /// Booleans.
    Bool(Vec<bool>),
    /// Any other type, as raw bytes with its datatype.
    Bytes(Datatype, Vec<u8>),
}

impl MetadataValue {
    /// The text, for string values.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetadataValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The single integer, for one-value integer metadata.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            MetadataValue::Int(v) if v.len() == 1 => Some(v[0]),
            MetadataValue::UInt(v) if v.len() == 1 => i64::try_from(v[0]).ok(),
            _ => None,
        }
    }

    /// The single float, for one-value float metadata.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            MetadataValue::Float(v) if v.len() == 1 => Some(v[0]),
            _ => None,
        }
    }

    fn decode(t: Datatype, bytes: &[u8], path: &str) -> Result<Self> {
        let ints = |signed: bool| -> Vec<u64> {
            bytes
                .chunks_exact(t.size())
                .map(|c| crate::filter::read_int(c, signed))
                .collect()
        };
        Ok(match t {
            Datatype::Char | Datatype::StringAscii | Datatype::StringUtf8 => MetadataValue::String(
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| corrupt(path, "metadata string is not UTF-8"))?,
            ),
            Datatype::Int8 | Datatype::Int16 | Datatype::Int32 | Datatype::Int64 => {
                MetadataValue::Int(ints(true).into_iter().map(|v| v as i64).collect())
            }
            Datatype::UInt8 | Datatype::UInt16 | Datatype::UInt32 | Datatype::UInt64 => {
                MetadataValue::UInt(ints(false))
            }
            Datatype::Float32 => MetadataValue::Float(
                bytes
                    .as_chunks::<4>()
                    .0
                    .iter()
                    .map(|c| f64::from(f32::from_le_bytes(*c)))
                    .collect(),
            ),
            Datatype::Float64 => MetadataValue::Float(
                bytes
                    .as_chunks::<8>()
                    .0
                    .iter()
                    .map(|c| f64::from_le_bytes(*c))
                    .collect(),
            ),
            Datatype::Bool => MetadataValue::Bool(bytes.iter().map(|&b| b != 0).collect()),
            other => MetadataValue::Bytes(other, bytes.to_vec()),
        })
    }
}

/// An object's metadata, after replaying every write.
pub type Metadata = BTreeMap<String, MetadataValue>;

/// Names listed in the `.vac` files of `dir`: files consolidated away, to be skipped.
pub(crate) fn vacuumed(
    storage: &dyn Storage,
    dir: &str,
    names: &[String],
) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    for n in names.iter().filter(|n| n.ends_with(".vac")) {
        let bytes = storage.read(&join(dir, n))?;
        for line in String::from_utf8_lossy(&bytes).lines() {
            if let Some(base) = line.trim().rsplit('/').next().filter(|b| !b.is_empty()) {
                out.insert(base.to_string());
            }
        }
    }
    Ok(out)
}

/// The files of `dir` (`__meta/` or `__group/`) that still count, oldest write first:
/// all but the `.vac` lists and the files they name as consolidated away. Both metadata
/// and group members are replayed from such a directory in this order.
pub(crate) fn live_files(storage: &dyn Storage, dir: &str) -> Result<Vec<String>> {
    let names = file_names(storage, dir)?;
    let skip = vacuumed(storage, dir, &names)?;
    let files = names
        .into_iter()
        .filter(|n| !n.ends_with(".vac") && !skip.contains(n));
    Ok(sort_by_time(files).into_iter().map(|(_, n)| n).collect())
}

/// Reads the metadata of the object at `object` (an array or group directory).
pub fn read_metadata(storage: &dyn Storage, object: &str) -> Result<Metadata> {
    let dir = join(object, "__meta");
    let mut out = Metadata::new();
    for name in live_files(storage, &dir)? {
        let path = join(&dir, &name);
        let loc = storage.location(&path);
        let bytes = read_generic_file(storage, &path)?;
        let mut c = Cursor::new(&bytes, &loc);
        while c.remaining() > 0 {
            let key = c.string_u32()?;
            let deleted = c.u8()? != 0;
            if deleted {
                out.remove(&key);
                continue;
            }
            let t = Datatype::from_code(c.u8()?, &loc)?;
            let n = c.u32()? as usize;
            let bytes = c.take(n.saturating_mul(t.size()))?;
            out.insert(key, MetadataValue::decode(t, bytes, &loc)?);
        }
    }
    Ok(out)
}
