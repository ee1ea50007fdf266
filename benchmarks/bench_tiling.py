"""Tiled segmentation of survey-size images from FITS: quality, workers, memory, scaling, SEP.

Run by hand on a quiet machine (needs the dask extra, astropy, psutil and sep)::

    python benchmarks/bench_tiling.py                      # the ~1e8-pixel mosaic (10240^2)
    python benchmarks/bench_tiling.py --scaling            # 4608^2, 9216^2, 18432^2
    python benchmarks/bench_tiling.py --large              # 20480^2 float32, FITS and Zarr
    python benchmarks/bench_tiling.py --size 2048 --scaling-sizes 1024 2048  # a quick check

Every case writes its image to ``--workdir`` first and runs the command line on it as a
subprocess, as a user would::

    skimgcluster segment mosaic.fits --tile-size 2048 --workers N --output out -q

measuring its wall time and the peak resident memory of the largest single process of its
process tree (the driver or one Dask worker; psutil, sampled every 50 ms).

1. **Mosaic** (default): ``size / 512`` x ``size / 512`` fields
   ``make_field((512, 512), 120, random_state=k)`` (the fields of ``bench_quality.py``),
   three float32 bands as a FITS cube (``--bands 1`` sums them), with the true label image
   kept on disk (``truth.npy``, labels made unique). The command runs with ``--workers 1``
   and ``--workers 2``; its label image is scored against the truth (detection F1 and mean
   IoU, ``skimgcluster.metrics.detection_scores``, IoU >= 0.5) beside the same fields
   segmented one by one (``segment(field, random_state=0, tile_size=None)``, in this
   process). The two runs must give the same label image (checked). SEP
   (``sep.Background`` + ``sep.extract`` at 1.5 sigma of the global RMS, on the band sum,
   in a subprocess) is timed on the same image.
2. ``--scaling``: single-band mosaics of ``--scaling-sizes`` (4608, 9216, 18432), each run
   with ``--workers`` (2): time per pixel, peak memory, and SEP's time.
3. ``--large``: a ``--large-size`` (20480) single-band float32 image on disk as FITS and as
   Zarr (``--large-format``), run with ``--workers 2``: time and peak memory.

``--json PATH`` writes every figure as JSON. Every run uses ``--seed 0``.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

FIELD = 512
SEP_SCRIPT = """
import sys, time
import numpy as np
import sep
from astropy.io import fits
data = fits.getdata(sys.argv[1], memmap=True)
start = time.perf_counter()
image = np.ascontiguousarray(data.sum(axis=0) if data.ndim == 3 else data, dtype=np.float32)
sep.set_extract_pixstack(10_000_000)
sep.set_sub_object_limit(4096)
bkg = sep.Background(image)
image -= bkg.back()
objects = sep.extract(image, 1.5, err=bkg.globalrms)
print(len(objects), time.perf_counter() - start)
"""


# -- images on disk -------------------------------------------------------------


def write_mosaic(path, size, *, bands=3, truth_path=None):
    """A mosaic of benchmark fields written straight into a FITS file (and the truth to .npy).

    Neither is held whole in memory: both are memory maps filled a field at a time.
    """
    from astropy.io import fits

    from skimgcluster.datasets import make_field

    if size % FIELD:
        raise ValueError(f"size must be a multiple of {FIELD}; got {size}")
    n = size // FIELD
    shape = (bands, size, size) if bands > 1 else (size, size)
    header = fits.PrimaryHDU(data=np.zeros((1,) * len(shape), dtype=np.float32)).header
    for axis, length in enumerate(reversed(shape), start=1):
        header[f"NAXIS{axis}"] = length
    text = header.tostring().encode("ascii")
    with open(path, "wb") as f:
        f.write(text)
        f.truncate(len(text) + -(-(4 * int(np.prod(shape))) // 2880) * 2880)
    data = np.memmap(path, dtype=">f4", mode="r+", offset=len(text), shape=shape)
    truth = None
    if truth_path is not None:
        truth = np.lib.format.open_memmap(truth_path, mode="w+", dtype=np.int32, shape=(size, size))
    offset = 0
    for i in range(n):
        for j in range(n):
            f, t, _ = make_field((FIELD, FIELD), 120, random_state=i * n + j)
            rows, cols = slice(i * FIELD, (i + 1) * FIELD), slice(j * FIELD, (j + 1) * FIELD)
            if bands > 1:
                data[:, rows, cols] = np.moveaxis(f[:, :, :bands], -1, 0)
            else:
                data[rows, cols] = f.sum(axis=2)
            if truth is not None:
                truth[rows, cols] = np.where(t > 0, t + offset, 0)
                offset += int(t.max())
        data.flush()
    del data
    if truth is not None:
        truth.flush()
    return path


def fits_to_zarr(fits_path, zarr_path, chunk=2048):
    """The single-band image of a FITS file as a Zarr array, a band of rows at a time."""
    import zarr
    from astropy.io import fits

    data = fits.getdata(fits_path, memmap=True)
    z = zarr.open_array(str(zarr_path), mode="w", shape=data.shape, chunks=(chunk, chunk),
                        dtype=np.float32)  # fmt: skip
    for r in range(0, data.shape[0], chunk):
        z[r : r + chunk] = data[r : r + chunk].astype(np.float32)
    return zarr_path


# -- measuring a subprocess -----------------------------------------------------------


def run_measured(command, interval=0.05):
    """Run ``command``; its wall time, the largest resident set of one process of its tree and
    the CPU time of the whole tree.

    The CPU time is the sum over the processes of their own user + system time, as last
    seen by the sampler (a process's final few milliseconds can be missed). The children's
    times that the kernel adds to a parent when it reaps them are left out: they would
    count every worker twice. Unlike the wall time it grows little when other jobs share
    the machine, so it is the figure to compare across image sizes on a busy machine.
    """
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    parent = psutil.Process(proc.pid)
    peak, peak_by = 0, ""
    cpu = {}
    stop = threading.Event()

    def sample():
        nonlocal peak, peak_by
        while not stop.is_set():
            try:
                procs = [parent, *parent.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for p in procs:
                try:
                    rss = p.memory_info().rss
                    times = p.cpu_times()
                except psutil.Error:  # a worker ending between listing and reading
                    continue
                cpu[p.pid] = times.user + times.system
                if rss > peak:
                    peak, peak_by = rss, "driver" if p.pid == proc.pid else "worker"
            stop.wait(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    stop.set()
    thread.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}):\n{err[-2000:]}")
    return {"seconds": seconds, "cpu_seconds": sum(cpu.values()), "peak_rss_gb": peak / 2**30,
            "peak_process": peak_by, "stdout": out.strip(),
            "load_average": os.getloadavg()}  # fmt: skip


def run_cli(image_path, out, tile_size, workers, *, plots="overview"):
    command = [sys.executable, "-m", "skimgcluster", "segment", str(image_path), "--output",
               str(out), "--tile-size", str(tile_size), "--workers", str(workers), "--seed", "0",
               "--plots", plots, "-q"]  # fmt: skip
    if Path(image_path).suffix == ".zarr":
        command += ["--labels-format", "zarr"]
    result = run_measured(command)
    result["command"] = " ".join(["skimgcluster", *command[3:]])
    return result


def run_sep(image_path):
    result = run_measured([sys.executable, "-c", SEP_SCRIPT, str(image_path)])
    n, seconds = result["stdout"].split()
    result.update(n_objects=int(n), sep_seconds=float(seconds))
    return result


def read_labels(out):
    from astropy.io import fits

    return fits.getdata(out / "labels.fits", memmap=True)


# -- the cases ---------------------------------------------------------------------


def one_by_one(fits_path, size, labels_path):
    """Each field of the mosaic segmented on its own, the label images put back together."""
    from astropy.io import fits

    from skimgcluster import segment

    data = fits.getdata(fits_path, memmap=True)
    labels = np.lib.format.open_memmap(labels_path, mode="w+", dtype=np.int32, shape=(size, size))
    offset = 0
    start = time.perf_counter()
    for r in range(0, size, FIELD):
        for c in range(0, size, FIELD):
            if data.ndim == 3:
                field = np.moveaxis(np.asarray(data[:, r : r + FIELD, c : c + FIELD]), 0, -1)
            else:
                field = np.asarray(data[r : r + FIELD, c : c + FIELD])
            part = segment(field.astype(np.float32), random_state=0, tile_size=None).label_image
            labels[r : r + FIELD, c : c + FIELD] = np.where(part > 0, part + offset, 0)
            offset += int(part.max())
    labels.flush()
    return labels, time.perf_counter() - start


def score(labels, truth):
    from skimgcluster.metrics import detection_scores

    s = detection_scores(np.asarray(labels), np.asarray(truth))
    return {k: (float(v) if isinstance(v, float) else int(v)) for k, v in s.items()}


def mosaic_case(args, work):
    size = args.size
    image = work / f"mosaic-{size}.fits"
    truth_path = work / f"truth-{size}.npy"
    print(f"writing {image} ({size}^2, {args.bands} band(s)) and its truth", flush=True)
    write_mosaic(image, size, bands=args.bands, truth_path=truth_path)
    truth = np.load(truth_path, mmap_mode="r")
    report = {"size": size, "bands": args.bands, "tile_size": args.tile_size,
              "n_true": int(truth.max()), "runs": []}  # fmt: skip
    print("segmenting the fields one by one", flush=True)
    labels, seconds = one_by_one(image, size, work / f"one-by-one-{size}.npy")
    report["one_by_one"] = {"seconds": seconds, **score(labels, truth)}
    del labels
    reference = None
    for workers in args.workers:
        out = work / f"out-{size}-w{workers}"
        print(f"skimgcluster segment {image.name} --tile-size {args.tile_size} "
              f"--workers {workers}", flush=True)  # fmt: skip
        run = run_cli(image, out, args.tile_size, workers)
        labels = read_labels(out)
        run.update(workers=workers, **score(labels, truth))
        if reference is None:
            reference = out
        else:
            run["same_labels_as_first"] = bool(np.array_equal(read_labels(reference), labels))
        report["runs"].append(run)
    if not args.no_sep:
        print("SEP on the same image", flush=True)
        report["sep"] = run_sep(image)
    return report


def scaling_case(args, work):
    rows = []
    for size in args.scaling_sizes:
        image = work / f"scaling-{size}.fits"
        print(f"writing {image} ({size}^2, one band)", flush=True)
        write_mosaic(image, size, bands=1)
        workers = max(args.workers)
        run = run_cli(image, work / f"out-scaling-{size}", args.tile_size, workers)
        run.update(size=size, workers=workers, ns_per_pixel=1e9 * run["seconds"] / size**2,
                   cpu_ns_per_pixel=1e9 * run["cpu_seconds"] / size**2)  # fmt: skip
        if not args.no_sep:
            run["sep"] = run_sep(image)
        rows.append(run)
        image.unlink()
    return rows


def large_case(args, work):
    size = args.large_size
    image = work / f"large-{size}.fits"
    print(f"writing {image} ({size}^2 float32, one band)", flush=True)
    write_mosaic(image, size, bands=1)
    rows = []
    workers = max(args.workers)
    for fmt in args.large_format:
        path = image if fmt == "fits" else fits_to_zarr(image, work / f"large-{size}.zarr")
        run = run_cli(path, work / f"out-large-{fmt}", args.tile_size, workers)
        run.update(size=size, format=fmt, workers=workers)
        rows.append(run)
    return rows


# -- output ------------------------------------------------------------------------


def print_report(report):
    m = report.get("mosaic")
    if m:
        print(f"\nmosaic {m['size']}^2 x {m['bands']} band(s), {m['n_true']} true sources, "
              f"tiles of {m['tile_size']}")  # fmt: skip
        print(f"{'case':<28} {'F1':>6} {'mean IoU':>9} {'found':>7} {'time s':>8} {'peak GB':>8}")
        o = m["one_by_one"]
        print(f"{'fields one by one':<28} {o['f1']:6.3f} {o['mean_iou']:9.3f} {o['n_found']:7d} "
              f"{o['seconds']:8.1f} {'':>8}")  # fmt: skip
        for r in m["runs"]:
            print(f"{'tiled, ' + str(r['workers']) + ' worker(s)':<28} {r['f1']:6.3f} "
                  f"{r['mean_iou']:9.3f} {r['n_found']:7d} {r['seconds']:8.1f} "
                  f"{r['peak_rss_gb']:8.2f}")  # fmt: skip
        if len(m["runs"]) > 1:
            first, last = m["runs"][0], m["runs"][-1]
            print(f"speed-up of {last['workers']} workers over {first['workers']}: "
                  f"{first['seconds'] / last['seconds']:.2f}x; identical labels: "
                  f"{last.get('same_labels_as_first')}")  # fmt: skip
        if "sep" in m:
            s = m["sep"]
            print(
                f"SEP: {s['n_objects']} objects in {s['sep_seconds']:.1f} s "
                f"({s['seconds']:.1f} s with reading), peak {s['peak_rss_gb']:.2f} GB"
            )
    for r in report.get("scaling", []):
        sep_text = f", SEP {r['sep']['sep_seconds']:.1f} s" if "sep" in r else ""
        cpu_text = (f", CPU {r['cpu_seconds']:.1f} s = {r['cpu_ns_per_pixel']:.0f} ns/pixel"
                    if "cpu_seconds" in r else "")  # fmt: skip
        print(f"scaling {r['size']}^2: {r['seconds']:.1f} s, "
              f"{r['ns_per_pixel']:.0f} ns/pixel"
              f"{cpu_text}, peak {r['peak_rss_gb']:.2f} GB "
              f"({r['peak_process']}){sep_text}")  # fmt: skip
    for r in report.get("large", []):
        print(
            f"large {r['size']}^2 {r['format']}: {r['seconds']:.1f} s "
            f"(CPU {r.get('cpu_seconds', float('nan')):.1f} s), peak "
            f"{r['peak_rss_gb']:.2f} GB ({r['peak_process']}), {r['stdout']}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10240, help="side of the mosaic (10240)")
    parser.add_argument("--bands", type=int, choices=(1, 3), default=3,
                        help="3 bands as a FITS cube, or 1: their sum (3)")  # fmt: skip
    parser.add_argument("--tile-size", type=int, default=2048, help="tile side (2048)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="worker processes of each run (1 2)")  # fmt: skip
    parser.add_argument("--no-mosaic", action="store_true", help="skip the mosaic case")
    parser.add_argument("--scaling", action="store_true", help="run the scaling case")
    parser.add_argument("--scaling-sizes", type=int, nargs="+", default=[4608, 9216, 18432])
    parser.add_argument("--large", action="store_true", help="run the 20480^2 case")
    parser.add_argument("--large-size", type=int, default=20480)
    parser.add_argument("--large-format", nargs="+", choices=("fits", "zarr"),
                        default=["fits", "zarr"])  # fmt: skip
    parser.add_argument("--no-sep", action="store_true", help="do not time SEP")
    parser.add_argument("--workdir", help="folder for the images and outputs (a temporary one)")
    parser.add_argument("--json", metavar="PATH", help="write every figure to PATH as JSON")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory(prefix="bench-tiling-", dir=args.workdir) as tmp:
        work = Path(tmp)
        report = {"cpus": os.cpu_count()}
        cases = [("mosaic", mosaic_case, not args.no_mosaic),
                 ("scaling", scaling_case, args.scaling),
                 ("large", large_case, args.large)]  # fmt: skip
        for name, case, wanted in cases:
            if wanted:
                report[name] = case(args, work)
                if args.json:  # after each case, so that a long run cut short keeps its figures
                    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)


if __name__ == "__main__":
    main()
