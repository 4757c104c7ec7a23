"""Expected values for crates/hvg tests, from scanpy 1.11.5 (/work/venv-ref).

Run: /work/venv-ref/bin/python crates/hvg/tests/make_fixtures.py
Writes crates/hvg/tests/data/:
  x.csv               40 cells x 60 genes of log1p data (float32 values; scanpy gets them as float64)
  <case>.csv          per gene: mean_raw,var_raw (K1 of the flavor's input, float64),
                      means,dispersions,dispersions_norm,highly_variable (scanpy inplace=False output)
                      first line: '#' + params (flavor, n_top_genes, n_bins, base, ...)
Matrix features: 4 all-zero genes (dispersion NaN in seurat), a very highly expressed gene
(alone in its seurat bin: normalized dispersion exactly 1), three identical genes (ties at the
n_top_genes cut, so more than n genes are selected).
"""
import os, warnings
import numpy as np, scanpy as sc, anndata as ad
from scanpy.preprocessing._utils import _get_mean_var

warnings.simplefilter("ignore")
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)
n, g = 40, 60
mu = rng.lognormal(0.0, 1.2, g)
counts = rng.poisson(mu * rng.gamma(2.0, 0.5, (n, g))).astype(np.float64)
counts[:, [3, 17, 31, 45]] = 0                       # all-zero genes
counts[:, 59] = rng.poisson(400.0, n)                # lone gene in the top bin
counts[:, 21] = counts[:, 20]; counts[:, 22] = counts[:, 20]   # three identical genes
a = ad.AnnData(counts)
sc.pp.normalize_total(a, target_sum=1e4)
sc.pp.log1p(a)
x32 = np.asarray(a.X, dtype=np.float32)
with open(f"{out}/x.csv", "w") as f:
    for row in x32:
        f.write(",".join(repr(float(v)) for v in row) + "\n")
x32 = np.loadtxt(f"{out}/x.csv", delimiter=",", dtype=np.float32)  # what Rust reads
X = x32.astype(np.float64)

def run(name, flavor, base=None, **kw):
    b = ad.AnnData(X.copy())
    if base is not None:
        b.uns["log1p"] = {"base": base}
    e = X * np.log(base) if base is not None else X
    e = np.expm1(e) if flavor == "seurat" else e
    m, v = _get_mean_var(e)
    try:
        df = sc.pp.highly_variable_genes(b, flavor=flavor, inplace=False, **kw)
    except ValueError as err:
        with open(f"{out}/{name}.csv", "w") as f:
            f.write(f"#flavor={flavor};error={str(err).splitlines()[0]};" + ";".join(f"{k}={v}" for k, v in kw.items()) + "\n")
            f.write("mean_raw,var_raw\n")
            for i in range(g):
                f.write(f"{float(m[i])!r},{float(v[i])!r}\n")
        print(name, "error:", err)
        return None
    with open(f"{out}/{name}.csv", "w") as f:
        params = {"flavor": flavor, "base": base, **kw}
        f.write("#" + ";".join(f"{k}={v}" for k, v in params.items()) + "\n")
        f.write("mean_raw,var_raw,means,dispersions,dispersions_norm,highly_variable\n")
        for i in range(g):
            r = df.iloc[i]
            f.write(f"{float(m[i])!r},{float(v[i])!r},{float(r.means)!r},{float(r.dispersions)!r},{float(r.dispersions_norm)!r},{int(r.highly_variable)}\n")
    print(name, "selected", int(df.highly_variable.sum()), "bins", df.mean_bin.value_counts().sort_index().tolist() if "mean_bin" in df else "")
    return df

# seurat, n_top_genes landing on the three identical genes
d = run("seurat_cutoffs", "seurat")
dn = d.dispersions_norm.to_numpy()
order = np.argsort(-np.nan_to_num(dn, nan=-np.inf), kind="stable")
p = int(np.flatnonzero(order == 20)[0])
assert dn[20] == dn[21] == dn[22]
lone = d.loc[d.index[59]]
print("lone gene norm", lone.dispersions_norm, "tie position", p)
run("seurat_ntop_ties", "seurat", n_top_genes=p + 1)
run("seurat_ntop_10", "seurat", n_top_genes=10)
run("seurat_bins7", "seurat", n_bins=7, n_top_genes=15)
run("seurat_base2", "seurat", base=2.0, n_top_genes=12)
run("seurat_cut_custom", "seurat", min_mean=0.2, max_mean=4.0, min_disp=0.0, max_disp=2.0)
run("cell_ranger_ntop", "cell_ranger", n_top_genes=12)
run("cell_ranger_cutoffs", "cell_ranger")
# 10 all-zero genes of 60 (> 10 %): duplicate percentile edges
Z = X.copy(); Z[:, :10] = 0
X_saved = X; X = Z
run("cell_ranger_dup_edges", "cell_ranger", n_top_genes=12)
X = X_saved
