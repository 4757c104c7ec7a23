//! Where cells come from: an h5ad file, or the cells a Census-style query selects from an
//! atlas store or a TileDB-SOMA Census.

use std::path::{Path, PathBuf};

use atlasflow_atlas::{AtlasError, CensusReader};
use atlasflow_core::{CellBatch, GeneTable};
use atlasflow_io::H5adReader;

use crate::error::{EngineError, Result};
use crate::spec::{CensusSource, PipelineSpec, SourceSpec};

enum Reader {
    H5ad(H5adReader),
    Census(CensusReader),
}

/// A source of cells that can be read by row range, any number of times.
pub struct Source {
    reader: Reader,
    path: PathBuf,
}

/// An atlas error as the user should see it: a filter that does not fit the store points at
/// its YAML line; anything else names the store.
fn census_error(spec: &PipelineSpec, src: &CensusSource, e: AtlasError) -> EngineError {
    match e {
        AtlasError::Filter { which, source } => {
            let line = if which == "var_filter" { src.var_filter_line } else { src.obs_filter_line };
            EngineError::Spec { file: spec.file.clone(), line, column: 0, message: format!("source.{which}: {source}") }
        }
        AtlasError::H5ad(e) => EngineError::from(e),
        // SOMA errors name the file inside the Census already.
        AtlasError::Soma(e) => EngineError::Input { path: src.uri.clone(), message: format!("cannot read the Census: {e}") },
        // About the store itself: name it once.
        AtlasError::Store { path, message } if path == src.uri => EngineError::Input { path, message },
        other => {
            // Messages that already start with the atlas's location name it once.
            let text = other.to_string();
            let prefix = format!("{}: ", src.uri.display());
            let message = text.strip_prefix(&prefix).map(str::to_string).unwrap_or(text);
            EngineError::Input { path: src.uri.clone(), message }
        }
    }
}

impl Source {
    /// Open an h5ad file.
    pub fn open_h5ad(path: &Path) -> Result<Self> {
        Ok(Source { reader: Reader::H5ad(H5adReader::open(path)?), path: path.to_path_buf() })
    }

    /// Open the pipeline's source; `input` (the `--input` override) replaces the h5ad file,
    /// or, for a census source given a store directory, the store.
    pub fn open(spec: &PipelineSpec, input: Option<&Path>) -> Result<Self> {
        match (&spec.source, input) {
            (source, Some(p)) if p.is_dir() => {
                let is_store = p.join(atlasflow_atlas::layout::MARKER).exists();
                let is_soma = atlasflow_atlas::layout::is_tiledb_soma(p);
                match source {
                    SourceSpec::Census(c) if is_store || is_soma => {
                        Self::open_census(spec, &CensusSource { uri: p.to_path_buf(), ..c.clone() })
                    }
                    SourceSpec::H5ad(_) if is_store || is_soma => Err(EngineError::Input {
                        path: p.to_path_buf(),
                        message: format!(
                            "is {}, but the pipeline's source is an h5ad file; give the pipeline a `census:` source to select cells from it",
                            if is_store { "an atlas store" } else { "a TileDB-SOMA Census" }
                        ),
                    }),
                    _ => Err(EngineError::Input {
                        path: p.to_path_buf(),
                        message: format!(
                            "not an h5ad file: it is a directory, but not an atlas store (no {}) or a TileDB-SOMA Census; --input takes an h5ad file, a store made by `atlasflow ingest`, or a Census",
                            atlasflow_atlas::layout::MARKER
                        ),
                    }),
                }
            }
            (SourceSpec::Census(c), Some(p)) if atlasflow_atlas::is_url(&p.to_string_lossy()) => {
                Self::open_census(spec, &CensusSource { uri: p.to_path_buf(), ..c.clone() })
            }
            (_, Some(p)) => Self::open_h5ad(p),
            (SourceSpec::H5ad(p), None) => Self::open_h5ad(p),
            (SourceSpec::Census(c), None) => Self::open_census(spec, c),
        }
    }

    fn open_census(spec: &PipelineSpec, c: &CensusSource) -> Result<Self> {
        let reader = CensusReader::open(&c.uri, &c.query).map_err(|e| census_error(spec, c, e))?;
        Ok(Source { reader: Reader::Census(reader), path: c.uri.clone() })
    }

    /// Number of cells.
    pub fn n_obs(&self) -> usize {
        match &self.reader {
            Reader::H5ad(r) => r.n_obs(),
            Reader::Census(r) => r.n_obs(),
        }
    }

    /// The genes, in X column order.
    pub fn genes(&self) -> &GeneTable {
        match &self.reader {
            Reader::H5ad(r) => r.genes(),
            Reader::Census(r) => r.genes(),
        }
    }

    /// Non-zeros per cell, for cutting granules.
    pub fn row_nnz(&self) -> Result<Vec<u64>> {
        match &self.reader {
            Reader::H5ad(r) => Ok(r.row_nnz(0, r.n_obs())?),
            Reader::Census(r) => Ok(r.row_nnz().to_vec()),
        }
    }

    fn read_block(&self, start: usize, end: usize) -> Result<CellBatch> {
        match &self.reader {
            Reader::H5ad(r) => Ok(r.read_cells(start, end)?),
            Reader::Census(r) => {
                r.read(start, end).map_err(|e| EngineError::Input { path: self.path.clone(), message: e.to_string() })
            }
        }
    }

    /// Cells `start..end`, read in blocks of at most `block` cells.
    pub fn read(&self, start: usize, end: usize, block: usize) -> Result<CellBatch> {
        let block = block.max(1);
        if end - start <= block {
            return self.read_block(start, end);
        }
        let mut parts = Vec::new();
        let mut a = start;
        while a < end {
            let b = (a + block).min(end);
            parts.push(self.read_block(a, b)?);
            a = b;
        }
        CellBatch::concat(&parts)
            .map_err(|e| EngineError::Input { path: self.path.clone(), message: format!("cannot join read blocks: {e}") })
    }

    /// The file (h5ad) or directory (store) read.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
