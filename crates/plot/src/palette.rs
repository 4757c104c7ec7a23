//! Choosing the colours of categories as scanpy's `_get_palette` does, and the value to
//! store in `uns["<key>_colors"]`.
//!
//! - A `palette` parameter wins: its colours, cycled to the number of categories, become
//!   the uns entry (hex, as `to_hex` writes them).
//! - Otherwise a valid `uns["<key>_colors"]` with at least as many colours as categories is
//!   used as it is (its first `n` colours); scanpy leaves it unchanged.
//! - Otherwise (missing, too short, or holding a string that is not a colour) the default:
//!   see [`default_palette`].

use atlasflow_core::Uns;

use crate::color::Rgb;
use crate::palettes::{DEFAULT_102, DEFAULT_20, DEFAULT_28, GREY, TAB10};

/// scanpy's `_set_default_colors_for_categorical_obs` for `n` categories: matplotlib's
/// colour cycle (tab10) when it has enough colours (n ≤ 10, as scanpy checks
/// `rcParams["axes.prop_cycle"]` first), then `default_20` (n ≤ 20), `default_28` (≤ 28),
/// `default_102` (≤ 102), else grey for all.
pub fn default_palette(n: usize) -> Vec<Rgb> {
    let table: &[&str] = if n <= TAB10.len() {
        &TAB10
    } else if n <= DEFAULT_20.len() {
        &DEFAULT_20
    } else if n <= DEFAULT_28.len() {
        &DEFAULT_28
    } else if n <= DEFAULT_102.len() {
        &DEFAULT_102
    } else {
        return vec![GREY; n];
    };
    // The tables are valid hex by construction (checked by a test); grey is never reached.
    table.iter().take(n).map(|h| Rgb::parse(h).unwrap_or(GREY)).collect()
}

/// The colours chosen for the categories and the uns `<key>_colors` entry after the plot.
#[derive(Clone, Debug, PartialEq)]
pub struct Palette {
    /// One colour per category, in category order.
    pub colors: Vec<Rgb>,
    /// What `uns["<key>_colors"]` holds after the plot, as scanpy leaves it.
    pub uns_colors: Vec<String>,
}

/// Resolve the colours of `n` categories of obs column `key` from an explicit `palette`
/// (already parsed), the frame's `uns`, or the defaults.
pub fn resolve(key: &str, n: usize, palette: Option<&[Rgb]>, uns: &Uns) -> Palette {
    if let Some(p) = palette.filter(|p| !p.is_empty()) {
        let colors: Vec<Rgb> = (0..n).map(|i| p[i % p.len()]).collect();
        let uns_colors = colors.iter().map(|c| c.to_hex()).collect();
        return Palette { colors, uns_colors };
    }
    if let Some(Uns::StrArray(stored)) = uns.get(&format!("{key}_colors"))
        && stored.len() >= n
        && let Some(parsed) = stored.iter().map(|s| Rgb::parse(s)).collect::<Option<Vec<Rgb>>>()
    {
        return Palette { colors: parsed[..n].to_vec(), uns_colors: stored.clone() };
    }
    let colors = default_palette(n);
    let uns_colors = colors.iter().map(|c| c.to_hex()).collect();
    Palette { colors, uns_colors }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_valid_hex() {
        for t in [&TAB10[..], &DEFAULT_20[..], &DEFAULT_28[..], &DEFAULT_102[..]] {
            for h in t {
                assert!(Rgb::parse(h).is_some(), "{h}");
            }
        }
    }

    #[test]
    fn default_palette_follows_scanpy_thresholds() {
        assert_eq!(default_palette(3)[2].to_hex(), "#2ca02c"); // tab10 green
        assert_eq!(default_palette(11)[2].to_hex(), "#279e68"); // default_20 green
        assert_eq!(default_palette(20).len(), 20);
        assert_eq!(default_palette(21)[0].to_hex(), "#023fa5");
        assert_eq!(default_palette(29)[0].to_hex(), "#ffff00");
        assert_eq!(default_palette(102).len(), 102);
        assert!(default_palette(103).iter().all(|c| *c == GREY));
    }

    #[test]
    fn uns_colors_used_when_long_enough_and_valid() {
        let uns = Uns::map().with("k_colors", Uns::StrArray(vec!["#ff0000".into(), "blue".into(), "#00ff00".into()]));
        let p = resolve("k", 2, None, &uns);
        assert_eq!(p.colors, vec![Rgb([255, 0, 0]), Rgb([0, 0, 255])]);
        assert_eq!(p.uns_colors.len(), 3); // left as it was
        // Too short: defaults.
        let p = resolve("k", 4, None, &uns);
        assert_eq!(p.colors, default_palette(4));
        // Invalid: defaults.
        let bad = Uns::map().with("k_colors", Uns::StrArray(vec!["nocolour".into()]));
        assert_eq!(resolve("k", 1, None, &bad).colors, default_palette(1));
        // Explicit palette wins and cycles.
        let p = resolve("k", 3, Some(&[Rgb([1, 2, 3]), Rgb([4, 5, 6])]), &uns);
        assert_eq!(p.uns_colors, vec!["#010203", "#040506", "#010203"]);
    }
}
