//! The atlas-store target: a small valid store in which the fuzz input replaces one file,
//! opened with a Census query and streamed, as a `census:` source is by `atlasflow run`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use atlasflow_atlas::{CensusQuery, CensusReader, GeneSelection};

/// The store's files the input can replace, relative to the store; the first input byte
/// modulo this length picks one.
pub const STORE_FILES: [&str; 9] = [
    "census_data/mus_musculus/obs/part-000000.parquet",
    "census_data/mus_musculus/ms/RNA/X/raw/part-000000.parquet",
    "census_data/mus_musculus/ms/RNA/feature_dataset_presence_matrix/part-000000.parquet",
    "census_data/mus_musculus/ms/RNA/var.parquet",
    "census_info/datasets.parquet",
    "atlasflow-store.json",
    "census_data/mus_musculus/obs/part-000001.parquet",
    "census_data/mus_musculus/ms/RNA/X/raw/part-000001.parquet",
    "census_data/mus_musculus/ms/RNA/feature_dataset_presence_matrix/part-000001.parquet",
];

/// The files of a store: path relative to the store, content.
type StoreFiles = Vec<(PathBuf, Vec<u8>)>;

/// Every file of the tiny store, built once per process.
fn template() -> Option<&'static [(PathBuf, Vec<u8>)]> {
    static T: OnceLock<Option<StoreFiles>> = OnceLock::new();
    T.get_or_init(|| {
        let scratch = tempfile::tempdir().ok()?;
        let store = scratch.path().join("store");
        if let Err(e) = crate::seeds::write_tiny_store(&store, &scratch.path().join("inputs")) {
            // Without a template the target can do nothing; say why once.
            eprintln!("atlasflow-fuzz: cannot build the store template: {e}");
            return None;
        }
        let mut files = Vec::new();
        collect(&store, &store, &mut files).ok()?;
        Some(files)
    })
    .as_deref()
}

fn collect(root: &Path, dir: &Path, out: &mut StoreFiles) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push((rel.to_path_buf(), std::fs::read(&path)?));
        }
    }
    Ok(())
}

/// The query the second input byte picks: the tutorial's (a value filter and the genes the
/// selected dataset measured), one joining the dataset table with a var filter and the genes
/// every dataset has, and one taking every cell and gene with a column list.
fn query(selector: u8) -> CensusQuery {
    let mut q = CensusQuery::default();
    match selector % 3 {
        0 => {
            q.obs_filter = Some("tissue == 'liver'".into());
            q.genes = GeneSelection::DatasetPresence;
        }
        1 => {
            q.organism = Some("Mus musculus".into());
            q.obs_filter = Some("dataset_title in ['Tiny liver example', 'Tiny lung example'] and score >= 0.5".into());
            q.var_filter = Some("feature_length > 850".into());
            q.genes = GeneSelection::DatasetPresenceAll;
        }
        _ => {
            q.obs_columns = Some(vec!["cell_type".into(), "n_genes".into(), "donor_id".into()]);
        }
    }
    q
}

/// Lay the tiny store out in a fresh temporary directory with the file `data[0] %
/// STORE_FILES.len()` replaced by `data[2..]`, open it with the query `data[1]` picks, and
/// read every selected cell in ranges (one cell, blocks of 7, the whole selection). Errors
/// are fine; a panic is a bug.
pub fn atlas_store(data: &[u8]) {
    let (Some(&which), Some(&q), Some(body)) = (data.first(), data.get(1), data.get(2..)) else {
        return;
    };
    let Some(files) = template() else {
        return;
    };
    let Ok(dir) = tempfile::Builder::new().prefix("atlasflow-fuzz-store-").tempdir() else {
        return;
    };
    let target = Path::new(STORE_FILES[usize::from(which) % STORE_FILES.len()]);
    for (rel, bytes) in files {
        let path = dir.path().join(rel);
        if let Some(parent) = path.parent()
            && std::fs::create_dir_all(parent).is_err()
        {
            return;
        }
        let content = if rel == target { body } else { bytes.as_slice() };
        if std::fs::write(&path, content).is_err() {
            return;
        }
    }
    let Ok(reader) = CensusReader::open(dir.path(), &query(q)) else {
        return;
    };
    let n = reader.n_obs();
    let _ = (reader.genes().n_genes(), reader.organism(), reader.datasets().len(), reader.soma_joinids().len(), reader.row_nnz().len());
    let _ = reader.read(0, n.min(1));
    let mut start = 0;
    while start < n {
        let end = (start + 7).min(n);
        if let Ok(batch) = reader.read(start, end) {
            let _ = batch.x();
        }
        start = end;
    }
    let _ = reader.read(0, n);
    let _ = reader.read(n, n + 5);
}
