"""The ``skimgcluster`` command line."""

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

from .exceptions import CommandError as _CommandError

__all__ = ["main", "run"]

DESCRIPTION = """\
Find structures in images (galaxies, stars, clumps) with the AstroLink
clustering algorithm: every source comes with its significance in sigma and
its place in a hierarchy of nested structures."""

EPILOG_MAIN = """\
examples:
  skimgcluster segment --output hubble_out
      segment the Hubble Deep Field image shipped with scikit-image
  skimgcluster segment field.fits --output out --labels-format fits --catalog-format ecsv
  skimgcluster segment --help
      the options of segment, its outputs and more examples

exit status: 0 on success, 1 on an error (one line on stderr), 2 on a usage
error, 130 when interrupted (Ctrl-C).
"""

EPILOG_SEGMENT = """\
examples:
  skimgcluster segment --output hubble_out
      segment the Hubble Deep Field image shipped with scikit-image
  skimgcluster segment deep_field.tif --output out --seed 1 --n-samples 2000000
  skimgcluster segment photo.png --output out --color-scale 0 --overwrite
  skimgcluster segment image.fits --output out --hdu SCI --catalog-format ecsv
      a FITS image: labels.fits carries the image's WCS, the catalog RA and Dec
  skimgcluster segment f444w.fits f277w.fits f150w.fits --output out
      three single-band FITS files of the same field, as three bands
  skimgcluster segment image.png --output out --plots all --quiet
  skimgcluster segment --separate a.fits b.fits c.tif --output out --workers 2
      three separate images, two at a time: out/a/, out/b/ and out/c/
  skimgcluster segment --separate images/ "more/*.fits" --output out
      every image file of the folder images/ and every file the pattern matches

outputs (in DIR, all or none: they are written to a temporary folder and moved
into DIR together once all succeeded; existing files are never replaced without
--overwrite, and are left as they were if the run fails or is interrupted;
with --separate, DIR/NAME for each image NAME.ext, all or none per image):
  labels.png            label image, 0 = background, each source its value
                        in the label column of sources.csv (16-bit PNG;
                        labels.tif above 65535 labels or for a tiled image
                        stitched on disk, labels.fits for FITS input,
                        labels.zarr, a folder, for Zarr input or with
                        --labels-format zarr; FITS, TIFF and Zarr labels of
                        tiled images are written a tile at a time, a PNG
                        whole in memory)
  sources.csv           one row per source: label, cluster id, parent id,
                        significance, samples, area, centroid (RA, Dec with a
                        WCS), bounding box, shape, flux per band
  overview.png          image, luminosity, samples and sources side by side
  segmentation.png      source boundaries over the image       (--plots)
  ordered_density.png   AstroLink's ordered-density plot        (--plots)
  hierarchy.png         the hierarchy of nested clusters        (--plots)

progress goes to stderr (a bar on a terminal, plain lines otherwise, nothing
with --quiet); the last line on stdout is a summary: sources found and time.
With --separate, an image that fails is reported on stderr by its name, the
others still finish, and the exit status is 1 if any failed.
"""

# Figures the command line can write: --plots name -> file name (_figure draws them).
PLOTS = {
    "overview": "overview.png",
    "segmentation": "segmentation.png",
    "density": "ordered_density.png",
    "hierarchy": "hierarchy.png",
}

LABEL_FORMATS = {"png": ".png", "tif": ".tif", "fits": ".fits", "npy": ".npy", "zarr": ".zarr"}

# Rows and columns of the chunks in which a tiled FITS or Zarr image is read.
_READ_CHUNK = 512
CATALOG_FORMATS = {"csv": ".csv", "ecsv": ".ecsv", "fits": ".fits"}


def _plot_list(text):
    """``--plots``: a comma-separated list of PLOTS names, 'all' or 'none'."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["all"]:
        return list(PLOTS)
    if names == ["none"] or not names:
        return []
    unknown = [n for n in names if n not in PLOTS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown plot {unknown[0]!r}; choose from {', '.join(PLOTS)}, 'all' or 'none'"
        )
    return list(dict.fromkeys(names))


def _hdu(text):
    """``--hdu``: an index or an EXTNAME."""
    return int(text) if text.lstrip("-").isdigit() else text


def _planes(text):
    """``--planes``: 'bands' or a plane index."""
    if text == "bands":
        return text
    if text.isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"expected 'bands' or a plane number >= 0; got {text!r}")


def _positive_int(text):
    """``--tile-size``, ``--workers``: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; got {text!r}")
    return value


