//! A column's cells gathered over fragments: the values, Arrow-style offsets for
//! variable-size columns, validity; and fill values for fragments that lack the column.

use super::ColumnSpec;
use super::field::FieldCells;
use crate::error::{Result, corrupt};
use crate::merge::KeyPart;

/// A column's cells gathered over fragments.
#[derive(Debug, Default)]
pub(super) struct Column {
    pub(super) data: Vec<u8>,
    /// Arrow-style offsets (n + 1 values) for variable-size columns.
    pub(super) offsets: Vec<i64>,
    pub(super) validity: Vec<bool>,
}

impl Column {
    /// The column as one part of the cell keys the newest-wins merge compares.
    pub(super) fn key_part<'a>(&'a self, spec: &ColumnSpec) -> KeyPart<'a> {
        if spec.var {
            KeyPart::Var {
                data: &self.data,
                offsets: &self.offsets,
            }
        } else {
            KeyPart::Fixed {
                data: &self.data,
                width: spec.datatype.size(),
            }
        }
    }

    pub(super) fn push_cells(
        &mut self,
        spec: &ColumnSpec,
        cells: FieldCells,
        n: usize,
        path: &str,
    ) -> Result<()> {
        if spec.var {
            let offs = cells
                .offsets
                .ok_or_else(|| corrupt(path, format!("{}: no offsets", spec.name)))?;
            if offs.len() != n || offs.first().is_some_and(|&o| o != 0) {
                return Err(corrupt(
                    path,
                    format!(
                        "{}: {} offsets for {n} cells, or not starting at 0",
                        spec.name,
                        offs.len()
                    ),
                ));
            }
            let base = self.data.len() as i64;
            if self.offsets.is_empty() {
                self.offsets.push(0);
            }
            self.offsets
                .extend(offs.iter().skip(1).map(|&o| base + o as i64));
            self.data.extend_from_slice(&cells.data);
            if n > 0 {
                self.offsets.push(self.data.len() as i64);
            }
        } else if self.data.is_empty() {
            self.data = cells.data; // the first fragment's cells: no copy
        } else {
            self.data.extend_from_slice(&cells.data);
        }
        match cells.validity {
            Some(v) if v.len() == n => self.validity.extend(v.iter().map(|&b| b != 0)),
            Some(v) => {
                return Err(corrupt(
                    path,
                    format!("{}: {} validity values for {n} cells", spec.name, v.len()),
                ));
            }
            None => self.validity.extend(std::iter::repeat_n(true, n)),
        }
        Ok(())
    }

    /// Appends `n` cells of the column's fill value, for a fragment written before the
    /// column existed (`n` was checked against decoded tiles; `path` names the fragment).
    pub(super) fn push_fill(&mut self, spec: &ColumnSpec, n: usize, path: &str) -> Result<()> {
        let cells = if spec.var {
            let total = n
                .checked_mul(spec.fill_value.len())
                .filter(|&t| t <= 1 << 32)
                .ok_or_else(|| {
                    corrupt(
                        path,
                        format!(
                            "{}: a {}-byte fill value for {n} cells is too large",
                            spec.name,
                            spec.fill_value.len()
                        ),
                    )
                })?;
            let mut data = Vec::with_capacity(total);
            let mut offsets = Vec::with_capacity(n);
            for _ in 0..n {
                offsets.push(data.len() as u64);
                data.extend_from_slice(&spec.fill_value);
            }
            FieldCells {
                data,
                offsets: Some(offsets),
                validity: None,
            }
        } else {
            let size = spec.datatype.size();
            let value = if spec.fill_value.len() == size {
                spec.fill_value.clone()
            } else {
                vec![0; size]
            };
            FieldCells {
                data: value.repeat(n),
                offsets: None,
                validity: None,
            }
        };
        let valid = !spec.nullable || spec.fill_valid;
        self.push_cells(
            spec,
            FieldCells {
                validity: Some(vec![u8::from(valid); n]),
                ..cells
            },
            n,
            path,
        )
    }
}
