//! The streaming h5ad reader.
//!
//! obs and var are read whole into Arrow (they are small next to X); X is read by row
//! blocks with HDF5 hyperslabs: `indptr[start..=end]`, then `data`/`indices` between
//! `indptr[start]` and `indptr[end]`. Each block is validated before it becomes a batch.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, FixedSizeListArray, BooleanArray, DictionaryArray, Float32Array, Float64Array, Int8Array, Int16Array,
    Int32Array, Int64Array, StringArray, UInt8Array, UInt16Array, UInt32Array, UInt64Array,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Field, Int32Type, Schema};
use arrow::record_batch::RecordBatch;
use atlasflow_core::batch::{CELL_ID, OBSM_PREFIX, X_DENSE, X_INDICES, X_VALUES};
use atlasflow_core::genes::{GENE_ID, VARM_PREFIX};
use atlasflow_core::{CellBatch, Csr, GeneTable, Uns};
use hdf5::types::{FloatSize, IntSize, TypeDescriptor};
use hdf5::{Dataset, Group, LocationType};

use super::encoding::{self, encoding_type, read_str_array_attr, read_str_attr, read_strings};
use crate::{Ctx, IoError, Result};

/// How X is stored.
#[derive(Debug)]
enum XSource {
    /// `csr_matrix` group.
    Csr { data: Dataset, indices: Dataset, indptr: Dataset, stored: u64 },
    /// 2-D dataset.
    Dense(Dataset),
}

/// An open h5ad file: var and obs in memory, X read on demand by row blocks.
///
/// `read_cells` takes `&self`, so one reader serves several threads (the HDF5 library
/// serialises the calls).
#[derive(Debug)]
pub struct H5adReader {
    path: PathBuf,
    _file: hdf5::File,
    n_obs: usize,
    n_vars: usize,
    genes: GeneTable,
    obs: Vec<(String, ArrayRef)>,
    x: XSource,
    x_encoding: String,
    obsm: Vec<(String, Dataset, usize)>,
}

/// The error for a file that is not an h5ad (or is truncated or corrupt).
pub(super) fn not_h5ad(path: &Path, reason: impl Into<String>) -> IoError {
    IoError::NotH5ad { path: path.to_path_buf(), reason: reason.into() }
}

/// Element `name` of `group` as a group or dataset (None when absent).
pub(super) fn loc_type(group: &Group, name: &str) -> Option<LocationType> {
    if !group.link_exists(name) {
        return None;
    }
    group.loc_type_by_name(name).ok()
}

/// The HDF5 path of `name` under `parent`.
pub(super) fn join(parent: &str, name: &str) -> String {
    if parent == "/" { format!("/{name}") } else { format!("{parent}/{name}") }
}

impl H5adReader {
    /// Open an h5ad file: checks it is an AnnData file, reads var into a [`GeneTable`] and
    /// obs into Arrow columns, and prepares X for streaming (CSR or dense; CSC is refused).
    pub fn open(path: &Path) -> Result<Self> {
        let ctx = Ctx::new(path);
        if std::fs::metadata(path).map_err(|e| ctx.io(e))?.is_dir() {
            return Err(not_h5ad(path, "it is a directory"));
        }
        super::probe::guard(path)?;
        let file = hdf5::File::open(path).map_err(|e| not_h5ad(path, e.to_string()))?;
        if let Some(enc) = encoding_type(&file)
            && enc != encoding::ANNDATA.0
        {
            return Err(not_h5ad(path, format!("root encoding-type is {enc:?}, not \"anndata\"")));
        }
        for needed in ["obs", "var", "X"] {
            if loc_type(&file, needed).is_none() {
                return Err(not_h5ad(path, format!("no /{needed} in the file")));
            }
        }
        let (x, x_encoding, n_obs, n_vars) = open_x(&ctx, &file)?;

        let var = file.group("var").map_err(|e| ctx.h5("/var", e))?;
        let (var_index, var_cols) = read_dataframe(&ctx, &var, "/var", n_vars, GENE_ID)?;
        let mut fields = vec![Field::new(GENE_ID, DataType::Utf8, false)];
        let mut cols: Vec<ArrayRef> = vec![Arc::new(StringArray::from(var_index))];
        let varm = read_varm(&ctx, &file, n_vars)?;
        for (name, col) in var_cols.into_iter().chain(varm) {
            fields.push(Field::new(name, col.data_type().clone(), col.null_count() > 0));
            cols.push(col);
        }
        let rb = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(|e| ctx.arrow(e))?;
        let genes = GeneTable::try_new(rb).map_err(|e| ctx.core(e))?;

        let obs_g = file.group("obs").map_err(|e| ctx.h5("/obs", e))?;
        let (obs_index, obs_cols) = read_dataframe(&ctx, &obs_g, "/obs", n_obs, CELL_ID)?;
        let mut obs: Vec<(String, ArrayRef)> = vec![(CELL_ID.to_string(), Arc::new(StringArray::from(obs_index)))];
        obs.extend(obs_cols);

        let obsm = open_obsm(&ctx, &file, n_obs)?;
        Ok(H5adReader { path: path.to_path_buf(), _file: file, n_obs, n_vars, genes, obs, x, x_encoding, obsm })
    }

