"""Calibration by simulated method of moments (sim.calibration, sim.calibrate): the transform,
the declared parameter list's checks, common random numbers, the weighting, a fit that
recovers a known parameter from the model's own moments (drawn under another seed) within its
standard error, flow facts plugged in as extra moments, the command end to end, and the
shipped fitted config."""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from sim import calibration as C
from sim.compose import CONFIG_DIR, load_config
from sim.marketdata import MarketData
from sim.validate import ConfigError
from tests.helpers import SHARED_DATA, run, small

REPO = Path(__file__).resolve().parent.parent
Z = 4.0  # tolerance in standard errors
WINDOW = ["model.calibration_window.start=1993-01-01", "model.calibration_window.end=2009-12-31"]


def _config(extra=(), snapshot="data"):
    return load_config([f"data.dir={SHARED_DATA}", *WINDOW, "smm=quick", f"snapshot={snapshot}",
                        *extra], config_name="calibrate")


def _fake_data(names, values, se):
    """DataTargets of given values and SEs (independent replications for the covariance)."""
    rng = np.random.default_rng(0)
    reps = np.array([[values[k] + se[k] * z for k, z in zip(names, row)]
                     for row in rng.standard_normal((400, len(names)))])
    return C.DataTargets(list(names), dict(values), dict(se),
                         {k: values[k] - 2 * se[k] for k in names},
                         {k: values[k] + 2 * se[k] for k in names}, reps, "1993-01-01", "2009-12-31")


def test_logit_transform_round_trips_and_flags_bounds():
    p = C.Parameter("model.fx.crash_intensity", 0.02, 2.0, "fx", 0.3)
    for x in (0.021, 0.3, 1.0, 1.99):
        assert p.from_u(p.to_u(x)) == pytest.approx(x, rel=1e-9)
    assert 0.02 <= p.from_u(-50.0) < p.from_u(0.0) < p.from_u(50.0) <= 2.0
    assert p.at_bound(0.025) == "low" and p.at_bound(1.995) == "high" and p.at_bound(1.0) == ""


@pytest.mark.parametrize("entry, key", [
    ({"key": "model.fx.no_such_key", "low": 0, "high": 1, "block": "fx"}, "smm.parameters[0].key"),
    ({"key": "model.fx.crash_intensity", "low": 0.5, "high": 2, "block": "fx"}, "model.fx.crash_intensity"),
    ({"key": "model.fx.crash_intensity", "low": 0.01, "high": 2, "block": "bank"}, "smm.parameters[0].block"),
    ({"key": "model.fx.crash_intensity", "low": 2, "high": 1, "block": "fx"}, "smm.parameters[0].low/high"),
    ({"key": "model.fx.crash_intensity", "low": -5, "high": 2, "block": "fx"}, "smm.parameters[0].low/high"),
])
def test_bad_parameter_entries_are_refused(entry, key):
    from sim.config import SMMParameterConfig

    cfg = _config()
    cfg.smm.parameters = [SMMParameterConfig(**entry)]
    with pytest.raises(ConfigError) as err:
        C.parameters_of(cfg)
    assert err.value.key == key


def test_a_key_twice_is_refused():
    cfg = _config()
    cfg.smm.parameters = [cfg.smm.parameters[0], cfg.smm.parameters[0]]
    with pytest.raises(ConfigError, match="not already in the list"):
        C.parameters_of(cfg)


@pytest.fixture(scope="module")
def small_smm():
    """An SMM over three origins, 60 paths each, fitting the long-run volatility."""
    cfg = _config(["smm.paths=60", "smm.mc_groups=3"])
    md = MarketData(cfg.data.dir)
    param = C.Parameter("model.fx.long_run_vol", 4.0, 14.0, "fx", 8.0)
    days = np.array(["1995-01-27", "2001-01-26", "2007-01-26"], dtype="datetime64[D]")
    names = ["fx_vol", "rally_1m_q50", "rally_3m_q50"]
    data = _fake_data(names, {k: 1.0 for k in names}, {k: 1.0 for k in names})
    return cfg, md, param, days, data


