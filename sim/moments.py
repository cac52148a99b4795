"""The stylised-fact table: moments of the data with block-bootstrap standard errors beside the
same moments computed from the model, like with like (docs/model.md, section 17.5).

``python -m sim.moments [overrides]`` (``moments=quick`` for a first look, ``moments=recent``
for 2000-2025).  Over the window ``moments.start`` .. ``moments.end``:

- **Data moments** are computed from the FRED files of ``data.dir`` (never typed in): weekly
  (Friday-close) USD/JPY log changes, the largest yen rally over rolling windows starting at
  every week, monthly changes of monthly-average 10y yields, and policy moves of the policy-rate
  series that :mod:`sim.datasnapshot` derives.  Standard errors come from a circular moving-block
  bootstrap of calendar months (``moments.block_months`` months per block, each month carrying
  its weeks, so weekly and monthly series are resampled together).
- **Model moments**: the model is run from a snapshot built from the data (``snapshot=data``) at
  the last Friday of every ``moments.step_months``-th month of the window (the backtest's
  origins), ``sampler.horizon_months`` (>= 24) ahead, every path kept; the same functions compute
  the same moments from all origins' paths pooled.  Monte Carlo standard errors come from
  ``moments.mc_groups`` independent groups of paths (batch means).

Every moment goes through one code path: a series or a panel of paths is reduced to additive
*parts* (power sums, counts, the rally values of every window), parts are pooled, and the
moments are read from the pooled parts (:func:`moments_from_parts`).  Outputs, in the run's own
folder: ``moments.md``, ``moments.csv`` and ``moments.nc`` (the bootstrap replications and the
group estimates, for the covariance a method-of-moments fit needs).
"""
from __future__ import annotations

import copy
import datetime as _dt
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from sim.calendar import add_months, parse_date
from sim.config import Config
from sim.marketdata import MarketData, fridays
from sim.validate import ConfigError

#: Lag groups (weeks) of the autocorrelation of absolute weekly changes: volatility clustering,
#: short (1-4 weeks) and long (5-13 weeks), each the average over its lags.
ACF_LAGS = {"fx_absacf_short": (1, 4), "fx_absacf_long": (5, 13)}
#: Weeks per year for annualising weekly variances (as sim.datasnapshot.realised_vol).
WEEKS_PER_YEAR = 365.25 / 7.0
#: Weekly yen rallies counted (a fall of USD/JPY over one week of at least this many percent)
#: and, for the other tail, weekly rises of USD/JPY (a yen sell-off) of at least this many
#: percent: carry currencies go up by the stairs and down by the elevator, so the two tails of
#: the same size differ (1993-2009: 1.5% against 0.5% of weeks at 4%).
WEEK_RALLIES = (2.0, 4.0)
WEEK_RISES = (2.0, 4.0)
#: The weekly tail counts: (moment, tail, threshold %, description).
WEEK_TAILS = (
    *((f"week_rally_{x:g}", "fall", x, f"Weeks with a yen rally of {x:g}% or more")
      for x in WEEK_RALLIES),
    *((f"week_rise_{x:g}", "rise", x, f"Weeks with a USD/JPY rise (yen sell-off) of {x:g}% or more")
      for x in WEEK_RISES),
)
#: Trailing window (weeks) and threshold (% p.a.) of the high-volatility weeks.
HIGH_VOL_WEEKS, HIGH_VOL = 13, 15.0
#: Windows (months) of the largest yen rally and the quantiles reported.
RALLY_MONTHS = (1, 3, 12, 24)
RALLY_QUANTILES = (0.5, 0.9, 0.95)
#: Shortest window: the 24-month rally needs whole windows, the bootstrap some blocks.
MIN_WINDOW_MONTHS = 36


def rally_weeks(months: int) -> int:
    """Weeks in a window of ``months`` months: 4, 13, 52, 104 for 1, 3, 12, 24."""
    return int(round(months * 365.25 / 12.0 / 7.0))


