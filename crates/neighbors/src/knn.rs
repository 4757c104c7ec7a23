//! The kNN table every search returns and every graph builder reads, and the checks on the
//! embedding a search runs on.

use atlasflow_core::{Result, StageError};

/// Stage name used in errors.
pub const STAGE: &str = "neighbors";

/// A k-nearest-neighbour table: row-major `n × k`, each row sorted by distance (ties by lower
/// index), the cell itself first (distance 0) unless an exact duplicate with a lower index
/// precedes it, as in scanpy.
#[derive(Clone, Debug, PartialEq)]
pub struct Knn {
    /// Number of cells (rows).
    pub n: usize,
    /// Neighbours per row, the cell itself included.
    pub k: usize,
    /// Neighbour indices, `n × k`.
    pub indices: Vec<u32>,
    /// Distances, `n × k`. Held as f64; on the approximate path they are float32 values
    /// (scanpy stores them as float32 there), see [`Knn::float32`].
    pub distances: Vec<f64>,
    /// True when the distances are float32 values (NN-descent), false for the exact search
    /// (float64 in scanpy's obsp).
    pub float32: bool,
}

impl Knn {
    /// Indices of row `i`.
    pub fn row_indices(&self, i: usize) -> &[u32] {
        &self.indices[i * self.k..(i + 1) * self.k]
    }
    /// Distances of row `i`.
    pub fn row_distances(&self, i: usize) -> &[f64] {
        &self.distances[i * self.k..(i + 1) * self.k]
    }
    /// Bytes held by an `n × k` table.
    pub fn bytes(n: usize, k: usize) -> usize {
        n * k * (4 + 8)
    }
}

/// The distance of a kNN search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Metric {
    /// Euclidean distance (scanpy's default).
    #[default]
    Euclidean,
    /// Cosine distance, 1 − cos(x, y).
    Cosine,
}

impl Metric {
    /// Parse scanpy's metric name.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "euclidean" | "l2" => Ok(Metric::Euclidean),
            "cosine" => Ok(Metric::Cosine),
            other => Err(StageError::param(
                STAGE,
                "metric",
                format!("'{other}' is not supported (euclidean or cosine)"),
            )),
        }
    }
    /// scanpy's name, as recorded in `uns["neighbors"]["params"]["metric"]`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Euclidean => "euclidean",
            Metric::Cosine => "cosine",
        }
    }
}

/// A dense row-major `n × d` f32 matrix view: the columns of an embedding a search uses.
#[derive(Clone, Copy, Debug)]
pub struct Points<'a> {
    /// Row-major values; row `i` starts at `i * stride`.
    pub values: &'a [f32],
    /// Number of rows.
    pub n: usize,
    /// Number of columns used (the first `d` of each row).
    pub d: usize,
    /// Distance between row starts (the embedding's width).
    pub stride: usize,
}

impl<'a> Points<'a> {
    /// View the first `d` columns of a row-major `n × stride` matrix, checking the shape.
    pub fn new(values: &'a [f32], n: usize, d: usize, stride: usize) -> Result<Self> {
        if d > stride || values.len() != n * stride {
            return Err(StageError::data(
                STAGE,
                format!(
                    "embedding of {} values cannot hold {n} rows of width {stride} (using {d} columns)",
                    values.len()
                ),
            ));
        }
        Ok(Points {
            values,
            n,
            d,
            stride,
        })
    }
    /// The used columns of row `i`.
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.values[i * self.stride..i * self.stride + self.d]
    }
}

/// Refuse what no search can work on: no cells, no columns, k of 0 or more than n, or a
/// non-finite value (naming the first such cell).
pub fn check_input(points: &Points<'_>, k: usize) -> Result<()> {
    if points.n == 0 {
        return Err(StageError::data(
            STAGE,
            "no cells: cannot compute neighbors of an empty frame",
        ));
    }
    if points.d == 0 {
        return Err(StageError::data(STAGE, "the representation has no columns"));
    }
    if k == 0 || k > points.n {
        return Err(StageError::param(
            STAGE,
            "n_neighbors",
            format!("{k} neighbours (self included) asked of {} cells", points.n),
        ));
    }
    for i in 0..points.n {
        if let Some(j) = points.row(i).iter().position(|v| !v.is_finite()) {
            return Err(StageError::data(
                STAGE,
                format!(
                    "cell {i} has a non-finite value ({}) in column {j} of the representation",
                    points.row(i)[j]
                ),
            ));
        }
    }
    Ok(())
}
