"""Each stochastic process against its analytic moments, and the shocks' correlations."""
import math

import numpy as np
import pytest

from sim import kernels as K
from sim.config import FACTORS
from sim.engine import run

from tests.helpers import QUIET, small

N = 20_000


@pytest.fixture(scope="module")
def quiet_run():
    cfg = small([*QUIET, "model.fx.spread_elasticity=0"], paths=N, months=12)
    return cfg, run(cfg, progress=False)


def _ou_moments(x0, mean, speed, vol, t):
    decay = math.exp(-speed * t)
    return mean + (x0 - mean) * decay, vol**2 * (1 - decay**2) / (2 * speed)


def _check(sample, mean, var):
    n = len(sample)
    assert abs(sample.mean() - mean) < 4 * math.sqrt(var / n), (sample.mean(), mean)
    assert abs(sample.var(ddof=1) - var) < 4 * var * math.sqrt(2 / (n - 1)), (sample.var(), var)


def _term_premium(cfg, run_, series, bank):
    """Term premium recovered from a 10y yield when the policy rate and neutral rate are fixed."""
    pol = getattr(cfg.model.policy, bank)
    rate = getattr(cfg.snapshot, f"{bank}_rate")
    expf = run_.inputs.gp[K.G_EXP_FACTOR]
    return series - (pol.neutral + (rate - pol.neutral) * expf)


@pytest.mark.parametrize("step", [13, 52])
def test_ou_processes_match_analytic_mean_and_variance(quiet_run, step):
    cfg, r = quiet_run
    t = r.inputs.sched[:step, K.S_DT].sum()
    mac, snap = cfg.model.macro, cfg.snapshot
    cases = [
        (K.V_JPI, snap.jp_inflation - mac.inflation_target_jp, mac.jp_inflation),
        (K.V_JPA, snap.jp_activity_gap, mac.jp_activity),
        (K.V_USI, snap.us_inflation - mac.inflation_target_us, mac.us_inflation),
        (K.V_USA, snap.us_activity_gap, mac.us_activity),
    ]
    for col, x0, ou in cases:
        _check(r.time_out[:, step, col], *_ou_moments(x0, ou.mean, ou.speed, ou.vol, t))
    for col, bank, ou in ((K.V_JGB, "boj", cfg.model.yields.jgb_term_premium),
                          (K.V_UST, "fed", cfg.model.yields.ust_term_premium)):
        tp = _term_premium(cfg, r, r.time_out[:, :, col], bank)
        _check(tp[:, step], *_ou_moments(tp[0, 0], ou.mean, ou.speed, ou.vol, t))


def test_log_usdjpy_is_brownian_without_flows(quiet_run):
    cfg, r = quiet_run
    step = 52
    t = r.inputs.sched[:step, K.S_DT].sum()
    log_fx = np.log(r.time_out[:, step, K.V_USDJPY] / cfg.snapshot.usdjpy)
    _check(log_fx, 0.0, (cfg.model.fx.calm_vol / 100) ** 2 * t)


def test_shock_correlations_match_the_configured_matrix(quiet_run):
    cfg, r = quiet_run
    sched = r.inputs.sched
    series = r.time_out
    shocks = []
    ou_cols = [(K.V_JPI, cfg.model.macro.jp_inflation, 0), (K.V_JPA, cfg.model.macro.jp_activity, 1),
               (K.V_USI, cfg.model.macro.us_inflation, 2), (K.V_USA, cfg.model.macro.us_activity, 3)]
    for col, ou, k in ou_cols:
        x = series[:, :, col]
        shocks.append((x[:, 1:] - ou.mean - (x[:, :-1] - ou.mean) * sched[:, K.S_A0 + k])
                      / sched[:, K.S_S0 + k])
    for col, bank, ou, k in ((K.V_JGB, "boj", cfg.model.yields.jgb_term_premium, 4),
                             (K.V_UST, "fed", cfg.model.yields.ust_term_premium, 5)):
        tp = _term_premium(cfg, r, series[:, :, col], bank)
        shocks.append((tp[:, 1:] - ou.mean - (tp[:, :-1] - ou.mean) * sched[:, K.S_A0 + k])
                      / sched[:, K.S_S0 + k])
    log_fx = np.log(series[:, :, K.V_USDJPY])
    shocks.append(np.diff(log_fx, axis=1) / (cfg.model.fx.calm_vol / 100 * sched[:, K.S_SQDT]))
    z = np.stack([s.ravel() for s in shocks])
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
    r = run(cfg, progress=False)
    sched, series = r.inputs.sched, r.time_out
    assert np.all(series[:, 1:, K.V_STRESS] == 1.0)
    shocks = []
    for k, (col, ou) in enumerate([(K.V_JPI, cfg.model.macro.jp_inflation), (K.V_JPA, cfg.model.macro.jp_activity),
                                   (K.V_USI, cfg.model.macro.us_inflation), (K.V_USA, cfg.model.macro.us_activity)]):
        x = series[:, :, col]
        shocks.append((x[:, 1:] - ou.mean - (x[:, :-1] - ou.mean) * sched[:, K.S_A0 + k]) / sched[:, K.S_S0 + k])
    for k, (col, bank, ou) in zip((4, 5), ((K.V_JGB, "boj", cfg.model.yields.jgb_term_premium),
                                           (K.V_UST, "fed", cfg.model.yields.ust_term_premium))):
        tp = _term_premium(cfg, r, series[:, :, col], bank)
        shocks.append((tp[:, 1:] - ou.mean - (tp[:, :-1] - ou.mean) * sched[:, K.S_A0 + k]) / sched[:, K.S_S0 + k])
    log_fx = np.log(series[:, :, K.V_USDJPY])
    shocks.append(np.diff(log_fx, axis=1) / (cfg.model.fx.stress_vol / 100 * sched[:, K.S_SQDT]))
    z = np.stack([s.ravel() for s in shocks])
    n = z.shape[1]
    target = np.asarray(cfg.model.correlation.stress)
    assert np.all(np.abs(np.corrcoef(z) - target) <= 4 * (1 - target**2) / math.sqrt(n) + 1e-12)
    np.testing.assert_allclose(z.std(axis=1), 1.0, atol=4 * math.sqrt(0.5 / n))


def test_crash_counts_are_binomial_at_constant_intensity():
    lam = 2.0
    cfg = small([*QUIET, "model.fx.crash_crowding=0", f"model.fx.crash_intensity={lam}"],
                paths=8000, months=12)
    r = run(cfg, progress=False)
    p = 1 - np.exp(-lam * r.inputs.sched[:, K.S_DT])
    mean, var = p.sum(), (p * (1 - p)).sum()
    counts = r.path_out[:, K.O_CRASHES]
    n = len(counts)
    assert abs(counts.mean() - mean) < 4 * math.sqrt(var / n)
    assert abs(counts.var(ddof=1) / var - 1) < 4 * math.sqrt(2 / n)
