"""Speed and memory at JWST scale, side by side in one run.

Run by hand (needs the benchmark extras for the peers: ``pip install ".[bench]"``)::

    python benchmarks/bench_speed.py [--size 4608] [--samples 1000000]

Every case runs in a fresh Python process, after a warm-up on a small image (so numba's
compiled kernels are loaded and raw AstroLink has compiled its own), and reports its wall
time, its CPU time (``cpu_seconds``, all threads: steadier than the wall time on a busy
machine) and its peak memory above what the process held before the case started
(resident set size, read from ``/proc`` every 2 ms by a thread). Cases:

1. ``sampler``: ``LuminositySampler(n_samples=N).fit_transform`` on the field, against
   ``notebook``, the original notebook's sampling recipe, on the same image;
2. ``fit``: ``AstroLinkClusterer.fit`` against ``raw``, ``astrolink.AstroLink(...).run()``,
   on the identical point cloud (the sampler's output) with the same parameters;
3. ``labels``: ``labels_to_image`` of that fit onto the field's pixels (with a footprint);
4. ``segment``: ``segment(image)`` end to end, against ``photutils`` and ``sep`` (the
   recipes of ``bench_quality.py``), with the detection F1 of each against the truth;
5. ``first result`` (``--first-result``): the quick start,
   ``segment(skimage.data.hubble_deep_field(), random_state=0)``, in a new process whose
   numba cache is an empty folder (``NUMBA_CACHE_DIR``), as in a fresh environment, so
   every kernel is compiled; then in a second process that loads them from that cache.
   Wall time of the whole process, its import and its ``segment`` call. Then the same
   for the README's command, ``skimgcluster segment --output DIR`` (its figure and
   catalog included), with a cache of its own;
6. ``stages`` (``--stages 100000,1000000``): for each number of points, the sampler on
   the field and AstroLink's stages of ``AstroLinkClusterer.fit`` one by one on its
   points (neighbours and densities, aggregation, significances, extraction), then
   ``labels_to_image``, each timed in one warm process.

The field is ``make_field((size, size), size * size // 3500, random_state=0)``, three
float32 bands, cached in the system's temporary folder. ``--cases`` picks the cases of
the table (``--cases none`` for none, with ``--first-result`` or ``--stages``).

With ``--repeat N`` every case runs N times, round by round (all cases once, then again),
so that each round's ratios compare runs made side by side; the table shows the median
of every figure with its range, and the ratios are given for every round and as their
median. On a machine shared with other work, one busy core halves the speed of the
two-thread kernels but not of the single-thread recipes: repeat, and read the spread.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakWatcher:
    """Samples the resident set size every 2 ms in a thread; keeps the peak."""

    def __enter__(self):
        self.start = _rss()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def field_paths(size):
    folder = Path(tempfile.gettempdir()) / "skimgcluster-bench"
    folder.mkdir(exist_ok=True)
    image, truth = folder / f"field{size}.npy", folder / f"truth{size}.npy"
    if not image.exists():
        from skimgcluster.datasets import make_field

        im, tr, _ = make_field((size, size), size * size // 3500, random_state=0)
        np.save(image, im)
        np.save(truth, tr)
    return image, truth


def notebook_recipe(image, n_samples, rng):
    """The seed notebook's sampling, verbatim but for the names."""
    lum = np.linalg.norm(image, axis=-1)
    lum = np.maximum(lum - 50 * np.sqrt(3), 0)
    lum /= lum.max()
    cdf = np.cumsum(lum)
    cdf /= cdf[-1]
    u = rng.uniform(0, 1, n_samples)
    idx = cdf.searchsorted(u).reshape(-1, 1).astype(np.float64)
    x, y = idx % image.shape[1], idx // image.shape[1]
    colours = image.reshape(-1, image.shape[-1])
    points = np.concatenate((x, y, colours[idx.astype(np.int64).ravel()]), axis=-1)
    points += 0.5
    points += rng.uniform(-0.5, 0.5, points.shape)
    return points


def _points_path(size, n_samples):
    return Path(tempfile.gettempdir()) / "skimgcluster-bench" / f"points{size}_{n_samples}.npy"


FIRST_RESULT = """
import time
t0 = time.perf_counter()
import skimage.data
from skimgcluster import segment
t1 = time.perf_counter()
result = segment(skimage.data.hubble_deep_field(), random_state=0)
t2 = time.perf_counter()
print(t1 - t0, t2 - t1, result.n_sources)
"""


