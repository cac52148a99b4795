"""The embedded default snapshot against the data, and the point-in-time rules of snapshot=data."""
import math

import numpy as np
import pytest

from tests.helpers import SHARED_DATA
from sim.compose import load_config
from sim.marketdata import MarketData

DATA = ["snapshot=data", "snapshot.date=2025-12-19", f"data.dir={SHARED_DATA}"]


@pytest.fixture(scope="module")
def pair():
    return load_config().snapshot, load_config(DATA).snapshot


def test_default_snapshot_is_the_market_of_the_seed_date(pair):
    embedded, data = pair
    assert embedded.name == "market_2025_12" and not embedded.from_data
    assert embedded.date == data.date == "2025-12-19"
    # Equal: the policy rates (dated decisions), the last moves, the 10y UST close of the day.
    for key in ("boj_rate", "fed_rate", "ust10", "boj_last_move", "fed_last_move"):
        assert getattr(embedded, key) == getattr(data, key), key
    # The realised volatility is the data's, rounded to two decimals.
    assert embedded.fx_vol == pytest.approx(data.fx_vol, abs=0.005)
    # USD/JPY: the day's close after the hike (FACTS.md) vs the New York noon fixing: within 0.5%.
    assert embedded.usdjpy == 157.78 and abs(np.log(embedded.usdjpy / data.usdjpy)) < 0.005
    # 10y JGB: the day's yield (FACTS.md) vs the monthly average known on the day (November's);
    # the day's yield lies between November's and December's averages.
    jgb = MarketData(SHARED_DATA)["IRLTLT01JPM156N"]
    nov, dec = (jgb.values[jgb.dates == np.datetime64(m)][0] for m in ("2025-11-01", "2025-12-01"))
    assert data.jgb10 == nov and nov < embedded.jgb10 < dec
    # Calendars: the verified dates are the first ones of the typical calendars.
    assert list(embedded.fed_meetings) == list(data.fed_meetings[:8])
    assert list(embedded.boj_meetings) == list(data.boj_meetings[:4])


def test_seed_articles_snapshot_is_one_override_away(pair):
    embedded, _ = pair
    seed = load_config(["snapshot=seed_2025_12"]).snapshot
    assert seed.date == embedded.date and (seed.jgb10, seed.ust10) == (1.91, 3.72)


def test_calibration_window_is_one_source_of_truth():
    cfg = load_config([f"data.dir={SHARED_DATA}"], config_name="moments")
    window = cfg.model.calibration_window
    assert (window.start, window.end) == ("1993-01-01", "2009-12-31")
    assert (cfg.moments.start, cfg.moments.end) == (window.start, window.end)
    moved = load_config([f"data.dir={SHARED_DATA}", "model.calibration_window.start=1995-01-01"],
                        config_name="moments")
    assert moved.moments.start == "1995-01-01"


def test_backtest_origins_from_2010_are_out_of_sample():
    from sim.backtest import in_window
    window = load_config().model.calibration_window
    assert in_window(np.datetime64("2009-12-25"), 4, window)      # reaches into January 2010
    assert in_window(np.datetime64("2003-01-31"), 52, window)
    assert not in_window(np.datetime64("2010-01-29"), 4, window)
    assert not in_window(np.datetime64("2024-12-27"), 52, window)


# --- point-in-time rules (docs/model.md, 17.2) -----------------------------------------------

from sim.datasnapshot import (POINT_IN_TIME, PRIORS_DATE, _has, insurer_hedge_ratio,  # noqa: E402
                              with_data_snapshot)


def _data(date, *more):
    return load_config(["snapshot=data", f"snapshot.date={date}", f"data.dir={SHARED_DATA}", *more])


def test_a_2005_origin_carries_the_2005_rules():
    cfg, today = _data("2005-06-30"), load_config()
    boj = cfg.model.policy.boj
    # the BoJ's preferred spacing is kept at every date (measured: docs/model.md, 17.2)
    assert boj.min_spacing_months == today.model.policy.boj.min_spacing_months == 6.0
    has = lambda key: _has(cfg, key.split("."))  # noqa: E731
    fx_ref = cfg.snapshot.usdjpy if has("model.policy.boj.neutral_from") else 150.0
    assert boj.fx_reference == fx_ref and 100 < cfg.snapshot.usdjpy < 120
    hedge = 0.8 if has("investors.life_insurers.threshold_distance") else 0.444
    assert cfg.investors["life_insurers"].hedge_ratio == hedge
    gpif = cfg.investors["gpif"]
    assert gpif.foreign_weight == gpif.target_weight
    # what the rules leave alone: holdings, the carry stock, the calendars' shape, the macro gaps
    for name, cls in today.investors.items():
        assert cfg.investors[name].holdings == cls.holdings, name
    assert (cfg.snapshot.jp_inflation, cfg.snapshot.us_activity_gap) == (2.0, 0.0)
    assert len([d for d in cfg.snapshot.boj_meetings if d.startswith("2006")]) == 12