def _moment_list():
    out = [
        ("fx_vol", "%", "Weekly USD/JPY log change: annualised volatility"),
        ("fx_skew", "1", "Weekly USD/JPY log change: skewness"),
        ("fx_exkurt", "1", "Weekly USD/JPY log change: excess kurtosis"),
    ]
    for name, (lo, hi) in ACF_LAGS.items():
        out.append((name, "1", f"Weekly USD/JPY absolute log change: autocorrelation, mean over lags {lo}-{hi} weeks"))
    out += [(name, "% of weeks", label) for name, _, _, label in WEEK_TAILS]
    out.append(("high_vol_weeks", "% of weeks",
                f"Weeks whose trailing {HIGH_VOL_WEEKS}-week realised vol exceeds {HIGH_VOL:g}%"))
    for m in RALLY_MONTHS:
        for q in RALLY_QUANTILES:
            out.append((f"rally_{m}m_q{int(round(q * 100))}", "%",
                        f"Largest yen rally within {m} month{'s' if m > 1 else ''}: "
                        + ("median" if q == 0.5 else f"{q:.0%} quantile")))
    out += [
        ("fed_moves", "per year", "Fed policy moves per year (derived policy rate)"),
        ("boj_moves", "per year", "BoJ policy moves per year (derived policy rate)"),
        ("ust10_dm", "bp", "10y UST: s.d. of monthly changes of monthly averages"),
        ("jgb10_dm", "bp", "10y JGB: s.d. of monthly changes of monthly averages"),
        ("spread_dm", "bp", "10y UST - JGB spread: s.d. of monthly changes of monthly averages"),
    ]
    return out


#: name -> (unit, description), in table order.
MOMENTS = {name: (unit, text) for name, unit, text in _moment_list()}
YIELDS = ("ust10", "jgb10", "spread")
BANKS = ("fed", "boj")


# ---------------------------------------------------------------------------------------------
# Parts: additive summaries of a series or a panel of paths
# ---------------------------------------------------------------------------------------------

def acf_parts(r: np.ndarray, segment=None) -> dict:
    """Additive parts of the autocorrelations of |r| (paths, weeks): for every lag group of
    :data:`ACF_LAGS`, the sum of the products |r_t| |r_t+k| and the number of pairs, over the
    pairs inside one path, and inside one ``segment`` (weeks, ids) of a single series when
    given: a block bootstrap joins blocks that were not neighbours, and pairs across a join
    would bias the autocorrelation towards zero."""
    a = np.abs(r)
    out = {"sa": float(a.sum())}
    for name, (lo, hi) in ACF_LAGS.items():
        prod, pairs = 0.0, 0
        for k in range(lo, hi + 1):
            if a.shape[1] <= k:
                break
            p = a[:, :-k] * a[:, k:]
            if segment is not None:
                same = segment[:-k] == segment[k:]
                p = p[:, same]
            prod += float(p.sum())
            pairs += p.size
        out[f"{name}_p"], out[f"{name}_n"] = prod, pairs
    return out


def fx_parts(log_fx, segment=None) -> dict:
    """Additive parts of the USD/JPY moments of weekly log closes ``log_fx`` (paths, weeks + 1)
    (a 1-d array is one path).  Rolling statistics use every window inside a path; ``segment``
    (a 1-d series only: one id per weekly change) keeps the autocorrelations' pairs inside
    contiguous stretches (:func:`acf_parts`)."""
    from sim.scores import largest_rally

    x = np.atleast_2d(np.asarray(log_fx, dtype=float))
    r = np.diff(x, axis=1)
    flat = r.ravel()
    parts = {"n": flat.size, **{f"s{p}": float(np.sum(flat ** p)) for p in (1, 2, 3, 4)}}
    parts.update(acf_parts(r, segment))
    # percent fall and percent rise of the level over the week
    moves = {"fall": 100.0 * (1.0 - np.exp(flat)), "rise": 100.0 * np.expm1(flat)}
    for name, tail, t, _ in WEEK_TAILS:
        parts[name] = int(np.sum(moves[tail] >= t))
    k = HIGH_VOL_WEEKS
    if r.shape[1] >= k:
        c = np.concatenate([np.zeros((r.shape[0], 1)), np.cumsum(r * r, axis=1)], axis=1)
        rv = 100.0 * np.sqrt((c[:, k:] - c[:, :-k]) / k * WEEKS_PER_YEAR)
        parts["hv"], parts["hv_n"] = int(np.sum(rv > HIGH_VOL)), rv.size
    else:
        parts["hv"], parts["hv_n"] = 0, 0
    for m in RALLY_MONTHS:
        w = rally_weeks(m)
        if x.shape[1] < w + 1:
            parts[f"rally_{m}"] = np.empty(0, dtype=np.float32)
            continue
        windows = np.lib.stride_tricks.sliding_window_view(x, w + 1, axis=1)
        parts[f"rally_{m}"] = largest_rally(windows).ravel().astype(np.float32)
    return parts


