"""Plots that tell the truth: date axes for any horizon, replay observations, titles with
context, exceedance bands, shares in percent, a colour-blind-safe palette."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from sim.compose import load_config
from sim.pipeline import simulate
from sim.plots import (OKABE_ITO, context, date_axis, horizon_text, observations, plot_run, plt,
                       survival)


@pytest.fixture(scope="module")
def replay():
    cfg = load_config(["scenario=replay_2025_12", "sampler.paths=300", "output.progress=false"])
    return simulate(cfg, progress=False)[0]


@pytest.mark.parametrize("days", [7, 31, 182, 730, 3652])
def test_date_axes_suit_any_horizon_from_a_week_to_ten_years(days):
    dates = np.arange(np.datetime64("2025-12-19"), np.datetime64("2025-12-19") + days + 1,
                      np.timedelta64(1, "D")).astype("datetime64[ns]")
    fig, ax = plt.subplots(figsize=(4.2, 3))
    ax.plot(dates, np.linspace(0, 1, len(dates)))
    date_axis(ax)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    lo, hi = ax.get_xlim()
    inside = [t for t in ax.get_xticks() if lo <= t <= hi]
    plt.close(fig)
    assert 3 <= len(inside) <= 9, (days, labels)  # not one lonely "Jan 26" on a month
    assert len(labels) >= 3


def test_a_flat_line_is_not_drawn_as_noise():
    from sim.plots import _min_span

    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [0.75, 0.75, 0.75])
    _min_span(ax, "% p.a.")
    lo, hi = ax.get_ylim()
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    plt.close(fig)
    assert hi - lo >= 0.5 and not ax.yaxis.get_offset_text().get_text(), labels


def test_titles_say_scenario_snapshot_date_and_horizon(replay):
    text = context(replay)
    assert "Replay: Fed cut of 10 Dec and BoJ hike of 19 Dec 2025" in text
    assert "snapshot 2 Dec 2025" in text and "1-month horizon, daily steps" in text
    assert "300 paths" in text and "replay_2025_12" not in text
    assert horizon_text(24, "weekly") == "2-year horizon, weekly steps"
    assert horizon_text(6, "weekly") == "6-month horizon, weekly steps"


def test_replay_observations_are_read_from_the_run(replay):
    obs = observations(replay)
    assert len(obs) == 5 and {o["variable"] for o in obs} == {"boj_rate", "fed_rate", "usdjpy", "jgb10"}


def test_every_plot_kind_is_written(replay, tmp_path):
    files = plot_run(replay, tmp_path)
    assert [f.name for f in files] == ["distributions.png", "fan_charts.png", "by_investor.png",
                                       "exceedance.png"]
    assert all(f.stat().st_size > 10_000 for f in files)


@pytest.mark.parametrize("k", [0, 3, 50, 150])
def test_exceedance_bands_are_wilson_intervals(k):
    n = 300
    values = np.r_[np.full(k, 10.0), np.zeros(n - k)]
    p, lo, hi = survival(values, np.array([5.0]))
    assert p[0] == pytest.approx(k / n)
    ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
    assert lo[0] == pytest.approx(ci.low, abs=1e-12) and hi[0] == pytest.approx(ci.high, abs=1e-12)


def test_palette_is_okabe_ito_without_red_green_pairs():
    import sim.plots as P

    used = {P.colour(i) for i in range(8)} | {c for *_, c, _ in P.MARKERS}
    assert used <= set(OKABE_ITO.values())
    assert "#c0392b" not in used and "#2e86c1" not in used  # the former red/blue pair
