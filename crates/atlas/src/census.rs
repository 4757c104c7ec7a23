//! The `census` source: the cells and genes a Census-style query selects from a store,
//! streamed by row range.
//!
//! As `cellxgene_census.get_anndata` does, a query is an obs value filter, an optional var
//! value filter and a gene rule; `genes: dataset_presence` keeps the genes measured in the
//! selected datasets (their rows of the presence matrix), as the Census tutorial does with
//! `get_presence_matrix`. The obs filter may also name dataset-table columns
//! (`dataset_title == '…'`), which selects by title the way the tutorial looks a dataset up.
//!
//! Opening a query runs the filters with DataFusion (pushed down into the Parquet scans) and
//! keeps only the selected cells' soma_joinids and non-zero counts; [`StoreReader::read`]
//! then reads the rows of a range from the obs and X parts with Parquet row selections, so
//! memory is bounded by the range, not the store.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, Int32Array, Int64Array, RecordBatch, StringArray, new_null_array,
};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, UInt32Type, Float32Type};
use atlasflow_core::batch::CELL_ID;
use atlasflow_core::{CellBatch, Csr, GeneTable};
use datafusion::logical_expr::{JoinType, col};
use datafusion::prelude::SessionContext;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder, RowSelection};

use crate::filter::ValueFilter;
use crate::layout::{self, CATEGORIES_KEY, DatasetRow, FIRST_JOINID_KEY, MEASUREMENT};
use crate::store::{AtlasStore, part_metadata};
use crate::{AtlasError, Result, store_err};

/// Which genes a query keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeneSelection {
    /// Every gene of the organism's var table (what `get_anndata` returns).
    All,
    /// Genes present (a count > 0) in at least one selected dataset: the tutorial's
    /// `get_presence_matrix(...)[dataset, :].nonzero()` for one dataset.
    DatasetPresence,
    /// Genes present in every selected dataset.
    DatasetPresenceAll,
}

impl GeneSelection {
    /// The YAML spellings.
    pub const NAMES: [&'static str; 3] = ["all", "dataset_presence", "dataset_presence_all"];

    /// Folds one more selected dataset's present genes into those kept so far (`None`
    /// before the first dataset): the union, or for `DatasetPresenceAll` the intersection.
    pub(crate) fn combine(self, acc: Option<BTreeSet<i64>>, genes: BTreeSet<i64>) -> BTreeSet<i64> {
        match (acc, self) {
            (None, _) => genes,
            (Some(acc), GeneSelection::DatasetPresenceAll) => acc.intersection(&genes).copied().collect(),
            (Some(mut acc), _) => {
                acc.extend(genes);
                acc
            }
        }
    }

    /// Parse a YAML spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "all" => Some(GeneSelection::All),
            "dataset_presence" => Some(GeneSelection::DatasetPresence),
            "dataset_presence_all" => Some(GeneSelection::DatasetPresenceAll),
            _ => None,
        }
    }
}

/// What to read from a store, in `get_anndata`'s terms.
#[derive(Clone, Debug)]
pub struct CensusQuery {
    /// The organism (`None`: the store's only one).
    pub organism: Option<String>,
    /// The measurement; only "RNA" exists.
    pub measurement: String,
    /// SOMA value filter on obs (and dataset-table columns); `None` = every cell.
    pub obs_filter: Option<String>,
    /// SOMA value filter on var; `None` = every gene.
    pub var_filter: Option<String>,
    /// Which genes to keep.
    pub genes: GeneSelection,
    /// obs columns to carry (`None`: all of them).
    pub obs_columns: Option<Vec<String>>,
}

impl Default for CensusQuery {
    fn default() -> Self {
        CensusQuery {
            organism: None,
            measurement: MEASUREMENT.to_string(),
            obs_filter: None,
            var_filter: None,
            genes: GeneSelection::All,
            obs_columns: None,
        }
    }
}

/// One dataset's parts, for reading.
#[derive(Debug)]
struct Part {
    first: i64,
    n: usize,
    obs_path: PathBuf,
    x_path: PathBuf,
    obs_meta: ArrowReaderMetadata,
    x_meta: ArrowReaderMetadata,
}

