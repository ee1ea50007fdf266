"""The hierarchy of AstroLink's clusters, read from their ids.

A leaf module (NumPy only): the clusterer, the masks of clusters and the
plots of the hierarchy all read depths from here.
"""

import numpy as np

__all__ = []


def cluster_depths(cluster_ids):
    """Depth of every cluster in the hierarchy from its AstroLink id.

    An id names the path from the root (``'1'``): ``'1-2'`` is a top-level
    cluster (depth 1), ``'1-2-1'`` its child (depth 2).

    Parameters
    ----------
    cluster_ids : array-like of str
        AstroLink ids, e.g. ``cluster_ids_``.

    Returns
    -------
    depth : ndarray of intp
        The number of ``'-'`` in every id.
    """
    return np.char.count(np.asarray(cluster_ids, dtype=str), "-").astype(np.intp)
