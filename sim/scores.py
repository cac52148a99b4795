"""Scores of ensemble forecasts against outcomes, and the tests that compare forecasters.

Pure functions of arrays, used by the backtest. A forecast is an ensemble: its members lie on
the last axis, so ``obs`` has shape ``(n,)`` and ``ens`` shape ``(n, m)`` (any leading shape
works as long as ``ens.shape[:-1] == obs.shape``).

Scores (lower is better, except PIT values and band hits, which are checked for calibration):

- ``crps``: continuous ranked probability score, from scoringrules, fair estimator by default;
- ``pit``: probability integral transform values, ties broken at random (seeded) or mid-rank;
- ``quantile_loss``: pinball loss of the ensemble's q-quantile;
- ``band_hits`` / ``pit_hits`` / ``coverage_interval``: does the outcome lie in the central
  band (of the members, or of the randomised PIT, which stays exact where the forecast has an
  atom), and the coverage rate with a confidence interval that allows for overlapping forecast
  origins;
- ``event_probability`` / ``brier``: probability of an event and its Brier score;
- ``event_samples`` / ``event_power``: if one forecaster's event probabilities were right, the
  events a sample of the same origins would hold, and how often it would score that forecaster
  better than another (and significantly so): what a handful of crash events can decide.

Inference over forecast origins, which overlap when the horizon is longer than the spacing of
origins (a 12-month forecast made every month shares 11 months with the next one):

- ``hac_mean``: mean with a Newey-West (Bartlett kernel) standard error;
- ``diebold_mariano``: test of equal expected loss of two forecasters, HAC variance with the
  Harvey-Leybourne-Newbold small-sample correction and Student-t p-values.

And the one definition of the largest yen rally shared with the kernel: ``largest_rally``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scoringrules as sr
from scipy import stats

__all__ = ["crps", "pit", "quantile_loss", "band_hits", "pit_hits", "coverage_interval",
           "event_probability", "brier", "event_samples", "event_power", "hac_mean",
           "diebold_mariano", "overlap_lags", "largest_rally"]


def _obs_ens(obs, ens) -> tuple[np.ndarray, np.ndarray]:
    obs = np.asarray(obs, dtype=float)
    ens = np.asarray(ens, dtype=float)
    if ens.ndim != obs.ndim + 1 or ens.shape[:-1] != obs.shape:
        raise ValueError(f"ens must have shape obs.shape + (members,): obs {obs.shape}, ens {ens.shape}")
    if ens.shape[-1] < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {ens.shape[-1]}")
    return obs, ens


# ---------------------------------------------------------------------------------------------
# Scores of one forecast
# ---------------------------------------------------------------------------------------------

def crps(obs, ens, fair: bool = True) -> np.ndarray:
    """CRPS of each ensemble forecast, in the units of ``obs`` (scoringrules ``crps_ensemble``).

    ``fair=True`` (default) is the fair (unbiased) estimator of the CRPS of the distribution
    the members are drawn from: E|X - y| - E|X - X'| / 2 with the pair term divided by
    m(m - 1). The ensembles here are Monte Carlo samples of a predictive distribution, and
    that distribution is what is judged; the plain estimator (the CRPS of the empirical
    distribution of the members, ``fair=False``) exceeds it on average by E|X - X'| / (2m),
    which penalises small ensembles and would make forecasters with different numbers of
    paths incomparable. It is computed with scoringrules' probability-weighted-moment form,
    which is algebraically the fair estimator but costs O(m log m) instead of O(m^2)
    (``estimator="fair"`` loops over all pairs: seconds per forecast at m = 2,000).
    ``fair=False`` uses the quantile-decomposition form of the plain estimator.
    A missing (NaN) observation gives NaN.
    """
    obs, ens = _obs_ens(obs, ens)
    return np.asarray(sr.crps_ensemble(obs, ens, m_axis=-1, estimator="pwm" if fair else "qd",
                                       backend="numba"), dtype=float)


def pit(obs, ens, ties: str = "random", seed=0) -> np.ndarray:
    """Probability integral transform of each observation in its ensemble, in (0, 1).

    With ``b`` members below the observation and ``e`` equal to it, the rank of the
    observation among the m + 1 values is ``b`` plus a tie-break in {0, ..., e}:

    - ``ties="random"`` (default): PIT = (b + U (e + 1)) / (m + 1) with U uniform on (0, 1),
      drawn from ``numpy.random.default_rng(seed)``. If the observation and the members are
      exchangeable (a calibrated forecast), this is exactly uniform on (0, 1), also for
      quantities with atoms (policy rates on a grid, a "no change" benchmark), where any
      deterministic rule would pile values up.
    - ``ties="mid"``: the mid-rank, PIT = (b + (e + 1) / 2) / (m + 1), deterministic.

    A missing (NaN) observation gives NaN.
    """
    obs, ens = _obs_ens(obs, ens)
    m = ens.shape[-1]
    below = (ens < obs[..., None]).sum(axis=-1)
    equal = (ens == obs[..., None]).sum(axis=-1)
    if ties == "random":
        u = np.random.default_rng(seed).random(obs.shape)
    elif ties == "mid":
        u = np.full(obs.shape, 0.5)
    else:
        raise ValueError(f"ties={ties!r}: allowed are 'random' and 'mid'")
    out = (below + u * (equal + 1)) / (m + 1)
    return np.where(np.isnan(obs), np.nan, out)


def _check_prob(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name}={value}: allowed is a number strictly between 0 and 1")
    return value


def quantile_loss(obs, ens, q: float, method: str = "linear") -> np.ndarray:
    """Pinball loss of the ensemble's ``q``-quantile: q (y - x_q) if y > x_q, else (1 - q) (x_q - y).

    The quantile is ``numpy.quantile(ens, q, method=method)`` along the member axis (the
    default linear interpolation between order statistics); the loss is scoringrules'
    ``quantile_score``. A missing (NaN) observation gives NaN.
    """
    obs, ens = _obs_ens(obs, ens)
    q = _check_prob("q", q)
    xq = np.quantile(ens, q, axis=-1, method=method)
    return np.asarray(sr.quantile_score(obs, xq, q, backend="numpy"), dtype=float)


def band_hits(obs, ens, level: float, method: str = "linear") -> np.ndarray:
    """Whether each observation lies in its ensemble's central ``level`` band (edges included).

    The band runs from the (1 - level)/2 to the (1 + level)/2 quantile of the members
    (``numpy.quantile`` with ``method``). Edges count as inside, so a forecast with an atom
    (a degenerate band [a, a]) covers an observation equal to a. Observations must be finite:
    drop missing outcomes before scoring (a bool cannot say "unknown").
    """
    obs, ens = _obs_ens(obs, ens)
    level = _check_prob("level", level)
    if not np.all(np.isfinite(obs)):
        raise ValueError("band_hits: obs contains non-finite values; drop missing outcomes first")
    lo, hi = np.quantile(ens, [(1.0 - level) / 2.0, (1.0 + level) / 2.0], axis=-1, method=method)
    return (obs >= lo) & (obs <= hi)


def pit_hits(pit_values, level: float) -> np.ndarray:
    """Whether each randomised PIT value (:func:`pit`) lies in the central ``level`` band,
    [(1 - level)/2, (1 + level)/2]: the coverage of a calibrated forecast is ``level`` exactly,
    also where it has an atom.  Members' quantiles cannot say that: with a point mass of more
    than (1 - level)/2 at the edge of the support (no yen rally within a month, a policy rate
    that stays put), the band [q_lo, q_hi] holds the atom whole and covers more than ``level``
    of the outcomes of a calibrated forecast."""
    u = np.asarray(pit_values, dtype=float)
    level = _check_prob("level", level)
    if not np.all(np.isfinite(u)):
        raise ValueError("pit_hits: non-finite PIT values; drop missing outcomes first")
    return (u >= (1.0 - level) / 2.0) & (u <= (1.0 + level) / 2.0)


def event_probability(ens, threshold: float) -> np.ndarray:
    """Share of members strictly above ``threshold``: the forecast probability of that event."""
    ens = np.asarray(ens, dtype=float)
    return (ens > threshold).mean(axis=-1)


def brier(prob, event) -> np.ndarray:
    """Brier score (prob - event)^2 of event probabilities (scoringrules ``brier_score``).

    ``prob`` in [0, 1]; ``event`` is 0/1 or bool, of the same shape.
    """
    prob = np.asarray(prob, dtype=float)
    event = np.asarray(event)
    if prob.shape != event.shape:
        raise ValueError(f"prob and event must have the same shape: {prob.shape} vs {event.shape}")
    if not np.all((prob >= 0.0) & (prob <= 1.0)):
        raise ValueError("brier: prob must lie in [0, 1]")
    if not np.all((event == 0) | (event == 1)):
        raise ValueError("brier: event must be 0 or 1 (or bool)")
    return np.asarray(sr.brier_score(event.astype(float), prob, backend="numpy"), dtype=float)


def _check_probs(name: str, p) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    if p.ndim != 1 or p.size < 2:
        raise ValueError(f"{name}: need a 1-d series of at least 2 probabilities, got shape {p.shape}")
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise ValueError(f"{name}: probabilities must lie in [0, 1] (and be finite)")
    return p


def event_samples(prob, window: int, n_sim: int = 2000, seed=0) -> np.ndarray:
    """Samples of events at ``n`` origins drawn from the event probabilities ``prob`` taken as
    the truth, shape (n_sim, n), bool.

    Each origin step (a month) has an independent "crash" with hazard
    q_t = 1 - (1 - p_t)^(1/window), and the event at origin t is a crash in any of the ``window``
    steps t .. t + window - 1 (the steps past the last origin take its hazard). An origin's
    event probability is then p_t where p varies slowly (exactly, where it is constant over the
    window), and one crash is an event at up to ``window`` neighbouring origins, as a yen rally
    within three months is for three monthly origins.
    """
    p = _check_probs("event_samples prob", prob)
    if int(window) != window or window < 1:
        raise ValueError(f"event_samples: window={window}: allowed is an integer of at least 1")
    if int(n_sim) != n_sim or n_sim < 2:
        raise ValueError(f"event_samples: n_sim={n_sim}: allowed is an integer of at least 2")
    n, w = p.size, int(window)
    hazard = 1.0 - (1.0 - p) ** (1.0 / w)
    hazard = np.concatenate([hazard, np.full(w - 1, hazard[-1])])
    crash = np.random.default_rng(seed).random((int(n_sim), n + w - 1)) < hazard
    counts = np.cumsum(np.pad(crash, ((0, 0), (1, 0))), axis=1)
    return (counts[:, w:w + n] - counts[:, :n]) > 0


@dataclass(frozen=True)
class EventPower:
    """What samples drawn from forecaster a's probabilities would show (``event_power``)."""

    events: np.ndarray      # number of events in each simulated sample
    better: float           # share of samples with a's mean Brier score below b's
    significant: float      # share with a below b and a Diebold-Mariano p-value below the level

    def at_most(self, observed: float) -> float:
        """Share of simulated samples with at most ``observed`` events."""
        return float(np.mean(self.events <= observed))


