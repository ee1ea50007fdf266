"""``skimgcluster segment --separate``: many images, each on its own, failures named."""

import csv

import numpy as np
import pytest
from conftest import gaussian_image

from skimgcluster._cli import main

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def batch(tmp_path):
    """Three images in a folder: two good ones (a TIFF, a PNG) and a corrupt FITS file."""
    import tifffile
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    a = gaussian_image((96, 96), [(30, 30, 40.0, 2.5), (60, 70, 40.0, 2.5)], seed=1)
    tifffile.imwrite(folder / "a.tif", a.astype(np.float32))
    b = gaussian_image((96, 96), [(40, 50, 40.0, 2.5)], noise=2.0, sky=20, seed=2)
    Image.fromarray(np.clip(b * 4, 0, 255).astype(np.uint8)).save(folder / "b.png")
    (folder / "bad.fits").write_bytes(b"SIMPLE  =    T / not really FITS" + b"\0" * 100)
    (folder / "notes.txt").write_text("not an image")
    return folder


def _n_rows(path):
    with open(path, newline="") as f:
        return len(list(csv.DictReader(f)))


def _check_outputs(out):
    assert sorted(p.name for p in out.iterdir()) == ["a", "b"]
    for name in ("a", "b"):
        assert sorted(p.name for p in (out / name).iterdir()) == [
            "labels.png",
            "overview.png",
            "sources.csv",
        ]
    assert _n_rows(out / "a" / "sources.csv") == 2


def test_separate_images_one_corrupt(batch, tmp_path, capsys):
    out = tmp_path / "out"
    status = main(["segment", "--separate", str(batch), "-o", str(out), "-q", "--seed", "1"])
    assert status == 1
    captured = capsys.readouterr()
    # The corrupt file is named on stderr; the two good images have their outputs.
    errors = [line for line in captured.err.splitlines() if "error" in line]
    assert len(errors) == 1
    assert errors[0].startswith(f"skimgcluster: error: {batch / 'bad.fits'}: ")
    _check_outputs(out)
    last = captured.out.strip().splitlines()[-1]
    assert last.startswith("segmented 2 of 3 images")
    assert f"failed: {batch / 'bad.fits'}" in last
    # All or nothing per image: a rerun without --overwrite refuses every image.
    before = (out / "a" / "sources.csv").stat().st_mtime_ns
    assert main(["segment", "--separate", str(batch / "a.tif"), "-o", str(out), "-q"]) == 1
    assert "already exist(s); pass --overwrite" in capsys.readouterr().err
    assert (out / "a" / "sources.csv").stat().st_mtime_ns == before


def test_separate_images_on_a_local_cluster(batch, tmp_path, capsys):
    pytest.importorskip("distributed")
    out = tmp_path / "out"
    pattern = str(batch / "*.*")  # the pattern holds notes.txt: it fails, by name
    args = ["segment", "--separate", pattern, "-o", str(out), "--seed", "1", "--workers", "2"]
    assert main(args) == 1
    captured = capsys.readouterr()
    errors = sorted(line for line in captured.err.splitlines() if "error" in line)
    assert [e.split(": ")[2] for e in errors] == [str(batch / "bad.fits"),
                                                  str(batch / "notes.txt")]  # fmt: skip
    assert "4 of 4 images done" in captured.err
    _check_outputs(out)
    assert captured.out.strip().splitlines()[-1].startswith("segmented 2 of 4 images")
    # The same labels as in this process, one image after the other.
    again = tmp_path / "again"
    assert main(["segment", "--separate", str(batch), "-o", str(again), "-q", "--seed", "1"]) == 1
    for name in ("a", "b"):
        labels = (out / name / "labels.png").read_bytes()
        assert labels == (again / name / "labels.png").read_bytes()


def test_separate_all_good_exits_zero_and_bands_stay_the_default(batch, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["segment", "--separate", str(batch / "a.tif"), str(batch / "b.png"), "-o", str(out)]
    assert main([*args, "-q"]) == 0
    _check_outputs(out)
    capsys.readouterr()
    # Without --separate, two files are the bands of one image (FITS only).
    assert main(args[:1] + args[2:] + ["-q"]) == 1
    assert "combined as bands only for FITS files" in capsys.readouterr().err


@pytest.mark.parametrize(
    "images, message",
    [
        ([], "--separate needs the images"),
        (["{tmp}/nothing*.fits"], "no file matches the pattern"),
        (["{tmp}/empty"], "holds no image file"),
        (["{batch}/a.tif", "{tmp}/a.tiff"], "would share the output folder a"),
    ],
)
def test_separate_refused_before_any_run(batch, tmp_path, capsys, images, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "a.tiff").write_bytes((batch / "a.tif").read_bytes())
    images = [i.format(tmp=tmp_path, batch=batch) for i in images]
    out = tmp_path / "out"
    assert main(["segment", "--separate", *images, "-o", str(out), "-q"]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()
