"""Tiled segmentation: large images as overlapping tiles, on the active Dask scheduler.

The image is cut into a grid of *cores* of ``tile_size`` pixels; each core is
segmented inside a *window* that adds a halo around it, as an ordinary small
image (:meth:`ImageSegmenter.segment_image`), and the windows' results are
stitched into one label image and one catalog. How one image is segmented
does not change: this module only decides what each window is, which of its
sources to keep, and how to put them together.
"""

import uuid
import warnings
from dataclasses import dataclass
from numbers import Integral

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
    """

    def __init__(self, label_image, columns, *, n_bands, tile_size, halo):
        self.label_image = label_image
        self._columns = columns
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

    def __repr__(self):
        return (
            f"TiledSegmentation(n_sources={self.n_sources}, n_tiles={self.n_tiles}, "
            f"tile_size={self.tile_size}, shape={self.label_image.shape})"
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
        return SourceCatalog.from_columns(self.label_image, c, flux, wcs=wcs)


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


def _run_tile(segmenter, image, mask, *, index, window, core, shape, seed):
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


def _compute(calls, progress):
    """Results of ``calls`` (function, args, kwargs), in order, on the active scheduler.

    ``progress(n_done)`` is called as tiles finish. Without Dask the calls
    run one after the other in this process.
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
    client = _scheduler_client()
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
        return list(dask.compute(*tasks))


# -- stitching -------------------------------------------------------------------


def _stitch(results, shape, cores, n_bands):
    """One label image and one table from the tiles' results, in tile order.

    Sources of different tiles that share at least half of the smaller one's
    pixels are one source: the larger is kept. Otherwise a pixel claimed by
    two sources goes to the one whose tile's core holds it (the earlier tile
    when neither does).
    """
    label_image = np.zeros(shape, dtype=np.int32)
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
    # Consecutive labels: the surviving sources in tile order.
    alive = area > 0
    alive[0] = False
    lut = np.zeros(area.size, dtype=np.int32)
    lut[alive] = np.arange(1, int(alive.sum()) + 1, dtype=np.int32)
    label_image = lut[label_image]
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
    return label_image, columns


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
    results = [None] * len(index)
    todo = list(range(len(index)))
    n_done = 0

    def progress(done):
        if callback is not None:
            callback("tiles", f"{n_done + done} of {len(index)} tiles")

    while todo:
        calls = []
        for t in todo:
            (cr0, cr1), (cc0, cc1) = cores[t]
            i, j = index[t]
            rows = _span(cr0, cr1, int(halos[i, j]), h, box)
            cols = _span(cc0, cc1, int(halos[i, j]), w, box)
            data, window_mask = source.window(rows, cols)
            kwargs = dict(index=index[t], window=(rows, cols), core=cores[t], shape=(h, w),
                          seed=_tile_seed(entropy, i, j))  # fmt: skip
            calls.append((_run_tile, (segmenter, data, window_mask), kwargs))
        again = []
        for t, res in zip(todo, _compute(calls, progress), strict=True):
            i, j = index[t]
            if res["touches"] and halos[i, j] < max_halo:
                halos[i, j] = min(2 * halos[i, j], max_halo)
                again.append(t)
            else:
                results[t] = res
        n_done += len(todo) - len(again)
        todo = again
    _reemit(results)
    label_image, columns = _stitch(results, (h, w), cores, n_bands)
    return TiledSegmentation(label_image, columns, n_bands=n_bands, tile_size=tile_size,
                             halo=halos)  # fmt: skip


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
