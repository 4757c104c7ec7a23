//! The streaming h5ad writer.
//!
//! X rows and embeddings are appended batch by batch to chunked, resizable datasets; obs
//! columns are buffered (one row per cell, small next to X) and written at `finish`, with
//! var, varm and uns. Everything goes to a temporary file beside the target, renamed into
//! place only when complete; a writer dropped before `finish` removes it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use atlasflow_core::batch::CELL_ID;
use atlasflow_core::genes::VARM_PREFIX;
use atlasflow_core::{CellBatch, CellFrame, GeneTable, Graph, Uns, XView};
use hdf5::types::VarLenUnicode;
use hdf5::{Dataset, Extents, Group, Location};
use ndarray::ArrayView2;

use super::encoding::{
    self, check_key, write_array, write_bool_attr, write_encoding, write_i64_array_attr, write_str_array_attr,
    write_str_attr, write_string_array,
};
use crate::{Ctx, Result};

/// Elements per chunk of the resizable 1-D datasets (256 KiB of f32).
const CHUNK_1D: usize = 1 << 16;

/// How the writer stores X.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XKind {
    /// A `csr_matrix` group: data float32; indices and indptr int32, or both int64 when
    /// the file holds more than 2^31 - 1 values (scipy needs one index dtype for both).
    Csr,
    /// A dense 2-D float32 dataset (e.g. after `scale`).
    Dense,
}

#[derive(Debug)]
enum XSink {
    /// indptr is kept in memory (n_obs + 1 entries, like obs) and written at finish with
    /// the dtype of indices.
    Csr { data: Dataset, indices: Dataset, indptr: Vec<i64>, nnz: usize },
    Dense(Dataset),
}

#[derive(Debug)]
struct ObsmSink {
    key: String,
    ds: Dataset,
    width: usize,
}

/// Writes an h5ad file from a stream of cell batches (see the module docs).
#[derive(Debug)]
pub struct H5adWriter {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<hdf5::File>,
    genes: GeneTable,
    n_genes: usize,
    x: Option<XSink>,
    n_rows: usize,
    obs_schema: Option<Vec<(String, DataType)>>,
    obs_parts: Vec<Vec<ArrayRef>>,
    obsm: Vec<ObsmSink>,
    int32_limit: usize,
    finished: bool,
    /// obs comes whole at `finish_with_frame` (the engine keeps it for the global stages).
    obs_at_finish: bool,
}

fn rows_per_chunk(width: usize) -> usize {
    (CHUNK_1D / width.max(1)).max(1)
}

impl H5adWriter {
    /// Start writing `path` (through a fresh temporary file beside it) for cells over the
    /// genes of `genes`, X stored as `x_kind`.
    pub fn create(path: &Path, genes: &GeneTable, x_kind: XKind) -> Result<Self> {
        let ctx = Ctx::new(path);
        if path.file_name().is_none() {
            return Err(ctx.usage("the output path has no file name"));
        }
        let tmp = atlasflow_core::partial::temp_path(path);
        atlasflow_core::partial::remove_stale_temps(path);
        let n_genes = genes.n_genes();
        if n_genes > i32::MAX as usize {
            return Err(ctx.usage(format!("{n_genes} genes: h5ad indices are written as int32")));
        }
        let file = hdf5::File::create(&tmp).map_err(|e| ctx.h5("/", e))?;
        let mut w = H5adWriter {
            path: path.to_path_buf(),
            tmp,
            file: None,
            genes: genes.clone(),
            n_genes,
            x: None,
            n_rows: 0,
            obs_schema: None,
            obs_parts: Vec::new(),
            obsm: Vec::new(),
            int32_limit: i32::MAX as usize,
            finished: false,
            obs_at_finish: false,
        };
        // From here on, an error drops `w`, which removes the temporary file.
        let x = (|| -> hdf5::Result<XSink> {
            write_encoding(&file, encoding::ANNDATA)?;
            let obsm = file.create_group("obsm")?;
            write_encoding(&obsm, encoding::DICT)?;
            Ok(match x_kind {
                XKind::Csr => {
                    let g = file.create_group("X")?;
                    write_encoding(&g, encoding::CSR_MATRIX)?;
                    let data = g.new_dataset::<f32>().chunk(CHUNK_1D).shape(0..).create("data")?;
                    let indices = g.new_dataset::<i32>().chunk(CHUNK_1D).shape(0..).create("indices")?;
                    XSink::Csr { data, indices, indptr: vec![0], nnz: 0 }
                }
                XKind::Dense => {
                    let ds = file
                        .new_dataset::<f32>()
                        .chunk([rows_per_chunk(n_genes), n_genes.clamp(1, CHUNK_1D)])
                        .shape([0.., n_genes..])
                        .create("X")?;
                    write_encoding(&ds, encoding::ARRAY)?;
                    XSink::Dense(ds)
                }
            })
        })();
        w.file = Some(file);
        w.x = Some(x.map_err(|e| ctx.h5("/X", e))?);
        Ok(w)
    }

