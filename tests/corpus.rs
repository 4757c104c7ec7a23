//! A corpus of broken and hostile inputs (issue #6, part 1), each with the error it must
//! give. Every case builds its bad input in a temporary directory — a copy of
//! `tests/data/synth/input.h5ad` modified with the `hdf5` crate, or the tutorial pipeline's
//! YAML modified as text — runs the `atlasflow` binary on it and checks:
//!
//! - the exit code is non-zero,
//! - stderr holds the words naming the problem and its place (the file name, the HDF5 path
//!   or field, or the YAML `file:LINE:`),
//! - nothing panicked,
//! - no file was left in the `--out` directory.
//!
//! A few inputs look hostile but are valid, and must succeed (marked [`Want::Success`]):
//! unsorted column indices (anndata/scipy accept them; the reader sorts them), non-integer
//! counts (scanpy accepts them and gene_length_normalize divides any non-negative values),
//! and duplicate cell or gene ids (anndata only warns "… names are not unique").
//!
//! The table is [`CASES`]; each case has a doc comment saying what it is.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use hdf5::types::VarLenUnicode;
use support::data_dir;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pipeline() -> PathBuf {
    repo().join("pipelines/census-smartseq2-liver.yaml")
}

fn synth() -> PathBuf {
    data_dir("synth").join("input.h5ad")
}

/// What a case must give.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// Exit ≠ 0, stderr contains every string, no panic, nothing in `--out`.
    Error(&'static [&'static str]),
    /// Exit 0 and the output written: the input is odd but valid.
    Success,
}

/// One bad input.
struct Case {
    /// Also the stem of the file the case writes, so messages can be checked for it.
    name: &'static str,
    /// Builds the input in the case's directory and returns it: an `.h5ad` (or anything not
    /// ending in `.yaml`), run with the tutorial pipeline as `--input`; or a `.yaml`, run as
    /// the pipeline (its source is the synthetic input).
    make: fn(&Path) -> PathBuf,
    /// Extra arguments of `atlasflow run`.
    args: &'static [&'static str],
    /// The outcome.
    expect: Want,
}

// ---------------------------------------------------------------------------------------
// Building inputs.

/// A copy of the synthetic input named `<name>.h5ad` in `dir`.
fn copy_input(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(format!("{name}.h5ad"));
    std::fs::copy(synth(), &p).unwrap();
    p
}

/// A copy of the synthetic input, modified by `f` with the file open read-write.
fn edit(dir: &Path, name: &str, f: impl FnOnce(&hdf5::File)) -> PathBuf {
    let p = copy_input(dir, name);
    let file = hdf5::File::open_rw(&p).unwrap();
    f(&file);
    file.flush().unwrap();
    p
}

/// A copy of the synthetic input cut to `len` bytes (negative: that many bytes short).
fn truncated(dir: &Path, name: &str, len: i64) -> PathBuf {
    let src = std::fs::read(synth()).unwrap();
    let n = if len < 0 { (src.len() as i64 + len) as usize } else { len as usize };
    let p = dir.join(format!("{name}.h5ad"));
    std::fs::write(&p, &src[..n]).unwrap();
    p
}

/// Replace dataset `path` by a 1-D dataset of `values` (any type and length).
fn replace<T: hdf5::H5Type>(f: &hdf5::File, path: &str, values: &[T]) {
    let (parent, name) = path.rsplit_once('/').unwrap();
    let g = if parent.is_empty() { f.group("/").unwrap() } else { f.group(parent).unwrap() };
    g.unlink(name).unwrap();
    g.new_dataset::<T>().shape(values.len()).create(name).unwrap().write_raw(values).unwrap();
}

fn read_i64(f: &hdf5::File, path: &str) -> Vec<i64> {
    f.dataset(path).unwrap().read_raw::<i64>().unwrap()
}

fn read_f32(f: &hdf5::File, path: &str) -> Vec<f32> {
    f.dataset(path).unwrap().read_raw::<f32>().unwrap()
}

/// Overwrite a dataset in place, same type and length.
fn overwrite<T: hdf5::H5Type>(f: &hdf5::File, path: &str, values: &[T]) {
    f.dataset(path).unwrap().write_raw(values).unwrap();
}

/// Row `r`'s range of X/data.
fn row_range(f: &hdf5::File, r: usize) -> std::ops::Range<usize> {
    let p = read_i64(f, "X/indptr");
    p[r] as usize..p[r + 1] as usize
}

/// Set one stored value of X (the 4th value of row 2).
fn with_x_value(dir: &Path, name: &str, value: f32) -> PathBuf {
    edit(dir, name, |f| {
        let mut v = read_f32(f, "X/data");
        v[row_range(f, 2).start + 3] = value;
        overwrite(f, "X/data", &v);
    })
}

/// Set the feature_length of genes 5 and 6 to `value`.
fn with_feature_length(dir: &Path, name: &str, value: f64) -> PathBuf {
    edit(dir, name, |f| {
        let mut v = f.dataset("var/feature_length").unwrap().read_raw::<f64>().unwrap();
        v[5] = value;
        v[6] = value;
        replace(f, "var/feature_length", &v);
    })
}

