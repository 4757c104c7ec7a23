//! Where each table of a store lives, and reading and writing its small tables.
//!
//! ```text
//! <store>/atlasflow-store.json                         {"format": "atlasflow-atlas", "version": 1}
//! <store>/census_info/datasets.parquet                 one row per dataset
//! <store>/census_info/summary.parquet                  label, value
//! <store>/census_data/<organism>/obs/part-NNNNNN.parquet                          one part per dataset
//! <store>/census_data/<organism>/ms/RNA/var.parquet
//! <store>/census_data/<organism>/ms/RNA/X/raw/part-NNNNNN.parquet                 same rows as obs
//! <store>/census_data/<organism>/ms/RNA/feature_dataset_presence_matrix/part-NNNNNN.parquet
//! ```
//!
//! The paths are the Census's SOMA paths, so a Census user finds each table where they
//! know it. `NNNNNN` is the dataset's soma_joinid. X is stored one row per cell
//! (`soma_joinid`, `x_indices` = var soma_joinids ascending, `x_values`), not as SOMA's COO
//! triples: rows are what a pipeline streams, and a row costs a third of the bytes of its
//! triples. Parts are committed by the dataset table: a part whose dataset is not listed
//! there (left by an interrupted ingest) is never read, and the next ingest removes it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use crate::{Result, store_err};

/// The marker file that makes a directory a store.
pub const MARKER: &str = "atlasflow-store.json";

/// Whether `dir` is a TileDB group or array: a TileDB-SOMA object such as a Census copy,
/// not an atlas store.
pub fn is_tiledb_soma(dir: &Path) -> bool {
    dir.join("__tiledb_group.tdb").exists() || dir.join("__schema").is_dir()
}

/// What store commands (`query`, `ingest`) pointed at a TileDB-SOMA directory are told.
pub const SOMA_NOT_A_STORE: &str = "is a TileDB-SOMA object (the Census's own format), not an atlas store: a pipeline's `census:` source reads it and `atlasflow inspect` describes it, but SQL and ingest work on atlas stores (build one from h5ad files with `atlasflow ingest`)";
/// The store format this build reads and writes.
pub const FORMAT_VERSION: u64 = 1;
/// The only measurement a store holds today.
pub const MEASUREMENT: &str = "RNA";

/// Columns of the dataset table (`census_info/datasets`), in order.
pub const DATASET_COLUMNS: [&str; 9] = [
    "soma_joinid",
    "collection_id",
    "collection_name",
    "collection_doi",
    "dataset_id",
    "dataset_title",
    "dataset_h5ad_path",
    "dataset_total_cell_count",
    "organism",
];

/// Obs columns the store computes; an h5ad column of the same name is replaced.
pub const COMPUTED_OBS: [&str; 6] = ["soma_joinid", "dataset_id", "obs_id", "nnz", "raw_sum", "n_measured_vars"];

/// Parquet footer key holding a part's first cell soma_joinid.
pub const FIRST_JOINID_KEY: &str = "atlasflow.first_soma_joinid";
/// Parquet footer key prefix holding a categorical obs column's categories, in the h5ad's
/// order (JSON list), so a dataset read back has the categories it was written with.
pub const CATEGORIES_KEY: &str = "atlasflow.categories.";

/// The directory name of an organism: "Mus musculus" → `mus_musculus`, as the Census names it.
pub fn organism_key(organism: &str) -> String {
    organism.trim().to_lowercase().split_whitespace().collect::<Vec<_>>().join("_")
}

/// One row of the dataset table.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetRow {
    /// The dataset's soma_joinid (its row in the presence matrix).
    pub soma_joinid: i64,
    /// The collection's id.
    pub collection_id: String,
    /// The collection's name.
    pub collection_name: String,
    /// The collection's DOI.
    pub collection_doi: String,
    /// The dataset's id.
    pub dataset_id: String,
    /// The dataset's title.
    pub dataset_title: String,
    /// The h5ad file it was ingested from.
    pub dataset_h5ad_path: String,
    /// Number of cells.
    pub dataset_total_cell_count: i64,
    /// The organism ("Mus musculus").
    pub organism: String,
}

