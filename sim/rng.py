"""Random streams: per-block kernel seeds and per-path parameter draws.

Two independent families derive from the run's seed through ``numpy.random.SeedSequence``:

* spawn key ``(0, b)``: the xoshiro256** state of path block ``b``, which the kernel uses for
  every shock of that block's paths;
* spawn key ``(1,)``: the key of the counter-based uniforms behind parameter priors.  The
  uniform of parameter ``name`` on global path ``p`` is a hash of (key, name, p), so a path's
  parameter draws do not depend on chunking, on the other parameters or on which investor
  classes are switched on.
"""
from __future__ import annotations

import zlib

import numpy as np
from scipy.special import ndtri

from sim.config import PriorConfig

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def block_seeds(seed: int, first_block: int, n_blocks: int) -> np.ndarray:
    """xoshiro256** states (uint64[n_blocks, 4]) of blocks first_block, first_block + 1, ..."""
    out = np.empty((n_blocks, 4), dtype=np.uint64)
    for i in range(n_blocks):
        out[i] = np.random.SeedSequence(seed, spawn_key=(0, first_block + i)).generate_state(
            4, np.uint64)
    return out


def _splitmix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def parameter_uniforms(seed: int, name: str, paths: np.ndarray) -> np.ndarray:
    """Uniforms on (0, 1) for parameter ``name`` on the given global path indices."""
    key = np.random.SeedSequence(seed, spawn_key=(1,)).generate_state(1, np.uint64)[0]
    base = _splitmix(np.array([key ^ np.uint64(zlib.crc32(name.encode()))], dtype=np.uint64))
    with np.errstate(over="ignore"):
        bits = _splitmix(base + paths.astype(np.uint64))
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) / 9007199254740992.0


def draw_prior(prior: PriorConfig, central: float, u: np.ndarray, uncertain: bool) -> np.ndarray:
    """Transform uniforms ``u`` into draws from ``prior`` (inverse CDF)."""
    if not uncertain or prior.dist == "fixed":
        return np.full(u.shape, float(central))
    if prior.dist == "uniform":
        return prior.low + u * (prior.high - prior.low)
    if prior.dist == "triangular":
        lo, hi, mode = prior.low, prior.high, float(central)
        cut = (mode - lo) / (hi - lo)
        left = lo + np.sqrt(u * (hi - lo) * (mode - lo))
        right = hi - np.sqrt((1.0 - u) * (hi - lo) * (hi - mode))
        return np.where(u < cut, left, right)
    if prior.dist == "normal":
        return central + prior.sd * ndtri(u)
    if prior.dist == "lognormal":
        return central * np.exp(prior.sd * ndtri(u))
    raise ValueError(f"unknown prior {prior.dist!r}")
