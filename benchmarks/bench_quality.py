"""skimgcluster's defaults against photutils, SEP and SExtractor, side by side in one run.

Needs the benchmark extras: ``python -m pip install ".[bench]"``. Run::

    python benchmarks/bench_quality.py [--seeds 5] [--size 512] [--sources 120]
    python benchmarks/bench_quality.py --pairs-figure benchmarks/images/blended_pairs.png

1. Generated fields (``skimgcluster.datasets.make_field``, one per seed): detection F1,
   completeness, purity and mean IoU of matched pairs (IoU >= 0.5), and time per field.
2. Blended pairs of different colours (``make_blended_pairs``, 8 pairs per seed, 10 seeds): the
   fraction of pairs whose two sources are both recovered (each matched at IoU >= 0.5).
3. The Hubble Deep Field (``skimage.data.hubble_deep_field()``): number of sources, and
   the fraction of SEP's 200 brightest detections recovered by our default.

photutils, SEP and SExtractor run on the band-mean image (they are single-band tools)
with the recipes of their documentation, kept in ``peers.py`` (see its docstring):
photutils ``detect_sources`` + ``deblend_sources``, SEP ``extract`` and the SExtractor
2.25 binary, all at 1.5 sigma. SExtractor is skipped, with a note, when its binary
(Debian's ``source-extractor``) is not installed.
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np
import skimage.data
from skimage.measure import regionprops

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from peers import available_peers, run_photutils, run_sep, run_sextractor  # noqa: E402, F401

from skimgcluster import segment  # noqa: E402
from skimgcluster.datasets import make_blended_pairs, make_field  # noqa: E402
from skimgcluster.metrics import detection_scores, pairs_separated  # noqa: E402


def run_skimgcluster(image):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return segment(image, random_state=0).label_image


METHODS = {"skimgcluster": run_skimgcluster, **available_peers()}


def fields_table(seeds, size, n_sources):
    rows = {name: [] for name in METHODS}
    times = {name: 0.0 for name in METHODS}
    for seed in seeds:
        image, truth, _ = make_field((size, size), n_sources, random_state=seed)
        for name, method in METHODS.items():
            start = time.perf_counter()
            found = method(image)
            times[name] += time.perf_counter() - start
            s = detection_scores(found, truth)
            rows[name].append([s["f1"], s["completeness"], s["purity"], s["mean_iou"]])
    print(f"\n### Generated fields: {len(seeds)} seeds, {size}x{size}, {n_sources} sources\n")
    print("| method | F1 | completeness | purity | mean IoU | time per field (s) |")
    print("|---|---|---|---|---|---|")
    for name in METHODS:
        f1, comp, pur, iou = np.nanmean(rows[name], axis=0)
        f1s = ", ".join(f"{r[0]:.2f}" for r in rows[name])
        print(
            f"| {name} | {f1:.3f} ({f1s}) | {comp:.3f} | {pur:.3f} | {iou:.3f} "
            f"| {times[name] / len(seeds):.2f} |"
        )


def pairs_table(seeds, n_pairs=8):
    print(f"\n### Blended pairs of different colours: {len(seeds)} seeds x {n_pairs} pairs\n")
    print("| method | pairs separated (both matched at IoU >= 0.5) |")
    print("|---|---|")
    for name, method in METHODS.items():
        separated = total = 0
        for seed in seeds:
            image, truth, sources = make_blended_pairs(n_pairs, random_state=seed)
            n, m = pairs_separated(method(image), truth, sources["pair"], sources["label"])
            separated, total = separated + n, total + m
        print(f"| {name} | {separated}/{total} = {separated / total:.2f} |")


def pairs_figure(path, seed=0, n_pairs=8):
    """The blended pairs of one seed: image, truth and each method's segmentation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage.color import label2rgb

    image, truth, sources = make_blended_pairs(n_pairs, random_state=seed)
    rows = [("image (bands as RGB, asinh)", None), ("truth", truth)]
    for name, method in METHODS.items():
        found = method(image)
        n, m = pairs_separated(found, truth, sources["pair"], sources["label"])
        rows.append((f"{name}: {n}/{m} pairs separated", found))
    sub = image - np.median(image, axis=(0, 1))
    rgb = np.arcsinh(np.clip(sub, 0, None) / 3.0)
    rgb /= rgb.max()
    fig, axes = plt.subplots(len(rows), 1, figsize=(10, 1.45 * len(rows)))
    for ax, (title, labels) in zip(axes, rows, strict=True):
        if labels is None:
            ax.imshow(rgb, interpolation="nearest")
        else:
            ax.imshow(label2rgb(labels, bg_label=0, bg_color=(0, 0, 0)), interpolation="nearest")
        for p in range(1, n_pairs):
            ax.axvline(p * image.shape[0] - 0.5, color="0.6", lw=0.5)
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"make_blended_pairs({n_pairs}, random_state={seed}): one pair per stamp")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


def hubble():
    image = skimage.data.hubble_deep_field()
    start = time.perf_counter()
    ours = run_skimgcluster(image)
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    photutils_map = run_photutils(image)
    t_phot = time.perf_counter() - start
    start = time.perf_counter()
    sep_map, objects = run_sep(image, return_objects=True)
    t_sep = time.perf_counter() - start
    brightest = np.argsort(objects["flux"])[::-1][:200]
    xs, ys = objects["x"][brightest], objects["y"][brightest]
    inside = ours[np.round(ys).astype(int), np.round(xs).astype(int)] > 0
    centroids = np.array([r.centroid[::-1] for r in regionprops(ours)])  # (x, y)
    dist = np.sqrt(((centroids[None, :, :] - np.c_[xs, ys][:, None, :]) ** 2).sum(-1)).min(1)
    print("\n### Hubble Deep Field (872x1000 RGB)\n")
    print("| method | sources | time (s) |")
    print("|---|---|---|")
    print(f"| skimgcluster | {np.unique(ours).size - 1} | {t_ours:.2f} |")
    print(f"| photutils | {np.unique(photutils_map).size - 1} | {t_phot:.2f} |")
    print(f"| sep | {len(objects)} | {t_sep:.2f} |")
    if "sextractor" in METHODS:
        start = time.perf_counter()
        sextractor_map = run_sextractor(image)
        t_sex = time.perf_counter() - start
        print(f"| sextractor | {np.unique(sextractor_map).size - 1} | {t_sex:.2f} |")
    print(
        f"\nOf SEP's 200 brightest detections, {inside.mean():.1%} lie inside one of our "
        f"segments and {(dist <= 3).mean():.1%} have one of our segment centroids within 3 px "
        f"({(dist <= 5).mean():.1%} within 5 px)."
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--sources", type=int, default=120)
    parser.add_argument("--pair-seeds", type=int, default=10)
    parser.add_argument(
        "--pairs-figure", metavar="PNG", help="only draw the blended pairs of seed 0 to PNG"
    )
    args = parser.parse_args()
    if args.pairs_figure:
        pairs_figure(args.pairs_figure)
        return
    seeds = list(range(args.seeds))
    fields_table(seeds, args.size, args.sources)
    pairs_table(list(range(args.pair_seeds)))
    hubble()


if __name__ == "__main__":
    main()