/// A copy of the synthetic input with 512 bytes in the middle of the first stored chunk of
/// `dataset` zeroed (the file's structure intact, the compressed data corrupt).
fn corrupt_chunk(dir: &Path, name: &str, dataset: &str) -> PathBuf {
    let p = copy_input(dir, name);
    let (addr, size) = {
        let f = hdf5::File::open(&p).unwrap();
        let info = f.dataset(dataset).unwrap().chunk_info(0).expect("a chunked dataset");
        (info.addr as usize, info.size as usize)
    };
    let mut bytes = std::fs::read(&p).unwrap();
    let (a, n) = (addr + size / 4, (size / 2).min(512));
    bytes[a..a + n].fill(0);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A string dataset's values.
fn read_strings(f: &hdf5::File, path: &str) -> Vec<String> {
    f.dataset(path).unwrap().read_raw::<VarLenUnicode>().unwrap().into_iter().map(|s| s.as_str().to_string()).collect()
}

fn write_strings(f: &hdf5::File, path: &str, values: &[String]) {
    let v: Vec<VarLenUnicode> = values.iter().map(|s| s.parse().unwrap()).collect();
    replace(f, path, &v);
}

/// The tutorial pipeline's census source, which the corpus replaces by an h5ad file.
const CENSUS_SOURCE: &str = "source:\n  census: ../data/example/atlas       # cellxgene_census.open_soma(...)\n  organism: Mus musculus\n  obs_filter: \"dataset_title == 'Liver — Smart-seq2, synthetic example'\"\n  genes: dataset_presence             # get_presence_matrix(...)[dataset, :].nonzero()\n";

/// The tutorial pipeline as text, its source the synthetic input, edited by `f`, written
/// to `<name>.yaml`.
fn yaml(dir: &Path, name: &str, f: impl FnOnce(String) -> String) -> PathBuf {
    let text = std::fs::read_to_string(pipeline())
        .unwrap()
        .replace(CENSUS_SOURCE, &format!("source:\n  h5ad: {}\n", synth().display()));
    let edited = f(text.clone());
    assert_ne!(edited, text, "{name}: the edit changed nothing");
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, edited).unwrap();
    p
}

/// `yaml` with one text replacement (which must match).
fn yaml_replace(dir: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    yaml(dir, name, |t| {
        assert!(t.contains(from), "{name}: {from:?} not in the pipeline");
        t.replacen(from, to, 1)
    })
}

// ---------------------------------------------------------------------------------------
// The corpus. YAML line numbers refer to pipelines/census-smartseq2-liver.yaml (step lines:
// gene_length_normalize 16, qc_metrics 18, filter_cells 20, filter_genes 22,
// normalize_total 24, log1p 26, highly_variable_genes 27, scale 31, pca 33, neighbors 35,
// umap 37, leiden 38; outputs 39).

