"""The ``skimgcluster`` command line."""

import argparse
import sys
import threading
import time
import warnings
from pathlib import Path

__all__ = ["main"]

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
error, 130 when interrupted.
"""

EPILOG_SEGMENT = """\
examples:
  skimgcluster segment --output hubble_out
      segment the Hubble Deep Field image shipped with scikit-image
  skimgcluster segment deep_field.tif --output out --seed 1 --n-samples 2000000
  skimgcluster segment photo.png --output out --colour-scale 0 --overwrite
  skimgcluster segment image.fits --output out --hdu SCI --catalog-format ecsv
      a FITS image: labels.fits carries the image's WCS, the catalog RA and Dec
  skimgcluster segment f444w.fits f277w.fits f150w.fits --output out
      three single-band FITS files of the same field, as three bands
  skimgcluster segment image.png --output out --plots all --quiet

outputs (in DIR; existing files are never replaced without --overwrite):
  labels.png            label image, 0 = background, sources 1..K (16-bit PNG;
                        labels.tif above 65535 labels, labels.fits for FITS input)
  sources.csv           one row per source: label, cluster id, parent id,
                        significance, samples, area, centroid (RA, Dec with a
                        WCS), bounding box, shape, flux per band
  overview.png          image, luminosity, samples and sources side by side
  segmentation.png      source boundaries over the image       (--plots)
  ordered_density.png   AstroLink's ordered-density plot        (--plots)
  hierarchy.png         the hierarchy of nested clusters        (--plots)

