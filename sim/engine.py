"""Drive the kernel over chunks of paths, in this process or on a Dask cluster.

A chunk is a whole number of fixed-size blocks; the random stream of a block depends only on
the seed and the block's global index, so neither the chunk size, the number of numba threads
nor the number of Dask workers changes any result.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numba
import numpy as np

from sim import kernels as K
from sim.config import Config
from sim.inputs import Inputs, build_inputs
from sim.rng import block_seeds, draw_prior, parameter_uniforms
from sim.timestats import ChunkStats, Edges, TimeStats, chunk_stats
from sim.validate import validate


class SimulationError(RuntimeError):
    """A numerical failure inside the model, located by path block and step."""


@dataclass
class RunArrays:
    """Raw outputs of a run, indexed by global path number."""

    inputs: Inputs
    path_out: np.ndarray        # paths x N_OUT_PATH
    cls_out: np.ndarray         # paths x classes x N_OUT_CLS
    path_par: np.ndarray        # paths x N_PATH_PAR (drawn parameters)
    cls_path_par: np.ndarray    # paths x classes x 2 (drawn holdings, repatriation shares)
    time_out: np.ndarray        # paths x (steps + 1) x N_OUT_TIME
    elapsed: float = 0.0        # seconds spent in the kernel calls
    startup: float = 0.0        # seconds to compile the kernel or load it from the cache
    threads: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def path_steps(self) -> int:
        return self.path_out.shape[0] * (self.time_out.shape[1] - 1)


def path_parameters(cfg: Config, investors: list[str], start: int, stop: int):
    """Per-path parameter draws for global paths [start, stop)."""
    paths = np.arange(start, stop, dtype=np.int64)
    seed, unc = cfg.sampler.seed, cfg.model.parameter_uncertainty
    pol, imp = cfg.model.policy, cfg.model.impact

    def draw(name, prior, central):
        return draw_prior(prior, central, parameter_uniforms(seed, name, paths), unc)

    path_par = np.empty((len(paths), K.N_PATH_PAR))
    path_par[:, K.P_NEUTRAL_BOJ] = draw("policy.boj.neutral", pol.boj.neutral_prior, pol.boj.neutral)
    path_par[:, K.P_NEUTRAL_FED] = draw("policy.fed.neutral", pol.fed.neutral_prior, pol.fed.neutral)
    impact = draw("impact.price_impact", imp.price_impact_prior, imp.price_impact)
    path_par[:, K.P_IMPACT] = np.maximum(impact, 0.0) / 100.0
    cls_path_par = np.empty((len(paths), len(investors), 2))
    for i, name in enumerate(investors):
        c = cfg.investors[name]
        hold = draw(f"investors.{name}.holdings", c.holdings_prior, c.holdings)
        rep = draw(f"investors.{name}.repatriation_share", c.repatriation_prior,
                   c.repatriation_share)
        cls_path_par[:, i, K.CP_HOLDINGS] = np.maximum(hold, 0.0)
        cls_path_par[:, i, K.CP_REPAT] = np.clip(rep, 0.0, 1.0)
    return path_par, cls_path_par


def _progress_printer(total: int) -> Callable[[int, str], None]:
    """A tqdm progress bar on stderr (chunks done, paths/s, time left); silent when stderr is
    not a terminal."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="path", unit_scale=True, desc="simulating", file=sys.stderr,
               disable=None, leave=False, dynamic_ncols=True)
    state = {"done": 0}

    def report(done: int, chunks: str) -> None:
        bar.set_postfix_str(f"chunks {chunks}", refresh=False)
        bar.update(done - state["done"])
        state["done"] = done
        if done >= total:
            bar.close()
    return report


def warm_up(inputs: Inputs, cfg: Config) -> float:
    """Compile (or load from the cache) the kernel on one path; returns the seconds spent."""
    began = time.perf_counter()
    n_cls = len(inputs.investors)
    pp, cpp = path_parameters(cfg, inputs.investors, 0, 1)
    outs = (np.empty((1, K.N_OUT_PATH)), np.empty((1, n_cls, K.N_OUT_CLS)),
            np.empty((1, len(inputs.dates), K.N_OUT_TIME)))
    K.simulate_chunk(block_seeds(cfg.sampler.seed, 0, 1), 1, inputs.shared, (pp, cpp), outs)
    return time.perf_counter() - began


