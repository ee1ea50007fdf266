"""How robust are the defaults of `segment`? Field families unlike `make_field`'s defaults.

Needs the benchmark extras: ``python -m pip install ".[bench]"``. Run::

    python benchmarks/bench_robustness.py            # all families, 5 seeds, 3 methods
    python benchmarks/bench_robustness.py --quick    # 2 seeds
    python benchmarks/bench_robustness.py --sweep    # also: parameter changes of ours
    python benchmarks/bench_robustness.py --families base,psf5 --seeds 3 --sweep

Every family is ``skimgcluster.datasets.make_field`` with one thing changed from the
base family (512x512, 120 sources, seeds 0..n-1, three bands, S/N 5-500, Sersic index
0.5-4, 20% close pairs, PSF 2.5 px FWHM, sky 100, noise 1, truth at 1 sigma of the
band-mean noise). The families:

- ``base``: the base family. Its truth is also drawn at other levels of the noiseless
  band-mean model (0.5, 2 and 3 sigma of the band-mean noise; same image, same seed:
  ``make_field(..., truth_threshold=t)`` draws the identical image), reported as
  ``truth@0.5``, ``truth@2``, ``truth@3``.
- ``bright``: S/N 20-500 and 10% of the sources in pairs (fewer faint sources, fewer
  blends), where photutils and SEP do well; truth also at 2 sigma (``truth@2``).
- ``gauss`` / ``n4``: every source of Sersic index 0.5 (Gaussian) / 4 (steep core, wide
  wings). ``make_field`` has no parameter for it: the script wraps
  ``datasets._draw_source`` for the time of the call (the random draws are unchanged, so
  positions, sizes and S/N are those of the base family).
- ``psf1.5`` / ``psf5``: PSF of 1.5 / 5 px FWHM.
- ``sky0`` (sky 0, noise 0.1) / ``sky1000`` (sky 1000, noise 30).
- ``1band``: a single band.
- ``uint8`` (the float field scaled linearly from its minimum to its maximum onto 0-255
  and rounded: about 1.1 DN per noise sigma), ``uint8sat`` (0-255 from the minimum to the
  99.9th percentile, brighter pixels saturated at 255, as a stretched JPEG: about 5 DN
  per sigma), ``uint16`` (minimum to maximum onto 0-65535: about 300 DN per sigma). One
  scale for all bands; the truth is the float field's. ``uint8dither``: the ``uint8``
  field back to float with uniform noise of one step added (dithered), to tell the
  quantisation's effect on the noise estimate from its effect on the data.
- ``crowded`` (400 sources) / ``sparse`` (20 sources).

Methods: ``segment(image, random_state=0)`` and the photutils, SEP and SExtractor
recipes of ``peers.py`` (on the band-mean image; SExtractor is skipped, with a note, when
its binary is not installed). Scores: detection F1,
completeness, purity and mean IoU of matched pairs (segments matched one-to-one to
true sources at IoU >= 0.5, ``skimgcluster.metrics.detection_scores``), averaged over
seeds (the mean IoU over the fields with a match).

``--sweep`` then runs ours alone with each parameter change of ``SWEEP`` (given to
``segment`` as keywords; ``--params 'k=v,k=v'`` replaces the grid) on every family, and
prints F1 and mean IoU per family, the number of blow-ups (fields, truth at 1 sigma, where
ours found more than twice as many segments as there are true sources) and the blended
pairs separated (``make_blended_pairs``, 8 pairs per seed, as in ``bench_defaults.py``).
"""

import argparse
import contextlib
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_defaults import count_pairs  # noqa: E402
from params import parse_params  # noqa: E402
from peers import available_peers  # noqa: E402

from skimgcluster import datasets, segment  # noqa: E402
from skimgcluster.metrics import detection_scores  # noqa: E402

SHAPE = (512, 512)
N_SOURCES = 120


@contextlib.contextmanager
def sersic_index(n):
    """Every source drawn by make_field gets Sersic index n (other draws unchanged)."""
    original = datasets._draw_source

    def draw(*args, **kwargs):
        src = original(*args, **kwargs)
        src["sersic_n"] = float(n)
        return src

    datasets._draw_source = draw
    try:
        yield
    finally:
        datasets._draw_source = original


def quantise(image, dtype, upper_percentile=100.0):
    """Scale the float field linearly from its minimum onto dtype's range and round."""
    top = np.iinfo(dtype).max
    lo = float(image.min())
    hi = float(np.percentile(image, upper_percentile))
    scaled = (image.astype(np.float64) - lo) * (top / (hi - lo))
    return np.clip(np.round(scaled), 0, top).astype(dtype)


