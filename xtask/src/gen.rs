//! `cargo xtask gen`: synthetic Smart-seq2-like counts, written block by block (bounded
//! memory at any number of cells) with atlasflow's own h5ad writer.
//!
//! The model (the numpy recipe of scanpy-semantics.md §11, made streamable):
//! - per gene: a length (lognormal, ~2 kb, int64 var `feature_length`) and a base expression
//!   (lognormal; a quarter of the genes nearly silent, ×1e-3; 2 % entirely silent);
//! - per cell type: a profile ∝ base · length · lognormal(0, 0.5), summing to 1 — reads are
//!   proportional to length, as in full-length protocols;
//! - per cell: a type (uniform), a depth (lognormal, median `--depth`, 30,000 reads by default:
//!   ~3–6k of 18k genes detected), and counts drawn
//!   from a gamma–Poisson (negative binomial, shape 4) with mean depth · profile;
//! - `--empty-cells` cells, evenly spread, have no counts at all.
//!
//! Every cell draws from its own generator seeded by (seed, cell index), so the output does
//! not depend on the block size or the number of threads.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, DictionaryArray, Int32Array, Int64Array, StringArray};
use arrow::datatypes::Int32Type;
use atlasflow_core::{CellBatch, Csr, GeneTable, Uns};
use atlasflow_io::{H5adWriter, XKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Gamma, LogNormal, Poisson};

/// Arguments of `cargo xtask gen`.
#[derive(clap::Args, Debug, Clone)]
pub struct GenArgs {
    /// Number of cells.
    #[arg(long)]
    pub cells: usize,
    /// Number of genes.
    #[arg(long, default_value_t = 18_000)]
    pub genes: usize,
    /// Seed: the same seed gives the same file.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output h5ad file.
    #[arg(long)]
    pub out: PathBuf,
    /// Median sequencing depth (reads per cell; lognormal, sigma 0.5).
    #[arg(long, default_value_t = 30_000.0)]
    pub depth: f64,
    /// Number of cell types.
    #[arg(long, default_value_t = 8)]
    pub types: usize,
    /// Number of cells with no counts at all.
    #[arg(long, default_value_t = 5)]
    pub empty_cells: usize,
    /// Cells generated (and held in memory) at a time.
    #[arg(long, default_value_t = 1024)]
    pub block: usize,
}

/// Negative-binomial shape: the gamma(4, 1/4) cell-to-cell multiplier of the recipe.
const SHAPE: f64 = 4.0;

type BoxError = Box<dyn std::error::Error>;

struct Model {
    /// Per type, per gene: expected fraction of a cell's reads.
    profiles: Vec<Vec<f64>>,
    types: usize,
    empty: Vec<usize>,
    seed: u64,
    depth: f64,
}

/// splitmix64: decorrelates the per-cell seeds.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One draw of NB(mean `mu`, shape 4): inverse CDF for small means (one uniform for the
/// usual zero), gamma–Poisson (conditioned on the non-zero branch) for large ones.
fn nb(rng: &mut StdRng, mu: f64) -> Result<f32, BoxError> {
    if mu <= 0.0 {
        return Ok(0.0);
    }
    let t = SHAPE / (SHAPE + mu);
    let p0 = (t * t) * (t * t);
    let u: f64 = rng.random();
    if u < p0 {
        return Ok(0.0);
    }
    if mu < 8.0 {
        let q = mu / (SHAPE + mu);
        let (mut p, mut c) = (p0, p0);
        for k in 1..10_000u32 {
            p *= (f64::from(k) - 1.0 + SHAPE) / f64::from(k) * q;
            c += p;
            if u < c {
                return Ok(k as f32);
            }
        }
        return Ok(10_000.0);
    }
    let gamma = Gamma::new(SHAPE, mu / SHAPE)?;
    loop {
        let lambda = gamma.sample(rng);
        if lambda > 0.0 {
            let k = Poisson::new(lambda)?.sample(rng);
            if k > 0.0 {
                return Ok(k as f32);
            }
        }
    }
}

impl Model {
    fn cell(&self, i: usize) -> Result<(usize, Vec<u32>, Vec<f32>), BoxError> {
        let mut rng = StdRng::seed_from_u64(mix(self.seed ^ mix(i as u64 + 1)));
        let t = rng.random_range(0..self.types);
        let depth = LogNormal::new(self.depth.ln(), 0.5)?.sample(&mut rng);
        let (mut idx, mut val) = (Vec::new(), Vec::new());
        if self.empty.binary_search(&i).is_err() {
            for (j, &p) in self.profiles[t].iter().enumerate() {
                let k = nb(&mut rng, depth * p)?;
                if k > 0.0 {
                    idx.push(j as u32);
                    val.push(k);
                }
            }
        }
        Ok((t, idx, val))
    }
}

