//! The outputs written from the in-memory frame after the stream and the global stages:
//! a Parquet table of obs and embeddings, and embedding plots. (The h5ad output streams X
//! and is finished with the same frame, see `exec`.) Every file goes to a temporary name
//! beside its target and is renamed when complete.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array};
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use atlasflow_core::CellFrame;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::error::{EngineError, Result};
use crate::params::{ParamDoc, Params};
use crate::spec::{OutputSpec, StepSpec};

/// Rows per Parquet row group: bounded memory in readers, few groups for small data.
const ROW_GROUP: usize = 1 << 20;

/// The options of a `plot:` output (scanpy's `sc.pl.embedding` arguments).
pub static PLOT_OPTIONS: &[ParamDoc] = &[
    ParamDoc { name: "basis", default: "umap", doc: "embedding to draw: obsm X_<basis> (or the obsm key itself)" },
    ParamDoc { name: "color", default: "null", doc: "obs column to colour by: categorical (legend, scanpy's palette) or numeric (viridis, colour bar)" },
    ParamDoc { name: "title", default: "the color key", doc: "title above the plot" },
    ParamDoc { name: "size", default: "120000 / n_cells", doc: "point size in points² (matplotlib's s)" },
    ParamDoc { name: "legend_loc", default: "right margin", doc: "right margin, on data or none" },
    ParamDoc { name: "components", default: "[1, 2]", doc: "the two components to draw, 1-based as scanpy's '1,2'" },
    ParamDoc { name: "dpi", default: "100", doc: "dots per inch of a PNG" },
    ParamDoc { name: "width", default: "4", doc: "plot width in inches (without the legend margin)" },
    ParamDoc { name: "height", default: "4", doc: "plot height in inches" },
];

/// Checked plot options.
#[derive(Clone, Debug)]
pub struct PlotOptions {
    /// obsm key (`X_umap` for basis `umap`).
    pub basis: String,
    /// obs column, if any.
    pub color: Option<String>,
    /// Title (None = the colour key).
    pub title: Option<String>,
    /// Point size (None = scanpy's 120000 / n).
    pub size: Option<f64>,
    /// Legend placement.
    pub legend_loc: String,
    /// 0-based components.
    pub components: (usize, usize),
    /// Dots per inch.
    pub dpi: f64,
    /// Inches.
    pub width: f64,
    /// Inches.
    pub height: f64,
}

/// The obsm key scanpy reads for `basis`: `X_<basis>` unless it already is a key.
pub fn obsm_key(basis: &str) -> String {
    if basis.starts_with("X_") { basis.to_string() } else { format!("X_{basis}") }
}

/// Check a `plot:` output's options (at plan time, with the YAML line of each).
pub fn plot_params(o: &OutputSpec, file: &Path) -> Result<PlotOptions> {
    let step = StepSpec {
        id: format!("plot {}", o.path.display()),
        explicit_id: true,
        stage: crate::spec::Located { value: "plot".into(), line: o.line, column: 0 },
        input: None,
        params: o.options.clone(),
        line: o.line,
    };
    let mut p = Params::new(&step, file);
    p.check_known(PLOT_OPTIONS)?;
    let basis = obsm_key(&p.str_opt("basis")?.unwrap_or_else(|| "umap".into()));
    let color = p.str_opt("color")?;
    let title = p.str_opt("title")?;
    let size = p.f64_opt("size")?;
    if let Some(s) = size {
        if !(s > 0.0 && s.is_finite()) {
            return Err(p.error("size", format!("must be a positive number, found {s}")));
        }
    }
    let legend_loc = p.choice("legend_loc", &["right margin", "on data", "none"], "right margin")?;
    let comps = p.usize_list("components", &[1, 2])?;
    let components = match comps.as_slice() {
        [a, b] if *a >= 1 && *b >= 1 && a != b => (a - 1, b - 1),
        _ => return Err(p.error("components", format!("must be two different 1-based components such as [1, 2], found {comps:?}"))),
    };
    let dpi = p.f64_or("dpi", 100.0)?;
    let width = p.f64_or("width", 4.0)?;
    let height = p.f64_or("height", 4.0)?;
    for (name, v, lo, hi) in [("dpi", dpi, 10.0, 1200.0), ("width", width, 0.5, 100.0), ("height", height, 0.5, 100.0)] {
        if !(lo..=hi).contains(&v) {
            return Err(p.error(name, format!("must be in [{lo}, {hi}], found {v}")));
        }
    }
    let ext = o.path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if !matches!(ext.as_deref(), Some("png" | "svg")) {
        return Err(EngineError::Spec { file: file.to_path_buf(), line: o.line, column: 0, message: format!("plot {}: the file must end in .png or .svg", o.path.display()) });
    }
    p.finish(PLOT_OPTIONS)?;
    Ok(PlotOptions { basis, color, title, size, legend_loc, components, dpi, width, height })
}