def event_power(prob_a, prob_b, window: int, lags: int, n_sim: int = 2000, seed=0,
                level: float = 0.05) -> EventPower:
    """Power of the Brier comparison of two forecasters of the same events at ``n`` origins,
    when forecaster a's probabilities ``prob_a`` are the truth: samples of events from
    :func:`event_samples`, each scored with :func:`brier` and compared with
    :func:`diebold_mariano` at ``lags``, as the backtest compares its forecasters.
    """
    a = _check_probs("event_power prob_a", prob_a)
    b = _check_probs("event_power prob_b", prob_b)
    if a.shape != b.shape:
        raise ValueError(f"event_power: prob_a and prob_b differ in shape: {a.shape} vs {b.shape}")
    level = _check_prob("level", level)
    event = event_samples(a, window, n_sim, seed)
    loss_a = brier(np.broadcast_to(a, event.shape), event)
    loss_b = brier(np.broadcast_to(b, event.shape), event)
    mean, _, p = diebold_mariano(loss_a, loss_b, lags)
    return EventPower(events=event.sum(axis=1), better=float(np.mean(mean < 0.0)),
                      significant=float(np.mean((mean < 0.0) & (p < level))))


# ---------------------------------------------------------------------------------------------
# Inference over forecast origins
# ---------------------------------------------------------------------------------------------

