//! AnnData h5ad files: a streaming reader and writer.
//!
//! - [`H5adReader`] reads var into a [`atlasflow_core::GeneTable`] and obs into Arrow
//!   columns at open, then X by row blocks (`csr_matrix` or dense; CSC is refused with a
//!   hint), validating each block.
//! - [`H5adWriter`] appends row blocks and writes obs, var, obsm, varm and uns with the
//!   encoding attributes anndata 0.12 writes, so scanpy 1.11.5 opens the result as if
//!   anndata had written it.
//! - [`encoding`] holds the shared attribute names, versions and HDF5 string helpers.

pub mod encoding;
mod read;
mod write;

pub use read::H5adReader;
pub use write::{H5adWriter, XKind};
