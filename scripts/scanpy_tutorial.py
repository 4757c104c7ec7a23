"""The Census tutorial in scanpy (preprocessing, neighbors, UMAP, Leiden, the UMAP picture), as atlasflow's pipeline runs it — the
other side of every side-by-side comparison (timing, memory, numbers).

Usage: python scripts/scanpy_tutorial.py INPUT.h5ad OUT.h5ad
Prints one JSON line: seconds per step and in total (peak memory: run under /usr/bin/time -v).
"""
import json, sys, time

import anndata as ad
import scanpy as sc
import scipy.sparse as sp

t0 = time.perf_counter()
times = {}


def step(name, f):
    t = time.perf_counter()
    r = f()
    times[name] = round(time.perf_counter() - t, 3)
    return r


a = step("read", lambda: ad.read_h5ad(sys.argv[1]))
L = a.var[["feature_length"]].to_numpy()
a.X = step("gene_length_normalize", lambda: sp.csr_matrix((a.X.T / L).T))
step("qc_metrics", lambda: sc.pp.calculate_qc_metrics(a, percent_top=None, inplace=True))
step("filter_cells", lambda: sc.pp.filter_cells(a, min_genes=500))
step("filter_genes", lambda: sc.pp.filter_genes(a, min_cells=5))
step("normalize_total", lambda: sc.pp.normalize_total(a, target_sum=1e4))
step("log1p", lambda: sc.pp.log1p(a))
step("highly_variable_genes", lambda: sc.pp.highly_variable_genes(a, n_top_genes=1000))
a = step("hvg_subset", lambda: a[:, a.var.highly_variable].copy())
step("scale", lambda: sc.pp.scale(a, max_value=10))
step("pca", lambda: sc.pp.pca(a, n_comps=50))
step("neighbors", lambda: sc.pp.neighbors(a, n_neighbors=15))
step("umap", lambda: sc.tl.umap(a))
step("leiden", lambda: sc.tl.leiden(a))
import matplotlib; matplotlib.use("Agg")
step("plot", lambda: sc.pl.umap(a, color="cell_type", save=False, show=False).figure.savefig(sys.argv[2] + ".umap.png"))
step("write", lambda: a.write_h5ad(sys.argv[2]))
times["total"] = round(time.perf_counter() - t0, 3)
print(json.dumps(times))