    /// Test hook: pretend int32 indices overflow above `limit` values, to exercise the
    /// int64 path without writing 2^31 values.
    #[doc(hidden)]
    pub fn set_int32_limit_for_tests(&mut self, limit: usize) {
        self.int32_limit = limit;
    }

    /// Number of cells written so far.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Append a batch: its X rows, its obs columns (buffered until `finish`) and its
    /// embeddings (`obsm/<key>`). Every batch must carry the same obs columns and
    /// embeddings as the first. A dense batch written to a CSR file keeps its non-zeros; a
    /// sparse batch written to a dense file is densified.
    pub fn write_batch(&mut self, batch: &CellBatch) -> Result<()> {
        let path = self.path.clone();
        let ctx = Ctx::new(&path);
        if batch.n_genes() != self.n_genes {
            return Err(ctx.usage(format!("batch has {} genes, the file {}", batch.n_genes(), self.n_genes)));
        }
        let n = batch.num_cells();
        self.check_obs(&ctx, batch)?;
        let obsm_data = self.check_obsm(&ctx, batch)?;
        let x = batch.x().map_err(|e| ctx.core(e))?;
        let n_genes = self.n_genes;
        let n_rows = self.n_rows;
        match self.x.as_mut() {
            Some(XSink::Csr { data, indices, indptr, nnz }) => {
                let (vals, idx, ptr) = csr_parts(&ctx, &x, n_genes, *nnz)?;
                let m = vals.len();
                if m > 0 {
                    data.resize(*nnz + m).map_err(|e| ctx.h5("/X/data", e))?;
                    data.write_slice(vals.as_slice(), *nnz..*nnz + m).map_err(|e| ctx.h5("/X/data", e))?;
                    indices.resize(*nnz + m).map_err(|e| ctx.h5("/X/indices", e))?;
                    indices.write_slice(idx.as_slice(), *nnz..*nnz + m).map_err(|e| ctx.h5("/X/indices", e))?;
                }
                indptr.extend_from_slice(&ptr);
                *nnz += m;
            }
            Some(XSink::Dense(ds)) => {
                let dense = dense_rows(&x, n_genes);
                append_rows(ds, &dense, n_rows, n, n_genes).map_err(|e| ctx.h5("/X", e))?;
            }
            None => return Err(ctx.usage("the writer has already failed or finished")),
        }
        for (sink, data) in self.obsm.iter().zip(obsm_data) {
            append_rows(&sink.ds, &data, n_rows, n, sink.width).map_err(|e| ctx.h5(&format!("/obsm/{}", sink.key), e))?;
        }
        if !self.obs_at_finish {
            self.obs_parts.push(batch.obs_columns().into_iter().map(|(_, c)| c).collect());
        }
        self.n_rows += n;
        Ok(())
    }

    fn check_obs(&mut self, ctx: &Ctx<'_>, batch: &CellBatch) -> Result<()> {
        let schema: Vec<(String, DataType)> =
            batch.obs_columns().iter().map(|(n, c)| (n.clone(), c.data_type().clone())).collect();
        match &self.obs_schema {
            None => {
                for (name, _) in &schema {
                    if name != CELL_ID {
                        check_key(name).map_err(|m| ctx.invalid("/obs", m))?;
                        if name == "_index" {
                            return Err(ctx.invalid("/obs", "'_index' is a reserved name for dataframe columns"));
                        }
                    }
                }
                self.obs_schema = Some(schema);
            }
            Some(first) => {
                let same = first.len() == schema.len()
                    && first.iter().zip(&schema).all(|((a, ta), (b, tb))| a == b && same_kind(ta, tb));
                if !same {
                    let names = |s: &[(String, DataType)]| s.iter().map(|(n, t)| format!("{n}: {t}")).collect::<Vec<_>>().join(", ");
                    return Err(ctx.usage(format!(
                        "batch at cell {} has obs columns [{}], the first batch had [{}]",
                        self.n_rows,
                        names(&schema),
                        names(first)
                    )));
                }
            }
        }
        Ok(())
    }