def _parser():
    parser = argparse.ArgumentParser(
        prog="skimgcluster",
        description=DESCRIPTION,
        epilog=EPILOG_MAIN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    seg = sub.add_parser(
        "segment",
        help="segment an image into sources",
        description=(
            "Segment an image into sources: PNG, JPEG, TIFF (16-bit and float included) or "
            "FITS (2-D, a 3-D cube of bands, or several single-band files as bands) or a "
            "Zarr array (a folder ending in .zarr)."
        ),
        epilog=EPILOG_SEGMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    seg.add_argument(
        "images",
        nargs="*",
        metavar="IMAGE",
        help="image file, or several FITS files as bands (with --separate: files, folders "
        "or patterns, each file an image of its own); "
        "without it, skimage.data.hubble_deep_field()",
    )
    seg.add_argument(
        "--separate", action="store_true",
        help="segment each IMAGE as a separate image, in its own output folder DIR/NAME "
        "(in parallel with --workers or --scheduler); a folder stands for the image files "
        "in it, a pattern (quoted: 'fields/*.fits') for the files it matches. Without it, "
        "several FITS files are the bands of one image",
    )  # fmt: skip
    seg.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    inputs = seg.add_argument_group("input")
    inputs.add_argument(
        "--hdu", type=_hdu, metavar="HDU",
        help="FITS HDU, by index or EXTNAME (default: the first holding an image)",
    )  # fmt: skip
    inputs.add_argument(
        "--planes", type=_planes, metavar="bands|K",
        help="a TIFF stack of image planes (pages, Z, time): 'bands' reads them as the "
        "bands of one image, K reads plane K only (default: refuse a stack, which is "
        "ambiguous; the channels of an ImageJ or OME-TIFF are bands anyway)",
    )  # fmt: skip
    params = seg.add_argument_group("parameters")
    params.add_argument("--seed", type=int, default=0, help="random seed of the sampling (0)")
    params.add_argument("--n-samples", type=int, help="number of sampled points (auto)")
    params.add_argument(
        "--color-scale", type=float, help="pixels a unit of colour fraction is worth (20)"
    )
    # The former spelling: still accepted, with a FutureWarning from the sampler.
    params.add_argument("--colour-scale", type=float, help=argparse.SUPPRESS)
    params.add_argument(
        "--min-significance", type=float, help="lowest significance of a source, sigma (2.25)"
    )
    params.add_argument(
        "--detection-threshold", type=float, help="noise sigmas to be sampled (3.5)"
    )
    scale = seg.add_argument_group(
        'large images (need the dask extra: pip install "skimgcluster[dask]")'
    )
    scale.add_argument(
        "--tile-size", type=_positive_int, metavar="N",
        help="segment in tiles of N x N pixels with a halo, stitched into one label image "
        "(default: tiles of 2048 for images above 2**25 pixels, else none)",
    )  # fmt: skip
    where = scale.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=_positive_int, metavar="N",
        help="run the tiles on a local Dask cluster of N worker processes, closed at the end",
    )  # fmt: skip
    where.add_argument(
        "--scheduler", metavar="ADDRESS",
        help="run the tiles on an existing Dask cluster (e.g. tcp://10.0.0.5:8786)",
    )  # fmt: skip
    outputs = seg.add_argument_group("outputs")
    outputs.add_argument(
        "--labels-format", choices=["auto", *LABEL_FORMATS], default="auto",
        help="format of the label image; auto: fits for FITS input, zarr for Zarr input, "
        "else png (tif above 65535 labels or for a tiled image stitched on disk)",
    )  # fmt: skip
    outputs.add_argument(
        "--catalog-format", choices=list(CATALOG_FORMATS), default="csv",
        help="format of the source catalog (csv; ecsv and fits need astropy)",
    )  # fmt: skip
    outputs.add_argument(
        "--plots", type=_plot_list, default=["overview"], metavar="LIST",
        help=f"figures to write: comma-separated from {', '.join(PLOTS)}; "
        "'all' or 'none' (overview)",
    )  # fmt: skip
    outputs.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    outputs.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    outputs.add_argument(
        "--traceback", action="store_true",
        help="on an error, print the full Python traceback before the one-line message",
    )  # fmt: skip
    return parser


class _Progress:
    """Progress of a command's stages on stderr.

    On a terminal, one tqdm bar of the stages done, with the current stage and
    the elapsed time. Anywhere else (a file, a pipe, CI's log) one plain line
    per stage, with the time it started. Nothing at all when ``quiet``.
    """

    _FORMAT = "[{bar:20}] {n_fmt}/{total_fmt} {desc} ({elapsed_s:.1f} s)"

    def __init__(self, n_stages, *, quiet=False, stream=None):
        self.stream = sys.stderr if stream is None else stream
        self.n_stages = max(int(n_stages), 1)
        self.quiet = quiet
        self.tty = not quiet and _isatty(self.stream)
        self.start = time.perf_counter()
        self.message = ""
        self._bar = None  # created with the first stage: nothing is drawn before

    def elapsed(self):
        return time.perf_counter() - self.start

    def _line(self, message):
        print(f"[{self.elapsed():6.1f} s] {message}", file=self.stream, flush=True)

    def update(self, message):
        """Change the current stage's message (e.g. tiles done) without starting a new one."""
        if self.quiet or message == self.message:
            return
        self.message = message
        if self._bar is not None:
            self._bar.set_description_str(message)
        elif not self.tty:
            self._line(message)

    def __call__(self, message):
        """Start the next stage."""
        if self.quiet:
            return
        self.message = message
        if not self.tty:
            self._line(message)
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.n_stages, file=self.stream, bar_format=self._FORMAT, ascii="-#",
                mininterval=0, dynamic_ncols=False, desc=message,
            )  # fmt: skip
            return
        self._bar.set_description_str(message, refresh=False)
        if self._bar.n < self.n_stages - 1:
            self._bar.update(1)
        else:
            self._bar.refresh()

    def note(self, message):
        """Print a line of its own (a warning) without breaking the bar."""
        if self._bar is None:
            print(message, file=self.stream, flush=True)
        else:
            self._bar.write(message, file=self.stream)

    def close(self):
        """Fill the bar, say done and end its line."""
        if self._bar is not None:
            self._bar.n = self.n_stages
            self._bar.set_description_str("done", refresh=False)
            self._bar.close()
            self._bar = None


