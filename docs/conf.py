r"""Sphinx configuration of the skimgcluster documentation.

Build from the top folder of the repository with::

    python -m pip install ".[docs]" && \
        python -m sphinx -W --keep-going -b html docs docs/_build/html

Pages are Markdown (myst-parser); docstrings are numpydoc. The API reference
(``api.md``) is completed at build time from ``skimgcluster.__all__``: every
public name gets an entry without editing the page.
"""

import inspect
import re
import sys
from pathlib import Path

from sklearn.base import BaseEstimator
from sphinx.errors import ExtensionError

# Document the package of this checkout, even if another version is installed.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import skimgcluster  # noqa: E402

project = "skimgcluster"
author = "The skimgcluster developers"
copyright = "The skimgcluster developers"
version = release = skimgcluster.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# MyST: ``:::`` fences and definition lists (the walkthrough's "next steps").
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# autodoc / autosummary: the reference page is written by ``_write_api`` below, so
# autosummary only builds tables (no stub pages).
autosummary_generate = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_default_options = {"members": True, "show-inheritance": False}

# numpydoc: methods are documented by autodoc's ``members``; numpydoc's own tables of
# class members would list every inherited scikit-learn method a second time.
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "alabaster"
html_title = f"skimgcluster {release}"
html_theme_options = {
    "description": "Find structures in images with AstroLink, scikit-learn style",
    "fixed_sidebar": True,
}
html_static_path = []

_METADATA_REQUEST = re.compile(r"set_\w+_request")
_SHAPE = re.compile(r"shape \([^()]*\)")
_TRAILING_UNDERSCORE = re.compile(r"(?<=\w)_(?=[,)\s])")

# The marker that ``api.md`` holds where the generated reference goes.
API_MARKER = "<!-- skimgcluster.__all__ reference -->"

# Groups of the reference, in page order: (heading, test of the object).
_GROUPS = (
    ("Estimators", lambda obj: inspect.isclass(obj) and issubclass(obj, BaseEstimator)),
    ("Functions", inspect.isfunction),
    (
        "Warnings and exceptions",
        lambda obj: inspect.isclass(obj) and issubclass(obj, BaseException),
    ),
    ("Result classes", inspect.isclass),
    ("Other names", lambda obj: True),
)


def _directive(obj):
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return "autoexception"
    if inspect.isclass(obj):
        return "autoclass"
    if inspect.isfunction(obj):
        return "autofunction"
    return "autodata"


def api_reference():
    """The Markdown of the reference of every name in ``skimgcluster.__all__``."""
    grouped = {heading: [] for heading, _ in _GROUPS}
    for name in sorted(skimgcluster.__all__, key=lambda n: (n.startswith("_"), n.lower())):
        obj = getattr(skimgcluster, name)
        heading = next(h for h, test in _GROUPS if test(obj))
        grouped[heading].append((name, obj))
    lines = []
    for heading, entries in grouped.items():
        if not entries:
            continue
        lines += [f"### {heading}", "", "```{eval-rst}", ".. currentmodule:: skimgcluster", ""]
        lines += [".. autosummary::", "   :nosignatures:", ""]
        lines += [f"   {name}" for name, _ in entries]
        lines += ["```", ""]
        # autodoc writes reStructuredText, so its directives go in an eval-rst block.
        lines += ["```{eval-rst}"]
        for name, obj in entries:
            lines += [f".. {_directive(obj)}:: {name}"]
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                lines += ["   :no-members:"]
            lines += [""]
        lines += ["```", ""]
    return "\n".join(lines)


def _write_api(app, docname, source):
    if docname != "api":
        return
    if API_MARKER not in source[0]:
        raise ExtensionError(f"docs/api.md lost its marker {API_MARKER!r}")
    source[0] = source[0].replace(API_MARKER, api_reference())


def _skip_member(app, what, name, obj, skip, options):
    # scikit-learn adds set_fit_request, set_transform_request, ... to every estimator
    # (metadata routing); they are its machinery, documented by scikit-learn.
    if _METADATA_REQUEST.fullmatch(name):
        return True
    return None


def _escape_shapes(app, what, name, obj, options, lines):
    # In "ndarray of shape (n_clusters_,)" the trailing underscore of an attribute
    # name would be read as a reST reference; names inside a shape are plain text.
    for i, line in enumerate(lines):
        lines[i] = _SHAPE.sub(lambda m: _TRAILING_UNDERSCORE.sub(r"\\_", m.group(0)), line)


def setup(app):
    app.connect("source-read", _write_api)
    app.connect("autodoc-skip-member", _skip_member)
    # Before numpydoc (priority 500) turns the sections into reST.
    app.connect("autodoc-process-docstring", _escape_shapes, priority=400)
    return {"parallel_read_safe": True}

