"""Segmentation quality of `segment` over a grid of parameters, on generated fields.

Run by hand (not part of the test suite)::

    python benchmarks/bench_defaults.py [--seeds 5] [--size 512] [--sources 120]

Fields come from ``skimgcluster.datasets.make_field`` (seeds 0..n-1) and blended pairs
from ``make_blended_pairs`` (8 pairs per seed, seeds 0-9). Every row changes the defaults of
``segment`` by the parameters it names; it reports detection F1, completeness, purity,
mean IoU of matched pairs (IoU >= 0.5), the fraction of blended pairs whose two sources
are both recovered, and the time per field. This is the grid the defaults were chosen on.
"""

import argparse
import time
import warnings

import numpy as np

from skimgcluster import segment
from skimgcluster.datasets import make_blended_pairs, make_field
from skimgcluster.metrics import detection_scores, pairs_separated

GRID = [
    {},
    {"label_level": "deepest"},
    {"label_level": "top"},
    {"sampling": "random"},
    {"k_den": 10},
    {"k_den": 20},
    {"min_significance": 3.0},
    {"min_significance": 2.5},
    {"min_significance": 2.0},
    {"min_significance": "auto"},
    {"detection_threshold": 3.0},
    {"detection_threshold": 4.0},
    {"samples_per_pixel": 3},
    {"samples_per_pixel": 6},
    {"color_scale": 0},
    {"color_scale": 10},
    {"color_scale": 30},
    {"stretch": "asinh"},
    {"min_cluster_size": 15},
]


def count_pairs(result_of, seeds, n_pairs=8):
    separated = total = 0
    for seed in seeds:
        image, truth, sources = make_blended_pairs(n_pairs, random_state=seed)
        n, m = pairs_separated(result_of(image), truth, sources["pair"], sources["label"])
        separated, total = separated + n, total + m
    return separated, total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--sources", type=int, default=120)
    parser.add_argument("--pair-seeds", type=int, default=10)
    args = parser.parse_args()
    seeds = range(args.seeds)
    fields = [make_field((args.size, args.size), args.sources, random_state=s) for s in seeds]
    print("| change from defaults | F1 | completeness | purity | mean IoU | pairs | s/field |")
    print("|---|---|---|---|---|---|---|")
    for params in GRID:

        def result_of(image, params=params):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return segment(image, random_state=0, **params).label_image

        start = time.perf_counter()
        rows = []
        for image, truth, _ in fields:
            s = detection_scores(result_of(image), truth)
            rows.append([s["f1"], s["completeness"], s["purity"], s["mean_iou"]])
        per_field = (time.perf_counter() - start) / len(fields)
        sep, total = count_pairs(result_of, range(args.pair_seeds))
        f1, comp, pur, iou = np.nanmean(rows, axis=0)
        name = ", ".join(f"{k}={v}" for k, v in params.items()) or "**defaults**"
        print(
            f"| {name} | {f1:.3f} | {comp:.3f} | {pur:.3f} | {iou:.3f} | {sep}/{total} "
            f"| {per_field:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
