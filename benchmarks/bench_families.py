"""skimgcluster against photutils, SEP and SExtractor on fields it was not tuned on.

Needs the benchmark extras (``python -m pip install ".[bench]"``: photutils, SEP,
GalSim) and, for SExtractor, its binary (``apt-get install source-extractor``; skipped
with a note when absent). Run::

    python benchmarks/bench_families.py                          # tuning seeds, all
    python benchmarks/bench_families.py --split holdout          # held-out seeds
    python benchmarks/bench_families.py --methods ours --params 'min_significance=2.5' \\
        --params 'min_significance=3.0' --families base,psf8 --truth 1.5
    python benchmarks/bench_families.py --json out.json

or from Python::

    from bench_families import evaluate     # with benchmarks/ on sys.path
    result = evaluate({"min_significance": 2.5}, families=["base", "psf8"])
    result["summary"]["1.5"]["ours"]["f1"]

The fields come from ``independent_fields.make_independent_field`` (GalSim), which
shares no code or convention with ``skimgcluster.datasets``. Every family is 512x512
and changes one thing from ``base``:

- ``base``: 70 sources (15% stars, 20% in close pairs of different colours), Sersic
  index 0.5-4, intrinsic half-light radius 1.5-6 px, axis ratio 0.3-1, matched-filter
  S/N 10-1000 (power law), Moffat PSF (beta 3) of FWHM 3 px, 3 bands with sky
  200/350/500 and noise 1.0/0.8/1.3.
- ``psf1.5`` (Moffat), ``psf3`` (Gaussian: against ``base``, only the PSF's profile
  changes), ``psf5`` (Moffat), ``psf8`` (Gaussian): PSF FWHM 1.5, 3, 5, 8 px against
  the same source half-light radii 1.5-6 px.
- ``1band``: a single band (sky 200, noise 1), the same sources.
- ``dense``: 235 sources.
- ``lowsnr``: S/N three times lower (3.3-333).
- ``wide``: S/N 5-5000, 30% stars and 8 more bright stars of S/N 500-5000.
- ``pairs``: 60% of the sources in close pairs of different colours (colour slopes 1-2.5
  apart: 0.5-1.3 mag in the colour between the outer bands).
- ``pairsvivid`` (ours): as ``pairs`` with colour slopes 3-4 apart (1.5-2.0 mag), e.g. a
  red spheroid beside a blue star-forming galaxy.
- ``bulgedisk`` (ours, beyond the issue's list): every galaxy an n = 4 bulge inside an
  n = 1 disk, the bulge redder: a colour gradient within one source, which a
  colour-aware method must not split.

Seeds: the **tuning** split is seeds 0, 1, 2, 3 (``--split tune``, the default); the
**held-out** split is seeds 1000, 1001, 1002, 1003 (``--split holdout``), never to be
used for choosing parameters. The **report** split, seeds 2000-2011 (``--split
report``), is held out too, and three times as large: a family's F1 differs by up to
0.02 between the tuning and the held-out 4 fields (``lowsnr``: 0.862 and 0.843), as much
as the gaps between the methods, so comparisons are read on 12 fields. ``--seeds N``
takes the first N seeds of the split.

Truth: a pixel belongs to the source contributing most to the noise-free band-sum
model where that model reaches t sigma of the band-sum noise, for t = 1, 1.5 and 2 from
the same image (``--truth``); every table is given per t.

Methods: ``ours`` is ``skimgcluster.segment(image, random_state=0, **params)`` (a
single-band field is passed as its 2-D array); ``--params 'k=v,k=v'`` (values parsed
as Python literals, repeatable) runs one column of ours per setting. The peers
(``peers.py``) run on the band-mean image: photutils ``detect_sources`` +
``deblend_sources``, SEP ``extract`` and SExtractor 2.25, all at 1.5 sigma. Their
scores do not change between runs, so they are cached in ``benchmarks/.cache/`` keyed
by family, seed, method, the generator's version and a hash of ``peers.py`` and of
this family's definition (``--no-cache`` recomputes them).

Scores (``skimgcluster.metrics``: one-to-one matching at IoU >= 0.5): F1,
completeness and purity (means over the seeds' fields), mean IoU of matched pairs (mean
over fields), and, summed over fields: segments per true source, fragments (unmatched
segments lying at least half inside one true source of which another segment covers
more: the extra pieces of a split source), merges
(unmatched true sources whose best-overlapping segment belongs mostly to another true
source: swallowed by a neighbour), the mean area ratio matched segment / true source,
and close pairs with both sources matched (as ``skimgcluster.metrics.pairs_separated``;
only pairs whose two sources both reach the truth isophote are counted).
"""

