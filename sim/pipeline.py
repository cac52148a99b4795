"""One run, end to end: config -> arrays -> Dataset -> files.  No Hydra here."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from sim.config import Config
from sim.engine import run
from sim.plots import plot_run
from sim.results import build_dataset, open_results, write_netcdf
from sim.summary import format_summary, key_statistics, write_tables

RESULTS_FILE = "results.nc"
FAILED_FILE = "FAILED"  # left by a sweep job that failed, holding its error


@dataclass
class RunReport:
    dataset: xr.Dataset
    summary: str
    files: list[Path]
    path_steps_per_second: float


def finished_with(out_dir: Path, resolved_config: str) -> bool:
    """Whether ``out_dir`` already holds complete results of a run with this resolved config."""
    path = Path(out_dir) / RESULTS_FILE
    if not path.is_file():
        return False
    try:
        return open_results(path).attrs.get("config") == resolved_config
    except Exception:  # unreadable or partial: run again
        return False


def simulate(cfg: Config, command: str = "python -m sim", progress: bool | None = None) -> tuple[xr.Dataset, float]:
    """Run the model and return its Dataset and its throughput (path-steps per second)."""
    arrays = run(cfg, progress=progress)
    rate = arrays.path_steps / arrays.elapsed if arrays.elapsed > 0 else float("inf")
    return build_dataset(cfg, arrays, command=command), rate


def run_and_save(cfg: Config, out_dir: Path, command: str = "python -m sim") -> RunReport:
    """Simulate, then write results.nc, the plots and the summary tables into ``out_dir``."""
    out_dir = Path(out_dir)
    ds, rate = simulate(cfg, command=command)
    rows = key_statistics(ds, cfg.output.exceedance_thresholds)
    files = []
    if cfg.output.plots:
        files += plot_run(ds, out_dir)
    write_tables(rows, out_dir)
    files += [out_dir / "summary.csv", out_dir / "summary.md"]
    if cfg.output.netcdf:
        files.append(write_netcdf(ds, out_dir / RESULTS_FILE))
    text = format_summary(ds, rows)
    if ds.attrs.get("notes"):
        text += f"\nNote: {ds.attrs['notes']}"
    text += (f"\nThroughput: {rate / 1e6:.2f}M path-steps/s on {ds.attrs['threads']} threads "
             f"({ds.attrs['kernel_seconds']:.1f}s in the kernel after "
             f"{ds.attrs['startup_seconds']:.1f}s to compile or load it)")
    return RunReport(dataset=ds, summary=text, files=files, path_steps_per_second=rate)