    /// The file this reader reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of cells (rows of X).
    pub fn n_obs(&self) -> usize {
        self.n_obs
    }

    /// Number of genes (columns of X).
    pub fn n_vars(&self) -> usize {
        self.n_vars
    }

    /// The var table (index as `gene_id`, then the var columns).
    pub fn genes(&self) -> &GeneTable {
        &self.genes
    }

    /// All obs columns, whole: `cell_id` (the obs index) first, then obs's columns in the
    /// file's column order. Categoricals are `Dictionary<Int32, Utf8>`.
    pub fn obs_columns(&self) -> &[(String, ArrayRef)] {
        &self.obs
    }

    /// How X is encoded: `"csr_matrix"` or `"array"` (dense).
    pub fn x_encoding(&self) -> &str {
        &self.x_encoding
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx::new(&self.path)
    }

    fn check_range(&self, start: usize, end: usize) -> Result<()> {
        if start > end || end > self.n_obs {
            return Err(self.ctx().usage(format!("cells {start}..{end} requested, the file has {} cells", self.n_obs)));
        }
        Ok(())
    }

    /// Stored values per row for rows `start..end`, from indptr (validated), so the engine
    /// can size batches by non-zeros. For dense X every row counts `n_vars` (what a dense
    /// block occupies while it is read).
    pub fn row_nnz(&self, start: usize, end: usize) -> Result<Vec<u64>> {
        self.check_range(start, end)?;
        match &self.x {
            XSource::Csr { indptr, stored, .. } => {
                let p = self.read_indptr(indptr, *stored, start, end)?;
                Ok(p.windows(2).map(|w| (w[1] - w[0]) as u64).collect())
            }
            XSource::Dense(_) => Ok(vec![self.n_vars as u64; end - start]),
        }
    }

    fn read_indptr(&self, indptr: &Dataset, stored: u64, start: usize, end: usize) -> Result<Vec<i64>> {
        let ctx = self.ctx();
        let p = indptr
            .read_slice_1d::<i64, _>(start..end + 1)
            .map_err(|e| ctx.h5("/X/indptr", e))?
            .into_raw_vec_and_offset()
            .0;
        if p.len() != end - start + 1 {
            return Err(ctx.invalid("/X/indptr", format!("read {} entries for rows {start}..{end}", p.len())));
        }
        if start == 0 && p[0] != 0 {
            return Err(ctx.invalid("/X/indptr", format!("first entry is {}, not 0", p[0])));
        }
        for (r, w) in p.windows(2).enumerate() {
            if w[1] < w[0] {
                return Err(ctx.invalid(
                    "/X/indptr",
                    format!("not monotone: row {} starts at {} but ends at {}", start + r, w[0], w[1]),
                ));
            }
        }
        if let (Some(&a), Some(&b)) = (p.first(), p.last())
            && (a < 0 || b as u64 > stored)
        {
            return Err(ctx.invalid(
                "/X/indptr",
                format!("rows {start}..{end} point to values {a}..{b}, outside the {stored} stored values"),
            ));
        }
        Ok(p)
    }

    fn cell_name(&self, row: usize) -> &str {
        match self.obs.first().and_then(|(_, c)| c.as_any().downcast_ref::<StringArray>()) {
            Some(ids) if row < ids.len() => ids.value(row),
            _ => "?",
        }
    }

    fn gene_name(&self, j: usize) -> &str {
        if j < self.genes.n_genes() { self.genes.name(j) } else { "?" }
    }

