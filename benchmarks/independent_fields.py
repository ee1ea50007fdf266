"""Star and galaxy fields drawn with GalSim, independent of ``skimgcluster.datasets``.

The fields against which ``bench_families.py`` scores every method. Nothing here comes
from ``skimgcluster``: the profiles are GalSim's (Sersic galaxies, optionally
bulge + disk; point-source stars), convolved with a Gaussian or Moffat PSF and
integrated over the pixels by GalSim, and the conventions (how S/N is defined, how
colours, pairs and the truth are drawn) are this module's own:

- **S/N** of a source is its matched-filter S/N in the band-sum image:
  ``F * sqrt(sum(p**2)) / sigma_sum``, with ``F`` its band-sum flux, ``p`` its
  PSF-convolved, pixel-integrated profile normalised to unit sum and ``sigma_sum`` the
  noise sigma of the band-sum image. S/N is drawn from a power law,
  ``dN/dS ~ S**-snr_slope`` (1.5: between log-uniform and Euclidean counts), within
  ``snr_range``.
- **Galaxies**: Sersic index uniform in ``sersic_range``, intrinsic half-light radius
  log-uniform in ``hlr_range`` (pixels), axis ratio uniform in ``axis_ratio_range``,
  position angle uniform; truncated at 8 half-light radii (n >= 1.5). With ``bulge_disk=True``
  every galaxy is an n = 4 bulge (0.2-0.5 of the disk's radius, bulge-to-total
  0.1-0.6) inside an n = 1 disk, the bulge redder than the disk: a colour gradient
  within one source.
- **Stars**: point sources, ``star_fraction`` of the sources; ``bright_stars`` more with
  S/N log-uniform in ``bright_star_snr``.
- **Colours (SEDs)**: a source's flux in band ``b`` is proportional to
  ``(wavelength_b / 650 nm) ** alpha`` with band wavelengths 500, 650 and 800 nm and
  ``alpha`` normal (galaxies: mean 0, sd 1; stars: mean 0.5, sd 0.8).
- **Close pairs**: ``pair_fraction`` of the sources come in pairs; the secondary has
  0.2-1 times the primary's S/N (log-uniform), a colour slope
  ``pair_colour_contrast`` (1-2.5) away from the primary's, and lies at 1.0-1.8 times
  the sum of the two sources' PSF-convolved half-light radii (each
  ``sqrt(hlr**2 + (fwhm / 2)**2)``), in a random direction.
- **Noise**: sky ``sky[b]`` plus Gaussian noise of sigma ``noise[b]`` per band.
- **Truth**: a pixel belongs to the source contributing most flux to the noise-free
  band-sum model, where that model reaches ``t * sigma_sum``; one truth per level ``t``
  of ``truth_levels``, all from the same image draw. True labels are a source's row in
  the source table plus 1, the same at every level; a source whose model never reaches
  a level is absent from that truth.

Every random draw comes from ``numpy.random.default_rng(seed)``; GalSim only renders.
"""

import math

import galsim
import numpy as np

# Part of the benchmarks' cache keys: change it whenever a draw or a default changes.
GENERATOR_VERSION = "galsim-fields-1"

WAVELENGTHS_NM = (500.0, 650.0, 800.0)
TRUNCATION = 8.0  # Sersic truncation radius in half-light radii
GSPARAMS = galsim.GSParams(maximum_fft_size=16384)


def _power_law(rng, low, high, slope, size):
    """Draws of dN/dS ~ S**-slope between low and high (inverse transform)."""
    u = rng.uniform(size=size)
    if abs(slope - 1.0) < 1e-9:
        return low * (high / low) ** u
    a = 1.0 - slope
    return (low**a + u * (high**a - low**a)) ** (1.0 / a)


def _sed(alpha, n_bands):
    """Band fractions (summing to 1) of a colour slope alpha."""
    if n_bands == 1:
        return np.ones(1)
    lam = np.asarray(WAVELENGTHS_NM[:n_bands]) / 650.0
    f = lam**alpha
    return f / f.sum()


