"""Key statistics of a run with Monte Carlo standard errors, as a table and as text.

Standard errors: a mean's is s / sqrt(N); a probability's sqrt(p (1 - p) / N); a quantile's
comes from the order statistics whose ranks lie one binomial standard deviation either side of
N p (half the distance between them), which needs no density estimate.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import xarray as xr

from sim.io import atomic_write_text

QUANTILES = (("median", 0.5), ("90%", 0.9), ("99%", 0.99))
OUTCOMES = (("cum_unwind", "Cumulative unwind"), ("cum_repatriation", "Repatriation"),
            ("largest_yen_appreciation", "Largest yen rally"))


@dataclass
class RunContext:
    """What a run's summary opens with, so a table read on its own says what it describes."""

    scenario: str
    snapshot: str
    snapshot_date: str
    overrides: str
    calibration: str
    paths: int
    seed: int
    version: str
    folder: str

    @classmethod
    def of(cls, cfg, overrides=(), calibration: str | None = None, folder: Path | str = "") -> "RunContext":
        import sim

        overrides = [str(o) for o in overrides]
        if calibration is None:  # not run through Hydra: the override, else the default
            chosen = [o.split("=", 1)[1] for o in overrides if o.startswith("calibration=")]
            calibration = chosen[-1] if chosen else "fitted"
        return cls(scenario=cfg.scenario.name, snapshot=cfg.snapshot.name,
                   snapshot_date=str(cfg.snapshot.date), overrides=" ".join(overrides) or "none",
                   calibration=calibration, paths=int(cfg.sampler.paths),
                   seed=int(cfg.sampler.seed), version=f"yen-carry-sim {sim.__version__}",
                   folder=str(folder))

    def items(self) -> list[tuple[str, str]]:
        return [(f.name, str(getattr(self, f.name))) for f in fields(self)]


@dataclass
class Stat:
    outcome: str
    statistic: str
    value: float
    se: float
    units: str


def quantile_se(x: np.ndarray, p: float) -> tuple[float, float]:
    """Sample quantile of ``x`` and its order-statistic standard error."""
    xs = np.sort(np.asarray(x, dtype=float))
    n = len(xs)
    spread = math.sqrt(n * p * (1.0 - p))
    lo = xs[max(0, math.floor(n * p - spread))]
    hi = xs[min(n - 1, math.ceil(n * p + spread))]
    return float(np.quantile(xs, p)), 0.5 * float(hi - lo)


def mean_se(x: np.ndarray) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    se = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else float("nan")
    return float(x.mean()), se


def probability_se(event: np.ndarray) -> tuple[float, float]:
    p = float(np.mean(event))
    return p, math.sqrt(p * (1.0 - p) / len(event))


def key_statistics(ds: xr.Dataset, thresholds=(500.0, 1000.0)) -> list[Stat]:
    """The statistics of the ten-second summary, each with its standard error."""
    rows = []
    for var, label in OUTCOMES:
        x = ds[var].values
        units = ds[var].attrs.get("units", "")
        for name, p in QUANTILES:
            rows.append(Stat(label, name, *quantile_se(x, p), units))
        rows.append(Stat(label, "mean", *mean_se(x), units))
    unwind = ds["cum_unwind"].values
    for level in thresholds:
        rows.append(Stat("Cumulative unwind", f"P(> USD {_money(level)})",
                         *probability_se(unwind > level), "1"))
    fx = ds["usdjpy_end"].values
    for name, p in (("5%", 0.05), ("median", 0.5), ("95%", 0.95)):
        rows.append(Stat("USD/JPY at the horizon", name, *quantile_se(fx, p), "JPY per USD"))
    rows.append(Stat("Largest one-week yen rally", "P(> 10%)",
                     *probability_se(ds["largest_weekly_rally"].values > 10.0), "1"))
    rows.append(Stat("Amplification ratio", "median",
                     *quantile_se(ds["amplification_ratio"].values, 0.5), "1"))
    rows.append(Stat("Share of time in stress", "mean", *mean_se(ds["stress_share"].values), "1"))
    return rows