import argparse
import functools
import hashlib
import json
import math
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from independent_fields import GENERATOR_VERSION, make_independent_field  # noqa: E402
from params import parse_params  # noqa: E402
from peers import PEERS, available_peers  # noqa: E402

from skimgcluster import segment  # noqa: E402
from skimgcluster.metrics import match_segments, pairs_separated  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE_DIR = os.path.join(HERE, ".cache")
SPLITS = {
    "tune": (0, 1, 2, 3),
    "holdout": (1000, 1001, 1002, 1003),
    "report": tuple(range(2000, 2012)),
}
TRUTH_LEVELS = (1.0, 1.5, 2.0)
METHODS = ("ours", "photutils", "sep", "sextractor")
SHAPE = (512, 512)

# name -> (description, keywords of make_independent_field changed from base)
FAMILIES = {
    "base": ("70 sources, Moffat FWHM 3 px, 3 bands", {}),
    "psf1.5": ("Moffat PSF FWHM 1.5 px", {"psf": "moffat", "psf_fwhm": 1.5}),
    "psf3": ("Gaussian PSF FWHM 3 px", {"psf": "gaussian", "psf_fwhm": 3.0}),
    "psf5": ("Moffat PSF FWHM 5 px", {"psf": "moffat", "psf_fwhm": 5.0}),
    "psf8": ("Gaussian PSF FWHM 8 px", {"psf": "gaussian", "psf_fwhm": 8.0}),
    "1band": ("single band", {"n_bands": 1}),
    "dense": ("235 sources", {"n_sources": 235}),
    "lowsnr": ("S/N 3x lower", {"snr_range": (10.0 / 3, 1000.0 / 3)}),
    "wide": (
        "S/N 5-5000, bright stars",
        {"snr_range": (5.0, 5000.0), "star_fraction": 0.3, "bright_stars": 8},
    ),
    "pairs": ("60% in close pairs", {"pair_fraction": 0.6}),
    "pairsvivid": (
        "60% in close pairs, colours far apart",
        {"pair_fraction": 0.6, "pair_colour_contrast": (3.0, 4.0)},
    ),
    "bulgedisk": ("red bulge in blue disk", {"bulge_disk": True}),
}

# Bumped whenever the scores computed from a label image change meaning.
SCORE_VERSION = "2"


def _file_hash(path):
    with open(path, "rb") as fh:
        return hashlib.sha1(fh.read()).hexdigest()[:10]


PEERS_HASH = _file_hash(os.path.join(HERE, "peers.py"))


@functools.lru_cache(maxsize=48)
def field(family, seed):
    """The field of one family and seed (cached in memory for repeated evaluations)."""
    _, changes = FAMILIES[family]
    return make_independent_field(seed, shape=SHAPE, truth_levels=TRUTH_LEVELS, **changes)


def _truth(fld, level):
    level = float(level)
    if level not in fld["truths"]:  # a level beyond the defaults: same model, new isophote
        above = fld["model"] >= level * fld["sigma_sum"]
        fld["truths"][level] = np.where(above, fld["owner"], 0).astype(np.int32)
    return fld["truths"][level]


def score_labels(found, fld, truth_levels):
    """Scores of one label image against a field's truths, {level: {name: value}}."""
    found = np.asarray(found)
    out = {}
    for level in truth_levels:
        truth = _truth(fld, level)
        out[str(float(level))] = _score_one(found, truth, fld["sources"])
    return out


