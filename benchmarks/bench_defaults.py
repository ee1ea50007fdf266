"""Segmentation quality of `segment` on synthetic three-band fields with known truth.

Run by hand (not part of the test suite)::

    python benchmarks/bench_defaults.py            # defaults only, 6 fields
    python benchmarks/bench_defaults.py --grid     # the grid the defaults were chosen from

Each field is 256x256 pixels, three bands, 30 elliptical Gaussian sources with sizes
sigma = 1.2-5 px, axis ratios 0.5-1, integrated signal-to-noise 10-1000 (log-uniform),
random colours, sky 10 and Gaussian noise of standard deviation 1. The true label of a
pixel is the source contributing most where the summed model exceeds half the noise.
Found segments are matched one-to-one to true sources when their IoU is at least 0.5.
"""

import argparse
import time
import warnings

import numpy as np

from skimgcluster import segment

GRID = [
    {"detection_threshold": 3.0, "k_den": 20},
    {"detection_threshold": 3.0},
    {"detection_threshold": 3.5, "k_den": 15},
    {"detection_threshold": 4.0},
    {"detection_threshold": 3.5, "samples_per_pixel": 8},
    {"detection_threshold": 3.5, "colour_scale": 0},
    {"detection_threshold": 3.5, "colour_scale": 10},
    {"detection_threshold": 3.5, "stretch": "asinh"},
    {"detection_threshold": 3.5, "label_level": "top"},
]


def make_field(seed, size=256, n_sources=30, noise=1.0, sky=10.0):
    """Seeded synthetic field: (image, true label image)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    image = np.zeros((size, size, 3))
    models = []
    for _ in range(n_sources):
        x0, y0 = rng.uniform(10, size - 10, 2)
        sigma = rng.uniform(1.2, 5)
        q = rng.uniform(0.5, 1)
        theta = rng.uniform(0, np.pi)
        snr = 10 ** rng.uniform(1.0, 3.0)
        colour = rng.dirichlet([2, 2, 2])
        dx = (xx - x0) * np.cos(theta) + (yy - y0) * np.sin(theta)
        dy = -(xx - x0) * np.sin(theta) + (yy - y0) * np.cos(theta)
        profile = np.exp(-0.5 * ((dx / sigma) ** 2 + (dy / (sigma * q)) ** 2))
        profile /= profile.sum()
        model = snr * noise * np.sqrt(4 * np.pi * sigma * sigma * q) * profile
        image += 3 * model[..., None] * colour
        models.append(model)
    models = np.array(models)
    truth = np.where(models.sum(0) > 0.5 * noise, models.argmax(0) + 1, 0)
    image += sky + rng.normal(0, noise, image.shape)
    return image.astype(np.float32), truth


def score(found, truth):
    """Completeness, purity, F1 and mean IoU of a one-to-one IoU >= 0.5 matching."""
    f, t = found.ravel(), truth.ravel()
    f_ids, f_area = np.unique(f[f > 0], return_counts=True)
    t_ids, t_area = np.unique(t[t > 0], return_counts=True)
    both = (f > 0) & (t > 0)
    pairs, inter = np.unique(np.stack([f[both], t[both]]), axis=1, return_counts=True)
    fa = dict(zip(f_ids, f_area, strict=True))
    ta = dict(zip(t_ids, t_area, strict=True))
    iou = inter / (
        np.array([fa[a] for a in pairs[0]]) + np.array([ta[b] for b in pairs[1]]) - inter
    )
    good = iou >= 0.5  # IoU > 0.5 makes the matching one-to-one
    completeness = good.sum() / max(len(t_ids), 1)
    purity = good.sum() / max(len(f_ids), 1)
    f1 = 2 * completeness * purity / max(completeness + purity, 1e-12)
    return f1, completeness, purity, float(iou[good].mean()) if good.any() else 0.0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", action="store_true", help="also run the tuning grid")
    parser.add_argument("--fields", type=int, default=6, help="number of seeded fields")
    args = parser.parse_args()
    fields = [make_field(seed) for seed in range(args.fields)]
    configs = [{}] + (GRID if args.grid else [])
    print("| parameters (beyond defaults) | F1 | completeness | purity | mean IoU | s/field |")
    print("|---|---|---|---|---|---|")
    for params in configs:
        rows = []
        start = time.perf_counter()
        for image, truth in fields:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = segment(image, random_state=0, **params)
            rows.append(score(result.label_image, truth))
        per_field = (time.perf_counter() - start) / len(fields)
        f1, comp, pur, iou = np.mean(rows, axis=0)
        name = ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"
        print(
            f"| {name} | {f1:.3f} | {comp:.3f} | {pur:.3f} | {iou:.3f} | {per_field:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
