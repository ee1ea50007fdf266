"""Seeded synthetic images with known truth.

Fields of Sersic-profile sources blurred by a Gaussian PSF on a sky with noise,
in several bands with a distinct colour per source, returned with the true
label image and a table of the sources. They serve the tests, the tuning
examples and the quality benchmarks.
"""

from numbers import Integral

import numpy as np
from scipy import ndimage
from scipy.special import gammaincinv
from sklearn.utils import check_random_state

from ._validation import Interval, check_params

__all__ = ["make_field", "make_blended_pairs", "SOURCE_COLUMNS"]

#: Columns of the source table returned by the generators.
SOURCE_COLUMNS = (
    "label",  # value of the source in the true label image (0 if it covers no pixel)
    "x",  # centre, column coordinate in pixels
    "y",  # centre, row coordinate in pixels
    "flux",  # total flux summed over bands
    "snr",  # detection signal-to-noise (see make_field)
    "r_eff",  # half-light radius in pixels, before the PSF
    "sersic_n",  # Sersic index
    "axis_ratio",  # b / a
    "theta",  # position angle in radians, counter-clockwise from +x
    "pair",  # index of the blended pair, -1 for a single source
)


def _sersic_stamp(shape, x0, y0, r_eff, n, q, theta, oversample):
    """Unit-flux Sersic profile on a pixel grid (integrated by sub-sampling)."""
    h, w = shape
    b = gammaincinv(2 * n, 0.5)
    half = int(np.ceil(min(max(8 * r_eff, 6), max(h, w))))
    r0, c0 = int(round(y0)), int(round(x0))
    rows = slice(max(r0 - half, 0), min(r0 + half + 1, h))
    cols = slice(max(c0 - half, 0), min(c0 + half + 1, w))
    sub = (np.arange(oversample) + 0.5) / oversample - 0.5
    yy = np.arange(rows.start, rows.stop)[:, None, None, None] + sub[None, :, None, None]
    xx = np.arange(cols.start, cols.stop)[None, None, :, None] + sub[None, None, None, :]
    dx, dy = xx - x0, yy - y0
    c, s = np.cos(theta), np.sin(theta)
    major = dx * c + dy * s
    minor = -dx * s + dy * c
    r = np.sqrt(major**2 + (minor / q) ** 2)
    profile = np.exp(-b * ((r / r_eff) ** (1.0 / n) - 1.0)).mean(axis=(1, 3))
    return rows, cols, profile


def _check_shape(shape):
    if len(shape) != 2 or not all(isinstance(s, Integral) and s >= 16 for s in shape):
        raise ValueError(f"shape must be (M, N) with M, N >= 16; got {shape!r}.")
    return tuple(int(s) for s in shape)


