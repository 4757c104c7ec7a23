//! Reads one SOMA object with the native reader and prints what it holds:
//! `cargo run -p atlasflow-soma --example read_soma -- <root dir> [member/path]`.
//! For a group, its kind, metadata and members; for an array, its kind, shape, fragments,
//! rows and the time the whole read took.

use std::time::Instant;

use atlasflow_soma::{SomaObject, open_local};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = args
        .next()
        .ok_or("usage: read_soma <root dir> [member/path]")?;
    let mut obj = open_local(&root)?;
    if let Some(path) = args.next() {
        obj = obj.into_group()?.open_path(&path)?;
    }
    println!("kind: {:?}", obj.kind());
    for (k, v) in obj.metadata() {
        println!("metadata {k} = {v:?}");
    }
    match obj {
        SomaObject::Group(g) => println!("members: {:?}", g.member_names()),
        SomaObject::Array(a) => {
            let t = a.tiledb();
            println!("shape: {:?}, fragments: {}", a.shape(), t.fragments().len());
            let start = Instant::now();
            let batch = a.read(None)?;
            let secs = start.elapsed().as_secs_f64();
            println!(
                "columns: {:?}",
                batch
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
            );
            println!(
                "rows: {} in {:.3} s ({:.1} M cells/s)",
                batch.num_rows(),
                secs,
                batch.num_rows() as f64 / secs / 1e6
            );
        }
    }
    Ok(())
}