def _score_one(found, truth, sources):
    fl, tl, iou = match_segments(found, truth)
    f_ids, f_area = np.unique(found[found > 0], return_counts=True)
    t_ids, t_area = np.unique(truth[truth > 0], return_counts=True)
    n_found, n_true, n_matched = f_ids.size, t_ids.size, fl.size
    completeness = n_matched / n_true if n_true else float(n_found == 0)
    purity = n_matched / n_found if n_found else float(n_true == 0)
    f1 = 2 * completeness * purity / (completeness + purity) if completeness + purity else 0.0
    # Areas of matched pairs.
    area_ratio_sum = float(
        np.sum(f_area[np.searchsorted(f_ids, fl)] / t_area[np.searchsorted(t_ids, tl)])
    )
    # Contingency of overlaps, for fragments and merges.
    both = (found > 0) & (truth > 0)
    pairs, inter = np.unique(
        np.stack([found[both].astype(np.int64), truth[both].astype(np.int64)]),
        axis=1,
        return_counts=True,
    )
    fragments = merges = 0
    if pairs.size:
        # Best true source of each found segment, and best segment of each true source.
        order = np.lexsort((-inter, pairs[0]))
        fp, tp, ip = pairs[0][order], pairs[1][order], inter[order]
        first = np.r_[True, fp[1:] != fp[:-1]]
        overlaps = zip(tp[first].tolist(), ip[first].tolist(), strict=True)
        best_true = dict(zip(fp[first].tolist(), overlaps, strict=True))
        order = np.lexsort((-inter, pairs[1]))
        fp, tp, ip = pairs[0][order], pairs[1][order], inter[order]
        first = np.r_[True, tp[1:] != tp[:-1]]
        best_found = dict(zip(tp[first].tolist(), fp[first].tolist(), strict=True))
        matched_f, matched_t = set(fl.tolist()), set(tl.tolist())
        area_of = dict(zip(f_ids.tolist(), f_area.tolist(), strict=True))
        for f, (t, overlap) in best_true.items():
            # A piece of a source that another segment covers more of: a split.
            if f not in matched_f and overlap >= 0.5 * area_of[f] and best_found[t] != f:
                fragments += 1
        for t, f in best_found.items():
            if t not in matched_t and best_true[f][0] != t:
                merges += 1
    # Close pairs whose two sources both reach this isophote.
    present = np.isin(sources["label"], t_ids)
    pair = np.asarray(sources["pair"]).copy()
    for p in np.unique(pair[pair >= 0]):
        if not present[pair == p].all():
            pair[pair == p] = -1
    labels = np.where(present, sources["label"], 0)
    n_sep, n_pairs = pairs_separated(found, truth, pair, labels)
    return {
        "f1": float(f1),
        "completeness": float(completeness),
        "purity": float(purity),
        "mean_iou": float(iou.mean()) if n_matched else None,
        "n_true": int(n_true),
        "n_found": int(n_found),
        "n_matched": int(n_matched),
        "fragments": int(fragments),
        "merges": int(merges),
        "area_ratio_sum": area_ratio_sum,
        "pairs_separated": int(n_sep),
        "n_pairs": int(n_pairs),
    }


def _cache_path(family, seed, method):
    family_hash = hashlib.sha1(repr(FAMILIES[family][1]).encode()).hexdigest()[:8]
    name = (
        f"{family}_{seed}_{method}_{GENERATOR_VERSION}_{family_hash}_{PEERS_HASH}"
        f"_s{SCORE_VERSION}.json"
    )
    return os.path.join(CACHE_DIR, name)


