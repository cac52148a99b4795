"""Bad input: each mistake gets one line naming the key, the value and what is allowed."""
import dataclasses
import enum
import math
import os
import signal
import subprocess
import sys
import time
import typing
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.compare import main as compare_main
from sim.compose import check_overrides, load_config
from sim.config import Config
from sim.engine import SimulationError
from sim.pipeline import simulate
from sim.reverse_stress import main as stress_main
from sim.sensitivity import main as sensitivity_main
from sim.sensitivity import one_at_a_time, parse_vary
from sim.validate import ConfigError, check_ranges

from tests.helpers import run

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
ID7 = "[[1,0,0,0,0,0,0],[0,1,0,0,0,0,0],[0,0,1,0,0,0,0],[0,0,0,1,0,0,0],[0,0,0,0,1,0,0],[0,0,0,0,0,1,0],[0,0,0,0,0,0,1]]"


def _corr(i, j, value, sym=True):
    rows = [[1.0 if a == b else 0.0 for b in range(7)] for a in range(7)]
    rows[i][j] = value
    if sym:
        rows[j][i] = value
    return "model.correlation.calm=" + str(rows).replace(" ", "")


#: Every bad input the tests try, by category: (command-line overrides, expected message part).
#: Each is answered by one line naming the key, the value and what is allowed.
CASES = {
    "wrong type or unknown key": [
        ("sampler.paths=abc", "sampler.paths=abc: Value 'abc' of type 'str' could not be converted to Integer"),
        ("sampler.pathz=10", "sampler.pathz=10: Key 'pathz' not in 'SamplerConfig'; its keys are paths, seed"),
        ("scenario=nope", "scenario=nope: Could not find 'scenario/nope' Available options in 'scenario': baseline"),
        ("snapshot=nope", "snapshot=nope: Could not find 'snapshot/nope'"),
        ("investors.leveraged.holdingz=3", "Key 'holdingz' not in 'InvestorClassConfig'"),
        ("model.fx.long_run_vol=high", "model.fx.long_run_vol=high: Value 'high' of type 'str' could not be converted to Float"),
        ("model.policy.decisions=maybe", "model.policy.decisions=maybe: Value 'maybe' is not a valid bool"),
        ("sampler.paths=[1,2]", "sampler.paths=[1,2]: Value '[1, 2]' of type 'list' could not be converted"),
        ("sampler.paths=", "sampler.paths=: Value '' of type 'str' could not be converted to Integer"),
        ("sampler.paths=2.5", "sampler.paths=2.5: Value '2.5' of type 'float' could not be converted to Integer"),
        ("output.quantiles=0.5", "output.quantiles=0.5"),
    ],
    "closed vocabulary (Enum)": [
        ("sampler.step=hourly", "sampler.step=hourly: Invalid value 'hourly', expected one of [daily, weekly, monthly]"),
        ("output.format=csv", "output.format=csv: Invalid value 'csv', expected one of [netcdf, zarr, none]"),
        ("investors.leveraged.signal=momentum", "Invalid value 'momentum', expected one of [carry_to_risk, drawdown"),
        ("investors.leveraged.holdings_prior.dist=beta", "Invalid value 'beta', expected one of [fixed, uniform, triangular"),
        ("model.impact.price_impact_prior.dist=Normal", "Invalid value 'Normal', expected one of [fixed"),
        ("scenario.events=[{date: '2026-03-01', kind: earthquake}]", "Invalid value 'earthquake', expected one of [boj_decision"),
        ("scenario.observations=[{date: '2026-01-09', variable: yen, value: 150.0}]", "Invalid value 'yen', expected one of [boj_rate"),
    ],
    "NaN, infinity or absurd size": [
        *[(f"{key}={value}", f"{key}={shown}: a finite number in")
          for key in ("model.fx.long_run_vol", "snapshot.usdjpy", "investors.banks.holdings", "model.impact.price_impact",
                      "model.yields.jgb_term_premium.vol", "model.policy.boj.neutral", "snapshot.boj_rate",
                      "model.intervention.size")
          for value, shown in (("nan", "nan"), ("inf", "inf"), ("-inf", "-inf"), ("1e308", "1e+308"))],
        ("snapshot.jgb10=250", "snapshot.jgb10=250.0: a finite number in [-5, 30] (% p.a.)"),
        ("investors.gpif.holdings=8230000", "investors.gpif.holdings=8230000.0: a finite number in [0, 20_000] (USD bn)"),
        ("model.fx.crash_intensity=1e6", "model.fx.crash_intensity=1000000.0: a finite number in [0, 365] (1/yr)"),
        ("model.feedback.tol=0", "model.feedback.tol=0.0: a finite number in (0, 1]"),
        ("sampler.paths=0", "sampler.paths=0: an integer in [1, 1_000_000_000]"),
        ("sampler.paths=99999999999", "sampler.paths=99999999999: an integer in [1, 1_000_000_000]"),
        ("sampler.horizon_months=0", "sampler.horizon_months=0: an integer in [1, 120] (months)"),
        ("sampler.horizon_months=100000", "sampler.horizon_months=100000: an integer in [1, 120] (months)"),
        ("sampler.seed=-1", "sampler.seed=-1: an integer in [0, "),
        ("sampler.block_size=0", "sampler.block_size=0: an integer in [1, "),
        ("model.feedback.max_iter=0", "model.feedback.max_iter=0: an integer in [1, 1_000_000]"),
        ("output.large_unwind_weekly=nan", "output.large_unwind_weekly=nan: a finite number in (0, 10_000] (USD bn)"),
        ("output.exceedance_thresholds=[500,inf]", "output.exceedance_thresholds[1]=inf: a finite number in (0, 100_000]"),
    ],
    "quantile, probability or prior outside its domain": [
        ("output.quantiles=[0.5,1.5]", "output.quantiles[1]=1.5: a finite number in (0, 1)"),
        ("output.quantiles=[0,0.5]", "output.quantiles[0]=0.0: a finite number in (0, 1)"),
        ("output.quantiles=[0.5,1]", "output.quantiles[1]=1.0: a finite number in (0, 1)"),
        ("output.quantiles=[0.9,0.1]", "output.quantiles=[0.9, 0.1]: at least one level, in increasing order"),
        ("output.quantiles=[]", "output.quantiles=[]: at least one level"),
        ("model.intervention.probability=1.2", "model.intervention.probability=1.2: a finite number in [0, 1]"),
        ("model.intervention.probability=-0.1", "model.intervention.probability=-0.1: a finite number in [0, 1]"),
        ("scenario.events=[{date: '2026-03-19', kind: boj_probability, value: 0.25, probability: 1.5}]",
         "scenario.events[0].probability=1.5: a finite number in [0, 1]"),
        ("investors.leveraged.repatriation_prior.high=1.5",
         "investors.leveraged.repatriation_prior.high=1.5: inside the range of investors.leveraged.repatriation_share: a finite number in [0, 1]"),
        ("investors.retail.holdings_prior.low=-10", "investors.retail.holdings_prior.low=-10.0: inside the range of investors.retail.holdings"),
        ("model.policy.boj.neutral_prior.high=99", "model.policy.boj.neutral_prior.high=99.0: inside the range of model.policy.boj.neutral"),
        ("investors.retail.holdings_prior={dist: uniform, low: 50, high: 10}", "investors.retail.holdings_prior.low/high=(50.0, 10.0): low < high, both set"),
        ("investors.leveraged.holdings=900", "investors.leveraged.holdings=900.0: the central value (mode) of a triangular prior must lie in [160.0, 500.0]"),
        ("model.impact.price_impact_prior.sd=null", "model.impact.price_impact_prior.sd=None: set, in [0, 3]"),
        ("model.impact.price_impact_prior.sd=50", "model.impact.price_impact_prior.sd=50.0: set, in [0, 3]"),
        ("model.impact.price_impact_prior.sd=-1", "model.impact.price_impact_prior.sd=-1.0: a finite number in [0, "),
        ("investors.banks.holdings_prior={dist: normal, sd: 50000}", "investors.banks.holdings_prior.sd=50000.0: set, >= 0 and at most half the width"),
        ("investors.gpif.repatriation_share=2", "investors.gpif.repatriation_share=2.0: a finite number in [0, 1]"),
        ("model.impact.permanent_share=-0.1", "model.impact.permanent_share=-0.1: a finite number in [0, 1]"),
    ],
    "scripted decision or shock of absurd size": [
        ("scenario.events=[{date: '2026-03-19', kind: boj_decision, value: 500}]",
         "scenario.events[0].value=500.0: a finite number in [-5, 5], a multiple of 0.25 (for kind boj_decision)"),
        ("scenario.events=[{date: '2026-03-19', kind: fed_decision, value: -25}]", "scenario.events[0].value=-25.0: a finite number in [-5, 5]"),
        ("scenario.events=[{date: '2026-03-19', kind: boj_decision, value: 0.3}]", "scenario.events[0].value=0.3: a finite number in [-5, 5], a multiple of 0.25"),
        ("scenario.events=[{date: '2026-03-19', kind: fed_probability, value: nan}]", "scenario.events[0].value=nan"),
        ("scenario.events=[{date: '2026-02-02', kind: fx_shock, value: -100}]", "scenario.events[0].value=-100.0: a finite number in [-50, 100] (for kind fx_shock)"),
        ("scenario.events=[{date: '2026-02-02', kind: fx_shock, value: 1e308}]", "scenario.events[0].value=1e+308: a finite number in [-50, 100]"),
        ("scenario.events=[{date: '2026-02-02', kind: intervention, value: 35000}]", "scenario.events[0].value=35000.0: a finite number in [-500, 500] (for kind intervention)"),
        ("scenario.events=[{date: '2026-02-02', kind: jgb_term_premium, value: 50}]", "scenario.events[0].value=50.0: a finite number in [-5, 5]"),
        ("scenario.events=[{date: '2026-02-02', kind: us_activity, value: -200}]", "scenario.events[0].value=-200.0: a finite number in [-10, 10]"),
        ("scenario.events=[{date: '2026-02-02', kind: stress, value: inf}]", "scenario.events[0].value=inf: a finite number"),
        ("scenario.observations=[{date: '2026-01-09', variable: usdjpy, value: 1e308}]", "scenario.observations[0].value=1e+308: a finite number in [10, 1000] (for variable usdjpy)"),
        ("scenario.observations=[{date: '2026-01-09', variable: boj_rate, value: nan}]", "scenario.observations[0].value=nan"),
    ],
    "date outside the horizon or out of order": [
        ("scenario.events=[{date: '2030-01-01', kind: fx_shock, value: -5}]",
         "scenario.events[0].date='2030-01-01': a date after the snapshot (2025-12-19) and no later than the horizon (2027-12-17)"),
        ("scenario.events=[{date: '2025-01-01', kind: fx_shock, value: -5}]", "scenario.events[0].date='2025-01-01': a date after the snapshot"),
        ("scenario.events=[{date: '2025-12-19', kind: fx_shock, value: -5}]", "scenario.events[0].date='2025-12-19': a date after the snapshot"),
        ("scenario.events=[{date: '2026-02-30', kind: fx_shock, value: -5}]", "scenario.events[0].date='2026-02-30': an ISO date"),
        ("scenario.observations=[{date: '2030-01-09', variable: usdjpy, value: 150}]",
         "scenario.observations[0].date='2030-01-09': a date on or after the snapshot (2025-12-19) and no later than the horizon"),
        ("scenario.observations=[{date: '2024-01-09', variable: usdjpy, value: 150}]", "scenario.observations[0].date='2024-01-09': a date on or after the snapshot"),
        ("scenario.observations=[{date: 'tomorrow', variable: usdjpy, value: 150}]", "scenario.observations[0].date='tomorrow': an ISO date"),
        ("snapshot.date=2025-13-01", "snapshot.date='2025-13-01': an ISO date such as 2025-12-19"),
        ("model.calibration_window.start=notadate", "model.calibration_window.start='notadate': an ISO date such as 2025-12-19"),
        ("model.calibration_window.start=2026-01-01", "model.calibration_window.end='2009-12-31': a date on or after model.calibration_window.start (2026-01-01)"),
        ("backtest.start=2003-02-30", "backtest.start='2003-02-30': an ISO date such as 2025-12-19"),
        ("snapshot.boj_meetings=[2026-01-23,x]", "snapshot.boj_meetings[1]='x': an ISO date such as 2025-12-19"),
        ("snapshot.boj_last_move=2026-02-01", "snapshot.boj_last_move='2026-02-01': a date on or before the snapshot date 2025-12-19"),
        ("snapshot.boj_meetings=[2026-03-19,2026-01-23]", "snapshot.boj_meetings=['2026-03-19', '2026-01-23']: dates in increasing order"),
    ],
    "key appended with + to a typed group": [
        ("+sampler.pathz=10", "sampler.pathz=10: not a key of sampler; its keys are paths, seed"),
        ("+model.fx.long_run_voll=3", "model.fx.long_run_voll=3: not a key of model.fx; its keys are spread_elasticity"),
        ("+investors.leveraged.holding=3", "investors.leveraged.holding=3: not a key of investors.leveraged"),
        ("+snapshot.usdjpyy=150", "snapshot.usdjpyy=150: not a key of snapshot"),
        ("+output.plot=false", "output.plot=False: not a key of output"),
        ("+colour=blue", "colour='blue': not a key of the config; its keys are snapshot, scenario"),
    ],
    "group overridden with a list": [
        ("scenario=[baseline,risk_off]", "scenario='[baseline,risk_off]': one option of the group (baseline, boj_pause"),
        ("sampler=[default]", "sampler='[default]': one option of the group (default)"),
        ("snapshot=[seed_2025_12,market_2025_12]", "snapshot='[seed_2025_12,market_2025_12]': one option of the group"),
        ("calibration=[]", "calibration='[]': one option of the group (fitted, none)"),
    ],
    "Hydra syntax": [
        ("sampler.paths=10,20", "sampler.paths='10,20': one value; to sweep over several add -m (python -m sim -m sampler.paths=10,20)"),
        ("scenario=baseline,risk_off", "scenario='baseline,risk_off': one value; to sweep over several add -m"),
        ("hydra/launcher=nope", "hydra/launcher=nope: Could not find 'hydra/launcher/nope' Available options in 'hydra/launcher': basic joblib"),
        ("hydra/sweeper=nope", "hydra/sweeper=nope: Could not find 'hydra/sweeper/nope'"),
        ("sampler.paths=10,", "sampler.paths=10,: not valid override syntax"),
        ("sampler.paths=(1", "sampler.paths=(1: not valid override syntax"),
        ("scenario.events=[{date: 2026-01-01", "not valid override syntax"),
    ],
    "Dask scheduler address": [
        ("sampler.scheduler=foo", "sampler.scheduler='foo': null, local, or a Dask scheduler address such as tcp://host:8786"),
        ("sampler.scheduler=http://host:8786", "sampler.scheduler='http://host:8786': null, local, or a Dask scheduler address"),
        ("sampler.scheduler='tcp://host name:8786'", "sampler.scheduler='tcp://host name:8786': null, local"),
        ("sampler.scheduler=tcp://127.0.0.1:1", "sampler.scheduler='tcp://127.0.0.1:1': the address of a running Dask scheduler (ConnectionRefusedError"),
        ("sampler.scheduler=tcp://127.0.0.1:99999", "sampler.scheduler='tcp://127.0.0.1:99999': the address of a running Dask scheduler"),
    ],
    "semantic (several keys together)": [
        ("model.policy.boj.threshold_25=0.9", "model.policy.boj.threshold_25=0.9: 0 <= threshold_25 <= threshold_50 (0.6)"),
        ("model.policy.boj.max_move=0.3", "model.policy.boj.max_move=0.3: a finite number in [0, 0.5], a multiple of 0.25 (pp)"),
        ("model.policy.fed.lower_bound=0.1", "model.policy.fed.lower_bound=0.1: a finite number in [-5, 30], a multiple of 0.125"),
        ("investors.life_insurers.max_hedge_ratio=0.3", "investors.life_insurers.max_hedge_ratio=0.3: at least hedge_ratio (0.444)"),
        ("investors.gpif.foreign_weight=1.0", "investors.gpif.foreign_weight=1.0: in (0, 1)"),
        ("+investors.banks.threshold_mean=1.6", "investors.banks.threshold_mean=1.6: null for a threshold class: use threshold_distance"),
        ("investors.banks.threshold_distance=null", "investors.banks.threshold_distance=None: a number (mean distance"),
        ("investors.leveraged.threshold_distance=-0.2", "investors.leveraged.threshold_distance=-0.2: at least half the re-entry gap (0.025): a snapshot never starts beyond most"),
        ("investors.banks.threshold_distance=0.1", "investors.banks.threshold_distance=0.1: at least half the re-entry gap (0.15)"),
        ("investors.leveraged.spot_footprint=1.5", "investors.leveraged.spot_footprint=1.5: a finite number in [0, 1]"),
        ("investors.leveraged.rebuild_weeks=0", "investors.leveraged.rebuild_weeks=0.0: a finite number in (0, 520] (weeks)"),
        ("model.policy.boj.spacing_penalty=-1", "model.policy.boj.spacing_penalty=-1.0: a finite number in [0, 10] (pp)"),
        ("model.policy.boj.neutral_from=today", "model.policy.boj.neutral_from"),
        ("model.yields.anchor=spot", "model.yields.anchor"),
        ("investors.life_insurers.threshold_width=0", "investors.life_insurers.threshold_width=0.0: a finite number in (0, 100]"),
        ("model.fx.stress_trigger=0", "model.fx.stress_trigger=0.0: a finite number in (0, 10_000] (%)"),
        ("snapshot.usdjpy=0", "snapshot.usdjpy=0.0: a finite number in [10, 1000] (JPY per USD)"),
        (_corr(4, 5, 0.5, sym=False), "model.correlation.calm='asymmetric matrix': a symmetric matrix"),
        (_corr(0, 0, 2.0), "model.correlation.calm='diagonal [2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]': a unit diagonal"),
        (_corr(1, 2, 1.5), "model.correlation.calm='entries outside [-1, 1]': entries in [-1, 1]"),
        ("model.correlation.calm=[[1,0],[0,1]]", "model.correlation.calm='shape (2, 2)': a 7x7 matrix"),
        ("model.correlation.calm=[[1,0.9,0.9,0,0,0,0],[0.9,1,-0.9,0,0,0,0],[0.9,-0.9,1,0,0,0,0],[0,0,0,1,0,0,0],[0,0,0,0,1,0,0],[0,0,0,0,0,1,0],[0,0,0,0,0,0,1]]",
         "model.correlation.calm='smallest eigenvalue -0.8': a positive semidefinite matrix"),
    ],
}
ALL = [(category, override, message) for category, cases in CASES.items() for override, message in cases]


