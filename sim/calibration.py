"""Calibration of the behavioural parameters to the targets of docs/model.md ("Calibration").

A *target* is a published figure with a range (a statement like "at least USD 1.2tn" or
"about 3-5%") and a *measurement*: a statistic of one or two model runs with its Monte Carlo
standard error.  Some targets are fitted; the others are checks that the fitted model must
also pass.  The fit is penalised least squares under common random numbers::

    minimise  sum_k ((m_k(theta) - mid_k) / (half_k / W))^2  +  sum_j ((theta_j - c_j) / s_j)^2

where [mid_k - half_k, mid_k + half_k] is target k's range and W = TARGET_WEIGHT, so a target
sits inside its range when its term is below W^2, and the second sum pulls each parameter towards its judgement value
c_j by its stated uncertainty s_j.  There are more parameters than fitted targets; the penalty
keeps the problem well posed and moves the parameters the targets say least about least.
Every evaluation uses the same seed, so the objective is a smooth function of the parameters
(thresholds enter through normal CDFs) and finite differences work.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from sim.config import Config, EventConfig
from sim.inputs import build_inputs
from sim.pipeline import simulate
from sim.summary import mean_se

#: The holdings-based target: a 15pp rise in the life insurers' hedge ratio (45% to 60%).
HEDGE_RISE = 0.15
#: Weeks after an intervention at which its remaining effect is measured.
FADE_WEEKS = 8
#: A fitted target at the edge of its range costs as much as a parameter TARGET_WEIGHT
#: uncertainties away from its judgement value.
TARGET_WEIGHT = 4.0


@dataclass(frozen=True)
class Parameter:
    """A fitted parameter: a config key, its judgement value's uncertainty and hard bounds."""

    key: str
    scale: float   # uncertainty of the judgement value: the penalty's unit
    low: float
    high: float


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    source: str
    low: float
    high: float
    units: str
    fitted: bool
    stated: str = ""   # the published bound when the fitted range is narrower, e.g. ">= 1,200"

    @property
    def mid(self) -> float:
        return 0.5 * (self.low + self.high) if math.isfinite(self.low + self.high) else self.low

    @property
    def half(self) -> float:
        return 0.5 * (self.high - self.low)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


#: The free parameters the fit moves (docs/model.md, "Calibration").
PARAMETERS = (
    Parameter("model.impact.price_impact", 0.04, 0.02, 0.3),
    Parameter("investors.leveraged.threshold_distance", 0.08, 0.05, 0.5),
    Parameter("investors.life_insurers.threshold_distance", 0.3, 0.1, 1.5),
    Parameter("investors.life_insurers.hedge_share", 0.2, 0.1, 0.9),
    Parameter("investors.life_insurers.repatriation_share", 0.2, 0.2, 0.8),
    Parameter("investors.banks.threshold_distance", 0.4, 0.1, 2.0),
    Parameter("investors.banks.repatriation_share", 0.2, 0.05, 1.0),
    Parameter("investors.investment_trusts.threshold_distance", 4.0, 4.0, 25.0),
    Parameter("investors.investment_trusts.repatriation_share", 0.2, 0.1, 1.0),
    Parameter("investors.investment_trusts.holdings", 150.0, 400.0, 800.0),
)

TARGETS = (
    Target("spread_case_unwind", "Cumulative unwind when the 10y spread narrows to 1.5pp "
           "(scenario spread_compression, mean at the horizon)",
           "Capital Economics, as quoted in the seed articles: at least USD 1.2tn",
           1200.0, 1500.0, "USD bn", True, stated=">= 1,200"),
    Target("spread_case_repatriation", "Repatriation in the same case (mean at the horizon)",
           "Capital Economics, as quoted: about USD 600bn back to Japan",
           500.0, 700.0, "USD bn", True),
    Target("intervention_impact", "Fall of USD/JPY in the week of a USD 30bn yen purchase "
           "(paired difference, mean)",
           "MoF via nippon.com: USD 20-40bn moved USD/JPY about 3-5% (2022, 2024)",
           3.0, 5.0, "%", True),
    Target("intervention_left", f"Share of that fall left {FADE_WEEKS} weeks later",
           "MoF via nippon.com: the effects faded within weeks", 0.0, 0.5, "1", False),
    Target("hedge_sensitivity", "Yen bought by life insurers when their hedge ratio rises "
           "from 45% to 60%", "RBC via the press: about USD 173bn", 160.0, 185.0, "USD bn", True),
    Target("carry_skewness", "Skewness of quarterly yen-carry returns (baseline)",
           "Brunnermeier, Nagel and Pedersen (2008): negative", -math.inf, 0.0, "1", False),
    Target("holdings_total", "Foreign holdings of the six classes at the snapshot",
           "MoF IIP: Japan's portfolio investment assets about USD 4.4tn (end-2023), "
           "4.5tn (end-2024)", 0.0, 4500.0, "USD bn", False),
)