def field(seed, n_sources=N_SOURCES, truth_levels=(1.0,), sersic=None, **kwargs):
    """Image and truths ({truth level: truth}) of make_field with the given changes."""
    truths = {}
    image = None
    for level in truth_levels:
        with sersic_index(sersic) if sersic is not None else contextlib.nullcontext():
            im, truth, _ = datasets.make_field(
                SHAPE, n_sources, truth_threshold=level, random_state=seed, **kwargs
            )
        if image is None:
            image = im
        elif not np.array_equal(image, im):  # the truth level must not change the image
            raise RuntimeError("make_field drew a different image for another truth level")
        truths[level] = truth
    return image, truths


def quantised(dtype, upper_percentile=100.0, dither=False):
    def make(seed):
        image, truths = field(seed)
        image = quantise(image, dtype, upper_percentile)
        if dither:  # float again, plus uniform noise of one quantisation step
            rng = np.random.default_rng(seed)
            image = (image + rng.uniform(-0.5, 0.5, image.shape)).astype(np.float32)
        return image, truths

    return make


# name -> (description, seed -> (image, {truth level: truth}))
FAMILIES = {
    "base": (
        "make_field((512, 512), 120)",
        lambda s: field(s, truth_levels=(1.0, 0.5, 2.0, 3.0)),
    ),
    "bright": (
        "S/N 20-500, 10% in pairs",
        lambda s: field(s, snr_range=(20.0, 500.0), blend_fraction=0.1, truth_levels=(1.0, 2.0)),
    ),
    "gauss": ("Sersic n = 0.5 only", lambda s: field(s, sersic=0.5)),
    "n4": ("Sersic n = 4 only", lambda s: field(s, sersic=4.0)),
    "psf1.5": ("PSF FWHM 1.5 px", lambda s: field(s, psf_fwhm=1.5)),
    "psf5": ("PSF FWHM 5 px", lambda s: field(s, psf_fwhm=5.0)),
    "sky0": ("sky 0, noise 0.1", lambda s: field(s, sky=0.0, noise=0.1)),
    "sky1000": ("sky 1000, noise 30", lambda s: field(s, sky=1000.0, noise=30.0)),
    "1band": ("one band", lambda s: field(s, n_bands=1)),
    "uint8": ("uint8, min-max", quantised(np.uint8)),
    "uint8dither": ("uint8 + U(-0.5, 0.5) as float", quantised(np.uint8, dither=True)),
    "uint8sat": ("uint8, min-99.9%, saturated", quantised(np.uint8, 99.9)),
    "uint16": ("uint16, min-max", quantised(np.uint16)),
    "crowded": ("400 sources", lambda s: field(s, n_sources=400)),
    "sparse": ("20 sources", lambda s: field(s, n_sources=20)),
}

# Parameter changes of ours tried by --sweep (one per row; {} = the defaults).
SWEEP = [
    {},
    {"detection_threshold": 3.0},
    {"detection_threshold": 4.0},
    {"detection_threshold": 5.0},
    {"smoothing": 0.5},
    {"smoothing": 1.5},
    {"samples_per_pixel": 6},
    {"k_den": 10},
    {"min_significance": 2.0},
    {"min_significance": 2.5},
    {"color_scale": 10},
    {"color_scale": 10, "min_significance": 2.0},
    {"background_box_size": 128},
]


