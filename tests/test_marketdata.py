"""The FRED reader, point-in-time access, snapshots from data and their errors."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import SHARED_DATA
from sim.compose import load_config
from sim.datasnapshot import (BOJ_DECISIONS, FED_DECISIONS, boj_grid, data_levels, fed_grid,
                              policy_rate, typical_meetings)
from sim.config import FXConfig
from sim.pipeline import simulate
from sim.marketdata import SERIES, DataError, MarketData, read_series

#: The model's realised-volatility half-life, which the snapshot's fx_vol uses.
HALFLIFE = FXConfig().vol_halflife_weeks

REPO = Path(__file__).resolve().parent.parent

#: The shared data's README: first date, last date, rows and empty values of every file.
README_TABLE = {
    "DEXJPUS": ("1971-01-04", "2025-12-31", 14348, 563),
    "DTB3": ("1954-01-04", "2025-12-31", 18783, 793),
    "DGS10": ("1962-01-02", "2025-12-31", 16697, 713),
    "FEDFUNDS": ("1954-07-01", "2025-12-01", 858, 0),
    "IR3TIB01JPM156N": ("2002-04-01", "2025-12-01", 285, 0),
    "IRLTLT01JPM156N": ("1989-01-01", "2025-12-01", 444, 0),
    "IRSTCI01JPM156N": ("1992-10-01", "2024-01-01", 376, 0),
    "VIXCLS": ("1990-01-02", "2025-12-31", 9092, 0),
}


@pytest.fixture(scope="module")
def md():
    return MarketData(SHARED_DATA)


@pytest.mark.parametrize("name", sorted(SERIES))
def test_reader_on_every_shared_file(name):
    s = read_series(SHARED_DATA / f"{name}.csv", name, SERIES[name][0])
    first, last, rows, missing = README_TABLE[name]
    assert str(s.dates[0]) == first and str(s.dates[-1]) == last
    assert len(s.dates) == rows and int(np.isnan(s.values).sum()) == missing
    assert np.all(np.diff(s.dates).astype(int) > 0)
    if SERIES[name][0] == "monthly":  # a monthly average counts from the end of its month
        assert np.all(s.known.astype("datetime64[M]") == s.dates.astype("datetime64[M]"))
        assert np.all((s.known + 1).astype("datetime64[M]") > s.known.astype("datetime64[M]"))
    else:
        assert np.all(s.known == s.dates)


def test_point_in_time_values(md):
    ff = md["FEDFUNDS"]
    june, july = (float(ff.values[ff.dates == np.datetime64(d)][0]) for d in ("2024-06-01", "2024-07-01"))
    assert ff.as_of(np.datetime64("2024-07-03")) == june      # July's average is not known yet
    assert ff.as_of(np.datetime64("2024-07-31")) == july      # ... until the end of July
    fx = md["DEXJPUS"]
    assert fx.as_of(np.datetime64("2010-12-31")) == float(fx.values[fx.dates == np.datetime64("2010-12-30")][0])


def test_policy_rate_grids():
    assert fed_grid(5.33, np.datetime64("2024-01")) == 5.375      # midpoint of 5.25-5.50%
    assert fed_grid(0.08, np.datetime64("2021-06")) == 0.125      # midpoint of 0-0.25%
    assert fed_grid(5.26, np.datetime64("2007-01")) == 5.25       # single target before Dec 2008
    assert fed_grid(1.0, np.datetime64("2004-01")) == 1.0
    assert boj_grid(-0.04) == -0.1 and boj_grid(0.001) == 0.0 and boj_grid(0.07) == 0.1
    assert boj_grid(0.301) == 0.3 and boj_grid(0.509) == 0.5 and boj_grid(0.255) == 0.25


@pytest.mark.parametrize("day, boj, fed", [
    ("2005-06-30", 0.0, 3.0),      # quantity target era: call rate about 0.001%
    ("2007-06-29", 0.5, 5.25),
    ("2014-06-27", 0.1, 0.125),    # QQE: call rate about 0.07%, shown as 0.1%
    ("2018-06-29", -0.1, 1.625),   # negative rate on policy-rate balances (dated decision)
    ("2024-07-03", 0.1, 5.375),    # 0-0.1% from 19 Mar 2024 (FACTS.md)
    ("2024-09-18", 0.25, 4.875),   # FOMC cut on the day (FACTS.md)
    ("2025-12-19", 0.75, 3.625),   # BoJ hike and FOMC range after 10 Dec (FACTS.md)
])
def test_policy_rates_on_known_dates(md, day, boj, fed):
    assert policy_rate(md, "boj", day) == pytest.approx(boj)
    assert policy_rate(md, "fed", day) == pytest.approx(fed)


def test_dated_decisions_override_and_are_on_their_grid(md):
    for d in FED_DECISIONS:
        assert policy_rate(md, "fed", d.date) == d.level
        assert (d.level - 0.125) / 0.25 == round((d.level - 0.125) / 0.25)
    for d in BOJ_DECISIONS:
        assert policy_rate(md, "boj", d.date) == d.level


def test_snapshot_levels_from_data(md):
    levels = data_levels(md, "2024-07-03", 24, HALFLIFE)
    day = np.datetime64("2024-07-03")
    assert levels["usdjpy"] == md["DEXJPUS"].as_of(day) == 161.48
    assert levels["ust10"] == md["DGS10"].as_of(day)
    jgb = md["IRLTLT01JPM156N"]
    assert levels["jgb10"] == float(jgb.values[jgb.dates == np.datetime64("2024-06-01")][0])
    assert levels["boj_last_move"] == "2024-03-19"
    assert 5.0 < levels["fx_vol"] < 15.0
    assert levels["fed_last_move"] <= "2024-07-03" and levels["fed_last_move"] >= "2023-07-01"


def _copy_with_future_changed(tmp_path: Path, day: str) -> Path:
    """The shared files with every observation after ``day`` replaced by nonsense."""
    for name in SERIES:
        lines = (SHARED_DATA / f"{name}.csv").read_text().splitlines()
        out = [lines[0]]
        for line in lines[1:]:
            date, value = line.split(",")
            out.append(f"{date},{'' if not value else '999.0'}" if date > day else line)
        (tmp_path / f"{name}.csv").write_text("\n".join(out) + "\n")
    return tmp_path


@pytest.mark.parametrize("day", ["2008-09-12", "2024-07-03"])
def test_snapshot_has_no_look_ahead(tmp_path, md, day):
    changed = MarketData(_copy_with_future_changed(tmp_path, day))
    assert data_levels(changed, day, 24, HALFLIFE) == data_levels(md, day, 24, HALFLIFE)
    assert data_levels(md.truncated(np.datetime64(day)), day, 24, HALFLIFE) == data_levels(md, day, 24, HALFLIFE)
    # the changed data are read: the day after, the levels differ
    later = str(np.datetime64(day) + 7)
    assert data_levels(changed, later, 24, HALFLIFE)["usdjpy"] == 999.0


def test_meeting_calendars_put_a_meeting_in_the_first_weeks():
    for month in np.arange(np.datetime64("2003-01"), np.datetime64("2025-01")):
        day = (month + 1).astype("datetime64[D]") - 1
        for bank, gap in (("fed", 56), ("boj", 56)):
            first = np.datetime64(typical_meetings(bank, day, day + 400)[0])
            assert 0 < (first - day).astype(int) <= gap, (bank, day)
    # the typical FOMC calendar is the verified 2026 calendar (FACTS.md) in 2026
    assert typical_meetings("fed", "2025-12-31", "2026-12-31") == [
        "2026-01-28", "2026-03-18", "2026-04-29", "2026-06-17", "2026-07-29", "2026-09-16",
        "2026-10-28", "2026-12-09"]
    # and puts a meeting within ten days of every dated decision of FACTS.md
    for bank, decisions in (("fed", FED_DECISIONS), ("boj", BOJ_DECISIONS[1:])):
        for d in decisions:
            near = [np.datetime64(x) for x in typical_meetings(bank, d.date - 30, d.date + 30)]
            assert min(abs((x - d.date).astype(int)) for x in near) <= 10, (bank, d.date)


def test_snapshot_data_composes_and_runs():
    cfg = load_config(["snapshot=data", "snapshot.date=2008-09-12", f"data.dir={SHARED_DATA}",
                       "sampler.paths=64", "sampler.horizon_months=6", "output.progress=false"])
    s = cfg.snapshot
    assert s.date == "2008-09-12" and s.from_data
    assert s.fed_rate == 2.0 and s.boj_rate == 0.5 and 100 < s.usdjpy < 115
    assert s.fed_meetings[0] == "2008-09-17"
    ds, _ = simulate(cfg, progress=False)
    assert ds.sizes["path"] == 64


def test_existing_snapshots_are_untouched():
    cfg = load_config(["snapshot=market_2025_12_02"])
    assert not cfg.snapshot.from_data and cfg.snapshot.usdjpy == 155.65


# --- errors: one line naming the series, the date and what is available ----------------------

def test_date_before_a_series_starts(md):
    with pytest.raises(DataError, match=r"IRSTCI01JPM156N: no observation known on 1990-01-05 "
                                        r"\(IRSTCI01JPM156N.csv holds 1992-10-01 to 2024-01-01"):
        data_levels(md, "1990-01-05", 12, HALFLIFE)


def test_missing_series(tmp_path):
    shutil.copy(SHARED_DATA / "DEXJPUS.csv", tmp_path / "DEXJPUS.csv")
    with pytest.raises(DataError, match=r"FEDFUNDS: file .*FEDFUNDS.csv not found"):
        data_levels(MarketData(tmp_path), "2010-01-08", 12, HALFLIFE)


@pytest.mark.parametrize("content, message", [
    ("<html>Service unavailable</html>\n", "first line is '<html>"),
    ("observation_date,FEDFUNDS\n2001-01-01,6.0\n2001-02-01,abc\n", "line 3 is '2001-02-01,abc'"),
    ("observation_date,FEDFUNDS\n2001-02-01,6.0\n2001-01-01,5.5\n", "not strictly increasing at 2001-01-01"),
    ("", "first line is an empty file"),
])
def test_corrupt_file(tmp_path, content, message):
    (tmp_path / "FEDFUNDS.csv").write_text(content)
    with pytest.raises(DataError, match=rf"FEDFUNDS: corrupt file .*{message}" if content else "FEDFUNDS: corrupt file"):
        MarketData(tmp_path)["FEDFUNDS"]


def _cli(tmp_path, *args):
    env = {**os.environ, "NUMBA_NUM_THREADS": "2"}
    return subprocess.run([sys.executable, "-m", "sim", f"hydra.run.dir={tmp_path / 'run'}", *args],
                          cwd=REPO, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.parametrize("args, message", [
    (("snapshot.date=1960-01-04",), "IRSTCI01JPM156N: no observation known on 1960-01-04 (IRSTCI01JPM156N.csv holds 1992-10-01"),
    (("data.dir=/nonexistent/fred",), "data directory /nonexistent/fred does not exist"),
    (("snapshot.date=2024-13-01",), "snapshot.date='2024-13-01'"),
])
def test_cli_data_errors_in_one_line(tmp_path, args, message):
    out = _cli(tmp_path, "snapshot=data", *args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr
    assert not (tmp_path / "run" / "results.nc").exists()
