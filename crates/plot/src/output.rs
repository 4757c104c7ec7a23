//! Output formats, PNG encoding and the atomic file write.

use std::io::Write;
use std::path::Path;

use atlasflow_core::{Result, StageError};

use crate::params::STAGE;
use crate::scene::Image;

/// The file formats written, chosen by the file extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `.png`: the whole figure rasterised.
    Png,
    /// `.svg`: vector frame, legend and text; the points as an embedded PNG.
    Svg,
}

impl Format {
    /// The format of `path` by its extension (case-insensitive); any other is an error
    /// naming the path.
    pub fn from_path(path: &Path) -> Result<Format> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("png") => Ok(Format::Png),
            Some("svg") => Ok(Format::Svg),
            _ => Err(StageError::param(
                STAGE,
                "path",
                format!("cannot write '{}': the extension must be .png or .svg", path.display()),
            )),
        }
    }
}

/// `img` as an 8-bit RGB PNG, recording `dpi` (the pHYs chunk, as matplotlib writes it)
/// when given.
pub fn encode_png(img: &Image, dpi: Option<f64>) -> Result<Vec<u8>> {
    let err = |e: png::EncodingError| StageError::data(STAGE, format!("PNG encoding failed: {e}"));
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, img.width as u32, img.height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        if let Some(dpi) = dpi {
            let ppm = (dpi / 0.0254).round() as u32;
            enc.set_pixel_dims(Some(png::PixelDimensions { xppu: ppm, yppu: ppm, unit: png::Unit::Meter }));
        }
        let mut w = enc.write_header().map_err(err)?;
        w.write_image_data(&img.data).map_err(err)?;
        w.finish().map_err(err)?;
    }
    Ok(out)
}

/// Write `bytes` to `path` atomically: into a temporary file in the same directory, renamed
/// over `path` once complete, so a reader never sees a partial file and an error leaves
/// nothing behind (see `atlasflow_core::partial`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |what: &str, e: std::io::Error| {
        StageError::data(STAGE, format!("cannot write '{}': {what}: {e}", path.display()))
    };
    let tmp = atlasflow_core::partial::temp_path(path);
    atlasflow_core::partial::remove_stale_temps(path);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(|e| io("creating a temporary file", e))?;
        f.write_all(bytes).map_err(|e| io("writing", e))?;
        f.sync_all().map_err(|e| io("syncing", e))?;
        std::fs::rename(&tmp, path).map_err(|e| io("renaming into place", e))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_extension() {
        assert_eq!(Format::from_path(Path::new("a/b.PNG")).unwrap(), Format::Png);
        assert_eq!(Format::from_path(Path::new("b.svg")).unwrap(), Format::Svg);
        let e = Format::from_path(Path::new("out/umap.pdf")).unwrap_err().to_string();
        assert!(e.contains("out/umap.pdf"), "{e}");
        assert!(Format::from_path(Path::new("noext")).is_err());
    }
}
