"""Flow facts and paired signs (issue 12): the MoF's interventions against FRED's closes, the
July-August 2024 replay, the life insurers' hedge-ratio behaviour, the Capital Economics check,
and the signs the economics says on the same shocks.  Seeded; margins in Monte Carlo standard
errors of paired differences."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from sim import flowfacts as F
from tests.helpers import SHARED_DATA

Z = 4.0  # margin in standard errors


def _inside(value, se, low, high):
    return low - Z * se <= value <= high + Z * se


def _closes(day: str, weeks: int) -> np.ndarray:
    """USD/JPY at the last FRED observation on or before each Friday from ``weeks`` weeks
    before ``day`` to one week after it, read from the CSV directly."""
    with open(SHARED_DATA / "DEXJPUS.csv") as fh:
        rows = [(np.datetime64(r[0]), float(r[1])) for r in csv.reader(fh)
                if r[0][:1].isdigit() and r[1] not in ("", ".")]
    dates = np.array([d for d, _ in rows])
    values = np.array([v for _, v in rows])
    fridays = np.datetime64(day) + 7 * np.arange(-weeks, 2)
    return values[np.searchsorted(dates, fridays, side="right") - 1]


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs the shared FRED files")
def test_intervention_target_is_the_week_close_fall_in_the_data():
    """The target is the mean fall from the Friday close before each MoF purchase to its week's
    close, with SE sqrt(sum sd_i^2) / n from each episode's prior 52 weekly changes."""
    from sim.marketdata import MarketData

    got = F.intervention_data(MarketData(SHARED_DATA))
    falls, sds = [], []
    for friday, _ in F.INTERVENTIONS:
        c = _closes(friday, 52)
        falls.append(100.0 * (1.0 - c[-1] / c[-2]))
        sds.append(np.std(100.0 * np.diff(np.log(c[:-1])), ddof=1))
    np.testing.assert_allclose(got["falls"], falls, rtol=1e-12)
    assert got["value"] == pytest.approx(np.mean(falls))
    assert got["se"] == pytest.approx(math.sqrt(np.sum(np.square(sds))) / len(sds))
    # September 2022 by hand: 143.04 on the 16th, 143.18 on the 23rd (USD/JPY rose that week).
    assert got["falls"][0] == pytest.approx(100.0 * (1.0 - 143.18 / 143.04))
    # Sizes: 2.84tn yen at 143.04 is about USD 19.9bn.
    assert got["usd_bn"][0][0] == pytest.approx(2840.0 / 143.04)


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs the shared FRED files")
def test_intervention_target_refuses_data_that_end_before_an_episode():
    """A file that stops before an episode's week would read it as a flat week (fall 0, and
    an SE of 0 with older data still): refused with the file's span instead."""
    from sim.marketdata import DataError, MarketData

    early = MarketData(SHARED_DATA).truncated(np.datetime64("2024-07-08"))
    with pytest.raises(DataError, match="2024-07-12"):
        F.intervention_data(early)


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs the shared FRED files")
def test_intervention_replays_keep_their_episodes_whatever_the_caller_overrides():
    """The calibration passes the user's overrides on; those that would move an episode (its
    snapshot, grid, horizon or path count) are dropped, the others kept."""
    base = F.interventions(str(SHARED_DATA), paths=200)
    moved = F.interventions(str(SHARED_DATA), paths=200,
                            overrides=["snapshot=market_2025_12", "snapshot.date=2020-01-03",
                                       "sampler.step=weekly", "sampler.paths=50",
                                       "sampler.horizon_months=1"])
    assert moved == base
    off = F.interventions(str(SHARED_DATA), paths=200,
                          overrides=["model.impact.private_flows=false"])
    assert off["intervention_impact"][0] < base["intervention_impact"][0]


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs the shared FRED files")
def test_interventions_replayed_meet_the_data_and_fade():
    """The calibrated model, private flows on (the closes include the market's response), moves
    USD/JPY by the data's week-close fall within the 95% interval of both errors, and less than
    half of it is left eight weeks later (three SEs)."""
    from sim.marketdata import MarketData

    data = F.intervention_data(MarketData(SHARED_DATA))
    got = F.interventions(str(SHARED_DATA), paths=2000)
    value, se = got["intervention_impact"]
    assert value > 10 * se                                   # yen buying strengthens the yen
    assert abs(value - data["value"]) < 1.96 * math.hypot(se, data["se"]), (value, data)
    left, se_left = got["intervention_left"]
    assert left + 3 * se_left < 0.5, (left, se_left)


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs the shared FRED files")
def test_july_2024_target_is_the_largest_fall_of_the_daily_closes():
    """Peak to trough of FRED's daily closes from 5 July to 5 September 2024, by hand: 161.73
    on 10 July to 143.43 on 5 September; SE the prior year's daily sd times the square root of
    the business days between them."""
    from sim.marketdata import DataError, MarketData

    with open(SHARED_DATA / "DEXJPUS.csv") as fh:
        rows = [(np.datetime64(r[0]), float(r[1])) for r in csv.reader(fh)
                if r[0][:1].isdigit() and r[1] not in ("", ".")]
    got = F.july_2024_data(MarketData(SHARED_DATA))
    assert got["value"] == pytest.approx(100.0 * (1.0 - 143.43 / 161.73))
    assert (str(got["peak"]), str(got["trough"])) == ("2024-07-10", "2024-09-05")
    prior = [v for d, v in rows if np.datetime64("2023-07-07") < d <= np.datetime64("2024-07-05")]
    days = sum(np.datetime64("2024-07-10") < d <= np.datetime64("2024-09-05") for d, _ in rows)
    sd = np.std(100.0 * np.diff(np.log(prior)), ddof=1)
    assert got["se"] == pytest.approx(sd * math.sqrt(days))
    # the press's intraday figures (161.95 to about 142-146) bracket the closes' fall
    assert 100.0 * (1.0 - 146.0 / 161.95) < got["value"] < 100.0 * (1.0 - 142.0 / 161.95)
    with pytest.raises(DataError, match="2024-09-05"):
        F.july_2024_data(MarketData(SHARED_DATA).truncated(np.datetime64("2024-08-30")))
    # a window with no fall (here a single close) has nothing to fit and an SE of zero: refused
    with pytest.raises(DataError, match="did not fall"):
        F.july_2024_data(MarketData(SHARED_DATA), start="2024-06-10", months=0)


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs the shared FRED files")
def test_july_2024_week_target_is_the_largest_friday_to_friday_fall():
    """By hand from FRED's Friday closes: the week to 2 August 2024, 153.86 to 146.98; SE the
    s.d. of the 52 weekly log changes before 5 July 2024."""
    from sim.marketdata import DataError, MarketData, fridays

    md = MarketData(SHARED_DATA)
    got = F.july_2024_week_data(md)
    assert got["value"] == pytest.approx(100.0 * (1.0 - 146.98 / 153.86))
    assert str(got["week"]) == "2024-08-02"
    prior = md["DEXJPUS"].as_of_many(fridays(np.datetime64("2023-07-07"), np.datetime64("2024-07-05")))
    assert len(prior) == 53
    assert got["se"] == pytest.approx(np.std(100.0 * np.diff(np.log(prior)), ddof=1))
    # the fall of the whole episode is larger than its largest week
    assert got["value"] < F.july_2024_data(md)["value"]
    with pytest.raises(DataError, match="2024-09-05"):
        F.july_2024_week_data(md.truncated(np.datetime64("2024-08-30")))
    # a window of one Friday holds no week to fit
    with pytest.raises(DataError, match="fell in no week"):
        F.july_2024_week_data(md, start="2023-09-08", months=0)


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs the shared FRED files")
def test_july_2024_replay_holds_the_flow_facts():
    """Most of the leveraged stock unwinds and USD/JPY falls as it did in FRED's daily closes
    (within the 95% interval of both errors), while Japanese institutions' flows stay small:
    the carry's partial spot footprint and the intervention fact hold together (docs/model.md,
    "Flow facts")."""
    from sim.marketdata import MarketData

    got = F.july_2024(str(SHARED_DATA), paths=1000)
    for name, (low, high, _) in F.JULY_2024_FACTS.items():
        value, se = got[name]
        assert _inside(value, se, low, high), (name, value, se)
    # The fitted model meets the data's fall within the 95% interval of both errors (as the
    # interventions do); that interval is wide (one episode is one draw), so the flows must
    # also matter: the same replay with private flows off falls less, by Z SEs.
    data = F.july_2024_data(MarketData(SHARED_DATA))
    value, se = got["usdjpy_fall"]
    assert abs(value - data["value"]) < 1.96 * math.hypot(se, data["se"]), (value, data)
    off, se_off = F.july_2024(str(SHARED_DATA), paths=1000,
                              overrides=["model.impact.private_flows=false"])["usdjpy_fall"]
    assert value - off > Z * math.hypot(se, se_off), (value, off)
    # ... and not all in one week: the largest week meets the data's within both errors.
    week = F.july_2024_week_data(MarketData(SHARED_DATA))
    value, se = got["largest_week"]
    assert abs(value - week["value"]) < 1.96 * math.hypot(se, week["se"]), (value, week)
    # The carry classes, not the institutions, make the move.
    assert got["institutional_unwind"][0] < 0.5 * 250.0 * got["leveraged_unwound_share"][0]


