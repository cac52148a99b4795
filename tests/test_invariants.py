"""Accounting identities, reproducibility and common random numbers."""
import numba
import numpy as np
import pytest

from sim import kernels as K
from sim import layout as L

from tests.helpers import QUIET, run, small


def test_holdings_are_conserved(default_run):
    _, r = default_run
    initial = r["holdings_initial"].values
    unwound = r["unwind_by_investor"].values
    held = r["holdings_end"].values
    np.testing.assert_allclose(held + unwound, initial, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(unwound.sum(axis=1), r["cum_unwind"].values, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(r["repatriation_by_investor"].values.sum(axis=1),
                               r["cum_repatriation"].values, rtol=1e-12, atol=1e-9)


def test_zero_price_impact_gives_amplification_of_exactly_one():
    # The MoF rule's announcement effect moves USD/JPY whatever the price impact: rule off.
    r = run(small(["model.impact.price_impact=0", "model.intervention.enabled=false"], paths=1000))
    assert np.all(r["amplification_ratio"].values == 1.0)
    r = run(small(["model.impact.private_flows=false", "model.intervention.enabled=false"],
                  paths=1000))
    assert np.all(r["amplification_ratio"].values == 1.0)


def test_feedback_amplifies_with_price_impact(default_run):
    _, r = default_run
    assert np.median(r["amplification_ratio"].values) > 1.0
    # Near a bifurcation a sub-step's solve may exhaust its iterations; that must stay rare.
    path_steps = r.sizes["path"] * (r.sizes["time"] - 1)
    assert r["nonconverged_steps"].values.sum() <= 1e-4 * path_steps


def test_solver_finds_the_equilibrium_the_iteration_reaches():
    """Three equilibria: the solver must stop at the first one on the way from the start."""
    # A toy step with one threshold class whose flows depend on the level; residual roots
    # are located by scanning, then compared with the solver's answer.
    from sim.compose import load_config
    from sim.inputs import build_inputs, path_parameters
    cfg = load_config(["calibration=none",
                       "investors.retail.enabled=false", "investors.life_insurers.enabled=false",
                       "investors.gpif.enabled=false", "investors.banks.enabled=false",
                       "investors.investment_trusts.enabled=false"])
    inputs = build_inputs(cfg)
    _, cpp = path_parameters(inputs, 0, 1)
    holders = np.zeros(1, L.HOLDER)
    holders["holdings"] = cpp[0]["holdings"]
    x0 = np.log(157.78)
    holders["basis"] = x0
    holders["phi0"] = 0.01
    holders["z0"] = -2.3263478740408408  # the standard normal quantile of 0.01
    # Mean threshold placed so that 1% of potential holders lie below the snapshot signal
    # (carry-to-risk at 8% vol); the class's whole yen buying reaches the spot market.
    classes = inputs.model.classes.copy()
    classes["spot_footprint"] = 1.0
    classes["threshold_width"] = 0.08
    holders["mu"] = -(3.625 - 0.75) / 8.0 + 2.3263478740408408 * 0.08
    speeds = np.zeros(1, L.CLASS_STEP)
    # An instant adjustment reads the level at the step's end (timing 1), where the realised
    # variance is the market's own.
    speeds["speed"] = 1.0
    speeds["timing"] = 1.0
    speeds["since_at"] = 5 / 261
    speeds["ewma_at"] = 0.95
    inv = K.Investors(classes, speeds, cpp[0], holders)
    rates = K.Rates(boj=0.75, fed=3.625, jgb=1.91, ust=3.72)
    several = 0
    for shock in np.linspace(-0.08, 0.0, 33):
        market = K.Market(x_off=x0 + shock, impact=0.002, limit=30.0, x=x0, var=0.0064,
                          dt=5 / 261, weeks=1.0, ewma=0.95, logfx0=x0, rates=rates, x_start=x0)
        level, ok, _, _, _ = K.solve_step(market, inv, 1000, 1e-10)
        assert ok
        grid = np.linspace(x0 + shock - 0.6, x0 + shock, 6001)[::-1]  # downwards from the start
        res = np.array([K._residual(g, market, inv, False)[0] for g in grid])
        first = grid[np.argmax(np.sign(res) != np.sign(res[0]))] if np.any(np.sign(res) != np.sign(res[0])) else grid[0]
        several += np.sum(np.diff(np.sign(res)) != 0) >= 3
        assert abs(level - first) <= 1e-4 + 1e-9, (shock, level, first)
    assert several >= 2  # the test does meet shocks with several equilibria


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two numba threads")
def test_identical_for_thread_counts_and_chunk_sizes():
    base = ["sampler.block_size=64"]
    a = run(small([*base, "sampler.threads=1", "sampler.chunk_paths=128"], paths=700))
    b = run(small([*base, "sampler.threads=2", "sampler.chunk_paths=512"], paths=700))
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_shock_sequence_is_the_same_whatever_random_branches_are_taken():
    """Crashes, interventions and stress switch on in different steps in these variants; the
    Japanese inflation gap, driven by the first factor only, must not notice."""
    base = ["model.policy.decisions=true"]
    a = run(small([*base, "model.fx.crash_intensity=0.3"], paths=600))
    b = run(small([*base, "model.fx.crash_intensity=3.0", "model.intervention.level=150",
                   "investors.leveraged.holdings=400", "model.fx.calm_to_stress=2"], paths=600))
    assert not np.array_equal(a["crashes"].values, b["crashes"].values)
    np.testing.assert_array_equal(a["jp_inflation_gap"].values, b["jp_inflation_gap"].values)


def test_shocks_do_not_depend_on_parameters_or_investor_classes():
    """Common random numbers: without price impact, market paths ignore investors entirely."""
    a = run(small(QUIET, paths=500))
    b = run(small([*QUIET, "investors.leveraged.enabled=false", "investors.banks.holdings=10",
                   "model.macro.jp_inflation.vol=0.9"], paths=500))
    for name in ("jp_activity_gap", "us_inflation_gap", "us_activity_gap", "jgb10", "ust10",
                 "usdjpy"):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    # The changed volatility scales the same shocks: deviations from the mean path are 1.5x.
    jpi_a, jpi_b = a["jp_inflation_gap"].values[:, 1:], b["jp_inflation_gap"].values[:, 1:]
    dev_a = jpi_a - jpi_a.mean(axis=0)
    dev_b = jpi_b - jpi_b.mean(axis=0)
    np.testing.assert_allclose(dev_b, 1.5 * dev_a, rtol=1e-9, atol=1e-12)


def test_evaluation_timing_is_the_centre_of_the_adjustment_weights():
    """A class's exit share after a step weighs the level at time s of the step by
    e^(s / tau) (dq/dt = (target - q) / tau): the point where it reads the level is the centre
    of mass of those weights, 1/2 for a slow class and towards the step's end for a fast one."""
    from sim.inputs import evaluation_timing

    for a in (1e-6, 1e-3, 0.2, 1.0, 5.0, 40.0):
        s = np.linspace(0.0, 1.0, 200_001)
        w = np.exp(a * s)
        centre = np.sum(s * w) / np.sum(w)   # a fine uniform grid
        assert float(evaluation_timing(a)) == pytest.approx(centre, abs=1e-5), a
    assert float(evaluation_timing(1.0)) == pytest.approx(np.e / (np.e - 1.0) - 1.0, rel=1e-12)
    assert float(evaluation_timing(0.0)) == 0.5


def _solve_on(residual, x_off, monkeypatch, max_iter=1000, tol=1e-9):
    """The kernel's solver (its Python source) on a synthetic residual h(g) = x_off - B(g) - g."""
    import types

    def res(g, market, inv, again):
        h, dh = residual(g)
        return h, 0.0, 0.0, dh

    monkeypatch.setattr(K, "_residual", res)
    g, ok, _, _, n = K.solve_step.py_func(types.SimpleNamespace(x_off=x_off), None, max_iter, tol)
    return g, ok, n


def test_solver_finishes_near_a_loop_gain_of_one(monkeypatch):
    """h(g) = -a (g - r) with a loop gain of 1 - a = 0.991 (a default-run step had h' = -0.009):
    the plain step shrinks |h| by only 0.9% a step (about 1,000 steps from 1e-5 to 1e-9); the
    short Newton step ends it in a few."""
    a, r = 0.009, 1e-5 / 0.009
    g, ok, n = _solve_on(lambda g: (-a * (g - r), -a), 0.0, monkeypatch)
    assert ok and abs(g - r) * a <= 1e-9 and n < 30, (g, n)


def test_solver_does_not_jump_a_close_pair_of_roots_after_a_crawl(monkeypatch):
    """Roots at about 0.00088, 0.00100 and 0.0678 (a case found by review): after plain steps
    that fail to halve |h|, a full-reach Newton step would jump the close pair; the solver must
    stop at the first root."""
    x_off, k, c = -0.0003058346951326358, 0.9980606021762555, -0.0004381119004102605
    amp, c2, w = -0.00013807203336559532, 0.0009418995602271513, 0.0002449292385084277

    def residual(g):
        e = np.exp(-((g - c2) / w) ** 2)
        b = -k * (g - c) - amp * e
        db = -k + amp * 2 * (g - c2) / w ** 2 * e
        return x_off - b - g, -db - 1.0

    grid = np.linspace(x_off, x_off + 0.1, 200_001)
    h = np.array([residual(x)[0] for x in grid[:4000]])
    first = grid[np.flatnonzero(np.diff(np.sign(h)))[0]]
    g, ok, _ = _solve_on(residual, x_off, monkeypatch)
    assert ok and abs(g - first) < 1e-6, (g, first)