    /// X rows `start..end` as a cell batch, with the obs columns sliced to those rows
    /// (`cell_id` first). The block is validated: indptr monotone and in range, column
    /// indices in range and unique per row (unsorted rows are sorted), values finite.
    pub fn read_cells(&self, start: usize, end: usize) -> Result<CellBatch> {
        self.check_range(start, end)?;
        let x = match &self.x {
            XSource::Csr { data, indices, indptr, stored } => self.read_csr_block(data, indices, indptr, *stored, start, end)?,
            XSource::Dense(ds) => self.read_dense_block(ds, start, end)?,
        };
        let ctx = self.ctx();
        let obs = self.obs.iter().map(|(n, c)| (n.clone(), c.slice(start, end - start))).collect();
        let mut batch = CellBatch::from_csr(obs, x).map_err(|e| ctx.core(e))?;
        for (key, ds, width) in &self.obsm {
            let p = format!("/obsm/{key}");
            let data = if start == end || *width == 0 {
                Vec::new()
            } else {
                ds.read_slice_2d::<f32, _>((start..end, ..)).map_err(|e| ctx.h5(&p, e))?.into_raw_vec_and_offset().0
            };
            batch = batch.with_obsm(key, data, *width).map_err(|e| ctx.core(e))?;
        }
        Ok(batch)
    }

    /// Names and widths of the embeddings (2-D numeric arrays under /obsm) that
    /// [`H5adReader::read_cells`] attaches to each batch as `obsm/<key>`; other obsm
    /// entries (dataframes, sparse) are not read.
    pub fn obsm_keys(&self) -> Vec<(String, usize)> {
        self.obsm.iter().map(|(k, _, w)| (k.clone(), *w)).collect()
    }

    /// The file's uns tree: mappings, scalars (bool, int, float, string, None), 1-D numeric
    /// arrays (as float64) and string arrays. Other entries (dataframes, matrices) are
    /// skipped. Read on each call.
    pub fn uns(&self) -> Result<Uns> {
        let ctx = self.ctx();
        if loc_type(&self._file, "uns") != Some(LocationType::Group) {
            return Ok(Uns::map());
        }
        let g = self._file.group("uns").map_err(|e| ctx.h5("/uns", e))?;
        read_uns_group(&ctx, &g, "/uns")
    }

    fn read_csr_block(
        &self,
        data: &Dataset,
        indices: &Dataset,
        indptr: &Dataset,
        stored: u64,
        start: usize,
        end: usize,
    ) -> Result<Csr> {
        let ctx = self.ctx();
        let p = self.read_indptr(indptr, stored, start, end)?;
        let (a, b) = match (p.first(), p.last()) {
            (Some(&a), Some(&b)) => (a as usize, b as usize),
            _ => return Ok(Csr::empty(self.n_vars)),
        };
        let n = b - a;
        if n > i32::MAX as usize {
            return Err(ctx.usage(format!(
                "cells {start}..{end} hold {n} values, more than one batch can (2^31 - 1): read fewer cells at a time"
            )));
        }
        let (vals, idx) = if n == 0 {
            (Vec::new(), Vec::new())
        } else {
            let v = data.read_slice_1d::<f32, _>(a..b).map_err(|e| ctx.h5("/X/data", e))?.into_raw_vec_and_offset().0;
            let i = indices.read_slice_1d::<i64, _>(a..b).map_err(|e| ctx.h5("/X/indices", e))?.into_raw_vec_and_offset().0;
            (v, i)
        };
        if vals.len() != n || idx.len() != n {
            return Err(ctx.invalid("/X", format!("read {} values and {} indices, expected {n}", vals.len(), idx.len())));
        }
        let mut out = Csr { indptr: Vec::with_capacity(p.len()), indices: Vec::with_capacity(n), values: Vec::with_capacity(n), n_cols: self.n_vars };
        out.indptr.push(0);
        let mut pairs: Vec<(i64, f32)> = Vec::new();
        for r in 0..p.len() - 1 {
            let row = start + r;
            let (lo, hi) = ((p[r] as usize) - a, (p[r + 1] as usize) - a);
            let ri = &idx[lo..hi];
            let rv = &vals[lo..hi];
            let sorted = ri.windows(2).all(|w| w[0] < w[1]);
            let (ri, rv): (Vec<i64>, Vec<f32>) = if sorted {
                (ri.to_vec(), rv.to_vec())
            } else {
                pairs.clear();
                pairs.extend(ri.iter().copied().zip(rv.iter().copied()));
                pairs.sort_by_key(|&(j, _)| j);
                pairs.iter().copied().unzip()
            };
            for (k, (&j, &v)) in ri.iter().zip(&rv).enumerate() {
                if j < 0 || j as u64 >= self.n_vars as u64 {
                    return Err(ctx.invalid(
                        "/X/indices",
                        format!("row {row} (cell {:?}): column index {j} out of range (n_vars = {})", self.cell_name(row), self.n_vars),
                    ));
                }
                if k > 0 && ri[k - 1] == j {
                    return Err(ctx.invalid(
                        "/X/indices",
                        format!("row {row} (cell {:?}): column index {j} appears twice", self.cell_name(row)),
                    ));
                }
                if !v.is_finite() {
                    return Err(ctx.invalid(
                        "/X/data",
                        format!(
                            "value {v} at row {row} (cell {:?}), gene {j} ({:?}): X must be finite",
                            self.cell_name(row),
                            self.gene_name(j as usize)
                        ),
                    ));
                }
                out.indices.push(j as u32);
            }
            out.values.extend_from_slice(&rv);
            out.indptr.push(out.indices.len() as i32);
        }
        Ok(out)
    }

