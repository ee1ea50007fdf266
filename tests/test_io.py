"""Reading images and writing label images."""

import numpy as np
import pytest
import tifffile
from helpers import write_text
from PIL import Image

from skimgcluster._io import read_image, write_label_image


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
    with pytest.raises(ValueError, match=r"\.png, \.tif, \.fits, \.npy or \.zarr"):
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

    from skimgcluster._files import atomic_write

    with pytest.raises(Boom):
        atomic_write(target, explode)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["sources.csv"]
    write_text(target, "new")
    assert target.read_text() == "new"


# -- TIFF layouts: read as the file's tags describe them (issue 13, row 2) -------------


def _bands(rng, shape, dtype=np.float32):
    return rng.integers(0, 1000, shape).astype(dtype)


@pytest.mark.parametrize("n_bands", [2, 4, 5])
def test_tiff_minisblack_extra_samples_are_bands(tmp_path, n_bands):
    image = _bands(np.random.default_rng(1), (10, 12, n_bands))
    tifffile.imwrite(tmp_path / "a.tif", image, photometric="minisblack", planarconfig="contig")
    data, mask = read_image(tmp_path / "a.tif")
    assert mask is None
    np.testing.assert_array_equal(data, image)  # no band taken for alpha


@pytest.mark.parametrize("planarconfig", ["contig", "separate"])
def test_tiff_alpha_only_when_tagged(tmp_path, planarconfig):
    rng = np.random.default_rng(2)
    rgb = rng.integers(1, 255, (8, 9, 3), dtype=np.uint8)
    alpha = np.full((8, 9, 1), 255, dtype=np.uint8)
    alpha[3, 4] = 0
    rgba = np.concatenate([rgb, alpha], axis=2)
    layout = rgba if planarconfig == "contig" else np.moveaxis(rgba, 2, 0)
    for extrasample, expect_alpha in [("unassalpha", True), ("assocalpha", True),
                                      ("unspecified", False)]:  # fmt: skip
        path = tmp_path / f"{extrasample}.tif"
        tifffile.imwrite(path, layout, photometric="rgb", planarconfig=planarconfig,
                         extrasamples=[extrasample])  # fmt: skip
        data, mask = read_image(path)
        if expect_alpha:
            np.testing.assert_array_equal(data, rgb)
            assert mask.sum() == 1 and mask[3, 4]
        else:
            np.testing.assert_array_equal(data, rgba)
            assert mask is None


def test_tiff_gray_with_alpha(tmp_path):
    gray = np.arange(20, dtype=np.uint16).reshape(4, 5, 1)
    alpha = np.full_like(gray, 65535)
    alpha[0, 0] = 0
    tifffile.imwrite(tmp_path / "a.tif", np.concatenate([gray, alpha], 2),
                     photometric="minisblack", extrasamples=["unassalpha"])  # fmt: skip
    data, mask = read_image(tmp_path / "a.tif")
    np.testing.assert_array_equal(data, gray[..., 0])
    assert mask.sum() == 1 and mask[0, 0]


