//! An opaque 8-bit colour, and parsing of the colour strings scanpy accepts in
//! `uns["<key>_colors"]` and `palette` (hex codes and matplotlib's named colours).

use crate::palettes::TAB10;

/// An opaque sRGB colour, 8 bits per channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rgb(pub [u8; 3]);

impl Rgb {
    /// White, the figure and axes background.
    pub const WHITE: Rgb = Rgb([255, 255, 255]);
    /// Black, for text and the frame.
    pub const BLACK: Rgb = Rgb([0, 0, 0]);

    /// `#rrggbb` in lower case, as matplotlib's `to_hex` writes (and scanpy stores).
    pub fn to_hex(self) -> String {
        let [r, g, b] = self.0;
        format!("#{r:02x}{g:02x}{b:02x}")
    }

    /// Parse a colour as matplotlib does for the forms scanpy meets: `#rgb`, `#rrggbb`,
    /// `#rrggbbaa` (alpha dropped: the plot is opaque), CSS4 names ("lightgray"), the
    /// single letters `b g r c m y k w`, `tab:<name>` and grey levels "0.0".."1.0".
    /// Returns None for anything else, as matplotlib's `is_color_like` would be false.
    pub fn parse(s: &str) -> Option<Rgb> {
        let t = s.trim();
        if let Some(hex) = t.strip_prefix('#') {
            return parse_hex(hex);
        }
        let lower = t.to_ascii_lowercase();
        // matplotlib's BASE_COLORS.
        let base = match lower.as_str() {
            "b" => Some([0, 0, 255]),
            "g" => Some([0, 128, 0]),
            "r" => Some([255, 0, 0]),
            "c" => Some([0, 191, 191]),
            "m" => Some([191, 0, 191]),
            "y" => Some([191, 191, 0]),
            "k" => Some([0, 0, 0]),
            "w" => Some([255, 255, 255]),
            _ => None,
        };
        if let Some(c) = base {
            return Some(Rgb(c));
        }
        if let Some(name) = lower.strip_prefix("tab:") {
            const NAMES: [&str; 10] =
                ["blue", "orange", "green", "red", "purple", "brown", "pink", "gray", "olive", "cyan"];
            let i = NAMES.iter().position(|n| *n == name || (name == "grey" && *n == "gray"))?;
            return parse_hex(&TAB10[i][1..]);
        }
        // A grey level as a string in [0, 1].
        if let Ok(v) = lower.parse::<f64>() {
            if (0.0..=1.0).contains(&v) {
                let g = (v * 255.0).round() as u8;
                return Some(Rgb([g, g, g]));
            }
            return None;
        }
        // CSS4 names (matplotlib's CSS4_COLORS are the CSS named colours). Only bare names:
        // csscolorparser also reads `rgb(...)` and the like, which matplotlib does not.
        if !lower.chars().all(|c| c.is_ascii_alphabetic()) {
            return None;
        }
        let c = csscolorparser::parse(&lower).ok()?;
        let [r, g, b, _] = c.to_rgba8();
        Some(Rgb([r, g, b]))
    }
}

/// `rgb`, `rrggbb` or `rrggbbaa` hex digits (alpha dropped).
fn parse_hex(hex: &str) -> Option<Rgb> {
    let digit = |i: usize| u8::from_str_radix(hex.get(i..i + 1)?, 16).ok();
    let pair = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    match hex.len() {
        3 | 4 => Some(Rgb([digit(0)? * 17, digit(1)? * 17, digit(2)? * 17])),
        6 | 8 => Some(Rgb([pair(0)?, pair(2)?, pair(4)?])),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_matplotlib_forms() {
        assert_eq!(Rgb::parse("#1f77b4"), Some(Rgb([0x1f, 0x77, 0xb4])));
        assert_eq!(Rgb::parse("#FFFF00"), Some(Rgb([255, 255, 0])));
        assert_eq!(Rgb::parse("#abc"), Some(Rgb([0xaa, 0xbb, 0xcc])));
        assert_eq!(Rgb::parse("#11223344"), Some(Rgb([0x11, 0x22, 0x33])));
        assert_eq!(Rgb::parse("lightgray"), Some(Rgb([0xd3, 0xd3, 0xd3])));
        assert_eq!(Rgb::parse("grey"), Some(Rgb([0x80, 0x80, 0x80])));
        assert_eq!(Rgb::parse("tab:green"), Some(Rgb([0x2c, 0xa0, 0x2c])));
        assert_eq!(Rgb::parse("k"), Some(Rgb::BLACK));
        assert_eq!(Rgb::parse("0.5"), Some(Rgb([128, 128, 128])));
        assert_eq!(Rgb::parse("notacolour"), None);
        assert_eq!(Rgb::parse("#12345"), None);
        assert_eq!(Rgb::parse("rgb(1,2,3)"), None);
        assert_eq!(Rgb([0x1f, 0x77, 0xb4]).to_hex(), "#1f77b4");
    }
}