#[allow(unused_doc_comments)] // the doc comments document the table, not items
const CASES: &[Case] = &[
    // ---- files that are not h5ad at all ----
    /// The first KiB of the file: the HDF5 superblock but none of the objects.
    Case { name: "truncated_1k", make: |d| truncated(d, "truncated_1k", 1024), args: &[], expect: Want::Error(&["truncated_1k.h5ad"]) },
    /// Half the file.
    Case { name: "truncated_half", make: |d| truncated(d, "truncated_half", 340_000), args: &[], expect: Want::Error(&["truncated_half.h5ad"]) },
    /// All but the last 100 bytes.
    Case { name: "truncated_end", make: |d| truncated(d, "truncated_end", -100), args: &[], expect: Want::Error(&["truncated_end.h5ad"]) },
    /// 64 KiB of pseudo-random bytes.
    Case {
        name: "random_bytes",
        make: |d| {
            let p = d.join("random_bytes.h5ad");
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            let bytes: Vec<u8> = (0..65536)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect();
            std::fs::write(&p, bytes).unwrap();
            p
        },
        args: &[],
        expect: Want::Error(&["not an h5ad file", "random_bytes.h5ad"]),
    },
    /// A file of zero bytes.
    Case {
        name: "empty_file",
        make: |d| {
            let p = d.join("empty_file.h5ad");
            std::fs::write(&p, b"").unwrap();
            p
        },
        args: &[],
        expect: Want::Error(&["not an h5ad file", "empty_file.h5ad"]),
    },
    /// A directory given as the input.
    Case {
        name: "directory_input",
        make: |d| {
            let p = d.join("directory_input.h5ad");
            std::fs::create_dir(&p).unwrap();
            p
        },
        args: &[],
        expect: Want::Error(&["not an h5ad file", "directory_input.h5ad", "it is a directory"]),
    },
    /// An input file that does not exist.
    Case { name: "missing_input", make: |d| d.join("missing_input.h5ad"), args: &[], expect: Want::Error(&["missing_input.h5ad", "No such file"]) },
    /// An HDF5 file that is not AnnData: no /X.
    Case { name: "no_x", make: |d| edit(d, "no_x", |f| f.unlink("X").unwrap()), args: &[], expect: Want::Error(&["no_x.h5ad", "no /X"]) },
    /// X stored as CSC: atlasflow streams rows and says how to convert.
    Case {
        name: "x_csc",
        make: |d| {
            edit(d, "x_csc", |f| {
                let g = f.group("X").unwrap();
                g.delete_attr("encoding-type").unwrap();
                let v: VarLenUnicode = "csc_matrix".parse().unwrap();
                g.new_attr::<VarLenUnicode>().create("encoding-type").unwrap().write_scalar(&v).unwrap();
            })
        },
        args: &[],
        expect: Want::Error(&["x_csc.h5ad", "/X", "CSC", "tocsr"]),
    },
    /// Zeroed bytes inside X/data's compressed storage.
    Case { name: "corrupt_x_data", make: |d| corrupt_chunk(d, "corrupt_x_data", "X/data"), args: &[], expect: Want::Error(&["corrupt_x_data.h5ad", "/X/data"]) },
    /// Zeroed bytes inside X/indices' compressed storage.
    Case { name: "corrupt_x_indices", make: |d| corrupt_chunk(d, "corrupt_x_indices", "X/indices"), args: &[], expect: Want::Error(&["corrupt_x_indices.h5ad", "/X/indices"]) },
    /// Zeroed bytes inside X/indptr's compressed storage.
    Case { name: "corrupt_x_indptr", make: |d| corrupt_chunk(d, "corrupt_x_indptr", "X/indptr"), args: &[], expect: Want::Error(&["corrupt_x_indptr.h5ad", "/X/indptr"]) },
    // ---- X broken ----
    /// X/data as strings.
    Case {
        name: "x_data_strings",
        make: |d| {
            edit(d, "x_data_strings", |f| {
                let n = f.dataset("X/data").unwrap().size();
                write_strings(f, "X/data", &vec!["1".to_string(); n]);
            })
        },
        args: &[],
        expect: Want::Error(&["x_data_strings.h5ad", "/X/data", "dtype"]),
    },
    /// X/indices as floats.
    Case {
        name: "x_indices_float",
        make: |d| {
            edit(d, "x_indices_float", |f| {
                let v: Vec<f64> = read_i64(f, "X/indices").into_iter().map(|j| j as f64).collect();
                replace(f, "X/indices", &v);
            })
        },
        args: &[],
        expect: Want::Error(&["x_indices_float.h5ad", "/X/indices", "dtype"]),
    },
    /// A column index equal to n_vars.
    Case {
        name: "indices_out_of_range",
        make: |d| {
            edit(d, "indices_out_of_range", |f| {
                let mut v = read_i64(f, "X/indices");
                let r = row_range(f, 7);
                v[r.end - 1] = 2000;
                replace(f, "X/indices", &v);
            })
        },
        args: &[],
        expect: Want::Error(&["indices_out_of_range.h5ad", "/X/indices", "row 7", "2000 out of range"]),
    },
    /// A negative column index.
    Case {
        name: "indices_negative",
        make: |d| {
            edit(d, "indices_negative", |f| {
                let mut v = read_i64(f, "X/indices");
                v[row_range(f, 3).start] = -1;
                replace(f, "X/indices", &v);
            })
        },
        args: &[],
        expect: Want::Error(&["indices_negative.h5ad", "/X/indices", "row 3", "-1 out of range"]),
    },
    /// A row's indices (and values with them) reversed: valid, the reader sorts them.
    Case {
        name: "unsorted_indices",
        make: |d| {
            edit(d, "unsorted_indices", |f| {
                let (mut i, mut v) = (read_i64(f, "X/indices"), read_f32(f, "X/data"));
                for r in [0, 5, 299] {
                    let rr = row_range(f, r);
                    i[rr.clone()].reverse();
                    v[rr].reverse();
                }
                replace(f, "X/indices", &i);
                replace(f, "X/data", &v);
            })
        },
        args: &[],
        expect: Want::Success,
    },
    /// A column index repeated within a row (scipy would sum them; anndata files never have it).
    Case {
        name: "duplicate_indices",
        make: |d| {
            edit(d, "duplicate_indices", |f| {
                let mut v = read_i64(f, "X/indices");
                let r = row_range(f, 4);
                v[r.start + 1] = v[r.start];
                replace(f, "X/indices", &v);
            })
        },
        args: &[],
        expect: Want::Error(&["duplicate_indices.h5ad", "/X/indices", "row 4", "appears twice"]),
    },
    /// indptr decreasing between rows 10 and 11.
    Case {
        name: "indptr_not_monotone",
        make: |d| {
            edit(d, "indptr_not_monotone", |f| {
                let mut p = read_i64(f, "X/indptr");
                p[11] = p[9];
                replace(f, "X/indptr", &p);
            })
        },
        args: &[],
        expect: Want::Error(&["indptr_not_monotone.h5ad", "/X/indptr", "not monotone"]),
    },
    /// indptr one entry short.
    Case {
        name: "indptr_short",
        make: |d| {
            edit(d, "indptr_short", |f| {
                let p = read_i64(f, "X/indptr");
                replace(f, "X/indptr", &p[..p.len() - 1]);
            })
        },
        args: &[],
        expect: Want::Error(&["indptr_short.h5ad", "/X/indptr", "300 entries for 300 rows"]),
    },
    /// indptr[0] = 1.
    Case {
        name: "indptr_first_not_zero",
        make: |d| {
            edit(d, "indptr_first_not_zero", |f| {
                let mut p = read_i64(f, "X/indptr");
                p[0] = 1;
                replace(f, "X/indptr", &p);
            })
        },
        args: &[],
        expect: Want::Error(&["indptr_first_not_zero.h5ad", "/X/indptr", "first entry is 1, not 0"]),
    },
    /// indptr's last entry beyond the stored values.
    Case {
        name: "indptr_past_data",
        make: |d| {
            edit(d, "indptr_past_data", |f| {
                let mut p = read_i64(f, "X/indptr");
                *p.last_mut().unwrap() += 10;
                replace(f, "X/indptr", &p);
            })
        },
        args: &[],
        expect: Want::Error(&["indptr_past_data.h5ad", "/X/indptr", "last entry is 206340, outside the 206330 stored values"]),
    },
    /// X/indices shorter than X/data.
    Case {
        name: "indices_short",
        make: |d| {
            edit(d, "indices_short", |f| {
                let v = read_i64(f, "X/indices");
                replace(f, "X/indices", &v[..v.len() - 1]);
            })
        },
        args: &[],
        expect: Want::Error(&["indices_short.h5ad", "/X/indices", "entries"]),
    },
    /// A negative count.
    Case { name: "negative_count", make: |d| with_x_value(d, "negative_count", -2.0), args: &[], expect: Want::Error(&["negative_count.h5ad", "census-smartseq2-liver.yaml:24", "negative count -2", "cell_0000002"]) },
    /// NaN in X.
    Case { name: "nan", make: |d| with_x_value(d, "nan", f32::NAN), args: &[], expect: Want::Error(&["nan.h5ad", "/X/data", "value NaN at row 2", "finite"]) },
    /// +inf in X.
    Case { name: "pos_inf", make: |d| with_x_value(d, "pos_inf", f32::INFINITY), args: &[], expect: Want::Error(&["pos_inf.h5ad", "/X/data", "value inf at row 2", "finite"]) },
    /// Non-integer counts: scanpy accepts them and the division by length does not need
    /// integers, so this succeeds.
    Case {
        name: "non_integer_counts",
        make: |d| {
            edit(d, "non_integer_counts", |f| {
                let v: Vec<f32> = read_f32(f, "X/data").into_iter().map(|x| x + 0.25).collect();
                overwrite(f, "X/data", &v);
            })
        },
        args: &[],
        expect: Want::Success,
    },
    /// X as a dense matrix with a NaN (the dense reader checks values too).
    Case {
        name: "dense_x_nan",
        make: |d| {
            edit(d, "dense_x_nan", |f| {
                let (p, i, v) = (read_i64(f, "X/indptr"), read_i64(f, "X/indices"), read_f32(f, "X/data"));
                let n_vars = 2000;
                let mut dense = vec![0f32; (p.len() - 1) * n_vars];
                for r in 0..p.len() - 1 {
                    for k in p[r] as usize..p[r + 1] as usize {
                        dense[r * n_vars + i[k] as usize] = v[k];
                    }
                }
                dense[5 * n_vars + 17] = f32::NAN;
                f.unlink("X").unwrap();
                f.new_dataset::<f32>().shape((p.len() - 1, n_vars)).create("X").unwrap().write_raw(&dense).unwrap();
            })
        },
        args: &[],
        expect: Want::Error(&["dense_x_nan.h5ad", "/X: value NaN at row 5", "gene 17", "finite"]),
    },
    /// X as a 1-D dataset.
    Case {
        name: "x_one_dimensional",
        make: |d| {
            edit(d, "x_one_dimensional", |f| {
                f.unlink("X").unwrap();
                f.new_dataset::<f32>().shape(10).create("X").unwrap().write_raw(&[1f32; 10]).unwrap();
            })
        },
        args: &[],
        expect: Want::Error(&["x_one_dimensional.h5ad", "/X", "1 dimensions, expected 2"]),
    },
    /// X/indptr as floats.
    Case {
        name: "indptr_float",
        make: |d| {
            edit(d, "indptr_float", |f| {
                let v: Vec<f64> = read_i64(f, "X/indptr").into_iter().map(|j| j as f64).collect();
                replace(f, "X/indptr", &v);
            })
        },
        args: &[],
        expect: Want::Error(&["indptr_float.h5ad", "/X/indptr", "dtype float64"]),
    },
    /// X's shape attribute claims one gene more than var has.
    Case {
        name: "shape_more_genes_than_var",
        make: |d| edit(d, "shape_more_genes_than_var", |f| f.group("X").unwrap().attr("shape").unwrap().write_raw(&[300i64, 2001]).unwrap()),
        args: &[],
        expect: Want::Error(&["shape_more_genes_than_var.h5ad", "/var/_index", "2000 entries, X has 2001"]),
    },
    /// The root says it is not AnnData.
    Case {
        name: "root_not_anndata",
        make: |d| {
            edit(d, "root_not_anndata", |f| {
                let root = f.group("/").unwrap();
                let _ = root.delete_attr("encoding-type");
                let v: VarLenUnicode = "loom".parse().unwrap();
                root.new_attr::<VarLenUnicode>().create("encoding-type").unwrap().write_scalar(&v).unwrap();
            })
        },
        args: &[],
        expect: Want::Error(&["not an h5ad file", "root_not_anndata.h5ad", "\"loom\""]),
    },
    // ---- obs / var broken ----
    /// A categorical obs column whose code points past its categories.
    Case {
        name: "categorical_bad_code",
        make: |d| {
            edit(d, "categorical_bad_code", |f| {
                let mut c = f.dataset("obs/cell_type/codes").unwrap().read_raw::<i64>().unwrap();
                c[9] = 99;
                let c: Vec<i8> = c.into_iter().map(|x| x as i8).collect();
                replace(f, "obs/cell_type/codes", &c);
            })
        },
        args: &[],
        expect: Want::Error(&["categorical_bad_code.h5ad", "/obs/cell_type/codes", "row 9: code 99"]),
    },
    /// feature_length 0 for two genes.
    Case { name: "zero_feature_length", make: |d| with_feature_length(d, "zero_feature_length", 0.0), args: &[], expect: Want::Error(&["zero_feature_length.h5ad", "census-smartseq2-liver.yaml:24", "2 of 2000 genes", "feature_length", "(0)"]) },
    /// feature_length negative for two genes.
    Case { name: "negative_feature_length", make: |d| with_feature_length(d, "negative_feature_length", -5.0), args: &[], expect: Want::Error(&["negative_feature_length.h5ad", "census-smartseq2-liver.yaml:24", "2 of 2000 genes", "feature_length", "(-5)"]) },
    /// feature_length missing (NaN) for two genes.
    Case { name: "nan_feature_length", make: |d| with_feature_length(d, "nan_feature_length", f64::NAN), args: &[], expect: Want::Error(&["nan_feature_length.h5ad", "census-smartseq2-liver.yaml:24", "2 of 2000 genes", "feature_length", "(NaN)"]) },
    /// var without the feature_length column (10x data has none).
    Case {
        name: "no_feature_length",
        make: |d| {
            edit(d, "no_feature_length", |f| {
                let g = f.group("var").unwrap();
                g.unlink("feature_length").unwrap();
                g.delete_attr("column-order").unwrap();
            })
        },
        args: &[],
        expect: Want::Error(&["no_feature_length.h5ad", "census-smartseq2-liver.yaml:24", "var has no column \"feature_length\""]),
    },
    /// feature_length as strings.
    Case {
        name: "feature_length_strings",
        make: |d| {
            edit(d, "feature_length_strings", |f| {
                let n = f.dataset("var/feature_length").unwrap().size();
                write_strings(f, "var/feature_length", &vec!["1000".to_string(); n]);
            })
        },
        args: &[],
        expect: Want::Error(&["feature_length_strings.h5ad", "census-smartseq2-liver.yaml:24", "feature_length", "not numeric"]),
    },
    /// obs index one entry short of X's rows.
    Case {
        name: "obs_index_short",
        make: |d| {
            edit(d, "obs_index_short", |f| {
                let v = read_strings(f, "obs/_index");
                write_strings(f, "obs/_index", &v[..v.len() - 1]);
            })
        },
        args: &[],
        expect: Want::Error(&["obs_index_short.h5ad", "/obs/_index", "299 entries"]),
    },
    /// Two cells with the same id: anndata only warns ("obs_names are not unique"), scanpy
    /// runs; so does atlasflow.
    Case {
        name: "duplicate_cell_ids",
        make: |d| {
            edit(d, "duplicate_cell_ids", |f| {
                let mut v = read_strings(f, "obs/_index");
                v[1] = v[0].clone();
                write_strings(f, "obs/_index", &v);
            })
        },
        args: &[],
        expect: Want::Success,
    },
    /// Two genes with the same id: anndata warns ("var_names are not unique"), scanpy runs;
    /// so does atlasflow (genes are addressed by column, never by name).
    Case {
        name: "duplicate_gene_ids",
        make: |d| {
            edit(d, "duplicate_gene_ids", |f| {
                let mut v = read_strings(f, "var/_index");
                v[1] = v[0].clone();
                write_strings(f, "var/_index", &v);
            })
        },
        args: &[],
        expect: Want::Success,
    },
    /// A dataset of 0 cells (X 0 × 2000, empty obs).
    Case {
        name: "zero_cells",
        make: |d| {
            edit(d, "zero_cells", |f| {
                replace::<i64>(f, "X/indptr", &[0]);
                replace::<i32>(f, "X/indices", &[]);
                replace::<f32>(f, "X/data", &[]);
                let g = f.group("X").unwrap();
                g.attr("shape").unwrap().write_raw(&[0i64, 2000]).unwrap();
                f.unlink("obs").unwrap();
                let obs = f.create_group("obs").unwrap();
                obs.new_dataset::<VarLenUnicode>().shape(0).create("_index").unwrap();
            })
        },
        args: &[],
        expect: Want::Error(&["zero_cells.h5ad", "no cells"]),
    },
    // ---- the data leaves nothing ----
    /// Every cell filtered out by filter_cells.
    Case { name: "all_cells_filtered", make: copy_input_named, args: &["--set", "filter_cells.min_genes=1000000"], expect: Want::Error(&["census-smartseq2-liver.yaml:28", "filter_cells", "removed all 300 cells"]) },
    // ---- command line ----
    /// A memory budget too small for the PCA state: refused before any pass.
    Case { name: "memory_too_small", make: copy_input_named, args: &["--memory", "2MiB"], expect: Want::Error(&["--memory", "memory budget exceeded"]) },
    /// --memory that is not a size.
    Case { name: "memory_not_a_size", make: copy_input_named, args: &["--memory", "lots"], expect: Want::Error(&["--memory \"lots\"", "4GiB"]) },
    /// --threads 0.
    Case { name: "threads_zero", make: copy_input_named, args: &["--threads", "0"], expect: Want::Error(&["--threads must be at least 1"]) },
    /// --batch-size 0.
    Case { name: "batch_size_zero", make: copy_input_named, args: &["--batch-size", "0"], expect: Want::Error(&["--batch-size must be at least 1"]) },
    /// --set without `=`.
    Case { name: "set_no_equals", make: copy_input_named, args: &["--set", "filter_cells.min_genes"], expect: Want::Error(&["--set: \"filter_cells.min_genes\": expected step.param=value"]) },
    /// --set without a step.
    Case { name: "set_no_step", make: copy_input_named, args: &["--set", "min_genes=3"], expect: Want::Error(&["--set: \"min_genes\": expected step.param"]) },
    /// --set naming no step.
    Case { name: "set_unknown_step", make: copy_input_named, args: &["--set", "filter_cell.min_genes=3"], expect: Want::Error(&["--set: no step \"filter_cell\"", "steps: gene_length_normalize"]) },
    /// --set with a misspelled parameter: the step's line.
    Case { name: "set_unknown_param", make: copy_input_named, args: &["--set", "filter_cells.min_gene=3"], expect: Want::Error(&["census-smartseq2-liver.yaml:28:", "unknown parameter \"min_gene\"", "min_genes"]) },
    /// --set with an out-of-range value.
    Case { name: "set_out_of_range", make: copy_input_named, args: &["--set", "pca.n_comps=0"], expect: Want::Error(&["census-smartseq2-liver.yaml:41:", "n_comps", "at least 1"]) },
    // ---- the YAML ----
    /// An unknown stage.
    Case { name: "unknown_stage", make: |d| yaml_replace(d, "unknown_stage", "stage: log1p", "stage: log1pp"), args: &[], expect: Want::Error(&["unknown_stage.yaml:31:", "unknown stage \"log1pp\"", "did you mean log1p?"]) },
    /// A misspelled parameter.
    Case { name: "misspelled_param", make: |d| yaml_replace(d, "misspelled_param", "min_genes: 500", "min_gene: 500"), args: &[], expect: Want::Error(&["misspelled_param.yaml:26:", "unknown parameter \"min_gene\"", "did you mean min_genes?"]) },
    /// max_fraction 2.
    Case {
        name: "max_fraction_2",
        make: |d| yaml_replace(d, "max_fraction_2", "target_sum: 1e4", "target_sum: 1e4\n    exclude_highly_expressed: true\n    max_fraction: 2"),
        args: &[],
        expect: Want::Error(&["max_fraction_2.yaml:32:", "max_fraction", "[0, 1]"]),
    },
    /// n_top_genes 0.
    Case { name: "n_top_genes_0", make: |d| yaml_replace(d, "n_top_genes_0", "n_top_genes: 1000", "n_top_genes: 0"), args: &[], expect: Want::Error(&["n_top_genes_0.yaml:34:", "n_top_genes", "at least 1"]) },
    /// target_sum -1.
    Case { name: "target_sum_negative", make: |d| yaml_replace(d, "target_sum_negative", "target_sum: 1e4", "target_sum: -1"), args: &[], expect: Want::Error(&["target_sum_negative.yaml:30:", "target_sum", "positive"]) },
    /// min_cells negative.
    Case { name: "min_cells_negative", make: |d| yaml_replace(d, "min_cells_negative", "min_cells: 5", "min_cells: -5"), args: &[], expect: Want::Error(&["min_cells_negative.yaml:28:", "min_cells"]) },
    /// A word where a number goes.
    Case { name: "wrong_type_number", make: |d| yaml_replace(d, "wrong_type_number", "min_genes: 500", "min_genes: many"), args: &[], expect: Want::Error(&["wrong_type_number.yaml:26:", "min_genes", "expected a whole number"]) },
    /// A string where a boolean goes.
    Case { name: "wrong_type_bool", make: |d| yaml_replace(d, "wrong_type_bool", "subset: true", "subset: maybe"), args: &[], expect: Want::Error(&["wrong_type_bool.yaml:35:", "subset"]) },
    /// A list where a number goes.
    Case { name: "wrong_type_list", make: |d| yaml_replace(d, "wrong_type_list", "max_value: 10", "max_value: [10, 20]"), args: &[], expect: Want::Error(&["wrong_type_list.yaml:37:", "max_value", "a list"]) },
    /// An unknown flavor.
    Case { name: "unknown_flavor", make: |d| yaml_replace(d, "unknown_flavor", "flavor: seurat", "flavor: seurat_v9"), args: &[], expect: Want::Error(&["unknown_flavor.yaml:33:", "allowed: seurat, cell_ranger"]) },
    /// A cycle through `input:`: filter_cells reads filter_genes, which reads filter_cells.
    Case {
        name: "input_cycle",
        make: |d| yaml_replace(d, "input_cycle", "    min_genes: 500", "    min_genes: 500\n    input: filter_genes"),
        args: &[],
        expect: Want::Error(&["input_cycle.yaml:25:", "steps form a cycle: filter_cells ← filter_genes ← filter_cells"]),
    },
    /// A step reading itself.
    Case {
        name: "input_self",
        make: |d| yaml_replace(d, "input_self", "    min_genes: 500", "    min_genes: 500\n    input: filter_cells"),
        args: &[],
        expect: Want::Error(&["input_self.yaml:27:", "reads itself"]),
    },
    /// `input:` naming no step.
    Case {
        name: "input_missing",
        make: |d| yaml_replace(d, "input_missing", "  - stage: log1p", "  - stage: log1p\n    input: nowhere"),
        args: &[],
        expect: Want::Error(&["input_missing.yaml:32:", "input \"nowhere\" is not a step id"]),
    },
    /// Two steps with the same id.
    Case {
        name: "duplicate_step_ids",
        make: |d| {
            yaml(d, "duplicate_step_ids", |t| {
                t.replacen("    min_genes: 500", "    min_genes: 500\n    id: same", 1).replacen("    min_cells: 5", "    min_cells: 5\n    id: same", 1)
            })
        },
        args: &[],
        expect: Want::Error(&["duplicate_step_ids.yaml:30:", "duplicate step id \"same\""]),
    },
    /// A step without `stage:`.
    Case { name: "step_without_stage", make: |d| yaml_replace(d, "step_without_stage", "  - stage: log1p", "  - id: lg"), args: &[], expect: Want::Error(&["step_without_stage.yaml:31:", "no `stage:`"]) },
    /// No outputs.
    Case {
        name: "no_outputs",
        make: |d| yaml(d, "no_outputs", |t| t[..t.find("outputs:\n").unwrap_or(t.len())].to_string()),
        args: &[],
        expect: Want::Error(&["no_outputs.yaml: the pipeline has no outputs"]),
    },
    /// An output reading an unknown step.
    Case {
        name: "output_from_missing",
        make: |d| yaml_replace(d, "output_from_missing", "census-smartseq2-liver.h5ad\n", "census-smartseq2-liver.h5ad\n    from: nowhere\n"),
        args: &[],
        expect: Want::Error(&["output_from_missing.yaml:46:", "\"nowhere\"", "not a step id"]),
    },
    /// Two outputs writing one file.
    Case {
        name: "output_twice",
        make: |d| yaml_replace(d, "output_twice", "census-smartseq2-liver.h5ad\n", "census-smartseq2-liver.h5ad\n  - h5ad: results/census-smartseq2-liver.h5ad\n"),
        args: &[],
        expect: Want::Error(&["output_twice.yaml:46:", "two outputs write"]),
    },
    /// An unknown key in an output.
    Case {
        name: "output_unknown_key",
        make: |d| yaml_replace(d, "output_unknown_key", "census-smartseq2-liver.h5ad\n", "census-smartseq2-liver.h5ad\n    compression: gzip\n"),
        args: &[],
        expect: Want::Error(&["output_unknown_key.yaml:46:", "unknown output key \"compression\""]),
    },
    /// An unknown top-level key.
    Case { name: "unknown_top_level_key", make: |d| yaml_replace(d, "unknown_top_level_key", "seed: 0\n", "seed: 0\nthreads: 4\n"), args: &[], expect: Want::Error(&["unknown_top_level_key.yaml:18:1: unknown field `threads`", "top-level keys"]) },
    /// Not YAML: an unclosed bracket.
    Case { name: "bad_yaml_syntax", make: |d| yaml_replace(d, "bad_yaml_syntax", "percent_top: null", "percent_top: [50, 100"), args: &[], expect: Want::Error(&["bad_yaml_syntax.yaml:25:"]) },
    /// An empty pipeline file.
    Case { name: "empty_yaml", make: |d| yaml(d, "empty_yaml", |_| String::new()), args: &[], expect: Want::Error(&["empty_yaml.yaml:1:1:", "unexpected end of input"]) },
    /// A pipeline whose source does not exist.
    Case {
        name: "source_missing",
        make: |d| yaml(d, "source_missing", |t| t.replace(synth().to_str().unwrap(), "nowhere/source_missing.h5ad")),
        args: &[],
        expect: Want::Error(&["source_missing.h5ad", "No such file"]),
    },
    /// A pipeline file that does not exist.
    Case { name: "pipeline_missing", make: |d| d.join("pipeline_missing.yaml"), args: &[], expect: Want::Error(&["pipeline_missing.yaml", "cannot read the pipeline file"]) },
    /// An output path that is an existing directory.
    Case {
        name: "output_is_a_directory",
        make: |d| {
            let target = d.join("taken.h5ad");
            std::fs::create_dir(&target).unwrap();
            yaml_replace(d, "output_is_a_directory", "results/census-smartseq2-liver.h5ad", target.to_str().unwrap())
        },
        args: &[],
        expect: Want::Error(&["taken.h5ad"]),
    },
    /// An output path under a regular file.
    Case {
        name: "output_under_a_file",
        make: |d| {
            let blocker = d.join("blocker");
            std::fs::write(&blocker, b"a file, not a directory").unwrap();
            let target = blocker.join("out.h5ad");
            yaml_replace(d, "output_under_a_file", "results/census-smartseq2-liver.h5ad", target.to_str().unwrap())
        },
        args: &[],
        expect: Want::Error(&["blocker", "cannot create the output directory"]),
    },
    /// An output path under /proc.
    Case {
        name: "output_under_proc",
        make: |d| yaml_replace(d, "output_under_proc", "results/census-smartseq2-liver.h5ad", "/proc/atlasflow-corpus/out.h5ad"),
        args: &[],
        expect: Want::Error(&["/proc/atlasflow-corpus", "cannot create the output directory"]),
    },
    // ---- atlas stores (`--input` a store directory replaces the pipeline's store) ----
    /// A Parquet part whose embedded Arrow schema (`ARROW:schema`) declares an Int of bit
    /// width 67108928: arrow-ipc panicked on it (found by fuzzing).
    Case {
        name: "store_arrow_schema_int_width",
        make: |d| store_with(d, "store_arrow_schema_int_width", PRESENCE_PART_0, &arrow_schema_crash()),
        args: &[],
        expect: Want::Error(&["store_arrow_schema_int_width", "part-000000.parquet", "corrupt Parquet footer", "bit width"]),
    },
    /// A part cut in half: no footer.
    Case {
        name: "store_truncated_part",
        make: |d| {
            let full = std::fs::read(repo().join("data/example/atlas").join(PRESENCE_PART_0)).unwrap();
            store_with(d, "store_truncated_part", PRESENCE_PART_0, &full[..full.len() / 2])
        },
        args: &[],
        expect: Want::Error(&["store_truncated_part", "part-000000.parquet", "not a readable Parquet file"]),
    },
    /// A TileDB-SOMA Census (written by tiledbsoma) of another organism than the
    /// pipeline's: the Census is read, and the error names it and what it holds.
    Case {
        name: "soma_census_as_input",
        make: |_| repo().join("tests/data/soma/census"),
        args: &[],
        expect: Want::Error(&["tests/data/soma/census: no organism \"Mus musculus\"", "homo_sapiens"]),
    },
];

