//! Opening a store: its datasets, its organisms, and SQL over its tables with DataFusion.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};

use crate::layout::{self, DatasetRow, Layout, organism_key};
use crate::{AtlasError, Result, store_err};

/// Names under which [`AtlasStore::context`] registers the tables, with what each holds.
pub const TABLES: [(&str, &str); 6] = [
    ("datasets", "census_info/datasets: one row per dataset"),
    ("summary", "census_info/summary: label, value"),
    ("obs", "one row per cell: soma_joinid, dataset_id, obs_id, the h5ad's obs columns, nnz, raw_sum, n_measured_vars"),
    ("var", "one row per gene: soma_joinid, feature_id, feature_name, feature_length, nnz, n_measured_obs"),
    ("feature_dataset_presence_matrix", "soma_dim_0 = dataset soma_joinid, soma_dim_1 = var soma_joinid of each gene present"),
    ("x_raw", "one row per cell: soma_joinid, x_indices (var soma_joinids), x_values"),
];

/// An open atlas store.
#[derive(Clone, Debug)]
pub struct AtlasStore {
    layout: Layout,
    datasets: Vec<DatasetRow>,
}

/// The Arrow metadata of a part file, loaded once and shared by every read of it.
///
/// Every part a query touches goes through here before DataFusion or a reader sees it, so
/// a footer that would make the decoder panic is refused with an error naming the file.
pub(crate) fn part_metadata(path: &Path) -> Result<ArrowReaderMetadata> {
    let file = File::open(path).map_err(|e| store_err(path, format!("cannot open: {e}")))?;
    decode(path, "footer", || ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()))?
        .map_err(|e| store_err(path, format!("not a readable Parquet file: {e}")))
}

/// Run a Parquet/Arrow decoding step on a file's bytes, turning a panic of the decoder
/// (arrow-ipc panics on impossible types in a corrupt embedded `ARROW:schema`) into an
/// error naming the file and what was being decoded.
pub(crate) fn decode<T>(path: &Path, what: &str, f: impl FnOnce() -> T) -> Result<T> {
    atlasflow_core::contain::contain(f)
        .map_err(|panic| store_err(path, format!("corrupt Parquet {what} (the decoder failed: {panic})")))
}

/// The type two parts' columns of the same name are read as.
fn merge_type(a: &DataType, b: &DataType) -> DataType {
    let stringy = |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
        || matches!(t, DataType::Dictionary(_, v) if matches!(**v, DataType::Utf8 | DataType::LargeUtf8));
    if a == b {
        a.clone()
    } else if stringy(a) && stringy(b) {
        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
    } else if a.is_integer() && b.is_integer() {
        DataType::Int64
    } else if a.is_numeric() && b.is_numeric() {
        DataType::Float64
    } else {
        DataType::Utf8
    }
}

impl AtlasStore {
    /// Open the store at `path`: checks its marker and reads its dataset table.
    pub fn open(path: &Path) -> Result<Self> {
        let layout = Layout::new(path);
        layout.check_marker()?;
        let datasets = layout::read_datasets(&layout)?;
        Ok(AtlasStore { layout, datasets })
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        self.layout.root()
    }

    /// Where its tables live.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Every dataset, in soma_joinid order.
    pub fn datasets(&self) -> &[DatasetRow] {
        &self.datasets
    }

    /// The organisms, in the order their first dataset was ingested.
    pub fn organisms(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for d in &self.datasets {
            if !out.contains(&d.organism) {
                out.push(d.organism.clone());
            }
        }
        out
    }

    /// The organism a user means: by name or directory key, case-insensitive; when none is
    /// given, the store's only one.
    pub fn resolve_organism(&self, name: Option<&str>) -> Result<String> {
        let orgs = self.organisms();
        match name {
            Some(n) => orgs.iter().find(|o| organism_key(o) == organism_key(n)).cloned().ok_or_else(|| {
                AtlasError::Query(format!(
                    "{}: no organism \"{n}\" (the store holds: {})",
                    self.path().display(),
                    if orgs.is_empty() { "nothing yet".to_string() } else { orgs.join(", ") }
                ))
            }),
            None => match orgs.as_slice() {
                [one] => Ok(one.clone()),
                [] => Err(AtlasError::Query(format!("{}: the store holds no datasets", self.path().display()))),
                many => Err(AtlasError::Query(format!(
                    "{}: the store holds several organisms ({}); say which one",
                    self.path().display(),
                    many.join(", ")
                ))),
            },
        }
    }

    /// The datasets of one organism.
    pub fn datasets_of(&self, organism: &str) -> Vec<&DatasetRow> {
        self.datasets.iter().filter(|d| organism_key(&d.organism) == organism_key(organism)).collect()
    }

    /// The part files of one kind (0 obs, 1 X, 2 presence) of an organism's datasets.
    pub fn part_paths(&self, organism: &str, kind: usize) -> Vec<PathBuf> {
        self.datasets_of(organism).iter().map(|d| self.layout.parts(organism, d.soma_joinid)[kind].clone()).collect()
    }

