"""The stylised-fact table (sim.moments): moment functions on series with known answers, the
bootstrap against closed forms, the data moments on the shared files, the command end to end."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests.helpers import SHARED_DATA
from sim.compose import load_config
from sim.marketdata import MarketData
from sim.moments import (MOMENTS, WEEKS_PER_YEAR, DataMonths, _grid_months, block_indices,
                         data_moments, data_months, fx_parts, model_moves, moments_from_parts,
                         move_parts, rally_weeks, run_moments, diff_parts)
from sim.scores import largest_rally
from sim.validate import ConfigError

REPO = Path(__file__).resolve().parent.parent


def _moments(log_fx, extra=None):
    parts = fx_parts(log_fx)
    for name in ("ust10", "jgb10", "spread"):
        parts.update(diff_parts([], name))
    for bank in ("fed", "boj"):
        parts.update(move_parts(0, 0, bank))
    parts.update(extra or {})
    return moments_from_parts(parts)


def _gaussian_path(n, vol, seed):
    sd = vol / 100.0 / np.sqrt(WEEKS_PER_YEAR)
    r = np.random.default_rng(seed).normal(0.0, sd, n)
    return np.concatenate([[np.log(150.0)], np.log(150.0) + np.cumsum(r)]), sd


def test_gaussian_weekly_moments_within_their_standard_errors():
    n, vol = 40_000, 10.0
    x, sd = _gaussian_path(n, vol, 1)
    m = _moments(x)
    assert abs(m["fx_vol"] - vol) < 3 * vol / np.sqrt(2 * n)
    assert abs(m["fx_skew"]) < 3 * np.sqrt(6 / n)
    assert abs(m["fx_exkurt"]) < 3 * np.sqrt(24 / n)
    for t in (2.0, 4.0):
        p = stats.norm.cdf(np.log(1 - t / 100) / sd)   # a fall of t% or more over the week
        assert abs(m[f"week_rally_{t:g}"] / 100 - p) < 3 * np.sqrt(p * (1 - p) / n) + 1e-12
        p = stats.norm.sf(np.log(1 + t / 100) / sd)    # a rise of t% or more
        assert abs(m[f"week_rise_{t:g}"] / 100 - p) < 3 * np.sqrt(p * (1 - p) / n) + 1e-12


def test_absolute_change_autocorrelation_on_known_series():
    # iid Gaussian changes: every autocorrelation of |r| is 0 with SE about 1/sqrt(pairs).
    n = 40_000
    x, _ = _gaussian_path(n, 10.0, 11)
    m = _moments(x)
    for name in ("fx_absacf_short", "fx_absacf_long"):
        assert abs(m[name]) < 3 / np.sqrt(n * 4), name
    # Two volatility states in blocks of 26 weeks (sd 1 or 3): |r| = s |z|, so the lag-k
    # autocorrelation is P(same block) var(s) E|z|^2 / var(|r|), with P(same block) = 1 - k/26.
    rng = np.random.default_rng(12)
    blocks = 4000
    s_ = np.repeat(rng.choice([1.0, 3.0], blocks), 26)
    r = 0.001 * s_ * rng.standard_normal(s_.size)
    m = _moments(np.concatenate([[0.0], np.cumsum(r)]))
    e_abs, var_s, mean_s2 = np.sqrt(2 / np.pi), 1.0, 5.0
    var_abs = mean_s2 - (2.0 * e_abs) ** 2
    for name, lags in (("fx_absacf_short", range(1, 5)), ("fx_absacf_long", range(5, 14))):
        expect = np.mean([(1 - k / 26) * var_s * e_abs ** 2 / var_abs for k in lags])
        # SE 0.003 (sd over 100 seeds of this design); 4 SE
        assert m[name] == pytest.approx(expect, abs=0.012), name


def test_autocorrelation_pairs_stay_inside_segments():
    # Two stretches of opposite volatility glued together: pairs across the join are dropped.
    r = np.concatenate([np.full(20, 0.01), np.full(20, -0.03)])
    x = np.concatenate([[0.0], np.cumsum(r)])
    whole = fx_parts(x)
    split = fx_parts(x, segment=np.repeat([0, 1], 20))
    for name, (lo, hi) in {"fx_absacf_short": (1, 4), "fx_absacf_long": (5, 13)}.items():
        assert whole[f"{name}_n"] == sum(40 - k for k in range(lo, hi + 1))
        assert split[f"{name}_n"] == sum(2 * (20 - k) for k in range(lo, hi + 1))
        assert split[f"{name}_p"] == pytest.approx(
            sum((20 - k) * (0.01 ** 2 + 0.03 ** 2) for k in range(lo, hi + 1)))


def test_high_vol_share_against_chi_square():
    # One 13-week window per path: 13 RV^2 / sigma^2 is chi-square with 13 degrees of freedom.
    paths, vol = 20_000, 14.0
    sd = vol / 100.0 / np.sqrt(WEEKS_PER_YEAR)
    r = np.random.default_rng(2).normal(0.0, sd, (paths, 13))
    x = np.concatenate([np.zeros((paths, 1)), np.cumsum(r, axis=1)], axis=1)
    parts = fx_parts(x)
    assert parts["hv_n"] == paths
    p = stats.chi2.sf(13 * (15.0 / vol) ** 2, 13)
    assert abs(parts["hv"] / paths - p) < 3 * np.sqrt(p * (1 - p) / paths)


def test_rally_windows_start_at_every_week():
    x, _ = _gaussian_path(300, 12.0, 3)
    parts = fx_parts(x)
    for months in (1, 3, 12, 24):
        w = rally_weeks(months)
        got = parts[f"rally_{months}"]
        assert got.size == len(x) - w
        direct = [largest_rally(x[t:t + w + 1]) for t in range(len(x) - w)]
        np.testing.assert_allclose(got, direct, rtol=1e-5)
    assert [rally_weeks(m) for m in (1, 3, 12, 24)] == [4, 13, 52, 104]


def test_moves_per_year_on_hand_built_rates():
    months = np.arange(np.datetime64("2005-01"), np.datetime64("2007-01"))   # 24 months
    # A 25bp hike every six months: three moves in 23 month-to-month transitions.
    fed = np.repeat([0.5, 0.75, 1.0, 1.25], 6).astype(float)
    moves, transitions = model_moves(fed[None, :], months, "fed")
    assert (moves, transitions) == (3.0, 23.0)
    # After December 2008 the Fed's grid is the midpoint of a 25bp range.
    late = np.arange(np.datetime64("2009-01"), np.datetime64("2009-04"))
    assert model_moves(np.array([[0.13, 0.12, 0.38]]), late, "fed") == (1.0, 2.0)
    # The BoJ's grid holds 0.1%: 0 -> 0.1 -> 0.25 are two moves; a negative rate is -0.1%.
    boj = np.array([[0.0, 0.02, 0.1, 0.26, 0.25, -0.05]])
    assert model_moves(boj, months[:6], "boj") == (3.0, 5.0)
    m = _moments(np.zeros(200), {**move_parts(3, 24, "fed"), **move_parts(1, 12, "boj")})
    assert m["fed_moves"] == pytest.approx(1.5) and m["boj_moves"] == pytest.approx(1.0)


def test_monthly_change_volatility():
    rng = np.random.default_rng(4)
    d = rng.normal(0.0, 0.2, (50, 40))        # monthly changes of 20bp s.d., % p.a.
    parts = {**fx_parts(np.zeros(200)), **diff_parts(d, "ust10"), **diff_parts(d / 2, "jgb10"),
             **diff_parts(d, "spread"), **move_parts(0, 1, "fed"), **move_parts(0, 1, "boj")}
    m = moments_from_parts(parts)
    assert m["ust10_dm"] == pytest.approx(100 * d.std(ddof=1))
    assert m["jgb10_dm"] == pytest.approx(50 * d.std(ddof=1))


def test_block_bootstrap_se_of_a_mean_on_iid_data():
    n, sigma, reps = 2400, 1.0, 2000
    x = np.random.default_rng(5).normal(0.0, sigma, n)
    rng = np.random.default_rng(6)
    means = np.array([x[block_indices(n, 6, rng)].mean() for _ in range(reps)])
    # Sampling error of the bootstrap SE: 1/sqrt(2 reps), of the sample variance sqrt(2/n), and
    # Bartlett-weighted sample autocovariances at lags 1-5 (about 5% of the variance here).
    assert means.std(ddof=1) == pytest.approx(sigma / np.sqrt(n), rel=0.15)
    idx = block_indices(10, 4, np.random.default_rng(0))
    assert len(idx) == 10 and set(np.diff(idx[:4]) % 10) == {1}


def test_bootstrap_se_of_the_volatility_on_gaussian_months():
    # 240 months of four iid weeks: the SE of the annualised vol is vol / sqrt(2 n).
    rng = np.random.default_rng(7)
    vol = 10.0
    sd = vol / 100 / np.sqrt(WEEKS_PER_YEAR)
    months = np.arange(np.datetime64("1990-01"), np.datetime64("2010-01"))
    dm = DataMonths(months, [rng.normal(0, sd, 4) for _ in months],
                    {k: rng.normal(0, 0.2, len(months)) for k in ("ust10", "jgb10", "spread")},
                    {b: np.zeros(len(months)) for b in ("fed", "boj")})
    n = 4 * len(months)
    boot = np.random.default_rng(8)
    reps = [moments_from_parts(dm.parts(block_indices(len(months), 6, boot)))["fx_vol"]
            for _ in range(400)]
    assert np.std(reps, ddof=1) == pytest.approx(vol / np.sqrt(2 * n), rel=0.25)


def test_grid_months_leave_out_the_cut_months():
    times = np.datetime64("2005-01-28") + 7 * np.arange(10).astype("timedelta64[D]")
    inner, index = _grid_months(times)
    # Fridays 28 Jan to 1 Apr 2005: January holds only the origin, April is cut by the horizon.
    assert list(inner.astype(str)) == ["2005-02", "2005-03"]
    assert list(index) == [-1, 0, 0, 0, 0, 1, 1, 1, 1, -1]


# ---------------------------------------------------------------------------------------------
# The data
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data():
    return data_moments(MarketData(SHARED_DATA), "1993-01-01", "2009-12-31", 60, 6, 1)


def test_data_moments_on_the_shared_files(data):
    values, reps = data
    assert set(values) == set(MOMENTS) and reps.shape == (60, len(MOMENTS))
    assert np.all(np.isfinite(reps)) and np.all(reps.std(axis=0) > 0)
    assert 8 < values["fx_vol"] < 16 and values["fx_skew"] < 0 < values["fx_exkurt"]
    assert values["week_rally_4"] < values["week_rally_2"] < 20
    # The carry currency's asymmetry: large weekly yen rallies are more common than sell-offs.
    assert values["week_rise_4"] < values["week_rise_2"] < 20
    assert values["week_rise_4"] < values["week_rally_4"]
    for months in (1, 3, 12, 24):
        q = [values[f"rally_{months}m_q{p}"] for p in (50, 90, 95)]
        assert q == sorted(q)
    assert values["rally_1m_q50"] < values["rally_3m_q50"] < values["rally_12m_q50"] < values["rally_24m_q50"]
    assert 1 < values["fed_moves"] < 8 and 0 < values["boj_moves"] < 4


def test_data_moments_against_an_independent_reading():
    """Friday closes and monthly averages read again with pandas."""
    md = MarketData(SHARED_DATA)
    values, _ = data_moments(md, "1993-01-01", "2009-12-31", 20, 6, 1)
    fx = pd.read_csv(SHARED_DATA / "DEXJPUS.csv", index_col=0, parse_dates=True).iloc[:, 0]
    daily = fx.asfreq("D").ffill()
    fri = daily[(daily.index.day_of_week == 4) & (daily.index >= "1992-12-25") & (daily.index <= "2009-12-31")]
    r = np.log(fri).diff().dropna()
    assert values["fx_vol"] == pytest.approx(100 * r.std() * np.sqrt(365.25 / 7), rel=1e-9)
    assert values["fx_skew"] == pytest.approx(stats.skew(r), rel=1e-9)
    ust = pd.read_csv(SHARED_DATA / "DGS10.csv", index_col=0, parse_dates=True).iloc[:, 0]
    monthly = ust.resample("MS").mean()["1992-12-01":"2009-12-01"]
    assert values["ust10_dm"] == pytest.approx(100 * monthly.diff().dropna().std(), rel=1e-9)


def test_data_window_checks():
    md = MarketData(SHARED_DATA)
    with pytest.raises(ConfigError, match="moments.start"):
        data_months(md, np.datetime64("1965-01-01"), np.datetime64("1980-12-31"))
    with pytest.raises(ConfigError, match="moments.start"):
        data_months(md, np.datetime64("1985-01-01"), np.datetime64("1995-12-31"))   # no call rate
    with pytest.raises(ConfigError, match="moments.block_months"):
        data_moments(md, "2005-01-01", "2008-12-31", 20, 30, 1)


@pytest.mark.parametrize("override,key", [
    ("moments.end=2004-01-01", "moments.end"),
    ("moments.start=2005-02-30", "moments.start"),
    ("sampler.horizon_months=12", "sampler.horizon_months"),
    ("moments.step_months=0", "moments.step_months"),
    ("data.dir=/nonexistent/fred", "data.dir"),
])
def test_bad_settings_raise_config_error(override, key):
    with pytest.raises(ConfigError) as err:   # a snapshot from data is resolved when composed
        cfg = load_config([f"data.dir={SHARED_DATA}", "moments=quick", "sampler.paths=16",
                           override], config_name="moments")
        run_moments(cfg, progress=False)
    assert key in str(err.value) or err.value.key == key


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------

def _cli(tmp_path, *args):
    env = {**os.environ, "NUMBA_NUM_THREADS": "2"}
    return subprocess.run([sys.executable, "-m", "sim.moments", f"hydra.run.dir={tmp_path}", *args],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=600)


def test_cli_quick_moments(tmp_path):
    out = _cli(tmp_path, "moments=quick", "sampler.paths=32", f"data.dir={SHARED_DATA}")
    assert out.returncode == 0, out.stderr
    assert "| moment | unit | data ± SE" in out.stdout
    table = pd.read_csv(tmp_path / "moments.csv")
    assert list(table["moment"]) == list(MOMENTS)
    assert np.all(np.isfinite(table[["data", "data_se", "model", "model_se"]].to_numpy()))
    assert (tmp_path / "moments.md").read_text().count("\n| ") == len(MOMENTS) + 1
    assert (tmp_path / "moments.nc").exists()


@pytest.mark.parametrize("args,key", [
    (("moments.end=2004-06-30",), "moments.end"),
    (("data.dir=/nonexistent/fred",), "/nonexistent/fred"),
])
def test_cli_bad_input_is_one_line(tmp_path, args, key):
    out = _cli(tmp_path, "moments=quick", f"data.dir={SHARED_DATA}", *args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0], out.stderr
    assert not (tmp_path / "moments.csv").exists()
