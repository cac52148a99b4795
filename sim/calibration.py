"""Calibration by the simulated method of moments (SMM) under common random numbers
(docs/model.md, section 16).

The parameters theta (a declared list: config key, bounds, block) are chosen to minimise

    J(theta) = sum_k ((m_k(theta) - d_k) / s_k)^2,   s_k^2 = SE_data,k^2 + SE_model,k^2

over the *targets* k: the stylised facts of :mod:`sim.moments` (the data value d_k computed
from the FRED files over ``model.calibration_window``, its SE from the moving-block bootstrap;
the model value m_k simulated from snapshots built from the data at origins spread over the
window, pooled, exactly as ``python -m sim.moments`` does, its SE from groups of paths) and
*flow facts*: published ranges (a range [a, b] is the target (a + b) / 2 with SE (b - a) / 4,
so the range is the fact's 95% interval) or, where the data hold the figure, a value computed
from them (the interventions' fall at the week's close).  ``smm.weights=full`` uses the
inverse of the bootstrap covariance (plus the model's variances) instead of the diagonal.

Every evaluation draws the same shocks (the same seeds at every origin: common random
numbers), so J is a deterministic and nearly smooth function of continuous parameters and a
finite-difference Gauss-Newton step (``scipy.optimize.least_squares`` on the weighted
residuals) works.  Parameters are optimised on the logit scale of their bounds.  The fit is
block-coordinate: each block (fx, policy, yields, flows) against the targets it moves most
(:data:`BLOCK_TARGETS`), then one joint polish of every parameter against every target.

Quoted figures without a method are *checks*, reported beside the model's own answer and never
fitted: the Capital Economics figure (a 1.5pp spread unwinds at least USD 1.2tn, about USD
600bn home) is measured against the baseline on the same shocks.

A flow fact or a check is a plain record (name, function, data value, SE, source): a new one is
an entry in :data:`FLOW_FACTS` or :data:`CHECKS`.  Its function takes the :class:`Cases` (the
configs with the trial parameters applied) and returns (value, Monte Carlo SE).
"""
from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from sim import flowfacts
from sim.config import Config
from sim.engine import SimulationError
from sim.inputs import build_inputs
from sim.pipeline import simulate
from sim.summary import mean_se
from sim.validate import ConfigError

#: Blocks of the block-coordinate stage, in the order they are fitted by default.
BLOCKS = ("fx", "policy", "yields", "flows")


def _fx_moments() -> tuple[str, ...]:
    from sim.moments import MOMENTS

    return tuple(k for k in MOMENTS if k.startswith(("fx_", "week_", "high_vol", "rally_")))


#: Targets of each block in the block-coordinate stage ("flows": every flow fact).
BLOCK_TARGETS = {
    "fx": _fx_moments(),
    "policy": ("fed_moves", "boj_moves"),
    "yields": ("ust10_dm", "jgb10_dm", "spread_dm"),
    "flows": (),
}


# ---------------------------------------------------------------------------------------------
# Parameters: config keys, bounds, the logit transform
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Parameter:
    """A fitted parameter: a config key, hard bounds and the block it belongs to."""

    key: str
    low: float
    high: float
    block: str
    start: float | None = None   # None: the starting config's value

    def to_u(self, x: float) -> float:
        """The logit of ``x``'s position in (low, high)."""
        p = (x - self.low) / (self.high - self.low)
        p = min(max(p, 1e-6), 1.0 - 1e-6)
        return math.log(p / (1.0 - p))

    def from_u(self, u: float) -> float:
        return self.low + (self.high - self.low) / (1.0 + math.exp(-u))

    def at_bound(self, x: float, share: float = 0.01) -> str:
        edge = share * (self.high - self.low)
        return "low" if x - self.low < edge else "high" if self.high - x < edge else ""


def _parent(cfg: Config, key: str):
    *path, leaf = key.split(".")
    node = cfg
    for part in path:
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node, leaf


def get_value(cfg: Config, key: str) -> float:
    node, leaf = _parent(cfg, key)
    return float(node[leaf] if isinstance(node, dict) else getattr(node, leaf))


def _ranged_prior(node, leaf: str):
    """(name, prior) of a parameter's uniform or triangular prior, or (None, None).

    The prior of `x_y` is `x_y_prior` or, for repatriation shares, `x_prior`.
    """
    for name in (f"{leaf}_prior", f"{leaf.split('_')[0]}_prior"):
        prior = getattr(node, name, None)
        if prior is not None and hasattr(prior, "dist"):
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


