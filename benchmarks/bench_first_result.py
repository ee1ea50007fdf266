"""Time of a new process to its first result.

Run it twice; the first run after installing fills the numba cache::

    /usr/bin/time -f "%e s wall, %M KB" python benchmarks/bench_first_result.py
"""

import time

t0 = time.perf_counter()

import numpy as np  # noqa: E402  (imports are part of what is timed)

from skimgcluster import segment  # noqa: E402

t1 = time.perf_counter()
rng = np.random.default_rng(0)
yy, xx = np.mgrid[:256, :256]
image = rng.normal(10, 1, (256, 256, 3))
for y0, x0 in [(50, 60), (120, 200), (200, 90)]:
    image += (60 * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / 20))[..., None]
result = segment(image, random_state=0)
t2 = time.perf_counter()
print(
    f"import {t1 - t0:.2f} s, first result {t2 - t1:.2f} s, total {t2 - t0:.2f} s, "
    f"sources {result.n_sources}"
)