    /// The obs schema every part is read as: the union of the parts' columns, with one type
    /// per column (strings and categoricals → categorical; mixed integers → Int64; mixed
    /// numbers → Float64), in first-seen order.
    pub fn obs_schema(&self, organism: &str) -> Result<SchemaRef> {
        merged_schema(&self.part_paths(organism, 0))
    }

    /// A DataFusion session with the organism's tables registered: `datasets`, `summary`,
    /// `obs`, `var`, `feature_dataset_presence_matrix` and `x_raw` (see [`TABLES`]). Filters
    /// on obs and var are pushed down into the Parquet scans.
    pub async fn context(&self, organism: &str) -> Result<SessionContext> {
        let mut config = SessionConfig::new().with_target_partitions(2).with_information_schema(true);
        config.options_mut().execution.parquet.pushdown_filters = true;
        config.options_mut().execution.parquet.reorder_filters = true;
        let ctx = SessionContext::new_with_config(config);
        let ds = self.layout.datasets();
        let ds_batch = layout::read_table(&ds)?;
        ctx.register_table("datasets", Arc::new(MemTable::try_new(ds_batch.schema(), vec![vec![ds_batch]])?))?;
        let summary = self.layout.summary();
        if summary.exists() {
            let b = layout::read_table(&summary)?;
            ctx.register_table("summary", Arc::new(MemTable::try_new(b.schema(), vec![vec![b]])?))?;
        }
        let obs = self.part_paths(organism, 0);
        if obs.is_empty() {
            return Err(AtlasError::Query(format!("{}: no datasets of {organism}", self.path().display())));
        }
        self.register_parts(&ctx, "obs", &obs, Some(self.obs_schema(organism)?)).await?;
        self.register_parts(&ctx, "x_raw", &self.part_paths(organism, 1), None).await?;
        self.register_parts(&ctx, "feature_dataset_presence_matrix", &self.part_paths(organism, 2), None).await?;
        self.register_parts(&ctx, "var", &[self.layout.var(organism)], None).await?;
        Ok(ctx)
    }

    async fn register_parts(&self, ctx: &SessionContext, name: &str, paths: &[PathBuf], schema: Option<SchemaRef>) -> Result<()> {
        let mut urls = Vec::with_capacity(paths.len());
        for p in paths {
            let abs = std::path::absolute(p).map_err(|e| store_err(p, e.to_string()))?;
            if !abs.exists() {
                return Err(store_err(&abs, "missing (the store is incomplete)"));
            }
            urls.push(ListingTableUrl::parse(abs.to_string_lossy())?);
        }
        let options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let schema = match schema {
            Some(s) => s,
            None => merged_schema(paths)?,
        };
        let config = ListingTableConfig::new_with_multi_paths(urls).with_listing_options(options).with_schema(schema);
        ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
        Ok(())
    }

    /// Run one SQL statement over the organism's tables (`None`: the only organism) and
    /// collect the result.
    pub fn sql(&self, organism: Option<&str>, query: &str) -> Result<Vec<RecordBatch>> {
        let organism = self.resolve_organism(organism)?;
        crate::block_on(async {
            let ctx = self.context(&organism).await?;
            let df = ctx.sql(query).await?;
            Ok::<_, AtlasError>(df.collect().await?)
        })?
    }

    /// Cells, genes and non-zeros of an organism, and the bytes its files take on disk.
    pub fn sizes(&self, organism: &str) -> Result<OrganismSizes> {
        let var = layout::read_var(&self.layout, organism)?;
        let cells = self.datasets_of(organism).iter().map(|d| d.dataset_total_cell_count).sum::<i64>() as u64;
        let nnz = var.iter().map(|v| v.nnz).sum::<i64>() as u64;
        Ok(OrganismSizes { cells, genes: var.len() as u64, nnz, bytes: dir_bytes(&self.layout.experiment(organism)) })
    }
}

/// How big an organism's part of a store is.
#[derive(Clone, Copy, Debug)]
pub struct OrganismSizes {
    /// Cells.
    pub cells: u64,
    /// Genes in var.
    pub genes: u64,
    /// Stored non-zeros of X/raw.
    pub nnz: u64,
    /// Bytes on disk.
    pub bytes: u64,
}

/// Bytes under a directory.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

fn merged_schema(paths: &[PathBuf]) -> Result<SchemaRef> {
    let mut fields: Vec<Field> = Vec::new();
    let mut pos: HashMap<String, usize> = HashMap::new();
    for p in paths {
        let meta = part_metadata(p)?;
        for f in meta.schema().fields() {
            match pos.get(f.name()) {
                Some(&i) => {
                    let t = merge_type(fields[i].data_type(), f.data_type());
                    fields[i] = Field::new(f.name(), t, true);
                }
                None => {
                    pos.insert(f.name().clone(), fields.len());
                    fields.push(Field::new(f.name(), f.data_type().clone(), true));
                }
            }
        }
    }
    Ok(Arc::new(Schema::new(fields)))
}
