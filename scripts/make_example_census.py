#!/usr/bin/env python
"""Write data/example/census: the example atlas store as a CELLxGENE-Census-shaped TileDB-SOMA tree.

Usage (the pinned stack of scripts/requirements-reference.txt plus scripts/requirements-soma.txt):

    python scripts/make_example_census.py [data/example/atlas] [data/example/census]

The tree holds exactly the cells, genes and counts of the example atlas store
(data/example/atlas, built by `atlasflow ingest` from the three example h5ads), laid out as
the Census is and written with the tiledbsoma API and the Census builder's filter settings
(the same as tests/data/soma/census, see scripts/make_soma_fixtures.py):

  census_info/datasets             the store's dataset table (without its organism column,
                                   which the Census keeps as the census_data member name)
  census_info/summary              label/value, as the store's
  census_info/summary_cell_counts  cells per organism × category × label
  census_data/mus_musculus/obs     the store's obs without obs_id (the Census has no per-
                                   dataset cell name); categoricals are TileDB enumerations
                                   over the sorted union of the datasets' categories,
                                   dataset_id too, except donor_id, a dictionary-filtered
                                   string; written one dataset at a time (one fragment
                                   each), as the builder does
  census_data/mus_musculus/ms/RNA/var            soma_joinid, feature_id, feature_name,
                                                 feature_length, nnz, n_measured_obs
  census_data/mus_musculus/ms/RNA/X/raw          float32 COO, one fragment per dataset,
                                                 fragment metadata and commits consolidated
  census_data/mus_musculus/ms/RNA/feature_dataset_presence_matrix   bool, datasets × genes

So `atlasflow run pipelines/census-smartseq2-liver.yaml --input data/example/census` runs
the tutorial from a Census, and tests/soma_census.rs checks it gives the store's results.
File names carry UUIDs and timestamps, so a rerun changes every file name (not the data).
"""
import os
import shutil
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import tiledbsoma as soma

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_soma_fixtures import _df_config, _x_config  # noqa: E402  the builder's filter settings

HERE = os.path.dirname(os.path.abspath(__file__))
STORE = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(HERE, "..", "data", "example", "atlas")
OUT = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else os.path.join(HERE, "..", "data", "example", "census")
ORGANISM = "mus_musculus"
# An h5ad categorical written as a plain dictionary-filtered string, as some Census obs
# columns are: the reader must turn repeated strings into a categorical itself.
PLAIN = ("donor_id",)


def large(t):
    """Strings as the Census stores them (large_string); other types unchanged."""
    return pa.large_string() if pa.types.is_string(t) or pa.types.is_large_string(t) else t


