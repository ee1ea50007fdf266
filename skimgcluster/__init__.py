"""Find structures in images with the AstroLink clustering algorithm.

The chain is image -> :class:`LuminositySampler` -> :class:`AstroLinkClusterer`
-> :func:`labels_to_image`; :func:`segment` runs it in one call.
"""

from ._astrolink import DegenerateDataWarning
from ._background import estimate_background
from ._catalog import SourceCatalog
from ._clusterer import AstroLinkClusterer
from ._fits import FitsImage, read_fits, write_label_fits
from ._io import read_image, write_label_image
from ._labels import cluster_masks, labels_to_image
from ._plotting import plot_hierarchy, plot_ordered_density, plot_overview, plot_segmentation
from ._sampler import LuminositySampler, SampledImage, SparseSamplingWarning
from ._segment import ImageSegmenter, Segmentation, segment
from ._validation import InsufficientMemoryError

__version__ = "0.1.0"

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
