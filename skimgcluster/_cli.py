"""The ``skimgcluster`` command line."""

import argparse
import csv
import io
import sys
import time
import warnings
from pathlib import Path

__all__ = ["main"]

EPILOG_SEGMENT = """examples:
  skimgcluster segment --output hubble_out
      segment the Hubble Deep Field image shipped with scikit-image
  skimgcluster segment deep_field.tif --output out --seed 1 --n-samples 2000000
  skimgcluster segment photo.png --output out --colour-scale 0 --overwrite

outputs (in DIR):
  labels.png     label image, 16-bit, 0 = background, sources 1..K (labels.tif above 65535)
  overview.png   image, luminosity, samples and sources side by side
  sources.csv    one row per source: label, cluster id, significance, pixels, centroid
"""


class _CommandError(Exception):
    """An error to report as one line, with exit status 1."""


def _parser():
    parser = argparse.ArgumentParser(
        prog="skimgcluster",
        description="Find structures in images with the AstroLink clustering algorithm.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    seg = sub.add_parser(
        "segment",
        help="segment an image into sources",
        description="Segment an image (PNG, JPEG or TIFF, 16-bit included) into sources.",
        epilog=EPILOG_SEGMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    seg.add_argument(
        "image",
        nargs="?",
        metavar="IMAGE",
        help="image file; without it, skimage.data.hubble_deep_field()",
    )
    seg.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    seg.add_argument("--seed", type=int, default=0, help="random seed of the sampling (0)")
    seg.add_argument("--n-samples", type=int, help="number of sampled points (auto)")
    seg.add_argument(
        "--colour-scale", type=float, help="pixels a unit of colour fraction is worth (20)"
    )
    seg.add_argument(
        "--min-significance", type=float, help="lowest significance of a source, sigma (2.5)"
    )
    seg.add_argument("--detection-threshold", type=float, help="noise sigmas to be sampled (3.5)")
    seg.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    seg.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return parser


class _Progress:
    def __init__(self, quiet):
        self.quiet = quiet
        self.start = time.perf_counter()

    def __call__(self, message):
        if not self.quiet:
            elapsed = time.perf_counter() - self.start
            print(f"[{elapsed:6.1f} s] {message}", file=sys.stderr, flush=True)


def _sources_csv(result):
    from skimage.measure import regionprops

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["label", "cluster_id", "significance", "n_pixels", "x_centroid", "y_centroid"])
    cluster_of_label = {int(v): j for j, v in enumerate(result.cluster_labels) if v >= 0}
    for region in regionprops(result.label_image):
        j = cluster_of_label.get(region.label - 1)
        cid = result.cluster_ids[j] if j is not None else ""
        sig = f"{result.significances[j]:.3f}" if j is not None else ""
        y, x = region.centroid
        writer.writerow([region.label, cid, sig, int(region.area), f"{x:.3f}", f"{y:.3f}"])
    return buffer.getvalue()


def _segment_command(args):
    from ._io import read_image, save_figure, write_label_image, write_text
    from ._plotting import plot_overview
    from ._segment import segment

    progress = _Progress(args.quiet)
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
    if args.image is None:
        import skimage.data

        progress("reading skimage.data.hubble_deep_field()")
        image, mask = skimage.data.hubble_deep_field(), None
    else:
        progress(f"reading {args.image}")
        image, mask = read_image(args.image)
    progress(f"image {image.shape} {image.dtype}; sampling and clustering")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = segment(image, mask=mask, random_state=args.seed, **params)
    for w in caught:
        if not args.quiet:
            print(f"skimgcluster: warning: {w.message}", file=sys.stderr)
    names = {
        "labels": "labels.png" if result.label_image.max() <= 65535 else "labels.tif",
        "overview": "overview.png",
        "sources": "sources.csv",
    }
    targets = {k: out / v for k, v in names.items()}
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not args.overwrite:
        raise _CommandError(f"{', '.join(existing)} already exist(s); pass --overwrite to replace")
    out.mkdir(parents=True, exist_ok=True)
    progress(f"writing {out}")
    write_label_image(targets["labels"], result.label_image)
    write_text(targets["sources"], _sources_csv(result))
    figure = plot_overview(image, result)
    save_figure(targets["overview"], figure, dpi=120)
    return result, progress


def main(argv=None):
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "segment":
            result, progress = _segment_command(args)
            elapsed = time.perf_counter() - progress.start
            print(
                f"found {result.n_sources} sources in {elapsed:.1f} s -> {args.output}",
                flush=True,
            )
        return 0
    except (_CommandError, FileNotFoundError, ValueError, TypeError, OSError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"skimgcluster: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("skimgcluster: interrupted", file=sys.stderr)
        return 130
