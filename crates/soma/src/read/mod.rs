//! Reading a whole sparse array into an Arrow record batch: every committed fragment,
//! oldest first, each field decoded tile by tile with the schema its fragment was written
//! with; attributes an older fragment lacks are filled with the fill value. Cells come in
//! each fragment's global order (no sorting); in arrays without duplicates, overlapping
//! cells go through the newest-wins merge.
//!
//! - [`field`]: one field of one fragment, tile by tile.
//! - [`column`]: a column's cells gathered over fragments.
//! - [`to_arrow`]: the gathered cells as Arrow arrays.
//! - [`plan`]: per fragment, the dim-0 extent of each data tile (R-tree leaves) and where
//!   the tiles of the read columns lie; which tiles a dim-0 selection needs.
//! - [`sparse`]: [`SparseReader`], range reads that decode only those tiles and return
//!   cells sorted by coordinates.

mod column;
mod field;
mod plan;
mod sparse;
mod to_arrow;

use std::sync::Arc;

use arrow::array::BooleanArray;
use arrow::compute::filter_record_batch;
use arrow::datatypes::{Field as ArrowField, Schema};
use arrow::record_batch::RecordBatch;

use crate::array::TileDbArray;
use crate::cursor::le_u64s;
use crate::datatype::Datatype;
use crate::error::{Result, SomaError, corrupt, not_found, unsupported};
use crate::fragment::{Field, Fragment};
use crate::merge::{KeyPart, newest_wins};
use crate::schema::{Range, VAR_NUM};
use column::Column;
pub(crate) use field::read_field;
pub use plan::ReadPlan;
pub use sparse::{ReadStats, SparseReader};

/// A column's description, from the latest schema.
#[derive(Debug, Clone)]
pub(crate) struct ColumnSpec {
    pub(crate) name: String,
    pub(crate) datatype: Datatype,
    pub(crate) var: bool,
    pub(crate) nullable: bool,
    pub(crate) fill_value: Vec<u8>,
    pub(crate) fill_valid: bool,
    pub(crate) enumeration: Option<String>,
}

/// Appends the newest-wins priority (timestamp, fragment index) of the `n` cells of
/// `frag`, the `index`-th fragment: the cells' own timestamps (`timestamps`, the decoded
/// little-endian u64 field) when the fragment stores them, else the fragment's end time.
fn push_priority(
    priority: &mut Vec<(u64, u32)>,
    frag: &Fragment,
    index: usize,
    timestamps: Option<Vec<u8>>,
    n: usize,
    frag_loc: &str,
) -> Result<()> {
    let fragment = u32::try_from(index).unwrap_or(u32::MAX);
    match timestamps {
        Some(bytes) => {
            let ts = le_u64s(&bytes);
            if ts.len() != n {
                return Err(corrupt(
                    frag_loc,
                    format!("{} timestamps for {n} cells", ts.len()),
                ));
            }
            priority.extend(ts.into_iter().map(|t| (t, fragment)));
        }
        None => priority.extend(std::iter::repeat_n((frag.timestamps.t2, fragment), n)),
    }
    Ok(())
}

/// Whether two non-empty domains intersect (unknown range types count as intersecting).
fn domains_overlap(a: &[Range], b: &[Range]) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| match (x.as_i64(), y.as_i64()) {
            (Some((a0, a1)), Some((b0, b1))) => a0 <= b1 && b0 <= a1,
            _ => true,
        })
}

/// The field of `frag` that stores column `spec` (`None`: the fragment was written
/// before the column existed and reads as fill values); an error when its type changed.
pub(crate) fn stored_field(
    frag: &Fragment,
    spec: &ColumnSpec,
    frag_loc: &str,
) -> Result<Option<Field>> {
    let field = if let Some((j, d)) = frag.schema.dimension(&spec.name) {
        Some((Field::Dimension(j), d.datatype))
    } else {
        frag.schema
            .attribute(&spec.name)
            .map(|(i, a)| (Field::Attribute(i), a.datatype))
    };
    match field {
        None => Ok(None),
        Some((_, t)) if t != spec.datatype => Err(unsupported(
            frag_loc,
            format!(
                "column {} changed type from {} to {}",
                spec.name,
                t.name(),
                spec.datatype.name()
            ),
        )),
        Some((field, _)) => Ok(Some(field)),
    }
}

impl TileDbArray {
    /// The column names a full read returns: dimensions, then attributes.
    pub fn column_names(&self) -> Vec<String> {
        let s = &self.schema;
        s.dimensions
            .iter()
            .map(|d| d.name.clone())
            .chain(s.attributes.iter().map(|a| a.name.clone()))
            .collect()
    }

    /// The description of column `name` (a dimension or attribute of the latest schema).
    pub(crate) fn column_spec(&self, name: &str) -> Result<ColumnSpec> {
        let loc = self.location();
        if let Some((_, d)) = self.schema.dimension(name) {
            return Ok(ColumnSpec {
                name: name.to_string(),
                datatype: d.datatype,
                var: d.cell_val_num == VAR_NUM,
                nullable: false,
                fill_value: Vec::new(),
                fill_valid: true,
                enumeration: None,
            });
        }
        let (_, a) = self
            .schema
            .attribute(name)
            .ok_or_else(|| not_found(&loc, format!("no column named {name:?}")))?;
        if a.cell_val_num != 1 && a.cell_val_num != VAR_NUM {
            return Err(unsupported(
                &loc,
                format!("attribute {name} has {} values per cell", a.cell_val_num),
            ));
        }
        Ok(ColumnSpec {
            name: name.to_string(),
            datatype: a.datatype,
            var: a.cell_val_num == VAR_NUM,
            nullable: a.nullable,
            fill_value: a.fill_value.clone(),
            fill_valid: a.fill_valid,
            enumeration: a.enumeration.clone(),
        })
    }

