"""The documentation: its examples run, and it builds with warnings as errors.

Examples in the pages are ``pycon`` code fences (``>>>`` lines and their output); each
page's fences run in order, as one doctest sharing its names, with ELLIPSIS and
NORMALIZE_WHITESPACE on. Longer examples are scripts in ``docs/examples/``, run here as
scripts. The build is the documented command, ``sphinx -W --keep-going -b html``, into a
temporary folder.
"""

import doctest
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import source_env

import skimgcluster
import skimgcluster.datasets
import skimgcluster.metrics

DOCS = Path(__file__).parents[1] / "docs"
PAGES = sorted(DOCS.glob("*.md"))
EXAMPLES = sorted((DOCS / "examples").glob("*.py"))
BUILD_COMMAND = "python -m sphinx -W --keep-going -b html docs docs/_build/html"

_FENCE_OPEN = re.compile(r"^(?P<ticks>`{3,}|~{3,})\s*(?P<info>[^\s`]*)")

# Code fences whose content is not Python, or is Python that runs elsewhere: shell
# commands, plain text, and MyST directives.
_NOT_PYTHON = {"bash", "console", "text", "toml", "ini"}


def _fences(text):
    """``(info, first_line, lines)`` of every code fence of a Markdown text."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE_OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        ticks, info = m.group("ticks"), m.group("info")
        end = i + 1
        while end < len(lines) and not (
            lines[end].startswith(ticks) and lines[end].strip(ticks[0]).strip() == ""
        ):
            end += 1
        yield info, i + 1, lines[i + 1 : end]
        i = end + 1


def _doctest_text(text):
    """The page with everything but its ``pycon`` fences blanked (line numbers kept)."""
    out = [""] * len(text.splitlines())
    for info, first, lines in _fences(text):
        if info == "pycon":
            out[first : first + len(lines)] = lines
    return "\n".join(out) + "\n"


def test_fence_parser():
    text = "intro\n```pycon\n>>> 1 + 1\n2\n```\n\n````{eval-rst}\n```\n````\n```bash\nls\n```\n"
    assert [(info, first) for info, first, _ in _fences(text)] == [
        ("pycon", 2),
        ("{eval-rst}", 7),
        ("bash", 10),
    ]
    assert _doctest_text(text).splitlines()[2:4] == [">>> 1 + 1", "2"]


# Pages whose teaching is their examples: each must hold some.
PAGES_WITH_EXAMPLES = {"quickstart.md", "walkthrough.md", "user_guide.md", "tuning.md", "fits.md"}


def test_pages_are_found():
    names = {page.name for page in PAGES}
    assert {"index.md", "installation.md", "api.md", "glossary.md"} | PAGES_WITH_EXAMPLES <= names
    assert EXAMPLES, "docs/examples/ holds the longer examples"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_has_no_untested_python(page):
    """Python in a page is a ``pycon`` example (run below) or a script of docs/examples."""
    for info, first, _ in _fences(page.read_text(encoding="utf-8")):
        assert info == "pycon" or info in _NOT_PYTHON or info.startswith("{"), (
            f"{page.name}, line {first}: a ```{info} fence is not run by the tests; "
            "write it as ```pycon with >>> lines, or as a script in docs/examples/."
        )


_PRIVATE_IMPORT = re.compile(r"from skimgcluster\.(_\w+) import (.+)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_imports_public_names_from_the_package(page):
    """Names of ``skimgcluster.__all__`` are imported from the package, not a private module."""
    for match in _PRIVATE_IMPORT.finditer(_doctest_text(page.read_text(encoding="utf-8"))):
        names = {name.strip(" ()") for name in match.group(2).split(",")}
        public = sorted(names & set(skimgcluster.__all__))
        assert not public, (
            f"{page.name} imports {public} from skimgcluster.{match.group(1)}; they are "
            "public now: import them from skimgcluster"
        )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_examples(page):
    text = page.read_text(encoding="utf-8")
    test = doctest.DocTestParser().get_doctest(
        _doctest_text(text), {"__name__": page.stem}, page.name, str(page), 0
    )
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    report = []
    runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
    if page.name in PAGES_WITH_EXAMPLES:
        assert runner.tries > 0, f"{page.name} lost its examples"


# What an example script prints, line by line from its first: a regular expression
# per line. GridSearchCV lists a candidate's parameters sorted by name.
EXAMPLE_OUTPUT = {
    "tune_with_gridsearch.py": [
        r"best parameters: \{'clusterer__k_den': (10|15), 'clusterer__min_significance': "
        r"(2\.5|3\.0), 'sampler__color_scale': (0\.0|20\.0), "
        r"'sampler__detection_threshold': (3\.0|4\.0)\}",
        r"best cross-validated F1: (0\.\d*[1-9]\d*|1\.000)",  # in (0, 1]
        *[r"  F1 [01]\.\d{3} \+/- [01]\.\d{3}  \{.+\}"] * 5,  # the five best of 16
    ],
}


# Scripts whose main takes the size of its work: the test calls it on small inputs
# (in a new process all the same), the property checked does not depend on the size.
EXAMPLE_CALL = {"tune_with_gridsearch.py": "main(n_fields=3, size=128, n_sources=10)"}


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_script_runs(script):
    # A new process, as a reader runs it: `python docs/examples/<script>.py`, or
    # `from <script> import main` beside it.
    call = EXAMPLE_CALL.get(script.name)
    code = [str(script)] if call is None else ["-c", f"from {script.stem} import main; {call}"]
    done = subprocess.run(
        [sys.executable, *code],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=DOCS.parent if call is None else script.parent,
        env=source_env(),
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr
    assert done.stdout.strip(), "an example says what it found"
    lines, expected = done.stdout.splitlines(), EXAMPLE_OUTPUT.get(script.name, [])
    assert len(lines) >= len(expected), done.stdout
    for pattern, line in zip(expected, lines, strict=False):
        assert re.fullmatch(pattern, line), (pattern, line)


@pytest.mark.parametrize("page", ["index.md", "installation.md"])
def test_build_command_is_documented(page):
    assert BUILD_COMMAND in (DOCS / page).read_text(encoding="utf-8")


def test_docs_build_without_warnings(tmp_path):
    from sphinx.cmd.build import build_main

    out = tmp_path / "html"
    status = build_main(
        ["-W", "--keep-going", "-q", "-b", "html", "-d", str(tmp_path / "doctrees"),
         str(DOCS), str(out)]
    )  # fmt: skip
    assert status == 0
    api = (out / "api.html").read_text(encoding="utf-8")
    missing = [name for name in skimgcluster.__all__ if f'id="skimgcluster.{name}"' not in api]
    assert not missing, f"names of skimgcluster.__all__ without an entry in api.html: {missing}"
    for module in (skimgcluster.datasets, skimgcluster.metrics):
        functions = [name for name in module.__all__ if callable(getattr(module, name))]
        absent = [name for name in functions if f'id="{module.__name__}.{name}"' not in api]
        assert not absent, f"{module.__name__}: no entry for {absent}"
    for page in PAGES:
        assert (out / page.with_suffix(".html").name).exists(), page.name