    fn read_dense_block(&self, ds: &Dataset, start: usize, end: usize) -> Result<Csr> {
        let ctx = self.ctx();
        let mut out = Csr::empty(self.n_vars);
        if start == end || self.n_vars == 0 {
            out.indptr.resize(end - start + 1, 0);
            return Ok(out);
        }
        let block = ds.read_slice_2d::<f32, _>((start..end, ..)).map_err(|e| ctx.h5("/X", e))?.into_raw_vec_and_offset().0;
        if block.len() != (end - start) * self.n_vars {
            return Err(ctx.invalid("/X", format!("read {} values for {} rows", block.len(), end - start)));
        }
        let (mut idx, mut val) = (Vec::new(), Vec::new());
        for (r, row_vals) in block.chunks_exact(self.n_vars).enumerate() {
            idx.clear();
            val.clear();
            for (j, &v) in row_vals.iter().enumerate() {
                if !v.is_finite() {
                    return Err(ctx.invalid(
                        "/X",
                        format!(
                            "value {v} at row {} (cell {:?}), gene {j} ({:?}): X must be finite",
                            start + r,
                            self.cell_name(start + r),
                            self.gene_name(j)
                        ),
                    ));
                }
                if v != 0.0 {
                    idx.push(j as u32);
                    val.push(v);
                }
            }
            if out.indices.len() + idx.len() > i32::MAX as usize {
                return Err(ctx.usage(format!("cells {start}..{end} hold more than 2^31 - 1 non-zeros: read fewer cells at a time")));
            }
            out.push_row(&idx, &val);
        }
        Ok(out)
    }
}

fn is_numeric(td: &TypeDescriptor) -> bool {
    matches!(td, TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) | TypeDescriptor::Float(_))
}

fn dtype_of(ctx: &Ctx<'_>, ds: &Dataset, h5path: &str) -> Result<TypeDescriptor> {
    ds.dtype().and_then(|t| t.to_descriptor()).map_err(|e| ctx.h5(h5path, e))
}

