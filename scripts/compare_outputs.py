"""Compare atlasflow's tutorial output with scanpy's on the same input (scripts/scanpy_tutorial.py).

Usage: python scripts/compare_outputs.py OURS.h5ad SCANPY.h5ad
Checks what the tutorial issue asks: same cells and genes kept, same highly variable genes,
scaled values within 1e-4, first 10 PCs with |correlation| >= 0.999. Exit 1 on a failure.
"""
import sys

import anndata as ad
import numpy as np

ours, ref = ad.read_h5ad(sys.argv[1]), ad.read_h5ad(sys.argv[2])
ok = True


def check(what, good, detail=""):
    global ok
    ok &= bool(good)
    print(f"{'ok  ' if good else 'FAIL'} {what} {detail}")


check("cells", list(ours.obs_names) == list(ref.obs_names), f"{ours.n_obs} vs {ref.n_obs}")
check("highly variable genes", list(ours.var_names) == list(ref.var_names), f"{ours.n_vars} vs {ref.n_vars}")
if ours.shape == ref.shape:
    d = np.abs(np.asarray(ours.X, dtype=np.float64) - np.asarray(ref.X))
    check("scaled X within 1e-4", d.max() <= 1e-4, f"max abs diff {d.max():.2e}")
    for c in ("mean", "std"):
        r = np.abs(ours.var[c].to_numpy() / ref.var[c].to_numpy() - 1).max()
        check(f"var {c}", r <= 1e-5, f"max rel diff {r:.2e}")
    P, R = ours.obsm["X_pca"].astype(np.float64), ref.obsm["X_pca"].astype(np.float64)
    cors = [abs(np.corrcoef(P[:, j], R[:, j])[0, 1]) for j in range(10)]
    check("first 10 PCs |corr| >= 0.999", min(cors) >= 0.999, f"min {min(cors):.6f}")
    vr = np.abs(ours.uns["pca"]["variance_ratio"][:10] / ref.uns["pca"]["variance_ratio"][:10] - 1).max()
    check("variance_ratio (first 10)", vr <= 1e-3, f"max rel diff {vr:.2e}")
sys.exit(0 if ok else 1)