def parameters_of(cfg: Config) -> tuple[Parameter, ...]:
    """The declared parameter list ``smm.parameters``, checked against the config: each key a
    number of the config, low < start < high, a known block, no key twice, and both bounds
    values the config accepts (its declared ranges)."""
    from sim.validate import validate

    out, seen = [], set()
    for i, p in enumerate(cfg.smm.parameters):
        where = f"smm.parameters[{i}]"
        if p.block not in BLOCKS:
            raise ConfigError(f"{where}.block", p.block, "one of " + ", ".join(BLOCKS))
        if p.key in seen:
            raise ConfigError(f"{where}.key", p.key, "a key not already in the list")
        seen.add(p.key)
        try:
            start = get_value(cfg, p.key) if p.start is None else float(p.start)
        except (AttributeError, KeyError, TypeError, ValueError):
            raise ConfigError(f"{where}.key", p.key, "a numeric key of the config, e.g. "
                              "model.fx.crash_intensity") from None
        if not p.low < p.high:
            raise ConfigError(f"{where}.low/high", (p.low, p.high), "low < high")
        if not p.low < start < p.high:
            raise ConfigError(f"{where}.start" if p.start is not None else p.key, start,
                              f"a value strictly inside the bounds ({p.low:g}, {p.high:g})")
        for bound in (p.low, p.high):
            try:
                validate(with_values(cfg, {p.key: bound}))
            except ConfigError as err:
                raise ConfigError(f"{where}.low/high", (p.low, p.high),
                                  f"bounds the config accepts ({err})") from None
        out.append(Parameter(p.key, float(p.low), float(p.high), p.block, start))
    if not out:
        raise ConfigError("smm.parameters", "[]", "at least one parameter")
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# The configs the flow facts and checks run
# ---------------------------------------------------------------------------------------------

def value_overrides(cfg: Config, values: dict[str, float]) -> list[str]:
    """Command-line overrides that set ``values`` on ``cfg`` as :func:`set_value` does (a
    uniform or triangular prior moves with its central value)."""
    out = []
    moved = with_values(cfg, values)
    for key, value in values.items():
        out.append(f"{key}={float(value)!r}")
        node, leaf = _parent(moved, key)
        name, prior = _ranged_prior(node, leaf)
        if prior is not None:
            prefix = key.rsplit(".", 1)[0]
            out += [f"{prefix}.{name}.low={float(prior.low)!r}", f"{prefix}.{name}.high={float(prior.high)!r}"]
    return out


@dataclass
class Cases:
    """The baseline config from the default snapshot with the trial parameters applied, at
    ``smm.flow_paths``; ``overrides`` compose the same baseline from the root config (for
    functions that compose their own runs, e.g. sim.flowfacts); ``memo`` lets the facts of one
    evaluation share a run."""

    base: Config
    overrides: list[str] = field(default_factory=list)
    memo: dict = field(default_factory=dict)

    def map(self, fn: Callable[[Config], Config]) -> "Cases":
        return Cases(fn(self.base), list(self.overrides), {})

    def with_values(self, values: dict[str, float]) -> "Cases":
        return Cases(with_values(self.base, values),
                     [*self.overrides, *value_overrides(self.base, values)], {})

    def once(self, name: str, fn: Callable[[], dict]) -> dict:
        """``fn()`` once per evaluation (the facts that share a run read one result)."""
        if name not in self.memo:
            self.memo[name] = fn()
        return self.memo[name]


# ---------------------------------------------------------------------------------------------
# Flow facts (fitted) and checks (reported).  Each function: Cases -> (value, MC SE).
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FlowFact:
    """A published figure fitted as an extra moment: the model value ``measure(cases)`` against
    ``value`` with standard error ``se``."""

    name: str
    description: str
    unit: str
    value: float
    se: float
    source: str
    measure: Callable[["Cases"], tuple[float, float]]
    published: str = ""       # the range as published, e.g. "50-90%"
    from_data: Callable | None = None   # MarketData -> (value, SE): a target computed from the data

    def resolved(self, md) -> "FlowFact":
        """The fact with its target computed from the data ``md`` where it comes from them."""
        if self.from_data is None:
            return self
        value, se = self.from_data(md)
        return replace(self, value=float(value), se=float(se))


@dataclass(frozen=True)
class Check:
    """A quoted figure reported beside the model's own answer, never fitted."""

    name: str
    description: str
    unit: str
    claim: str
    source: str
    measure: Callable[["Cases"], tuple[float, float]]
    holds: Callable[[float], bool] | None = None


def from_range(low: float, high: float) -> tuple[float, float]:
    """A published range as a target: its midpoint, with SE a quarter of its width (the range
    is then the target's 95% interval)."""
    return 0.5 * (low + high), 0.25 * (high - low)


def _intervention(cases: Cases) -> dict[str, tuple[float, float]]:
    return cases.once("intervention", lambda: flowfacts.interventions(
        cases.base.data.dir, paths=cases.base.sampler.paths, overrides=cases.overrides))


def intervention_impact(cases: Cases) -> tuple[float, float]:
    """Mean paired fall of USD/JPY (%) at the close of the weeks of the MoF's yen purchases."""
    return _intervention(cases)["intervention_impact"]


def intervention_left(cases: Cases) -> tuple[float, float]:
    """Share of that fall left eight weeks later."""
    return _intervention(cases)["intervention_left"]


def _capital_economics(cases: Cases) -> dict[str, tuple[float, float]]:
    """Unwind and repatriation attributable to the spread compression (sim.flowfacts: both runs
    with the scenario's yield anchors, on the same shocks)."""
    def run():
        got = flowfacts.capital_economics(paths=cases.base.sampler.paths, overrides=cases.overrides)
        return {"unwind": got["unwind_attributable"],
                "repatriation": got["repatriation_attributable"]}
    return cases.once("capital_economics", run)


