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

from sim.experiments import METRICS, mean_and_se, per_path_metric, unwind_paths
from sim.errors import ArgumentParser, UserError, prog, run_command
from sim.io import OutputSet, atomic_write_text

#: Keys varied when none are given: (key, low, high).
DEFAULT_VARY = (
    ("investors.leveraged.holdings", 160.0, 500.0),
    ("model.impact.price_impact", 0.07, 0.15),
    ("model.policy.boj.min_spacing_months", 3.0, 12.0),
    ("model.fx.spread_elasticity", 3.0, 7.0),
    ("model.fx.crash_intensity", 0.15, 0.6),
    ("investors.life_insurers.threshold_mean", -1.3, -0.7),
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


def plot_tornado(base_value: float, swings: list[Swing], label: str, path: Path) -> Path:
    from sim.plots import plt, _save

    fig, ax = plt.subplots(figsize=(9, 0.55 * len(swings) + 1.8))
    for i, s in enumerate(swings):
        for value, at, se, color in ((s.low, s.at_low, s.se_low, "#2e86c1"),
                                     (s.high, s.at_high, s.se_high, "#c0392b")):
            ax.barh(i, at - base_value, left=base_value, color=color, height=0.6, alpha=0.85)
            ax.errorbar(at, i, xerr=1.96 * se, fmt="none", ecolor="0.2", capsize=3, linewidth=0.8)
            edge = at + 1.96 * se if at >= base_value else at - 1.96 * se
            ax.annotate(f"{value:g}", (edge, i), textcoords="offset points",
                        xytext=(5 if at >= base_value else -5, 0), va="center",
                        ha="left" if at >= base_value else "right", fontsize=8)
    ax.axvline(base_value, color="0.2", linewidth=1.0)
    ax.set_yticks(range(len(swings)), [s.key for s in swings], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel(f"{label} (base {base_value:,.4g}; blue: low value, red: high value; bars 95% CI)")
    ax.set_title("One-at-a-time sensitivity (common random numbers)")
    fig.tight_layout()
    return _save(fig, path)


def _parse_vary(items: list[str]):
    out = []
    for item in items:
        try:
            key, values = item.split("=", 1)
            low, high = (float(v) for v in values.split(","))
        except ValueError:
            raise UserError(f"--vary {item!r}: expected KEY=LOW,HIGH with two numbers") from None
        out.append((key, low, high))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=prog("python -m sim.sensitivity"), description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the base config")
    parser.add_argument("--vary", action="append", default=[], metavar="KEY=LOW,HIGH")
    parser.add_argument("--metric", choices=sorted(METRICS), default="mean_unwind")
    parser.add_argument("--level", type=float, default=500.0, help="USD bn, for --metric exceedance")
    parser.add_argument("--out", type=Path)
    args = parser.parse_intermixed_args(argv)
    vary = _parse_vary(args.vary) if args.vary else list(DEFAULT_VARY)
    out = args.out or Path("outputs") / "sensitivity" / _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    base_value, swings = one_at_a_time(args.overrides, vary, args.metric, args.level)
    label = METRICS[args.metric][0].replace("level", f"USD {args.level:g}bn")
    lines = [f"Base: {label} = {base_value:,.4g}", "",
             "| key | low | at low | high | at high | swing | SE of paired difference |",
             "|---|---|---|---|---|---|---|"]
    for s in swings:
        lines.append(f"| {s.key} | {s.low:g} | {s.at_low:,.4g} | {s.high:g} | {s.at_high:,.4g} | "
                     f"{s.at_high - s.at_low:+,.4g} | {max(s.se_low, s.se_high):,.2g} |")
    text = "\n".join(lines) + "\n"
    with OutputSet(out).writing() as staging:
        atomic_write_text(staging / "sensitivity.md", text)
        plot_tornado(base_value, swings, label, staging / "tornado.png")
    print(text)
    print(f"Tornado chart and table written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main, sys.argv[1:]))