progress goes to stderr (a bar on a terminal, plain lines otherwise, nothing
with --quiet); the last line on stdout is a summary: sources found and time.
"""

# Figures the command line can write: name -> (file name, function name).
PLOTS = {
    "overview": "overview.png",
    "segmentation": "segmentation.png",
    "density": "ordered_density.png",
    "hierarchy": "hierarchy.png",
}

LABEL_FORMATS = {"png": ".png", "tif": ".tif", "fits": ".fits", "npy": ".npy"}
CATALOG_FORMATS = {"csv": ".csv", "ecsv": ".ecsv", "fits": ".fits"}


class _CommandError(Exception):
    """An error to report as one line, with exit status 1."""


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
            "FITS (2-D, a 3-D cube of bands, or several single-band files as bands)."
        ),
        epilog=EPILOG_SEGMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    seg.add_argument(
        "images",
        nargs="*",
        metavar="IMAGE",
        help="image file, or several FITS files as bands; "
        "without it, skimage.data.hubble_deep_field()",
    )
    seg.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    inputs = seg.add_argument_group("input")
    inputs.add_argument(
        "--hdu", type=_hdu, metavar="HDU",
        help="FITS HDU, by index or EXTNAME (default: the first holding an image)",
    )  # fmt: skip
    params = seg.add_argument_group("parameters")
    params.add_argument("--seed", type=int, default=0, help="random seed of the sampling (0)")
    params.add_argument("--n-samples", type=int, help="number of sampled points (auto)")
    params.add_argument(
        "--colour-scale", type=float, help="pixels a unit of colour fraction is worth (20)"
    )
    params.add_argument(
        "--min-significance", type=float, help="lowest significance of a source, sigma (2.25)"
    )
    params.add_argument(
        "--detection-threshold", type=float, help="noise sigmas to be sampled (3.5)"
    )
    outputs = seg.add_argument_group("outputs")
    outputs.add_argument(
        "--labels-format", choices=["auto", *LABEL_FORMATS], default="auto",
        help="format of the label image; auto: fits for FITS input, else png "
        "(tif above 65535 labels)",
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
    return parser


class _Progress:
    """Progress of a command's stages on stderr.

    On a terminal, one line redrawn in place: a bar of the stages done, the
    current stage and the elapsed time, ticking while a long stage runs.
    Anywhere else (a file, a pipe, CI's log) one plain line per stage, with
    the time it started. Nothing at all when ``quiet``.
    """

    _WIDTH = 20  # characters of the bar

    def __init__(self, n_stages, *, quiet=False, stream=None):
        self.stream = sys.stderr if stream is None else stream
        self.n_stages = max(int(n_stages), 1)
        self.quiet = quiet
        self.tty = not quiet and _isatty(self.stream)
        self.start = time.perf_counter()
        self.done = -1
        self.message = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = None
        self._width = 0

    def elapsed(self):
        return time.perf_counter() - self.start

    def __call__(self, message):
        """Start the next stage."""
        if self.quiet:
            return
        with self._lock:
            self.done = min(self.done + 1, self.n_stages - 1)
            self.message = message
            if self.tty:
                self._draw()
            else:
                print(f"[{self.elapsed():6.1f} s] {message}", file=self.stream, flush=True)
        if self.tty and self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()

    def note(self, message):
        """Print a line of its own (a warning) without breaking the bar."""
        with self._lock:
            if self.tty:
                self.stream.write("\r" + " " * self._width + "\r")
            print(message, file=self.stream, flush=True)
            if self.tty and self.done >= 0:
                self._draw()

    def close(self):
        """Stop ticking and end the bar's line."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        if self.tty and self.done >= 0:
            with self._lock:
                self.done = self.n_stages
                self._draw()
                self.stream.write("\n")
                self.stream.flush()
                self.done = -1

    def _tick(self):
        while not self._stop.wait(0.25):
            with self._lock:
                if self.done >= 0:
                    self._draw()

    def _draw(self):
        filled = round(self._WIDTH * self.done / self.n_stages)
        bar = "#" * filled + "-" * (self._WIDTH - filled)
        step = min(self.done + 1, self.n_stages)
        text = "done" if self.done >= self.n_stages else self.message
        line = f"[{bar}] {step}/{self.n_stages} {text} ({self.elapsed():.1f} s)"
        pad = max(self._width - len(line), 0)
        self._width = len(line)
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()


def _isatty(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _read(args, progress):
    """The image, its mask, and its FITS header and celestial WCS (or None)."""
    from ._fits import is_fits_path, read_fits
    from ._io import read_image

    paths = args.images
    if not paths:
        import skimage.data

        progress("reading skimage.data.hubble_deep_field()")
        return skimage.data.hubble_deep_field(), None, None, None
    progress(f"reading {', '.join(paths)}")
    fits = [is_fits_path(p) for p in paths]
    if any(fits):
        if not all(fits):
            raise _CommandError("several images are read as bands only if all are FITS files")
        for path in paths:
            if not Path(path).is_file():
                raise FileNotFoundError(f"no such image file: {path}")
        image = read_fits(paths if len(paths) > 1 else paths[0], hdu=args.hdu)
        return image.data, image.mask, image.header, image.wcs
    if len(paths) > 1:
        raise _CommandError(
            f"got {len(paths)} images; several images are combined as bands only for FITS files"
        )
    if args.hdu is not None:
        raise _CommandError(f"--hdu applies to FITS files only; {paths[0]} is not one")
    image, mask = read_image(paths[0])
    return image, mask, None, None


def _targets(args, out, header, n_labels):
    """Output paths by kind, before anything is written."""
    fmt = args.labels_format
    if fmt == "auto":
        fmt = "fits" if header is not None else ("png" if n_labels <= 65535 else "tif")
    targets = {
        "labels": out / f"labels{LABEL_FORMATS[fmt]}",
        "sources": out / f"sources{CATALOG_FORMATS[args.catalog_format]}",
    }
    for name in args.plots:
        targets[name] = out / PLOTS[name]
    return targets


def _figure(name, image, result):
    from . import _plotting

    if name == "overview":
        return _plotting.plot_overview(image, result)
    if name == "segmentation":
        return _plotting.plot_segmentation(image, result)
    if name == "density":
        return _plotting.plot_ordered_density(result)
    return _plotting.plot_hierarchy(result)


def _segment_command(args, progress):
    from ._io import save_figure, write_label_image
    from ._segment import segment

    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise _CommandError(f"output {out} exists and is not a folder")
    params = {
        "n_samples": args.n_samples,
        "colour_scale": args.colour_scale,
        "min_significance": args.min_significance,
        "detection_threshold": args.detection_threshold,
    }
    params = {k: v for k, v in params.items() if v is not None}
    image, mask, header, wcs = _read(args, progress)

    def stage(name, detail):
        progress(f"{name} {detail}".strip())

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = segment(image, mask=mask, random_state=args.seed, callback=stage, **params)
    for w in caught:
        if not args.quiet:
            progress.note(f"skimgcluster: warning: {w.message}")
    targets = _targets(args, out, header, int(result.label_image.max()))
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not args.overwrite:
        raise _CommandError(f"{', '.join(existing)} already exist(s); pass --overwrite to replace")
    progress("measuring the sources")
    catalog = result.catalog(wcs=wcs)
    out.mkdir(parents=True, exist_ok=True)
    progress(f"writing {targets['labels'].name} and {targets['sources'].name} to {out}")
    write_label_image(targets["labels"], result.label_image, header=header)
    catalog.write(targets["sources"], format=args.catalog_format, overwrite=True)
    for name in args.plots:
        progress(f"drawing {targets[name].name}")
        save_figure(targets[name], _figure(name, image, result), dpi=120)
    return result


def _n_stages(args):
    # reading, sampling, clustering, labelling, measuring, writing, one per plot
    return 6 + len(args.plots)


def main(argv=None):
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
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
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"skimgcluster: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("skimgcluster: interrupted", file=sys.stderr)
        return 130
