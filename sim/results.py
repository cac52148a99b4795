"""Raw arrays to an ``xarray.Dataset`` with units and long names, and netCDF round trips.

Metadata is declared as data beside the computation: each output variable is one entry of
the tables below, naming its source column, units and long name.
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
from sim import kernels as K
from sim.config import Config
from sim.inputs import Inputs
from sim.io import atomic_write_bytes

#: Per-path outcomes: name -> (column of out_path, units, long_name).
PATH_VARS = {
    "cum_unwind": (K.O_UNWIND, "USD bn", "Cumulative net unwind of foreign positions"),
    "cum_repatriation": (K.O_REPAT, "USD bn", "Cumulative repatriation into yen"),
    "hedge_yen_buying": (K.O_HEDGE, "USD bn", "Cumulative yen bought through higher FX hedge ratios"),
    "peak_weekly_unwind": (K.O_PEAK_WEEKLY, "USD bn per week", "Peak weekly unwind"),
    "largest_yen_appreciation": (K.O_LARGEST_APP, "%", "Largest yen appreciation (peak-to-trough fall of USD/JPY)"),
    "amplification_ratio": (K.O_AMPLIFICATION, "1", "Amplification ratio (sum of absolute USD/JPY moves over the sum without flows)"),
    "stress_share": (K.O_STRESS_SHARE, "1", "Share of time in the stress regime"),
}
COUNT_VARS = {
    "nonconverged_steps": (K.O_NONCONV, "Steps whose feedback did not converge"),
    "crashes": (K.O_CRASHES, "Yen crash jumps"),
    "interventions": (K.O_INTERVENTIONS, "Rule-based Ministry of Finance interventions"),
}
#: Time series: name -> (column of out_time, units, long_name).
TIME_VARS = {
    "boj_rate": (K.V_BOJ, "% p.a.", "BoJ policy rate"),
    "fed_rate": (K.V_FED, "% p.a.", "Fed policy rate (midpoint of target range)"),
    "jgb10": (K.V_JGB, "% p.a.", "10y JGB yield"),
    "ust10": (K.V_UST, "% p.a.", "10y UST yield"),
    "spread": (K.V_SPREAD, "pp", "US-Japan 10y yield spread"),
    "usdjpy": (K.V_USDJPY, "JPY per USD", "USD/JPY"),
    "unwind": (K.V_UNWIND, "USD bn", "Cumulative net unwind"),
    "repatriation": (K.V_REPAT, "USD bn", "Cumulative repatriation"),
    "fx_vol": (K.V_FXVOL, "% p.a.", "Realised USD/JPY volatility"),
    "jp_inflation_gap": (K.V_JPI, "pp", "Japanese inflation minus its target"),
    "jp_activity_gap": (K.V_JPA, "pp", "Japanese activity gap"),
    "us_inflation_gap": (K.V_USI, "pp", "US inflation minus its target"),
    "us_activity_gap": (K.V_USA, "pp", "US activity gap"),
}
#: Values at the horizon kept per path.
END_VARS = ("boj_rate", "fed_rate", "jgb10", "ust10", "spread", "usdjpy")
END_COLUMNS = dict(zip(END_VARS, (K.O_BOJ_END, K.O_FED_END, K.O_JGB_END, K.O_UST_END,
                                  K.O_SPREAD_END, K.O_USDJPY_END)))
#: Per path and investor class: name -> (column of out_cls, long_name).
CLASS_VARS = {
    "unwind_by_investor": (K.OC_UNWIND, "Cumulative net unwind by investor class"),
    "repatriation_by_investor": (K.OC_REPAT, "Cumulative repatriation by investor class"),
    "hedge_by_investor": (K.OC_HEDGE, "Yen bought through hedging by investor class"),
    "holdings_end": (K.OC_HOLDINGS, "Foreign holdings at the horizon by investor class"),
}


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


def path_dataset(cfg: Config, inputs: Inputs, chunk, start: int = 0) -> xr.Dataset:
    """Per-path variables of the paths held by ``chunk`` (anything with the kernel's per-path
    arrays: path_out, cls_out, path_par, cls_path_par), numbered from ``start``."""
    dates = inputs.dates
    data = {}
    for name, (col, units, long_name) in PATH_VARS.items():
        data[name] = _var("path", chunk.path_out[:, col], units, long_name)
    for name, (col, long_name) in COUNT_VARS.items():
        data[name] = _var("path", chunk.path_out[:, col].astype(np.int64), "1", long_name)
    first = chunk.path_out[:, K.O_FIRST_LARGE].astype(np.int64)
    first_date = np.where(first > 0, dates[np.clip(first, 0, len(dates) - 1)], np.datetime64("NaT"))
    data["first_large_unwind"] = xr.Variable(
        "path", first_date.astype("datetime64[ns]"),
        {"long_name": f"End of the first step with unwind above USD "
                      f"{cfg.output.large_unwind_weekly:g}bn a week (NaT: none)"})
    for name in END_VARS:
        col, units, long_name = TIME_VARS[name]
        data[f"{name}_end"] = _var("path", chunk.path_out[:, END_COLUMNS[name]], units,
                                   f"{long_name} at the horizon")
    data["neutral_boj"] = _var("path", chunk.path_par[:, K.P_NEUTRAL_BOJ], "% p.a.", "BoJ neutral rate (drawn)")
    data["neutral_fed"] = _var("path", chunk.path_par[:, K.P_NEUTRAL_FED], "% p.a.", "Fed neutral rate (drawn)")
    data["price_impact"] = _var("path", 100.0 * chunk.path_par[:, K.P_IMPACT], "% per USD bn",
                                "Price impact of yen buying (drawn)")
    for name, (col, long_name) in CLASS_VARS.items():
        data[name] = _var(("path", "investor"), chunk.cls_out[:, :, col], "USD bn", long_name)
    data["holdings_initial"] = _var(("path", "investor"), chunk.cls_path_par[:, :, K.CP_HOLDINGS],
                                    "USD bn", "Foreign holdings at the snapshot by investor class (drawn)")
    data["repatriation_share"] = _var(("path", "investor"), chunk.cls_path_par[:, :, K.CP_REPAT], "1",
                                      "Share of an unwind repatriated into yen (drawn)")
    n = chunk.path_out.shape[0]
    path = xr.Variable("path", np.arange(start, start + n),
                       {"long_name": "Monte Carlo path", "ensemble_axis": "true"})
    return xr.Dataset(data, coords={"path": path})


def time_dataset(cfg: Config, inputs: Inputs, stats, sample: np.ndarray) -> xr.Dataset:
    """Per-date quantiles and means across paths, and the sample paths."""
    quantiles = np.asarray(cfg.output.quantiles, dtype=float)
    q = stats.quantiles(quantiles)
    mean = stats.means()
    data = {}
    for name, (col, units, long_name) in TIME_VARS.items():
        data[f"{name}_quantiles"] = _var(("quantile", "time"), q[:, :, col], units,
                                         f"{long_name}, quantiles across paths")
        data[f"{name}_mean"] = _var("time", mean[:, col], units, f"{long_name}, mean across paths")
        data[f"sample_{name}"] = _var(("sample", "time"), sample[:, :, col], units,
                                      f"{long_name}, sample paths")
    data["stress_probability"] = _var("time", mean[:, K.V_STRESS], "1",
                                      "Share of paths in the stress regime")
    labels = [cfg.investors[n].label or n for n in inputs.investors]
    coords = {
        "time": ("time", inputs.dates.astype("datetime64[ns]"), {"long_name": "Date"}),
        "investor": ("investor", np.array(inputs.investors, dtype=object),
                     {"long_name": "Investor class"}),
        "investor_label": ("investor", np.array(labels, dtype=object), {"long_name": "Investor class"}),
        "quantile": ("quantile", quantiles, {"long_name": "Quantile", "units": "1"}),
        "sample": ("sample", np.arange(sample.shape[0]), {"long_name": "Sample path"}),
    }
    return xr.Dataset(data, coords=coords)


def run_attrs(cfg: Config, result, command: str) -> dict:
    """Dataset attributes: conventions, provenance, config, versions, history."""
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
    """Keeps every chunk's per-path arrays; builds one in-memory Dataset at the end."""

    def __init__(self):
        self.parts = []

    def __call__(self, chunk) -> None:
        self.parts.append(chunk)

    def dataset(self, cfg: Config, result, command: str) -> xr.Dataset:
        paths = xr.concat([path_dataset(cfg, result.inputs, c, c.start) for c in self.parts], "path")
        ds = xr.merge([paths, time_dataset(cfg, result.inputs, result.stats, result.sample)])
        ds.attrs = run_attrs(cfg, result, command)
        return ds