# ---------------------------------------------------------------------------------------
# Config access by dotted key.
# ---------------------------------------------------------------------------------------
def _parent(cfg: Config, key: str):
    *path, leaf = key.split(".")
    node = cfg
    for part in path:
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node, leaf


def get_value(cfg: Config, key: str) -> float:
    node, leaf = _parent(cfg, key)
    return float(getattr(node, leaf))


def _ranged_prior(node, leaf: str):
    """(name, prior) of a parameter's uniform or triangular prior, or (None, None).

    The prior of `x_y` is `x_y_prior` or, for repatriation shares, `x_prior`.
    """
    for name in (f"{leaf}_prior", f"{leaf.split('_')[0]}_prior"):
        prior = getattr(node, name, None)
        if prior is not None:
            return (name, prior) if prior.dist in ("uniform", "triangular") else (None, None)
    return None, None


def set_value(cfg: Config, key: str, value: float) -> None:
    """Set a parameter's central value; a uniform or triangular prior moves with it."""
    node, leaf = _parent(cfg, key)
    shift = value - float(getattr(node, leaf))
    setattr(node, leaf, float(value))
    _, prior = _ranged_prior(node, leaf)
    if prior is not None:
        prior.low = float(prior.low + shift)
        prior.high = float(prior.high + shift)


def with_values(cfg: Config, values: dict[str, float]) -> Config:
    out = copy.deepcopy(cfg)
    for key, value in values.items():
        set_value(out, key, value)
    return out


# ---------------------------------------------------------------------------------------
# Measurements.  Each takes the configs of its scenarios and returns (value, SE).
# ---------------------------------------------------------------------------------------
@dataclass
class Cases:
    """The configs the measurements run: the spread case and the intervention pair."""

    spread: Config
    quiet: Config          # baseline without the intervention rule, short horizon
    intervened: Config     # the same plus one USD 30bn intervention
    baseline: Config

    def map(self, fn: Callable[[Config], Config]) -> "Cases":
        return Cases(fn(self.spread), fn(self.quiet), fn(self.intervened), fn(self.baseline))


def make_cases(base: Config, spread: Config, size: float = 30.0) -> Cases:
    """Derive the calibration cases from the composed baseline and spread-compression configs."""
    quiet = copy.deepcopy(base)
    quiet.model.intervention.enabled = False
    quiet.sampler.horizon_months = 6
    quiet.scenario.events = []
    intervened = copy.deepcopy(quiet)
    date = np.datetime64(base.snapshot.date) + np.timedelta64(21, "D")
    intervened.scenario.events = [EventConfig(date=str(date), kind="intervention", value=size)]
    return Cases(spread, quiet, intervened, base)


def spread_case(cfg: Config) -> dict[str, tuple[float, float]]:
    ds, _ = simulate(cfg, progress=False)
    return {"spread_case_unwind": mean_se(ds["cum_unwind"].values),
            "spread_case_repatriation": mean_se(ds["cum_repatriation"].values)}


def intervention_effect(quiet: Config, intervened: Config) -> dict[str, tuple[float, float]]:
    """On-impact fall of USD/JPY (%) and the share left FADE_WEEKS later, paired by path."""
    a = simulate(quiet, progress=False, series=True)[0]
    b = simulate(intervened, progress=False, series=True)[0]
    dates = a["time"].values
    event = np.datetime64(intervened.scenario.events[0].date)
    i = int(np.searchsorted(dates, event))  # the grid point that closes the event's step
    later = int(np.searchsorted(dates, dates[i] + np.timedelta64(7 * FADE_WEEKS, "D")))
    fx_a, fx_b = a["usdjpy"].values, b["usdjpy"].values
    d_now = 100.0 * (1.0 - fx_b[:, i] / fx_a[:, i])
    d_later = 100.0 * (1.0 - fx_b[:, later] / fx_a[:, later])
    impact, impact_se = mean_se(d_now)
    ratio = d_later.mean() / d_now.mean()
    # Delta method for a ratio of paired means.
    resid = (d_later - ratio * d_now) / d_now.mean()
    return {"intervention_impact": (impact, impact_se), "intervention_left": (ratio, mean_se(resid)[1])}