def _psf(kind, fwhm, beta):
    if kind == "gaussian":
        return galsim.Gaussian(fwhm=fwhm, gsparams=GSPARAMS)
    if kind == "moffat":
        return galsim.Moffat(beta=beta, fwhm=fwhm, gsparams=GSPARAMS)
    raise ValueError(f"psf must be 'gaussian' or 'moffat'; got {kind!r}.")


def _sersic(n, hlr, q, angle):
    # n on a grid of 0.05 so GalSim reuses its per-index tables.
    n = round(n * 20) / 20
    # Below n = 1.5 the profile is negligible at the truncation radius (and GalSim's
    # solver fails there), so only steeper profiles are truncated.
    trunc = TRUNCATION * hlr if n >= 1.5 else 0.0
    prof = galsim.Sersic(n, half_light_radius=hlr, trunc=trunc, gsparams=GSPARAMS)
    return prof.shear(q=q, beta=angle * galsim.radians)


def _stamp(profile, psf, x, y, half):
    """Unit-flux, pixel-integrated stamp of profile * psf centred at (x, y)."""
    ix, iy = int(round(x)), int(round(y))
    n = 2 * half + 1
    obj = galsim.Convolve(profile, psf) if profile is not None else psf
    img = obj.withFlux(1.0).drawImage(nx=n, ny=n, scale=1.0, offset=(x - ix, y - iy))
    return img.array.astype(np.float64), iy - half, ix - half


def _add(target, stamp, y0, x0):
    """Add stamp into target with its corner at (y0, x0), clipped at the edges."""
    h, w = target.shape[:2]
    sy0, sx0 = max(0, -y0), max(0, -x0)
    ty0, tx0 = max(0, y0), max(0, x0)
    ty1, tx1 = min(h, y0 + stamp.shape[0]), min(w, x0 + stamp.shape[1])
    if ty1 <= ty0 or tx1 <= tx0:
        return None
    sub = stamp[sy0 : sy0 + ty1 - ty0, sx0 : sx0 + tx1 - tx0]
    return (slice(ty0, ty1), slice(tx0, tx1)), sub


