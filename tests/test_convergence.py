"""Convergence diagnostics: the reported Monte Carlo standard errors shrink like 1/sqrt(N) and
agree with the scatter of independent replications."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sim.pipeline import simulate
from sim.summary import mean_se, probability_se, quantile_se
from tests.helpers import small



@pytest.fixture(scope="module")
def unwind():
    cfg = small(paths=16000, months=12)
    return simulate(cfg, progress=False)[0]["cum_unwind"].values


def _stats(u: np.ndarray, level: float) -> dict[str, tuple[float, float]]:
    return {"mean unwind": mean_se(u), "median unwind": quantile_se(u, 0.5),
            "90% unwind": quantile_se(u, 0.9), "P(unwind > level)": probability_se(u > level)}


def test_standard_errors_shrink_like_one_over_root_n(unwind):
    """SE(N) / SE(16 N) = 4 up to the sampling error of the SE estimates themselves."""
    level = float(np.quantile(unwind, 0.75))
    small_n = len(unwind) // 16
    ratios = []
    for start in range(0, len(unwind), small_n):  # the 16 disjoint sub-samples
        part = _stats(unwind[start:start + small_n], level)
        ratios.append({k: v[1] for k, v in part.items()})
    full = _stats(unwind, level)
    # The order-statistic SE of a quantile is half the gap between order statistics k = sqrt(n p
    # (1 - p)) either side: a sum of 2k spacings, relative sampling error about 1/sqrt(2k) (8.9%
    # for the median of 16,000 paths; the mean of 16 sub-sample SEs adds 1/sqrt(2k/16) / 4).
    # Mean and probability SEs are far more precise: 16 sub-sample SEs averaged scatter well
    # under 10%.
    n = len(unwind)
    for key, (_, se_full) in full.items():
        mean_ratio = np.mean([r[key] for r in ratios]) / se_full
        p = {"median unwind": 0.5, "90% unwind": 0.9}.get(key)
        if p is None:
            rel = 0.15
        else:
            k_full, k_sub = math.sqrt(n * p * (1 - p)), math.sqrt(small_n * p * (1 - p))
            rel = 3.0 * math.hypot(1 / math.sqrt(2 * k_full), 1 / math.sqrt(2 * k_sub) / 4)
        assert mean_ratio == pytest.approx(4.0, rel=rel), (key, mean_ratio, rel)


def test_standard_errors_match_the_scatter_of_replications(unwind):
    """Across 16 disjoint replications, the SD of each estimate is about its predicted SE."""
    level = float(np.quantile(unwind, 0.75))
    small_n = len(unwind) // 16
    parts = [_stats(unwind[s:s + small_n], level) for s in range(0, len(unwind), small_n)]
    for key in parts[0]:
        values = np.array([p[key][0] for p in parts])
        predicted = np.mean([p[key][1] for p in parts])
        observed = values.std(ddof=1)
        # The SD of 16 draws has relative SE about 1 / sqrt(2 x 15) = 0.18: allow 3 of them.
        assert abs(observed / predicted - 1.0) < 3 * math.sqrt(1 / 30), (key, observed, predicted)
