//! UMAP layout of a neighbor graph as scanpy's `sc.tl.umap` computes it (umap-learn's
//! `simplicial_set_embedding`; semantics reference §7).
//!
//! - [`find_ab_params`]: the a, b curve fit (Levenberg–Marquardt, as scipy's curve_fit).
//! - The graph: duplicates summed, weights < max/n_epochs pruned ([`graph`]).
//! - Initialisation: spectral (hand-written Lanczos on the normalized Laplacian, multi-
//!   component layout for disconnected graphs, [`spectral`], [`eigen`]), random, or an obsm
//!   embedding; then noisy scaling and min-max to [0, 10] ([`init`]).
//! - SGD: umap-learn's `optimize_layout_euclidean` schedule and gradients, parallel over
//!   fixed vertex chunks and deterministic for any thread count ([`sgd`] documents how this
//!   deviates from umap-learn's sequential loop).
//!
//! Outputs as scanpy: obsm `X_umap` (f32) and uns `umap = {params: {a, b, [random_state]}}`;
//! with `key_added = K` both are named `K` (scanpy 1.11.5 uses the same name for the obsm and
//! uns keys, not `X_K`).
//!
//! Randomness: one ChaCha8 stream seeded with `random_state` draws, in umap-learn's order,
//! the fallback/tiny-component uniforms, the N(0, 1e-4) init noise and the three seeds of the
//! per-vertex Tausworthe generators. Bit parity with umap-learn is not a goal (its MT19937,
//! ARPACK and fastmath); the layout's quality (trustworthiness) is.

pub mod ab;
pub mod eigen;
pub mod embed;
pub mod graph;
pub mod init;
pub mod linalg;
pub mod params;
pub mod sgd;
pub mod spectral;
pub mod stage;
pub mod tau;

pub use ab::find_ab_params;
pub use embed::{umap_embedding, umap_embedding_with_init};
pub use params::{InitPos, UmapParams};
pub use stage::Umap;

/// Stage name used in errors.
pub const STAGE: &str = "umap";
