"""Kernel of the grey reconstruction behind the deblender's h-maxima.

Served by :func:`.._deblend.split_segments` (through ``_deblend._h_maxima``).
"""

from numba import njit


@njit(cache=True, nogil=True)
def reconstruct(seed, mask, queue, queued):
    """Grey reconstruction by dilation of ``seed`` under ``mask``, in place in ``seed``.

    ``skimage.morphology.reconstruction(seed, mask, method='dilation')`` with
    its default 3 x 3 footprint (8-connectivity), computed by Vincent's
    hybrid algorithm [1]_: a raster scan and an anti-raster scan, then a
    breadth-first propagation from the pixels that can still raise a
    neighbour. The reconstruction is the largest image under ``mask``
    reached from ``seed`` by geodesic dilations, whatever the algorithm, and
    it only takes maxima and minima of the input values: the result is
    skimage's to the bit, without its sort of every pixel. ``seed`` must be
    at most ``mask`` everywhere, and both without NaN. ``queue`` is scratch
    space of ``seed.size`` integers able to hold ``seed.size - 1``,
    ``queued`` of ``seed.size`` booleans, all False.

    References
    ----------
    .. [1] L. Vincent, "Morphological grayscale reconstruction in image
       analysis: applications and efficient algorithms", IEEE Transactions
       on Image Processing 2(2), 176-201 (1993).
    """
    h, w = seed.shape
    n = seed.size
    # A pixel at its mask cannot rise: the scans skip its neighbours.
    for i in range(h):
        for j in range(w):
            m = mask[i, j]
            v = seed[i, j]
            if v < m:
                if i > 0:
                    if j > 0:
                        v = max(v, seed[i - 1, j - 1])
                    v = max(v, seed[i - 1, j])
                    if j < w - 1:
                        v = max(v, seed[i - 1, j + 1])
                if j > 0:
                    v = max(v, seed[i, j - 1])
                seed[i, j] = min(v, m)
    head = 0
    tail = 0
    for i in range(h - 1, -1, -1):
        for j in range(w - 1, -1, -1):
            m = mask[i, j]
            v = seed[i, j]
            if v < m:
                if i < h - 1:
                    if j > 0:
                        v = max(v, seed[i + 1, j - 1])
                    v = max(v, seed[i + 1, j])
                    if j < w - 1:
                        v = max(v, seed[i + 1, j + 1])
                if j < w - 1:
                    v = max(v, seed[i, j + 1])
                v = min(v, m)
                seed[i, j] = v
            # A later neighbour this pixel can still raise starts the flood.
            rise = False
            if j < w - 1:
                u = seed[i, j + 1]
                rise = u < v and u < mask[i, j + 1]
            if i < h - 1 and not rise:
                for jj in range(max(j - 1, 0), min(j + 2, w)):
                    u = seed[i + 1, jj]
                    if u < v and u < mask[i + 1, jj]:
                        rise = True
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
        for ii in range(max(i - 1, 0), min(i + 2, h)):
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
    return seed
