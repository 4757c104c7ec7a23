//! The `census` source on a TileDB-SOMA Census: the same query as on an atlas store
//! (obs value filter, var value filter, `genes: dataset_presence`), answered from the
//! Census's own arrays with the native reader of `atlasflow-soma`.
//!
//! Opening a query streams obs in blocks of [`OBS_BLOCK`] soma_joinids, reading only the
//! columns the filter names (plus soma_joinid, nnz and dataset_id), and evaluates the
//! filter on each block with DataFusion's physical expressions — the same [`ValueFilter`]
//! and type coercion as the Parquet store, in memory bounded by a block, not by obs.
//! Dataset-table columns the filter names (`dataset_title == '…'`) are looked up by
//! dataset_id, the way the tutorial finds its dataset. var and the presence rows of the
//! selected datasets are small and read whole. Reading cells `start..end` then reads their
//! obs rows by soma_joinid and their X rows as CSR (only the tiles holding them).
//!
//! The Census has no per-dataset cell name, so `cell_id` is the cell's soma_joinid.
//! Categorical columns (TileDB enumerations, and string columns with repeated values, as
//! anndata stores strings) keep only the categories of the selected cells, in enumeration
//! order (strings: sorted), as `get_anndata` followed by `remove_unused_categories` gives.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, DictionaryArray, Int32Array, RecordBatch, StringArray,
};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use atlasflow_core::batch::CELL_ID;
use atlasflow_core::{CellBatch, Csr};
use atlasflow_soma::census::RNA;
use atlasflow_soma::{Census, Coords, SparseReader, XReader};
use datafusion::common::DFSchema;
use datafusion::physical_plan::PhysicalExpr;
use datafusion::prelude::SessionContext;

use crate::census::{CensusQuery, DROPPED, GeneSelection, Selection, parse_filter};
use crate::filter::ValueFilter;
use crate::layout::{DatasetRow, VarRow};
use crate::{AtlasError, Result};

/// soma_joinids per obs block while selecting cells (about 0.5 MiB per filter column).
pub const OBS_BLOCK: i64 = 65_536;

/// A string column with more distinct values among the selected cells than this stays a
/// string column (an id, not a category).
const MAX_CATEGORIES: usize = 100_000;

/// How an obs column is carried into cell batches.
#[derive(Debug)]
enum Carry {
    /// As is (numbers, booleans), cast to this type.
    Plain(DataType),
    /// Strings with a unique value per cell: Utf8.
    Text,
    /// A categorical: the categories and each one's code.
    Categorical { values: ArrayRef, codes: HashMap<String, i32> },
}

#[derive(Debug)]
struct ObsColumn {
    name: String,
    carry: Carry,
}

/// The cells and genes of a query on a TileDB-SOMA Census, readable by row range from any
/// number of threads.
#[derive(Debug)]
pub struct SomaCensusReader {
    location: String,
    columns: Vec<ObsColumn>,
    obs: SparseReader,
    x: XReader,
    sel: Selection,
}

fn soma(e: atlasflow_soma::SomaError) -> AtlasError {
    AtlasError::Soma(e)
}

fn query_err(location: &str, message: impl std::fmt::Display) -> AtlasError {
    AtlasError::Query(format!("{location}: {message}"))
}

/// "homo_sapiens" → "Homo sapiens", the organism as the dataset table of a store spells it.
fn organism_label(member: &str) -> String {
    let words = member.replace('_', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => words,
    }
}

/// A filter compiled for batches of one schema.
struct CompiledFilter {
    expr: Arc<dyn PhysicalExpr>,
}

impl CompiledFilter {
    fn new(filter: &ValueFilter, schema: &Schema) -> Result<Self> {
        let df_schema = DFSchema::try_from(schema.clone())?;
        let expr = SessionContext::new().create_physical_expr(filter.to_expr(), &df_schema)?;
        Ok(CompiledFilter { expr })
    }

