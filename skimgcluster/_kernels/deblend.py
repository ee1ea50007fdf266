"""Kernels of the deblender: its h-maxima (a grey reconstruction by dilation), boxes and colours.

Served by :func:`.._deblend.split_segments` (through ``_deblend._h_maxima``),
``_deblend._group_boxes`` and ``_deblend._colour_candidates``.
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def group_bounds(group, rows, cols, n_groups, height, width):
    """Lowest and highest row and column of the pixels of each group, in one pass.

    ``group``, ``rows`` and ``cols`` (intp) give each pixel's group (``0`` to
    ``n_groups - 1``) and place. Returns ``top``, ``left``, ``bottom`` and
    ``right``; a group without a pixel keeps ``height``, ``width``, -1, -1.
    """
    top = np.full(n_groups, height, np.intp)
    left = np.full(n_groups, width, np.intp)
    bottom = np.full(n_groups, -1, np.intp)
    right = np.full(n_groups, -1, np.intp)
    for i in range(group.size):
        g = group[i]
        r = rows[i]
        c = cols[i]
        if r < top[g]:
            top[g] = r
        if r > bottom[g]:
            bottom[g] = r
        if c < left[g]:
            left[g] = c
        if c > right[g]:
            right[g] = c
    return top, left, bottom, right


@njit(cache=True, nogil=True)
def h_maxima(image, h, resolution, lowest, highest, seed, queue, queued, out):
    """``skimage.morphology.h_maxima(image, h) > 0`` of a float image, into ``out``.

    skimage's steps: the image lowered by ``h`` and by ``resolution * |image|``
    (twice the float resolution of the dtype), reconstructed by dilation
    under the image with the 3 x 3 footprint (8-connectivity), and the
    pixels at least ``h`` above their reconstruction; ``h`` and
    ``resolution`` of the image's dtype, so that every operation is
    NumPy's on that dtype. The reconstruction is Vincent's hybrid algorithm
    [1]_: a raster scan and an anti-raster scan, then a breadth-first
    propagation from the pixels that can still raise a neighbour. It is the
    largest image under the mask reached from the seed by geodesic
    dilations, whatever the algorithm, and only takes maxima and minima of
    the values: skimage's result to the bit, without its sort of every
    pixel. ``image`` must be finite and its range at least ``h`` (skimage
    returns no maxima otherwise), ``lowest`` and ``highest`` its least and
    greatest values.

    The reconstruction is at least ``c = min(s, lowest)`` everywhere, ``s``
    the seed of the highest pixel: a path from that pixel to any other never
    falls below ``lowest``. And it takes maxima: that of the seed raised to
    ``c`` everywhere is the same. Raised so, the pixels at the image's
    lowest value (the background of a field's segments, most of a large
    image) are at their mask from the start, and the scans pass over them.

    ``seed`` is scratch space of the image's
    shape and dtype, ``queue`` of ``image.size`` integers able to hold
    ``image.size - 1``, ``queued`` of the image's shape, all False; ``out``
    is an array of bool of the image's shape.

    References
    ----------
    .. [1] L. Vincent, "Morphological grayscale reconstruction in image
       analysis: applications and efficient algorithms", IEEE Transactions
       on Image Processing 2(2), 176-201 (1993).
    """
    mask = image
    h_rows, w = image.shape
    n = image.size
    floor = min(highest - h - resolution * abs(highest), lowest)
    # The seed, raised along the raster scan. A pixel at its mask cannot
    # rise: the scans skip its neighbours.
    for i in range(h_rows):
        for j in range(w):
            m = mask[i, j]
            v = max(m - h - resolution * abs(m), floor)
            if v < m:
                if i > 0:
                    if j > 0:
                        v = max(v, seed[i - 1, j - 1])
                    v = max(v, seed[i - 1, j])
                    if j < w - 1:
                        v = max(v, seed[i - 1, j + 1])
                if j > 0:
                    v = max(v, seed[i, j - 1])
                v = min(v, m)
            seed[i, j] = v
    head = 0
    tail = 0
    for i in range(h_rows - 1, -1, -1):
        down = i < h_rows - 1
        for j in range(w - 1, -1, -1):
            m = mask[i, j]
            v = seed[i, j]
            left = j > 0
            right = j < w - 1
            if v < m:
                if down:
                    if left:
                        v = max(v, seed[i + 1, j - 1])
                    v = max(v, seed[i + 1, j])
                    if right:
                        v = max(v, seed[i + 1, j + 1])
                if right:
                    v = max(v, seed[i, j + 1])
                v = min(v, m)
                seed[i, j] = v
            # A later neighbour this pixel can still raise starts the flood
            # (none is below the floor).
            if v <= floor:
                continue
            rise = False
            if right:
                u = seed[i, j + 1]
                rise = u < v and u < mask[i, j + 1]
            if down:
                if left:
                    u = seed[i + 1, j - 1]
                    rise |= u < v and u < mask[i + 1, j - 1]
                u = seed[i + 1, j]
                rise |= u < v and u < mask[i + 1, j]
                if right:
                    u = seed[i + 1, j + 1]
                    rise |= u < v and u < mask[i + 1, j + 1]
            if rise:
                queue[tail] = i * w + j
                queued[i, j] = True
                tail += 1
    count = tail
    if tail == n:
        tail = 0
    while count > 0:
        p = queue[head]
        head = head + 1 if head + 1 < n else 0
        count -= 1
        i = p // w
        j = p - i * w
        queued[i, j] = False
        v = seed[i, j]
        for ii in range(max(i - 1, 0), min(i + 2, h_rows)):
            for jj in range(max(j - 1, 0), min(j + 2, w)):
                u = seed[ii, jj]
                m = mask[ii, jj]
                if u < v and u != m:
                    seed[ii, jj] = min(v, m)
                    # Already queued, it spreads its new value when dequeued.
                    if not queued[ii, jj]:
                        queued[ii, jj] = True
                        queue[tail] = ii * w + jj
                        tail = tail + 1 if tail + 1 < n else 0
                        count += 1
    for i in range(h_rows):
        for j in range(w):
            out[i, j] = image[i, j] - seed[i, j] >= h
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def colour_scatter(pixels, group, bands, total, snr, n_groups):
    """The weighted colour scatter of each group's pixels, in two passes.

    For pixel ``p = pixels[i]`` of group ``group[i]``: its band fractions
    ``bands[p] / total[p]`` weigh ``snr[p] ** 2``. Returns each group's
    summed weight (n,), weighted mean fractions (n, C) and the weighted sums
    of the products of the fractions' deviations from that mean (n, C, C):
    every sum taken in the order of ``pixels``, as ``np.bincount`` takes it,
    so that the values are those of the NumPy expressions to the bit.
    """
    n_bands = bands.shape[1]
    w_sum = np.zeros(n_groups)
    centre = np.zeros((n_groups, n_bands))
    for i in range(pixels.size):
        p = pixels[i]
        k = group[i]
        w = snr[p] * snr[p]
        w_sum[k] += w
        for c in range(n_bands):
            centre[k, c] += bands[p, c] / total[p] * w
    for k in range(n_groups):
        for c in range(n_bands):
            centre[k, c] /= w_sum[k]
    cov = np.zeros((n_groups, n_bands, n_bands))
    dev = np.empty(n_bands)
    for i in range(pixels.size):
        p = pixels[i]
        k = group[i]
        w = snr[p] * snr[p]
        for c in range(n_bands):
            dev[c] = bands[p, c] / total[p] - centre[k, c]
        for a in range(n_bands):
            for b in range(a, n_bands):
                cov[k, a, b] += dev[a] * w * dev[b]
    for k in range(n_groups):
        for a in range(n_bands):
            for b in range(a):
                cov[k, a, b] = cov[k, b, a]
    return w_sum, centre, cov
