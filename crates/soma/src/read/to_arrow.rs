//! The gathered cells as Arrow arrays: primitives, booleans, timestamps, large strings
//! and binaries, and dictionary arrays for enumerated attributes.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, DictionaryArray, LargeBinaryArray, LargeStringArray, PrimitiveArray,
    StringArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{
    ArrowDictionaryKeyType, DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};

use super::ColumnSpec;
use super::column::Column;
use crate::array::TileDbArray;
use crate::datatype::Datatype;
use crate::error::{Result, SomaError, corrupt, unsupported};
use crate::schema::VAR_NUM;

/// The gathered cells of `spec` as an Arrow array of `array`'s column.
pub(super) fn column_to_arrow(
    array: &TileDbArray,
    spec: &ColumnSpec,
    col: Column,
) -> Result<ArrayRef> {
    let loc = array.location();
    let arrow_err = |source| SomaError::Arrow {
        path: loc.clone(),
        source,
    };
    let nulls = if spec.nullable {
        Some(NullBuffer::from(col.validity.clone()))
    } else {
        None
    };
    if spec.var {
        let mut offsets = col.offsets;
        if offsets.is_empty() {
            offsets.push(0);
        }
        let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
        return Ok(if spec.datatype.is_string() {
            Arc::new(LargeStringArray::try_new(offsets, col.data.into(), nulls).map_err(arrow_err)?)
        } else {
            Arc::new(LargeBinaryArray::try_new(offsets, col.data.into(), nulls).map_err(arrow_err)?)
        });
    }
    if let Some(enum_name) = &spec.enumeration {
        let e = array.enumeration(enum_name).ok_or_else(|| {
            corrupt(
                &loc,
                format!("enumeration {enum_name} of {} is missing", spec.name),
            )
        })?;
        let values: ArrayRef = if e.cell_val_num == VAR_NUM {
            Arc::new(StringArray::from(e.strings(&loc)?))
        } else {
            primitive(e.datatype, &e.data, None, &loc)?
        };
        return match spec.datatype {
            Datatype::Int8 => dictionary::<Int8Type>(&col, nulls, values, &loc),
            Datatype::Int16 => dictionary::<Int16Type>(&col, nulls, values, &loc),
            Datatype::Int32 => dictionary::<Int32Type>(&col, nulls, values, &loc),
            Datatype::Int64 => dictionary::<Int64Type>(&col, nulls, values, &loc),
            Datatype::UInt8 => dictionary::<UInt8Type>(&col, nulls, values, &loc),
            Datatype::UInt16 => dictionary::<UInt16Type>(&col, nulls, values, &loc),
            Datatype::UInt32 => dictionary::<UInt32Type>(&col, nulls, values, &loc),
            Datatype::UInt64 => dictionary::<UInt64Type>(&col, nulls, values, &loc),
            other => Err(unsupported(
                &loc,
                format!("enumeration codes of type {}", other.name()),
            )),
        };
    }
    primitive(spec.datatype, &col.data, nulls, &loc)
}

/// A dictionary array of codes `K` (nulls' codes are zeroed so they never point past the
/// values).
fn dictionary<K: ArrowDictionaryKeyType>(
    col: &Column,
    nulls: Option<NullBuffer>,
    values: ArrayRef,
    loc: &str,
) -> Result<ArrayRef>
where
    K::Native: num_like::FromLe,
{
    let mut keys: Vec<K::Native> = num_like::decode::<K::Native>(&col.data);
    for (k, &valid) in keys.iter_mut().zip(&col.validity) {
        if !valid {
            *k = K::Native::default();
        }
    }
    let keys =
        PrimitiveArray::<K>::try_new(keys.into(), nulls).map_err(|source| SomaError::Arrow {
            path: loc.into(),
            source,
        })?;
    Ok(Arc::new(
        DictionaryArray::<K>::try_new(keys, values).map_err(|source| SomaError::Arrow {
            path: loc.into(),
            source,
        })?,
    ))
}

/// Little-endian decoding of fixed-size numbers.
mod num_like {
    /// A number read from little-endian bytes.
    pub(crate) trait FromLe: Sized {
        /// Bytes per value.
        const SIZE: usize;
        /// Reads one value from exactly `SIZE` bytes.
        fn from_le(bytes: &[u8]) -> Self;
    }

    macro_rules! impl_from_le {
        ($($t:ty),*) => {$(
            impl FromLe for $t {
                const SIZE: usize = std::mem::size_of::<$t>();
                fn from_le(bytes: &[u8]) -> Self {
                    let mut a = [0u8; std::mem::size_of::<$t>()];
                    a.copy_from_slice(bytes);
                    <$t>::from_le_bytes(a)
                }
            }
        )*};
    }
    impl_from_le!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

    /// All whole values of `bytes`.
    pub(crate) fn decode<T: FromLe>(bytes: &[u8]) -> Vec<T> {
        bytes.chunks_exact(T::SIZE).map(T::from_le).collect()
    }
}

/// An Arrow array of `t` values from little-endian bytes.
fn primitive(t: Datatype, bytes: &[u8], nulls: Option<NullBuffer>, loc: &str) -> Result<ArrayRef> {
    fn build<T: arrow::datatypes::ArrowPrimitiveType>(
        bytes: &[u8],
        nulls: Option<NullBuffer>,
        loc: &str,
    ) -> Result<ArrayRef>
    where
        T::Native: num_like::FromLe,
    {
        let values = num_like::decode::<T::Native>(bytes);
        Ok(Arc::new(
            PrimitiveArray::<T>::try_new(values.into(), nulls).map_err(|source| {
                SomaError::Arrow {
                    path: loc.into(),
                    source,
                }
            })?,
        ))
    }
    match t.arrow_type() {
        Some(DataType::Int8) => build::<Int8Type>(bytes, nulls, loc),
        Some(DataType::Int16) => build::<Int16Type>(bytes, nulls, loc),
        Some(DataType::Int32) => build::<Int32Type>(bytes, nulls, loc),
        Some(DataType::Int64) => build::<Int64Type>(bytes, nulls, loc),
        Some(DataType::UInt8) => build::<UInt8Type>(bytes, nulls, loc),
        Some(DataType::UInt16) => build::<UInt16Type>(bytes, nulls, loc),
        Some(DataType::UInt32) => build::<UInt32Type>(bytes, nulls, loc),
        Some(DataType::UInt64) => build::<UInt64Type>(bytes, nulls, loc),
        Some(DataType::Float32) => build::<Float32Type>(bytes, nulls, loc),
        Some(DataType::Float64) => build::<Float64Type>(bytes, nulls, loc),
        Some(DataType::Timestamp(TimeUnit::Second, _)) => {
            build::<TimestampSecondType>(bytes, nulls, loc)
        }
        Some(DataType::Timestamp(TimeUnit::Millisecond, _)) => {
            build::<TimestampMillisecondType>(bytes, nulls, loc)
        }
        Some(DataType::Timestamp(TimeUnit::Microsecond, _)) => {
            build::<TimestampMicrosecondType>(bytes, nulls, loc)
        }
        Some(DataType::Timestamp(TimeUnit::Nanosecond, _)) => {
            build::<TimestampNanosecondType>(bytes, nulls, loc)
        }
        Some(DataType::Boolean) => {
            let values: Vec<bool> = bytes.iter().map(|&b| b != 0).collect();
            Ok(Arc::new(BooleanArray::new(values.into(), nulls)))
        }
        _ => Err(unsupported(
            loc,
            format!("fixed-size values of type {}", t.name()),
        )),
    }
}
