"""SourceCatalog: one row of measurements per source of a segmentation."""

import csv
import io
import math
from pathlib import Path

import numpy as np
from scipy import ndimage

from ._files import FITS_WRITE_SUFFIXES, atomic_write, celestial_axes_are_xy, check_overwrite
from .exceptions import NoSkyCoordinatesError

__all__ = ["SourceCatalog"]

# Units of the columns in to_table() (astropy unit strings); others are plain numbers.
_UNITS = {
    "area": "pix2",
    "x_centroid": "pix",
    "y_centroid": "pix",
    "ra": "deg",
    "dec": "deg",
    "semimajor_axis": "pix",
    "semiminor_axis": "pix",
    "orientation": "deg",
}

_DESCRIPTIONS = {
    "label": "value of the source in the label image",
    "cluster_id": "AstroLink id of the cluster behind the label",
    "parent_id": "AstroLink id of the parent cluster ('' at the top level)",
    "significance": (
        "significance in sigma: the cluster's, or for an isolated source (no cluster id) "
        "the signal-to-noise ratio of its footprint"
    ),
    "n_samples": "number of sampled points with this label",
    "area": "number of pixels of the segment",
    "x_centroid": "luminosity-weighted centroid, column (pixel centres at integers)",
    "y_centroid": "luminosity-weighted centroid, row (pixel centres at integers)",
    "ra": "right ascension of the centroid",
    "dec": "declination of the centroid",
    "bbox_xmin": "first column of the bounding box",
    "bbox_xmax": "last column of the bounding box (inclusive)",
    "bbox_ymin": "first row of the bounding box",
    "bbox_ymax": "last row of the bounding box (inclusive)",
    "semimajor_axis": "standard deviation along the major axis of the luminosity moments",
    "semiminor_axis": "standard deviation along the minor axis of the luminosity moments",
    "orientation": "angle from the x axis to the major axis, counter-clockwise, [0, 360)",
    "eccentricity": "eccentricity of the ellipse of the second moments",
}

_FORMATS = {".csv": "csv", ".ecsv": "ecsv", **dict.fromkeys(FITS_WRITE_SUFFIXES, "fits")}


#: The columns measured for every source, other than the fluxes and ra, dec.
MEASURED_COLUMNS = (
    "label", "cluster_id", "parent_id", "significance", "n_samples", "area",
    "x_centroid", "y_centroid", "bbox_xmin", "bbox_xmax", "bbox_ymin", "bbox_ymax",
    "semimajor_axis", "semiminor_axis", "orientation", "eccentricity",
)  # fmt: skip


def catalog_columns(n_bands, *, sky):
    """Names of the columns of a catalog of ``n_bands`` bands, in order (``sky``: ra, dec)."""
    return (
        list(MEASURED_COLUMNS[:8])
        + (["ra", "dec"] if sky else [])
        + list(MEASURED_COLUMNS[8:])
        + [f"flux_{c}" for c in range(n_bands)]
    )


# What a catalog reads of a Segmentation.
_SEGMENTATION_ATTRIBUTES = (
    "label_image", "maps", "labels", "cluster_ids", "parents", "cluster_labels",
    "source_significance",
)  # fmt: skip


