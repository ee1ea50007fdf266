"""Tiled segmentation: large images as overlapping tiles, on the active Dask scheduler.

The image is cut into a grid of *cores* of ``tile_size`` pixels; each core is
segmented inside a *window* that adds a halo around it, as an ordinary small
image (:meth:`ImageSegmenter.segment_image`), and the windows' results are
stitched into one label image and one catalog. How one image is segmented
does not change: this module only decides what each window is, which of its
sources to keep, and how to put them together.
"""

import os
import shutil
import tempfile
import uuid
import warnings
import weakref
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import numpy as np

from ._catalog import MEASURED_COLUMNS
from ._validation import TILE_SIZE_CONSTRAINTS, check_memory, check_params, format_bytes

__all__ = ["TiledSegmentation"]

# segment(tile_size='auto') tiles images of more pixels than this (a 5793 x
# 5793 image), in tiles of _AUTO_TILE_SIZE. Below it the single-image path
# keeps its full sampling density (the 5e6-point cap of LuminositySampler
# leaves about 4 points per footprint pixel on fields of this size); above
# it, the cap spreads the points thinner as the image grows and faint
# sources are lost, while a tile is always sampled as densely as a small image.
AUTO_TILE_ABOVE = 2**25
AUTO_TILE_SIZE = 2048

# The halo holds at least this many background boxes: enough for the
# median filter (3 boxes) and the bilinear interpolation between box centres
# to give a window's core exactly the sky and noise of the whole image.
_MIN_HALO_BOXES = 3

# Tiled label images of more pixels than this (256 MB of int32, an 8192 x
# 8192 image) are stitched on disk, in a temporary folder, and never held
# whole in one process (see TiledSegmentation); smaller ones in memory.
LABELS_ON_DISK_ABOVE = 2**26

# Two sources of different tiles that share at least this fraction of the
# smaller one's pixels are one source seen twice.
_SAME_SOURCE_OVERLAP = 0.5