/// Find X, check its encoding and shape; returns (source, encoding name, n_obs, n_vars).
fn open_x(ctx: &Ctx<'_>, file: &hdf5::File) -> Result<(XSource, String, usize, usize)> {
    match loc_type(file, "X") {
        Some(LocationType::Dataset) => {
            let ds = file.dataset("X").map_err(|e| ctx.h5("/X", e))?;
            let shape = ds.shape();
            if shape.len() != 2 {
                return Err(ctx.invalid("/X", format!("dense X has {} dimensions, expected 2", shape.len())));
            }
            let td = dtype_of(ctx, &ds, "/X")?;
            if !is_numeric(&td) {
                return Err(ctx.invalid("/X", format!("X has dtype {td}; atlasflow reads numeric matrices")));
            }
            Ok((XSource::Dense(ds), encoding::ARRAY.0.to_string(), shape[0], shape[1]))
        }
        Some(LocationType::Group) => {
            let g = file.group("X").map_err(|e| ctx.h5("/X", e))?;
            // anndata >= 0.7 tags the group; older files used h5sparse's attributes.
            let (format, shape_attr) = match encoding_type(&g) {
                Some(t) => (t, "shape"),
                None => match read_str_attr(&g, "h5sparse_format") {
                    Some(f) => (format!("{f}_matrix"), "h5sparse_shape"),
                    None => return Err(ctx.invalid("/X", "X is a group without an encoding-type attribute: not a sparse matrix anndata wrote")),
                },
            };
            if format == encoding::CSC_MATRIX {
                return Err(ctx.invalid(
                    "/X",
                    "X is CSC; atlasflow streams cells by rows: convert with adata.X = adata.X.tocsr() and write again",
                ));
            }
            if format != encoding::CSR_MATRIX.0 {
                return Err(ctx.invalid("/X", format!("X has encoding-type {format:?}; atlasflow reads csr_matrix or dense arrays")));
            }
            let shape: Vec<i64> = g
                .attr(shape_attr)
                .and_then(|a| a.read_raw::<i64>())
                .map_err(|e| ctx.h5(&format!("/X@{shape_attr}"), e))?;
            let (n_obs, n_vars) = match shape.as_slice() {
                [r, c] if *r >= 0 && *c >= 0 => (*r as usize, *c as usize),
                _ => return Err(ctx.invalid("/X", format!("shape attribute {shape:?} is not two non-negative sizes"))),
            };
            if n_vars > u32::MAX as usize {
                return Err(ctx.invalid("/X", format!("{n_vars} genes: atlasflow indexes genes with 32 bits")));
            }
            let open = |name: &str| -> Result<Dataset> {
                let p = format!("/X/{name}");
                if loc_type(&g, name) != Some(LocationType::Dataset) {
                    return Err(ctx.invalid(&p, "missing from the csr_matrix group"));
                }
                let ds = g.dataset(name).map_err(|e| ctx.h5(&p, e))?;
                if ds.ndim() != 1 {
                    return Err(ctx.invalid(&p, format!("has {} dimensions, expected 1", ds.ndim())));
                }
                let td = dtype_of(ctx, &ds, &p)?;
                let ok = if name == "data" { is_numeric(&td) } else { matches!(td, TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_)) };
                if !ok {
                    return Err(ctx.invalid(&p, format!("has dtype {td}")));
                }
                Ok(ds)
            };
            let (data, indices, indptr) = (open("data")?, open("indices")?, open("indptr")?);
            let stored = data.size();
            if indices.size() != stored {
                return Err(ctx.invalid("/X/indices", format!("has {} entries, /X/data has {stored}", indices.size())));
            }
            if indptr.size() != n_obs + 1 {
                return Err(ctx.invalid("/X/indptr", format!("has {} entries for {n_obs} rows (expected {})", indptr.size(), n_obs + 1)));
            }
            let ends = indptr.read_slice_1d::<i64, _>(0..1).map_err(|e| ctx.h5("/X/indptr", e))?;
            if let Some(&first) = ends.first()
                && first != 0
            {
                return Err(ctx.invalid("/X/indptr", format!("first entry is {first}, not 0")));
            }
            let last = indptr.read_slice_1d::<i64, _>(n_obs..n_obs + 1).map_err(|e| ctx.h5("/X/indptr", e))?;
            match last.first() {
                Some(&l) if l >= 0 && l as u64 <= stored as u64 => {}
                Some(&l) => {
                    return Err(ctx.invalid("/X/indptr", format!("last entry is {l}, outside the {stored} stored values")));
                }
                None => return Err(ctx.invalid("/X/indptr", "cannot read its last entry")),
            }
            Ok((XSource::Csr { data, indices, indptr, stored: stored as u64 }, format, n_obs, n_vars))
        }
        _ => Err(ctx.invalid("/X", "X is neither a group nor a dataset")),
    }
}

/// Named Arrow columns.
type Columns = Vec<(String, ArrayRef)>;

/// Names that would clash with the batch/gene-table conventions get a suffix.
fn safe_column_name(name: &str, index_name: &str) -> String {
    let clashes = name == index_name
        || name == GENE_ID
        || name == CELL_ID
        || name == X_INDICES
        || name == X_VALUES
        || name == X_DENSE
        || name.starts_with(OBSM_PREFIX)
        || name.starts_with(VARM_PREFIX);
    if clashes { format!("{name}_column") } else { name.to_string() }
}

