"""Shared pieces of in-process experiments (sensitivities, reverse stress tests).

An experiment evaluates the model under several override sets with the same seed, so every
evaluation sees the same shocks and differences between them are paired (common random numbers).
"""
from __future__ import annotations

import math

import numpy as np

from sim.compose import load_config
from sim.pipeline import simulate

#: Scalar statistics of the per-path cumulative unwind: name -> (description, function).
METRICS = {
    "mean_unwind": ("mean cumulative unwind, USD bn", lambda u, level: u),
    "exceedance": ("P(cumulative unwind > level)", lambda u, level: (u > level).astype(float)),
}


def unwind_paths(overrides: list[str]) -> np.ndarray:
    """Cumulative net unwind (USD bn) of every path under ``overrides``."""
    cfg = load_config([*overrides, "output.progress=false"])
    ds, _ = simulate(cfg, progress=False)
    return ds["cum_unwind"].values


def per_path_metric(metric: str, unwind: np.ndarray, level: float) -> np.ndarray:
    """The per-path quantity whose mean is ``metric``."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: one of {', '.join(METRICS)}")
    return METRICS[metric][1](unwind, level)


def mean_and_se(x: np.ndarray) -> tuple[float, float]:
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(len(x)))
