"""Find structures in images with the AstroLink clustering algorithm.

The chain is image -> :class:`LuminositySampler` -> :class:`AstroLinkClusterer`
-> :func:`labels_to_image`; :func:`segment` runs it in one call.
"""

import importlib

# Public names and the private modules that define them. They are imported
# on first use (PEP 562): numba, scikit-learn and matplotlib take seconds to
# load, and the command line must answer Ctrl-C (or --help) at once, so
# ``import skimgcluster`` loads none of them.
_MODULES = {
    "DegenerateDataWarning": "exceptions",
    "estimate_background": "_background",
    "SourceCatalog": "_catalog",
    "AstroLinkClusterer": "_clusterer",
    "FitsImage": "_fits",
    "read_fits": "_fits",
    "write_label_fits": "_fits",
    "read_image": "_io",
    "write_label_image": "_io",
    "cluster_masks": "_labels",
    "labels_to_image": "_labels",
    "LuminositySampler": "_sampler",
    "SampledImage": "_sampler",
    "SparseSamplingWarning": "exceptions",
    "ImageSegmenter": "_segment",
    "Segmentation": "_segmentation",
    "segment": "_segment",
    "TiledSegmentation": "_tiling",
    "InsufficientMemoryError": "exceptions",
    "plot_hierarchy": "_plotting",
    "plot_ordered_density": "_plotting",
    "plot_overview": "_plotting",
    "plot_segmentation": "_plotting",
}


def _version():
    # pyproject.toml's, the one place it is written; read on first use, as the
    # modules are, because reading the package metadata takes a moment too.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("skimgcluster")
    except PackageNotFoundError:  # pragma: no cover - a source tree never installed
        return "0+unknown"


def __getattr__(name):
    if name == "__version__":
        globals()[name] = value = _version()
        return value
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "AstroLinkClusterer",
    "DegenerateDataWarning",
    "FitsImage",
    "ImageSegmenter",
    "InsufficientMemoryError",
    "LuminositySampler",
    "SampledImage",
    "Segmentation",
    "SourceCatalog",
    "SparseSamplingWarning",
    "TiledSegmentation",
    "__version__",
    "cluster_masks",
    "estimate_background",
    "labels_to_image",
    "plot_hierarchy",
    "plot_ordered_density",
    "plot_overview",
    "plot_segmentation",
    "read_fits",
    "read_image",
    "segment",
    "write_label_fits",
    "write_label_image",
]
