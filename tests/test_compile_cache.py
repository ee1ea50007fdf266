"""The compiled kernels are cached on disk, also from a read-only installation.

numba writes its cache next to a module's sources; where it cannot, it falls
back to a per-user folder (``$XDG_CACHE_HOME/numba`` or ``~/.cache/numba``).
These tests import the package from a read-only copy in new processes and
check that the second process loads what the first compiled.
"""

import ast
import contextlib
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from helpers import source_env

import skimgcluster

# Compiles one small kernel and reports the package's location and the
# kernel's cache hits and misses in this process.
SCRIPT = """
import numpy as np

import skimgcluster
from skimgcluster._kernels import sampler
sampler.runs(np.zeros(3, np.int64))
stats = sampler.runs.stats
print(skimgcluster.__file__)
print(sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
"""


def _read_only_copy(root):
    """A copy of the package under ``root/site`` that numba cannot write into."""
    source = Path(skimgcluster.__file__).parent
    package = root / "site" / "skimgcluster"
    shutil.copytree(source, package, ignore=shutil.ignore_patterns("__pycache__"))
    # A file where numba would create each __pycache__ folder (the package's and
    # the kernels'): writing next to the sources then fails for every user, root
    # included (root ignores the permissions removed below).
    for folder in [package, *(p for p in package.rglob("*") if p.is_dir())]:
        (folder / "__pycache__").write_text("")
    for path in [*package.rglob("*"), package]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return package


