#!/usr/bin/python3
"""Times SciPy's ks_2samp and NumPy's searchsorted+bincount PSI counting on the same sizes and data shape as
DriftBenchmarks (normal samples, 10 quantile bins), and prints JSON: {name: median seconds}.
Run with Debian's /usr/bin/python3 (apt-get install -y python3-scipy)."""
import json, sys, time
import numpy as np
import scipy
from scipy import stats

def median_time(f, repeats):
    f()  # warm-up
    ts = []
    for _ in range(repeats):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return float(np.median(ts))

out = {"scipy": scipy.__version__, "numpy": np.__version__}
for n in (1_000_000, 999_983):
    rng = np.random.default_rng(1)
    a = rng.normal(size=n); b = rng.normal(size=n) + 0.001
    edges = np.quantile(a, np.arange(1, 10) / 10)
    out[f"ks_2samp/{n}"] = median_time(lambda: stats.ks_2samp(a, b), 7)
    out[f"psi_count/{n}"] = median_time(lambda: np.bincount(np.searchsorted(edges, b, side="right"), minlength=10), 25)
json.dump(out, sys.stdout)
