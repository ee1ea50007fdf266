"""The command line's output set is all or nothing, and it fails early, in one line.

A failure in any stage, a full disk, a folder in the way or Ctrl-C at any
moment leaves the output folder as it was (or absent, if it was); a run that
succeeds leaves every output. Every check that can refuse the run happens
before the segmentation. Ctrl-C and memory limits are tested on the real
command, in a subprocess.
"""

import errno
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from helpers import sigint_default, source_env
from PIL import Image

from skimgcluster import _cli, _io
from skimgcluster._cli import main

ALL_OUTPUTS = {"labels.png", "sources.csv", "overview.png", "segmentation.png",
               "ordered_density.png", "hierarchy.png"}  # fmt: skip


def old_outputs(out, names=ALL_OUTPUTS):
    """An output folder holding a previous run's outputs (recognisable contents)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        (out / name).write_bytes(f"old {name}".encode())
    return snapshot(out)


def snapshot(folder):
    """Every entry of a folder (hidden ones included) and its bytes."""
    if not folder.exists():
        return None
    return {p.name: (p.read_bytes() if p.is_file() else "<dir>") for p in folder.iterdir()}


def one_error_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("skimgcluster: error: "), err
    return lines[0]


# -- failures in each stage ------------------------------------------------------------


class Boom(OSError):
    pass


def _fail(*args, **kwargs):
    raise Boom("injected failure")


STAGES = {
    "reading": (_cli, "_read"),
    "segmentation": (_cli, "_run"),
    "measuring": ("skimgcluster._segment.Segmentation", "catalog"),
    "labels": (_io, "write_label_image"),
    "catalog": ("skimgcluster._catalog.SourceCatalog", "write"),
    "figure": (_io, "save_figure"),
    "drawing": (_cli, "_figure"),
}


def _inject(monkeypatch, stage):
    target, name = STAGES[stage]
    if isinstance(target, str):
        module, _, cls = target.rpartition(".")
        target = getattr(__import__(module, fromlist=[cls]), cls)
    monkeypatch.setattr(target, name, _fail)


@pytest.mark.parametrize("stage", list(STAGES))
@pytest.mark.parametrize("existing", [False, True])
def test_failure_in_any_stage_leaves_the_folder_as_it_was(
    field_png, tmp_path, monkeypatch, capsys, stage, existing
):
    out = tmp_path / "deep" / "out"
    before = old_outputs(out) if existing else None
    _inject(monkeypatch, stage)
    argv = ["segment", str(field_png), "-o", str(out), "-q", "--plots", "all", "--overwrite"]
    assert main(argv) == 1
    assert "injected failure" in one_error_line(capsys.readouterr().err)
    assert snapshot(out) == before  # old outputs unchanged, nothing new, no temporary folder
    if not existing:
        assert not (tmp_path / "deep").exists()  # the folders made for it are gone too
    assert sorted(p.name for p in tmp_path.iterdir()) == (
        ["deep", "field.png"] if existing else ["field.png"]
    )


def test_full_disk_while_writing_keeps_the_old_outputs(field_png, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    before = old_outputs(out)
    real = _io.save_figure
    calls = []

    def disk_full_on_second_figure(path, figure, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            # A writer that has written part of its file when the disk fills up.
            Path(path).write_bytes(b"half a figure")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, figure, **kwargs)

    monkeypatch.setattr(_io, "save_figure", disk_full_on_second_figure)
    argv = ["segment", str(field_png), "-o", str(out), "-q", "--plots", "all", "--overwrite"]
    assert main(argv) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "No space left on device" in line
    assert snapshot(out) == before
    # The files being written were never in the output folder.
    assert all(Path(p).parent != out for p in calls)


def test_failure_while_moving_into_place_restores_the_old_outputs(
    field_png, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "out"
    before = old_outputs(out, {"labels.png", "sources.csv", "overview.png"})
    real = os.replace
    moved = []

    def replace(src, dst):
        if Path(dst).parent == out:
            moved.append(dst)
            if len(moved) == 3:  # labels.png and sources.csv are in place, overview.png fails
                raise OSError(errno.EIO, "injected failure of a rename")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    assert main(["segment", str(field_png), "-o", str(out), "-q", "--overwrite"]) == 1
    assert "injected failure" in one_error_line(capsys.readouterr().err)
    assert snapshot(out) == before


def test_success_replaces_the_whole_set(field_png, tmp_path, capsys):
    out = tmp_path / "out"
    old_outputs(out)
    (out / "notes.txt").write_text("mine")
    argv = ["segment", str(field_png), "-o", str(out), "-q", "--plots", "all", "--overwrite"]
    assert main(argv) == 0
    after = snapshot(out)
    assert set(after) == ALL_OUTPUTS | {"notes.txt"}  # no temporary folder left
    assert all(not after[n].startswith(b"old ") for n in ALL_OUTPUTS)
    assert after["notes.txt"] == b"mine"


def test_new_folder_gets_ordinary_permissions(field_png, tmp_path, capsys):
    out = tmp_path / "new"
    assert main(["segment", str(field_png), "-o", str(out), "-q", "--plots", "none"]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask
    assert (out / "labels.png").stat().st_mode & 0o777 == 0o666 & ~umask


# -- checks before the run --------------------------------------------------------------


@pytest.fixture
def no_segmentation(monkeypatch):
    """Fail the test if the segmentation starts."""

    def run(*args, **kwargs):
        raise AssertionError("the segmentation ran before the check")

    monkeypatch.setattr(_cli, "_run", run)


@pytest.mark.parametrize("overwrite", [False, True])
def test_folder_in_the_way_is_refused_up_front(
    field_png, tmp_path, capsys, no_segmentation, overwrite
):
    out = tmp_path / "out"
    before = old_outputs(out, {"labels.png"})
    (out / "sources.csv").mkdir()
    (out / "sources.csv" / "keep").write_text("x")
    before = snapshot(out)
    argv = ["segment", str(field_png), "-o", str(out), "-q", *(["--overwrite"] * overwrite)]
    assert main(argv) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "sources.csv is a folder" in line
    assert snapshot(out) == before


def test_existing_outputs_are_refused_before_the_run(field_png, tmp_path, capsys, no_segmentation):
    out = tmp_path / "out"
    before = old_outputs(out, {"labels.tif"})  # the label image's other possible name
    assert main(["segment", str(field_png), "-o", str(out), "-q"]) == 1
    assert "--overwrite" in one_error_line(capsys.readouterr().err)
    assert snapshot(out) == before


def test_empty_output_is_an_error(field_png, tmp_path, capsys, monkeypatch, no_segmentation):
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    assert main(["segment", str(field_png), "-o", "", "-q"]) == 1
    assert "--output must name a folder" in one_error_line(capsys.readouterr().err)
    assert snapshot(tmp_path) == before


def test_folder_named_like_an_image_says_it_is_a_folder(tmp_path, capsys, no_segmentation):
    for name in ("dir.fits", "dir.png", "dir.tif"):
        (tmp_path / name).mkdir()
        assert main(["segment", str(tmp_path / name), "-o", str(tmp_path / "o"), "-q"]) == 1
        line = one_error_line(capsys.readouterr().err)
        assert line.endswith(f"{name} as an image: it is a folder")
        assert "no such" not in line
    assert not (tmp_path / "o").exists()


def test_astropy_formats_are_checked_before_the_run(
    field_png, tmp_path, capsys, monkeypatch, no_segmentation
):
    for name in [m for m in sys.modules if m == "astropy" or m.startswith("astropy.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "astropy", None)
    for option in (["--catalog-format", "ecsv"], ["--labels-format", "fits"]):
        argv = ["segment", str(field_png), "-o", str(tmp_path / "o"), "-q", *option]
        assert main(argv) == 1
        assert "astropy" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def test_planes_option_needs_a_tiff(field_png, tmp_path, capsys, no_segmentation):
    argv = ["segment", str(field_png), "-o", str(tmp_path / "o"), "-q", "--planes", "bands"]
    assert main(argv) == 1
    assert "--planes applies to a TIFF" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("case", ["unknown projection", "sky axes 1 and 3"])
def test_fits_wcs_ignored_by_the_reader_does_not_fail_the_run(tmp_path, capsys, case):
    fits = pytest.importorskip("astropy.io.fits")
    from conftest import TWO_SOURCES, gaussian_image

    image = gaussian_image((64, 64), TWO_SOURCES, noise=1.0, sky=10.0, seed=1).astype(np.float32)
    hdu = fits.PrimaryHDU(image)
    if case == "unknown projection":
        hdu.header["CTYPE1"] = "RA---XXX"
        hdu.header["CTYPE2"] = "DEC--XXX"
    else:  # a 2-D image whose celestial axes are FITS axes 1 and 3
        hdu.header["WCSAXES"] = 3
        hdu.header["CTYPE1"] = "RA---TAN"
        hdu.header["CTYPE2"] = "FREQ"
        hdu.header["CTYPE3"] = "DEC--TAN"
    hdu.writeto(tmp_path / "in.fits")
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "in.fits"), "-o", str(out), "--plots", "none"]) == 0
    captured = capsys.readouterr()
    assert "skimgcluster: warning: ignoring the WCS" in captured.err
    assert "error" not in captured.err
    assert {p.name for p in out.iterdir()} == {"labels.fits", "sources.csv"}
    assert int(captured.out.split()[1]) == 2


@pytest.mark.parametrize("suffix", [".tif", ".png", ".fits"])
def test_a_run_too_large_for_memory_is_refused_before_decoding(
    tmp_path, capsys, monkeypatch, suffix
):
    from skimgcluster import _validation

    image = np.zeros((200, 300), dtype=np.uint16)
    path = tmp_path / f"big{suffix}"
    if suffix == ".fits":
        pytest.importorskip("astropy.io.fits").PrimaryHDU(image).writeto(path)
        from skimgcluster import _fits

        monkeypatch.setattr(_fits, "_scaled", _fail)
    else:
        tifffile.imwrite(path, image) if suffix == ".tif" else Image.fromarray(image).save(path)
    monkeypatch.setattr(tifffile.TiffPageSeries, "asarray", _fail)
    monkeypatch.setattr(Image.Image, "load", _fail)
    # Enough to read the image, not to segment it.
    monkeypatch.setattr(_validation, "available_memory", lambda: 2**20)
    assert main(["segment", str(path), "-o", str(tmp_path / "o"), "-q"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert re.search(r"LuminositySampler on an image of shape \(200, 300, 1\) needs about", line)
    assert not (tmp_path / "o").exists()


def test_memory_error_is_one_line(field_png, tmp_path, capsys, monkeypatch):
    def read(*args, **kwargs):
        raise MemoryError("Unable to allocate 3.35 GiB for an array")

    monkeypatch.setattr(_cli, "_read", read)
    assert main(["segment", str(field_png), "-o", str(tmp_path / "o"), "-q"]) == 1
    assert "out of memory: Unable to allocate" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def test_keyboard_interrupt_in_process_is_one_line(field_png, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    before = old_outputs(out)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_io, "save_figure", interrupted)
    argv = ["segment", str(field_png), "-o", str(out), "--plots", "all", "--overwrite", "-q"]
    assert main(argv) == 130
    assert capsys.readouterr().err == "skimgcluster: interrupted\n"
    assert snapshot(out) == before


# -- the real command, in a subprocess --------------------------------------------------


def _command(*args):
    env = source_env()
    env.pop("PYTHONWARNINGS", None)
    return [sys.executable, "-m", "skimgcluster", "segment", *args], env


@pytest.fixture(scope="module")
def field_tif(tmp_path_factory):
    """An RGB field big enough that its run (plots included) takes a few seconds."""
    from skimgcluster.datasets import make_field

    image, _, _ = make_field((256, 256), 30, n_bands=3, random_state=0)
    path = tmp_path_factory.mktemp("field") / "field.tif"
    tifffile.imwrite(path, np.asarray(image, dtype=np.float32), photometric="rgb")
    return path


def _wait_for_numpy(proc):
    """Wait until the child has mapped numpy's compiled core: its start-up imports, in main().

    Nothing heavy is imported before main() (skimgcluster/_cli.py), numpy
    first of all. Without /proc (not Linux) it waits for nothing.
    """
    maps = Path(f"/proc/{proc.pid}/maps")
    while proc.poll() is None:
        try:
            if "_multiarray_umath" in maps.read_text():
                return
        except OSError:
            return
        time.sleep(0.005)


# When to press Ctrl-C: during the start-up imports, or as soon as stderr shows
# a stage's progress line; with a previous run's outputs in the folder (the
# temporary folder is inside it) or no folder (it is beside it). The stages
# before the writing leave only the temporary folder to remove, the same
# with or without outputs but for its place: one of the two each. From the
# writing on, the temporary folder holds new files beside the old ones: both.
RUNS = [
    ("importing", False),
    ("sampling", True),
    ("clustering", False),
    ("writing", True),
    ("writing", False),
    ("drawing hierarchy.png", True),
    ("drawing hierarchy.png", False),
]


@pytest.mark.parametrize(
    "moment, existing",
    RUNS,
    ids=[f"{m}-{'old outputs' if e else 'no folder'}" for m, e in RUNS],
)
def test_ctrl_c_at_any_moment_leaves_all_or_nothing(field_tif, tmp_path, moment, existing):
    out = tmp_path / "out"
    before = old_outputs(out) if existing else None
    argv, env = _command(str(field_tif), "-o", str(out), "--plots", "all", "--overwrite")
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=sigint_default,
    )  # fmt: skip
    err = ""
    try:
        if moment == "importing":
            _wait_for_numpy(proc)
        else:
            for line in proc.stderr:
                err += line
                if moment in line:
                    break
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=300)
    finally:
        proc.kill()
    err += rest
    after = snapshot(out)
    if proc.returncode == 130:
        assert err.splitlines()[-1:] == ["skimgcluster: interrupted"], err
        assert "Traceback" not in err, err
        assert after == before
    else:  # the run had finished
        assert proc.returncode == 0, err
        assert set(after or ()) == ALL_OUTPUTS
        assert all(not after[n].startswith(b"old ") for n in ALL_OUTPUTS)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary


def _huge_fits(path, shape):
    """A FITS file that declares a float32 image of ``shape`` but takes no disk space."""
    fits = pytest.importorskip("astropy.io.fits")
    header = fits.Header()
    header["SIMPLE"] = True
    header["BITPIX"] = -32
    header["NAXIS"] = 2
    header["NAXIS1"] = shape[1]
    header["NAXIS2"] = shape[0]
    block = header.tostring().encode("ascii")
    n_data = 4 * shape[0] * shape[1]
    with open(path, "wb") as f:
        f.write(block)
        f.truncate(len(block) + -(-n_data // 2880) * 2880)  # sparse: zeros, never written
    return path


@pytest.mark.skipif(sys.platform == "win32", reason="resource limits are POSIX")
def test_memory_limit_gives_a_one_line_refusal(tmp_path):
    import resource

    limit = 2 * 2**30

    def limit_address_space():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    path = _huge_fits(tmp_path / "huge.fits", (40_000, 40_000))  # 6 GiB declared
    argv, env = _command(str(path), "-o", str(tmp_path / "out"))
    start = time.perf_counter()
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env, timeout=300,
        preexec_fn=limit_address_space,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    line = one_error_line("\n".join(
        x for x in done.stderr.splitlines() if not x.startswith("[")
    ))  # fmt: skip
    # Refused from the header: the run the image would need (or, failing that, its reading).
    assert "(40000, 40000" in line and "needs about" in line and "available" in line
    assert time.perf_counter() - start < 60  # refused from the header, not after decoding
    assert not (tmp_path / "out").exists()