def _check_finite(path_out: np.ndarray, start: int, block_size: int, dates: np.ndarray) -> None:
    """Raise SimulationError naming the first path whose state became NaN or infinite."""
    failed = np.flatnonzero(path_out[:, K.O_FAIL_STEP])
    if failed.size:
        path = start + int(failed[0])
        step = int(path_out[failed[0], K.O_FAIL_STEP])
        raise SimulationError(
            f"non-finite model state in path block {path // block_size} (path {path}) at step "
            f"{step} ({dates[step]}); {failed.size} path(s) of this chunk failed: the parameters "
            "are too extreme for the model")


@dataclass
class Chunk:
    """The kernel's outputs for global paths [start, stop)."""

    start: int
    stop: int
    path_out: np.ndarray
    cls_out: np.ndarray
    path_par: np.ndarray
    cls_path_par: np.ndarray
    time_out: Optional[np.ndarray]   # None once reduced to statistics
    elapsed: float
    stats: Optional[ChunkStats] = None


def chunk_size(cfg: Config) -> int:
    """Paths per chunk: ``chunk_paths`` rounded down to whole blocks (at least one block)."""
    smp = cfg.sampler
    return max(smp.block_size, (smp.chunk_paths // smp.block_size) * smp.block_size)


def chunk_ranges(cfg: Config) -> list[tuple[int, int]]:
    """Path ranges of the chunks."""
    chunk, n = chunk_size(cfg), cfg.sampler.paths
    return [(s, min(s + chunk, n)) for s in range(0, n, chunk)]


def simulate_range(cfg: Config, inputs: Inputs, start: int, stop: int) -> Chunk:
    """Simulate global paths [start, stop) (start on a block boundary); a pure function."""
    bs = cfg.sampler.block_size
    n_cls, n_time = len(inputs.investors), len(inputs.dates)
    seeds = block_seeds(cfg.sampler.seed, start // bs, -(-(stop - start) // bs))
    pp, cpp = path_parameters(cfg, inputs.investors, start, stop)
    n = stop - start
    outs = (np.empty((n, K.N_OUT_PATH)), np.empty((n, n_cls, K.N_OUT_CLS)),
            np.empty((n, n_time, K.N_OUT_TIME)))
    began = time.perf_counter()
    K.simulate_chunk(seeds, bs, inputs.shared, (pp, cpp), outs)
    elapsed = time.perf_counter() - began
    _check_finite(outs[0], start, bs, inputs.dates)
    return Chunk(start, stop, outs[0], outs[1], pp, cpp, outs[2], elapsed)


def reduce_chunk(chunk: Chunk, edges: Edges, block_size: int, n_sample: int) -> Chunk:
    """Replace a chunk's time series by its statistics, keeping the rows of sample paths."""
    chunk.stats = chunk_stats(chunk.time_out, edges, block_size)
    keep = max(0, min(n_sample, chunk.stop) - chunk.start)
    chunk.time_out = chunk.time_out[:keep].copy()
    return chunk


def _set_threads(cfg: Config) -> int:
    threads = cfg.sampler.threads or numba.config.NUMBA_NUM_THREADS
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return numba.get_num_threads()


def run(cfg: Config, progress: Optional[bool] = None) -> RunArrays:
    """Validate ``cfg``, simulate every path and return all raw arrays (memory grows with paths).

    For tests and small studies; command-line runs use :func:`stream`, whose memory is bounded
    by a chunk.
    """
    validate(cfg)
    inputs = build_inputs(cfg)
    threads = _set_threads(cfg)
    startup = warm_up(inputs, cfg)
    ranges = chunk_ranges(cfg)
    show = cfg.output.progress if progress is None else progress
    report = _progress_printer(cfg.sampler.paths) if show else None
    chunks = []
    for k, (start, stop) in enumerate(ranges):
        chunks.append(simulate_range(cfg, inputs, start, stop))
        if report:
            report(stop, f"{k + 1}/{len(ranges)}")
    cat = lambda name: np.concatenate([getattr(c, name) for c in chunks])  # noqa: E731
    return RunArrays(inputs=inputs, path_out=cat("path_out"), cls_out=cat("cls_out"),
                     path_par=cat("path_par"), cls_path_par=cat("cls_path_par"),
                     time_out=cat("time_out"), elapsed=sum(c.elapsed for c in chunks),
                     startup=startup, threads=threads, notes=list(inputs.notes))


@dataclass
class StreamResult:
    """What a streamed run leaves after every chunk has gone to the sink."""

    inputs: Inputs
    stats: TimeStats
    sample: np.ndarray          # sample paths x dates x N_OUT_TIME
    elapsed: float
    startup: float
    threads: int
    workers: int
    notes: list[str]
    path_steps: int


def _remote_chunk(cfg: Config, start: int, stop: int, edges: Edges, n_sample: int) -> Chunk:
    """A chunk computed on a Dask worker, reduced before it travels back."""
    numba.set_num_threads(1)
    inputs = build_inputs(cfg)
    return reduce_chunk(simulate_range(cfg, inputs, start, stop), edges, cfg.sampler.block_size,
                        n_sample)


def stream(cfg: Config, sink: Callable[[Chunk], None], progress: Optional[bool] = None,
           client=None) -> StreamResult:
    """Simulate chunk by chunk, hand each chunk's per-path arrays to ``sink`` in path order.

    The first chunk is simulated here; its first block fixes the histogram bins of the per-date
    statistics;
    the others run here or, given a ``dask.distributed`` client, on its workers.  Memory held
    here is one chunk plus the statistics, whatever the number of paths.
    """
    validate(cfg)
    inputs = build_inputs(cfg)
    threads = _set_threads(cfg)
    startup = warm_up(inputs, cfg)
    ranges = chunk_ranges(cfg)
    n_sample = min(cfg.sampler.sample_paths, cfg.sampler.paths)
    show = cfg.output.progress if progress is None else progress
    report = _progress_printer(cfg.sampler.paths) if show else None
    bs = cfg.sampler.block_size

    first = simulate_range(cfg, inputs, *ranges[0])
    edges = Edges.from_first_chunk(first.time_out[:bs])  # the first block: same for any chunking
    stats = TimeStats(edges, len(inputs.dates), K.N_OUT_TIME)
    sample = np.empty((n_sample, len(inputs.dates), K.N_OUT_TIME))
    elapsed = 0.0

    def absorb(chunk: Chunk, k: int) -> None:
        nonlocal elapsed
        stats.add(chunk.stats, chunk.stop - chunk.start)
        rows = chunk.time_out
        sample[chunk.start:chunk.start + len(rows)] = rows
        elapsed += chunk.elapsed
        sink(chunk)
        if report:
            report(chunk.stop, f"{k + 1}/{len(ranges)}")

    absorb(reduce_chunk(first, edges, bs, n_sample), 0)
    if client is None:
        for k, (start, stop) in enumerate(ranges[1:], start=1):
            absorb(reduce_chunk(simulate_range(cfg, inputs, start, stop), edges, bs, n_sample), k)
        workers = 1
    else:
        futures = [client.submit(_remote_chunk, cfg, start, stop, edges, n_sample, pure=False)
                   for start, stop in ranges[1:]]
        for k, future in enumerate(futures, start=1):
            absorb(future.result(), k)  # in path order, whatever order they finish in
            future.release()
        workers = len(client.scheduler_info()["workers"])
    steps = len(inputs.dates) - 1
    return StreamResult(inputs=inputs, stats=stats, sample=sample, elapsed=elapsed,
                        startup=startup, threads=threads, workers=workers,
                        notes=list(inputs.notes), path_steps=cfg.sampler.paths * steps)
