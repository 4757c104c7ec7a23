//! Damaged input never panics: truncated files give errors naming the file (or, for files
//! the read does not need, the same result as before); flipped bytes give errors or
//! values, never a panic; unknown format versions and filters are refused by name.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use atlasflow_soma::tile::{decode_generic_tile, encode_generic_tile_unfiltered};
use atlasflow_soma::{LocalStorage, Result, SomaError, SomaObject, Storage, open};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/soma")
}

fn copy_tree(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to);
        } else {
            fs::copy(entry.path(), &to).unwrap();
        }
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            files(&p, out)
        } else {
            out.push(p)
        }
    }
}

/// Opens `path` and everything below it, reading every column of every array (but the
/// bitshuffled one, which this reader refuses by design).
fn read_everything(
    storage: &Arc<dyn Storage>,
    path: &str,
    out: &mut Vec<RecordBatch>,
) -> Result<()> {
    match open(Arc::clone(storage), path)? {
        SomaObject::Group(g) => {
            for name in g.member_names() {
                read_everything(storage, &format!("{path}/{name}"), out)?;
            }
        }
        SomaObject::Array(a) => {
            let cols = a.tiledb().column_names();
            let cols: Vec<&str> = cols
                .iter()
                .map(String::as_str)
                .filter(|c| *c != "f32_bitshuffle")
                .collect();
            out.push(a.read(Some(&cols))?);
        }
    }
    Ok(())
}

/// A copy of the fixture objects at `paths` in a temporary directory.
fn scratch(paths: &[&str]) -> (tempfile::TempDir, Arc<dyn Storage>) {
    let dir = tempfile::tempdir().unwrap();
    for p in paths {
        copy_tree(&fixtures().join(p), &dir.path().join(p));
    }
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir.path()));
    (dir, storage)
}

fn read_all(storage: &Arc<dyn Storage>, paths: &[&str]) -> Result<Vec<RecordBatch>> {
    let mut out = Vec::new();
    for p in paths {
        read_everything(storage, p, &mut out)?;
    }
    Ok(out)
}

const TREES: &[&str] = &[
    "tiles",
    "census/census_data/homo_sapiens/ms/RNA/X",
    "experiment/obs",
    "filters",
];

/// Applies `damage` to every file of every tree in turn (restoring it after), reading
/// the damaged tree each time; `check` judges each outcome.
fn damage_each_file(
    trees: &[&str],
    mut damage: impl FnMut(&[u8]) -> Vec<Vec<u8>>,
    mut check: impl FnMut(&Path, &Result<Vec<RecordBatch>>, &[RecordBatch]),
) -> usize {
    let (dir, storage) = scratch(trees);
    let mut cases = 0;
    for tree in trees {
        let baseline = read_all(&storage, &[tree]).unwrap();
        let mut all = Vec::new();
        files(&dir.path().join(tree), &mut all);
        for file in all {
            let original = fs::read(&file).unwrap();
            for bytes in damage(&original) {
                fs::write(&file, &bytes).unwrap();
                cases += 1;
                check(&file, &read_all(&storage, &[tree]), &baseline);
            }
            fs::write(&file, &original).unwrap();
        }
    }
    cases
}

