"""Per-date statistics across paths, accumulated chunk by chunk in bounded memory.

Each (variable, date) keeps a histogram whose bins are fixed before the accumulation starts, so
chunks (computed in any process) reduce to integer counts that add up exactly:

* policy rates and the stress flag live on a grid of 12.5bp (or 0/1): their bins are one grid
  point wide and their quantiles are exact, with numpy's linear interpolation between order
  statistics;
* every other variable gets ``N_BINS`` equal bins over three times the range seen in the first
  block of paths (a fixed unit, so the bins do not depend on chunking); a quantile is interpolated between order statistics assumed evenly spread within their
  bin, so its error is a small fraction of a bin width, far below the Monte Carlo error.

Means are sums over fixed-size path blocks added in block order, so they do not depend on how
blocks are grouped into chunks or processes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim import layout as L

N_BINS = 4096
GRID = 0.125
GRID_RANGE = (-5.0, 30.0)


def _discrete(dtype: np.dtype) -> set[int]:
    """Positions of the series on the 12.5bp grid (or 0/1), whose quantiles are exact."""
    return {dtype.names.index(name) for name in L.DISCRETE_SERIES if name in dtype.names}


@dataclass
class Edges:
    """Bin layout per (variable, date): lower edge and width; under- and overflow bins around."""

    lo: np.ndarray      # variables x dates
    width: np.ndarray   # variables x dates
    n_bins: np.ndarray  # variables (number of regular bins)

    discrete: frozenset  # positions of the variables on the rate grid

    @classmethod
    def from_first_chunk(cls, series: np.ndarray) -> "Edges":
        """Bins from the first block's series (records, paths x dates)."""
        cols = L.columns(series)
        n_vars, n_time = cols.shape[2], cols.shape[1]
        discrete = _discrete(series.dtype)
        lo = np.empty((n_vars, n_time))
        width = np.empty((n_vars, n_time))
        n_bins = np.full(n_vars, N_BINS)
        for v in range(n_vars):
            if v in discrete:
                lo[v] = GRID_RANGE[0] - GRID / 2
                width[v] = GRID
                n_bins[v] = int(round((GRID_RANGE[1] - GRID_RANGE[0]) / GRID)) + 1
                continue
            vmin = cols[:, :, v].min(axis=0)
            vmax = cols[:, :, v].max(axis=0)
            span = np.maximum(vmax - vmin, 1e-6 * np.maximum(np.abs(vmax), 1.0))
            lo[v] = vmin - span
            width[v] = 3.0 * span / N_BINS
        return cls(lo, width, n_bins, frozenset(discrete))


@dataclass
class ChunkStats:
    """What one chunk contributes: histogram counts and per-block sums."""

    counts: list          # per variable: int32 array dates x (n_bins + 2)
    block_sums: np.ndarray  # blocks x dates x variables


def chunk_stats(series: np.ndarray, edges: Edges, block_size: int) -> ChunkStats:
    """Histogram counts and per-block sums of a chunk's series (records, paths x dates)."""
    cols = L.columns(series)
    n, n_time, n_vars = cols.shape
    counts = []
    offsets = np.arange(n_time)[None, :]
    for v in range(n_vars):
        nb = int(edges.n_bins[v]) + 2
        idx = np.floor((cols[:, :, v] - edges.lo[v]) / edges.width[v]) + 1
        idx = np.clip(np.nan_to_num(idx, nan=0.0), 0, nb - 1).astype(np.int64)
        flat = (offsets * nb + idx).ravel()
        counts.append(np.bincount(flat, minlength=n_time * nb).reshape(n_time, nb).astype(np.int32))
    starts = range(0, n, block_size)
    block_sums = np.stack([cols[s:s + block_size].sum(axis=0) for s in starts])
    return ChunkStats(counts, block_sums)


class TimeStats:
    """Accumulates ChunkStats in path order; gives per-date quantiles and means as records."""

    def __init__(self, edges: Edges, n_time: int, dtype: np.dtype):
        self.edges = edges
        self.dtype = dtype
        n_vars = len(dtype.names)
        self.counts = [np.zeros((n_time, int(edges.n_bins[v]) + 2), dtype=np.int32)
                       for v in range(n_vars)]
        self.sums = np.zeros((n_time, n_vars))
        self.n = 0

    def add(self, part: ChunkStats, n_paths: int) -> None:
        for v, c in enumerate(part.counts):
            self.counts[v] += c
        for block in part.block_sums:  # in block order: independent of chunking
            self.sums += block
        self.n += n_paths

    def means(self) -> np.ndarray:
        """Means across paths: records, one per date."""
        return L.as_records(self.sums / self.n, self.dtype)

    def quantiles(self, qs) -> np.ndarray:
        """Quantiles across paths, numpy's 'linear' definition: records, len(qs) x dates."""
        n_time, n_vars = self.sums.shape
        out = np.empty((len(qs), n_time, n_vars))
        for v in range(n_vars):
            for t in range(n_time):
                out[:, t, v] = self._quantiles_one(v, t, qs)
        return L.as_records(out, self.dtype)

    def _order_statistic(self, v: int, t: int, cum: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Values of the order statistics k (0-based) from the histogram of (v, t)."""
        counts = self.counts[v][t]
        b = np.searchsorted(cum, k, side="right")  # bin holding order statistic k
        b = np.clip(b, 0, len(counts) - 1)
        before = np.where(b > 0, cum[np.maximum(b - 1, 0)], 0)
        lo, width = self.edges.lo[v, t], self.edges.width[v, t]
        if v in self.edges.discrete:
            return lo + width * (b - 1) + width / 2  # the grid point of the bin
        j = k - before
        inside = (j + 0.5) / np.maximum(counts[b], 1)
        # Under- and overflow bins collapse to the range's edges.
        return lo + width * (np.clip(b - 1, 0, self.edges.n_bins[v]) + np.where(
            (b > 0) & (b <= self.edges.n_bins[v]), inside, 0.0))

    def _quantiles_one(self, v: int, t: int, qs) -> np.ndarray:
        cum = np.cumsum(self.counts[v][t])
        pos = np.asarray(qs, dtype=float) * (self.n - 1)
        k0 = np.floor(pos).astype(np.int64)
        k1 = np.minimum(k0 + 1, self.n - 1)
        x0 = self._order_statistic(v, t, cum, k0)
        x1 = self._order_statistic(v, t, cum, k1)
        return x0 + (pos - k0) * (x1 - x0)