def _isatty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _check_inputs(args):
    """Refuse unreadable input combinations before anything is read."""
    from ._files import is_fits_path
    from ._io import is_zarr_path

    paths = args.images
    zarr = [is_zarr_path(p) for p in paths]
    if any(zarr) and len(paths) > 1:
        raise _CommandError("a Zarr image is read alone; several images are bands only for FITS")
    for path in paths:
        if is_zarr_path(path):
            if not Path(path).is_dir():
                raise FileNotFoundError(f"no such Zarr store (a folder): {path}")
            continue
        if Path(path).is_dir():
            raise _CommandError(f"cannot read {path} as an image: it is a folder")
        if not Path(path).is_file():
            raise FileNotFoundError(f"no such image file: {path}")
    fits = [is_fits_path(p) for p in paths]
    if any(fits) and not all(fits):
        raise _CommandError("several images are read as bands only if all are FITS files")
    if len(paths) > 1 and not all(fits):
        raise _CommandError(
            f"got {len(paths)} images; several images are combined as bands only for FITS files"
        )
    if args.hdu is not None and not (paths and all(fits)):
        name = paths[0] if paths else "skimage.data.hubble_deep_field()"
        raise _CommandError(f"--hdu applies to FITS files only; {name} is not one")
    if args.planes is not None and not (
        len(paths) == 1 and Path(paths[0]).suffix.lower() in (".tif", ".tiff")
    ):
        raise _CommandError("--planes applies to a TIFF file only")
    if any(zarr):
        return False
    return bool(paths) and all(fits)


