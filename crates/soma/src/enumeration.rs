//! Enumerations (`__schema/__enumerations/`): the value lists categorical attributes
//! index, written by `from_anndata` for pandas categoricals.

use crate::cursor::{Cursor, le_u64s};
use crate::datatype::Datatype;
use crate::error::{Result, corrupt};
use crate::schema::VAR_NUM;

/// An enumeration.
#[derive(Debug, Clone, PartialEq)]
pub struct Enumeration {
    /// Its name (the attribute's `enumeration`).
    pub name: String,
    /// The value type.
    pub datatype: Datatype,
    /// Values per entry ([`VAR_NUM`] for strings).
    pub cell_val_num: u32,
    /// Whether the categories are ordered.
    pub ordered: bool,
    /// The values' bytes.
    pub data: Vec<u8>,
    /// Start offsets of variable-size values in `data`.
    pub offsets: Vec<u64>,
}

impl Enumeration {
    /// Decodes an enumeration from its generic tile's bytes: version u32, name and path
    /// name (u32 length + bytes each; both missing from the spec's table), datatype u8,
    /// cell value count u32, ordered u8, data (u64 length + bytes), then for
    /// variable-size values the offsets (u64 byte length + u64 values).
    pub fn parse(bytes: &[u8], path: &str) -> Result<Self> {
        let mut c = Cursor::new(bytes, path);
        let _version = c.u32()?;
        let name = c.string_u32()?;
        let _path_name = c.string_u32()?;
        let datatype = Datatype::from_code(c.u8()?, path)?;
        let cell_val_num = c.u32()?;
        let ordered = c.u8()? != 0;
        let n = c.u64()?;
        let data = c.take_u64_len(n)?.to_vec();
        let mut offsets = Vec::new();
        if cell_val_num == VAR_NUM {
            let n = c.u64()?;
            offsets = le_u64s(c.take_u64_len(n)?);
            if offsets.windows(2).any(|w| w[0] > w[1])
                || offsets.last().is_some_and(|&o| o > data.len() as u64)
            {
                return Err(corrupt(
                    path,
                    "enumeration offsets are not increasing within the data",
                ));
            }
        }
        Ok(Enumeration {
            name,
            datatype,
            cell_val_num,
            ordered,
            data,
            offsets,
        })
    }

    /// The values as strings, for string enumerations.
    pub fn strings(&self, path: &str) -> Result<Vec<String>> {
        let mut out = Vec::with_capacity(self.offsets.len());
        for (i, &start) in self.offsets.iter().enumerate() {
            let end = self
                .offsets
                .get(i + 1)
                .copied()
                .unwrap_or(self.data.len() as u64);
            let bytes = &self.data[start as usize..end as usize];
            out.push(String::from_utf8(bytes.to_vec()).map_err(|_| {
                corrupt(
                    path,
                    format!("enumeration {} value {i} is not UTF-8", self.name),
                )
            })?);
        }
        Ok(out)
    }
}
