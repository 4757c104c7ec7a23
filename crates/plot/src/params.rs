//! The parameters of an embedding plot, under scanpy's names (`sc.pl.embedding`), with
//! scanpy's defaults, and their validation.

use atlasflow_core::{Result, StageError};

use crate::color::Rgb;

/// Stage name used in errors.
pub const STAGE: &str = "plot";

/// Where the categorical legend goes (scanpy's `legend_loc`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LegendLoc {
    /// `"right margin"` (scanpy's default): one entry per category right of the axes, one
    /// column up to 14 categories, two up to 30, three beyond.
    #[default]
    RightMargin,
    /// `"on data"`: each category's name in bold at the median of its points.
    OnData,
    /// `"none"` / None: no legend.
    None,
}

impl LegendLoc {
    /// Parse scanpy's spelling: "right margin", "on data", "none" (or an empty string).
    pub fn parse(s: &str) -> Result<LegendLoc> {
        match s.trim().to_ascii_lowercase().as_str() {
            "right margin" => Ok(LegendLoc::RightMargin),
            "on data" => Ok(LegendLoc::OnData),
            "none" | "" => Ok(LegendLoc::None),
            other => Err(StageError::param(
                STAGE,
                "legend_loc",
                format!("'{other}' is not supported; use 'right margin', 'on data' or 'none'"),
            )),
        }
    }
}

/// A bound of the continuous colour scale (scanpy's `vmin` / `vmax`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum VBound {
    /// A value.
    Value(f64),
    /// A percentile of the plotted values in [0, 100] (scanpy's `"p99"` form), computed as
    /// numpy's `nanpercentile` (linear interpolation).
    Percentile(f64),
}

impl VBound {
    /// Parse a number or scanpy's percentile string `"p<q>"`.
    pub fn parse(param: &str, s: &str) -> Result<VBound> {
        let t = s.trim();
        let bad = || StageError::param(STAGE, param, format!("'{s}' is neither a number nor 'p<percentile>'"));
        if let Some(q) = t.strip_prefix('p') {
            let q: f64 = q.parse().map_err(|_| bad())?;
            return Ok(VBound::Percentile(q));
        }
        t.parse::<f64>().map(VBound::Value).map_err(|_| bad())
    }
}

/// Parameters of [`crate::plot_embedding`], named as in scanpy's `sc.pl.embedding`.
#[derive(Clone, Debug, PartialEq)]
pub struct PlotParams {
    /// `basis`: the obsm key, looked up as given and then with an `X_` prefix, as scanpy
    /// does (`"umap"` and `"X_umap"` both find `X_umap`). Axis labels come from it with the
    /// `X_` dropped: "UMAP1"/"UMAP2" for umap, "PC", "tSNE", "DC" as scanpy names them.
    pub basis: String,
    /// `color`: an obs column; None draws every point in `na_color` (lightgray), as scanpy.
    pub color: Option<String>,
    /// `title`: None gives the colour key (scanpy's default), or no title without colour.
    pub title: Option<String>,
    /// `size`: matplotlib's `s` (points²) for scanpy's "." marker, drawn sqrt(size)/2 points
    /// across; None gives scanpy's `120000 / n_cells`. Drawn no smaller than one pixel.
    pub size: Option<f64>,
    /// `dimensions`: the two 0-based embedding columns to plot (scanpy's `dimensions`;
    /// its 1-based `components="2,3"` is `(1, 2)`, see [`PlotParams::parse_components`]).
    pub dimensions: (usize, usize),
    /// Figure width in inches before the tight crop (scanpy's `figsize` default 4×4).
    pub width: f64,
    /// Figure height in inches before the tight crop.
    pub height: f64,
    /// Dots per inch of the output (matplotlib's `figure.dpi`, 100).
    pub dpi: f64,
    /// `legend_loc` for categorical colours.
    pub legend_loc: LegendLoc,
    /// `frameon`: draw the axes frame and the axis labels (scanpy's default true).
    pub frameon: bool,
    /// `palette`: colours for the categories, in category order (cycled when shorter),
    /// overriding `uns["<color>_colors"]`, as scanpy does.
    pub palette: Option<Vec<String>>,
    /// `na_color`: colour of missing values (scanpy's "lightgray").
    pub na_color: String,
    /// `na_in_legend`: list "NA" in the legend when some categorical values are missing.
    pub na_in_legend: bool,
    /// `sort_order`: draw high continuous values on top and missing values below all others.
    pub sort_order: bool,
    /// `groups`: show only these categories; the others are drawn as missing values.
    pub groups: Option<Vec<String>>,
    /// `vmin` of the continuous colour scale; None gives the minimum of the values.
    pub vmin: Option<VBound>,
    /// `vmax` of the continuous colour scale; None gives the maximum of the values.
    pub vmax: Option<VBound>,
    /// `colorbar_loc`: "right" (default) or None for no colour bar.
    pub colorbar_loc: Option<String>,
}

