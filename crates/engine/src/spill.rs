//! Spills: the stream at one point of a pass, saved so later passes start there instead of
//! re-reading the source and replaying every map before it.
//!
//! The runner spills when a map has just cut the genes to at most a quarter of the source's
//! (the highly-variable-gene subset): the stream there is small, and the passes after it
//! (PCA's fit, the final write) then read the spill and replay only what follows. Granules
//! are kept one Arrow IPC batch each, so results are the same bits as a replay. The file
//! comes from DataFusion's disk manager and is deleted when the run ends.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::sync::Arc;

use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use atlasflow_core::CellBatch;
use datafusion_execution::disk_manager::DiskManager;
use datafusion_execution::SpillFile;

use crate::error::{EngineError, Result};

/// Largest share of the source's genes after which a spill pays off.
pub const MAX_GENE_FRACTION: f64 = 0.25;

/// A finished spill: the stream after the first `skip` operators of the pass that wrote it.
pub struct Spill {
    file: Arc<dyn SpillFile>,
    /// How many leading operators of a pass the spill replaces.
    pub skip: usize,
    /// Cells in and out of each skipped operator (for the run record and empty checks).
    pub cells: Vec<(u64, u64)>,
    /// Bytes on disk.
    pub bytes: u64,
    /// Granules written.
    pub granules: usize,
}

/// Writes granules to a spill, in order.
pub struct SpillWriter {
    file: Arc<dyn SpillFile>,
    writer: Option<StreamWriter<BufWriter<File>>>,
    skip: usize,
    granules: usize,
}

/// An error of a spill file, naming it (or, before it exists, the spill directory: $TMPDIR).
fn spill_err(file: Option<&Arc<dyn SpillFile>>, what: &str, e: impl std::fmt::Display) -> EngineError {
    let path = file.and_then(|f| f.path().map(std::path::Path::to_path_buf)).unwrap_or_else(std::env::temp_dir);
    EngineError::Output { path, message: format!("spill file: {what}: {e}") }
}

impl SpillWriter {
    /// A new spill file from the disk manager, for the stream after `skip` operators.
    pub fn create(disk: &Arc<DiskManager>, skip: usize) -> Result<Self> {
        let file = disk.create_tmp_file("atlasflow spill").map_err(|e| spill_err(None, "create", e))?;
        Ok(SpillWriter { file, writer: None, skip, granules: 0 })
    }

    /// Append one granule.
    pub fn write(&mut self, batch: &CellBatch) -> Result<()> {
        let rb = batch.record_batch();
        if self.writer.is_none() {
            let path = self.file.path().ok_or_else(|| spill_err(Some(&self.file), "create", "not a local file"))?;
            let f = File::create(path).map_err(|e| spill_err(Some(&self.file), "create (is the disk full?)", e))?;
            self.writer = Some(StreamWriter::try_new(BufWriter::new(f), &rb.schema()).map_err(|e| spill_err(Some(&self.file), "write (is the disk full?)", e))?);
        }
        if let Some(w) = self.writer.as_mut() {
            w.write(rb).map_err(|e| spill_err(Some(&self.file), "write (is the disk full?)", e))?;
        }
        self.granules += 1;
        Ok(())
    }

    /// Close the file.
    pub fn finish(mut self, cells: Vec<(u64, u64)>) -> Result<Spill> {
        if let Some(mut w) = self.writer.take() {
            w.finish().map_err(|e| spill_err(Some(&self.file), "finish (is the disk full?)", e))?;
        }
        let bytes = self.file.path().and_then(|p| std::fs::metadata(p).ok()).map_or(0, |m| m.len());
        Ok(Spill { file: self.file, skip: self.skip, cells, bytes, granules: self.granules })
    }
}

impl Spill {
    /// Read the granules back, in order.
    pub fn read(&self) -> Result<impl Iterator<Item = Result<CellBatch>>> {
        let path = self.file.path().ok_or_else(|| spill_err(Some(&self.file), "read", "not a local file"))?;
        let f = File::open(path).map_err(|e| spill_err(Some(&self.file), "read", e))?;
        let reader = StreamReader::try_new(BufReader::new(f), None).map_err(|e| spill_err(Some(&self.file), "read", e))?;
        let file = Arc::clone(&self.file);
        Ok(reader.map(move |rb| {
            let rb = rb.map_err(|e| spill_err(Some(&file), "read", e))?;
            CellBatch::try_new(rb).map_err(|e| spill_err(Some(&file), "read", e))
        }))
    }
}
