"""Input validation does not rely on ``assert``: under ``python -O`` bad input
gets the same errors, warnings and exit codes, and the same seed the same
answer."""

import contextlib
import io
import json
import os
import subprocess
import sys
import warnings

import pytest

# Runs bad inputs through the public API and the command line and prints one
# JSON object: for each case, the outcome as [kind, class name, first line].
SCRIPT = r"""
import contextlib
import hashlib
import io
import json
import sys
import warnings

import numpy as np

from skimgcluster import (
    AstroLinkClusterer, LuminositySampler, labels_to_image, segment, _validation,
)
from skimgcluster._astrolink import CachedAstroLink
from skimgcluster._cli import main

warnings.simplefilter("error")
rng = np.random.default_rng(0)
image = rng.normal(10.0, 1.0, (48, 48))
yy, xx = np.mgrid[:48, :48]
for row, col in [(12, 12), (34, 30)]:
    image += 60.0 * np.exp(-((yy - row) ** 2 + (xx - col) ** 2) / 8.0)
centres = np.repeat([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], 100, axis=0)
points = rng.normal(0.0, 1.0, (300, 2)) + centres
huge = points.copy()
huge[3, 1] = 1e300


def sampler(**params):
    estimator = LuminositySampler(random_state=0, n_samples=200, **params)
    return estimator.fit_transform


def low_memory(function):
    def run():
        measure = _validation.available_memory
        _validation.available_memory = lambda: 1024
        try:
            return function()
        finally:
            _validation.available_memory = measure
    return run


def cli(*argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = main(["segment", *argv, "-q"])
    return ("exit", status, err.getvalue().strip())


cases = {
    "sampler-1-D": lambda: sampler()(np.ones(5)),
    "sampler-4-D": lambda: sampler()(np.ones((2, 2, 2, 2))),
    "sampler-empty": lambda: sampler()(np.ones((0, 4))),
    "sampler-ragged": lambda: sampler()([[1, 2], [3]]),
    "sampler-complex": lambda: sampler()(image.astype(complex)),
    "sampler-infinite": lambda: sampler()(np.where(image > 50, np.inf, image)),
    "sampler-beyond-float32": lambda: sampler()(image * 1e300),
    "sampler-all-zero": lambda: sampler()(np.zeros((16, 16))),
    "sampler-n_samples-negative": lambda: LuminositySampler(n_samples=-1).fit_transform(image),
    "sampler-n_samples-float": lambda: LuminositySampler(n_samples=2.5).fit_transform(image),
    "sampler-low-memory": low_memory(lambda: sampler()(image)),
    "clusterer-NaN": lambda: AstroLinkClusterer().fit(np.where(points > 5, np.nan, points)),
    "clusterer-1-D": lambda: AstroLinkClusterer().fit(np.ones(10)),
    "clusterer-overflow": lambda: AstroLinkClusterer().fit(huge),
    "clusterer-k_den-too-large": lambda: AstroLinkClusterer(k_den=500).fit(points),
    "clusterer-min_significance": lambda: AstroLinkClusterer(min_significance=100).fit(points),
    "clusterer-n_jobs-zero": lambda: AstroLinkClusterer(n_jobs=0).fit(points),
    "clusterer-k_link": lambda: AstroLinkClusterer(k_den=5, k_link=9).fit(points),
    "clusterer-low-memory": low_memory(lambda: AstroLinkClusterer().fit(points)),
    "astrolink-overflow": lambda: CachedAstroLink(huge, k_den=5, adaptive=0).run(),
    "labels-length": lambda: labels_to_image(np.zeros(3, int), points, (8, 8)),
    "labels-shape": lambda: labels_to_image(np.zeros(300, int), points, (0, 8)),
    "labels-fill": lambda: labels_to_image(np.zeros(300, int), points, (8, 8), fill_distance=-1),
    "segment-keyword": lambda: segment(image, bogus=1),
    "segment-mask": lambda: segment(image, mask=np.zeros((3, 3), bool)),
    "cli-missing": lambda: cli("/nonexistent/missing.png", "-o", "/nonexistent/out"),
}

out = {"optimize": sys.flags.optimize}
try:
    assert False
    out["asserts"] = "stripped"
except AssertionError:
    out["asserts"] = "active"
for name, case in cases.items():
    try:
        result = case()
    except Warning as w:
        out[name] = ["warning", type(w).__name__, str(w).splitlines()[0]]
    except Exception as exc:
        out[name] = ["error", type(exc).__name__, str(exc).splitlines()[0]]
    else:
        if not isinstance(result, tuple):
            result = ("result", type(result).__name__, "")
        out[name] = list(result)
seg = segment(image, random_state=0, n_samples=2000)
out["n_sources"] = seg.n_sources
out["digest"] = hashlib.sha256(seg.label_image.tobytes()).hexdigest()
print(json.dumps(out))
"""

