"""Figures drawn from a results Dataset; nothing here recomputes the model.

Axis labels come from each variable's ``long_name`` and ``units`` attributes.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from sim.io import atomic_target  # noqa: E402

MARKERS = ((0.5, "median", "#1b4f72"), (0.9, "90%", "#d68910"), (0.99, "99%", "#c0392b"))
RANGE_PATHS = 200_000  # paths used for the by-investor ranges of very large (lazy) runs
FAN_VARS = ("boj_rate", "fed_rate", "spread", "usdjpy", "unwind", "repatriation")


def axis_label(da: xr.DataArray) -> str:
    name = da.attrs.get("long_name", da.name)
    units = da.attrs.get("units")
    return f"{name} [{units}]" if units and units != "1" else name


def _save(fig, path: Path) -> Path:
    with atomic_target(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def _title(ds: xr.Dataset) -> str:
    return (f"Scenario {ds.attrs.get('scenario')} from {ds.attrs.get('snapshot')} "
            f"({ds.sizes['path']:,} paths)")


def plot_distributions(ds: xr.Dataset, path: Path) -> Path:
    """Histograms of unwind, repatriation and largest yen move with quantile markers."""
    names = ("cum_unwind", "cum_repatriation", "largest_yen_appreciation")
    fig, axes = plt.subplots(1, len(names), figsize=(15, 4.2))
    for ax, name in zip(axes, names):
        da = ds[name]
        values = da.values
        ax.hist(values, bins=60, color="#aab7c4", edgecolor="white", linewidth=0.4)
        for p, label, color in MARKERS:
            q = float(np.quantile(values, p))
            ax.axvline(q, color=color, linewidth=1.6, label=f"{label}: {q:,.0f}" if q >= 100
                       else f"{label}: {q:,.1f}")
        ax.set_xlabel(axis_label(da))
        ax.set_ylabel("paths")
        ax.legend(frameon=False, fontsize=9)
    fig.suptitle(_title(ds))
    fig.tight_layout()
    return _save(fig, path)


def plot_fan_charts(ds: xr.Dataset, path: Path, n_lines: int = 5) -> Path:
    """Fan charts over time: 5-95% and 25-75% bands, the median and a few sample paths."""
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.6))
    axes = axes.ravel()
    time = ds["time"].values
    for ax, name in zip(axes, FAN_VARS):
        q = ds[f"{name}_quantiles"]
        band = {p: q.sel(quantile=p, method="nearest").values for p in (0.05, 0.25, 0.5, 0.75, 0.95)}
        ax.fill_between(time, band[0.05], band[0.95], color="#aed6f1", label="5-95%")
        ax.fill_between(time, band[0.25], band[0.75], color="#5dade2", label="25-75%")
        ax.plot(time, band[0.5], color="#1b4f72", linewidth=1.8, label="median")
        sample = ds[f"sample_{name}"]
        for i in range(min(n_lines, sample.sizes["sample"])):
            ax.plot(time, sample.isel(sample=i).values, color="0.3", linewidth=0.5, alpha=0.6)
        ax.set_title(q.attrs["long_name"].replace(", quantiles across paths", ""), fontsize=10)
        ax.set_ylabel(q.attrs.get("units", ""))
        ax.xaxis.set_major_locator(mdates.MonthLocator(bymonth=(1, 7)))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %y"))
        ax.tick_params(axis="x", labelsize=8)
    axes[0].legend(frameon=False, fontsize=8, loc="upper left")
    fig.suptitle(_title(ds) + "; thin lines: sample paths")
    fig.tight_layout()
    return _save(fig, path)


def plot_by_investor(ds: xr.Dataset, path: Path) -> Path:
    """Unwind and repatriation by investor class: mean with 5-95% ranges across paths."""
    labels = [str(v) for v in ds["investor_label"].values]
    y = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(labels) + 1.6))
    n_range = min(ds.sizes["path"], RANGE_PATHS)
    for offset, name, color in ((-0.18, "unwind_by_investor", "#2e86c1"),
                                (0.18, "repatriation_by_investor", "#e67e22")):
        da = ds[name]
        mean = np.asarray(da.mean("path").values)
        lo, hi = da.isel(path=slice(0, n_range)).load().quantile([0.05, 0.95], dim="path").values
        ax.barh(y + offset, mean, height=0.34, color=color,
                label=da.attrs["long_name"].replace(" by investor class", ""))
        ax.errorbar(mean, y + offset, xerr=[mean - lo, hi - mean], fmt="none", ecolor="0.25",
                    capsize=3, linewidth=0.9)
    ax.axvline(0.0, color="0.4", linewidth=0.8)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ranges = "5-95%" if n_range == ds.sizes["path"] else f"5-95% of the first {n_range:,} paths"
    ax.set_xlabel(f"mean across paths, bars {ranges} [{ds['unwind_by_investor'].attrs['units']}]")
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    ax.set_title(_title(ds) + ": by investor class", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_run(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    return [plot_distributions(ds, out_dir / "distributions.png"),
            plot_fan_charts(ds, out_dir / "fan_charts.png"),
            plot_by_investor(ds, out_dir / "by_investor.png")]


def _variant_colors(n: int):
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def plot_variant_distributions(ds: xr.Dataset, path: Path) -> Path:
    """Overlaid distributions of unwind, repatriation and largest yen rally, one line a variant."""
    names = ("cum_unwind", "cum_repatriation", "largest_yen_appreciation")
    variants = [str(v) for v in ds["variant"].values]
    fig, axes = plt.subplots(1, len(names), figsize=(15, 4.4))
    for ax, name in zip(axes, names):
        da = ds[name]
        bins = np.histogram_bin_edges(da.values.ravel(), bins=60)
        for variant, color in zip(variants, _variant_colors(len(variants))):
            values = da.sel(variant=variant).values
            ax.hist(values, bins=bins, histtype="step", linewidth=1.5, color=color, label=variant)
            ax.axvline(float(np.median(values)), color=color, linewidth=0.9, linestyle="--")
        ax.set_xlabel(axis_label(da))
        ax.set_ylabel("paths")
    axes[0].legend(frameon=False, fontsize=8)
    fig.suptitle(f"Distributions by variant (dashed: medians; baseline {ds.attrs.get('baseline')})")
    fig.tight_layout()
    return _save(fig, path)


def plot_exceedance(ds: xr.Dataset, path: Path) -> Path:
    """Exceedance curves P(cumulative unwind > x), one per variant, on a log scale."""
    da = ds["cum_unwind"]
    variants = [str(v) for v in ds["variant"].values]
    fig, ax = plt.subplots(figsize=(8, 5))
    for variant, color in zip(variants, _variant_colors(len(variants))):
        values = np.sort(da.sel(variant=variant).values)
        n = len(values)
        survival = 1.0 - np.arange(1, n + 1) / (n + 1)
        ax.step(values, survival, where="post", color=color, linewidth=1.5, label=variant)
    ax.set_yscale("log")
    ax.set_ylim(1.0 / ds.sizes["path"], 1.0)
    ax.set_xlabel(axis_label(da))
    ax.set_ylabel("P(unwind > x)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    ax.set_title("Exceedance curves by variant")
    fig.tight_layout()
    return _save(fig, path)
