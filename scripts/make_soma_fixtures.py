#!/usr/bin/env python
"""Build the TileDB-SOMA fixtures of tests/data/soma with real tiledbsoma.

Usage (the pinned stack of scripts/requirements-reference.txt plus
scripts/requirements-soma.txt: tiledbsoma 2.3.0, TileDB core 2.30, format version 22):

    python scripts/make_soma_fixtures.py [tests/data/soma]
    python scripts/make_soma_fixtures.py --dump-only DIR TREE...   # reference of other trees
    python scripts/make_soma_fixtures.py --bench DIR [N_OBS N_VAR] # a large Census-shaped tree
    python scripts/make_soma_fixtures.py --add-tree bands [DIR]    # (re)build one tree only

--add-tree rebuilds one tree (today only "bands", added after the others) and merges its
objects into reference/index.json, so the other trees' files do not churn.

--bench writes DIR/census only (default 100000 cells x 2000 genes, about 100 non-zeros per
cell, no reference dump): the tree the streaming-throughput measurements read
(crates/soma/examples/x_throughput.rs, scripts/soma_x_throughput.py). It is not checked in.

The Rust fixture test reads another directory laid out the same way when SOMA_FIXTURES
is set (e.g. trees written by another tiledbsoma version, dumped with --dump-only).

Adapted from the feasibility probe's make_soma_probe.py (our own reference material).
The output directory is wiped first, then holds:

  experiment/  a small AnnData (generated here) via tiledbsoma.io.from_anndata with the
               default platform config: obs categoricals become TileDB enumerations (the
               obs schema is evolved once to extend them), one categorical has missing
               values, obsm becomes a SparseNDArray; then update_obs adds a column and
               rewrites obs (overlapping fragments in an array without duplicates). X is
               large enough that its data tiles span several filter chunks.
  census/      a Census-shaped tree built with the tiledbsoma API and the filter settings
               of the cellxgene-census builder (dictionary-filtered strings, byteshuffle,
               double-delta, zstd 9/19): census_info/{datasets, summary,
               summary_cell_counts}, census_data/homo_sapiens/{obs, ms/RNA/{var, X/raw,
               X/normalized, feature_dataset_presence_matrix}}. X/raw keeps three
               fragments but has consolidated fragment metadata and commits; X/normalized
               is fragment-consolidated and vacuumed (one fragment with t.tdb).
  tiles/       small capacities and tile extents, so every field spans many data tiles
               and the R-tree has several levels; written in several fragments. Its
               DataFrame's schema is evolved between two writes (two columns added), so
               the older fragment reads the new columns as fill values. overwrite/ and
               overwrite_consolidated/ disallow duplicates and are written three times
               over overlapping cells (the newest value wins; the consolidated one keeps
               older versions of cells with per-cell timestamps).
  filters/     one DataFrame column per further filter pipeline (gzip, lz4, delta,
               positive delta, bit-width reduction, RLE on numbers and strings,
               checksums, bitshuffle), non-default offsets and validity pipelines.
  bands/       X with more rows than one Census band (5,000 rows, dim-0 tile extent 2048
               as in the Census, capacity 64 so each band spans many data tiles), written
               in two fragments whose row ranges overlap (duplicates allowed); many rows
               are empty. For band streaming across band and fragment boundaries.
  reference/   what tiledbsoma reads back: index.json lists every SOMA object (path,
               soma_object_type, metadata, group members) and, per array, a gzipped
               JSON file {"columns": {name: {"type": arrow type, "values": [...]}}} in
               tiledbsoma's read order. Floats are written as their Python repr
               strings ("nan" for NaN), which round-trip exactly; dictionary
               (enumeration) columns are decoded to their values; nulls are JSON null.

Values are deterministic (fixed seeds, gzip mtime 0); tiledbsoma's file names carry
UUIDs and wall-clock timestamps, so file names change on every run.

Git keeps no empty directories: a checkout lacks the empty __labels/, __commits/ or
__fragment_meta/ folders TileDB creates; the Rust reader treats a missing folder as empty.
Known tiledbsoma 2.3.0 crash avoided here: reading a DataFrame that allows duplicates
after a column was added segfaults, so tiles/df disallows duplicates.
"""
import gzip
import json
import os
import shutil
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp

import anndata as ad
import tiledbsoma as soma
import tiledbsoma.io

OUT = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "soma")


# ----------------------------------------------------------------------------- experiment
def experiment(out, n_obs=800, n_var=200, density=0.12, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(n_obs, n_var, density=density, format="csr", random_state=seed,
                  data_rvs=lambda k: rng.poisson(3, k) + 1).astype(np.float32)
    donor = rng.choice([f"donor_{i}" for i in range(6)], n_obs).astype(object)
    donor[::11] = None  # a categorical with missing values: null codes in the enumeration column
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(rng.choice(["T cell", "B cell", "NK cell", "monocyte"], n_obs)),
            "donor": pd.Categorical(donor),
            "n_counts": np.asarray(X.sum(1)).ravel().astype(np.float32),
            "batch": rng.integers(0, 4, n_obs).astype(np.int32),
            "is_primary": rng.random(n_obs) > 0.3,
            "note": [f"cell note {i % 17}" if i % 5 else "" for i in range(n_obs)],
        },
        index=[f"cell_{i}" for i in range(n_obs)],
    )
    var = pd.DataFrame(
        {"feature_name": [f"GENE{i}" for i in range(n_var)],
         "feature_length": rng.integers(200, 20000, n_var)},
        index=[f"ENSG{i:011d}" for i in range(n_var)],
    )
    obsm = {"X_pca": rng.normal(size=(n_obs, 4)).astype(np.float64)}
    adata = ad.AnnData(X=X, obs=obs, var=var, obsm=obsm)
    uri = os.path.join(out, "experiment")
    tiledbsoma.io.from_anndata(uri, adata, measurement_name="RNA")
    # update_obs evolves the obs schema (a new column) and rewrites every row in a new
    # fragment: obs disallows duplicates, so a reader must let the newest cell win.
    new_obs = adata.obs.copy()
    new_obs["qc_pass"] = new_obs["n_counts"] > np.median(new_obs["n_counts"])
    with soma.Experiment.open(uri, "w") as exp:
        tiledbsoma.io.update_obs(exp, new_obs)
    return uri, adata


# ------------------------------------------------------------------------- census-shaped
# Filter settings modelled on the cellxgene-census builder (build_soma/globals.py):
# categorical-like strings use DictionaryFilter+zstd (no TileDB enumerations),
# numeric columns ByteShuffle+zstd, soma_joinid DoubleDelta+zstd, X dims/data zstd.
_Z19 = {"_type": "ZstdFilter", "level": 19}
_Z9 = {"_type": "ZstdFilter", "level": 9}


def _df_config(dict_like, numeric, other, capacity=2**16, allows_duplicates=True):
    return {"tiledb": {"create": {
        "capacity": capacity,
        "dims": {"soma_joinid": {"filters": ["DoubleDeltaFilter", _Z19]}},
        "attrs": {**{k: {"filters": ["ByteShuffleFilter", _Z9]} for k in numeric},
                  **{k: {"filters": ["DictionaryFilter", _Z19]} for k in dict_like},
                  **{k: {"filters": [_Z19]} for k in other}},
        "offsets_filters": ["DoubleDeltaFilter", _Z19],
        "allows_duplicates": allows_duplicates,
    }}}


def _x_config(capacity=2**16, tile=2048):
    return {"tiledb": {"create": {
        "capacity": capacity,
        "dims": {"soma_dim_0": {"tile": tile, "filters": [_Z9]},
                 "soma_dim_1": {"tile": tile, "filters": ["ByteShuffleFilter", _Z9]}},
        "attrs": {"soma_data": {"filters": ["ByteShuffleFilter", _Z9]}},
        "cell_order": "row-major", "tile_order": "row-major",
        "allows_duplicates": True,
    }}}