    /// Which rows pass (a null result does not, as in SQL and SOMA).
    fn mask(&self, batch: &RecordBatch) -> Result<BooleanArray> {
        let v = self.expr.evaluate(batch)?.into_array(batch.num_rows())?;
        let b = v.as_boolean_opt().ok_or_else(|| AtlasError::Query("a value filter did not give booleans".into()))?;
        Ok(if b.null_count() == 0 { b.clone() } else { arrow::compute::prep_null_mask_filter(b) })
    }
}

/// Strings of a (possibly dictionary-encoded, possibly large) string column, or `None`.
fn utf8(col: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(col, &DataType::Utf8)?)
}

fn is_stringy(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The dataset table as rows, for the datasets named in `ids` (in soma_joinid order).
fn dataset_rows(batch: &RecordBatch, organism: &str) -> Result<Vec<DatasetRow>> {
    let text = |name: &str| -> Result<Vec<String>> {
        match batch.column_by_name(name) {
            Some(c) => {
                let s = utf8(c)?;
                let s = s.as_string::<i32>();
                Ok((0..s.len()).map(|i| if s.is_null(i) { String::new() } else { s.value(i).to_string() }).collect())
            }
            None => Ok(vec![String::new(); batch.num_rows()]),
        }
    };
    let int = |name: &str| -> Result<Vec<i64>> {
        match batch.column_by_name(name) {
            Some(c) => {
                let v = cast(c, &DataType::Int64)?;
                let v = v.as_primitive::<Int64Type>();
                Ok((0..v.len()).map(|i| if v.is_null(i) { 0 } else { v.value(i) }).collect())
            }
            None => Ok(vec![0; batch.num_rows()]),
        }
    };
    let (jid, cid, cname, cdoi, did, title, path, count) = (
        int("soma_joinid")?,
        text("collection_id")?,
        text("collection_name")?,
        text("collection_doi")?,
        text("dataset_id")?,
        text("dataset_title")?,
        text("dataset_h5ad_path")?,
        int("dataset_total_cell_count")?,
    );
    Ok((0..batch.num_rows())
        .map(|i| DatasetRow {
            soma_joinid: jid[i],
            collection_id: cid[i].clone(),
            collection_name: cname[i].clone(),
            collection_doi: cdoi[i].clone(),
            dataset_id: did[i].clone(),
            dataset_title: title[i].clone(),
            dataset_h5ad_path: path[i].clone(),
            dataset_total_cell_count: count[i],
            organism: organism.to_string(),
        })
        .collect())
}

impl SomaCensusReader {
    /// Run the query's filters over the Census at `path` (a directory, or an
    /// `s3://bucket/prefix` URL read anonymously as `cellxgene_census.open_soma()` does;
    /// region, endpoint and credentials from the standard AWS variables, metadata cached
    /// under `ATLASFLOW_SOMA_CACHE` when set) and prepare to stream the selected cells.
    pub fn open(path: &Path, query: &CensusQuery) -> Result<Self> {
        let location = path.display().to_string();
        let (storage, root) = atlasflow_soma::storage_for_uri(&path.to_string_lossy()).map_err(soma)?;
        let census = Census::open(storage, &root).map_err(soma)?;
        let organisms = census.organisms().map_err(soma)?;
        let member = match query.organism.as_deref() {
            Some(o) => {
                let m = atlasflow_soma::organism_member_name(o);
                if !organisms.contains(&m) {
                    return Err(query_err(&location, format!("no organism \"{o}\" (the Census holds: {})", organisms.join(", "))));
                }
                m
            }
            None => match organisms.as_slice() {
                [one] => one.clone(),
                [] => return Err(query_err(&location, "census_data holds no organism")),
                many => {
                    return Err(query_err(&location, format!("the Census holds several organisms ({}); say which one", many.join(", "))));
                }
            },
        };
        let organism = organism_label(&member);
        let exp = census.experiment(&member).map_err(soma)?;
        let measurement = if query.measurement.is_empty() { RNA } else { query.measurement.as_str() };

        let ds_batch = census.datasets().map_err(soma)?.read(None).map_err(soma)?;
        let obs_filter = parse_filter("obs_filter", query.obs_filter.as_deref())?;
        let var_filter = parse_filter("var_filter", query.var_filter.as_deref())?;

        let obs_array = exp.obs().map_err(soma)?;
        let all_obs = obs_array.reader(None).map_err(soma)?.schema();
        let (cells, nnz, dataset_ids) = select_cells(&obs_array, &all_obs, &ds_batch, obs_filter.as_ref())?;
        if cells.is_empty() {
            return Err(AtlasError::Query(format!(
                "obs_filter \"{}\" matches no cells of {organism} in {location}",
                query.obs_filter.as_deref().unwrap_or("")
            )));
        }
        let datasets: Vec<DatasetRow> =
            dataset_rows(&ds_batch, &organism)?.into_iter().filter(|d| dataset_ids.contains(&d.dataset_id)).collect();

        // var, whole: a Census organism has ~60k genes.
        let var_array = exp.var(measurement).map_err(soma)?;
        let var_batch = var_array.read(None).map_err(soma)?;
        let var = var_rows(&var_batch, &var_array.tiledb().location())?;
        let var_ids = match &var_filter {
            Some(f) => {
                f.check(&var_batch.schema()).map_err(|source| AtlasError::Filter { which: "var_filter".into(), source })?;
                let keep = CompiledFilter::new(f, &var_batch.schema())?.mask(&var_batch)?;
                let picked = filter_record_batch(&var_batch, &keep)?;
                let ids = cast(picked.column_by_name("soma_joinid").ok_or_else(|| query_err(&location, "var has no soma_joinid"))?, &DataType::Int64)?;
                Some(ids.as_primitive::<Int64Type>().values().iter().copied().collect::<BTreeSet<i64>>())
            }
            None => None,
        };
        let n_var = var.len();
        let present = match query.genes {
            GeneSelection::All => (0..n_var as i64).collect::<BTreeSet<i64>>(),
            rule => presence(&exp, measurement, &datasets, rule, n_var)?,
        };
        let names = obs_names(&all_obs, query.obs_columns.as_deref())?;
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let obs = obs_array.reader(Some(&refs)).map_err(soma)?;
        let columns = obs_columns(&obs_array, &obs.schema(), &names, &cells)?;
        let x_array = exp.x(measurement, "raw").map_err(soma)?;
        let x = x_array.x_reader().map_err(soma)?;
        if let Some(Some(n)) = x_array.shape().get(1) {
            if *n < n_var as u64 {
                return Err(query_err(&x_array.tiledb().location(), format!("has {n} columns but var has {n_var} genes")));
            }
        }
        let sel = Selection::new(organism, (cells, nnz), datasets, &var, present, var_ids, query)?;
        Ok(SomaCensusReader { location, columns, obs, x, sel })
    }

    /// What the query selected.
    pub fn selection(&self) -> &Selection {
        &self.sel
    }

    /// Selected cells `start..end`: `cell_id` (the soma_joinid), the obs columns, and X/raw
    /// restricted to the kept genes.
    pub fn read(&self, start: usize, end: usize) -> Result<CellBatch> {
        let ids = self.sel.range(start, end);
        let coords = match (ids.first(), ids.last()) {
            (Some(&a), Some(&b)) if b - a + 1 == ids.len() as i64 => Coords::range(a, b),
            _ => Coords::points(ids.iter().copied()),
        };
        let rows = self.obs.read(&coords).map_err(soma)?;
        let jid = rows.column_by_name("soma_joinid").map(|c| cast(c, &DataType::Int64)).transpose()?;
        let same = jid.as_ref().is_some_and(|j| j.as_primitive::<Int64Type>().values().as_ref() == ids);
        if !same {
            return Err(query_err(
                &self.location,
                format!("obs does not hold exactly the cells {}..={} asked for", ids.first().unwrap_or(&0), ids.last().unwrap_or(&0)),
            ));
        }
        let mut obs: Vec<(String, ArrayRef)> = Vec::with_capacity(self.columns.len() + 1);
        let cell_id: StringArray = ids.iter().map(|i| Some(i.to_string())).collect();
        obs.push((CELL_ID.to_string(), Arc::new(cell_id)));
        for c in &self.columns {
            let v = rows.column_by_name(&c.name).ok_or_else(|| query_err(&self.location, format!("obs read lost column {}", c.name)))?;
            obs.push((c.name.clone(), carry(v, &c.carry)?));
        }
        let csr = self.x.read_rows(ids).map_err(soma)?;
        let mut x = Csr::empty(self.sel.genes().n_genes());
        x.indices.reserve(csr.var_joinids.len());
        x.values.reserve(csr.values.len());
        for r in 0..csr.n_rows() {
            let (a, b) = (csr.indptr[r] as usize, csr.indptr[r + 1] as usize);
            for t in a..b {
                let g = csr.var_joinids[t] as usize;
                let k = *self.sel.remap.get(g).ok_or_else(|| {
                    query_err(&self.location, format!("X/raw cell {} has gene {g}, which var does not list", ids[r]))
                })?;
                if k != DROPPED {
                    x.indices.push(k);
                    x.values.push(csr.values[t]);
                }
            }
            let n = i32::try_from(x.indices.len()).map_err(|_| query_err(&self.location, "a read range has more than 2^31 non-zeros"))?;
            x.indptr.push(n);
        }
        CellBatch::from_csr(obs, x).map_err(|e| query_err(&self.location, e))
    }
}

/// soma_joinid, nnz (from obs; a constant when absent) and the dataset_ids of the cells
/// `filter` selects, streaming obs by blocks.
fn select_cells(
    obs: &atlasflow_soma::SomaArray,
    obs_schema: &SchemaRef,
    datasets: &RecordBatch,
    filter: Option<&ValueFilter>,
) -> Result<(Vec<i64>, Vec<u64>, HashSet<String>)> {
    let has = |n: &str| obs_schema.field_with_name(n).is_ok();
    // Dataset-table columns the filter may name besides obs's own.
    let extra: Vec<Field> = datasets
        .schema()
        .fields()
        .iter()
        .filter(|f| !has(f.name()))
        .map(|f| f.as_ref().clone())
        .collect();
    let mut read: Vec<String> = vec!["soma_joinid".into()];
    for n in ["nnz", "dataset_id"] {
        if has(n) {
            read.push(n.into());
        }
    }
    let mut joined: Vec<Field> = Vec::new();
    if let Some(f) = filter {
        let mut all: Vec<Field> = obs_schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        all.extend(extra.iter().cloned());
        f.check(&Schema::new(all)).map_err(|source| AtlasError::Filter { which: "obs_filter".into(), source })?;
        for c in f.columns() {
            if has(&c) && !read.contains(&c) {
                read.push(c);
            } else if let Some(e) = extra.iter().find(|e| e.name() == &c) {
                joined.push(e.clone());
            }
        }
        if !joined.is_empty() && !has("dataset_id") {
            return Err(AtlasError::Query(format!(
                "{}: obs has no dataset_id, so the filter cannot use dataset-table columns",
                obs.tiledb().location()
            )));
        }
    }
    let refs: Vec<&str> = read.iter().map(String::as_str).collect();
    // Row of each dataset_id in the dataset table, for the joined columns.
    let ds_ids = match datasets.column_by_name("dataset_id") {
        Some(c) => utf8(c)?,
        None => Arc::new(StringArray::from(Vec::<String>::new())) as ArrayRef,
    };
    let ds_ids = ds_ids.as_string::<i32>();
    let ds_row: HashMap<&str, u32> = (0..ds_ids.len()).filter(|&i| !ds_ids.is_null(i)).map(|i| (ds_ids.value(i), i as u32)).collect();

    let mut compiled: Option<CompiledFilter> = None;
    let (mut cells, mut nnz) = (Vec::new(), Vec::new());
    let mut ids: HashSet<String> = HashSet::new();
    for block in obs.blocks(Some(&refs), Coords::all(), OBS_BLOCK).map_err(soma)? {
        let block = block.map_err(soma)?;
        let block = match filter {
            None => block,
            Some(f) => {
                let mut fields: Vec<Field> = block.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
                let mut cols: Vec<ArrayRef> = block.columns().to_vec();
                if !joined.is_empty() {
                    let d = utf8(block.column_by_name("dataset_id").ok_or_else(|| AtlasError::Query("obs block lost dataset_id".into()))?)?;
                    let d = d.as_string::<i32>();
                    let take: arrow::array::UInt32Array =
                        (0..d.len()).map(|i| if d.is_null(i) { None } else { ds_row.get(d.value(i)).copied() }).collect();
                    for e in &joined {
                        let src = datasets.column_by_name(e.name()).ok_or_else(|| AtlasError::Query(format!("datasets lost {}", e.name())))?;
                        cols.push(arrow::compute::take(src.as_ref(), &take, None)?);
                        fields.push(Field::new(e.name(), e.data_type().clone(), true));
                    }
                }
                let b = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?;
                if compiled.is_none() {
                    compiled = Some(CompiledFilter::new(f, &b.schema())?);
                }
                let mask = compiled.as_ref().map(|c| c.mask(&b)).transpose()?.unwrap_or_else(|| BooleanArray::from(vec![true; b.num_rows()]));
                filter_record_batch(&block, &mask)?
            }
        };
        if block.num_rows() == 0 {
            continue;
        }
        let jid = cast(block.column(0), &DataType::Int64)?;
        cells.extend_from_slice(jid.as_primitive::<Int64Type>().values());
        match block.column_by_name("nnz") {
            Some(c) => {
                let v = cast(c, &DataType::Int64)?;
                let v = v.as_primitive::<Int64Type>();
                nnz.extend((0..v.len()).map(|i| if v.is_null(i) { 0 } else { v.value(i).max(0) as u64 }));
            }
            // Without obs nnz every cell weighs the same when the stream is cut.
            None => nnz.extend(std::iter::repeat_n(1000u64, block.num_rows())),
        }
        if let Some(c) = block.column_by_name("dataset_id") {
            let d = utf8(c)?;
            let d = d.as_string::<i32>();
            let mut last: Option<&str> = None;
            for i in 0..d.len() {
                if d.is_null(i) {
                    continue;
                }
                let v = d.value(i);
                if last != Some(v) {
                    if !ids.contains(v) {
                        ids.insert(v.to_string());
                    }
                    last = Some(v);
                }
            }
        }
    }
    // Blocks come in soma_joinid order, each sorted: `cells` is ascending.
    Ok((cells, nnz, ids))
}

/// var as rows: feature_id is required; the other Census columns default when absent
/// (feature_length −1, so a gene-length step names the genes that lack one).
fn var_rows(batch: &RecordBatch, location: &str) -> Result<Vec<VarRow>> {
    let n = batch.num_rows();
    let jid = cast(batch.column_by_name("soma_joinid").ok_or_else(|| query_err(location, "var has no soma_joinid"))?, &DataType::Int64)?;
    if jid.as_primitive::<Int64Type>().values().iter().enumerate().any(|(i, &j)| j != i as i64) {
        return Err(query_err(location, "var soma_joinid is not 0, 1, 2, … in row order"));
    }
    let text = |name: &str| -> Result<Option<Vec<String>>> {
        batch
            .column_by_name(name)
            .map(|c| {
                let s = utf8(c)?;
                let s = s.as_string::<i32>();
                Ok((0..n).map(|i| if s.is_null(i) { String::new() } else { s.value(i).to_string() }).collect())
            })
            .transpose()
    };
    let int = |name: &str, default: i64| -> Result<Vec<i64>> {
        match batch.column_by_name(name) {
            Some(c) => {
                let v = cast(c, &DataType::Int64)?;
                let v = v.as_primitive::<Int64Type>();
                Ok((0..n).map(|i| if v.is_null(i) { default } else { v.value(i) }).collect())
            }
            None => Ok(vec![default; n]),
        }
    };
    let id = text("feature_id")?.ok_or_else(|| query_err(location, "var has no feature_id column"))?;
    let name = text("feature_name")?.unwrap_or_else(|| id.clone());
    let (len, nnz, nobs) = (int("feature_length", -1)?, int("nnz", 0)?, int("n_measured_obs", 0)?);
    Ok((0..n)
        .map(|i| VarRow {
            feature_id: id[i].clone(),
            feature_name: name[i].clone(),
            feature_length: len[i],
            nnz: nnz[i],
            n_measured_obs: nobs[i],
        })
        .collect())
}

/// The var soma_joinids present (union or intersection) in the datasets' presence rows.
fn presence(
    exp: &atlasflow_soma::CensusExperiment,
    measurement: &str,
    datasets: &[DatasetRow],
    rule: GeneSelection,
    n_var: usize,
) -> Result<BTreeSet<i64>> {
    let fdpm = exp.feature_dataset_presence_matrix(measurement).map_err(soma)?;
    let b = fdpm
        .read_coords(Some(&["soma_dim_0", "soma_dim_1", "soma_data"]), &Coords::points(datasets.iter().map(|d| d.soma_joinid)))
        .map_err(soma)?;
    let rows = cast(b.column(0), &DataType::Int64)?;
    let cols = cast(b.column(1), &DataType::Int64)?;
    let data = cast(b.column(2), &DataType::Boolean)?;
    let (rows, cols, data) = (rows.as_primitive::<Int64Type>(), cols.as_primitive::<Int64Type>(), data.as_boolean());
    let mut per: HashMap<i64, BTreeSet<i64>> = HashMap::new();
    for i in 0..b.num_rows() {
        let g = cols.value(i);
        if data.is_valid(i) && data.value(i) && g >= 0 && (g as usize) < n_var {
            per.entry(rows.value(i)).or_default().insert(g);
        }
    }
    let mut out: Option<BTreeSet<i64>> = None;
    for d in datasets {
        let genes = per.remove(&d.soma_joinid).unwrap_or_default();
        out = Some(rule.combine(out, genes));
    }
    Ok(out.unwrap_or_default())
}

/// The obs columns to carry: those asked for (checked), else all; soma_joinid always read.
fn obs_names(schema: &SchemaRef, wanted: Option<&[String]>) -> Result<Vec<String>> {
    let all: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut names: Vec<String> = match wanted {
        Some(w) => {
            for n in w {
                if !all.contains(n) {
                    return Err(AtlasError::Query(format!("obs_columns: no obs column '{n}' (columns: {})", all.join(", "))));
                }
            }
            w.to_vec()
        }
        None => all,
    };
    if !names.iter().any(|n| n == "soma_joinid") {
        names.insert(0, "soma_joinid".into());
    }
    Ok(names)
}

/// How each column is carried: categoricals get the categories of the selected cells,
/// found by reading those columns of the selected cells once.
fn obs_columns(obs: &atlasflow_soma::SomaArray, schema: &SchemaRef, names: &[String], cells: &[i64]) -> Result<Vec<ObsColumn>> {
    let mut out = Vec::new();
    let mut scan: Vec<String> = Vec::new();
    for n in names {
        let t = schema.field_with_name(n).map(|f| f.data_type().clone()).unwrap_or(DataType::Utf8);
        let dict = matches!(t, DataType::Dictionary(_, _));
        if dict || is_stringy(&t) {
            scan.push(n.clone());
        }
        let carry = match t {
            DataType::Dictionary(_, v) if !is_stringy(&v) => Carry::Plain(*v),
            t if dict || is_stringy(&t) => Carry::Text,
            t => Carry::Plain(t),
        };
        out.push(ObsColumn { name: n.clone(), carry });
    }
    if scan.is_empty() {
        return Ok(out);
    }
    // Per scanned column: enumeration order seen, values used, and whether it was a dictionary.
    struct Seen {
        order: Vec<String>,
        used: HashSet<String>,
        dict: bool,
        overflow: bool,
    }
    let mut seen: Vec<Seen> = scan.iter().map(|_| Seen { order: Vec::new(), used: HashSet::new(), dict: false, overflow: false }).collect();
    let refs: Vec<&str> = scan.iter().map(String::as_str).collect();
    for block in obs.blocks(Some(&refs), Coords::points(cells.iter().copied()), OBS_BLOCK).map_err(soma)? {
        let block = block.map_err(soma)?;
        for (k, s) in seen.iter_mut().enumerate() {
            let Some(col) = block.column_by_name(&scan[k]) else { continue };
            if let Some(d) = col.as_any_dictionary_opt() {
                s.dict = true;
                let values = utf8(d.values())?;
                let values = values.as_string::<i32>();
                if values.len() > s.order.len() {
                    // Enumerations only grow: the longest list holds the others as a prefix.
                    s.order = (0..values.len()).map(|i| values.value(i).to_string()).collect();
                }
                let keys = cast(d.keys(), &DataType::Int64)?;
                let keys = keys.as_primitive::<Int64Type>();
                let mut hit = vec![false; values.len()];
                for i in 0..keys.len() {
                    if keys.is_valid(i) {
                        if let Some(h) = hit.get_mut(keys.value(i) as usize) {
                            *h = true;
                        }
                    }
                }
                for (i, h) in hit.iter().enumerate() {
                    if *h && !values.is_null(i) {
                        s.used.insert(values.value(i).to_string());
                    }
                }
            } else if !s.overflow {
                let v = utf8(col)?;
                let v = v.as_string::<i32>();
                for i in 0..v.len() {
                    if v.is_valid(i) && !s.used.contains(v.value(i)) {
                        s.used.insert(v.value(i).to_string());
                    }
                }
                if s.used.len() > MAX_CATEGORIES {
                    s.overflow = true;
                    s.used.clear();
                }
            }
        }
    }
    for (k, s) in seen.into_iter().enumerate() {
        let Some(col) = out.iter_mut().find(|c| c.name == scan[k]) else { continue };
        // anndata writes strings as categoricals when values repeat; a dictionary is one.
        let categorical = s.dict || (!s.overflow && s.used.len() < cells.len());
        if !categorical {
            col.carry = Carry::Text;
            continue;
        }
        let cats: Vec<String> = if s.dict {
            s.order.into_iter().filter(|v| s.used.contains(v)).collect()
        } else {
            let mut v: Vec<String> = s.used.into_iter().collect();
            v.sort();
            v
        };
        let codes = cats.iter().enumerate().map(|(i, c)| (c.clone(), i as i32)).collect();
        col.carry = Carry::Categorical { values: Arc::new(StringArray::from(cats)), codes };
    }
    Ok(out)
}

/// An obs column of a read, as batches carry it.
fn carry(v: &ArrayRef, how: &Carry) -> Result<ArrayRef> {
    Ok(match how {
        Carry::Plain(t) => match v.as_any_dictionary_opt() {
            Some(d) => cast(&arrow::compute::take(d.values().as_ref(), d.keys(), None)?, t)?,
            None => cast(v, t)?,
        },
        Carry::Text => utf8(v)?,
        Carry::Categorical { values, codes } => {
            let s = utf8(v)?;
            let s = s.as_string::<i32>();
            let keys: Int32Array = (0..s.len()).map(|r| if s.is_null(r) { None } else { codes.get(s.value(r)).copied() }).collect();
            Arc::new(DictionaryArray::try_new(keys, Arc::clone(values))?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organism_labels_read_as_the_dataset_table_spells_them() {
        assert_eq!(organism_label("homo_sapiens"), "Homo sapiens");
        assert_eq!(organism_label("mus_musculus"), "Mus musculus");
        assert_eq!(organism_label(""), "");
    }

    #[test]
    fn categoricals_map_values_to_the_kept_codes() {
        let values: ArrayRef = Arc::new(StringArray::from(vec!["B", "T"]));
        let codes: HashMap<String, i32> = [("B".to_string(), 0), ("T".to_string(), 1)].into_iter().collect();
        let v: ArrayRef = Arc::new(arrow::array::LargeStringArray::from(vec![Some("T"), None, Some("B")]));
        let c = carry(&v, &Carry::Categorical { values, codes }).unwrap_or_else(|e| panic!("{e}"));
        let d = c.as_dictionary::<arrow::datatypes::Int32Type>();
        assert_eq!(d.keys().iter().collect::<Vec<_>>(), vec![Some(1), None, Some(0)]);
    }
}
