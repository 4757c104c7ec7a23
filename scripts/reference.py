"""What scanpy does: the Census "full-length normalization" tutorial, stage by stage.

Usage: python reference.py INPUT.h5ad OUT.h5 [--length-column feature_length]

Runs the steps of scanpy-semantics.md §11 (neighbors, umap and leidenalg leiden included) on INPUT and writes
every stage's output to OUT.h5 as plain HDF5 datasets (no AnnData layout), so Rust tests can
read them with the hdf5 crate alone. Sparse X is a group {data (f64), indices, indptr} with a
`shape` attribute. Pinned stack: scripts/requirements-reference.txt.
"""
import argparse, sys, warnings
import h5py, numpy as np, scipy.sparse as sp, anndata as ad, scanpy as sc

warnings.filterwarnings("ignore")
p = argparse.ArgumentParser()
p.add_argument("input"); p.add_argument("out")
p.add_argument("--length-column", default="feature_length")
args = p.parse_args()
Z = dict(compression="gzip", compression_opts=4, shuffle=True)

out = h5py.File(args.out, "w")
def put(path, values):
    values = np.asarray(values)
    if values.dtype.kind in "OUS":
        out.create_dataset(path, data=values.astype(object), dtype=h5py.string_dtype("utf-8"), **Z)
    else:
        out.create_dataset(path, data=values, **Z)
def put_csr(path, X):
    X = sp.csr_matrix(X)
    for k in ("data", "indices", "indptr"):
        put(f"{path}/{k}", getattr(X, k))
    out[path].attrs["shape"] = np.asarray(X.shape, dtype=np.int64)

a = ad.read_h5ad(args.input)
obs0, var0 = set(a.obs.columns), set(a.var.columns)

# 1. gene length: X / length, gene by gene, as the tutorial writes it (float64 CSR from here)
L = a.var[[args.length_column]].to_numpy()
a.X = sp.csr_matrix((a.X.T / L).T);                                 put_csr("gene_length/X", a.X)
# 2. qc metrics
sc.pp.calculate_qc_metrics(a, percent_top=None, inplace=True)
for c in sorted(set(a.obs.columns) - obs0): put(f"qc/obs/{c}", a.obs[c].to_numpy())
for c in sorted(set(a.var.columns) - var0): put(f"qc/var/{c}", a.var[c].to_numpy())
# 3. filters
sc.pp.filter_cells(a, min_genes=500)
put("filter_cells/obs_names", a.obs_names); put("filter_cells/n_genes", a.obs["n_genes"])
sc.pp.filter_genes(a, min_cells=5)
put("filter_genes/var_names", a.var_names); put("filter_genes/n_cells", a.var["n_cells"])
# filter_genes/X (the input of normalize_total) is gene_length/X[filter_cells/obs_names,
# filter_genes/var_names]: the filters do not change values. Not stored, to keep tests/data small.
# 4. normalize, log
sc.pp.normalize_total(a, target_sum=1e4);                            put_csr("normalize_total/X", a.X)
sc.pp.log1p(a);                                                      put_csr("log1p/X", a.X)
# 5. highly variable genes (seurat, then cell_ranger on the same log1p data), subset
HVG = ("highly_variable", "means", "dispersions", "dispersions_norm")
try:
    df = sc.pp.highly_variable_genes(a, flavor="cell_ranger", n_top_genes=1000, inplace=False)
    for c in HVG: put(f"hvg_cell_ranger/var/{c}", df[c].to_numpy())
except ValueError as e:
    put("hvg_cell_ranger/error", np.array([str(e)]))
sc.pp.highly_variable_genes(a, n_top_genes=1000)
for c in HVG: put(f"hvg/var/{c}", a.var[c].to_numpy())
a = a[:, a.var["highly_variable"].to_numpy()].copy();               put("hvg_subset/var_names", a.var_names)
# 6. scale (dense float64 out)
sc.pp.scale(a, max_value=10)
put("scale/X", np.asarray(a.X)); put("scale/var/mean", a.var["mean"]); put("scale/var/std", a.var["std"])
# 7. pca (what sc.tl.pca and neighbors run: arpack, 50 comps, HVG mask)
sc.pp.pca(a)
put("pca/X_pca", a.obsm["X_pca"]); put("pca/PCs", a.varm["PCs"])
put("pca/variance", a.uns["pca"]["variance"]); put("pca/variance_ratio", a.uns["pca"]["variance_ratio"])
# 8. the tutorial's second half: neighbors, umap, leiden (leidenalg, scanpy 1.11.5's default)
sc.pp.neighbors(a)
put_csr("neighbors/connectivities", a.obsp["connectivities"]); put_csr("neighbors/distances", a.obsp["distances"])
put("neighbors/n_neighbors", np.asarray([a.uns["neighbors"]["params"]["n_neighbors"]]))
sc.tl.umap(a)
from sklearn.manifold import trustworthiness
put("umap/X_umap", a.obsm["X_umap"])
put("umap/trustworthiness", np.asarray([trustworthiness(a.obsm["X_pca"], a.obsm["X_umap"], n_neighbors=min(15, (a.n_obs - 1) // 2))]))
sc.tl.leiden(a)
put("leiden/labels", a.obs["leiden"].astype(str).to_numpy())
if "cell_type" in a.obs:
    from sklearn.metrics import adjusted_rand_score
    put("leiden/ari_cell_type", np.asarray([adjusted_rand_score(a.obs["cell_type"].astype(str), a.obs["leiden"])]))

for m in ("scanpy", "anndata", "numpy", "scipy", "sklearn", "h5py", "pandas", "umap", "leidenalg"):
    out.attrs[m] = __import__(m).__version__
out.attrs["command"] = " ".join(["python", "scripts/reference.py"] + sys.argv[1:])
out.attrs["n_obs"], out.attrs["n_vars"] = a.n_obs, a.n_vars
out.close()
print(f"{args.out}: {a.n_obs} cells x {a.n_vars} HVGs")
