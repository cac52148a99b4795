"""Cost of the normal distribution function inside numba: the kernel's table against erfc.

    python benchmarks/cdf.py

Times, in nanoseconds per call, a compiled loop that sums the function over 2 million
arguments drawn as the kernel meets them (standard normal z-scores, plus a few far in the
tails), for ``math.erfc`` (the kernel's function before issue 14), ``math.erfc`` with the
density (one more ``math.exp``), and the kernel's :func:`sim.kernels.norm_cdf` and
:func:`sim.kernels.norm_cdf_pdf` (quintic Hermite interpolation in a table).  Median of five
calls after a warm-up; one thread.
"""
from __future__ import annotations

import math
import time

import numpy as np
from numba import njit

from sim import kernels as K


@njit(cache=True)
def _erfc(x):
    acc = 0.0
    for v in x:
        acc += 0.5 * math.erfc(-v * 0.7071067811865476)
    return acc


@njit(cache=True)
def _erfc_pdf(x):
    acc = 0.0
    for v in x:
        acc += (0.5 * math.erfc(-v * 0.7071067811865476)
                + 0.3989422804014327 * math.exp(-0.5 * v * v))
    return acc


@njit(cache=True)
def _table(x):
    acc = 0.0
    for v in x:
        acc += K.norm_cdf(v)
    return acc


@njit(cache=True)
def _table_pdf(x):
    acc = 0.0
    for v in x:
        cdf, pdf = K.norm_cdf_pdf(v)
        acc += cdf + pdf
    return acc


def main() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(2_000_000) * 1.5
    x[::100] *= 6.0
    for name, fn in (("math.erfc", _erfc), ("math.erfc + exp (density)", _erfc_pdf),
                     ("table (kernels.norm_cdf)", _table),
                     ("table with density (kernels.norm_cdf_pdf)", _table_pdf)):
        fn(x[:10])
        times = []
        for _ in range(5):
            began = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - began)
        print(f"{name:45s} {1e9 * float(np.median(times)) / x.size:6.2f} ns per call")


if __name__ == "__main__":
    main()
