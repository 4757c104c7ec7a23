"""Expected values for crates/pca tests, from scanpy 1.11.5 sc.pp.pca (/work/venv-ref).

Run: /work/venv-ref/bin/python crates/pca/tests/make_fixtures.py
Writes crates/pca/tests/data/:
  x.csv                        60 cells x 12 genes (float32 values; scanpy gets them as float64)
  <case>_x_pca.csv             obsm X_pca, computed with dtype="float64" (scanpy's default casts to f32)
  <case>_pcs.csv               varm PCs (genes x n_comps, zero rows outside the mask)
  <case>_variance.csv          two rows: uns variance, variance_ratio
  <case>_params.txt            uns params and the call
Cases: full (n_comps=5, no mask), hvg (var highly_variable present: used automatically),
default (n_comps=None -> 11), uncentered (zero_center=False, n_comps=4: sklearn
TruncatedSVD, randomized, which is exact here because 4 + 10 oversamples >= 12 genes).
"""
import os, warnings
import numpy as np, pandas as pd, scanpy as sc, anndata as ad

warnings.simplefilter("ignore")
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(11)
n, g = 60, 12
z = rng.normal(size=(n, 4)) * np.array([3.0, 2.0, 1.2, 0.7])
w = rng.normal(size=(4, g))
x = (z @ w + rng.normal(scale=0.3, size=(n, g)) + rng.uniform(-2, 5, g)).astype(np.float32)
with open(f"{out}/x.csv", "w") as f:
    for row in x:
        f.write(",".join(repr(float(v)) for v in row) + "\n")
X = x.astype(np.float64)

def save(name, a, key="pca", **kw):
    with open(f"{out}/{name}_x_pca.csv", "w") as f:
        for row in a.obsm["X_pca" if key == "pca" else key]:
            f.write(",".join(repr(float(v)) for v in row) + "\n")
    with open(f"{out}/{name}_pcs.csv", "w") as f:
        for row in a.varm["PCs" if key == "pca" else key]:
            f.write(",".join(repr(float(v)) for v in row) + "\n")
    u = a.uns[key]
    with open(f"{out}/{name}_variance.csv", "w") as f:
        f.write(",".join(repr(float(v)) for v in u["variance"]) + "\n")
        f.write(",".join(repr(float(v)) for v in u["variance_ratio"]) + "\n")
    with open(f"{out}/{name}_params.txt", "w") as f:
        f.write(f"call: sc.pp.pca(adata, dtype='float64', {kw})\nparams: {u['params']}\n")
    print(name, u["params"], u["variance"])

def run(name, hv=None, key="pca", **kw):
    a = ad.AnnData(X.copy())
    if hv is not None:
        a.var["highly_variable"] = hv
    sc.pp.pca(a, dtype="float64", **kw)
    save(name, a, key, **kw)

run("full", n_comps=5)
hv = np.zeros(g, dtype=bool); hv[[0, 2, 3, 5, 6, 7, 9, 11]] = True
run("hvg", hv=hv, n_comps=5)
run("default")
run("uncentered", zero_center=False, n_comps=4)