@pytest.mark.parametrize("category, override, message", ALL, ids=[o[:60] for _, o, _ in ALL])
def test_every_bad_input_gets_one_line_naming_key_value_and_allowed(category, override, message):
    problem = check_overrides([override])
    assert problem is not None, f"accepted: {override}"
    assert message in problem, problem
    assert "\n" not in problem and "full_key" not in problem and "Traceback" not in problem


def test_no_two_cases_repeat_an_input():
    overrides = [o for _, o, _ in ALL]
    assert len(overrides) == len(set(overrides))


def test_disabling_every_class_is_refused():
    off = [f"investors.{c}.enabled=false" for c in ("leveraged", "retail", "life_insurers", "gpif", "banks",
                                                      "investment_trusts")]
    assert check_overrides(off).startswith("investors=['banks', 'gpif', 'investment_trusts', 'leveraged', "
                                           "'life_insurers', 'retail']: at least one enabled class")


def test_the_run_checks_again_whatever_called_it():
    """Functions called without the command line (tests, notebooks) validate too."""
    with pytest.raises(ConfigError, match=r"model.fx.long_run_vol=1e\+308: a finite number in \(0, 100\]"):
        simulate(load_config(["model.fx.long_run_vol=1e308", "sampler.paths=50"]), progress=False)


