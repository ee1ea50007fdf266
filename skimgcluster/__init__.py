"""Find structures in images with the AstroLink clustering algorithm.

The chain is image -> :class:`LuminositySampler` -> :class:`AstroLinkClusterer`
-> :func:`labels_to_image`; :func:`segment` runs it in one call.
"""

from ._astrolink import DegenerateDataWarning
from ._background import estimate_background
from ._clusterer import AstroLinkClusterer
from ._labels import cluster_masks, labels_to_image
from ._plotting import plot_hierarchy, plot_ordered_density, plot_overview, plot_segmentation
from ._sampler import LuminositySampler, SampledImage, SparseSamplingWarning
from ._segment import ImageSegmenter, Segmentation, segment
from ._validation import InsufficientMemoryError

__version__ = "0.1.0"

__all__ = [
    "AstroLinkClusterer",
    "DegenerateDataWarning",
    "ImageSegmenter",
    "InsufficientMemoryError",
    "LuminositySampler",
    "SampledImage",
    "Segmentation",
    "SparseSamplingWarning",
    "__version__",
    "cluster_masks",
    "estimate_background",
    "labels_to_image",
    "plot_hierarchy",
    "plot_ordered_density",
    "plot_overview",
    "plot_segmentation",
    "segment",
]
