"""Typed configuration: dataclass schemas behind every Hydra config group.

The schemas are registered in Hydra's ConfigStore by :func:`register_configs`, so a
misspelled key or a value of the wrong type in any YAML file or command-line override is
rejected by Hydra before the model runs.  Semantic checks that a type system cannot express
(ranges, correlation matrices, dates) live in :mod:`sim.validate`.

Units follow docs/model.md: rates and yields in percent per annum, money in USD billions,
FX as USD/JPY (yen per dollar), durations in the unit named by each field.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

#: Order of the correlated Gaussian factors; the correlation matrices follow it.
FACTORS = ("jp_inflation", "jp_activity", "us_inflation", "us_activity", "jgb_term_premium",
           "ust_term_premium", "usdjpy")

SIGNALS = ("carry_to_risk", "drawdown", "hedged_pickup", "yield_level", "allocation_drift")
PRIOR_KINDS = ("fixed", "uniform", "triangular", "normal", "lognormal")
STEPS = ("daily", "weekly", "monthly")
FORMATS = ("netcdf", "zarr", "none")
EVENT_KINDS = ("boj_decision", "fed_decision", "boj_probability", "fed_probability", "fx_shock",
               "jgb_term_premium", "ust_term_premium", "jp_inflation", "jp_activity",
               "us_inflation", "us_activity", "intervention", "stress")


@dataclass
class PriorConfig:
    """Distribution of an uncertain parameter across paths.

    The central value is the parameter field the prior belongs to.  ``fixed`` uses it as is;
    ``uniform`` draws from [low, high]; ``triangular`` from [low, high] with the central value
    as mode; ``normal`` has the central value as mean and ``sd``; ``lognormal`` has the central
    value as median and ``sd`` as the standard deviation of its logarithm.
    """

    dist: str = "fixed"
    low: Optional[float] = None
    high: Optional[float] = None
    sd: Optional[float] = None


@dataclass
class SnapshotConfig:
    """Initial conditions on a date (FACTS.md names the sources in each YAML file)."""

    name: str = MISSING
    description: str = ""
    date: str = MISSING
    boj_rate: float = MISSING
    fed_rate: float = MISSING
    jgb10: float = MISSING
    ust10: float = MISSING
    usdjpy: float = MISSING
    jp_inflation: float = MISSING
    us_inflation: float = MISSING
    jp_activity_gap: float = 0.0
    us_activity_gap: float = 0.0
    fx_vol: float = 10.0
    boj_last_move: str = MISSING
    fed_last_move: str = MISSING
    boj_meetings: List[str] = field(default_factory=list)
    fed_meetings: List[str] = field(default_factory=list)
    from_data: bool = False     # fill the market levels from data.dir as known on ``date``


@dataclass
class EventConfig:
    """A dated scenario event; see ``EVENT_KINDS`` and docs/model.md for meanings."""

    date: str = MISSING
    kind: str = MISSING
    value: float = 0.0
    probability: float = 1.0


#: Variables an observation can compare with the simulated distribution (per-date outputs).
OBSERVABLES = ("boj_rate", "fed_rate", "jgb10", "ust10", "spread", "usdjpy")


@dataclass
class ObservationConfig:
    """A realised value to place in the simulated distribution of its date (replays)."""

    date: str = MISSING
    variable: str = MISSING
    value: float = MISSING
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
    holdings: float = MISSING
    holdings_prior: PriorConfig = field(default_factory=PriorConfig)
    hedge_ratio: float = 0.0
    max_hedge_ratio: float = 0.0
    hedge_share: float = 0.0
    signal: str = MISSING
    threshold_mean: float = MISSING
    threshold_width: float = MISSING
    reentry_gap: float = 0.0
    adjustment_weeks: float = MISSING
    repatriation_share: float = MISSING
    repatriation_prior: PriorConfig = field(default_factory=PriorConfig)
    bond_share: float = 0.0
    carry: bool = False
    basis_weeks: float = 13.0
    foreign_weight: float = 0.5
    target_weight: float = 0.5


@dataclass
class OUConfig:
    """Ornstein-Uhlenbeck process: long-run mean, speed (1/yr) and volatility (units/sqrt(yr))."""

    mean: float = 0.0
    speed: float = 1.0
    vol: float = 0.0


@dataclass
class MacroConfig:
    inflation_target_jp: float = 2.0
    inflation_target_us: float = 2.0
    jp_inflation: OUConfig = field(default_factory=OUConfig)
    jp_activity: OUConfig = field(default_factory=OUConfig)
    us_inflation: OUConfig = field(default_factory=OUConfig)
    us_activity: OUConfig = field(default_factory=OUConfig)


@dataclass
class BankConfig:
    neutral: float = MISSING
    neutral_prior: PriorConfig = field(default_factory=PriorConfig)
    inflation_response: float = 1.5
    activity_response: float = 0.5
    fx_response: float = 0.0
    fx_reference: float = 150.0
    smoothing: float = 0.5
    decision_noise: float = 0.15
    threshold_25: float = 0.15
    threshold_50: float = 0.6
    max_move: float = 0.25
    min_spacing_months: float = 0.0
    lower_bound: float = 0.0
    pause_in_stress: bool = False


@dataclass
class PolicyConfig:
    decisions: bool = True
    boj: BankConfig = field(default_factory=BankConfig)
    fed: BankConfig = field(default_factory=BankConfig)


@dataclass
class YieldsConfig:
    expectations_speed: float = 0.3
    jgb_term_premium: OUConfig = field(default_factory=OUConfig)
    ust_term_premium: OUConfig = field(default_factory=OUConfig)
    fiscal_jump_intensity: float = 0.0
    fiscal_jump_size: float = 0.25
    ust_tp_per_tn_sold: float = 0.0
    jgb_tp_per_tn_repatriated: float = 0.0


@dataclass
class FXConfig:
    spread_elasticity: float = 5.0
    calm_vol: float = 8.0
    stress_vol: float = 18.0
    calm_to_stress: float = 0.3
    stress_to_calm: float = 6.0
    stress_trigger: float = 4.0
    crash_intensity: float = 0.3
    crash_crowding: float = 1.0
    crash_mean_size: float = 3.0
    crowding_reference: float = 250.0
    vol_halflife_weeks: float = 13.0


@dataclass
class ImpactConfig:
    price_impact: float = 0.10
    price_impact_prior: PriorConfig = field(default_factory=PriorConfig)
    linear_limit: float = 30.0
    permanent_share: float = 0.2
    transient_halflife_weeks: float = 3.0


@dataclass
class InterventionConfig:
    enabled: bool = True
    level: float = 160.0
    probability: float = 0.25
    size: float = 30.0
    min_spacing_weeks: float = 8.0


@dataclass
class FeedbackConfig:
    max_iter: int = 1000
    tol: float = 1e-9


@dataclass
class CorrelationConfig:
    calm: List[List[Any]] = MISSING  # numbers; Any lets users write 1 as well as 1.0
    stress: Optional[List[List[Any]]] = None
    repair: bool = False


@dataclass
class WindowConfig:
    """Dates of the data a model version was calibrated to (ISO dates, inclusive)."""

    start: str = MISSING
    end: str = MISSING


@dataclass
class ModelConfig:
    parameter_uncertainty: bool = True
    calibration_window: WindowConfig = field(
        default_factory=lambda: WindowConfig(start="2022-09-01", end="2025-12-31"))
    macro: MacroConfig = field(default_factory=MacroConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    yields: YieldsConfig = field(default_factory=YieldsConfig)
    fx: FXConfig = field(default_factory=FXConfig)
    impact: ImpactConfig = field(default_factory=ImpactConfig)
    intervention: InterventionConfig = field(default_factory=InterventionConfig)
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)
    correlation: CorrelationConfig = field(default_factory=CorrelationConfig)


@dataclass
class SamplerConfig:
    paths: int = 20_000
    seed: int = 20251219
    horizon_months: int = 24
    step: str = "weekly"
    block_size: int = 256
    chunk_paths: int = 16_384
    threads: int = 0
    sample_paths: int = 50
    scheduler: Optional[str] = None
    workers: int = 2


@dataclass
class OutputConfig:
    quantiles: List[float] = field(
        default_factory=lambda: [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99])
    large_unwind_weekly: float = 50.0
    exceedance_thresholds: List[float] = field(default_factory=lambda: [500.0, 1000.0])
    format: str = "netcdf"
    plots: bool = True
    progress: bool = True


@dataclass
class DataConfig:
    """Market data (FRED-layout CSV files) for snapshots from data, calibration and backtests."""

    dir: Optional[str] = None   # null: the local cache filled by `python -m sim.fetch`
    url: str = "https://fred.stlouisfed.org/graph/fredgraph.csv?id={series}"


@dataclass
class RallyEventConfig:
    """A crash event: the largest yen rally within ``horizon`` months above ``threshold`` %."""

    horizon: int = MISSING
    threshold: float = MISSING


@dataclass
class BacktestConfig:
    """Rolling-origin backtest (sim.backtest; docs/model.md, section 17)."""

    name: str = "default"
    start: str = "2003-01-01"   # first origin month
    end: str = "2024-12-31"     # last origin month
    step_months: int = 1        # months between origins (origins: last Friday of the month)
    horizons: List[int] = field(default_factory=lambda: [1, 3, 12])   # months
    window_weeks: int = 520     # weekly history behind the GARCH and bootstrap benchmarks
    block_weeks: int = 8        # mean block length of the stationary bootstrap (weeks)
    rally_events: List[RallyEventConfig] = field(default_factory=lambda: [
        RallyEventConfig(1, 5.0), RallyEventConfig(3, 10.0)])
    pit_bins: int = 10


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    snapshot: SnapshotConfig = field(default_factory=SnapshotConfig)
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    investors: Dict[str, InvestorClassConfig] = field(default_factory=dict)
    model: ModelConfig = field(default_factory=ModelConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


def register_configs() -> None:
    """Register the root schema and one schema per group in Hydra's ConfigStore."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    cs.store(group="snapshot", name="snapshot_schema", node=SnapshotConfig)
    cs.store(group="model", name="model_schema", node=ModelConfig)
    cs.store(group="sampler", name="sampler_schema", node=SamplerConfig)
    cs.store(group="output", name="output_schema", node=OutputConfig)
    cs.store(group="backtest", name="backtest_schema", node=BacktestConfig)
