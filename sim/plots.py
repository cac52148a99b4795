"""Figures drawn from a results Dataset; nothing here recomputes the model.

Conventions shared by every figure:

* axis labels come from each variable's ``long_name`` and ``units`` attributes;
* titles say what is shown, then the scenario (its description), the snapshot date, the horizon
  and time step, and the number of paths, all read from the Dataset's attributes;
* probabilities and shares of paths are shown in percent, never as counts or fractions;
* colours come from the Okabe-Ito palette (distinguishable with the common colour-vision
  deficiencies), and lines that must be told apart also differ in style;
* date axes use matplotlib's AutoDateLocator with the ConciseDateFormatter, which suits any
  horizon from a week (days) to ten years (years);
* observations of a replay (``scenario.observations`` in the run's config) are drawn on the fan
  charts at their dates.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
import yaml  # noqa: E402
from matplotlib.ticker import FuncFormatter, PercentFormatter  # noqa: E402

from sim.io import atomic_target  # noqa: E402

#: Okabe & Ito (2008), "Color Universal Design".
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9",
             "bluish_green": "#009E73", "yellow": "#F0E442", "blue": "#0072B2",
             "vermillion": "#D55E00", "reddish_purple": "#CC79A7"}
#: Order of colours for series (variants, investor measures); yellow last (weak on white).
SERIES = ("blue", "orange", "bluish_green", "vermillion", "reddish_purple", "sky_blue", "black",
          "yellow")
LINESTYLES = ("-", "--", "-.", ":")
BAND_OUTER = "#c6dbef"  # light and dark tints of Okabe-Ito blue for the fan bands
BAND_INNER = "#6baed6"
MARKERS = ((0.5, "median", OKABE_ITO["blue"], "-"), (0.9, "90%", OKABE_ITO["orange"], "--"),
           (0.99, "99%", OKABE_ITO["vermillion"], ":"))
#: Unwind levels marked on exceedance curves and distributions, USD bn.
LEVELS = ((500.0, "USD 500bn"), (1000.0, "USD 1tn"))
RANGE_PATHS = 200_000  # paths used for the by-investor ranges of very large (lazy) runs
FAN_VARS = ("boj_rate", "fed_rate", "jgb10", "ust10", "spread", "usdjpy", "unwind", "repatriation")
#: Smallest y-range of a fan panel by units, so a flat line is not drawn as noise.
MIN_SPAN = {"% p.a.": 0.5, "pp": 0.5, "JPY per USD": 5.0, "USD bn": 20.0}
Z95 = 1.959963984540054


def colour(i: int) -> str:
    return OKABE_ITO[SERIES[i % len(SERIES)]]


def axis_label(da: xr.DataArray, name: str | None = None) -> str:
    name = name or da.attrs.get("long_name", da.name)
    units = da.attrs.get("units")
    return f"{name} [{units}]" if units and units != "1" else name


def _save(fig, path: Path) -> Path:
    with atomic_target(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


# --- titles ----------------------------------------------------------------------------------

def _config(ds: xr.Dataset) -> dict:
    try:
        return yaml.safe_load(ds.attrs.get("config", "")) or {}
    except yaml.YAMLError:
        return {}


def horizon_text(months: int, step: str | None) -> str:
    span = (f"{months // 12}-year" if months % 12 == 0 else f"{months}-month") + " horizon"
    return f"{span}, {step} steps" if step else span


def _date_text(value) -> str:
    try:
        return np.datetime64(str(value), "D").astype(object).strftime("%-d %b %Y")
    except (ValueError, TypeError):
        return str(value)


def context(ds: xr.Dataset, paths: bool = True) -> str:
    """Scenario (its description), snapshot date, horizon, steps and paths of a run."""
    cfg = _config(ds)
    scenario = cfg.get("scenario", {}) or {}
    described = scenario.get("description") or str(ds.attrs.get("scenario", "")).replace("_", " ")
    parts = [described]
    date = ds.attrs.get("snapshot_date")
    if date:
        parts.append(f"snapshot {_date_text(date)}")
    months = ds.attrs.get("horizon_months")
    if months is not None:
        parts.append(horizon_text(int(months), ds.attrs.get("step")))
    if paths and "path" in ds.sizes:
        parts.append(f"{ds.sizes['path']:,} paths")
    parts = [p for p in parts if p]
    text = " · ".join(parts)
    if len(text) > 100 and len(parts) > 1:  # the scenario's description on a line of its own
        text = parts[0] + "\n" + " · ".join(parts[1:])
    return text


def _title(fig, ds: xr.Dataset, what: str) -> None:
    fig.suptitle(f"{what}\n{context(ds)}", fontsize=11)


# --- axes ------------------------------------------------------------------------------------

def date_axis(ax) -> None:
    """Ticks that suit any horizon: days for a week, months for a year, years for a decade."""
    locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def percent_axis(ax, axis: str = "y", decimals=None) -> None:
    """Shares given as fractions, labelled in percent."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(PercentFormatter(1.0, decimals=decimals))