/// Read a dataframe group: its index (as strings) and its columns in column order.
/// Columns of kinds atlasflow does not model (2-D arrays, old-style categoricals, …) are
/// skipped.
fn read_dataframe(
    ctx: &Ctx<'_>,
    g: &Group,
    gpath: &str,
    n_rows: usize,
    index_name: &str,
) -> Result<(Vec<String>, Columns)> {
    match encoding_type(g).as_deref() {
        Some("dataframe") | None => {}
        Some(other) => return Err(ctx.invalid(gpath, format!("encoding-type {other:?}, expected a dataframe"))),
    }
    let idx_key = read_str_attr(g, "_index").unwrap_or_else(|| "_index".to_string());
    let ipath = join(gpath, &idx_key);
    if loc_type(g, &idx_key) != Some(LocationType::Dataset) {
        return Err(ctx.invalid(&ipath, "the dataframe's index dataset is missing"));
    }
    let ids = g.dataset(&idx_key).map_err(|e| ctx.h5(&ipath, e))?;
    let index = match dtype_of(ctx, &ids, &ipath)? {
        td if encoding::is_string_type(&td) => read_strings(&ids, None).map_err(|e| ctx.h5(&ipath, e))?,
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) => {
            ids.read_raw::<i64>().map_err(|e| ctx.h5(&ipath, e))?.iter().map(i64::to_string).collect()
        }
        td => return Err(ctx.invalid(&ipath, format!("index has dtype {td}, expected strings"))),
    };
    if index.len() != n_rows {
        return Err(ctx.invalid(&ipath, format!("index has {} entries, X has {n_rows} along this axis", index.len())));
    }
    let order = match read_str_array_attr(g, "column-order") {
        Some(o) => o,
        None => g.member_names().map_err(|e| ctx.h5(gpath, e))?.into_iter().filter(|n| n != &idx_key).collect(),
    };
    let mut cols = Vec::new();
    for name in order {
        let cpath = join(gpath, &name);
        if let Some(col) = read_column(ctx, g, &name, &cpath)? {
            if col.len() != n_rows {
                return Err(ctx.invalid(&cpath, format!("column has {} rows, the dataframe {n_rows}", col.len())));
            }
            cols.push((safe_column_name(&name, index_name), col));
        }
    }
    Ok((index, cols))
}

