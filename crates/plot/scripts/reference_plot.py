"""scanpy's embedding plot of the pbmc700 reference UMAP, measured for tests/scanpy_parity.rs.

Usage: python reference_plot.py ../../tests/data/graph/pbmc700.h5 [OUT.png]

Draws `sc.pl.umap(adata, color="bulk_labels")` with scanpy's defaults on a 4×4 inch,
100 dpi figure (scanpy's `figsize`), saved as scanpy saves (`bbox_inches="tight"`), and
prints: the image size, `uns["bulk_labels_colors"]`, and inside the axes (2 pixels in
from the frame) the number of pixels of exactly each category colour and of light grey.
The numbers are pasted into tests/scanpy_parity.rs.
"""
import sys
import h5py, numpy as np, pandas as pd, anndata as ad, scanpy as sc, matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.colors import to_rgb

f = h5py.File(sys.argv[1])
out = sys.argv[2] if len(sys.argv) > 2 else "/tmp/scanpy_pbmc700_umap.png"
umap = f["umap/X_umap"][:]
labels = [s.decode() for s in f["labels"][:]]
a = ad.AnnData(np.zeros((len(labels), 1), dtype=np.float32))
a.obsm["X_umap"] = umap
a.obs["bulk_labels"] = pd.Categorical(labels)
plt.rcParams["figure.figsize"] = (4, 4)
plt.rcParams["figure.dpi"] = 100
fig = sc.pl.umap(a, color="bulk_labels", return_fig=True)
fig.savefig(out, bbox_inches="tight")
ax = fig.axes[0]
renderer = fig.canvas.get_renderer()
tb = fig.get_tightbbox(renderer)
pad = 0.1
ox, oy1 = (tb.x0 - pad) * 100, (tb.y1 + pad) * 100
bb = ax.get_window_extent()
from PIL import Image
img = np.asarray(Image.open(out).convert("RGB")).astype(int)
print("image", img.shape[1], img.shape[0])
x0, x1 = int(round(bb.x0 - ox)) + 2, int(round(bb.x1 - ox)) - 2
y0, y1 = int(round(oy1 - bb.y1)) + 2, int(round(oy1 - bb.y0)) - 2
inner = img[y0:y1, x0:x1]
print("axes_inner", x1 - x0, y1 - y0)
cats = list(a.obs["bulk_labels"].cat.categories)
colors = list(a.uns["bulk_labels_colors"])
print("categories", cats)
print("colors", colors)
for c, h in zip(cats, colors):
    rgb = (np.array(to_rgb(h)) * 255).round().astype(int)
    print("count", c, int((inner == rgb).all(2).sum()))