def first_result():
    """The quick start in a new process with an empty numba cache, then again.

    Twice over: as the API (``FIRST_RESULT``) and as the README's command,
    ``skimgcluster segment --output DIR`` (``python -m skimgcluster``), each
    with a cache of its own. Also returns the load average before each run:
    with less than half a core idle the compiling process is not started.
    """
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    out = {}
    for kind in ("api", "command"):
        with tempfile.TemporaryDirectory() as cache:
            env["NUMBA_CACHE_DIR"] = cache
            for run in ("fresh", "cached"):
                if kind == "api":
                    cmd = [sys.executable, "-c", FIRST_RESULT]
                else:
                    output = os.path.join(cache, f"hubble_out_{run}")
                    cmd = [sys.executable, "-m", "skimgcluster", "segment", "--output", output]
                load = os.getloadavg()[0]
                start = time.perf_counter()
                # Run from the cache folder: ``python -c`` puts the working directory
                # first on sys.path, where a checkout would shadow the package tested.
                done = subprocess.run(cmd, env=env, cwd=cache, capture_output=True, text=True)
                wall = time.perf_counter() - start
                if done.returncode:
                    raise RuntimeError(done.stderr)
                if kind == "api":
                    imp, seg, n = done.stdout.split()
                    times = {"import": float(imp), "segment": float(seg), "n": int(n)}
                else:  # "found N sources in T s -> DIR"
                    words = done.stdout.split()
                    times = {"n": int(words[1]), "reported": float(words[4])}
                out[kind, run] = {"wall": wall, "load": load, **times}
    return out


def run_stages(size, n_samples):
    """Time of every stage on ``n_samples`` points of the field, in one warm process."""
    warnings.simplefilter("ignore")
    import numba

    from skimgcluster import AstroLinkClusterer, LuminositySampler, labels_to_image
    from skimgcluster._astrolink import CachedAstroLink

    image = np.load(field_paths(size)[0])
    small = np.ascontiguousarray(image[:256, :256])
    warm = LuminositySampler(n_samples=3000, random_state=0).fit_transform(small)
    fitted = AstroLinkClusterer(k_den=15, min_significance=2.5).fit(warm)  # loads the kernels
    labels_to_image(fitted.labels_, warm, small.shape[:2])
    out = {}
    start = time.perf_counter()
    sampler = LuminositySampler(n_samples=n_samples, random_state=0)
    points = sampler.fit_transform(image)
    out["sampler"] = time.perf_counter() - start
    previous = numba.get_num_threads()
    numba.set_num_threads(1)  # as AstroLinkClusterer(n_jobs=None)
    try:
        model = CachedAstroLink(points, k_den=15, adaptive=0, S=2.5)
        for stage in (
            "transform_data",
            "estimate_density_and_kNN",
            "aggregate",
            "compute_significances",
            "extract_clusters",
        ):
            start = time.perf_counter()
            getattr(model, stage)()
            out[stage] = time.perf_counter() - start
    finally:
        numba.set_num_threads(previous)
    fitted = AstroLinkClusterer(k_den=15, min_significance=2.5).fit(points)
    footprint = sampler.fit(image).analyse(image).footprint
    start = time.perf_counter()
    labels_to_image(fitted.labels_, points, image.shape[:2], footprint=footprint)
    out["labels"] = time.perf_counter() - start
    out["n_points"] = len(points)
    print(json.dumps(out))


def run_case(case, size, n_samples):
    warnings.simplefilter("ignore")
    from skimgcluster import AstroLinkClusterer, LuminositySampler, labels_to_image, segment
    from skimgcluster.metrics import detection_scores

    image_path, truth_path = field_paths(size)
    image = np.load(image_path)
    # A contiguous copy: the warm-up must load the kernels the timed call uses (numba
    # keeps one machine code per array layout, and the field is contiguous).
    small = np.ascontiguousarray(image[:256, :256])
    sampler = LuminositySampler(n_samples=n_samples, random_state=0)
    clusterer = AstroLinkClusterer(k_den=15, min_significance=2.5)
    out = {}
    if case in ("sampler", "notebook"):
        LuminositySampler(n_samples=1000, random_state=0).fit_transform(small)
        notebook_recipe(small, 1000, np.random.default_rng(0))
    elif case in ("fit", "raw", "labels"):
        points_path = _points_path(size, n_samples)
        if not points_path.exists():  # the sampler's output for this size and N
            np.save(points_path, sampler.fit_transform(image))
        points = np.load(points_path)
        warm = LuminositySampler(n_samples=3000, random_state=0).fit_transform(small)
        clusterer.fit(warm)
        if case == "raw":
            from astrolink import AstroLink

            AstroLink(warm, k_den=15, adaptive=0, S=2.5, workers=1).run()  # compiles
        if case == "labels":
            footprint = sampler.fit(image).analyse(image).footprint
            fitted = clusterer.fit(points)
    elif case in ("segment", "photutils", "sep"):
        sys.path.insert(0, str(HERE))
        from bench_quality import run_photutils, run_sep

        segment(small, random_state=0)
        truth = np.load(truth_path)
    with _PeakWatcher() as memory:
        start, cpu = time.perf_counter(), time.process_time()
        if case == "sampler":
            points = sampler.fit_transform(image)
            out["n_points"] = len(points)
        elif case == "notebook":
            points = notebook_recipe(image, n_samples, np.random.default_rng(0))
            out["n_points"] = len(points)
        elif case == "fit":
            clusterer.fit(points)
            out["n_clusters"] = int(clusterer.n_clusters_)
        elif case == "raw":
            from astrolink import AstroLink

            model = AstroLink(points, k_den=15, adaptive=0, S=2.5, workers=1)
            model.run()
            out["n_clusters"] = len(model.ids) - 1
        elif case == "labels":
            labels_to_image(fitted.labels_, points, image.shape[:2], footprint=footprint)
        elif case == "segment":
            label_image = segment(image, random_state=0).label_image
        elif case == "photutils":
            label_image = run_photutils(image)
        elif case == "sep":
            label_image = run_sep(image)
        out["seconds"] = time.perf_counter() - start
        out["cpu_seconds"] = time.process_time() - cpu
    out["peak_mb"] = (memory.peak - memory.start) / 2**20
    if case in ("segment", "photutils", "sep"):
        scores = detection_scores(label_image, truth)
        out["f1"] = scores["f1"]
        out["n_found"] = scores["n_found"]
    out["image_mb"] = image.nbytes / 2**20
    print(json.dumps(out))