def main():
    datasets = pq.read_table(os.path.join(STORE, "census_info", "datasets.parquet"))
    summary = pq.read_table(os.path.join(STORE, "census_info", "summary.parquet"))
    exp_dir = os.path.join(STORE, "census_data", ORGANISM)
    ids = datasets["soma_joinid"].to_pylist()
    part = lambda kind, d: os.path.join(exp_dir, kind, f"part-{d:06d}.parquet")  # noqa: E731
    obs_parts = [pq.read_table(part("obs", d)) for d in ids]
    x_parts = [pq.read_table(part("ms/RNA/X/raw", d)) for d in ids]
    pres_parts = [pq.read_table(part("ms/RNA/feature_dataset_presence_matrix", d)) for d in ids]
    var = pq.read_table(os.path.join(exp_dir, "ms", "RNA", "var.parquet"))
    n_obs = sum(t.num_rows for t in obs_parts)
    n_var = var.num_rows

    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    with soma.Collection.create(OUT) as census:
        census.metadata["census_schema_version"] = "2.1.0"
        census.metadata["census_build_date"] = "2024-07-01"
        census.metadata["dataset_schema_version"] = "5.2.0"
        info = census.add_new_collection("census_info")

        ds = datasets.drop_columns(["organism"])
        ds_schema = pa.schema([(f.name, large(f.type)) for f in ds.schema])
        strings = [f.name for f in ds_schema if pa.types.is_large_string(f.type)]
        t = info.add_new_dataframe("datasets", schema=ds_schema, domain=[(0, len(ids) - 1)],
                                   platform_config=_df_config([], ["dataset_total_cell_count"], strings))
        t.write(ds.cast(ds_schema))

        summ_schema = pa.schema([("soma_joinid", pa.int64()), ("label", pa.large_string()),
                                 ("value", pa.large_string())])
        t = info.add_new_dataframe("summary", schema=summ_schema, domain=[(0, summary.num_rows - 1)])
        t.write(pa.table({"soma_joinid": np.arange(summary.num_rows, dtype=np.int64),
                          "label": summary["label"].to_pylist(), "value": summary["value"].to_pylist()},
                         schema=summ_schema))

        obs_all = pa.concat_tables([p.drop_columns(["obs_id"]) for p in obs_parts], promote_options="permissive")
        counts = []
        for cat in ("cell_type", "assay", "tissue"):
            col = obs_all[cat].combine_chunks()
            col = col.dictionary_decode() if pa.types.is_dictionary(col.type) else col
            labels, n = np.unique(np.asarray(col.to_pylist(), dtype=object).astype(str), return_counts=True)
            counts += [("Mus musculus", cat, str(lab), int(c)) for lab, c in zip(labels, n)]
        scc_schema = pa.schema([("soma_joinid", pa.int64()), ("organism", pa.large_string()),
                                ("category", pa.large_string()), ("label", pa.large_string()),
                                ("total_cell_count", pa.int64())])
        t = info.add_new_dataframe("summary_cell_counts", schema=scc_schema, domain=[(0, len(counts) - 1)])
        t.write(pa.table({"soma_joinid": np.arange(len(counts), dtype=np.int64),
                          "organism": [c[0] for c in counts], "category": [c[1] for c in counts],
                          "label": [c[2] for c in counts], "total_cell_count": [c[3] for c in counts]},
                         schema=scc_schema))

        exp = census.add_new_collection("census_data").add_new_collection(ORGANISM, soma.Experiment)
        # obs: categoricals (and dataset_id) as enumerations over the sorted union of values.
        fields, categories = [], {}
        for f in obs_all.schema:
            col = obs_all[f.name].combine_chunks()
            if (pa.types.is_dictionary(f.type) or f.name == "dataset_id") and f.name not in PLAIN:
                values = col.dictionary_decode() if pa.types.is_dictionary(col.type) else col
                cats = sorted({v for v in values.to_pylist() if v is not None})
                categories[f.name] = cats
                index = pa.int8() if len(cats) < 128 else pa.int16()
                fields.append((f.name, pa.dictionary(index, pa.large_string())))
            else:
                t = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
                fields.append((f.name, large(t)))
        obs_schema = pa.schema(fields)
        # Enumeration codes filter as numbers; plain strings through the dictionary filter.
        numeric = [n for n, t in fields if n in categories or pa.types.is_integer(t) or pa.types.is_floating(t)]
        numeric.remove("soma_joinid")
        strings = [n for n, t in fields if pa.types.is_large_string(t)]
        other = [n for n, t in fields if n not in numeric and n not in strings and n != "soma_joinid"]
        obs = exp.add_new_dataframe("obs", schema=obs_schema, domain=[(0, n_obs - 1)],
                                    platform_config=_df_config(strings, numeric, other))
        rna = exp.add_new_collection("ms").add_new_collection("RNA", soma.Measurement)
        var_schema = pa.schema([(f.name, large(f.type)) for f in var.schema])
        t = rna.add_new_dataframe("var", schema=var_schema, domain=[(0, n_var - 1)],
                                  platform_config=_df_config([], ["feature_length", "nnz", "n_measured_obs"],
                                                             ["feature_id", "feature_name"]))
        t.write(var.cast(var_schema))

        X = rna.add_new_collection("X").add_new_sparse_ndarray(
            "raw", type=pa.float32(), shape=(n_obs, n_var), platform_config=_x_config())
        for p in x_parts:  # one fragment per dataset, as the builder writes
            jid = p["soma_joinid"].to_numpy()
            idx, val = p["x_indices"].combine_chunks(), p["x_values"].combine_chunks()
            lengths = np.diff(idx.offsets.to_numpy())
            X.write(pa.table({"soma_dim_0": np.repeat(jid, lengths).astype(np.int64),
                              "soma_dim_1": idx.flatten().to_numpy().astype(np.int64),
                              "soma_data": val.flatten().to_numpy().astype(np.float32)}))

        pres = pa.concat_tables(pres_parts)
        fdpm = rna.add_new_sparse_ndarray("feature_dataset_presence_matrix", type=pa.bool_(),
                                          shape=(len(ids), n_var))
        fdpm.write(pa.table({"soma_dim_0": pres["soma_dim_0"].to_numpy().astype(np.int64),
                             "soma_dim_1": pres["soma_dim_1"].to_numpy().astype(np.int64),
                             "soma_data": np.ones(pres.num_rows, dtype=bool)}))

    # tiledbsoma 2.3.0 loses the enumeration values written through the handle that
    # add_new_dataframe returns (the codes land, the values do not): write obs through a
    # handle opened on its own.
    with soma.DataFrame.open(os.path.join(OUT, "census_data", ORGANISM, "obs"), "w") as obs:
        for p in obs_parts:
            p = p.drop_columns(["obs_id"])
            cols = {}
            for name, typ in fields:
                col = p[name].combine_chunks()
                if name in categories:
                    values = col.dictionary_decode() if pa.types.is_dictionary(col.type) else col
                    code = {c: i for i, c in enumerate(categories[name])}
                    idx = pa.array([None if v is None else code[v] for v in values.to_pylist()], type=typ.index_type)
                    cols[name] = pa.DictionaryArray.from_arrays(idx, pa.array(categories[name], type=pa.large_string()))
                else:
                    col = col.dictionary_decode() if pa.types.is_dictionary(col.type) else col
                    cols[name] = col.cast(typ)
            obs.write(pa.table(cols, schema=obs_schema))

    # As a Census release: fragment metadata and commits consolidated, fragments kept.
    for rel in ("census_data/mus_musculus/ms/RNA/X/raw", "census_data/mus_musculus/obs"):
        kind = soma.SparseNDArray if rel.endswith("raw") else soma.DataFrame
        with kind.open(os.path.join(OUT, rel), "w") as a:
            a._handle.consolidate_and_vacuum(["fragment_meta", "commits"])
    print("tiledbsoma", soma.__version__, "->", OUT, f"({n_obs} cells x {n_var} genes)")


if __name__ == "__main__":
    main()