def _log_percent(x, _pos) -> str:
    if x <= 0:
        return ""
    pct = 100 * x
    return f"{pct:.{max(0, -math.floor(math.log10(pct)))}f}%" if pct < 1 else f"{pct:.0f}%"


def _min_span(ax, units: str) -> None:
    span = MIN_SPAN.get(units)
    lo, hi = ax.get_ylim()
    if span and hi - lo < span:
        mid = 0.5 * (lo + hi)
        ax.set_ylim(mid - span / 2, mid + span / 2)
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")


# --- one run ---------------------------------------------------------------------------------

def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.1f}"


def plot_distributions(ds: xr.Dataset, path: Path) -> Path:
    """Distributions of unwind, repatriation and largest yen move as shares of paths, with the
    median, 90% and 99% marked, and P(unwind > USD 500bn / 1tn) in the legend."""
    names = ("cum_unwind", "cum_repatriation", "largest_yen_appreciation")
    fig, axes = plt.subplots(1, len(names), figsize=(15, 4.6))
    for ax, name in zip(axes, names):
        da = ds[name]
        values = np.asarray(da.values, dtype=float)
        n = len(values)
        ax.hist(values, bins=60, weights=np.full(n, 1.0 / n), color=OKABE_ITO["sky_blue"],
                edgecolor="white", linewidth=0.4, alpha=0.8)
        for p, label, col, style in MARKERS:
            q = float(np.quantile(values, p))
            ax.axvline(q, color=col, linestyle=style, linewidth=1.6, label=f"{label}: {_fmt(q)}")
        if name == "cum_unwind":
            for level, text in LEVELS:
                share = float((values > level).mean())
                se = math.sqrt(share * (1 - share) / n)
                ax.plot([], [], " ", label=f"P(> {text}) = {100 * share:.1f}% (s.e. {100 * se:.1f})")
        ax.set_xlabel(axis_label(da))
        ax.set_ylabel("share of paths per bin")
        percent_axis(ax, decimals=1)
        ax.legend(frameon=True, framealpha=0.9, edgecolor="none", fontsize=8.5)
    _title(fig, ds, "Outcomes at the horizon: distributions across paths")
    fig.tight_layout()
    return _save(fig, path)


def observations(ds: xr.Dataset) -> list[dict]:
    """Observations of a replay from the run's config: date, variable, value, source."""
    scenario = _config(ds).get("scenario", {}) or {}
    return list(scenario.get("observations") or [])


def plot_fan_charts(ds: xr.Dataset, path: Path, n_lines: int = 5) -> Path:
    """Fan charts over time: 5-95% and 25-75% bands, the median, a few sample paths and, for
    replays, the observations at their dates."""
    ncols = 4
    nrows = math.ceil(len(FAN_VARS) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(17, 4.0 * nrows + 0.6), sharex=True)
    axes = axes.ravel()
    time = ds["time"].values
    observed = observations(ds)
    for ax, name in zip(axes, FAN_VARS):
        q = ds[f"{name}_quantiles"]
        band = {p: q.sel(quantile=p, method="nearest").values for p in (0.05, 0.25, 0.5, 0.75, 0.95)}
        ax.fill_between(time, band[0.05], band[0.95], color=BAND_OUTER, label="5-95% of paths",
                        linewidth=0)
        ax.fill_between(time, band[0.25], band[0.75], color=BAND_INNER, label="25-75% of paths",
                        linewidth=0)
        ax.plot(time, band[0.5], color=OKABE_ITO["blue"], linewidth=1.8, label="median")
        sample = ds[f"sample_{name}"]
        for i in range(min(n_lines, sample.sizes["sample"])):
            ax.plot(time, sample.isel(sample=i).values, color="0.35", linewidth=0.5, alpha=0.6,
                    label="sample paths" if i == 0 else None)
        mine = [o for o in observed if o.get("variable") == name]
        if mine:
            ax.plot([np.datetime64(str(o["date"]), "ns") for o in mine], [float(o["value"]) for o in mine],
                    linestyle="none", marker="D", markersize=6, color=OKABE_ITO["vermillion"],
                    markeredgecolor="black", markeredgewidth=0.6, zorder=5, label="observed")
        title = q.attrs.get("long_name", name).replace(", quantiles across paths", "")
        ax.set_title(title, fontsize=10)
        units = q.attrs.get("units", "")
        ax.set_ylabel(units if units != "1" else "")
        date_axis(ax)
        _min_span(ax, units)
        ax.grid(True, alpha=0.25)
    for ax in axes[len(FAN_VARS):]:
        ax.set_visible(False)
    handles, labels = [], []
    for ax in axes[:len(FAN_VARS)]:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False,
               bbox_to_anchor=(0.5, -0.01))
    _title(fig, ds, "Paths over time: median and ranges across paths"
           + ("; diamonds: observed" if observed else ""))
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return _save(fig, path)