def test_a_sweep_value_with_the_wrong_type_stops_the_sweep_before_it_starts():
    assert check_overrides(["-m", "output.format=netcdf,csv"]).startswith("output.format=csv: Invalid value")
    assert "could not be converted to Integer" in check_overrides(["-m", "sampler.paths=10,x"])
    assert check_overrides(["-m", "sampler.paths=10,20", "scenario=baseline,risk_off"]) is None


def test_correlation_repair_is_reported():
    bad = "[[1,0.9,0.9,0,0,0,0],[0.9,1,-0.9,0,0,0,0],[0.9,-0.9,1,0,0,0,0],[0,0,0,1,0,0,0],[0,0,0,0,1,0,0],[0,0,0,0,0,1,0],[0,0,0,0,0,0,1]]"
    _, r = simulate(load_config([f"model.correlation.calm={bad}", "model.correlation.repair=true",
                                 "sampler.paths=50", "sampler.horizon_months=3"]), progress=False)
    assert any("model.correlation.calm repaired" in n for n in r.notes)
    assert any("model.correlation.stress" in n for n in r.notes) is False


NUMERIC = {
    "model.fx.long_run_vol": st.floats(-5, 150),
    "model.fx.stress_vol_multiplier": st.floats(0, 300),
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
        r = run(cfg)
    except ConfigError as err:
        assert err.key in values, (err.key, values)  # it names a key that was set wrongly
        assert "\n" not in str(err)
        return
    except SimulationError as err:
        assert "path block" in str(err) and "step" in str(err)
        return
    for name, var in r.data_vars.items():
        if var.dtype.kind in "fi":
            assert np.all(np.isfinite(var.values)), name


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
           "sampler.horizon_months=3", "output.plots=false", "model.fx.long_run_vol=7,9"]
    first = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    files = sorted(tmp_path.glob("*/results.nc"))
    assert len(files) == 2
    stamps = [f.stat().st_mtime_ns for f in files]
    second = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("finished earlier with the same config") == 2
    assert [f.stat().st_mtime_ns for f in files] == stamps


