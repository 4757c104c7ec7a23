//! The atlas commands: `ingest`, `query` and `inspect`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use atlasflow_atlas::store::{TABLES, dir_bytes};
use atlasflow_atlas::{AtlasStore, IngestOptions};
use clap::Args;

/// `atlasflow ingest`.
#[derive(Args)]
pub struct IngestArgs {
    /// The h5ad files, one dataset each (raw counts in X; var index = feature_id).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// The store to build or extend.
    #[arg(long)]
    pub out: PathBuf,
    /// The organism of every input, e.g. "Mus musculus".
    #[arg(long)]
    pub organism: String,
    /// Gene lengths (TSV/CSV with feature_id, feature_length) for genes whose var lacks them.
    #[arg(long)]
    pub gene_lengths: Option<PathBuf>,
    /// Dataset ids, one per input, in order (default: each file's stem).
    #[arg(long = "dataset-id")]
    pub dataset_ids: Vec<String>,
    /// Collection id written to the dataset table.
    #[arg(long, default_value = "")]
    pub collection_id: String,
    /// Collection name written to the dataset table.
    #[arg(long, default_value = "")]
    pub collection_name: String,
    /// Collection DOI written to the dataset table.
    #[arg(long, default_value = "")]
    pub collection_doi: String,
    /// No progress bar.
    /// Non-zeros per Parquet row group of X (the unit a reader decodes; default 1,048,576).
    #[arg(long, default_value_t = 1 << 20)]
    pub row_group_nnz: usize,
    #[arg(long, short)]
    pub quiet: bool,
}

/// `atlasflow query`.
#[derive(Args)]
pub struct QueryArgs {
    /// The store.
    pub store: PathBuf,
    /// One SQL statement over datasets, summary, obs, var, feature_dataset_presence_matrix, x_raw.
    pub sql: String,
    /// The organism whose tables to query (default: the store's only one).
    #[arg(long)]
    pub organism: Option<String>,
    /// Print CSV instead of a table.
    #[arg(long)]
    pub csv: bool,
}

/// `atlasflow inspect`.
#[derive(Args)]
pub struct InspectArgs {
    /// An h5ad file, an atlas store directory, or a TileDB-SOMA object (a Census or an
    /// experiment directory).
    pub path: PathBuf,
}

/// Build or extend a store.
pub fn ingest(args: &IngestArgs) -> Result<(), (u8, String)> {
    let mut opts = IngestOptions::new(&args.organism);
    opts.gene_lengths = args.gene_lengths.clone();
    opts.dataset_ids = args.dataset_ids.clone();
    opts.collection_id = args.collection_id.clone();
    opts.collection_name = args.collection_name.clone();
    opts.collection_doi = args.collection_doi.clone();
    if args.row_group_nnz == 0 {
        return Err((2, "--row-group-nnz must be at least 1".into()));
    }
    opts.row_group_nnz = args.row_group_nnz;
    let started = Instant::now();
    let bar = (!args.quiet).then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template("{msg:24} [{bar:30}] {pos}/{len} cells")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut progress = |id: &str, done: usize, total: usize| {
        if let Some(b) = &bar {
            b.set_message(id.to_string());
            b.set_length(total as u64);
            b.set_position(done as u64);
        }
    };
    let report = atlasflow_atlas::ingest(&args.out, &args.inputs, &opts, &mut progress).map_err(|e| (1, e.to_string()))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if !args.quiet {
        for d in &report.datasets {
            eprintln!(
                "dataset {} ({}): {} cells, {} genes in var, {} present, {} non-zeros — \"{}\"",
                d.soma_joinid, d.dataset_id, d.n_cells, d.n_var, d.n_present, d.nnz, d.dataset_title
            );
        }
        eprintln!(
            "{}: {} new genes, {} in var; {:.1} s",
            args.out.display(),
            report.new_genes,
            report.n_genes,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Run SQL over a store and print the result.
pub fn query(args: &QueryArgs) -> Result<(), (u8, String)> {
    let store = AtlasStore::open(&args.store).map_err(|e| (1, e.to_string()))?;
    let batches = store.sql(args.organism.as_deref(), &args.sql).map_err(|e| (1, e.to_string()))?;
    if args.csv {
        let mut buf = Vec::new();
        {
            let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(&mut buf);
            for b in &batches {
                w.write(b).map_err(|e| (1, e.to_string()))?;
            }
        }
        crate::emit(&String::from_utf8_lossy(&buf));
    } else {
        let text = arrow::util::pretty::pretty_format_batches(&batches).map_err(|e| (1, e.to_string()))?;
        let mut o = String::new();
        let _ = writeln!(o, "{text}");
        let n: usize = batches.iter().map(|b| b.num_rows()).sum();
        let _ = writeln!(o, "{n} row{}", if n == 1 { "" } else { "s" });
        crate::emit(&o);
    }
    Ok(())
}

/// Describe an h5ad file or a store.
pub fn inspect(args: &InspectArgs) -> Result<(), (u8, String)> {
    if atlasflow_atlas::is_url(&args.path.to_string_lossy()) {
        let s = crate::soma_inspect::inspect(&args.path).map_err(|e| (1, e))?;
        crate::emit(&s);
        return Ok(());
    }
    if !args.path.is_dir() {
        let s = atlasflow_io::inspect_h5ad(&args.path).map_err(|e| (1, e.to_string()))?;
        crate::emit(&s.to_string());
        return Ok(());
    }
    if atlasflow_atlas::layout::is_tiledb_soma(&args.path) {
        let s = crate::soma_inspect::inspect(&args.path).map_err(|e| (1, e))?;
        crate::emit(&s);
        return Ok(());
    }
    let store = AtlasStore::open(&args.path).map_err(|e| (1, e.to_string()))?;
    let mut o = String::new();
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    let _ = writeln!(o, "atlas store {} ({:.1} MiB)", args.path.display(), mib(dir_bytes(&args.path)));
    let _ = writeln!(o, "{} datasets", store.datasets().len());
    for org in store.organisms() {
        let s = store.sizes(&org).map_err(|e| (1, e.to_string()))?;
        let _ = writeln!(o, 
            "\n{org}: {} cells × {} genes, {} non-zeros (density {:.2}%), {:.1} MiB",
            s.cells,
            s.genes,
            s.nnz,
            if s.cells * s.genes > 0 { 100.0 * s.nnz as f64 / (s.cells as f64 * s.genes as f64) } else { 0.0 },
            mib(s.bytes)
        );
        let cols = store.obs_schema(&org).map_err(|e| (1, e.to_string()))?;
        let names: Vec<String> = cols.fields().iter().map(|f| format!("{} ({})", f.name(), short_type(f.data_type()))).collect();
        let _ = writeln!(o, "  obs columns: {}", names.join(", "));
        let _ = writeln!(o, "  datasets:");
        for d in store.datasets_of(&org) {
            let _ = writeln!(o, "    {:>3}  {:<28} {:>9} cells  {}", d.soma_joinid, d.dataset_id, d.dataset_total_cell_count, d.dataset_title);
        }
    }
    let _ = writeln!(o, "\ntables for `atlasflow query`:");
    for (name, what) in TABLES {
        let _ = writeln!(o, "  {name:<32} {what}");
    }
    crate::emit(&o);
    Ok(())
}

fn short_type(t: &arrow::datatypes::DataType) -> String {
    use arrow::datatypes::DataType;
    match t {
        DataType::Dictionary(_, _) => "categorical".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        other => other.to_string().to_lowercase(),
    }
}
