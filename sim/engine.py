"""Drive the kernel over chunks of paths, in this process or on a Dask cluster.

:func:`stream` is the one driver: it takes the :class:`sim.inputs.Inputs` of a run (the config
validated and resolved once), simulates chunk after chunk and hands each chunk to a sink in
path order (:mod:`sim.results` has an in-memory sink and a zarr sink).  A chunk is a whole
number of fixed-size blocks; the random stream of a block depends only on the seed and the
block's global index, so neither the chunk size, the number of numba threads nor the number of
Dask workers changes any result.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numba
import numpy as np

from sim import kernels as K
from sim import layout as L
from sim.inputs import Inputs, path_parameters
from sim.rng import block_seeds
from sim.timestats import ChunkStats, Edges, TimeStats, chunk_stats


class SimulationError(RuntimeError):
    """A numerical failure inside the model, located by path block and step."""


@dataclass
class Chunk:
    """The kernel's records for global paths [start, stop)."""

    start: int
    stop: int
    paths: np.ndarray                 # PATH_OUT[paths]
    classes: np.ndarray               # CLASS_OUT[paths, classes]
    params: np.ndarray                # PATH_PARAM[paths], drawn parameters
    class_params: np.ndarray          # CLASS_PARAM[paths, classes], drawn parameters
    series: Optional[np.ndarray]      # TIME_OUT[paths, dates]; None once reduced (unless kept)
    elapsed: float                    # seconds in the kernel
    stats: Optional[ChunkStats] = None
    sample: Optional[np.ndarray] = None  # TIME_OUT rows of the chunk's sample paths


@dataclass
class RunInfo:
    """What a run leaves besides the per-path records that went to the sink."""

    inputs: Inputs
    stats: TimeStats
    sample: np.ndarray          # TIME_OUT[sample paths, dates]
    elapsed: float              # seconds in the kernel calls
    startup: float              # seconds to compile the kernel or load it from the cache
    threads: int
    workers: int
    notes: list[str]
    path_steps: int


def _outputs(n: int, n_classes: int, n_dates: int):
    return (np.empty(n, L.PATH_OUT), np.empty((n, n_classes), L.CLASS_OUT),
            np.empty((n, n_dates), L.TIME_OUT))


def warm_up(inputs: Inputs) -> float:
    """Compile (or load from the cache) the kernel on one path; returns the seconds spent."""
    began = time.perf_counter()
    per_path = path_parameters(inputs, 0, 1)
    outs = _outputs(1, len(inputs.investors), len(inputs.dates))
    K.simulate_chunk(block_seeds(inputs.plan.seed, 0, 1), 1, inputs.model, per_path, outs)
    return time.perf_counter() - began


def _check_finite(paths: np.ndarray, start: int, block_size: int, dates: np.ndarray) -> None:
    """Raise SimulationError naming the first path whose state became NaN or infinite."""
    failed = np.flatnonzero(paths["fail_step"])
    if failed.size:
        path = start + int(failed[0])
        step = int(paths["fail_step"][failed[0]])
        raise SimulationError(
            f"non-finite model state in path block {path // block_size} (path {path}) at step "
            f"{step} ({dates[step]}); {failed.size} path(s) of this chunk failed: the parameters "
            "are too extreme for the model")


