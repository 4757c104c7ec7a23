//! A small frame of cells in separated blobs, and PNG decoding, shared by the tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, DictionaryArray, Float64Array, StringArray};
use arrow::datatypes::Int32Type;
use atlasflow_core::{CellFrame, Embedding, Uns};
use atlasflow_plot::Rgb;

/// Blob centres, 10 units apart (points have sd 1).
pub const CENTRES: [(f64, f64); 5] = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0), (10.0, 10.0), (5.0, 5.0)];

/// A deterministic generator (splitmix64) with standard normals by Box–Muller.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// `n` cells: obsm `X_umap` in five blobs (labels c0..c4 in obs `cluster`, categorical),
/// obs `val` = the x coordinate, `label` = the cluster as plain strings, `flag` = x > 5.
pub fn blobs(n: usize) -> CellFrame {
    let mut rng = Rng::new(7);
    let mut values = Vec::with_capacity(2 * n);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let c = (rng.next_u64() % 5) as usize;
        let (cx, cy) = CENTRES[c];
        values.push((cx + rng.normal()) as f32);
        values.push((cy + rng.normal()) as f32);
        labels.push(format!("c{c}"));
    }
    // Categories in c0..c4 order (dictionary built from the sorted names).
    let names: Vec<&str> = ["c0", "c1", "c2", "c3", "c4"].to_vec();
    let keys: Vec<i32> = labels.iter().map(|l| names.iter().position(|n| n == l).unwrap() as i32).collect();
    let dict = DictionaryArray::<Int32Type>::try_new(
        arrow::array::Int32Array::from(keys),
        Arc::new(StringArray::from(names.clone())),
    )
    .unwrap();
    let val: ArrayRef = Arc::new(Float64Array::from((0..n).map(|i| f64::from(values[2 * i])).collect::<Vec<_>>()));
    let flag: ArrayRef = Arc::new(BooleanArray::from((0..n).map(|i| values[2 * i] > 5.0).collect::<Vec<_>>()));
    let label: ArrayRef = Arc::new(StringArray::from(labels.iter().map(String::as_str).collect::<Vec<_>>()));
    CellFrame {
        n_cells: n,
        obs: vec![
            ("cluster".into(), Arc::new(dict) as ArrayRef),
            ("val".into(), val),
            ("label".into(), label),
            ("flag".into(), flag),
        ],
        obsm: vec![("X_umap".into(), Embedding { values, width: 2 })],
        obsp: vec![],
        uns: Uns::map(),
    }
}

/// The cluster code of each cell.
pub fn codes(frame: &CellFrame) -> Vec<usize> {
    let e = frame.obsm("X_umap").unwrap();
    (0..frame.n_cells)
        .map(|i| {
            let r = e.row(i);
            let (x, y) = (f64::from(r[0]), f64::from(r[1]));
            (0..5)
                .min_by(|&a, &b| {
                    let da = (x - CENTRES[a].0).powi(2) + (y - CENTRES[a].1).powi(2);
                    let db = (x - CENTRES[b].0).powi(2) + (y - CENTRES[b].1).powi(2);
                    da.total_cmp(&db)
                })
                .unwrap()
        })
        .collect()
}

/// Cells with no cell of another cluster within `dist` data units.
pub fn isolated(frame: &CellFrame, labels: &[usize], dist: f32) -> Vec<usize> {
    let e = frame.obsm("X_umap").unwrap();
    (0..frame.n_cells)
        .filter(|&i| {
            (0..frame.n_cells).all(|j| {
                labels[j] == labels[i] || {
                    let (a, b) = (e.row(i), e.row(j));
                    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) > dist * dist
                }
            })
        })
        .collect()
}

/// A decoded PNG.
pub struct Decoded {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Decoded {
    pub fn pixel(&self, x: f64, y: f64) -> Rgb {
        let (x, y) = (x.floor() as usize, y.floor() as usize);
        let i = (y * self.width + x) * 3;
        Rgb([self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]])
    }
}

/// Decode an 8-bit RGB PNG.
pub fn decode_png(bytes: &[u8]) -> Decoded {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf.truncate(info.buffer_size());
    Decoded { width: info.width as usize, height: info.height as usize, rgb: buf }
}