def _render(shape, sources, colours, psf_sigma, noise, sky, n_bands, truth_threshold, rng):
    """Image and truth for a list of source parameter dicts.

    Each source is rendered and blurred in a stamp padded by the PSF kernel's
    radius, so the cost grows with the sources' areas, not the image's.
    """
    h, w = shape
    pad = int(4.0 * psf_sigma + 0.5) if psf_sigma > 0 else 0  # gaussian_filter's radius
    _check_render_memory(shape, n_bands, sources, pad)
    # Noise of the band-mean image, the luminosity skimgcluster detects on.
    noise_mean = noise / np.sqrt(n_bands)
    image = np.zeros((h, w, n_bands))
    total = np.zeros(shape)
    best = np.zeros(shape)
    owner = np.zeros(shape, dtype=np.int32)
    for k, src in enumerate(sources):
        oversample = 5 if src["r_eff"] < 3 else 3
        rows, cols, prof = _sersic_stamp(
            shape, src["x"], src["y"], src["r_eff"], src["sersic_n"],
            src["axis_ratio"], src["theta"], oversample,
        )  # fmt: skip
        prof_sum = prof.sum()
        # Pad the stamp by the PSF kernel's radius (within the image).
        prows = slice(max(rows.start - pad, 0), min(rows.stop + pad, h))
        pcols = slice(max(cols.start - pad, 0), min(cols.stop + pad, w))
        unit = np.zeros((prows.stop - prows.start, pcols.stop - pcols.start))
        dr, dc = rows.start - prows.start, cols.start - pcols.start
        unit[dr : dr + prof.shape[0], dc : dc + prof.shape[1]] = (
            prof / prof_sum if prof_sum > 0 else 0.0
        )
        rows, cols = prows, pcols
        if psf_sigma > 0:
            unit = ndimage.gaussian_filter(unit, psf_sigma, mode="constant")
        # Scale the flux so that the source reaches its S/N inside its own
        # footprint: S/N = flux / (noise_mean * sqrt(n_pixels)).
        area = max(int(np.count_nonzero(unit > 0.05 * unit.max())), 1)
        src["flux"] = float(src["snr"] * noise_mean * np.sqrt(area))
        model = src["flux"] * unit
        image[rows, cols, :] += model[:, :, None] * (colours[k] * n_bands)
        total[rows, cols] += model
        better = model > best[rows, cols]
        best[rows, cols] = np.where(better, model, best[rows, cols])
        owner[rows, cols] = np.where(better, k + 1, owner[rows, cols])
    for band in range(n_bands):
        image[:, :, band] += sky[band] + rng.normal(0.0, noise, (h, w))
    truth = np.where(total >= truth_threshold * noise_mean, owner, 0).astype(np.int32)
    present = np.zeros(len(sources) + 1, dtype=bool)
    present[np.unique(truth)] = True
    for k, src in enumerate(sources):
        src["label"] = k + 1 if present[k + 1] else 0
    return image.astype(np.float32), truth


# Bytes per pixel of _render: the float64 bands, total, best and noise, the
# int32 owner, the float32 result and truth, and the temporaries of np.where.
def _render_bytes_per_pixel(n_bands):
    return 8 * n_bands + 4 * n_bands + 8 * 3 + 4 + 4 + 8 + 8


def _check_render_memory(shape, n_bands, sources, pad):
    """Refuse a field whose arrays would not fit in memory, before allocating them.

    The largest source stamp counts too: its sub-sampled grids (up to 5 x 5
    samples per pixel, a few float64 arrays of them) grow with ``r_eff``.
    """
    from ._validation import check_memory

    h, w = shape
    n_bytes = float(_render_bytes_per_pixel(n_bands)) * h * w
    if sources:
        r_max = max(src["r_eff"] for src in sources)
        half = int(np.ceil(min(max(8 * r_max, 6), max(h, w))))
        side = min(2 * (half + pad) + 1, max(h, w))
        n_bytes += float(side) ** 2 * 25 * 8 * 8
    check_memory(
        n_bytes,
        what=f"a synthetic field of shape {shape} with n_bands={n_bands}",
        advice="Ask for a smaller shape (or fewer bands, or smaller sources).",
    )


def _table(sources):
    return {col: np.array([s[col] for s in sources]) for col in SOURCE_COLUMNS}


def _draw_source(rng, x, y, snr_range, size_range):
    lo, hi = np.log10(snr_range[0]), np.log10(snr_range[1])
    slo, shi = np.log10(size_range[0]), np.log10(size_range[1])
    return {
        "x": float(x),
        "y": float(y),
        "snr": float(10 ** rng.uniform(lo, hi)),
        "r_eff": float(10 ** rng.uniform(slo, shi)),
        "sersic_n": float(rng.uniform(0.5, 4.0)),
        "axis_ratio": float(rng.uniform(0.3, 1.0)),
        "theta": float(rng.uniform(0, np.pi)),
        "pair": -1,
    }


def _colour(rng, n_bands, away_from=None, min_distance=0.25):
    """Fractions of the flux in each band (sum to 1), optionally far from another."""
    for _ in range(100):
        c = rng.dirichlet(np.full(n_bands, 1.5))
        if away_from is None or np.abs(c - away_from).sum() >= min_distance:
            return c
    return c


