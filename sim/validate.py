"""Semantic checks of a typed config, beyond what the Hydra schemas can express.

Each failure raises :class:`ConfigError` naming the key, the value and what is allowed; the
command line prints that single line and exits with status 2.
"""
from __future__ import annotations

import numpy as np

from sim.calendar import parse_date
from sim.config import (EVENT_KINDS, FACTORS, FORMATS, OBSERVABLES, PRIOR_KINDS, SIGNALS, STEPS, Config,
                        PriorConfig)


class ConfigError(ValueError):
    """A user's mistake in a config: which key, which value, what is allowed."""

    def __init__(self, key: str, value, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r}: {allowed}")


def _check(cond: bool, key: str, value, allowed: str) -> None:
    if not cond:
        raise ConfigError(key, value, allowed)


def _nonneg(key: str, value: float) -> None:
    _check(np.isfinite(value) and value >= 0, key, value, "must be a finite number >= 0")


def _positive(key: str, value: float) -> None:
    _check(np.isfinite(value) and value > 0, key, value, "must be a finite number > 0")


def _unit(key: str, value: float) -> None:
    _check(np.isfinite(value) and 0 <= value <= 1, key, value, "must lie in [0, 1]")


def check_prior(key: str, prior: PriorConfig, central: float, central_key: str) -> None:
    """Check the prior at ``key`` whose central value is ``central`` (config key ``central_key``)."""
    _check(prior.dist in PRIOR_KINDS, f"{key}.dist", prior.dist, f"one of {', '.join(PRIOR_KINDS)}")
    if prior.dist in ("uniform", "triangular"):
        _check(prior.low is not None and prior.high is not None and prior.low < prior.high,
               f"{key}.low/high", (prior.low, prior.high), "low < high, both set")
    if prior.dist == "triangular":
        _check(prior.low <= central <= prior.high, central_key, central,
               f"the central value (mode) of a triangular prior must lie in [{prior.low}, {prior.high}]"
               f" (or set {key}.dist=fixed)")
    if prior.dist in ("normal", "lognormal"):
        _check(prior.sd is not None and prior.sd >= 0, f"{key}.sd", prior.sd, "must be set and >= 0")
    if prior.dist == "lognormal":
        _check(central >= 0, central_key, central, "a lognormal prior needs a central value (median) >= 0")


def as_matrix(key: str, matrix) -> np.ndarray:
    """``matrix`` as a float array, or ConfigError if its entries are not numbers."""
    try:
        return np.asarray(matrix, dtype=float)
    except (TypeError, ValueError):
        n = len(FACTORS)
        raise ConfigError(key, matrix, f"a {n}x{n} matrix of numbers") from None


def check_correlation(key: str, matrix) -> np.ndarray:
    """A valid correlation matrix over FACTORS, or ConfigError."""
    n = len(FACTORS)
    arr = as_matrix(key, matrix)
    _check(arr.shape == (n, n), key, f"shape {arr.shape}",
           f"a {n}x{n} matrix over the factors {', '.join(FACTORS)}")
    _check(bool(np.all(np.isfinite(arr))), key, "non-finite entries", "finite entries")
    _check(np.allclose(arr, arr.T, atol=1e-12), key, "asymmetric matrix", "a symmetric matrix")
    _check(np.allclose(np.diag(arr), 1.0), key, f"diagonal {np.diag(arr).tolist()}", "a unit diagonal")
    _check(bool(np.all(np.abs(arr) <= 1.0)), key, "entries outside [-1, 1]", "entries in [-1, 1]")
    low = float(np.linalg.eigvalsh(arr).min())
    _check(low > -1e-10, key, f"smallest eigenvalue {low:.4g}",
           "a positive semidefinite matrix (set model.correlation.repair=true to use the nearest one)")
    return arr