def test_hedge_response_is_holdings_times_the_hedge_ratio_change():
    """With no sales (hedge_share 1) a rise from 45% to 60% hedged buys holdings x 0.15 of yen,
    the RBC identity; with sales the insurers' holdings fall on the way, so they buy less by
    hedging and some yen spot from the unhedged part of what they sell."""
    pure = F.hedge_response(["investors.life_insurers.hedge_share=1.0"])
    assert pure["hedge_yen_buying"][0] == pytest.approx(1150.0 * 0.15)
    assert pure["sales"][0] == 0.0
    mixed = F.hedge_response()
    assert 0.0 < mixed["hedge_yen_buying"][0] < pure["hedge_yen_buying"][0]
    assert mixed["sales"][0] > 0.0 and mixed["spot_yen_from_sales"][0] > 0.0
    # A larger move of the hedged pick-up is needed than the one that starts the response.
    assert 0.0 < mixed["pickup_fall"][0] < 2.0


def test_capital_economics_check_is_a_paired_difference():
    got = F.capital_economics(paths=1000)
    value, se = got["unwind_attributable"]
    assert value > Z * se
    assert value < got["unwind_scenario"][0]
    rvalue, rse = got["repatriation_attributable"]
    assert 0.0 < rvalue <= value + Z * se