def _median_iqr(da: xr.DataArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    q = np.asarray(da.quantile([0.25, 0.5, 0.75], dim="path").values)
    return q[1], q[0], q[2]


def plot_by_investor(ds: xr.Dataset, path: Path) -> Path:
    """Unwind and repatriation by investor class: medians with interquartile ranges across
    paths, in USD bn and as a share of each class's holdings at the snapshot."""
    labels = [str(v) for v in ds["investor_label"].values]
    y = np.arange(len(labels))
    n_range = min(ds.sizes["path"], RANGE_PATHS)
    sub = ds[["unwind_by_investor", "repatriation_by_investor", "holdings_initial"]].isel(
        path=slice(0, n_range)).load()
    holdings = sub["holdings_initial"].where(sub["holdings_initial"] > 0)
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 0.62 * len(labels) + 2.4), sharey=True)
    for i, (name, short) in enumerate((("unwind_by_investor", "net unwind"),
                                       ("repatriation_by_investor", "repatriation"))):
        offset = -0.18 if i == 0 else 0.18
        col = colour(i)
        for ax, da in ((left, sub[name]), (right, sub[name] / holdings)):
            med, lo, hi = _median_iqr(da)
            ax.barh(y + offset, med, height=0.34, color=col, alpha=0.85,
                    label=f"{short}: median" if ax is left else None)
            ax.errorbar(med, y + offset, xerr=[med - lo, hi - med], fmt="none", ecolor="0.15",
                        capsize=3, linewidth=0.9, label="25-75% of paths" if (ax is left and i == 0) else None)
    for ax in (left, right):
        ax.axvline(0.0, color="0.4", linewidth=0.8)
        ax.grid(True, axis="x", alpha=0.25)
    left.set_yticks(y, labels)
    left.invert_yaxis()
    left.set_xlabel(f"cumulative flow [{ds['unwind_by_investor'].attrs.get('units', 'USD bn')}]")
    right.set_xlabel("as a share of the class's holdings at the snapshot")
    percent_axis(right, "x", decimals=0)
    left.set_title("USD bn", fontsize=10)
    right.set_title("share of holdings", fontsize=10)
    subset = "" if n_range == ds.sizes["path"] else f" (ranges from the first {n_range:,} paths)"
    fig.legend(*left.get_legend_handles_labels(), loc="lower center", ncol=3, frameon=False,
               bbox_to_anchor=(0.5, -0.02))
    _title(fig, ds, "By investor class: median and interquartile range across paths" + subset)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _save(fig, path)