def _check_astropy(args, fits_input):
    """FITS and ECSV outputs need astropy: say so before the run, not after it."""
    from ._files import import_astropy

    if fits_input:
        import_astropy("reading FITS")
    if args.labels_format == "fits":
        import_astropy("--labels-format fits")
    if args.catalog_format in ("ecsv", "fits"):
        import_astropy(f"--catalog-format {args.catalog_format}")


def _read(args, progress):
    """The image, its mask and its celestial WCS (or None)."""
    from ._fits import read_fits
    from ._io import read_image_file

    paths = args.images
    if not paths:
        import skimage.data

        progress("reading skimage.data.hubble_deep_field()")
        return skimage.data.hubble_deep_field(), None, None
    progress(f"reading {', '.join(paths)}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lazy = _read_lazily(args, paths)
        if lazy is not None:
            found = lazy
        elif args.fits_input:
            image = read_fits(
                paths if len(paths) > 1 else paths[0],
                hdu=args.hdu,
                _before_decoding=_check_run_memory,
            )
            found = image.data, image.mask, image.wcs
        else:
            data, mask = read_image_file(paths[0], args.planes, before_decoding=_check_run_memory)
            found = data, mask, None
    _report_warnings(caught, args, progress)
    return found


def _read_lazily(args, paths):
    """A FITS or Zarr image that will be tiled, as a dask array read by sections; else None.

    The header (or the Zarr metadata) gives the size, and so whether the image
    is tiled; an image that is not tiled is read whole.
    """
    from ._fits import read_fits
    from ._io import is_zarr_path, read_zarr
    from ._tiling import resolve_tile_size

    zarr = is_zarr_path(paths[0])
    if not (args.fits_input or zarr):
        return None
    if args.fits_input:
        try:
            import dask.array  # noqa: F401
        except ImportError:
            return None  # read whole, as without the dask extra
        image = read_fits(paths if len(paths) > 1 else paths[0], hdu=args.hdu,
                          chunks=_READ_CHUNK)  # fmt: skip
        found = image.data, None, image.wcs
    else:
        found = read_zarr(Path(paths[0]), _READ_CHUNK) + (None,)
    tile_size = "auto" if args.tile_size is None else args.tile_size
    shape = found[0].shape
    tiled = resolve_tile_size(tile_size, shape)
    if tiled is not None and max(shape[:2]) > tiled:
        return found
    if zarr:  # segmented whole: it must fit, as any image read whole
        _check_run_memory(shape[:2] + (shape[2] if len(shape) == 3 else 1,), found[0].dtype)
        return found
    return None


def _check_run_memory(shape, dtype):
    """Refuse, before decoding it, an image that the segmentation could not hold."""
    import numpy as np

    from ._sampler import LuminositySampler

    LuminositySampler().check_memory(np.broadcast_to(np.zeros((), dtype), shape), None)


def _report_warnings(caught, args, progress):
    for w in caught:
        if not args.quiet:
            progress.note(f"skimgcluster: warning: {w.message}")


def _label_names(args):
    """Possible file names of the label image (two when it depends on the labels)."""
    fmt = args.labels_format
    if fmt == "auto":
        from ._io import is_zarr_path

        if args.fits_input:
            return ["labels.fits"]
        # A Zarr image may be larger than memory: its labels are written as
        # Zarr, a tile at a time, rather than as a PNG from memory.
        if args.images and is_zarr_path(args.images[0]):
            return ["labels.zarr"]
        return ["labels.png", "labels.tif"]
    return [f"labels{LABEL_FORMATS[fmt]}"]


def _output_names(args, n_labels=None, *, on_disk=False):
    """File names of the outputs; every candidate label name if ``n_labels`` is None.

    ``on_disk``: the labels are a tiled result's, stitched on disk; of PNG
    and TIFF, only TIFF is then written a tile at a time.
    """
    labels = _label_names(args)
    if n_labels is not None and len(labels) > 1:
        labels = [labels[0] if n_labels <= 65535 and not on_disk else labels[1]]
    names = {"labels": labels} if n_labels is None else {"labels": labels[0]}
    names["sources"] = f"sources{CATALOG_FORMATS[args.catalog_format]}"
    for name in args.plots:
        names[name] = PLOTS[name]
    return names


def _check_output(args):
    """The output folder, and what is in the way of the outputs, before the run."""
    if not args.output:
        raise _CommandError("--output must name a folder; got an empty string")
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise _CommandError(f"output {out} exists and is not a folder")
    names = _output_names(args)
    candidates = [*names.pop("labels"), *names.values()]
    for name in candidates:
        target = out / name
        if target.is_dir() and not name.endswith(".zarr"):
            raise _CommandError(f"{target} is a folder, in the way of an output; move it away")
    existing = [str(out / n) for n in candidates if os.path.lexists(out / n)]
    if existing and not args.overwrite:
        raise _CommandError(f"{', '.join(existing)} already exist(s); pass --overwrite to replace")
    return out


@contextlib.contextmanager
def _sigint_deferred(*, reraise=True):
    """Hold Ctrl-C back while files are moved or removed; then raise it (if ``reraise``)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.SIG_DFL)
    if received and reraise:
        raise KeyboardInterrupt


class _Staging:
    """A temporary folder beside the output folder, whose files move into it together.

    If the output folder exists, the temporary one is a hidden folder inside
    it, so that every file moves by an atomic rename on the same file system;
    otherwise it is beside it, and becomes it by one rename. Until
    :meth:`commit`, nothing in the output folder has changed.
    """

    def __init__(self, out):
        self.out = out
        self.existed = out.is_dir()
        self.created = []  # folders made for the output folder, outermost first
        if self.existed:
            parent, prefix = out, ".skimgcluster-"
        else:
            parent, prefix = out.parent, f".{out.name}."
            missing = [p for p in [parent, *parent.parents] if not p.exists()]
            parent.mkdir(parents=True, exist_ok=True)
            self.created = missing[::-1]
        self.root = Path(tempfile.mkdtemp(prefix=prefix, suffix=".part", dir=parent))
        # mkdtemp makes a folder only its owner can enter; when the whole
        # folder becomes the output, give it what mkdir would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.root, 0o777 & ~umask)

    def path(self, name):
        return self.root / name

    def commit(self, names):
        """Move the files ``names`` into the output folder: all of them, or none."""
        with _sigint_deferred():
            if not self.existed:
                os.rename(self.root, self.out)
                self.root = None
                return
            previous = self.root / ".previous"
            previous.mkdir()
            moved = []
            try:
                for name in names:
                    target = self.out / name
                    had = os.path.lexists(target)
                    moved.append((name, had))
                    if had:
                        os.replace(target, previous / name)
                    os.replace(self.root / name, target)
            except BaseException:
                for name, had in reversed(moved):  # put the previous outputs back
                    target = self.out / name
                    if had and os.path.lexists(previous / name):
                        os.replace(previous / name, target)
                    elif not had:
                        target.unlink(missing_ok=True)
                raise

    def discard(self, *, failed):
        """Remove the temporary folder (and, after a failure, the folders made for it)."""
        with _sigint_deferred(reraise=False):
            if self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)
                self.root = None
            if failed:
                for folder in reversed(self.created):
                    try:
                        folder.rmdir()
                    except OSError:
                        break


def _figure(name, image, result):
    from . import _plotting

    if hasattr(result, "write_labels"):  # tiled: drawn from a downsampled view
        return _plotting.plot_tiled(image, result, kind=name)
    if name == "overview":
        return _plotting.plot_overview(image, result)
    if name == "segmentation":
        return _plotting.plot_segmentation(image, result)
    if name == "density":
        return _plotting.plot_ordered_density(result)
    return _plotting.plot_hierarchy(result)


def _segment_command(args, progress):
    # In a new environment (no compiled kernels cached yet) a second process
    # compiles those the run needs after its sampling from now on, while the
    # imports, the checks and the reading go on here; it does nothing once
    # they are cached, and the run's result does not depend on it.
    from ._compiling import compile_in_background

    compile_in_background()
    # Everything that can be refused is checked first: the output folder and
    # what is in its way, the inputs, the formats; then the image is read.
    args.fits_input = _check_inputs(args)
    _check_astropy(args, args.fits_input)
    out = _check_output(args)
    params = {
        "n_samples": args.n_samples,
        "color_scale": args.color_scale,
        "colour_scale": args.colour_scale,
        "min_significance": args.min_significance,
        "detection_threshold": args.detection_threshold,
    }
    params = {k: v for k, v in params.items() if v is not None}
    staging = _Staging(out)
    failed = True
    try:
        image, mask, wcs = _read(args, progress)
        if args.labels_format in ("auto", "fits") and (args.fits_input or wcs is not None):
            from ._files import import_astropy
            from ._fits import label_header

            label_header(wcs, *import_astropy("--labels-format fits"))
        result = _run(args, progress, image, mask, params)
        try:
            # A tiled result's labels are consecutive: the largest is the number
            # of sources, known without reading them.
            tiled = hasattr(result, "write_labels")
            names = _output_names(
                args, result.n_sources if tiled else int(result.label_image.max()),
                on_disk=tiled and result.on_disk,
            )  # fmt: skip
            _write(args, progress, staging, names, image, result, wcs)
            staging.commit(list(names.values()))
        finally:
            if hasattr(result, "close"):  # a tiled result's labels kept on disk
                result.close()
        failed = False
    finally:
        staging.discard(failed=failed)
    return result


def _run(args, progress, image, mask, params):
    from ._segment import segment

    started = []

    def stage(name, detail):
        if name == "tiles":  # one stage for all tiles, its message counting them
            if not started:
                started.append(True)
                progress(f"segmenting tiles: {detail}")
            else:
                progress.update(f"segmenting tiles: {detail}")
            return
        progress(f"{name} {detail}".strip())

    tile_size = "auto" if args.tile_size is None else args.tile_size
    _freeze_heap()
    with _dask_cluster(args, progress), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = segment(
            image, mask=mask, random_state=args.seed, callback=stage, tile_size=tile_size,
            **params,
        )  # fmt: skip
    _report_warnings(caught, args, progress)
    return result


# How long the tiles of --workers wait for a worker when the local cluster has none.
_NO_WORKERS_TIMEOUT = "60s"
# How long --scheduler tries to connect before the run ends in an error.
_CONNECT_TIMEOUT = "10s"


@contextlib.contextmanager
def _dask_cluster(args, progress):
    """The Dask client of ``--workers`` or ``--scheduler`` while tiles run, closed after."""
    if args.workers is None and args.scheduler is None:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        option = "--workers" if args.workers is not None else "--scheduler"
        raise ImportError(
            f'{option} needs dask.distributed: pip install "skimgcluster[dask]"'
        ) from None
    if args.workers is not None:
        import dask
        from distributed.scheduler import NoWorkerError

        progress.note(f"skimgcluster: starting a local Dask cluster of {args.workers} workers")
        # A tile that no worker can run fails after a while instead of waiting
        # forever for a cluster that has lost all its workers (a heavily loaded
        # machine has made its scheduler remove both, and nothing starts others).
        with (
            dask.config.set({"distributed.scheduler.no-workers-timeout": _NO_WORKERS_TIMEOUT}),
            LocalCluster(
                n_workers=args.workers, threads_per_worker=1, processes=True,
                dashboard_address=":0",
            ) as cluster,
            Client(cluster) as client,
        ):  # fmt: skip
            try:
                yield client
            except NoWorkerError as exc:
                raise _CommandError(f"the local Dask cluster lost its workers: {exc}") from None
        return
    try:
        client = Client(args.scheduler, timeout=_CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise _CommandError(f"cannot reach the Dask scheduler at {args.scheduler}: {exc}") from None
    with client:
        yield client


def _write(args, progress, staging, names, image, result, wcs):
    """Write every output into the staging folder."""
    from ._io import save_figure, write_label_image

    progress("measuring the sources")
    catalog = result.catalog(wcs=wcs)
    progress(f"writing {names['labels']} and {names['sources']} to {args.output}")
    label_path = staging.path(names["labels"])
    tiled = hasattr(result, "write_labels")
    if tiled:
        # A tile at a time but for PNG, from the labels stitched on disk.
        result.write_labels(label_path, header=wcs)
    else:
        write_label_image(label_path, result.label_image, header=wcs)
    catalog.write(staging.path(names["sources"]), format=args.catalog_format, overwrite=True)
    for name in args.plots:
        progress(f"drawing {names[name]}")
        if tiled and name in ("density", "hierarchy"):
            # A tiled result keeps no whole-image point cloud or hierarchy to draw.
            progress.note(f"skimgcluster: note: {names.pop(name)} is not drawn for a tiled image")
            continue
        save_figure(staging.path(names[name]), _figure(name, image, result), dpi=120)


def _n_stages(args):
    # reading, sampling, clustering, labelling, measuring, writing, one per plot
    return 6 + len(args.plots)


def main(argv=None):
    """Run the command line; return the exit status."""
    # Ctrl-C at any moment, the imports of start-up included, ends in one line
    # and status 130: nothing heavy is imported before this point.
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("skimgcluster: interrupted", file=sys.stderr, flush=True)
        return 130


def _freeze_heap(at_exit=False):
    """Exempt the objects alive now from the garbage collector's full passes.

    The command's imports leave a few hundred thousand long-lived objects
    that every full collection walks: while kernels compile (which makes
    garbage at a high rate) and once more when the interpreter exits.
    Frozen (``gc.freeze``), they are skipped; what is made later is
    collected as usual. Measured on the Hubble Deep Field: about 0.8 s
    less at exit, and 1-3 s less CPU in a first run. Only in the process
    :func:`run` owns (never in a caller of :func:`main`); before the exit
    (``at_exit``) everything is frozen, before that only once, after the
    imports, so that no garbage of one image of a batch is kept for the
    rest of it.
    """
    import gc

    if _HEAP["owned"] and (at_exit or not _HEAP["frozen"]):
        _HEAP["frozen"] = True
        gc.freeze()


# Whether run() owns this process, and whether _freeze_heap has frozen the
# imports' objects in it.
_HEAP = {"owned": False, "frozen": False}


def run():
    """Run the command line as the process: exit with its status."""
    _HEAP["owned"] = True
    status = main()
    _freeze_heap(at_exit=True)
    if status == 130:
        # Python ends a process whose KeyboardInterrupt went through some
        # C-level calls (imports, runpy) by the signal itself (status -2),
        # even though main() handled it: leave at once, with the status promised.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(status)


# File name endings of the images a folder given to --separate stands for.
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".zarr")


def _image_name(path):
    """The name of an image's output folder: its file name without the image suffix."""
    from ._files import FITS_SUFFIXES

    name = Path(path).name
    for suffix in sorted(FITS_SUFFIXES + _IMAGE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return Path(name).stem or name


def _expand_images(items):
    """The images of ``--separate``: files, the image files of folders, pattern matches."""
    import glob

    from ._files import is_fits_path

    paths = []
    for item in items:
        if glob.has_magic(item):
            found = sorted(glob.glob(item))
            if not found:
                raise _CommandError(f"no file matches the pattern {item!r}")
            paths.extend(found)
        elif Path(item).is_dir() and not item.rstrip("/").lower().endswith(".zarr"):
            found = sorted(
                str(p) for p in Path(item).iterdir()
                if not p.name.startswith(".")
                and (is_fits_path(p) or p.name.lower().endswith(_IMAGE_SUFFIXES))
            )  # fmt: skip
            if not found:
                raise _CommandError(f"the folder {item} holds no image file")
            paths.extend(found)
        else:
            paths.append(item)
    paths = list(dict.fromkeys(paths))
    names = {}
    for path in paths:
        name = _image_name(path)
        if name in names:
            raise _CommandError(
                f"{names[name]} and {path} would share the output folder {name}; "
                "rename one, or segment them in two runs"
            )
        names[name] = path
    return names


def _one_image(args):
    """Segment the one image of ``args`` (a copy of the batch's), writing its outputs.

    Runs in this process or in a Dask worker; returns the number of sources.
    """
    if args.on_worker:
        import dask

        # The image's tiles run one after the other in this worker: the
        # cluster's workers are busy with the other images.
        with dask.config.set(scheduler="synchronous"):
            return _segment_command(args, _Progress(1, quiet=True)).n_sources
    return _segment_command(args, _Progress(1, quiet=True)).n_sources


def _batch(args, progress):
    """``--separate``: each image on its own, in parallel on a cluster; failures named."""
    import copy

    if not args.images:
        raise _CommandError("--separate needs the images to segment (files, folders or patterns)")
    images = _expand_images(args.images)
    if not args.output:
        raise _CommandError("--output must name a folder; got an empty string")
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise _CommandError(f"output {out} exists and is not a folder")
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    jobs = {}
    for name, path in images.items():
        job = copy.copy(args)
        job.images, job.output, job.quiet = [path], str(out / name), True
        job.separate, job.workers, job.scheduler, job.on_worker = False, None, None, False
        jobs[name] = job
    n = len(jobs)
    progress(f"segmenting {n} images")
    done, failed, n_sources = 0, {}, 0

    def finished(name, result=None, error=None):
        nonlocal done, n_sources
        done += 1
        if error is None:
            n_sources += result
        else:
            failed[name] = error
            if args.traceback:
                progress.note(_traceback(error).rstrip("\n"))
            progress.note(f"skimgcluster: error: {images[name]}: {_first_line(error)}")
        progress.update(f"{done} of {n} images done")

    with _dask_cluster(args, progress) as client:
        if client is None:
            for name, job in jobs.items():
                try:
                    finished(name, _one_image(job))
                except (_CommandError, ImportError, ValueError, TypeError, OSError,
                        MemoryError) as exc:  # fmt: skip
                    finished(name, error=exc)
        else:
            import uuid

            from distributed import as_completed

            run = uuid.uuid4().hex[:8]
            futures = {}
            for name, job in jobs.items():
                job.on_worker = True
                future = client.submit(_one_image, job, key=f"skimgcluster-image-{run}-{name}",
                                       pure=False)  # fmt: skip
                futures[future] = name
            for future in as_completed(futures):
                try:
                    finished(futures[future], future.result())
                except Exception as exc:  # whatever the image raised, or a lost worker
                    finished(futures[future], error=exc)
    if made and not any(out.iterdir()):
        out.rmdir()
    return n - len(failed), n, n_sources, [images[name] for name in failed]


def _main(argv):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.separate:
        return _main_batch(args)
    progress = _Progress(_n_stages(args), quiet=args.quiet)
    try:
        try:
            result = _segment_command(args, progress)
        finally:
            progress.close()
        print(
            f"found {result.n_sources} sources in {progress.elapsed():.1f} s -> {args.output}",
            flush=True,
        )
        return 0
    except (_CommandError, FileNotFoundError, FileExistsError, ImportError, ValueError,
            TypeError, OSError) as exc:  # fmt: skip
        _error(exc, args)
        return 1
    except MemoryError as exc:  # an allocation the memory guard could not foresee
        _error(exc, args, prefix="out of memory: ")
        return 1


def _main_batch(args):
    progress = _Progress(1, quiet=args.quiet)
    try:
        try:
            n_ok, n, n_sources, failed = _batch(args, progress)
        finally:
            progress.close()
    except (_CommandError, ImportError, ValueError, OSError) as exc:
        _error(exc, args)
        return 1
    summary = f"segmented {n_ok} of {n} images, {n_sources} sources, in {progress.elapsed():.1f} s"
    if failed:
        summary += f"; failed: {', '.join(failed)}"
    print(f"{summary} -> {args.output}", flush=True)
    return 1 if failed else 0


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _traceback(exc):
    import traceback

    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _error(exc, args, prefix=""):
    """Report an error as one line; with ``--traceback``, the full traceback before it."""
    if args.traceback:
        print(_traceback(exc), end="", file=sys.stderr, flush=True)
    print(f"skimgcluster: error: {prefix}{_first_line(exc)}", file=sys.stderr, flush=True)