/// For command-line cases: the unmodified synthetic input.
fn copy_input_named(d: &Path) -> PathBuf {
    copy_input(d, "input")
}

/// A copy of the example atlas store in `dir/<name>` with one file (relative to the store)
/// replaced by `bytes`.
fn store_with(dir: &Path, name: &str, file: &str, bytes: &[u8]) -> PathBuf {
    let store = dir.join(name);
    support::copy_tree(&repo().join("data/example/atlas"), &store);
    std::fs::write(store.join(file), bytes).unwrap();
    store
}

/// The presence-matrix part of the example atlas's Smart-seq2 dataset.
const PRESENCE_PART_0: &str = "census_data/mus_musculus/ms/RNA/feature_dataset_presence_matrix/part-000000.parquet";

/// The input on which libFuzzer made arrow-ipc panic (tests/fuzz/crashes/atlas_store/): its
/// first two bytes chose the store file and the query, the rest is the file.
fn arrow_schema_crash() -> Vec<u8> {
    std::fs::read(repo().join("tests/fuzz/crashes/atlas_store/arrow-ipc-int-bitwidth-panic")).unwrap()[2..].to_vec()
}

// ---------------------------------------------------------------------------------------
// Running.

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                files.extend(files_under(&p));
            } else {
                files.push(p);
            }
        }
    }
    files
}

