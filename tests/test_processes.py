"""Each stochastic process against its analytic moments, and the shocks' correlations."""
import math

import numpy as np
import pytest

from sim.config import FACTORS
from sim.inputs import build_inputs

from tests.helpers import QUIET, fx_vols, run, small

N = 20_000
#: Results series of the four macro OU processes, by process name.
MACRO_SERIES = {"jp_inflation": "jp_inflation_gap", "jp_activity": "jp_activity_gap",
                "us_inflation": "us_inflation_gap", "us_activity": "us_activity_gap"}
#: Term premia: process name -> (10y yield series, bank).
TERM_PREMIA = {"jgb_term_premium": ("jgb10", "boj"), "ust_term_premium": ("ust10", "fed")}


@pytest.fixture(scope="module")
def quiet_run():
    cfg = small([*QUIET, "model.fx.spread_elasticity=0"], paths=N, months=12)
    return cfg, run(cfg), build_inputs(cfg)


def _ou_moments(x0, mean, speed, vol, t):
    decay = math.exp(-speed * t)
    return mean + (x0 - mean) * decay, vol**2 * (1 - decay**2) / (2 * speed)


def _check(sample, mean, var):
    n = len(sample)
    assert abs(sample.mean() - mean) < 4 * math.sqrt(var / n), (sample.mean(), mean)
    assert abs(sample.var(ddof=1) - var) < 4 * var * math.sqrt(2 / (n - 1)), (sample.var(), var)


def _term_premium(cfg, inputs, series, bank):
    """Term premium recovered from a 10y yield when the policy rate and neutral rate are fixed."""
    pol = getattr(cfg.model.policy, bank)
    rate = getattr(cfg.snapshot, f"{bank}_rate")
    expf = inputs.model.glob["expectations_factor"][0]
    return series - (pol.neutral + (rate - pol.neutral) * expf)


def _process(cfg, name):
    return getattr(cfg.model.macro if name in MACRO_SERIES else cfg.model.yields, name)


def _standardised_shocks(cfg, r, inputs, fx_vol):
    """fx_vol: the diffusion volatility of each step, 1/sqrt(year)."""
    """The seven factor shocks recovered from the paths (processes in FACTORS order)."""
    steps = inputs.steps
    shocks = []
    for name in FACTORS[:-1]:
        ou = _process(cfg, name)
        if name in MACRO_SERIES:
            x = r[MACRO_SERIES[name]].values
        else:
            series, bank = TERM_PREMIA[name]
            x = _term_premium(cfg, inputs, r[series].values, bank)
        shocks.append((x[:, 1:] - ou.mean - (x[:, :-1] - ou.mean) * steps[f"a_{name}"])
                      / steps[f"s_{name}"])
    log_fx = np.log(r["usdjpy"].values)
    shocks.append(np.diff(log_fx, axis=1) / (fx_vol * steps["sqrt_dt"]))
    return np.stack([s.ravel() for s in shocks])


@pytest.mark.parametrize("step", [13, 52])
def test_ou_processes_match_analytic_mean_and_variance(quiet_run, step):
    cfg, r, inputs = quiet_run
    t = inputs.steps["dt"][:step].sum()
    mac, snap = cfg.model.macro, cfg.snapshot
    initial = {"jp_inflation": snap.jp_inflation - mac.inflation_target_jp,
               "jp_activity": snap.jp_activity_gap,
               "us_inflation": snap.us_inflation - mac.inflation_target_us,
               "us_activity": snap.us_activity_gap}
    for name, series in MACRO_SERIES.items():
        ou = _process(cfg, name)
        _check(r[series].values[:, step], *_ou_moments(initial[name], ou.mean, ou.speed, ou.vol, t))
    for name, (series, bank) in TERM_PREMIA.items():
        ou = _process(cfg, name)
        tp = _term_premium(cfg, inputs, r[series].values, bank)
        # Anchored to the snapshot (the default), the term premium reverts to its start value.
        mean = tp[0, 0] if cfg.model.yields.anchor == "snapshot" else ou.mean
        _check(tp[:, step], *_ou_moments(tp[0, 0], mean, ou.speed, ou.vol, t))


def test_log_usdjpy_is_brownian_without_flows(quiet_run):
    cfg, r, inputs = quiet_run
    step = 52
    t = inputs.steps["dt"][:step].sum()
    log_fx = np.log(r["usdjpy"].values[:, step] / cfg.snapshot.usdjpy)
    _check(log_fx, 0.0, float(np.sum(fx_vols(inputs)[:step] ** 2 * inputs.steps["dt"][:step])))


def test_shock_correlations_match_the_configured_matrix(quiet_run):
    cfg, r, inputs = quiet_run
    z = _standardised_shocks(cfg, r, inputs, fx_vols(inputs))
    n = z.shape[1]
    sample = np.corrcoef(z)
    target = np.asarray(cfg.model.correlation.calm)
    tol = 4 * (1 - target**2) / math.sqrt(n) + 1e-12
    bad = np.argwhere(np.abs(sample - target) > tol)
    assert bad.size == 0, [(FACTORS[i], FACTORS[j], sample[i, j], target[i, j]) for i, j in bad]
    np.testing.assert_allclose(z.std(axis=1), 1.0, atol=4 * math.sqrt(0.5 / n))


def test_stress_regime_uses_the_stress_correlations_and_volatility():
    cfg = small([*QUIET, "model.fx.spread_elasticity=0", "model.fx.stress_to_calm=0",
                 "scenario.events=[{date: '2025-12-22', kind: stress}]"], paths=4000, months=12)
    r = run(cfg)
    assert np.all(r["stress"].values[:, 1:] == 1.0)
    inputs = build_inputs(cfg)
    z = _standardised_shocks(cfg, r, inputs, fx_vols(inputs, cfg.model.fx.stress_vol_multiplier))
    n = z.shape[1]
    target = np.asarray(cfg.model.correlation.stress)
    assert np.all(np.abs(np.corrcoef(z) - target) <= 4 * (1 - target**2) / math.sqrt(n) + 1e-12)
    np.testing.assert_allclose(z.std(axis=1), 1.0, atol=4 * math.sqrt(0.5 / n))


def test_crash_counts_are_binomial_at_constant_intensity():
    lam = 2.0
    cfg = small([*QUIET, "model.fx.crash_crowding=0", f"model.fx.crash_intensity={lam}"],
                paths=8000, months=12)
    r = run(cfg)
    p = 1 - np.exp(-lam * build_inputs(cfg).steps["dt"])
    mean, var = p.sum(), (p * (1 - p)).sum()
    counts = r["crashes"].values
    n = len(counts)
    assert abs(counts.mean() - mean) < 4 * math.sqrt(var / n)
    assert abs(counts.var(ddof=1) / var - 1) < 4 * math.sqrt(2 / n)
