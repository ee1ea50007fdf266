"""The same input and random_state give the same label image: across calls,
across processes and for any number of threads."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import THREE_SOURCES, gaussian_image

from skimgcluster import AstroLinkClusterer, LuminositySampler, labels_to_image, segment
from skimgcluster._cli import main
from skimgcluster._io import read_image

# The image and the run, as source code: the subprocesses run exactly this.
SETUP = """
import hashlib
import numpy as np
from skimgcluster import segment

rng = np.random.default_rng(7)
yy, xx = np.mgrid[:80, :96]
image = rng.normal(10.0, 1.0, (80, 96, 3))
for row, col, amp, colour in [(20, 20, 60, 0), (50, 70, 40, 2), (60, 25, 30, 1), (24, 32, 25, 2)]:
    image[:, :, colour] += amp * np.exp(-((yy - row) ** 2 + (xx - col) ** 2) / 8.0)


def digest(label_image):
    return hashlib.sha256(np.ascontiguousarray(label_image, dtype=np.int32).tobytes()).hexdigest()
"""

namespace = {}
exec(SETUP, namespace)  # our own code, shared with the subprocesses
IMAGE = namespace["image"]
digest = namespace["digest"]


def _segment(seed=3, **params):
    return segment(IMAGE, random_state=seed, **params)


def test_the_image_has_several_sources():
    # Otherwise the tests below would compare empty label images.
    assert _segment().n_sources >= 3


def _non_contiguous(array):
    """A copy of ``array`` with the same values, in every other element of a larger buffer."""
    buffer = np.zeros((array.shape[0], 2 * array.shape[1], *array.shape[2:]), array.dtype)
    view = buffer[:, ::2]
    view[...] = array
    assert not view.flags.c_contiguous and not view.flags.f_contiguous
    return view


def test_same_seed_same_label_image_across_calls_and_memory_layouts():
    # A second call on the same values laid out differently in memory (strided,
    # Fortran order): a kernel that read its input by the wrong strides, or kept
    # state between calls, would give other points or labels.
    first = _segment()
    for image in (_non_contiguous(IMAGE), np.asfortranarray(IMAGE)):
        second = segment(image, random_state=3)
        np.testing.assert_array_equal(first.label_image, second.label_image)
        np.testing.assert_array_equal(first.points, second.points)
        np.testing.assert_array_equal(first.labels, second.labels)


def test_other_seed_other_points():
    # The seed matters, so the equalities above are not trivially true.
    assert not np.array_equal(_segment(seed=3).points, _segment(seed=4).points)


def test_seed_as_int_or_random_state():
    by_int = _segment(seed=3).label_image
    by_state = _segment(seed=np.random.RandomState(3)).label_image
    np.testing.assert_array_equal(by_int, by_state)


def test_each_stage_is_deterministic():
    image = gaussian_image((96, 96), THREE_SOURCES, sky=5.0, seed=2)
    sampler = LuminositySampler(n_samples=3000, random_state=11)
    points = sampler.fit_transform(image)
    # Each stage again, on inputs that could make it differ: a transform after
    # the fit has drawn (the seed, not the state of a stream, decides), a
    # strided copy of the image, other thread counts, a strided copy of the points.
    np.testing.assert_array_equal(points, sampler.transform(image))
    np.testing.assert_array_equal(
        points, LuminositySampler(**sampler.get_params()).fit_transform(_non_contiguous(image))
    )
    labels = AstroLinkClusterer(min_significance=2).fit(points).labels_
    np.testing.assert_array_equal(
        labels,
        AstroLinkClusterer(min_significance=2, n_jobs=2).fit(_non_contiguous(points)).labels_,
    )
    assert labels.max() >= 2
    np.testing.assert_array_equal(
        labels_to_image(labels, points, image.shape),
        labels_to_image(labels, _non_contiguous(points), image.shape),
    )


def _run_in_subprocess(code, **env):
    done = subprocess.run(
        [sys.executable, "-c", SETUP + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_same_label_image_across_processes_and_thread_counts():
    """Fresh interpreters, with different hash seeds, give the bytes of this
    process; each that may use every thread gives those of one thread."""
    expected = digest(_segment().label_image)
    code = """
    print(digest(segment(image, random_state=3).label_image))
    print(digest(segment(image, random_state=3, n_jobs=1).label_image))
    print(digest(segment(image, random_state=3, n_jobs=-1).label_image))
    """
    threads = str(os.cpu_count() or 1)
    first = _run_in_subprocess(code, PYTHONHASHSEED="1", NUMBA_NUM_THREADS=threads)
    second = _run_in_subprocess(code, PYTHONHASHSEED="2", NUMBA_NUM_THREADS=threads)
    assert first == second == [expected] * 3


@pytest.mark.parametrize("n_jobs", [2, -1])
def test_same_label_image_for_any_n_jobs(n_jobs):
    one = _segment(n_jobs=1)
    many = _segment(n_jobs=n_jobs)
    np.testing.assert_array_equal(one.labels, many.labels)
    np.testing.assert_array_equal(one.label_image, many.label_image)


@pytest.mark.parametrize("algorithm", ["kd_tree", "grid"])
def test_clusterer_labels_do_not_depend_on_n_jobs(algorithm):
    points = LuminositySampler(n_samples=4000, random_state=5).fit_transform(IMAGE)
    fits = [
        AstroLinkClusterer(k_den=15, min_significance=2.5, n_jobs=n_jobs, algorithm=algorithm).fit(
            points
        )
        for n_jobs in (1, 2, None, -1)
    ]
    for fit in fits[1:]:
        np.testing.assert_array_equal(fit.labels_, fits[0].labels_)
        np.testing.assert_array_equal(fit.ordering_, fits[0].ordering_)
        np.testing.assert_array_equal(fit.significances_, fits[0].significances_)


def test_command_line_gives_the_same_files(tmp_path, capsys):
    from PIL import Image

    path = tmp_path / "image.png"
    Image.fromarray(np.clip(IMAGE * 3, 0, 255).astype(np.uint8)).save(path)
    outputs = []
    for name in ("a", "b"):
        assert main(["segment", str(path), "-o", str(tmp_path / name), "-q", "--seed", "5"]) == 0
        outputs.append(tmp_path / name)
    capsys.readouterr()
    a, b = outputs
    assert (a / "labels.png").read_bytes() == (b / "labels.png").read_bytes()
    assert (a / "sources.csv").read_text() == (b / "sources.csv").read_text()
    labels, _ = read_image(a / "labels.png")
    assert labels.max() >= 2


def test_duplicated_points_give_the_same_labels_for_any_n_jobs():
    """Points on pixel centres (jitter='none') coincide by the dozen."""
    points = LuminositySampler(n_samples=3000, jitter="none", random_state=2).fit_transform(IMAGE)
    assert np.unique(points, axis=0).shape[0] < points.shape[0] // 2
    fits = [
        AstroLinkClusterer(k_den=15, min_significance=2.5, n_jobs=n_jobs).fit(points).labels_
        for n_jobs in (1, 2, 2, -1, 1)
    ]
    for labels in fits[1:]:
        np.testing.assert_array_equal(labels, fits[0])