class TiledSegmentation:
    """Result of a tiled segmentation (:func:`segment` with ``tile_size``).

    It holds what :class:`Segmentation` holds per source, stitched across
    tiles; the per-point and per-map attributes of a single segmentation
    (``points``, ``labels``, ``maps``, ``sampler``, ``clusterer``) exist
    per tile only and are not kept.

    Attributes
    ----------
    label_image : (M, N) ndarray of int32
        0 for background, ``1..n_sources`` for the sources, consecutive.
        For an image of more than ``LABELS_ON_DISK_ABOVE`` pixels (2**26)
        the stitched labels stay on disk and this attribute reads them whole
        into memory when first used (refused if they do not fit): use
        :meth:`write_labels` to write them to a file instead.
    shape : (int, int)
        Shape of the label image.
    on_disk : bool
        True if the stitched labels are kept on disk (see Notes).
    n_sources : int
        Number of sources.
    source_significance : ndarray of shape (n_sources,)
        Significance in sigma of the source with label ``k + 1``, as in
        :attr:`Segmentation.source_significance` of its tile.
    isolated : ndarray of bool of shape (n_sources,)
        True for sources without an AstroLink cluster of their own (see
        :attr:`Segmentation.isolated`).
    cluster_id, parent_id : ndarray of str of shape (n_sources,)
        AstroLink id of the cluster behind each source and of its parent,
        prefixed with the tile, e.g. ``'r1c0:1-2-1'`` (``''`` for none): a
        hierarchy is built per tile, so ids are unique only with the prefix.
    tile : ndarray of int of shape (n_sources, 2)
        (row, column) index of the tile that owns each source.
    peak : ndarray of int of shape (n_sources, 2)
        (row, column) of the brightest pixel of each source in the smoothed
        luminosity: the pixel that decides its owner.
    truncated : ndarray of bool of shape (n_sources,)
        True for a source that still reached the edge of its tile's window
        after the halo had grown to its largest (see Notes of
        :func:`segment_tiled`): it may be cut.
    tile_size : int
        Side of the tile cores.
    halo : ndarray of int of shape (n_tile_rows, n_tile_cols)
        Halo each tile was finally segmented with.
    n_tiles : int
        Number of tiles.

    Notes
    -----
    **Labels on disk.** The tiles' labels are stitched into an int32 array
    of the image's shape with one provisional value per kept source; a
    look-up table then maps these values to the consecutive ``1..n_sources``.
    Above ``LABELS_ON_DISK_ABOVE`` pixels that array is a ``.npy`` file in a
    temporary folder of this process (:func:`tempfile.mkdtemp`, so under
    ``TMPDIR``), opened for one tile at a time, and each tile's labels reach
    it through a file of that folder too: no process holds the whole label
    image. With the threaded or multiprocessing scheduler the tasks save
    these files; on a ``distributed`` cluster the labels come back through
    the scheduler as each tile finishes and this process saves them, so the
    workers need not see the folder (a remote cluster without a shared file
    system works). The folder is removed by :meth:`close` or when the
    result is garbage-collected.
    """

    def __init__(self, canvas, lut, columns, *, shape, n_bands, tile_size, halo, folder=None):
        self._canvas = canvas  # provisional labels: ndarray, or the path of a .npy file
        self._lut = lut
        self._label_image = None
        self._folder = folder
        self._finalizer = (
            None if folder is None
            else weakref.finalize(self, shutil.rmtree, str(folder), ignore_errors=True)
        )  # fmt: skip
        self._columns = columns
        self.shape = tuple(shape)
        self.on_disk = folder is not None
        self.n_bands = n_bands
        self.n_sources = int(columns["label"].size)
        self.source_significance = columns["significance"]
        self.isolated = columns["isolated"]
        self.cluster_id = columns["cluster_id"]
        self.parent_id = columns["parent_id"]
        self.tile = columns["tile"]
        self.peak = columns["peak"]
        self.truncated = columns["truncated"]
        self.tile_size = tile_size
        self.halo = halo
        self.n_tiles = int(halo.size)
        if not self.on_disk:
            self._label_image = lut[canvas]
            self._canvas = None

    def __repr__(self):
        return (
            f"TiledSegmentation(n_sources={self.n_sources}, n_tiles={self.n_tiles}, "
            f"tile_size={self.tile_size}, shape={self.shape})"
        )

    @property
    def label_image(self):
        """The whole label image, (M, N) int32, read into memory on first access.

        Above ``LABELS_ON_DISK_ABOVE`` pixels the stitched labels are kept on
        disk; reading them whole goes through the memory guard. Use
        :meth:`write_labels` or :meth:`label_rows` to avoid holding them.
        """
        if self._label_image is None:
            h, w = self.shape
            self._check_open()
            check_memory(
                4.0 * h * w,
                what=f"the label image of shape {(h, w)} ({format_bytes(4.0 * h * w)})",
                advice="Write it to a file with write_labels(path) instead.",
            )
            self._label_image = self._lut[np.load(self._canvas, mmap_mode="r")]
        return self._label_image

    def close(self):
        """Remove the temporary folder of labels kept on disk (nothing in memory)."""
        if self._finalizer is not None:
            self._finalizer()

    def _check_open(self):
        if self._finalizer is not None and not self._finalizer.alive:
            raise ValueError(
                "the labels of this TiledSegmentation were kept on disk and close() has "
                "removed them."
            )

    def label_rows(self, start, stop):
        """Rows ``start:stop`` of the label image, read from disk if kept there.

        Parameters
        ----------
        start, stop : int
            First row and one past the last.

        Returns
        -------
        rows : (stop - start, N) ndarray of int32
            The labels of those rows, 0 for background.
        """
        if self._label_image is not None:
            return self._label_image[start:stop]
        self._check_open()
        canvas = np.load(self._canvas, mmap_mode="r")
        return self._lut[canvas[start:stop]]

    def write_labels(self, path, *, header=None):
        """Write the label image to ``path``, a tile at a time for most formats.

        For ``.zarr``, ``.fits``, ``.tif`` and ``.npy`` every tile core is
        relabelled and written by one task on threads of this process (the
        stitched labels are a file of this process, which the workers of a
        remote cluster may not see), from the stitched labels on disk or in
        memory: the label image is never whole in memory. A PNG is encoded
        whole (see Raises). The file appears only when complete (written
        beside it, then moved into place); an existing one is replaced.

        Parameters
        ----------
        path : str or path-like
            ``.zarr`` (a Zarr array of int32, in chunks of ``tile_size``, one
            per tile core, so that no two tasks write the same chunk),
            ``.fits``/``.fit``/``.fts`` (int32; the data of a pre-sized file
            written through a memory map), ``.tif``/``.tiff`` (int32, an
            uncompressed TIFF, BigTIFF above 4 GB, written the same way),
            ``.npy``, or ``.png`` (16-bit, at most 65,535 labels, encoded
            whole in memory).
        header : astropy.io.fits.Header, astropy.wcs.WCS or None, default=None
            Header (or WCS) of the segmented image, whose celestial WCS the
            label image carries (FITS cards; for Zarr the attribute ``'wcs'``).

        Raises
        ------
        ValueError
            If ``path`` has another suffix; for ``.png``, if there are more
            than 65,535 sources, or if the labels are kept on disk and the
            label image does not fit in the available memory
            (:class:`~skimgcluster.exceptions.InsufficientMemoryError`, a
            ValueError): no PNG encoder of the usual libraries takes an image
            by parts, so write ``.zarr``, ``.fits`` or ``.tif`` instead.
        """
        from ._io import write_label_image, write_labels_by_parts

        self._check_open()
        if Path(path).suffix.lower() == ".png":
            if self.n_sources > 65535:
                raise ValueError(
                    f"a PNG label image holds labels 0..65535; this one has {self.n_sources} "
                    f"sources. Write a .tif, .fits or .zarr instead; got path={str(path)!r}."
                )
            labels = self._label_image
            if labels is None:  # read for the PNG only, not kept
                h, w = self.shape
                check_memory(
                    6.0 * h * w,  # the int32 labels and their uint16 copy
                    what=f"a PNG of the label image of shape {(h, w)}, encoded whole",
                    advice="Write the labels as .zarr, .fits or .tif, which are written a "
                    "tile at a time, instead.",
                )  # fmt: skip
                labels = self._lut[np.load(self._canvas, mmap_mode="r")]
            write_label_image(path, labels)
            return
        cores = _cores(self.shape, self.tile_size)
        in_memory = self._label_image is not None

        def write(target):
            if in_memory:  # already in this process: no task would save a copy
                for core in cores:
                    _write_core(self._label_image, None, target, core)
                return
            calls = [(_write_core, (str(self._canvas), self._lut, target, core), {})
                     for core in cores]  # fmt: skip
            _compute(calls, lambda done: None, local=True)

        write_labels_by_parts(
            path, self.shape, (self.tile_size, self.tile_size), write, header=header
        )

    def catalog(self, *, wcs=None):
        """Measurements of every source, one table for the whole image.

        Each source is measured by the tile that owns it, on that tile's
        background-subtracted maps (the same maps the whole image would give:
        see :func:`segment_tiled`), so the columns are those of
        :class:`SourceCatalog`. ``area`` counts the source's pixels in the
        stitched ``label_image``; where a few boundary pixels went to a
        neighbouring tile's source, the other measurements still include them.

        Parameters
        ----------
        wcs : astropy.wcs.WCS, astropy.io.fits.Header or None, default=None
            World coordinate system of the whole image, for ``ra`` and
            ``dec`` columns.

        Returns
        -------
        catalog : SourceCatalog
            One row per source of ``label_image``.
        """
        from ._catalog import SourceCatalog

        c = self._columns
        flux = c["flux"].reshape(-1, self.n_bands)
        return SourceCatalog.from_columns(_LazyLabels(self), c, flux, wcs=wcs)