#: The key outcomes reported beside their flows-off counterfactual: (outcome, statistic).
COUNTERFACTUAL = (("Largest yen rally", "median"), ("Largest one-week yen rally", "P(> 10%)"),
                  ("USD/JPY at the horizon", "median"))
FLOWS_OFF = " (private flows off)"


def counterfactual_statistics(ds_off: xr.Dataset) -> list[Stat]:
    """The key outcomes of the flows-off run (the same shocks, private flows moving no price),
    labelled as such."""
    rows = key_statistics(ds_off, ())
    keep = {(r.outcome, r.statistic): r for r in rows}
    return [Stat(o + FLOWS_OFF, s, keep[(o, s)].value, keep[(o, s)].se, keep[(o, s)].units)
            for o, s in COUNTERFACTUAL]


def format_counterfactual(rows: list[Stat]) -> str:
    """The key outcomes beside their flows-off values (rows hold both)."""
    pick = {(r.outcome, r.statistic): r for r in rows}
    if not all((o + FLOWS_OFF, s) in pick for o, s in COUNTERFACTUAL):
        return ""
    lines = ["Against the same shocks with private flows off (they move no price; official ones do):",
             f"{'':46}{'model':>18}{'flows off':>18}"]
    for o, s in COUNTERFACTUAL:
        full, off = pick[(o, s)], pick[(o + FLOWS_OFF, s)]
        label = f"{o}, {s}" if full.units == "1" else f"{o}, {s}, {full.units}"
        lines.append(f"{label:46}{_fmt(full.value, full.se, full.units):>18}"
                     f"{_fmt(off.value, off.se, off.units):>18}")
    return "\n".join(lines)


def _money(bn: float) -> str:
    return f"{bn / 1000:g}tn" if bn >= 1000 else f"{bn:g}bn"


def _fmt(value: float, se: float, units: str, n: int = 0) -> str:
    if units == "1":
        if n and value in (0.0, 1.0):  # no event (or no miss) seen: give the rule-of-three bound
            bound = 100 * 3.0 / n
            return f"{100 * value:.0f}% (95% bound {bound:.2g}%)"
        return f"{100 * value:.2f}% ± {100 * se:.2f}%"
    digits = 0 if abs(value) >= 100 else 1
    return f"{value:,.{digits}f} ± {se:,.{max(digits, 1)}f}"


def format_summary(ds: xr.Dataset, rows: list[Stat], context: RunContext | None = None) -> str:
    """The text printed at the end of a run."""
    n = ds.sizes["path"]
    steps = ds.sizes["time"] - 1
    head = (f"Scenario '{ds.attrs['scenario']}' from snapshot {ds.attrs['snapshot']} "
            f"({ds.attrs['snapshot_date']}): {n:,} paths, {ds.attrs['horizon_months']} months, "
            f"{steps} {ds.attrs['step']} steps")
    lines = [head]
    if context is not None:
        lines.append(f"Calibration: {context.calibration}; seed {context.seed}; "
                     f"overrides: {context.overrides}")
    lines.append("")
    width = 26
    lines.append(f"{'':{width}}" + "".join(f"{name:>18}" for name, _ in QUANTILES) + f"{'mean':>18}")
    for _, label in OUTCOMES:
        cells = [r for r in rows if r.outcome == label and not r.statistic.startswith("P(")]
        units = cells[0].units
        lines.append(f"{label + ', ' + units:{width}}"
                     + "".join(f"{_fmt(r.value, r.se, r.units):>18}" for r in cells))
    probs = [r for r in rows if r.statistic.startswith("P(") and r.outcome == "Cumulative unwind"]
    pick = {(r.outcome, r.statistic): r for r in rows}
    lines.append("")
    lines.append("   ".join(f"{r.statistic.replace('P(', 'P(unwind ')} = {_fmt(r.value, r.se, '1', n)}"
                            for r in probs))
    lo, med, hi = (pick[("USD/JPY at the horizon", k)] for k in ("5%", "median", "95%"))
    amp = pick[("Amplification ratio", "median")]
    stress = pick[("Share of time in stress", "mean")]
    lines.append(f"USD/JPY at the horizon: median {med.value:.1f} ± {med.se:.1f} (5%: {lo.value:.1f} "
                 f"± {lo.se:.1f}, 95%: {hi.value:.1f} ± {hi.se:.1f}) from "
                 f"{float(ds['usdjpy_quantiles'].isel(time=0, quantile=0)):.2f}; "
                 f"amplification ratio median {amp.value:.2f} ± {amp.se:.2f}")
    nonconv = int(ds["nonconverged_steps"].sum())
    lines.append(f"Feedback: {nonconv:,} of {n * steps:,} path-steps did not converge; "
                 f"stress regime {100 * stress.value:.1f}% ± {100 * stress.se:.1f}% of the time")
    week = pick[("Largest one-week yen rally", "P(> 10%)")]
    lines.append(f"P(a yen rally above 10% within one week) = {_fmt(week.value, week.se, '1', n)}")
    counterfactual = format_counterfactual(rows)
    if counterfactual:
        lines += ["", counterfactual]
    return "\n".join(lines)