def _smm(small_smm, data=None, facts=(), seed=None):
    cfg, md, param, days, data0 = small_smm
    if seed is not None:
        cfg = load_config([f"data.dir={SHARED_DATA}", *WINDOW, "smm=quick", "snapshot=data",
                           "smm.paths=60", "smm.mc_groups=3", f"sampler.seed={seed}"],
                          config_name="calibrate")
    cases = C.Cases(cfg)
    return C.SMM(cfg, cases, md, (param,), data or data0, facts=list(facts), days=days)


def test_common_random_numbers_give_the_same_moments_every_time(small_smm):
    a = _smm(small_smm).evaluate({"model.fx.long_run_vol": 9.0})
    b = _smm(small_smm).evaluate({"model.fx.long_run_vol": 9.0})   # a new object: no cache
    assert a.model == b.model
    c = _smm(small_smm).evaluate({"model.fx.long_run_vol": 9.5})
    assert c.model["fx_vol"][0] > a.model["fx_vol"][0]        # paired: more vol in, more out


def test_the_moments_match_the_moments_command(small_smm):
    """The objective's model moments are sim.moments.model_moments' (one code path)."""
    from sim import moments as M

    cfg, md, param, days, _ = small_smm
    smm = _smm(small_smm)
    ev = smm.evaluate({})
    run_cfg = C.with_values(smm.cfg, {param.key: param.start})
    values, groups, _ = M.model_moments(run_cfg, md, days=days, groups=3)
    assert ev.model["fx_vol"][0] == values["fx_vol"]
    assert ev.model["boj_moves"][0] == values["boj_moves"]


def test_sample_series_route_equals_the_dataset_route():
    from sim import moments as M
    from sim.pipeline import simulate

    cfg = small(["sampler.sample_paths=30"], paths=30, months=24)
    ds, _ = simulate(cfg, progress=False)
    a, b = M.path_parts(ds, 3), M.path_parts(M.sample_series(cfg), 3)
    for pa, pb in zip(a, b):
        for key in pa:
            np.testing.assert_array_equal(pa[key], pb[key])


def test_j_is_the_sum_of_squared_weighted_residuals_and_full_equals_diagonal_when_independent(small_smm):
    smm = _smm(small_smm)
    ev = smm.evaluate({})
    smm.set_weights(ev)
    names = smm.data.names
    t = [(ev.model[n][0] - 1.0) / math.hypot(1.0, ev.model[n][1]) for n in names]
    assert smm.j_value(ev) == pytest.approx(sum(x * x for x in t), rel=1e-12)
    diagonal = smm.j_value(ev)
    smm.cfg.smm.weights = "full"
    smm.set_weights(ev)
    # the fake data's replications are independent with unit variance: nearly the same J
    assert smm.j_value(ev) == pytest.approx(diagonal, rel=0.25)


def test_fit_recovers_a_known_parameter_within_its_standard_error(small_smm):
    """'Data' = the model's own moments at long_run_vol = 9.5 under another seed, SE = their Monte
    Carlo SE; the fit from 7.0 under the fit's seed lands within Z sandwich SEs of 9.5."""
    truth = 9.5
    other = _smm(small_smm, seed=777).evaluate({"model.fx.long_run_vol": truth})
    names = small_smm[4].names
    data = _fake_data(names, {n: other.model[n][0] for n in names},
                      {n: other.model[n][1] for n in names})
    smm = _smm(small_smm, data=data)
    smm.parameters = (C.Parameter("model.fx.long_run_vol", 4.0, 14.0, "fx", 7.0),)
    smm.current = {"model.fx.long_run_vol": 7.0}
    smm.cfg.smm.block_evaluations = 25
    smm.cfg.smm.polish_evaluations = 0
    stages = smm.fit()
    got = smm.current["model.fx.long_run_vol"]
    se = C.parameter_se(smm, smm.current)["model.fx.long_run_vol"]
    assert stages[0].j_after < stages[0].j_before
    assert np.isfinite(se) and se > 0
    assert abs(got - truth) < Z * se, (got, se)


