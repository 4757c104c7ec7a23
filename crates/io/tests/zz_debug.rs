use std::path::Path;
use atlasflow_core::GeneTable;
use atlasflow_io::{H5adReader, H5adWriter, XKind};

fn genes() -> GeneTable { GeneTable::from_names(vec!["a".into(), "b".into()]) }
fn write(p: &Path) { H5adWriter::create(p, &genes(), XKind::Csr).unwrap().finish(&atlasflow_core::Uns::map()).unwrap(); }
fn probe(dir: &Path, tag: &str) {
    for i in 0..20 {
        let p = dir.join(format!("probe{tag}{i}.h5ad"));
        write(&p);
        if let Err(e) = hdf5::File::open_rw(&p) { println!("{tag}: LEAK at {i}: {e}"); return; }
    }
    println!("{tag}: fine");
}
#[test]
fn debug_leaks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    probe(d, "base");
    // writer finish
    let p = d.join("w.h5ad"); write(&p); std::fs::remove_file(&p).unwrap(); probe(d, "afterwrite");
    // reader
    let p = d.join("r.h5ad"); write(&p); { let r = H5adReader::open(&p).unwrap(); r.read_cells(0,0).unwrap(); } std::fs::remove_file(&p).unwrap(); probe(d, "afterread");
    // truncated
    let bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/scanpy_pbmc68k_reduced_recovered_counts_700cells.h5ad")).unwrap();
    let p = d.join("t.h5ad"); std::fs::write(&p, &bytes[..bytes.len()/2]).unwrap(); assert!(H5adReader::open(&p).is_err()); std::fs::remove_file(&p).unwrap(); probe(d, "aftertrunc");
    let p = d.join("x.h5ad"); std::fs::write(&p, "abc").unwrap(); assert!(H5adReader::open(&p).is_err()); std::fs::remove_file(&p).unwrap(); probe(d, "aftertext");
    // dropped writer
    let p = d.join("dr.h5ad"); { let _w = H5adWriter::create(&p, &genes(), XKind::Csr).unwrap(); } probe(d, "afterdrop");
    let p = d.join("c.h5ad"); write(&p); { let f = hdf5::File::open_rw(&p).unwrap(); f.close().unwrap(); } { let r = H5adReader::open(&p).unwrap(); drop(r);} std::fs::remove_file(&p).unwrap(); probe(d, "aftertamper");
}