def make_independent_field(
    seed,
    *,
    shape=(512, 512),
    n_sources=70,
    n_bands=3,
    psf="moffat",
    psf_fwhm=3.0,
    moffat_beta=3.0,
    hlr_range=(1.5, 6.0),
    sersic_range=(0.5, 4.0),
    axis_ratio_range=(0.3, 1.0),
    star_fraction=0.15,
    snr_range=(10.0, 1000.0),
    snr_slope=1.5,
    pair_fraction=0.2,
    bright_stars=0,
    bright_star_snr=(500.0, 5000.0),
    pair_colour_contrast=(1.0, 2.5),
    bulge_disk=False,
    sky=(200.0, 350.0, 500.0),
    noise=(1.0, 0.8, 1.3),
    truth_levels=(1.0, 1.5, 2.0),
):
    """Draw one field: image, truths at several isophotes, and the source table.

    Parameters
    ----------
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed and parameters give the
        same field.
    shape : (int, int), default=(512, 512)
    n_sources : int, default=70
        Sources before ``bright_stars`` (pairs count as two).
    n_bands : {1, 2, 3}, default=3
        1 gives a 2-D image.
    psf : {'moffat', 'gaussian'}, default='moffat'
    psf_fwhm : float, default=3.0
        PSF FWHM in pixels.
    moffat_beta : float, default=3.0
    hlr_range, sersic_range, axis_ratio_range : (float, float)
        Intrinsic half-light radius (px, log-uniform), Sersic index and axis ratio
        (uniform) of the galaxies.
    star_fraction : float, default=0.15
    snr_range : (float, float), default=(10, 1000)
        Matched-filter band-sum S/N range (see the module docstring).
    snr_slope : float, default=1.5
    pair_fraction : float, default=0.2
        Fraction of the sources in close pairs of different colours.
    bright_stars : int, default=0
    bright_star_snr : (float, float), default=(500, 5000)
    pair_colour_contrast : (float, float), default=(1.0, 2.5)
        Range of the difference of colour slope ``alpha`` within a pair (2.5 is
        about 1.3 mag in the colour between the outer bands).
    bulge_disk : bool, default=False
    sky, noise : sequence of float
        Per band (the first ``n_bands`` entries are used).
    truth_levels : sequence of float, default=(1, 1.5, 2)
        Isophotes of the truth in units of the band-sum noise sigma.

    Returns
    -------
    field : dict
        ``image`` ((M, N, n_bands) or (M, N) float32), ``truths`` ({level: (M, N)
        int32}), ``model`` (noise-free band-sum, float64), ``owner`` (the
        source contributing most to ``model`` at every pixel, before any isophote),
        ``sigma_sum`` (noise sigma of the band-sum image) and ``sources`` (dict of
        arrays, one row per source:
        ``label``, ``x``, ``y``, ``kind`` ('galaxy' or 'star'), ``snr``, ``flux``
        (band-sum), ``hlr``, ``sersic_n``, ``q``, ``alpha``, ``pair`` (-1 outside a
        pair)).
    """
    if n_bands not in (1, 2, 3):
        raise ValueError(f"n_bands must be 1, 2 or 3; got {n_bands!r}.")
    rng = np.random.default_rng(seed)
    h, w = shape
    noise = np.asarray(noise[:n_bands], dtype=np.float64)
    sky = np.asarray(sky[:n_bands], dtype=np.float64)
    sigma_sum = float(np.sqrt(np.sum(noise**2)))
    psf_obj = _psf(psf, psf_fwhm, moffat_beta)
    psf_hlr = psf_fwhm / 2.0

    # The source table: primaries, then each pair's secondary, then bright stars.
    n_pairs = int(round(pair_fraction * n_sources)) // 2
    n_primary = n_sources - n_pairs
    rows = []
    for i in range(n_primary):
        is_star = rng.uniform() < star_fraction and i >= n_pairs  # pair primaries: galaxies
        rows.append(
            {
                "kind": "star" if is_star else "galaxy",
                "x": rng.uniform(4, w - 5),
                "y": rng.uniform(4, h - 5),
                "snr": float(_power_law(rng, *snr_range, snr_slope, 1)[0]),
                "hlr": 0.0 if is_star else float(np.exp(rng.uniform(*np.log(hlr_range)))),
                "sersic_n": 0.0 if is_star else rng.uniform(*sersic_range),
                "q": 1.0 if is_star else rng.uniform(*axis_ratio_range),
                "angle": rng.uniform(0, np.pi),
                "alpha": rng.normal(0.5, 0.8) if is_star else rng.normal(0.0, 1.0),
                "pair": -1,
            }
        )
    for p in range(n_pairs):
        prim = rows[p]
        prim["pair"] = p
        hlr = float(np.exp(rng.uniform(*np.log(hlr_range))))
        r1 = math.hypot(prim["hlr"], psf_hlr)
        r2 = math.hypot(hlr, psf_hlr)
        sep = rng.uniform(1.0, 1.8) * (r1 + r2)
        theta = rng.uniform(0, 2 * np.pi)
        dalpha = rng.uniform(*pair_colour_contrast) * rng.choice([-1.0, 1.0])
        rows.append(
            {
                "kind": "galaxy",
                "x": prim["x"] + sep * math.cos(theta),
                "y": prim["y"] + sep * math.sin(theta),
                "snr": prim["snr"] * float(np.exp(rng.uniform(np.log(0.2), 0.0))),
                "hlr": hlr,
                "sersic_n": rng.uniform(*sersic_range),
                "q": rng.uniform(*axis_ratio_range),
                "angle": rng.uniform(0, np.pi),
                "alpha": prim["alpha"] + dalpha,
                "pair": p,
            }
        )
    for _ in range(bright_stars):
        rows.append(
            {
                "kind": "star",
                "x": rng.uniform(4, w - 5),
                "y": rng.uniform(4, h - 5),
                "snr": float(np.exp(rng.uniform(*np.log(bright_star_snr)))),
                "hlr": 0.0,
                "sersic_n": 0.0,
                "q": 1.0,
                "angle": 0.0,
                "alpha": rng.normal(0.5, 0.8),
                "pair": -1,
            }
        )
    # Bulge + disk draws after all others, so the other draws match bulge_disk=False.
    bulges = []
    for row in rows:
        if bulge_disk and row["kind"] == "galaxy":
            bulges.append((rng.uniform(0.2, 0.5), rng.uniform(0.1, 0.6), rng.uniform(0.8, 1.5)))
        else:
            bulges.append(None)

    model = np.zeros((h, w, n_bands))
    best = np.zeros((h, w))  # the largest band-sum contribution so far, per pixel
    owner = np.zeros((h, w), dtype=np.int32)
    fluxes = []
    for index, (row, bulge) in enumerate(zip(rows, bulges, strict=True)):
        x, y = row["x"], row["y"]
        if row["kind"] == "star":
            components = [(None, 1.0, row["alpha"])]
            half = max(12, int(math.ceil(6 * psf_fwhm)))
        elif bulge is None:
            prof = _sersic(row["sersic_n"], row["hlr"], row["q"], row["angle"])
            components = [(prof, 1.0, row["alpha"])]
            half = int(math.ceil(TRUNCATION * row["hlr"] + 4 * psf_fwhm))
        else:
            size, bt, redder = bulge
            disk = _sersic(1.0, row["hlr"], row["q"], row["angle"])
            bul = _sersic(4.0, size * row["hlr"], max(row["q"], 0.7), row["angle"])
            components = [
                (disk, 1.0 - bt, row["alpha"] - redder / 2),
                (bul, bt, row["alpha"] + redder / 2),
            ]
            half = int(math.ceil(TRUNCATION * row["hlr"] + 4 * psf_fwhm))
        stamps = []
        for prof, weight, alpha in components:
            stamp, y0, x0 = _stamp(prof, psf_obj, x, y, half)
            stamps.append((stamp, weight, _sed(alpha, n_bands)))
        unit = sum(weight * stamp for stamp, weight, _ in stamps)  # band-sum, unit flux
        flux = row["snr"] * sigma_sum / math.sqrt(float(np.sum(unit**2)))
        fluxes.append(flux)
        placed = _add(best, unit, y0, x0)
        if placed is None:
            continue
        where, _ = placed
        sy, sx = where[0].start - y0, where[1].start - x0
        region = (slice(sy, sy + where[0].stop - where[0].start),
                  slice(sx, sx + where[1].stop - where[1].start))
        for stamp, weight, sed in stamps:
            model[where] += flux * weight * stamp[region][:, :, None] * sed
        contribution = flux * unit[region]
        wins = contribution > best[where]
        best[where] = np.where(wins, contribution, best[where])
        owner[where] = np.where(wins, index + 1, owner[where])

    band_sum = model.sum(axis=2)
    truths = {
        float(t): np.where(band_sum >= t * sigma_sum, owner, 0).astype(np.int32)
        for t in truth_levels
    }
    image = model + sky + rng.normal(0.0, 1.0, (h, w, n_bands)) * noise
    image = image.astype(np.float32)
    if n_bands == 1:
        image = image[:, :, 0]
    sources = {
        "label": np.arange(1, len(rows) + 1),
        "flux": np.asarray(fluxes),
    }
    for key in ("x", "y", "kind", "snr", "hlr", "sersic_n", "q", "alpha", "pair"):
        sources[key] = np.asarray([row[key] for row in rows])
    return {
        "image": image,
        "truths": truths,
        "model": band_sum,
        "owner": owner,
        "sigma_sum": sigma_sum,
        "sources": sources,
    }
