//! The UMAP kernel, usable without a frame: umap-learn's `simplicial_set_embedding` as
//! scanpy calls it (semantics §7).

use atlasflow_core::{Embedding, Graph, Result, StageError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::STAGE;
use crate::graph::prune;
use crate::init::{given_init, min_max_scale, random_init, spectral_init};
use crate::params::{InitPos, UmapParams, default_epochs};
use crate::sgd::{SgdParams, optimize_layout};

/// The UMAP layout (n × n_components, f32) of the connectivities graph.
/// `representation` (the neighbors' input, e.g. X_pca) is only used to place the connected
/// components of a disconnected graph. `init_pos` must be "spectral" or "random" here; use
/// [`umap_embedding_with_init`] to start from given coordinates.
pub fn umap_embedding(
    connectivities: &Graph,
    representation: Option<&Embedding>,
    params: &UmapParams,
) -> Result<Embedding> {
    umap_embedding_with_init(connectivities, representation, None, params)
}

/// [`umap_embedding`] with the coordinates of `init_pos = InitPos::Obsm(_)` supplied.
pub fn umap_embedding_with_init(
    connectivities: &Graph,
    representation: Option<&Embedding>,
    init_coords: Option<&Embedding>,
    params: &UmapParams,
) -> Result<Embedding> {
    params.validate()?;
    let n = connectivities.n;
    let dim = params.n_components;
    if n == 0 {
        return Err(StageError::data(STAGE, "no cells to embed"));
    }
    let (a, b) = params.ab()?;
    let n_epochs = params.n_epochs(n);
    let g = prune(connectivities, n_epochs, default_epochs(n))?;
    if g.nnz() == 0 {
        return Err(StageError::data(
            STAGE,
            "the connectivities graph has no edges: run neighbors on more than one cell first",
        ));
    }
    let representation = representation.filter(|r| r.n_rows() == n && r.width > 0);
    if representation.is_some_and(|r| r.values.iter().any(|x| !x.is_finite())) {
        return Err(StageError::data(STAGE, "the representation contains NaN or inf"));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(params.random_state);
    let mut emb = match &params.init_pos {
        InitPos::Spectral => spectral_init(&g, dim, representation, &mut rng),
        InitPos::Random => random_init(n, dim, &mut rng),
        InitPos::Obsm(key) => {
            let init = init_coords.ok_or_else(|| {
                StageError::param(STAGE, "init_pos", format!("no coordinates given for obsm '{key}'"))
            })?;
            given_init(init, n, dim, &mut rng)?
        }
    };
    min_max_scale(&mut emb, dim);
    // umap-learn: rng_state = random_state.randint(INT32_MIN, INT32_MAX, 3).
    let rng_state: [i64; 3] = std::array::from_fn(|_| rng.random_range(-2147483647i64..2147483646));
    let sgd = SgdParams {
        a,
        b,
        gamma: params.gamma,
        alpha: params.alpha,
        negative_sample_rate: params.negative_sample_rate,
        n_epochs,
    };
    optimize_layout(&mut emb, dim, &g, &sgd, rng_state);
    if emb.iter().any(|x| !x.is_finite()) {
        return Err(StageError::data(STAGE, "the layout diverged (NaN or inf coordinates)"));
    }
    Ok(Embedding { values: emb, width: dim })
}