/// An obs column as batches carry it.
#[derive(Debug)]
struct ObsColumn {
    name: String,
    /// For categoricals: the categories and their codes.
    categories: Option<(ArrayRef, HashMap<String, i32>)>,
    data_type: DataType,
}

/// The cells and genes of a query on an atlas store, readable by row range from any
/// number of threads.
#[derive(Debug)]
pub struct StoreReader {
    store: PathBuf,
    parts: Vec<Part>,
    columns: Vec<ObsColumn>,
    sel: Selection,
}

/// What a query selected, from a store or a SOMA Census: the cells with their stored
/// non-zeros, the kept genes and where each var gene goes, and the datasets.
#[derive(Debug)]
pub struct Selection {
    organism: String,
    cells: Vec<i64>,
    nnz: Vec<u64>,
    genes: GeneTable,
    /// Kept index of each var soma_joinid, or [`DROPPED`].
    pub(crate) remap: Vec<u32>,
    datasets: Vec<DatasetRow>,
}

impl Selection {
    /// Keeps the genes `present` (by the gene rule) that the var filter also passed
    /// (`var_ids`; `None`: no var filter); an empty result is an error saying why.
    pub(crate) fn new(
        organism: String,
        (cells, nnz): (Vec<i64>, Vec<u64>),
        datasets: Vec<DatasetRow>,
        var: &[layout::VarRow],
        present: BTreeSet<i64>,
        var_ids: Option<BTreeSet<i64>>,
        query: &CensusQuery,
    ) -> Result<Self> {
        let keep: Vec<i64> = match var_ids {
            Some(ids) => present.intersection(&ids).copied().collect(),
            None => present.into_iter().collect(),
        };
        if keep.is_empty() {
            return Err(AtlasError::Query(format!(
                "no genes left: {}{}",
                match query.genes {
                    GeneSelection::All => "the var table is empty".to_string(),
                    _ => "the selected datasets have no gene present".to_string(),
                },
                query.var_filter.as_deref().map(|f| format!(" with var_filter \"{f}\"")).unwrap_or_default()
            )));
        }
        let mut remap = vec![DROPPED; var.len()];
        for (k, &g) in keep.iter().enumerate() {
            remap[g as usize] = k as u32;
        }
        let genes = gene_table(var, &keep)?;
        Ok(Selection { organism, cells, nnz, genes, remap, datasets })
    }

    /// Number of selected cells.
    pub fn n_obs(&self) -> usize {
        self.cells.len()
    }

    /// The kept genes, in var soma_joinid order: index `feature_id`, then feature_name,
    /// feature_length, soma_joinid, nnz, n_measured_obs.
    pub fn genes(&self) -> &GeneTable {
        &self.genes
    }

    /// The organism read ("Mus musculus").
    pub fn organism(&self) -> &str {
        &self.organism
    }

    /// The datasets the selected cells come from.
    pub fn datasets(&self) -> &[DatasetRow] {
        &self.datasets
    }

    /// The selected cells' soma_joinids, ascending.
    pub fn soma_joinids(&self) -> &[i64] {
        &self.cells
    }

    /// Stored non-zeros of each selected cell (over all its genes; an upper bound on what
    /// a gene subset keeps), for cutting the stream into granules.
    pub fn row_nnz(&self) -> &[u64] {
        &self.nnz
    }

    /// The soma_joinids of selected cells `start..end` (clamped).
    pub(crate) fn range(&self, start: usize, end: usize) -> &[i64] {
        let end = end.min(self.cells.len());
        &self.cells[start.min(end)..end]
    }
}

/// The remap value of a var gene the query drops.
pub(crate) const DROPPED: u32 = u32::MAX;