def diff_parts(changes, name: str) -> dict:
    """Power sums of monthly changes (any shape; NaN ignored), in basis points."""
    d = 100.0 * np.asarray(changes, dtype=float).ravel()
    d = d[np.isfinite(d)]
    return {f"{name}_n": d.size, f"{name}_s1": float(d.sum()), f"{name}_s2": float(np.sum(d * d))}


def move_parts(moves: float, months: float, bank: str) -> dict:
    """Policy moves counted over ``months`` months."""
    return {f"{bank}_moves": float(moves), f"{bank}_months": float(months)}


def pool(parts_list: list[dict]) -> dict:
    """Parts of several series or panels pooled (sums add, rally values concatenate)."""
    out = {}
    for key in parts_list[0]:
        values = [p[key] for p in parts_list]
        out[key] = np.concatenate(values) if isinstance(values[0], np.ndarray) else sum(values)
    return out


def moments_from_parts(p: dict) -> dict:
    """Every moment of :data:`MOMENTS` from pooled parts (NaN where the parts hold no data)."""
    out = {}
    n = p["n"]
    mu = p["s1"] / n
    m2 = p["s2"] / n - mu ** 2
    m3 = p["s3"] / n - 3 * mu * p["s2"] / n + 2 * mu ** 3
    m4 = p["s4"] / n - 4 * mu * p["s3"] / n + 6 * mu ** 2 * p["s2"] / n - 3 * mu ** 4
    out["fx_vol"] = 100.0 * math.sqrt(m2 * n / (n - 1) * WEEKS_PER_YEAR)
    out["fx_skew"] = m3 / m2 ** 1.5 if m2 > 0 else np.nan
    out["fx_exkurt"] = m4 / m2 ** 2 - 3.0 if m2 > 0 else np.nan
    mean_abs = p["sa"] / n
    var_abs = p["s2"] / n - mean_abs ** 2
    for name in ACF_LAGS:
        pairs = p[f"{name}_n"]
        out[name] = ((p[f"{name}_p"] / pairs - mean_abs ** 2) / var_abs
                     if pairs and var_abs > 0 else np.nan)
    for name, *_ in WEEK_TAILS:
        out[name] = 100.0 * p[name] / n
    out["high_vol_weeks"] = 100.0 * p["hv"] / p["hv_n"] if p["hv_n"] else np.nan
    for m in RALLY_MONTHS:
        values = p[f"rally_{m}"]
        for q in RALLY_QUANTILES:
            key = f"rally_{m}m_q{int(round(q * 100))}"
            out[key] = float(np.quantile(values, q)) if values.size else np.nan
    for bank in BANKS:
        months = p.get(f"{bank}_months", 0.0)
        out[f"{bank}_moves"] = 12.0 * p[f"{bank}_moves"] / months if months else np.nan
    for name in YIELDS:
        k = p.get(f"{name}_n", 0)
        if k < 2:
            out[f"{name}_dm"] = np.nan
            continue
        mean = p[f"{name}_s1"] / k
        out[f"{name}_dm"] = math.sqrt(max(p[f"{name}_s2"] / k - mean ** 2, 0.0) * k / (k - 1))
    return out


