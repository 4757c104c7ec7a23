//! The plot as a global stage, for pipelines: draws the frame to a file and returns the
//! `uns["<color>_colors"]` entry scanpy would leave behind.

use std::path::PathBuf;

use atlasflow_core::{CellFrame, FrameKey, GlobalResult, GlobalStage, Result, Uns};

use crate::output::Format;
use crate::params::PlotParams;
use crate::plot::{find_basis, plot_embedding};

/// `sc.pl.embedding(..., save=path)` as a stage.
#[derive(Clone, Debug, PartialEq)]
pub struct Plot {
    /// The plot parameters.
    pub params: PlotParams,
    /// The output file (`.png` or `.svg`).
    pub path: PathBuf,
}

impl Plot {
    /// Validate the parameters and the file extension.
    pub fn new(params: PlotParams, path: impl Into<PathBuf>) -> Result<Plot> {
        let path = path.into();
        params.validate()?;
        Format::from_path(&path)?;
        Ok(Plot { params, path })
    }

    /// The obsm key read: `basis` as given when it starts with `X_`, else `X_<basis>`
    /// (the frame lookup itself accepts either, as scanpy does).
    fn basis_key(&self) -> String {
        if self.params.basis.starts_with("X_") {
            self.params.basis.clone()
        } else {
            format!("X_{}", self.params.basis)
        }
    }
}

impl GlobalStage for Plot {
    fn reads(&self) -> Vec<FrameKey> {
        let mut r = vec![FrameKey::Obsm(self.basis_key())];
        if let Some(c) = &self.params.color {
            r.push(FrameKey::Obs(c.clone()));
        }
        r
    }

    /// `uns["<color>_colors"]` when colouring (written only for categorical columns).
    fn writes(&self) -> Vec<FrameKey> {
        self.params.color.iter().map(|c| FrameKey::Uns(format!("{c}_colors"))).collect()
    }

    fn memory_bytes(&self, frame: &CellFrame) -> usize {
        // Per cell: the colour value (8), the placed point and its bucket-sorted copy (2 × 16),
        // "on data" medians (8); plus the figure and point layer (3 bytes a pixel each, the
        // figure allowed 1.6 × 1.2 the nominal size for legend and colour bar).
        let px = (self.params.width * self.params.dpi * 1.6) * (self.params.height * self.params.dpi * 1.2);
        frame.n_cells * 48 + (px as usize) * 6
    }

    fn run(&self, frame: &CellFrame) -> Result<GlobalResult> {
        find_basis(frame, &self.params.basis)?;
        let info = plot_embedding(frame, &self.params, &self.path)?;
        let mut out = GlobalResult::default();
        if let Some((key, colors)) = info.uns_colors {
            out.uns.push((key, Uns::StrArray(colors)));
        }
        Ok(out)
    }
}