/// A 1-D numeric/bool dataset as the Arrow array of the same type; None for other types.
fn read_primitive(ctx: &Ctx<'_>, ds: &Dataset, p: &str, nulls: Option<NullBuffer>) -> Result<Option<ArrayRef>> {
    let td = dtype_of(ctx, ds, p)?;
    macro_rules! prim {
        ($t:ty, $arr:ty) => {{
            let v = ds.read_raw::<$t>().map_err(|e| ctx.h5(p, e))?;
            Arc::new(<$arr>::new(v.into(), nulls)) as ArrayRef
        }};
    }
    let a: ArrayRef = match td {
        TypeDescriptor::Integer(IntSize::U1) => prim!(i8, Int8Array),
        TypeDescriptor::Integer(IntSize::U2) => prim!(i16, Int16Array),
        TypeDescriptor::Integer(IntSize::U4) => prim!(i32, Int32Array),
        TypeDescriptor::Integer(IntSize::U8) => prim!(i64, Int64Array),
        TypeDescriptor::Unsigned(IntSize::U1) => prim!(u8, UInt8Array),
        TypeDescriptor::Unsigned(IntSize::U2) => prim!(u16, UInt16Array),
        TypeDescriptor::Unsigned(IntSize::U4) => prim!(u32, UInt32Array),
        TypeDescriptor::Unsigned(IntSize::U8) => prim!(u64, UInt64Array),
        TypeDescriptor::Float(FloatSize::U4) => prim!(f32, Float32Array),
        TypeDescriptor::Float(FloatSize::U8) => prim!(f64, Float64Array),
        TypeDescriptor::Boolean => {
            let v = ds.read_raw::<bool>().map_err(|e| ctx.h5(p, e))?;
            Arc::new(BooleanArray::new(v.into(), nulls))
        }
        TypeDescriptor::VarLenUnicode | TypeDescriptor::VarLenAscii => {
            let v = read_strings(ds, None).map_err(|e| ctx.h5(p, e))?;
            match nulls {
                None => Arc::new(StringArray::from(v)),
                Some(n) => Arc::new(v.into_iter().enumerate().map(|(i, s)| n.is_valid(i).then_some(s)).collect::<StringArray>()),
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(a))
}

/// One dataframe column; None when it is of a kind atlasflow skips.
fn read_column(ctx: &Ctx<'_>, g: &Group, name: &str, p: &str) -> Result<Option<ArrayRef>> {
    match loc_type(g, name) {
        Some(LocationType::Dataset) => {
            let ds = g.dataset(name).map_err(|e| ctx.h5(p, e))?;
            if ds.ndim() != 1 {
                return Ok(None);
            }
            // Old-style (anndata < 0.7) categoricals reference their categories by attribute.
            if ds.attr_names().map(|n| n.iter().any(|a| a == "categories")).unwrap_or(false) {
                return Ok(None);
            }
            read_primitive(ctx, &ds, p, None)
        }
        Some(LocationType::Group) => {
            let sub = g.group(name).map_err(|e| ctx.h5(p, e))?;
            match encoding_type(&sub).as_deref() {
                Some("categorical") => read_categorical(ctx, &sub, p).map(Some),
                Some("nullable-integer" | "nullable-boolean" | "nullable-string-array") => read_nullable(ctx, &sub, p),
                _ => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

fn read_nullable(ctx: &Ctx<'_>, g: &Group, p: &str) -> Result<Option<ArrayRef>> {
    let (vp, mp) = (join(p, "values"), join(p, "mask"));
    let values = g.dataset("values").map_err(|e| ctx.h5(&vp, e))?;
    let mask = g.dataset("mask").map_err(|e| ctx.h5(&mp, e))?.read_raw::<bool>().map_err(|e| ctx.h5(&mp, e))?;
    if mask.len() != values.size() {
        return Err(ctx.invalid(&mp, format!("mask has {} entries for {} values", mask.len(), values.size())));
    }
    let nulls = NullBuffer::from(mask.iter().map(|m| !m).collect::<Vec<bool>>());
    read_primitive(ctx, &values, &vp, Some(nulls))
}

/// A categorical group as `Dictionary<Int32, Utf8>` (code -1 → null). Non-string
/// categories are turned into their text.
fn read_categorical(ctx: &Ctx<'_>, g: &Group, p: &str) -> Result<ArrayRef> {
    let (cp, kp) = (join(p, "codes"), join(p, "categories"));
    let codes_ds = g.dataset("codes").map_err(|e| ctx.h5(&cp, e))?;
    let codes = codes_ds.read_raw::<i32>().map_err(|e| ctx.h5(&cp, e))?;
    let cats_ds = g.dataset("categories").map_err(|e| ctx.h5(&kp, e))?;
    let categories: Vec<String> = match dtype_of(ctx, &cats_ds, &kp)? {
        td if encoding::is_string_type(&td) => read_strings(&cats_ds, None).map_err(|e| ctx.h5(&kp, e))?,
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) => {
            cats_ds.read_raw::<i64>().map_err(|e| ctx.h5(&kp, e))?.iter().map(i64::to_string).collect()
        }
        TypeDescriptor::Float(_) => cats_ds.read_raw::<f64>().map_err(|e| ctx.h5(&kp, e))?.iter().map(f64::to_string).collect(),
        TypeDescriptor::Boolean => cats_ds
            .read_raw::<bool>()
            .map_err(|e| ctx.h5(&kp, e))?
            .iter()
            .map(|b| if *b { "True".to_string() } else { "False".to_string() })
            .collect(),
        td => return Err(ctx.invalid(&kp, format!("categories of dtype {td} are not supported"))),
    };
    let n_cat = categories.len() as i32;
    let mut keys = Vec::with_capacity(codes.len());
    for (i, &c) in codes.iter().enumerate() {
        if c < -1 || c >= n_cat {
            return Err(ctx.invalid(&cp, format!("row {i}: code {c} outside the {n_cat} categories")));
        }
        keys.push(if c < 0 { None } else { Some(c) });
    }
    let dict = DictionaryArray::<Int32Type>::try_new(Int32Array::from(keys), Arc::new(StringArray::from(categories)))
        .map_err(|e| ctx.arrow(e))?;
    Ok(Arc::new(dict))
}

/// 2-D numeric datasets of /obsm with one row per cell: (key, dataset, width).
fn open_obsm(ctx: &Ctx<'_>, file: &hdf5::File, n_obs: usize) -> Result<Vec<(String, Dataset, usize)>> {
    let mut out = Vec::new();
    if loc_type(file, "obsm") != Some(LocationType::Group) {
        return Ok(out);
    }
    let g = file.group("obsm").map_err(|e| ctx.h5("/obsm", e))?;
    for key in g.member_names().map_err(|e| ctx.h5("/obsm", e))? {
        if loc_type(&g, &key) != Some(LocationType::Dataset) {
            continue;
        }
        let p = format!("/obsm/{key}");
        let ds = g.dataset(&key).map_err(|e| ctx.h5(&p, e))?;
        let shape = ds.shape();
        if shape.len() != 2 || !is_numeric(&dtype_of(ctx, &ds, &p)?) {
            continue;
        }
        if shape[0] != n_obs {
            return Err(ctx.invalid(&p, format!("has {} rows for {n_obs} cells", shape[0])));
        }
        out.push((key, ds, shape[1]));
    }
    Ok(out)
}

/// 2-D numeric datasets of /varm with one row per gene, as `varm/<key>` fixed-size-list
/// columns (float64 stays float64, anything else becomes float32).
fn read_varm(ctx: &Ctx<'_>, file: &hdf5::File, n_vars: usize) -> Result<Vec<(String, ArrayRef)>> {
    let mut out = Vec::new();
    if loc_type(file, "varm") != Some(LocationType::Group) {
        return Ok(out);
    }
    let g = file.group("varm").map_err(|e| ctx.h5("/varm", e))?;
    for key in g.member_names().map_err(|e| ctx.h5("/varm", e))? {
        if loc_type(&g, &key) != Some(LocationType::Dataset) {
            continue;
        }
        let p = format!("/varm/{key}");
        let ds = g.dataset(&key).map_err(|e| ctx.h5(&p, e))?;
        let shape = ds.shape();
        let td = dtype_of(ctx, &ds, &p)?;
        if shape.len() != 2 || !is_numeric(&td) {
            continue;
        }
        if shape[0] != n_vars {
            return Err(ctx.invalid(&p, format!("has {} rows for {n_vars} genes", shape[0])));
        }
        let k = i32::try_from(shape[1]).map_err(|_| ctx.invalid(&p, "too many columns"))?;
        let (item, values): (DataType, ArrayRef) = if td == TypeDescriptor::Float(FloatSize::U8) {
            (DataType::Float64, Arc::new(Float64Array::from(ds.read_raw::<f64>().map_err(|e| ctx.h5(&p, e))?)))
        } else {
            (DataType::Float32, Arc::new(Float32Array::from(ds.read_raw::<f32>().map_err(|e| ctx.h5(&p, e))?)))
        };
        let fsl = FixedSizeListArray::try_new(Arc::new(Field::new("item", item, false)), k, values, None)
            .map_err(|e| ctx.arrow(e))?;
        out.push((format!("{VARM_PREFIX}{key}"), Arc::new(fsl) as ArrayRef));
    }
    Ok(out)
}

fn read_uns_group(ctx: &Ctx<'_>, g: &Group, gp: &str) -> Result<Uns> {
    let mut out = Uns::map();
    let mut names = g.member_names().map_err(|e| ctx.h5(gp, e))?;
    names.sort();
    for name in names {
        let p = join(gp, &name);
        match loc_type(g, &name) {
            Some(LocationType::Group) => {
                let sub = g.group(&name).map_err(|e| ctx.h5(&p, e))?;
                match encoding_type(&sub).as_deref() {
                    Some("dict") | None => out.insert(&name, read_uns_group(ctx, &sub, &p)?),
                    _ => {}
                }
            }
            Some(LocationType::Dataset) => {
                let ds = g.dataset(&name).map_err(|e| ctx.h5(&p, e))?;
                if let Some(v) = read_uns_dataset(ctx, &ds, &p)? {
                    out.insert(&name, v);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn read_uns_dataset(ctx: &Ctx<'_>, ds: &Dataset, p: &str) -> Result<Option<Uns>> {
    let h5 = |e: hdf5::Error| ctx.h5(p, e);
    if encoding_type(ds).as_deref() == Some("null") || ds.space().map_err(h5)?.is_null() {
        return Ok(Some(Uns::Null));
    }
    let td = dtype_of(ctx, ds, p)?;
    let v = match (ds.ndim(), td) {
        (0, TypeDescriptor::Boolean) => Uns::Bool(ds.read_scalar::<bool>().map_err(h5)?),
        (0, TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_)) => Uns::Int(ds.read_scalar::<i64>().map_err(h5)?),
        (0, TypeDescriptor::Float(_)) => Uns::Float(ds.read_scalar::<f64>().map_err(h5)?),
        (0, TypeDescriptor::VarLenUnicode) => Uns::Str(ds.read_scalar::<hdf5::types::VarLenUnicode>().map_err(h5)?.as_str().to_string()),
        (0, TypeDescriptor::VarLenAscii) => Uns::Str(ds.read_scalar::<hdf5::types::VarLenAscii>().map_err(h5)?.as_str().to_string()),
        (1, td) if is_numeric(&td) => Uns::FloatArray(ds.read_raw::<f64>().map_err(h5)?),
        (1, td) if encoding::is_string_type(&td) => Uns::StrArray(read_strings(ds, None).map_err(h5)?),
        _ => return Ok(None),
    };
    Ok(Some(v))
}