impl StoreReader {
    /// Run the query's filters over the store at `path` and prepare to stream the selected cells.
    pub fn open(path: &Path, query: &CensusQuery) -> Result<Self> {
        let store = AtlasStore::open(path)?;
        if query.measurement != MEASUREMENT {
            return Err(AtlasError::Query(format!(
                "measurement \"{}\": a store holds only \"{MEASUREMENT}\"",
                query.measurement
            )));
        }
        let organism = store.resolve_organism(query.organism.as_deref())?;
        let obs_schema = store.obs_schema(&organism)?;
        let obs_filter = parse_filter("obs_filter", query.obs_filter.as_deref())?;
        let var_filter = parse_filter("var_filter", query.var_filter.as_deref())?;
        let (cells, nnz, var_ids) = crate::block_on(async {
            let ctx = store.context(&organism).await?;
            let (cells, nnz) = select_cells(&ctx, &obs_schema, obs_filter.as_ref()).await?;
            let var_ids = match &var_filter {
                Some(f) => Some(select_var(&ctx, f).await?),
                None => None,
            };
            Ok::<_, AtlasError>((cells, nnz, var_ids))
        })??;
        if cells.is_empty() {
            return Err(AtlasError::Query(format!(
                "obs_filter \"{}\" matches no cells of {organism} in {}",
                query.obs_filter.as_deref().unwrap_or(""),
                store.path().display()
            )));
        }

        // The datasets of the selected cells, and their parts.
        let mut parts = Vec::new();
        let mut datasets = Vec::new();
        for d in store.datasets_of(&organism) {
            let [obs_path, x_path, _] = store.layout().parts(&organism, d.soma_joinid);
            let x_meta = part_metadata(&x_path)?;
            let first = first_joinid(&x_path, &x_meta)?;
            let n = usize::try_from(d.dataset_total_cell_count).unwrap_or(0);
            let lo = cells.partition_point(|&c| c < first);
            if lo < cells.len() && cells[lo] < first + n as i64 {
                let obs_meta = part_metadata(&obs_path)?;
                if obs_meta.metadata().file_metadata().num_rows() as usize != n
                    || x_meta.metadata().file_metadata().num_rows() as usize != n
                {
                    return Err(store_err(&x_path, format!("does not hold the {n} cells the dataset table lists")));
                }
                parts.push(Part { first, n, obs_path, x_path, obs_meta, x_meta });
                datasets.push((*d).clone());
            }
        }
        parts.sort_by_key(|p| p.first);
        if let Some(&c) = cells.iter().find(|&&c| part_of(&parts, c).is_none()) {
            return Err(store_err(store.path(), format!("obs soma_joinid {c} is in no dataset's part")));
        }

        let var = layout::read_var(store.layout(), &organism)?;
        let present = gene_set(&store, &organism, &datasets, query.genes, var.len())?;
        let columns = obs_columns(&obs_schema, &parts, &datasets, query.obs_columns.as_deref())?;
        let var_ids = var_ids.map(|v| v.into_iter().collect());
        let sel = Selection::new(organism, (cells, nnz), datasets, &var, present, var_ids, query)?;
        Ok(StoreReader { store: store.path().to_path_buf(), parts, columns, sel })
    }

    /// What the query selected.
    pub fn selection(&self) -> &Selection {
        &self.sel
    }

    /// Selected cells `start..end` as a cell batch: `cell_id` (the dataset's own obs
    /// index), the obs columns, and X restricted to the kept genes.
    pub fn read(&self, start: usize, end: usize) -> Result<CellBatch> {
        let ids = self.sel.range(start, end);
        let mut obs_parts: Vec<Vec<ArrayRef>> = vec![Vec::new(); self.columns.len() + 1];
        let mut x = Csr::empty(self.sel.genes.n_genes());
        let mut i = 0;
        while i < ids.len() {
            let p = part_of(&self.parts, ids[i]).ok_or_else(|| store_err(&self.store, format!("cell {} is in no part", ids[i])))?;
            let part = &self.parts[p];
            let mut j = i;
            while j < ids.len() && ids[j] < part.first + part.n as i64 {
                j += 1;
            }
            let rows: Vec<usize> = ids[i..j].iter().map(|&c| (c - part.first) as usize).collect();
            self.read_x(part, &rows, &ids[i..j], &mut x)?;
            let obs = self.read_obs(part, &rows)?;
            for (k, c) in obs.into_iter().enumerate() {
                obs_parts[k].push(c);
            }
            i = j;
        }
        let mut obs = Vec::with_capacity(obs_parts.len());
        let names = std::iter::once(CELL_ID).chain(self.columns.iter().map(|c| c.name.as_str()));
        for (name, pieces) in names.zip(obs_parts) {
            let refs: Vec<&dyn Array> = pieces.iter().map(|a| a.as_ref()).collect();
            let col = if refs.is_empty() {
                let t = if name == CELL_ID { DataType::Utf8 } else { self.column(name).data_type.clone() };
                new_null_array(&t, 0)
            } else {
                arrow::compute::concat(&refs).map_err(|e| store_err(&self.store, e.to_string()))?
            };
            obs.push((name.to_string(), col));
        }
        CellBatch::from_csr(obs, x).map_err(|e| store_err(&self.store, e.to_string()))
    }