def ce_unwind(cases: Cases) -> tuple[float, float]:
    return _capital_economics(cases)["unwind"]


def ce_repatriation(cases: Cases) -> tuple[float, float]:
    return _capital_economics(cases)["repatriation"]


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


def _base_series(cases: Cases) -> dict:
    """The baseline run with its full path series (shared by the checks of one evaluation)."""
    def run():
        inputs = build_inputs(cases.base)
        ds, _ = simulate(inputs, progress=False, series=True)
        return {"ds": ds, "dt": inputs.steps["dt"]}
    return cases.once("base_series", run)


def carry_skewness(cases: Cases) -> tuple[float, float]:
    got = _base_series(cases)
    return skewness_se(carry_returns(got["ds"], got["dt"]))


def first_meeting_move(bank: str) -> Callable[[Cases], tuple[float, float]]:
    """Share of baseline paths on which ``bank`` moves its rate at its first meeting after the
    snapshot (read at the first grid date on or after the meeting day), with its SE; NaN when
    the snapshot's calendar has no meeting inside the run (nothing to report)."""
    def measure(cases: Cases) -> tuple[float, float]:
        ds = _base_series(cases)["ds"]
        snap = cases.base.snapshot
        start = np.datetime64(snap.date)
        times = ds["time"].values.astype("datetime64[D]")
        later = [d for d in (np.datetime64(m) for m in getattr(snap, f"{bank}_meetings"))
                 if start < d <= times[-1]]
        if not later:
            return math.nan, math.nan
        rates = ds[f"{bank}_rate"].values
        k = int(np.searchsorted(times, min(later)))
        return mean_se((rates[:, k] != rates[:, 0]).astype(float))
    return measure


def _july_2024(cases: Cases) -> dict[str, tuple[float, float]]:
    return cases.once("july_2024", lambda: flowfacts.july_2024(
        cases.base.data.dir, paths=cases.base.sampler.paths, overrides=cases.overrides))


def _hedge(cases: Cases) -> dict[str, tuple[float, float]]:
    return cases.once("hedge", lambda: flowfacts.hedge_response(overrides=cases.overrides))


def _value_se(target: Callable[..., dict]) -> Callable[..., tuple[float, float]]:
    """A flow fact's data side: (value, SE) of a ``sim.flowfacts`` target computed from the data."""
    def resolve(md) -> tuple[float, float]:
        got = target(md)
        return got["value"], got["se"]
    return resolve


_intervention_data = _value_se(flowfacts.intervention_data)
_july_2024_data = _value_se(flowfacts.july_2024_data)
_july_2024_week_data = _value_se(flowfacts.july_2024_week_data)


_MOF = ("FRED DEXJPUS Friday closes around the MoF's yen purchases (MoF via nippon.com: 2.84tn "
        "yen in September 2022, 5.92tn and 3.87tn in April-May 2024, 5.53tn in July 2024; "
        "published intraday moves about 3-5%, effects faded within weeks)")
_BIS = "BIS Bulletin 90: roughly 50-90% of a ~USD 250bn leveraged carry stock unwound in about five weeks"
_AUG = ("FRED DEXJPUS daily closes, 5 July to 5 September 2024 (the press: from 161.95 on 3 July "
        "2024 to about 142-146 in early August, intraday)")
_AUG_WEEK = "FRED DEXJPUS Friday closes, 5 July to 30 August 2024 (the week to 2 August: 153.86 to 146.98)"
_RBC = "RBC via the press: life insurers from 45% to 60% hedged is about USD 170-173bn of yen buying"

#: Flow facts fitted as extra moments (the runs behind them are in sim.flowfacts).
FLOW_FACTS: list[FlowFact] = [
    # The target is computed from the data (sim.flowfacts.intervention_data): the week-close
    # fall over the three episodes, SE from the weeks' own noise.
    FlowFact("intervention_impact", "Fall of USD/JPY from the Friday close before to the close "
             "of the week of each MoF yen purchase of 2022-2024, mean of the episodes (each "
             "replayed from a snapshot of the data, paired against the same paths without it)",
             "%", math.nan, math.nan, _MOF, intervention_impact,
             published="3-5% intraday", from_data=_intervention_data),
    # "Faded within weeks" read as: less than half of the fall left after eight weeks, the
    # range 0-0.5 taken as the figure's 95% interval.
    FlowFact("intervention_left", "Share of that fall left eight weeks later (the same paired "
             "runs)", "1", *from_range(0.0, 0.5), _MOF, intervention_left,
             published="faded within weeks (below 0.5)"),
    FlowFact("july_2024_leveraged_unwound", "Share of the leveraged carry stock unwound in "
             "the July-August 2024 replay (daily grid, snapshot from the data on 5 July 2024, "
             "the intervention, BoJ hike and stress scripted on their days)", "1",
             *from_range(0.5, 0.9), _BIS,
             lambda c: _july_2024(c)["leveraged_unwound_share"], published="50-90%"),
    # The target is computed from the data (sim.flowfacts.july_2024_data): the largest fall
    # of the daily closes over the replay's two months, SE from the market's own noise
    # between peak and trough (one episode is one draw).
    FlowFact("july_2024_usdjpy_fall", "Largest fall of USD/JPY (peak to trough of the daily "
             "closes) in the same replay", "%", math.nan, math.nan, _AUG,
             lambda c: _july_2024(c)["usdjpy_fall"], published="about 12% intraday",
             from_data=_july_2024_data),
    # The target is computed from the data (sim.flowfacts.july_2024_week_data): how fast the
    # fall came, the largest Friday-to-Friday fall over the replay's window, SE one week's
    # noise.
    FlowFact("july_2024_largest_week", "Largest one-week fall of USD/JPY (Friday closes) in "
             "the same replay", "%", math.nan, math.nan, _AUG_WEEK,
             lambda c: _july_2024(c)["largest_week"], published="n/a (the press gave the fall, "
             "not its weeks)", from_data=_july_2024_week_data),
    FlowFact("hedge_response", "Yen bought by life insurers when their hedge ratio moves "
             "from 45% to 60% as a behaviour (sim.flowfacts.hedge_response)", "USD bn",
             *from_range(155.0, 185.0), _RBC, lambda c: _hedge(c)["hedge_yen_buying"],
             published="about 170 (read as 155-185)"),
]

