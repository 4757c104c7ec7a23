//! The h5ad target: a file opened and read the way a run reads it (`atlasflow run` and
//! `explain` through the h5ad source, `atlasflow inspect`, and `ingest`).

use std::io::Write as _;

use atlasflow_io::{H5adReader, inspect_h5ad};

/// Cells per `row_nnz` call: bounded so a file claiming billions of cells costs the reader
/// one window at a time, as the engine's granule planner reads it.
const NNZ_WINDOW: usize = 4096;
/// Cells visited by the `row_nnz` sweep at most: enough for every seed and for anything a
/// mutation makes of them, while a file claiming 2^40 cells still ends quickly.
const MAX_SWEEP: usize = 1 << 16;

/// Write `data` to a temporary `.h5ad` file, then: `inspect_h5ad` (and format its
/// summary); `H5adReader::open`; the gene table's names and numeric columns; the obs
/// columns; uns; `row_nnz` over the cells in windows; `read_cells` on a few ranges (first
/// cell, a middle block, the last cells, an empty range and one past the end); the obsm keys
/// and X's encoding. Errors are fine; a panic is a bug.
pub fn h5ad_reader(data: &[u8]) {
    let Ok(mut file) = tempfile::Builder::new().prefix("atlasflow-fuzz-").suffix(".h5ad").tempfile() else {
        return;
    };
    if file.write_all(data).and_then(|()| file.flush()).is_err() {
        return;
    }
    let path = file.path();
    if let Ok(summary) = inspect_h5ad(path) {
        let _ = summary.to_string();
    }
    let Ok(reader) = H5adReader::open(path) else {
        return;
    };
    let _ = reader.x_encoding();
    let genes = reader.genes();
    for j in 0..genes.n_genes().min(MAX_SWEEP) {
        let _ = genes.name(j);
    }
    let rb = genes.record_batch();
    for field in rb.schema().fields() {
        let _ = genes.f64_column(field.name());
    }
    for (_, column) in reader.obs_columns() {
        let _ = column.len();
    }
    let _ = reader.uns();
    let _ = reader.obsm_keys();
    let n = reader.n_obs();
    let mut start = 0;
    while start < n.min(MAX_SWEEP) {
        let end = (start + NNZ_WINDOW).min(n);
        if reader.row_nnz(start, end).is_err() {
            break;
        }
        start = end;
    }
    let mid = n / 2;
    for (a, b) in [(0, n.min(1)), (mid, (mid + 64).min(n)), (n.saturating_sub(3), n), (mid, mid), (n, n + 1), (0, n.min(512))] {
        if let Ok(batch) = reader.read_cells(a, b) {
            let _ = batch.x();
        }
    }
}