def plot_run(ds: xr.Dataset, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    return [plot_distributions(ds, out_dir / "distributions.png"),
            plot_fan_charts(ds, out_dir / "fan_charts.png"),
            plot_by_investor(ds, out_dir / "by_investor.png"),
            plot_exceedance(ds, out_dir / "exceedance.png")]


# --- several variants ------------------------------------------------------------------------

def _variants(ds: xr.Dataset) -> list[tuple[str, xr.Dataset]]:
    if "variant" not in ds.dims:
        return [("this run", ds)]
    return [(str(v), ds.sel(variant=v)) for v in ds["variant"].values]


def plot_variant_distributions(ds: xr.Dataset, path: Path) -> Path:
    """Overlaid distributions of unwind, repatriation and largest yen rally, one line a variant,
    as shares of paths; dashed lines mark each variant's median."""
    names = ("cum_unwind", "cum_repatriation", "largest_yen_appreciation")
    variants = _variants(ds)
    fig, axes = plt.subplots(1, len(names), figsize=(15, 4.8))
    for ax, name in zip(axes, names):
        da = ds[name]
        bins = np.histogram_bin_edges(np.asarray(da.values, dtype=float).ravel(), bins=60)
        for i, (variant, v) in enumerate(variants):
            values = np.asarray(v[name].values, dtype=float)
            ax.hist(values, bins=bins, weights=np.full(len(values), 1.0 / len(values)),
                    histtype="step", linewidth=1.6, color=colour(i),
                    linestyle=LINESTYLES[i % len(LINESTYLES)], label=variant)
            ax.axvline(float(np.median(values)), color=colour(i), linewidth=1.0, linestyle="--")
        ax.set_xlabel(axis_label(da))
        ax.set_ylabel("share of paths per bin")
        percent_axis(ax, decimals=1)
    axes[0].legend(frameon=False, fontsize=8)
    fig.suptitle(f"Outcomes by variant (dashed: medians; baseline {ds.attrs.get('baseline', '')})\n"
                 f"{context(ds)}", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def survival(values: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(X > x) on ``grid`` with a pointwise 95% Wilson interval (Monte Carlo error)."""
    values = np.sort(np.asarray(values, dtype=float))
    n = len(values)
    p = 1.0 - np.searchsorted(values, grid, side="right") / n
    z2 = Z95 ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return p, np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def plot_exceedance(ds: xr.Dataset, path: Path) -> Path:
    """Exceedance curves P(cumulative unwind > x), one per variant (or the run), with 95% Monte
    Carlo bands, on a log scale in percent, with the USD 500bn and 1tn levels marked."""
    da = ds["cum_unwind"]
    variants = _variants(ds)
    allv = np.asarray(da.values, dtype=float).ravel()
    lo_x = min(0.0, float(np.quantile(allv, 0.01)))
    hi_x = max(1.02 * float(allv.max()), 1.1 * LEVELS[0][0])  # the 500bn line always in view
    grid = np.linspace(lo_x, hi_x, 600)
    n = da.sizes["path"]
    fig, ax = plt.subplots(figsize=(9, 5.4))
    for i, (variant, v) in enumerate(variants):
        p, lo, hi = survival(v["cum_unwind"].values, grid)
        col = colour(i)
        ax.fill_between(grid, np.maximum(lo, 0.1 / n), np.maximum(hi, 0.1 / n), step="post",
                        color=col, alpha=0.18, linewidth=0,
                        label="95% Monte Carlo band" if i == 0 else None)
        shown = np.where(p > 0, p, np.nan)
        values = np.asarray(v["cum_unwind"].values, dtype=float)
        odds = ", ".join(f"> {text[4:]}: {100 * (values > level).mean():.1f}%" for level, text in LEVELS)
        ax.step(grid, shown, where="post", color=col, linewidth=1.6,
                linestyle=LINESTYLES[i % len(LINESTYLES)], label=f"{variant} ({odds})")
    for (level, text), style in zip(LEVELS, ("--", ":")):
        if level > hi_x:
            continue
        ax.axvline(level, color="0.25", linestyle=style, linewidth=1.0)
        ax.annotate(text, (level, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 2),
                    textcoords="offset points", ha="center", va="bottom", fontsize=8.5, color="0.25")
    ax.set_yscale("log")
    ax.set_ylim(0.5 / n, 1.3)
    ax.yaxis.set_major_formatter(FuncFormatter(_log_percent))
    ax.set_xlabel(axis_label(da))
    ax.set_ylabel("share of paths with a larger unwind")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(frameon=False, fontsize=8.5, loc="lower left")
    what = "Exceedance: P(cumulative unwind > x)" + (" by variant" if "variant" in ds.dims else "")
    ax.annotate(f"below {_log_percent(1 / n, None)} (one path in {n:,}) a curve cannot go",
                (1.0, 0.0), xycoords="axes fraction", xytext=(-4, 4), textcoords="offset points",
                ha="right", va="bottom", fontsize=8, color="0.35")
    fig.suptitle(f"{what}\n{context(ds)}", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)
