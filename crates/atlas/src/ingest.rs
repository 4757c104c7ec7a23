//! `atlasflow ingest`: build or extend a store from h5ad files, as the Census builder does.
//!
//! Each input becomes one dataset: its genes join the organism's var table by feature_id
//! (new genes get the next var soma_joinids), its cells get the next obs soma_joinids, its
//! X rows are written with var soma_joinids as column indices, and its presence row lists
//! the genes with a count > 0 in at least one of its cells. X is read block by block, so
//! memory is bounded by a block plus obs (which the h5ad reader holds whole) and a few
//! numbers per cell and per gene.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float32Array, Float64Array, Int64Array, ListArray, RecordBatch, StringArray,
    UInt32Array,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Schema};
use atlasflow_core::XView;
use atlasflow_core::batch::CELL_ID;
use atlasflow_io::H5adReader;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;

use crate::layout::{
    self, CATEGORIES_KEY, COMPUTED_OBS, DatasetRow, FIRST_JOINID_KEY, Layout, VarRow, organism_key, temp_path,
};
use crate::{AtlasError, Result, input_err, store_err};

/// What `ingest` needs besides the files.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// The organism of every input ("Mus musculus", "Homo sapiens").
    pub organism: String,
    /// A table of gene lengths (TSV or CSV with columns `feature_id` and `feature_length`),
    /// used for genes whose var has no `feature_length`.
    pub gene_lengths: Option<PathBuf>,
    /// Dataset ids, one per input; empty = each file's stem.
    pub dataset_ids: Vec<String>,
    /// The collection the datasets belong to (dataset-table columns).
    pub collection_id: String,
    /// The collection's name.
    pub collection_name: String,
    /// The collection's DOI.
    pub collection_doi: String,
    /// Cells read from an input at a time.
    pub block_cells: usize,
    /// Non-zeros per X row group (the unit a reader skips or reads).
    pub row_group_nnz: usize,
}

impl IngestOptions {
    /// Options for one organism with the defaults.
    pub fn new(organism: &str) -> Self {
        IngestOptions {
            organism: organism.to_string(),
            gene_lengths: None,
            dataset_ids: Vec::new(),
            collection_id: String::new(),
            collection_name: String::new(),
            collection_doi: String::new(),
            block_cells: 4096,
            row_group_nnz: 1 << 20,
        }
    }
}

/// One dataset added by an ingest.
#[derive(Clone, Debug)]
pub struct IngestedDataset {
    /// Its id.
    pub dataset_id: String,
    /// Its soma_joinid.
    pub soma_joinid: i64,
    /// Its title.
    pub dataset_title: String,
    /// Cells.
    pub n_cells: usize,
    /// Genes in its var.
    pub n_var: usize,
    /// Genes with a count > 0 (its presence row).
    pub n_present: usize,
    /// Stored non-zeros.
    pub nnz: u64,
}

/// What an ingest did.
#[derive(Clone, Debug, Default)]
pub struct IngestReport {
    /// Datasets added, in input order.
    pub datasets: Vec<IngestedDataset>,
    /// Genes new to the organism's var table.
    pub new_genes: usize,
    /// Genes in the var table now.
    pub n_genes: usize,
    /// Things the user should know (lengths that disagree, h5ad columns replaced, parts of
    /// an interrupted ingest removed).
    pub warnings: Vec<String>,
}

