"""Helpers that only the tests use: references the package's kernels are checked against."""

import os
import signal
from pathlib import Path

import numpy as np

from skimgcluster._background import clipped_rows
from skimgcluster._files import atomic_write
from skimgcluster._neighbors import GridIndex

#: The folder that holds the package under test.
ROOT = Path(__file__).parents[1]


def source_env(**variables):
    """This process's environment for a child, with the package under test first on its path.

    A child whose path starts elsewhere (a console script, a script of
    docs/examples) would import the copy installed there (CI's ``pip install``),
    which compiles every kernel again, into a cache of its own.
    """
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **variables}


def sigint_default():
    """``preexec_fn`` of a child that a test interrupts: SIGINT back to its default action.

    A job started in the background by a shell without job control (``cmd &``
    in a script, as some CI runners do) has SIGINT ignored, and so do its
    children; Python turns SIGINT into KeyboardInterrupt only where it found
    the default action, so such a child would sleep through the test's Ctrl-C.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def band_mean(data):
    """Mean over the bands of an (M, N, C) array as float32 (NaN if any is NaN).

    Summed band after band in float64, as the luminosity kernel sums.
    """
    total = 0.0 + data[:, :, 0].astype(np.float64)
    for q in range(1, data.shape[2]):
        total += data[:, :, q]
    return (total / data.shape[2]).astype(np.float32)


def grid_samples(image, ny, nx, box_y, box_x, start, step):
    """Values of an (M, N) image on the sub-grid of every box, as float32.

    The layout of ``Mesh.samples``: (ny * nx, n_per_box), boxes row by row,
    the sub-grid of a box row by row.
    """
    core = image[: ny * box_y, : nx * box_x].reshape(ny, box_y, nx, box_x)
    sub = core[:, start::step, :, start::step]
    return sub.transpose(0, 2, 1, 3).reshape(ny * nx, -1).astype(np.float32)


def grid_knn(X, k, *, points_per_cell=None):
    """Exact ``k`` nearest neighbours of every point of ``X`` among ``X``, by a GridIndex.

    ``k`` counts the point itself; ``points_per_cell`` (default ``k``) is the
    target number of points in the cells where most points lie. Returns the
    squared distances (ascending) and the indices (ties to the lower index).
    """
    index = GridIndex(X, float(k if points_per_cell is None else points_per_cell))
    return index.query_own(k)


def write_text(path, text):
    """Write a text file atomically."""

    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)

    atomic_write(path, write)


def clipped_stats(values, n_sigma, max_iters):
    """Clipped median, standard deviation and kept mask of every row of ``values``.

    What ``_clipped_stats_reference`` returns, from the package's kernel.
    """
    med, std, lo, hi = clipped_rows(values, n_sigma, max_iters)
    with np.errstate(invalid="ignore"):
        keep = (values >= lo[:, None]) & (values <= hi[:, None])
    return med, std, keep
