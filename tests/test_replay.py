"""Replays: a dated snapshot, scripted events on the daily grid, observations placed in the
simulated distributions; bad observations are refused with a one-line message."""
from __future__ import annotations

import re

import pytest

from sim.pipeline import simulate
from sim.summary import observation_rows
from sim.validate import ConfigError, validate
from tests.helpers import small


def test_december_2025_replay_places_its_observations():
    cfg = small(["scenario=replay_2025_12", "output.plots=false"], paths=1000, months=1)
    assert cfg.snapshot.date == "2025-12-02" and cfg.sampler.step == "daily"
    ds, _ = simulate(cfg, progress=False)
    rows = {(r["date"], r["variable"]): r for r in observation_rows(ds, cfg.scenario.observations)}
    assert len(rows) == 5
    # The scripted decisions hold on every path on the day they were taken.
    assert rows[("2025-12-19", "boj_rate")]["rank"] == "every path"
    assert rows[("2025-12-19", "fed_rate")]["rank"] == "every path"
    jgb = rows[("2025-12-19", "jgb10")]
    assert jgb["q05"] < jgb["median"] < jgb["q95"]
    assert jgb["rank"].endswith("%")


@pytest.mark.parametrize("override, message", [
    ("+scenario.observations=[{date: '2026-01-09', variable: yen, value: 150.0}]",
     "Invalid value 'yen', expected one of [boj_rate, fed_rate, jgb10, ust10, spread, usdjpy]"),
    ("+scenario.observations=[{date: '2025-01-09', variable: usdjpy, value: 150.0}]",
     "scenario.observations[0].date='2025-01-09': a date on or after the snapshot (2025-12-19)"),
    ("+scenario.observations=[{date: '2026-03-09', variable: usdjpy, value: 150.0}]",
     "scenario.observations[0].date='2026-03-09': a date on or after the snapshot (2025-12-19) and "
     "no later than the horizon (2026-01-16)"),
])
def test_bad_observations_are_refused(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(small([override], months=1))