/// Build the store at `store` (or extend it) from `inputs`. Nothing of a failed ingest
/// becomes visible: new parts are committed by rewriting the dataset table last.
pub fn ingest(store: &Path, inputs: &[PathBuf], opts: &IngestOptions, progress: &mut dyn FnMut(&str, usize, usize)) -> Result<IngestReport> {
    if inputs.is_empty() {
        return Err(AtlasError::Query("ingest needs at least one h5ad file".into()));
    }
    if !opts.dataset_ids.is_empty() && opts.dataset_ids.len() != inputs.len() {
        return Err(AtlasError::Query(format!(
            "{} dataset ids for {} inputs: give one per input, or none",
            opts.dataset_ids.len(),
            inputs.len()
        )));
    }
    let organism = opts.organism.trim().to_string();
    if organism_key(&organism).is_empty() {
        return Err(AtlasError::Query("--organism is empty".into()));
    }
    let layout = Layout::new(store);
    if layout.marker().exists() {
        layout.check_marker()?;
    } else if std::fs::read_dir(store).map(|mut d| d.next().is_some()).unwrap_or(false) {
        return Err(store_err(store, "exists, is not empty and is not an atlas store; give a new directory"));
    }
    for dir in [layout.obs_dir(&organism), layout.x_dir(&organism), layout.presence_dir(&organism)] {
        std::fs::create_dir_all(&dir).map_err(|e| store_err(&dir, format!("cannot create: {e}")))?;
    }
    layout.write_marker()?;

    let mut datasets = layout::read_datasets(&layout)?;
    let mut report = IngestReport::default();
    remove_orphans(&layout, &organism, &datasets, &mut report)?;
    if let Some(other) = datasets.iter().find(|d| organism_key(&d.organism) == organism_key(&organism) && d.organism != organism) {
        return Err(AtlasError::Query(format!(
            "the store names this organism \"{}\"; use that spelling, not \"{organism}\"",
            other.organism
        )));
    }
    let mut var = layout::read_var(&layout, &organism)?;
    let n_var_before = var.len();
    let mut var_index: HashMap<String, u32> =
        var.iter().enumerate().map(|(i, v)| (v.feature_id.clone(), i as u32)).collect();
    let lengths = match &opts.gene_lengths {
        Some(p) => Some(read_gene_lengths(p)?),
        None => None,
    };
    let mut next_cell: i64 = datasets
        .iter()
        .filter(|d| organism_key(&d.organism) == organism_key(&organism))
        .map(|d| d.dataset_total_cell_count)
        .sum();
    let mut next_dataset = datasets.iter().map(|d| d.soma_joinid + 1).max().unwrap_or(0);
    let mut written: Vec<PathBuf> = Vec::new();

    let result = (|| -> Result<()> {
        for (k, input) in inputs.iter().enumerate() {
            let dataset_id = match opts.dataset_ids.get(k) {
                Some(id) => id.clone(),
                None => input.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
            };
            if dataset_id.is_empty() {
                return Err(input_err(input, "cannot name the dataset: give --dataset-id"));
            }
            if datasets.iter().any(|d| d.dataset_id == dataset_id) {
                return Err(input_err(input, format!("dataset_id '{dataset_id}' is already in the store")));
            }
            let ctx = DatasetCtx {
                layout: &layout,
                organism: &organism,
                input,
                dataset_id: &dataset_id,
                dataset_joinid: next_dataset,
                first_cell: next_cell,
                lengths: lengths.as_ref(),
                opts,
            };
            let (row, done) = ctx.run(&mut var, &mut var_index, &mut report, &mut written, progress)?;
            next_cell += row.dataset_total_cell_count;
            next_dataset += 1;
            datasets.push(row);
            report.datasets.push(done);
        }
        // Commit: var first (new genes are harmless without cells), the dataset table last.
        layout::write_table(&layout.var(&organism), &layout::var_batch(&var)?)?;
        write_summary(&layout, &datasets)?;
        layout::write_table(&layout.datasets(), &layout::datasets_batch(&datasets)?)?;
        Ok(())
    })();
    if let Err(e) = result {
        for p in &written {
            let _ = std::fs::remove_file(p);
            let _ = std::fs::remove_file(temp_path(p));
        }
        return Err(e);
    }
    report.new_genes = var.len() - n_var_before;
    report.n_genes = var.len();
    Ok(report)
}

/// Remove part files whose dataset is not in the dataset table (an interrupted ingest).
fn remove_orphans(layout: &Layout, organism: &str, datasets: &[DatasetRow], report: &mut IngestReport) -> Result<()> {
    let listed: Vec<String> = datasets.iter().map(|d| Layout::part_name(d.soma_joinid)).collect();
    for dir in [layout.obs_dir(organism), layout.x_dir(organism), layout.presence_dir(organism)] {
        let entries = std::fs::read_dir(&dir).map_err(|e| store_err(&dir, format!("cannot list: {e}")))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("part-") && !listed.contains(&name) {
                std::fs::remove_file(entry.path()).map_err(|e| store_err(&entry.path(), format!("cannot remove: {e}")))?;
                report.warnings.push(format!("removed {} (left by an interrupted ingest)", entry.path().display()));
            }
        }
    }
    Ok(())
}

