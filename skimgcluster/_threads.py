"""Running serial numba kernels on several threads.

numba's ``parallel=True`` compiles a kernel two to three times as slowly as the
same loop serial (measured on the image kernels: 6.2 s against 1.9 s for the
luminosity pass), and every new environment pays that once. The kernels are
compiled serial with ``nogil=True`` instead, and :func:`threaded` runs parts of
their loop on threads of Python, which run in parallel since the kernels
release the GIL. :func:`take_rows` gathers rows so, and :func:`in_background`
runs NumPy work on a thread of its own while its caller goes on.
"""

from concurrent.futures import Future, ThreadPoolExecutor

import numba
import numpy as np

__all__ = []


def threaded(kernel, n, *args, min_per_thread=1):
    """Run ``kernel(start, stop, *args)`` over ``[0, n)``, split among threads.

    ``[0, n)`` is cut into contiguous parts, at most one per numba thread
    (``numba.get_num_threads()``, so ``numba.set_num_threads`` and
    ``NUMBA_NUM_THREADS`` apply as to numba's own parallel loops) and none
    smaller than ``min_per_thread``. ``kernel`` is a serial numba kernel
    compiled with ``nogil=True``, or a function of NumPy calls that release
    the GIL, whose parts write to disjoint entries of their outputs, so the
    result does not depend on the number of parts.

    Returns
    -------
    results : list
        What ``kernel`` returned for every part, in order.
    """
    n_parts = max(1, min(numba.get_num_threads(), n // max(min_per_thread, 1)))
    if n_parts == 1:
        return [kernel(0, n, *args)]
    bounds = [n * k // n_parts for k in range(n_parts + 1)]
    with ThreadPoolExecutor(n_parts - 1) as pool:
        futures = [pool.submit(kernel, bounds[k], bounds[k + 1], *args) for k in range(1, n_parts)]
        first = kernel(bounds[0], bounds[1], *args)
        return [first] + [f.result() for f in futures]


def in_background(function, *args):
    """Start ``function(*args)`` on a thread of its own; its result comes later.

    For work that releases the GIL (NumPy on large arrays) and that the
    caller needs only after steps of its own. With one numba thread
    (``numba.set_num_threads(1)`` or ``NUMBA_NUM_THREADS=1``) it runs at
    once, on the caller's thread.

    Returns
    -------
    future : concurrent.futures.Future
        Its ``result()`` waits for the function and returns what it returned,
        or raises what it raised.
    """
    if numba.get_num_threads() < 2:
        done = Future()
        done.set_result(function(*args))
        return done
    pool = ThreadPoolExecutor(1)
    future = pool.submit(function, *args)
    pool.shutdown(wait=False)
    return future


def _take_part(start, stop, array, order, out):
    np.take(array, order[start:stop], axis=0, out=out[start:stop])


def take_rows(array, order):
    """``array[order]`` for a 2-D array, gathered on the threads.

    ``np.take(..., axis=0)`` copies each row as one block and releases the
    GIL, so the parts of ``order`` run in parallel (:func:`threaded`). On
    this project's 2-core machines, 1.3e7 random rows of two uint32 (the
    edges of AstroLink's aggregation at JWST sizes) took 91-98 ms, against
    607-679 ms by fancy indexing on one core; 2.2e6 rows of five float64 in
    nearly sorted order (the grid index's copy of the points), 23-37 ms.
    """
    out = np.empty((order.size, array.shape[1]), dtype=array.dtype)
    threaded(_take_part, order.size, array, order, out, min_per_thread=2**18)
    return out
