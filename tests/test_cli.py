"""The command line, in-process and as the installed console script."""

import csv
import io
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import source_env
from PIL import Image

from skimgcluster._cli import main
from skimgcluster._io import read_image


def test_segment_writes_outputs(field_png, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["segment", str(field_png), "--output", str(out)]) == 0
    captured = capsys.readouterr()
    summary = captured.out.strip().splitlines()[-1]
    assert summary.startswith("found ") and summary.endswith(str(out))
    n_reported = int(summary.split()[1])
    labels, _ = read_image(out / "labels.png")
    assert labels.shape == (96, 96)
    assert np.unique(labels[labels > 0]).size == n_reported == 3
    with open(out / "sources.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == n_reported
    assert all(float(r["significance"]) > 0 for r in rows)
    assert (out / "overview.png").stat().st_size > 1000
    for stage in ("reading", "sampling", "clustering", "labelling", "writing", "drawing"):
        assert stage in captured.err  # progress on stderr, one plain line per stage
    assert "\r" not in captured.err  # no bar when stderr is not a terminal


def test_quiet_prints_no_progress(field_png, tmp_path, capsys):
    assert main(["segment", str(field_png), "-o", str(tmp_path / "o"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.startswith("found ")


def test_refuses_to_overwrite(field_png, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["segment", str(field_png), "-o", str(out), "-q"]) == 0
    before = (out / "labels.png").read_bytes()
    (out / "sources.csv").write_text("keep me")
    capsys.readouterr()
    assert main(["segment", str(field_png), "-o", str(out), "-q", "--seed", "3"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0]
    assert (out / "sources.csv").read_text() == "keep me"
    assert (out / "labels.png").read_bytes() == before
    assert main(["segment", str(field_png), "-o", str(out), "-q", "--overwrite"]) == 0
    assert (out / "sources.csv").read_text() != "keep me"


def test_missing_and_corrupt_input(tmp_path, capsys):
    assert main(["segment", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o"), "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("skimgcluster: error:") and "missing.png" in err[0]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 broken")
    assert main(["segment", str(bad), "-o", str(tmp_path / "o"), "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.jpg" in err[0]
    assert not (tmp_path / "o").exists()


def test_bad_parameter_is_one_line(field_png, tmp_path, capsys):
    args = ["segment", str(field_png), "-o", str(tmp_path / "o"), "--n-samples", "-5", "-q"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "n_samples" in err[0]


def test_help_and_usage_errors(capsys):
    for argv in (["--help"], ["segment", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
        assert "examples:" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["segment", "-o", "out", "--plots", "overview,pie"])
    assert exc.value.code == 2
    assert "unknown plot 'pie'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["segment"])  # --output is required
    assert exc.value.code == 2


def test_console_script_on_the_hubble_deep_field(tmp_path):
    script = shutil.which("skimgcluster")
    cmd = [script] if script else [sys.executable, "-m", "skimgcluster"]
    out = tmp_path / "hubble"
    done = subprocess.run(
        [*cmd, "segment", "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env=source_env(),  # the installed script, running the package under test
    )
    assert done.returncode == 0, done.stderr
    n_sources = int(done.stdout.split()[1])
    assert n_sources >= 100  # hundreds of galaxies, not a handful
    labels, _ = read_image(out / "labels.png")
    assert labels.shape == (872, 1000)
    assert np.unique(labels[labels > 0]).size == n_sources


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self):
        return True


def test_progress_bar_on_a_terminal(field_png, tmp_path, monkeypatch, capsys):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["segment", str(field_png), "-o", str(tmp_path / "o")]) == 0
    err = terminal.getvalue()
    frames = err.split("\r")[1:]
    assert frames and all(f.startswith("[") for f in frames)  # one line redrawn in place
    assert "clustering" in err
    assert err.endswith("\n") and err.count("\n") == 1
    assert frames[-1].rstrip().startswith("[" + "#" * 20 + "]")  # full bar at the end
    assert "done" in frames[-1]
    assert capsys.readouterr().out.startswith("found ")


def test_quiet_on_a_terminal_prints_nothing(field_png, tmp_path, monkeypatch, capsys):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["segment", str(field_png), "-o", str(tmp_path / "o"), "-q"]) == 0
    assert terminal.getvalue() == ""


def test_all_plots_and_formats(field_png, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["segment", str(field_png), "-o", str(out), "-q", "--plots", "all",
            "--labels-format", "tif", "--catalog-format", "ecsv"]  # fmt: skip
    assert main(argv) == 0
    names = {p.name for p in out.iterdir()}
    assert names == {"labels.tif", "sources.ecsv", "overview.png", "segmentation.png",
                     "ordered_density.png", "hierarchy.png"}  # fmt: skip
    for name in names - {"labels.tif", "sources.ecsv"}:
        with Image.open(out / name) as figure:
            assert figure.size[0] > 300
    labels, _ = read_image(out / "labels.tif")
    table = pytest.importorskip("astropy.table").Table.read(out / "sources.ecsv")
    assert sorted(table["label"]) == sorted(np.unique(labels[labels > 0]))


def test_no_plots(field_png, tmp_path):
    out = tmp_path / "out"
    assert main(["segment", str(field_png), "-o", str(out), "-q", "--plots", "none"]) == 0
    assert {p.name for p in out.iterdir()} == {"labels.png", "sources.csv"}


def _fits_field(tmp_path, n_bands):
    fits = pytest.importorskip("astropy.io.fits")
    from astropy.wcs import WCS

    from skimgcluster.datasets import make_field

    image, _, _ = make_field((96, 96), 6, n_bands=n_bands, random_state=1)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.1, 2.2]
    wcs.wcs.crpix = [48.0, 40.0]
    wcs.wcs.cdelt = [-1e-4, 1e-4]
    paths = []
    for band in range(n_bands):
        path = tmp_path / f"band{band}.fits"
        fits.PrimaryHDU(np.asarray(image[..., band], dtype=np.float32),
                        header=wcs.to_header()).writeto(path)  # fmt: skip
        paths.append(str(path))
    return paths, wcs


def test_fits_in_fits_out_with_wcs(tmp_path, capsys):
    fits = pytest.importorskip("astropy.io.fits")
    from astropy.table import Table
    from astropy.wcs import WCS

    paths, wcs = _fits_field(tmp_path, 3)
    out = tmp_path / "out"
    assert main(["segment", *paths, "-o", str(out), "-q", "--catalog-format", "ecsv"]) == 0
    n_found = int(capsys.readouterr().out.split()[1])
    assert n_found >= 3
    with fits.open(out / "labels.fits") as hdul:
        labels = hdul[0].data
        label_wcs = WCS(hdul[0].header)
    assert labels.shape == (96, 96) and np.unique(labels[labels > 0]).size == n_found
    assert label_wcs.wcs.compare(wcs.wcs, tolerance=1e-12)
    table = Table.read(out / "sources.ecsv")
    assert len(table) == n_found
    sky = wcs.pixel_to_world(np.asarray(table["x_centroid"]), np.asarray(table["y_centroid"]))
    np.testing.assert_allclose(np.asarray(table["ra"]), sky.ra.deg, rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.asarray(table["dec"]), sky.dec.deg, rtol=0, atol=1e-9)
    assert {f"flux_{b}" for b in range(3)} <= set(table.colnames)


def test_fits_hdu_and_errors(tmp_path, capsys, field_png):
    paths, _ = _fits_field(tmp_path, 1)
    out = tmp_path / "out"
    assert main(["segment", paths[0], "-o", str(out), "-q", "--hdu", "0"]) == 0
    capsys.readouterr()
    cases = [
        ([paths[0], "-o", str(tmp_path / "a"), "--hdu", "SCI"], "SCI"),
        ([str(field_png), "-o", str(tmp_path / "b"), "--hdu", "1"], "--hdu applies to FITS"),
        ([str(field_png), str(field_png), "-o", str(tmp_path / "c")], "combined as bands only"),
        ([paths[0], str(field_png), "-o", str(tmp_path / "d")], "only if all are FITS"),
    ]
    for argv, message in cases:
        assert main(["segment", *argv, "-q"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("skimgcluster: error:"), err
        assert message in err[0], err[0]


def test_color_scale_flag_and_its_former_spelling(field_png, tmp_path, capsys):
    assert main(["segment", str(field_png), "-o", str(tmp_path / "a"), "--color-scale", "0"]) == 0
    assert "warning" not in capsys.readouterr().err
    old = ["segment", str(field_png), "-o", str(tmp_path / "b"), "--colour-scale", "0"]
    assert main(old) == 0
    assert "skimgcluster: warning: The parameter colour_scale" in capsys.readouterr().err
    a, _ = read_image(tmp_path / "a" / "labels.png")
    b, _ = read_image(tmp_path / "b" / "labels.png")
    np.testing.assert_array_equal(a, b)
    with pytest.raises(SystemExit):
        main(["segment", "--help"])
    assert "--colour-scale" not in capsys.readouterr().out


def test_traceback_flag_shows_what_the_one_line_error_hides(field_png, tmp_path, capsys):
    args = ["segment", str(field_png), "-o", str(tmp_path / "o"), "--n-samples", "-5", "-q"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main([*args, "--traceback"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert any("_validate_params" in line for line in lines)  # where it was raised
    assert lines[-1].startswith("skimgcluster: error:") and "n_samples" in lines[-1]


def test_traceback_flag_with_separate_images(field_png, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    args = ["segment", "--separate", str(field_png), str(bad), "-o", str(tmp_path / "o"), "-q"]
    assert main([*args, "--traceback"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last):" in err
    assert f"skimgcluster: error: {bad}:" in err