def test_every_rule_is_applied_to_the_keys_the_config_has():
    """Once another part of the model adds a key a rule names (neutral_from, yields.anchor), this
    test holds the rule to it: a 2005 config must carry the rule's value."""
    cfg = _data("2005-06-30")
    levels = {"date": "2005-06-30", "usdjpy": cfg.snapshot.usdjpy,
              "fed_rate": cfg.snapshot.fed_rate, "boj_rate": cfg.snapshot.boj_rate}
    applied = [r.key for r in POINT_IN_TIME if _has(cfg, r.key.split("."))
               and (not r.requires or _has(cfg, r.requires.split(".")))]
    for rule in POINT_IN_TIME:
        if rule.key in applied:
            value = _get_typed(cfg, rule.key)
            value = getattr(value, "value", value)          # an Enum's text
            assert value == rule.value(lambda k: _get_typed(cfg, k), levels), rule.key
    assert "investors.gpif.foreign_weight" in applied
    assert "snapshot.carry_positions" in applied


def test_carry_positions_scale_with_the_policy_differential():
    """The BIS estimate is the stock at the July 2024 differential: the replay's snapshot keeps
    it whole; at zero rates the carry classes start near empty; the scale multiplies every
    draw of the holdings' prior, so the mean drawn stock scales with it."""
    from sim.datasnapshot import CARRY_REFERENCE, CARRY_UNWIND, carry_scale

    july = _data("2024-07-05")
    assert july.snapshot.carry_positions == 1.0
    assert july.snapshot.fed_rate - july.snapshot.boj_rate == pytest.approx(CARRY_REFERENCE[1])
    zirp = _data("2012-06-29")
    assert zirp.snapshot.carry_positions == carry_scale(
        {"date": "2012-06-29", "fed_rate": zirp.snapshot.fed_rate,
         "boj_rate": zirp.snapshot.boj_rate}, 13.0) < 0.01
    assert carry_scale({"date": "2012-06-29", "fed_rate": 0.125, "boj_rate": 0.5}, 13.0) == 0.0
    # after the August-2024 unwind: what it left (30%), rebuilding with the leveraged class's
    # re-entry time towards the configs' positions
    rebuild = july.investors["leveraged"].rebuild_weeks
    for day, weeks in (("2024-08-09", 0.0), ("2024-09-27", 7.0), ("2025-06-27", 46.0)):
        expected = round(1.0 - CARRY_UNWIND[1] * math.exp(-weeks / rebuild), 4)
        assert _data(day).snapshot.carry_positions == expected, day
    assert CARRY_UNWIND[1] == 0.70 and _data("2024-08-09").snapshot.carry_positions == 0.3

    from sim.inputs import build_inputs, path_parameters
    base = load_config(["sampler.paths=400"])
    half = load_config(["sampler.paths=400", "snapshot.carry_positions=0.5"])
    names = list(build_inputs(base).investors)
    full_h = path_parameters(build_inputs(base), 0, 400)[1]["holdings"]
    half_h = path_parameters(build_inputs(half), 0, 400)[1]["holdings"]
    for k, name in enumerate(names):
        # every carry class, and only they
        scale = 0.5 if base.investors[name].carry else 1.0
        np.testing.assert_allclose(half_h[:, k], scale * full_h[:, k], err_msg=name)
    k = names.index("leveraged")
    assert full_h[:, k].std() > 0                            # the prior's draws, not one value


def _get_typed(cfg, key):
    node = cfg
    for part in key.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node


def test_rules_stop_at_the_priors_date_and_can_be_switched_off():
    today = load_config()
    for date in ("2025-12-19", str(PRIORS_DATE)):
        cfg = _data(date)
        assert cfg.model.policy.boj == today.model.policy.boj
        assert cfg.investors == today.investors
    off = _data("2005-06-30", "snapshot.point_in_time=false")
    assert off.model.policy == today.model.policy and off.investors == today.investors


def test_the_backtest_path_applies_the_same_rules():
    base = _data("2025-12-19")
    typed = with_data_snapshot(base, MarketData(SHARED_DATA), "2005-06-30")
    composed = _data("2005-06-30")
    assert typed.model == composed.model and typed.investors == composed.investors
    assert typed.snapshot.carry_positions == composed.snapshot.carry_positions < 1.0
    assert base.model.policy.boj.min_spacing_months == 6.0     # the base config is untouched


def test_insurer_hedge_ratio_between_the_dated_figures():
    assert insurer_hedge_ratio("2003-01-31") == 0.8 and insurer_hedge_ratio("2025-06-30") == 0.444
    mid = insurer_hedge_ratio("2017-11-14")
    assert 0.444 < mid < 0.8 and abs(mid - (0.8 + 0.444) / 2) < 0.01