def make_field(
    shape=(256, 256),
    n_sources=30,
    *,
    n_bands=3,
    snr_range=(5.0, 500.0),
    size_range=(0.8, 8.0),
    psf_fwhm=2.5,
    noise=1.0,
    sky=100.0,
    blend_fraction=0.2,
    truth_threshold=1.0,
    random_state=None,
):
    """A synthetic multi-band field of sources with known truth.

    Sources have Sersic profiles (index 0.5-4, axis ratio 0.3-1, random
    orientation), half-light radii drawn log-uniformly in ``size_range``,
    detection signal-to-noise drawn log-uniformly in ``snr_range`` (from
    barely detectable to bright) and a random colour: the fraction of the
    flux in each band, drawn from a Dirichlet distribution. A fraction
    ``blend_fraction`` of them come as close pairs of different colours,
    separated by 1-2.5 times the sum of their radii (plus the PSF).
    Everything is blurred by a Gaussian PSF and lies on a sky with Gaussian
    noise.

    Parameters
    ----------
    shape : tuple of int, default=(256, 256)
        ``(M, N)`` of the image.
    n_sources : int, default=30
        Number of sources (pairs count as two).
    n_bands : int, default=3
        Number of bands.
    snr_range : (float, float), default=(5.0, 500.0)
        Range of the detection S/N: the flux of the band-mean image inside the
        source's truth footprint over the noise of that sum.
    size_range : (float, float), default=(0.8, 8.0)
        Range of half-light radii in pixels, before the PSF.
    psf_fwhm : float, default=2.5
        Full width at half maximum of the Gaussian PSF, in pixels.
    noise : float, default=1.0
        Standard deviation of the noise in each band.
    sky : float or sequence of float, default=100.0
        Sky level of each band.
    blend_fraction : float, default=0.2
        Fraction of the sources placed in close pairs of different colours.
    truth_threshold : float, default=1.0
        A pixel belongs to the truth when the noiseless band-mean model there
        is at least this many noise standard deviations of the band-mean
        image; it takes the source contributing most.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    image : (M, N, n_bands) ndarray of float32
        The field.
    truth : (M, N) ndarray of int32
        True label image: 0 for sky, ``k + 1`` for source ``k``.
    sources : dict of ndarray
        The source table, one array per column of :data:`SOURCE_COLUMNS`.

    Examples
    --------
    >>> from skimgcluster.datasets import make_field
    >>> image, truth, sources = make_field((64, 64), 5, random_state=0)
    >>> image.shape, truth.shape, len(sources["x"])
    ((64, 64, 3), (64, 64), 5)
    """
    shape = _check_shape(shape)
    rng = check_random_state(random_state)
    check_params(
        {
            "n_sources": [Interval(Integral, 0, None, closed="left")],
            "n_bands": [Interval(Integral, 1, None, closed="left")],
        },
        {"n_sources": n_sources, "n_bands": n_bands},
        "make_field",
    )
    sky = np.broadcast_to(np.asarray(sky, dtype=float), (n_bands,))
    psf_sigma = psf_fwhm / (2 * np.sqrt(2 * np.log(2)))
    h, w = shape
    margin = 6
    n_pairs = int(round(blend_fraction * n_sources / 2))
    sources, colours = [], []
    for p in range(n_pairs):
        a = _draw_source(rng, *rng.uniform(margin, (w - margin, h - margin)), snr_range, size_range)
        b = _draw_source(rng, 0, 0, snr_range, size_range)
        sep = rng.uniform(1.0, 2.5) * (a["r_eff"] + b["r_eff"] + psf_sigma)
        angle = rng.uniform(0, 2 * np.pi)
        b["x"] = float(np.clip(a["x"] + sep * np.cos(angle), margin, w - margin))
        b["y"] = float(np.clip(a["y"] + sep * np.sin(angle), margin, h - margin))
        a["pair"] = b["pair"] = p
        ca = _colour(rng, n_bands)
        cb = _colour(rng, n_bands, away_from=ca) if n_bands > 1 else ca
        sources += [a, b]
        colours += [ca, cb]
    while len(sources) < n_sources:
        x, y = rng.uniform(margin, (w - margin, h - margin))
        sources.append(_draw_source(rng, x, y, snr_range, size_range))
        colours.append(_colour(rng, n_bands))
    colours = np.array(colours).reshape(len(sources), n_bands)
    image, truth = _render(
        shape, sources, colours, psf_sigma, noise, sky, n_bands, truth_threshold, rng
    )
    return image, truth, _table(sources)


