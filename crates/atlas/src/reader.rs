//! [`CensusReader`]: one query, two kinds of atlas — an atlas store (Parquet, built by
//! `atlasflow ingest`) or a TileDB-SOMA Census (a copy of the CELLxGENE Census, or any
//! tree the Census builder's layout) — chosen by what the directory holds, so a pipeline's
//! `census:` source takes either, exactly as `cellxgene_census.open_soma()` takes a uri.

use std::path::Path;

use atlasflow_core::{CellBatch, GeneTable};

use crate::census::{CensusQuery, Selection, StoreReader};
use crate::layout::{self, DatasetRow};
use crate::soma_census::SomaCensusReader;
use crate::Result;

/// Whether an atlas location is a URL (`s3://bucket/census`, `file:///…`) rather than a
/// path; only TileDB-SOMA Censuses are read from URLs.
pub fn is_url(location: &str) -> bool {
    location.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
    })
}

/// The cells and genes a [`CensusQuery`] selects from a store or a SOMA Census, readable by
/// row range from any number of threads.
#[derive(Debug)]
pub enum CensusReader {
    /// From an atlas store.
    Store(StoreReader),
    /// From a TileDB-SOMA Census.
    Soma(SomaCensusReader),
}

impl CensusReader {
    /// Run the query's filters over the atlas at `path` and prepare to stream the selected
    /// cells. A TileDB group or array is read as a SOMA Census; anything else as a store.
    pub fn open(path: &Path, query: &CensusQuery) -> Result<Self> {
        if is_url(&path.to_string_lossy()) || layout::is_tiledb_soma(path) {
            Ok(CensusReader::Soma(SomaCensusReader::open(path, query)?))
        } else {
            Ok(CensusReader::Store(StoreReader::open(path, query)?))
        }
    }

    /// What the query selected: cells, their non-zeros, genes, organism, datasets.
    pub fn selection(&self) -> &Selection {
        match self {
            CensusReader::Store(r) => r.selection(),
            CensusReader::Soma(r) => r.selection(),
        }
    }

    /// Number of selected cells.
    pub fn n_obs(&self) -> usize {
        self.selection().n_obs()
    }

    /// The kept genes, in var soma_joinid order: index `feature_id`, then feature_name,
    /// feature_length, soma_joinid, nnz, n_measured_obs.
    pub fn genes(&self) -> &GeneTable {
        self.selection().genes()
    }

    /// The organism read.
    pub fn organism(&self) -> &str {
        self.selection().organism()
    }

    /// The datasets the selected cells come from.
    pub fn datasets(&self) -> &[DatasetRow] {
        self.selection().datasets()
    }

    /// The selected cells' soma_joinids, ascending.
    pub fn soma_joinids(&self) -> &[i64] {
        self.selection().soma_joinids()
    }

    /// Stored non-zeros of each selected cell, for cutting the stream into granules.
    pub fn row_nnz(&self) -> &[u64] {
        self.selection().row_nnz()
    }

    /// Selected cells `start..end` as a cell batch: `cell_id`, the obs columns, and X
    /// restricted to the kept genes.
    pub fn read(&self, start: usize, end: usize) -> Result<CellBatch> {
        match self {
            CensusReader::Store(r) => r.read(start, end),
            CensusReader::Soma(r) => r.read(start, end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_url;

    #[test]
    fn urls_are_told_from_paths() {
        assert!(is_url("s3://cellxgene-census-public-us-west-2/cell-census/2025-01-30/soma/"));
        assert!(is_url("file:///data/census"));
        assert!(!is_url("data/example/census"));
        assert!(!is_url("/abs/path"));
        assert!(!is_url("odd name://x"));
    }
}