    fn column(&self, name: &str) -> &ObsColumn {
        // Only called with names taken from self.columns.
        self.columns.iter().find(|c| c.name == name).unwrap_or(&self.columns[0])
    }

    fn read_x(&self, part: &Part, rows: &[usize], ids: &[i64], x: &mut Csr) -> Result<()> {
        let batches = read_rows(&part.x_path, &part.x_meta, rows, &["soma_joinid", "x_indices", "x_values"])?;
        let mut k = 0;
        for b in &batches {
            let err = |m: &str| store_err(&part.x_path, format!("corrupt X part: {m}"));
            let jid = b.column(0).as_primitive_opt::<Int64Type>().ok_or_else(|| err("soma_joinid is not int64"))?;
            let li = b.column(1).as_list_opt::<i32>().ok_or_else(|| err("x_indices is not a list"))?;
            let lv = b.column(2).as_list_opt::<i32>().ok_or_else(|| err("x_values is not a list"))?;
            let idx = li.values().as_primitive_opt::<UInt32Type>().ok_or_else(|| err("x_indices are not uint32"))?.values();
            let val = lv.values().as_primitive_opt::<Float32Type>().ok_or_else(|| err("x_values are not float32"))?.values();
            let (oi, ov) = (li.value_offsets(), lv.value_offsets());
            for r in 0..b.num_rows() {
                if ids.get(k) != Some(&jid.value(r)) {
                    return Err(err(&format!("row for cell {} holds soma_joinid {}", ids.get(k).copied().unwrap_or(-1), jid.value(r))));
                }
                let (a, e) = (oi[r] as usize, oi[r + 1] as usize);
                if ov[r] != oi[r] || ov[r + 1] != oi[r + 1] {
                    return Err(err(&format!("cell {}: x_indices and x_values differ in length", ids[k])));
                }
                for t in a..e {
                    let g = *self.sel.remap.get(idx[t] as usize).ok_or_else(|| err(&format!("cell {}: gene {} is not in var", ids[k], idx[t])))?;
                    if g != DROPPED {
                        x.indices.push(g);
                        x.values.push(val[t]);
                    }
                }
                let n = i32::try_from(x.indices.len()).map_err(|_| err("a read range has more than 2^31 non-zeros"))?;
                x.indptr.push(n);
                k += 1;
            }
        }
        if k != ids.len() {
            return Err(store_err(&part.x_path, format!("corrupt X part: {} rows read for {} cells", k, ids.len())));
        }
        Ok(())
    }

    fn read_obs(&self, part: &Part, rows: &[usize]) -> Result<Vec<ArrayRef>> {
        let schema = part.obs_meta.schema();
        let mut names: Vec<&str> = vec!["obs_id"];
        names.extend(self.columns.iter().map(|c| c.name.as_str()).filter(|n| schema.field_with_name(n).is_ok()));
        let batches = read_rows(&part.obs_path, &part.obs_meta, rows, &names)?;
        let b = arrow::compute::concat_batches(&batches.first().map(|b| b.schema()).unwrap_or_else(|| Arc::new(Schema::empty())), &batches)
            .map_err(|e| store_err(&part.obs_path, e.to_string()))?;
        let n = rows.len();
        let conv = |e: arrow::error::ArrowError| store_err(&part.obs_path, e.to_string());
        let mut out = Vec::with_capacity(self.columns.len() + 1);
        let id = b.column_by_name("obs_id").ok_or_else(|| store_err(&part.obs_path, "no column 'obs_id'"))?;
        out.push(arrow::compute::cast(id, &DataType::Utf8).map_err(conv)?);
        for c in &self.columns {
            let col = match b.column_by_name(&c.name) {
                None => new_null_array(&c.data_type, n),
                Some(v) => match &c.categories {
                    Some((values, codes)) => {
                        let s = arrow::compute::cast(v, &DataType::Utf8).map_err(conv)?;
                        let s = s.as_string::<i32>();
                        let keys: Int32Array = (0..s.len()).map(|r| if s.is_null(r) { None } else { codes.get(s.value(r)).copied() }).collect();
                        Arc::new(DictionaryArray::try_new(keys, Arc::clone(values)).map_err(conv)?)
                    }
                    None => arrow::compute::cast(v, &c.data_type).map_err(conv)?,
                },
            };
            out.push(col);
        }
        Ok(out)
    }
}