class SourceCatalog:
    """Measurements of every source of a segmentation, one row per source.

    Parameters
    ----------
    segmentation : Segmentation
        The result of :func:`~skimgcluster.segment` (or
        :meth:`ImageSegmenter.segment_image`).
    wcs : astropy.wcs.WCS, astropy.io.fits.Header or None, default=None
        World coordinate system of the image (e.g. ``read_fits(...).wcs``);
        with it the catalog has ``ra`` and ``dec`` columns. Only its
        celestial part is used, and its first two pixel axes must be x
        (columns) and y (rows).

    Attributes
    ----------
    label : ndarray of shape (n_sources,) of int
        Value of each source in the label image, increasing; one row per
        distinct non-zero value of ``label_image``.
    cluster_id : ndarray of shape (n_sources,) of str
        AstroLink id of the cluster behind the label (``'1-2-1'``).
    parent_id : ndarray of shape (n_sources,) of str
        AstroLink id of its parent cluster, ``''`` for a top-level cluster.
    significance : ndarray of shape (n_sources,) of float
        Significance of the cluster, in sigma.
    n_samples : ndarray of shape (n_sources,) of int
        Number of sampled points that carry the label.
    area : ndarray of shape (n_sources,) of int
        Number of pixels of the segment.
    x_centroid, y_centroid : ndarray of shape (n_sources,) of float
        Centroid: column (x) and row (y), with pixel centres at integers,
        weighted by the background-subtracted luminosity (see Notes).
    ra, dec : ndarray of shape (n_sources,) of float
        Sky position of the centroid in degrees; only with a ``wcs``
        (accessing them without one raises :class:`AttributeError`).
    bbox_xmin, bbox_xmax, bbox_ymin, bbox_ymax : ndarray of shape (n_sources,) of int
        Bounding box of the segment: first and last column and row, both
        inclusive.
    semimajor_axis, semiminor_axis : ndarray of shape (n_sources,) of float
        Standard deviations in pixels along the major and minor axes of the
        2-D Gaussian with the same second moments as the source.
    orientation : ndarray of shape (n_sources,) of float
        Angle in degrees from the x axis to the major axis, counter-clockwise
        (with y pointing up, as DS9 shows FITS images), in [0, 360).
    eccentricity : ndarray of shape (n_sources,) of float
        ``sqrt(1 - semiminor_axis**2 / semimajor_axis**2)``.
    flux : ndarray of shape (n_sources, n_bands) of float
        Background-subtracted flux of the segment in each band (see Notes);
        the columns ``flux_0``, ``flux_1``, ... of the table.
    n_bands : int
        Number of bands of the image.
    columns : list of str
        Names of the columns, in table order.

    See Also
    --------
    Segmentation.catalog : The same, from a segmentation.
    photutils.segmentation.SourceCatalog : Many more properties; use
        :meth:`to_segmentation_image` to get there.

    Notes
    -----
    All measurements are over the pixels of each segment (the pixels of
    ``label_image`` equal to the label). The maps come from
    ``segmentation.maps``, the analysis of the image by the sampler:

    - ``flux[:, c]`` is the sum over the segment of the band ``c`` of the
      image minus the sky of that band (the sampler's background mesh,
      bilinearly interpolated at each pixel, or the constant level or 0 given
      as ``background``), in the units of the image, without smoothing.
      Negative pixels count; pixels that are NaN or masked do not.
    - The centroid and the shape are the moments of the background-subtracted
      luminosity (the mean over bands, ``maps.luminosity``) with negative
      values set to 0, as photutils does. They follow photutils'
      :class:`~photutils.segmentation.SourceCatalog` (version 3):
      the names ``x_centroid``, ``y_centroid``, ``semimajor_axis``,
      ``semiminor_axis``, ``orientation``, inclusive bounding boxes, and
      SourceExtractor's rule of adding 1/12 pixel² to the variances of
      segments too thin for a positive-definite covariance. Given the same
      label image and ``maps.luminosity`` as data, photutils gives the same
      values. SourceExtractor's THETA is ``(orientation + 90) % 180 - 90``.
      A segment with no positive luminosity has NaN centroid and shape.

    Examples
    --------
    >>> import numpy as np
    >>> from skimgcluster import segment
    >>> yy, xx = np.mgrid[:96, :96]
    >>> sources = [(25, 25), (70, 60)]
    >>> image = sum(40 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 18) for y, x in sources)
    >>> image = image + np.random.default_rng(0).normal(0, 1, (96, 96))
    >>> catalog = segment(image, random_state=0).catalog()
    >>> len(catalog), catalog.n_bands
    (2, 1)
    >>> np.round(catalog.x_centroid).tolist(), np.round(catalog.y_centroid).tolist()
    ([60.0, 25.0], [70.0, 25.0])
    >>> catalog.columns[:6]
    ['label', 'cluster_id', 'parent_id', 'significance', 'n_samples', 'area']
    """

    def __init__(self, segmentation, *, wcs=None):
        # Checked by its attributes: this module is imported by the one of
        # Segmentation (whose catalog() builds a SourceCatalog), not the other
        # way round.
        if not all(hasattr(segmentation, name) for name in _SEGMENTATION_ATTRIBUTES):
            raise TypeError(
                "segmentation must be a Segmentation (the result of segment()); got "
                f"{type(segmentation).__name__}."
            )
        self._label_image = segmentation.label_image
        self._wcs = _check_wcs(wcs)
        self._measure(segmentation)

    # -- measurement -----------------------------------------------------------

    def _measure(self, seg):
        """Every column, from the label image, the hierarchy and the maps."""
        label_image = np.asarray(seg.label_image)
        maps = seg.maps
        self.n_bands = maps.image.shape[2]
        flat = label_image.ravel()
        idx = np.flatnonzero(flat)  # the pixels of sources
        values = flat[idx].astype(np.intp)
        n_values = int(values.max()) + 1 if values.size else 1
        counts = np.bincount(values, minlength=n_values)
        counts[0] = 0
        label = np.flatnonzero(counts)
        row_of = np.full(n_values, -1, dtype=np.intp)
        row_of[label] = np.arange(label.size)
        r = row_of[values]  # the catalog row of every source pixel
        del values
        self.label = label.astype(np.int64)
        self.area = counts[label].astype(np.int64)
        self._hierarchy(seg, label, n_values)
        self._bounding_boxes(label_image, label, n_values)
        rows, cols = np.divmod(idx, label_image.shape[1])
        lum = maps.luminosity.ravel()[idx].astype(np.float64)
        valid = np.isfinite(lum)
        self.flux = self._fluxes(maps, idx, rows, cols, r, valid, label.size)
        self._moments(rows, cols, np.where(valid & (lum > 0), lum, 0.0), r, label.size)
        self.columns = catalog_columns(self.n_bands, sky=self._wcs is not None)
        if self._wcs is not None:
            self.ra, self.dec = _sky_degrees(self._wcs, self.x_centroid, self.y_centroid)

    def _hierarchy(self, seg, label, n_values):
        """Cluster and parent ids, significance and number of points of every label."""
        # The cluster behind each label (label_image = labels + 1).
        cluster_of = np.full(n_values, -1, dtype=np.intp)
        cl = np.asarray(seg.cluster_labels, dtype=np.intp) + 1
        ok = (cl >= 1) & (cl < n_values)
        cluster_of[cl[ok]] = np.flatnonzero(ok)
        j = cluster_of[label]
        ids = np.append(np.asarray(seg.cluster_ids, dtype=str), "")
        parents = np.append(np.asarray(seg.parents, dtype=np.intp), -1)
        self.cluster_id = ids[j]
        self.parent_id = ids[parents[j]]
        # The significance of each label: its cluster's, or an isolated
        # source's signal-to-noise ratio (Segmentation.source_significance).
        source_sig = np.append(np.asarray(seg.source_significance, dtype=np.float64), np.nan)
        self.significance = source_sig[np.minimum(label - 1, source_sig.size - 1)]
        point_labels = np.asarray(seg.labels)
        per_value = np.bincount(point_labels[point_labels >= 0] + 1, minlength=n_values)
        self.n_samples = per_value[label].astype(np.int64)

    def _bounding_boxes(self, label_image, label, n_values):
        """Inclusive bounding box of every label."""
        boxes = ndimage.find_objects(label_image, max_label=n_values - 1)
        corners = [(boxes[v - 1][1], boxes[v - 1][0]) for v in label.tolist()]
        bbox = np.array(
            [(bx.start, bx.stop - 1, by.start, by.stop - 1) for bx, by in corners], dtype=np.int64
        ).reshape(label.size, 4)
        self.bbox_xmin, self.bbox_xmax, self.bbox_ymin, self.bbox_ymax = bbox.T.copy()

    @staticmethod
    def _fluxes(maps, idx, rows, cols, r, valid, n):
        """(n, C) flux per band: image minus the band's sky, over the valid pixels."""
        n_bands = maps.image.shape[2]
        flux = np.empty((n, n_bands))
        sky = maps.band_sky(rows, cols)  # (C, n_pixels)
        pixels = maps.image.reshape(-1, n_bands)
        for c in range(n_bands):
            v = pixels[idx, c].astype(np.float64) - sky[c]
            v[~valid | ~np.isfinite(v)] = 0.0
            flux[:, c] = np.bincount(r, v, minlength=n)
        return flux

    def _moments(self, rows, cols, w, r, n):
        """Centroids and shapes from the luminosity ``w`` (negatives as 0) of every pixel."""
        # About the box corner, so that the sums stay small.
        dx = (cols - self.bbox_xmin[r]).astype(np.float64)
        dy = (rows - self.bbox_ymin[r]).astype(np.float64)
        s = np.bincount(r, w, minlength=n)
        wx, wy = w * dx, w * dy
        sx = np.bincount(r, wx, minlength=n)
        sy = np.bincount(r, wy, minlength=n)
        sxx = np.bincount(r, wx * dx, minlength=n)
        syy = np.bincount(r, wy * dy, minlength=n)
        sxy = np.bincount(r, wx * dy, minlength=n)
        with np.errstate(divide="ignore", invalid="ignore"):
            xc, yc = sx / s, sy / s
            cxx = sxx / s - xc * xc
            cyy = syy / s - yc * yc
            cxy = sxy / s - xc * yc
        self.x_centroid = self.bbox_xmin + xc
        self.y_centroid = self.bbox_ymin + yc
        self._shape(cxx, cyy, cxy)

    @classmethod
    def from_columns(cls, label_image, columns, flux, *, wcs=None):
        """A catalog of measurements made elsewhere (e.g. tile by tile).

        Parameters
        ----------
        label_image : (M, N) ndarray of int
            The label image the rows describe.
        columns : dict of ndarray
            One array per column of :data:`MEASURED_COLUMNS`, a row per source.
        flux : (n_sources, C) ndarray
            Flux of every source in every band.
        wcs : astropy.wcs.WCS, astropy.io.fits.Header or None, default=None
            World coordinate system of the image, for ``ra`` and ``dec``.

        Returns
        -------
        catalog : SourceCatalog
        """
        catalog = cls.__new__(cls)
        catalog._label_image = label_image
        catalog._wcs = _check_wcs(wcs)
        for name in MEASURED_COLUMNS:
            setattr(catalog, name, np.array(columns[name]))
        catalog.flux = np.array(flux)
        catalog.n_bands = catalog.flux.shape[1]
        catalog.columns = catalog_columns(catalog.n_bands, sky=catalog._wcs is not None)
        if catalog._wcs is not None:
            catalog.ra, catalog.dec = _sky_degrees(
                catalog._wcs, catalog.x_centroid, catalog.y_centroid
            )
        return catalog

    def _shape(self, cxx, cyy, cxy):
        """Axes, orientation and eccentricity from the covariances (photutils' rules)."""
        delta = 1.0 / 12
        with np.errstate(invalid="ignore"):
            det = cxx * cyy - cxy * cxy
            bad = det < 0  # not positive semi-definite (rounding)
            cxx, cyy = cxx.copy(), cyy.copy()
            cxx[bad] = cyy[bad] = np.nan
            # SourceExtractor: widen "infinitely thin" segments by 1/12 pixel^2 until
            # the determinant reaches (1/12)^2.
            thin = cxx * cyy - cxy * cxy < delta * delta
            while thin.any():
                cxx[thin] += delta
                cyy[thin] += delta
                thin = cxx * cyy - cxy * cxy < delta * delta
            mean = (cxx + cyy) / 2
            root = np.sqrt(((cxx - cyy) / 2) ** 2 + cxy * cxy)
            major, minor = mean + root, mean - root
            minor[minor < 0] = np.nan
            major[np.isnan(minor)] = np.nan
            self.semimajor_axis = np.sqrt(major)
            self.semiminor_axis = np.sqrt(minor)
            self.orientation = np.rad2deg(0.5 * np.arctan2(2 * cxy, cxx - cyy)) % 360
            self.orientation[np.isnan(cxx)] = np.nan
            self.eccentricity = np.sqrt(1 - minor / major)

    # -- access ----------------------------------------------------------------

    def __len__(self):
        return int(self.label.size)

    def __repr__(self):
        return (
            f"SourceCatalog(n_sources={len(self)}, n_bands={self.n_bands}, "
            f"wcs={'yes' if self._wcs is not None else 'no'})"
        )

    def __getattr__(self, name):
        # Reached only for attributes that are not set: ra, dec without a WCS (and
        # sky_centroid, whose property raises AttributeError then).
        if name in ("ra", "dec", "sky_centroid"):
            raise NoSkyCoordinatesError(
                f"this catalog has no {name!r}: it was built without a WCS; pass "
                "wcs= (e.g. read_fits(...).wcs) to SourceCatalog or Segmentation.catalog."
            )
        raise AttributeError(f"'SourceCatalog' object has no attribute {name!r}")

    @property
    def wcs(self):
        """The celestial WCS of the catalog, or None."""
        return self._wcs

    @property
    def sky_centroid(self):
        """The centroids as an :class:`astropy.coordinates.SkyCoord` (needs a WCS)."""
        if self._wcs is None:
            raise NoSkyCoordinatesError(
                "this catalog has no sky_centroid: it was built without a WCS; pass wcs=."
            )
        return self._wcs.pixel_to_world(self.x_centroid, self.y_centroid)

    def to_dict(self):
        """The columns as a dict of 1-D arrays, in table order.

        Returns
        -------
        columns : dict of str to ndarray of shape (n_sources,)
            E.g. for ``pandas.DataFrame(catalog.to_dict())``.
        """
        out = {}
        for name in self.columns:
            if name.startswith("flux_"):
                out[name] = self.flux[:, int(name[5:])].copy()
            else:
                out[name] = np.asarray(getattr(self, name)).copy()
        return out

    def to_table(self):
        """The catalog as an astropy table, with units.

        Returns
        -------
        table : astropy.table.QTable
            One row per source, the columns of :attr:`columns`; lengths in
            ``pix``, angles in ``deg``, fluxes in the units of the image
            (no unit).

        Raises
        ------
        ImportError
            If astropy is not installed.
        """
        try:
            import astropy.units as u
            from astropy.table import QTable
        except ImportError:
            raise ImportError(
                'SourceCatalog.to_table needs astropy: pip install "skimgcluster[astro]"'
            ) from None
        table = QTable(meta={"n_bands": self.n_bands})
        for name, values in self.to_dict().items():
            unit = _UNITS.get(name)
            table[name] = values * u.Unit(unit) if unit else values
            if name.startswith("flux_"):
                band = name[5:]
                description = f"sum over the segment of band {band} minus its sky (image units)"
            else:
                description = _DESCRIPTIONS[name]
            table[name].description = description
        return table

    def write(self, path, *, format=None, overwrite=False):
        """Write the catalog to a file, atomically.

        Parameters
        ----------
        path : str or path-like
            The file.
        format : {'csv', 'ecsv', 'fits'} or None, default=None
            ``None`` takes it from the suffix of ``path`` (``.csv``,
            ``.ecsv``, ``.fits``/``.fit``/``.fts``). CSV is written without
            astropy (plain header line, empty strings for missing ids, ``nan``
            for undefined values); ECSV (with units and descriptions) and
            FITS binary tables need astropy.
        overwrite : bool, default=False
            Replace an existing file.

        Raises
        ------
        FileExistsError
            If ``path`` exists and ``overwrite`` is False.
        ValueError
            If the format is unknown or cannot be told from ``path``.
        TypeError
            If ``overwrite`` is not a bool.
        ImportError
            For ECSV and FITS when astropy is not installed.
        """
        path = Path(path)
        if format is None:
            format = _FORMATS.get(path.suffix.lower())
            if format is None:
                raise ValueError(
                    f"cannot tell the format of {path.name!r} from its suffix; use .csv, .ecsv "
                    "or .fits, or pass format='csv', 'ecsv' or 'fits'."
                )
        elif format not in ("csv", "ecsv", "fits"):
            raise ValueError(f"format must be 'csv', 'ecsv', 'fits' or None; got {format!r}.")
        check_overwrite(path, overwrite)
        if format == "csv":
            text = self._csv()

            def write(tmp):
                with open(tmp, "w", encoding="utf-8", newline="") as f:
                    f.write(text)

        else:
            table = self.to_table()
            astropy_format = "ascii.ecsv" if format == "ecsv" else "fits"

            def write(tmp):
                table.write(tmp, format=astropy_format, overwrite=True)

        atomic_write(path, write)

    def _csv(self):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.columns)
        columns = [[_csv_value(v) for v in values.tolist()] for values in self.to_dict().values()]
        writer.writerows(zip(*columns, strict=True))
        return buffer.getvalue()

    def to_segmentation_image(self):
        """The label image as a photutils segmentation image.

        Returns
        -------
        segm : photutils.segmentation.SegmentationImage
            Of a copy of the label image, for photutils' tools
            (``photutils.segmentation.SourceCatalog``, deblending, plotting).

        Raises
        ------
        ImportError
            If photutils is not installed.
        """
        try:
            from photutils.segmentation import SegmentationImage
        except ImportError:
            raise ImportError(
                "SourceCatalog.to_segmentation_image needs photutils, which is not "
                "installed; install it with pip install photutils"
            ) from None
        return SegmentationImage(np.array(self._label_image, dtype=np.int32))


