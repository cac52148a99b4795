"""Random streams: the generator itself, its normals, seeding and prior draws."""
import math

import numpy as np
import pytest
from numba import njit

from sim import kernels as K
from sim.config import PriorConfig
from sim.rng import block_seeds, draw_prior, parameter_uniforms


@njit
def _first_outputs(state, n):
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        out[i] = K.next_u64(state)
    return out


@njit
def _normals(state, n):
    out = np.empty(2 * n)
    for i in range(n):
        out[2 * i], out[2 * i + 1] = K.normal_pair(state)
    return out


def test_xoshiro_matches_reference_vector():
    # xoshiro256** from the state (1, 2, 3, 4): the reference implementation's first outputs.
    state = np.array([1, 2, 3, 4], dtype=np.uint64)
    out = _first_outputs(state, 4)
    assert out.tolist() == [11520, 0, 1509978240, 1215971899390074240]


def test_normals_have_unit_moments():
    z = _normals(block_seeds(7, 0, 1)[0], 200_000)
    n = len(z)
    assert abs(z.mean()) < 4 / math.sqrt(n)
    assert abs(z.var() - 1) < 4 * math.sqrt(2 / n)
    # Kurtosis 3 (fourth moment), standard error sqrt(96 / n) for a normal sample.
    assert abs(np.mean(z**4) - 3) < 4 * math.sqrt(96 / n)
    # Consecutive draws are uncorrelated.
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 4 / math.sqrt(n)


def test_block_seeds_depend_only_on_block_index():
    a = block_seeds(11, 0, 6)
    b = block_seeds(11, 4, 2)
    np.testing.assert_array_equal(a[4:], b)
    assert len({tuple(row) for row in a}) == 6


def test_parameter_uniforms_are_per_path_and_per_name():
    paths = np.arange(50_000)
    u = parameter_uniforms(3, "impact", paths)
    assert np.all((u > 0) & (u < 1))
    assert abs(u.mean() - 0.5) < 4 * math.sqrt(1 / 12 / len(u))
    np.testing.assert_array_equal(u[100:200], parameter_uniforms(3, "impact", paths[100:200]))
    v = parameter_uniforms(3, "holdings", paths)
    assert abs(np.corrcoef(u, v)[0, 1]) < 4 / math.sqrt(len(u))


_S2 = 0.09  # variance of the log for the lognormal case


@pytest.mark.parametrize("prior, central, mean, var, kurtosis", [
    (PriorConfig(dist="uniform", low=1.0, high=2.5), 1.75, 1.75, 1.5**2 / 12, 1.8),
    (PriorConfig(dist="triangular", low=160.0, high=500.0), 250.0, (160 + 250 + 500) / 3,
     (160**2 + 250**2 + 500**2 - 160 * 250 - 160 * 500 - 250 * 500) / 18, 2.4),
    (PriorConfig(dist="normal", sd=0.4), 2.0, 2.0, 0.16, 3.0),
    (PriorConfig(dist="lognormal", sd=0.3), 0.1, 0.1 * math.exp(_S2 / 2),
     0.01 * (math.exp(_S2) - 1) * math.exp(_S2),
     math.exp(4 * _S2) + 2 * math.exp(3 * _S2) + 3 * math.exp(2 * _S2) - 3),
])
def test_prior_draws_have_their_analytic_moments(prior, central, mean, var, kurtosis):
    u = parameter_uniforms(5, "x", np.arange(100_000))
    x = draw_prior(prior, central, u, uncertain=True)
    n = len(x)
    assert abs(x.mean() - mean) < 4 * math.sqrt(var / n)
    # Relative standard error of a sample variance: sqrt((kurtosis - 1) / n).
    assert abs(x.var() / var - 1) < 4 * math.sqrt((kurtosis - 1) / n)
    np.testing.assert_array_equal(draw_prior(prior, central, u, uncertain=False), central)
