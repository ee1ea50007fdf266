"""The command line, in-process and as the installed console script."""

import csv
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from skimgcluster._cli import main
from skimgcluster._io import read_image


@pytest.fixture
def field_png(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:96, :96]
    image = rng.normal(20, 3, (96, 96, 3))
    for y0, x0 in [(20, 25), (60, 70), (75, 20)]:
        image += (160 * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / 14))[..., None]
    path = tmp_path / "field.png"
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path)
    return path


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
    assert "sampling and clustering" in captured.err  # progress on stderr


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
    with pytest.raises(SystemExit) as exc:
        main(["segment", "--help"])
    assert exc.value.code == 0
    assert "examples:" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["segment"])  # --output is required
    assert exc.value.code == 2


def test_console_script_on_the_hubble_deep_field(tmp_path):
    script = shutil.which("skimgcluster")
    cmd = [script] if script else [sys.executable, "-m", "skimgcluster"]
    out = tmp_path / "hubble"
    done = subprocess.run(
        [*cmd, "segment", "--output", str(out)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    n_sources = int(done.stdout.split()[1])
    assert n_sources >= 100  # hundreds of galaxies, not a handful
    labels, _ = read_image(out / "labels.png")
    assert labels.shape == (872, 1000)
    assert np.unique(labels[labels > 0]).size == n_sources
