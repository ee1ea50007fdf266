"""Regenerate the figures of the Hubble Deep Field in docs/images/.

Run from the repository's top folder::

    python docs/make_figures.py                  # segmentation, ordered density, hierarchy
    python docs/make_figures.py --with-overview  # also docs/images/hubble_overview.png

The image is ``skimage.data.hubble_deep_field()``, segmented with
``segment(image, random_state=0)``; the figures are saved at 100 dpi and
reduced to a 256-colour palette (the noisy sky of the field does not
compress otherwise) so that each stays under ~400 KB.
"""

import argparse
import io
import time
from pathlib import Path

import matplotlib
import numpy as np
import skimage.data
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from skimgcluster import segment
from skimgcluster._plotting import (
    plot_hierarchy,
    plot_ordered_density,
    plot_overview,
    plot_segmentation,
)

IMAGES = Path(__file__).resolve().parent / "images"
DPI = 100

#: Rows and columns of the zoomed panel: the bright galaxy right of centre and its neighbours.
ZOOM = (slice(330, 630), slice(560, 900))


def save_png(figure, path, *, colours=256):
    """Save ``figure`` as a palette PNG of at most ``colours`` colours."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    buffer.seek(0)
    with Image.open(buffer) as rgba:
        palette = rgba.convert("RGB").quantize(colours, method=Image.Quantize.FASTOCTREE)
        palette.save(path, optimize=True)
    return path.stat().st_size


def segmentation_figure(image, result):
    """The whole field and a zoomed panel, side by side."""
    figure = Figure(figsize=(12, 5.7), layout="constrained")
    whole, zoom = figure.subplots(1, 2, width_ratios=(1000 / 872, 340 / 300))
    plot_segmentation(image, result, ax=whole)
    plot_segmentation(image, result, ax=zoom, n_annotated=0, alpha=0.25)
    rows, cols = ZOOM
    zoom.set_xlim(cols.start - 0.5, cols.stop - 0.5)
    zoom.set_ylim(rows.stop - 0.5, rows.start - 0.5)
    zoom.set_title(f"Rows {rows.start}-{rows.stop}, columns {cols.start}-{cols.stop}")
    whole.add_patch(
        Rectangle(
            (cols.start - 0.5, rows.start - 0.5),
            cols.stop - cols.start,
            rows.stop - rows.start,
            fill=False,
            edgecolor="white",
            linewidth=1.0,
        )
    )
    return figure


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--with-overview", action="store_true", help="also regenerate hubble_overview.png"
    )
    args = parser.parse_args(argv)
    matplotlib.use("Agg")
    image = skimage.data.hubble_deep_field()
    result = segment(image, random_state=0)
    jobs = {
        "hubble_segmentation.png": lambda: segmentation_figure(image, result),
        "hubble_ordered_density.png": lambda: plot_ordered_density(result),
        "hubble_hierarchy.png": lambda: plot_hierarchy(result),
    }
    if args.with_overview:
        jobs["hubble_overview.png"] = lambda: plot_overview(image, result)
    IMAGES.mkdir(exist_ok=True)
    for name, make in jobs.items():
        start = time.perf_counter()
        size = save_png(make(), IMAGES / name)
        seconds = time.perf_counter() - start
        print(f"{IMAGES / name}: {size / 1024:.0f} KB in {seconds:.2f} s")
    print(f"{result.n_sources:,} sources, {np.size(result.cluster_ids):,} clusters")


if __name__ == "__main__":
    main()