fn genes_and_model(a: &GenArgs) -> Result<(GeneTable, Model), BoxError> {
    let mut rng = StdRng::seed_from_u64(mix(a.seed));
    let len_d = LogNormal::new(7.6, 0.7)?;
    let base_d = LogNormal::new(0.0, 2.0)?;
    let mut length = Vec::with_capacity(a.genes);
    let mut base = Vec::with_capacity(a.genes);
    for _ in 0..a.genes {
        length.push(len_d.sample(&mut rng) as i64 + 200);
        let r: f64 = rng.random();
        let b = base_d.sample(&mut rng);
        base.push(if r < 0.02 { 0.0 } else if r < 0.25 { b * 1e-3 } else { b });
    }
    let type_d = LogNormal::new(0.0, 0.5)?;
    let mut profiles = Vec::with_capacity(a.types);
    for _ in 0..a.types {
        let mut p: Vec<f64> =
            base.iter().zip(&length).map(|(b, &l)| b * l as f64 * type_d.sample(&mut rng)).collect();
        let s: f64 = p.iter().sum();
        if s > 0.0 {
            p.iter_mut().for_each(|x| *x /= s);
        }
        profiles.push(p);
    }
    let ids: Vec<String> = (0..a.genes).map(|j| format!("ENSMUSG{:011}", 10_000 + 3 * j)).collect();
    // Every 97th gene shares its symbol with the gene before it, as real annotations do.
    let names: Vec<String> =
        (0..a.genes).map(|j| format!("Gm{}", if j % 97 == 1 { j - 1 } else { j })).collect();
    let genes = GeneTable::from_names(ids)
        .with_column("feature_name", Arc::new(StringArray::from(names)))?
        .with_column("feature_length", Arc::new(Int64Array::from(length)))?;
    let k = a.empty_cells.min(a.cells);
    let empty = (0..k).map(|e| e * a.cells / k.max(1)).collect();
    Ok((genes, Model { profiles, types: a.types, empty, seed: a.seed, depth: a.depth }))
}

/// Generate the file described by `a`.
pub fn run(a: &GenArgs) -> Result<(), BoxError> {
    if a.types == 0 || a.genes == 0 || a.block == 0 || !(a.depth > 0.0 && a.depth.is_finite()) {
        return Err("--types, --genes, --block and --depth must be positive".into());
    }
    let (genes, model) = genes_and_model(a)?;
    let mut writer = H5adWriter::create(&a.out, &genes, XKind::Csr)?;
    let type_names = Arc::new(StringArray::from((0..a.types).map(|t| format!("type_{t}")).collect::<Vec<_>>()));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (mut nnz, mut start) = (0usize, 0usize);
    while start < a.cells {
        let end = (start + a.block).min(a.cells);
        let chunk = (end - start).div_ceil(threads);
        let cells: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (start..end)
                .step_by(chunk)
                .map(|c0| {
                    let model = &model;
                    s.spawn(move || {
                        (c0..(c0 + chunk).min(end)).map(|i| model.cell(i).map_err(|e| e.to_string())).collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|_| vec![Err("worker panicked".into())])).collect()
        });
        let mut x = Csr::empty(a.genes);
        let mut types = Vec::with_capacity(end - start);
        for c in cells {
            let (t, idx, val) = c?;
            x.push_row(&idx, &val);
            types.push(t as i32);
        }
        nnz += x.values.len();
        let ids: ArrayRef = Arc::new(StringArray::from((start..end).map(|i| format!("cell_{i:07}")).collect::<Vec<_>>()));
        let ct: ArrayRef =
            Arc::new(DictionaryArray::<Int32Type>::try_new(Int32Array::from(types), Arc::clone(&type_names) as ArrayRef)?);
        let batch = CellBatch::from_csr(vec![("cell_id".into(), ids), ("cell_type".into(), ct)], x)?;
        writer.write_batch(&batch)?;
        start = end;
    }
    let uns = Uns::map().with(
        "atlasflow_gen",
        Uns::map()
            .with("seed", Uns::Int(a.seed as i64))
            .with("n_types", Uns::Int(a.types as i64))
            .with("empty_cells", Uns::Int(a.empty_cells as i64)),
    );
    writer.finish(&uns)?;
    eprintln!(
        "{}: {} cells x {} genes, {:.0} genes detected per cell on average",
        a.out.display(),
        a.cells,
        a.genes,
        nnz as f64 / a.cells.max(1) as f64
    );
    Ok(())
}
