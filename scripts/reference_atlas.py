"""Reference selections for the atlas store tests (pandas / numpy / scipy, no atlasflow code).

Usage (from the repository root, pinned stack):
  # against a store written by `atlasflow ingest` (filters on its obs parts; presence etc. from
  # the same inputs, which must be given in ingest order):
  /work/venv-ref/bin/python scripts/reference_atlas.py STORE OUT.json \
      --inputs data/example/smartseq2-liver-example.h5ad \
               data/example/tenx-liver-example.h5ad data/example/tenx-lung-example.h5ad
  # without a store: obs assembled from the inputs as the store layout describes it
  /work/venv-ref/bin/python scripts/reference_atlas.py --from-inputs OUT.json \
      --inputs data/example/smartseq2-liver-example.h5ad \
               data/example/tenx-liver-example.h5ad data/example/tenx-lung-example.h5ad
  Options: --filters FILE (default tests/data/atlas/filters.txt).

OUT.json:
  {"filters":  [{"filter": F, "soma_joinids": [sorted ids that df.query(F) selects]}, ...],
   "var_feature_ids": [feature_id of var soma_joinid 0, 1, ...],
   "presence": {"<dataset_id>": [feature_ids of presence[dataset_joinid, :].nonzero()[1]]},
   "datasets": {"<dataset_id>": {"soma_joinid", "n_obs", "n_vars", "n_present",
                                 "first_cells": [{"obs_id", "nnz", "raw_sum"} x 5]}}}
  ("presence", "var_feature_ids" and "datasets" only with --inputs.)

Definitions (store layout v1 + Census schema):
- dataset_id = the input file's stem; dataset soma_joinid = position in --inputs.
- obs soma_joinid: 0.. over all cells, datasets in ingest order, each in its file order.
- var soma_joinid: order of first appearance (datasets in ingest order, each var in file
  order; a feature_id already seen keeps its joinid).
- presence[d, v] = True iff gene v has a count > 0 in at least one cell of dataset d
  (Census "feature dataset presence matrix"); it is built as a scipy sparse datasets x genes
  matrix and read back, as the Census tutorial does, with presence[d, :].nonzero()[1].
- nnz = non-zero X values of the cell; raw_sum = sum of its X values (float64 of the float32
  counts); n_measured_vars = number of genes present in the cell's dataset (row sum of the
  presence matrix, Census obs schema).
Categorical obs columns are compared as plain strings.
"""
import argparse, glob, json, os, sys
import numpy as np, pandas as pd, scipy.sparse as sp


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("paths", nargs="+", help="STORE OUT.json, or OUT.json with --from-inputs")
    p.add_argument("--inputs", nargs="+", default=[], help="input h5ads in ingest order")
    p.add_argument("--from-inputs", action="store_true", help="assemble obs from --inputs")
    p.add_argument("--filters", default="tests/data/atlas/filters.txt")
    a = p.parse_args()
    want = 1 if a.from_inputs else 2
    if len(a.paths) != want:
        p.error("expected OUT.json with --from-inputs, else STORE OUT.json")
    if a.from_inputs and not a.inputs:
        p.error("--from-inputs needs --inputs")
    return a


def read_filters(path):
    """Non-empty lines that are not `#` comments."""
    with open(path, encoding="utf-8") as f:
        return [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]


def strings_for_categoricals(df):
    for c in df.columns:
        if isinstance(df[c].dtype, pd.CategoricalDtype):
            df[c] = df[c].astype(str).astype(object)
    return df


def store_obs(store):
    """All obs parts of the (single) organism of STORE, in soma_joinid order."""
    import pyarrow.parquet as pq
    orgs = sorted(glob.glob(os.path.join(store, "census_data", "*", "obs")))
    if len(orgs) != 1:
        sys.exit(f"{store}: expected one organism under census_data, found {len(orgs)}")
    parts = sorted(glob.glob(os.path.join(orgs[0], "*.parquet")))
    if not parts:
        sys.exit(f"{orgs[0]}: no obs parts")
    df = pd.concat([strings_for_categoricals(pq.read_table(p).to_pandas()) for p in parts],
                   ignore_index=True)
    return df.sort_values("soma_joinid", kind="stable").reset_index(drop=True)


