"""One-at-a-time sensitivities of the cumulative unwind and their tornado chart.

``python -m sim.sensitivity [--vary KEY=LOW,HIGH ...] [--metric mean_unwind|exceedance]
[--level 500] [--out DIR] [OVERRIDE ...]``

Each key is set to its low and then its high value with everything else at the base config;
all runs share the seed, so the swing of each key is a paired difference with a small
standard error.
"""
from __future__ import annotations

import datetime as _dt
import sys
from dataclasses import dataclass
from pathlib import Path

from sim.compose import load_config
from sim.config import Range
from sim.experiments import METRICS, mean_and_se, per_path_metric, unwind_paths
from sim.errors import prog, run_command
from sim.io import OutputSet, atomic_write_text
from sim.validate import ArgumentParser, ConfigError, check_arg, key_value, numeric_key, validate

#: Keys varied when none are given: (key, low, high).
DEFAULT_VARY = (
    ("investors.leveraged.holdings", 160.0, 500.0),
    ("model.impact.price_impact", 0.07, 0.15),
    ("model.policy.boj.min_spacing_months", 3.0, 12.0),
    ("model.fx.spread_elasticity", 3.0, 7.0),
    ("model.fx.crash_intensity", 0.15, 0.6),
    ("investors.life_insurers.threshold_distance", 0.3, 0.9),
)


@dataclass
class Swing:
    key: str
    low: float
    high: float
    at_low: float
    at_high: float
    se_low: float   # standard error of the paired difference (low - base)
    se_high: float  # standard error of the paired difference (high - base)

    @property
    def width(self) -> float:
        return abs(self.at_high - self.at_low)


def one_at_a_time(base: list[str], vary, metric: str = "mean_unwind", level: float = 500.0):
    """The base value of ``metric`` and one Swing per (key, low, high), widest first."""
    x0 = per_path_metric(metric, unwind_paths(base), level)
    base_value = float(x0.mean())
    swings = []
    for key, low, high in vary:
        values = []
        for value in (low, high):
            x = per_path_metric(metric, unwind_paths([*base, f"{key}={value}"]), level)
            values.append((float(x.mean()), mean_and_se(x - x0)[1]))
        (at_low, se_low), (at_high, se_high) = values
        swings.append(Swing(key, low, high, at_low, at_high, se_low, se_high))
    swings.sort(key=lambda s: s.width, reverse=True)
    return base_value, swings


