"""The peers of the benchmarks, each with its documented recipe, in one place.

Every peer is a single-band tool: a multi-band image is given to it as its band mean
(``band_mean``), the same image for all three. The recipes:

- ``run_photutils``: ``Background2D`` (64 px boxes, 3x3 median filter), a 3-pixel-FWHM
  Gaussian kernel (5x5), ``detect_sources`` at 1.5 sigma of the background RMS with 10
  pixels, and ``deblend_sources`` (32 levels, contrast 0.001).
- ``run_sep``: ``sep.Background`` (its defaults: 64 px boxes, 3x3 filter) and
  ``sep.extract`` at 1.5 sigma of the global RMS with its default filter (3x3 pyramid),
  5 pixels, and its default deblending (32 levels, contrast 0.005).
- ``run_sextractor``: the SExtractor binary (2.25, Debian's ``source-extractor``) on the
  image written to a FITS file in a temporary folder: DETECT_THRESH and ANALYSIS_THRESH
  1.5, DETECT_MINAREA 5, FILTER Y with ``gauss_3.0_5x5.conv`` (the same 3 px FWHM, 5x5
  Gaussian kernel as the photutils recipe), DEBLEND_NTHRESH 32, DEBLEND_MINCONT 0.005,
  CLEAN Y (CLEAN_PARAM 1.0), BACK_SIZE 64, BACK_FILTERSIZE 3; the segmentation
  check-image is read back. DETECT_MINAREA is 5, not photutils' 10: 5 is the default of
  SExtractor's own configuration (``source-extractor -dd``) and of SEP (which is
  SExtractor's library), so each tool runs its own documented recipe; only the threshold,
  the kernel and the deblending are aligned across peers.

When the SExtractor binary (``source-extractor``, or ``sex`` as some distributions name
it) is not on the PATH, ``available_peers`` leaves it out and prints
``SEXTRACTOR_MISSING`` instead of failing.
"""

import os
import shutil
import subprocess
import tempfile
import warnings

import numpy as np

SEXTRACTOR_MISSING = "SExtractor not installed: apt-get install source-extractor (skipped)"

# SExtractor's configuration files (filters, neural network) of the Debian package.
SEXTRACTOR_SHARE = "/usr/share/source-extractor"

# The configuration of the SExtractor recipe; ``run_sextractor(..., **overrides)`` changes it.
SEXTRACTOR_CONFIG = {
    "DETECT_TYPE": "CCD",
    "DETECT_MINAREA": "5",
    "DETECT_THRESH": "1.5",
    "ANALYSIS_THRESH": "1.5",
    "FILTER": "Y",
    "FILTER_NAME": os.path.join(SEXTRACTOR_SHARE, "gauss_3.0_5x5.conv"),
    "DEBLEND_NTHRESH": "32",
    "DEBLEND_MINCONT": "0.005",
    "CLEAN": "Y",
    "CLEAN_PARAM": "1.0",
    "BACK_TYPE": "AUTO",
    "BACK_SIZE": "64",
    "BACK_FILTERSIZE": "3",
    "BACKPHOTO_TYPE": "GLOBAL",
    "WEIGHT_TYPE": "NONE",
    "GAIN": "0.0",
    "SATUR_LEVEL": "1e29",
    "PIXEL_SCALE": "1.0",
    "SEEING_FWHM": "1.2",
    "PHOT_APERTURES": "5",
    "MEMORY_OBJSTACK": "20000",
    "MEMORY_PIXSTACK": "5000000",
    "MEMORY_BUFSIZE": "4096",
    "VERBOSE_TYPE": "QUIET",
    "WRITE_XML": "N",
}

# The catalogue columns run_sextractor returns (a minimal PARAMETERS_NAME file).
SEXTRACTOR_PARAMS = ["NUMBER", "X_IMAGE", "Y_IMAGE", "FLUX_ISO", "ISOAREA_IMAGE", "FLAGS"]


def band_mean(image):
    """The single-band image every peer gets: the band mean of an (M, N, C) image."""
    data = np.asarray(image, dtype=np.float64)
    return data.mean(axis=2) if data.ndim == 3 else data