def load_inputs(paths):
    """Per-dataset AnnData (CSR X), the var joinid map and the presence matrix."""
    import anndata as ad
    ds, var_ids = [], {}
    for p in paths:
        a = ad.read_h5ad(p)
        X = sp.csr_matrix(a.X)
        for f in a.var.index:
            var_ids.setdefault(str(f), len(var_ids))
        ds.append((os.path.splitext(os.path.basename(p))[0], a, X))
    rows, cols = [], []
    for d, (_, a, X) in enumerate(ds):
        counted = np.asarray((X > 0).sum(axis=0)).ravel() > 0      # count > 0 in some cell
        for f in np.asarray(a.var.index.astype(str))[counted]:
            rows.append(d)
            cols.append(var_ids[f])
    presence = sp.csr_matrix((np.ones(len(rows), bool), (rows, cols)),
                             shape=(len(ds), len(var_ids)), dtype=bool)
    return ds, var_ids, presence


def inputs_obs(ds, presence):
    """The obs frame the store layout describes, assembled from the inputs."""
    frames, start = [], 0
    for d, (name, a, X) in enumerate(ds):
        obs = strings_for_categoricals(a.obs.copy())
        n = a.n_obs
        head = pd.DataFrame({"soma_joinid": np.arange(start, start + n, dtype=np.int64),
                             "dataset_id": [name] * n,
                             "obs_id": np.asarray(a.obs.index.astype(str), dtype=object)})
        tail = pd.DataFrame({
            "nnz": np.diff(X.indptr).astype(np.int64),           # X has no explicit zeros
            "raw_sum": np.asarray(X.sum(axis=1, dtype=np.float64)).ravel(),
            "n_measured_vars": np.full(n, presence[d].nnz, np.int64)})
        if (X.data == 0).any():
            tail["nnz"] = np.diff((X != 0).tocsr().indptr).astype(np.int64)
        frames.append(pd.concat([head, obs.reset_index(drop=True), tail], axis=1))
        start += n
    return pd.concat(frames, ignore_index=True)


def main():
    args = parse_args()
    out = args.paths[-1]
    result = {}
    ds = None
    if args.inputs:
        ds, var_ids, presence = load_inputs(args.inputs)
        id_of = np.array(list(var_ids), dtype=object)               # joinid -> feature_id
        result["var_feature_ids"] = id_of.tolist()
        result["presence"] = {name: id_of[presence[d, :].nonzero()[1]].tolist()
                              for d, (name, _, _) in enumerate(ds)}
    df = inputs_obs(ds, presence) if args.from_inputs else store_obs(args.paths[0])
    filters = []
    for f in read_filters(args.filters):
        sel = df.query(f)["soma_joinid"].to_numpy(dtype=np.int64)
        filters.append({"filter": f, "soma_joinids": sorted(int(i) for i in sel)})
    result = {"filters": filters, **result}
    if ds is not None:
        info, start = {}, 0
        for d, (name, a, X) in enumerate(ds):
            first = []
            for i in range(min(5, a.n_obs)):
                row = X[i]
                first.append({"obs_id": str(a.obs.index[i]), "nnz": int((row.data != 0).sum()),
                              "raw_sum": float(row.data.astype(np.float64).sum())})
            info[name] = {"soma_joinid": d, "n_obs": int(a.n_obs), "n_vars": int(a.n_vars),
                          "n_present": int(presence[d].nnz), "obs_soma_joinid_start": start,
                          "first_cells": first}
            start += a.n_obs
        result["datasets"] = info
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"{out}: {len(filters)} filters over {len(df)} cells"
          + (f", presence of {len(ds)} datasets" if ds else ""))
    for x in filters:
        print(f"  {len(x['soma_joinids']):5d}  {x['filter']}")


if __name__ == "__main__":
    main()
