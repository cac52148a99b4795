"""Figures of a backtest Dataset (:mod:`sim.backtest`); nothing here recomputes a forecast."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from sim.plots import _save  # noqa: E402

COLORS = {"model": "#c0392b", "flows_off": "#e59866", "random_walk": "#7f8c8d", "garch_t": "#1b4f72",
          "bootstrap": "#d68910"}
LABELS = {"model": "model", "flows_off": "model, flows off", "random_walk": "random walk",
          "garch_t": "GARCH(1,1)-t", "bootstrap": "block bootstrap"}


def plot_pit(ds: xr.Dataset, path: Path, bins: int | None = None) -> Path:
    """PIT histograms of the out-of-sample forecasts: one panel per quantity and horizon.

    A calibrated forecaster's histogram is flat at 1 (the dashed line); a U shape means bands
    too narrow, a hump bands too wide, a slope a biased centre.
    """
    import yaml

    if bins is None:
        cfg = yaml.safe_load(ds.attrs.get("config", "")) or {}
        bins = int(cfg.get("backtest", {}).get("pit_bins", 10))
    quantities = list(ds["quantity"].values)
    horizons = list(ds["horizon"].values)
    fig, axes = plt.subplots(len(quantities), len(horizons), figsize=(4.2 * len(horizons), 2.3 * len(quantities)),
                             squeeze=False, sharex=True)
    edges = np.linspace(0.0, 1.0, bins + 1)
    for i, q in enumerate(quantities):
        for j, h in enumerate(horizons):
            ax = axes[i, j]
            out = ~ds["in_sample"].sel(horizon=h).values.astype(bool)
            for f in ds["forecaster"].values:
                values = ds["pit"].sel(quantity=q, horizon=h, forecaster=f).values[out]
                values = values[np.isfinite(values)]
                if not values.size:
                    continue
                dens, _ = np.histogram(values, bins=edges, density=True)
                if f == "model":
                    ax.bar(edges[:-1], dens, width=np.diff(edges), align="edge", color=COLORS[f],
                           alpha=0.45, label=f"{LABELS[f]} (n={values.size})")
                else:
                    ax.step(edges, np.r_[dens, dens[-1]], where="post", color=COLORS[f], lw=1.2,
                            label=LABELS[f])
            ax.axhline(1.0, color="black", ls="--", lw=0.8)
            ax.set_xlim(0, 1)
            if i == 0:
                ax.set_title(f"horizon {int(h)} month{'s' if h > 1 else ''}")
            if j == 0:
                ax.set_ylabel(f"{q}\nPIT density")
            if i == len(quantities) - 1:
                ax.set_xlabel("PIT value")
            if i == 0 and j == len(horizons) - 1 and ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, frameon=False, loc="upper right")
    fig.suptitle("PIT histograms, out-of-sample origins (flat at 1 = calibrated)")
    fig.tight_layout()
    return _save(fig, path)


def plot_fan(ds: xr.Dataset, path: Path) -> Path:
    """Fan against reality: at each origin the 5-95% (and 25-75%) band of USD/JPY at the
    horizon, placed at the target date, against the realised Friday closes."""
    horizons = list(ds["horizon"].values)
    fig, axes = plt.subplots(len(horizons), 1, figsize=(13, 3.3 * len(horizons)), squeeze=False,
                             sharex=True)
    q = ds["forecast_quantiles"].sel(quantity="usdjpy_change")
    weeks = ds["week"].values
    spot = ds["usdjpy_weekly"].values
    start = ds["usdjpy_origin"].values
    for j, h in enumerate(horizons):
        ax = axes[j, 0]
        target = ds["origin"].values + np.timedelta64(int(round(h * 30.4375)), "D")
        for f, style in (("model", "band"), ("garch_t", "line")):
            levels = start[:, None] * np.exp(q.sel(horizon=h, forecaster=f).values / 100.0)
            lo, mid_lo, mid, mid_hi, hi = (levels[:, k] for k in range(5))
            if style == "band":
                ax.fill_between(target, lo, hi, color=COLORS[f], alpha=0.18, lw=0,
                                label="model 5-95%")
                ax.fill_between(target, mid_lo, mid_hi, color=COLORS[f], alpha=0.3, lw=0,
                                label="model 25-75%")
                ax.plot(target, mid, color=COLORS[f], lw=0.8, label="model median")
            else:
                ax.plot(target, lo, color=COLORS[f], lw=0.8, ls="--", label="GARCH(1,1)-t 5% / 95%")
                ax.plot(target, hi, color=COLORS[f], lw=0.8, ls="--")
        ax.plot(weeks, spot, color="black", lw=0.9, label="USD/JPY (Friday close)")
        window = ds.attrs.get("calibration_window", "")
        if " to " in window:
            a, b = (np.datetime64(x) for x in window.split(" to "))
            ax.axvspan(a, b, color="#f4d03f", alpha=0.15, lw=0, label="calibration window")
        ax.set_ylabel("USD/JPY [JPY per USD]")
        ax.set_title(f"Forecast of USD/JPY {int(h)} month{'s' if h > 1 else ''} ahead, "
                     "plotted at the target date")
        if j == 0:
            ax.legend(fontsize=8, frameon=False, ncol=3, loc="upper left")
        ax.set_xlim(weeks[0], weeks[-1])
    axes[-1, 0].set_xlabel("date")
    fig.tight_layout()
    return _save(fig, path)