#: Quoted figures reported beside the model's answer, never fitted.
CHECKS: list[Check] = [
    Check("ce_unwind", "Unwind attributable to a compression of the 10y spread to 1.5pp "
          "(scenario spread_compression less the baseline on the same shocks, mean at 24 "
          "months)", "USD bn", "at least 1,200",
          "Capital Economics, as quoted in the seed articles", ce_unwind, lambda v: v >= 1200.0),
    Check("ce_repatriation", "Repatriation attributable to the same compression", "USD bn",
          "about 600", "Capital Economics, as quoted in the seed articles", ce_repatriation,
          lambda v: 500.0 <= v <= 700.0),
    Check("carry_skewness", "Skewness of quarterly yen-carry returns (baseline, default snapshot)",
          "1", "negative", "Brunnermeier, Nagel and Pedersen (2008)", carry_skewness,
          lambda v: v < 0.0),
    # One decision each: the model is consistent with it when a hold is its likelier outcome.
    Check("boj_first_meeting", "Share of baseline paths on which the BoJ moves at its first "
          "meeting after the default snapshot (23 January 2026, a month after its hike)", "1",
          "hold (8-1, one vote for 1.0%)", "FACTS.md: nippon.com (Jiji)",
          first_meeting_move("boj"), lambda v: v < 0.5),
    Check("fed_first_meeting", "Share of baseline paths on which the Fed moves at its first "
          "meeting after the default snapshot (28 January 2026)", "1", "hold",
          "FACTS.md: ABA Banking Journal, nasdaq.com", first_meeting_move("fed"),
          lambda v: v < 0.5),
]


# ---------------------------------------------------------------------------------------------
# The data side
# ---------------------------------------------------------------------------------------------

@dataclass
class DataTargets:
    """The data moments of the window with their bootstrap SEs and 95% intervals."""

    names: list[str]
    values: dict[str, float]
    se: dict[str, float]
    lo95: dict[str, float]
    hi95: dict[str, float]
    reps: np.ndarray               # (replications, moments), columns in ``names`` order
    start: str
    end: str

    def condition(self) -> float:
        """Condition number of the bootstrap correlation matrix of the moments."""
        ok = np.all(np.isfinite(self.reps), axis=1)
        return float(np.linalg.cond(np.corrcoef(self.reps[ok].T)))


def calibration_window(cfg: Config) -> tuple[str, str]:
    from sim.calendar import add_months, parse_date
    from sim.moments import MIN_WINDOW_MONTHS

    w = cfg.model.calibration_window
    start = parse_date(w.start, "model.calibration_window.start")
    end = parse_date(w.end, "model.calibration_window.end")
    if end < add_months(start, MIN_WINDOW_MONTHS) - 1:
        raise ConfigError("model.calibration_window.end", w.end,
                          f"a date at least {MIN_WINDOW_MONTHS} months after "
                          f"model.calibration_window.start ({w.start}): the largest rally "
                          "within 24 months needs whole windows")
    return str(start), str(end)


def data_targets(cfg: Config, md) -> DataTargets:
    """The data moments over ``model.calibration_window`` (sim.moments.data_moments)."""
    from sim.moments import MOMENTS, data_moments

    start, end = calibration_window(cfg)
    values, reps = data_moments(md, start, end, cfg.smm.bootstrap, cfg.smm.block_months,
                                cfg.sampler.seed)
    names = list(MOMENTS)
    se, lo, hi = {}, {}, {}
    for i, k in enumerate(names):
        se[k] = float(np.nanstd(reps[:, i], ddof=1))
        lo[k], hi[k] = (float(v) for v in np.nanquantile(reps[:, i], [0.025, 0.975]))
    return DataTargets(names, {k: float(values[k]) for k in names}, se, lo, hi, reps, start, end)


# ---------------------------------------------------------------------------------------------
# The objective
# ---------------------------------------------------------------------------------------------

class BudgetSpent(Exception):
    """Raised inside the objective when a stage has used its evaluations."""


