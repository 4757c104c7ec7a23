"""neighbors + umap + leiden in scanpy on given PCs: the other side of `cargo xtask bench-graph`.

Usage:
  python scripts/scanpy_graph.py --make-input CELLS.parquet PCS.h5ad
      turn atlasflow's Parquet table (obs + X_pca-0..49) into an h5ad holding only the PCs
      (obsm X_pca, obs cell_type, a one-column empty X), the input of both tools;
  python scripts/scanpy_graph.py PCS.h5ad
      time sc.pp.neighbors(n_neighbors=15), sc.tl.umap, sc.tl.leiden (scanpy 1.11.5
      defaults) and print one JSON line of seconds per step (peak memory: run under
      /usr/bin/time -v).
"""
import json, sys, time

import anndata as ad
import numpy as np
import scipy.sparse as sp

if sys.argv[1] == "--make-input":
    import pandas as pd
    t = pd.read_parquet(sys.argv[2])
    cols = sorted((c for c in t.columns if c.startswith("X_pca-")), key=lambda c: int(c.split("-")[1]))
    a = ad.AnnData(X=sp.csr_matrix((len(t), 1), dtype=np.float32))
    a.obs_names = t["cell_id"].astype(str).to_numpy()
    if "cell_type" in t:
        a.obs["cell_type"] = t["cell_type"].astype("category").to_numpy()
    a.obsm["X_pca"] = t[cols].to_numpy(dtype=np.float32)
    a.write_h5ad(sys.argv[3])
    sys.exit(0)

import scanpy as sc

t0 = time.perf_counter()
times = {}


def step(name, f):
    t = time.perf_counter()
    r = f()
    times[name] = round(time.perf_counter() - t, 3)
    return r


a = step("read", lambda: ad.read_h5ad(sys.argv[1]))
step("neighbors", lambda: sc.pp.neighbors(a, n_neighbors=15, use_rep="X_pca"))
step("umap", lambda: sc.tl.umap(a))
step("leiden", lambda: sc.tl.leiden(a))
times["total"] = round(time.perf_counter() - t0, 3)
times["clusters"] = int(a.obs["leiden"].nunique())
print(json.dumps(times))