#: The backtest's own config (``python -m sim.backtest``), checked the same way before it starts.
BACKTEST_CASES = [
    ("backtest.start=2030-01-01", "backtest.end='2024-12-31': a date on or after backtest.start (2030-01-01)"),
    ("backtest.end=1990-01-01", "backtest.end='1990-01-01': a date on or after backtest.start (2003-01-01)"),
    ("backtest.horizons=[200]", "backtest.horizons[0]=200: an integer in [1, 120] (months)"),
    ("backtest.step_months=0", "backtest.step_months=0: an integer in [1, 120] (months)"),
    ("backtest.window_weeks=1e308", "backtest.window_weeks=1e308: Value '1e+308' of type 'float' could not be converted to Integer"),
    ("backtest.foo=1", "backtest.foo=1: Key 'foo' not in 'BacktestConfig'"),
    ("+backtest.foo=1", "backtest.foo=1: not a key of backtest"),
    ("backtest.rally_events=[{horizon: 0, threshold: 5}]", "backtest.rally_events[0].horizon=0: an integer in [1, 120]"),
    ("backtest.rally_events=[{horizon: 3, threshold: nan}]", "backtest.rally_events[0].threshold=nan: a finite number in (0, 100]"),
    ("backtest.step_months=1,2", "backtest.step_months='1,2': one value; to sweep over several add -m"),
]


