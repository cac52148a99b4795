"""Kernel records to an ``xarray.Dataset`` with units and long names, and file round trips.

Metadata is declared as data beside the computation: the units and long name of every
variable come from its field in :mod:`sim.layout`; the few variables that are not a field
copied as is (a date, a rescaled parameter, a renamed draw) are listed below.
"""
from __future__ import annotations

import datetime as _dt
import os
import shutil
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import xarray as xr
from omegaconf import OmegaConf

import sim
from sim import layout as L
from sim.config import Config
from sim.inputs import Inputs
from sim.io import atomic_write_bytes

#: PATH_OUT fields that are not copied as they are.
_NOT_COPIED = ("first_large_step", "fail_step")
#: Drawn per-class parameters: Dataset name -> CLASS_PARAM field.
CLASS_PARAM_VARS = {"holdings_initial": "holdings", "repatriation_share": "repatriation"}
#: Per-date series summarised across paths (all but the stress flag, whose mean is its own variable).
SUMMARISED = tuple(n for n in L.TIME_OUT.names if n != "stress")


def config_yaml(cfg: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def package_versions() -> str:
    import hydra
    import matplotlib
    import numba
    import scipy

    mods = {"python": sys.version.split()[0], "yen-carry-sim": sim.__version__,
            "numpy": np.__version__, "numba": numba.__version__, "xarray": xr.__version__,
            "scipy": scipy.__version__, "hydra-core": hydra.__version__,
            "matplotlib": matplotlib.__version__}
    return ", ".join(f"{k} {v}" for k, v in mods.items())


def _var(dims, data, units, long_name, **extra):
    return xr.Variable(dims, data, {"units": units, "long_name": long_name, **extra})


def _field_var(dims, records: np.ndarray, dtype: np.dtype, name: str, long_name: str = None):
    f = L.meta(dtype, name)
    return _var(dims, records[name], f.units, long_name or f.long_name)


def path_dataset(inputs: Inputs, chunk, start: int = 0) -> xr.Dataset:
    """Per-path variables of the paths held by ``chunk`` (anything with the kernel's per-path
    records: paths, classes, params, class_params), numbered from ``start``."""
    dates = inputs.dates
    out = chunk.paths
    data = {}
    copied = [f for f in L.fields(L.PATH_OUT) if f.name not in _NOT_COPIED
              and not f.name.endswith("_end")]
    for f in copied:  # amounts first, then counts
        if f.type == "f8":
            data[f.name] = _field_var("path", out, L.PATH_OUT, f.name)
    for f in copied:
        if f.type == "i8":
            data[f.name] = _var("path", out[f.name].astype(np.int64), f.units, f.long_name)
    first = out["first_large_step"].astype(np.int64)
    first_date = np.where(first > 0, dates[np.clip(first, 0, len(dates) - 1)], np.datetime64("NaT"))
    large = float(inputs.model.glob["large_weekly"][0])
    data["first_large_unwind"] = xr.Variable(
        "path", first_date.astype("datetime64[ns]"),
        {"long_name": f"End of the first step with unwind above USD {large:g}bn a week (NaT: none)"})
    for f in L.fields(L.PATH_OUT):
        if f.name.endswith("_end"):
            data[f.name] = _field_var("path", out, L.PATH_OUT, f.name)
    data["neutral_boj"] = _field_var("path", chunk.params, L.PATH_PARAM, "neutral_boj")
    data["neutral_fed"] = _field_var("path", chunk.params, L.PATH_PARAM, "neutral_fed")
    data["price_impact"] = _var("path", 100.0 * chunk.params["impact"], "% per USD bn",
                                L.meta(L.PATH_PARAM, "impact").long_name)
    for f in L.fields(L.CLASS_OUT):
        data[f.name] = _field_var(("path", "investor"), chunk.classes, L.CLASS_OUT, f.name)
    for name, field in CLASS_PARAM_VARS.items():
        data[name] = _field_var(("path", "investor"), chunk.class_params, L.CLASS_PARAM, field)
    n = len(out)
    path = xr.Variable("path", np.arange(start, start + n),
                       {"long_name": "Monte Carlo path", "ensemble_axis": "true"})
    return xr.Dataset(data, coords={"path": path})


def series_dataset(inputs: Inputs, chunk, start: int = 0) -> xr.Dataset:
    """The full time series of the paths held by ``chunk`` (path x time), one variable per
    TIME_OUT field."""
    data = {f.name: _field_var(("path", "time"), chunk.series, L.TIME_OUT, f.name)
            for f in L.fields(L.TIME_OUT)}
    path = xr.Variable("path", np.arange(start, start + len(chunk.series)),
                       {"long_name": "Monte Carlo path", "ensemble_axis": "true"})
    return xr.Dataset(data, coords={"path": path})


def time_dataset(inputs: Inputs, stats, sample: np.ndarray) -> xr.Dataset:
    """Per-date quantiles and means across paths, and the sample paths."""
    quantiles = np.asarray(inputs.cfg.output.quantiles, dtype=float)
    q = stats.quantiles(quantiles)
    mean = stats.means()
    data = {}
    for name in SUMMARISED:
        f = L.meta(L.TIME_OUT, name)
        data[f"{name}_quantiles"] = _var(("quantile", "time"), q[name], f.units,
                                         f"{f.long_name}, quantiles across paths")
        data[f"{name}_mean"] = _var("time", mean[name], f.units, f"{f.long_name}, mean across paths")
        data[f"sample_{name}"] = _var(("sample", "time"), sample[name], f.units,
                                      f"{f.long_name}, sample paths")
    data["stress_probability"] = _var("time", mean["stress"], "1",
                                      "Share of paths in the stress regime")
    coords = {
        "time": ("time", inputs.dates.astype("datetime64[ns]"), {"long_name": "Date"}),
        "investor": ("investor", np.array(inputs.investors, dtype=object),
                     {"long_name": "Investor class"}),
        "investor_label": ("investor", np.array(inputs.labels, dtype=object),
                           {"long_name": "Investor class"}),
        "quantile": ("quantile", quantiles, {"long_name": "Quantile", "units": "1"}),
        "sample": ("sample", np.arange(sample.shape[0]), {"long_name": "Sample path"}),
    }
    return xr.Dataset(data, coords=coords)


def run_attrs(result, command: str) -> dict:
    """Dataset attributes: conventions, provenance, config, versions, history."""
    cfg = result.inputs.cfg
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "Conventions": "CF-1.8",
        "title": f"Yen carry-trade unwind: scenario {cfg.scenario.name}, snapshot {cfg.snapshot.name}",
        "source": f"yen-carry-sim {sim.__version__}",
        "scenario": cfg.scenario.name,
        "snapshot": cfg.snapshot.name,
        "snapshot_date": cfg.snapshot.date,
        "seed": int(cfg.sampler.seed),
        "paths": int(cfg.sampler.paths),
        "step": str(cfg.sampler.step),
        "horizon_months": int(cfg.sampler.horizon_months),
        "kernel_seconds": float(result.elapsed),
        "startup_seconds": float(result.startup),
        "threads": int(result.threads),
        "workers": int(result.workers),
        "versions": package_versions(),
        "config": config_yaml(cfg),
        "notes": "; ".join(result.notes),
        "history": f"{stamp}: {command}",
    }


