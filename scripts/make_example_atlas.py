"""Make the example atlas inputs in data/example (deterministic, numpy seeded).

Usage (from the repository root, pinned stack):
  /work/venv-ref/bin/python scripts/make_example_atlas.py [data/example]

1. Rewrites smartseq2-liver-example.h5ad in place: X (float32 CSR: data, indices, indptr),
   var, obs index and cell order are kept byte for byte (checked after writing); obs gains
   CELLxGENE-style columns (assay, assay_ontology_term_id, tissue, tissue_general, disease,
   sex, donor_id, is_primary_data, development_stage, cell_type_ontology_term_id) and the
   synthetic cell types type_0..type_7 become mouse liver cell type names; uns["title"].
2. Writes tenx-liver-example.h5ad (800 cells, 10x 3' v2) and tenx-lung-example.h5ad
   (600 cells, 10x 3' v3): integer counts as float32 CSR (sorted indices, no explicit
   zeros), var = a seeded shuffled subset of the Smart-seq2 genes plus new Ensembl-like ids,
   var feature_name / feature_length (int64), some genes with zero counts everywhere.
3. Writes gene-lengths.tsv (feature_id, feature_length) over all ids of all three files.

Running it twice gives the same data (the Smart-seq2 rewrite is idempotent).
"""
import os, sys
import numpy as np, pandas as pd, scipy.sparse as sp, anndata as ad

OUT = sys.argv[1] if len(sys.argv) > 1 else "data/example"
SS2 = os.path.join(OUT, "smartseq2-liver-example.h5ad")

# Cell Ontology ids of the cell types used (CL), one fixed mapping.
CL = {
    "hepatocyte": "CL:0000182",
    "Kupffer cell": "CL:0000091",
    "endothelial cell of hepatic sinusoid": "CL:1000398",
    "B cell": "CL:0000236",
    "T cell": "CL:0000084",
    "natural killer cell": "CL:0000623",
    "hepatic stellate cell": "CL:0000632",
    "cholangiocyte": "CL:1000488",
    "type II pneumocyte": "CL:0002063",
    "alveolar macrophage": "CL:0000583",
    "fibroblast of lung": "CL:0002553",
}
SYNTH_TO_NAME = {
    "type_0": "hepatocyte", "type_1": "Kupffer cell",
    "type_2": "endothelial cell of hepatic sinusoid", "type_3": "B cell", "type_4": "T cell",
    "type_5": "natural killer cell", "type_6": "hepatic stellate cell", "type_7": "cholangiocyte",
}
ASSAY = {"Smart-seq2": "EFO:0008931", "10x 3' v2": "EFO:0009899", "10x 3' v3": "EFO:0009922"}


def cat(values):
    """Categorical with sorted categories (CELLxGENE stores obs labels as categoricals)."""
    values = list(values)
    return pd.Categorical(values, categories=sorted(set(values)))


def obs_columns(n, cell_types, assay, tissue, donors, rng, primary=None):
    """CELLxGENE-style obs columns for n cells; donors = [(donor_id, sex, stage), ...]."""
    d = rng.integers(0, len(donors), n)
    return pd.DataFrame({
        "assay": cat([assay] * n),
        "assay_ontology_term_id": cat([ASSAY[assay]] * n),
        "cell_type": cat(cell_types),
        "cell_type_ontology_term_id": cat(CL[t] for t in cell_types),
        "tissue": cat([tissue] * n),
        "tissue_general": cat([tissue] * n),
        "disease": cat(["normal"] * n),
        "sex": cat(donors[i][1] for i in d),
        "donor_id": cat(donors[i][0] for i in d),
        "is_primary_data": np.ones(n, bool) if primary is None else primary(d),
        "development_stage": cat(donors[i][2] for i in d),
    })


def write(a, path):
    a.write_h5ad(path, compression="gzip")
    print(f"{path}: {a.n_obs} x {a.n_vars}, nnz {a.X.nnz}, {os.path.getsize(path) / 1e6:.2f} MB")


# ---- 1. Smart-seq2 example, in place ------------------------------------------------------
a = ad.read_h5ad(SS2)
X0 = a.X.copy()
var0, obs_index0 = a.var.copy(), a.obs.index.copy()
ct = [SYNTH_TO_NAME.get(t, t) for t in a.obs["cell_type"].astype(str)]
assert set(ct) <= set(CL), set(ct) - set(CL)
rng = np.random.default_rng(2024)
obs = obs_columns(a.n_obs, ct, "Smart-seq2", "liver",
                  [("M1", "male", "8 weeks"), ("M2", "female", "8 weeks"),
                   ("M3", "male", "12 weeks"), ("M4", "female", "12 weeks")], rng)
obs.index = obs_index0
a.obs = obs
a.uns["title"] = "Liver — Smart-seq2, synthetic example"
write(a, SS2)
b = ad.read_h5ad(SS2)
for name in ("data", "indices", "indptr"):
    x, y = getattr(X0, name), getattr(b.X, name)
    assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), f"X.{name} changed"
