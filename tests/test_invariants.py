"""Accounting identities, reproducibility and common random numbers."""
import numpy as np
import pytest

from sim import kernels as K
from sim.engine import run

from conftest import QUIET, small


def test_holdings_are_conserved(default_run):
    _, r = default_run
    initial = r.cls_path_par[:, :, K.CP_HOLDINGS]
    unwound = r.cls_out[:, :, K.OC_UNWIND]
    held = r.cls_out[:, :, K.OC_HOLDINGS]
    np.testing.assert_allclose(held + unwound, initial, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(unwound.sum(axis=1), r.path_out[:, K.O_UNWIND], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(r.cls_out[:, :, K.OC_REPAT].sum(axis=1), r.path_out[:, K.O_REPAT],
                               rtol=1e-12, atol=1e-9)


def test_gpif_leans_against_the_yen(default_run):
    """The pension fund buys foreign assets on paths where the yen appreciated most."""
    _, r = default_run
    gpif = r.inputs.investors.index("gpif")
    fx_end = r.time_out[:, -1, K.V_USDJPY]
    strong_yen = fx_end < np.quantile(fx_end, 0.1)
    assert r.cls_out[strong_yen, gpif, K.OC_UNWIND].mean() < 0.0


def test_zero_price_impact_gives_amplification_of_exactly_one():
    r = run(small(["model.impact.price_impact=0"], paths=1000), progress=False)
    assert np.all(r.path_out[:, K.O_AMPLIFICATION] == 1.0)


def test_feedback_amplifies_with_price_impact(default_run):
    _, r = default_run
    assert np.median(r.path_out[:, K.O_AMPLIFICATION]) > 1.0
    assert r.path_out[:, K.O_NONCONV].sum() < 0.01 * r.path_steps


def test_identical_for_thread_counts_and_chunk_sizes():
    base = ["sampler.block_size=64"]
    a = run(small([*base, "sampler.threads=1", "sampler.chunk_paths=128"], paths=700), progress=False)
    b = run(small([*base, "sampler.threads=2", "sampler.chunk_paths=512"], paths=700), progress=False)
    for name in ("path_out", "cls_out", "time_out", "path_par", "cls_path_par"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_shocks_do_not_depend_on_parameters_or_investor_classes():
    """Common random numbers: without price impact, market paths ignore investors entirely."""
    a = run(small(QUIET, paths=500), progress=False)
    b = run(small([*QUIET, "investors.leveraged.enabled=false", "investors.banks.holdings=10",
                   "model.macro.jp_inflation.vol=0.9"], paths=500), progress=False)
    same = [K.V_JPA, K.V_USI, K.V_USA, K.V_JGB, K.V_UST, K.V_USDJPY]
    np.testing.assert_array_equal(a.time_out[:, :, same], b.time_out[:, :, same])
    # The changed volatility scales the same shocks: deviations from the mean path are 1.5x.
    dev_a = a.time_out[:, 1:, K.V_JPI] - a.time_out[:, 1:, K.V_JPI].mean(axis=0)
    dev_b = b.time_out[:, 1:, K.V_JPI] - b.time_out[:, 1:, K.V_JPI].mean(axis=0)
    np.testing.assert_allclose(dev_b, 1.5 * dev_a, rtol=1e-9, atol=1e-12)