#[test]
fn truncated_files_give_errors_naming_the_file() {
    let mut failures = Vec::new();
    let cases = damage_each_file(
        TREES,
        |original| {
            let n = original.len();
            let mut lengths = vec![
                0,
                1,
                7,
                8,
                n / 3,
                n / 2,
                n.saturating_sub(9),
                n.saturating_sub(1),
            ];
            lengths.sort_unstable();
            lengths.dedup();
            lengths
                .into_iter()
                .filter(|&l| l < n)
                .map(|l| original[..l].to_vec())
                .collect()
        },
        |file, result, baseline| {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let in_commits = file.parent().is_some_and(|p| p.ends_with("__commits"));
            match result {
                Err(e) if e.to_string().contains(&name) => {}
                Err(e) => failures.push(format!("{name}: error does not name the file: {e}")),
                Ok(batches) if batches.as_slice() == baseline || in_commits => {}
                Ok(_) => {
                    failures.push(format!("{name}: a truncated copy read with different data"))
                }
            }
        },
    );
    assert!(cases > 500, "only {cases} cases");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn flipped_bytes_never_panic() {
    let mut errors = 0;
    let cases = damage_each_file(
        &["tiles", "experiment/obs"],
        |original| {
            let n = original.len();
            (0..n)
                .step_by((n / 16).max(1))
                .map(|pos| {
                    let mut bytes = original.to_vec();
                    bytes[pos] ^= 0xA5;
                    bytes
                })
                .collect()
        },
        |_, result, _| errors += usize::from(result.is_err()),
    );
    assert!(
        errors > cases / 4,
        "only {errors} of {cases} flips were noticed"
    );
}

/// The path of the only schema file of the array at `array`.
fn schema_file(root: &Path, array: &str) -> PathBuf {
    let mut all: Vec<PathBuf> = fs::read_dir(root.join(array).join("__schema"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    all.sort();
    all.pop().unwrap()
}

fn patch_schema(root: &Path, array: &str, patch: impl FnOnce(&mut Vec<u8>)) -> String {
    let file = schema_file(root, array);
    let mut raw = decode_generic_tile(&fs::read(&file).unwrap(), "schema").unwrap();
    patch(&mut raw);
    fs::write(&file, encode_generic_tile_unfiltered(&raw, 22)).unwrap();
    file.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn an_unfiltered_schema_reads_like_the_original() {
    let (dir, storage) = scratch(&["tiles"]);
    let before = read_all(&storage, &["tiles"]).unwrap();
    patch_schema(dir.path(), "tiles/X", |_| {});
    assert_eq!(read_all(&storage, &["tiles"]).unwrap(), before);
}

#[test]
fn unknown_schema_versions_are_refused_by_name() {
    for version in [21u32, 24, 99] {
        let (dir, storage) = scratch(&["tiles"]);
        let name = patch_schema(dir.path(), "tiles/X", |raw| {
            raw[..4].copy_from_slice(&version.to_le_bytes())
        });
        let err = read_all(&storage, &["tiles"]).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, SomaError::UnsupportedVersion { version: v, .. } if v == version),
            "{msg}"
        );
        assert!(
            msg.contains(&name) && msg.contains(&version.to_string()),
            "{msg}"
        );
    }
    // 23 is accepted.
    let (dir, storage) = scratch(&["tiles"]);
    let before = read_all(&storage, &["tiles"]).unwrap();
    patch_schema(dir.path(), "tiles/X", |raw| {
        raw[..4].copy_from_slice(&23u32.to_le_bytes())
    });
    assert_eq!(read_all(&storage, &["tiles"]).unwrap(), before);
}

/// Rewrites the footer of every fragment of `array` with `version`; for 23, adds an
/// optional section (which a reader must skip).
fn patch_footers(root: &Path, array: &str, version: u32) {
    for entry in fs::read_dir(root.join(array).join("__fragments")).unwrap() {
        let file = entry.unwrap().path().join("__fragment_metadata.tdb");
        let bytes = fs::read(&file).unwrap();
        let n = bytes.len();
        let len = u64::from_le_bytes(bytes[n - 8..].try_into().unwrap()) as usize;
        let start = n - 8 - len;
        let mut footer = bytes[start..n - 8].to_vec();
        footer[..4].copy_from_slice(&version.to_le_bytes());
        if version >= 23 {
            footer.extend_from_slice(&1u32.to_le_bytes());
            footer.extend_from_slice(&7u64.to_le_bytes());
            footer.extend_from_slice(&3u32.to_le_bytes());
            footer.extend_from_slice(b"abc");
        }
        let mut out = bytes[..start].to_vec();
        out.extend_from_slice(&footer);
        out.extend_from_slice(&(footer.len() as u64).to_le_bytes());
        fs::write(&file, out).unwrap();
    }
}

#[test]
fn fragment_versions_are_checked_and_v23_sections_skipped() {
    let (dir, storage) = scratch(&["tiles"]);
    let before = read_all(&storage, &["tiles"]).unwrap();
    patch_footers(dir.path(), "tiles/X", 23);
    assert_eq!(read_all(&storage, &["tiles"]).unwrap(), before);
    patch_footers(dir.path(), "tiles/X", 30);
    let err = read_all(&storage, &["tiles"]).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, SomaError::UnsupportedVersion { version: 30, .. }),
        "{msg}"
    );
    assert!(msg.contains("__fragment_metadata.tdb"), "{msg}");
}