@dataclass
class Evaluation:
    values: dict[str, float]                    # parameter values
    model: dict[str, tuple[float, float]]       # target -> (value, MC SE)
    seconds: float
    failed: str = ""                            # the model's numerical failure, if it failed


#: Weighted residual of every target at a trial the model cannot simulate (a non-finite state,
#: sim.engine.SimulationError): far from every target but finite, so the optimiser's trust
#: region and finite differences steer away from it.
FAILED_RESIDUAL = 1.0e3


@dataclass
class Stage:
    name: str
    parameters: list[str]
    targets: list[str]
    evaluations: int
    j_before: float
    j_after: float
    seconds: float
    message: str


class SMM:
    """The SMM objective under common random numbers.

    ``moments_cfg``: the config the model moments run from (snapshot from data, rebuilt at every
    origin); ``cases``: the flow-fact configs; ``days``: the origins.  Each evaluation of a
    parameter vector is cached, so a stage revisiting a point costs nothing.
    """

    def __init__(self, moments_cfg: Config, cases: Cases, md, parameters, data: DataTargets,
                 facts=None, days=None, log=None):
        from sim.moments import model_origins

        self.cfg = copy.deepcopy(moments_cfg)
        self.cfg.sampler.paths = self.cfg.smm.paths
        self.cfg.sampler.sample_paths = self.cfg.smm.paths
        self.cfg.output.progress = False
        self.cases = cases
        self.md = md
        self.parameters = tuple(parameters)
        self.data = data
        self.facts = [f.resolved(md) for f in (FLOW_FACTS if facts is None else facts)]
        start, end = data.start, data.end
        self.days = (model_origins(self.cfg, start, end, self.cfg.smm.step_months)
                     if days is None else np.asarray(days, dtype="datetime64[D]"))
        self.current = {p.key: p.start for p in self.parameters}
        self.cache: dict[tuple, Evaluation] = {}
        self.count = 0
        self.log = log
        self.weight_se: dict[str, float] = {}
        self.chol = None

    # -- targets -------------------------------------------------------------------------------
    @property
    def target_names(self) -> list[str]:
        return [*self.data.names, *(f.name for f in self.facts)]

    def data_value(self, name: str) -> tuple[float, float]:
        if name in self.data.values:
            return self.data.values[name], self.data.se[name]
        f = next(f for f in self.facts if f.name == name)
        return f.value, f.se

    def block_targets(self, block: str) -> list[str]:
        names = BLOCK_TARGETS[block] if block != "flows" else [f.name for f in self.facts]
        return [n for n in names if n in self.target_names]

    # -- the model -----------------------------------------------------------------------------
    def evaluate(self, values: dict[str, float], names=None) -> Evaluation:
        """Model values (value, MC SE) of the targets ``names`` (all if None) at ``values``
        (the other parameters at their current values), the same shocks every time."""
        from sim.moments import MOMENTS, model_moments

        full = {**self.current, **values}
        names = self.target_names if names is None else list(names)
        key = tuple(round(full[p.key], 12) for p in self.parameters)
        hit = self.cache.get(key)
        if hit is not None and (hit.failed or all(n in hit.model for n in names)):
            return hit  # a point the model could not simulate stays failed for every target
        began = time.perf_counter()
        model = dict(hit.model) if hit is not None else {}
        todo = [n for n in names if n not in model]
        try:
            if any(n in MOMENTS for n in todo):
                cfg = with_values(self.cfg, full)
                value, groups, _ = model_moments(cfg, self.md, days=self.days,
                                                 groups=self.cfg.smm.mc_groups)
                g = groups.shape[0]
                for i, k in enumerate(MOMENTS):
                    model[k] = (float(value[k]),
                                float(np.nanstd(groups[:, i], ddof=1) / math.sqrt(g)))
            facts = [f for f in self.facts if f.name in todo]
            if facts:
                cases = self.cases.with_values(full)
                for f in facts:
                    model[f.name] = tuple(float(v) for v in f.measure(cases))
            out = Evaluation(full, model, time.perf_counter() - began)
        except SimulationError as err:
            model.update({n: (math.nan, math.nan) for n in names if n not in model})
            out = Evaluation(full, model, time.perf_counter() - began, failed=str(err))
        self.cache[key] = out
        self.count += 1
        return out

    # -- weights and residuals -----------------------------------------------------------------
    def set_weights(self, first: Evaluation) -> None:
        """Fix the weights from the data SEs and the model SEs of ``first`` (the start), so the
        objective is one quadratic form throughout the fit."""
        for n in self.target_names:
            se_d = self.data_value(n)[1]
            se_m = first.model[n][1] if n in first.model else 0.0
            se_m = se_m if np.isfinite(se_m) else 0.0
            self.weight_se[n] = math.sqrt(se_d ** 2 + se_m ** 2)
        if self.cfg.smm.weights == "full":
            reps = self.data.reps
            ok = np.all(np.isfinite(reps), axis=1)
            cov = np.cov(reps[ok].T)
            model_var = np.array([first.model[n][1] ** 2 for n in self.data.names])
            self.cov = cov + np.diag(model_var)

    def residuals(self, ev: Evaluation, names) -> np.ndarray:
        names = list(names)
        if ev.failed or not all(np.isfinite(ev.model[n][0]) for n in names):
            return np.full(len(names), FAILED_RESIDUAL)
        g = np.array([ev.model[n][0] - self.data_value(n)[0] for n in names])
        if self.cfg.smm.weights == "full":
            moments = [n for n in names if n in self.data.values]
            idx = [self.data.names.index(n) for n in moments]
            sub = self.cov[np.ix_(idx, idx)]
            root = np.linalg.cholesky(np.linalg.inv(sub))
            gm = np.array([g[names.index(n)] for n in moments])
            rest = [g[i] / self.weight_se[n] for i, n in enumerate(names) if n not in self.data.values]
            return np.concatenate([root.T @ gm, rest])
        return g / np.array([self.weight_se[n] for n in names])

    def j_value(self, ev: Evaluation, names=None) -> float:
        r = self.residuals(ev, self.target_names if names is None else names)
        return float(r @ r)

    # -- the fit -------------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        if self.log is not None:
            self.log(text)

    def solve(self, name: str, params, names, budget: int) -> Stage:
        """Minimise the weighted sum of squares over ``params`` (the others held) for the
        targets ``names``, with at most ``budget`` new evaluations; keeps the best point seen."""
        from scipy.optimize import least_squares

        params, names = list(params), list(names)
        began = time.perf_counter()
        start_ev = self.evaluate({}, names)
        if start_ev.failed:
            self._say(f"  {name}: the model cannot be simulated at the stage's start "
                      f"({start_ev.failed})")
        j0 = self.j_value(start_ev, names)
        best = [j0, dict(self.current)]
        used = [0]
        if budget <= 0 or not params or not names:
            return Stage(name, [p.key for p in params], names, 0, j0, j0, 0.0, "skipped")

        def fun(u):
            values = {p.key: p.from_u(float(x)) for p, x in zip(params, u)}
            before = self.count
            if used[0] >= budget and self.cache.get(self._key(values)) is None:
                raise BudgetSpent
            ev = self.evaluate(values, names)
            used[0] += self.count - before
            r = self.residuals(ev, names)
            j = float(r @ r)
            if j < best[0]:
                best[0], best[1] = j, dict(ev.values)
                self._say(f"  {name}: evaluation {used[0]}, J = {j:.3f}")
            return r

        u0 = np.array([p.to_u(self.current[p.key]) for p in params])
        message = ""
        try:
            sol = least_squares(fun, u0, method="trf", diff_step=self.cfg.smm.diff_step,
                                x_scale=1.0, xtol=1e-3, ftol=1e-4, gtol=1e-6,
                                max_nfev=10 * budget)
            message = sol.message
        except BudgetSpent:
            message = f"evaluation budget ({budget}) spent"
        self.current = best[1]
        return Stage(name, [p.key for p in params], names, used[0], j0, best[0],
                     time.perf_counter() - began, message)

    def _key(self, values: dict[str, float]) -> tuple:
        full = {**self.current, **values}
        return tuple(round(full[p.key], 12) for p in self.parameters)

    def fit(self) -> list[Stage]:
        """The block-coordinate stage (``smm.blocks`` in order) and the joint polish."""
        s = self.cfg.smm
        first = self.evaluate({})
        if first.failed:
            raise SimulationError(f"at the calibration's starting values: {first.failed}")
        self.set_weights(first)
        self._say(f"start: J = {self.j_value(first):.3f} over {len(self.target_names)} targets "
                  f"({first.seconds:.1f}s per evaluation)")
        stages = []
        for block in s.blocks:
            params = [p for p in self.parameters if p.block == block]
            if not params:
                continue
            self._say(f"block {block}: {len(params)} parameters against "
                      f"{len(self.block_targets(block))} targets")
            stages.append(self.solve(block, params, self.block_targets(block), s.block_evaluations))
        if s.polish_evaluations > 0:
            self._say(f"polish: {len(self.parameters)} parameters against every target")
            stages.append(self.solve("polish", self.parameters, self.target_names,
                                     s.polish_evaluations))
        return stages


