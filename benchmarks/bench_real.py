"""Real images, offline: every method against SExtractor's catalogue of the same image.

Needs the benchmark extras (``python -m pip install ".[bench]"``) and the SExtractor
binary (``apt-get install source-extractor``), which makes the reference catalogues at
run time; without it the script prints a note and stops. Run::

    python benchmarks/bench_real.py [--params 'k=v,k=v']

Images:

1. The Hubble Deep Field (``skimage.data.hubble_deep_field()``, 872x1000 RGB, 8 bit).
   Reference: SExtractor with the recipe of ``peers.py`` on the band mean.
2. A real single-band CCD frame: ``data/sep_image.fits``, 256x256, the test frame of
   SEP's repository (``data/image.fits`` of the sep 1.4.1 source distribution on PyPI;
   an ESO NTT/EMMI R-band sum of 3 frames, 1992; see ``data/README.md``). Two
   references: SExtractor with the configuration SEP ships beside the frame (the one
   that made its ``image.cat``: filter ``default.conv``, 3x3 pyramid, and
   DEBLEND_MINCONT 1.0, i.e. no deblending; 65 objects), and SExtractor with the recipe
   of ``peers.py`` (``gauss_3.0_5x5.conv``, DEBLEND_MINCONT 0.005).

Every segment's centroid (flux-weighted on the background-subtracted band mean,
negative pixels clipped) is matched one to one with the reference catalogue's
positions within 3 px, closest pairs first. Recall: matched catalogue objects /
catalogue objects; precision: matched segments / segments; recall of the faintest
third of the catalogue by isophotal flux (FLUX_ISO). SExtractor's own row against its
own catalogue is a check of the matching (recall and precision 1 when the
configurations agree).
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np
import skimage.data
from scipy import ndimage
from scipy.spatial import cKDTree

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_families import parse_params, run_ours  # noqa: E402
from peers import (  # noqa: E402
    SEXTRACTOR_MISSING,
    SEXTRACTOR_SHARE,
    available_peers,
    band_mean,
    run_sextractor,
    sextractor_binary,
)

HERE = os.path.dirname(os.path.abspath(__file__))
SEP_FRAME = os.path.join(HERE, "data", "sep_image.fits")
RADIUS = 3.0

# The configuration SEP ships with its test frame (data/default.sex), as overrides of ours.
SEP_SHIPPED_CONFIG = {
    "FILTER_NAME": os.path.join(SEXTRACTOR_SHARE, "default.conv"),
    "DEBLEND_MINCONT": "1.0",
    "SATUR_LEVEL": "50000",
}


def centroids(labels, data):
    """(x, y) of every segment, flux-weighted on data minus its median (clipped at 0)."""
    ids = np.unique(labels[labels > 0])
    if ids.size == 0:
        return np.empty((0, 2))
    weight = np.clip(data - np.median(data), 0, None)
    weighted = np.array(ndimage.center_of_mass(weight, labels, ids))
    plain = np.array(ndimage.center_of_mass(np.ones_like(weight), labels, ids))
    bad = ~np.isfinite(weighted).all(axis=1)
    weighted[bad] = plain[bad]
    return weighted[:, ::-1]


def cross_match(found_xy, ref_xy, radius=RADIUS):
    """One-to-one matches within radius, closest first; matched flags of ref and found."""
    ref_hit = np.zeros(len(ref_xy), dtype=bool)
    found_hit = np.zeros(len(found_xy), dtype=bool)
    if len(found_xy) == 0 or len(ref_xy) == 0:
        return ref_hit, found_hit
    dist = cKDTree(ref_xy).sparse_distance_matrix(cKDTree(found_xy), radius).tocoo()
    for k in np.argsort(dist.data, kind="stable"):
        i, j = dist.row[k], dist.col[k]
        if not ref_hit[i] and not found_hit[j]:
            ref_hit[i] = found_hit[j] = True
    return ref_hit, found_hit


def compare(name, image, methods, references):
    data = band_mean(image)
    print(f"\n### {name}\n")
    for ref_name, catalog in references.items():
        print(f"- reference {ref_name}: {len(catalog['NUMBER'])} objects")
    header = "| method | segments | time (s) | " + " | ".join(
        f"recall / precision / faintest-third recall vs {r}" for r in references
    )
    print("\n" + header + " |")
    print("|---|---|---|" + "---|" * len(references))
    for method, run in methods.items():
        start = time.perf_counter()
        labels = run(image)
        seconds = time.perf_counter() - start
        xy = centroids(labels, data)
        cells = []
        for catalog in references.values():
            ref_xy = np.c_[catalog["X_IMAGE"], catalog["Y_IMAGE"]]
            ref_hit, found_hit = cross_match(xy, ref_xy)
            faint = catalog["FLUX_ISO"] <= np.quantile(catalog["FLUX_ISO"], 1 / 3)
            cells.append(
                f"{ref_hit.mean():.3f} / {found_hit.mean() if len(xy) else 0:.3f} "
                f"/ {ref_hit[faint].mean():.3f}"
            )
        print(f"| {method} | {len(xy)} | {seconds:.2f} | " + " | ".join(cells) + " |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=parse_params, default={},
                        help="keywords of segment for ours, 'k=v,k=v'")
    args = parser.parse_args(argv)
    if sextractor_binary() is None:
        print(f"note: {SEXTRACTOR_MISSING}; the reference catalogues need it.")
        return
    methods = {"ours": lambda image: run_ours(image, args.params)}
    methods.update(available_peers(quiet=True))

    hubble = skimage.data.hubble_deep_field()
    _, catalog = run_sextractor(hubble, return_catalog=True)
    compare("Hubble Deep Field (872x1000 RGB)", hubble, methods,
            {"SExtractor (peers.py recipe)": catalog})

    from astropy.io import fits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the frame's ESO-LOG cards are non-standard
        frame = fits.getdata(SEP_FRAME).astype(np.float64)
    _, shipped = run_sextractor(frame, return_catalog=True, **SEP_SHIPPED_CONFIG)
    _, recipe = run_sextractor(frame, return_catalog=True)
    compare("SEP's test frame (256x256, real CCD, single band)", frame, methods,
            {"SExtractor (SEP's shipped config)": shipped,
             "SExtractor (peers.py recipe)": recipe})


if __name__ == "__main__":
    main()
