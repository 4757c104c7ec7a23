//! Fuzz target bodies for atlasflow's three parsers of untrusted input, as plain functions so
//! the same code runs under `cargo fuzz` (the `fuzz/` project at the repository root wraps
//! each in a three-line libFuzzer target) and under the ordinary test suite
//! (`tests/fuzz_smoke.rs` replays the seed corpus and the saved crashes, then runs a short
//! deterministic mutation loop with [`smoke`]).
//!
//! - [`spec_yaml`]: a pipeline YAML, parsed, overridden, filter-checked and planned: all a run
//!   does before it reads data.
//! - [`h5ad_reader`]: an h5ad file, opened and read the way a run reads it, and inspected.
//! - [`atlas_store`]: a small atlas store in which the input replaces one file, opened with a
//!   Census query and streamed.
//!
//! Every target must return normally on any input: errors are the expected answer to bad
//! input, a panic (or a crash inside libhdf5) is a bug. [`seeds`] builds the seed inputs the
//! corpus in `fuzz/seeds/` was made from.

mod h5ad;
mod mutate;
pub mod seeds;
mod spec;
mod store;

pub use h5ad::h5ad_reader;
pub use mutate::{Mutants, SmokeStats, smoke, smoke_in};
pub use spec::spec_yaml;
pub use store::{STORE_FILES, atlas_store};

/// A fuzz target body.
pub type Target = fn(&[u8]);

/// The three targets by name, as `cargo fuzz` and the corpus directories name them.
pub const TARGETS: [(&str, Target); 3] = [("spec_yaml", spec_yaml), ("h5ad_reader", h5ad_reader), ("atlas_store", atlas_store)];
