#!/usr/bin/env python
"""Measure tiledbsoma's own streaming throughput on X of a Census-shaped tree, for
comparison with crates/soma/examples/x_throughput.rs on the same tree.

Usage (tiledbsoma 2.3.0 venv):

    python scripts/soma_x_throughput.py /work/soma-bench/census [layer] [every nth cell]

Streams census_data/homo_sapiens/ms/RNA/X/<layer> (default raw) three ways and prints
cells/s, non-zeros/s (per wall second and per CPU second of the process: the machine may
be shared) and a value checksum:
  tables     X.read().tables(): Arrow tables in TileDB's order (all cells);
  blockwise  X.read().blockwise(axis=0, size=2048).scipy(): CSR per 2048-cell block in
             obs order, var joinids not reindexed (the closest analogue of the Rust bands);
  coords     X.read(coords=(selected cells,)).tables() when every nth cell > 1.
"""
import sys
import time

import numpy as np
import tiledbsoma as soma


def run(name, n_cells, batches):
    start = time.perf_counter()
    cpu = time.process_time()  # every thread of the process, TileDB's included
    nnz = 0
    checksum = 0.0
    for values in batches:
        nnz += len(values)
        checksum += float(np.sum(values, dtype=np.float64))
    secs = time.perf_counter() - start
    cpu = max(time.process_time() - cpu, 0.01)
    print(f"{name}: {n_cells} cells, {nnz} non-zeros in {secs:.3f} s wall, {cpu:.2f} s CPU: "
          f"{n_cells / secs:.0f} cells/s, {nnz / secs:.0f} nnz/s "
          f"(per CPU second: {n_cells / cpu:.0f} cells, {nnz / cpu:.0f} nnz), checksum {checksum:.1f}")


def main():
    root = sys.argv[1]
    layer = sys.argv[2] if len(sys.argv) > 2 else "raw"
    stride = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    uri = f"{root}/census_data/homo_sapiens/ms/RNA/X/{layer}"
    with soma.SparseNDArray.open(uri) as X:
        n_obs = X.shape[0]
        run("tables (all cells)", n_obs,
            (t["soma_data"].to_numpy() for t in X.read().tables()))
        run("blockwise 2048 scipy CSR (all cells)", n_obs,
            (m.data for m, _ in X.read().blockwise(axis=0, size=2048,
                                                  reindex_disable_on_axis=[1]).scipy(compress=True)))
        if stride > 1:
            cells = np.arange(0, n_obs, stride, dtype=np.int64)
            run(f"coords every {stride}th cell", len(cells),
                (t["soma_data"].to_numpy() for t in X.read(coords=(cells,)).tables()))


if __name__ == "__main__":
    main()