def parameter_se(smm: SMM, values: dict[str, float], step: float = 0.02) -> dict[str, float]:
    """Sandwich standard errors of the fitted parameters (one extra evaluation per parameter):
    with G the derivatives of the targets by the parameters (forward differences of
    ``step`` x the range, the same shocks), W = diag(1 / s_k^2) the weights and S the targets'
    covariance (the data's bootstrap covariance plus the model's MC variances; a flow fact's
    SE^2 on the diagonal), Var = (G'WG)^-1 G'W S W G (G'WG)^-1.  NaN where G'WG is singular."""
    names = smm.target_names
    at = smm.evaluate(values)
    base = np.array([at.model[n][0] for n in names])
    cols = []
    for p in smm.parameters:
        h = step * (p.high - p.low) * (1.0 if values[p.key] + step * (p.high - p.low) < p.high else -1.0)
        ev = smm.evaluate({**values, p.key: values[p.key] + h})
        cols.append((np.array([ev.model[n][0] for n in names]) - base) / h)
    G = np.column_stack(cols)
    w = np.array([1.0 / smm.weight_se[n] ** 2 for n in names])
    S = np.diag([smm.weight_se[n] ** 2 for n in names])
    reps = smm.data.reps
    ok = np.all(np.isfinite(reps), axis=1)
    k = len(smm.data.names)
    cov = np.cov(reps[ok].T)
    model_var = np.array([at.model[n][1] ** 2 for n in smm.data.names])
    S[:k, :k] = cov + np.diag(model_var)
    # A parameter that moves no target (a zero column) is not identified: its SE is NaN and
    # the others' come from the rest (a pseudo-inverse where G'WG is near singular).
    moved = np.flatnonzero(np.any(G != 0.0, axis=0) & np.all(np.isfinite(G), axis=0))
    out = {p.key: float("nan") for p in smm.parameters}
    if moved.size == 0:
        return out
    Gm = G[:, moved]
    inv = np.linalg.pinv(Gm.T @ (w[:, None] * Gm))
    B = Gm.T @ (w[:, None] * S * w[None, :]) @ Gm
    var = np.diag(inv @ B @ inv)
    for j, v in zip(moved, var):
        out[smm.parameters[j].key] = float(math.sqrt(v)) if v >= 0 else float("nan")
    return out


