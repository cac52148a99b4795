"""The rolling-origin backtest: origins, outcomes, no look-ahead, outputs and the command line."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from tests.helpers import SHARED_DATA
from sim.backtest import (FORECASTERS, QUANTITIES, benchmark_ensembles, horizon_weeks, in_window,
                          forecast, origins, realised, run_backtest, summary_rows,
                          write_outputs)
from sim.compose import load_config
from sim.datasnapshot import with_data_snapshot
from sim.config import WindowConfig
from sim.marketdata import MarketData
from sim.results import open_results
from sim.validate import ConfigError

REPO = Path(__file__).resolve().parent.parent


def _cfg(*overrides):
    return load_config([f"data.dir={SHARED_DATA}", "backtest=quick", "sampler.paths=256",
                        *overrides], config_name="backtest")


@pytest.fixture(scope="module")
def small_backtest():
    cfg = _cfg("backtest.start=2008-07-01", "backtest.end=2008-09-30", "backtest.step_months=1",
               "model.calibration_window.start=2008-09-01", "model.calibration_window.end=2009-12-31")
    return cfg, run_backtest(cfg, progress=False)


def test_origins_are_last_fridays_of_months():
    cfg = _cfg()
    days = origins(cfg.backtest)
    assert [str(d) for d in days] == ["2008-01-25", "2008-07-25", "2009-01-30", "2009-07-31"]
    assert all(d.astype("datetime64[D]").item().weekday() == 4 for d in days)
    default = load_config([f"data.dir={SHARED_DATA}"], config_name="backtest")
    assert len(origins(default.backtest)) == 264
    assert horizon_weeks(np.datetime64("2008-01-25"), 1) == 4
    assert horizon_weeks(np.datetime64("2008-01-25"), 3) == 13
    assert horizon_weeks(np.datetime64("2008-01-25"), 12) == 52


def test_in_sample_when_the_forecast_period_overlaps_the_window():
    w = WindowConfig(start="2010-01-01", end="2012-12-31")
    assert not in_window(np.datetime64("2009-06-26"), 13, w)   # ends 2009-09-25
    assert in_window(np.datetime64("2009-06-26"), 52, w)       # ends 2010-06-25
    assert in_window(np.datetime64("2011-06-24"), 4, w)
    assert not in_window(np.datetime64("2013-01-25"), 4, w)


def test_outcomes_on_the_weekly_friday_grid():
    md = MarketData(SHARED_DATA)
    origin = np.datetime64("2008-10-03")
    out = realised(md, origin, [4, 13])
    fx = md["DEXJPUS"]
    closes = fx.as_of_many(origin + 7 * np.arange(14).astype("timedelta64[D]"))
    assert out.levels["usdjpy_change"][0] == pytest.approx(100 * np.log(closes[4] / closes[0]))
    peak = np.maximum.accumulate(closes[:14])
    assert out.levels["largest_rally"][1] == pytest.approx(100 * np.max(1 - closes[:14] / peak))
    assert out.levels["largest_rally"][1] > 10.0     # October 2008: the yen rallied hard
    late = realised(md, np.datetime64("2025-11-28"), [4, 52])
    assert np.isfinite(late.levels["usdjpy_change"][0]) and np.isnan(late.levels["usdjpy_change"][1])


def test_forecasts_do_not_look_ahead():
    """Data after the origin changed or removed: every forecast ensemble is the same."""
    cfg = _cfg()
    md = MarketData(SHARED_DATA)
    origin = np.datetime64("2008-07-25")
    cut = md.truncated(origin)
    weeks = [4, 13, 52]
    run_cfg = with_data_snapshot(cfg, md, str(origin))
    run_cut = with_data_snapshot(cfg, cut, str(origin))
    snap, snap_cut = run_cfg.snapshot, run_cut.snapshot
    model, model_cut = forecast(run_cfg, origin, weeks), forecast(run_cut, origin, weeks)
    assert snap == snap_cut or (snap.usdjpy == snap_cut.usdjpy and snap.boj_rate == snap_cut.boj_rate)
    for q in QUANTITIES:
        np.testing.assert_array_equal(model[q], model_cut[q])
    start = {"fed_rate": snap.fed_rate, "boj_rate": snap.boj_rate, "ust10": snap.ust10, "jgb10": snap.jgb10}
    full = benchmark_ensembles(cfg, md, origin, weeks, start)
    short = benchmark_ensembles(cfg, cut, origin, weeks, start)
    for f in full:
        for q in QUANTITIES:
            if full[f][q] is None:
                assert short[f][q] is None
            else:
                np.testing.assert_array_equal(full[f][q], short[f][q])


def test_a_rate_series_younger_than_the_horizon_is_not_benchmarked():
    """At the end of January 1993 the call rate behind the BoJ's rate is four months old: its
    no-change-plus-past-changes benchmark has no 3- or 12-month change to draw and is left out
    (not scored), while the older series and the USD/JPY benchmarks are there."""
    cfg, md = _cfg(), MarketData(SHARED_DATA)
    origin = np.datetime64("1993-01-29")
    snap = with_data_snapshot(cfg, md, str(origin)).snapshot
    start = {"fed_rate": snap.fed_rate, "boj_rate": snap.boj_rate, "ust10": snap.ust10, "jgb10": snap.jgb10}
    out = benchmark_ensembles(cfg, md, origin, [4, 13, 52], start)
    assert out["random_walk"]["boj_rate"] is None
    for q in ("fed_rate", "ust10", "jgb10", "usdjpy_change"):
        assert np.all(np.isfinite(out["random_walk"][q]))
    assert np.all(np.isfinite(out["garch_t"]["largest_rally"]))


def test_backtest_dataset(small_backtest):
    cfg, ds = small_backtest
    assert dict(ds.sizes)["origin"] == 3
    assert list(ds["forecaster"].values) == list(FORECASTERS)
    assert ds["crps"].dims == ("origin", "horizon", "quantity", "forecaster")
    pit = ds["pit"].values
    assert np.all((pit[np.isfinite(pit)] > 0) & (pit[np.isfinite(pit)] < 1))
    # every forecaster scores the FX quantities; rates only against the no-change benchmark
    fx = ds["crps"].sel(quantity=["usdjpy_change", "largest_rally"])
    assert np.all(np.isfinite(fx.values))
    rates = ds["crps"].sel(quantity="fed_rate")
    assert np.all(np.isfinite(rates.sel(forecaster=["model", "flows_off", "random_walk"]).values))
    assert np.all(np.isnan(rates.sel(forecaster=["garch_t", "bootstrap"]).values))
    # in-sample flags follow the window (starts 2008-09-01)
    flags = ds["in_sample"].sel(horizon=1).values
    assert flags.tolist() == [0, 1, 1]
    q = ds["forecast_quantiles"].values
    assert np.all(np.diff(q[np.all(np.isfinite(q), axis=-1)], axis=-1) >= 0)
    events = ds["crash_event"].sel(horizon=3).values
    rally = ds["observed"].sel(horizon=3, quantity="largest_rally").values
    assert events.tolist() == (rally > 10.0).astype(float).tolist() == [1.0, 1.0, 1.0]  # autumn 2008


def test_outputs_round_trip(small_backtest, tmp_path):
    _, ds = small_backtest
    files = write_outputs(ds, tmp_path, plots=True)
    assert {f.name for f in files} == {"backtest.nc", "backtest.csv", "backtest.md",
                                      "pit_histograms.png", "fan_against_reality.png"}
    xr.testing.assert_identical(open_results(tmp_path / "backtest.nc"), ds)
    table = pd.read_csv(tmp_path / "backtest.csv")
    assert len(table) == 3 * len(QUANTITIES) * ds.sizes["horizon"]
    assert "crps_ratio_garch_t" in table and "brier_model" in table
    text = (tmp_path / "backtest.md").read_text()
    assert "## Out-of-sample" in text and "## In-sample" in text
    assert "## Could the sample tell?" in text and "power_better_flows_off" in table


def test_crash_rows_say_what_the_sample_could_tell(small_backtest):
    """A crash event's row carries the level of every forecaster's probabilities and the power
    against flows off and GARCH-t, as probabilities; the report prints both tables."""
    _, ds = small_backtest
    row = next(r for r in summary_rows(ds) if r["sample"] == "all" and r["horizon_months"] == 3
               and r["quantity"] == "largest_rally")
    for f in FORECASTERS:
        assert 0.0 <= row[f"events_at_most_observed_{f}"] <= 1.0
        assert 0.0 <= row[f"events_expected_{f}"] <= 3.0
    for f in ("flows_off", "garch_t"):
        assert 0.0 <= row[f"power_significant_{f}"] <= row[f"power_better_{f}"] <= 1.0
        assert 0.0 <= row[f"power_{f}_significant_if_right"] <= 1.0
    low, high = (int(x) for x in row["events_range_90"].split("-"))
    assert 0 <= low <= high <= 3


def test_crash_power_levels_and_shares():
    """With constant probabilities every origin's event probability is exact, so the expected
    count is n p within its Monte Carlo error; the shares are those of sim.scores on the same
    seed; a forecaster with a non-finite probability is left out, not an error."""
    from sim import scores as S
    from sim.backtest import POWER_SAMPLES, POWER_SEED, crash_power

    n, w = 120, 3
    probs = {"model": np.full(n, 0.10), "flows_off": np.full(n, 0.05),
             "garch_t": np.linspace(0.02, 0.2, n), "random_walk": np.full(n, np.nan)}
    got = crash_power(probs, observed=6, window=w, lags=4)
    counts = S.event_samples(probs["model"], w, POWER_SAMPLES, POWER_SEED).sum(axis=1)
    assert got["events_expected_model"] == pytest.approx(counts.mean())
    assert abs(counts.mean() - n * 0.10) < 4.0 * counts.std() / np.sqrt(POWER_SAMPLES)
    assert got["events_at_most_observed_model"] == pytest.approx(np.mean(counts <= 6))
    right = S.event_power(probs["model"], probs["garch_t"], w, 4, POWER_SAMPLES, POWER_SEED)
    assert (got["power_better_garch_t"], got["power_significant_garch_t"]) == (right.better, right.significant)
    other = S.event_power(probs["flows_off"], probs["model"], w, 4, POWER_SAMPLES, POWER_SEED)
    assert got["power_flows_off_significant_if_right"] == other.significant
    assert "events_expected_random_walk" not in got


def test_an_origin_scores_the_same_in_any_run(small_backtest):
    cfg, ds = small_backtest
    one = run_backtest(_cfg("backtest.start=2008-08-01", "backtest.end=2008-08-31",
                            "model.calibration_window.start=2008-09-01",
                            "model.calibration_window.end=2009-12-31"), progress=False)
    xr.testing.assert_equal(one[["pit", "crps", "brier"]],
                                ds[["pit", "crps", "brier"]].sel(origin=one["origin"]))


def test_summary_rows_split_the_samples(small_backtest):
    _, ds = small_backtest
    rows = {(r["sample"], r["quantity"], r["horizon_months"]): r for r in summary_rows(ds)}
    assert rows[("all", "usdjpy_change", 1)]["origins"] == 3
    assert rows[("in-sample", "usdjpy_change", 1)]["origins"] == 2
    assert rows[("out-of-sample", "usdjpy_change", 1)]["origins"] == 1


@pytest.mark.parametrize("override, key", [
    ("backtest.step_months=0", "backtest.step_months"),
    ("backtest.end=2002-01-01", "backtest.end"),
    ("backtest.horizons=[0]", "backtest.horizons"),
    ("backtest.start=2003-02-30", "backtest.start"),
    ("backtest.end=2011-12-31 backtest.start=2011-12-31", "backtest.start/end"),
    ("backtest.rally_events=[{horizon:2,threshold:5}]", r"backtest.rally_events\[0\].horizon"),
])
def test_bad_settings_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key):
        run_backtest(_cfg(*override.split()), progress=False)


def _cli(tmp_path, *args):
    env = {**os.environ, "NUMBA_NUM_THREADS": "2"}
    return subprocess.run([sys.executable, "-m", "sim.backtest", f"hydra.run.dir={tmp_path}", *args],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=600)


def test_cli_quick_backtest(tmp_path):
    out = _cli(tmp_path, "backtest=quick", "backtest.end=2008-02-28", "sampler.paths=128",
               f"data.dir={SHARED_DATA}")
    assert out.returncode == 0, out.stderr
    assert "cover 90%" in out.stdout
    for name in ("backtest.nc", "backtest.csv", "backtest.md", "pit_histograms.png",
                 "fan_against_reality.png"):
        assert (tmp_path / name).exists()


def test_cli_bad_value_is_one_line(tmp_path):
    out = _cli(tmp_path, "backtest=quick", "backtest.step_months=0", f"data.dir={SHARED_DATA}")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "backtest.step_months=0" in lines[0], out.stderr
    assert not (tmp_path / "backtest.nc").exists()


def test_flows_off_forecaster_is_the_model_on_the_same_shocks(small_backtest):
    """The flows-off forecaster is the model with private flows moving no price, same seed: it
    differs from the model where flows matter, and equals it when the model's own flows are off."""
    cfg, ds = small_backtest
    fx = ds["forecast_quantiles"].sel(quantity="usdjpy_change")
    assert not np.array_equal(fx.sel(forecaster="model").values, fx.sel(forecaster="flows_off").values)
    off = _cfg("backtest.start=2008-07-01", "backtest.end=2008-07-31", "backtest.step_months=1",
               "model.impact.private_flows=false")
    ds_off = run_backtest(off, progress=False)
    crps = ds_off["crps"]
    np.testing.assert_array_equal(crps.sel(forecaster="model").values,
                                  crps.sel(forecaster="flows_off").values)
