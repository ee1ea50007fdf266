import threading

import numba
import pytest

from skimgcluster._threads import in_background, threaded


def _recorder():
    parts = []
    lock = threading.Lock()

    def kernel(start, stop, scale):
        with lock:
            parts.append((start, stop))
        return scale * (stop - start)

    return kernel, parts


@pytest.mark.parametrize("n", [0, 1, 7, 1000])
def test_parts_cover_the_range_in_order(n):
    kernel, parts = _recorder()
    results = threaded(kernel, n, 2)
    parts.sort()
    assert parts[0][0] == 0 and parts[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:], strict=False))
    assert len(parts) <= max(1, numba.get_num_threads())
    assert results == [2 * (stop - start) for start, stop in parts]  # in order


def test_min_per_thread_and_thread_count_are_respected():
    kernel, parts = _recorder()
    threaded(kernel, 100, 1, min_per_thread=60)
    assert parts == [(0, 100)]  # two parts would be smaller than 60
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        kernel, parts = _recorder()
        threaded(kernel, 10_000, 1)
        assert parts == [(0, 10_000)]
    finally:
        numba.set_num_threads(previous)


def _fails():
    raise ZeroDivisionError("from the thread")


@pytest.mark.parametrize("n_threads", [1, 2])
def test_in_background_returns_or_raises_at_result(n_threads):
    previous = numba.get_num_threads()
    numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        callers = []
        future = in_background(lambda a, b: callers.append(threading.get_ident()) or a + b, 2, 3)
        assert future.result() == 5
        # One numba thread: on the caller's thread; else on one of its own.
        on_caller = callers == [threading.get_ident()]
        assert on_caller == (numba.get_num_threads() < 2)
        if numba.get_num_threads() >= 2:
            with pytest.raises(ZeroDivisionError, match="from the thread"):
                in_background(_fails).result()
        else:
            with pytest.raises(ZeroDivisionError, match="from the thread"):
                in_background(_fails)
    finally:
        numba.set_num_threads(previous)
