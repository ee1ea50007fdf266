"""The command line as the owner of its process: what it does to the heap."""

import gc
import sys

import pytest

from skimgcluster import _cli


def test_main_leaves_the_callers_heap_alone(field_png, tmp_path):
    # A program that calls main() keeps its garbage collector as it was.
    before = gc.get_freeze_count()
    assert _cli.main(["segment", str(field_png), "-o", str(tmp_path / "out"), "-q"]) == 0
    assert gc.get_freeze_count() == before


def test_run_freezes_the_heap_of_its_own_process(field_png, tmp_path, monkeypatch):
    monkeypatch.setattr(_cli, "_HEAP", {"owned": False, "frozen": False})
    monkeypatch.setattr(sys, "argv", ["skimgcluster", "segment", str(field_png), "-o",
                                      str(tmp_path / "out"), "-q"])  # fmt: skip
    assert gc.get_freeze_count() == 0
    try:
        with pytest.raises(SystemExit) as exit_:
            _cli.run()
        frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()  # this process is pytest's, not the command's
    assert exit_.value.code == 0
    assert frozen > 0
    assert (tmp_path / "out" / "labels.png").exists()
