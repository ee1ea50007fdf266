"""LuminositySampler: image -> luminosity-weighted point cloud."""

import warnings
from numbers import Integral, Real

import numpy as np
from numba import njit
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Hidden, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._astrolink import DegenerateDataWarning
from ._background import (
    _clip_rows_checked,
    _kept_median,
    _Mesh,
    gaussian_kernel,
    grid_band_mean,
    grid_band_sky,
    grid_smooth,
    local_means,
    luminosity,
    smooth_footprint,
    smooth_nan_as_zero,
)
from ._threads import threaded
from ._validation import _MAX_ABS_VALUE, check_image, check_mask, check_memory

__all__ = ["LuminositySampler", "SampledImage", "SparseSamplingWarning"]


class SparseSamplingWarning(UserWarning):
    """Warning that the point cloud is too sparse for reliable detection."""


class SampledImage:
    """What the sampler derived from one image, before drawing samples.

    Full-resolution maps other than ``luminosity`` and ``footprint`` are
    computed from the meshes when first asked for, so that large images do
    not hold them in memory unless they are wanted (e.g. for a figure).

    Attributes
    ----------
    luminosity : (M, N) ndarray of float32
        Background-subtracted luminosity (mean over bands), NaN where masked.
    footprint : (M, N) ndarray of bool
        Pixels above the detection threshold: the pixels that are sampled.
    analysis_footprint : (M, N) ndarray of bool
        Footprint pixels above the analysis threshold: the pixels segments
        can cover (see ``analysis_threshold``).
    candidates : ndarray of shape (n_footprint,)
        Flat indices of the footprint pixels, in increasing order.
    candidate_weights : ndarray of shape (n_footprint,)
        Sampling weight of each footprint pixel.
    background : (M, N) ndarray of float32
        Sky level of the luminosity.
    noise : (M, N) ndarray of float32
        Standard deviation of the sky noise of the luminosity.
    smoothed_luminosity : (M, N) ndarray of float32
        The luminosity smoothed as for the footprint (NaN pixels count as 0).
    smooth_noise : (M, N) ndarray of float32
        Standard deviation of the sky noise of ``smoothed_luminosity``,
        measured on its sky pixels.
    weights : (M, N) ndarray of float64
        Sampling weight of every pixel (0 outside the footprint).
    bands : (M, N, C) ndarray of float32
        Background-subtracted, smoothed bands (the colours are drawn from them).
    """

    def __init__(self, luminosity, footprint, candidates, candidate_weights, *,
                 analysis_footprint, mesh, sky_mesh, noise_mesh, smooth_noise_mesh,
                 band_sky_meshes, data, kernel):  # fmt: skip
        self.luminosity = luminosity
        self.footprint = footprint
        self.analysis_footprint = analysis_footprint
        self.candidates = candidates
        self.candidate_weights = candidate_weights
        self._mesh = mesh
        self._sky_mesh = sky_mesh
        self._noise_mesh = noise_mesh
        self._smooth_noise_mesh = smooth_noise_mesh
        self._band_sky_meshes = band_sky_meshes
        self._data = data
        self._kernel = kernel

    @property
    def background(self):
        return self._mesh.expand(self._sky_mesh)

    @property
    def noise(self):
        return self._mesh.expand(self._noise_mesh)

    @property
    def smoothed_luminosity(self):
        return smooth_nan_as_zero(self.luminosity, self._kernel)

    @property
    def smooth_noise(self):
        return self._mesh.expand(self._smooth_noise_mesh)

    @property
    def weights(self):
        out = np.zeros(self.luminosity.size)
        out[self.candidates] = self.candidate_weights
        return out.reshape(self.luminosity.shape)

    @property
    def bands(self):
        n_bands = self._data.shape[2]
        out = np.empty(self._data.shape, dtype=np.float32)
        for c in range(n_bands):
            band = self._data[:, :, c].astype(np.float32)
            band[np.isnan(self.luminosity)] = np.nan
            out[:, :, c] = smooth_nan_as_zero(band, self._kernel)
            out[:, :, c] -= self._mesh.expand(self._band_sky_meshes[c])
        return out

    def band_values(self, rows, cols):
        """Smoothed, background-subtracted band values at given pixels, (n, C)."""
        mesh = self._mesh
        sky = np.stack([np.asarray(m, dtype=np.float64) for m in self._band_sky_meshes])
        data = self._data.view(np.uint8) if self._data.dtype == np.bool_ else self._data
        return local_means(data, rows, cols, self._kernel, sky, mesh.by, mesh.bx)


