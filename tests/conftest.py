"""Shared fixtures and hypothesis profiles of the test suite.

Every fixture builds its data from its own seeded ``np.random.default_rng``;
nothing here touches the global NumPy random state.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Under pytest-xdist every core already runs a worker: the process that
# skimgcluster starts to compile AstroLink's kernels while the cache is empty
# would only compete with them, once per worker, compiling the same kernels
# twice. Set before skimgcluster is first imported (its import starts it).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("SKIMGCLUSTER_BACKGROUND_COMPILE", "0")

# The kernels of a segmentation, compiled into numba's disk cache while the
# xdist workers collect, by two processes at once: the package's own compiling
# process (its script in skimgcluster/_compiling.py: the clustering's,
# labelling's and deblending's kernels, then a small segmentation), and this
# script, the sampler's kernels on their two dtypes (float64 first: the other
# process's small segmentation loads them). Left to the workers, each compiles
# what its tests share while the other compiles the same (about 100 s of CPU
# more than one process on a cold cache, benchmarks/README.md, "CI time").
_SAMPLER_WARM_UP = """
import warnings
import numpy as np
from skimgcluster import LuminositySampler
warnings.simplefilter("ignore")
rng = np.random.default_rng(0)
for dtype in (np.float64, np.float32):
    image = rng.normal(10.0, 1.0, (64, 64, 3)).astype(dtype)
    image[20:30, 20:30] += 50.0
    LuminositySampler(n_samples=2000, random_state=0).fit_transform(image)
"""


# The warm-up processes of this session (the xdist controller's only).
_warming_up = []


def pytest_sessionstart(session):
    """Start warming numba's cache in the xdist controller, as its workers start.

    The processes run like the workers (same interpreter, working folder and
    environment), so they import the package the tests import and fill the
    cache the tests load. The workers import and collect the tests meanwhile
    (15-20 s of CPU each); no test starts before the cache is warm
    (:func:`pytest_xdist_node_collection_finished`). Their exit status is not
    checked: a kernel that fails to compile fails the tests that use it, with
    a test's report.
    """
    option = session.config.option
    if os.environ.get("PYTEST_XDIST_WORKER") or option.collectonly:
        return
    if not getattr(option, "numprocesses", None):  # one process: it compiles as it goes
        return
    from skimgcluster._compiling import _COMPILE_SCRIPT

    env = dict(os.environ, SKIMGCLUSTER_BACKGROUND_COMPILE="0")
    _warming_up.extend(
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for code in (_COMPILE_SCRIPT, _SAMPLER_WARM_UP)
    )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    """Hold back the first tests until the warm-up processes are done.

    xdist calls this in the controller as each worker reports its collection,
    before it hands out any test.
    """
    while _warming_up:
        _warming_up.pop().wait()


def pytest_sessionfinish(session):
    """End the warm-up of a session that never got to its tests (collection errors)."""
    while _warming_up:
        process = _warming_up.pop()
        process.kill()
        process.wait()


# AstroLink runs take 10-100 ms each, far above hypothesis' default deadline,
# and their first call in a process may compile numba kernels.
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=25,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def process_pool():
    """Two worker processes for Dask's ``processes`` scheduler, shared by the session.

    Use as ``dask.config.set(scheduler="processes", pool=process_pool)``. A new
    pool per test would pay each process's start again (imports, loading the
    numba kernels: seconds per process on two cores); tasks still run in
    other processes, which is what those tests check. Closed at the end.
    """
    from concurrent.futures import ProcessPoolExecutor

    from dask.multiprocessing import get_context

    with ProcessPoolExecutor(2, mp_context=get_context()) as pool:
        yield pool


@pytest.fixture(scope="module")
def process_cluster():
    """A Dask LocalCluster of 2 single-thread worker processes, shared by a module.

    Starting the processes and loading the package and its kernels in them takes
    seconds on two cores, again for each new cluster. A test connects its own
    client, so the cluster is the default scheduler only while that client is
    open; a test that changes a worker's state puts it back. Closed at the end
    of the module: idle, a cluster still takes about a sixth of a core (its
    heartbeats and event loops).
    """
    distributed = pytest.importorskip("distributed")
    import dask

    # Its tests fail, instead of waiting forever, if it ever loses both
    # workers (seen once under a load of 5-7, as the command line's cluster).
    with (
        dask.config.set({"distributed.scheduler.no-workers-timeout": "60s"}),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
    ):
        yield cluster


def gaussian_image(shape, sources, *, noise=1.0, sky=0.0, seed=0):
    """A single-band image of round Gaussian sources on Gaussian noise.

    Parameters
    ----------
    shape : tuple of int
        ``(M, N)``.
    sources : sequence of (row, col, amplitude, sigma)
        Centre (pixel centres at integers), peak value and width of each source.
    noise, sky : float
        Standard deviation and level of the background.
    seed : int
        Seed of the noise.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = sky + rng.normal(0.0, noise, shape)
    for row, col, amp, sigma in sources:
        image += amp * np.exp(-((yy - row) ** 2 + (xx - col) ** 2) / (2 * sigma**2))
    return image