assert b.X.dtype == np.float32 and b.X.shape == X0.shape
assert b.obs.index.equals(obs_index0) and b.var.equals(var0) and b.var.index.equals(var0.index)
ss2_ids = np.asarray(var0.index)
ss2_len = dict(zip(ss2_ids, var0["feature_length"].astype(np.int64)))
ss2_name = dict(zip(ss2_ids, var0["feature_name"].astype(str)))


# ---- 2. 10x-like datasets -----------------------------------------------------------------
def barcodes(n, rng):
    """n distinct 16-base barcodes with the 10x '-1' suffix."""
    out = []
    seen = set()
    while len(out) < n:
        s = "".join("ACGT"[i] for i in rng.integers(0, 4, 16)) + "-1"
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def tenx(n, n_shared, new_ids, types, type_p, assay, tissue, donors, seed, title, primary=None):
    rng = np.random.default_rng(seed)
    shared = rng.choice(ss2_ids, n_shared, replace=False)
    ids = np.concatenate([shared, np.asarray(new_ids)])
    ids = ids[rng.permutation(len(ids))]
    g = len(ids)
    # Gene expression profiles: ~6% of genes never expressed in this dataset.
    base = rng.lognormal(0, 1.5, g)
    base[rng.random(g) < 0.06] = 0
    t = rng.choice(len(types), n, p=type_p)
    prof = base * rng.lognormal(0, 0.7, (len(types), g))
    prof /= prof.sum(1, keepdims=True)
    indptr, indices, data = [0], [], []
    for i in range(n):
        k = int(rng.integers(600, 901))
        j = np.sort(rng.choice(g, k, replace=False, p=prof[t[i]]))
        v = rng.geometric(0.45, k) + rng.poisson(prof[t[i]][j] * 2000)
        indices.append(j)
        data.append(v.astype(np.float32))
        indptr.append(indptr[-1] + k)
    X = sp.csr_matrix((np.concatenate(data), np.concatenate(indices).astype(np.int32),
                       np.asarray(indptr, np.int32)), shape=(n, g))
    assert X.has_sorted_indices and (X.data > 0).all()
    var = pd.DataFrame({
        "feature_name": cat(ss2_name.get(f, f"Gm{int(f[7:]) // 3 + 50000}") for f in ids),
        "feature_length": np.array([ss2_len[f] if f in ss2_len else NEW_LEN[f] for f in ids], np.int64),
    }, index=pd.Index(ids))
    obs = obs_columns(n, [types[k] for k in t], assay, tissue, donors, rng, primary)
    obs.index = pd.Index(barcodes(n, rng))
    a = ad.AnnData(X, obs=obs, var=var, uns={"title": title})
    return a


# New ids: ENSMUSG numbers not of the Smart-seq2 form 10000 + 3j (so no collision).
rng = np.random.default_rng(11)
pool = np.array([f"ENSMUSG{10001 + 3 * k + (k % 2):011d}" for k in range(3000)])
pick = rng.choice(len(pool), 550, replace=False)
liver_new, both_new, lung_new = pool[pick[:150]], pool[pick[150:300]], pool[pick[300:]]
NEW_LEN = {f: int(np.exp(v) + 200) for f, v in zip(pool[pick], rng.normal(7.6, 0.7, len(pick)))}

liver = tenx(800, 4000, np.concatenate([liver_new, both_new]),
             ["hepatocyte", "Kupffer cell", "endothelial cell of hepatic sinusoid", "B cell", "T cell"],
             [0.4, 0.15, 0.15, 0.15, 0.15], "10x 3' v2", "liver",
             [("D1", "male", "10 weeks"), ("D2", "female", "10 weeks"), ("D3", "male", "16 weeks")],
             seed=21, title="Liver — 10x 3' v2, synthetic example")
# The lung dataset is partly a re-deposit: donor D4's cells are not primary data.
lung = tenx(600, 3000, np.concatenate([both_new, lung_new]),
            ["type II pneumocyte", "alveolar macrophage", "fibroblast of lung", "B cell", "T cell",
             "natural killer cell"],
            [0.3, 0.2, 0.15, 0.12, 0.13, 0.1], "10x 3' v3", "lung",
            [("D1", "male", "10 weeks"), ("D4", "female", "12 weeks"), ("D5", "female", "16 weeks")],
            seed=31, title="Lung — 10x 3' v3, synthetic example", primary=lambda d: d != 1)
write(liver, os.path.join(OUT, "tenx-liver-example.h5ad"))
write(lung, os.path.join(OUT, "tenx-lung-example.h5ad"))
for a in (liver, lung):
    zero = (np.asarray(a.X.sum(0)).ravel() == 0).sum()
    print(f"  genes with zero counts everywhere: {zero} of {a.n_vars}; "
          f"nnz/cell {np.diff(a.X.indptr).min()}..{np.diff(a.X.indptr).max()}")

# ---- 3. gene-lengths.tsv ------------------------------------------------------------------
rows = {}
for a in (b, liver, lung):
    for f, l in zip(a.var.index, a.var["feature_length"]):
        assert rows.setdefault(f, int(l)) == int(l), f
pd.DataFrame({"feature_id": list(rows), "feature_length": list(rows.values())}).to_csv(
    os.path.join(OUT, "gene-lengths.tsv"), sep="\t", index=False)
print(f"{os.path.join(OUT, 'gene-lengths.tsv')}: {len(rows)} genes")