class LuminositySampler(TransformerMixin, BaseEstimator):
    """Turn an image into a point cloud sampled in proportion to luminosity.

    Every point is a random position drawn with probability proportional to
    the background-subtracted luminosity of the image, spread continuously
    within and across pixels, with the colour of the image at that place as
    further features. The result is the input of :class:`AstroLinkClusterer`.

    Parameters
    ----------
    n_samples : int or 'auto', default='auto'
        Number of points to draw. ``'auto'`` draws ``samples_per_pixel``
        points per footprint pixel (pixels above the detection threshold),
        at least 1,000 and at most ``max_samples``.
    samples_per_pixel : float, default=4.0
        Mean number of points per footprint pixel when ``n_samples='auto'``.
    max_samples : int, default=5_000_000
        Upper bound on the number of points when ``n_samples='auto'`` (about
        2 GB of working memory in the clusterer). Detection degrades when the
        cap leaves fewer than about 2 points per footprint pixel; a
        :class:`~skimgcluster.SparseSamplingWarning` says so.
    background : 'auto', float or None, default='auto'
        Sky level to subtract. ``'auto'`` estimates the sky and its noise in
        boxes of ``background_box_size`` pixels with sigma clipping, per band;
        a float subtracts that constant from every band (the notebook's fixed
        offset) and estimates only the noise; ``None`` subtracts nothing.
    background_box_size : int, default=64
        Side in pixels of the boxes of the automatic background.
    detection_threshold : float, default=3.5
        Pixels whose smoothed luminosity is below this many noise standard
        deviations above the sky get no samples. The remaining pixels form
        the footprint. The standard deviation is that of the smoothed map, so
        with the default ``smoothing=1`` on white noise the footprint's edge
        lies near 1 standard deviation of the pixel noise.
    analysis_threshold : float or None, default=1.5
        Where segments end: a footprint pixel belongs to a segment only if
        its smoothed luminosity reaches this many standard deviations of the
        *pixel* noise (the convention of SExtractor's ``ANALYSIS_THRESH`` and
        of thresholds in photutils and SEP, which compare a filtered image
        with the noise of the unfiltered one). Sources are still detected,
        and sampled, over the whole footprint; this sets only the isophote at
        which their pixels are cut. ``None`` keeps the whole footprint.
    smoothing : float, default=1.0
        Standard deviation in pixels of the Gaussian filter applied before
        thresholding and for the colours (0 for none). The filter replicates
        the image's edges, so its kernel (4 standard deviations each side) is
        clipped to the image with the clipped tails added to its end taps:
        the same filter, at a cost that does not grow with ``smoothing``.
        Any finite value is accepted.
    stretch : {'linear', 'sqrt', 'asinh'}, default='linear'
        How sampling weight follows luminosity above the threshold:
        ``'linear'`` is proportional (the notebook's rule); ``'sqrt'`` and
        ``'asinh'`` (``arcsinh(signal / noise)``) compress the dynamic range so
        that faint sources receive enough points to be found next to bright
        ones.
    color_scale : float, default=20.0
        Scale of colour space relative to position space: the colour features
        are the fraction of the luminosity in each band multiplied by this
        number, in pixels. 0 gives positions only. Ignored for single-band
        images, which give positions only.
    jitter : {'triangular', 'uniform', 'none'}, default='triangular'
        Sub-pixel placement of points. ``'uniform'`` spreads them uniformly
        within their pixel; ``'triangular'`` adds a triangular offset of up to
        one pixel so the point density is continuous across pixel edges;
        ``'none'`` puts them on pixel centres.
    sampling : {'systematic', 'random'}, default='systematic'
        How pixels are drawn. ``'random'`` draws every point independently
        (the notebook's rule), so the count in a pixel has Poisson-like
        scatter that adds clumps of its own; ``'systematic'`` draws evenly
        spaced quantiles of the luminosity distribution after one random
        offset, so every pixel gets the floor or the ceiling of its expected
        count and the point density follows the image, not the sampling noise.
    random_state : int, RandomState instance or None, default=None
        Seed of the sampling. Pass an int for reproducible points: the same
        int gives the same points at every call of :meth:`transform`.
    colour_scale : float or 'deprecated', default='deprecated'
        The former name of ``color_scale`` (scikit-learn and matplotlib spell
        it ``color``). A float given here is used instead of ``color_scale``,
        with a :class:`FutureWarning`; the name will be removed.

    Attributes
    ----------
    n_bands_in_ : int
        Number of bands of the image seen during :term:`fit`.
    image_shape_ : tuple of int
        ``(M, N)`` of the image seen during :term:`fit`.
    n_features_out_ : int
        Number of columns of the output.

    See Also
    --------
    AstroLinkClusterer : Clusters the points.
    labels_to_image : Maps labels of the points back to pixels.

    Notes
    -----
    Output columns: column 0 is ``x``, the column index of the image (axis 1),
    column 1 is ``y``, the row index (axis 0), both in pixels with pixel
    centres at integers (the convention of scikit-image and photutils), so a
    point of pixel ``image[r, c]`` lies within ``[c - 0.5, c + 0.5)`` for
    uniform jitter. Points stay inside ``[-0.5, N - 0.5) x [-0.5, M - 0.5)``
    (triangular offsets that would leave the image are reflected at its edge).
    Columns 2 onwards, present for images of more than one band when
    ``color_scale > 0``, hold ``color_scale`` times the fraction of the
    smoothed background-subtracted luminosity in each band.

    Images are ``(M, N)`` or ``(M, N, C)`` arrays of any real dtype; NaN
    pixels and the masked pixels of a :class:`numpy.ma.MaskedArray` (or of
    the ``mask`` argument of :meth:`transform`) get no samples. Integer
    images are de-quantised by the jitter of the band values within their
    quantisation step before colours are computed, and their sky level and
    noise are estimated on values dithered within their step (from a fixed
    random stream, so the maps do not depend on ``random_state``): a median
    or MAD of values on a grid is off by up to a step.

    Examples
    --------
    >>> import numpy as np
    >>> from skimgcluster import LuminositySampler
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal(10, 1, (64, 64))
    >>> image[20:30, 20:30] += 50
    >>> points = LuminositySampler(n_samples=500, random_state=0).fit_transform(image)
    >>> points.shape
    (500, 2)
    """

    _parameter_constraints: dict = {
        "n_samples": [Interval(Integral, 0, None, closed="left"), StrOptions({"auto"})],
        "samples_per_pixel": [Interval(Real, 0, None, closed="neither")],
        "max_samples": [Interval(Integral, 1, None, closed="left")],
        # A finite level (NaN or inf would blank the whole image); _analyse
        # also checks that it is within the range of images.
        "background": [StrOptions({"auto"}), Interval(Real, None, None, closed="neither"), None],
        "background_box_size": [Interval(Integral, 4, None, closed="left")],
        "detection_threshold": [Interval(Real, None, None, closed="neither")],
        "analysis_threshold": [Interval(Real, None, None, closed="neither"), None],
        "smoothing": [Interval(Real, 0, None, closed="left")],
        "stretch": [StrOptions({"linear", "sqrt", "asinh"})],
        "color_scale": [Interval(Real, 0, None, closed="left")],
        "colour_scale": [
            Interval(Real, 0, None, closed="left"),
            Hidden(StrOptions({"deprecated"})),
        ],
        "jitter": [StrOptions({"triangular", "uniform", "none"})],
        "sampling": [StrOptions({"systematic", "random"})],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        n_samples="auto",
        *,
        samples_per_pixel=4.0,
        max_samples=5_000_000,
        background="auto",
        background_box_size=64,
        detection_threshold=3.5,
        analysis_threshold=1.5,
        smoothing=1.0,
        stretch="linear",
        color_scale=20.0,
        jitter="triangular",
        sampling="systematic",
        random_state=None,
        colour_scale="deprecated",
    ):
        self.n_samples = n_samples
        self.samples_per_pixel = samples_per_pixel
        self.max_samples = max_samples
        self.background = background
        self.background_box_size = background_box_size
        self.detection_threshold = detection_threshold
        self.analysis_threshold = analysis_threshold
        self.smoothing = smoothing
        self.stretch = stretch
        self.color_scale = color_scale
        self.jitter = jitter
        self.sampling = sampling
        self.random_state = random_state
        self.colour_scale = colour_scale

    def _validate_params(self):
        super()._validate_params()
        if not isinstance(self.colour_scale, str):
            warnings.warn(
                "The parameter colour_scale of LuminositySampler was renamed color_scale; "
                f"pass color_scale={self.colour_scale!r} instead. colour_scale will be "
                "removed in a future release.",
                FutureWarning,
                stacklevel=3,
            )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # X is one image, (M, N) or (M, N, C), and NaN pixels are masked ones.
        tags.input_tags.two_d_array = True
        tags.input_tags.three_d_array = True
        tags.input_tags.allow_nan = True
        return tags

    @property
    def _color_scale(self):
        """``color_scale``, or the deprecated ``colour_scale`` when that is given."""
        return self.color_scale if isinstance(self.colour_scale, str) else self.colour_scale

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, mask=None):
        """Check the image and record its shape and number of bands.

        Parameters
        ----------
        X : (M, N[, C]) array-like
            The image.
        y : None
            Ignored.
        mask : (M, N) ndarray of bool, default=None
            Pixels to exclude (True).

        Returns
        -------
        self : LuminositySampler
            The fitted sampler.
        """
        data, _ = check_image(X)
        check_mask(mask, data.shape[:2])
        self._record(data)
        return self

    def _record(self, data):
        self.image_shape_ = data.shape[:2]
        self.n_bands_in_ = data.shape[2]
        self.n_features_out_ = 2 + self._n_colour(self.n_bands_in_)

    def _n_colour(self, n_bands):
        return n_bands if (n_bands > 1 and self._color_scale > 0) else 0

    def analyse(self, X, mask=None):
        """Background, noise, footprint and sampling weights of an image.

        Parameters
        ----------
        X : (M, N[, C]) array-like
            The image.
        mask : (M, N) ndarray of bool, default=None
            Pixels to exclude (True).

        Returns
        -------
        result : SampledImage
            The maps the samples are drawn from.
        """
        self._validate_params()
        data, quantum = check_image(X)
        mask = check_mask(mask, data.shape[:2])
        return self._analyse(data, quantum, mask)

    def _analyse(self, data, quantum, mask=None):
        h, w, n_bands = data.shape
        if self.background not in ("auto", None) and abs(self.background) > _MAX_ABS_VALUE:
            raise ValueError(
                f"background must satisfy |background| <= {_MAX_ABS_VALUE:.4g}, as image "
                f"values do (a quarter of the float32 range); got background={self.background!r}."
            )
        # Refuse early: before the maps and, for a fixed n_samples, the points.
        n = None if self.n_samples == "auto" else int(self.n_samples)
        self._check_memory(data, n)
        data = _for_kernels(data)
        mesh = _Mesh((h, w), self.background_box_size)
        start, step = mesh.grid()
        geometry = (mesh.ny, mesh.nx, mesh.by, mesh.bx, start, step)
        mask8 = _NO_MASK if mask is None else mask.view(np.uint8)
        # Statistics of the luminosity (band mean) on the boxes' sub-grids,
        # computed there only; the full-resolution map comes in one pass below.
        lum_samples = _band_mean(data, mask8, geometry)
        if quantum:
            # Integer images: the band mean takes values on a grid of
            # quantum / n_bands, and so would its median and MAD; with noise
            # of about one step the MAD of values on a grid can be a whole
            # step short of the noise. So the statistics are taken on values
            # dithered within their step (a fixed stream: the maps do not
            # depend on random_state), and the dither's variance is removed.
            step = quantum / n_bands
            lum_samples += _dither(lum_samples.shape, step)
        med, std, lo, hi = _clip_rows_checked(lum_samples, 3.0, 5)
        if quantum:
            std = np.sqrt(np.maximum(std * std - step * step / 12, 0.0))
        if self.background == "auto":
            sky_mesh = mesh.finish(med, 3)
            # The median of every band over the sky pixels of the luminosity.
            band_sky = grid_band_sky(data, lum_samples, lo, hi, *geometry)
            band_meshes = [mesh.finish(sky_c, 3) for sky_c in band_sky]
        else:
            level = 0.0 if self.background is None else float(self.background)
            sky_mesh = np.full((mesh.ny, mesh.nx), level)
            band_meshes = [sky_mesh] * n_bands
        lum = np.empty((h, w), dtype=np.float32)
        scale = luminosity(data, mask8, *mesh.interpolation(sky_mesh), lum)[1]
        # Noise of the background-subtracted luminosity, with a floor at the
        # quantisation noise of integer data.
        floor = quantum / np.sqrt(12 * n_bands) if quantum else 0.0
        floor = max(floor, 1e-12 * scale, np.finfo(np.float32).tiny)
        noise_mesh = np.maximum(mesh.finish(std, 3), floor)
        if self.smoothing > 0:
            # Clipped to the image, with the tails folded in: the same
            # smoothing (edges are replicated), at a cost that does not grow
            # with the smoothing.
            kernel = gaussian_kernel(self.smoothing, max_radius=max(h, w) - 1)
            # The noise of the smoothed map is measured on its sky pixels, not
            # derived from the pixel noise: real noise is often correlated.
            # The smoothed values there are computed directly; the full
            # smoothed map exists only block by block, for the footprint.
            values = grid_smooth(lum, kernel, *geometry)
            std_s = _kept_median(values, lum_samples, lo, hi, True)[1]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = std_s / mesh.finish(std, 1).ravel()
            ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
            gain = 2 * np.sqrt(np.pi) * self.smoothing  # white noise
            ratio = float(np.median(ratio)) if ratio.size else 1.0 / max(1.0, gain)
            smooth_noise_mesh = np.maximum(ratio * noise_mesh, floor / max(1.0, gain))
        else:
            kernel = np.ones(1)
            smooth_noise_mesh = noise_mesh
        # Clipped to float32's range: a pathological noise ratio (data whose
        # noise is near float32's smallest numbers) must not overflow the
        # float32 map; the footprint is the same as with an infinite threshold.
        f32 = float(np.finfo(np.float32).max)
        threshold = np.clip(self.detection_threshold * smooth_noise_mesh, -f32, f32)
        if self.analysis_threshold is None:
            edge = np.full_like(noise_mesh, -f32)
        else:
            edge = np.clip(self.analysis_threshold * noise_mesh, -f32, f32)
        footprint = np.empty((h, w), dtype=bool)
        analysis = np.empty((h, w), dtype=bool)
        candidates, signal = smooth_footprint(
            lum, kernel, *mesh.interpolation(threshold), footprint,
            mesh.interpolation(edge)[0], analysis,
        )  # fmt: skip
        if self.stretch == "linear":
            weights = signal
        elif self.stretch == "sqrt":
            weights = np.sqrt(signal)
        else:
            rows, cols = np.divmod(candidates, w)
            weights = np.arcsinh(signal / mesh.at([noise_mesh], rows, cols)[0])
        return SampledImage(
            lum, footprint, candidates, weights, analysis_footprint=analysis,
            mesh=mesh, sky_mesh=sky_mesh, noise_mesh=noise_mesh,
            smooth_noise_mesh=smooth_noise_mesh,
            band_sky_meshes=band_meshes, data=data, kernel=kernel,
        )  # fmt: skip

    def transform(self, X, mask=None):
        """Draw the point cloud from an image.

        Parameters
        ----------
        X : (M, N[, C]) array-like
            The image, with the number of bands seen in :meth:`fit`.
        mask : (M, N) ndarray of bool, default=None
            Pixels to exclude (True).

        Returns
        -------
        points : ndarray of shape (n_samples, 2 + n_colour_features)
            ``x`` (column), ``y`` (row) and the scaled colour fractions.

        Raises
        ------
        InsufficientMemoryError
            If the maps of the image and the points would need more memory
            than is available (checked before they are computed).
        """
        check_is_fitted(self)
        data, quantum = check_image(X)
        if data.shape[2] != self.n_bands_in_:
            raise ValueError(
                f"X has {data.shape[2]} band(s), but LuminositySampler was fitted "
                f"with {self.n_bands_in_}."
            )
        mask = check_mask(mask, data.shape[:2])
        maps = self._analyse(data, quantum, mask)
        return self._draw(maps, data, quantum)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None, mask=None):
        """Fit to the image and draw its point cloud; see :meth:`transform`.

        The same as ``fit(X, mask=mask).transform(X, mask=mask)``, with the
        image checked once.

        Parameters
        ----------
        X : (M, N[, C]) array-like
            The image to fit to and sample.
        y : None
            Ignored.
        mask : (M, N) ndarray of bool, default=None
            Pixels that get no points (True).

        Returns
        -------
        points : ndarray of shape (n_samples, 2 + n_colour_features)
            The points of :meth:`transform`.
        """
        data, quantum = check_image(X)
        mask = check_mask(mask, data.shape[:2])
        self._record(data)
        maps = self._analyse(data, quantum, mask)
        return self._draw(maps, data, quantum)

    def _check_memory(self, data, n, *, maps=True):
        """Refuse an image and ``n`` points that would not fit in memory."""
        h, w, n_bands = data.shape
        n_bytes = 0
        if maps:
            n_bytes += _MAP_BYTES_PER_PIXEL * h * w
            if data.dtype != np.bool_ and not _kernel_ready(data):
                n_bytes += 8 * data.size  # the converted copy of the image
        if n is not None:
            n_bytes += 8 * n * (_DRAW_ARRAYS + self._n_colour(n_bands) + 2 * n_bands)
        check_memory(
            n_bytes,
            what=(
                f"LuminositySampler on an image of shape {data.shape}"
                + ("" if n is None else f" with n_samples={n}")
            ),
            advice=(
                "Lower n_samples (or max_samples with n_samples='auto'), or "
                "process the image in tiles."
            ),
        )

    def n_samples_for(self, maps):
        """Number of points drawn for the maps of :meth:`analyse`.

        Parameters
        ----------
        maps : SampledImage
            The maps of an image, from :meth:`analyse`.

        Returns
        -------
        n_samples : int
            ``n_samples``, or for ``'auto'`` ``samples_per_pixel`` points per
            footprint pixel, at least 1,000 and at most ``max_samples`` (0
            for an empty footprint).
        """
        if self.n_samples != "auto":
            return int(self.n_samples)
        n_fg = int(np.count_nonzero(maps.candidate_weights > 0))
        if n_fg == 0:
            return 0
        return int(min(self.max_samples, max(1000, round(self.samples_per_pixel * n_fg))))

    def _draw(self, maps, data, quantum):
        rng = check_random_state(self.random_state)
        h, w, n_bands = data.shape
        n_colour = self._n_colour(n_bands)
        n = self.n_samples_for(maps)
        n_fg = int(np.count_nonzero(maps.candidate_weights > 0))
        self._check_memory(data, n, maps=False)
        if self.n_samples == "auto" and n_fg and n < 2 * n_fg:
            warnings.warn(
                f"max_samples={self.max_samples} leaves {n / n_fg:.2f} points per footprint "
                f"pixel ({n_fg} pixels); below about 2, faint sources are lost. Raise "
                "max_samples, or detection_threshold to shrink the footprint.",
                SparseSamplingWarning,
                stacklevel=3,
            )
        positive = maps.candidate_weights > 0
        candidates = maps.candidates[positive]
        if n == 0 or candidates.size == 0:
            if candidates.size == 0:
                warnings.warn(
                    "No pixel of the image lies above the detection threshold "
                    f"(detection_threshold={self.detection_threshold}); no points drawn.",
                    DegenerateDataWarning,
                    stacklevel=3,
                )
            return np.empty((0, 2 + n_colour))
        cdf = np.cumsum(maps.candidate_weights[positive])
        if self.sampling == "systematic":
            # One uniform offset, then evenly spaced quantiles: every pixel gets
            # the floor or the ceiling of its expected count. The quantiles
            # increase, so one walk along the cdf finds their pixels.
            index = _systematic_index(cdf, n, rng.uniform())
        else:
            u = rng.uniform(0.0, cdf[-1], size=n)
            index = np.minimum(np.searchsorted(cdf, u, side="right"), candidates.size - 1)
        pick = candidates[index]
        del index, cdf
        points = np.empty((n, 2 + n_colour))
        # Jitter: the draws of rng.uniform(-0.5, 0.5, n), for x then y (two
        # each for triangular), taken chunk by chunk from the same stream.
        n_draws = {"none": 0, "uniform": 2, "triangular": 4}[self.jitter]
        top_x, top_y = np.nextafter(w - 0.5, -0.5), np.nextafter(h - 0.5, -0.5)
        for stage in range(max(n_draws, 1)):
            for start in range(0, n, _DRAW_CHUNK):
                stop = min(start + _DRAW_CHUNK, n)
                u = rng.random_sample(stop - start) if n_draws else _NO_DRAWS
                args = (pick, w, h, u, start, n_draws, stage, top_x, top_y, points)
                threaded(_place, stop - start, *args, min_per_thread=4096)
        if n_colour:
            # Points drawn in increasing pixel order share their pixel's band
            # values: they are computed once per run of equal pixels.
            starts, run = _runs(pick)
            row, col = np.divmod(pick[starts], w)
            values = maps.band_values(row, col)
            noise = rng.random_sample((n, n_bands)) if quantum else np.empty((0, n_bands))
            args = (values, run, noise, float(quantum), float(self._color_scale), points)
            threaded(_colour_fractions, run.size, *args, min_per_thread=4096)
        return points