#: Sources of the ``two_source_image`` fixture: (row, col, amplitude, sigma).
TWO_SOURCES = ((20, 18, 60.0, 2.5), (44, 46, 60.0, 2.5))

#: Sources of the ``three_source_image`` fixture, well apart on a 96 x 96 image.
THREE_SOURCES = ((22, 24, 50.0, 2.5), (70, 28, 50.0, 2.5), (48, 72, 50.0, 2.5))


@pytest.fixture
def two_source_image():
    """64 x 64 float image with two bright, well separated Gaussian sources."""
    return gaussian_image((64, 64), TWO_SOURCES, noise=1.0, sky=10.0, seed=1)


@pytest.fixture
def three_source_image():
    """96 x 96 float image with three separated Gaussian sources."""
    return gaussian_image((96, 96), THREE_SOURCES, noise=1.0, sky=5.0, seed=2)


@pytest.fixture
def rgb_image():
    """48 x 48 x 3 image: a red source on the left, a blue one on the right."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:48, :48]
    red = 80.0 * np.exp(-((yy - 24) ** 2 + (xx - 12) ** 2) / (2 * 2.5**2))
    blue = 80.0 * np.exp(-((yy - 24) ** 2 + (xx - 36) ** 2) / (2 * 2.5**2))
    image = rng.normal(5.0, 0.5, (48, 48, 3))
    image[:, :, 0] += red
    image[:, :, 2] += blue
    return image


@pytest.fixture
def two_blobs():
    """600 points in two well separated 2-D Gaussian blobs and their true labels."""
    rng = np.random.default_rng(4)
    X = np.concatenate([rng.normal(0.0, 1.0, (300, 2)), rng.normal(10.0, 1.0, (300, 2))])
    truth = np.repeat([0, 1], 300)
    return X, truth


def nested_points(seed=0):
    """A galaxy with two knots and a separate, bigger blob: a two-level hierarchy.

    With ``AstroLinkClusterer(k_den=20, min_significance=3)`` and ``seed=0``
    AstroLink finds ``'1-1'`` (the blob) and ``'1-2'`` (the galaxy) with the
    children ``'1-2-1'`` and ``'1-2-2'`` (the knots). Rows 0-799 are the
    galaxy's envelope, 800-949 and 950-1099 its knots, 1100-3099 the blob.
    """
    rng = np.random.default_rng(seed)
    parts = [
        rng.normal([0.0, 0.0], 4.0, (800, 2)),  # envelope
        rng.normal([-4.0, 0.0], 0.8, (150, 2)),  # left knot
        rng.normal([4.0, 0.0], 0.8, (150, 2)),  # right knot
        rng.normal([30.0, 0.0], 3.0, (2000, 2)),  # separate, bigger blob
    ]
    return np.concatenate(parts)


@pytest.fixture
def field_png(tmp_path):
    """An 8-bit RGB PNG of three Gaussian sources, for the command-line tests."""
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:96, :96]
    image = rng.normal(20, 3, (96, 96, 3))
    for y0, x0 in [(20, 25), (60, 70), (75, 20)]:
        image += (160 * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / 14))[..., None]
    path = tmp_path / "field.png"
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path)
    return path