/// Held while a case writes its HDF5 input and while a child process is spawned: HDF5
/// opens files without close-on-exec, so a child forked while another thread has an input
/// open would inherit that file and its lock, and the case reading it would fail to open it.
static FS: Mutex<()> = Mutex::new(());

fn run_case(case: &Case) -> Result<String, String> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    std::fs::create_dir(&dir).unwrap();
    let out = tmp.path().join("out");
    let input = {
        let _g = FS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (case.make)(&dir)
    };
    let spec = pipeline();
    let mut args: Vec<&str> = vec!["run"];
    if input.extension().is_some_and(|e| e == "yaml") {
        args.push(input.to_str().unwrap());
    } else {
        args.extend([spec.to_str().unwrap(), "--input", input.to_str().unwrap()]);
    }
    args.extend(["--out", out.to_str().unwrap(), "--quiet"]);
    args.extend_from_slice(case.args);
    let child = {
        let _g = FS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Command::new(env!("CARGO_BIN_EXE_atlasflow")).args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run atlasflow")
    };
    let o: Output = child.wait_with_output().expect("run atlasflow");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let first = err.lines().next().unwrap_or("").to_string();
    let fail = |why: String| Err(format!("{}: {why}\n  stderr: {err}", case.name));
    if err.contains("panicked") {
        return fail("panicked".into());
    }
    match case.expect {
        Want::Success => {
            if !o.status.success() {
                return fail("expected success".into());
            }
            if !out.join("results/census-smartseq2-liver.h5ad").is_file() {
                return fail("no output written".into());
            }
            Ok(format!("{:<26} ok (succeeds)", case.name))
        }
        Want::Error(needles) => {
            if o.status.success() {
                return fail("expected a failure".into());
            }
            let missing: Vec<&&str> = needles.iter().filter(|n| !err.contains(**n)).collect();
            if !missing.is_empty() {
                return fail(format!("stderr lacks {missing:?}"));
            }
            let left = files_under(&out);
            if !left.is_empty() {
                return fail(format!("files left in --out: {left:?}"));
            }
            Ok(format!("{:<26} exit {:?}: {first}", case.name, o.status.code()))
        }
    }
}