def run_ours(image, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return segment(image, random_state=0, **params).label_image


METHODS = {"ours": run_ours, **available_peers()}


def score(found, truth):
    s = detection_scores(found, truth)
    return [s["f1"], s["completeness"], s["purity"], s["mean_iou"], s["n_found"], s["n_true"]]


def blow_ups(v):
    """Fields where more than twice as many segments as true sources were found."""
    return int(np.sum(v[:, 4] > 2 * v[:, 5]))


def fmt(x):
    return "nan" if np.isnan(x) else f"{x:.3f}"


def evaluate(families, seeds):
    """Scores of the methods; rows[(family, level)][method] = list of score rows."""
    rows, seconds = {}, {name: 0.0 for name in METHODS}
    for fam in families:
        _, make = FAMILIES[fam]
        for seed in seeds:
            image, truths = make(seed)
            for name, method in METHODS.items():
                start = time.perf_counter()
                found = method(image)
                seconds[name] += time.perf_counter() - start
                for level, truth in truths.items():
                    key = fam if level == 1.0 else f"{fam} truth@{level:g}"
                    rows.setdefault(key, {m: [] for m in METHODS})[name].append(score(found, truth))
        print(f"<!-- {fam} done -->", file=sys.stderr, flush=True)
    return rows, seconds


def print_tables(rows, seconds, n_seeds):
    print(f"\n### Families x methods ({n_seeds} seeds)\n")
    print(
        "| family | method | F1 | completeness | purity | mean IoU | per-seed F1 "
        "| fields with > 2x as many segments as sources |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for key, by_method in rows.items():
        fam = key.split()[0]
        label = f"{key} ({FAMILIES[fam][0]})" if key == fam else key
        for name, values in by_method.items():
            v = np.asarray(values)
            f1, comp, pur = v[:, :3].mean(axis=0)
            iou = np.nanmean(v[:, 3]) if np.isfinite(v[:, 3]).any() else np.nan
            per_seed = ", ".join(f"{x:.2f}" for x in v[:, 0])
            flag = " **<**" if name == "ours" and (f1 < 0.9 or iou < 0.8) else ""
            print(
                f"| {label} | {name} | {fmt(f1)}{flag} | {fmt(comp)} | {fmt(pur)} "
                f"| {fmt(iou)} | {per_seed} | {blow_ups(v)} |"
            )
            label = ""
    print("\n**<**: ours below F1 0.90 or mean IoU 0.80.\n")
    print("| method | total segmentation time (s) |")
    print("|---|---|")
    for name, t in seconds.items():
        print(f"| {name} | {t:.1f} |")


def sweep(families, seeds, grid, pair_seeds):
    """F1 / mean IoU of ours per family for each parameter change, and blended pairs."""
    images = {fam: [FAMILIES[fam][1](seed) for seed in seeds] for fam in families}
    keys = []
    for fam in families:
        for level in images[fam][0][1]:
            keys.append((fam, level))
    names = [k[0] if k[1] == 1.0 else f"{k[0]}@{k[1]:g}" for k in keys]
    print(f"\n### Ours with one parameter changed: F1 / mean IoU, {len(seeds)} seeds\n")
    print("| change | " + " | ".join(names) + " | mean F1 | min F1 | blow-ups | pairs | s |")
    print("|---|" + "---|" * (len(names) + 5))
    for params in grid:
        start = time.perf_counter()
        cells, f1s = [], []
        results = {}
        for fam in families:
            for image, truths in images[fam]:
                found = run_ours(image, **params)
                for level, truth in truths.items():
                    results.setdefault((fam, level), []).append(score(found, truth))
        n_blow = 0
        for key in keys:
            v = np.asarray(results[key])
            f1 = v[:, 0].mean()
            if key[1] == 1.0:
                n_blow += blow_ups(v)
            iou = np.nanmean(v[:, 3]) if np.isfinite(v[:, 3]).any() else np.nan
            if key[1] == 1.0:
                f1s.append(f1)
            cells.append(f"{f1:.3f} / {fmt(iou)}")
        separated, total = count_pairs(lambda image, p=params: run_ours(image, **p), pair_seeds)
        name = ", ".join(f"{k}={v}" for k, v in params.items()) or "**defaults**"
        print(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {np.mean(f1s):.3f} | {np.min(f1s):.3f} | {n_blow} | {separated}/{total} "
            f"| {time.perf_counter() - start:.0f} |",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 seeds (unless --seeds)")
    parser.add_argument(
        "--families",
        default=",".join(FAMILIES),
        help="comma-separated, from: " + ", ".join(FAMILIES),
    )
    parser.add_argument("--sweep", action="store_true", help="also sweep ours' parameters")
    parser.add_argument("--sweep-only", action="store_true", help="only the sweep")
    parser.add_argument(
        "--pair-seeds", type=int, default=10, help="seeds of make_blended_pairs in the sweep"
    )
    parser.add_argument(
        "--params",
        action="append",
        default=None,
        help="a sweep row 'k=v,k=v' (repeatable; replaces the built-in SWEEP grid)",
    )
    args = parser.parse_args()
    n_seeds = 2 if args.quick and "--seeds" not in sys.argv else args.seeds
    seeds = list(range(n_seeds))
    families = [f for f in args.families.split(",") if f]
    unknown = set(families) - set(FAMILIES)
    if unknown:
        parser.error(f"unknown families: {sorted(unknown)}")
    if not args.sweep_only:
        rows, seconds = evaluate(families, seeds)
        print_tables(rows, seconds, n_seeds)
    if args.sweep or args.sweep_only:
        grid = [parse_params(p) for p in args.params] if args.params else SWEEP
        sweep(families, seeds, grid, range(args.pair_seeds))


if __name__ == "__main__":
    main()