def hedge_sensitivity(cfg: Config) -> dict[str, tuple[float, float]]:
    """Yen bought per 15pp rise of the life insurers' hedge ratio.

    The hedging channel buys holdings x (change of hedge ratio) of yen (docs/model.md,
    section 6), so this is the class's holdings times 0.15; tests check the kernel's flows.
    """
    life = cfg.investors.get("life_insurers")
    value = HEDGE_RISE * life.holdings if life is not None and life.enabled else 0.0
    return {"hedge_sensitivity": (value, 0.0)}


def carry_returns(series, dt: np.ndarray, weeks: int = 13) -> np.ndarray:
    """Log returns of a long-USD, short-JPY carry position over non-overlapping windows.

    ``series`` holds the full paths (path x time) of ``fed_rate``, ``boj_rate`` and
    ``usdjpy``: a results Dataset with series, or a dict of arrays.  Each step earns the
    policy-rate differential set at its start plus the change of log USD/JPY; ``dt`` is the
    step length in years.  Returns paths x windows.
    """
    fed, boj = np.asarray(series["fed_rate"]), np.asarray(series["boj_rate"])
    carry = (fed[:, :-1] - boj[:, :-1]) / 100.0 * dt
    fx = np.diff(np.log(np.asarray(series["usdjpy"])), axis=1)
    step = carry + fx
    steps_per_window = max(1, int(round(weeks * 7 / (365.25 * float(np.mean(dt))))))
    n = step.shape[1] // steps_per_window * steps_per_window
    return step[:, :n].reshape(step.shape[0], -1, steps_per_window).sum(axis=2)


def skewness(x: np.ndarray) -> float:
    d = x - x.mean()
    return float(np.mean(d ** 3) / np.mean(d ** 2) ** 1.5)


def skewness_se(r: np.ndarray, groups: int = 20) -> tuple[float, float]:
    """Skewness of all windows of all paths, with a jackknife SE over groups of paths."""
    value = skewness(r.ravel())
    parts = np.array_split(np.arange(r.shape[0]), groups)
    loo = np.array([skewness(np.delete(r, idx, axis=0).ravel()) for idx in parts])
    se = math.sqrt((groups - 1) / groups * np.sum((loo - loo.mean()) ** 2))
    return value, se


def carry_skewness(cfg: Config) -> dict[str, tuple[float, float]]:
    inputs = build_inputs(cfg)
    ds, _ = simulate(inputs, progress=False, series=True)
    r = carry_returns(ds, inputs.steps["dt"])
    return {"carry_skewness": skewness_se(r)}


def holdings_total(cfg: Config) -> dict[str, tuple[float, float]]:
    return {"holdings_total": (sum(c.holdings for c in cfg.investors.values() if c.enabled), 0.0)}


#: Measurements by the targets they serve: (target names, function of the cases).
MEASUREMENTS = (
    (("spread_case_unwind", "spread_case_repatriation"), lambda c: spread_case(c.spread)),
    (("intervention_impact", "intervention_left"), lambda c: intervention_effect(c.quiet, c.intervened)),
    (("hedge_sensitivity",), lambda c: hedge_sensitivity(c.baseline)),
    (("carry_skewness",), lambda c: carry_skewness(c.baseline)),
    (("holdings_total",), lambda c: holdings_total(c.baseline)),
)


def measure(cases: Cases, names=None) -> dict[str, tuple[float, float]]:
    """(value, SE) of the targets ``names`` (all if None), running only what they need."""
    out = {}
    for group, fn in MEASUREMENTS:
        if names is None or set(group) & set(names):
            out.update(fn(cases))
    return out


# ---------------------------------------------------------------------------------------
# The fit.
# ---------------------------------------------------------------------------------------
@dataclass
class Fit:
    values: dict[str, float]       # fitted parameter values
    start: dict[str, float]        # judgement values
    cost: float
    evaluations: int
    message: str


