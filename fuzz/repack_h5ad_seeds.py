"""Rewrite the h5ad seeds with anndata (contiguous datasets): atlasflow's writer chunks
datasets by 65,536 values, which makes a 10-cell file 800 KB, and libFuzzer mutates small
files far better. anndata's layout is also what real inputs look like.

    /work/venv-ref/bin/python fuzz/repack_h5ad_seeds.py   # after the write_seeds test
"""
import pathlib

import anndata

for path in sorted(pathlib.Path(__file__).parent.joinpath("seeds", "h5ad_reader").glob("*.h5ad")):
    adata = anndata.read_h5ad(path)
    adata.write_h5ad(path)
    print(path, path.stat().st_size)