/// Paths of one store.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout of the store at `root`.
    pub fn new(root: &Path) -> Self {
        Layout { root: root.to_path_buf() }
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The marker file.
    pub fn marker(&self) -> PathBuf {
        self.root.join(MARKER)
    }

    /// `census_info/datasets.parquet`.
    pub fn datasets(&self) -> PathBuf {
        self.root.join("census_info").join("datasets.parquet")
    }

    /// `census_info/summary.parquet`.
    pub fn summary(&self) -> PathBuf {
        self.root.join("census_info").join("summary.parquet")
    }

    /// `census_data/<organism>`.
    pub fn experiment(&self, organism: &str) -> PathBuf {
        self.root.join("census_data").join(organism_key(organism))
    }

    /// The obs directory of an organism.
    pub fn obs_dir(&self, organism: &str) -> PathBuf {
        self.experiment(organism).join("obs")
    }

    /// The var table of an organism.
    pub fn var(&self, organism: &str) -> PathBuf {
        self.experiment(organism).join("ms").join(MEASUREMENT).join("var.parquet")
    }

    /// The X/raw directory of an organism.
    pub fn x_dir(&self, organism: &str) -> PathBuf {
        self.experiment(organism).join("ms").join(MEASUREMENT).join("X").join("raw")
    }

    /// The presence-matrix directory of an organism.
    pub fn presence_dir(&self, organism: &str) -> PathBuf {
        self.experiment(organism).join("ms").join(MEASUREMENT).join("feature_dataset_presence_matrix")
    }

    /// The file name of a dataset's part.
    pub fn part_name(dataset_joinid: i64) -> String {
        format!("part-{dataset_joinid:06}.parquet")
    }

    /// The three part files of a dataset: obs, X, presence.
    pub fn parts(&self, organism: &str, dataset_joinid: i64) -> [PathBuf; 3] {
        let name = Self::part_name(dataset_joinid);
        [self.obs_dir(organism).join(&name), self.x_dir(organism).join(&name), self.presence_dir(organism).join(&name)]
    }

    /// Check the marker: the directory is a store of a version this build reads.
    pub fn check_marker(&self) -> Result<()> {
        let p = self.marker();
        if is_tiledb_soma(&self.root) {
            return Err(store_err(&self.root, SOMA_NOT_A_STORE));
        }
        let text = std::fs::read_to_string(&p).map_err(|e| {
            store_err(&self.root, format!("not an atlas store (no readable {MARKER}: {e}); build one with `atlasflow ingest`"))
        })?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| store_err(&p, format!("not valid JSON: {e}")))?;
        if v.get("format").and_then(|f| f.as_str()) != Some("atlasflow-atlas") {
            return Err(store_err(&p, "format is not \"atlasflow-atlas\""));
        }
        match v.get("version").and_then(|f| f.as_u64()) {
            Some(FORMAT_VERSION) => Ok(()),
            other => Err(store_err(
                &p,
                format!("store format version {other:?}; this atlasflow reads version {FORMAT_VERSION}"),
            )),
        }
    }

    /// Write the marker.
    pub fn write_marker(&self) -> Result<()> {
        let text = format!("{{\"format\": \"atlasflow-atlas\", \"version\": {FORMAT_VERSION}}}\n");
        write_atomic_bytes(&self.marker(), text.as_bytes())
    }
}

/// Properties of every Parquet file of a store: zstd, page statistics (for row-group
/// pruning on soma_joinid and on obs columns).
pub fn writer_properties(max_row_group_rows: usize) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_max_row_group_row_count(Some(max_row_group_rows.max(1)))
        .build()
}

/// The temporary name a file is written under before it is renamed into place.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

fn write_atomic_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    std::fs::write(&tmp, bytes).map_err(|e| store_err(&tmp, format!("cannot write: {e}")))?;
    std::fs::rename(&tmp, path).map_err(|e| store_err(path, format!("cannot rename into place: {e}")))
}

/// Write one record batch as a whole Parquet file, under a temporary name then renamed.
pub fn write_table(path: &Path, batch: &RecordBatch) -> Result<()> {
    write_table_with(path, batch, Vec::new(), 1 << 20)
}

