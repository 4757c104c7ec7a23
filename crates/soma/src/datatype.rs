//! TileDB's datatype codes, their sizes, and the Arrow type each reads as.

use arrow::datatypes::{DataType, TimeUnit};

use crate::error::{Result, corrupt};

/// A TileDB datatype, as stored (one byte) in schemas, tiles and metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Datatype {
    /// 32-bit signed integer.
    Int32,
    /// 64-bit signed integer.
    Int64,
    /// 32-bit float.
    Float32,
    /// 64-bit float.
    Float64,
    /// A byte of text.
    Char,
    /// 8-bit signed integer.
    Int8,
    /// 8-bit unsigned integer.
    UInt8,
    /// 16-bit signed integer.
    Int16,
    /// 16-bit unsigned integer.
    UInt16,
    /// 32-bit unsigned integer.
    UInt32,
    /// 64-bit unsigned integer.
    UInt64,
    /// ASCII string bytes.
    StringAscii,
    /// UTF-8 string bytes.
    StringUtf8,
    /// UTF-16 string units (legacy).
    StringUtf16,
    /// UTF-32 string units (legacy).
    StringUtf32,
    /// UCS-2 string units (legacy).
    StringUcs2,
    /// UCS-4 string units (legacy).
    StringUcs4,
    /// Untyped bytes (legacy).
    Any,
    /// A date-time as i64 in the unit (code 18..=30: year .. attosecond).
    DateTime(u8),
    /// A time of day as i64 in the unit (code 31..=39: hour .. attosecond).
    Time(u8),
    /// Opaque bytes.
    Blob,
    /// A boolean, one byte per value.
    Bool,
    /// Well-known-binary geometry.
    GeomWkb,
    /// Well-known-text geometry.
    GeomWkt,
}

impl Datatype {
    /// The datatype of code `code`; `path` names the file for the error.
    pub fn from_code(code: u8, path: &str) -> Result<Self> {
        Ok(match code {
            0 => Datatype::Int32,
            1 => Datatype::Int64,
            2 => Datatype::Float32,
            3 => Datatype::Float64,
            4 => Datatype::Char,
            5 => Datatype::Int8,
            6 => Datatype::UInt8,
            7 => Datatype::Int16,
            8 => Datatype::UInt16,
            9 => Datatype::UInt32,
            10 => Datatype::UInt64,
            11 => Datatype::StringAscii,
            12 => Datatype::StringUtf8,
            13 => Datatype::StringUtf16,
            14 => Datatype::StringUtf32,
            15 => Datatype::StringUcs2,
            16 => Datatype::StringUcs4,
            17 => Datatype::Any,
            18..=30 => Datatype::DateTime(code),
            31..=39 => Datatype::Time(code),
            40 => Datatype::Blob,
            41 => Datatype::Bool,
            42 => Datatype::GeomWkb,
            43 => Datatype::GeomWkt,
            _ => return Err(corrupt(path, format!("unknown datatype code {code}"))),
        })
    }

    /// The on-disk code.
    pub fn code(self) -> u8 {
        match self {
            Datatype::Int32 => 0,
            Datatype::Int64 => 1,
            Datatype::Float32 => 2,
            Datatype::Float64 => 3,
            Datatype::Char => 4,
            Datatype::Int8 => 5,
            Datatype::UInt8 => 6,
            Datatype::Int16 => 7,
            Datatype::UInt16 => 8,
            Datatype::UInt32 => 9,
            Datatype::UInt64 => 10,
            Datatype::StringAscii => 11,
            Datatype::StringUtf8 => 12,
            Datatype::StringUtf16 => 13,
            Datatype::StringUtf32 => 14,
            Datatype::StringUcs2 => 15,
            Datatype::StringUcs4 => 16,
            Datatype::Any => 17,
            Datatype::DateTime(c) | Datatype::Time(c) => c,
            Datatype::Blob => 40,
            Datatype::Bool => 41,
            Datatype::GeomWkb => 42,
            Datatype::GeomWkt => 43,
        }
    }