def simulate_range(inputs: Inputs, start: int, stop: int) -> Chunk:
    """Simulate global paths [start, stop) (start on a block boundary); a pure function."""
    bs = inputs.plan.block_size
    seeds = block_seeds(inputs.plan.seed, start // bs, -(-(stop - start) // bs))
    per_path = path_parameters(inputs, start, stop)
    outs = _outputs(stop - start, len(inputs.investors), len(inputs.dates))
    began = time.perf_counter()
    K.simulate_chunk(seeds, bs, inputs.model, per_path, outs)
    elapsed = time.perf_counter() - began
    _check_finite(outs[0], start, bs, inputs.dates)
    return Chunk(start, stop, outs[0], outs[1], per_path[0], per_path[1], outs[2], elapsed)


def reduce_chunk(chunk: Chunk, edges: Edges, block_size: int, n_sample: int,
                 keep_series: bool = False) -> Chunk:
    """Add a chunk's per-date statistics and its sample paths; drop its series unless kept."""
    chunk.stats = chunk_stats(chunk.series, edges, block_size)
    keep = max(0, min(n_sample, chunk.stop) - chunk.start)
    chunk.sample = chunk.series[:keep].copy()
    if not keep_series:
        chunk.series = None
    return chunk


def _remote_chunk(inputs: Inputs, start: int, stop: int, edges: Edges) -> Chunk:
    """A chunk computed on a Dask worker, reduced before it travels back."""
    numba.set_num_threads(1)
    return reduce_chunk(simulate_range(inputs, start, stop), edges, inputs.plan.block_size,
                        inputs.plan.sample_paths)


def _set_threads(threads: int) -> int:
    threads = threads or numba.config.NUMBA_NUM_THREADS
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return numba.get_num_threads()


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


def stream(inputs: Inputs, sink: Callable[[Chunk], None], client=None,
           progress: Optional[bool] = None, keep_series: bool = False) -> RunInfo:
    """Simulate chunk by chunk and hand each chunk to ``sink`` in path order.

    The first chunk is simulated here; its first block fixes the histogram bins of the
    per-date statistics (the same for any chunking).  The others run here or, given a
    ``dask.distributed`` client, on its workers.  Memory held here is one chunk plus the
    statistics, whatever the number of paths; with ``keep_series`` (in this process only) each
    chunk also carries the full time series of its paths to the sink.
    """
    if not isinstance(inputs, Inputs):
        raise TypeError("stream takes the Inputs of sim.inputs.build_inputs(cfg)")
    if keep_series and client is not None:
        raise ValueError("full time series are kept only for runs in this process")
    plan = inputs.plan
    threads = _set_threads(plan.threads)
    startup = warm_up(inputs)
    ranges = plan.chunk_ranges()
    show = plan.progress if progress is None else progress
    report = _progress_printer(plan.paths) if show else None
    bs, n_sample, n_dates = plan.block_size, plan.sample_paths, len(inputs.dates)

    first = simulate_range(inputs, *ranges[0])
    edges = Edges.from_first_chunk(first.series[:bs])
    stats = TimeStats(edges, n_dates, L.TIME_OUT)
    sample = np.empty((n_sample, n_dates), L.TIME_OUT)
    elapsed = 0.0

    def absorb(chunk: Chunk, k: int) -> None:
        nonlocal elapsed
        stats.add(chunk.stats, chunk.stop - chunk.start)
        sample[chunk.start:chunk.start + len(chunk.sample)] = chunk.sample
        elapsed += chunk.elapsed
        sink(chunk)
        if report:
            report(chunk.stop, f"{k + 1}/{len(ranges)}")

    absorb(reduce_chunk(first, edges, bs, n_sample, keep_series), 0)
    if client is None:
        for k, (start, stop) in enumerate(ranges[1:], start=1):
            chunk = simulate_range(inputs, start, stop)
            absorb(reduce_chunk(chunk, edges, bs, n_sample, keep_series), k)
        workers = 1
    else:
        shared = client.scatter(inputs, broadcast=True)
        futures = [client.submit(_remote_chunk, shared, start, stop, edges, pure=False)
                   for start, stop in ranges[1:]]
        for k, future in enumerate(futures, start=1):
            absorb(future.result(), k)  # in path order, whatever order they finish in
            future.release()
        workers = len(client.scheduler_info()["workers"])
    return RunInfo(inputs=inputs, stats=stats, sample=sample, elapsed=elapsed, startup=startup,
                   threads=threads, workers=workers, notes=list(inputs.notes),
                   path_steps=plan.paths * (n_dates - 1))
