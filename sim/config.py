"""Typed configuration: dataclass schemas behind every Hydra config group.

The schemas are registered in Hydra's ConfigStore by :func:`register_configs`, so a
misspelled key, a value of the wrong type or a word outside a closed vocabulary (the Enums
below) in any YAML file or command-line override is rejected by Hydra before the model runs.

Every number carries its allowed range beside it, as field metadata (:func:`num`); one
generic function, :func:`sim.validate.check_ranges`, walks the config tree and checks them
all, and refuses a numeric field that declares none, so a new key cannot arrive without its
check.  Checks that tie several keys together (correlation matrices, priors against their
central value, dates against the horizon) live in :mod:`sim.validate`.

Units follow docs/model.md: rates and yields in percent per annum, money in USD billions,
FX as USD/JPY (yen per dollar), durations in the unit named by each field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

#: Order of the correlated Gaussian factors; the correlation matrices follow it.
FACTORS = ("jp_inflation", "jp_activity", "us_inflation", "us_activity", "jgb_term_premium",
           "ust_term_premium", "usdjpy")


class Step(StrEnum):
    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"


class FlowClock(StrEnum):
    """How often the investors trade within a step: every business day (a weekly or monthly
    step is cut into business-day sub-steps for the flows), or once per step."""

    daily = "daily"
    step = "step"


class OutputFormat(StrEnum):
    netcdf = "netcdf"
    zarr = "zarr"
    none = "none"


class Signal(StrEnum):
    carry_to_risk = "carry_to_risk"
    drawdown = "drawdown"
    hedged_pickup = "hedged_pickup"
    yield_level = "yield_level"
    allocation_drift = "allocation_drift"


class NeutralFrom(StrEnum):
    """Where a central bank's neutral rate comes from: its configured prior, or the policy
    rate at the snapshot (the current stance, with the prior's spread around it)."""

    prior = "prior"
    snapshot = "snapshot"


class Anchor(StrEnum):
    """Long-run means of the term premia: their values at the snapshot, or the config's."""

    snapshot = "snapshot"
    config = "config"


class PriorKind(StrEnum):
    fixed = "fixed"
    uniform = "uniform"
    triangular = "triangular"
    normal = "normal"
    lognormal = "lognormal"


class EventKind(StrEnum):
    boj_decision = "boj_decision"
    fed_decision = "fed_decision"
    boj_probability = "boj_probability"
    fed_probability = "fed_probability"
    fx_shock = "fx_shock"
    jgb_term_premium = "jgb_term_premium"
    ust_term_premium = "ust_term_premium"
    jp_inflation = "jp_inflation"
    jp_activity = "jp_activity"
    us_inflation = "us_inflation"
    us_activity = "us_activity"
    intervention = "intervention"
    stress = "stress"


class Observable(StrEnum):
    """Variables an observation can compare with the simulated distribution (per-date outputs)."""

    boj_rate = "boj_rate"
    fed_rate = "fed_rate"
    jgb10 = "jgb10"
    ust10 = "ust10"
    spread = "spread"
    usdjpy = "usdjpy"


SIGNALS = tuple(Signal)
PRIOR_KINDS = tuple(PriorKind)
STEPS = tuple(Step)
FORMATS = tuple(OutputFormat)
EVENT_KINDS = tuple(EventKind)
OBSERVABLES = tuple(Observable)


@dataclass(frozen=True)
class Range:
    """Allowed values of a number: finite, within [low, high] (or open ends), on a grid."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    multiple: Optional[float] = None  # values must be whole multiples of this
    integer: bool = False

    def contains(self, x) -> bool:
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            return False
        if not math.isfinite(x) or (self.integer and x != int(x)):
            return False
        if x < self.low or (self.low_open and x == self.low):
            return False
        if x > self.high or (self.high_open and x == self.high):
            return False
        if self.multiple is not None and not math.isclose(x / self.multiple, round(x / self.multiple),
                                                          abs_tol=1e-9):
            return False
        return True

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        lo, hi = _fmt(self.low), _fmt(self.high)
        if math.isinf(self.low) and math.isinf(self.high):
            text = kind
        elif math.isinf(self.high):
            text = f"{kind} {'>' if self.low_open else '>='} {lo}"
        elif math.isinf(self.low):
            text = f"{kind} {'<' if self.high_open else '<='} {hi}"
        else:
            text = (f"{kind} in {'(' if self.low_open else '['}{lo}, {hi}"
                    f"{')' if self.high_open else ']'}")
        if self.multiple is not None:
            text += f", a multiple of {_fmt(self.multiple)}"
        return text


def _fmt(x: float) -> str:
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:,.0f}".replace(",", "_") if abs(x) >= 1e4 and x == int(x) else f"{x:g}"


def num(default=MISSING, low=-math.inf, high=math.inf, *, low_open=False, high_open=False,
        multiple=None, integer=False, unit: str = ""):
    """A numeric field with its allowed range (and unit) declared beside it."""
    rng = Range(low, high, low_open, high_open, multiple, integer)
    return field(default=default, metadata={"range": rng, "unit": unit})


def integer(default=MISSING, low=-math.inf, high=math.inf, unit: str = ""):
    return num(default, low, high, integer=True, unit=unit)


def numbers(default_factory, low=-math.inf, high=math.inf, *, low_open=False, high_open=False,
            integer=False, unit: str = ""):
    """A list of numbers, each within the range."""
    rng = Range(low, high, low_open, high_open, integer=integer)
    return field(default_factory=default_factory, metadata={"range": rng, "unit": unit})


def iso_date(default=MISSING):
    """An ISO date (text such as ``2025-12-19``), checked by the same walk as the numbers."""
    return field(default=default, metadata={"date": True})


def iso_dates():
    """A list of ISO dates."""
    return field(default_factory=list, metadata={"date": True})


def prior(central: str):
    """A prior field (PriorConfig) whose central value is the sibling field ``central``."""
    return field(default_factory=PriorConfig, metadata={"prior_of": central})


# Ranges used by many fields.  "Physical sense": generous bounds that no real market or
# balance sheet has come near, so a typo (1e308, an extra zero or three) is refused.
UNIT = dict(low=0.0, high=1.0)
RATE = dict(low=-5.0, high=30.0, unit="% p.a.")          # policy rates and yields
FX_LEVEL = dict(low=10.0, high=1000.0, unit="JPY per USD")
WEEKS = dict(low=0.0, high=520.0, low_open=True, unit="weeks")
USD_BN = dict(low=0.0, high=20_000.0, unit="USD bn")


@dataclass
class PriorConfig:
    """Distribution of an uncertain parameter across paths.

    The central value is the parameter field the prior belongs to.  ``fixed`` uses it as is;
    ``uniform`` draws from [low, high]; ``triangular`` from [low, high] with the central value
    as mode; ``normal`` has the central value as mean and ``sd``; ``lognormal`` has the central
    value as median and ``sd`` as the standard deviation of its logarithm.  ``low`` and ``high``
    must lie in the range of the central value's field (checked by :mod:`sim.validate`).
    """

    dist: PriorKind = PriorKind.fixed
    low: Optional[float] = num(None)
    high: Optional[float] = num(None)
    sd: Optional[float] = num(None, 0.0, 1e6)


@dataclass
class SnapshotConfig:
    """Initial conditions on a date (FACTS.md names the sources in each YAML file)."""

    name: str = MISSING
    description: str = ""
    date: str = iso_date()
    boj_rate: float = num(**RATE)
    fed_rate: float = num(**RATE)
    jgb10: float = num(**RATE)
    ust10: float = num(**RATE)
    usdjpy: float = num(**FX_LEVEL)
    jp_inflation: float = num(MISSING, -20.0, 50.0, unit="% y/y")
    us_inflation: float = num(MISSING, -20.0, 50.0, unit="% y/y")
    jp_activity_gap: float = num(0.0, -20.0, 20.0, unit="pp")
    us_activity_gap: float = num(0.0, -20.0, 20.0, unit="pp")
    fx_vol: float = num(10.0, 0.0, 100.0, low_open=True, unit="% p.a.")
    # Carry positions on the date relative to the investor configs' holdings: multiplies the
    # holdings of every carry class and every draw of their prior (the point-in-time rule of
    # sim.datasnapshot sets it from the policy differential before August 2024).
    carry_positions: float = num(1.0, 0.0, 10.0, unit="1")
    boj_last_move: str = iso_date()
    fed_last_move: str = iso_date()
    boj_meetings: List[str] = iso_dates()
    fed_meetings: List[str] = iso_dates()
    from_data: bool = False     # fill the market levels from data.dir as known on ``date``
    point_in_time: bool = True  # with from_data: the point-in-time rules of sim/datasnapshot.py


_MOVE = Range(-5.0, 5.0, multiple=0.25)
_GAP = Range(-10.0, 10.0)
#: Allowed ``value`` of a scenario event by its kind (docs/model.md, section 11).
EVENT_VALUE_RANGES = {
    EventKind.boj_decision: _MOVE, EventKind.fed_decision: _MOVE,
    EventKind.boj_probability: _MOVE, EventKind.fed_probability: _MOVE,
    EventKind.fx_shock: Range(-50.0, 100.0),            # % change of USD/JPY
    EventKind.jgb_term_premium: Range(-5.0, 5.0), EventKind.ust_term_premium: Range(-5.0, 5.0),
    EventKind.jp_inflation: _GAP, EventKind.jp_activity: _GAP,
    EventKind.us_inflation: _GAP, EventKind.us_activity: _GAP,
    EventKind.intervention: Range(-500.0, 500.0),       # USD bn of yen bought
    EventKind.stress: Range(),                          # ignored
}
#: Allowed ``value`` of an observation by its variable.
OBSERVATION_RANGES = {
    Observable.boj_rate: Range(-5.0, 30.0), Observable.fed_rate: Range(-5.0, 30.0),
    Observable.jgb10: Range(-5.0, 30.0), Observable.ust10: Range(-5.0, 30.0),
    Observable.spread: Range(-35.0, 35.0), Observable.usdjpy: Range(10.0, 1000.0),
}


@dataclass
class EventConfig:
    """A dated scenario event; see ``EventKind`` and docs/model.md for meanings."""

    date: str = iso_date()
    kind: EventKind = MISSING
    value: float = field(default=0.0, metadata={"range_by": ("kind", EVENT_VALUE_RANGES)})
    probability: float = num(1.0, **UNIT)


@dataclass
class ObservationConfig:
    """A realised value to place in the simulated distribution of its date (replays)."""

    date: str = iso_date()
    variable: Observable = MISSING
    value: float = field(default=MISSING, metadata={"range_by": ("variable", OBSERVATION_RANGES)})
    source: str = ""


@dataclass
class ScenarioConfig:
    name: str = MISSING
    description: str = ""
    events: List[EventConfig] = field(default_factory=list)
    observations: List[ObservationConfig] = field(default_factory=list)


@dataclass
class InvestorClassConfig:
    """One class of Japanese or yen-funded investors (docs/model.md, section 6)."""

    enabled: bool = True
    label: str = ""
    holdings: float = num(**USD_BN)
    holdings_prior: PriorConfig = prior("holdings")
    hedge_ratio: float = num(0.0, **UNIT)
    max_hedge_ratio: float = num(0.0, **UNIT)
    hedge_share: float = num(0.0, **UNIT)
    signal: Signal = MISSING
    # Threshold classes: mean distance of current holders' thresholds beyond the snapshot
    # signal.  allocation_drift classes: threshold_mean, the mean band half-width (pp).
    threshold_distance: Optional[float] = num(None, -100.0, 100.0, unit="signal units")
    threshold_mean: Optional[float] = num(None, -100.0, 100.0, unit="signal units")
    threshold_width: float = num(MISSING, 0.0, 100.0, low_open=True, unit="signal units")
    reentry_gap: float = num(0.0, 0.0, 100.0, unit="signal units")
    adjustment_weeks: float = num(MISSING, **WEEKS)
    rebuild_weeks: Optional[float] = num(None, **WEEKS)   # null: adjustment_weeks
    spot_footprint: float = num(1.0, **UNIT)   # share of the class's yen buying done in spot
    repatriation_share: float = num(MISSING, **UNIT)
    repatriation_prior: PriorConfig = prior("repatriation_share")
    bond_share: float = num(0.0, **UNIT)
    carry: bool = False
    basis_weeks: float = num(13.0, **WEEKS)
    foreign_weight: float = num(0.5, **UNIT)
    target_weight: float = num(0.5, **UNIT)


@dataclass
class OUConfig:
    """Ornstein-Uhlenbeck process: long-run mean, speed (1/yr) and volatility (units/sqrt(yr))."""

    mean: float = num(0.0, -20.0, 20.0, unit="pp")
    speed: float = num(1.0, 0.0, 100.0, unit="1/yr")
    vol: float = num(0.0, 0.0, 50.0, unit="pp/sqrt(yr)")


@dataclass
class MacroConfig:
    inflation_target_jp: float = num(2.0, -5.0, 20.0, unit="%")
    inflation_target_us: float = num(2.0, -5.0, 20.0, unit="%")
    jp_inflation: OUConfig = field(default_factory=OUConfig)
    jp_activity: OUConfig = field(default_factory=OUConfig)
    us_inflation: OUConfig = field(default_factory=OUConfig)
    us_activity: OUConfig = field(default_factory=OUConfig)


@dataclass
class BankConfig:
    neutral: float = num(**RATE)
    neutral_prior: PriorConfig = prior("neutral")
    inflation_response: float = num(1.5, -10.0, 10.0)
    activity_response: float = num(0.5, -10.0, 10.0)
    fx_response: float = num(0.0, -1.0, 1.0, unit="pp per %")
    fx_reference: float = num(150.0, **FX_LEVEL)
    smoothing: float = num(0.5, **UNIT)
    decision_noise: float = num(0.15, 0.0, 10.0, unit="pp")
    threshold_25: float = num(0.15, 0.0, 10.0, unit="pp")
    threshold_50: float = num(0.6, 0.0, 10.0, unit="pp")
    max_move: float = num(0.25, 0.0, 0.5, multiple=0.25, unit="pp")
    min_spacing_months: float = num(0.0, 0.0, 120.0, unit="months")   # preferred spacing
    spacing_penalty: float = num(0.0, 0.0, 10.0, unit="pp")   # extra hurdle within it
    neutral_from: NeutralFrom = NeutralFrom.prior
    lower_bound: float = num(0.0, -5.0, 30.0, multiple=0.125, unit="%")
    pause_in_stress: bool = False


@dataclass
class PolicyConfig:
    decisions: bool = True
    boj: BankConfig = field(default_factory=BankConfig)
    fed: BankConfig = field(default_factory=BankConfig)


@dataclass
class YieldsConfig:
    anchor: Anchor = Anchor.snapshot
    expectations_speed: float = num(0.3, 0.0, 100.0, low_open=True, unit="1/yr")
    jgb_term_premium: OUConfig = field(default_factory=OUConfig)
    ust_term_premium: OUConfig = field(default_factory=OUConfig)
    fiscal_jump_intensity: float = num(0.0, 0.0, 52.0, unit="1/yr")
    fiscal_jump_size: float = num(0.25, -5.0, 5.0, unit="pp")
    ust_tp_per_tn_sold: float = num(0.0, -10.0, 10.0, unit="pp per USD tn")
    jgb_tp_per_tn_repatriated: float = num(0.0, -10.0, 10.0, unit="pp per USD tn")


@dataclass
class FXConfig:
    spread_elasticity: float = num(5.0, -100.0, 100.0, unit="% per pp")
    long_run_vol: float = num(9.0, 0.0, 100.0, low_open=True, unit="% p.a.")
    vol_persistence_weeks: float = num(13.0, **WEEKS)
    vol_of_vol: float = num(0.65, 0.0, 10.0, unit="log points per sqrt(yr)")
    stress_vol_multiplier: float = num(1.5, 0.0, 10.0, unit="1")
    calm_to_stress: float = num(0.3, 0.0, 365.0, unit="1/yr")
    stress_to_calm: float = num(6.0, 0.0, 365.0, unit="1/yr")
    stress_trigger: float = num(4.0, 0.0, 10_000.0, low_open=True, unit="%")  # 1000: never
    crash_intensity: float = num(0.3, 0.0, 365.0, unit="1/yr")
    crash_scale: float = num(1.0, 0.0, 100.0, unit="1")   # multiplies crash_intensity (scenarios)
    crash_crowding: float = num(1.0, -20.0, 20.0)
    crash_mean_size: float = num(3.0, 0.0, 50.0, unit="%")
    crowding_reference: float = num(250.0, 0.0, 20_000.0, low_open=True, unit="USD bn")
    vol_halflife_weeks: float = num(4.0, **WEEKS)


@dataclass
class ImpactConfig:
    price_impact: float = num(0.10, 0.0, 10.0, unit="% per USD bn")
    price_impact_prior: PriorConfig = prior("price_impact")
    linear_limit: float = num(30.0, 0.0, 10_000.0, low_open=True, unit="USD bn")
    permanent_share: float = num(0.2, **UNIT)
    transient_halflife_weeks: float = num(3.0, **WEEKS)
    stress_multiplier: float = num(1.5, 0.0, 10.0, unit="1")
    private_flows: bool = True   # false: private flows do not move USD/JPY (the counterfactual)


@dataclass
class InterventionConfig:
    enabled: bool = True
    level: float = num(160.0, **FX_LEVEL)
    probability: float = num(0.25, **UNIT)
    size: float = num(30.0, 0.0, 1000.0, unit="USD bn")
    announcement: float = num(1.0, 0.0, 50.0, unit="%")
    min_spacing_weeks: float = num(8.0, 0.0, 520.0, unit="weeks")


@dataclass
class FeedbackConfig:
    clock: FlowClock = FlowClock.daily
    max_iter: int = integer(1000, 1, 1_000_000)
    tol: float = num(1e-9, 0.0, 1.0, low_open=True)


@dataclass
class CorrelationConfig:
    calm: List[List[Any]] = MISSING  # numbers; Any lets users write 1 as well as 1.0
    stress: Optional[List[List[Any]]] = None
    repair: bool = False


@dataclass
class WindowConfig:
    """Dates of the data a model version was calibrated to (ISO dates, inclusive)."""

    start: str = iso_date()
    end: str = iso_date()


@dataclass
class ModelConfig:
    parameter_uncertainty: bool = True
    calibration_window: WindowConfig = field(
        default_factory=lambda: WindowConfig(start="1993-01-01", end="2009-12-31"))
    macro: MacroConfig = field(default_factory=MacroConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    yields: YieldsConfig = field(default_factory=YieldsConfig)
    fx: FXConfig = field(default_factory=FXConfig)
    impact: ImpactConfig = field(default_factory=ImpactConfig)
    intervention: InterventionConfig = field(default_factory=InterventionConfig)
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)
    correlation: CorrelationConfig = field(default_factory=CorrelationConfig)


#: ``sampler.scheduler``: none, ``local`` or the address of a running Dask scheduler.
SCHEDULER_PATTERN = r"local|(tcp|tls|ws|wss|ucx|inproc)://[^\s:/]+(:\d{1,5})?"


@dataclass
class SamplerConfig:
    paths: int = integer(20_000, 1, 1_000_000_000)
    seed: int = integer(20251219, 0, 2**63 - 1)
    horizon_months: int = integer(24, 1, 120, unit="months")
    step: Step = Step.weekly
    block_size: int = integer(256, 1, 1 << 20)
    chunk_paths: int = integer(16_384, 1, 1 << 26)
    threads: int = integer(0, 0, 4096)
    sample_paths: int = integer(50, 0, 10_000)
    scheduler: Optional[str] = field(default=None, metadata={
        "pattern": SCHEDULER_PATTERN,
        "allowed": "null, local, or a Dask scheduler address such as tcp://host:8786"})
    workers: int = integer(2, 1, 4096)


@dataclass
class OutputConfig:
    quantiles: List[float] = numbers(
        lambda: [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99], 0.0, 1.0,
        low_open=True, high_open=True)
    large_unwind_weekly: float = num(50.0, 0.0, 10_000.0, low_open=True, unit="USD bn")
    exceedance_thresholds: List[float] = numbers(lambda: [500.0, 1000.0], 0.0, 100_000.0,
                                                 low_open=True, unit="USD bn")
    format: OutputFormat = OutputFormat.netcdf
    plots: bool = True
    progress: bool = True
    counterfactual: bool = True   # the summary shows the flows-off run on the same shocks


@dataclass
class DataConfig:
    """Market data (FRED-layout CSV files) for snapshots from data, calibration and backtests."""

    dir: Optional[str] = None   # null: the local cache filled by `python -m sim.fetch`
    url: str = "https://fred.stlouisfed.org/graph/fredgraph.csv?id={series}"


@dataclass
class RallyEventConfig:
    """A crash event: the largest yen rally within ``horizon`` months above ``threshold`` %."""

    horizon: int = integer(MISSING, 1, 120, unit="months")
    threshold: float = num(MISSING, 0.0, 100.0, low_open=True, unit="%")


@dataclass
class BacktestConfig:
    """Rolling-origin backtest (sim.backtest; docs/model.md, section 17)."""

    name: str = "default"
    start: str = iso_date("2003-01-01")   # first origin month
    end: str = iso_date("2024-12-31")     # last origin month
    step_months: int = integer(1, 1, 120, unit="months")   # months between origins
    horizons: List[int] = numbers(lambda: [1, 3, 12], 1, 120, integer=True, unit="months")
    window_weeks: int = integer(520, 52, 5200, unit="weeks")   # history behind GARCH, bootstrap
    block_weeks: int = integer(8, 1, 520, unit="weeks")   # mean block of the stationary bootstrap
    rally_events: List[RallyEventConfig] = field(default_factory=lambda: [
        RallyEventConfig(1, 5.0), RallyEventConfig(3, 10.0)])
    pit_bins: int = integer(10, 2, 100)


@dataclass
class MomentsConfig:
    """Stylised-fact table: data moments against the model's (sim.moments; docs/model.md, 17.5)."""

    name: str = "default"
    start: str = iso_date("1993-01-01")   # first day of the window (data moments, model origins)
    end: str = iso_date("2009-12-31")     # last day of the window
    step_months: int = integer(6, 1, 120, unit="months")   # months between the model's origins
    block_months: int = integer(6, 1, 120, unit="months")  # moving-block length of the bootstrap
    bootstrap: int = integer(500, 20, 100_000)              # bootstrap replications
    mc_groups: int = integer(10, 2, 1000)                   # independent path groups for MC SEs


@dataclass
class SMMParameterConfig:
    """A parameter the calibration fits: a config key, its bounds and block (sim.calibration)."""

    key: str = MISSING                 # dotted config key, e.g. model.fx.crash_intensity
    low: float = num(MISSING)
    high: float = num(MISSING)
    block: str = MISSING               # fx, policy, yields or flows: what it is fitted against
    start: Optional[float] = num(None)  # null: the starting config's value


@dataclass
class SMMConfig:
    """Simulated method of moments (sim.calibration, sim.calibrate; docs/model.md, 16)."""

    name: str = "default"
    step_months: int = integer(12, 1, 120, unit="months")   # months between model origins
    paths: int = integer(300, 8, 10_000)                      # per origin, every evaluation
    mc_groups: int = integer(10, 2, 1000)                     # path groups behind the MC SEs
    bootstrap: int = integer(500, 20, 100_000)                # data bootstrap replications
    block_months: int = integer(6, 1, 120, unit="months")    # moving-block length
    flow_paths: int = integer(2000, 20, 1_000_000)           # paths of a flow-fact run
    check_paths: int = integer(4000, 20, 1_000_000)          # paths of the reported checks
    blocks: List[str] = field(default_factory=lambda: ["fx", "policy", "yields", "flows"])
    block_evaluations: int = integer(40, 0, 100_000)         # budget of each block's fit
    polish_evaluations: int = integer(60, 0, 100_000)        # budget of the joint polish
    diff_step: float = num(0.1, 0.0, 2.0, low_open=True)     # finite-difference step (logit)
    weights: str = field(default="diagonal", metadata={
        "pattern": "diagonal|full", "allowed": "diagonal or full"})
    write: Optional[str] = "auto"      # auto: the checkout's fitted.yaml; null: report only; a path
    parameters: List[SMMParameterConfig] = field(default_factory=list)


@dataclass
class Config:
    snapshot: SnapshotConfig = field(default_factory=SnapshotConfig)
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    investors: Dict[str, InvestorClassConfig] = field(default_factory=dict)
    model: ModelConfig = field(default_factory=ModelConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    data: DataConfig = field(default_factory=DataConfig)
    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    moments: MomentsConfig = field(default_factory=MomentsConfig)
    smm: SMMConfig = field(default_factory=SMMConfig)


def rebuild_time(investor) -> float:
    """A class's re-entry time in weeks: ``rebuild_weeks``, or ``adjustment_weeks`` when it is
    null (a typed class or its DictConfig node)."""
    return investor.adjustment_weeks if investor.rebuild_weeks is None else investor.rebuild_weeks


def register_configs() -> None:
    """Register the root schema and one schema per group in Hydra's ConfigStore."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    cs.store(group="snapshot", name="snapshot_schema", node=SnapshotConfig)
    cs.store(group="model", name="model_schema", node=ModelConfig)
    cs.store(group="sampler", name="sampler_schema", node=SamplerConfig)
    cs.store(group="output", name="output_schema", node=OutputConfig)
    cs.store(group="backtest", name="backtest_schema", node=BacktestConfig)
    cs.store(group="moments", name="moments_schema", node=MomentsConfig)
    cs.store(group="smm", name="smm_schema", node=SMMConfig)
