"""Raw arrays to an ``xarray.Dataset`` with units and long names, and netCDF round trips.

Metadata is declared as data beside the computation: each output variable is one entry of
the tables below, naming its source column, units and long name.
"""
from __future__ import annotations

import datetime as _dt
import sys
from pathlib import Path

import numpy as np
import xarray as xr
from omegaconf import OmegaConf

import sim
from sim import kernels as K
from sim.config import Config
from sim.engine import RunArrays
from sim.io import atomic_target

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


def build_dataset(cfg: Config, run: RunArrays, command: str = "python -m sim") -> xr.Dataset:
    """The results Dataset of MODEL.md "Outputs" from a run's raw arrays."""
    dates = run.inputs.dates
    n_paths = run.path_out.shape[0]
    quantiles = np.asarray(cfg.output.quantiles, dtype=float)
    data = {}
    for name, (col, units, long_name) in PATH_VARS.items():
        data[name] = _var("path", run.path_out[:, col], units, long_name)
    for name, (col, long_name) in COUNT_VARS.items():
        data[name] = _var("path", run.path_out[:, col].astype(np.int64), "1", long_name)
    first = run.path_out[:, K.O_FIRST_LARGE].astype(np.int64)
    first_date = np.where(first > 0, dates[np.clip(first, 0, len(dates) - 1)], np.datetime64("NaT"))
    data["first_large_unwind"] = xr.Variable(
        "path", first_date.astype("datetime64[ns]"),
        {"long_name": f"End of the first step with unwind above USD "
                      f"{cfg.output.large_unwind_weekly:g}bn a week (NaT: none)"})
    for name in END_VARS:
        col, units, long_name = TIME_VARS[name]
        data[f"{name}_end"] = _var("path", run.time_out[:, -1, col], units, f"{long_name} at the horizon")
    data["neutral_boj"] = _var("path", run.path_par[:, K.P_NEUTRAL_BOJ], "% p.a.", "BoJ neutral rate (drawn)")
    data["neutral_fed"] = _var("path", run.path_par[:, K.P_NEUTRAL_FED], "% p.a.", "Fed neutral rate (drawn)")
    data["price_impact"] = _var("path", 100.0 * run.path_par[:, K.P_IMPACT], "% per USD bn",
                                "Price impact of yen buying (drawn)")

    for name, (col, long_name) in CLASS_VARS.items():
        data[name] = _var(("path", "investor"), run.cls_out[:, :, col], "USD bn", long_name)
    data["holdings_initial"] = _var(("path", "investor"), run.cls_path_par[:, :, K.CP_HOLDINGS],
                                    "USD bn", "Foreign holdings at the snapshot by investor class (drawn)")
    data["repatriation_share"] = _var(("path", "investor"), run.cls_path_par[:, :, K.CP_REPAT], "1",
                                      "Share of an unwind repatriated into yen (drawn)")

    n_sample = min(cfg.sampler.sample_paths, n_paths)
    for name, (col, units, long_name) in TIME_VARS.items():
        series = run.time_out[:, :, col]
        data[f"{name}_quantiles"] = _var(("quantile", "time"), np.quantile(series, quantiles, axis=0),
                                         units, f"{long_name}, quantiles across paths")
        data[f"{name}_mean"] = _var("time", series.mean(axis=0), units, f"{long_name}, mean across paths")
        data[f"sample_{name}"] = _var(("sample", "time"), series[:n_sample], units,
                                      f"{long_name}, sample paths")
    data["stress_probability"] = _var("time", run.time_out[:, :, K.V_STRESS].mean(axis=0), "1",
                                      "Share of paths in the stress regime")

    labels = [cfg.investors[n].label or n for n in run.inputs.investors]
    coords = {
        "path": ("path", np.arange(n_paths), {"long_name": "Monte Carlo path"}),
        "time": ("time", dates.astype("datetime64[ns]"), {"long_name": "Date"}),
        "investor": ("investor", np.array(run.inputs.investors, dtype=object),
                     {"long_name": "Investor class"}),
        "investor_label": ("investor", np.array(labels, dtype=object), {"long_name": "Investor class"}),
        "quantile": ("quantile", quantiles, {"long_name": "Quantile", "units": "1"}),
        "sample": ("sample", np.arange(n_sample), {"long_name": "Sample path"}),
    }
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    attrs = {
        "Conventions": "CF-1.8",
        "title": f"Yen carry-trade unwind: scenario {cfg.scenario.name}, snapshot {cfg.snapshot.name}",
        "source": f"yen-carry-sim {sim.__version__}",
        "scenario": cfg.scenario.name,
        "snapshot": cfg.snapshot.name,
        "snapshot_date": cfg.snapshot.date,
        "seed": int(cfg.sampler.seed),
        "paths": int(n_paths),
        "step": cfg.sampler.step,
        "horizon_months": int(cfg.sampler.horizon_months),
        "kernel_seconds": float(run.elapsed),
        "startup_seconds": float(run.startup),
        "threads": int(run.threads),
        "versions": package_versions(),
        "config": config_yaml(cfg),
        "notes": "; ".join(run.notes),
        "history": f"{stamp}: {command}",
    }
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    ds["path"].attrs["ensemble_axis"] = "true"
    return ds


def _encoding(ds: xr.Dataset) -> dict:
    enc = {}
    for name, var in ds.variables.items():
        if var.dtype.kind == "f" and var.ndim >= 1:
            enc[name] = {"zlib": True, "complevel": 4}
    return enc


def write_netcdf(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``ds`` atomically (a temporary file beside ``path``, then a rename)."""
    with atomic_target(path) as tmp:
        ds.to_netcdf(tmp, engine="h5netcdf", encoding=_encoding(ds))
    return Path(path)


def open_results(path: str | Path) -> xr.Dataset:
    """Read a results file fully into memory."""
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()
