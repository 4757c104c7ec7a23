"""Check that anndata (0.12) / scanpy read an h5ad file atlasflow wrote, with everything in place.

Run by crates/io/tests/h5ad.rs (test `anndata_reads_our_output`) as
    python check_h5ad.py <file.h5ad> [csr|dense]
The file holds the cells built by `sample_batches()` in that test; the values asserted here
must match it. Exit status 0 means every check passed.
"""

import sys

import anndata as ad
import numpy as np
import pandas as pd

import scipy.sparse as sp

path = sys.argv[1]
kind = sys.argv[2] if len(sys.argv) > 2 else "csr"
a = ad.read_h5ad(path)

# X: float32, 9 cells x 5 genes, CSR (one index dtype for indices and indptr) or dense.
assert a.shape == (9, 5), a.shape
assert a.X.dtype == np.float32, a.X.dtype
if kind == "csr":
    assert sp.issparse(a.X) and a.X.format == "csr", type(a.X)
    assert a.X.indices.dtype == a.X.indptr.dtype, (a.X.indices.dtype, a.X.indptr.dtype)
    X = a.X.toarray()
else:
    assert isinstance(a.X, np.ndarray), type(a.X)
    X = a.X
expected = np.zeros((9, 5), dtype=np.float32)
for i in range(9):
    # row i holds i+1 at gene i % 5 and 0.5 at gene (i + 2) % 5 (see sample_batches)
    expected[i, i % 5] = i + 1
    expected[i, (i + 2) % 5] += 0.5
assert np.array_equal(X, expected), (X, expected)

# obs
assert list(a.obs_names) == [f"cell{i}" for i in range(9)], list(a.obs_names)
assert list(a.obs.columns) == ["cell_type", "donor", "score", "count", "flag", "maybe"], list(a.obs.columns)
ct = a.obs["cell_type"]
assert isinstance(ct.dtype, pd.CategoricalDtype), ct.dtype
assert list(ct.cat.categories) == ["T", "B", "NK"], list(ct.cat.categories)
assert list(ct.astype(str)) == ["T", "B", "T", "B", "NK", "B", "T", "NK", "NK"], list(ct)
assert a.obs["donor"].dtype == object and a.obs["donor"].iloc[4] == "d4", a.obs["donor"]
assert a.obs["score"].dtype == np.float32 and abs(a.obs["score"].iloc[3] - 0.75) < 1e-7
assert a.obs["count"].dtype == np.int64 and a.obs["count"].iloc[8] == 80
assert a.obs["flag"].dtype == bool and a.obs["flag"].iloc[1] and not a.obs["flag"].iloc[0]
maybe = a.obs["maybe"]
assert str(maybe.dtype) == "Int32", maybe.dtype
assert pd.isna(maybe.iloc[2]) and maybe.iloc[3] == 3

# var
assert list(a.var_names) == [f"g{j}" for j in range(5)], list(a.var_names)
assert list(a.var.columns) == ["means", "feature_length", "highly_variable"], list(a.var.columns)
assert a.var["means"].dtype == np.float64 and a.var["means"].iloc[2] == 2.5
assert a.var["feature_length"].dtype == np.int64 and a.var["feature_length"].iloc[4] == 1400
assert a.var["highly_variable"].dtype == bool and a.var["highly_variable"].iloc[1]

# obsm / varm
pca = a.obsm["X_pca"]
assert pca.shape == (9, 2) and pca.dtype == np.float32, (pca.shape, pca.dtype)
assert np.allclose(pca[:, 0], np.arange(9)) and np.allclose(pca[:, 1], -np.arange(9))
pcs = a.varm["PCs"]
assert pcs.shape == (5, 3) and pcs.dtype == np.float32, (pcs.shape, pcs.dtype)
assert np.allclose(pcs[4], [12, 13, 14])
assert len(a.obsp) == 0 and len(a.varp) == 0 and len(a.layers) == 0

# uns
u = a.uns
assert u["log1p"]["base"] is None, u["log1p"]
assert u["pca"]["params"]["zero_center"] is True or u["pca"]["params"]["zero_center"] == True
assert u["pca"]["params"]["n_comps"] == 2
assert np.allclose(u["pca"]["variance_ratio"], [0.6, 0.3])
assert u["hvg"]["flavor"] == "seurat", u["hvg"]
assert list(u["names"]) == ["a", "b"], u["names"]
assert u["pi"] == 3.25

# scanpy itself can use it
try:
    import scanpy as sc

    sc.pp.calculate_qc_metrics(a, percent_top=None, inplace=True)
    assert np.allclose(a.obs["total_counts"].to_numpy(), expected.sum(1))
except ImportError:
    pass

print("ok")
