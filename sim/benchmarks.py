"""Benchmark forecasters for the backtest: what a strategist would use instead of the model.

Each benchmark sees only data before the forecast origin (``history`` ends at the origin) and
returns simulated paths, seeded through ``numpy.random.SeedSequence``:

- USD/JPY (weekly log changes in, cumulative weekly log changes out, shape (n_paths, n_weeks);
  column k is ln S(origin + k + 1 weeks) - ln S(origin)):
  ``random_walk`` (Gaussian, zero drift, trailing realised volatility), ``garch_t``
  (GARCH(1,1) with Student-t innovations fitted with the ``arch`` package on a rolling window)
  and ``block_bootstrap`` (stationary bootstrap of past weekly changes);
- rates and yields (levels in, levels at the horizon out, shape (n_paths,)):
  ``historical_changes``, no change plus the empirical distribution of past changes.

The change at the horizon is the last column of the paths; the largest yen rally within the
horizon is ``sim.scores.largest_rally(paths, origin=0.0)`` on the same weekly grid.
Non-finite entries of a history (before a series starts, gaps) are dropped.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Optional

import numpy as np

__all__ = ["random_walk", "garch_t", "garch_paths", "GarchFit", "block_bootstrap",
           "historical_changes"]


def _rng(seed) -> np.random.Generator:
    """A Generator from an int, a SeedSequence or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if not isinstance(seed, np.random.SeedSequence):
        seed = np.random.SeedSequence(seed)
    return np.random.default_rng(seed)


def _positive_int(name: str, value) -> int:
    if int(value) != value or value < 1:
        raise ValueError(f"{name}={value}: allowed is an integer of at least 1")
    return int(value)


def _recent(history, window: Optional[int], name: str, minimum: int) -> np.ndarray:
    """The finite values among the last ``window`` entries of a 1-d history."""
    h = np.asarray(history, dtype=float)
    if h.ndim != 1:
        raise ValueError(f"{name}: history must be 1-d, got shape {h.shape}")
    if window is not None:
        h = h[-_positive_int("window", window):]
    h = h[np.isfinite(h)]
    if h.size < minimum:
        raise ValueError(f"{name}: needs at least {minimum} finite past values, got {h.size}")
    return h


def random_walk(history, n_weeks: int, n_paths: int, seed, vol_weeks: int = 52) -> np.ndarray:
    """Gaussian random walk without drift at the trailing realised volatility.

    sigma = sqrt(mean(r^2)) over the last ``vol_weeks`` weekly log changes (realised volatility
    about zero, consistent with the zero drift); paths are cumulative sums of sigma Z.
    """
    n_weeks, n_paths = _positive_int("n_weeks", n_weeks), _positive_int("n_paths", n_paths)
    r = _recent(history, vol_weeks, "random_walk", 2)
    sigma = np.sqrt(np.mean(r * r))
    z = _rng(seed).standard_normal((n_paths, n_weeks))
    return np.cumsum(sigma * z, axis=1)


@dataclass
class GarchFit:
    """The fitted GARCH(1,1)-t behind a ``garch_t`` forecast (percent units of weekly changes)."""

    omega: float
    alpha: float
    beta: float
    nu: float
    sigma2_next: float          # conditional variance of the first week after the origin
    n_obs: int                  # weekly changes in the fitting window
    fallback: Optional[str]     # None, or why the random walk was used instead


def garch_paths(omega: float, alpha: float, beta: float, nu: float, sigma2_next: float,
                n_weeks: int, n_paths: int, seed) -> np.ndarray:
    """Cumulative sums of a GARCH(1,1)-t simulated from a known next-step variance.

    eps_k = sigma_k z_k with z_k Student-t(nu) scaled to unit variance, and
    sigma_{k+1}^2 = omega + alpha eps_k^2 + beta sigma_k^2, starting at sigma_1^2 = sigma2_next.
    Units are those of the parameters. Returns shape (n_paths, n_weeks).
    """
    n_weeks, n_paths = _positive_int("n_weeks", n_weeks), _positive_int("n_paths", n_paths)
    if not nu > 2.0:
        raise ValueError(f"nu={nu}: allowed is a number above 2 (finite variance)")
    z = _rng(seed).standard_t(nu, size=(n_paths, n_weeks)) * np.sqrt((nu - 2.0) / nu)
    eps = np.empty_like(z)
    s2 = np.full(n_paths, float(sigma2_next))
    for k in range(n_weeks):
        eps[:, k] = np.sqrt(s2) * z[:, k]
        s2 = omega + alpha * eps[:, k] ** 2 + beta * s2
    return np.cumsum(eps, axis=1)


def _fit_garch(r_pct: np.ndarray):
    """(omega, alpha, beta, nu, sigma2_next) of a zero-mean GARCH(1,1)-t, or the reason it failed."""
    from arch import arch_model

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = arch_model(r_pct, mean="Zero", vol="GARCH", p=1, q=1, dist="t",
                             rescale=False).fit(disp="off", show_warning=False)
    except Exception as exc:  # the optimiser or the model setup failed: documented fallback
        return f"fit failed: {type(exc).__name__}: {exc}"
    if res.convergence_flag != 0:
        return f"optimiser did not converge (flag {res.convergence_flag})"
    omega, alpha, beta, nu = (float(res.params[k]) for k in ("omega", "alpha[1]", "beta[1]", "nu"))
    sigma_t = float(np.asarray(res.conditional_volatility)[-1])
    s2 = float(omega + alpha * r_pct[-1] ** 2 + beta * sigma_t ** 2)
    if not all(np.isfinite([omega, alpha, beta, nu, s2])):
        return "non-finite parameters"
    # arch keeps alpha + beta <= 1; at 1 (integrated GARCH, common for FX) the variance grows
    # linearly over the horizon, which is a usable forecast, so only an explosive fit is refused.
    if omega <= 0.0 or alpha < 0.0 or beta < 0.0 or alpha + beta > 1.0 + 1e-6 or nu <= 2.0 or s2 <= 0.0:
        return (f"degenerate parameters (omega={omega:.3g}, alpha={alpha:.3g}, beta={beta:.3g}, "
                f"nu={nu:.3g})")
    return omega, alpha, beta, nu, s2