MOMENTS_CASES = [
    ("moments.end=1900-01-01", "moments.end='1900-01-01': a date on or after moments.start (1993-01-01)"),
    ("moments.start=notadate", "moments.start='notadate': an ISO date such as 2025-12-19"),
    ("moments.block_months=0", "moments.block_months=0: an integer in [1, 120] (months)"),
    ("+moments.foo=1", "moments.foo=1: not a key of moments"),
]


@pytest.mark.parametrize("override, message", MOMENTS_CASES)
def test_moments_settings_are_answered_in_one_line(override, message):
    problem = check_overrides([f"data.dir={DATA}", override], config_name="moments")
    assert problem is not None and message in problem, problem


@pytest.mark.parametrize("override, message", BACKTEST_CASES)
def test_backtest_settings_are_answered_in_one_line(override, message):
    problem = check_overrides([f"data.dir={DATA}", override], config_name="backtest")
    assert problem is not None and message in problem, problem
    assert "\n" not in problem


FETCH_CASES = [
    (["--bogus"], "error: --bogus: not valid override syntax"),
    (["data.dirr=x"], "error: data.dirr=x: Key 'dirr' not in 'DataConfig'; its keys are dir, url"),
    (["fetch.refresh=maybe"], "error: fetch.refresh='maybe': true or false"),
    (["data.url=1,2"], "error: data.url='1,2': one value"),
]