def test_risk_off_raises_the_largest_yen_rally():
    diff, se = F.paired([], ["scenario=risk_off"], "largest_yen_appreciation", paths=2000)
    assert diff > Z * se, (diff, se)


def test_hawkish_boj_raises_the_carry_unwind_relative_to_a_boj_pause():
    """The carry unwind (leveraged and retail traders) rises with BoJ hikes.  The total need
    not: every hike cuts the cost of an FX hedge by as much, so the hedged pick-up of banks
    (fully hedged) improves and they sell less (docs/model.md, section 7.9)."""
    def carry(ds):
        return ds["unwind_by_investor"].sel(investor=["leveraged", "retail"]).sum("investor").values

    diff, se = F.paired(["scenario=boj_pause"], ["scenario=hawkish_boj"], None, paths=2000,
                        reduce=carry)
    assert diff > Z * se, (diff, se)


def test_larger_carry_stock_raises_crash_risk_and_the_unwind():
    big = ["investors.leveraged.holdings=500",
           "investors.leveraged.holdings_prior={dist: triangular, low: 320.0, high: 1000.0}"]
    for variable in ("crashes", "cum_unwind", "largest_yen_appreciation"):
        diff, se = F.paired([], big, variable, paths=2000)
        assert diff > Z * se, (variable, diff, se)