    /// Whether reading needs the newest-wins merge: the array disallows duplicates and
    /// two fragments overlap, or a fragment kept per-cell timestamps (consolidation may
    /// have kept older versions of a cell).
    pub fn needs_newest_wins(&self) -> bool {
        if self.schema.allows_duplicates {
            return false;
        }
        let frags = &self.fragments;
        frags.iter().any(|f| f.footer.has_timestamps)
            || frags.iter().enumerate().any(|(i, a)| {
                frags[i + 1..].iter().any(|b| {
                    match (&a.footer.non_empty_domain, &b.footer.non_empty_domain) {
                        (Some(x), Some(y)) => domains_overlap(x, y),
                        _ => false,
                    }
                })
            })
    }

    /// Reads every cell of the array: the `columns` named (dimensions or attributes), or
    /// all of them (dimensions first). Enumerated attributes come as Arrow dictionary
    /// arrays, strings as large UTF-8, nullable attributes with their nulls. In an array
    /// without duplicates, each coordinate keeps only its newest cell.
    pub fn read(&self, columns: Option<&[&str]>) -> Result<RecordBatch> {
        let loc = self.location();
        if !self.schema.sparse {
            return Err(unsupported(&loc, "reading dense arrays"));
        }
        let requested: Vec<String> = match columns {
            Some(c) => c.iter().map(|s| s.to_string()).collect(),
            None => self.column_names(),
        };
        let merge = self.needs_newest_wins();
        let mut names = requested.clone();
        if merge {
            // The merge needs every coordinate, requested or not.
            for d in &self.schema.dimensions {
                if !names.contains(&d.name) {
                    names.push(d.name.clone());
                }
            }
        }
        let specs = names
            .iter()
            .map(|n| self.column_spec(n))
            .collect::<Result<Vec<_>>>()?;
        let storage = self.storage.as_ref();
        let mut cols: Vec<Column> = specs.iter().map(|_| Column::default()).collect();
        let mut priority: Vec<(u64, u32)> = Vec::new();
        for (index, frag) in self.fragments.iter().enumerate() {
            let frag_loc = storage.location(&frag.dir);
            if frag.footer.dense {
                return Err(unsupported(&frag_loc, "dense fragments"));
            }
            let n = usize::try_from(frag.cell_count())
                .map_err(|_| corrupt(&frag_loc, "cell count does not fit in memory"))?;
            // Columns the fragment stores first: decoding their tiles proves the cell
            // count before any fill column is allocated from it.
            let mut missing = Vec::new();
            for (k, (spec, col)) in specs.iter().zip(cols.iter_mut()).enumerate() {
                match stored_field(frag, spec, &frag_loc)? {
                    None => missing.push(k),
                    Some(field) => {
                        let cells = read_field(storage, frag, field)?;
                        col.push_cells(spec, cells, n, &frag_loc)?;
                    }
                }
            }
            if missing.len() == specs.len() && !missing.is_empty() {
                let cells = read_field(storage, frag, Field::Dimension(0))?;
                let width = frag
                    .schema
                    .dimensions
                    .first()
                    .map_or(1, |d| d.datatype.size());
                let got = cells
                    .offsets
                    .as_ref()
                    .map_or(cells.data.len() / width, Vec::len);
                if got != n {
                    return Err(corrupt(
                        &frag_loc,
                        format!("footer says {n} cells, the first dimension holds {got}"),
                    ));
                }
            }
            for k in missing {
                cols[k].push_fill(&specs[k], n, &frag_loc)?;
            }
            if merge {
                let timestamps = if frag.footer.has_timestamps {
                    Some(read_field(storage, frag, Field::Timestamps)?.data)
                } else {
                    None
                };
                push_priority(&mut priority, frag, index, timestamps, n, &frag_loc)?;
            }
        }
        let keep = if merge {
            let parts: Vec<KeyPart<'_>> = self
                .schema
                .dimensions
                .iter()
                .filter_map(|d| names.iter().position(|n| *n == d.name))
                .map(|k| cols[k].key_part(&specs[k]))
                .collect();
            Some(newest_wins(&parts, &priority))
        } else {
            None
        };
        let mut fields = Vec::with_capacity(specs.len());
        let mut arrays = Vec::with_capacity(specs.len());
        for (spec, col) in specs.iter().zip(cols) {
            let array = to_arrow::column_to_arrow(self, spec, col)?;
            fields.push(ArrowField::new(
                &spec.name,
                array.data_type().clone(),
                spec.nullable,
            ));
            arrays.push(array);
        }
        let rows = self.fragments.iter().map(|f| f.cell_count() as usize).sum();
        let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows));
        let arrow_err = |source| SomaError::Arrow {
            path: loc.clone(),
            source,
        };
        let batch =
            RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), arrays, &options)
                .map_err(arrow_err)?;
        match keep {
            None => Ok(batch),
            Some(keep) => {
                let batch =
                    filter_record_batch(&batch, &BooleanArray::from(keep)).map_err(arrow_err)?;
                batch
                    .project(&(0..requested.len()).collect::<Vec<_>>())
                    .map_err(arrow_err)
            }
        }
    }
}