@pytest.mark.parametrize("argv, line", FETCH_CASES)
def test_fetch_answers_bad_input_in_one_line(argv, line, capsys):
    from sim.fetch import main as fetch_main

    with pytest.raises(SystemExit) as stop:
        fetch_main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith(line) and len(err.strip().splitlines()) == 1, err


# --- the schema: every number declares its range ---------------------------------------------

def _numeric_keys(obj, prefix=""):
    """(key, field type, Range) of every scalar number in the config tree ``obj``."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        key = f"{prefix}.{f.name}" if prefix else f.name
        value = getattr(obj, f.name)
        if "range" in f.metadata and hints[f.name] in (int, float):
            yield key, hints[f.name], f.metadata["range"]
        elif dataclasses.is_dataclass(value):
            yield from _numeric_keys(value, key)
        elif isinstance(value, dict):
            for name, item in value.items():
                yield from _numeric_keys(item, f"{key}.{name}")


def _schema_classes(cls, seen=None):
    seen = set() if seen is None else seen
    if cls in seen:
        return seen
    seen.add(cls)
    for tp in typing.get_type_hints(cls).values():
        for inner in (tp, *typing.get_args(tp), *[a for t in typing.get_args(tp) for a in typing.get_args(t)]):
            if dataclasses.is_dataclass(inner):
                _schema_classes(inner, seen)
    return seen


def test_every_numeric_field_of_every_schema_declares_its_range():
    undeclared = []
    for cls in _schema_classes(Config):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            numeric = hints[f.name] in (int, float) or typing.get_args(hints[f.name])[:1] in ((int,), (float,))
            if numeric and not {"range", "range_by"} & set(f.metadata):
                undeclared.append(f"{cls.__name__}.{f.name}")
    assert undeclared == []
    assert len(_schema_classes(Config)) >= 15


def test_a_numeric_field_without_a_range_cannot_slip_through():
    @dataclasses.dataclass
    class NewGroup:
        rate: float = 1.0

    with pytest.raises(TypeError, match="NewGroup.rate declares no range"):
        check_ranges(NewGroup())


def test_closed_vocabularies_are_enums_in_the_schemas():
    hints = {cls: typing.get_type_hints(cls) for cls in _schema_classes(Config)}
    enums = {f"{cls.__name__}.{name}" for cls, h in hints.items() for name, tp in h.items()
             if isinstance(tp, type) and issubclass(tp, enum.Enum)}
    assert enums >= {"SamplerConfig.step", "OutputConfig.format", "InvestorClassConfig.signal",
                     "PriorConfig.dist", "EventConfig.kind", "ObservationConfig.variable"}


KEYS = list(_numeric_keys(load_config([])))


@st.composite
def _outside(draw):
    """A scalar numeric key of the default config and a value outside its declared range."""
    key, tp, rng = draw(st.sampled_from(KEYS))
    choices = [st.sampled_from(["nan", "inf", "-inf"])] if tp is float else []
    if math.isfinite(rng.high):
        above = st.integers(int(rng.high) + 1, int(rng.high) + 10**6) if tp is int else \
            st.floats(rng.high, 1e308, exclude_min=True, allow_nan=False, allow_infinity=False)
        choices.append(above)
    if math.isfinite(rng.low):
        below = st.integers(int(rng.low) - 10**6, int(rng.low) - 1) if tp is int else \
            st.floats(-1e308, rng.low, exclude_max=True, allow_nan=False, allow_infinity=False)
        choices.append(below)
    value = draw(st.one_of(*choices))
    return key, value if isinstance(value, str) else repr(value)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(_outside())
def test_any_number_outside_its_declared_range_is_refused_by_name(case):
    key, value = case
    problem = check_overrides([f"{key}={value}"])
    assert problem is not None and problem.startswith(f"{key}="), (key, value, problem)
    assert "\n" not in problem


def test_every_scalar_key_is_covered_by_the_property_test():
    assert len(KEYS) >= 120  # 6 investor classes x 14 numbers, the model, the snapshot, the sampler


# --- the analysis commands -------------------------------------------------------------------

TINY = ["sampler.paths=60", "sampler.horizon_months=1", "output.progress=false"]
ANALYSIS = {
    "sensitivity": (sensitivity_main, [
        (["--vary", "model.fx.long_run_voll=3,12"], "--vary='model.fx.long_run_voll': model.fx has no key 'long_run_voll'; its keys are"),
        (["--vary", "investors.nobody.holdings=1,2"], "investors has no entry 'nobody'; it has leveraged, retail"),
        (["--vary", "model.fx=3,12"], "--vary='model.fx': a numeric config key (a number, not a group"),
        (["--vary", "scenario.name=1,2"], "--vary='scenario.name': a numeric config key"),
        (["--vary", "model.policy.decisions=0,1"], "--vary='model.policy.decisions': a numeric config key"),
        (["--vary", "output.quantiles=0.1,0.2"], "--vary='output.quantiles': a numeric config key"),
        (["--vary", "model.fx.long_run_vol=5,5"], "--vary model.fx.long_run_vol='5,5': LOW < HIGH"),
        (["--vary", "model.fx.long_run_vol=9,5"], "--vary model.fx.long_run_vol='9,5': LOW < HIGH"),
        (["--vary", "model.fx.long_run_vol=nan,5"], "--vary model.fx.long_run_vol=nan: a finite number in (0, 100] (% p.a.)"),
        (["--vary", "model.fx.long_run_vol=5,inf"], "--vary model.fx.long_run_vol=inf: a finite number in (0, 100]"),
        (["--vary", "model.fx.long_run_vol=5,1e308"], "--vary model.fx.long_run_vol=1e+308: a finite number in (0, 100]"),
        (["--vary", "investors.leveraged.holdings=100,30000"], "--vary investors.leveraged.holdings=30000.0: a finite number in [0, 20_000] (USD bn)"),
        (["--vary", "model.fx.long_run_vol=5"], "--vary='model.fx.long_run_vol=5': KEY=LOW,HIGH with two numbers"),
        (["--vary", "model.fx.long_run_vol=a,b"], "--vary='model.fx.long_run_vol=a,b': KEY=LOW,HIGH with two numbers"),
        (["--vary", "sampler.horizon_months=3.5,12"], "--vary sampler.horizon_months=3.5: an integer in [1, 120] (months)"),
        (["--level", "nan"], "--level=nan: a finite number in [-100_000, 100_000]"),
        (["--level", "inf"], "--level=inf: a finite number"),
        (["--level", "abc"], "python -m sim.sensitivity: argument --level: invalid float value: 'abc'"),
        (["--metric", "foo"], "argument --metric: invalid choice: 'foo'"),
        (["--bogus"], "python -m sim.sensitivity: unrecognized arguments: --bogus"),
        (["sampler.pathz=3"], "sampler.pathz=3: Key 'pathz' not in 'SamplerConfig'"),
        (["model.fx.long_run_vol=nan"], "model.fx.long_run_vol=nan: a finite number in (0, 100]"),
        (["sampler.paths=10,20"], "sampler.paths='10,20': one value here (sweeps run with `python -m sim -m ...`)"),
        (["+sampler.foo=1"], "sampler.foo=1: not a key of sampler"),
    ]),
    "reverse stress": (stress_main, [
        (["--key", "model.fx.long_run_voll", "--low", "1", "--high", "2"], "--key='model.fx.long_run_voll': model.fx has no key 'long_run_voll'"),
        (["--key", "model.fx", "--low", "1", "--high", "2"], "--key='model.fx': a numeric config key"),
        (["--key", "scenario.name", "--low", "1", "--high", "2"], "--key='scenario.name': a numeric config key"),
        (["--key", "model.fx.long_run_vol", "--low", "5", "--high", "5"], "--low/--high=(5.0, 5.0): LOW < HIGH"),
        (["--key", "model.fx.long_run_vol", "--low", "10", "--high", "5"], "--low/--high=(10.0, 5.0): LOW < HIGH"),
        (["--key", "model.fx.long_run_vol", "--low", "5", "--high", "nan"], "--high=nan: a finite number in (0, 100]"),
        (["--key", "model.fx.long_run_vol", "--low", "5", "--high", "1e308"], "--high=1e+308: a finite number in (0, 100]"),
        (["--key", "model.fx.long_run_vol", "--low", "-1", "--high", "5"], "--low=-1.0: a finite number in (0, 100]"),
        (["--key", "model.fx.long_run_vol", "--low", "1", "--high", "5", "--level", "nan"], "--level=nan: a finite number"),
        (["--key", "model.fx.long_run_vol", "--low", "1", "--high", "5", "--level=-inf"], "--level=-inf: a finite number"),
        (["--key", "model.fx.long_run_vol", "--low", "1", "--high", "5", "--probability", "1.5"], "--probability=1.5: a finite number in (0, 1)"),
        (["--key", "model.fx.long_run_vol", "--low", "1", "--high", "5", "--probability", "0"], "--probability=0.0: a finite number in (0, 1)"),
        (["--key", "model.fx.long_run_vol", "--low", "1", "--high", "5", "--probability", "nan"], "--probability=nan"),
        (["--key", "sampler.horizon_months", "--low", "1.5", "--high", "10"], "--low=1.5: an integer in [1, 120] (months)"),
        (["--low", "1", "--high", "2"], "the following arguments are required: --key"),
        (["--key", "model.fx.long_run_vol", "--low", "abc", "--high", "2"], "argument --low: invalid float value: 'abc'"),
        (["--key", "model.fx.long_run_vol", "--low", "1", "--high", "5", "sampler.pathz=3"], "sampler.pathz=3: Key 'pathz' not in 'SamplerConfig'"),
        (["--key", "model.fx.long_run_vol", "--low", "1", "--high", "5", "sampler.paths=10,20"], "sampler.paths='10,20': one value here"),
        (["--key", "model.fx.long_run_vol", "--low", "1", "--high", "5", "scenario=[baseline,risk_off]"], "scenario='[baseline,risk_off]': one option of the group"),
    ]),
    "comparison": (compare_main, [
        (["{missing}", "--thresholds", "nan"], "--thresholds[0]=nan: a finite number"),
        (["{missing}", "--thresholds", "500", "inf"], "--thresholds[1]=inf: a finite number"),
        (["{missing}", "--thresholds", "500", "500"], "--thresholds=[500.0, 500.0]: different levels"),
        (["{missing}", "--thresholds", "abc"], "argument --thresholds: invalid float value: 'abc'"),
        (["{missing}"], "no such file or directory"),
        (["{missing}", "--bogus"], "unrecognized arguments: --bogus"),
        ([], "the following arguments are required: targets"),
    ]),
}
ANALYSIS_CASES = [(name, argv, message) for name, (_, cases) in ANALYSIS.items() for argv, message in cases]


@pytest.mark.parametrize("command, argv, message", ANALYSIS_CASES,
                         ids=[f"{c}:{' '.join(a)[:50]}" for c, a, _ in ANALYSIS_CASES])
def test_analysis_commands_answer_bad_input_in_one_line(command, argv, message, tmp_path, capsys):
    main = ANALYSIS[command][0]
    argv = [a.replace("{missing}", str(tmp_path / "missing")) for a in argv]
    if command in ("sensitivity", "reverse stress"):
        argv = [*argv, *TINY] if not any(a.startswith("sampler.paths=") for a in argv) else argv
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert not (tmp_path / "out").exists()


def test_an_integer_key_can_be_varied():
    assert parse_vary(["sampler.horizon_months=1,3"], TINY) == [("sampler.horizon_months", 1, 3)]
    assert parse_vary(["model.fx.long_run_vol=5,9"], TINY) == [("model.fx.long_run_vol", 5.0, 9.0)]
    base, swings = one_at_a_time(TINY, [("sampler.horizon_months", 1, 2)])
    assert math.isfinite(base) and swings[0].key == "sampler.horizon_months"


def test_an_integer_key_is_bisected_over_whole_numbers(monkeypatch):
    import sim.reverse_stress as R

    seen = []

    def fake(base, key, value, level):  # P rises by 0.1 per unit of the key: crosses 0.25 at 3
        assert value == int(value), value
        seen.append(value)
        return min(1.0, 0.1 * value), 1000

    monkeypatch.setattr(R, "exceedance", fake)
    res = R.reverse_stress([], "sampler.horizon_months", 1, 12, 500.0, 0.25, integer=True)
    assert res.value == 3 and all(isinstance(v, int) for v in seen)
    assert len(res.evaluations) <= 8


def test_an_unreachable_scheduler_is_answered_when_the_client_connects(monkeypatch):
    import sim.pipeline as P

    monkeypatch.setattr(P, "SCHEDULER_TIMEOUT", 1.0)
    with pytest.raises(ConfigError, match=r"sampler.scheduler='tcp://127.0.0.1:1': the address of a "
                                          r"running Dask scheduler \(none answered within 1 s\)"):
        P.connect_scheduler("tcp://127.0.0.1:1")


# --- through the command line: one line on stderr, non-zero exit, nothing written -------------

SUBPROCESS = [
    (["sim", "+sampler.pathz=10"], "error: sampler.pathz=10: not a key of sampler; its keys are paths,"),
    (["sim.sensitivity", "--vary", "sampler.horizon_months=3.5,12"], "error: --vary sampler.horizon_months=3.5: an integer"),
    (["sim.reverse_stress", "--key", "model.fx.long_run_vol", "--low", "5", "--high", "5"], "error: --low/--high=(5.0, 5.0): LOW < HIGH"),
    (["sim.calibrate", "smm.weights=cholesky"], "error: smm.weights='cholesky': diagonal or full"),
    (["sim.calibrate", "smm.pahts=10"], "error: smm.pahts=10: Key 'pahts' not in 'SMMConfig'"),
    (["sim.calibrate", "model.fx.long_run_vol=nan"], "error: model.fx.long_run_vol=nan: a finite number in (0, 100]"),
    (["sim.compare", "{tmp}", "--thresholds", "nan"], "error: --thresholds[0]=nan: a finite number"),
]


@pytest.mark.parametrize("argv, line", SUBPROCESS, ids=[" ".join(a)[:50] for a, _ in SUBPROCESS])
def test_commands_print_one_line_exit_nonzero_and_write_nothing(argv, line, tmp_path):
    out_dir = tmp_path / "out"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    extra = [f"hydra.run.dir={out_dir}"] if argv[0] in ("sim", "sim.calibrate") else \
        [] if argv[0] == "sim.compare" else ["--out", str(out_dir)] if argv[0] != "sim.reverse_stress" else []
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", *argv, *extra], cwd=REPO, capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and proc.stderr.startswith(line)
    assert not out_dir.exists() and list(tmp_path.iterdir()) == []