def run_ours(image, params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return segment(image, random_state=0, **params).label_image


def peer_scores(family, seed, method, truth_levels, use_cache=True):
    """Scores of a peer on one field, {level: scores}, from the disk cache if there."""
    path = _cache_path(family, seed, method)
    wanted = [str(float(t)) for t in truth_levels]
    cached = {}
    if use_cache and os.path.exists(path):
        with open(path) as fh:
            cached = json.load(fh)
        if all(level in cached["scores"] for level in wanted):
            return {level: cached["scores"][level] for level in wanted}, cached["seconds"]
    fld = field(family, seed)
    start = time.perf_counter()
    found = PEERS[method](fld["image"])
    seconds = time.perf_counter() - start
    levels = sorted({float(t) for t in truth_levels} | set(TRUTH_LEVELS))
    scores = score_labels(found, fld, levels)
    os.makedirs(CACHE_DIR, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        json.dump({"scores": scores, "seconds": seconds}, fh)
    os.replace(tmp, path)
    return {level: scores[level] for level in wanted}, seconds


def _label(params):
    if not params:
        return "ours"
    return "ours[" + ",".join(f"{k}={v!r}" for k, v in params.items()) + "]"


def _aggregate(per_seed):
    """Means of the per-field rates, sums of the counts."""
    f1 = [s["f1"] for s in per_seed]
    ious = [s["mean_iou"] for s in per_seed if s["mean_iou"] is not None]
    n_true = sum(s["n_true"] for s in per_seed)
    n_matched = sum(s["n_matched"] for s in per_seed)
    return {
        "f1": float(np.mean(f1)),
        "completeness": float(np.mean([s["completeness"] for s in per_seed])),
        "purity": float(np.mean([s["purity"] for s in per_seed])),
        "mean_iou": float(np.mean(ious)) if ious else None,
        "segments_per_source": sum(s["n_found"] for s in per_seed) / n_true if n_true else None,
        "fragments": sum(s["fragments"] for s in per_seed),
        "merges": sum(s["merges"] for s in per_seed),
        "area_ratio": sum(s["area_ratio_sum"] for s in per_seed) / n_matched
        if n_matched
        else None,
        "pairs_separated": sum(s["pairs_separated"] for s in per_seed),
        "n_pairs": sum(s["n_pairs"] for s in per_seed),
        "n_true": n_true,
        "n_found": sum(s["n_found"] for s in per_seed),
        "n_matched": n_matched,
        "per_seed_f1": [round(x, 4) for x in f1],
    }


def evaluate(
    params=None,
    families=None,
    split="tune",
    truth_levels=TRUTH_LEVELS,
    methods=("ours",),
    n_seeds=None,
    use_cache=True,
    verbose=False,
):
    """Score settings of ``segment`` (and the peers) on the independent field families.

    Parameters
    ----------
    params : dict, list of dict or None, default=None
        Keywords of ``skimgcluster.segment``: one setting (a dict; its column is named
        ``'ours'``) or several (a list; columns ``'ours[k=v,...]'``, ``'ours'`` for
        ``{}``). None is the defaults.
    families : sequence of str or None, default=None
        Names of ``FAMILIES``; None is all.
    split : {'tune', 'holdout', 'report'}, default='tune'
        Seeds 0-3 (tuning), 1000-1003 or 2000-2011 (held out: report, never tune, on
        these).
    truth_levels : sequence of float, default=(1, 1.5, 2)
        Isophotes of the truth in sigma of the band-sum noise.
    methods : sequence of str, default=('ours',)
        From ``'ours'``, ``'photutils'``, ``'sep'``, ``'sextractor'``. A peer that
        cannot run here (SExtractor not installed) is left out with a printed note.
    n_seeds : int or None, default=None
        The first ``n_seeds`` seeds of the split; None is all of them.
    use_cache : bool, default=True
        Read and write the peers' scores in ``benchmarks/.cache/``.
    verbose : bool, default=False
        Print progress to stderr.

    Returns
    -------
    result : dict
        ``results[family][level][method]`` and ``summary[level][method]`` (the mean
        over families of F1, completeness, purity, mean IoU and area ratio, and the
        sums of fragments, merges and pairs), each with the keys ``f1``,
        ``completeness``, ``purity``, ``mean_iou``, ``segments_per_source``,
        ``fragments``, ``merges``, ``area_ratio``, ``pairs_separated``, ``n_pairs``,
        ``per_seed_f1``; levels are strings (``'1.0'``, ``'1.5'``, ``'2.0'``). Also
        ``seeds``, ``split``, ``families``, ``methods`` ({column: params or None}),
        ``seconds`` ({column: segmentation time}) and ``generator``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}; got {split!r}.")
    families = list(FAMILIES) if families is None else list(families)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown families {unknown}; choose from {list(FAMILIES)}.")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {list(METHODS)}.")
    if params is None:
        settings = [{}]
    elif isinstance(params, dict):
        settings = [params]
    else:
        settings = [dict(p) for p in params]
    seeds = SPLITS[split][: n_seeds if n_seeds is not None else None]
    levels = [str(float(t)) for t in truth_levels]
    peers = available_peers([m for m in methods if m != "ours"])
    columns = {}
    if "ours" in methods:
        labels = [_label(p) for p in settings] if len(settings) > 1 else ["ours"]
        columns.update({label: p for label, p in zip(labels, settings, strict=True)})
    columns.update({name: None for name in peers})
    per = {fam: {lv: {c: [] for c in columns} for lv in levels} for fam in families}
    seconds = {c: 0.0 for c in columns}
    for fam in families:
        for seed in seeds:
            for column, setting in columns.items():
                if setting is None:
                    scores, secs = peer_scores(fam, seed, column, truth_levels, use_cache)
                else:
                    fld = field(fam, seed)
                    start = time.perf_counter()
                    found = run_ours(fld["image"], setting)
                    secs = time.perf_counter() - start
                    scores = score_labels(found, fld, truth_levels)
                seconds[column] += secs
                for lv in levels:
                    per[fam][lv][column].append(scores[lv])
        if verbose:
            print(f"<!-- {fam} done -->", file=sys.stderr, flush=True)
    results = {
        fam: {lv: {c: _aggregate(per[fam][lv][c]) for c in columns} for lv in levels}
        for fam in families
    }
    summary = {}
    for lv in levels:
        summary[lv] = {}
        for c in columns:
            rows = [results[fam][lv][c] for fam in families]
            mean = {}
            for key in ("f1", "completeness", "purity", "mean_iou", "segments_per_source",
                        "area_ratio"):
                vals = [r[key] for r in rows if r[key] is not None]
                mean[key] = float(np.mean(vals)) if vals else None
            for key in ("fragments", "merges", "pairs_separated", "n_pairs"):
                mean[key] = int(sum(r[key] for r in rows))
            summary[lv][c] = mean
    return {
        "split": split,
        "seeds": list(seeds),
        "families": families,
        "truth_levels": levels,
        "methods": columns,
        "seconds": seconds,
        "generator": GENERATOR_VERSION,
        "results": results,
        "summary": summary,
    }


def _fmt(x, digits=3):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def print_tables(result, out=sys.stdout):
    cols = list(result["methods"])
    seeds = ", ".join(str(s) for s in result["seeds"])
    p = functools.partial(print, file=out)
    p(f"Split: {result['split']} (seeds {seeds}); generator {result['generator']}.")
    for lv in result["truth_levels"]:
        p(f"\n#### Truth at {float(lv):g} sigma: F1 (purity) / mean IoU\n")
        p("| family | " + " | ".join(cols) + " |")
        p("|---|" + "---|" * len(cols))
        rows = [(fam, result["results"][fam][lv]) for fam in result["families"]]
        rows.append(("**mean**", result["summary"][lv]))
        for fam, by in rows:
            best = max(by[c]["f1"] for c in cols)
            cells = []
            for c in cols:
                s = by[c]
                cell = f"{s['f1']:.3f} ({s['purity']:.3f}) / {_fmt(s['mean_iou'])}"
                cells.append(f"**{cell}**" if s["f1"] == best and len(cols) > 1 else cell)
            p(f"| {fam} | " + " | ".join(cells) + " |")
        p(
            f"\nTruth at {float(lv):g} sigma: segments per true source, fragments, merges, "
            "matched area / true area, close pairs with both matched\n"
        )
        p("| family | " + " | ".join(cols) + " |")
        p("|---|" + "---|" * len(cols))
        for fam, by in rows:
            cells = [
                f"{_fmt(by[c]['segments_per_source'], 2)}, {by[c]['fragments']}, "
                f"{by[c]['merges']}, {_fmt(by[c]['area_ratio'], 2)}, "
                f"{by[c]['pairs_separated']}/{by[c]['n_pairs']}"
                for c in cols
            ]
            p(f"| {fam} | " + " | ".join(cells) + " |")
    p("\nSegmentation time over all fields (s; cached peers: the time of the cached run): "
      + ", ".join(f"{c} {t:.1f}" for c, t in result["seconds"].items()))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=sorted(SPLITS), default="tune")
    parser.add_argument("--families", default=",".join(FAMILIES),
                        help="comma-separated, from: " + ", ".join(FAMILIES))
    parser.add_argument("--truth", default="1,1.5,2", help="truth isophotes in sigma")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="comma-separated, from: " + ", ".join(METHODS))
    parser.add_argument("--params", action="append", type=parse_params, default=None,
                        help="keywords of segment, 'k=v,k=v' (repeatable: one column each)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="the first N seeds of the split (default: all)")
    parser.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    parser.add_argument("--no-cache", action="store_true", help="recompute the peers")
    args = parser.parse_args(argv)
    families = [f for f in args.families.split(",") if f]
    methods = [m for m in args.methods.split(",") if m]
    try:
        truth = [float(t) for t in args.truth.split(",") if t]
    except ValueError:
        parser.error(f"--truth must be comma-separated numbers; got {args.truth!r}")
    try:
        result = evaluate(
            params=args.params if args.params and len(args.params) > 1 else
            (args.params[0] if args.params else None),
            families=families,
            split=args.split,
            truth_levels=truth,
            methods=methods,
            n_seeds=args.seeds,
            use_cache=not args.no_cache,
            verbose=True,
        )
    except ValueError as exc:
        parser.error(str(exc))
    print_tables(result)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