def census_like(out, adata, n_datasets=3, seed=1):
    rng = np.random.default_rng(seed)
    n_obs, n_var = adata.shape
    uri = os.path.join(out, "census")
    with soma.Collection.create(uri) as census:
        census.metadata["census_schema_version"] = "2.1.0"
        census.metadata["census_build_date"] = "2024-07-01"
        census.metadata["dataset_schema_version"] = "5.2.0"

        info = census.add_new_collection("census_info")
        ds_schema = pa.schema([("soma_joinid", pa.int64()), ("collection_id", pa.large_string()),
                               ("dataset_id", pa.large_string()), ("dataset_title", pa.large_string()),
                               ("dataset_total_cell_count", pa.int64())])
        ds = info.add_new_dataframe("datasets", schema=ds_schema, domain=[(0, n_datasets - 1)],
                                    platform_config=_df_config([], ["dataset_total_cell_count"],
                                                               ["collection_id", "dataset_id", "dataset_title"]))
        dataset_of_cell = rng.integers(0, n_datasets, n_obs)
        ds.write(pa.table({
            "soma_joinid": np.arange(n_datasets, dtype=np.int64),
            "collection_id": [f"coll-{i % 2}" for i in range(n_datasets)],
            "dataset_id": [f"ds-{i:04d}" for i in range(n_datasets)],
            "dataset_title": [f"Fixture dataset {i} — ünïcode" for i in range(n_datasets)],
            "dataset_total_cell_count": np.bincount(dataset_of_cell, minlength=n_datasets).astype(np.int64),
        }, schema=ds_schema))
        summ_schema = pa.schema([("soma_joinid", pa.int64()), ("label", pa.large_string()),
                                 ("value", pa.large_string())])
        summ = info.add_new_dataframe("summary", schema=summ_schema, domain=[(0, 1)])
        summ.write(pa.table({"soma_joinid": np.arange(2, dtype=np.int64),
                             "label": ["census_schema_version", "total_cell_count"],
                             "value": ["2.1.0", str(n_obs)]}, schema=summ_schema))
        scc_schema = pa.schema([("soma_joinid", pa.int64()), ("organism", pa.large_string()),
                                ("category", pa.large_string()), ("label", pa.large_string()),
                                ("total_cell_count", pa.int64())])
        scc = info.add_new_dataframe("summary_cell_counts", schema=scc_schema, domain=[(0, 3)])
        ct = adata.obs["cell_type"].astype(str).to_numpy()
        labels = sorted(set(ct))
        scc.write(pa.table({"soma_joinid": np.arange(len(labels), dtype=np.int64),
                            "organism": ["Homo sapiens"] * len(labels),
                            "category": ["cell_type"] * len(labels),
                            "label": labels,
                            "total_cell_count": [int((ct == lab).sum()) for lab in labels]},
                           schema=scc_schema))

        data = census.add_new_collection("census_data")
        exp = data.add_new_collection("homo_sapiens", soma.Experiment)
        obs_schema = pa.schema([("soma_joinid", pa.int64()), ("dataset_id", pa.large_string()),
                                ("cell_type", pa.large_string()), ("donor_id", pa.large_string()),
                                ("is_primary_data", pa.bool_()), ("raw_sum", pa.float64()),
                                ("nnz", pa.int64()), ("raw_mean_nnz", pa.float64())])
        obs = exp.add_new_dataframe("obs", schema=obs_schema, domain=[(0, n_obs - 1)],
                                    platform_config=_df_config(["dataset_id", "cell_type", "donor_id"],
                                                               ["raw_sum", "nnz", "raw_mean_nnz"],
                                                               ["is_primary_data"]))
        X = adata.X.tocsr()
        obs.write(pa.table({
            "soma_joinid": np.arange(n_obs, dtype=np.int64),
            "dataset_id": [f"ds-{i:04d}" for i in dataset_of_cell],
            "cell_type": ct,
            "donor_id": adata.obs["donor"].astype(str).to_numpy(),
            "is_primary_data": adata.obs["is_primary"].to_numpy(),
            "raw_sum": np.asarray(X.sum(1)).ravel().astype(np.float64),
            "nnz": np.diff(X.indptr).astype(np.int64),
            # every 7th value null, to exercise validity tiles
            "raw_mean_nnz": [None if i % 7 == 0 else float(v) for i, v in
                             enumerate(np.asarray(X.sum(1)).ravel() / np.maximum(np.diff(X.indptr), 1))],
        }, schema=obs_schema))

        ms = exp.add_new_collection("ms")
        rna = ms.add_new_collection("RNA", soma.Measurement)
        var_schema = pa.schema([("soma_joinid", pa.int64()), ("feature_id", pa.large_string()),
                                ("feature_name", pa.large_string()), ("feature_length", pa.int64()),
                                ("nnz", pa.int64()), ("n_measured_obs", pa.int64())])
        var = rna.add_new_dataframe("var", schema=var_schema, domain=[(0, n_var - 1)],
                                    platform_config=_df_config([], ["feature_length", "nnz", "n_measured_obs"],
                                                               ["feature_id", "feature_name"]))
        var.write(pa.table({
            "soma_joinid": np.arange(n_var, dtype=np.int64),
            "feature_id": adata.var_names.to_numpy().astype(str),
            "feature_name": adata.var["feature_name"].to_numpy().astype(str),
            "feature_length": adata.var["feature_length"].to_numpy().astype(np.int64),
            "nnz": np.bincount(X.indices, minlength=n_var).astype(np.int64),
            "n_measured_obs": np.full(n_var, n_obs, dtype=np.int64),
        }, schema=var_schema))

        Xc = rna.add_new_collection("X")
        # three row batches -> three fragments, like the builder's per-dataset writes;
        # "normalized" gets the same treatment and is later fragment-consolidated.
        bounds = np.linspace(0, n_obs, 4).astype(int)
        Xn = sp.diags(1.0 / np.maximum(np.asarray(X.sum(1)).ravel(), 1)) @ X
        for layer, M in (("raw", X), ("normalized", Xn.tocsr())):
            arr = Xc.add_new_sparse_ndarray(layer, type=pa.float32(), shape=(n_obs, n_var),
                                            platform_config=_x_config())
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                coo = M[lo:hi].tocoo()
                arr.write(pa.table({"soma_dim_0": (coo.row + lo).astype(np.int64),
                                    "soma_dim_1": coo.col.astype(np.int64),
                                    "soma_data": coo.data.astype(np.float32)}))

        present = np.zeros((n_datasets, n_var), dtype=bool)
        for d in range(n_datasets):
            present[d, np.unique(X[dataset_of_cell == d].indices)] = True
        fdpm = rna.add_new_sparse_ndarray("feature_dataset_presence_matrix", type=pa.bool_(),
                                          shape=(n_datasets, n_var))
        r, c = np.nonzero(present)
        fdpm.write(pa.table({"soma_dim_0": r.astype(np.int64), "soma_dim_1": c.astype(np.int64),
                             "soma_data": np.ones(len(r), dtype=bool)}))

    # Census releases are consolidated + vacuumed. Leave X/raw's three fragments in
    # place but consolidate fragment metadata and commits (what tiledbsoma exposes).
    with soma.SparseNDArray.open(os.path.join(uri, "census_data/homo_sapiens/ms/RNA/X/raw"), "w") as raw:
        raw._handle.consolidate_and_vacuum(["fragment_meta", "commits"])
    # X/normalized: full fragment consolidation + vacuum (one merged fragment, t1 != t2),
    # then fragment-metadata and commit consolidation, as the builder does per array.
    with soma.SparseNDArray.open(os.path.join(uri, "census_data/homo_sapiens/ms/RNA/X/normalized"), "w") as a:
        a._handle.consolidate_and_vacuum(["fragments", "fragment_meta", "commits"])
    return uri


