"""Segmentation: the result of :func:`~skimgcluster.segment` on one image.

Its own module, so that the modules that make a segmentation
(:mod:`._segment`) and those that read one (:mod:`._catalog`,
:mod:`._plotting`) need not import each other.
"""

import numpy as np

from ._catalog import SourceCatalog

__all__ = ["Segmentation"]


class Segmentation:
    """Result of :func:`segment`.

    Attributes
    ----------
    label_image : (M, N) ndarray of int32
        0 for background, ``k + 1`` for the pixels of label ``k``.
    labels : ndarray of shape (n_samples,)
        Label of every sampled point (``-1`` for noise): the clusterer's
        ``labels_`` after touching segments were merged (see
        :class:`ImageSegmenter`'s ``deblend_dip``) and isolated sources added.
    points : ndarray of shape (n_samples, n_features)
        The sampled points (x, y, colour features).
    n_sources : int
        Number of sources in ``label_image`` (distinct non-zero values).
    cluster_ids : ndarray of shape (n_clusters,)
        AstroLink id of every cluster of the hierarchy.
    significances : ndarray of shape (n_clusters,)
        Significance in sigma of every cluster.
    parents : ndarray of shape (n_clusters,)
        Index of each cluster's parent, ``-1`` at the top level.
    cluster_labels : ndarray of shape (n_clusters,)
        Label of every cluster in ``labels`` (``label_image`` holds it plus 1),
        ``-1`` for a cluster that labels no point. The clusters of a merged
        source share its label.
    source_significance : ndarray of shape (n_labels,)
        Significance in sigma of each label ``k`` (pixel value k+1): that of
        the (most significant) cluster behind it or, for an isolated source (see
        ``isolated``), the signal-to-noise ratio of its footprint.
    isolated : ndarray of bool of shape (n_labels,)
        True for the labels of sources without an AstroLink cluster of their
        own: footprint regions in which AstroLink found no cluster (see
        :class:`ImageSegmenter`'s ``isolated_snr``), and significant peaks
        of the image cut out of a cluster's segment (see ``deblend_dip``).
        They are numbered after the labels of clusters.
    maps : SampledImage
        Luminosity, background, noise, footprint and sampling weights.
    sampler : LuminositySampler
        The fitted sampler.
    clusterer : AstroLinkClusterer
        The fitted clusterer (left unfitted when no pixel was above the
        detection threshold, in which case the hierarchy arrays are empty).
    """

    def __init__(
        self, label_image, points, sampler, clusterer, maps, *, isolated=None, merged=None
    ):
        self.label_image = label_image
        self.points = points
        self.sampler = sampler
        self.clusterer = clusterer
        self.maps = maps
        if hasattr(clusterer, "labels_"):
            self.labels = clusterer.labels_
            self.cluster_ids = clusterer.cluster_ids_
            self.significances = clusterer.significances_
            self.parents = clusterer.parents_
            self.cluster_labels = clusterer.cluster_labels_
            if merged is not None:  # (labels of points, label of every cluster)
                self.labels, self.cluster_labels = merged
        else:  # nothing was sampled, so nothing was clustered
            self.labels = np.empty(0, dtype=np.intp)
            self.cluster_ids = np.empty(0, dtype=str)
            self.significances = np.empty(0)
            self.parents = np.empty(0, dtype=np.intp)
            self.cluster_labels = np.empty(0, dtype=np.intp)
        # The labels behind clusters come first; those of sources without a
        # cluster of their own (``isolated``) are numbered after them.
        n_labels = int(self.cluster_labels.max(initial=-1)) + 1
        sig = np.full(n_labels, -np.inf)
        used = self.cluster_labels >= 0
        # A merged source has several clusters: the most significant counts.
        np.maximum.at(sig, self.cluster_labels[used], self.significances[used])
        sig[np.isneginf(sig)] = np.nan
        self.isolated = np.zeros(n_labels, dtype=bool)
        if isolated is not None:  # (labels of points, snr of each further label)
            self.labels, snr = isolated
            sig = np.append(sig, snr)
            self.isolated = np.append(self.isolated, np.ones(len(snr), dtype=bool))
        self.source_significance = sig
        # Labels are small non-negative integers: counted by bincount, several
        # times as fast as np.unique on a large image, and on the labelled
        # pixels only (a few percent of a large field; bincount would first
        # copy every pixel's label to a 64-bit integer).
        flat = label_image.reshape(-1)
        self.n_sources = int(np.count_nonzero(np.bincount(flat[flat != 0])))

    def __repr__(self):
        return (
            f"Segmentation(n_sources={self.n_sources}, n_clusters={self.cluster_ids.size}, "
            f"shape={self.label_image.shape}, n_samples={self.points.shape[0]})"
        )

    def catalog(self, *, wcs=None):
        """Measurements of every source: position, flux per band, shape, hierarchy.

        Parameters
        ----------
        wcs : astropy.wcs.WCS, astropy.io.fits.Header or None, default=None
            World coordinate system of the image, for ``ra`` and ``dec``
            columns (e.g. ``read_fits(...).wcs``).

        Returns
        -------
        catalog : SourceCatalog
            One row per non-zero label of ``label_image``.
        """
        return SourceCatalog(self, wcs=wcs)