def test_tiff_planar_rgb_is_three_bands(tmp_path):
    planes = _bands(np.random.default_rng(3), (3, 10, 12), np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", planes, photometric="rgb", planarconfig="separate")
    data, _ = read_image(tmp_path / "a.tif")
    np.testing.assert_array_equal(data, np.moveaxis(planes, 0, -1))


def test_tiff_page_stack_is_ambiguous(tmp_path):
    stack = _bands(np.random.default_rng(4), (3, 100, 120))
    tifffile.imwrite(tmp_path / "s.tif", stack, photometric="minisblack")  # three pages
    with pytest.raises(ValueError, match=r"stack of 3 image planes.*planes='bands'.*planes=k"):
        read_image(tmp_path / "s.tif")
    data, _ = read_image(tmp_path / "s.tif", planes="bands")
    np.testing.assert_array_equal(data, np.moveaxis(stack, 0, -1))
    data, _ = read_image(tmp_path / "s.tif", planes=2)
    np.testing.assert_array_equal(data, stack[2])
    with pytest.raises(ValueError, match="planes=3 is out of range"):
        read_image(tmp_path / "s.tif", planes=3)
    with pytest.raises(TypeError, match="planes must be"):
        read_image(tmp_path / "s.tif", planes=1.5)
    with pytest.raises(ValueError, match="planes must be"):
        read_image(tmp_path / "s.tif", planes=-1)


def test_tiff_imagej_channels_are_bands_and_z_is_ambiguous(tmp_path):
    rng = np.random.default_rng(5)
    cyx = _bands(rng, (3, 6, 7), np.uint16)
    tifffile.imwrite(tmp_path / "c.tif", cyx, imagej=True, metadata={"axes": "CYX"})
    data, _ = read_image(tmp_path / "c.tif")
    np.testing.assert_array_equal(data, np.moveaxis(cyx, 0, -1))
    zcyx = _bands(rng, (2, 3, 6, 7), np.uint16)
    tifffile.imwrite(tmp_path / "z.tif", zcyx, imagej=True, metadata={"axes": "ZCYX"})
    with pytest.raises(ValueError, match=r"TIFF axes 'ZCYX'.*Z=2, C=3"):
        read_image(tmp_path / "z.tif")
    data, _ = read_image(tmp_path / "z.tif", planes="bands")
    np.testing.assert_array_equal(data, zcyx.reshape(6, 6, 7).transpose(1, 2, 0))


def test_tiff_stack_of_rgb_pages(tmp_path):
    pages = np.random.default_rng(6).integers(0, 255, (2, 5, 6, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "a.tif", pages, photometric="rgb")
    with pytest.raises(ValueError, match="stack of 2 image planes"):
        read_image(tmp_path / "a.tif")
    data, _ = read_image(tmp_path / "a.tif", planes="bands")
    np.testing.assert_array_equal(data, np.concatenate([pages[0], pages[1]], axis=2))
    data, _ = read_image(tmp_path / "a.tif", planes=1)
    np.testing.assert_array_equal(data, pages[1])


def test_tiff_images_of_different_shapes_are_refused(tmp_path):
    with tifffile.TiffWriter(tmp_path / "a.tif") as tif:
        tif.write(np.zeros((10, 12), dtype=np.uint8))
        tif.write(np.zeros((5, 6), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"2 images of different shapes"):
        read_image(tmp_path / "a.tif")


def test_tiff_miniswhite_and_palette(tmp_path):
    image = np.arange(20, dtype=np.uint8).reshape(4, 5)
    tifffile.imwrite(tmp_path / "w.tif", image, photometric="miniswhite")
    data, _ = read_image(tmp_path / "w.tif")
    np.testing.assert_array_equal(data, 255 - image)  # bright is high
    colormap = np.zeros((3, 256), dtype=np.uint16)
    colormap[0] = np.arange(256) * 10
    colormap[2] = 7
    tifffile.imwrite(tmp_path / "p.tif", image, photometric="palette", colormap=colormap)
    data, _ = read_image(tmp_path / "p.tif")
    assert data.shape == (4, 5, 3) and data.dtype == np.uint16
    np.testing.assert_array_equal(data[..., 0], image * 10)
    assert (data[..., 1] == 0).all() and (data[..., 2] == 7).all()


def test_planes_applies_to_tiff_only(tmp_path):
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(ValueError, match="planes applies to TIFF"):
        read_image(tmp_path / "a.png", planes="bands")


# -- declared sizes are checked before decoding (row 5) --------------------------------


@pytest.fixture
def little_memory(monkeypatch):
    """Pretend only 1 MiB is available; a decoder that runs fails the test."""
    from skimgcluster import _validation

    monkeypatch.setattr(_validation, "available_memory", lambda: 2**20)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded before the size was checked")

    monkeypatch.setattr(tifffile.TiffPageSeries, "asarray", no_decoding)
    monkeypatch.setattr(Image.Image, "load", no_decoding)


def test_tiff_bomb_is_refused_before_decoding(tmp_path, little_memory):
    from skimgcluster import InsufficientMemoryError

    # A tiled, compressed file much smaller than the image it declares.
    tifffile.imwrite(tmp_path / "big.tif", np.zeros((1024, 1024), dtype=np.uint16),
                     tile=(256, 256), compression="zlib")  # fmt: skip
    assert (tmp_path / "big.tif").stat().st_size < 100_000
    with pytest.raises(InsufficientMemoryError, match=r"big\.tif.*\(1024, 1024\).*uint16"):
        read_image(tmp_path / "big.tif")


def test_png_bomb_is_refused_before_decoding(tmp_path, monkeypatch):
    from skimgcluster import InsufficientMemoryError, _validation

    Image.fromarray(np.zeros((1000, 1000), dtype=np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(_validation, "available_memory", lambda: 2**20)
    with pytest.raises(InsufficientMemoryError, match=r"big\.png.*\(1000, 1000, 1\)"):
        read_image(tmp_path / "big.png")


def test_address_space_limit_counts_as_unavailable(monkeypatch):
    resource = pytest.importorskip("resource")
    from skimgcluster._validation import available_memory

    unlimited = available_memory()
    monkeypatch.setattr(resource, "getrlimit", lambda which: (2**30, resource.RLIM_INFINITY))
    limited = available_memory()
    assert limited is not None and limited < 2**30 and (unlimited is None or limited <= unlimited)


# -- TIFF label images are never wrapped (row 9) -----------------------------------------


@pytest.mark.parametrize("suffix", [".tif", ".fits"])
@pytest.mark.parametrize(
    "labels",
    [np.array([[0, 2**31, 2**32 + 5]]), np.array([[0, -(2**31) - 1]]),
     np.array([[0, 2**64 - 1]], dtype=np.uint64)],  # fmt: skip
)
def test_label_writers_refuse_labels_beyond_int32(tmp_path, suffix, labels):
    if suffix == ".fits":
        pytest.importorskip("astropy")
    with pytest.raises(ValueError, match=r"int32 range .* got values from"):
        write_label_image(tmp_path / f"l{suffix}", labels)
    assert not list(tmp_path.iterdir())


def test_tiff_labels_at_the_int32_limits_round_trip(tmp_path):
    labels = np.array([[0, 2**31 - 1, 7]], dtype=np.int64)
    write_label_image(tmp_path / "l.tif", labels)
    back, _ = read_image(tmp_path / "l.tif")
    np.testing.assert_array_equal(back, labels)