pub(crate) fn parse_filter(which: &str, text: Option<&str>) -> Result<Option<ValueFilter>> {
    match text {
        None => Ok(None),
        Some(t) if t.trim().is_empty() => Ok(None),
        Some(t) => ValueFilter::parse(t).map(Some).map_err(|source| AtlasError::Filter { which: which.into(), source }),
    }
}

/// soma_joinid and nnz of the cells the obs filter selects, ascending.
async fn select_cells(ctx: &SessionContext, obs_schema: &SchemaRef, filter: Option<&ValueFilter>) -> Result<(Vec<i64>, Vec<u64>)> {
    let mut df = ctx.table("obs").await?;
    if let Some(f) = filter {
        // Columns of the dataset table that obs lacks (dataset_title, collection_name, …)
        // are joined in by dataset_id.
        let ds_schema = ctx.table("datasets").await?.schema().as_arrow().clone();
        let extra: Vec<Field> = ds_schema
            .fields()
            .iter()
            .filter(|fd| obs_schema.field_with_name(fd.name()).is_err())
            .map(|fd| fd.as_ref().clone())
            .collect();
        let mut fields: Vec<Field> = obs_schema.fields().iter().map(|fd| fd.as_ref().clone()).collect();
        fields.extend(extra.iter().cloned());
        f.check(&Schema::new(fields)).map_err(|source| AtlasError::Filter { which: "obs_filter".into(), source })?;
        let used: Vec<&Field> = extra.iter().filter(|fd| f.columns().contains(fd.name())).collect();
        if !used.is_empty() {
            let mut sel = vec![col("dataset_id").alias("__dataset_id")];
            sel.extend(used.iter().map(|fd| datafusion::prelude::ident(fd.name())));
            let ds = ctx.table("datasets").await?.select(sel)?;
            df = df.join(ds, JoinType::Inner, &["dataset_id"], &["__dataset_id"], None)?;
        }
        df = df.filter(f.to_expr())?;
    }
    let batches = df.select_columns(&["soma_joinid", "nnz"])?.collect().await?;
    let mut rows: Vec<(i64, u64)> = Vec::new();
    for b in &batches {
        let ids = arrow::compute::cast(b.column(0), &DataType::Int64)?;
        let nnz = arrow::compute::cast(b.column(1), &DataType::Int64)?;
        let (ids, nnz) = (ids.as_primitive::<Int64Type>(), nnz.as_primitive::<Int64Type>());
        rows.extend((0..b.num_rows()).map(|r| (ids.value(r), nnz.value(r).max(0) as u64)));
    }
    rows.sort_unstable();
    rows.dedup_by_key(|r| r.0);
    Ok(rows.into_iter().unzip())
}

async fn select_var(ctx: &SessionContext, f: &ValueFilter) -> Result<Vec<i64>> {
    let df = ctx.table("var").await?;
    f.check(df.schema().as_arrow()).map_err(|source| AtlasError::Filter { which: "var_filter".into(), source })?;
    let batches = df.filter(f.to_expr())?.select_columns(&["soma_joinid"])?.collect().await?;
    let mut out = Vec::new();
    for b in &batches {
        let ids = arrow::compute::cast(b.column(0), &DataType::Int64)?;
        out.extend_from_slice(ids.as_primitive::<Int64Type>().values());
    }
    Ok(out)
}