/// A temporary name beside `path`, removed on drop unless kept.
pub(crate) struct TempOut {
    /// The temporary file.
    pub tmp: PathBuf,
    target: PathBuf,
    done: bool,
}

impl TempOut {
    /// Reserve a temporary name for `path`, creating its directory.
    pub fn new(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| EngineError::Output { path: dir.to_path_buf(), message: format!("cannot create the output directory: {e}") })?;
        }
        let tmp = atlasflow_core::partial::temp_path(path);
        atlasflow_core::partial::remove_stale_temps(path);
        Ok(TempOut { tmp, target: path.to_path_buf(), done: false })
    }
    /// Move the finished file into place.
    pub fn commit(mut self) -> Result<()> {
        std::fs::rename(&self.tmp, &self.target).map_err(|e| EngineError::Output { path: self.target.clone(), message: format!("cannot move the finished file into place: {e}") })?;
        self.done = true;
        Ok(())
    }
}

impl Drop for TempOut {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Write obs and every embedding of `frame` as a Parquet table: `cell_id`, the obs
/// columns as they are (categoricals stay dictionary-encoded, so pandas reads them as
/// categories), then one float32 column per embedding component named as
/// `sc.get.obs_df` does (`X_umap-0`, `X_umap-1`, …).
pub fn write_parquet(frame: &CellFrame, path: &Path) -> Result<()> {
    let out_err = |message: String| EngineError::Output { path: path.to_path_buf(), message };
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for (name, col) in &frame.obs {
        fields.push(Field::new(name, col.data_type().clone(), true));
        cols.push(Arc::clone(col));
    }
    for (key, emb) in &frame.obsm {
        for c in 0..emb.width {
            let v: Float32Array = (0..frame.n_cells).map(|i| emb.values[i * emb.width + c]).collect::<Vec<f32>>().into();
            fields.push(Field::new(format!("{key}-{c}"), arrow::datatypes::DataType::Float32, false));
            cols.push(Arc::new(v));
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), cols).map_err(|e| out_err(format!("cannot assemble the table: {e}")))?;
    let tmp = TempOut::new(path)?;
    let file = File::create(&tmp.tmp).map_err(|e| out_err(format!("cannot create: {e}")))?;
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).set_max_row_group_row_count(Some(ROW_GROUP)).build();
    let mut w = ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| out_err(format!("parquet: {e}")))?;
    let mut at = 0;
    while at < batch.num_rows() {
        let len = ROW_GROUP.min(batch.num_rows() - at);
        w.write(&batch.slice(at, len)).map_err(|e| out_err(format!("parquet: {e}")))?;
        at += len;
    }
    w.close().map_err(|e| out_err(format!("parquet: {e}")))?;
    tmp.commit()
}

/// Draw an embedding plot of `frame` (sc.pl.embedding) and, for a categorical colour,
/// store the palette as uns `<color>_colors` as scanpy does, so that `sc.pl.umap` on the
/// h5ad draws the same colours.
pub fn write_plot(frame: &mut CellFrame, o: &PlotOptions, path: &Path) -> Result<()> {
    use atlasflow_plot::{LegendLoc, PlotParams};
    let legend_loc = LegendLoc::parse(&o.legend_loc).map_err(|e| EngineError::Output { path: path.to_path_buf(), message: e.to_string() })?;
    let params = PlotParams {
        basis: o.basis.clone(),
        color: o.color.clone(),
        title: o.title.clone(),
        size: o.size,
        dimensions: o.components,
        width: o.width,
        height: o.height,
        dpi: o.dpi,
        legend_loc,
        ..PlotParams::default()
    };
    let info = atlasflow_plot::plot_embedding(frame, &params, path)
        .map_err(|e| EngineError::Output { path: path.to_path_buf(), message: format!("plot: {e}") })?;
    if let Some((key, colors)) = info.uns_colors {
        if !matches!(frame.uns, atlasflow_core::Uns::Map(_)) {
            frame.uns = atlasflow_core::Uns::map();
        }
        frame.uns.insert(&key, atlasflow_core::Uns::StrArray(colors));
    }
    Ok(())
}
