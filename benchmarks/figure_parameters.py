"""The figure of the user guide's "Choosing parameters for your image".

Needs the benchmark extras (GalSim). Run from the repository's top folder::

    python benchmarks/figure_parameters.py docs/images/choosing_parameters.png

One crop of each of two fields of ``bench_families.py`` (tuning seed 0): a broad PSF
(``psf8``) and a single band (``1band``). Columns: the image, the truth at 1.5 sigma,
``segment`` without its deblending and with the footprint's edge (``deblend_dip=None,
analysis_threshold=None``, the method before these steps existed), and ``segment``'s
defaults.
"""

import os
import sys
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from skimage.color import label2rgb  # noqa: E402
from skimage.segmentation import find_boundaries  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_families import _truth, field  # noqa: E402

from skimgcluster import segment  # noqa: E402
from skimgcluster.metrics import detection_scores  # noqa: E402

CROP = (slice(0, 256), slice(0, 256))
OLD = {"deblend_dip": None, "analysis_threshold": None, "min_area": 1}


def _segment(image, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return segment(image, random_state=0, **params).label_image


def _show(ax, labels, title):
    rgb = label2rgb(labels, bg_label=0, bg_color=(0, 0, 0))
    rgb[find_boundaries(labels, mode="inner")] = 1.0
    ax.imshow(rgb, interpolation="nearest")
    ax.set_title(title, fontsize=9)


def main(path):
    fig, axes = plt.subplots(2, 4, figsize=(12, 7))
    for row, family in zip(axes, ("psf8", "1band"), strict=True):
        fld = field(family, 0)
        image, truth = fld["image"], _truth(fld, 1.5)
        lum = image.mean(axis=2) if image.ndim == 3 else image
        lum = lum - np.median(lum)
        row[0].imshow(np.arcsinh(np.clip(lum[CROP], 0, None) / 2.0), cmap="gray")
        row[0].set_title(f"{family}: image (asinh)", fontsize=9)
        _show(row[1], truth[CROP], "truth at 1.5 sigma")
        for ax, (name, params) in zip(
            row[2:], (("no deblending, edge at the footprint", OLD), ("defaults", {})), strict=True
        ):
            labels = _segment(image, **params)
            s = detection_scores(labels, truth)
            _show(ax, labels[CROP], f"{name}\nF1 {s['f1']:.2f}, purity {s['purity']:.2f}, "
                                    f"IoU {s['mean_iou']:.2f} (whole field)")  # fmt: skip
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout(h_pad=2.5)
    fig.savefig(path, dpi=80)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "choosing_parameters.png")