@njit(cache=True)
def _systematic_index(cdf, n, offset):  # pragma: no cover - compiled
    """``min(searchsorted(cdf, (arange(n) + offset) * (cdf[-1] / n), 'right'), m - 1)``."""
    m = cdf.size
    step = cdf[m - 1] / n
    out = np.empty(n, np.int64)
    j = 0
    for k in range(n):
        u = (k + offset) * step
        while j < m and cdf[j] <= u:
            j += 1
        out[k] = min(j, m - 1)
    return out


# Uniform draws per call of the random generator while placing points.
_DRAW_CHUNK = 2**17
_NO_DRAWS = np.empty(0)


@njit(cache=True, nogil=True)
def _place(q0, q1, pick, w, h, u, start, n_draws, stage, top_x, top_y, points):  # pragma: no cover
    """One stage of columns 0 (x) and 1 (y) of ``points[start + q0:start + q1]``.

    ``pick`` are flat pixel indices; ``u`` are uniform [0, 1) draws for
    these points. With ``n_draws`` 0 the points go on pixel centres; with 2
    (uniform jitter) stage 0 gives x and stage 1 y; with 4 (triangular),
    stages 0 and 2 store the first offset of x and y, stages 1 and 3 add
    the second and reflect at the image's edge (see :func:`_reflect`):
    ``x = col + ((u0 - 0.5) + (u1 - 0.5))`` in that order.
    """
    for q in range(q0, q1):
        p = start + q
        if n_draws == 0:
            row = pick[p] // w
            points[p, 0] = np.float64(pick[p] - row * w)
            points[p, 1] = np.float64(row)
        elif n_draws == 2:
            row = pick[p] // w
            if stage == 0:
                points[p, 0] = np.float64(pick[p] - row * w) + (-0.5 + u[q])
            else:
                points[p, 1] = np.float64(row) + (-0.5 + u[q])
        elif stage == 0 or stage == 2:
            points[p, stage // 2] = -0.5 + u[q]
        else:
            row = pick[p] // w
            if stage == 1:
                x = np.float64(pick[p] - row * w) + (points[p, 0] + (-0.5 + u[q]))
                points[p, 0] = _reflect_one(x, w - 0.5, top_x)
            else:
                y = np.float64(row) + (points[p, 1] + (-0.5 + u[q]))
                points[p, 1] = _reflect_one(y, h - 0.5, top_y)


@njit(cache=True)
def _reflect_one(v, hi, top):  # pragma: no cover - compiled
    """:func:`_reflect` of one coordinate; ``top`` is ``nextafter(hi, -0.5)``."""
    lo = -0.5
    if v < lo:
        v = 2 * lo - v
    if v >= hi:
        v = 2 * hi - v
    return min(max(v, lo), top)


@njit(cache=True)
def _runs(pick):  # pragma: no cover - compiled
    """Starts of the runs of equal values of ``pick``, and every entry's run."""
    n = pick.size
    run = np.empty(n, np.int64)
    starts = np.empty(n, np.int64)
    k = -1
    for p in range(n):
        if p == 0 or pick[p] != pick[p - 1]:
            k += 1
            starts[k] = p
        run[p] = k
    return starts[: k + 1], run


@njit(cache=True, nogil=True)
def _colour_fractions(p0, p1, values, run, noise, quantum, scale, points):  # pragma: no cover
    """Columns 2 onwards of ``points[p0:p1]``: ``scale`` times each band's share.

    ``values[run[p]]`` are point ``p``'s band values; with ``quantum``, each
    is de-quantised by ``quantum * (noise - 0.5)`` (``noise`` uniform in
    [0, 1), one per point and band). Negative values count as 0; a point
    whose values are all 0 gets equal shares.
    """
    c = values.shape[1]
    for p in range(p0, p1):
        total = 0.0
        for q in range(c):
            v = values[run[p], q]
            if quantum:
                v = v + quantum * (-0.5 + noise[p, q])
            v = max(v, 0.0)
            points[p, 2 + q] = v
            total += v
        for q in range(c):
            if total > 0:
                points[p, 2 + q] = scale * (points[p, 2 + q] / total)
            else:
                points[p, 2 + q] = scale * (1.0 / c)


# Rough peak working memory of the sampler: during analysis about seven
# float32 maps of the image (luminosity, smoothed luminosity, threshold and
# interpolation temporaries), three boolean maps (invalid pixels, footprint,
# analysis footprint) and, when every pixel is in the footprint, a flat index and a float64
# weight for every pixel (measured: 41 to 44 bytes per pixel on images that
# are all footprint); while drawing, float64 arrays per point: the two
# coordinates and about eight more for the quantiles, picked pixels, rows,
# columns and jitter, one per colour feature and two per band for the band
# values.
_MAP_BYTES_PER_PIXEL = 7 * 4 + 3 + 8 + 8
_DRAW_ARRAYS = 10


def _kernel_ready(data):
    """True if the numba kernels take the image's dtype as it is."""
    dtype = data.dtype
    return dtype.isnative and (dtype.kind in "iu" or dtype in (np.float32, np.float64))


def _for_kernels(data):
    """The image in a dtype the numba kernels take, copied only when needed.

    Booleans become a uint8 view; float16 becomes float32, extended precision
    float64, and non-native byte orders native.
    """
    if data.dtype == np.bool_:
        return data.view(np.uint8)
    if _kernel_ready(data):
        return data
    if data.dtype.kind == "f":
        return data.astype(np.float32 if data.dtype.itemsize <= 4 else np.float64)
    return data.astype(data.dtype.newbyteorder("="))


def _reflect(v, size):
    """Reflect coordinates that left [-0.5, size - 0.5) back inside."""
    lo, hi = -0.5, size - 0.5
    v = np.where(v < lo, 2 * lo - v, v)
    v = np.where(v >= hi, 2 * hi - v, v)
    # A 1-pixel-wide axis can still be outside after one reflection.
    return np.clip(v, lo, np.nextafter(hi, lo))


def _band_mean(data, mask, geometry):
    """Mean over bands (NaN if a band is NaN, or masked) on the mesh's sub-grids.

    ``mask`` is an (M, N) uint8 array or ``_NO_MASK``; ``geometry`` is
    ``(ny, nx, box_y, box_x, start, step)``. Returns (n_boxes, n_per_box)
    float32 in the layout of ``_Mesh.samples``.
    """
    return grid_band_mean(data, mask, *geometry)


def _dither(shape, step):
    """Uniform offsets in [-step/2, step/2) from a fixed stream, float32."""
    u = np.random.default_rng(0x5EED).random(shape, dtype=np.float32)
    return (u - np.float32(0.5)) * np.float32(step)


# The "no mask" argument of the numba kernels.
_NO_MASK = np.zeros((0, 0), dtype=np.uint8)