def stages(size, n_samples):
    cmd = [sys.executable, __file__, "--case", "stages", "--size", str(size)]
    cmd += ["--samples", str(n_samples)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(case, size, n_samples):
    cmd = [sys.executable, __file__, "--case", case, "--size", str(size)]
    cmd += ["--samples", str(n_samples)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


CASES = ("notebook", "sampler", "raw", "fit", "labels", "photutils", "sep", "segment")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4608)
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="rounds of all cases")
    parser.add_argument("--cases", default=",".join(CASES), help="cases of the table, or none")
    parser.add_argument("--first-result", action="store_true", help="fresh-cache quick start")
    parser.add_argument("--stages", default="", help="numbers of points, e.g. 100000,1000000")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case == "stages":
        run_stages(args.size, args.samples)
        return
    if args.case:
        run_case(args.case, args.size, args.samples)
        return
    if args.first_result:
        for _ in range(args.repeat):
            times = first_result()
            fresh, cached = times["api", "fresh"], times["api", "cached"]
            print(
                f"first result (API), empty numba cache: {fresh['wall']:.1f} s wall (import "
                f"{fresh['import']:.1f} s, segment {fresh['segment']:.1f} s; load "
                f"{fresh['load']:.1f}); next process: {cached['wall']:.1f} s (import "
                f"{cached['import']:.1f} s, segment {cached['segment']:.1f} s); "
                f"{fresh['n']} sources"
            )
            fresh, cached = times["command", "fresh"], times["command", "cached"]
            print(
                f"first result (skimgcluster segment --output DIR), empty numba cache: "
                f"{fresh['wall']:.1f} s wall (load {fresh['load']:.1f}); next process: "
                f"{cached['wall']:.1f} s; {fresh['n']} sources"
            )
        print()
    field_paths(args.size)
    for n_samples in [int(v) for v in args.stages.split(",") if v]:
        times = stages(args.size, n_samples)
        cells = ", ".join(f"{k} {v:.2f} s" for k, v in times.items() if k != "n_points")
        print(f"stages at {times['n_points']} points: {cells}")
    cases = [c for c in args.cases.split(",") if c in CASES]
    if not cases:
        return
    print(f"field {args.size}x{args.size}x3 float32, {args.samples} samples\n")
    rounds = []
    for _ in range(args.repeat):
        rounds.append({case: measure(case, args.size, args.samples) for case in cases})

    def spread(case, key):
        values = [r[case][key] for r in rounds]
        text = f"{np.median(values):.2f}"
        return text if len(values) == 1 else f"{text} ({min(values):.2f}-{max(values):.2f})"

    print("| case | seconds | peak MB above start | notes |")
    print("|---|---|---|---|")
    for case in cases:
        last = rounds[-1][case]
        notes = {k: v for k, v in last.items() if k not in ("seconds", "peak_mb")}
        peak = np.median([r[case]["peak_mb"] for r in rounds])
        print(f"| {case} | {spread(case, 'seconds')} | {peak:.0f} | {notes} |")
    print()

    def ratios(a, b, key="seconds"):
        values = [r[a][key] / r[b][key] for r in rounds]
        each = ", ".join(f"{v:.3f}" for v in values)
        return f"{np.median(values):.3f}" + ("" if len(values) == 1 else f" (rounds: {each})")

    if {"sampler", "notebook"} <= set(cases):
        print(f"sampler / notebook time: {ratios('sampler', 'notebook')}")
    if "sampler" in cases:
        peaks = [r["sampler"]["peak_mb"] / r["sampler"]["image_mb"] for r in rounds]
        print(f"sampler peak / image bytes: {np.median(peaks):.2f}")
    if {"fit", "raw"} <= set(cases):
        print(f"fit / raw AstroLink time: {ratios('fit', 'raw')}")
    for peer in ("photutils", "sep"):
        if {"segment", peer} <= set(cases):
            print(f"segment / {peer} time: {ratios('segment', peer)}")


if __name__ == "__main__":
    main()
