import numpy as np
import pytest

from skimgcluster.datasets import SOURCE_COLUMNS, make_blended_pairs, make_field


def test_make_field_shapes_and_table():
    image, truth, sources = make_field((96, 80), 12, n_bands=4, random_state=0)
    assert image.shape == (96, 80, 4)
    assert image.dtype == np.float32
    assert truth.shape == (96, 80)
    assert truth.dtype == np.int32
    assert set(sources) == set(SOURCE_COLUMNS)
    assert all(len(v) == 12 for v in sources.values())
    # Every label present in the truth is a source's label, and vice versa.
    present = set(np.unique(truth[truth > 0]).tolist())
    assert present == set(sources["label"][sources["label"] > 0].tolist())


def test_make_field_is_seeded():
    a = make_field((64, 64), 5, random_state=3)
    b = make_field((64, 64), 5, random_state=3)
    c = make_field((64, 64), 5, random_state=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_make_field_sky_and_noise():
    image, truth, _ = make_field((128, 128), 0, sky=50.0, noise=2.0, random_state=0)
    assert not truth.any()
    assert abs(image.mean() - 50.0) < 0.1
    assert abs(image.std() - 2.0) < 0.1


def test_sources_sit_where_the_table_says():
    image, truth, sources = make_field((128, 128), 6, snr_range=(200, 300), random_state=1)
    lum = image.mean(axis=2) - 100.0
    for x, y, label in zip(sources["x"], sources["y"], sources["label"], strict=True):
        r, c = int(round(y)), int(round(x))
        assert lum[r, c] > 3.0  # far above the noise of 1 / sqrt(3)
        assert truth[r, c] != 0 or label == 0


def test_blended_pairs_are_close_and_differ_in_colour():
    image, truth, sources = make_blended_pairs(4, stamp_size=40, random_state=0)
    assert image.shape == (40, 160, 3)
    assert sorted(set(sources["pair"].tolist())) == [0, 1, 2, 3]
    for p in range(4):
        x = sources["x"][sources["pair"] == p]
        assert 40 * p < x.min() and x.max() < 40 * (p + 1)


def test_bad_parameters():
    with pytest.raises(ValueError, match="shape"):
        make_field((8, 8), 1)
    with pytest.raises(ValueError, match="n_sources"):
        make_field((32, 32), -1)
    with pytest.raises(ValueError, match="n_bands"):
        make_field((32, 32), 1, n_bands=0)


def test_huge_field_is_refused_by_the_memory_guard(monkeypatch):
    # Issue 13, row 12: make_field((10**6, 10**6), 1) was a raw MemoryError
    # (21.8 TiB) from NumPy.
    from skimgcluster import InsufficientMemoryError, _validation

    monkeypatch.setattr(_validation, "available_memory", lambda: 2**30)
    match = r"synthetic field of shape \(1000000, 1000000\)"
    with pytest.raises(InsufficientMemoryError, match=match):
        make_field((10**6, 10**6), 1)
    with pytest.raises(InsufficientMemoryError, match="synthetic field"):
        make_field((8192, 8192), 1, random_state=0)  # 5.6 GB of arrays
    image, _, _ = make_field((64, 64), 2, random_state=0)  # small fields still fit
    assert image.shape == (64, 64, 3)