def flows_off(smm: SMM, values: dict[str, float]) -> Evaluation | None:
    """Every target at ``values`` on the same shocks with private flows moving no price
    (``model.impact.private_flows=false``; official interventions still do): the
    counterfactual that shows what the flows add.  None if the model has no such switch."""
    if not hasattr(smm.cfg.model.impact, "private_flows"):
        return None

    def off(cfg: Config) -> Config:
        out = copy.deepcopy(cfg)
        out.model.impact.private_flows = False
        return out

    cases = smm.cases.map(off)
    cases.overrides.append("model.impact.private_flows=false")
    other = SMM(off(smm.cfg), cases, smm.md, smm.parameters, smm.data, facts=smm.facts,
                days=smm.days)
    return other.evaluate(values)


def round_values(values: dict[str, float], parameters, digits: int = 4) -> dict[str, float]:
    """Values rounded to ``digits`` significant digits (what the fitted config records), with
    more digits where rounding would put a value on its bound: the recorded values must stay
    strictly inside the bounds, or ``calibration=fitted`` could not start a fit from them."""
    bounds = {p.key: (p.low, p.high) for p in parameters}
    out = {}
    for key, value in values.items():
        low, high = bounds[key]
        # The optimiser's logit can saturate on a bound; Parameter.to_u reads such a value as
        # a millionth of the range inside it, and so does the record.
        edge = 1e-6 * (high - low)
        value = min(max(value, low + edge), high - edge)
        for d in range(digits, 17):
            rounded = float(f"{value:.{d}g}")
            if low < rounded < high:
                break
        out[key] = rounded
    return out


# ---------------------------------------------------------------------------------------------
# The result: rows, J, the report
# ---------------------------------------------------------------------------------------------

def target_rows(smm: SMM, ev: Evaluation, off: Evaluation | None = None) -> list[dict]:
    from sim.moments import MOMENTS

    fitted_in = {}
    for block in smm.cfg.smm.blocks:
        if any(p.block == block for p in smm.parameters):
            for n in smm.block_targets(block):
                fitted_in.setdefault(n, block)
    rows = []
    for n in smm.target_names:
        d, se_d = smm.data_value(n)
        m, se_m = ev.model[n]
        both = math.hypot(se_d, se_m)
        if n in MOMENTS:
            unit, text = MOMENTS[n]
            lo, hi, source = smm.data.lo95[n], smm.data.hi95[n], "FRED data (sim.moments)"
            kind = "moment"
        else:
            f = next(f for f in smm.facts if f.name == n)
            unit, text, source, kind = f.unit, f.description, f.source, "flow fact"
            lo, hi = d - 1.96 * se_d, d + 1.96 * se_d
        rows.append({"target": n, "kind": kind, "description": text, "unit": unit,
                     "data": d, "data_se": se_d, "data_lo95": lo, "data_hi95": hi,
                     "model": m, "model_se": se_m,
                     "t": (m - d) / both if both > 0 else float("nan"),
                     "weight_se": smm.weight_se.get(n, both),
                     "inside": bool(lo <= m <= hi), "block": fitted_in.get(n, "polish"),
                     "flows_off": off.model[n][0] if off is not None else float("nan"),
                     "flows_off_se": off.model[n][1] if off is not None else float("nan"),
                     "source": source})
    return rows


def j_reference(smm: SMM) -> tuple[float, float]:
    """(median, 95% quantile) of sum_k ((rep_k - mean_k) / s_k)^2 over the data's bootstrap
    replications: the scatter of J that data noise alone produces (the parameters' estimation
    is ignored, which makes the reference wider than the true one)."""
    reps = smm.data.reps
    ok = np.all(np.isfinite(reps), axis=1)
    dev = reps[ok] - np.nanmean(reps[ok], axis=0)
    s = np.array([smm.weight_se[n] for n in smm.data.names])
    j = np.sum((dev / s) ** 2, axis=1) + len(smm.facts)   # each fact adds about one
    return float(np.median(j)), float(np.quantile(j, 0.95))