def make_blended_pairs(
    n_pairs=8,
    *,
    stamp_size=48,
    n_bands=3,
    snr_range=(30.0, 300.0),
    size_range=(1.5, 4.0),
    separation_range=(0.8, 1.6),
    psf_fwhm=2.5,
    noise=1.0,
    sky=100.0,
    truth_threshold=1.0,
    random_state=None,
):
    """Close pairs of sources of different colours, one pair per stamp.

    The pairs are laid out on a grid of ``stamp_size`` pixel cells (a row of
    stamps), each pair separated by ``separation_range`` times the sum of the
    two half-light radii plus the PSF sigma: close enough to overlap above
    the noise. The two colours of a pair differ by at least 0.25 in summed
    absolute band fraction.

    Parameters
    ----------
    n_pairs : int, default=8
        Number of pairs.
    stamp_size : int, default=48
        Side of each pair's cell in pixels.
    n_bands : int, default=3
        Number of bands, as in :func:`make_field`.
    snr_range : (float, float), default=(30.0, 300.0)
        Range of the sources' signal-to-noise ratios, as in :func:`make_field`.
    size_range : (float, float), default=(1.5, 4.0)
        Range of the half-light radii in pixels, as in :func:`make_field`.
    separation_range : (float, float), default=(0.8, 1.6)
        Range of separations in units of ``r_eff_1 + r_eff_2 + psf_sigma``.
    psf_fwhm : float, default=2.5
        FWHM of the Gaussian PSF in pixels, as in :func:`make_field`.
    noise : float, default=1.0
        Standard deviation of the noise, as in :func:`make_field`.
    sky : float or sequence of float, default=100.0
        Sky level, as in :func:`make_field`.
    truth_threshold : float, default=1.0
        Noise standard deviations of the model that make a pixel part of the
        truth, as in :func:`make_field`.
    random_state : int, RandomState instance or None, default=None
        Seed, as in :func:`make_field`.

    Returns
    -------
    image : (stamp_size, n_pairs * stamp_size, n_bands) ndarray of float32
        The stamps side by side.
    truth : (stamp_size, n_pairs * stamp_size) ndarray of int32
        The true label image, 0 = background.
    sources : dict of ndarray
        Source table; ``pair`` says which pair a source belongs to.
    """
    check_params(
        {
            "n_pairs": [Interval(Integral, 1, None, closed="left")],
            "stamp_size": [Interval(Integral, 16, None, closed="left")],
            "n_bands": [Interval(Integral, 1, None, closed="left")],
        },
        {"n_pairs": n_pairs, "stamp_size": stamp_size, "n_bands": n_bands},
        "make_blended_pairs",
    )
    rng = check_random_state(random_state)
    shape = _check_shape((stamp_size, stamp_size * n_pairs))
    sky = np.broadcast_to(np.asarray(sky, dtype=float), (n_bands,))
    psf_sigma = psf_fwhm / (2 * np.sqrt(2 * np.log(2)))
    sources, colours = [], []
    for p in range(n_pairs):
        cx, cy = (p + 0.5) * stamp_size, 0.5 * stamp_size
        a = _draw_source(rng, 0, 0, snr_range, size_range)
        b = _draw_source(rng, 0, 0, snr_range, size_range)
        sep = rng.uniform(*separation_range) * (a["r_eff"] + b["r_eff"] + psf_sigma)
        angle = rng.uniform(0, np.pi)
        dx, dy = 0.5 * sep * np.cos(angle), 0.5 * sep * np.sin(angle)
        a["x"], a["y"] = float(cx - dx), float(cy - dy)
        b["x"], b["y"] = float(cx + dx), float(cy + dy)
        a["pair"] = b["pair"] = p
        ca = _colour(rng, n_bands)
        cb = _colour(rng, n_bands, away_from=ca) if n_bands > 1 else ca
        sources += [a, b]
        colours += [ca, cb]
    colours = np.array(colours).reshape(len(sources), n_bands)
    image, truth = _render(
        shape, sources, colours, psf_sigma, noise, sky, n_bands, truth_threshold, rng
    )
    return image, truth, _table(sources)