def _run(site, cache_home, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(
        PYTHONPATH=str(site),
        XDG_CACHE_HOME=str(cache_home),
        PYTHONDONTWRITEBYTECODE="1",
    )
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    location, counts = result.stdout.strip().splitlines()[-2:]
    hits, misses = (int(v) for v in counts.split())
    return Path(location), hits, misses


def test_read_only_install_caches_in_the_user_folder(tmp_path):
    package = _read_only_copy(tmp_path)
    cache_home = tmp_path / "cache"
    try:
        location, hits, misses = _run(package.parent, cache_home, tmp_path)
        assert location.parent == package  # the read-only copy was imported
        assert (hits, misses) == (0, 1)  # compiled
        # Nothing was written next to the sources; the cache is in the user's folder.
        assert (package / "__pycache__").is_file()
        assert (package / "_kernels" / "__pycache__").is_file()
        index = list((cache_home / "numba").glob("_kernels_*/sampler.runs-*.nbi"))
        assert len(index) == 1
        # A new process loads the machine code instead of compiling again.
        _, hits, misses = _run(package.parent, cache_home, tmp_path)
        assert (hits, misses) == (1, 0)
    finally:
        for path in [package, *package.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


@pytest.fixture
def cold_cache(monkeypatch):
    """``_compiling`` as in a new environment with a core free: no process started yet."""
    from skimgcluster import _compiling as compiling

    monkeypatch.setattr(compiling, "_compiling", None)
    monkeypatch.setattr(compiling, "_lines", 0)
    monkeypatch.setattr(compiling, "_waited", False)
    monkeypatch.setattr(compiling, "_cache_is_cold", lambda: True)
    monkeypatch.setattr(compiling, "_idle_cores", lambda: 1.0)
    monkeypatch.delenv(compiling._BACKGROUND_ENV, raising=False)
    return compiling


def test_cold_cache_starts_one_compiling_process(cold_cache, monkeypatch):
    compiling = cold_cache
    # The child fails unless it is marked as the compiling process (which
    # must not start another one).
    check = f"import os, sys; sys.exit(os.environ['{compiling._BACKGROUND_ENV}'] != '0')"
    monkeypatch.setattr(compiling, "_COMPILE_SCRIPT", check)
    compiling.compile_in_background()
    process = compiling._compiling
    assert isinstance(process, subprocess.Popen)
    compiling.compile_in_background()
    assert compiling._compiling is process  # once per process
    compiling.wait_for_compilation()
    assert compiling._waited
    assert process.wait(timeout=600) == 0


@contextlib.contextmanager
def _two_lines_then_asleep(compiling, monkeypatch, pause):
    """A compiling process writing its two lines ``pause`` s apart, then asleep; killed after."""
    script = (
        "import time\n"
        "print('clustering kernels compiled', flush=True)\n"
        f"time.sleep({pause})\n"
        "print('labelling and deblending kernels compiled', flush=True)\n"
        "time.sleep(600)\n"
    )
    monkeypatch.setattr(compiling, "_COMPILE_SCRIPT", script)
    compiling.compile_in_background()
    process = compiling._compiling
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=60)
        process.stdout.close()


def test_each_step_waits_for_its_line_not_for_the_end(cold_cache, monkeypatch):
    # The compiling process writes a line once the clustering's kernels are
    # cached, another once the labelling's and deblending's are, then goes on
    # with a small segmentation: no step waits for that.
    compiling = cold_cache
    with _two_lines_then_asleep(compiling, monkeypatch, pause=0.5) as process:
        compiling.wait_for_compilation(compiling.CLUSTERING)
        assert compiling._lines == 1
        compiling.wait_for_compilation(compiling.CLUSTERING)  # read already: no wait
        assert compiling._lines == 1
        compiling.wait_for_compilation(compiling.LABELLING)
        assert compiling._lines == 2
        assert process.stdout.closed  # nothing more to read
        assert process.poll() is None  # still running
        compiling.wait_for_compilation(compiling.LABELLING)


def test_threads_wait_in_turn(cold_cache, monkeypatch):
    # Tiles on a threaded scheduler wait for the same process: each thread
    # returns once both lines are read, and none reads the closed pipe.
    compiling = cold_cache
    with _two_lines_then_asleep(compiling, monkeypatch, pause=0) as process:
        stages = [compiling.CLUSTERING, compiling.LABELLING] * 3
        threads = [
            threading.Thread(target=compiling.wait_for_compilation, args=(stage,))
            for stage in stages
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
        assert compiling._lines == 2
        assert process.stdout.closed
        assert process.poll() is None


def test_compiling_process_imports_this_package_from_any_working_folder(
    cold_cache, tmp_path, monkeypatch
):
    # The quick start runs from a checkout of the sources after installing
    # them: the compiling process must import the package this process
    # imported (numba caches kernels by their source path), not the copy in
    # the working folder.
    compiling = cold_cache
    (tmp_path / "skimgcluster").mkdir()
    (tmp_path / "skimgcluster" / "__init__.py").write_text("")
    monkeypatch.chdir(tmp_path)
    here = skimgcluster.__file__
    check = f"import sys, skimgcluster; sys.exit(skimgcluster.__file__ != {here!r})"
    monkeypatch.setattr(compiling, "_COMPILE_SCRIPT", check)
    compiling.compile_in_background()
    compiling.wait_for_compilation()
    assert compiling._compiling.wait(timeout=600) == 0


def test_idle_cores_count_the_lesser_of_the_average_and_the_processes_runnable_now(monkeypatch):
    # Work that has just ended still weighs in the last minute's load average;
    # the processes runnable now (this one included) say the cores are free.
    from skimgcluster import _compiling as compiling

    monkeypatch.setattr(compiling.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(compiling.os, "getloadavg", lambda: (1.9, 1.0, 0.5))
    monkeypatch.setattr(compiling, "_runnable_now", lambda: 1)
    assert compiling._idle_cores() == 1.0
    monkeypatch.setattr(compiling, "_runnable_now", lambda: 3)  # busy now
    assert compiling._idle_cores() == pytest.approx(0.1)
    monkeypatch.setattr(compiling, "_runnable_now", lambda: None)  # no /proc/loadavg
    assert compiling._idle_cores() == pytest.approx(0.1)
    monkeypatch.setattr(compiling.os, "getloadavg", lambda: (0.2, 1.0, 0.5))
    monkeypatch.setattr(compiling, "_runnable_now", lambda: 2)
    assert compiling._idle_cores() == pytest.approx(1.8)


def test_runnable_now_reads_proc_loadavg():
    from skimgcluster import _compiling as compiling

    now = compiling._runnable_now()
    if not os.path.exists("/proc/loadavg"):
        assert now is None
    else:
        assert now >= 1  # this process at least


def test_no_compiling_process_when_cached_busy_or_opted_out(monkeypatch):
    from skimgcluster import _compiling as compiling

    monkeypatch.setattr(compiling, "_compiling", None)
    monkeypatch.delenv(compiling._BACKGROUND_ENV, raising=False)
    monkeypatch.setattr(compiling, "_idle_cores", lambda: 1.0)
    monkeypatch.setattr(compiling, "_cache_is_cold", lambda: False)
    compiling.compile_in_background()
    assert compiling._compiling is None
    monkeypatch.setattr(compiling, "_cache_is_cold", lambda: True)
    monkeypatch.setattr(compiling, "_idle_cores", lambda: 0.2)  # every core busy
    compiling.compile_in_background()
    assert compiling._compiling is None
    monkeypatch.setattr(compiling, "_idle_cores", lambda: 1.0)
    monkeypatch.setattr(compiling, "_cache_is_cold", lambda: True)
    monkeypatch.setenv(compiling._BACKGROUND_ENV, "0")
    compiling.compile_in_background()
    assert compiling._compiling is None


def _printed(script, cwd):
    """The values ``script`` prints, a line each, run in a new process without the compiling one."""
    env = dict(source_env(), SKIMGCLUSTER_BACKGROUND_COMPILE="0")
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=cwd, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [ast.literal_eval(line) for line in done.stdout.splitlines()]


# Segments a blended pair (the deblending splits it, so every kernel after
# the sampling runs) in both kernel dtypes, then runs the compiling process's
# functions; prints each kernel's signatures before and after them.
SIGNATURES = """
import numpy as np
from skimgcluster import segment
from skimgcluster._clusterer import compile_kernels as compile_clustering
from skimgcluster._kernels.astrolink import kruskal_aggregate
from skimgcluster._kernels.deblend import h_maxima
from skimgcluster._kernels.labels import flood
from skimgcluster._kernels.neighbors import query_part, sort_rows
from skimgcluster._kernels.smoothing import smooth_part
from skimgcluster._segment import compile_kernels, compile_small_segmentation

rng = np.random.default_rng(0)
yy, xx = np.mgrid[:64, :64]
image = rng.normal(10, 1, (64, 64, 3))
for y, x in ((20, 22), (25, 28), (44, 40)):
    image += 40 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 8)[..., None]
# A broad source with two cores: nested clusters, whose leaf labels search a KD-tree.
image += 12 * np.exp(-((yy - 46) ** 2 + (xx - 14) ** 2) / 60)[..., None]
for y, x in ((44, 11), (48, 17)):
    image += 30 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 3)[..., None]
for data in (image, np.clip(image * 4, 0, 255).astype(np.uint8)):
    segment(data, random_state=0)
kernels = (kruskal_aggregate, query_part, sort_rows, flood, h_maxima, smooth_part)
print([[str(s) for s in kernel.signatures] for kernel in kernels])
compile_clustering("grid")
compile_kernels()
compile_small_segmentation()
print([[str(s) for s in kernel.signatures] for kernel in kernels])
"""


def test_compiling_process_compiles_what_a_segmentation_loads(tmp_path):
    # The compiling process must compile the kernels a segmentation runs
    # after its sampling with the very signatures it loads (float64 densities
    # and uint32 neighbours for the aggregation and the KD-tree search of leaf
    # labels, int32 seeds for the flood, float32 levels for the h-maxima and
    # the smoothing), whatever the image's dtype; a signature of its own would
    # be compiled for nothing. In a new process: other tests call these
    # kernels with other signatures.
    loaded, after = _printed(SIGNATURES, tmp_path)[-2:]
    assert all(len(signatures) == 1 for signatures in loaded)
    assert after == loaded


# Segments an image, then views of it and a tiled run of it (whose tiles are
# views); prints the signatures of the kernels that read the image after each.
LAYOUTS = """
import numpy as np
from skimgcluster import segment
from skimgcluster._kernels import background, smoothing

rng = np.random.default_rng(0)
image = rng.normal(10, 1, (96, 96, 3))
image[40:46, 50:56] += 40
kernels = (
    background.grid_band_sky_part, background.grid_band_mean_part,
    background.local_means_part, background.luminosity_part, smoothing.smooth_part,
)
for data in (image, np.asfortranarray(image), image[::-1], image[:, 10:90]):
    segment(data, random_state=0)
    print([len(kernel.signatures) for kernel in kernels])
segment(image, tile_size=48, random_state=0)
print([len(kernel.signatures) for kernel in kernels])
"""


def test_views_and_tiles_compile_no_other_signature(tmp_path):
    # The kernels that read the image take it C-contiguous (for_kernels): a
    # Fortran-ordered image, a strided view or a tile would otherwise compile
    # each of them once more, for its layout. In a new process: other tests
    # call these kernels with other signatures.
    assert _printed(LAYOUTS, tmp_path)[-5:] == [[1] * 5] * 5


def test_kernels_run_as_python_with_the_jit_disabled(tmp_path):
    # Kernel coverage is measured with NUMBA_DISABLE_JIT=1 (docs/architecture.md):
    # a segmentation must then run with every kernel as plain Python.
    script = (
        "import numpy as np, skimgcluster\n"
        "rng = np.random.default_rng(0)\n"
        "image = rng.normal(0, 1, (48, 48))\n"
        "image[20:26, 20:26] += 30\n"
        "print(skimgcluster.segment(image, random_state=0).n_sources)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    source = Path(skimgcluster.__file__).parents[1]
    env.update(
        NUMBA_DISABLE_JIT="1",
        SKIMGCLUSTER_BACKGROUND_COMPILE="0",
        PYTHONPATH=os.pathsep.join(p for p in (str(source), env.get("PYTHONPATH")) if p),
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    assert result.stdout.split() == ["1"]