/// [`write_table`] with footer key-value metadata and a row-group size.
pub fn write_table_with(path: &Path, batch: &RecordBatch, kv: Vec<KeyValue>, max_row_group_rows: usize) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| store_err(dir, format!("cannot create: {e}")))?;
    }
    let tmp = temp_path(path);
    let res = (|| -> std::result::Result<(), String> {
        let file = File::create(&tmp).map_err(|e| e.to_string())?;
        let props = writer_properties(max_row_group_rows).into_builder().set_key_value_metadata(Some(kv)).build();
        let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).map_err(|e| e.to_string())?;
        w.write(batch).map_err(|e| e.to_string())?;
        w.close().map_err(|e| e.to_string())?;
        Ok(())
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(store_err(path, format!("cannot write: {e}")));
    }
    std::fs::rename(&tmp, path).map_err(|e| store_err(path, format!("cannot rename into place: {e}")))
}

/// Read a whole (small) Parquet table into one batch.
pub fn read_table(path: &Path) -> Result<RecordBatch> {
    let file = File::open(path).map_err(|e| store_err(path, format!("cannot open: {e}")))?;
    let builder = crate::store::decode(path, "footer", || ParquetRecordBatchReaderBuilder::try_new(file))?
        .map_err(|e| store_err(path, format!("not a Parquet file: {e}")))?;
    let schema = Arc::clone(builder.schema());
    let reader = builder.build().map_err(|e| store_err(path, e.to_string()))?;
    let batches = crate::store::decode(path, "data", || reader.collect::<std::result::Result<Vec<_>, _>>())?
        .map_err(|e| store_err(path, format!("corrupt: {e}")))?;
    arrow::compute::concat_batches(&schema, &batches).map_err(|e| store_err(path, e.to_string()))
}

/// A column of `batch` by name, or an error naming the file.
pub fn column<'a>(path: &Path, batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| store_err(path, format!("no column '{name}'")))
}

/// A string column's values (Utf8, or dictionary-encoded strings), nulls as "".
pub fn strings(path: &Path, batch: &RecordBatch, name: &str) -> Result<Vec<String>> {
    let col = column(path, batch, name)?;
    let col = arrow::compute::cast(col, &DataType::Utf8).map_err(|e| store_err(path, format!("column '{name}': {e}")))?;
    let s = col.as_string::<i32>();
    Ok((0..s.len()).map(|i| if s.is_null(i) { String::new() } else { s.value(i).to_string() }).collect())
}

/// An integer column's values as i64 (nulls are an error: these columns are keys and counts).
pub fn ints(path: &Path, batch: &RecordBatch, name: &str) -> Result<Vec<i64>> {
    let col = column(path, batch, name)?;
    let col = arrow::compute::cast(col, &DataType::Int64).map_err(|e| store_err(path, format!("column '{name}': {e}")))?;
    if col.null_count() > 0 {
        return Err(store_err(path, format!("column '{name}' has missing values")));
    }
    Ok(col.as_primitive::<Int64Type>().values().to_vec())
}

/// Read the dataset table (empty when the store has none yet).
pub fn read_datasets(layout: &Layout) -> Result<Vec<DatasetRow>> {
    let p = layout.datasets();
    if !p.exists() {
        return Ok(Vec::new());
    }
    let b = read_table(&p)?;
    let s = |n: &str| strings(&p, &b, n);
    let (ids, cids, cnames, dois, dids, titles, paths, counts, orgs) = (
        ints(&p, &b, "soma_joinid")?,
        s("collection_id")?,
        s("collection_name")?,
        s("collection_doi")?,
        s("dataset_id")?,
        s("dataset_title")?,
        s("dataset_h5ad_path")?,
        ints(&p, &b, "dataset_total_cell_count")?,
        s("organism")?,
    );
    Ok((0..b.num_rows())
        .map(|i| DatasetRow {
            soma_joinid: ids[i],
            collection_id: cids[i].clone(),
            collection_name: cnames[i].clone(),
            collection_doi: dois[i].clone(),
            dataset_id: dids[i].clone(),
            dataset_title: titles[i].clone(),
            dataset_h5ad_path: paths[i].clone(),
            dataset_total_cell_count: counts[i],
            organism: orgs[i].clone(),
        })
        .collect())
}

/// The dataset table as a record batch.
pub fn datasets_batch(rows: &[DatasetRow]) -> Result<RecordBatch> {
    let s = |f: fn(&DatasetRow) -> &str| -> ArrayRef { Arc::new(StringArray::from_iter_values(rows.iter().map(f))) };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.soma_joinid))),
        s(|r| &r.collection_id),
        s(|r| &r.collection_name),
        s(|r| &r.collection_doi),
        s(|r| &r.dataset_id),
        s(|r| &r.dataset_title),
        s(|r| &r.dataset_h5ad_path),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.dataset_total_cell_count))),
        s(|r| &r.organism),
    ];
    let fields: Vec<Field> = DATASET_COLUMNS
        .iter()
        .zip(&cols)
        .map(|(n, c)| Field::new(*n, c.data_type().clone(), false))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(|e| crate::AtlasError::Query(e.to_string()))
}