impl Default for PlotParams {
    fn default() -> Self {
        PlotParams {
            basis: "X_umap".to_string(),
            color: None,
            title: None,
            size: None,
            dimensions: (0, 1),
            width: 4.0,
            height: 4.0,
            dpi: 100.0,
            legend_loc: LegendLoc::RightMargin,
            frameon: true,
            palette: None,
            na_color: "lightgray".to_string(),
            na_in_legend: true,
            sort_order: true,
            groups: None,
            vmin: None,
            vmax: None,
            colorbar_loc: Some("right".to_string()),
        }
    }
}

/// The largest figure side in pixels, to refuse sizes that would exhaust memory.
pub const MAX_SIDE_PX: f64 = 20_000.0;

impl PlotParams {
    /// scanpy's 1-based `components` string ("1,2", "2,3") as 0-based `dimensions`.
    pub fn parse_components(s: &str) -> Result<(usize, usize)> {
        let bad = || StageError::param(STAGE, "components", format!("'{s}' is not two 1-based indices like '1,2'"));
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        if parts.len() != 2 {
            return Err(bad());
        }
        let a: usize = parts[0].parse().map_err(|_| bad())?;
        let b: usize = parts[1].parse().map_err(|_| bad())?;
        if a == 0 || b == 0 {
            return Err(bad());
        }
        Ok((a - 1, b - 1))
    }