# ---------------------------------------------------------------------------------- tiles
def tiles(out, seed=2):
    """Many small tiles and several fragments: tile offsets, last-tile cell counts, deep R-trees."""
    rng = np.random.default_rng(seed)
    uri = os.path.join(out, "tiles")
    n_obs, n_var = 300, 90
    with soma.Collection.create(uri) as coll:
        coll.metadata["purpose"] = "multi-tile fixture"
        coll.metadata["answer"] = 42
        coll.metadata["ratio"] = 0.25
        M = sp.random(n_obs, n_var, density=0.2, format="coo", random_state=seed,
                      data_rvs=lambda k: rng.normal(size=k)).astype(np.float64)
        arr = coll.add_new_sparse_ndarray("X", type=pa.float64(), shape=(n_obs, n_var),
                                          platform_config=_x_config(capacity=100, tile=32))
        # two fragments over disjoint row ranges (the array does allow duplicates anyway)
        for lo, hi in ((0, 150), (150, n_obs)):
            keep = (M.row >= lo) & (M.row < hi)
            arr.write(pa.table({"soma_dim_0": M.row[keep].astype(np.int64),
                                "soma_dim_1": M.col[keep].astype(np.int64),
                                "soma_data": M.data[keep]}))
        # Arrays without duplicates (tiledbsoma's default), written three times with
        # overlapping coordinates: the newest value of a cell wins. "overwrite" keeps
        # the three fragments; "overwrite_consolidated" is fragment-consolidated.
        for name in ("overwrite", "overwrite_consolidated"):
            coll.add_new_sparse_ndarray(name, type=pa.int32(), shape=(60, 40),
                                        platform_config={"tiledb": {"create": {"capacity": 50}}})
        n = 500
        schema = pa.schema([("soma_joinid", pa.int64()), ("label", pa.large_string()),
                            ("code", pa.large_string()), ("score", pa.float32()),
                            ("count", pa.uint16()), ("flag", pa.bool_()), ("small", pa.int8())])
        df = coll.add_new_dataframe("df", schema=schema, domain=[(0, n - 1)],
                                    platform_config=_df_config(["code"], ["score", "count"], ["label"],
                                                               capacity=64, allows_duplicates=False))
        df.write(_df_rows(0, 200, schema))
    # Each write gets its own timestamp (writes inside one open collection share one, and
    # TileDB's choice between cells of equal timestamps is arbitrary).
    base = int(time.time() * 1000) + 1
    for name in ("overwrite", "overwrite_consolidated"):
        for k in range(3):
            r = np.random.default_rng(seed + k)
            cells = np.unique(r.integers(0, 60 * 40, 500 - 100 * k))
            with soma.SparseNDArray.open(os.path.join(uri, name), "w",
                                         tiledb_timestamp=base + k) as ow:
                ow.write(pa.table({"soma_dim_0": (cells // 40).astype(np.int64),
                                   "soma_dim_1": (cells % 40).astype(np.int64),
                                   "soma_data": np.full(len(cells), 100 * k, np.int32)
                                   + (cells % 97).astype(np.int32)}))
    time.sleep(0.05)  # "now" must be past the last write for readers to see it
    with soma.SparseNDArray.open(os.path.join(uri, "overwrite_consolidated"), "w") as a:
        a._handle.consolidate_and_vacuum(["fragments", "fragment_meta", "commits"])
    # Schema evolution, as tiledbsoma.io.update_obs does it: add columns, then write more
    # rows. The first fragment keeps the old schema, so its cells read the new columns'
    # fill values (nulls). The DataFrame disallows duplicates (tiledbsoma's default): with
    # duplicates allowed, tiledbsoma 2.3.0 segfaults reading such an evolved array back.
    df_uri = os.path.join(uri, "df")
    with soma.DataFrame.open(df_uri) as df_r:
        # (Adding an enumeration column here makes tiledbsoma 2.3.0 segfault when reading
        # the older fragment back, so only plain columns are added.)
        df_r._handle._update_dataframe_schema([], {"extra": "f", "extra_label": "U"}, {})
    with soma.DataFrame.open(df_uri, "w") as df_w:
        schema2 = df_w.schema
        t = _df_rows(200, n, schema)
        ids = np.arange(200, n)
        t = t.append_column("extra", pa.array((ids * 0.5).astype(np.float32)))
        t = t.append_column("extra_label", pa.array([f"extra {i}" for i in ids], type=pa.large_string()))
        df_w.write(t.select(schema2.names).cast(schema2))
    return uri


# ------------------------------------------------------------------------------- filters
def filters(out, n=3000, seed=3):
    """One DataFrame column per filter pipeline, beyond what SOMA defaults and the Census
    builder use: gzip, lz4, delta, positive delta, bit-width reduction, RLE (numbers and
    strings), checksums; plus bitshuffle, which the Rust reader does not undo (its
    tests expect a clear error for that column)."""
    rng = np.random.default_rng(seed)
    uri = os.path.join(out, "filters")
    ids = np.arange(n)
    cols = {
        "i64_gzip": (pa.int64(), rng.integers(-10**12, 10**12, n), ["GzipFilter"]),
        "i32_lz4": (pa.int32(), (ids % 100).astype(np.int32), ["LZ4Filter"]),
        "i64_delta": (pa.int64(), np.cumsum(rng.integers(-5, 50, n)), ["DeltaFilter", _Z9]),
        "u32_positive_delta": (pa.uint32(), np.cumsum(rng.integers(0, 9, n)).astype(np.uint32),
                               ["PositiveDeltaFilter"]),
        "i16_bit_width": (pa.int16(), rng.integers(-300, -200, n).astype(np.int16), ["BitWidthReductionFilter"]),
        "u64_bit_width": (pa.uint64(), (rng.integers(0, 70000, n) + 2**40).astype(np.uint64),
                          ["BitWidthReductionFilter", {"_type": "LZ4Filter"}]),
        "u8_rle": (pa.uint8(), (ids // 37 % 5).astype(np.uint8), ["RleFilter"]),
        "f64_checksums": (pa.float64(), rng.normal(size=n), ["ChecksumMD5Filter", "ChecksumSHA256Filter", _Z9]),
        "f32_bitshuffle": (pa.float32(), rng.normal(size=n).astype(np.float32), ["BitShuffleFilter", _Z9]),
    }
    words = ["", "a", "bb", "ccc", "dddd", "long string value"]
    schema = pa.schema([("soma_joinid", pa.int64())] + [(k, t) for k, (t, _, _) in cols.items()]
                       + [("str_rle", pa.large_string()), ("str_gzip", pa.large_string())])
    config = {"tiledb": {"create": {
        "capacity": 1000,
        "dims": {"soma_joinid": {"filters": [{"_type": "GzipFilter", "level": 6}]}},
        "attrs": {**{k: {"filters": f} for k, (_, _, f) in cols.items()},
                  "str_rle": {"filters": ["RleFilter"]},
                  "str_gzip": {"filters": ["GzipFilter"]}},
        "offsets_filters": ["PositiveDeltaFilter", "BitWidthReductionFilter", "LZ4Filter"],
        "validity_filters": [{"_type": "GzipFilter", "level": 1}],
    }}}
    table = {"soma_joinid": ids.astype(np.int64)}
    table.update({k: pa.array(v, type=t) for k, (t, v, _) in cols.items()})
    table["str_rle"] = [None if i % 101 == 0 else words[i // 50 % len(words)] for i in ids]
    table["str_gzip"] = [f"value {i * 7919 % 1000}" for i in ids]
    with soma.Collection.create(uri) as coll:
        df = coll.add_new_dataframe("df", schema=schema, domain=[(0, n - 1)], platform_config=config)
        df.write(pa.table(table, schema=schema))
    return uri


def bench_adata(n_obs, n_var, nnz_per_cell=100, seed=7):
    """A synthetic AnnData for the throughput tree: CSR built row by row (sp.random is
    slow and memory-hungry at this size), the obs/var columns census_like reads."""
    rng = np.random.default_rng(seed)
    counts = np.minimum(rng.poisson(nnz_per_cell, n_obs), n_var)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    indices = np.empty(indptr[-1], dtype=np.int32)
    for i in range(n_obs):
        indices[indptr[i]:indptr[i + 1]] = np.sort(rng.choice(n_var, counts[i], replace=False))
    data = (rng.poisson(3, indptr[-1]) + 1).astype(np.float32)
    X = sp.csr_matrix((data, indices, indptr), shape=(n_obs, n_var))
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(rng.choice(["T cell", "B cell", "NK cell", "monocyte"], n_obs)),
            "donor": pd.Categorical(rng.choice([f"donor_{i}" for i in range(6)], n_obs)),
            "is_primary": rng.random(n_obs) > 0.3,
        },
        index=[f"cell_{i}" for i in range(n_obs)],
    )
    var = pd.DataFrame(
        {"feature_name": [f"GENE{i}" for i in range(n_var)],
         "feature_length": rng.integers(200, 20000, n_var)},
        index=[f"ENSG{i:011d}" for i in range(n_var)],
    )
    return ad.AnnData(X=X, obs=obs, var=var)


def bands(out, seed=4):
    """More rows than one 2048-row band, small data tiles, two overlapping fragments."""
    rng = np.random.default_rng(seed)
    uri = os.path.join(out, "bands")
    n_obs, n_var = 5000, 60
    with soma.Collection.create(uri) as coll:
        coll.metadata["purpose"] = "band streaming fixture"
        arr = coll.add_new_sparse_ndarray("X", type=pa.float32(), shape=(n_obs, n_var),
                                          platform_config=_x_config(capacity=64, tile=2048))
        # rows 0..3000 and 2500..5000: the second fragment overlaps the first in rows
        # 2500..3000 with other cells (the array allows duplicates); about 2/3 of the
        # rows hold no cell.
        for lo, hi, k in ((0, 3000, 900), (2500, n_obs, 700)):
            rows = rng.integers(lo, hi, k)
            cols = rng.integers(0, n_var, k)
            cells = np.unique(rows * n_var + cols)
            arr.write(pa.table({"soma_dim_0": (cells // n_var).astype(np.int64),
                                "soma_dim_1": (cells % n_var).astype(np.int64),
                                "soma_data": rng.normal(size=len(cells)).astype(np.float32)}))
    return uri


def add_tree(out, name):
    """Rebuilds tree `name` and merges its reference into the existing index."""
    builders = {"bands": bands}
    path = os.path.join(out, name)
    if os.path.exists(path):
        shutil.rmtree(path)
    builders[name](out)
    index_path = os.path.join(out, "reference", "index.json")
    with open(index_path) as fh:
        old = json.load(fh)
    kept = [e for e in old["objects"] if e["path"] != name and not e["path"].startswith(name + "/")]
    dump_reference(out, (name,))  # writes an index of this tree alone
    with open(index_path) as fh:
        new = json.load(fh)
    old["objects"] = kept + new["objects"]
    with open(index_path, "w") as fh:
        json.dump(old, fh, indent=1, sort_keys=True)


def _df_rows(lo, hi, schema):
    codes = ["alpha", "beta", "gamma", "", "delta"]
    ids = np.arange(lo, hi)
    return pa.table({
        "soma_joinid": ids.astype(np.int64),
        "label": [None if i % 13 == 0 else f"row-{i}-" + "x" * (i % 9) for i in ids],
        "code": [codes[i % 5] for i in ids],
        "score": [float("nan") if i % 31 == 0 else float(i) / 7 for i in ids],
        "count": (ids * 97 % 65536).astype(np.uint16),
        "flag": ids % 3 == 0,
        "small": (ids % 256 - 128).astype(np.int8),
    }, schema=schema)


# ------------------------------------------------------------------------------ reference
def _jsonable(values):
    out = []
    for v in values:
        if isinstance(v, float):
            out.append(repr(v))  # exact: JSON number parsers may round the last bit
        elif isinstance(v, bytes):
            out.append(v.decode())
        else:
            out.append(v)
    return out


def _table_columns(t):
    cols = {}
    for f in t.schema:
        col = t[f.name].combine_chunks()
        if pa.types.is_dictionary(col.type):
            col = col.dictionary_decode()
        cols[f.name] = {"type": str(col.type), "values": _jsonable(col.to_pylist())}
    return cols


def _meta(obj):
    out = {}
    for k, v in obj.metadata.items():
        if isinstance(v, (np.generic,)):
            v = v.item()
        out[k] = v
    return out


TREES = ("experiment", "census", "tiles", "filters", "bands")


def dump_reference(out, trees=TREES):
    ref = os.path.join(out, "reference")
    os.makedirs(ref, exist_ok=True)
    index = []

    def walk(uri, rel):
        with soma.open(uri) as obj:
            entry = {"path": rel, "soma_object_type": obj.soma_type, "metadata": _meta(obj)}
            if obj.soma_type in ("SOMACollection", "SOMAExperiment", "SOMAMeasurement"):  # Collection, Experiment, Measurement
                entry["members"] = sorted(obj.keys())
                index.append(entry)
                for name in sorted(obj.keys()):
                    walk(obj[name].uri, f"{rel}/{name}")
                return
            if isinstance(obj, soma.SparseNDArray):
                t = obj.read().tables().concat()
                entry["shape"] = list(obj.shape)
            elif isinstance(obj, soma.DataFrame):
                t = obj.read().concat()
            else:
                entry["skipped"] = "not read by the fixture dump"
                index.append(entry)
                return
            name = rel.replace("/", "__") + ".json.gz"
            entry["file"] = name
            entry["rows"] = t.num_rows
            with open(os.path.join(ref, name), "wb") as raw:
                with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
                    fh.write(json.dumps({"columns": _table_columns(t)}).encode())
            index.append(entry)

    for tree in trees:
        walk(os.path.join(out, tree), tree)
    with open(os.path.join(ref, "index.json"), "w") as fh:
        json.dump({"tiledbsoma": soma.__version__, "objects": index}, fh, indent=1, sort_keys=True)


def main():
    if len(sys.argv) > 2 and sys.argv[1] == "--dump-only":
        # Dump the reference of existing trees (e.g. made by another tiledbsoma version):
        #   make_soma_fixtures.py --dump-only DIR TREE...
        dump_reference(os.path.abspath(sys.argv[2]), tuple(sys.argv[3:]))
        return
    if len(sys.argv) > 2 and sys.argv[1] == "--add-tree":
        out = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else os.path.abspath(
            os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "soma"))
        add_tree(out, sys.argv[2])
        print("tiledbsoma", soma.__version__, "->", os.path.join(out, sys.argv[2]))
        return
    if len(sys.argv) > 2 and sys.argv[1] == "--bench":
        # A large Census-shaped tree for throughput measurements (not checked in):
        #   make_soma_fixtures.py --bench DIR [N_OBS N_VAR]
        out = os.path.abspath(sys.argv[2])
        n_obs = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
        n_var = int(sys.argv[4]) if len(sys.argv) > 4 else 2_000
        if os.path.exists(os.path.join(out, "census")):
            shutil.rmtree(os.path.join(out, "census"))
        os.makedirs(out, exist_ok=True)
        census_like(out, bench_adata(n_obs, n_var), n_datasets=8)
        print("tiledbsoma", soma.__version__, "->", os.path.join(out, "census"))
        return
    out = os.path.abspath(OUT)
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    _, adata = experiment(out)
    census_like(out, adata)
    tiles(out)
    filters(out)
    bands(out)
    dump_reference(out)
    print("tiledbsoma", soma.__version__, "->", out)


if __name__ == "__main__":
    main()