/// One row of an organism's var table.
#[derive(Clone, Debug, PartialEq)]
pub struct VarRow {
    /// The gene's id (Ensembl), the var index of the h5ad files.
    pub feature_id: String,
    /// The gene symbol.
    pub feature_name: String,
    /// Gene length in base pairs, what full-length protocols' counts are divided by.
    pub feature_length: i64,
    /// Non-zeros over all cells of the organism.
    pub nnz: i64,
    /// Cells of the datasets in which the gene is present.
    pub n_measured_obs: i64,
}

/// Read an organism's var table (rows in soma_joinid order; empty when absent).
pub fn read_var(layout: &Layout, organism: &str) -> Result<Vec<VarRow>> {
    let p = layout.var(organism);
    if !p.exists() {
        return Ok(Vec::new());
    }
    let b = read_table(&p)?;
    let ids = ints(&p, &b, "soma_joinid")?;
    if ids.iter().enumerate().any(|(i, &j)| j != i as i64) {
        return Err(store_err(&p, "soma_joinid is not 0, 1, 2, … in row order"));
    }
    let (fid, fname, flen, nnz, nobs) = (
        strings(&p, &b, "feature_id")?,
        strings(&p, &b, "feature_name")?,
        ints(&p, &b, "feature_length")?,
        ints(&p, &b, "nnz")?,
        ints(&p, &b, "n_measured_obs")?,
    );
    Ok((0..b.num_rows())
        .map(|i| VarRow {
            feature_id: fid[i].clone(),
            feature_name: fname[i].clone(),
            feature_length: flen[i],
            nnz: nnz[i],
            n_measured_obs: nobs[i],
        })
        .collect())
}

/// An organism's var table as a record batch.
pub fn var_batch(rows: &[VarRow]) -> Result<RecordBatch> {
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(0..rows.len() as i64)),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.feature_id))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.feature_name))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.feature_length))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.nnz))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.n_measured_obs))),
    ];
    let names = ["soma_joinid", "feature_id", "feature_name", "feature_length", "nnz", "n_measured_obs"];
    let fields: Vec<Field> = names.iter().zip(&cols).map(|(n, c)| Field::new(*n, c.data_type().clone(), false)).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(|e| crate::AtlasError::Query(e.to_string()))
}

/// The summary table (`census_info/summary`): label/value pairs as the Census has them.
pub fn summary_batch(rows: &[(String, String)]) -> Result<RecordBatch> {
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.0))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.1))),
    ];
    let schema = Schema::new(vec![Field::new("label", DataType::Utf8, false), Field::new("value", DataType::Utf8, false)]);
    RecordBatch::try_new(Arc::new(schema), cols).map_err(|e| crate::AtlasError::Query(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organism_keys_follow_the_census() {
        assert_eq!(organism_key("Mus musculus"), "mus_musculus");
        assert_eq!(organism_key(" Homo  sapiens "), "homo_sapiens");
        assert_eq!(organism_key("mus_musculus"), "mus_musculus");
    }

    #[test]
    fn small_tables_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = Layout::new(dir.path());
        l.write_marker().expect("marker");
        l.check_marker().expect("check");
        let rows = vec![DatasetRow {
            soma_joinid: 0,
            collection_id: "c".into(),
            collection_name: "n".into(),
            collection_doi: "".into(),
            dataset_id: "d".into(),
            dataset_title: "t".into(),
            dataset_h5ad_path: "p.h5ad".into(),
            dataset_total_cell_count: 5,
            organism: "Mus musculus".into(),
        }];
        write_table(&l.datasets(), &datasets_batch(&rows).expect("batch")).expect("write");
        assert_eq!(read_datasets(&l).expect("read"), rows);
        std::fs::write(l.marker(), "{\"format\": \"atlasflow-atlas\", \"version\": 9}").expect("w");
        let e = l.check_marker().expect_err("version 9");
        assert!(e.to_string().contains("version Some(9)"), "{e}");
    }
}