# name: (kind, class, a piece of the first line that names the parameter and value)
EXPECTED = {
    "sampler-1-D": ("error", "ValueError", "got shape (5,)"),
    "sampler-4-D": ("error", "ValueError", "got shape (2, 2, 2, 2)"),
    "sampler-empty": ("error", "ValueError", "zero-sized axis; got shape (0, 4)"),
    "sampler-ragged": ("error", "TypeError", "could not convert list"),
    "sampler-complex": ("error", "TypeError", "dtype=complex128"),
    "sampler-infinite": ("error", "ValueError", "infinite pixel value"),
    "sampler-beyond-float32": ("error", "ValueError", "|value| up to"),
    "sampler-all-zero": ("warning", "DegenerateDataWarning", "detection_threshold=3.5"),
    "sampler-n_samples-negative": ("error", "InvalidParameterError", "Got -1 instead"),
    "sampler-n_samples-float": ("error", "InvalidParameterError", "Got 2.5 instead"),
    "sampler-low-memory": ("error", "InsufficientMemoryError", "but only 1.0 KiB is available"),
    "clusterer-NaN": ("error", "ValueError", "Input X contains NaN"),
    "clusterer-1-D": ("error", "ValueError", "X must be an array"),
    "clusterer-overflow": ("error", "ValueError", "got |value| up to 1e+300"),
    "clusterer-k_den-too-large": ("warning", "DegenerateDataWarning", "k_den=500"),
    "clusterer-min_significance": ("error", "InvalidParameterError", "Got 100 instead"),
    "clusterer-n_jobs-zero": ("error", "ValueError", "n_jobs=0"),
    "clusterer-k_link": ("error", "ValueError", "k_link=9 with k_den=5"),
    "clusterer-low-memory": ("error", "InsufficientMemoryError", "X of shape (300, 2)"),
    "astrolink-overflow": ("error", "ValueError", "squared distances between the points overflow"),
    "labels-length": ("error", "ValueError", "got 3 labels and 300 points"),
    "labels-shape": ("error", "ValueError", "got (0, 8)"),
    "labels-fill": ("error", "InvalidParameterError", "fill_distance=-1"),
    "segment-keyword": ("error", "TypeError", "unexpected keyword argument 'bogus'"),
    "segment-mask": ("error", "ValueError", "got (3, 3)"),
}


def _run(*flags):
    done = subprocess.run(
        [sys.executable, *flags, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=600,
        # No .opt-1.pyc files left in the source tree.
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def optimized():
    return _run("-O")


@pytest.fixture(scope="module")
def plain():
    """The script in this process, whose asserts are active: the reference."""
    out, err = io.StringIO(), io.StringIO()
    with (
        warnings.catch_warnings(),  # the script makes every warning an error
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        exec(SCRIPT, {"__name__": "plain"})
    assert err.getvalue() == ""
    return json.loads(out.getvalue())


def test_runs_optimized(optimized, plain):
    assert optimized["optimize"] == 1 and optimized["asserts"] == "stripped"
    assert plain["optimize"] == 0 and plain["asserts"] == "active"


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_same_outcome_under_optimization(optimized, plain, case):
    kind, name, piece = EXPECTED[case]
    assert optimized[case][:2] == [kind, name], optimized[case]
    assert piece in optimized[case][2], optimized[case]
    assert optimized[case] == plain[case]


def test_command_line_under_optimization(optimized, plain):
    kind, status, err = optimized["cli-missing"]
    assert (kind, status) == ("exit", 1)
    assert err.splitlines() == ["skimgcluster: error: no such image file: /nonexistent/missing.png"]
    assert optimized["cli-missing"] == plain["cli-missing"]


def test_same_answer_under_optimization(optimized, plain):
    assert optimized["n_sources"] == plain["n_sources"] >= 2
    assert optimized["digest"] == plain["digest"]


def test_every_case_is_checked(optimized):
    ran = {k for k in optimized if k not in ("optimize", "asserts", "n_sources", "digest")}
    assert ran == set(EXPECTED) | {"cli-missing"}
