"""Sensitivities and the reverse stress test."""
import math

import pytest
from scipy.stats import norm

from sim.reverse_stress import NoCrossing, reverse_stress
from sim.sensitivity import main as sensitivity_main
from sim.sensitivity import one_at_a_time

from tests.helpers import QUIET

OTHERS = ("retail", "life_insurers", "gpif", "banks", "investment_trusts")


def _full_exit_base(paths):
    """Only leveraged carry traders, all forced out by a +5pp BoJ move in the first week.

    Their unwind then equals their holdings, drawn per path from Normal(central, 50), so
    P(unwind > L) = 1 - Phi((L - central) / 50) and the central value at which it equals p is
    known in closed form.
    """
    return [*QUIET, f"sampler.paths={paths}", "sampler.horizon_months=6",
            *[f"investors.{c}.enabled=false" for c in OTHERS],
            "model.parameter_uncertainty=true",
            "investors.leveraged.holdings_prior={dist: normal, sd: 50.0}",
            "investors.leveraged.repatriation_prior={dist: fixed}",
            # Thresholds close to the snapshot signal, so that the move pushes every holder out.
            "investors.leveraged.threshold_distance=0.05", "investors.leveraged.threshold_width=0.05",
            "scenario.events=[{date: '2025-12-26', kind: boj_decision, value: 5.0}]"]


def test_reverse_stress_recovers_a_known_threshold():
    level, p, sd = 300.0, 0.3, 50.0
    exact = level - sd * norm.ppf(1 - p)
    res = reverse_stress(_full_exit_base(4000), "investors.leveraged.holdings", 150.0, 400.0,
                         level, p)
    predicted_se = math.sqrt(p * (1 - p) / 4000) / (norm.pdf(norm.ppf(1 - p)) / sd)
    assert abs(res.value - exact) < 4 * predicted_se, (res.value, exact, predicted_se)
    assert 0.5 * predicted_se < res.se < 2 * predicted_se, (res.se, predicted_se)


def test_reverse_stress_refuses_a_bracket_without_crossing():
    with pytest.raises(NoCrossing, match="does not cross"):
        reverse_stress(_full_exit_base(500), "investors.leveraged.holdings", 500.0, 600.0, 300.0, 0.3)


def test_one_at_a_time_swings_have_the_expected_signs():
    base = ["sampler.paths=1500", "sampler.horizon_months=12"]
    vary = [("investors.leveraged.holdings", 160.0, 500.0),
            ("model.fx.long_run_vol", 5.0, 15.0)]
    base_value, swings = one_at_a_time(base, vary)
    by_key = {s.key: s for s in swings}
    hold = by_key["investors.leveraged.holdings"]
    # Compensated crash jumps add no drift, so the crash intensity barely moves the mean unwind;
    # FX volatility does (carry-to-risk and drawdowns).
    crash = by_key["model.fx.long_run_vol"]
    assert hold.at_high - hold.at_low > 4 * (hold.se_low + hold.se_high)
    assert crash.at_high - crash.at_low > 4 * (crash.se_low + crash.se_high)
    assert swings[0].width >= swings[1].width


def test_sensitivity_command_writes_tornado(tmp_path, capsys):
    code = sensitivity_main(["sampler.paths=300", "sampler.horizon_months=6", "--out", str(tmp_path),
                             "--vary", "model.fx.crash_intensity=0.1,0.9"])
    assert code == 0
    assert (tmp_path / "tornado.png").stat().st_size > 0
    assert "model.fx.crash_intensity" in (tmp_path / "sensitivity.md").read_text()
