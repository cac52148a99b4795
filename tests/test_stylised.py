"""Stylised facts the default (calibrated) model must reproduce, each with a margin of several
Monte Carlo standard errors: negatively skewed carry returns (Brunnermeier, Nagel and Pedersen
2008); crash risk and yen moves growing with carry positioning; volatility rising with unwinds;
pension-fund rebalancing leaning against yen moves."""
from __future__ import annotations

import numpy as np
import pytest

from sim import calibration as C
from tests.helpers import run, small, step_years

Z = 4.0


def paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    d = b - a
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


@pytest.fixture(scope="module")
def crowding():
    """The default model with little and with much leveraged carry, common random numbers."""
    runs = []
    for holdings in (160.0, 500.0):
        cfg = small([f"investors.leveraged.holdings={holdings}",
                     "investors.leveraged.holdings_prior.dist=fixed"], paths=4000, months=24)
        runs.append(run(cfg))
    return runs


def test_carry_returns_are_negatively_skewed(default_run):
    cfg, r = default_run
    skew, se = C.skewness_se(C.carry_returns(r, step_years(cfg)))
    assert skew < -Z * se, (skew, se)


def test_crash_risk_rises_with_positioning(crowding):
    low, high = crowding
    diff, se = paired(low["crashes"].values, high["crashes"].values)
    assert diff > Z * se, (diff, se)


def test_yen_moves_are_larger_when_positioning_is_crowded(crowding):
    low, high = crowding
    diff, se = paired(low["largest_yen_appreciation"].values, high["largest_yen_appreciation"].values)
    assert diff > Z * se, (diff, se)
    # The worst week of each path is worse too.
    worst = [np.diff(np.log(x["usdjpy"].values), axis=1).min(axis=1) for x in crowding]
    diff, se = paired(-worst[0], -worst[1])
    assert diff > Z * se, (diff, se)


def test_volatility_rises_with_unwinds(default_run):
    """Weekly yen moves are larger in the weeks with the largest unwinds than in the others."""
    _, r = default_run
    flows = np.diff(r["unwind"].values, axis=1)
    moves = np.abs(np.diff(np.log(r["usdjpy"].values), axis=1))
    big = flows > np.quantile(flows, 0.9)
    # Per path: mean move in big-unwind weeks minus the rest; paths are independent.
    has_both = big.any(axis=1) & (~big).any(axis=1)
    per_path = np.array([moves[i, big[i]].mean() - moves[i, ~big[i]].mean()
                         for i in np.flatnonzero(has_both)])
    diff, se = float(per_path.mean()), float(per_path.std(ddof=1) / np.sqrt(len(per_path)))
    assert diff > Z * se, (diff, se)
    vol = r["fx_vol"].values[:, 1:]
    assert vol[big].mean() > vol[~big].mean()


def test_gpif_rebalancing_leans_against_yen_moves(default_run):
    """The pension fund buys foreign assets where the yen rallied most, sells where it fell most."""
    _, r = default_run
    fx_end = r["usdjpy"].values[:, -1]
    flows = r["unwind_by_investor"].sel(investor="gpif").values
    for paths, sign in ((fx_end < np.quantile(fx_end, 0.1), -1.0), (fx_end > np.quantile(fx_end, 0.9), 1.0)):
        x = flows[paths]
        assert sign * x.mean() > Z * x.std(ddof=1) / np.sqrt(len(x)), (sign, x.mean())
