"""Kernel of the flood that grows labels of points into footprint pixels.

Served by :func:`~skimgcluster.labels_to_image` (:mod:`.._labels`).
"""

import numpy as np
from numba import njit


@njit(cache=True)
def flood(out, mask, queue):
    """Grow labelled seed pixels through ``mask`` in breadth-first order, in place.

    Seeds outside ``mask`` are cleared first. Then every pixel of ``mask``
    connected (4-connectivity) to a seed takes the label of the seed nearest
    along paths inside the mask, ties going to the seed reached first in
    raster order: the result of a watershed on a flat surface
    (``skimage.segmentation.watershed(0, seeds, mask=mask)``), in time
    proportional to the number of seed and mask pixels. ``queue`` is scratch
    space of at least ``out.size`` integers able to hold ``out.size - 1``.
    """
    h, w = out.shape
    head = 0
    tail = 0
    for i in range(h):
        for j in range(w):
            if out[i, j] != 0:
                if mask[i, j]:
                    queue[tail] = i * w + j
                    tail += 1
                else:
                    out[i, j] = 0
    while head < tail:
        p = np.int64(queue[head])
        head += 1
        i = p // w
        j = p - i * w
        lab = out[i, j]
        if i > 0 and out[i - 1, j] == 0 and mask[i - 1, j]:
            out[i - 1, j] = lab
            queue[tail] = p - w
            tail += 1
        if i < h - 1 and out[i + 1, j] == 0 and mask[i + 1, j]:
            out[i + 1, j] = lab
            queue[tail] = p + w
            tail += 1
        if j > 0 and out[i, j - 1] == 0 and mask[i, j - 1]:
            out[i, j - 1] = lab
            queue[tail] = p - 1
            tail += 1
        if j < w - 1 and out[i, j + 1] == 0 and mask[i, j + 1]:
            out[i, j + 1] = lab
            queue[tail] = p + 1
            tail += 1