def validate(cfg: Config) -> None:
    """Raise ConfigError for the first problem found in ``cfg``."""
    s, m = cfg.sampler, cfg.model
    _check(s.paths >= 1, "sampler.paths", s.paths, "an integer >= 1")
    _check(s.horizon_months >= 1, "sampler.horizon_months", s.horizon_months, "an integer >= 1")
    _check(s.step in STEPS, "sampler.step", s.step, f"one of {', '.join(STEPS)}")
    _check(s.block_size >= 1, "sampler.block_size", s.block_size, "an integer >= 1")
    _check(s.chunk_paths >= 1, "sampler.chunk_paths", s.chunk_paths, "an integer >= 1")
    _check(s.threads >= 0, "sampler.threads", s.threads, "an integer >= 0 (0 = all cores)")
    _check(s.sample_paths >= 0, "sampler.sample_paths", s.sample_paths, "an integer >= 0")
    _check(s.seed >= 0, "sampler.seed", s.seed, "an integer >= 0")
    _check(s.workers >= 1, "sampler.workers", s.workers, "an integer >= 1")
    _check(cfg.output.format in FORMATS, "output.format", cfg.output.format,
           f"one of {', '.join(FORMATS)}")

    snap = cfg.snapshot
    for key in ("usdjpy", "fx_vol"):
        _positive(f"snapshot.{key}", getattr(snap, key))
    start = parse_date(snap.date, "snapshot.date")
    for key in ("boj_last_move", "fed_last_move"):
        day = parse_date(getattr(snap, key), f"snapshot.{key}")
        _check(day <= start, f"snapshot.{key}", getattr(snap, key),
               f"a date on or before the snapshot date {snap.date}")
    for key in ("boj_meetings", "fed_meetings"):
        days = [parse_date(d, f"snapshot.{key}[{i}]") for i, d in enumerate(getattr(snap, key))]
        _check(all(a < b for a, b in zip(days, days[1:])), f"snapshot.{key}", list(getattr(snap, key)),
               "dates in increasing order")

    for name, ou in (("jp_inflation", m.macro.jp_inflation), ("jp_activity", m.macro.jp_activity),
                     ("us_inflation", m.macro.us_inflation), ("us_activity", m.macro.us_activity)):
        _nonneg(f"model.macro.{name}.speed", ou.speed)
        _nonneg(f"model.macro.{name}.vol", ou.vol)
    for name in ("jgb_term_premium", "ust_term_premium"):
        ou = getattr(m.yields, name)
        _nonneg(f"model.yields.{name}.speed", ou.speed)
        _nonneg(f"model.yields.{name}.vol", ou.vol)
    _positive("model.yields.expectations_speed", m.yields.expectations_speed)
    _nonneg("model.yields.fiscal_jump_intensity", m.yields.fiscal_jump_intensity)

    for bank in ("boj", "fed"):
        b = getattr(m.policy, bank)
        key = f"model.policy.{bank}"
        check_prior(f"{key}.neutral_prior", b.neutral_prior, b.neutral, f"{key}.neutral")
        _nonneg(f"{key}.decision_noise", b.decision_noise)
        _nonneg(f"{key}.min_spacing_months", b.min_spacing_months)
        _positive(f"{key}.fx_reference", b.fx_reference)
        _check(0 <= b.threshold_25 <= b.threshold_50, f"{key}.threshold_25", b.threshold_25,
               "0 <= threshold_25 <= threshold_50")
        _check(b.max_move in (0.0, 0.25, 0.5), f"{key}.max_move", b.max_move, "0, 0.25 or 0.5")
        _check(round(b.lower_bound * 8) == b.lower_bound * 8, f"{key}.lower_bound", b.lower_bound,
               "a multiple of 0.125 (policy rates live on the 25bp grid or its midpoints)")

    fx = m.fx
    for key in ("calm_vol", "stress_vol", "calm_to_stress", "stress_to_calm", "crash_intensity",
                "crash_mean_size"):
        _nonneg(f"model.fx.{key}", getattr(fx, key))
    _positive("model.fx.stress_trigger", fx.stress_trigger)
    _positive("model.fx.crowding_reference", fx.crowding_reference)
    _positive("model.fx.vol_halflife_weeks", fx.vol_halflife_weeks)
    _nonneg("model.impact.price_impact", m.impact.price_impact)
    check_prior("model.impact.price_impact_prior", m.impact.price_impact_prior,
                m.impact.price_impact, "model.impact.price_impact")
    _unit("model.impact.permanent_share", m.impact.permanent_share)
    _positive("model.impact.linear_limit", m.impact.linear_limit)
    _positive("model.impact.transient_halflife_weeks", m.impact.transient_halflife_weeks)
    _unit("model.intervention.probability", m.intervention.probability)
    _nonneg("model.intervention.size", m.intervention.size)
    _nonneg("model.intervention.min_spacing_weeks", m.intervention.min_spacing_weeks)
    _check(m.feedback.max_iter >= 1, "model.feedback.max_iter", m.feedback.max_iter, "an integer >= 1")
    _positive("model.feedback.tol", m.feedback.tol)

    enabled = [n for n, c in cfg.investors.items() if c.enabled]
    _check(len(enabled) >= 1, "investors", sorted(cfg.investors), "at least one enabled class")
    for name, c in cfg.investors.items():
        key = f"investors.{name}"
        _check(c.signal in SIGNALS, f"{key}.signal", c.signal, f"one of {', '.join(SIGNALS)}")
        _nonneg(f"{key}.holdings", c.holdings)
        check_prior(f"{key}.holdings_prior", c.holdings_prior, c.holdings, f"{key}.holdings")
        for field in ("hedge_ratio", "max_hedge_ratio", "hedge_share", "repatriation_share",
                      "bond_share"):
            _unit(f"{key}.{field}", getattr(c, field))
        check_prior(f"{key}.repatriation_prior", c.repatriation_prior, c.repatriation_share,
                    f"{key}.repatriation_share")
        _check(c.max_hedge_ratio >= c.hedge_ratio or c.hedge_share == 0, f"{key}.max_hedge_ratio",
               c.max_hedge_ratio, f"at least hedge_ratio ({c.hedge_ratio}) when hedge_share > 0")
        _positive(f"{key}.threshold_width", c.threshold_width)
        _nonneg(f"{key}.reentry_gap", c.reentry_gap)
        _positive(f"{key}.adjustment_weeks", c.adjustment_weeks)
        _positive(f"{key}.basis_weeks", c.basis_weeks)
        if c.signal == "allocation_drift":
            _check(0 < c.foreign_weight < 1, f"{key}.foreign_weight", c.foreign_weight, "in (0, 1)")
            _check(0 < c.target_weight < 1, f"{key}.target_weight", c.target_weight, "in (0, 1)")

    for i, ob in enumerate(cfg.scenario.observations):
        key = f"scenario.observations[{i}]"
        _check(ob.variable in OBSERVABLES, f"{key}.variable", ob.variable, f"one of {', '.join(OBSERVABLES)}")
        _check(parse_date(ob.date, f"{key}.date") >= start, f"{key}.date", ob.date,
               f"a date on or after the snapshot date {snap.date}")
        _check(np.isfinite(ob.value), f"{key}.value", ob.value, "a finite number")

    for i, ev in enumerate(cfg.scenario.events):
        key = f"scenario.events[{i}]"
        _check(ev.kind in EVENT_KINDS, f"{key}.kind", ev.kind, f"one of {', '.join(EVENT_KINDS)}")
        _unit(f"{key}.probability", ev.probability)
        if ev.kind.endswith("_decision") or ev.kind.endswith("_probability"):
            _check(round(ev.value * 4) == ev.value * 4, f"{key}.value", ev.value,
                   "a multiple of 0.25 (pp)")
