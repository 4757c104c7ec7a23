"""What scanpy does after PCA: neighbors, umap, leiden and louvain, for the Rust tests.

Usage: python reference_graph.py INPUT.h5ad OUT.h5 [--labels COLUMN]

Runs scanpy's standard preprocessing on INPUT's counts (normalize_total 1e4, log1p,
highly_variable_genes n_top_genes=1000 subset, scale max_value 10, pca 50 comps) to get
X_pca, then every graph stage on those PCs, and writes plain HDF5 datasets (no AnnData
layout) so the Rust tests can start from the very same PCs:

  pcs                       n × 50 float32, scanpy's X_pca (the input of every stage below)
  labels                    the known cell types (if --labels), for ARI
  knn/indices, knn/distances  n × 15, self first: the kNN scanpy's neighbors used
  exact/indices             n × 16 exact (sklearn brute force) neighbours, self first
  neighbors/{distances,connectivities}/{data,indices,indptr}   obsp, as stored by scanpy
  neighbors/n_neighbors     the value after the small-data adjustment
  gauss/connectivities/...  method="gauss" on the same kNN (brute path only)
  cosine/knn/{indices,distances}, cosine/connectivities/...  metric="cosine"
  umap/X_umap, umap/a, umap/b, umap/trustworthiness (k = 15, sklearn, against pcs)
  ab/{min_dist,spread,a,b}  find_ab_params on a grid of (min_dist, spread)
  leiden/labels, leiden/ari (vs labels); leiden_igraph/labels (flavor igraph, 2 iterations)
  louvain/labels (flavor igraph)
Pinned stack: scripts/requirements-reference.txt.
"""
import argparse, warnings
import h5py, numpy as np, scipy.sparse as sp, anndata as ad, scanpy as sc
from sklearn.manifold import trustworthiness
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import NearestNeighbors
from umap.umap_ import find_ab_params

warnings.filterwarnings("ignore")
p = argparse.ArgumentParser()
p.add_argument("input"); p.add_argument("out"); p.add_argument("--labels")
args = p.parse_args()
Z = dict(compression="gzip", compression_opts=4, shuffle=True)
out = h5py.File(args.out, "w")
def put(path, values):
    values = np.asarray(values)
    if values.dtype.kind in "OUS":
        out.create_dataset(path, data=values.astype(object), dtype=h5py.string_dtype("utf-8"), **Z)
    elif values.ndim == 0:
        out.create_dataset(path, data=values)
    else:
        out.create_dataset(path, data=values, **Z)
def put_csr(path, X):
    X = sp.csr_matrix(X)
    for k in ("data", "indices", "indptr"):
        put(f"{path}/{k}", getattr(X, k))
    out[path].attrs["shape"] = np.asarray(X.shape, dtype=np.int64)

a = ad.read_h5ad(args.input)
a.X = sp.csr_matrix(a.X, dtype=np.float32)
sc.pp.normalize_total(a, target_sum=1e4)
sc.pp.log1p(a)
sc.pp.highly_variable_genes(a, n_top_genes=min(1000, a.n_vars), subset=True)
sc.pp.scale(a, max_value=10)
sc.pp.pca(a)
pcs = a.obsm["X_pca"].astype(np.float32)
put("pcs", pcs)
n = a.n_obs
if args.labels:
    put("labels", a.obs[args.labels].astype(str).to_numpy())

def knn_from(adata, key="distances"):
    """Self-first kNN (n × n_neighbors) as scanpy's connectivities saw it."""
    D = adata.obsp[key].tocsr()
    k = adata.uns["neighbors"]["params"]["n_neighbors"]
    idx = np.zeros((n, k), dtype=np.int64); dist = np.zeros((n, k), dtype=np.float64)
    for i in range(n):
        cols = D.indices[D.indptr[i]:D.indptr[i + 1]]; vals = D.data[D.indptr[i]:D.indptr[i + 1]]
        if len(cols) >= k:            # pynndescent path: self kept as a stored 0 (k + 1 stored)
            idx[i], dist[i] = cols[:k], vals[:k]
        else:                          # brute path: self removed, k - 1 stored
            idx[i, 0] = i; idx[i, 1:] = cols[:k - 1]; dist[i, 1:] = vals[:k - 1]
    return idx, dist

b = ad.AnnData(X=np.zeros((n, 1), dtype=np.float32)); b.obsm["X_pca"] = pcs
sc.pp.neighbors(b, use_rep="X_pca")
idx, dist = knn_from(b)
put("knn/indices", idx); put("knn/distances", dist)
put("neighbors/n_neighbors", b.uns["neighbors"]["params"]["n_neighbors"])
put_csr("neighbors/distances", b.obsp["distances"]); put_csr("neighbors/connectivities", b.obsp["connectivities"])
nn = NearestNeighbors(n_neighbors=16, algorithm="brute").fit(pcs.astype(np.float64))
_, ex = nn.kneighbors(pcs.astype(np.float64)); put("exact/indices", ex)
if n < 8192:
    g = ad.AnnData(X=np.zeros((n, 1), dtype=np.float32)); g.obsm["X_pca"] = pcs
    sc.pp.neighbors(g, use_rep="X_pca", method="gauss")
    put_csr("gauss/connectivities", g.obsp["connectivities"])
    c = ad.AnnData(X=np.zeros((n, 1), dtype=np.float32)); c.obsm["X_pca"] = pcs
    sc.pp.neighbors(c, use_rep="X_pca", metric="cosine")
    ci, cd = knn_from(c); put("cosine/knn/indices", ci); put("cosine/knn/distances", cd)
    put_csr("cosine/connectivities", c.obsp["connectivities"])

grid = [(md, s) for s in (0.5, 1.0, 2.0) for md in (0.0, 0.1, 0.5, 1.0) if md <= s]
ab = np.array([find_ab_params(s, md) for md, s in grid])
put("ab/min_dist", [g[0] for g in grid]); put("ab/spread", [g[1] for g in grid]); put("ab/a", ab[:, 0]); put("ab/b", ab[:, 1])

sc.tl.umap(b)
put("umap/X_umap", b.obsm["X_umap"]); put("umap/a", b.uns["umap"]["params"]["a"]); put("umap/b", b.uns["umap"]["params"]["b"])
put("umap/trustworthiness", trustworthiness(pcs, b.obsm["X_umap"], n_neighbors=15))
sc.tl.leiden(b)
put("leiden/labels", b.obs["leiden"].astype(str).to_numpy())
sc.tl.leiden(b, flavor="igraph", n_iterations=2, directed=False, key_added="leiden_igraph")
put("leiden_igraph/labels", b.obs["leiden_igraph"].astype(str).to_numpy())
sc.tl.louvain(b, flavor="igraph")
put("louvain/labels", b.obs["louvain"].astype(str).to_numpy())
if args.labels:
    truth = a.obs[args.labels].astype(str).to_numpy()
    for k in ("leiden", "leiden_igraph", "louvain"):
        put(f"{k}/ari", adjusted_rand_score(truth, b.obs[k].to_numpy()))
print({k: (float(out[k][()]) if k in out else None) for k in ("umap/trustworthiness", "leiden/ari", "louvain/ari")},
      "clusters", b.obs["leiden"].nunique())
out.close()
