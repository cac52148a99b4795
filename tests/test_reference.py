"""The numba kernel against the vectorised-numpy reference (sim.reference) on the same shocks.

Both implementations do the same floating-point operations in the same order, with the same
solver and the same tabulated normal distribution function; they differ only in the library
versions of exp, log, log1p and sqrt (numpy against LLVM's libm), each within an ulp or so.
Most outputs come out bit-identical; the largest relative difference of any output on these
runs is of order 1e-13, and about 3e-12 on 20,000 paths over two years.

The asserted bound, rtol = atol = 1e-6 (atol in each output's units), is set by the solver
instead: its residual tolerance is 1e-9 in log USD/JPY, and a solver that stops at another
point within that tolerance computes the same model.  Should rounding put a residual on the
other side of the tolerance, the two implementations stop one iteration apart and later
outputs differ by about that much times the flows' sensitivity.  As a measure of the scale,
changing the Illinois halving factor from 0.5 to 0.4, which moves the stopping point of every
bracketed step within the tolerance, changes outputs by up to 6e-8 relative and 1.1e-6 USD bn;
the bound allows for that with a margin, and a modelling difference is far larger.  Discrete
outcomes (crashes, interventions, meeting moves, stress regime, non-converged steps, first
large week) must match exactly.
"""
import numpy as np
import pytest

from sim import kernels as K
from sim import layout as L
from sim import reference
from sim.engine import simulate_range
from sim.inputs import build_inputs
from sim.rng import block_seeds

from tests.helpers import small

RTOL, ATOL = 1e-6, 1e-6
#: Discrete outcomes, which must match exactly.
COUNTS = ("nonconverged_steps", "crashes", "interventions", "first_large_step", "fail_step")


def both(overrides, paths=300, months=12):
    """Kernel and reference outputs, (PATH_OUT, CLASS_OUT, TIME_OUT) records each, on the same
    draws."""
    inputs = build_inputs(small(overrides, paths=paths, months=months))
    chunk = simulate_range(inputs, 0, paths)
    kern = (chunk.paths, chunk.classes, chunk.series)
    draws = reference.shocks(inputs.plan.seed, inputs.plan.block_size, paths, len(inputs.dates) - 1)
    return kern, reference.simulate(inputs, chunk.params, chunk.class_params, draws)


def meeting_moves(series, name):
    return np.count_nonzero(np.diff(series[name], axis=1), axis=1)


VARIANTS = {
    "default": [],
    "scripted stress and yen shock": ["scenario=risk_off"],
    "scripted intervention": ["scenario=mof_intervention"],
    "decision with odds": ["scenario=hawkish_boj"],
    "no price impact": ["model.impact.price_impact=0"],
    "solver cut short": ["model.feedback.max_iter=3"],
    "flows once a step": ["model.feedback.clock=step"],
    "daily grid, weekly checks": ["sampler.step=daily", "sampler.horizon_months=3"],
    "monthly grid": ["sampler.step=monthly"],
    "flows off": ["model.impact.private_flows=false", "scenario=mof_intervention"],
}


@pytest.mark.parametrize("overrides", VARIANTS.values(), ids=VARIANTS.keys())
def test_kernel_matches_numpy_reference(overrides):
    (kp, kc, kt), (rp, rc, rt) = both(overrides)
    for name in COUNTS:
        np.testing.assert_array_equal(rp[name], kp[name], err_msg=name)
    np.testing.assert_array_equal(rt["stress"], kt["stress"])
    for name in ("boj_rate", "fed_rate"):
        np.testing.assert_array_equal(meeting_moves(rt, name), meeting_moves(kt, name))
    for name in L.PATH_OUT.names:
        np.testing.assert_allclose(rp[name], kp[name], rtol=RTOL, atol=ATOL, err_msg=name)
    np.testing.assert_allclose(L.columns(rc), L.columns(kc), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(L.columns(rt), L.columns(kt), rtol=RTOL, atol=ATOL)
    assert not kp["fail_step"].any()


def test_variants_exercise_what_they_compare():
    """The comparisons above are not vacuous: the events they count do happen."""
    (kp, _, kt), _ = both([])
    assert kp["crashes"].sum() > 0 and kp["interventions"].sum() > 0
    assert meeting_moves(kt, "boj_rate").sum() > 0 and meeting_moves(kt, "fed_rate").sum() > 0
    assert kt["stress"].any()
    (kp, _, _), _ = both(VARIANTS["solver cut short"])
    assert kp["nonconverged_steps"].sum() > 0


def test_draw_layout_matches_the_kernel_order():
    """DRAWS declares the drawing order: the exported shocks are the kernel's stream read in
    that order (seven factor normals, two decision normals and the volatility normal, five uniforms)."""
    draws = reference.shocks(7, 4, 1, 3)
    state = block_seeds(7, 0, 1)[0].copy()
    expected = []
    for _ in range(3):
        for _ in range(5):
            expected.extend(K.normal_pair(state))
        expected.extend(K.uniform(state) for _ in range(5))
    assert L.DRAWS.itemsize == 15 * 8
    np.testing.assert_array_equal(np.ascontiguousarray(draws[0]).view(np.float64), expected)
