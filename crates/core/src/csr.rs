//! Compressed sparse rows: the plain view kernels compute on.

/// A borrowed CSR block of cells × genes. `indptr` may not start at 0 (a slice of a larger
/// Arrow buffer): row `r` holds `indices[indptr[r]..indptr[r+1]]` and the same range of
/// `values`. Column indices within a row are sorted and unique.
#[derive(Clone, Copy, Debug)]
pub struct CsrView<'a> {
    /// Row offsets, `n_rows + 1` entries, absolute into `indices` and `values`.
    pub indptr: &'a [i32],
    /// Gene (column) index of each stored value.
    pub indices: &'a [u32],
    /// The stored values.
    pub values: &'a [f32],
    /// Number of genes (columns).
    pub n_cols: usize,
}

impl<'a> CsrView<'a> {
    /// Number of cells (rows).
    pub fn n_rows(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }
    /// The (indices, values) of row `r`.
    pub fn row(&self, r: usize) -> (&'a [u32], &'a [f32]) {
        let (a, b) = (self.indptr[r] as usize, self.indptr[r + 1] as usize);
        (&self.indices[a..b], &self.values[a..b])
    }
    /// Number of stored values in the block.
    pub fn nnz(&self) -> usize {
        match (self.indptr.first(), self.indptr.last()) {
            (Some(a), Some(b)) => (*b - *a) as usize,
            _ => 0,
        }
    }
    /// A copy with offsets starting at 0.
    pub fn to_owned(&self) -> Csr {
        let base = self.indptr.first().copied().unwrap_or(0);
        let (a, b) = (base as usize, self.indptr.last().copied().unwrap_or(0) as usize);
        Csr {
            indptr: self.indptr.iter().map(|p| p - base).collect(),
            indices: self.indices[a..b].to_vec(),
            values: self.values[a..b].to_vec(),
            n_cols: self.n_cols,
        }
    }
}

/// An owned CSR block with offsets starting at 0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Csr {
    /// Row offsets, `n_rows + 1` entries, starting at 0.
    pub indptr: Vec<i32>,
    /// Gene (column) index of each stored value.
    pub indices: Vec<u32>,
    /// The stored values.
    pub values: Vec<f32>,
    /// Number of genes (columns).
    pub n_cols: usize,
}

impl Csr {
    /// An empty block with no rows.
    pub fn empty(n_cols: usize) -> Self {
        Csr { indptr: vec![0], indices: Vec::new(), values: Vec::new(), n_cols }
    }
    /// Borrow as a view.
    pub fn view(&self) -> CsrView<'_> {
        CsrView { indptr: &self.indptr, indices: &self.indices, values: &self.values, n_cols: self.n_cols }
    }
    /// Append one row given its sorted column indices and values.
    pub fn push_row(&mut self, indices: &[u32], values: &[f32]) {
        self.indices.extend_from_slice(indices);
        self.values.extend_from_slice(values);
        self.indptr.push(self.indices.len() as i32);
    }
    /// Build from dense row-major data, keeping the non-zeros (for tests and small inputs).
    pub fn from_dense(rows: &[Vec<f32>]) -> Self {
        let n_cols = rows.first().map_or(0, Vec::len);
        let mut m = Csr::empty(n_cols);
        for row in rows {
            let (mut idx, mut val) = (Vec::new(), Vec::new());
            for (j, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    idx.push(j as u32);
                    val.push(v);
                }
            }
            m.push_row(&idx, &val);
        }
        m
    }
    /// Dense row-major copy (for tests and small blocks).
    pub fn to_dense(&self) -> Vec<Vec<f32>> {
        let v = self.view();
        (0..v.n_rows())
            .map(|r| {
                let mut row = vec![0.0; self.n_cols];
                let (idx, val) = v.row(r);
                for (&j, &x) in idx.iter().zip(val) {
                    row[j as usize] = x;
                }
                row
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_round_trip_and_offset_views() {
        let rows = vec![vec![0.0, 1.0, 0.0], vec![2.0, 0.0, 3.0], vec![0.0, 0.0, 0.0]];
        let m = Csr::from_dense(&rows);
        assert_eq!(m.indptr, vec![0, 1, 3, 3]);
        assert_eq!(m.to_dense(), rows);
        let shifted = CsrView { indptr: &m.indptr[1..], ..m.view() };
        assert_eq!(shifted.n_rows(), 2);
        assert_eq!(shifted.nnz(), 2);
        assert_eq!(shifted.to_owned().to_dense(), rows[1..].to_vec());
    }
}