def run_photutils(image):
    """photutils ``detect_sources`` + ``deblend_sources`` on the band mean; label image."""
    from astropy.convolution import convolve
    from photutils.background import Background2D, MedianBackground
    from photutils.segmentation import deblend_sources, detect_sources, make_2dgaussian_kernel

    data = band_mean(image)
    bkg = Background2D(data, (64, 64), filter_size=(3, 3), bkg_estimator=MedianBackground())
    sub = data - bkg.background
    kernel = make_2dgaussian_kernel(3.0, size=5)
    convolved = convolve(sub, kernel)
    segm = detect_sources(convolved, 1.5 * bkg.background_rms, n_pixels=10)
    if segm is None:
        return np.zeros(data.shape, dtype=np.int32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        segm = deblend_sources(
            convolved, segm, n_pixels=10, nlevels=32, contrast=0.001, progress_bar=False
        )
    return segm.data.astype(np.int32)


def run_sep(image, return_objects=False):
    """SEP ``extract`` at 1.5 sigma on the band mean; label image (and its objects)."""
    import sep

    data = np.ascontiguousarray(band_mean(image))
    bkg = sep.Background(data)
    sep.set_extract_pixstack(10_000_000)
    sep.set_sub_object_limit(4096)
    objects, segmap = sep.extract(data - bkg, 1.5, err=bkg.globalrms, segmentation_map=True)
    if return_objects:
        return segmap.astype(np.int32), objects
    return segmap.astype(np.int32)


def sextractor_binary():
    """Path of the SExtractor binary, or None when it is not installed."""
    for name in ("source-extractor", "sex"):
        path = shutil.which(name)
        if path:
            return path
    return None


def sextractor_version():
    """The version line of the installed SExtractor, or None."""
    binary = sextractor_binary()
    if binary is None:
        return None
    out = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False)
    return (out.stdout + out.stderr).strip().splitlines()[0] if (out.stdout + out.stderr) else "?"


def run_sextractor(image, return_catalog=False, **overrides):
    """SExtractor on the band mean; label image (and its catalogue as a dict of arrays).

    Parameters
    ----------
    image : (M, N[, C]) array-like
    return_catalog : bool, default=False
        Also return the catalogue: ``SEXTRACTOR_PARAMS`` columns, positions 0-based
        (SExtractor's are 1-based), one row per segment label ``NUMBER``.
    **overrides
        Configuration keys of SExtractor replacing those of ``SEXTRACTOR_CONFIG``,
        e.g. ``DEBLEND_MINCONT="1.0"``.

    Raises
    ------
    FileNotFoundError
        When SExtractor is not installed (use ``available_peers`` to skip it instead).
    RuntimeError
        When SExtractor fails; the message holds its output.
    """
    from astropy.io import fits

    binary = sextractor_binary()
    if binary is None:
        raise FileNotFoundError(SEXTRACTOR_MISSING)
    data = band_mean(image).astype(np.float32)
    config = {**SEXTRACTOR_CONFIG, **{k.upper(): str(v) for k, v in overrides.items()}}
    with tempfile.TemporaryDirectory(prefix="bench_sextractor_") as tmp:
        image_path = os.path.join(tmp, "image.fits")
        fits.PrimaryHDU(data).writeto(image_path)
        param_path = os.path.join(tmp, "catalog.param")
        with open(param_path, "w") as fh:
            fh.write("\n".join(SEXTRACTOR_PARAMS) + "\n")
        # An empty configuration file: every key is given on the command line.
        config_path = os.path.join(tmp, "empty.sex")
        open(config_path, "w").close()
        catalog_path = os.path.join(tmp, "catalog.txt")
        seg_path = os.path.join(tmp, "segmentation.fits")
        config.update(
            PARAMETERS_NAME=param_path,
            CATALOG_NAME=catalog_path,
            CATALOG_TYPE="ASCII_HEAD",
            CHECKIMAGE_TYPE="SEGMENTATION",
            CHECKIMAGE_NAME=seg_path,
            STARNNW_NAME=os.path.join(SEXTRACTOR_SHARE, "default.nnw"),
        )
        cmd = [binary, image_path, "-c", config_path]
        for key, value in config.items():
            cmd += [f"-{key}", value]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, check=False)
        if out.returncode != 0 or not os.path.exists(seg_path):
            raise RuntimeError(
                f"SExtractor failed (exit status {out.returncode}): {out.stderr.strip()[-2000:]}"
            )
        labels = fits.getdata(seg_path).astype(np.int32)
        if not return_catalog:
            return labels
        rows = np.loadtxt(catalog_path, comments="#", ndmin=2)
    catalog = {
        name: rows[:, i] if rows.size else np.empty(0)
        for i, name in enumerate(SEXTRACTOR_PARAMS)
    }
    catalog["NUMBER"] = catalog["NUMBER"].astype(int)
    catalog["X_IMAGE"] = catalog["X_IMAGE"] - 1.0
    catalog["Y_IMAGE"] = catalog["Y_IMAGE"] - 1.0
    return labels, catalog


PEERS = {"photutils": run_photutils, "sep": run_sep, "sextractor": run_sextractor}


def available_peers(names=tuple(PEERS), quiet=False):
    """The peers of ``names`` that can run here, as {name: function}.

    SExtractor is left out, with ``SEXTRACTOR_MISSING`` printed, when its binary is not
    installed; photutils and SEP are Python packages of the ``bench`` extra.
    """
    out = {}
    for name in names:
        if name == "sextractor" and sextractor_binary() is None:
            if not quiet:
                print(f"note: {SEXTRACTOR_MISSING}", flush=True)
            continue
        out[name] = PEERS[name]
    return out


def peer_versions():
    """Versions of the peers, for cache keys and reports."""
    versions = {}
    for name, module in (("photutils", "photutils"), ("sep", "sep"), ("astropy", "astropy")):
        try:
            versions[name] = __import__(module).__version__
        except ImportError:
            versions[name] = None
    versions["sextractor"] = sextractor_version()
    return versions