def _csv_value(value):
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return value


def _check_wcs(wcs):
    if wcs is None:
        return None
    try:
        from astropy.io.fits import Header
        from astropy.wcs import WCS, FITSFixedWarning
    except ImportError:
        raise ImportError(
            'a catalog with a wcs needs astropy: pip install "skimgcluster[astro]"'
        ) from None
    if isinstance(wcs, Header):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(wcs)
    if not isinstance(wcs, WCS):
        raise TypeError(
            f"wcs must be an astropy.wcs.WCS, a FITS Header or None; got {type(wcs).__name__}."
        )
    if not wcs.has_celestial:
        raise ValueError(f"wcs must have celestial axes (RA/Dec or similar); got {wcs.wcs.ctype}.")
    if not celestial_axes_are_xy(wcs):
        raise ValueError(
            "the celestial axes of wcs must be its first two pixel axes (x, y); got axes "
            f"{wcs.wcs.lng} and {wcs.wcs.lat}."
        )
    return wcs.celestial


def _sky_degrees(wcs, x, y):
    """RA and Dec in degrees of pixel positions; ICRS if the WCS frame is not equatorial."""
    if x.size == 0:
        return np.empty(0), np.empty(0)
    sky = wcs.pixel_to_world(x, y)
    if "ra" not in sky.frame.representation_component_names:
        sky = sky.icrs
    return np.asarray(sky.ra.deg, dtype=np.float64), np.asarray(sky.dec.deg, dtype=np.float64)
