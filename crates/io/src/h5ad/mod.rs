//! AnnData h5ad files: a streaming reader and writer.
//!
//! - [`H5adReader`] reads var into a [`atlasflow_core::GeneTable`] and obs into Arrow
//!   columns at open, then X by row blocks (`csr_matrix` or dense; CSC is refused with a
//!   hint), validating each block.
//! - [`H5adWriter`] appends row blocks and writes obs, var, obsm, varm and uns with the
//!   encoding attributes anndata 0.12 writes, so scanpy 1.11.5 opens the result as if
//!   anndata had written it.
//! - [`inspect_h5ad`] summarises a file for a person (`atlasflow inspect`) from its
//!   metadata and small arrays, never reading X's values.
//! - [`probe`] opens untrusted files in a child process first, where a program asks for it,
//!   so libhdf5's crashes and endless loops on corrupt files become errors.
//! - [`encoding`] holds the shared attribute names, versions and HDF5 string helpers.

pub mod encoding;
mod inspect;
pub mod probe;
mod read;
mod write;

pub use inspect::{ColumnSummary, H5adSummary, XSummary, inspect_h5ad};
pub use read::H5adReader;
pub use write::{H5adWriter, XKind};
