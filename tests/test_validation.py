"""Bad input: each mistake gets one line naming the key, the value and what is allowed."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.compose import check_overrides, load_config
from sim.engine import SimulationError, run
from sim.validate import ConfigError

REPO = Path(__file__).resolve().parent.parent
ID7 = "[[1,0,0,0,0,0,0],[0,1,0,0,0,0,0],[0,0,1,0,0,0,0],[0,0,0,1,0,0,0],[0,0,0,0,1,0,0],[0,0,0,0,0,1,0],[0,0,0,0,0,0,1]]"


def _corr(i, j, value, sym=True):
    rows = [[1.0 if a == b else 0.0 for b in range(7)] for a in range(7)]
    rows[i][j] = value
    if sym:
        rows[j][i] = value
    return "model.correlation.calm=" + str(rows).replace(" ", "")


#: Mistakes caught by the Hydra schemas before anything runs.
SCHEMA_CASES = [
    ("sampler.paths=abc", "sampler.paths=abc: Value 'abc' of type 'str' could not be converted to Integer"),
    ("sampler.pathz=10", "Key 'pathz' not in 'SamplerConfig'"),
    ("scenario=nope", "Could not find 'scenario/nope' Available options in 'scenario': baseline"),
    ("snapshot=nope", "Could not find 'snapshot/nope'"),
    ("investors.leveraged.holdingz=3", "Key 'holdingz' not in 'InvestorClassConfig'"),
    ("model.fx.calm_vol=high", "model.fx.calm_vol=high: Value 'high' of type 'str' could not be converted to Float"),
    ("model.policy.decisions=maybe", "model.policy.decisions=maybe"),
    ("sampler.paths=[1,2]", "sampler.paths=[1,2]"),
]

#: Mistakes caught by the semantic checks: overrides and the expected one-line message.
SEMANTIC_CASES = [
    (["sampler.paths=0"], "sampler.paths=0: an integer >= 1"),
    (["sampler.horizon_months=0"], "sampler.horizon_months=0: an integer >= 1"),
    (["sampler.step=hourly"], "sampler.step='hourly': one of daily, weekly, monthly"),
    (["sampler.block_size=0"], "sampler.block_size=0: an integer >= 1"),
    (["sampler.seed=-1"], "sampler.seed=-1: an integer >= 0"),
    (["model.fx.calm_vol=-1"], "model.fx.calm_vol=-1.0: must be a finite number >= 0"),
    (["model.macro.jp_inflation.speed=-0.5"], "model.macro.jp_inflation.speed=-0.5: must be a finite number >= 0"),
    (["model.yields.ust_term_premium.vol=-0.1"], "model.yields.ust_term_premium.vol=-0.1: must be a finite number >= 0"),
    (["model.fx.stress_trigger=0"], "model.fx.stress_trigger=0.0: must be a finite number > 0"),
    (["model.intervention.probability=1.2"], "model.intervention.probability=1.2: must lie in [0, 1]"),
    (["model.impact.permanent_share=-0.1"], "model.impact.permanent_share=-0.1: must lie in [0, 1]"),
    (["investors.gpif.repatriation_share=2"], "investors.gpif.repatriation_share=2.0: must lie in [0, 1]"),
    (["investors.banks.holdings=-5"], "investors.banks.holdings=-5.0: must be a finite number >= 0"),
    (["investors.leveraged.signal=momentum"], "investors.leveraged.signal='momentum': one of carry_to_risk"),
    (["investors.leveraged.holdings_prior.dist=beta"], "investors.leveraged.holdings_prior.dist='beta': one of fixed, uniform"),
    (["investors.retail.holdings_prior={dist: uniform, low: 50, high: 10}"], "investors.retail.holdings_prior.low/high=(50.0, 10.0): low < high, both set"),
    (["investors.leveraged.holdings=900"], "investors.leveraged.holdings=900.0: the central value (mode) of a triangular prior must lie in [160.0, 500.0]"),
    (["model.impact.price_impact_prior.sd=null"], "model.impact.price_impact_prior.sd=None: must be set and >= 0"),
    (["investors.life_insurers.threshold_width=0"], "investors.life_insurers.threshold_width=0.0: must be a finite number > 0"),
    (["investors.life_insurers.max_hedge_ratio=0.3"], "investors.life_insurers.max_hedge_ratio=0.3: at least hedge_ratio (0.444)"),
    ([_corr(4, 5, 0.5, sym=False)], "model.correlation.calm='asymmetric matrix': a symmetric matrix"),
    ([_corr(0, 0, 2.0)], "model.correlation.calm='diagonal [2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]': a unit diagonal"),
    ([_corr(1, 2, 1.5)], "model.correlation.calm='entries outside [-1, 1]': entries in [-1, 1]"),
    (["model.correlation.calm=[[1,0],[0,1]]"], "model.correlation.calm='shape (2, 2)': a 7x7 matrix"),
    (["model.correlation.calm=[[1,0.9,0.9,0,0,0,0],[0.9,1,-0.9,0,0,0,0],[0.9,-0.9,1,0,0,0,0],[0,0,0,1,0,0,0],[0,0,0,0,1,0,0],[0,0,0,0,0,1,0],[0,0,0,0,0,0,1]]"],
     "model.correlation.calm='smallest eigenvalue -0.8': a positive semidefinite matrix"),
    (["snapshot.date=2025-13-01"], "snapshot.date='2025-13-01': an ISO date such as 2025-12-19"),
    (["snapshot.boj_last_move=2026-02-01"], "snapshot.boj_last_move='2026-02-01': a date on or before the snapshot date 2025-12-19"),
    (["snapshot.boj_meetings=[2026-03-19,2026-01-23]"], "snapshot.boj_meetings=['2026-03-19', '2026-01-23']: dates in increasing order"),
    (["snapshot.usdjpy=0"], "snapshot.usdjpy=0.0: must be a finite number > 0"),
    (["scenario.events=[{date: '2030-01-01', kind: fx_shock, value: -5}]"], "scenario.events[0].date='2030-01-01': a date after the snapshot (2025-12-19) and no later than the horizon (2027-12-17)"),
    (["scenario.events=[{date: '2025-01-01', kind: fx_shock, value: -5}]"], "scenario.events[0].date='2025-01-01': a date after the snapshot"),
    (["scenario.events=[{date: '2026-03-01', kind: earthquake}]"], "scenario.events[0].kind='earthquake': one of boj_decision"),
    (["scenario.events=[{date: '2026-03-19', kind: boj_decision, value: 0.3}]"], "scenario.events[0].value=0.3: a multiple of 0.25 (pp)"),
    (["scenario.events=[{date: '2026-03-19', kind: boj_probability, value: 0.25, probability: 1.5}]"], "scenario.events[0].probability=1.5: must lie in [0, 1]"),
    (["model.policy.boj.threshold_25=0.9"], "model.policy.boj.threshold_25=0.9: 0 <= threshold_25 <= threshold_50"),
    (["model.policy.boj.max_move=0.3"], "model.policy.boj.max_move=0.3: 0, 0.25 or 0.5"),
    (["model.policy.fed.lower_bound=0.1"], "model.policy.fed.lower_bound=0.1: a multiple of 0.125"),
    ([f"investors.{c}.enabled=false" for c in ("leveraged", "retail", "life_insurers", "gpif", "banks", "investment_trusts")],
     "investors=['banks', 'gpif', 'investment_trusts', 'leveraged', 'life_insurers', 'retail']: at least one enabled class"),
    (["model.feedback.max_iter=0"], "model.feedback.max_iter=0: an integer >= 1"),
    (["investors.gpif.foreign_weight=1.2"], "investors.gpif.foreign_weight=1.2: in (0, 1)"),
]


@pytest.mark.parametrize("override, message", SCHEMA_CASES)
def test_schema_mistakes_are_reported_in_one_line(override, message):
    problem = check_overrides([override])
    assert problem is not None and message in problem
    assert "\n" not in problem and "full_key" not in problem


@pytest.mark.parametrize("overrides, message", SEMANTIC_CASES)
def test_semantic_mistakes_name_key_value_and_allowed(overrides, message):
    cfg = load_config([*overrides, "sampler.paths=50"] if "sampler.paths=0" not in overrides else overrides)
    with pytest.raises(ConfigError) as info:
        run(cfg, progress=False)
    text = str(info.value)
    assert message in text, text
    assert "\n" not in text


def test_a_sweep_value_with_the_wrong_type_stops_the_sweep_before_it_starts():
    assert "could not be converted to Integer" in check_overrides(["-m", "sampler.paths=10,x"])
    assert check_overrides(["-m", "sampler.paths=10,20", "scenario=baseline,risk_off"]) is None


def test_correlation_repair_is_reported():
    bad = "[[1,0.9,0.9,0,0,0,0],[0.9,1,-0.9,0,0,0,0],[0.9,-0.9,1,0,0,0,0],[0,0,0,1,0,0,0],[0,0,0,0,1,0,0],[0,0,0,0,0,1,0],[0,0,0,0,0,0,1]]"
    r = run(load_config([f"model.correlation.calm={bad}", "model.correlation.repair=true",
                         "sampler.paths=50", "sampler.horizon_months=3"]), progress=False)
    assert any("model.correlation.calm repaired" in n for n in r.notes)
    assert any("model.correlation.stress" in n for n in r.notes) is False


NUMERIC = {
    "model.fx.calm_vol": st.floats(-5, 150),
    "model.fx.stress_vol": st.floats(0, 300),
    "model.impact.price_impact": st.floats(-0.1, 3),
    "model.impact.permanent_share": st.floats(-0.2, 1.2),
    "model.impact.linear_limit": st.floats(-1, 500),
    "investors.leveraged.holdings": st.floats(-100, 20000),
    "investors.leveraged.threshold_width": st.floats(-0.05, 2),
    "investors.gpif.threshold_width": st.floats(0.001, 10),
    "model.macro.us_inflation.vol": st.floats(-1, 20),
    "model.fx.crash_intensity": st.floats(-1, 60),
    "model.fx.crash_mean_size": st.floats(0, 40),
    "model.policy.boj.decision_noise": st.floats(-0.5, 5),
    "model.yields.fiscal_jump_intensity": st.floats(0, 30),
    "model.fx.spread_elasticity": st.floats(-50, 50),
    "sampler.paths": st.integers(-5, 120),
}


@pytest.mark.slow
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({}, optional=NUMERIC))
def test_generated_configs_run_cleanly_or_fail_clearly(values):
    overrides = ["sampler.horizon_months=3", "investors.leveraged.holdings_prior.dist=fixed",
                 *[f"{k}={v!r}" for k, v in values.items()]]
    cfg = load_config(overrides)
    try:
        r = run(cfg, progress=False)
    except ConfigError as err:
        assert err.key in values, (err.key, values)  # it names a key that was set wrongly
        assert "\n" not in str(err)
        return
    except SimulationError as err:
        assert "path block" in str(err) and "step" in str(err)
        return
    for name in ("path_out", "cls_out", "time_out", "path_par", "cls_path_par"):
        assert np.all(np.isfinite(getattr(r, name))), name


def _start(out_dir, *args):
    env = {**os.environ, "NUMBA_NUM_THREADS": "2"}
    return subprocess.Popen([sys.executable, "-m", "sim", f"hydra.run.dir={out_dir}", *args],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
def test_a_run_killed_midway_leaves_no_results_and_a_rerun_completes(tmp_path):
    run = tmp_path / "run"
    proc = _start(run, "sampler.paths=150000", "sampler.chunk_paths=8192")
    deadline = time.time() + 120
    # the run writes into a staging folder beside its final one until all its files are done
    while not list(tmp_path.glob(".run.partial-*/.hydra")) and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(3.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no run, no staging, no lock
    again = _start(run, "sampler.paths=500", "output.plots=false")
    again.communicate(timeout=300)
    assert again.returncode == 0
    assert (run / "results.nc").exists()


@pytest.mark.slow
def test_a_sweep_resumes_skipping_finished_runs(tmp_path):
    env = {**os.environ, "NUMBA_NUM_THREADS": "2"}
    cmd = [sys.executable, "-m", "sim", "-m", f"hydra.sweep.dir={tmp_path}", "sampler.paths=200",
           "sampler.horizon_months=3", "output.plots=false", "model.fx.calm_vol=7,9"]
    first = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    files = sorted(tmp_path.glob("*/results.nc"))
    assert len(files) == 2
    stamps = [f.stat().st_mtime_ns for f in files]
    second = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("finished earlier with the same config") == 2
    assert [f.stat().st_mtime_ns for f in files] == stamps