def _series(x, axis: int, name: str) -> np.ndarray:
    x = np.moveaxis(np.asarray(x, dtype=float), axis, -1)
    if x.shape[-1] < 2:
        raise ValueError(f"{name}: need at least 2 values along the origin axis, got {x.shape[-1]}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: contains non-finite values; drop missing origins first")
    return x


def _check_lags(lags, n: int) -> int:
    if int(lags) != lags or not 0 <= lags < n:
        raise ValueError(f"lags={lags}: allowed is an integer from 0 to {n - 1} (the number of values - 1)")
    return int(lags)


def _bartlett_lrv(d: np.ndarray, lags: int) -> np.ndarray:
    """Newey-West long-run variance of demeaned series ``d`` along the last axis."""
    n = d.shape[-1]
    lrv = (d * d).sum(axis=-1) / n
    for k in range(1, lags + 1):
        gamma = (d[..., k:] * d[..., :-k]).sum(axis=-1) / n
        lrv = lrv + 2.0 * (1.0 - k / (lags + 1.0)) * gamma
    return lrv


def hac_mean(x, lags: int, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``x`` along ``axis`` and its Newey-West standard error.

    The long-run variance is gamma_0 + 2 sum_{k=1..lags} (1 - k/(lags + 1)) gamma_k, with the
    sample autocovariances gamma_k divided by n (Bartlett kernel: never negative), and the
    standard error is sqrt(long-run variance / n). For overlapping forecasts, see
    ``overlap_lags``; ``lags=0`` is the iid standard error (population variance over n).
    Values must be finite. Returns numpy scalars for 1-d input.
    """
    x = _series(x, axis, "hac_mean")
    n = x.shape[-1]
    lags = _check_lags(lags, n)
    mean = x.mean(axis=-1)
    lrv = _bartlett_lrv(x - mean[..., None], lags)
    return mean, np.sqrt(np.maximum(lrv, 0.0) / n)


def overlap_lags(horizon_steps: int, n: int | None = None) -> int:
    """Newey-West lags for forecasts ``horizon_steps`` origin-steps ahead: 2 (h - 1), at least 0.

    Errors of h-step forecasts made every step overlap for h - 1 steps (an MA(h - 1) when the
    forecasts are efficient), and the Bartlett kernel down-weights those autocovariances: at
    h - 1 lags it recovers only about two thirds of the long-run variance of a triangular
    autocorrelation, at 2 (h - 1) about 85%. Capped at n - 1 when ``n`` is given.
    """
    h = int(horizon_steps)
    if h < 1:
        raise ValueError(f"horizon_steps={horizon_steps}: allowed is an integer of at least 1")
    lags = 2 * (h - 1)
    return min(lags, n - 1) if n is not None else lags


def coverage_interval(hits, lags: int, level: float = 0.95) -> tuple[float, float, float]:
    """Coverage rate of band hits over origins and a ``level`` confidence interval.

    A Wilson score interval at the effective sample size n / deff, where the design effect
    deff = (Newey-West long-run variance) / (plain variance) allows for overlapping origins.
    Wilson rather than mean +- z se because coverage rates sit near 0 or 1 (a too-wide model
    covers 100%), where the normal interval collapses to a point. With every origin a hit (or
    none) the variance is zero and deff is unknown; it is then taken as lags + 1, its value
    when hits are perfectly correlated within the lag window (conservative).
    Returns (rate, low, high).
    """
    h = _series(np.asarray(hits, dtype=float), -1, "coverage_interval")
    if h.ndim != 1:
        raise ValueError(f"coverage_interval: hits must be 1-d, got shape {h.shape}")
    n = h.size
    lags = _check_lags(lags, n)
    level = _check_prob("level", level)
    p = h.mean()
    var = p * (1.0 - p)
    deff = _bartlett_lrv(h - p, lags) / var if var > 0.0 else lags + 1.0
    n_eff = n / deff
    z = stats.norm.ppf(0.5 + level / 2.0)
    denom = 1.0 + z * z / n_eff
    centre = (p + z * z / (2.0 * n_eff)) / denom
    half = z * np.sqrt(var / n_eff + z * z / (4.0 * n_eff * n_eff)) / denom
    return float(p), float(max(0.0, centre - half)), float(min(1.0, centre + half))


def diebold_mariano(loss_a, loss_b, lags: int, hln: bool = True, axis: int = -1):
    """Diebold-Mariano test of equal expected loss: (mean_diff, t_stat, p_value).

    d = loss_a - loss_b (negative mean: forecaster a is better). The statistic is
    mean(d) / se with the Newey-West standard error of ``hac_mean`` at ``lags``. With
    ``hln=True`` (default) it gets the Harvey-Leybourne-Newbold (1997) small-sample factor
    sqrt((n + 1 - 2h + h (h - 1) / n) / n), h = lags + 1, and the two-sided p-value is from
    Student's t with n - 1 degrees of freedom; with ``hln=False`` the statistic is compared
    with the standard normal. At lags = 0 the corrected test is exactly the paired t-test.
    Identical losses give (0, 0, 1).
    """
    a = _series(loss_a, axis, "diebold_mariano")
    b = _series(loss_b, axis, "diebold_mariano")
    if a.shape != b.shape:
        raise ValueError(f"diebold_mariano: loss_a and loss_b differ in shape: {a.shape} vs {b.shape}")
    mean, se = hac_mean(a - b, lags)
    n = a.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0.0, mean / np.where(se > 0.0, se, 1.0), np.sign(mean) * np.inf)
    t = np.where(mean == 0.0, 0.0, t)
    if hln:
        h = lags + 1
        factor = (n + 1.0 - 2.0 * h + h * (h - 1.0) / n) / n
        if factor <= 0.0:
            raise ValueError(f"diebold_mariano: lags={lags} too many for {n} origins")
        t = t * np.sqrt(factor)
        p = 2.0 * stats.t.sf(np.abs(t), df=n - 1)
    else:
        p = 2.0 * stats.norm.sf(np.abs(t))
    return mean, t, p


# ---------------------------------------------------------------------------------------------
# The largest yen rally
# ---------------------------------------------------------------------------------------------

def largest_rally(log_fx, axis: int = -1, origin=None) -> np.ndarray:
    """Largest fall of USD/JPY from its running peak within the window, in percent.

    ``log_fx`` holds ln(USD/JPY) on the grid of the window (weekly closes in the backtest),
    first value at the origin. With peak_t = max_{s <= t} x_s the rally at t is
    100 (1 - exp(x_t - peak_t)), the percent fall of the level from its peak, and the result
    is its maximum over the window (0 if USD/JPY never falls). This is exactly the kernel's
    ``largest_yen_appreciation`` (``sim/kernels.py``), computed on the model's step grid from
    the snapshot level.

    ``origin``: the log level at the origin when it is not part of ``log_fx``, e.g. 0.0 for
    the cumulative log changes that the benchmarks return; broadcast against the other axes.
    """
    x = np.moveaxis(np.asarray(log_fx, dtype=float), axis, -1)
    if origin is not None:
        start = np.broadcast_to(np.asarray(origin, dtype=float), x.shape[:-1])[..., None]
        x = np.concatenate([start, x], axis=-1)
    if x.shape[-1] == 0:
        raise ValueError("largest_rally: the window is empty")
    peak = np.maximum.accumulate(x, axis=-1)
    return (100.0 * (1.0 - np.exp(x - peak))).max(axis=-1)