#[test]
fn corpus_has_enough_cases_with_unique_names() {
    assert!(CASES.len() >= 30, "{} cases", CASES.len());
    let mut names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    names.sort_unstable();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n, "case names must be unique");
}

#[test]
fn every_bad_input_fails_cleanly_naming_the_problem_and_its_place() {
    let filter = std::env::var("CORPUS_CASE").ok();
    let cases: Vec<&Case> = CASES.iter().filter(|c| filter.as_deref().is_none_or(|f| c.name.contains(f))).collect();
    let threads = std::thread::available_parallelism().map_or(4, |n| n.get()).min(8);
    let results: Vec<Result<String, String>> = std::thread::scope(|s| {
        let chunks: Vec<Vec<&Case>> = (0..threads).map(|t| cases.iter().skip(t).step_by(threads).copied().collect()).collect();
        let handles: Vec<_> = chunks.into_iter().map(|chunk| s.spawn(move || chunk.into_iter().map(|c| (c.name, run_case(c))).collect::<Vec<_>>())).collect();
        let mut all: Vec<(&str, Result<String, String>)> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        all.sort_by_key(|(n, _)| CASES.iter().position(|c| c.name == *n));
        all.into_iter().map(|(_, r)| r).collect()
    });
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(line) => eprintln!("{line}"),
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

/// The corrupt h5ad files on which libhdf5 1.10 itself segfaults or loops forever
/// (tests/fuzz/libhdf5/h5ad_reader/): `atlasflow inspect` and `atlasflow run` open them
/// through a child process first, so each gives an error naming the file, exit 1, no output,
/// and returns (here within the 3 s probe limit the test sets, plus the run's own time).
#[test]
fn libhdf5_crashes_and_hangs_on_corrupt_files_become_errors() {
    let dir = repo().join("tests/fuzz/libhdf5/h5ad_reader");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    for file in &files {
        let name = file.file_name().unwrap().to_str().unwrap();
        let want = if name.starts_with("hang") { "did not finish reading the file's structure in 3 s" } else { "the HDF5 library crashed" };
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let spec = pipeline();
        let runs: [Vec<&str>; 2] = [
            vec!["inspect", file.to_str().unwrap()],
            vec!["run", spec.to_str().unwrap(), "--input", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"],
        ];
        for args in runs {
            let started = std::time::Instant::now();
            let mut child = Command::new(env!("CARGO_BIN_EXE_atlasflow"))
                .args(&args)
                .env("ATLASFLOW_H5AD_PROBE_SECONDS", "3")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // A hang of the parent itself would be the bug under test: give up on it, loudly.
            while child.try_wait().unwrap().is_none() {
                if started.elapsed() > std::time::Duration::from_secs(120) {
                    let _ = child.kill();
                    panic!("{name}: `atlasflow {}` still running after 120 s", args[0]);
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            let o = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(1), "{name}: `atlasflow {}`: {:?}\n{err}", args[0], o.status);
            assert!(err.contains(name) && err.contains(want) && !err.contains("panicked"), "{name}: `atlasflow {}`:\n{err}", args[0]);
            assert!(files_under(&out).is_empty(), "{name}: output left: {:?}", files_under(&out));
        }
    }
}