def test_a_flow_fact_plugs_in_as_an_extra_moment(small_smm):
    """A fact (name, function, value, SE, source) enters J and the flows block fits it."""
    fact = C.FlowFact("toy", "twice the impact", "%", 0.5, 0.01, "test",
                      lambda cases: (2.0 * cases.base.model.impact.price_impact, 0.0))
    cfg, md, _, days, data = small_smm
    smm = C.SMM(cfg, C.Cases(cfg), md,
                (C.Parameter("model.impact.price_impact", 0.01, 0.5, "flows", 0.1),), data,
                facts=[fact], days=days)
    assert smm.target_names[-1] == "toy" and smm.block_targets("flows") == ["toy"]
    smm.cfg.smm.blocks = ["flows"]
    smm.cfg.smm.polish_evaluations = 0
    smm.cfg.smm.block_evaluations = 30
    smm.set_weights(smm.evaluate({}))
    stage = smm.solve("flows", smm.parameters, ["toy"], 30)
    assert smm.current["model.impact.price_impact"] == pytest.approx(0.25, abs=0.002)
    assert stage.j_after < 1e-2


def test_a_trial_the_model_cannot_simulate_is_far_from_every_target(small_smm):
    """Parameters too extreme for the model (a non-finite state: SimulationError) do not stop
    the fit: the trial's residuals are FAILED_RESIDUAL, so the optimiser steps back from it; at
    the start they stop it with the engine's message."""
    from sim.engine import SimulationError

    def measure(cases):
        k = cases.base.model.impact.price_impact
        if k > 0.3:
            raise SimulationError("non-finite model state (toy)")
        return 2.0 * k, 0.0

    fact = C.FlowFact("toy", "twice the impact below 0.3", "%", 0.5, 0.01, "test", measure)
    cfg, md, _, days, data = small_smm
    smm = C.SMM(cfg, C.Cases(cfg), md,
                (C.Parameter("model.impact.price_impact", 0.01, 0.5, "flows", 0.1),), data,
                facts=[fact], days=days)
    smm.set_weights(smm.evaluate({}))
    bad = smm.evaluate({"model.impact.price_impact": 0.4}, ["toy"])
    assert bad.failed and smm.j_value(bad, ["toy"]) == C.FAILED_RESIDUAL ** 2
    # the failure is cached for every target: a later call asking for more is not a success
    again = smm.evaluate({"model.impact.price_impact": 0.4})
    assert again.failed and smm.j_value(again) == len(smm.target_names) * C.FAILED_RESIDUAL ** 2
    stage = smm.solve("flows", smm.parameters, ["toy"], 30)
    assert smm.current["model.impact.price_impact"] == pytest.approx(0.25, abs=0.002)
    assert stage.j_after < 1e-2
    smm.current = {"model.impact.price_impact": 0.4}
    smm.cache.clear()
    smm.cfg.smm.blocks, smm.cfg.smm.polish_evaluations = ["flows"], 0
    with pytest.raises(SimulationError, match="starting values"):
        smm.fit()


def test_a_published_range_is_a_target_with_a_quarter_width_se():
    assert C.from_range(3.0, 5.0) == (4.0, 0.5)
    fact = next(f for f in C.FLOW_FACTS if f.name == "july_2024_leveraged_unwound")
    assert (fact.value, fact.se) == pytest.approx((0.7, 0.1))


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs the shared FRED files")
@pytest.mark.parametrize("name, from_data", [("intervention_impact", "_intervention_data"),
                                              ("july_2024_usdjpy_fall", "_july_2024_data")])
def test_a_fact_from_the_data_is_resolved_against_the_data(name, from_data):
    fact = next(f for f in C.FLOW_FACTS if f.name == name)
    assert math.isnan(fact.value)
    got = fact.resolved(MarketData(SHARED_DATA))
    assert (got.value, got.se) == getattr(C, from_data)(MarketData(SHARED_DATA))
    assert 0.0 < got.se < got.value


def test_capital_economics_is_a_check_against_the_baseline_on_the_same_shocks():
    names = {c.name for c in C.CHECKS}
    assert {"ce_unwind", "ce_repatriation"} <= names
    assert not names & {f.name for f in C.FLOW_FACTS}          # never fitted
    from sim import flowfacts

    same = flowfacts.paired(["calibration=none"], ["calibration=none"], "cum_unwind", paths=200)
    assert same == (0.0, 0.0)                                   # paired: identical shocks


