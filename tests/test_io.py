"""Reading images and writing label images."""

import numpy as np
import pytest
import tifffile
from PIL import Image

from skimgcluster._io import read_image, write_label_image, write_text


def test_png_rgb_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (12, 15, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    data, mask = read_image(tmp_path / "a.png")
    assert mask is None
    assert data.dtype == np.uint8
    np.testing.assert_array_equal(data, image)


def test_png_16_bit_gray_keeps_dtype(tmp_path):
    image = np.arange(200, dtype=np.uint16).reshape(10, 20) * 300
    Image.fromarray(image).save(tmp_path / "a.png")
    data, _ = read_image(tmp_path / "a.png")
    assert data.dtype.kind == "u" or data.dtype == np.int32
    np.testing.assert_array_equal(data, image)


def test_rgba_alpha_becomes_mask(tmp_path):
    image = np.full((6, 7, 4), 200, dtype=np.uint8)
    image[2, 3, 3] = 0
    Image.fromarray(image, mode="RGBA").save(tmp_path / "a.png")
    data, mask = read_image(tmp_path / "a.png")
    assert data.shape == (6, 7, 3)
    assert mask.shape == (6, 7) and mask.sum() == 1 and mask[2, 3]


def test_opaque_alpha_gives_no_mask(tmp_path):
    image = np.full((6, 7, 4), 255, dtype=np.uint8)
    Image.fromarray(image, mode="RGBA").save(tmp_path / "a.png")
    data, mask = read_image(tmp_path / "a.png")
    assert data.shape == (6, 7, 3) and mask is None


def test_jpeg(tmp_path):
    image = np.full((16, 16, 3), 128, dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "a.jpg")
    data, _ = read_image(tmp_path / "a.jpg")
    assert data.shape == (16, 16, 3) and abs(int(data.mean()) - 128) <= 2


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_tiff_keeps_dtype(tmp_path, dtype):
    image = (np.arange(60).reshape(5, 4, 3) * 1000).astype(dtype)
    tifffile.imwrite(tmp_path / "a.tif", image, photometric="rgb")
    data, mask = read_image(tmp_path / "a.tif")
    assert data.dtype == dtype and mask is None
    np.testing.assert_array_equal(data, image)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such image"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match="bad.png"):
        read_image(tmp_path / "bad.png")
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(ValueError, match="bad.tif"):
        read_image(tmp_path / "bad.tif")


@pytest.mark.parametrize("name", ["labels.png", "labels.tif", "labels.npy"])
def test_label_image_round_trip(tmp_path, name):
    labels = np.zeros((9, 11), dtype=np.int32)
    labels[2:5, 3:7] = 1
    labels[6:8, 1:3] = 300
    write_label_image(tmp_path / name, labels)
    if name.endswith(".npy"):
        back = np.load(tmp_path / name)
    else:
        back, _ = read_image(tmp_path / name)
    np.testing.assert_array_equal(back, labels)
    # No temporary file is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_png_refuses_too_many_labels(tmp_path):
    labels = np.array([[0, 70000]], dtype=np.int32)
    with pytest.raises(ValueError, match=r"\.tif"):
        write_label_image(tmp_path / "l.png", labels)
    assert not list(tmp_path.iterdir())


def test_unknown_suffix_and_bad_arrays(tmp_path):
    with pytest.raises(ValueError, match=r"\.png, \.tif, \.fits or \.npy"):
        write_label_image(tmp_path / "l.jpg", np.zeros((2, 2), dtype=int))
    with pytest.raises(ValueError, match="2-D integer"):
        write_label_image(tmp_path / "l.png", np.zeros((2, 2)))


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "sources.csv"
    target.write_text("old")

    class Boom(Exception):
        pass

    def explode(_tmp):
        raise Boom

    from skimgcluster._io import _atomic_write

    with pytest.raises(Boom):
        _atomic_write(target, explode)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["sources.csv"]
    write_text(target, "new")
    assert target.read_text() == "new"
