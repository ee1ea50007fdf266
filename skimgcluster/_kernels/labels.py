"""Kernel of the flood that grows labels of points into footprint pixels.

Served by :func:`~skimgcluster.labels_to_image` (:mod:`.._labels`).
"""

import numpy as np
from numba import njit


@njit(cache=True)
def flood(out, mask, queue):
    """Grow labelled seed pixels through ``mask`` in breadth-first order, in place.

    Seeds outside ``mask`` are cleared first. Then every pixel of ``mask``
    connected (4-connectivity) to a seed takes the label of a seed nearest
    to it along paths inside the mask (in steps between 4-neighbours), in
    time proportional to the number of seed and mask pixels. A breadth-first
    search from all seeds at once: seeds are dequeued in raster order, every
    pixel reaches its free neighbours above, below, left and right in that
    order, and a pixel equally near several seeds takes the label of the
    neighbour that was dequeued first. That is
    ``skimage.segmentation.watershed(0, seeds, mask=mask)`` but for ties,
    which the watershed breaks otherwise: with a 2 x 2 mask and seeds
    ``[[2, 3], [1, 0]]`` the last pixel takes 3 here (its upper neighbour,
    dequeued before its left one) and 1 in the watershed. ``queue`` is
    scratch space of at least ``out.size`` integers able to hold
    ``out.size - 1``.
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
