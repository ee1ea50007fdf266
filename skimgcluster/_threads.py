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


def _take_part(start, stop, rows, order, out):
    np.take(rows, order[start:stop], out=out[start:stop])


def take_rows(array, order):
    """``array[order]`` for a C-contiguous 2-D array, gathered on the threads.

    Each row is taken as one item of its entries' bytes (a void dtype):
    NumPy's fancy indexing and ``np.take(..., axis=0)`` copy a row an entry
    at a time. ``np.take`` releases the GIL, so the parts of ``order`` run
    in parallel (:func:`threaded`). A random gather of 10^7 rows (the edges
    of AstroLink's aggregation at JWST sizes) took 0.65 s on one core.
    """
    array = np.ascontiguousarray(array)
    rows = array.view(np.dtype((np.void, array.shape[1] * array.itemsize))).reshape(-1)
    out = np.empty(order.size, dtype=rows.dtype)
    threaded(_take_part, order.size, rows, order, out, min_per_thread=2**18)
    return out.view(array.dtype).reshape(order.size, array.shape[1])