    /// Embeddings of the batch, in the order of the sinks (created on the first batch).
    fn check_obsm(&mut self, ctx: &Ctx<'_>, batch: &CellBatch) -> Result<Vec<Vec<f32>>> {
        let keys = batch.obsm_keys();
        if self.obs_parts.is_empty() && self.obsm.is_empty() {
            let file = self.file.as_ref().ok_or_else(|| ctx.usage("the writer has already failed or finished"))?;
            let g = file.group("obsm").map_err(|e| ctx.h5("/obsm", e))?;
            for key in &keys {
                check_key(key).map_err(|m| ctx.invalid("/obsm", m))?;
                let width = batch.obsm(key).map(|(_, w)| w).unwrap_or(0);
                let p = format!("/obsm/{key}");
                let ds = g
                    .new_dataset::<f32>()
                    .chunk([rows_per_chunk(width), width.clamp(1, CHUNK_1D)])
                    .shape([0.., width..])
                    .create(key.as_str())
                    .and_then(|ds| write_encoding(&ds, encoding::ARRAY).map(|_| ds))
                    .map_err(|e| ctx.h5(&p, e))?;
                self.obsm.push(ObsmSink { key: key.clone(), ds, width });
            }
        }
        let sink_keys: Vec<&str> = self.obsm.iter().map(|s| s.key.as_str()).collect();
        if keys.len() != sink_keys.len() || keys.iter().any(|k| !sink_keys.contains(&k.as_str())) {
            return Err(ctx.usage(format!(
                "batch at cell {} has embeddings {keys:?}, the first batch had {sink_keys:?}",
                self.n_rows
            )));
        }
        let mut out = Vec::with_capacity(self.obsm.len());
        for s in &self.obsm {
            let (data, w) = batch
                .obsm(&s.key)
                .ok_or_else(|| ctx.usage(format!("embedding obsm/{} is not a float32 fixed-size list", s.key)))?;
            if w != s.width {
                return Err(ctx.usage(format!("embedding obsm/{} has width {w}, the first batch {}", s.key, s.width)));
            }
            out.push(data.to_vec());
        }
        Ok(out)
    }

    /// Do not buffer obs: it will be given whole to [`H5adWriter::finish_with_frame`] (the
    /// engine keeps obs for the global stages anyway, so it is held once, not twice).
    pub fn obs_at_finish(&mut self) {
        self.obs_at_finish = true;
        self.obs_parts.clear();
    }