def test_recorded_values_stay_strictly_inside_their_bounds():
    """Four significant digits, more where rounding would land on a bound (a warm start with
    calibration=fitted must be possible from what was recorded), a millionth of the range in
    from a value the optimiser's logit saturated on."""
    ps = [C.Parameter("a", 1.0, 4.0, "fx"), C.Parameter("b", 0.0, 3.0, "fx"),
          C.Parameter("c", 0.02, 2.0, "fx")]
    got = C.round_values({"a": 1.0000042, "b": 1.23456789, "c": 0.02}, ps)
    assert got == {"a": 1.000004, "b": 1.235, "c": pytest.approx(0.02 + 1.98e-6)}
    for p in ps:
        assert p.low < got[p.key] < p.high


def test_first_meeting_check_counts_the_paths_that_move_there():
    """The January-2026 checks: a hike scripted at the BoJ's first meeting moves every path, a
    hard spacing cap (boj_pause's penalty) none; the Fed's share is a probability with its SE."""
    def share(bank, extra):
        cases = C.Cases(small(extra, paths=400, months=3))
        return C.first_meeting_move(bank)(cases)

    scripted = ["scenario.events=[{date: '2026-01-23', kind: boj_decision, value: 0.25}]"]
    assert share("boj", scripted) == (1.0, 0.0)
    assert share("boj", ["model.policy.boj.spacing_penalty=10"]) == (0.0, 0.0)
    value, se = share("fed", [])
    assert 0.0 <= value <= 1.0 and se == pytest.approx(math.sqrt(value * (1 - value) / 399), rel=1e-6)
    names = {c.name for c in C.CHECKS}
    assert {"boj_first_meeting", "fed_first_meeting"} <= names
    # a calendar with no meeting inside the run has nothing to report
    late = small(["snapshot.boj_meetings=['2025-10-30']"], paths=400, months=3)
    value, se = C.first_meeting_move("boj")(C.Cases(late))
    assert math.isnan(value) and math.isnan(se)
    row, = C.check_rows(C.Cases(late), [c for c in C.CHECKS if c.name == "boj_first_meeting"])
    assert row["consistent"] is None          # reported as n/a, not as a failed check


def test_quick_calibration_end_to_end(tmp_path):
    """The command with the quick preset: report, tables and a fitted config that composes."""
    target = tmp_path / "fitted.yaml"
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "sim.calibrate", "smm=quick", f"data.dir={SHARED_DATA}", *WINDOW,
         "smm.block_evaluations=3", f"smm.write={target}", f"hydra.run.dir={out}"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for name in ("calibration.md", "calibration.csv", "parameters.csv", "checks.csv", "fitted.yaml"):
        assert (out / name).is_file(), name
    text = (out / "calibration.md").read_text()
    for item in ("**J = ", "| Weekly USD/JPY log change: annualised volatility |",
                 "Capital Economics", "at least 1,200", "Parameters at a bound"):
        assert item in text
    body = target.read_text()
    assert body.startswith("# @package _global_") and "J = " in body and "1993-01-01" in body
    tree = yaml.safe_load(body)
    assert set(tree["model"]["fx"]) == {"crash_intensity", "crash_mean_size"}
    assert "Fitted values: smm.write" in proc.stdout


