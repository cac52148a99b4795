"""The kernel's normal distribution function (a table with quintic Hermite interpolation)
against scipy's ``ndtr``: documented error at most 1e-12 absolute on the whole real line."""
import math

import numpy as np
from scipy.special import ndtr

from sim import kernels as K
from sim import reference

BOUND = 1e-12
#: The density is the derivative of the interpolant; Newton steps need no more accuracy.
DENSITY_BOUND = 1e-9


def kernel_cdf_pdf(x):
    out = np.array([K.norm_cdf_pdf(v) for v in x])
    return out[:, 0], out[:, 1]


def density(x):
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def test_error_on_a_dense_grid_with_tails():
    x = np.concatenate([np.linspace(-40.0, 40.0, 400_001), np.linspace(-8.0, 8.0, 1_600_001)])
    cdf, pdf = reference.norm_cdf_pdf(x)
    assert np.abs(cdf - ndtr(x)).max() <= BOUND
    assert np.abs(pdf - density(x)).max() <= DENSITY_BOUND
    # The kernel's own function on a grid that is not aligned with the table's nodes.
    y = np.linspace(-9.1, 9.1, 100_003)
    kc, kp = kernel_cdf_pdf(y)
    assert np.abs(kc - ndtr(y)).max() <= BOUND
    assert np.abs(kp - density(y)).max() <= DENSITY_BOUND
    rc, rp = reference.norm_cdf_pdf(y)
    np.testing.assert_array_equal(kc, rc)  # the reference does the same arithmetic
    np.testing.assert_allclose(kp, rp, rtol=1e-14, atol=1e-16)


def test_nodes_cutoffs_and_special_values():
    nodes = -K.CDF_LIMIT + K.CDF_STEP * np.arange(K.CDF_TABLE.shape[0] + 1)
    special = [0.0, -0.0, K.CDF_LIMIT, -K.CDF_LIMIT, np.nextafter(K.CDF_LIMIT, 0.0),
               np.nextafter(-K.CDF_LIMIT, 0.0), 1e-300, -1e-300, 40.0, -40.0, 1e300, -1e300]
    x = np.concatenate([nodes, special])
    cdf, _ = kernel_cdf_pdf(x)
    assert np.abs(cdf - ndtr(x)).max() <= BOUND
    assert K.norm_cdf(0.0) == 0.5
    assert K.norm_cdf(math.inf) == 1.0 and K.norm_cdf(-math.inf) == 0.0
    assert math.isnan(K.norm_cdf(math.nan)) and math.isnan(K.norm_cdf_pdf(math.nan)[1])
    assert K.norm_cdf_pdf(math.inf)[1] == 0.0 and K.norm_cdf_pdf(-math.inf)[1] == 0.0
    r = reference.norm_cdf(np.array([math.inf, -math.inf, math.nan]))
    assert r[0] == 1.0 and r[1] == 0.0 and math.isnan(r[2])


def test_monotone_and_symmetric_within_the_bound():
    x = np.linspace(-K.CDF_LIMIT - 0.5, K.CDF_LIMIT + 0.5, 1_000_001)
    cdf, _ = reference.norm_cdf_pdf(x)
    assert np.diff(cdf).min() >= -1e-15
    assert np.abs(cdf + cdf[::-1] - 1.0).max() <= 2 * BOUND
