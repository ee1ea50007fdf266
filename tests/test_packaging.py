"""The package's metadata: version and declared dependencies."""

import ast
import importlib.metadata
import pathlib
import re
import sys

import pytest

import skimgcluster

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_version_comes_from_the_package_metadata():
    assert skimgcluster.__version__ == importlib.metadata.version("skimgcluster")


def _declared():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    names = {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0] for r in requirements}
    return {_normalise(n) for n in names}


def _normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported(paths):
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                yield from (alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                yield node.module.split(".")[0]


@pytest.mark.parametrize("folder", ["skimgcluster", "tests"])
def test_every_imported_package_is_declared(folder):
    # A clean `pip install ".[test]"` must bring every package the code imports.
    distributions = importlib.metadata.packages_distributions()
    local = {"skimgcluster", "conftest"} | {p.stem for p in (ROOT / "tests").rglob("*.py")}
    declared = _declared()
    missing = set()
    for module in set(_imported((ROOT / folder).rglob("*.py"))):
        if module in sys.stdlib_module_names or module in local:
            continue
        dists = distributions.get(module, [module])
        if not any(_normalise(d) in declared for d in dists):
            missing.add(module)
    assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"