@pytest.mark.parametrize("args, key", [
    (["smm.weights=cholesky"], "smm.weights"),
    (["smm.write=fitted.txt"], "smm.write"),
    (["smm.paths=5"], "smm.paths"),
    (["smm.blocks=[fx,banks]"], "smm.blocks"),
    (["model.calibration_window.end=1994-06-30"], "model.calibration_window.end"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, args, key):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "sim.calibrate", "smm=quick",
                           f"data.dir={SHARED_DATA}", *WINDOW, *args, f"hydra.run.dir={out}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {key}"), err
    assert not out.exists()


def test_default_config_uses_the_fitted_values():
    text = (CONFIG_DIR / "calibration" / "fitted.yaml").read_text()
    fitted = yaml.safe_load(text) or {}
    cfg, judgement = small(), small(["calibration=none"])
    flat = {}

    def walk(node, prefix):
        for k, v in node.items():
            if isinstance(v, dict) and not k.endswith("_prior"):
                walk(v, f"{prefix}{k}.")
            elif not k.endswith("_prior"):
                flat[f"{prefix}{k}"] = v

    walk(fitted, "")
    for key, value in flat.items():
        node, leaf = C._parent(cfg, key)
        assert getattr(node, leaf) == pytest.approx(value) if not isinstance(value, str) \
            else getattr(node, leaf) == value
    if flat:   # a fit: its header names the method, the window and J
        assert "Simulated method of moments" in text and "J = " in text


def test_hedge_channel_buys_holdings_times_the_change_of_hedge_ratio():
    """Insurers that only hedge, from 45% to 60%, buy 0.15 x holdings of yen and sell nothing."""
    others = ["leveraged", "retail", "gpif", "banks", "investment_trusts"]
    cfg = small([*[f"investors.{c}.enabled=false" for c in others],
                 "investors.life_insurers.hedge_share=1.0", "investors.life_insurers.hedge_ratio=0.45",
                 "investors.life_insurers.max_hedge_ratio=0.6",
                 "investors.life_insurers.adjustment_weeks=1",
                 "+scenario.events=[{date: '2026-01-09', kind: jgb_term_premium, value: 5.0}]"],
                paths=500, months=12)
    r = run(cfg)
    holdings = cfg.investors["life_insurers"].holdings
    bought = r["hedge_yen_buying"].values
    assert np.all(bought <= 0.15 * holdings * (1 + 1e-12))
    assert bought.mean() == pytest.approx(0.15 * holdings, rel=1e-3)
    np.testing.assert_allclose(r["cum_unwind"].values, 0.0, atol=1e-9)


def test_carry_returns_and_skewness_on_a_known_sample():
    """Windows sum the carry and the FX log change; skewness and its SE match an analytic case."""
    n_paths, n_steps = 400, 104
    series = {"fed_rate": np.full((n_paths, n_steps + 1), 4.0),
              "boj_rate": np.full((n_paths, n_steps + 1), 1.0)}
    rng = np.random.default_rng(3)
    logfx = np.cumsum(np.concatenate([np.zeros((n_paths, 1)),
                                      rng.exponential(0.01, (n_paths, n_steps))], axis=1), axis=1)
    series["usdjpy"] = np.exp(-logfx)  # yen rallies only: negative skew
    dt = np.full(n_steps, 7 / 365.25)
    r = C.carry_returns(series, dt)
    assert r.shape == (n_paths, 8)
    expected_first = 0.03 * dt[:13].sum() - logfx[:, 13]
    np.testing.assert_allclose(r[:, 0], expected_first, rtol=1e-12)
    skew, se = C.skewness_se(r)
    # A sum of 13 exponentials is Gamma(13): skewness 2 / sqrt(13), here with a minus sign.
    assert abs(skew - (-2 / np.sqrt(13))) < Z * se


def test_value_overrides_compose_the_same_config_as_with_values():
    """Functions that compose their own runs (sim.flowfacts) see the trial values, priors moved."""
    from sim.config import PriorConfig

    base = small(["calibration=none"])
    values = {"model.impact.price_impact": 0.07, "model.fx.crash_intensity": 0.5}
    composed = small(["calibration=none", *C.value_overrides(base, values)])
    moved = C.with_values(base, values)
    for key in values:
        assert C.get_value(composed, key) == C.get_value(moved, key)
    life = base.investors["life_insurers"]
    life.repatriation_prior = PriorConfig(dist="uniform", low=0.6, high=1.0)
    life.repatriation_share = 0.8
    over = C.value_overrides(base, {"investors.life_insurers.repatriation_share": 0.5})
    parsed = dict(o.split("=", 1) for o in over)
    assert float(parsed["investors.life_insurers.repatriation_share"]) == 0.5
    assert float(parsed["investors.life_insurers.repatriation_prior.low"]) == pytest.approx(0.3)
    assert float(parsed["investors.life_insurers.repatriation_prior.high"]) == pytest.approx(0.7)