def write_tables(rows: list[Stat], out_dir: Path, context: RunContext | None = None) -> None:
    """summary.csv (machine-readable) and summary.md (for people) in ``out_dir``.

    Both carry the run's context: the CSV as constant columns after the statistics, the
    Markdown as a table above them.
    """
    items = context.items() if context is not None else []
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["outcome", "statistic", "value", "standard_error", "units", *(k for k, _ in items)])
    for r in rows:
        writer.writerow([r.outcome, r.statistic, f"{r.value:.6g}", f"{r.se:.6g}", r.units,
                         *(v for _, v in items)])
    atomic_write_text(out_dir / "summary.csv", buf.getvalue())
    md = []
    if context is not None:
        md += [f"# Run summary: scenario {context.scenario}", "", "| | |", "|---|---|"]
        md += [f"| {k.replace('_', ' ')} | {v.replace('|', '/')} |" for k, v in items]
        md += [""]
    md += ["| outcome | statistic | value | standard error | units |", "|---|---|---|---|---|"]
    md += [f"| {r.outcome} | {r.statistic} | {r.value:.4g} | {r.se:.2g} | {r.units} |" for r in rows]
    atomic_write_text(out_dir / "summary.md", "\n".join(md) + "\n")


def observation_rows(ds: xr.Dataset, observations) -> list[dict]:
    """Each realised value against the simulated quantiles of its date.

    The date is matched to the first grid point on or after it (an observation past the
    horizon is skipped).  The percentile rank interpolates between the stored quantile levels,
    so it is exact at those levels and reported as below or above the outermost ones.
    """
    times = ds["time"].values.astype("datetime64[D]")
    levels = ds["quantile"].values
    rows = []
    for ob in observations:
        i = int(np.searchsorted(times, np.datetime64(ob.date, "D")))
        if i >= len(times):
            continue
        q = ds[f"{ob.variable}_quantiles"].isel(time=i).values
        if np.isclose(q[0], q[-1]) and np.isclose(ob.value, q[0]):
            rank = "every path"
        elif ob.value < q[0]:
            rank = f"below {100 * levels[0]:g}%"
        elif ob.value > q[-1]:
            rank = f"above {100 * levels[-1]:g}%"
        else:
            rank = f"{100 * float(np.interp(ob.value, q, levels)):.0f}%"
        rows.append({"date": str(times[i]), "variable": ob.variable, "observed": float(ob.value),
                     "q05": float(np.interp(0.05, levels, q)), "median": float(np.interp(0.5, levels, q)),
                     "q95": float(np.interp(0.95, levels, q)), "rank": rank, "source": ob.source})
    return rows


def format_observations(rows: list[dict]) -> str:
    lines = ["Observed vs simulated (replay):",
             f"  {'date':<11}{'variable':<10}{'observed':>10}{'5%':>10}{'median':>10}{'95%':>10}  rank"]
    for r in rows:
        lines.append(f"  {r['date']:<11}{r['variable']:<10}{r['observed']:>10.4g}{r['q05']:>10.4g}"
                     f"{r['median']:>10.4g}{r['q95']:>10.4g}  {r['rank']}")
    return "\n".join(lines)