/// The var soma_joinids a gene rule keeps.
fn gene_set(store: &AtlasStore, organism: &str, datasets: &[DatasetRow], rule: GeneSelection, n_var: usize) -> Result<BTreeSet<i64>> {
    if rule == GeneSelection::All {
        return Ok((0..n_var as i64).collect());
    }
    let mut out: Option<BTreeSet<i64>> = None;
    for d in datasets {
        let p = &store.layout().parts(organism, d.soma_joinid)[2];
        let b = layout::read_table(p)?;
        let rows = layout::ints(p, &b, "soma_dim_0")?;
        if rows.iter().any(|&r| r != d.soma_joinid) {
            return Err(store_err(p, format!("holds rows of another dataset than {}", d.soma_joinid)));
        }
        let genes: BTreeSet<i64> = layout::ints(p, &b, "soma_dim_1")?.into_iter().filter(|&g| (g as usize) < n_var && g >= 0).collect();
        out = Some(rule.combine(out, genes));
    }
    Ok(out.unwrap_or_default())
}

pub(crate) fn gene_table(var: &[layout::VarRow], keep: &[i64]) -> Result<GeneTable> {
    let rows: Vec<&layout::VarRow> = keep.iter().map(|&g| &var[g as usize]).collect();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.feature_id))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.feature_name))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.feature_length))),
        Arc::new(Int64Array::from_iter_values(keep.iter().copied())),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.nnz))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.n_measured_obs))),
    ];
    let names = [atlasflow_core::genes::GENE_ID, "feature_name", "feature_length", "soma_joinid", "nnz", "n_measured_obs"];
    let fields: Vec<Field> = names.iter().zip(&cols).map(|(n, c)| Field::new(*n, c.data_type().clone(), false)).collect();
    let rb = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(|e| AtlasError::Query(e.to_string()))?;
    GeneTable::try_new(rb).map_err(|e| AtlasError::Query(e.to_string()))
}

/// The obs columns batches carry, with one set of categories per categorical column: the
/// h5ad's own categories when the cells come from one dataset, else the sorted union.
fn obs_columns(schema: &SchemaRef, parts: &[Part], datasets: &[DatasetRow], wanted: Option<&[String]>) -> Result<Vec<ObsColumn>> {
    let names: Vec<String> = match wanted {
        Some(w) => {
            for n in w {
                if schema.field_with_name(n).is_err() {
                    let all: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                    return Err(AtlasError::Query(format!("obs_columns: no obs column '{n}' (columns: {})", all.join(", "))));
                }
            }
            w.to_vec()
        }
        // Every column some selected dataset has: a column only other datasets carry would be
        // all missing here.
        None => schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| n != "obs_id" && parts.iter().any(|p| p.obs_meta.schema().field_with_name(n).is_ok()))
            .collect(),
    };
    let mut out = Vec::new();
    for name in names {
        let t = schema.field_with_name(&name).map(|f| f.data_type().clone()).unwrap_or(DataType::Utf8);
        let is_dict = matches!(t, DataType::Dictionary(_, _));
        let categories = if is_dict || name == "dataset_id" {
            let mut cats: Vec<String> = Vec::new();
            if name == "dataset_id" {
                cats = datasets.iter().map(|d| d.dataset_id.clone()).collect();
            } else {
                for p in parts {
                    let key = format!("{CATEGORIES_KEY}{name}");
                    let kv = p.obs_meta.metadata().file_metadata().key_value_metadata();
                    let listed = kv.and_then(|kv| kv.iter().find(|e| e.key == key)).and_then(|e| e.value.clone());
                    let list: Vec<String> = match listed {
                        Some(v) => serde_json::from_str(&v).map_err(|e| store_err(&p.obs_path, format!("{key}: {e}")))?,
                        None => distinct_strings(p, &name)?,
                    };
                    for c in list {
                        if !cats.contains(&c) {
                            cats.push(c);
                        }
                    }
                }
                if parts.len() > 1 {
                    cats.sort();
                }
            }
            let codes: HashMap<String, i32> = cats.iter().enumerate().map(|(i, c)| (c.clone(), i as i32)).collect();
            let values: ArrayRef = Arc::new(StringArray::from(cats));
            Some((values, codes))
        } else {
            None
        };
        let data_type = match categories {
            Some(_) => DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            None => t,
        };
        out.push(ObsColumn { name, categories, data_type });
    }
    Ok(out)
}

