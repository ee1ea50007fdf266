"""numpydoc validation of the public API's docstrings, as scikit-learn's
``sklearn/tests/test_docstrings.py`` does."""

import inspect

import pytest

numpydoc_validation = pytest.importorskip("numpydoc.validate")

# Checks that the house style does not follow, with the reason. Every other
# numpydoc check must pass.
IGNORED = {
    "GL01": "the summary may start on the line of the opening quotes",
    "GL02": "the closing quotes may follow the last line",
    "ES01": "an extended summary only where the summary is not enough",
    "SA01": "See Also only where there is a related object to point to",
    "EX01": "Examples on the main entry points only (the user guide has the rest)",
    "SS06": "summaries may take two lines",
    "RT02": "returns are named, as scikit-learn's (``self : object``)",
    "SS05": "summaries may be noun phrases saying what comes back, as scikit-image's",
}

# Objects with a check of their own that does not apply, with the reason.
IGNORED_FOR = {
    # Results the package builds: users read their documented Attributes and
    # never call their constructors, whose arguments are those attributes.
    "skimgcluster.FitsImage": {"PR01"},
    "skimgcluster.Segmentation": {"PR01"},
    "skimgcluster.TiledSegmentation": {"PR01"},
    "skimgcluster.SampledImage": {"PR01"},
    # A private hook of the tests (its name starts with an underscore).
    "skimgcluster.read_fits": {"PR01"},
}


def _public_names():
    import skimgcluster
    import skimgcluster.datasets
    import skimgcluster.metrics

    for module in (skimgcluster, skimgcluster.datasets, skimgcluster.metrics):
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            yield f"{module.__name__}.{name}"
            if inspect.isclass(obj) and not issubclass(obj, (Warning, Exception)):
                for attr, value in vars(obj).items():
                    if attr.startswith("_"):
                        continue
                    if inspect.isfunction(value) or isinstance(value, property):
                        yield f"{module.__name__}.{name}.{attr}"


@pytest.mark.parametrize("name", sorted(_public_names()))
def test_docstring(name):
    result = numpydoc_validation.validate(name)
    ignored = IGNORED.keys() | IGNORED_FOR.get(name, set())
    errors = [f"{code}: {message}" for code, message in result["errors"] if code not in ignored]
    assert not errors, f"{name}:\n" + "\n".join(errors)