fn write_summary(layout: &Layout, datasets: &[DatasetRow]) -> Result<()> {
    let mut rows = vec![
        ("census_schema_version".to_string(), "2.1.0".to_string()),
        ("atlasflow_store_version".to_string(), layout::FORMAT_VERSION.to_string()),
        ("dataset_count".to_string(), datasets.len().to_string()),
        ("total_cell_count".to_string(), datasets.iter().map(|d| d.dataset_total_cell_count).sum::<i64>().to_string()),
    ];
    let mut orgs: Vec<&str> = datasets.iter().map(|d| d.organism.as_str()).collect();
    orgs.sort();
    orgs.dedup();
    for o in orgs {
        let n: i64 = datasets.iter().filter(|d| d.organism == o).map(|d| d.dataset_total_cell_count).sum();
        rows.push((format!("{}_cell_count", organism_key(o)), n.to_string()));
    }
    layout::write_table(&layout.summary(), &layout::summary_batch(&rows)?)
}

/// Read a gene-length table: TSV or CSV with a header naming `feature_id` and `feature_length`.
fn read_gene_lengths(path: &Path) -> Result<HashMap<String, i64>> {
    let text = std::fs::read_to_string(path).map_err(|e| input_err(path, format!("cannot read: {e}")))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    let (_, header) = lines.next().ok_or_else(|| input_err(path, "empty gene-length table"))?;
    let sep = if header.contains('\t') { '\t' } else { ',' };
    let cols: Vec<&str> = header.split(sep).map(|c| c.trim().trim_matches('"')).collect();
    let find = |name: &str| {
        cols.iter().position(|c| *c == name).ok_or_else(|| {
            input_err(path, format!("line 1: no column '{name}' (columns: {}); it needs feature_id and feature_length", cols.join(", ")))
        })
    };
    let (fi, li) = (find("feature_id")?, find("feature_length")?);
    let mut out = HashMap::new();
    for (n, line) in lines {
        let f: Vec<&str> = line.split(sep).map(|c| c.trim().trim_matches('"')).collect();
        let (Some(id), Some(len)) = (f.get(fi), f.get(li)) else {
            return Err(input_err(path, format!("line {}: too few fields", n + 1)));
        };
        let v: f64 = len.parse().map_err(|_| input_err(path, format!("line {}: feature_length '{len}' is not a number", n + 1)))?;
        let v = length_value(v).ok_or_else(|| {
            input_err(path, format!("line {}: feature_length {len} of {id} must be a positive whole number", n + 1))
        })?;
        out.insert(id.to_string(), v);
    }
    Ok(out)
}

fn length_value(v: f64) -> Option<i64> {
    (v.is_finite() && v >= 1.0 && v.fract() == 0.0 && v < 1e15).then_some(v as i64)
}

struct DatasetCtx<'a> {
    layout: &'a Layout,
    organism: &'a str,
    input: &'a Path,
    dataset_id: &'a str,
    dataset_joinid: i64,
    first_cell: i64,
    lengths: Option<&'a HashMap<String, i64>>,
    opts: &'a IngestOptions,
}

