"""Policy rates: the meeting calendar, the 25bp grid, scripted events and the BoJ's pace."""
import math

import numpy as np

from sim.calendar import BUSINESS_DAYS_PER_YEAR
from sim.inputs import build_inputs

from tests.helpers import run, small, step_years


def test_rates_move_only_at_meetings_in_25bp_steps(default_run):
    cfg, r = default_run
    model = build_inputs(cfg).model
    for name, calendar in (("boj_rate", model.boj_meetings), ("fed_rate", model.fed_meetings)):
        moves = np.diff(r[name].values, axis=1)
        meetings = calendar["meets"]
        assert np.all(moves[:, ~meetings] == 0.0)
        assert np.all(np.mod(moves * 4, 1.0) == 0.0)
        assert np.any(moves != 0.0)
    assert np.all(r["boj_rate"].values >= 0.0)


def test_boj_spacing_is_a_hard_cap_under_a_prohibitive_penalty():
    cfg = small(["model.policy.boj.spacing_penalty=10"], paths=1000, months=24)
    r = run(cfg)
    dt = step_years(cfg)
    elapsed = np.concatenate([[0.0], np.cumsum(dt)])
    # At least the configured spacing, to within half a business day (26 weeks count as 6 months).
    spacing = cfg.model.policy.boj.min_spacing_months / 12 - 0.5 / BUSINESS_DAYS_PER_YEAR
    for path in r["boj_rate"].values[:200]:
        when = elapsed[1:][np.diff(path) != 0]
        assert np.all(np.diff(when) >= spacing - 1e-9)


def test_scripted_decision_happens_on_its_date():
    cfg = small(["+scenario.events=[{date: '2026-02-10', kind: boj_decision, value: 0.5}]",
                 "model.policy.boj.spacing_penalty=10"], paths=512, months=6)
    r = run(cfg)
    t = int(np.searchsorted(r["time"].values, np.datetime64("2026-02-10"))) - 1
    boj = r["boj_rate"].values
    np.testing.assert_array_equal(boj[:, t + 1] - boj[:, t], 0.5)
    np.testing.assert_array_equal(boj[:, : t + 1], cfg.snapshot.boj_rate)


def test_meeting_probability_gives_that_share_of_hikes():
    p = 0.85
    cfg = small([f"+scenario.events=[{{date: '2026-01-23', kind: boj_probability, value: 0.25, "
                 f"probability: {p}}}]"], paths=4000, months=3)
    r = run(cfg)
    t = int(np.searchsorted(r["time"].values, np.datetime64("2026-01-23"))) - 1
    hiked = np.diff(r["boj_rate"].values[:, t:t + 2], axis=1)[:, 0] == 0.25
    n = len(hiked)
    assert abs(hiked.mean() - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_faster_boj_never_lowers_the_carry_unwind_under_common_random_numbers():
    """BoJ hikes shrink the carry: the leveraged class unwinds more when the BoJ moves faster.

    (The total unwind need not rise: hikes also cut hedging costs, which keeps hedged
    investors abroad; docs/model.md, section 16.4.)
    """
    unwind = {}
    for months in (3, 6, 12):
        cfg = small([f"model.policy.boj.min_spacing_months={months}"], paths=3000, months=24)
        r = run(cfg)
        unwind[months] = r["unwind_by_investor"].sel(investor="leveraged").values
    for fast, slow in ((3, 6), (6, 12)):
        diff = unwind[fast] - unwind[slow]
        se = diff.std(ddof=1) / math.sqrt(len(diff))
        assert diff.mean() > 4 * se, (fast, slow, diff.mean(), se)


def test_a_strong_case_overrides_the_boj_preferred_spacing():
    """The spacing is a preference: P(BoJ >= 1.5% at one year) from 0.75% needs three hikes in
    a year against a six-month spacing; it is small but positive, and zero under a hard cap."""
    share = {}
    for penalty in (1.5, 10.0):
        r = run(small([f"model.policy.boj.spacing_penalty={penalty}"], paths=8000, months=12))
        share[penalty] = (r["boj_rate"].values[:, -1] >= 1.5).mean()
    assert share[10.0] == 0.0
    # 8,000 paths: under the calibrated (less noisy) BoJ the share is about 0.6%
    assert share[1.5] > 4 * math.sqrt(share[1.5] * (1 - share[1.5]) / 8000) > 0.0


def test_the_lower_bound_never_lifts_a_rate_already_below_it():
    """From a snapshot with the BoJ at -0.1% (February 2017) the bound of 0 stops cuts but
    moves nobody: after the one meeting within a month a path's BoJ rate is -0.1% unless the
    rule hikes on its 25bp grid (to 0.15%, 0.4%), never the bound itself with no decision.
    (Over longer horizons 0 is reachable: a hike, then a cut that stops at the bound.)"""
    from tests.helpers import SHARED_DATA

    cfg = small(["snapshot=data", "snapshot.date=2017-02-24", f"data.dir={SHARED_DATA}"],
                paths=500, months=1)
    assert build_inputs(cfg).model.boj_meetings["meets"].sum() == 1
    r = run(cfg)
    boj = r["boj_rate"].values
    assert boj[0, 0] == -0.1
    assert set(np.round(np.unique(boj), 6)) <= {-0.1, 0.15, 0.4}
    assert np.mean(boj[:, -1] == -0.1) > 0.5


def test_investors_read_a_decision_from_its_meetings_business_day():
    """MEETING.sub is the meeting's business day within its step, counted from the step's start
    whatever weekday the grid's dates fall on (monthly dates on a weekend), clipped to the
    investors' sub-steps; with one sub-step a step (clock=step) it is 0."""
    from sim.calendar import business_day_index

    dates = np.array(["2026-03-19", "2026-04-19", "2026-05-19"], dtype="datetime64[D]")
    # Friday 17 April is the last business day of the step ending on Sunday 19 April
    assert business_day_index(dates, 0, np.datetime64("2026-04-17")) == 20
    assert business_day_index(dates, 0, np.datetime64("2026-03-20")) == 0
    assert business_day_index(dates, 1, np.datetime64("2026-04-20")) == 0   # Monday
    assert business_day_index(dates, 1, np.datetime64("2026-04-21")) == 1   # Tuesday
    event = ["+scenario.events=[{date: '2026-02-11', kind: boj_decision, value: 0.25}]"]
    for step, clock, sub in (("weekly", "daily", 2), ("daily", "daily", 0), ("weekly", "step", 0)):
        inp = build_inputs(small([*event, f"sampler.step={step}", f"model.feedback.clock={clock}"],
                                 paths=10, months=3))
        t = int(np.flatnonzero(inp.dates >= np.datetime64("2026-02-11"))[0]) - 1
        m = inp.model.boj_meetings[t]
        assert m["meets"] and int(m["sub"]) == sub, (step, clock, int(m["sub"]))
        assert int(m["sub"]) < int(inp.model.steps["subs"][t])