def block_indices(n: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of a circular moving-block resample of ``n`` consecutive units."""
    blocks = -(-n // block)
    starts = rng.integers(0, n, blocks)
    return ((starts[:, None] + np.arange(block)[None, :]) % n).ravel()[:n]


# ---------------------------------------------------------------------------------------------
# The data, month by month
# ---------------------------------------------------------------------------------------------

@dataclass
class DataMonths:
    """The window's data by calendar month: each month's weekly log changes of USD/JPY (weeks
    ending on its Fridays), its monthly changes of the monthly-average yields and its policy
    moves.  A block bootstrap resamples whole months, so all series travel together."""

    months: np.ndarray            # datetime64[M]
    weekly: list                  # per month: array of weekly log changes
    changes: dict                 # yield name -> (months,) monthly changes (% p.a.)
    moves: dict                   # bank -> (months,) policy moves in the month

    def parts(self, order=None) -> dict:
        order = np.arange(len(self.months)) if order is None else order
        r = np.concatenate([self.weekly[i] for i in order])
        # A new segment wherever the resample jumps: pairs across it are not neighbours.
        run = np.concatenate([[0], np.cumsum(np.diff(order) != 1)])
        segment = np.repeat(run, [len(self.weekly[i]) for i in order])
        out = fx_parts(np.concatenate([[0.0], np.cumsum(r)]), segment)
        for name in YIELDS:
            out.update(diff_parts(self.changes[name][order], name))
        for bank in BANKS:
            out.update(move_parts(self.moves[bank][order].sum(), len(order), bank))
        return out


def window(cfg: Config) -> tuple[np.datetime64, np.datetime64]:
    """The checked window (start, end) of ``moments``."""
    mo = cfg.moments
    start = parse_date(mo.start, "moments.start")
    end = parse_date(mo.end, "moments.end")
    if end < add_months(start, MIN_WINDOW_MONTHS) - 1:
        raise ConfigError("moments.end", mo.end,
                          f"a date at least {MIN_WINDOW_MONTHS} months after moments.start "
                          f"({mo.start}): the largest rally within 24 months needs whole windows")
    return start, end


def monthly_average(dates: np.ndarray, values: np.ndarray):
    """Calendar-month averages of a daily series: (months, averages), missing days skipped."""
    ok = np.isfinite(values)
    months = dates[ok].astype("datetime64[M]")
    uniq, inv = np.unique(months, return_inverse=True)
    sums = np.bincount(inv, weights=values[ok])
    return uniq, sums / np.bincount(inv)


def data_months(md: MarketData, start: np.datetime64, end: np.datetime64) -> DataMonths:
    """The data of the window ``start`` .. ``end`` by calendar month (whole months only)."""
    from sim.datasnapshot import policy_history

    first = start.astype("datetime64[M]")
    if start > first.astype("datetime64[D]"):
        first = first + 1
    last = (end + 1).astype("datetime64[M]") - 1          # the last month ending by ``end``
    months = np.arange(first, last + 1)
    fx = md["DEXJPUS"]
    lo, hi = first.astype("datetime64[D]"), (last + 1).astype("datetime64[D]") - 1
    if lo < fx.first + 7 or hi > fx.last:
        raise ConfigError("moments.start" if lo < fx.first + 7 else "moments.end",
                          str(start if lo < fx.first + 7 else end),
                          f"a window inside the data: {fx.span()}")
    days = fridays(lo - 7, hi)
    r = np.diff(np.log(fx.as_of_many(days)))
    of = days[1:].astype("datetime64[M]")
    weekly = [r[of == m] for m in months]

    ust_m, ust = monthly_average(md["DGS10"].dates, md["DGS10"].values)
    jgb = md["IRLTLT01JPM156N"]
    jgb_m, jgb_v = jgb.dates.astype("datetime64[M]"), jgb.values
    levels = {}
    for name, (m_, v_) in {"ust10": (ust_m, ust), "jgb10": (jgb_m, jgb_v)}.items():
        lookup = dict(zip(m_.tolist(), v_))
        levels[name] = np.array([lookup.get(m.tolist(), np.nan) for m in np.arange(first - 1, last + 1)])
    levels["spread"] = levels["ust10"] - levels["jgb10"]
    changes = {}
    for name, lv in levels.items():
        if not np.all(np.isfinite(lv)):
            bad = np.arange(first - 1, last + 1)[~np.isfinite(lv)][0]
            series = {"ust10": "DGS10", "jgb10": "IRLTLT01JPM156N"}.get(name, "DGS10/IRLTLT01JPM156N")
            raise ConfigError("moments.start", str(start),
                              f"a window inside the data: {series} has no value for {bad}")
        changes[name] = np.diff(lv)
    moves = {}
    for bank in BANKS:
        dates, _, lv = policy_history(md, bank, hi, hindsight=True)
        if not len(dates) or dates[0] >= lo:
            name = "FEDFUNDS" if bank == "fed" else "IRSTCI01JPM156N"
            raise ConfigError("moments.start", str(start),
                              f"a window inside the data: {md[name].span()} (the policy rate must "
                              "be known before the window starts)")
        changed = dates[1:][np.diff(lv) != 0].astype("datetime64[M]")
        moves[bank] = np.array([np.sum(changed == m) for m in months], dtype=float)
    return DataMonths(months, weekly, changes, moves)


def data_moments(md: MarketData, start, end, bootstrap: int, block_months: int, seed: int):
    """(moments, replications (bootstrap, moments)) of the data in the window."""
    dm = data_months(md, np.datetime64(start, "D"), np.datetime64(end, "D"))
    n = len(dm.months)
    if not 1 <= block_months <= n // 2:
        raise ConfigError("moments.block_months", block_months,
                          f"an integer from 1 to half the window's months ({n // 2})")
    values = moments_from_parts(dm.parts())
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,)))
    reps = np.empty((bootstrap, len(MOMENTS)))
    for b in range(bootstrap):
        m = moments_from_parts(dm.parts(block_indices(n, block_months, rng)))
        reps[b] = [m[k] for k in MOMENTS]
    return values, reps


def block_length_check(md: MarketData, start, end) -> dict:
    """Politis-White (2004, corrected 2009) automatic block lengths, in weeks, of the weekly
    USD/JPY changes, their squares and absolute values (arch.bootstrap): the guide behind
    ``moments.block_months``."""
    from arch.bootstrap import optimal_block_length

    dm = data_months(md, np.datetime64(start, "D"), np.datetime64(end, "D"))
    r = np.concatenate(dm.weekly)
    table = optimal_block_length(np.column_stack([r, r * r, np.abs(r)]))
    return {name: float(table["circular"].iloc[i]) for i, name in enumerate(("r", "r^2", "|r|"))}


# ---------------------------------------------------------------------------------------------
# The model, like with like
# ---------------------------------------------------------------------------------------------

def _grid_months(times: np.ndarray):
    """Index of each time's calendar month among the path's whole months (-1 outside): the first
    month (holding the origin) and the last (possibly cut by the horizon) are left out."""
    months = times.astype("datetime64[M]")
    inner = np.unique(months)[1:-1]
    index = np.searchsorted(inner, months)
    ok = (index < len(inner)) & (months == inner[np.minimum(index, len(inner) - 1)])
    return inner, np.where(ok, index, -1)


def monthly_means(values: np.ndarray, index: np.ndarray, n_months: int) -> np.ndarray:
    """Averages (paths, months) over the grid points of each whole month."""
    out = np.zeros((values.shape[0], n_months))
    for j in range(n_months):
        out[:, j] = values[:, index == j].mean(axis=1)
    return out


def model_moves(rates: np.ndarray, months: np.ndarray, bank: str) -> tuple[float, float]:
    """(moves, month transitions) of simulated policy rates (paths, months of averages) after the
    derivation the data go through (sim.datasnapshot): the monthly average on the bank's grid."""
    from sim.datasnapshot import boj_grid, fed_grid

    if bank == "fed":
        grid = np.frompyfunc(fed_grid, 2, 1)(rates, months[None, :]).astype(float)
    else:
        grid = np.frompyfunc(boj_grid, 1, 1)(rates).astype(float)
    d = np.diff(grid, axis=1)
    return float(np.sum(d != 0)), float(d.size)


#: The simulated series the moments read (fields of ``sim.layout.TIME_OUT``).
SERIES = ("usdjpy", "ust10", "jgb10", "fed_rate", "boj_rate")


def sample_series(cfg: Config) -> tuple[np.ndarray, dict]:
    """(dates, {name: (paths, dates) array}) of every path of a run of ``cfg`` (whose
    ``sampler.sample_paths`` equals its paths): the kernel through :func:`sim.engine.stream`,
    as :func:`sim.pipeline.simulate` calls it, without building a Dataset (which costs more
    than a few hundred paths of the kernel)."""
    from sim.engine import stream
    from sim.inputs import build_inputs

    inputs = build_inputs(cfg)
    if inputs.plan.sample_paths != inputs.plan.paths:
        raise ValueError("sample_series needs sampler.sample_paths = sampler.paths")
    info = stream(inputs, lambda chunk: None, progress=False)
    return inputs.dates, {name: np.asarray(info.sample[name], dtype=float) for name in SERIES}


def path_parts(ds, groups: int) -> list[dict]:
    """Parts of one origin's simulated paths, split into ``groups`` groups of paths.  ``ds`` is
    a run's Dataset (its ``sample_*`` variables) or the (dates, series) of :func:`sample_series`."""
    if isinstance(ds, tuple):
        times, series = np.asarray(ds[0]).astype("datetime64[D]"), ds[1]
    else:
        times = ds["time"].values.astype("datetime64[D]")
        series = {name: ds[f"sample_{name}"].values for name in SERIES}
    if not np.all(np.diff(times) == np.timedelta64(7, "D")):
        raise RuntimeError("the model's time grid is not weekly")
    months, index = _grid_months(times)
    log_fx = np.log(series["usdjpy"])
    ust = monthly_means(series["ust10"], index, len(months))
    jgb = monthly_means(series["jgb10"], index, len(months))
    rates = {b: monthly_means(series[f"{b}_rate"], index, len(months)) for b in BANKS}
    out = []
    for rows in np.array_split(np.arange(log_fx.shape[0]), groups):
        p = fx_parts(log_fx[rows])
        for name, lv in (("ust10", ust[rows]), ("jgb10", jgb[rows]), ("spread", ust[rows] - jgb[rows])):
            p.update(diff_parts(np.diff(lv, axis=1), name))
        for bank in BANKS:
            p.update(move_parts(*model_moves(rates[bank][rows], months, bank), bank))
        out.append(p)
    return out


def model_origins(cfg: Config, start=None, end=None, step_months=None) -> np.ndarray:
    """The last Friday of every ``step_months``-th month from ``start`` to ``end`` (by default
    ``moments.start``, ``moments.end`` and ``moments.step_months``; the backtest's rule for its
    origins)."""
    from sim.backtest import origins

    mo = cfg.moments
    return origins(SimpleNamespace(start=mo.start if start is None else start,
                                   end=mo.end if end is None else end,
                                   step_months=mo.step_months if step_months is None else step_months))


def model_moments(cfg: Config, md: MarketData, progress: bool = False, days=None,
                  groups: int | None = None):
    """(moments, group estimates (groups, moments), origins) of the model's paths pooled over
    the origins ``days`` (default :func:`model_origins`); every origin runs with its own seed
    (``sampler.seed`` + origin number), so a second call with the same config draws the same
    shocks (common random numbers).  ``cfg.sampler.sample_paths`` must equal its paths."""
    from sim.datasnapshot import with_data_snapshot

    days = model_origins(cfg) if days is None else np.asarray(days, dtype="datetime64[D]")
    groups = cfg.moments.mc_groups if groups is None else groups
    per_group = [[] for _ in range(groups)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(days), desc="model origins", unit="origin", file=sys.stderr)
    for o, origin in enumerate(days):
        run = with_data_snapshot(cfg, md, str(origin))
        run.sampler = copy.copy(cfg.sampler)
        run.sampler.seed = cfg.sampler.seed + o
        for g, p in enumerate(path_parts(sample_series(run), groups)):
            per_group[g].append(p)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    pooled = [pool(g) for g in per_group]
    values = moments_from_parts(pool(pooled))
    estimates = np.array([[m[k] for k in MOMENTS] for m in map(moments_from_parts, pooled)])
    return values, estimates, days


# ---------------------------------------------------------------------------------------------
# The run and the table
# ---------------------------------------------------------------------------------------------

def check(cfg: Config) -> None:
    """The whole config's checks, then those of the moments keys."""
    from sim.validate import validate

    validate(cfg)
    window(cfg)
    if cfg.sampler.horizon_months < max(RALLY_MONTHS):
        raise ConfigError("sampler.horizon_months", cfg.sampler.horizon_months,
                          f"at least {max(RALLY_MONTHS)} months (the largest rally within "
                          f"{max(RALLY_MONTHS)} months needs whole windows)")
    if cfg.sampler.step != "weekly":
        raise ConfigError("sampler.step", str(cfg.sampler.step),
                          "weekly (the moments are those of weekly Friday closes)")
    if cfg.sampler.paths < 2 * cfg.moments.mc_groups:
        raise ConfigError("sampler.paths", cfg.sampler.paths,
                          f"at least 2 x moments.mc_groups ({2 * cfg.moments.mc_groups})")
    if cfg.sampler.paths > 10_000:
        raise ConfigError("sampler.paths", cfg.sampler.paths,
                          "at most 10,000 (every path is kept: sampler.sample_paths = paths)")


def run_moments(cfg: Config, progress: bool = True):
    """The table's rows and the Dataset of the run (data replications, model group estimates)."""
    import xarray as xr

    check(cfg)
    cfg = copy.deepcopy(cfg)
    cfg.sampler.sample_paths = cfg.sampler.paths
    cfg.output.progress = False
    start, end = window(cfg)
    md = MarketData(cfg.data.dir)
    began = time.perf_counter()
    data, reps = data_moments(md, start, end, cfg.moments.bootstrap, cfg.moments.block_months,
                              cfg.sampler.seed)
    blocks = block_length_check(md, start, end)
    data_seconds = time.perf_counter() - began
    model, groups, days = model_moments(cfg, md, progress=progress)
    seconds = time.perf_counter() - began
    names = list(MOMENTS)
    g = groups.shape[0]
    rows = []
    for i, k in enumerate(names):
        se_d = float(np.nanstd(reps[:, i], ddof=1))
        lo, hi = (float(v) for v in np.nanquantile(reps[:, i], [0.025, 0.975]))
        se_m = float(np.nanstd(groups[:, i], ddof=1) / math.sqrt(g))
        both = math.hypot(se_d, se_m)
        diff = (model[k] - data[k]) / both if both > 0 else np.nan
        rows.append({"moment": k, "unit": MOMENTS[k][0], "description": MOMENTS[k][1],
                     "data": data[k], "data_se": se_d, "data_lo95": lo, "data_hi95": hi,
                     "model": model[k], "model_se": se_m, "z": diff,
                     "inside": bool(lo <= model[k] <= hi)})
    from sim.results import config_yaml, package_versions
    import sim

    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    ds = xr.Dataset(
        {"data": ("moment", [data[k] for k in names], {"long_name": "Moment of the data"}),
         "model": ("moment", [model[k] for k in names], {"long_name": "Moment of the model, pooled"}),
         "data_bootstrap": (("replication", "moment"), reps,
                            {"long_name": "Moving-block bootstrap replications of the data moments"}),
         "model_groups": (("group", "moment"), groups,
                          {"long_name": "Model moments of independent groups of paths"})},
        coords={"moment": ("moment", np.array(names, dtype=object)),
                "unit": ("moment", np.array([MOMENTS[k][0] for k in names], dtype=object)),
                "description": ("moment", np.array([MOMENTS[k][1] for k in names], dtype=object)),
                "origin": ("origin", days.astype("datetime64[ns]"), {"long_name": "Model origins"})},
        attrs={"title": f"Stylised facts: data {start} to {end} against the model",
               "source": f"yen-carry-sim {sim.__version__}", "data_dir": str(md.dir),
               "window": f"{start} to {end}", "paths": int(cfg.sampler.paths),
               "seed": int(cfg.sampler.seed), "horizon_months": int(cfg.sampler.horizon_months),
               "step_months": int(cfg.moments.step_months),
               "block_months": int(cfg.moments.block_months),
               "bootstrap": int(cfg.moments.bootstrap), "mc_groups": int(cfg.moments.mc_groups),
               "politis_white_weeks": "; ".join(f"{k}: {v:.1f}" for k, v in blocks.items()),
               "seconds": float(seconds), "data_seconds": float(data_seconds),
               "versions": package_versions(), "config": config_yaml(cfg),
               "history": f"{stamp}: python -m sim.moments"})
    return rows, ds


def _num(x, digits: int) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _se(x, digits: int) -> str:
    """A standard error with at least one significant digit."""
    if x is not None and np.isfinite(x) and 0 < x < 0.5 * 10.0 ** -digits:
        return f"{x:.1g}"
    return _num(x, digits)


def _digits(unit: str) -> int:
    return {"%": 2, "1": 2, "% of weeks": 2, "per year": 2, "bp": 1}.get(unit, 3)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| moment | unit | data ± SE | data 95% interval | model ± SE | z | inside |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        d = _digits(r["unit"])
        lines.append(
            f"| {r['description']} | {r['unit']} | {_num(r['data'], d)} ± {_se(r['data_se'], d)} | "
            f"{_num(r['data_lo95'], d)} to {_num(r['data_hi95'], d)} | "
            f"{_num(r['model'], d)} ± {_se(r['model_se'], d)} | {_num(r['z'], 1)} | "
            f"{'yes' if r['inside'] else 'no'} |")
    return "\n".join(lines)


def report(rows: list[dict], ds) -> str:
    a = ds.attrs
    n = ds.sizes["origin"]
    first, last = (str(ds["origin"].values[i])[:10] for i in (0, -1))
    inside = sum(r["inside"] for r in rows)
    return "\n".join([
        f"# Stylised facts: data {a['window']} against the model",
        "",
        f"Data: FRED files in {a['data_dir']}; standard errors from {a['bootstrap']} circular "
        f"moving-block bootstrap replications with blocks of {a['block_months']} calendar months "
        f"(Politis-White automatic block length, weeks: {a['politis_white_weeks']}); the 95% "
        "interval is the bootstrap percentile interval.",
        f"Model: {n} origins from {first} to {last} (every {a['step_months']} months), snapshot "
        f"from the data at each, {a['paths']:,} paths of {a['horizon_months']} months each, seed "
        f"{a['seed']} + origin number; standard errors from {a['mc_groups']} independent groups "
        "of paths. z = (model - data) / sqrt(SE_data^2 + SE_model^2); inside: the model value "
        "lies in the data's 95% interval.",
        "",
        markdown_table(rows),
        "",
        f"{inside} of {len(rows)} moments inside the data's 95% interval. Run time: "
        f"{a['seconds']:.0f}s (data and bootstrap {a['data_seconds']:.0f}s).",
    ]) + "\n"


def write_outputs(rows: list[dict], ds, out_dir: Path) -> list[Path]:
    """moments.md, moments.csv and moments.nc, each written atomically."""
    from sim.results import write_table_set

    return write_table_set(out_dir, "moments", ds, rows, report(rows, ds))


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def _app(cfg) -> None:
    from hydra.core.hydra_config import HydraConfig

    from sim.compose import to_config

    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        config = to_config(cfg)
        rows, ds = run_moments(config, progress=True)
        files = write_outputs(rows, ds, out_dir)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(report(rows, ds))
    print(f"Results in {out_dir}: " + ", ".join(p.name for p in files))


def main() -> None:
    from sim.cli import command_main

    command_main("moments", _app, "moments")


if __name__ == "__main__":
    main()
