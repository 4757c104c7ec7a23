//! Embedding scatter plots (PNG, SVG) coloured by an obs column, rasterised for millions of
//! cells: scanpy's `sc.pl.embedding` / `sc.pl.umap` as a file writer.
//!
//! What follows scanpy 1.11.5 (with matplotlib's default rcParams and a 4×4 inch figure):
//! - colour: categorical columns (Arrow dictionary; strings and booleans as sorted
//!   categories) with scanpy's palettes ([`palette::default_palette`]), an explicit
//!   `palette`, or `uns["<key>_colors"]`; numeric columns with viridis and a colour bar;
//!   missing values in `na_color` ("lightgray") drawn first; no colour → all lightgray;
//! - draw order: `sort_order` as scanpy (high values on top, missing values at the bottom);
//! - marker size `120000 / n_cells` points² by default with scanpy's "." marker (a disc
//!   sqrt(size)/2 points across), at least one pixel;
//! - layout: title (the colour key), axis labels `<BASIS>1`/`<BASIS>2`, no ticks, legend in
//!   the right margin ("right margin", "on data" or "none"), cropped tight as scanpy saves;
//! - PNG, or SVG with the points as an embedded PNG image and everything else vector.
//!
//! Deviations: points smaller than a pixel are drawn as one full pixel (matplotlib draws
//! them faint); text is DejaVu Sans (matplotlib's default) rasterised by ab_glyph, so glyph
//! edges differ slightly from Agg's; colour bar labels follow `ScalarFormatter` except
//! that very large or small magnitudes are written as `1.5e6` on each tick instead of an
//! offset text.
//!
//! Entry points: [`plot_embedding`] (a [`atlasflow_core::CellFrame`] to a file), [`render`]
//! (an embedding and [`Coloring`] to bytes). The engine draws plots as outputs of a step.

pub mod color;
pub mod coloring;
pub mod font;
pub mod layout;
pub mod order;
pub mod output;
pub mod palette;
pub mod palettes;
pub mod params;
pub mod plot;
pub mod points;
pub mod raster;
pub mod scale;
pub mod scene;
pub mod svg;
pub mod ticks;

pub use color::Rgb;
pub use coloring::Coloring;
pub use layout::PixelTransform;
pub use output::Format;
pub use params::{LegendLoc, PlotParams, STAGE, VBound};
pub use plot::{PlotInfo, Rendered, plot_embedding, render};
pub use scale::ColorScale;
