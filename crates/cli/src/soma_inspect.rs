//! `atlasflow inspect` on a TileDB-SOMA object (a Census, an experiment, one array): what it
//! holds, read with atlasflow's own reader (no TileDB library), as a first look before a
//! pipeline reads from it.

use std::fmt::Write as _;
use std::path::Path;

use atlasflow_soma::{MetadataValue, SomaGroup, SomaObject, open_uri};

/// Deepest group nesting printed (the Census is four levels deep to X's layers).
const MAX_DEPTH: usize = 8;

/// The tree of the SOMA object at `dir` (a directory or an `s3://` URL): every member with
/// its SOMA kind; arrays with their shape, columns and number of fragments; groups with
/// their metadata.
pub fn inspect(dir: &Path) -> Result<String, String> {
    let obj = open_uri(&dir.to_string_lossy()).map_err(|e| e.to_string())?;
    let mut o = String::new();
    let _ = writeln!(o, "TileDB-SOMA object {}", dir.display());
    describe(&mut o, "", &obj, 0).map_err(|e| e.to_string())?;
    Ok(o)
}

fn describe(o: &mut String, name: &str, obj: &SomaObject, depth: usize) -> atlasflow_soma::Result<()> {
    let pad = "  ".repeat(depth);
    let label = if name.is_empty() { ".".to_string() } else { name.to_string() };
    match obj {
        SomaObject::Group(g) => {
            let _ = writeln!(o, "{pad}{label}: {}{}", g.kind().name(), metadata_summary(g));
            if depth < MAX_DEPTH {
                for m in g.member_names() {
                    let child = g.member(m)?;
                    describe(o, m, &child, depth + 1)?;
                }
            }
        }
        SomaObject::Array(a) => {
            let t = a.tiledb();
            let s = t.schema();
            let shape: Vec<String> =
                a.shape().iter().map(|d| d.map_or_else(|| "?".to_string(), |n| n.to_string())).collect();
            let _ = writeln!(
                o,
                "{pad}{label}: {} [{}], {} fragment(s), format version {}",
                a.kind().name(),
                shape.join(" × "),
                t.fragments().len(),
                s.version
            );
            let cols: Vec<String> = s
                .dimensions
                .iter()
                .map(|d| format!("{} ({}, dimension)", d.name, d.datatype.name().to_lowercase()))
                .chain(s.attributes.iter().map(|at| {
                    let kind = match &at.enumeration {
                        Some(_) => "categorical".to_string(),
                        None => at.datatype.name().to_lowercase(),
                    };
                    format!("{} ({kind})", at.name)
                }))
                .collect();
            let _ = writeln!(o, "{pad}  columns: {}", cols.join(", "));
        }
    }
    Ok(())
}

/// The group's metadata other than SOMA's own keys, as ` {key: value, …}`.
fn metadata_summary(g: &SomaGroup) -> String {
    let items: Vec<String> = g
        .metadata()
        .iter()
        .filter(|(k, _)| !k.starts_with("soma_"))
        .map(|(k, v)| format!("{k}: {}", value(v)))
        .collect();
    if items.is_empty() { String::new() } else { format!(" {{{}}}", items.join(", ")) }
}

fn value(v: &MetadataValue) -> String {
    match v {
        MetadataValue::String(s) => s.clone(),
        MetadataValue::Int(x) => join(x),
        MetadataValue::UInt(x) => join(x),
        MetadataValue::Float(x) => join(x),
        MetadataValue::Bool(x) => join(x),
        MetadataValue::Bytes(t, b) => format!("{} bytes of {}", b.len(), t.name()),
    }
}

fn join<T: ToString>(x: &[T]) -> String {
    match x {
        [one] => one.to_string(),
        _ => format!("[{}]", x.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
    }
}