    /// Check every value, naming the parameter at fault.
    pub fn validate(&self) -> Result<()> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(StageError::param(STAGE, name, format!("must be a positive number, got {v}")))
            }
        };
        if self.basis.is_empty() {
            return Err(StageError::param(STAGE, "basis", "must name an obsm entry"));
        }
        positive("width", self.width)?;
        positive("height", self.height)?;
        positive("dpi", self.dpi)?;
        if let Some(s) = self.size {
            positive("size", s)?;
        }
        for (name, side) in [("width", self.width), ("height", self.height)] {
            if side * self.dpi > MAX_SIDE_PX {
                return Err(StageError::param(
                    STAGE,
                    name,
                    format!("{side} inches at {} dpi exceeds {MAX_SIDE_PX} pixels", self.dpi),
                ));
            }
        }
        self.na_color_rgb()?;
        self.palette_rgb()?;
        for (name, b) in [("vmin", self.vmin), ("vmax", self.vmax)] {
            match b {
                Some(VBound::Percentile(q)) if !(0.0..=100.0).contains(&q) => {
                    return Err(StageError::param(STAGE, name, format!("percentile p{q} is outside [0, 100]")));
                }
                Some(VBound::Value(v)) if !v.is_finite() => {
                    return Err(StageError::param(STAGE, name, format!("must be finite, got {v}")));
                }
                _ => {}
            }
        }
        self.colorbar()?;
        Ok(())
    }

    /// `na_color` parsed.
    pub fn na_color_rgb(&self) -> Result<Rgb> {
        Rgb::parse(&self.na_color).ok_or_else(|| {
            StageError::param(STAGE, "na_color", format!("'{}' is not a colour", self.na_color))
        })
    }

    /// `palette` parsed (None when not given).
    pub fn palette_rgb(&self) -> Result<Option<Vec<Rgb>>> {
        let Some(p) = &self.palette else { return Ok(None) };
        if p.is_empty() {
            return Err(StageError::param(STAGE, "palette", "is empty"));
        }
        p.iter()
            .map(|c| {
                Rgb::parse(c).ok_or_else(|| {
                    StageError::param(STAGE, "palette", format!("'{c}' is not a valid matplotlib color"))
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// Whether to draw the colour bar (`colorbar_loc` "right", or None).
    pub fn colorbar(&self) -> Result<bool> {
        match self.colorbar_loc.as_deref().map(str::trim) {
            None => Ok(false),
            Some(s) if s.eq_ignore_ascii_case("none") || s.is_empty() => Ok(false),
            Some(s) if s.eq_ignore_ascii_case("right") => Ok(true),
            Some(s) => Err(StageError::param(
                STAGE,
                "colorbar_loc",
                format!("'{s}' is not supported; use 'right' or none"),
            )),
        }
    }

    /// The axis label stem scanpy derives from the basis (`_basis2name`), after dropping
    /// an `X_` prefix: umap → "UMAP", tsne → "tSNE", pca → "PC", diffmap → "DC",
    /// draw_graph_fa → "FA", anything else as is.
    pub fn axis_name(&self) -> String {
        let b = self.basis.strip_prefix("X_").unwrap_or(&self.basis);
        match b {
            "diffmap" => "DC".to_string(),
            "tsne" => "tSNE".to_string(),
            "umap" => "UMAP".to_string(),
            "pca" => "PC".to_string(),
            _ if b.contains("draw_graph") => b.replace("draw_graph_", "").to_uppercase(),
            _ => b.to_string(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_names() {
        let p = PlotParams::default();
        p.validate().unwrap();
        assert_eq!(p.axis_name(), "UMAP");
        let q = PlotParams { basis: "draw_graph_fa".into(), ..PlotParams::default() };
        assert_eq!(q.axis_name(), "FA");
        let q = PlotParams { basis: "X_pca".into(), ..PlotParams::default() };
        assert_eq!(q.axis_name(), "PC");
        assert_eq!(PlotParams::parse_components("2, 3").unwrap(), (1, 2));
        assert!(PlotParams::parse_components("0,1").is_err());
        assert_eq!(LegendLoc::parse("on data").unwrap(), LegendLoc::OnData);
        assert!(LegendLoc::parse("upper left").is_err());
        assert_eq!(VBound::parse("vmax", "p99.5").unwrap(), VBound::Percentile(99.5));
        assert_eq!(VBound::parse("vmax", "3").unwrap(), VBound::Value(3.0));
    }

    #[test]
    fn bad_values_name_the_parameter() {
        let cases = [
            (PlotParams { dpi: 0.0, ..PlotParams::default() }, "dpi"),
            (PlotParams { size: Some(f64::NAN), ..PlotParams::default() }, "size"),
            (PlotParams { na_color: "nope".into(), ..PlotParams::default() }, "na_color"),
            (PlotParams { palette: Some(vec!["#zz0000".into()]), ..PlotParams::default() }, "palette"),
            (PlotParams { vmax: Some(VBound::Percentile(120.0)), ..PlotParams::default() }, "vmax"),
            (PlotParams { colorbar_loc: Some("left".into()), ..PlotParams::default() }, "colorbar_loc"),
            (PlotParams { width: 1000.0, ..PlotParams::default() }, "width"),
        ];
        for (p, name) in cases {
            let e = p.validate().unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
    }
}