class _LazyLabels:
    """The label image of a TiledSegmentation, read only if a catalog converts it to an array."""

    def __init__(self, result):
        self.result = result
        self.shape = result.shape

    def __array__(self, dtype=None, copy=None):
        array = self.result.label_image
        return array if dtype is None else array.astype(dtype)


def _write_core(canvas, lut, target, core):
    """Write the core ``core`` of the label image into ``target`` (a _LabelTarget)."""
    (r0, r1), (c0, c1) = core
    if lut is None:
        values = canvas[r0:r1, c0:c1]
    else:
        values = lut[np.load(canvas, mmap_mode="r")[r0:r1, c0:c1]]
    target.write(r0, c0, values)


def _cores(shape, tile_size):
    h, w = shape
    return [
        ((i, min(i + tile_size, h)), (j, min(j + tile_size, w)))
        for i in range(0, h, tile_size)
        for j in range(0, w, tile_size)
    ]




# -- input -------------------------------------------------------------------


def _is_dask_array(image):
    return type(image).__module__.startswith("dask.") and hasattr(image, "dask")


@dataclass(frozen=True)
class _MappedWindow:
    """A window of an array mapped from a file, opened where it is read.

    Sent to a worker process instead of the pixels, so that the driver never
    reads the image: the worker maps the file and reads its window only.
    """

    filename: str
    byte_offset: int
    shape: tuple
    dtype: object
    strides: tuple
    window: tuple

    def load(self):
        raw = np.memmap(self.filename, dtype=np.uint8, mode="r")
        array = np.ndarray(
            self.shape, dtype=self.dtype, buffer=raw, offset=self.byte_offset,
            strides=self.strides,
        )  # fmt: skip
        (r0, r1), (c0, c1) = self.window
        return np.array(array[r0:r1, c0:c1])


def _memmap_of(array):
    """The np.memmap (with a file name) that ``array`` is a view of, or None."""
    base = array
    while base is not None:
        if isinstance(base, np.memmap) and getattr(base, "filename", None):
            return base
        base = getattr(base, "base", None)
    return None


class _Source:
    """Windows of the image (and mask) in the form a task should receive them."""

    def __init__(self, image, mask):
        self.image = image
        self.mask = mask
        self.mapped = None
        if isinstance(image, np.ndarray):
            mm = _memmap_of(image)
            if mm is not None:
                start = image.__array_interface__["data"][0]
                base = mm.__array_interface__["data"][0]
                self.mapped = (
                    mm.filename, int(mm.offset) + start - base, image.shape, image.dtype,
                    image.strides,
                )  # fmt: skip

    def window(self, rows, cols):
        (r0, r1), (c0, c1) = rows, cols
        if self.mapped is not None:
            image = _MappedWindow(*self.mapped, window=(rows, cols))
        else:
            image = self.image[r0:r1, c0:c1]
        mask = None if self.mask is None else self.mask[r0:r1, c0:c1]
        return image, mask


def check_tiled_image(image, *, name="image"):
    """Shape, dtype and number of bands of an image that may be tiled, without reading it."""
    if not (isinstance(image, np.ndarray) or _is_dask_array(image)):
        return None
    if image.ndim not in (2, 3):
        raise ValueError(
            f"{name} must have shape (M, N) or (M, N, C); got shape {image.shape} "
            f"with {image.ndim} dimension(s)."
        )
    if np.dtype(image.dtype).kind not in "biuf":
        raise TypeError(
            f"{name} must have a real numeric dtype (bool, integer or float); "
            f"got dtype={image.dtype}."
        )
    if min(image.shape) == 0:
        raise ValueError(f"{name} must have no zero-sized axis; got shape {image.shape}.")
    return tuple(int(s) for s in image.shape)