def garch_t(history, n_weeks: int, n_paths: int, seed, window: int = 520, min_obs: int = 156,
            return_fit: bool = False):
    """GARCH(1,1) with Student-t innovations fitted on the last ``window`` weekly log changes.

    Fitted with ``arch`` (zero mean, like the random walk: an estimated drift only adds noise)
    on the changes in percent, the scale the optimiser expects; the fitted recursion is then
    simulated forward from the conditional variance of the first week after the origin (see
    ``garch_paths``) and converted back to log changes.

    Fallback, never an exception from the fit: with fewer than ``min_obs`` finite changes, a
    failed or non-converged fit, or degenerate parameters (omega <= 0, alpha + beta > 1,
    nu <= 2, non-finite values; alpha + beta = 1, integrated GARCH, is kept), the forecast is ``random_walk`` at the realised volatility of the whole
    window (vol_weeks=window), the constant-variance model the GARCH nests; the reason is in
    ``GarchFit.fallback``. ``return_fit=True`` returns (paths, GarchFit).
    """
    n_weeks, n_paths = _positive_int("n_weeks", n_weeks), _positive_int("n_paths", n_paths)
    r = _recent(history, window, "garch_t", 2)
    fitted = (_fit_garch(100.0 * r) if r.size >= min_obs
              else f"{r.size} weekly changes, fewer than min_obs={min_obs}")
    if isinstance(fitted, str):
        paths = random_walk(r, n_weeks, n_paths, seed, vol_weeks=r.size)
        sigma2 = float(np.mean((100.0 * r) ** 2))
        fit = GarchFit(sigma2, 0.0, 0.0, np.inf, sigma2, r.size, fitted)
    else:
        omega, alpha, beta, nu, s2 = fitted
        paths = garch_paths(omega, alpha, beta, nu, s2, n_weeks, n_paths, seed) / 100.0
        fit = GarchFit(omega, alpha, beta, nu, s2, r.size, None)
    return (paths, fit) if return_fit else paths


def block_bootstrap(history, n_weeks: int, n_paths: int, seed, block: float = 8.0,
                    window: Optional[int] = 520) -> np.ndarray:
    """Stationary bootstrap (Politis and Romano 1994) of the last ``window`` weekly log changes.

    Each path starts at a random week of the window and walks forward through the history
    (wrapping circularly); at each later week it jumps to a new random week with probability
    1/``block``, so blocks have geometric lengths with mean ``block`` weeks and keep the
    short-run clustering of volatility. ``block=1`` is the iid bootstrap. Past changes are used
    as they were, drift included. ``window=None`` uses the whole history.
    """
    n_weeks, n_paths = _positive_int("n_weeks", n_weeks), _positive_int("n_paths", n_paths)
    if not block >= 1.0:
        raise ValueError(f"block={block}: allowed is a mean block length of at least 1 week")
    r = _recent(history, window, "block_bootstrap", 2)
    n = r.size
    rng = _rng(seed)
    starts = rng.integers(0, n, size=(n_paths, n_weeks))
    jump = rng.random((n_paths, n_weeks)) < 1.0 / block
    idx = np.empty((n_paths, n_weeks), dtype=np.int64)
    idx[:, 0] = starts[:, 0]
    for k in range(1, n_weeks):
        idx[:, k] = np.where(jump[:, k], starts[:, k], (idx[:, k - 1] + 1) % n)
    return np.cumsum(r[idx], axis=1)


def historical_changes(levels_history, horizon_steps: int, n_paths: int, seed,
                       window: Optional[int] = None) -> np.ndarray:
    """Levels at the horizon: the level at the origin plus a past change over the same horizon.

    ``levels_history`` is a 1-d series of levels on a regular grid (e.g. month-end policy
    rates or yields) whose last entry is the origin; the changes x[t + h] - x[t] over
    ``horizon_steps`` steps of the grid, all overlapping windows of the last ``window`` levels
    (all levels if None), form the empirical distribution, and ``n_paths`` of them are drawn
    with replacement. "No change" is the centre only if past changes centre on zero.
    Returns shape (n_paths,).
    """
    h = _positive_int("horizon_steps", horizon_steps)
    n_paths = _positive_int("n_paths", n_paths)
    lv = np.asarray(levels_history, dtype=float)
    if lv.ndim != 1:
        raise ValueError(f"historical_changes: levels must be 1-d, got shape {lv.shape}")
    if window is not None:
        lv = lv[-_positive_int("window", window):]
    if lv.size == 0 or not np.isfinite(lv[-1]):
        raise ValueError("historical_changes: the level at the origin (last entry) must be finite")
    changes = lv[h:] - lv[:-h]
    changes = changes[np.isfinite(changes)]
    if changes.size < 1:
        raise ValueError(f"historical_changes: no past change over {h} steps in {lv.size} levels")
    return lv[-1] + _rng(seed).choice(changes, size=n_paths, replace=True)