/// The distinct values of a string column of a part (for parts written without a category list).
fn distinct_strings(p: &Part, name: &str) -> Result<Vec<String>> {
    if p.obs_meta.schema().field_with_name(name).is_err() {
        return Ok(Vec::new());
    }
    let rows: Vec<usize> = (0..p.n).collect();
    let mut set = BTreeSet::new();
    for b in read_rows(&p.obs_path, &p.obs_meta, &rows, &[name])? {
        let s = arrow::compute::cast(b.column(0), &DataType::Utf8).map_err(|e| store_err(&p.obs_path, e.to_string()))?;
        let s = s.as_string::<i32>();
        set.extend((0..s.len()).filter(|&r| !s.is_null(r)).map(|r| s.value(r).to_string()));
    }
    Ok(set.into_iter().collect())
}

fn part_of(parts: &[Part], cell: i64) -> Option<usize> {
    let i = parts.partition_point(|p| p.first <= cell);
    (i > 0 && cell < parts[i - 1].first + parts[i - 1].n as i64).then(|| i - 1)
}

fn first_joinid(path: &Path, meta: &ArrowReaderMetadata) -> Result<i64> {
    meta.metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|e| e.key == FIRST_JOINID_KEY))
        .and_then(|e| e.value.as_deref())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| store_err(path, format!("no {FIRST_JOINID_KEY} in the footer (not written by atlasflow ingest?)")))
}

/// Read rows (ascending positions in the file) of some columns of a part: only the row
/// groups that hold them are decoded, and inside those only the selected rows are kept.
fn read_rows(path: &Path, meta: &ArrowReaderMetadata, rows: &[usize], columns: &[&str]) -> Result<Vec<RecordBatch>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let md = meta.metadata();
    let mut groups = Vec::new();
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let (mut g_start, mut base) = (0usize, 0usize);
    let mut k = 0;
    for g in 0..md.num_row_groups() {
        let g_rows = md.row_group(g).num_rows() as usize;
        let g_end = g_start + g_rows;
        let before = k;
        while k < rows.len() && rows[k] < g_end {
            let r = rows[k] - g_start + base;
            match ranges.last_mut() {
                Some(last) if last.end == r => last.end = r + 1,
                _ => ranges.push(r..r + 1),
            }
            k += 1;
        }
        if k > before {
            groups.push(g);
            base += g_rows;
        }
        g_start = g_end;
    }
    if k != rows.len() {
        return Err(store_err(path, format!("row {} is past the end of the part", rows[k])));
    }
    let schema = meta.schema();
    let mut idx = Vec::with_capacity(columns.len());
    for c in columns {
        idx.push(schema.index_of(c).map_err(|_| store_err(path, format!("no column '{c}'")))?);
    }
    let mask = ProjectionMask::roots(md.file_metadata().schema_descr(), idx);
    let file = File::open(path).map_err(|e| store_err(path, format!("cannot open: {e}")))?;
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone())
        .with_row_groups(groups)
        .with_projection(mask)
        .with_row_selection(RowSelection::from_consecutive_ranges(ranges.into_iter(), base))
        .with_batch_size(8192)
        .build()
        .map_err(|e| store_err(path, e.to_string()))?;
    let batches = crate::store::decode(path, "data", || reader.collect::<std::result::Result<Vec<_>, _>>())?
        .map_err(|e| store_err(path, format!("corrupt: {e}")))?;
    // Keep the requested column order (a projection mask keeps file order).
    batches
        .into_iter()
        .map(|b| {
            let cols: Vec<ArrayRef> = columns.iter().map(|c| b.column_by_name(c).cloned()).collect::<Option<_>>().ok_or_else(|| store_err(path, "projection lost a column"))?;
            let fields: Vec<Field> = columns.iter().zip(&cols).map(|(n, c)| Field::new(*n, c.data_type().clone(), true)).collect();
            RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(|e| store_err(path, e.to_string()))
        })
        .collect()
}