def plot_tornado(base_value: float, swings: list[Swing], label: str, path: Path,
                 context: str = "") -> Path:
    """Bars from the base value to the metric at each key's low (blue) and high (orange,
    hatched) value, with 95% intervals of the paired differences; probabilities in percent."""
    from matplotlib.ticker import PercentFormatter

    from sim.plots import OKABE_ITO, _save, plt

    share = label.startswith("P(")
    show = (lambda x: f"{100 * x:.1f}%") if share else (lambda x: f"{x:,.4g}")
    fig, ax = plt.subplots(figsize=(9.5, 0.55 * len(swings) + 2.2))
    for i, s in enumerate(swings):
        for value, at, se, colour, hatch, name in (
                (s.low, s.at_low, s.se_low, OKABE_ITO["blue"], None, "low value"),
                (s.high, s.at_high, s.se_high, OKABE_ITO["orange"], "//", "high value")):
            ax.barh(i, at - base_value, left=base_value, color=colour, hatch=hatch, height=0.6,
                    alpha=0.9, edgecolor="white", label=name if i == 0 else None)
            ax.errorbar(at, i, xerr=1.96 * se, fmt="none", ecolor="0.2", capsize=3, linewidth=0.8,
                        label="95% interval (paired)" if i == 0 and hatch else None)
            edge = at + 1.96 * se if at >= base_value else at - 1.96 * se
            ax.annotate(f"{value:g}", (edge, i), textcoords="offset points",
                        xytext=(5 if at >= base_value else -5, 0), va="center",
                        ha="left" if at >= base_value else "right", fontsize=8)
    ax.axvline(base_value, color="0.2", linewidth=1.0)
    ax.set_yticks(range(len(swings)), [s.key for s in swings], fontsize=9)
    ax.invert_yaxis()
    if share:
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel(f"{label} (base {show(base_value)})")
    ax.legend(frameon=False, fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3)
    fig.suptitle("One-at-a-time sensitivity (common random numbers)"
                 + (f"\n{context}" if context else ""), fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def describe_base(base: list[str]) -> str:
    """Scenario, snapshot date, horizon and paths of the base config, for titles."""
    from sim.plots import _date_text, horizon_text

    cfg = load_config(base)
    return (f"{cfg.scenario.description or cfg.scenario.name}\n"
            + " · ".join([f"snapshot {_date_text(cfg.snapshot.date)}",
                          horizon_text(cfg.sampler.horizon_months, str(cfg.sampler.step)),
                          f"{cfg.sampler.paths:,} paths"]))


LEVEL = Range(-100_000.0, 100_000.0)  # USD bn


def parse_vary(items: list[str], base: list[str]):
    """``KEY=LOW,HIGH`` items as (key, low, high), each key a numeric config key; LOW < HIGH,
    both in the key's declared range (whole numbers for integer keys)."""
    cfg = load_config(base)
    out = []
    for item in items:
        key, sep, values = item.partition("=")
        parts = values.split(",")
        try:
            low, high = (float(v) for v in parts)
        except ValueError:
            raise ConfigError("--vary", item, "KEY=LOW,HIGH with two numbers") from None
        tp, rng, unit = numeric_key(cfg, key, "--vary")
        for v in (low, high):
            check_arg(f"--vary {key}", v, rng, unit)
        low, high = (key_value(tp, v, f"--vary {key}") for v in (low, high))
        if not low < high:
            raise ConfigError(f"--vary {key}", values, "LOW < HIGH (two different values)")
        out.append((key, low, high))
    return out


def preflight(base: list[str], vary, level: float) -> None:
    """Refuse every bad input before the first simulation: the base overrides, each varied
    value (composed and validated as a run would be), the level."""
    check_arg("--level", level, LEVEL)
    validate(load_config(base))
    for key, low, high in vary:
        for value in (low, high):
            validate(load_config([*base, f"{key}={value}"]))


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=prog("python -m sim.sensitivity"), description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the base config")
    parser.add_argument("--vary", action="append", default=[], metavar="KEY=LOW,HIGH")
    parser.add_argument("--metric", choices=sorted(METRICS), default="mean_unwind")
    parser.add_argument("--level", type=float, default=500.0, help="USD bn, for --metric exceedance")
    parser.add_argument("--out", type=Path)
    args = parser.parse_intermixed_args(argv)
    out = args.out or Path("outputs") / "sensitivity" / _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    try:
        vary = parse_vary(args.vary, args.overrides) if args.vary else list(DEFAULT_VARY)
        preflight(args.overrides, vary, args.level)
        base_value, swings = one_at_a_time(args.overrides, vary, args.metric, args.level)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    label = METRICS[args.metric][0].replace("level", f"USD {args.level:g}bn")
    show = (lambda x: f"{100 * x:.2f}%") if args.metric == "exceedance" else (lambda x: f"{x:,.4g}")
    unit = " (pp)" if args.metric == "exceedance" else ""
    lines = [f"Base: {label} = {show(base_value)}", "",
             f"| key | low | at low | high | at high | swing{unit} | SE of paired difference{unit} |",
             "|---|---|---|---|---|---|---|"]
    scale = 100.0 if args.metric == "exceedance" else 1.0
    for s in swings:
        lines.append(f"| {s.key} | {s.low:g} | {show(s.at_low)} | {s.high:g} | {show(s.at_high)} | "
                     f"{scale * (s.at_high - s.at_low):+,.4g} | {scale * max(s.se_low, s.se_high):,.2g} |")
    text = "\n".join(lines) + "\n"
    with OutputSet(out).writing() as staging:
        atomic_write_text(staging / "sensitivity.md", text)
        plot_tornado(base_value, swings, label, staging / "tornado.png", describe_base(args.overrides))
    print(text)
    print(f"Tornado chart and table written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main, sys.argv[1:]))