def check_rows(cases: Cases, checks=None) -> list[dict]:
    rows = []
    for c in (CHECKS if checks is None else checks):
        value, se = c.measure(cases)
        rows.append({"check": c.name, "description": c.description, "unit": c.unit,
                     "claim": c.claim, "source": c.source, "model": float(value), "model_se": float(se),
                     "consistent": (bool(c.holds(value))
                                    if c.holds is not None and np.isfinite(value) else None)})
    return rows


def _n(x, d=3) -> str:
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{x:,.{d}f}" if abs(x) < 1e4 else f"{x:,.0f}"


def _digits(unit: str) -> int:
    return {"%": 2, "1": 2, "% of weeks": 2, "per year": 2, "bp": 1, "USD bn": 0}.get(unit, 3)


def parameter_rows(smm: SMM, fitted: dict[str, float], se=None) -> list[dict]:
    se = se or {}
    return [{"parameter": p.key, "block": p.block, "low": p.low, "high": p.high,
             "start": p.start, "fitted": fitted[p.key], "se": se.get(p.key, float("nan")),
             "at_bound": p.at_bound(fitted[p.key])}
            for p in smm.parameters]


def format_report(header: list[str], rows, prows, stages, crows, j: float,
                  reference: tuple[float, float]) -> str:
    lines = [*header, ""]
    lines += ["## Stages", "", "| stage | parameters | targets | evaluations | J before | J after | "
              "seconds | stop |", "|---|---|---|---|---|---|---|---|"]
    for s in stages:
        lines.append(f"| {s.name} | {len(s.parameters)} | {len(s.targets)} | {s.evaluations} | "
                     f"{s.j_before:.2f} | {s.j_after:.2f} | {s.seconds:.0f} | {s.message} |")
    k, p = len(rows), len(prows)
    lines += ["", f"**J = {j:.2f}** over {k} targets and {p} parameters (sum of squared t-ratios). "
              f"Data noise alone gives a J with median {reference[0]:.1f} and 95% quantile "
              f"{reference[1]:.1f} (bootstrap replications; parameters not re-estimated).", ""]
    lines += ["## Targets", "",
              "| target | unit | data ± SE | model ± SE | t | inside 95% | block | flows off ± SE |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d = _digits(r["unit"])
        lines.append(f"| {r['description']} | {r['unit']} | {_n(r['data'], d)} ± {_n(r['data_se'], d + 1)} | "
                     f"{_n(r['model'], d)} ± {_n(r['model_se'], d + 1)} | {_n(r['t'], 1)} | "
                     f"{'yes' if r['inside'] else 'no'} | {r['block']} | "
                     f"{_n(r['flows_off'], d)} ± {_n(r['flows_off_se'], d + 1)} |")
    lines += ["", "Flows off: the fitted model on the same shocks with private flows moving no "
              "price (model.impact.private_flows=false; interventions still do), not refitted."]
    facts = [r for r in rows if r["kind"] == "flow fact"]
    if facts:
        computed = ", ".join(f.name for f in FLOW_FACTS if f.from_data is not None)
        lines += ["", "Flow facts: a published range is the target's 95% interval (value = its "
                  f"midpoint, SE = its width / 4); computed from the data instead: {computed} "
                  "(sim.flowfacts). Sources:"]
        lines += [f"- {r['target']}: {r['source']}" for r in facts]
    lines += ["", "## Parameters", "", "| parameter | block | bounds | start | fitted ± SE | at a bound |",
              "|---|---|---|---|---|---|"]
    for r in prows:
        se = f" ± {r['se']:.2g}" if np.isfinite(r["se"]) else ""
        lines.append(f"| {r['parameter']} | {r['block']} | {r['low']:g} to {r['high']:g} | "
                     f"{r['start']:.4g} | {r['fitted']:.4g}{se} | {r['at_bound'] or 'no'} |")
    lines += ["", "SEs: sandwich (G'WG)^-1 G'W S W G (G'WG)^-1 with forward-difference derivatives "
              "under the same shocks and S the targets' covariance (bootstrap plus Monte Carlo); "
              "a parameter at a bound has no meaningful SE; no SE: the parameter moves no target (not identified)."]
    at = [r["parameter"] for r in prows if r["at_bound"]]
    lines += ["", f"Parameters at a bound (within 1% of the range): {', '.join(at) if at else 'none'}."]
    if crows:
        lines += ["", "## Checks (reported, never fitted)", "",
                  "| check | claim | source | model ± SE | consistent |", "|---|---|---|---|---|"]
        for r in crows:
            d = _digits(r["unit"])
            ok = {True: "yes", False: "no", None: "n/a"}[r["consistent"]]
            lines.append(f"| {r['description']} | {r['claim']} {r['unit']} | {r['source']} | "
                         f"{_n(r['model'], d)} ± {_n(r['model_se'], d + 1)} | {ok} |")
    return "\n".join(lines) + "\n"


def fitted_yaml(base: Config, values: dict[str, float], header: str, window=None) -> str:
    """The fitted values (and the priors that move with them) as a `@package _global_` file."""
    import yaml

    cfg = with_values(base, values)
    tree: dict = {}
    if window is not None:
        tree["model"] = {"calibration_window": {"start": window[0], "end": window[1]}}
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