def fit(cases: Cases, parameters=PARAMETERS, targets=TARGETS, max_evaluations: int = 400) -> Fit:
    """Penalised least squares over ``parameters`` (see the module docstring)."""
    from scipy.optimize import least_squares

    fitted = [t for t in targets if t.fitted]
    start = {p.key: get_value(cases.baseline, p.key) for p in parameters}
    hedge = next((t for t in fitted if t.name == "hedge_sensitivity"), None)
    fixed = {}
    if hedge is not None and "life_insurers" in cases.baseline.investors:
        # The hedge target pins the insurers' holdings in closed form.
        fixed["investors.life_insurers.holdings"] = hedge.mid / HEDGE_RISE
    scale = np.array([p.scale for p in parameters])
    centre = np.array([start[p.key] for p in parameters])
    count = [0]

    def residuals(u):
        theta = centre + scale * u
        values = {**fixed, **{p.key: float(v) for p, v in zip(parameters, theta)}}
        got = measure(cases.map(lambda c: with_values(c, values)), [t.name for t in fitted])
        count[0] += 1
        r_targets = [(got[t.name][0] - t.mid) / (t.half / TARGET_WEIGHT) for t in fitted]
        return np.array([*r_targets, *u])

    lo = np.array([(p.low - start[p.key]) / p.scale for p in parameters])
    hi = np.array([(p.high - start[p.key]) / p.scale for p in parameters])
    # Start strictly inside the bounds: the reflective trust region crawls from a bound.
    x0 = np.clip(np.zeros(len(parameters)), lo + 0.05 * (hi - lo), hi - 0.05 * (hi - lo))
    sol = least_squares(residuals, x0, bounds=(lo, hi), diff_step=0.05, x_scale=1.0,
                        max_nfev=max_evaluations, xtol=1e-4, ftol=1e-6, verbose=0)
    theta = centre + scale * sol.x
    values = {**fixed, **{p.key: float(v) for p, v in zip(parameters, theta)}}
    start_all = {**{k: get_value(cases.baseline, k) for k in fixed}, **start}
    return Fit(values, start_all, float(2.0 * sol.cost), count[0], sol.message)


# ---------------------------------------------------------------------------------------
# Reporting and the fitted config.
# ---------------------------------------------------------------------------------------
def _range(t: Target) -> str:
    if not math.isfinite(t.low):
        return f"< {t.high:g}"
    if t.stated:
        return f"{t.stated} (fitted to {t.low:,.0f}-{t.high:,.0f})"
    return f"{t.low:,.4g} to {t.high:,.4g}"


def report_rows(got: dict[str, tuple[float, float]], targets=TARGETS) -> list[dict]:
    rows = []
    for t in targets:
        value, se = got[t.name]
        rows.append({"target": t.name, "description": t.description, "source": t.source,
                     "range": _range(t), "units": t.units, "model": float(value), "se": float(se),
                     "inside": t.contains(float(value)), "role": "fitted" if t.fitted else "check"})
    return rows


def format_report(rows: list[dict], fit_result: Fit, header: str) -> str:
    lines = [header, "", "| target | source | range | model value ± MC SE | inside | role |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        se = f" ± {r['se']:,.2g}" if r["se"] > 0 else " (exact)"
        lines.append(f"| {r['description']} | {r['source']} | {r['range']} {r['units']} | "
                     f"{r['model']:,.4g}{se} | {'yes' if r['inside'] else 'NO'} | {r['role']} |")
    lines += ["", "| parameter | judgement value | fitted value | bounds of the fit |", "|---|---|---|---|"]
    bounds = {p.key: p for p in PARAMETERS}
    for key, value in fit_result.values.items():
        p = bounds.get(key)
        if p is None:
            where = "closed form"
        else:
            edge = 0.01 * (p.high - p.low)
            at = " (at a bound)" if min(value - p.low, p.high - value) < edge else ""
            where = f"{p.low:g} to {p.high:g}{at}"
        lines.append(f"| {key} | {fit_result.start[key]:.4g} | {value:.4g} | {where} |")
    lines += ["", f"Fit: {fit_result.evaluations} evaluations, penalised cost {fit_result.cost:.3g}; "
              f"{fit_result.message}"]
    return "\n".join(lines) + "\n"


def fitted_yaml(base: Config, values: dict[str, float], header: str) -> str:
    """The fitted values (and the priors that move with them) as a `@package _global_` file."""
    import yaml

    cfg = with_values(base, values)
    tree: dict = {}
    for key in values:
        node, leaf = _parent(cfg, key)
        *path, _ = key.split(".")
        out = tree
        for part in path:
            out = out.setdefault(part, {})
        out[leaf] = float(values[key])
        name, prior = _ranged_prior(node, leaf)
        if prior is not None:
            out[name] = {"dist": str(prior.dist), "low": round(float(prior.low), 4),
                         "high": round(float(prior.high), 4)}
    body = yaml.safe_dump(tree, sort_keys=False, default_flow_style=None)
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return "# @package _global_\n" + comments + body
