"""Bad input to the command line gets a one-line error, and nothing is lost on disk."""

import builtins
import os
import re
from pathlib import Path

import numpy as np
import pytest
from bad_inputs import _png, field_png
from helpers import sigint_default
from PIL import Image

from skimgcluster._cli import main
from skimgcluster._io import read_image

# -- the command line ---------------------------------------------------------------------------


def _truncated_png(tmp_path):
    good = field_png(tmp_path, "whole.png").read_bytes()
    path = tmp_path / "truncated.png"
    path.write_bytes(good[: len(good) // 2])
    return path


def _existing_output(tmp_path):
    image = field_png(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "sources.csv").write_text("keep me")
    return [str(image), "-o", str(out)]


# (id, argv factory given tmp_path, exit status, regex of the one line on stderr)
CLI_ROWS = [
    (
        "missing-file",
        lambda p: [str(p / "missing.png"), "-o", str(p / "o")],
        1,
        r"^skimgcluster: error: no such image file: .*missing\.png$",
    ),
    (
        "folder-as-image",
        lambda p: [str(p), "-o", str(p / "o")],
        1,
        r"^skimgcluster: error: cannot read .* as an image: it is a folder$",
    ),
    (
        "corrupt-png",
        lambda p: [str(_bytes(p / "bad.png", b"\x89PNG\r\n\x1a\n not really")), "-o", str(p / "o")],
        1,
        r"^skimgcluster: error: cannot read .*bad\.png as an image",
    ),
    (
        "truncated-png",
        lambda p: [str(_truncated_png(p)), "-o", str(p / "o")],
        1,
        r"^skimgcluster: error: cannot read .*truncated\.png as an image",
    ),
    (
        "empty-file",
        lambda p: [str(_bytes(p / "empty.tif", b"")), "-o", str(p / "o")],
        1,
        r"^skimgcluster: error: cannot read .*empty\.tif as an image",
    ),
    (
        "text-as-tiff",
        lambda p: [str(_bytes(p / "notes.tif", b"hello\n")), "-o", str(p / "o")],
        1,
        r"^skimgcluster: error: cannot read .*notes\.tif as an image",
    ),
    (
        "output-exists",
        _existing_output,
        1,
        r"^skimgcluster: error: .*sources\.csv already exist\(s\); pass --overwrite to replace$",
    ),
    (
        "output-is-a-file",
        lambda p: [str(field_png(p)), "-o", str(_bytes(p / "o", b"x"))],
        1,
        r"^skimgcluster: error: output .*o exists and is not a folder$",
    ),
    (
        "n-samples-negative",
        lambda p: [str(field_png(p)), "-o", str(p / "o"), "--n-samples", "-5"],
        1,
        r"^skimgcluster: error: The 'n_samples' parameter .*Got -5 instead\.$",
    ),
    (
        "n-samples-beyond-memory",
        lambda p: [str(field_png(p)), "-o", str(p / "o"), "--n-samples", str(10**13)],
        1,
        r"^skimgcluster: error: LuminositySampler "
        r".*n_samples=10000000000000 needs about .* is available\.",
    ),
    (
        "min-significance-out-of-range",
        lambda p: [str(field_png(p)), "-o", str(p / "o"), "--min-significance", "100"],
        1,
        r"^skimgcluster: error: The 'min_significance' parameter .*Got 100.0 instead\.$",
    ),
    (
        "detection-threshold-nan",
        lambda p: [str(field_png(p)), "-o", str(p / "o"), "--detection-threshold", "nan"],
        1,
        r"^skimgcluster: error: The 'detection_threshold' parameter .*Got nan instead\.$",
    ),
]


def _bytes(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("argv", "status", "message"), [pytest.param(*r[1:], id=r[0]) for r in CLI_ROWS]
)
def test_command_line(tmp_path, capsys, argv, status, message):
    argv = ["segment", *argv(tmp_path), "--quiet"]
    before = _snapshot(tmp_path)
    assert main(argv) == status
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err  # one line, no traceback
    assert re.search(message, lines[0]), lines[0]
    assert captured.out == ""
    assert _snapshot(tmp_path) == before  # nothing written, nothing changed


def _snapshot(folder):
    return {p: p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def test_command_line_unreadable_file(tmp_path, capsys, monkeypatch):
    """A file the user may not read (simulated: the tests may run as root)."""
    image = field_png(tmp_path, "locked.png")
    real_open = builtins.open

    def deny(file, *args, **kwargs):
        if os.fspath(file) == str(image):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    assert main(["segment", str(image), "-o", str(tmp_path / "o"), "-q"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert re.search(
        r"^skimgcluster: error: cannot read .*locked\.png as an image: .*Permission denied",
        lines[0],
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "argv",
    [["--n-samples", "abc"], ["--seed", "1.5"], ["--bogus"]],
    ids=["n-samples-abc", "seed-float", "unknown-option"],
)
def test_command_line_usage_errors(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(["segment", str(field_png(tmp_path)), "-o", str(tmp_path / "o"), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert re.match(r"skimgcluster( segment)?: error: ", err.splitlines()[-1])
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("image", "n_sources"),
    [
        (np.zeros((32, 32), np.uint8), 0),  # valid but empty
        (np.full((1, 1), 200, np.uint8), 0),  # 1 x 1
        (np.full((32, 32, 4), 255, np.uint8), 0),  # RGBA, opaque and constant
    ],
    ids=["all-zero", "1x1", "constant-RGBA"],
)
def test_command_line_empty_image_warns_and_writes_empty_outputs(
    tmp_path, capsys, image, n_sources
):
    path = _png(tmp_path / "image.png", image)
    out = tmp_path / "out"
    assert main(["segment", str(path), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert re.search(r"skimgcluster: warning: No pixel of the image lies above", captured.err)
    assert captured.out.startswith(f"found {n_sources} sources")
    labels, _ = read_image(out / "labels.png")
    assert labels.shape == image.shape[:2] and not labels.any()
    assert (out / "sources.csv").read_text().count("\n") == 1  # the header only


# -- nothing lost on disk ---------------------------------------------------------------------


def _run_twice_setup(tmp_path, capsys):
    """An image and the outputs of a finished run on it."""
    image = field_png(tmp_path)
    out = tmp_path / "out"
    assert main(["segment", str(image), "-o", str(out), "-q"]) == 0
    capsys.readouterr()
    return image, out


def test_ctrl_c_during_a_write_keeps_the_old_output(tmp_path, capsys, monkeypatch):
    image, out = _run_twice_setup(tmp_path, capsys)
    before = _snapshot(out)
    real_save = Image.Image.save

    def interrupted_save(self, fp, *args, **kwargs):
        real_save(self, fp, *args, **kwargs)
        with open(fp, "r+b") as f:  # leave half a file behind, then Ctrl-C
            f.truncate(Path(fp).stat().st_size // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted_save)
    argv = ["segment", str(image), "-o", str(out), "-q", "--overwrite", "--seed", "9"]
    assert main(argv) == 130
    assert capsys.readouterr().err.splitlines() == ["skimgcluster: interrupted"]
    assert _snapshot(out) == before  # the old files, whole; no temporary file


_CHILD = r"""
import sys, time
import matplotlib.figure
import skimgcluster._segment

where = sys.argv[1]
real_segment = skimgcluster._segment.segment
real_savefig = matplotlib.figure.Figure.savefig


def wait():
    print("ready", file=sys.stderr, flush=True)
    time.sleep(120)


def slow_segment(*args, **kwargs):
    wait()
    return real_segment(*args, **kwargs)


def half_savefig(self, fname, **kwargs):
    real_savefig(self, fname, **kwargs)
    with open(fname, "r+b") as f:
        f.truncate(f.seek(0, 2) // 2)
    wait()


if where == "segment":
    skimgcluster._segment.segment = slow_segment
else:
    matplotlib.figure.Figure.savefig = half_savefig

from skimgcluster._cli import main

sys.exit(main(sys.argv[2:]))
"""


def _interrupt_child(where, argv, sig):
    import signal
    import subprocess
    import sys

    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, where, "segment", *argv],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_default,
    )
    try:
        lines = []
        for line in child.stderr:  # progress lines, then "ready"
            lines.append(line)
            if line.strip() == "ready":
                break
        child.send_signal(getattr(signal, sig))
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child.returncode, "".join(lines) + err


def test_ctrl_c_while_computing_writes_nothing(tmp_path):
    out = tmp_path / "out"
    status, err = _interrupt_child("segment", [str(field_png(tmp_path)), "-o", str(out)], "SIGINT")
    assert status == 130
    assert err.splitlines()[-1] == "skimgcluster: interrupted"
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("sig", ["SIGINT", "SIGKILL"])
def test_interrupted_write_leaves_whole_files_only(tmp_path, capsys, sig):
    """Killed halfway through writing overview.png (which is written last)."""
    image, out = _run_twice_setup(tmp_path, capsys)
    old_overview = (out / "overview.png").read_bytes()
    argv = [str(image), "-o", str(out), "--overwrite", "--seed", "9"]
    status, err = _interrupt_child("savefig", argv, sig)
    assert "Traceback" not in err
    # The finished outputs are whole; the one being written is the old one.
    labels, _ = read_image(out / "labels.png")
    assert labels.shape == (48, 48) and labels.max() == 2
    assert (out / "sources.csv").read_text().startswith("label,cluster_id")
    assert (out / "overview.png").read_bytes() == old_overview
    leftovers = sorted(p.name for p in out.iterdir())
    names = {"labels.png", "overview.png", "sources.csv"}
    if sig == "SIGINT":
        assert status == 130 and err.splitlines()[-1] == "skimgcluster: interrupted"
        assert set(leftovers) == names  # the temporary file was removed
    else:
        # No process can clean up after SIGKILL: the half-written output set
        # stays in its hidden staging folder, never under an output's name.
        assert status == -9
        extra = set(leftovers) - names
        assert all(re.fullmatch(r"\.skimgcluster-\w+\.part", name) for name in extra)