    /// Finish with the whole-dataset frame the global stages produced: obs from
    /// `frame.obs` (one value per written cell, `cell_id` as the index), the embeddings of
    /// `frame.obsm` that were not streamed (e.g. `X_umap`), every `frame.obsp` graph as a
    /// `csr_matrix`, and `frame.uns`.
    pub fn finish_with_frame(mut self, genes: &GeneTable, frame: &CellFrame) -> Result<()> {
        let path = self.path.clone();
        let ctx = Ctx::new(&path);
        if frame.n_cells != self.n_rows {
            return Err(ctx.usage(format!("frame has {} cells, X has {} rows", frame.n_cells, self.n_rows)));
        }
        for (name, col) in &frame.obs {
            if col.len() != self.n_rows {
                return Err(ctx.invalid(&format!("/obs/{name}"), format!("{} values for {} cells", col.len(), self.n_rows)));
            }
        }
        self.obs_schema = Some(frame.obs.iter().map(|(n, c)| (n.clone(), c.data_type().clone())).collect());
        self.obs_parts = vec![frame.obs.iter().map(|(_, c)| Arc::clone(c)).collect()];
        let file = self.file.take().ok_or_else(|| ctx.usage("the writer has already failed or finished"))?;
        let streamed: Vec<String> = self.obsm.iter().map(|s| s.key.clone()).collect();
        let res = (|| {
            let g = file.group("obsm").map_err(|e| ctx.h5("/obsm", e))?;
            for (key, emb) in &frame.obsm {
                if streamed.contains(key) {
                    continue;
                }
                let p = format!("/obsm/{key}");
                check_key(key).map_err(|m| ctx.invalid("/obsm", m))?;
                if emb.values.len() != self.n_rows * emb.width {
                    return Err(ctx.invalid(&p, format!("{} values for {} cells × {}", emb.values.len(), self.n_rows, emb.width)));
                }
                let view = ArrayView2::from_shape((self.n_rows, emb.width), emb.values.as_slice()).map_err(|e| ctx.invalid(&p, e.to_string()))?;
                g.new_dataset_builder()
                    .with_data(view)
                    .create(key.as_str())
                    .and_then(|ds| write_encoding(&ds, encoding::ARRAY))
                    .map_err(|e| ctx.h5(&p, e))?;
            }
            self.write_tail_with(&ctx, &file, genes, &frame.uns, &frame.obsp)
        })();
        self.x = None;
        self.obsm.clear();
        res?;
        file.close().map_err(|e| ctx.h5("/", e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| ctx.io(e))?;
        self.finished = true;
        Ok(())
    }

    /// Write obs, var (from the gene table given at `create`), uns and the empty mappings,
    /// then move the file into place.
    pub fn finish(self, uns: &Uns) -> Result<()> {
        let genes = self.genes.clone();
        self.finish_with_genes(&genes, uns)
    }

    /// As [`H5adWriter::finish`], with a final gene table (var columns such as PCA loadings
    /// known only at the end); it must have as many genes as X has columns.
    pub fn finish_with_genes(mut self, genes: &GeneTable, uns: &Uns) -> Result<()> {
        let path = self.path.clone();
        let ctx = Ctx::new(&path);
        if genes.n_genes() != self.n_genes {
            return Err(ctx.usage(format!("final gene table has {} genes, X has {} columns", genes.n_genes(), self.n_genes)));
        }
        let file = self.file.take().ok_or_else(|| ctx.usage("the writer has already failed or finished"))?;
        let res = self.write_tail(&ctx, &file, genes, uns);
        // Close every handle before closing the file.
        self.x = None;
        self.obsm.clear();
        res?;
        file.close().map_err(|e| ctx.h5("/", e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| ctx.io(e))?;
        self.finished = true;
        Ok(())
    }

    fn write_tail(&mut self, ctx: &Ctx<'_>, file: &hdf5::File, genes: &GeneTable, uns: &Uns) -> Result<()> {
        self.write_tail_with(ctx, file, genes, uns, &[])
    }

    fn write_tail_with(&mut self, ctx: &Ctx<'_>, file: &hdf5::File, genes: &GeneTable, uns: &Uns, obsp: &[(String, Graph)]) -> Result<()> {
        match &self.x {
            Some(XSink::Csr { indices, indptr, nnz, .. }) => {
                let g = file.group("X").map_err(|e| ctx.h5("/X", e))?;
                write_i64_array_attr(&g, "shape", &[self.n_rows as i64, self.n_genes as i64]).map_err(|e| ctx.h5("/X", e))?;
                if *nnz <= self.int32_limit {
                    let p32: Vec<i32> = indptr.iter().map(|&p| p as i32).collect();
                    g.new_dataset_builder().with_data(p32.as_slice()).create("indptr").map_err(|e| ctx.h5("/X/indptr", e))?;
                } else {
                    g.new_dataset_builder().with_data(indptr.as_slice()).create("indptr").map_err(|e| ctx.h5("/X/indptr", e))?;
                    widen_indices(&g, indices, *nnz).map_err(|e| ctx.h5("/X/indices", e))?;
                }
            }
            Some(XSink::Dense(_)) => {}
            None => return Err(ctx.usage("the writer has already failed or finished")),
        }
        self.write_obs(ctx, file)?;
        write_var(ctx, file, genes)?;
        for name in ["obsp", "varp", "layers"] {
            let g = file.create_group(name).map_err(|e| ctx.h5(&format!("/{name}"), e))?;
            write_encoding(&g, encoding::DICT).map_err(|e| ctx.h5(&format!("/{name}"), e))?;
            if name == "obsp" {
                for (key, graph) in obsp {
                    write_graph(ctx, &g, key, graph, self.n_rows)?;
                }
            }
        }
        let ug = file.create_group("uns").map_err(|e| ctx.h5("/uns", e))?;
        write_encoding(&ug, encoding::DICT).map_err(|e| ctx.h5("/uns", e))?;
        match uns {
            Uns::Map(entries) => {
                for (k, v) in entries {
                    write_uns(ctx, &ug, k, v, "/uns")?;
                }
            }
            Uns::Null => {}
            _ => return Err(ctx.invalid("/uns", "uns must be a mapping")),
        }
        file.flush().map_err(|e| ctx.h5("/", e))?;
        Ok(())
    }

    fn write_obs(&mut self, ctx: &Ctx<'_>, file: &hdf5::File) -> Result<()> {
        let schema = self.obs_schema.clone().unwrap_or_default();
        let parts = std::mem::take(&mut self.obs_parts);
        let column = |i: usize| -> Vec<ArrayRef> { parts.iter().filter_map(|p| p.get(i).cloned()).collect() };
        let g = file.create_group("obs").map_err(|e| ctx.h5("/obs", e))?;
        let index: Vec<String> = match schema.iter().position(|(n, _)| n == CELL_ID) {
            Some(i) => {
                let col = concat(ctx, "/obs/_index", &column(i))?;
                let s = arrow::compute::cast(&col, &DataType::Utf8).map_err(|e| ctx.arrow(e))?;
                let s = s.as_string::<i32>();
                (0..s.len()).map(|r| if s.is_null(r) { String::new() } else { s.value(r).to_string() }).collect()
            }
            // anndata's default index: the row numbers as strings.
            None => (0..self.n_rows).map(|r| r.to_string()).collect(),
        };
        let mut names = Vec::new();
        let mut cols = Vec::new();
        for (i, (name, _)) in schema.iter().enumerate() {
            if name != CELL_ID {
                names.push(name.clone());
                cols.push(column(i));
            }
        }
        write_frame_header(ctx, &g, "/obs", &index, &names)?;
        for (name, col) in names.iter().zip(cols) {
            write_column_parts(ctx, &g, name, &format!("/obs/{name}"), &col)?;
        }
        Ok(())
    }
}

impl Drop for H5adWriter {
    fn drop(&mut self) {
        if !self.finished {
            self.x = None;
            self.obsm.clear();
            if let Some(f) = self.file.take() {
                let _ = f.close();
            }
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Replace int32 `indices` by an int64 copy (chunk by chunk), for files whose indptr
/// needs int64.
fn widen_indices(g: &Group, indices: &Dataset, nnz: usize) -> hdf5::Result<()> {
    let wide = g.new_dataset::<i64>().chunk(CHUNK_1D.min(nnz.max(1))).shape([nnz]).create("indices_int64")?;
    let step = CHUNK_1D * 64;
    let mut at = 0;
    while at < nnz {
        let end = (at + step).min(nnz);
        let v = indices.read_slice_1d::<i64, _>(at..end)?;
        wide.write_slice(&v, at..end)?;
        at = end;
    }
    g.unlink("indices")?;
    g.relink("indices_int64", "indices")?;
    Ok(())
}

/// The batch's X as (values, int32 indices, absolute int64 indptr entries after the first).
fn csr_parts(ctx: &Ctx<'_>, x: &XView<'_>, n_genes: usize, nnz_before: usize) -> Result<(Vec<f32>, Vec<i32>, Vec<i64>)> {
    let mut vals = Vec::new();
    let mut idx = Vec::new();
    let mut ptr = Vec::new();
    match x {
        XView::Csr(c) => {
            let (a, b) = match (c.indptr.first(), c.indptr.last()) {
                (Some(&a), Some(&b)) => (a as usize, b as usize),
                _ => return Ok((vals, idx, ptr)),
            };
            vals.extend_from_slice(&c.values[a..b]);
            for &j in &c.indices[a..b] {
                if j as usize >= n_genes {
                    return Err(ctx.usage(format!("batch holds gene index {j} for {n_genes} genes")));
                }
                idx.push(j as i32);
            }
            ptr.extend(c.indptr[1..].iter().map(|&p| (nnz_before + (p as usize - a)) as i64));
        }
        XView::Dense { data, n_cols } => {
            for row in data.chunks_exact((*n_cols).max(1)) {
                for (j, &v) in row.iter().enumerate() {
                    if v != 0.0 {
                        vals.push(v);
                        idx.push(j as i32);
                    }
                }
                ptr.push((nnz_before + vals.len()) as i64);
            }
        }
    }
    Ok((vals, idx, ptr))
}

fn dense_rows(x: &XView<'_>, n_genes: usize) -> Vec<f32> {
    match x {
        XView::Dense { data, .. } => data.to_vec(),
        XView::Csr(c) => {
            let mut out = vec![0.0f32; c.n_rows() * n_genes];
            for r in 0..c.n_rows() {
                let (ri, rv) = c.row(r);
                for (&j, &v) in ri.iter().zip(rv) {
                    if let Some(slot) = out.get_mut(r * n_genes + j as usize) {
                        *slot = v;
                    }
                }
            }
            out
        }
    }
}

/// Grow a 2-D dataset by `n` rows of `width` and write them.
fn append_rows(ds: &Dataset, data: &[f32], at: usize, n: usize, width: usize) -> hdf5::Result<()> {
    if n == 0 {
        return Ok(());
    }
    ds.resize([at + n, width])?;
    if width == 0 {
        return Ok(());
    }
    let view = ArrayView2::from_shape((n, width), data).map_err(|e| hdf5::Error::from(e.to_string()))?;
    ds.write_slice(view, (at..at + n, ..))
}

fn same_kind(a: &DataType, b: &DataType) -> bool {
    match (a, b) {
        (DataType::Dictionary(_, _), DataType::Dictionary(_, _)) => true,
        _ => a == b,
    }
}

fn concat(ctx: &Ctx<'_>, p: &str, parts: &[ArrayRef]) -> Result<ArrayRef> {
    match parts {
        [] => Err(ctx.invalid(p, "no data")),
        [one] => Ok(Arc::clone(one)),
        many => {
            let refs: Vec<&dyn Array> = many.iter().map(|a| a.as_ref()).collect();
            arrow::compute::concat(&refs).map_err(|e| ctx.arrow(e))
        }
    }
}

/// Write the dataframe group's attributes and index.
fn write_frame_header(ctx: &Ctx<'_>, g: &Group, gp: &str, index: &[String], columns: &[String]) -> Result<()> {
    (|| -> hdf5::Result<()> {
        write_encoding(g, encoding::DATAFRAME)?;
        write_str_attr(g, "_index", "_index")?;
        write_str_array_attr(g, "column-order", columns)?;
        write_string_array(g, "_index", index)?;
        Ok(())
    })()
    .map_err(|e| ctx.h5(gp, e))
}

/// Write one dataframe column given as the parts buffered from each batch. Dictionary
/// parts are merged into one categorical whose categories keep the order of first
/// appearance in the dictionaries (so a source's category order survives).
fn write_column_parts(ctx: &Ctx<'_>, g: &Group, name: &str, p: &str, parts: &[ArrayRef]) -> Result<()> {
    if parts.iter().all(|a| matches!(a.data_type(), DataType::Dictionary(_, _))) && !parts.is_empty() {
        let mut cats: Vec<String> = Vec::new();
        let mut lookup: HashMap<String, i32> = HashMap::new();
        let mut codes: Vec<i32> = Vec::new();
        for part in parts {
            let dict = part.as_any_dictionary_opt().ok_or_else(|| ctx.invalid(p, "not a dictionary"))?;
            let values = arrow::compute::cast(dict.values(), &DataType::Utf8).map_err(|e| ctx.arrow(e))?;
            let values = values.as_string::<i32>();
            let mut map = Vec::with_capacity(values.len());
            for i in 0..values.len() {
                if values.is_null(i) {
                    map.push(-1);
                    continue;
                }
                let v = values.value(i);
                let code = match lookup.get(v) {
                    Some(&c) => c,
                    None => {
                        let c = cats.len() as i32;
                        cats.push(v.to_string());
                        lookup.insert(v.to_string(), c);
                        c
                    }
                };
                map.push(code);
            }
            // An all-missing column may carry no categories at all; every code is then -1
            // (arrow's normalized_keys asserts on an empty dictionary).
            if dict.values().is_empty() {
                codes.extend(std::iter::repeat_n(-1, part.len()));
                continue;
            }
            let keys = dict.normalized_keys();
            for (r, k) in keys.iter().enumerate() {
                codes.push(if part.is_null(r) { -1 } else { map.get(*k).copied().unwrap_or(-1) });
            }
        }
        return write_categorical(ctx, g, name, p, &cats, &codes);
    }
    let col = concat(ctx, p, parts)?;
    write_column(ctx, g, name, p, &col)
}

/// A categorical group: codes (int8/int16/int32 as pandas picks) + string categories.
fn write_categorical(ctx: &Ctx<'_>, g: &Group, name: &str, p: &str, cats: &[String], codes: &[i32]) -> Result<()> {
    (|| -> hdf5::Result<()> {
        let cg = g.create_group(name)?;
        write_encoding(&cg, encoding::CATEGORICAL)?;
        write_bool_attr(&cg, "ordered", false)?;
        if cats.len() < i8::MAX as usize {
            write_array(&cg, "codes", &codes.iter().map(|&c| c as i8).collect::<Vec<_>>())?;
        } else if cats.len() < i16::MAX as usize {
            write_array(&cg, "codes", &codes.iter().map(|&c| c as i16).collect::<Vec<_>>())?;
        } else {
            write_array(&cg, "codes", codes)?;
        }
        write_string_array(&cg, "categories", cats)?;
        Ok(())
    })()
    .map_err(|e| ctx.h5(p, e))
}

/// A nullable column as anndata's (values, mask) group.
fn write_nullable<T: hdf5::H5Type>(g: &Group, name: &str, enc: encoding::Encoding, values: &[T], mask: &[bool]) -> hdf5::Result<()> {
    let ng = g.create_group(name)?;
    write_encoding(&ng, enc)?;
    write_array(&ng, "values", values)?;
    write_array(&ng, "mask", mask)?;
    Ok(())
}

/// Write one Arrow column as the anndata element pandas would give for it.
fn write_column(ctx: &Ctx<'_>, g: &Group, name: &str, p: &str, col: &ArrayRef) -> Result<()> {
    let h5 = |e: hdf5::Error| ctx.h5(p, e);
    let mask: Vec<bool> = (0..col.len()).map(|i| col.is_null(i)).collect();
    let has_nulls = col.null_count() > 0;
    macro_rules! ints {
        ($t:ty) => {{
            let a = col.as_primitive::<$t>();
            let v: Vec<_> = (0..a.len()).map(|i| if a.is_null(i) { Default::default() } else { a.value(i) }).collect();
            if has_nulls {
                write_nullable(g, name, encoding::NULLABLE_INTEGER, &v, &mask).map_err(h5)
            } else {
                write_array(g, name, &v).map(|_| ()).map_err(h5)
            }
        }};
    }
    macro_rules! floats {
        ($t:ty, $nan:expr) => {{
            let a = col.as_primitive::<$t>();
            let v: Vec<_> = (0..a.len()).map(|i| if a.is_null(i) { $nan } else { a.value(i) }).collect();
            write_array(g, name, &v).map(|_| ()).map_err(h5)
        }};
    }
    match col.data_type() {
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => ints!(UInt64Type),
        DataType::Float32 => floats!(Float32Type, f32::NAN),
        DataType::Float64 => floats!(Float64Type, f64::NAN),
        DataType::Float16 => {
            let c = arrow::compute::cast(col, &DataType::Float32).map_err(|e| ctx.arrow(e))?;
            write_column(ctx, g, name, p, &c)
        }
        DataType::Boolean => {
            let a = col.as_boolean();
            let v: Vec<bool> = (0..a.len()).map(|i| !a.is_null(i) && a.value(i)).collect();
            if has_nulls {
                write_nullable(g, name, encoding::NULLABLE_BOOLEAN, &v, &mask).map_err(h5)
            } else {
                write_array(g, name, &v).map(|_| ()).map_err(h5)
            }
        }
        DataType::Dictionary(_, _) => write_column_parts(ctx, g, name, p, std::slice::from_ref(col)),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let c = arrow::compute::cast(col, &DataType::Utf8).map_err(|e| ctx.arrow(e))?;
            let s: &StringArray = c.as_string::<i32>();
            let v: Vec<&str> = (0..s.len()).map(|i| if s.is_null(i) { "" } else { s.value(i) }).collect();
            if has_nulls {
                (|| -> hdf5::Result<()> {
                    let ng = g.create_group(name)?;
                    write_encoding(&ng, encoding::NULLABLE_STRING_ARRAY)?;
                    write_string_array(&ng, "values", &v)?;
                    write_array(&ng, "mask", &mask)?;
                    Ok(())
                })()
                .map_err(h5)
            } else {
                write_string_array(g, name, &v).map(|_| ()).map_err(h5)
            }
        }
        other => match arrow::compute::cast(col, &DataType::Utf8) {
            Ok(c) => write_column(ctx, g, name, p, &c),
            Err(_) => Err(ctx.invalid(p, format!("a column of type {other} cannot be written to h5ad"))),
        },
    }
}

/// var (index `_index` from `gene_id`, the other columns) and varm (`varm/<key>` columns
/// as genes × k arrays).
fn write_var(ctx: &Ctx<'_>, file: &hdf5::File, genes: &GeneTable) -> Result<()> {
    let rb = genes.record_batch();
    let schema = rb.schema();
    let g = file.create_group("var").map_err(|e| ctx.h5("/var", e))?;
    let vg = file.create_group("varm").map_err(|e| ctx.h5("/varm", e))?;
    write_encoding(&vg, encoding::DICT).map_err(|e| ctx.h5("/varm", e))?;
    let index: Vec<String> = (0..genes.n_genes()).map(|j| genes.name(j).to_string()).collect();
    let mut names = Vec::new();
    let mut cols = Vec::new();
    for (f, c) in schema.fields().iter().zip(rb.columns()).skip(1) {
        if let Some(key) = f.name().strip_prefix(VARM_PREFIX) {
            check_key(key).map_err(|m| ctx.invalid("/varm", m))?;
            write_varm(ctx, &vg, key, c)?;
        } else {
            check_key(f.name()).map_err(|m| ctx.invalid("/var", m))?;
            if f.name() == "_index" {
                return Err(ctx.invalid("/var", "'_index' is a reserved name for dataframe columns"));
            }
            names.push(f.name().clone());
            cols.push(Arc::clone(c));
        }
    }
    write_frame_header(ctx, &g, "/var", &index, &names)?;
    for (name, col) in names.iter().zip(&cols) {
        write_column(ctx, &g, name, &format!("/var/{name}"), col)?;
    }
    Ok(())
}

fn write_varm(ctx: &Ctx<'_>, vg: &Group, key: &str, col: &ArrayRef) -> Result<()> {
    let p = format!("/varm/{key}");
    let fsl = col
        .as_fixed_size_list_opt()
        .ok_or_else(|| ctx.invalid(&p, format!("varm column is {}, expected a fixed-size list", col.data_type())))?;
    let k = fsl.value_length().max(0) as usize;
    let n = fsl.len();
    let start = if n == 0 { 0 } else { fsl.value_offset(0).max(0) as usize };
    let values = fsl.values();
    let h5 = |e: hdf5::Error| ctx.h5(&p, e);
    let write2d = |ds_data: hdf5::Result<Dataset>| -> Result<()> {
        let ds = ds_data.map_err(h5)?;
        write_encoding(&ds, encoding::ARRAY).map_err(h5)
    };
    match values.data_type() {
        DataType::Float64 => {
            let v = values.as_primitive::<Float64Type>().values();
            let slice = v.get(start..start + n * k).ok_or_else(|| ctx.invalid(&p, "values shorter than genes × k"))?;
            let view = ArrayView2::from_shape((n, k), slice).map_err(|e| ctx.invalid(&p, e.to_string()))?;
            write2d(vg.new_dataset_builder().with_data(view).create(key))
        }
        _ => {
            let c = arrow::compute::cast(values, &DataType::Float32).map_err(|e| ctx.arrow(e))?;
            let v = c.as_primitive::<Float32Type>().values();
            let slice = v.get(start..start + n * k).ok_or_else(|| ctx.invalid(&p, "values shorter than genes × k"))?;
            let view = ArrayView2::from_shape((n, k), slice).map_err(|e| ctx.invalid(&p, e.to_string()))?;
            write2d(vg.new_dataset_builder().with_data(view).create(key))
        }
    }
}

/// A cell × cell graph as anndata writes a scipy `csr_matrix` in obsp: data float32 or
/// float64 as the graph says, indices and indptr int32 (int64 past 2^31 − 1 values).
fn write_graph(ctx: &Ctx<'_>, obsp: &Group, key: &str, graph: &Graph, n_rows: usize) -> Result<()> {
    let p = format!("/obsp/{key}");
    check_key(key).map_err(|m| ctx.invalid("/obsp", m))?;
    if graph.n != n_rows || graph.indptr.len() != n_rows + 1 || graph.indptr.last().copied().unwrap_or(0) as usize != graph.nnz() || graph.values.len() != graph.nnz() {
        return Err(ctx.invalid(&p, format!("graph of {} cells with {} values does not fit {} cells", graph.n, graph.nnz(), n_rows)));
    }
    let h5 = |e: hdf5::Error| ctx.h5(&p, e);
    let g = obsp.create_group(key).map_err(h5)?;
    write_encoding(&g, encoding::CSR_MATRIX).map_err(h5)?;
    write_i64_array_attr(&g, "shape", &[n_rows as i64, n_rows as i64]).map_err(h5)?;
    if graph.float32 {
        let v: Vec<f32> = graph.values.iter().map(|&x| x as f32).collect();
        g.new_dataset_builder().with_data(v.as_slice()).create("data").map_err(h5)?;
    } else {
        g.new_dataset_builder().with_data(graph.values.as_slice()).create("data").map_err(h5)?;
    }
    if graph.nnz() < i32::MAX as usize {
        let idx: Vec<i32> = graph.indices.iter().map(|&i| i as i32).collect();
        let ptr: Vec<i32> = graph.indptr.iter().map(|&i| i as i32).collect();
        g.new_dataset_builder().with_data(idx.as_slice()).create("indices").map_err(h5)?;
        g.new_dataset_builder().with_data(ptr.as_slice()).create("indptr").map_err(h5)?;
    } else {
        let idx: Vec<i64> = graph.indices.iter().map(|&i| i64::from(i)).collect();
        let ptr: Vec<i64> = graph.indptr.iter().map(|&i| i as i64).collect();
        g.new_dataset_builder().with_data(idx.as_slice()).create("indices").map_err(h5)?;
        g.new_dataset_builder().with_data(ptr.as_slice()).create("indptr").map_err(h5)?;
    }
    Ok(())
}

/// One uns entry, as anndata writes the matching Python value.
fn write_uns(ctx: &Ctx<'_>, g: &Group, key: &str, v: &Uns, parent: &str) -> Result<()> {
    let p = format!("{parent}/{key}");
    check_key(key).map_err(|m| ctx.invalid(&p, m))?;
    let h5 = |e: hdf5::Error| ctx.h5(&p, e);
    let tag = |ds: Dataset, enc: encoding::Encoding| -> hdf5::Result<()> {
        let loc: &Location = &ds;
        write_encoding(loc, enc)
    };
    match v {
        Uns::Map(entries) => {
            let sub = g.create_group(key).map_err(h5)?;
            write_encoding(&sub, encoding::DICT).map_err(h5)?;
            for (k, v) in entries {
                write_uns(ctx, &sub, k, v, &p)?;
            }
            Ok(())
        }
        // anndata writes None as an empty (null-dataspace) float32 dataset.
        Uns::Null => g
            .new_dataset::<f32>()
            .shape(Extents::Null)
            .create(key)
            .and_then(|ds| tag(ds, encoding::NULL))
            .map_err(h5),
        Uns::Bool(b) => scalar(g, key, b).and_then(|ds| tag(ds, encoding::NUMERIC_SCALAR)).map_err(h5),
        Uns::Int(i) => scalar(g, key, i).and_then(|ds| tag(ds, encoding::NUMERIC_SCALAR)).map_err(h5),
        Uns::Float(f) => scalar(g, key, f).and_then(|ds| tag(ds, encoding::NUMERIC_SCALAR)).map_err(h5),
        Uns::Str(s) => VarLenUnicode::from_str(s)
            .map_err(|e| hdf5::Error::from(e.to_string()))
            .and_then(|v| scalar(g, key, &v))
            .and_then(|ds| tag(ds, encoding::STRING))
            .map_err(h5),
        Uns::FloatArray(v) => write_array(g, key, v).map(|_| ()).map_err(h5),
        Uns::StrArray(v) => write_string_array(g, key, v).map(|_| ()).map_err(h5),
    }
}

fn scalar<T: hdf5::H5Type>(g: &Group, key: &str, v: &T) -> hdf5::Result<Dataset> {
    let ds = g.new_dataset::<T>().shape(()).create(key)?;
    ds.write_scalar(v)?;
    Ok(ds)
}