# -- the plan ------------------------------------------------------------------


def resolve_tile_size(tile_size, shape):
    """The tile size to use for an image of ``shape``, or None for no tiling."""
    check_params(TILE_SIZE_CONSTRAINTS, {"tile_size": tile_size}, "segment")
    if tile_size is None:
        return None
    if isinstance(tile_size, str):
        return AUTO_TILE_SIZE if shape[0] * shape[1] > AUTO_TILE_ABOVE else None
    return int(tile_size)


def _span(start, stop, halo, size, box):
    """Window of a core along one axis: the halo added, aligned to the box grid."""
    lo = max(start - halo, 0) // box * box
    hi = -(-min(stop + halo, size) // box) * box
    return lo, min(hi, size)


def _max_halo(tile_size, halo):
    """Largest halo a tile grows to for a source that reaches its window's edge."""
    return max(tile_size, 4 * halo)


def _tile_seed(entropy, row, col):
    return int(np.random.SeedSequence(entropy, spawn_key=(row, col)).generate_state(1)[0])


def _base_entropy(random_state):
    """One integer from ``random_state``, from which every tile's seed is derived."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        return int(random_state)
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(0, 2**31 - 1))


# -- one tile -------------------------------------------------------------------


def _run_tile(segmenter, image, mask, *, spill=None, slots=1, **kwargs):
    """:func:`_segment_tile` on its share of the cores; its labels to ``spill`` if given.

    ``slots`` is how many tasks run at once on this machine (an int, or a
    dict by host name for a distributed cluster); the task gives numba (and
    :func:`._threads.threaded`) ``cpus // slots`` threads, so that tasks side
    by side do not each start a thread per core and fight over them.

    ``spill``, a folder, receives the kept labels as a ``.npy`` file whose
    path replaces them in the result: the driver then reads one tile's
    labels at a time instead of holding all of them. Only tasks of this
    machine's schedulers get one (see :func:`segment_tiled`).
    """
    import numba

    if isinstance(slots, dict):
        from distributed import get_worker
        from distributed.comm import get_address_host

        try:
            slots = slots.get(get_address_host(get_worker().address), 1)
        except ValueError:  # not in a worker
            slots = 1
    n_threads = max(1, min(_usable_cpus() // max(int(slots), 1), numba.config.NUMBA_NUM_THREADS))
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        result = _segment_tile(segmenter, image, mask, **kwargs)
    finally:
        numba.set_num_threads(previous)
    if spill is not None:
        _spill(result, spill)
    return result


def _spill(result, folder):
    """Save a tile's labels as a ``.npy`` file of ``folder``, its path in their place."""
    i, j = result["index"]
    (r0, r1), (c0, c1) = result["window"]
    path = Path(folder) / f"tile-r{i}c{j}-{r0}-{r1}-{c0}-{c1}.npy"
    np.save(path, result["labels"])
    result["labels"] = str(path)


def _segment_tile(segmenter, image, mask, *, index, window, core, shape, seed):
    """Segment one window; keep the sources whose peak lies in the core.

    Returns a dict of plain arrays: the labels of the kept sources (1..k,
    cropped to their bounding box), their catalog rows in whole-image
    coordinates, whether any of them reaches an inner edge of the window, and
    the warnings raised (re-emitted by the caller, once each).
    """
    from scipy import ndimage

    from ._catalog import SourceCatalog

    if isinstance(image, _MappedWindow):
        image = image.load()
    image = np.asarray(image)
    mask = None if mask is None else np.asarray(mask)
    (r0, r1), (c0, c1) = window
    (cr0, cr1), (cc0, cc1) = core
    segmenter = _with_seed(segmenter, seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seg = segmenter.segment_image(image, mask=mask)
    found = [(w.category, str(w.message)) for w in caught]
    local = seg.label_image
    n_local = int(local.max(initial=0))
    result = {"index": index, "warnings": found, "origin": (r0, c0), "window": window}
    if n_local == 0:
        result.update(labels=np.zeros((0, 0), np.int32), box=(r0, r0, c0, c0), touches=False,
                      columns=_empty_columns(image.shape[2] if image.ndim == 3 else 1))  # fmt: skip
        return result
    values = np.arange(1, n_local + 1)
    smoothed = np.nan_to_num(seg.maps.smoothed_luminosity, nan=-np.inf)
    present = np.bincount(local.ravel(), minlength=n_local + 1)[1:] > 0
    peaks = np.array(ndimage.maximum_position(smoothed, local, values), dtype=np.int64)
    peaks = peaks.reshape(-1, 2) + [r0, c0]
    owned = (
        present
        & (peaks[:, 0] >= cr0) & (peaks[:, 0] < cr1)
        & (peaks[:, 1] >= cc0) & (peaks[:, 1] < cc1)
    )  # fmt: skip
    keep = np.zeros(n_local + 1, dtype=bool)
    keep[1:] = owned
    kept_labels = np.where(keep[local], local, 0).astype(np.int32)
    # A kept source that reaches an edge of the window inside the image may be
    # larger than the window: the caller grows the halo and runs the tile again.
    h, w = local.shape
    edges = []
    if r0 > 0:
        edges.append(kept_labels[0, :])
    if r1 < shape[0]:
        edges.append(kept_labels[h - 1, :])
    if c0 > 0:
        edges.append(kept_labels[:, 0])
    if c1 < shape[1]:
        edges.append(kept_labels[:, w - 1])
    edge_values = np.unique(np.concatenate(edges)) if edges else np.empty(0, np.int32)
    touching = np.zeros(n_local + 1, dtype=bool)
    touching[edge_values] = True
    touching[0] = False
    # The catalog of the kept sources, measured on this tile's maps.
    seg.label_image = kept_labels
    cat = SourceCatalog(seg)
    kept = cat.label  # local values of the kept sources, increasing
    prefix = f"r{index[0]}c{index[1]}:"
    columns = {name: np.asarray(getattr(cat, name)) for name in MEASURED_COLUMNS}
    columns["x_centroid"] = columns["x_centroid"] + c0
    columns["y_centroid"] = columns["y_centroid"] + r0
    for name, offset in (("bbox_xmin", c0), ("bbox_xmax", c0), ("bbox_ymin", r0),
                         ("bbox_ymax", r0)):  # fmt: skip
        columns[name] = columns[name] + offset
    columns["cluster_id"] = np.array(
        [prefix + s if s else "" for s in cat.cluster_id.tolist()], dtype=object
    )
    columns["parent_id"] = np.array(
        [prefix + s if s else "" for s in cat.parent_id.tolist()], dtype=object
    )
    columns["flux"] = cat.flux.ravel()
    isolated = np.asarray(seg.isolated, dtype=bool)
    columns["isolated"] = np.append(isolated, False)[np.minimum(kept - 1, isolated.size)]
    columns["peak"] = peaks[kept - 1]
    columns["tile"] = np.tile(np.array(index, dtype=np.int64), (kept.size, 1))
    columns["truncated"] = touching[kept]
    # Kept sources numbered 1..k, cropped to the box that holds them.
    renumber = np.zeros(n_local + 1, dtype=np.int32)
    renumber[kept] = np.arange(1, kept.size + 1, dtype=np.int32)
    if kept.size:
        br0, br1 = columns["bbox_ymin"].min() - r0, columns["bbox_ymax"].max() - r0 + 1
        bc0, bc1 = columns["bbox_xmin"].min() - c0, columns["bbox_xmax"].max() - c0 + 1
    else:
        br0 = br1 = bc0 = bc1 = 0
    result.update(
        labels=renumber[kept_labels[br0:br1, bc0:bc1]],
        box=(r0 + br0, r0 + br1, c0 + bc0, c0 + bc1),
        touches=bool(touching[kept].any()),
        columns=columns,
    )
    return result


def _empty_columns(n_bands):
    columns = {name: np.empty(0) for name in MEASURED_COLUMNS}
    for name in ("label", "n_samples", "area", "bbox_xmin", "bbox_xmax", "bbox_ymin",
                 "bbox_ymax"):  # fmt: skip
        columns[name] = np.empty(0, dtype=np.int64)
    columns["cluster_id"] = np.empty(0, dtype=object)
    columns["parent_id"] = np.empty(0, dtype=object)
    columns["flux"] = np.empty(0)
    columns["isolated"] = np.empty(0, dtype=bool)
    columns["peak"] = np.empty((0, 2), dtype=np.int64)
    columns["tile"] = np.empty((0, 2), dtype=np.int64)
    columns["truncated"] = np.empty(0, dtype=bool)
    return columns


def _with_seed(segmenter, seed):
    from sklearn.base import clone

    from ._sampler import LuminositySampler

    tile = clone(segmenter)
    sampler = LuminositySampler() if tile.sampler is None else tile.sampler
    tile.set_params(sampler=sampler.set_params(random_state=seed), tile_size=None)
    return tile


# -- running the tiles ------------------------------------------------------------


def _scheduler_client():
    """The active distributed Client, or None."""
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:  # no client
        return None


def _compute(calls, progress, *, local=False):
    """Results of ``calls`` (function, args, kwargs), in order, on the active scheduler.

    ``progress(n_done)`` is called as tiles finish. Without Dask the calls
    run one after the other in this process; with ``local``, on threads of
    this process whatever the active scheduler (for calls on its own files).
    """
    try:
        import dask
    except ImportError:
        results = []
        for i, (func, args, kwargs) in enumerate(calls):
            results.append(func(*args, **kwargs))
            progress(i + 1)
        return results
    # Keys name the run, not the data: hashing the pixels of every window
    # would read the whole image in this process.
    prefix = f"skimgcluster-tile-{uuid.uuid4().hex[:12]}-"
    tasks = [
        dask.delayed(func, pure=False)(*args, **kwargs, dask_key_name=f"{prefix}{i}")
        for i, (func, args, kwargs) in enumerate(calls)
    ]
    client = None if local else _scheduler_client()
    if client is not None:
        from distributed import as_completed

        futures = client.compute(tasks)
        for done, _ in enumerate(as_completed(futures), start=1):
            progress(done)
        return client.gather(futures)
    from dask.callbacks import Callback

    counter = {"n": 0}

    def posttask(key, result, dsk, state, worker_id):
        name = key[0] if isinstance(key, tuple) else key
        if isinstance(name, str) and name.startswith(prefix):
            counter["n"] += 1
            progress(counter["n"])

    with Callback(posttask=posttask):
        return list(dask.compute(*tasks, scheduler="threads" if local else None))


# -- stitching -------------------------------------------------------------------


def _stitch(results, shape, cores, n_bands, canvas=None):
    """One provisional label image, its look-up table and one table, in tile order.

    Sources of different tiles that share at least half of the smaller one's
    pixels are one source: the larger is kept. Otherwise a pixel claimed by
    two sources goes to the one whose tile's core holds it (the earlier tile
    when neither does).

    ``canvas`` None stitches in memory; a path stitches into that ``.npy``
    file of int32 zeros, mapped for one tile at a time, and the tiles'
    labels may be paths of ``.npy`` files (read one at a time). The label
    image is ``lut[provisional]``, consecutive ``1..K``.
    """
    if canvas is None:
        in_memory = np.zeros(shape, dtype=np.int32)

        def open_canvas():
            return in_memory

    else:

        def open_canvas():
            return np.load(canvas, mmap_mode="r+")

    area = np.zeros(1, dtype=np.int64)  # area[g] = pixels of global label g
    boxes = [None]
    for t, res in enumerate(results):
        k = res["columns"]["label"].size
        offset = area.size - 1
        dropped = np.zeros(k + 1, dtype=bool)
        area = np.append(area, np.zeros(k, dtype=np.int64))
        c = res["columns"]
        corners = [
            c[name].tolist() for name in ("bbox_ymin", "bbox_ymax", "bbox_xmin", "bbox_xmax")
        ]
        boxes.extend(zip(*corners, strict=True))
        if k == 0:
            continue
        r0, r1, c0, c1 = res["box"]
        new = res["labels"]
        if isinstance(new, str):
            new = np.load(new)
        # A map of the file for this tile only: its pages leave this process after.
        label_image = sub = open_canvas()
        view = label_image[r0:r1, c0:c1]
        new_area = np.bincount(new.ravel(), minlength=k + 1)
        both = (new > 0) & (view > 0)
        if both.any():
            a = new[both].astype(np.int64)
            g = view[both].astype(np.int64)
            pairs, counts = np.unique(a * (area.size + 1) + g, return_counts=True)
            for pair, n in zip(pairs.tolist(), counts.tolist(), strict=True):
                la, lg = divmod(pair, area.size + 1)
                if dropped[la] or area[lg] == 0:
                    continue
                if n < _SAME_SOURCE_OVERLAP * min(new_area[la], area[lg]):
                    continue
                if new_area[la] > area[lg]:  # the same source, seen larger here
                    y0, y1, x0, x1 = boxes[lg]
                    sub = label_image[y0 : y1 + 1, x0 : x1 + 1]
                    sub[sub == lg] = 0
                    area[lg] = 0
                else:
                    dropped[la] = True
            view = label_image[r0:r1, c0:c1]
        incoming = np.where(dropped[new], 0, new)
        claim = incoming > 0
        taken = claim & (view > 0)
        if taken.any():
            # Pixels of both: to the source whose tile's core holds them.
            (cr0, cr1), (cc0, cc1) = cores[t]
            rows = np.arange(r0, r1)[:, None]
            cols = np.arange(c0, c1)[None, :]
            in_core = (rows >= cr0) & (rows < cr1) & (cols >= cc0) & (cols < cc1)
            lose = taken & ~in_core
            claim &= ~lose
            area -= np.bincount(view[taken & in_core], minlength=area.size)
        values = incoming[claim].astype(np.int64) + offset
        view[claim] = values
        area += np.bincount(values, minlength=area.size)
        del view, label_image, sub  # unmap the canvas until the next tile
    # Consecutive labels: the surviving sources in tile order.
    alive = area > 0
    alive[0] = False
    lut = np.zeros(area.size, dtype=np.int32)
    lut[alive] = np.arange(1, int(alive.sum()) + 1, dtype=np.int32)
    columns = {}
    for name in results[0]["columns"] if results else _empty_columns(n_bands):
        parts = [res["columns"][name] for res in results]
        if name == "flux":
            parts = [p.reshape(-1, n_bands) for p in parts]
        columns[name] = np.concatenate(parts) if parts else _empty_columns(n_bands)[name]
    keep = alive[1:]
    columns = {name: values[keep] for name, values in columns.items()}
    columns["label"] = np.arange(1, int(keep.sum()) + 1, dtype=np.int64)
    columns["area"] = area[alive]
    columns["flux"] = columns["flux"].ravel()
    columns["cluster_id"] = columns["cluster_id"].astype(str)
    columns["parent_id"] = columns["parent_id"].astype(str)
    provisional = in_memory if canvas is None else canvas
    return provisional, lut, columns


# -- the driver --------------------------------------------------------------------


def segment_tiled(segmenter, image, *, mask=None, tile_size, halo=None, callback=None):
    """Segment an image tile by tile on the active Dask scheduler.

    Parameters
    ----------
    segmenter : ImageSegmenter
        Segments each window.
    image : (M, N[, C]) ndarray, numpy.memmap or dask.array.Array
        The image. A memory-mapped array (or a view of one) is read by each
        task from its file, a dask array through its graph: the image is
        never read whole into one process.
    mask : (M, N) array of bool or None
        Pixels to exclude (True).
    tile_size : int
        Side of the tile cores, in pixels.
    halo : int or None
        Margin added around each core, in pixels; ``None`` means 3
        background boxes (``3 * background_box_size``, 192 pixels by
        default) or an eighth of ``tile_size``, whichever is larger. It is
        never less than 3 background boxes.
    callback : callable or None
        Called as ``callback('tiles', '<done> of <n> tiles')`` as tiles finish.

    Returns
    -------
    result : TiledSegmentation

    Notes
    -----
    **Windows.** Cores are the cells of a grid of ``tile_size`` pixels from
    the image's corner. Each window adds the halo to its core on every side
    inside the image, its edges rounded outwards to the grid of background
    boxes. Each window is segmented as an ordinary image, with its own
    random seed: ``np.random.SeedSequence(entropy, spawn_key=(row, col))``,
    with ``entropy`` the integer ``random_state`` (or one integer drawn
    from it), so the result does not depend on the scheduler, the number of
    workers or the order in which tiles finish.

    **Background and noise.** The sampler measures sky and noise in boxes of
    ``background_box_size`` pixels on a grid that starts at the image's
    corner, median-filters the mesh over 3 boxes and interpolates between box
    centres. Because windows start and end on that grid and the halo holds
    at least 3 boxes, a core gets the very same boxes, filtered values and
    interpolation as the whole image would: the maps have no seams, and no
    whole-image pass is needed. (Boxes are sub-sampled in windows of more
    than 2**22 pixels, as in whole images of that size; and the ratio of the
    smoothed to the pixel noise, a median over a window's boxes, may differ
    between windows by a fraction of a percent.)

    **Ownership.** A source belongs to the tile whose core holds its peak,
    the brightest pixel of the smoothed luminosity within the source: it
    lies at the same place in every window that holds the source whole, so
    exactly one tile keeps it, with its footprint, significance and
    hierarchy from that tile. Two kept sources of different tiles that
    share at least half of the smaller one's pixels are the same source:
    the larger is kept. A few boundary pixels claimed by two different
    sources go to the one whose tile's core holds them.

    **Sources larger than the halo.** A kept source that reaches an edge of
    its window inside the image may be cut by it. Such a tile is run again
    with twice the halo, until no kept source reaches the edge or the halo
    has reached ``max(tile_size, 4 * halo)``; sources still at the edge
    then are kept as they are and flagged in ``truncated``.
    """
    shape = check_tiled_image(image)
    if shape is None:
        image = np.asarray(image)
        shape = check_tiled_image(image)
    h, w = shape[:2]
    n_bands = shape[2] if len(shape) == 3 else 1
    if mask is not None:
        from ._validation import check_mask

        mask = check_mask(mask, (h, w))
    sampler = segmenter.checked_steps()[0]
    box = int(sampler.background_box_size)
    min_halo = _MIN_HALO_BOXES * box
    halo = max(min_halo, tile_size // 8) if halo is None else max(int(halo), min_halo)
    max_halo = _max_halo(tile_size, halo)
    check_params({"callback": ["callable", None]}, {"callback": callback}, "segment_tiled")
    on_disk = h * w > LABELS_ON_DISK_ABOVE
    if not on_disk:
        # The stitched label image is the one allocation of the image's size here.
        check_memory(
            4.0 * h * w,
            what=f"the label image of shape {(h, w)} ({format_bytes(4.0 * h * w)})",
            advice="Segment the image in parts, or on a machine with more memory.",
        )
    entropy = _base_entropy(sampler.random_state)
    source = _Source(image, mask)
    n_rows, n_cols = -(-h // tile_size), -(-w // tile_size)
    index = [(i, j) for i in range(n_rows) for j in range(n_cols)]
    cores = [
        ((i * tile_size, min((i + 1) * tile_size, h)), (j * tile_size, min((j + 1) * tile_size, w)))
        for i, j in index
    ]
    halos = np.full((n_rows, n_cols), halo, dtype=np.int64)
    folder = Path(tempfile.mkdtemp(prefix="skimgcluster-labels-")) if on_disk else None
    # Tasks of the local schedulers (threads, processes) save their labels to
    # the folder themselves: dask.compute returns all results at once, so
    # labels returned with them would all be in memory together. The workers
    # of a distributed cluster may not see this machine's folder: their
    # labels come back through the scheduler, one tile at a time as tiles
    # finish, and this process saves them (see finished()).
    spill = folder if _scheduler_client() is None else None
    try:
        slots = _task_slots(len(index))

        def call(t):
            (cr0, cr1), (cc0, cc1) = cores[t]
            i, j = index[t]
            rows = _span(cr0, cr1, int(halos[i, j]), h, box)
            cols = _span(cc0, cc1, int(halos[i, j]), w, box)
            data, window_mask = source.window(rows, cols)
            kwargs = dict(index=index[t], window=(rows, cols), core=cores[t], shape=(h, w),
                          seed=_tile_seed(entropy, i, j), spill=spill, slots=slots)  # fmt: skip
            return _run_tile, (segmenter, data, window_mask), kwargs

        def finished(t, res):
            """Keep a tile's result, or grow its halo: True if it must run again."""
            i, j = index[t]
            if res["touches"] and halos[i, j] < max_halo:
                halos[i, j] = min(2 * halos[i, j], max_halo)
                if isinstance(res["labels"], str):
                    Path(res["labels"]).unlink(missing_ok=True)
                return True
            if on_disk and not isinstance(res["labels"], str):
                _spill(res, folder)
            results[t] = res
            return False

        def progress(done):
            if callback is not None:
                callback("tiles", f"{done} of {len(index)} tiles")

        results = [None] * len(index)
        _run_all(call, finished, len(index), progress)
        _reemit(results)
        canvas = None
        if on_disk:
            canvas = str(folder / "labels.npy")
            np.lib.format.open_memmap(canvas, mode="w+", dtype=np.int32, shape=(h, w)).flush()
        provisional, lut, columns = _stitch(results, (h, w), cores, n_bands, canvas=canvas)
        for res in results:
            if isinstance(res["labels"], str):
                Path(res["labels"]).unlink(missing_ok=True)
        result = TiledSegmentation(provisional, lut, columns, shape=(h, w), n_bands=n_bands,
                                   tile_size=tile_size, halo=halos, folder=folder)  # fmt: skip
    except BaseException:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return result


def _run_all(call, finished, n, progress):
    """Run tiles ``0..n-1`` on the active scheduler until ``finished(t, result)`` is False.

    On a distributed cluster a tile whose halo grows runs again as soon as it
    is back; with the other schedulers such tiles run again together.
    """
    client = _scheduler_client()
    if client is None:
        todo = list(range(n))
        while todo:
            calls = [call(t) for t in todo]
            before = n - len(todo)  # tiles done in earlier rounds
            results = _compute(calls, lambda done, before=before: progress(before + done))
            todo = [t for t, res in zip(todo, results, strict=True) if finished(t, res)]
        return
    import dask
    from distributed import as_completed

    run = uuid.uuid4().hex[:12]

    def submit(t, attempt):
        func, args, kwargs = call(t)
        # Through dask.delayed, so that a window of a dask array is read by
        # the cluster as a dependency of the task, not by this process.
        task = dask.delayed(func, pure=False)(
            *args, **kwargs, dask_key_name=f"skimgcluster-tile-{run}-{t}-{attempt}"
        )
        return client.compute(task)

    futures = {submit(t, 0): (t, 0) for t in range(n)}
    queue = as_completed(list(futures))
    n_done = 0
    for future in queue:
        t, attempt = futures.pop(future)
        res = future.result()
        future.release()
        if finished(t, res):
            again = submit(t, attempt + 1)
            futures[again] = (t, attempt + 1)
            queue.add(again)
        else:
            n_done += 1
            progress(n_done)


def _usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _task_slots(n_tasks):
    """How many tile tasks run at once on each machine: an int, or {host: slots} for a cluster.

    Each task then gives numba ``cpus // slots`` threads (:func:`_run_tile`),
    so that tasks side by side do not each start a thread per core.
    """
    client = _scheduler_client()
    if client is not None:
        try:
            workers = client.scheduler_info(n_workers=-1)["workers"]  # all, not the first 5
        except TypeError:  # distributed before 2025.4 lists them all anyway
            workers = client.scheduler_info()["workers"]
        slots = {}
        for info in workers.values():
            slots[info["host"]] = slots.get(info["host"], 0) + int(info["nthreads"])
        return slots
    try:
        import dask
        import dask.local
        from dask.base import get_scheduler
    except ImportError:
        return 1
    if get_scheduler() is dask.local.get_sync:
        return 1
    workers = dask.config.get("num_workers", None) or _usable_cpus()
    return max(1, min(n_tasks, int(workers)))


def _reemit(results):
    """The tiles' warnings, once each; 'nothing above threshold' only if true of every tile."""
    from .exceptions import DegenerateDataWarning

    seen = {}
    for res in results:
        for category, message in res["warnings"]:
            seen.setdefault((category, message), []).append(res["index"])
    for (category, message), tiles in seen.items():
        if issubclass(category, DegenerateDataWarning) and len(tiles) < len(results):
            continue  # an empty tile of a non-empty image
        where = "every tile" if len(tiles) == len(results) else f"tiles {tiles}"
        warnings.warn(f"{message} (in {where})", category, stacklevel=4)