class ZarrSink:
    """Writes every chunk's per-path variables into a zarr store as it arrives.

    The store is built in a temporary directory beside ``path`` and renamed when complete, so
    an interrupted run leaves no store under the final name.  Memory stays one chunk.
    """

    def __init__(self, cfg: Config, inputs: Inputs, path: Path, chunk_paths: int):
        import dask.array as da

        self.cfg, self.inputs, self.path = cfg, inputs, Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        n = cfg.sampler.paths
        n_cls = len(inputs.investors)
        one_path = SimpleNamespace(path_out=np.zeros((1, K.N_OUT_PATH)),
                                   cls_out=np.zeros((1, n_cls, K.N_OUT_CLS)),
                                   path_par=np.zeros((1, K.N_PATH_PAR)),
                                   cls_path_par=np.zeros((1, n_cls, 2)))
        proto = path_dataset(cfg, inputs, one_path)  # names, dims, dtypes and attributes
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
        part = path_dataset(self.cfg, self.inputs, chunk, chunk.start).drop_vars("path")
        part.to_zarr(self.tmp, region={"path": slice(chunk.start, chunk.stop)}, consolidated=False)

    def finish(self, result, command: str) -> Path:
        import zarr

        extra = time_dataset(self.cfg, self.inputs, result.stats, result.sample)
        extra.to_zarr(self.tmp, mode="a", consolidated=False)
        group = zarr.open_group(str(self.tmp), mode="r+")
        group.attrs.update(run_attrs(self.cfg, result, command))
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


def open_results(path: str | Path) -> xr.Dataset:
    """Read a results file fully into memory (netCDF), or open a zarr store lazily."""
    path = Path(path)
    if path.is_dir():
        return xr.open_zarr(path)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()