impl DatasetCtx<'_> {
    fn err(&self, message: impl Into<String>) -> AtlasError {
        input_err(self.input, message)
    }

    /// Join the dataset's genes to var; returns the local → var soma_joinid map.
    fn join_genes(
        &self,
        reader: &H5adReader,
        var: &mut Vec<VarRow>,
        var_index: &mut HashMap<String, u32>,
        report: &mut IngestReport,
    ) -> Result<Vec<u32>> {
        let genes = reader.genes();
        let n = genes.n_genes();
        let names: Option<Vec<String>> = match genes.column("feature_name") {
            Some(c) => {
                let c = arrow::compute::cast(c, &DataType::Utf8).map_err(|e| self.err(format!("/var/feature_name: {e}")))?;
                let s = c.as_string::<i32>();
                Some((0..n).map(|j| if s.is_null(j) { String::new() } else { s.value(j).to_string() }).collect())
            }
            None => None,
        };
        let lengths = genes.f64_column("feature_length").map_err(|e| self.err(format!("/var/feature_length: {e}")))?;
        let mut seen = HashMap::with_capacity(n);
        let mut map = Vec::with_capacity(n);
        let mut disagree = 0usize;
        for j in 0..n {
            let id = genes.name(j);
            if let Some(prev) = seen.insert(id.to_string(), j) {
                return Err(self.err(format!("/var: gene id '{id}' appears twice (genes {prev} and {j})")));
            }
            let len = match lengths.as_ref().map(|l| l[j]) {
                Some(v) if !v.is_nan() => Some(length_value(v).ok_or_else(|| {
                    self.err(format!("/var/feature_length: gene '{id}' has length {v}; lengths must be positive whole numbers"))
                })?),
                _ => self.lengths.and_then(|t| t.get(id).copied()),
            };
            let g = match var_index.get(id) {
                Some(&g) => {
                    if let Some(l) = len
                        && l != var[g as usize].feature_length
                    {
                        disagree += 1;
                    }
                    g
                }
                None => {
                    let Some(l) = len else {
                        return Err(self.err(format!(
                            "gene '{id}' has no feature_length (not in /var/feature_length{}); give a gene-length table with --gene-lengths",
                            if self.lengths.is_some() { " nor in the gene-length table" } else { "" }
                        )));
                    };
                    let g = u32::try_from(var.len()).map_err(|_| self.err("more than 2^32 genes"))?;
                    let name = names.as_ref().map(|v| v[j].clone()).filter(|s| !s.is_empty()).unwrap_or_else(|| id.to_string());
                    var.push(VarRow { feature_id: id.to_string(), feature_name: name, feature_length: l, nnz: 0, n_measured_obs: 0 });
                    var_index.insert(id.to_string(), g);
                    g
                }
            };
            map.push(g);
        }
        if disagree > 0 {
            report.warnings.push(format!(
                "{}: {disagree} genes have a feature_length that differs from the store's; the store's lengths are kept",
                self.input.display()
            ));
        }
        Ok(map)
    }

    fn run(
        &self,
        var: &mut Vec<VarRow>,
        var_index: &mut HashMap<String, u32>,
        report: &mut IngestReport,
        written: &mut Vec<PathBuf>,
        progress: &mut dyn FnMut(&str, usize, usize),
    ) -> Result<(DatasetRow, IngestedDataset)> {
        let reader = H5adReader::open(self.input)?;
        let n_cells = reader.n_obs();
        if n_cells == 0 {
            return Err(self.err("has no cells; a dataset needs at least one"));
        }
        let map = self.join_genes(&reader, var, var_index, report)?;
        let title = match reader.uns()?.get("title") {
            Some(atlasflow_core::Uns::Str(t)) => t.clone(),
            _ => self.dataset_id.to_string(),
        };
        let [obs_path, x_path, presence_path] = self.layout.parts(self.organism, self.dataset_joinid);

        // X: stream blocks, remap columns, drop explicit zeros, count per cell and gene.
        let mut present = vec![false; map.len()];
        let mut gene_nnz = vec![0i64; map.len()];
        let mut cell_nnz = Vec::with_capacity(n_cells);
        let mut cell_sum = Vec::with_capacity(n_cells);
        let x_schema = Arc::new(Schema::new(vec![
            Field::new("soma_joinid", DataType::Int64, false),
            Field::new("x_indices", DataType::List(Arc::new(Field::new("item", DataType::UInt32, false))), false),
            Field::new("x_values", DataType::List(Arc::new(Field::new("item", DataType::Float32, false))), false),
        ]));
        let tmp = temp_path(&x_path);
        written.push(x_path.clone());
        let file = File::create(&tmp).map_err(|e| store_err(&tmp, format!("cannot create: {e}")))?;
        let mut props = layout::writer_properties(1 << 20);
        props = props.into_builder().set_key_value_metadata(Some(vec![first_key(self.first_cell)])).build();
        let mut w = ArrowWriter::try_new(file, Arc::clone(&x_schema), Some(props)).map_err(|e| store_err(&x_path, e.to_string()))?;
        let sorted_map = map.windows(2).all(|p| p[0] < p[1]);
        let mut group_nnz = 0usize;
        let block = self.opts.block_cells.max(1);
        let mut pairs: Vec<(u32, f32)> = Vec::new();
        let mut a = 0;
        while a < n_cells {
            let b = (a + block).min(n_cells);
            let batch = reader.read_cells(a, b)?;
            let x = batch.x().map_err(|e| self.err(e.to_string()))?;
            let (mut offsets, mut idx, mut val) = (vec![0i32], Vec::new(), Vec::new());
            for r in 0..(b - a) {
                pairs.clear();
                match x {
                    XView::Csr(c) => {
                        let (ri, rv) = c.row(r);
                        pairs.extend(ri.iter().zip(rv).map(|(&j, &v)| (j, v)));
                    }
                    XView::Dense { data, n_cols } => {
                        pairs.extend(data[r * n_cols..(r + 1) * n_cols].iter().enumerate().map(|(j, &v)| (j as u32, v)));
                    }
                }
                let mut sum = 0f64;
                let start = idx.len();
                for &(j, v) in &pairs {
                    if v == 0.0 {
                        continue;
                    }
                    if v < 0.0 || !v.is_finite() {
                        return Err(self.err(format!(
                            "/X: cell {} ('{}'), gene '{}' has value {v}; raw counts must be finite and ≥ 0",
                            a + r,
                            cell_name(&batch, r),
                            reader.genes().name(j as usize)
                        )));
                    }
                    present[j as usize] = true;
                    gene_nnz[j as usize] += 1;
                    sum += f64::from(v);
                    idx.push(map[j as usize]);
                    val.push(v);
                }
                if !sorted_map {
                    let mut row: Vec<(u32, f32)> = idx[start..].iter().copied().zip(val[start..].iter().copied()).collect();
                    row.sort_unstable_by_key(|p| p.0);
                    for (k, (j, v)) in row.into_iter().enumerate() {
                        idx[start + k] = j;
                        val[start + k] = v;
                    }
                }
                cell_nnz.push((idx.len() - start) as i64);
                cell_sum.push(sum);
                offsets.push(i32::try_from(idx.len()).map_err(|_| self.err("a read block has more than 2^31 non-zeros"))?);
            }
            let ids = Int64Array::from_iter_values((a..b).map(|i| self.first_cell + i as i64));
            let off = OffsetBuffer::new(offsets.into());
            let nnz_block = idx.len();
            let cols: Vec<ArrayRef> = vec![
                Arc::new(ids),
                Arc::new(ListArray::new(Arc::new(Field::new("item", DataType::UInt32, false)), off.clone(), Arc::new(UInt32Array::from(idx)), None)),
                Arc::new(ListArray::new(Arc::new(Field::new("item", DataType::Float32, false)), off, Arc::new(Float32Array::from(val)), None)),
            ];
            let rb = RecordBatch::try_new(Arc::clone(&x_schema), cols).map_err(|e| store_err(&x_path, e.to_string()))?;
            // Cut row groups by non-zeros, so a reader's unit of work is the same size
            // whatever the depth of the cells.
            let mut off_r = 0;
            let per_cell = (nnz_block / (b - a).max(1)).max(1);
            while off_r < rb.num_rows() {
                let room = self.opts.row_group_nnz.saturating_sub(group_nnz).max(per_cell);
                let take = (room / per_cell).clamp(1, rb.num_rows() - off_r);
                let part = rb.slice(off_r, take);
                w.write(&part).map_err(|e| store_err(&x_path, e.to_string()))?;
                group_nnz += per_cell * take;
                off_r += take;
                if group_nnz >= self.opts.row_group_nnz {
                    w.flush().map_err(|e| store_err(&x_path, e.to_string()))?;
                    group_nnz = 0;
                }
            }
            progress(self.dataset_id, b, n_cells);
            a = b;
        }
        w.close().map_err(|e| store_err(&x_path, format!("cannot write: {e}")))?;

        // Presence row and var counts.
        let mut present_ids: Vec<i64> = map.iter().zip(&present).filter(|p| *p.1).map(|(&g, _)| i64::from(g)).collect();
        present_ids.sort_unstable();
        for (j, &g) in map.iter().enumerate() {
            let v = &mut var[g as usize];
            v.nnz += gene_nnz[j];
            if present[j] {
                v.n_measured_obs += n_cells as i64;
            }
        }
        let n_present = present_ids.len();
        let presence = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("soma_dim_0", DataType::Int64, false),
                Field::new("soma_dim_1", DataType::Int64, false),
            ])),
            vec![
                Arc::new(Int64Array::from(vec![self.dataset_joinid; n_present])),
                Arc::new(Int64Array::from(present_ids)),
            ],
        )
        .map_err(|e| store_err(&presence_path, e.to_string()))?;
        written.push(presence_path.clone());
        layout::write_table(&presence_path, &presence)?;

        // obs: computed columns first, then the h5ad's own.
        let mut fields = vec![
            Field::new("soma_joinid", DataType::Int64, false),
            Field::new("dataset_id", DataType::Utf8, false),
            Field::new("obs_id", DataType::Utf8, false),
        ];
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values((0..n_cells).map(|i| self.first_cell + i as i64))),
            Arc::new(StringArray::from(vec![self.dataset_id; n_cells])),
        ];
        let mut kv = vec![first_key(self.first_cell)];
        let mut replaced = Vec::new();
        let mut own: Vec<(Field, ArrayRef)> = Vec::new();
        for (name, col) in reader.obs_columns() {
            if name == CELL_ID {
                cols.push(Arc::clone(col));
                continue;
            }
            if COMPUTED_OBS.contains(&name.as_str()) {
                replaced.push(name.clone());
                continue;
            }
            if let DataType::Dictionary(_, _) = col.data_type() {
                let d = col.as_any_dictionary();
                let values = arrow::compute::cast(d.values(), &DataType::Utf8).map_err(|e| self.err(format!("/obs/{name}: {e}")))?;
                let s = values.as_string::<i32>();
                let cats: Vec<&str> = (0..s.len()).map(|i| s.value(i)).collect();
                kv.push(KeyValue::new(format!("{CATEGORIES_KEY}{name}"), serde_json::to_string(&cats).unwrap_or_default()));
            }
            own.push((Field::new(name, col.data_type().clone(), true), Arc::clone(col)));
        }
        for (f, c) in own {
            fields.push(f);
            cols.push(c);
        }
        fields.push(Field::new("nnz", DataType::Int64, false));
        cols.push(Arc::new(Int64Array::from(cell_nnz.clone())));
        fields.push(Field::new("raw_sum", DataType::Float64, false));
        cols.push(Arc::new(Float64Array::from(cell_sum)));
        fields.push(Field::new("n_measured_vars", DataType::Int64, false));
        cols.push(Arc::new(Int64Array::from(vec![n_present as i64; n_cells])));
        if !replaced.is_empty() {
            report.warnings.push(format!(
                "{}: obs columns {} are computed by the store; the file's values were not kept",
                self.input.display(),
                replaced.join(", ")
            ));
        }
        let obs = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(|e| self.err(format!("/obs: {e}")))?;
        written.push(obs_path.clone());
        layout::write_table_with(&obs_path, &obs, kv, 65_536)?;
        std::fs::rename(&tmp, &x_path).map_err(|e| store_err(&x_path, format!("cannot rename into place: {e}")))?;

        let nnz: u64 = cell_nnz.iter().map(|&v| v as u64).sum();
        let row = DatasetRow {
            soma_joinid: self.dataset_joinid,
            collection_id: self.opts.collection_id.clone(),
            collection_name: self.opts.collection_name.clone(),
            collection_doi: self.opts.collection_doi.clone(),
            dataset_id: self.dataset_id.to_string(),
            dataset_title: title.clone(),
            dataset_h5ad_path: self.input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            dataset_total_cell_count: n_cells as i64,
            organism: self.organism.to_string(),
        };
        let done = IngestedDataset {
            dataset_id: self.dataset_id.to_string(),
            soma_joinid: self.dataset_joinid,
            dataset_title: title,
            n_cells,
            n_var: map.len(),
            n_present,
            nnz,
        };
        Ok((row, done))
    }
}

fn first_key(first: i64) -> KeyValue {
    KeyValue::new(FIRST_JOINID_KEY.to_string(), first.to_string())
}

fn cell_name(batch: &atlasflow_core::CellBatch, r: usize) -> String {
    match batch.obs_column(CELL_ID) {
        Some(c) => match c.as_any().downcast_ref::<StringArray>() {
            Some(s) if r < s.len() => s.value(r).to_string(),
            _ => "?".into(),
        },
        None => "?".into(),
    }
}
