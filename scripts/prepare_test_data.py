"""Make the h5ad inputs of tests/data.

Usage:
  python prepare_test_data.py SOURCE.h5ad OUT.h5ad          # the real Ziegenhain file
  python prepare_test_data.py --compress FILE.h5ad        # rewrite with gzip (xtask gen's output)
  python prepare_test_data.py --synth OUT.h5ad [CELLS GENES DEPTH SEED]   # numpy fallback

SOURCE is ziegenhain2017_smartseq2_78cells.h5ad (Ziegenhain et al. 2017, via powsimR, GPL).
The only changes: var `length` is copied to `feature_length` (int64), the Census's name for
it, X (int32 read counts) is stored as float32, as the Census stores raw counts, and obs
cell_type = "embryonic stem cell" (what every cell is) is added, as the Census has it.

--synth is the numpy recipe of scanpy-semantics.md §11 with the model of `cargo xtask gen`
(not bit-identical to it); `cargo xtask gen` is the generator the tests use.
"""
import sys, numpy as np, pandas as pd, scipy.sparse as sp, anndata as ad

if sys.argv[1] == "--compress":
    out = sys.argv[2]
    a = ad.read_h5ad(out)
elif sys.argv[1] == "--synth":
    out = sys.argv[2]
    n, g, depth, seed = (float(v) for v in (sys.argv[3:7] if len(sys.argv) > 6 else (300, 2000, 8000, 0)))
    n, g, rng = int(n), int(g), np.random.default_rng(int(seed))
    length = (np.exp(rng.normal(7.6, 0.7, g)) + 200).astype(np.int64)
    r, base = rng.random(g), rng.lognormal(0, 2.0, g)
    base[r < 0.25] *= 1e-3; base[r < 0.02] = 0
    types = rng.integers(0, 8, n)
    prof = base * length * rng.lognormal(0, 0.5, (8, g)); prof /= prof.sum(1, keepdims=True)
    d = rng.lognormal(np.log(depth), 0.5, n)
    X = rng.poisson(d[:, None] * prof[types] * rng.gamma(4, 0.25, (n, g))).astype(np.float32)
    X[np.arange(5) * n // 5] = 0                                   # a few empty cells
    a = ad.AnnData(sp.csr_matrix(X),
                   obs=pd.DataFrame({"cell_type": pd.Categorical([f"type_{t}" for t in types])},
                                    index=pd.Index([f"cell_{i:07d}" for i in range(n)], name="cell_id")),
                   var=pd.DataFrame({"feature_name": [f"Gm{j - 1 if j % 97 == 1 else j}" for j in range(g)],
                                     "feature_length": length},
                                    index=[f"ENSMUSG{10000 + 3 * j:011d}" for j in range(g)]))
else:
    src, out = sys.argv[1:3]
    a = ad.read_h5ad(src)
    a.X = a.X.astype(np.float32)
    a.var["feature_length"] = a.var["length"].astype(np.int64)
    # Every cell is a mouse embryonic stem cell (the paper's cells); the Census names the
    # type in obs cell_type (Cell Ontology CL:0002322), which the tutorial's plot colours by.
    a.obs["cell_type"] = pd.Categorical(["embryonic stem cell"] * a.n_obs)
a.write_h5ad(out, compression="gzip")
print(f"{out}: {a.n_obs} x {a.n_vars}")
