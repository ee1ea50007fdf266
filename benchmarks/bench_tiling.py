"""Tiled segmentation on a mosaic of benchmark fields: quality, workers, memory.

Run by hand (needs the dask extra: ``pip install ".[dask]"``)::

    python benchmarks/bench_tiling.py [--size 4096] [--tile-size 2048]

The mosaic is a grid of ``make_field((512, 512), 120, random_state=k)`` fields (the
fields of ``bench_quality.py``), ``size / 512`` a side, three float32 bands, with their
true label images renumbered to be unique. Cases, each reporting wall time and the
peak resident memory of the largest single process (the driver or a worker, sampled
every 20 ms from ``/proc`` with psutil):

1. ``one-by-one``: ``segment(field, tile_size=None)`` on every field in turn, the label
   images put back into a mosaic; the reference quality;
2. ``tiled, 1 worker`` and ``tiled, 2 workers``: ``segment(mosaic, tile_size=...)`` on a
   ``distributed.LocalCluster`` of 1 or 2 single-thread worker processes.

Quality is the detection F1 and mean IoU of the mosaic's label image against the truth
(``skimgcluster.metrics.detection_scores``, IoU >= 0.5). The two tiled runs must give
the same label image (checked). Every run uses ``random_state=0``.
"""

import argparse
import threading
import time
import warnings

import numpy as np

FIELD = 512


def mosaic(size):
    from skimgcluster.datasets import make_field

    n = size // FIELD
    image = np.empty((size, size, 3), dtype=np.float32)
    truth = np.zeros((size, size), dtype=np.int32)
    fields = []
    offset = 0
    for i in range(n):
        for j in range(n):
            f, t, _ = make_field((FIELD, FIELD), 120, random_state=i * n + j)
            rows, cols = slice(i * FIELD, (i + 1) * FIELD), slice(j * FIELD, (j + 1) * FIELD)
            image[rows, cols] = f
            truth[rows, cols] = np.where(t > 0, t + offset, 0)
            offset += int(t.max())
            fields.append((rows, cols))
    return image, truth, fields


class PeakMemory:
    """Largest resident set of any one process of this process tree, sampled by a thread."""

    def __init__(self, interval=0.02):
        import psutil

        self.process = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def _sample(self):
        while not self._stop.is_set():
            try:
                procs = [self.process, *self.process.children(recursive=True)]
                rss = max(p.memory_info().rss for p in procs)
                self.peak = max(self.peak, rss)
            except Exception:  # a worker ending between listing and reading
                pass
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def one_by_one(image, fields):
    from skimgcluster import segment

    labels = np.zeros(image.shape[:2], dtype=np.int32)
    offset = 0
    for rows, cols in fields:
        result = segment(image[rows, cols], random_state=0, tile_size=None)
        part = result.label_image
        labels[rows, cols] = np.where(part > 0, part + offset, 0)
        offset += int(part.max())
    return labels


def tiled(image, tile_size, n_workers):
    from distributed import Client, LocalCluster

    from skimgcluster import segment

    with (
        LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        # Workers load numba's cached kernels before the clock starts.
        warm = image[:256, :256]
        segment(warm, random_state=0, tile_size=128)
        start = time.perf_counter()
        with PeakMemory() as memory:
            result = segment(image, random_state=0, tile_size=tile_size)
        return result, time.perf_counter() - start, memory.peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="side of the mosaic (4096)")
    parser.add_argument("--tile-size", type=int, default=2048, help="tile side (2048)")
    args = parser.parse_args()
    from skimgcluster.metrics import detection_scores

    warnings.simplefilter("ignore")
    image, truth, fields = mosaic(args.size)
    print(f"mosaic {image.shape}, {truth.max()} true sources, tile_size={args.tile_size}")
    rows = []
    start = time.perf_counter()
    with PeakMemory() as memory:
        labels = one_by_one(image, fields)
    rows.append(("one-by-one", labels, time.perf_counter() - start, memory.peak))
    reference = None
    for n_workers in (1, 2):
        result, seconds, peak = tiled(image, args.tile_size, n_workers)
        rows.append((f"tiled, {n_workers} worker(s)", result.label_image, seconds, peak))
        if reference is None:
            reference = result.label_image
        elif not np.array_equal(reference, result.label_image):
            print("WARNING: the label images of 1 and 2 workers differ")
    print(f"{'case':<20} {'F1':>6} {'mean IoU':>9} {'found':>6} {'time s':>8} {'peak GB':>8}")
    for name, labels, seconds, peak in rows:
        s = detection_scores(labels, truth)
        print(
            f"{name:<20} {s['f1']:6.3f} {s['mean_iou']:9.3f} {s['n_found']:6d} "
            f"{seconds:8.1f} {peak / 2**30:8.2f}"
        )
    print(f"speed-up of 2 workers over 1: {rows[1][2] / rows[2][2]:.2f}x")


if __name__ == "__main__":
    main()
