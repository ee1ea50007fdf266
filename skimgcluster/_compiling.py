"""The process that compiles a first segmentation's later kernels meanwhile.

numba compiles every kernel the first time it is called in an environment
(tens of seconds for a segmentation) and caches it on disk. While that cache
is empty, :func:`compile_in_background` starts one more Python process that
compiles the clustering's kernels, then those of the labelling and the
deblending, while the calling process compiles and runs the sampler's; the
clustering and the labelling each wait for their part
(:func:`wait_for_compilation`), then load its kernels from the cache. This
module imports nothing heavy, so that the command line can start the
process before its own imports.
"""

import multiprocessing
import os
import subprocess
import sys
import threading

from ._kernels.astrolink import kruskal_aggregate

# The process started by compile_in_background (None: none was started;
# False: none could be); the lines read from it so far, and whether waiting
# for it is over (it ended, or a wait timed out).
_compiling = None
_lines = 0
_waited = False
# Held while waiting: threads of one process (tiles on a threaded scheduler)
# wait in turn, so that none reads the pipe after another has closed it.
_waiting = threading.Lock()

# The lines the compiling process writes: what is cached once it has written
# each (wait_for_compilation's ``stage``).
CLUSTERING = 1
LABELLING = 2

# Environment variable that marks the compiling process (which must not start
# another one), and that a user can set to 0 to never start one.
_BACKGROUND_ENV = "SKIMGCLUSTER_BACKGROUND_COMPILE"

# Longest wait for that process before compiling here instead (seconds).
_COMPILE_WAIT = 600

# The compiling process: the clustering's kernels, a line on its stdout (what
# the waiting process reads), the labelling's and the deblending's kernels,
# another line, then a small segmentation for any kernel left, and last the
# KD-tree search of the clusterer's default, which a segmentation does not
# run (1-2 s of compiling less before the first line). The waiting
# process waits for each line before the step that needs those kernels: the
# other process started them first, so waiting is never longer than
# compiling them again. Freezing the objects the imports made spares the
# compiler's collections (and the last one, at exit) from walking them again
# and again (a first run in one process: 1-4 s less CPU out of about 40 s,
# measured).
_COMPILE_SCRIPT = """
import gc
from skimgcluster import _clusterer, _segment


def line(text):
    try:
        print(text, flush=True)
    except OSError:  # the waiting process is gone: compile the rest all the same
        pass


gc.freeze()
_clusterer.compile_kernels("grid")
line("clustering kernels compiled")
_segment.compile_kernels()
line("labelling and deblending kernels compiled")
_segment.compile_small_segmentation()
_clusterer.compile_kernels("kd_tree")
gc.freeze()
"""


def _cache_is_cold():
    """True if the aggregation kernel has no disk cache yet.

    Reads numba's private cache attributes; anything unexpected counts as
    not cold.
    """
    dispatcher = kruskal_aggregate
    try:
        index = dispatcher._cache._cache_file._index_path
    except AttributeError:
        return False
    return not os.path.exists(index)


def _runnable_now():
    """Processes runnable at this moment, this one included (Linux), or None."""
    try:
        with open("/proc/loadavg") as f:
            return int(f.read().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None


def _idle_cores():
    """Cores of this process's machine left idle by the last minute's load, or by now's.

    The load average lags: work that has just ended (an install, a test run)
    still weighs in it for a minute. The processes runnable at this moment
    (the fourth field of ``/proc/loadavg``, this one included) say whether
    the cores are busy now; the smaller of the two counts.
    """
    try:
        n_cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n_cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average (Windows): count this process
        load = 1.0
    now = _runnable_now()
    if now is not None:
        load = min(load, now)
    return n_cores - load


def compile_in_background():
    """Compile the kernels a segmentation runs after its sampling, in another process.

    Does nothing if the cache already holds them, if the load (the lesser of
    the last minute's average and the processes runnable now) leaves less
    than half a core idle besides this process (a second process then
    only slows the first down: measured 55 s against 47 s for a first result
    on two cores busy with other work, and 32 s against 41 s with a core
    free), if this process is a ``multiprocessing`` child or the compiling
    process itself, or if the environment variable
    ``SKIMGCLUSTER_BACKGROUND_COMPILE`` is ``0``. Else it starts, once per
    process, ``python -c`` running :func:`._clusterer.compile_kernels`, then
    :func:`._segment.compile_kernels`,
    :func:`._segment.compile_small_segmentation` and the KD-tree's
    :func:`._clusterer.compile_kernels`, and returns at once;
    :meth:`._astrolink.CachedAstroLink.run` waits until the first is done,
    the labelling until the second is (:func:`wait_for_compilation`). On two
    cores a first run then compiles AstroLink's kernels while the sampler's
    compile and run here, and those of the labelling and the deblending
    while it clusters.
    """
    global _compiling
    if _compiling is not None or os.environ.get(_BACKGROUND_ENV) == "0":
        return
    if multiprocessing.parent_process() is not None or not _cache_is_cold():
        return
    # This process itself counts for up to one in the load average.
    if _idle_cores() < 0.5:
        return
    env = dict(os.environ)
    env[_BACKGROUND_ENV] = "0"
    # The child imports this very package, wherever it was imported from:
    # numba keys its disk cache by the kernels' source path, so a copy found
    # first would cache kernels this process never loads. ``python -c`` puts
    # its working folder first on sys.path, where a checkout of the sources
    # (the quick start runs from one) would shadow an installed package, so
    # the child also runs from the folder that holds this package.
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    try:
        _compiling = subprocess.Popen(
            [sys.executable, "-c", _COMPILE_SCRIPT],
            cwd=here,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except OSError:  # no way to start a process: compile here when needed
        _compiling = False


def _read_line(pipe, timeout):
    """The next line of ``pipe``: ``''`` at its end, None after ``timeout`` seconds."""
    line = []
    reader = threading.Thread(target=lambda: line.append(pipe.readline()), daemon=True)
    reader.start()
    reader.join(timeout=timeout)
    return line[0] if line else None


def wait_for_compilation(stage=CLUSTERING):
    """Wait until the process of :func:`compile_in_background` has cached a stage's kernels.

    ``stage`` is :data:`CLUSTERING` or :data:`LABELLING` (the labelling's and
    the deblending's): the number of lines that process writes once they are
    cached. Returns at once when no process was started, once it has ended,
    or once a wait has timed out (after which this process compiles what it
    needs itself).
    """
    global _lines, _waited
    with _waiting:
        while _compiling and not _waited and _lines < stage:
            line = _read_line(_compiling.stdout, _COMPILE_WAIT)
            if line is None:
                # Timed out: the process goes on on its own (and stays
                # referenced, so it is never left unwaited), as does the reader.
                _waited = True
            elif not line:  # the process has ended
                _waited = True
                _compiling.stdout.close()
            else:
                _lines += 1
                if _lines == LABELLING:  # its last line
                    _compiling.stdout.close()
