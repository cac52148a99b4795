"""One run, end to end: config -> inputs -> chunks -> Dataset -> files.  No Hydra here.

:func:`simulate` is the in-process entry point for analysis code and tests: a config in, a
Dataset out (with ``series=True`` it also holds every path's full time series).
"""
from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass
import tempfile
from pathlib import Path

import xarray as xr

from sim.config import Config
from sim.engine import RunInfo, stream
from sim.inputs import Inputs, build_inputs
from sim.plots import plot_run
from sim.results import MemorySink, ZarrSink, open_results, write_netcdf
from sim.io import atomic_write_text
from sim.summary import (RunContext, counterfactual_statistics, format_observations,
                         format_summary, key_statistics, observation_rows, write_tables)
from sim.validate import ConfigError

RESULTS_FILE = "results.nc"
ZARR_STORE = "results.zarr"
FAILED_FILE = "FAILED"  # left by a sweep job that failed, holding its error


@dataclass
class RunReport:
    dataset: xr.Dataset
    summary: str
    files: list[Path]
    path_steps_per_second: float


def finished_with(out_dir: Path, resolved_config: str) -> bool:
    """Whether ``out_dir`` already holds complete results of a run with this resolved config."""
    for name in (RESULTS_FILE, ZARR_STORE):
        path = Path(out_dir) / name
        if path.exists():
            try:
                return open_results(path).attrs.get("config") == resolved_config
            except Exception:  # unreadable or partial: run again
                return False
    return False


@contextmanager
def dask_client(cfg: Config):
    """A ``dask.distributed`` client if ``sampler.scheduler`` asks for one, else None."""
    scheduler = cfg.sampler.scheduler
    if not scheduler:
        yield None
        return
    import logging

    from dask.distributed import Client, LocalCluster

    # distributed sets its loggers to INFO when imported: the scheduler's ~30 start-up lines
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if scheduler == "local":
        cluster = LocalCluster(n_workers=cfg.sampler.workers, threads_per_worker=1,
                               processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)  # not its ~30 INFO lines
        client = Client(cluster)
    else:
        cluster, client = None, connect_scheduler(scheduler)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


#: Seconds to wait for a Dask scheduler named by ``sampler.scheduler`` before giving up.
SCHEDULER_TIMEOUT = 10.0


def connect_scheduler(address: str):
    """A client of the running Dask scheduler at ``address``, or ConfigError if none answers."""
    from dask.distributed import Client

    try:
        return Client(address, timeout=f"{SCHEDULER_TIMEOUT}s")
    except (OSError, ValueError, TypeError) as err:
        reason = (f"none answered within {SCHEDULER_TIMEOUT:g} s" if isinstance(err, OSError)
                  else f"not an address: {err}")
        raise ConfigError("sampler.scheduler", address,
                          f"the address of a running Dask scheduler ({reason})") from None


def simulate(cfg: Config | Inputs, command: str = "python -m sim", progress: bool | None = None,
             client=None, series: bool = False) -> tuple[xr.Dataset, RunInfo]:
    """Run the model and return its in-memory Dataset and the run's bookkeeping.

    ``cfg`` is validated and resolved once (or given already resolved as Inputs).  With
    ``series`` the Dataset also holds the full time series of every path (path x time), so
    memory grows with the number of paths.
    """
    inputs = cfg if isinstance(cfg, Inputs) else build_inputs(cfg)
    sink = MemorySink(series=series)
    result = stream(inputs, sink, client=client, progress=progress, keep_series=series)
    return sink.dataset(result, command), result


def flows_off(cfg: Config) -> Config:
    """The flows-off counterfactual of ``cfg``: the same config and seed, so the same shocks,
    with private flows moving no price (official interventions still do)."""
    off = copy.deepcopy(cfg)
    off.model.impact.private_flows = False
    return off


def counterfactual(cfg: Config, client=None, series: bool = False
                   ) -> tuple[xr.Dataset, xr.Dataset]:
    """Run ``cfg`` and its flows-off counterfactual on the same seed: (model, flows off)."""
    ds, _ = simulate(cfg, progress=False, client=client, series=series)
    off, _ = simulate(flows_off(cfg), progress=False, client=client, series=series)
    return ds, off


def _simulate_to_zarr(inputs: Inputs, path: Path, command: str, client) -> tuple[xr.Dataset, RunInfo]:
    sink = ZarrSink(inputs, path)
    try:
        result = stream(inputs, sink, client=client)
        store = sink.finish(result, command)
    except BaseException:
        sink.discard()
        raise
    return open_results(store), result


def _flows_off_statistics(cfg: Config, out_dir: Path, command: str) -> list:
    """The key outcomes of the flows-off counterfactual, run like the model itself: a zarr run
    streams into a scratch store inside ``out_dir`` (removed afterwards), so that memory stays
    bounded by a chunk at any number of paths."""
    off = build_inputs(flows_off(cfg))
    with dask_client(cfg) as client:
        if cfg.output.format != "zarr":
            return counterfactual_statistics(simulate(off, command=command, progress=False,
                                                      client=client)[0])
        with tempfile.TemporaryDirectory(prefix="flows-off-", dir=out_dir) as scratch:
            ds, _ = _simulate_to_zarr(off, Path(scratch) / ZARR_STORE, command, client)
            try:
                return counterfactual_statistics(ds)
            finally:
                ds.close()


def run_and_save(cfg: Config, out_dir: Path, command: str = "python -m sim", overrides=(),
                 calibration: str | None = None, folder: Path | None = None) -> RunReport:
    """Simulate, then write the results, the plots and the summary tables into ``out_dir``.

    ``overrides`` and ``calibration`` (the calibration config chosen) describe the run in its
    summaries; ``folder`` is where its files end up (``out_dir`` may be a staging folder).
    """
    out_dir = Path(out_dir)
    context = RunContext.of(cfg, overrides, calibration, folder or out_dir)
    inputs = build_inputs(cfg)
    with dask_client(cfg) as client:
        if cfg.output.format == "zarr":
            ds, result = _simulate_to_zarr(inputs, out_dir / ZARR_STORE, command, client)
        else:
            ds, result = simulate(inputs, command=command, client=client)
    rows = key_statistics(ds, cfg.output.exceedance_thresholds)
    if cfg.output.counterfactual and cfg.model.impact.private_flows:
        rows += _flows_off_statistics(cfg, out_dir, command)
    files = []
    if cfg.output.plots:
        files += plot_run(ds, out_dir)
    write_tables(rows, out_dir, context)
    files += [out_dir / "summary.csv", out_dir / "summary.md"]
    if cfg.output.format == "netcdf":
        files.append(write_netcdf(ds, out_dir / RESULTS_FILE))
    elif cfg.output.format == "zarr":
        files.append(out_dir / ZARR_STORE)
    rate = result.path_steps / result.elapsed if result.elapsed > 0 else float("inf")
    text = format_summary(ds, rows, context)
    observed = observation_rows(ds, cfg.scenario.observations)
    if observed:
        table = format_observations(observed)
        text += "\n" + table
        atomic_write_text(out_dir / "observations.md", table + "\n")
        files.append(out_dir / "observations.md")
    if ds.attrs.get("notes"):
        text += f"\nNote: {ds.attrs['notes']}"
    where = f"{result.workers} Dask workers" if client is not None else f"{result.threads} threads"
    text += (f"\nThroughput: {rate / 1e6:.2f}M path-steps/s on {where} "
             f"({result.elapsed:.1f}s in the kernel after {result.startup:.1f}s to compile or load it)")
    return RunReport(dataset=ds, summary=text, files=files, path_steps_per_second=rate)