class MemorySink:
    """Keeps every chunk's per-path records; builds one in-memory Dataset at the end.

    With ``series`` it also keeps each chunk's full time series (give ``keep_series=True`` to
    :func:`sim.engine.stream`), which become variables over (path, time) named as the fields
    of ``layout.TIME_OUT``: memory then grows with the number of paths.
    """

    def __init__(self, series: bool = False):
        self.parts = []
        self.series = series

    def __call__(self, chunk) -> None:
        if not self.series:
            chunk.series = None
        self.parts.append(chunk)

    def dataset(self, result, command: str) -> xr.Dataset:
        inputs = result.inputs
        paths = xr.concat([path_dataset(inputs, c, c.start) for c in self.parts], "path")
        extra = [time_dataset(inputs, result.stats, result.sample)]
        if self.series:
            extra.append(xr.concat([series_dataset(inputs, c, c.start) for c in self.parts],
                                   "path"))
        ds = xr.merge([paths, *extra])
        ds.attrs = run_attrs(result, command)
        return ds


class ZarrSink:
    """Writes every chunk's per-path variables into a zarr store as it arrives.

    The store is built in a temporary directory beside ``path`` and renamed when complete, so
    an interrupted run leaves no store under the final name.  Memory stays one chunk.
    """

    def __init__(self, inputs: Inputs, path: Path):
        import dask.array as da

        self.inputs, self.path = inputs, Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        n, chunk_paths = inputs.plan.paths, inputs.plan.chunk_paths
        n_cls = len(inputs.investors)
        one_path = SimpleNamespace(paths=np.zeros(1, L.PATH_OUT),
                                   classes=np.zeros((1, n_cls), L.CLASS_OUT),
                                   params=np.zeros(1, L.PATH_PARAM),
                                   class_params=np.zeros((1, n_cls), L.CLASS_PARAM))
        proto = path_dataset(inputs, one_path)  # names, dims, dtypes and attributes
        template = {}
        for name, var in proto.data_vars.items():
            shape = (n,) + var.shape[1:]
            chunks = (chunk_paths,) + var.shape[1:]
            template[name] = xr.Variable(var.dims, da.zeros(shape, dtype=var.dtype, chunks=chunks),
                                         var.attrs)
        coords = {"path": xr.Variable("path", np.arange(n), proto["path"].attrs)}
        xr.Dataset(template, coords=coords).to_zarr(self.tmp, compute=False, mode="w",
                                                    consolidated=False)

    def __call__(self, chunk) -> None:
        part = path_dataset(self.inputs, chunk, chunk.start).drop_vars("path")
        part.to_zarr(self.tmp, region={"path": slice(chunk.start, chunk.stop)}, consolidated=False)

    def finish(self, result, command: str) -> Path:
        import zarr

        extra = time_dataset(self.inputs, result.stats, result.sample)
        extra.to_zarr(self.tmp, mode="a", consolidated=False)
        group = zarr.open_group(str(self.tmp), mode="r+")
        group.attrs.update(run_attrs(result, command))
        with warnings.catch_warnings():  # consolidated metadata is a zarr-python extension
            warnings.simplefilter("ignore")
            zarr.consolidate_metadata(str(self.tmp))
        if self.path.exists():
            shutil.rmtree(self.path)
        os.replace(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        if self.tmp.exists():
            shutil.rmtree(self.tmp)


def _encoding(ds: xr.Dataset) -> dict:
    enc = {}
    for name, var in ds.variables.items():
        if var.dtype.kind == "f" and var.ndim >= 1:
            enc[name] = {"zlib": True, "complevel": 4}
    return enc


def write_netcdf(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``ds`` atomically (a temporary file beside ``path``, then a rename).

    The file is built in memory and written by Python, so a full or read-only disk ends in an
    ordinary OSError at the write instead of inside the HDF5 library.
    """
    data = ds.to_netcdf(engine="h5netcdf", encoding=_encoding(ds))
    atomic_write_bytes(path, bytes(data))
    return Path(path)


def write_table_set(out_dir: str | Path, stem: str, ds: xr.Dataset, rows: list[dict],
                    markdown: str) -> list[Path]:
    """``<stem>.nc``, ``<stem>.csv`` (one row per dict) and ``<stem>.md``, each written atomically."""
    import pandas as pd

    from sim.io import atomic_target, atomic_write_text

    out_dir = Path(out_dir)
    files = [write_netcdf(ds, out_dir / f"{stem}.nc")]
    with atomic_target(out_dir / f"{stem}.csv") as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.6g")
    files.append(out_dir / f"{stem}.csv")
    atomic_write_text(out_dir / f"{stem}.md", markdown)
    files.append(out_dir / f"{stem}.md")
    return files


def open_results(path: str | Path) -> xr.Dataset:
    """Read a results file fully into memory (netCDF), or open a zarr store lazily."""
    path = Path(path)
    if path.is_dir():
        return xr.open_zarr(path)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()
