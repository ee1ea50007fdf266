"""LuminositySampler: image -> luminosity-weighted point cloud."""

import warnings
from functools import cached_property
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Hidden, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._background import (
    NO_MASK,
    Mesh,
    for_kernels,
    gaussian_kernel,
    grid_band_sky,
    kernel_dtype,
    local_means,
    luminosity,
    sky_statistics,
    smooth_footprint,
    smooth_nan_as_zero,
    smooth_noise_mesh,
)
from ._kernels.sampler import colour_fractions, place, runs, systematic_index
from ._threads import threaded
from ._validation import MAX_ABS_VALUE, check_image, check_mask, check_memory
from .exceptions import DegenerateDataWarning, SparseSamplingWarning

__all__ = ["LuminositySampler", "SampledImage", "SparseSamplingWarning"]


class SampledImage:
    """What the sampler derived from one image, before drawing samples.

    ``luminosity``, the two footprints and the candidates are computed by
    the analysis and held. The other full-resolution maps are kept by the
    analysis as meshes of boxes (a few numbers per box) and interpolated, or
    smoothed, to every pixel when first asked for; the map is then kept
    (:func:`functools.cached_property`), so a second access costs nothing and
    holds its memory for as long as this object lives. ``weights`` is
    rebuilt at every access (a scatter of ``candidate_weights``).

    Attributes
    ----------
    image : (M, N, C) ndarray
        The image the maps were derived from, in the dtype the sampler's
        kernels read: float32 for booleans, integers of up to 16 bits and
        floats of up to 32, float64 for the rest.
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
        self.image = data
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
        self._kernel = kernel

    @cached_property
    def background(self):
        return self._mesh.expand(self._sky_mesh)

    @cached_property
    def noise(self):
        return self._mesh.expand(self._noise_mesh)

    @cached_property
    def smoothed_luminosity(self):
        return smooth_nan_as_zero(self.luminosity, self._kernel)

    @cached_property
    def smooth_noise(self):
        return self._mesh.expand(self._smooth_noise_mesh)

    @property
    def weights(self):
        """Sampling weight of every pixel, (M, N) float64; 0 outside the footprint."""
        out = np.zeros(self.luminosity.size)
        out[self.candidates] = self.candidate_weights
        return out.reshape(self.luminosity.shape)

    @cached_property
    def bands(self):
        data = self.image
        out = np.empty(data.shape, dtype=np.float32)
        for c in range(data.shape[2]):
            band = data[:, :, c].astype(np.float32)
            band[np.isnan(self.luminosity)] = np.nan
            out[:, :, c] = smooth_nan_as_zero(band, self._kernel)
            out[:, :, c] -= self._mesh.expand(self._band_sky_meshes[c])
        return out

    def band_values(self, rows, cols):
        """Smoothed, background-subtracted band values at given pixels.

        Parameters
        ----------
        rows, cols : ndarray of int of shape (n,)
            Pixel coordinates.

        Returns
        -------
        values : ndarray of float64 of shape (n, C)
            The value of every band at each pixel, smoothed as the footprint.
        """
        mesh = self._mesh
        sky = np.stack([np.asarray(m, dtype=np.float64) for m in self._band_sky_meshes])
        return local_means(self.image, rows, cols, self._kernel, sky, mesh.by, mesh.bx)

    def band_sky(self, rows, cols):
        """Sky level of every band at given pixels (not smoothed).

        Parameters
        ----------
        rows, cols : ndarray of int of shape (n,)
            Pixel coordinates, as for :meth:`band_values`.

        Returns
        -------
        sky : ndarray of float64 of shape (C, n)
            Band by band, where :meth:`band_values` gives pixel by pixel.
        """
        return self._mesh.at(self._band_sky_meshes, rows, cols)


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
    samples_per_pixel : float, default=3.0
        Mean number of points per footprint pixel when ``n_samples='auto'``
        (3 gives the detections and close pairs of 4 on the benchmark
        fields in three quarters of the points; 2 loses pairs).
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

    Images are ``(M, N)`` or ``(M, N, C)`` arrays of any real dtype, read as
    float32 (booleans, integers of up to 16 bits, floats of up to 32) or
    float64 (the rest), which hold their values exactly: the same values give
    the same result in every integer (or boolean) dtype, and in every float
    dtype, to the bit; only 64-bit integers beyond ``2**53`` in magnitude are
    rounded (to float64). NaN pixels and the masked pixels of a
    :class:`numpy.ma.MaskedArray` (or of the ``mask`` argument of
    :meth:`transform`) get no samples. Integer images are de-quantised by the
    jitter of the band values within their quantisation step before colours
    are computed, and their sky level and noise are estimated on values
    dithered within their step (from a fixed random stream, so the maps do
    not depend on ``random_state``): a median
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
        samples_per_pixel=3.0,
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
        """The maps of a checked image: sky, luminosity, noise, footprints, weights."""
        self._check_background_level()
        # Refuse early: before the maps and, for a fixed n_samples, the points.
        n = None if self.n_samples == "auto" else int(self.n_samples)
        self.check_memory(data, n)
        data = for_kernels(data)
        mesh = Mesh(data.shape[:2], self.background_box_size)
        mask8 = NO_MASK if mask is None else mask.view(np.uint8)
        stats = sky_statistics(data, mask8, mesh, quantum)
        sky_mesh, band_meshes = self._sky_meshes(data, mesh, stats)
        lum = np.empty(data.shape[:2], dtype=np.float32)
        scale = luminosity(data, mask8, *mesh.interpolation(sky_mesh), lum)[1]
        # Noise of the background-subtracted luminosity, with a floor at the
        # quantisation noise of integer data: a noise of 0 would make every
        # pixel infinitely significant.
        floor = quantum / np.sqrt(12 * data.shape[2]) if quantum else 0.0
        floor = max(floor, 1e-12 * scale, np.finfo(np.float32).tiny)
        noise_mesh = np.maximum(mesh.finish(stats.std, 3), floor)
        kernel, smooth_noise = self._smoothing(lum, mesh, stats, noise_mesh, floor)
        footprint, analysis, candidates, signal = self._footprints(
            lum, kernel, mesh, smooth_noise, noise_mesh
        )
        return SampledImage(
            lum, footprint, candidates, self._weights(signal, candidates, mesh, noise_mesh),
            analysis_footprint=analysis, mesh=mesh, sky_mesh=sky_mesh, noise_mesh=noise_mesh,
            smooth_noise_mesh=smooth_noise, band_sky_meshes=band_meshes, data=data,
            kernel=kernel,
        )  # fmt: skip

    def _check_background_level(self):
        if self.background not in ("auto", None) and abs(self.background) > MAX_ABS_VALUE:
            raise ValueError(
                f"background must satisfy |background| <= {MAX_ABS_VALUE:.4g}, as image "
                f"values do (a quarter of the float32 range); got background={self.background!r}."
            )

    def _sky_meshes(self, data, mesh, stats):
        """Sky level of the luminosity and of every band, per box of the mesh."""
        if self.background == "auto":
            # The median of every band over the sky pixels of the luminosity.
            band_sky = grid_band_sky(data, stats.samples, stats.lo, stats.hi, *mesh.geometry())
            return mesh.finish(stats.median, 3), [mesh.finish(sky_c, 3) for sky_c in band_sky]
        level = 0.0 if self.background is None else float(self.background)
        sky_mesh = np.full((mesh.ny, mesh.nx), level)
        return sky_mesh, [sky_mesh] * data.shape[2]

    def _smoothing(self, lum, mesh, stats, noise_mesh, floor):
        """The smoothing kernel and the noise mesh of the smoothed luminosity."""
        if not self.smoothing > 0:
            return np.ones(1), noise_mesh
        # Clipped to the image, with the tails folded in: the same smoothing
        # (edges are replicated), at a cost that does not grow with it.
        kernel = gaussian_kernel(self.smoothing, max_radius=max(lum.shape) - 1)
        noise = smooth_noise_mesh(lum, kernel, mesh, stats, noise_mesh, floor, self.smoothing)
        return kernel, noise

    def _footprints(self, lum, kernel, mesh, smooth_noise, noise_mesh):
        """The footprint, the analysis footprint, and the footprint's pixels and signal."""
        # Clipped to float32's range: a pathological noise ratio (data whose
        # noise is near float32's smallest numbers) must not overflow the
        # float32 map; the footprint is the same as with an infinite threshold.
        f32 = float(np.finfo(np.float32).max)
        threshold = np.clip(self.detection_threshold * smooth_noise, -f32, f32)
        if self.analysis_threshold is None:
            edge = np.full_like(noise_mesh, -f32)
        else:
            edge = np.clip(self.analysis_threshold * noise_mesh, -f32, f32)
        footprint = np.empty(lum.shape, dtype=bool)
        analysis = np.empty(lum.shape, dtype=bool)
        candidates, signal = smooth_footprint(
            lum, kernel, *mesh.interpolation(threshold), footprint,
            mesh.interpolation(edge)[0], analysis,
        )  # fmt: skip
        return footprint, analysis, candidates, signal

    def _weights(self, signal, candidates, mesh, noise_mesh):
        """Sampling weight of every footprint pixel, by ``stretch``."""
        if self.stretch == "linear":
            return signal
        if self.stretch == "sqrt":
            return np.sqrt(signal)
        rows, cols = np.divmod(candidates, mesh.shape[1])
        return np.arcsinh(signal / mesh.at([noise_mesh], rows, cols)[0])

    @_fit_context(prefer_skip_nested_validation=True)
    def sample(self, X, mask=None):
        """Fit to the image and draw its points, keeping the maps they were drawn from.

        :meth:`fit_transform` that also returns what :meth:`analyse` gives,
        with the image checked and analysed once.

        Parameters
        ----------
        X : (M, N[, C]) array-like
            The image: one band or several, of any real dtype.
        mask : (M, N) ndarray of bool, default=None
            Pixels that get no points (True), besides NaN pixels.

        Returns
        -------
        maps : SampledImage
            The maps the points were drawn from.
        points : ndarray of shape (n_samples, 2 + n_colour_features)
            The points of :meth:`transform`.

        Raises
        ------
        InsufficientMemoryError
            If the maps and the points would not fit in the memory available
            (checked before either is computed).
        """
        data, quantum = check_image(X)
        mask = check_mask(mask, data.shape[:2])
        self._record(data)
        maps = self._analyse(data, quantum, mask)
        return maps, self._draw(maps, quantum)

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
        return self._draw(maps, quantum)

    def fit_transform(self, X, y=None, mask=None):
        """Fit to the image and draw its point cloud; see :meth:`transform`.

        The same as ``fit(X, mask=mask).transform(X, mask=mask)``, with the
        image checked once: the points of :meth:`sample`.

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
        return self.sample(X, mask=mask)[1]

    def check_memory(self, data, n, *, maps=True):
        """Refuse an image and its points if they would not fit in memory.

        Parameters
        ----------
        data : (M, N, C) ndarray
            The image, or an array of its shape and dtype (e.g. a broadcast
            zero, to check a file before reading it).
        n : int or None
            Number of points, or None to check the maps only.
        maps : bool, default=True
            Count the maps of the analysis (False: the points only).

        Raises
        ------
        InsufficientMemoryError
            If the estimated working memory exceeds what is available.
        """
        h, w, n_bands = data.shape
        n_bytes = 0
        if maps:
            n_bytes += _MAP_BYTES_PER_PIXEL * h * w
            dtype = kernel_dtype(data.dtype)
            if data.dtype != dtype or not data.flags.c_contiguous:
                n_bytes += dtype.itemsize * data.size  # the kernels' copy of the image
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

    def _draw(self, maps, quantum):
        """The points of the maps of :meth:`analyse` (``quantum``: the step of integer data)."""
        data = maps.image
        rng = check_random_state(self.random_state)
        h, w, n_bands = data.shape
        n_colour = self._n_colour(n_bands)
        n = self.n_samples_for(maps)
        n_fg = int(np.count_nonzero(maps.candidate_weights > 0))
        self.check_memory(data, n, maps=False)
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
            index = systematic_index(cdf, n, rng.uniform())
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
                threaded(place, stop - start, *args, min_per_thread=4096)
        if n_colour:
            # Points drawn in increasing pixel order share their pixel's band
            # values: they are computed once per run of equal pixels.
            starts, run = runs(pick)
            row, col = np.divmod(pick[starts], w)
            values = maps.band_values(row, col)
            noise = rng.random_sample((n, n_bands)) if quantum else np.empty((0, n_bands))
            args = (values, run, noise, float(quantum), float(self._color_scale), points)
            threaded(colour_fractions, run.size, *args, min_per_thread=4096)
        return points


# Uniform draws per call of the random generator while placing points.
_DRAW_CHUNK = 2**17
_NO_DRAWS = np.empty(0)


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
