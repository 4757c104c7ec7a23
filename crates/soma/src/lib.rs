//! A native reader of TileDB-SOMA objects — the on-disk form of the CZ CELLxGENE Census
//! and of `tiledbsoma.io.from_anndata` experiments — with no TileDB C++ library.
//!
//! It decodes what tiledbsoma 2.3 (TileDB 2.30, format version 22; 23 accepted) writes:
//! generic tiles, chunked data tiles, filter pipelines undone in reverse (gzip, zstd, lz4,
//! RLE, byte shuffle, bit-width reduction, double delta, delta, positive delta,
//! dictionary-encoded strings; checksums skipped), array schemas with enumerations and
//! the current domain, fragment footers (own or consolidated), commits, groups and
//! metadata. Arrays are read whole or by dim-0 selection (decoding only the data tiles
//! whose R-tree leaf intersects it), as Arrow record batches: every committed fragment,
//! each with the schema it was written with (columns added later read as fill values),
//! and in arrays without duplicates each coordinate keeps its newest cell.
//!
//! - [`open`] / [`open_local`]: a [`SomaObject`] — a [`SomaGroup`] to navigate by member
//!   name, or a [`SomaArray`] to read.
//! - [`SparseReader`]: range reads by dim-0 selection ([`Coords`]), decoding only the
//!   data tiles whose R-tree leaf intersects it, cells sorted by coordinates;
//!   [`SomaArray::blocks`] streams a DataFrame by soma_joinid blocks.
//! - [`XReader`] / [`XBands`]: X rows as CSR, streamed one dim-0 band (2048 rows in the
//!   Census) at a time in bounded memory.
//! - [`Census`]: a Census root, its `census_info` tables and per-organism experiments.
//! - [`TileDbArray`]: the TileDB level — schema, fragments, R-trees, tile offsets.
//! - [`Storage`]: where bytes come from — [`LocalStorage`], or [`S3Storage`] (object_store,
//!   anonymous by default, coalesced range reads, a metadata cache); [`storage_for_uri`]
//!   picks one for `s3://bucket/prefix`, `file:///dir` or a directory.
//!
//! The format reference is `shared/reference/soma/tiledb-soma-reader.md`; the fixtures
//! under `tests/data/soma` are written by real tiledbsoma
//! (`scripts/make_soma_fixtures.py`).

pub mod array;
pub mod bands;
pub mod blocks;
pub mod census;
mod commits;
pub mod coords;
mod cursor;
pub mod datatype;
pub mod enumeration;
pub mod error;
pub mod filter;
pub mod fragment;
pub mod group;
mod merge;
pub mod metadata;
pub mod names;
mod read;
pub mod s3;
pub mod schema;
pub mod soma;
pub mod storage;
pub mod tile;

pub use array::TileDbArray;
pub use bands::{CsrRows, XBands, XReader};
pub use blocks::Blocks;
pub use census::{Census, CensusExperiment, organism_member_name};
pub use coords::Coords;
pub use datatype::Datatype;
pub use error::{Result, SomaError};
pub use metadata::{Metadata, MetadataValue};
pub use read::{ReadPlan, ReadStats, SparseReader};
pub use s3::{S3Options, S3Stats, S3Storage, open_uri, storage_for_uri, storage_for_uri_with};
pub use soma::{SomaArray, SomaGroup, SomaKind, SomaObject, open, open_local};
pub use storage::{Entry, LocalStorage, Storage};