#[test]
fn unknown_filter_types_are_refused_by_name() {
    let (dir, storage) = scratch(&["tiles"]);
    patch_schema(dir.path(), "tiles/X", |raw| {
        // The attribute soma_data: name (u32 length + bytes), datatype u8, cell value
        // count u32, then its pipeline: max chunk u32, filter count u32, first filter type.
        let needle = [&9u32.to_le_bytes()[..], b"soma_data"].concat();
        let at = raw
            .windows(needle.len())
            .position(|w| w == needle.as_slice())
            .unwrap();
        let filter_type = at + needle.len() + 1 + 4 + 4 + 4;
        assert_eq!(raw[filter_type], 9, "BYTESHUFFLE expected first");
        raw[filter_type] = 99;
    });
    let err = read_all(&storage, &["tiles"]).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SomaError::UnsupportedFilter { .. }), "{msg}");
    assert!(
        msg.contains("unknown filter type 99") && msg.contains("a0.tdb"),
        "{msg}"
    );
}

/// Copies `src` to `dst` leaving out empty directories, as a git checkout does.
fn copy_like_git(src: &Path, dst: &Path) -> bool {
    let mut any = false;
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            any |= copy_like_git(&entry.path(), &to);
        } else {
            fs::create_dir_all(dst).unwrap();
            fs::copy(entry.path(), &to).unwrap();
            any = true;
        }
    }
    any
}

#[test]
fn a_checkout_without_empty_directories_reads_the_same() {
    let trees = &["census", "tiles", "experiment"];
    let (_dir, storage) = scratch(trees);
    let before = read_all(&storage, trees).unwrap();
    let bare = tempfile::tempdir().unwrap();
    for t in trees {
        copy_like_git(&fixtures().join(t), &bare.path().join(t));
    }
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(bare.path()));
    assert_eq!(read_all(&storage, trees).unwrap(), before);
}

/// Range reads, DataFrame blocks and X bands of every array under `path`: errors are
/// returned, never panics. Returns how many reads failed.
fn range_read_everything(storage: &Arc<dyn Storage>, path: &str) -> usize {
    use atlasflow_soma::Coords;
    let obj = match open(Arc::clone(storage), path) {
        Ok(o) => o,
        Err(_) => return 1,
    };
    match obj {
        SomaObject::Group(g) => g
            .member_names()
            .iter()
            .map(|name| range_read_everything(storage, &format!("{path}/{name}")))
            .sum(),
        SomaObject::Array(a) => {
            let mut failed = 0;
            let cols = a.tiledb().column_names();
            let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
            failed += usize::from(
                a.read_coords(Some(&cols), &Coords::ranges([(3, 40), (100, 130)]))
                    .is_err(),
            );
            if let Ok(blocks) = a.blocks(Some(&cols), Coords::points([0, 7, 70, 170, 2100]), 50) {
                failed += blocks.filter(|b| b.is_err()).count();
            } else {
                failed += 1;
            }
            if let Ok(x) = a.x_reader() {
                failed += x
                    .bands(Coords::all(), Some(700))
                    .filter(|b| b.is_err())
                    .count();
            }
            failed
        }
    }
}

#[test]
fn damaged_files_never_panic_range_reads_or_bands() {
    let trees = ["tiles/X", "tiles/df", "bands"];
    let (dir, storage) = scratch(&trees);
    let (mut cases, mut noticed) = (0, 0);
    for tree in trees {
        assert_eq!(range_read_everything(&storage, tree), 0, "{tree} reads");
        let mut all = Vec::new();
        files(&dir.path().join(tree), &mut all);
        for file in all {
            let original = fs::read(&file).unwrap();
            let n = original.len();
            let mut damaged: Vec<Vec<u8>> = (0..n)
                .step_by((n / 6).max(1))
                .map(|pos| {
                    let mut bytes = original.clone();
                    bytes[pos] ^= 0x5A;
                    bytes
                })
                .collect();
            damaged.push(original[..n / 2].to_vec());
            for bytes in damaged {
                fs::write(&file, &bytes).unwrap();
                cases += 1;
                noticed += usize::from(range_read_everything(&storage, tree) > 0);
            }
            fs::write(&file, &original).unwrap();
        }
    }
    assert!(
        noticed > cases / 4,
        "only {noticed} of {cases} damages were noticed"
    );
}
