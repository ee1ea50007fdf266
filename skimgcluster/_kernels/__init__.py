"""The compiled (numba) kernels of skimgcluster, in modules of their own.

Every function here is compiled by numba on first call and cached on disk
(``cache=True``), so a new process loads machine code instead of compiling
again. The kernels are serial loops: those that release the GIL
(``nogil=True``) are run on several threads by :func:`.._threads.threaded`,
which gives the speed of numba's ``parallel=True`` at a third of its compile
time. The ordinary modules import them and keep the checks, allocations and
documentation of what users call; a kernel's docstring says which of those
ordinary functions it serves.

A new environment compiles every kernel once, and that makes most of its
first result's time. The kernels therefore allocate with ``np.empty`` and
fill, and write their loops out rather than call NumPy's functions
(``np.zeros``, ``np.full``, ``np.sort``, ``mean``, ``argmax``...): numba
compiles each of those once more, for every signature, in the process that
first needs it.

Their coverage is measured with the JIT turned off, so that the loops run
as plain Python and count like any other line (the configuration is
``[tool.coverage.run]`` of pyproject.toml; see docs/architecture.md)::

    NUMBA_DISABLE_JIT=1 python -m coverage run -m pytest
    python -m coverage report
"""
