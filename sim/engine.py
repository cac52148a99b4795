"""Drive the kernel over chunks of paths and gather its outputs as numpy arrays.

A chunk is a whole number of fixed-size blocks; the random stream of a block depends only on
the seed and the block's global index, so neither the chunk size nor the number of numba
threads changes any result.
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


def _progress_printer(total: int) -> Callable[[int, float], None]:
    began = time.perf_counter()

    def report(done: int, chunks: str) -> None:
        spent = time.perf_counter() - began
        rate = done / spent if spent > 0 else float("inf")
        left = (total - done) / rate if rate > 0 else 0.0
        print(f"\r  {chunks} chunks, {done:,}/{total:,} paths, {rate:,.0f} paths/s, "
              f"about {left:,.0f}s left   ", end="" if done < total else "\n", file=sys.stderr,
              flush=True)
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


def run(cfg: Config, progress: Optional[bool] = None) -> RunArrays:
    """Validate ``cfg``, simulate every path and return the raw arrays."""
    validate(cfg)
    inputs = build_inputs(cfg)
    smp = cfg.sampler
    n, bs = smp.paths, smp.block_size
    threads = smp.threads or numba.config.NUMBA_NUM_THREADS
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    chunk = max(bs, (smp.chunk_paths // bs) * bs)
    n_cls = len(inputs.investors)
    n_time = len(inputs.dates)
    path_out = np.empty((n, K.N_OUT_PATH))
    cls_out = np.empty((n, n_cls, K.N_OUT_CLS))
    time_out = np.empty((n, n_time, K.N_OUT_TIME))
    path_par = np.empty((n, K.N_PATH_PAR))
    cls_path_par = np.empty((n, n_cls, 2))
    startup = warm_up(inputs, cfg)
    show = cfg.output.progress if progress is None else progress
    report = _progress_printer(n) if show else None
    n_chunks = -(-n // chunk)
    elapsed = 0.0
    for k, start in enumerate(range(0, n, chunk)):
        stop = min(start + chunk, n)
        first_block = start // bs
        seeds = block_seeds(smp.seed, first_block, -(-(stop - start) // bs))
        pp, cpp = path_parameters(cfg, inputs.investors, start, stop)
        path_par[start:stop], cls_path_par[start:stop] = pp, cpp
        outs = (path_out[start:stop], cls_out[start:stop], time_out[start:stop])
        began = time.perf_counter()
        K.simulate_chunk(seeds, bs, inputs.shared, (pp, cpp), outs)
        elapsed += time.perf_counter() - began
        _check_finite(path_out[start:stop], start, bs, inputs.dates)
        if report:
            report(stop, f"{k + 1}/{n_chunks}")
    return RunArrays(inputs=inputs, path_out=path_out, cls_out=cls_out, path_par=path_par,
                     cls_path_par=cls_path_par, time_out=time_out, elapsed=elapsed, startup=startup,
                     threads=numba.get_num_threads(), notes=list(inputs.notes))
