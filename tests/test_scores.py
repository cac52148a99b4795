"""Forecast scores against closed forms, hand-computed cases and known sampling distributions.

Stochastic checks are seeded; each tolerance is a stated multiple of a standard error or a
stated test level, never a number read off a run.
"""
from __future__ import annotations

import numpy as np
import pytest
import scoringrules as sr
from scipy import stats

from sim import scores as S


def crps_normal(y, mu, sigma):
    """Closed-form CRPS of N(mu, sigma^2) at y (Gneiting and Raftery 2007)."""
    z = (y - mu) / sigma
    return sigma * (z * (2.0 * stats.norm.cdf(z) - 1.0) + 2.0 * stats.norm.pdf(z) - 1.0 / np.sqrt(np.pi))


def normal_case(n, m, seed):
    rng = np.random.default_rng(seed)
    mu = rng.normal(0.0, 1.0, n)
    sigma = rng.uniform(0.5, 2.0, n)
    obs = mu + sigma * rng.standard_normal(n)
    ens = mu[:, None] + sigma[:, None] * rng.standard_normal((n, m))
    return obs, ens, mu, sigma


# ---------------------------------------------------------------------------------------------
# CRPS
# ---------------------------------------------------------------------------------------------

def test_crps_fair_is_the_fair_estimator_of_scoringrules():
    """The O(m log m) form used equals scoringrules' pairwise fair estimator (an identity)."""
    obs, ens, _, _ = normal_case(40, 30, seed=1)
    np.testing.assert_allclose(S.crps(obs, ens), sr.crps_ensemble(obs, ens, estimator="fair"),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(S.crps(obs, ens, fair=False), sr.crps_ensemble(obs, ens, estimator="nrg"),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("m", [10, 2000])
def test_crps_fair_unbiased_for_the_normal_closed_form(m):
    """Mean of (ensemble CRPS - closed-form normal CRPS) is zero within 4 standard errors."""
    n = 4000 if m == 10 else 400
    obs, ens, mu, sigma = normal_case(n, m, seed=2)
    d = S.crps(obs, ens) - crps_normal(obs, mu, sigma)
    assert abs(d.mean()) < 4.0 * d.std(ddof=1) / np.sqrt(n)


def test_crps_plain_estimator_bias_is_the_known_one():
    """The plain (empirical-distribution) CRPS exceeds the truth by E|X - X'|/(2m) = sigma/(sqrt(pi) m)."""
    n, m = 4000, 10
    obs, ens, mu, sigma = normal_case(n, m, seed=3)
    excess = S.crps(obs, ens, fair=False) - crps_normal(obs, mu, sigma)
    bias = sigma / (np.sqrt(np.pi) * m)
    d = excess - bias
    se = d.std(ddof=1) / np.sqrt(n)
    assert abs(d.mean()) < 4.0 * se
    assert excess.mean() > 4.0 * se            # the bias is there and detectable at m = 10


def test_crps_missing_observation_is_nan():
    obs, ens, _, _ = normal_case(5, 20, seed=4)
    obs[2] = np.nan
    out = S.crps(obs, ens)
    assert np.isnan(out[2]) and np.all(np.isfinite(np.delete(out, 2)))


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="shape"):
        S.crps(np.zeros(3), np.zeros((4, 10)))


# ---------------------------------------------------------------------------------------------
# PIT
# ---------------------------------------------------------------------------------------------

def test_pit_uniform_for_a_calibrated_forecaster():
    """KS test of uniformity at the 1% level; an overconfident forecaster is rejected."""
    obs, ens, mu, sigma = normal_case(5000, 100, seed=5)
    u = S.pit(obs, ens)
    assert np.all((u > 0.0) & (u < 1.0))
    assert stats.kstest(u, "uniform").pvalue > 0.01
    narrow = mu[:, None] + 0.5 * (ens - mu[:, None])
    assert stats.kstest(S.pit(obs, narrow), "uniform").pvalue < 1e-6


def test_pit_with_ties_is_uniform_when_randomised():
    """Integer outcomes (many ties): randomised PIT is uniform (KS at 1%); mid-ranks are not spread."""
    rng = np.random.default_rng(6)
    lam = rng.uniform(1.0, 4.0, 5000)
    obs = rng.poisson(lam).astype(float)
    ens = rng.poisson(lam[:, None], size=(5000, 50)).astype(float)
    assert stats.kstest(S.pit(obs, ens, seed=7), "uniform").pvalue > 0.01
    mid = S.pit(obs, ens, ties="mid")
    assert abs(mid.mean() - 0.5) < 4.0 * mid.std() / np.sqrt(mid.size)
    assert stats.kstest(mid, "uniform").pvalue < 1e-3


def test_pit_hand_cases():
    ens = np.array([[1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_allclose(S.pit([2.5], ens, ties="mid"), [2.5 / 5])   # 2 below, 0 equal
    np.testing.assert_allclose(S.pit([2.0], ens, ties="mid"), [2.0 / 5])   # 1 below, 1 equal
    u = S.pit([9.0], ens, seed=1)                                          # all below
    assert 4 / 5 < u[0] < 1.0
    assert np.isnan(S.pit([np.nan], ens)[0])
    with pytest.raises(ValueError, match="ties"):
        S.pit([1.0], ens, ties="up")


# ---------------------------------------------------------------------------------------------
# Pinball loss, bands, Brier
# ---------------------------------------------------------------------------------------------

def test_quantile_loss_hand_cases():
    ens = np.tile(np.arange(1.0, 6.0), (3, 1))                  # quantiles: q=0.25 -> 2, q=0.5 -> 3
    obs = np.array([0.0, 10.0, 2.0])
    np.testing.assert_allclose(S.quantile_loss(obs, ens, 0.25), [0.75 * 2, 0.25 * 8, 0.0])
    np.testing.assert_allclose(S.quantile_loss(obs, ens, 0.5), [0.5 * 3, 0.5 * 7, 0.5 * 1])
    with pytest.raises(ValueError, match="q="):
        S.quantile_loss(obs, ens, 1.0)


def test_band_hits_hand_cases_and_calibrated_coverage():
    ens = np.tile(np.arange(1.0, 102.0), (4, 1))               # 5% quantile 6, 95% quantile 96
    np.testing.assert_array_equal(S.band_hits([6.0, 5.9, 96.0, 96.1], ens, 0.9),
                                  [True, False, True, False])
    obs, ens, _, _ = normal_case(5000, 400, seed=8)
    for level in (0.5, 0.9):
        rate = S.band_hits(obs, ens, level).mean()
        assert abs(rate - level) < 4.0 * np.sqrt(level * (1 - level) / obs.size)
    with pytest.raises(ValueError, match="non-finite"):
        S.band_hits([np.nan], ens[:1], 0.9)


def test_pit_hits_cover_exactly_where_the_forecast_has_an_atom():
    """A calibrated forecast with an atom of 20% at zero (as the largest rally within a month):
    members' quantiles hold the atom whole and over-cover; the randomised PIT covers 90%."""
    rng = np.random.default_rng(21)
    n, m = 6000, 400

    def draw(size):
        x = rng.exponential(2.0, size)
        return np.where(rng.random(size) < 0.2, 0.0, x)

    obs, ens = draw(n), draw((n, m))
    se = np.sqrt(0.9 * 0.1 / n)
    by_members = S.band_hits(obs, ens, 0.9).mean()
    by_pit = S.pit_hits(S.pit(obs, ens, seed=3), 0.9).mean()
    assert by_members > 0.9 + 6 * se                      # about 0.95: the atom counts whole
    assert abs(by_pit - 0.9) < 4 * se
    np.testing.assert_array_equal(S.pit_hits([0.049, 0.05, 0.95, 0.951], 0.9),
                                  [False, True, True, False])
    with pytest.raises(ValueError, match="non-finite"):
        S.pit_hits([np.nan], 0.9)


def test_brier_hand_cases_and_event_probability():
    np.testing.assert_allclose(S.brier([0.0, 1.0, 0.3, 0.8], [0, 0, 1, 1]), [0.0, 1.0, 0.49, 0.04])
    np.testing.assert_allclose(S.brier(np.array([0.25]), np.array([True])), [0.5625])
    np.testing.assert_allclose(S.event_probability([[1.0, 5.0, 6.0, 10.0]], 5.0), [0.5])
    with pytest.raises(ValueError, match="prob"):
        S.brier([1.2], [1])
    with pytest.raises(ValueError, match="event"):
        S.brier([0.2], [2])


def test_event_power_independent_origins_match_the_binomial():
    """One-step windows: events are independent Bernoulli(p_a). With constant p_a = 0.3 and
    p_b = 0.15 at 50 origins, the loss difference is -0.2325 at an event and +0.0675 otherwise,
    so a is better exactly when 12 or more of the 50 origins (0.225 n) hold an event; the
    significant share is the binomial mass of the event counts whose paired t-test (DM at lag 0)
    rejects."""
    n, n_sim = 50, 4000
    r = S.event_power(np.full(n, 0.3), np.full(n, 0.15), window=1, lags=0, n_sim=n_sim, seed=5)
    k = np.arange(n + 1)
    pmf = stats.binom.pmf(k, n, 0.3)
    better = pmf[k >= 12].sum()
    assert abs(r.better - better) < 4.0 * np.sqrt(better * (1 - better) / n_sim)
    sig = 0.0
    for kk in range(1, n):
        d = np.where(np.arange(n) < kk, -0.2325, 0.0675)
        mean, _, p = S.diebold_mariano(d, np.zeros(n), 0)
        sig += pmf[kk] * (mean < 0 and p < 0.05)
    assert abs(r.significant - sig) < 4.0 * np.sqrt(sig * (1 - sig) / n_sim)
    assert abs(r.events.mean() - 15.0) < 4.0 * np.sqrt(n * 0.21 / n_sim)
    assert r.at_most(n) == 1.0 and r.at_most(-1) == 0.0


def test_event_power_overlapping_windows():
    """Three-step windows with a constant hazard: every origin's event probability is p, and the
    count's variance is the sum over origin pairs of the covariances of windows sharing 3 - k
    steps, P(both) = 1 - 2 (1 - q)^3 + (1 - q)^(3 + k); the simulated mean and variance within
    4 standard errors (the variance's from the counts' own fourth moment)."""
    n, w, p, n_sim = 120, 3, 0.1, 4000
    r = S.event_power(np.full(n, p), np.full(n, 0.05), window=w, lags=S.overlap_lags(w),
                      n_sim=n_sim, seed=6)
    q1 = (1.0 - p) ** (1.0 / w)               # 1 - hazard
    cov = [p * (1 - p)] + [1 - 2 * q1 ** w + q1 ** (w + k) - p * p for k in range(1, w)]
    var = n * cov[0] + 2 * sum((n - k) * cov[k] for k in range(1, w))
    x = r.events.astype(float)
    assert abs(x.mean() - n * p) < 4.0 * np.sqrt(var / n_sim)
    m4 = np.mean((x - x.mean()) ** 4)
    assert abs(x.var() - var) < 4.0 * np.sqrt((m4 - x.var() ** 2) / n_sim)
    assert var > 2.0 * n * p * (1 - p)        # the overlap matters: far from independent


def test_event_samples_and_power_against_a_plain_loop():
    """Varying probabilities, three-step windows: the events equal a loop over the same uniforms
    (a crash at step s when u_s < 1 - (1 - p_s)^(1/3), the last origin's hazard past the end; an
    event at origin t when steps t, t+1 or t+2 crash), and the power's shares equal the loop's
    Brier comparison. A window looking backwards, or no crashes past the last origin, fails."""
    p = np.array([0.05, 0.30, 0.10, 0.60, 0.20, 0.40])
    b = np.array([0.10, 0.10, 0.10, 0.10, 0.10, 0.10])
    n, w, n_sim, seed = p.size, 3, 400, 11
    u = np.random.default_rng(seed).random((n_sim, n + w - 1))
    q = 1.0 - (1.0 - np.append(p, [p[-1]] * (w - 1))) ** (1.0 / w)
    want = np.zeros((n_sim, n), dtype=bool)
    for i in range(n_sim):
        for t in range(n):
            want[i, t] = any(u[i, t + j] < q[t + j] for j in range(w))
    np.testing.assert_array_equal(S.event_samples(p, w, n_sim, seed), want)
    r = S.event_power(p, b, w, 2, n_sim=n_sim, seed=seed)
    better = significant = 0
    for i in range(n_sim):
        mean, _, pv = S.diebold_mariano((p - want[i]) ** 2, (b - want[i]) ** 2, 2)
        better += mean < 0
        significant += (mean < 0) and (pv < 0.05)
    assert r.better == better / n_sim and r.significant == significant / n_sim
    np.testing.assert_array_equal(r.events, want.sum(axis=1))


def test_event_power_equal_forecasters_and_bad_input():
    p = np.linspace(0.01, 0.2, 30)
    r = S.event_power(p, p, window=2, lags=2, n_sim=100)
    assert r.better == 0.0 and r.significant == 0.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        S.event_power(p + 0.9, p, 1, 0)
    with pytest.raises(ValueError, match="shape"):
        S.event_power(p, p[:-1], 1, 0)
    with pytest.raises(ValueError, match="window=0"):
        S.event_power(p, p, 0, 0)
    with pytest.raises(ValueError, match="n_sim"):
        S.event_power(p, p, 1, 0, n_sim=1)


# ---------------------------------------------------------------------------------------------
# HAC standard error, coverage interval, Diebold-Mariano
# ---------------------------------------------------------------------------------------------

def test_hac_hand_cases():
    x = np.array([1.0, 3.0, 2.0, 6.0])
    d = x - x.mean()
    mean, se = S.hac_mean(x, 0)
    assert mean == pytest.approx(3.0) and se == pytest.approx(np.sqrt(np.mean(d ** 2) / 4))
    g0, g1 = np.mean(d ** 2), np.sum(d[1:] * d[:-1]) / 4
    assert S.hac_mean(x, 1)[1] == pytest.approx(np.sqrt((g0 + 2 * 0.5 * g1) / 4))
    with pytest.raises(ValueError, match="lags"):
        S.hac_mean(x, 4)
    with pytest.raises(ValueError, match="non-finite"):
        S.hac_mean([1.0, np.nan, 2.0], 0)


def test_hac_matches_the_long_run_variance_of_an_ar1():
    """Newey-West on AR(1) series, phi = 0.5, unit shocks: long-run variance 1/(1 - phi)^2 = 4.

    The average of n se^2 over replications equals the exact finite-sample expectation of the
    Bartlett estimator (computed from the AR(1) covariance matrix) within 4 standard errors.
    That expectation lies below 4 (about 3.45 here: the kernel's down-weighting of the
    autocovariances and the estimated mean), but above the iid variance 4/3 that lags = 0
    would use: the correction goes most of the way.
    """
    phi, n, lags, reps = 0.5, 400, 12, 600
    rng = np.random.default_rng(9)
    e = rng.standard_normal((reps, n))
    x = np.empty_like(e)
    x[:, 0] = e[:, 0] / np.sqrt(1 - phi ** 2)                 # stationary start
    for t in range(1, n):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    mean, se = S.hac_mean(x, lags)
    lrv_hat = n * se ** 2

    idx = np.arange(n)
    cov = phi ** np.abs(idx[:, None] - idx[None, :]) / (1 - phi ** 2)
    row = cov.mean(axis=1)
    v = row.mean()
    expected = 0.0
    for k in range(lags + 1):
        t = np.arange(n - k)
        gk = np.sum(cov[t, t + k] - row[t] - row[t + k] + v) / n
        expected += gk if k == 0 else 2.0 * (1.0 - k / (lags + 1.0)) * gk
    assert abs(lrv_hat.mean() - expected) < 4.0 * lrv_hat.std(ddof=1) / np.sqrt(reps)
    assert 1.0 / (1 - phi ** 2) + 0.75 * (4.0 - 1.0 / (1 - phi ** 2)) < expected < 4.0
    # The sampling sd of the means is the closed-form one (a check on the simulation itself).
    sd_exact = np.sqrt(cov.sum()) / n
    assert abs(mean.std(ddof=1) / sd_exact - 1.0) < 4.0 / np.sqrt(2 * reps)


def overlapping_sums(rng, reps, n, h):
    """Sums of h consecutive iid N(0, 1) shocks at n consecutive origins: an MA(h - 1)."""
    c = np.concatenate([np.zeros((reps, 1)), np.cumsum(rng.standard_normal((reps, n + h)), axis=1)], axis=1)
    return c[:, h:h + n] - c[:, :n]


def test_coverage_interval_covers_the_true_rate_with_overlapping_origins():
    """90% bands of 3-step sums at 180 monthly origins: the 95% interval holds the true 0.9 in
    at least 92% of 400 replications (95% nominal, minus 3 binomial standard errors of 1.1%)."""
    rng = np.random.default_rng(10)
    h, n, reps = 3, 180, 400
    y = overlapping_sums(rng, reps, n, h)
    hits = np.abs(y) <= stats.norm.ppf(0.95) * np.sqrt(h)
    inside = 0
    for row in hits:
        rate, lo, hi = S.coverage_interval(row, S.overlap_lags(h))
        assert lo <= rate <= hi
        inside += lo <= 0.9 <= hi
    assert inside / reps > 0.95 - 3 * np.sqrt(0.95 * 0.05 / reps)
    rate, lo, hi = S.coverage_interval(np.ones(100), 4)         # all hits: a proper interval
    assert rate == 1.0 and hi == 1.0 and 0.8 < lo < 1.0


def test_diebold_mariano_at_zero_lags_is_the_paired_t_test():
    rng = np.random.default_rng(11)
    a, b = rng.standard_normal(80), rng.standard_normal(80) + 0.3
    mean, t, p = S.diebold_mariano(a, b, 0)
    ref = stats.ttest_rel(a, b)
    assert mean == pytest.approx(np.mean(a - b))
    assert t == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    assert S.diebold_mariano(a, a, 2) == (0.0, 0.0, 1.0)


@pytest.mark.parametrize("h", [1, 3, 12])
def test_diebold_mariano_size_and_power(h):
    """Two equally accurate forecasters of overlapping h-month changes at 180 monthly origins:
    rejections at 5% within 4 binomial standard errors of 5% (2,000 replications); a forecaster
    with three times the error noise is rejected in at least 95% of them, with the right sign."""
    rng = np.random.default_rng(12 + h)
    reps, n = 2000, 180
    y = overlapping_sums(rng, reps, n, h)
    noise = 0.5 * np.sqrt(h)
    loss_a = np.abs(y - noise * rng.standard_normal((reps, n)))
    loss_b = np.abs(y - noise * rng.standard_normal((reps, n)))
    lags = S.overlap_lags(h)
    _, _, p = S.diebold_mariano(loss_a, loss_b, lags)
    size = np.mean(p < 0.05)
    assert abs(size - 0.05) < 4.0 * np.sqrt(0.05 * 0.95 / reps)
    worse = np.abs(y - 3.0 * noise * rng.standard_normal((reps, n)))
    mean, _, p = S.diebold_mariano(loss_a, worse, lags)
    assert np.mean((p < 0.05) & (mean < 0)) > 0.95


# ---------------------------------------------------------------------------------------------
# Largest yen rally
# ---------------------------------------------------------------------------------------------

def test_largest_rally_hand_cases():
    s = np.array([100.0, 110.0, 88.0, 105.0, 120.0, 108.0])   # 110 -> 88: 20%; 120 -> 108: 10%
    assert S.largest_rally(np.log(s)) == pytest.approx(20.0)
    assert S.largest_rally(np.log([100.0, 101.0, 130.0])) == 0.0   # USD/JPY only rises
    both = np.log(np.stack([s, s[::-1]]))                           # axis and shape
    np.testing.assert_allclose(S.largest_rally(both.T, axis=0), S.largest_rally(both))
    # Cumulative changes from an origin at 0: the origin counts as a peak.
    assert S.largest_rally(np.log([0.9, 0.95]), origin=0.0) == pytest.approx(10.0)
    assert S.largest_rally(np.log([[0.9], [1.2]]), origin=0.0) == pytest.approx([10.0, 0.0])


def test_largest_rally_matches_the_kernel():
    """The kernel's largest_yen_appreciation equals largest_rally of its own USD/JPY path.

    Default model (crashes, interventions, regimes), 24 months weekly; the sample paths are the
    first paths of the run. The log-point definition 100 (peak - x) would differ by more than
    1 point on these paths, so the comparison tells the two apart.
    """
    from sim.pipeline import simulate
    from tests.helpers import small

    n = 128
    cfg = small([f"sampler.sample_paths={n}", "output.format=none", "output.plots=false"],
                paths=n, months=24)
    ds, _ = simulate(cfg, progress=False)
    x = np.log(ds["sample_usdjpy"].transpose("sample", "time").values)
    kernel = ds["largest_yen_appreciation"].values[:n]
    np.testing.assert_allclose(S.largest_rally(x), kernel, rtol=0, atol=1e-9)
    in_logs = 100.0 * (np.maximum.accumulate(x, axis=-1) - x).max(axis=-1)
    assert np.max(np.abs(in_logs - kernel)) > 1.0
