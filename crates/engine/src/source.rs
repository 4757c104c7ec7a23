//! Where cells come from: an h5ad file today; the Parquet atlas store and SOMA later.

use std::path::{Path, PathBuf};

use atlasflow_core::{CellBatch, GeneTable};
use atlasflow_io::H5adReader;

use crate::error::Result;

/// A source of cells that can be read by row range, any number of times.
pub struct Source {
    reader: H5adReader,
    path: PathBuf,
}

impl Source {
    /// Open an h5ad file.
    pub fn open_h5ad(path: &Path) -> Result<Self> {
        Ok(Source { reader: H5adReader::open(path)?, path: path.to_path_buf() })
    }

    /// Number of cells.
    pub fn n_obs(&self) -> usize {
        self.reader.n_obs()
    }

    /// The genes, in X column order.
    pub fn genes(&self) -> &GeneTable {
        self.reader.genes()
    }

    /// Non-zeros per cell, for cutting granules.
    pub fn row_nnz(&self) -> Result<Vec<u64>> {
        Ok(self.reader.row_nnz(0, self.n_obs())?)
    }

    /// Cells `start..end`, read in blocks of at most `block` cells.
    pub fn read(&self, start: usize, end: usize, block: usize) -> Result<CellBatch> {
        let block = block.max(1);
        if end - start <= block {
            return Ok(self.reader.read_cells(start, end)?);
        }
        let mut parts = Vec::new();
        let mut a = start;
        while a < end {
            let b = (a + block).min(end);
            parts.push(self.reader.read_cells(a, b)?);
            a = b;
        }
        CellBatch::concat(&parts)
            .map_err(|e| crate::error::EngineError::Input { path: self.path.clone(), message: format!("cannot join read blocks: {e}") })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