    /// Bytes per value.
    pub fn size(self) -> usize {
        match self {
            Datatype::Char
            | Datatype::Int8
            | Datatype::UInt8
            | Datatype::StringAscii
            | Datatype::StringUtf8
            | Datatype::Any
            | Datatype::Blob
            | Datatype::Bool
            | Datatype::GeomWkb
            | Datatype::GeomWkt => 1,
            Datatype::Int16 | Datatype::UInt16 | Datatype::StringUtf16 | Datatype::StringUcs2 => 2,
            Datatype::Int32
            | Datatype::UInt32
            | Datatype::Float32
            | Datatype::StringUtf32
            | Datatype::StringUcs4 => 4,
            Datatype::Int64
            | Datatype::UInt64
            | Datatype::Float64
            | Datatype::DateTime(_)
            | Datatype::Time(_) => 8,
        }
    }

    /// Whether values are integers for the integer codecs (bit-width reduction, positive
    /// delta, double delta): the integer types and the date/time types.
    pub fn is_integer_like(self) -> bool {
        self.is_integer() || matches!(self, Datatype::DateTime(_) | Datatype::Time(_))
    }

    /// Whether the type is one of the eight integer types (what positive delta encodes).
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            Datatype::Int8
                | Datatype::UInt8
                | Datatype::Int16
                | Datatype::UInt16
                | Datatype::Int32
                | Datatype::UInt32
                | Datatype::Int64
                | Datatype::UInt64
        )
    }

    /// Whether integer values are signed (date/time values are i64).
    pub fn is_signed(self) -> bool {
        matches!(
            self,
            Datatype::Int8
                | Datatype::Int16
                | Datatype::Int32
                | Datatype::Int64
                | Datatype::DateTime(_)
                | Datatype::Time(_)
        )
    }

    /// Whether the bytes are text (char, ASCII or UTF-8 strings).
    pub fn is_string(self) -> bool {
        matches!(
            self,
            Datatype::Char | Datatype::StringAscii | Datatype::StringUtf8
        )
    }

    /// The TileDB name, for messages.
    pub fn name(self) -> String {
        match self {
            Datatype::DateTime(c) => format!("DATETIME({c})"),
            Datatype::Time(c) => format!("TIME({c})"),
            other => format!("{other:?}").to_uppercase(),
        }
    }

    /// The Arrow type a fixed-size, one-value-per-cell field of this type reads as
    /// (`None` for types without a natural Arrow counterpart).
    pub fn arrow_type(self) -> Option<DataType> {
        Some(match self {
            Datatype::Int8 => DataType::Int8,
            Datatype::Int16 => DataType::Int16,
            Datatype::Int32 => DataType::Int32,
            Datatype::Int64 => DataType::Int64,
            Datatype::UInt8 => DataType::UInt8,
            Datatype::UInt16 => DataType::UInt16,
            Datatype::UInt32 => DataType::UInt32,
            Datatype::UInt64 => DataType::UInt64,
            Datatype::Float32 => DataType::Float32,
            Datatype::Float64 => DataType::Float64,
            Datatype::Bool => DataType::Boolean,
            Datatype::DateTime(24) => DataType::Timestamp(TimeUnit::Second, None),
            Datatype::DateTime(25) => DataType::Timestamp(TimeUnit::Millisecond, None),
            Datatype::DateTime(26) => DataType::Timestamp(TimeUnit::Microsecond, None),
            Datatype::DateTime(27) => DataType::Timestamp(TimeUnit::Nanosecond, None),
            Datatype::DateTime(_) | Datatype::Time(_) => DataType::Int64,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in 0..=43u8 {
            let t = Datatype::from_code(code, "f").ok();
            assert_eq!(t.map(Datatype::code), Some(code));
        }
        assert!(Datatype::from_code(44, "f").is_err());
    }
}
