"""Rolling-origin backtest: the model's predictive distributions against what happened and
against three benchmarks (docs/model.md, section 17).

``python -m sim.backtest [overrides]`` (``backtest=quick`` for a few origins).  At each origin
(the last Friday of every ``backtest.step_months``-th month from ``backtest.start`` to
``backtest.end``) the snapshot is rebuilt from the data as known on that day
(:mod:`sim.datasnapshot`) and the model is run with the same seed at every origin (common
random numbers).  The benchmarks of :mod:`sim.benchmarks` are fitted on data before the
origin only.  Every forecast is an ensemble of paths on the weekly Friday grid from the origin;
the outcome is read on the same grid from the data.  Scores come from :mod:`sim.scores`.

Outputs, in the run's own folder: ``backtest.nc`` (dims origin, horizon, quantity,
forecaster), ``backtest.md`` and ``backtest.csv`` (one row per quantity, horizon and sample),
``pit_histograms.png`` and ``fan_against_reality.png``.
"""
from __future__ import annotations

import copy
import datetime as _dt
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from sim.calendar import add_months, parse_date
from sim.config import Config
from sim.datasnapshot import policy_rate, policy_rates_known, with_data_snapshot
from sim.marketdata import DataError, MarketData, fridays, month_end
from sim.validate import ConfigError

def _stats():
    """(sim.scores, sim.benchmarks), imported on first use: scoringrules compiles its kernels
    when imported (several seconds), which a command stopping at a bad setting should not pay."""
    from sim import benchmarks, scores

    return scores, benchmarks


#: Quantities scored: name -> (units, long name, model variable of the sample paths).
QUANTITIES = {
    "usdjpy_change": ("%", "Change of log USD/JPY from the origin (100 x log)", "usdjpy"),
    "largest_rally": ("%", "Largest yen rally within the horizon (fall of USD/JPY from its "
                           "running peak, weekly Friday closes)", "usdjpy"),
    "fed_rate": ("% p.a.", "Fed policy rate (midpoint of target range)", "fed_rate"),
    "boj_rate": ("% p.a.", "BoJ policy rate", "boj_rate"),
    "ust10": ("% p.a.", "10y UST yield", "ust10"),
    "jgb10": ("% p.a.", "10y JGB yield", "jgb10"),
}
FX_QUANTITIES = ("usdjpy_change", "largest_rally")
RATE_QUANTITIES = ("fed_rate", "boj_rate", "ust10", "jgb10")
FORECASTERS = ("model", "flows_off", "random_walk", "garch_t", "bootstrap")
BENCHMARKS = FORECASTERS[1:]
FORECASTER_NAMES = {
    "model": "the model",
    "flows_off": "the model on the same shocks with private flows moving no price "
                 "(model.impact.private_flows=false: the counterfactual the flows must beat)",
    "random_walk": "random walk (trailing realised volatility); rates: no change + historical changes",
    "garch_t": "GARCH(1,1) with Student-t innovations (arch), rolling window",
    "bootstrap": "block bootstrap of past weekly changes",
}
#: Fewest past changes over a horizon (weekly windows: half a year) behind the rates' no-change
#: benchmark at an origin.
MIN_PAST_CHANGES = 26
#: Short names of the forecasters in the tables.
SHORT = {"model": "model", "flows_off": "flows off", "random_walk": "RW", "garch_t": "GARCH-t",
         "bootstrap": "bootstrap"}
#: Quantiles kept per forecast (for the fan plot and the tables).
KEEP_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
PINBALL = (0.05, 0.95)
BANDS = (0.5, 0.9)
#: The forecasters the crash events' power is measured against (the issue's two bars: better
#: than flows off, no worse than GARCH-t), the seed and the number of its simulated samples.
POWER_AGAINST = ("flows_off", "garch_t")
POWER_SEED = 20240805
POWER_SAMPLES = 2000


def origins(bt) -> np.ndarray:
    """The last Friday of every ``step_months``-th month from ``start`` to ``end``."""
    first = parse_date(bt.start, "backtest.start")
    last = parse_date(bt.end, "backtest.end")
    if last < first:
        raise ConfigError("backtest.end", bt.end, f"a date on or after backtest.start ({bt.start})")
    out = []
    month = first.astype("datetime64[M]")
    while month <= last.astype("datetime64[M]"):  # the last Friday of each month in [first, last]
        end = month_end(month.astype("datetime64[D]"))
        fri = fridays(end - np.timedelta64(6, "D"), end)[-1]
        if first <= fri <= last:
            out.append(fri)
        month = month + bt.step_months
    if not out:
        raise ConfigError("backtest.start/end", (bt.start, bt.end),
                          "a period holding at least one origin (the last Friday of a month)")
    return np.array(out, dtype="datetime64[D]")


def horizon_weeks(origin: np.datetime64, months: int) -> int:
    """Weeks from ``origin`` to the Friday nearest ``months`` calendar months later."""
    return int(round((add_months(origin, months) - origin).astype(int) / 7.0))


def in_window(origin: np.datetime64, weeks: int, window) -> bool:
    """Whether the forecast period (origin, origin + weeks] overlaps the calibration window."""
    start = parse_date(window.start, "model.calibration_window.start")
    end = parse_date(window.end, "model.calibration_window.end")
    return bool(origin < end and origin + np.timedelta64(7 * weeks, "D") >= start)


def check(cfg: Config) -> None:
    """The whole config's checks (ranges of every key), then those tying backtest keys together."""
    from sim.validate import validate

    validate(cfg)
    bt = cfg.backtest
    if not bt.horizons:
        raise ConfigError("backtest.horizons", list(bt.horizons), "a list of whole months >= 1")
    if not 1 <= bt.block_weeks <= bt.window_weeks // 2:
        raise ConfigError("backtest.block_weeks", bt.block_weeks,
                          f"an integer from 1 to window_weeks / 2 ({bt.window_weeks // 2})")
    for i, ev in enumerate(bt.rally_events):
        if ev.horizon not in bt.horizons:
            raise ConfigError(f"backtest.rally_events[{i}].horizon", ev.horizon,
                              f"one of the horizons {list(bt.horizons)}")
    parse_date(cfg.model.calibration_window.start, "model.calibration_window.start")
    parse_date(cfg.model.calibration_window.end, "model.calibration_window.end")


# ---------------------------------------------------------------------------------------------
# Outcomes and histories from the data
# ---------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What happened after an origin, on the forecasts' weekly grid."""

    log_fx: np.ndarray           # ln USD/JPY at the origin and each Friday after it
    levels: dict                 # quantity -> value at each horizon (NaN: not yet known)


def realised(md: MarketData, origin: np.datetime64, weeks: list[int]) -> Outcome:
    """Outcomes at each horizon (in weeks), NaN where the data end before it."""
    S, B = _stats()
    grid = origin + 7 * np.arange(max(weeks) + 1).astype("timedelta64[D]")
    fx = md["DEXJPUS"]
    closes = fx.as_of_many(grid)
    closes[grid > fx.last] = np.nan
    log_fx = np.log(closes)
    levels = {q: np.full(len(weeks), np.nan) for q in QUANTITIES}
    for i, k in enumerate(weeks):
        day = grid[k]
        if np.isfinite(log_fx[k]):
            levels["usdjpy_change"][i] = 100.0 * (log_fx[k] - log_fx[0])
            levels["largest_rally"][i] = float(S.largest_rally(log_fx[:k + 1]))
        for name, fn in (("fed_rate", lambda d: policy_rate(md, "fed", d, hindsight=True)),
                         ("boj_rate", lambda d: policy_rate(md, "boj", d, hindsight=True)),
                         ("ust10", lambda d: md["DGS10"].value_at(d)),
                         ("jgb10", lambda d: md["IRLTLT01JPM156N"].value_at(d))):
            try:
                levels[name][i] = fn(day)
            except DataError:
                pass
    return Outcome(log_fx, levels)


def weekly_fx_changes(md: MarketData, origin: np.datetime64, n: int) -> np.ndarray:
    """The last ``n`` weekly (Friday-to-Friday) log changes of USD/JPY known on ``origin``."""
    days = fridays(origin - np.timedelta64(7 * (n + 1), "D"), origin)
    closes = md["DEXJPUS"].as_of_many(days)
    r = np.diff(np.log(closes))
    return r[np.isfinite(r)]


def rate_history(md: MarketData, name: str, origin: np.datetime64, weeks: int) -> np.ndarray:
    """Weekly (Friday) levels of a rate or yield as known on each Friday, over ``weeks`` weeks
    before ``origin`` (point in time: every value was known on its Friday)."""
    days = fridays(origin - np.timedelta64(7 * weeks, "D"), origin)
    if name in ("ust10", "jgb10"):
        series = md["DGS10" if name == "ust10" else "IRLTLT01JPM156N"]
        return series.as_of_many(days)
    return policy_rates_known(md, name[:3], days)


# ---------------------------------------------------------------------------------------------
# Forecast ensembles at one origin
# ---------------------------------------------------------------------------------------------

def forecast(run_cfg: Config, origin: np.datetime64, weeks: list[int]) -> dict:
    """The ensembles of a config whose snapshot is already the origin's: quantity ->
    (horizons, paths)."""
    S, B = _stats()
    from sim.moments import sample_series

    # The kernel's sample paths without a Dataset: building one (its config attribute above
    # all) cost more than the kernel's 2,000 paths.
    times, series = sample_series(run_cfg)
    times = np.asarray(times).astype("datetime64[D]")
    if not np.all(times[:max(weeks) + 1] == origin + 7 * np.arange(max(weeks) + 1).astype("timedelta64[D]")):
        raise RuntimeError("the model's time grid is not weekly from the origin")
    log_fx = np.log(series["usdjpy"])
    out = {}
    out["usdjpy_change"] = np.stack([100.0 * (log_fx[:, k] - log_fx[:, 0]) for k in weeks])
    out["largest_rally"] = np.stack([S.largest_rally(log_fx[:, :k + 1]) for k in weeks])
    for name in RATE_QUANTITIES:
        values = series[name]
        out[name] = np.stack([values[:, k] for k in weeks])
    return out


def benchmark_ensembles(cfg: Config, md: MarketData, origin: np.datetime64, weeks: list[int],
                        start_levels: dict):
    """Every benchmark's ensembles: forecaster -> quantity -> (horizons, paths)."""
    S, B = _stats()
    bt, n, seed = cfg.backtest, cfg.sampler.paths, cfg.sampler.seed
    history = weekly_fx_changes(md, origin, bt.window_weeks)
    n_weeks = max(weeks)
    paths = {
        "random_walk": B.random_walk(history, n_weeks, n, seed),
        "garch_t": B.garch_t(history, n_weeks, n, seed, window=bt.window_weeks),
        "bootstrap": B.block_bootstrap(history, n_weeks, n, seed, block=bt.block_weeks,
                                       window=bt.window_weeks),
    }
    out = {}
    rates = {}
    for name in RATE_QUANTITIES:
        levels = rate_history(md, name, origin, bt.window_weeks + n_weeks)
        levels[-1] = start_levels[name]   # the level at the origin, exactly as the model starts
        # A series too young at the origin to hold MIN_PAST_CHANGES changes over each horizon
        # (the call rate behind the BoJ's rate starts in October 1992) has no distribution of
        # past changes to draw from: that benchmark is not scored there.
        if all(np.isfinite(levels[k:] - levels[:-k]).sum() >= MIN_PAST_CHANGES for k in weeks):
            rates[name] = np.stack([B.historical_changes(levels, k, n, seed) for k in weeks])
        else:
            rates[name] = None
    for f, cum in paths.items():
        cum = 100.0 * np.asarray(cum)
        q = {"usdjpy_change": np.stack([cum[:, k - 1] for k in weeks]),
             "largest_rally": np.stack([S.largest_rally(cum[:, :k] / 100.0, origin=0.0) for k in weeks])}
        for name in RATE_QUANTITIES:
            q[name] = rates[name] if f == "random_walk" else None
        out[f] = q
    return out


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------

def run_backtest(cfg: Config, progress: bool = True) -> xr.Dataset:
    """Forecasts, outcomes and scores at every origin, as one Dataset."""
    check(cfg)
    bt = cfg.backtest
    cfg = copy.deepcopy(cfg)
    cfg.sampler.horizon_months = max(bt.horizons)
    cfg.sampler.sample_paths = cfg.sampler.paths
    cfg.output.progress = False
    from sim.pipeline import flows_off

    md = MarketData(cfg.data.dir)
    days = origins(bt)
    S, B = _stats()
    horizons = list(bt.horizons)
    nq, nf, nh, no = len(QUANTITIES), len(FORECASTERS), len(horizons), len(days)
    kq = len(KEEP_QUANTILES)
    shape = (no, nh, nq, nf)
    arrays = {k: np.full(shape, np.nan) for k in
              ("pit", "crps", "pinball_05", "pinball_95", "hit_50", "hit_90", "mean")}
    quant = np.full(shape + (kq,), np.nan)
    observed = np.full((no, nh, nq), np.nan)
    prob = np.full((no, nh, nf), np.nan)
    in_sample = np.zeros((no, nh), dtype=bool)
    thresholds = np.full(nh, np.nan)
    for ev in bt.rally_events:
        thresholds[horizons.index(ev.horizon)] = ev.threshold
    start_fx = np.full(no, np.nan)
    iterator = range(no)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=no, desc="backtest origins", unit="origin", file=sys.stderr)
    began = time.perf_counter()
    for o in iterator:
        origin = days[o]
        weeks = [horizon_weeks(origin, h) for h in horizons]
        for j, k in enumerate(weeks):
            in_sample[o, j] = in_window(origin, k, cfg.model.calibration_window)
        outcome = realised(md, origin, weeks)
        run_cfg = with_data_snapshot(cfg, md, str(origin))
        snap = run_cfg.snapshot
        model = forecast(run_cfg, origin, weeks)
        # the same snapshot and shocks (same seed), private flows off
        off = forecast(flows_off(run_cfg), origin, weeks)
        start_fx[o] = snap.usdjpy
        start = {"fed_rate": snap.fed_rate, "boj_rate": snap.boj_rate, "ust10": snap.ust10,
                 "jgb10": snap.jgb10}
        ensembles = {"model": model, "flows_off": off,
                     **benchmark_ensembles(cfg, md, origin, weeks, start)}
        for qi, q in enumerate(QUANTITIES):
            obs = outcome.levels[q]
            observed[o, :, qi] = obs
            for fi, f in enumerate(FORECASTERS):
                ens = ensembles[f][q]
                if ens is None:
                    continue
                quant[o, :, qi, fi] = np.quantile(ens, KEEP_QUANTILES, axis=-1).T
                arrays["mean"][o, :, qi, fi] = ens.mean(axis=-1)
                ok = np.isfinite(obs)
                if not ok.any():
                    continue
                # ties (rates on a grid) broken by a stream tied to the seed and the origin's date,
                # so an origin's PIT does not depend on which other origins the run holds
                tie_seed = [cfg.sampler.seed, int(origin.astype(int)), qi, fi]
                arrays["pit"][o, ok, qi, fi] = S.pit(obs[ok], ens[ok], seed=tie_seed)
                arrays["crps"][o, ok, qi, fi] = S.crps(obs[ok], ens[ok])
                arrays["pinball_05"][o, ok, qi, fi] = S.quantile_loss(obs[ok], ens[ok], 0.05)
                arrays["pinball_95"][o, ok, qi, fi] = S.quantile_loss(obs[ok], ens[ok], 0.95)
                if q == "largest_rally":
                    for j in range(nh):
                        if np.isfinite(thresholds[j]):
                            prob[o, j, fi] = S.event_probability(ens[j], thresholds[j])
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - began
    # Band coverage from the randomised PIT: exact for atoms (no rally within a month).
    scored = np.isfinite(arrays["pit"])
    for level in (0.5, 0.9):
        arrays[f"hit_{int(level * 100)}"][scored] = S.pit_hits(arrays["pit"][scored], level)
    rally = observed[:, :, list(QUANTITIES).index("largest_rally")]
    event = np.where(np.isfinite(rally) & np.isfinite(thresholds), rally > thresholds, np.nan)
    event = np.where(np.isfinite(rally), event, np.nan)
    brier = np.where(np.isfinite(event)[..., None] & np.isfinite(prob),
                     (prob - np.nan_to_num(event)[..., None]) ** 2, np.nan)
    return _dataset(cfg, days, horizons, arrays, quant, observed, prob, event, brier, in_sample,
                    thresholds, start_fx, md, elapsed)


def _dataset(cfg, days, horizons, arrays, quant, observed, prob, event, brier, in_sample,
             thresholds, start_fx, md, elapsed) -> xr.Dataset:
    from sim.results import config_yaml, package_versions
    import sim

    dims = ("origin", "horizon", "quantity", "forecaster")
    meta = {
        "pit": ("1", "Probability integral transform of the outcome"),
        "crps": ("quantity units", "Continuous ranked probability score (fair ensemble estimator)"),
        "pinball_05": ("quantity units", "Pinball loss of the 5% quantile"),
        "pinball_95": ("quantity units", "Pinball loss of the 95% quantile"),
        "hit_50": ("1", "Randomised PIT inside [0.25, 0.75]: outcome inside the central 50% band (1) or not (0)"),
        "hit_90": ("1", "Randomised PIT inside [0.05, 0.95]: outcome inside the central 90% band (1) or not (0)"),
        "mean": ("quantity units", "Mean of the forecast ensemble"),
    }
    data = {k: xr.Variable(dims, v, {"units": meta[k][0], "long_name": meta[k][1]})
            for k, v in arrays.items()}
    data["forecast_quantiles"] = xr.Variable(
        dims + ("probability",), quant,
        {"units": "quantity units", "long_name": "Quantiles of the forecast ensemble"})
    data["observed"] = xr.Variable(("origin", "horizon", "quantity"), observed,
                                   {"units": "quantity units", "long_name": "Realised outcome"})
    data["crash_probability"] = xr.Variable(
        ("origin", "horizon", "forecaster"), prob,
        {"units": "1", "long_name": "Forecast probability that the largest yen rally exceeds the "
                                   "crash threshold of the horizon"})
    data["crash_event"] = xr.Variable(("origin", "horizon"), event,
                                      {"units": "1", "long_name": "Crash event happened (1) or not (0)"})
    data["brier"] = xr.Variable(("origin", "horizon", "forecaster"), brier,
                                {"units": "1", "long_name": "Brier score of the crash probability"})
    data["in_sample"] = xr.Variable(("origin", "horizon"), in_sample.astype(np.int8),
                                    {"units": "1", "long_name": "Forecast period overlaps the model's "
                                                                "calibration window (1) or not (0)"})
    data["crash_threshold"] = xr.Variable("horizon", thresholds,
                                          {"units": "%", "long_name": "Crash threshold: largest yen rally above"})
    data["usdjpy_origin"] = xr.Variable("origin", start_fx, {"units": "JPY per USD",
                                                              "long_name": "USD/JPY at the origin"})
    fx = md["DEXJPUS"]
    week_days = fridays(days[0] - np.timedelta64(7, "D"),
                        min(add_months(days[-1], max(horizons)) + 7, fx.last))
    data["usdjpy_weekly"] = xr.Variable("week", fx.as_of_many(week_days),
                                        {"units": "JPY per USD", "long_name": "USD/JPY, Friday closes"})
    units = [QUANTITIES[q][0] for q in QUANTITIES]
    coords = {
        "origin": ("origin", days.astype("datetime64[ns]"), {"long_name": "Forecast origin (Friday)"}),
        "horizon": ("horizon", np.array(horizons), {"units": "months", "long_name": "Horizon"}),
        "quantity": ("quantity", np.array(list(QUANTITIES), dtype=object), {"long_name": "Quantity"}),
        "quantity_units": ("quantity", np.array(units, dtype=object), {"long_name": "Units of the quantity"}),
        "quantity_long_name": ("quantity", np.array([QUANTITIES[q][1] for q in QUANTITIES], dtype=object),
                               {"long_name": "Description of the quantity"}),
        "forecaster": ("forecaster", np.array(FORECASTERS, dtype=object), {"long_name": "Forecaster"}),
        "probability": ("probability", np.array(KEEP_QUANTILES), {"units": "1", "long_name": "Quantile level"}),
        "week": ("week", week_days.astype("datetime64[ns]"), {"long_name": "Friday"}),
    }
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    attrs = {
        "title": f"Backtest of the model against random walk, GARCH(1,1)-t and block bootstrap "
                 f"({len(days)} origins)",
        "source": f"yen-carry-sim {sim.__version__}",
        "data_dir": str(md.dir),
        "seed": int(cfg.sampler.seed),
        "paths": int(cfg.sampler.paths),
        "calibration_window": f"{cfg.model.calibration_window.start} to {cfg.model.calibration_window.end}",
        "forecasters": "; ".join(f"{k}: {v}" for k, v in FORECASTER_NAMES.items()),
        "seconds": float(elapsed),
        "versions": package_versions(),
        "config": config_yaml(cfg),
        "history": f"{stamp}: python -m sim.backtest",
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

SAMPLES = ("out-of-sample", "in-sample", "all")


def _steps(horizon_months: int, step_months: int) -> int:
    """Origin steps a forecast of ``horizon_months`` spans (rounded up)."""
    return -(-int(horizon_months) // int(step_months))


def _lags(horizon_months: int, step_months: int, n: int) -> int:
    S, B = _stats()
    return min(S.overlap_lags(_steps(horizon_months, step_months)), max(n - 2, 0))


def _select(ds: xr.Dataset, sample: str, horizon) -> np.ndarray:
    flag = ds["in_sample"].sel(horizon=horizon).values.astype(bool)
    return {"out-of-sample": ~flag, "in-sample": flag, "all": np.ones_like(flag)}[sample]


def summary_rows(ds: xr.Dataset) -> list[dict]:
    """One row per sample, quantity and horizon: coverage of the model's bands with HAC
    intervals, CRPS ratios to each benchmark with Diebold-Mariano p-values, pinball losses and,
    for crash events, Brier scores with the number of events and what samples drawn from the
    model's own event probabilities would show (the power of the comparison)."""
    S, B = _stats()
    step = int(yaml_value(ds.attrs["config"], ("backtest", "step_months")) or 1)
    rows = []
    for sample in SAMPLES:
        for q in ds["quantity"].values:
            for h in ds["horizon"].values:
                pick = _select(ds, sample, h)
                sub = ds.sel(quantity=q, horizon=h).isel(origin=np.flatnonzero(pick))
                crps = sub["crps"]
                ok = np.isfinite(crps.sel(forecaster="model").values)
                n = int(ok.sum())
                row = {"sample": sample, "quantity": str(q), "horizon_months": int(h), "origins": n}
                if n < 3:
                    rows.append(row)
                    continue
                lags = _lags(h, step, n)
                model = crps.sel(forecaster="model").values[ok]
                for level in BANDS:
                    hits = sub[f"hit_{int(level * 100)}"].sel(forecaster="model").values[ok]
                    rate, lo, hi = S.coverage_interval(hits, lags)
                    row[f"coverage_{int(level * 100)}"] = rate
                    row[f"coverage_{int(level * 100)}_ci"] = f"{lo:.2f}-{hi:.2f}"
                for f in BENCHMARKS:  # the benchmarks' coverage, for comparison (CSV only)
                    for level in BANDS:
                        hits = sub[f"hit_{int(level * 100)}"].sel(forecaster=f).values[ok]
                        if np.all(np.isfinite(hits)):
                            row[f"coverage_{int(level * 100)}_{f}"] = float(hits.mean())
                row["crps_model"] = float(model.mean())
                for f in BENCHMARKS:
                    other = crps.sel(forecaster=f).values[ok]
                    both = np.isfinite(other)   # a benchmark may lack history at early origins
                    if both.sum() < 3:
                        continue
                    _, _, p = S.diebold_mariano(model[both], other[both], _lags(h, step, int(both.sum())))
                    row[f"crps_ratio_{f}"] = float(model[both].mean() / other[both].mean())
                    row[f"p_{f}"] = float(p)
                    if both.sum() < n:
                        row[f"origins_{f}"] = int(both.sum())
                for name in ("pinball_05", "pinball_95"):
                    row[f"{name}_model"] = float(sub[name].sel(forecaster="model").values[ok].mean())
                    rw = sub[name].sel(forecaster="random_walk").values[ok]
                    if np.all(np.isfinite(rw)):
                        row[f"{name}_random_walk"] = float(rw.mean())
                if q == "largest_rally" and np.isfinite(float(ds["crash_threshold"].sel(horizon=h))):
                    ev = sub["crash_event"].values
                    good = np.isfinite(ev)
                    row["crash_threshold"] = float(ds["crash_threshold"].sel(horizon=h))
                    row["events"] = int(np.nansum(ev[good]))
                    bm = sub["brier"].sel(forecaster="model").values[good]
                    row["brier_model"] = float(bm.mean())
                    for f in BENCHMARKS:
                        bf = sub["brier"].sel(forecaster=f).values[good]
                        row[f"brier_{f}"] = float(bf.mean())
                        _, _, p = S.diebold_mariano(bm, bf, lags)
                        row[f"brier_p_{f}"] = float(p)
                    probs = {f: sub["crash_probability"].sel(forecaster=f).values[good]
                             for f in FORECASTERS}
                    row.update(crash_power(probs, row["events"], _steps(h, step), lags))
                rows.append(row)
    return rows


def crash_power(probs: dict, observed: int, window: int, lags: int) -> dict:
    """What the crash events can decide (``sim.scores.event_samples`` / ``event_power``, seed
    :data:`POWER_SEED`): for every forecaster, the events its own probabilities expect and the
    share of its samples with at most the ``observed`` count (the level of its probabilities);
    against each forecaster of :data:`POWER_AGAINST`, how often samples drawn from the model's
    probabilities score the model better (and significantly so), and how often samples drawn
    from that forecaster's probabilities score it significantly better than the model."""
    S, _ = _stats()
    usable = {f: p for f, p in probs.items() if p.size >= 2 and np.all(np.isfinite(p))}
    out = {}
    for f, p in usable.items():
        counts = S.event_samples(p, window, POWER_SAMPLES, POWER_SEED).sum(axis=1)
        out[f"events_expected_{f}"] = float(counts.mean())
        out[f"events_at_most_observed_{f}"] = float(np.mean(counts <= observed))
        if f == "model":
            lo, hi = np.percentile(counts, [5, 95], method="inverted_cdf")
            out["events_range_90"] = f"{lo:.0f}-{hi:.0f}"
    if "model" not in usable:
        return out
    for f in POWER_AGAINST:
        if f not in usable:
            continue
        right = S.event_power(usable["model"], usable[f], window, lags, POWER_SAMPLES, POWER_SEED)
        other = S.event_power(usable[f], usable["model"], window, lags, POWER_SAMPLES, POWER_SEED)
        out[f"power_better_{f}"] = right.better
        out[f"power_significant_{f}"] = right.significant
        out[f"power_{f}_significant_if_right"] = other.significant
    return out


def yaml_value(text: str, keys: tuple):
    import yaml

    node = yaml.safe_load(text) or {}
    for k in keys:
        node = node.get(k, {}) if isinstance(node, dict) else {}
    return node if node != {} else None


def _fmt(x, digits=3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return ""
    return f"{x:.{digits}f}"


def markdown_table(rows: list[dict], sample: str) -> str:
    """The rows of one sample as a Markdown table."""
    head = ("| quantity | h (m) | origins | cover 50% [95% CI] | cover 90% [95% CI] | CRPS model | "
            "CRPS / flows off (p) | CRPS / RW (p) | CRPS / GARCH-t (p) | CRPS / bootstrap (p) | "
            "pinball 5% / 95% (model) |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        if r["sample"] != sample or r["origins"] < 3:
            continue

        def ratio(f):
            if f"crps_ratio_{f}" not in r:
                return "n/a"
            on = f" on {r[f'origins_{f}']}" if f"origins_{f}" in r else ""
            return f"{r[f'crps_ratio_{f}']:.2f} ({r[f'p_{f}']:.3f}){on}"
        lines.append(
            f"| {r['quantity']} | {r['horizon_months']} | {r['origins']} | "
            f"{r['coverage_50']:.2f} [{r['coverage_50_ci']}] | {r['coverage_90']:.2f} [{r['coverage_90_ci']}] | "
            f"{_fmt(r['crps_model'])} | {ratio('flows_off')} | {ratio('random_walk')} | {ratio('garch_t')} | "
            f"{ratio('bootstrap')} | "
            f"{_fmt(r['pinball_05_model'])} / {_fmt(r['pinball_95_model'])} |")
    return "\n".join(lines)


def brier_table(rows: list[dict]) -> str:
    lines = ["| sample | event | origins | events | Brier model | Brier flows off (p) | Brier RW (p) | "
             "Brier GARCH-t (p) | Brier bootstrap (p) |", "|" + "---|" * 9]
    for r in rows:
        if "brier_model" not in r:
            continue
        cells = " | ".join(f"{r[f'brier_{f}']:.4f} ({r[f'brier_p_{f}']:.3f})" for f in BENCHMARKS)
        lines.append(f"| {r['sample']} | {_event(r)} | {r['origins']} | {r['events']} | "
                     f"{r['brier_model']:.4f} | {cells} |")
    return "\n".join(lines)


def _event(r: dict) -> str:
    return f"largest rally > {r['crash_threshold']:g}% within {r['horizon_months']} m"


def level_table(rows: list[dict]) -> str:
    """The level of each forecaster's crash probabilities: the events they expect and the share
    of samples drawn from them with at most the observed count (``crash_power``)."""
    lines = ["| sample | event | events | " + " | ".join(SHORT[f] for f in FORECASTERS) + " |",
             "|" + "---|" * (3 + len(FORECASTERS))]
    for r in rows:
        if "events_expected_model" not in r:
            continue
        cells = " | ".join(f"{r[f'events_expected_{f}']:.1f} ({r[f'events_at_most_observed_{f}']:.2f})"
                           if f"events_expected_{f}" in r else "n/a" for f in FORECASTERS)
        lines.append(f"| {r['sample']} | {_event(r)} | {r['events']} | {cells} |")
    return "\n".join(lines)


def power_table(rows: list[dict]) -> str:
    """Could the sample tell?  Samples drawn from the model's own event probabilities: the
    events they hold, and how often they score the model better than each forecaster of
    :data:`POWER_AGAINST` (and significantly, Diebold-Mariano at 5%); and samples drawn from that
    forecaster's probabilities: how often they score it significantly better than the model."""
    heads = " | ".join(f"model right: P(model below {SHORT[f]}) / P(significant) | "
                       f"{SHORT[f]} right: P(significant)" for f in POWER_AGAINST)
    lines = [f"| sample | event | events | model expects [90% range] | {heads} |",
             "|" + "---|" * (4 + 2 * len(POWER_AGAINST))]
    for r in rows:
        if "events_range_90" not in r:
            continue
        cells = " | ".join(f"{r[f'power_better_{f}']:.2f} / {r[f'power_significant_{f}']:.3f} | "
                           f"{r[f'power_{f}_significant_if_right']:.3f}"
                           if f"power_better_{f}" in r else "n/a | n/a" for f in POWER_AGAINST)
        lines.append(f"| {r['sample']} | {_event(r)} | {r['events']} | "
                     f"{r['events_expected_model']:.1f} [{r['events_range_90']}] | {cells} |")
    return "\n".join(lines)


def report(ds: xr.Dataset, rows: list[dict]) -> str:
    n = ds.sizes["origin"]
    first, last = (str(ds["origin"].values[i])[:10] for i in (0, -1))
    text = [
        f"# Backtest: {n} origins from {first} to {last}",
        "",
        f"Model calibration window: {ds.attrs['calibration_window']}. A forecast is in-sample when "
        "its period (origin, origin + horizon] overlaps the window; the headline is out-of-sample.",
        f"{ds.attrs['paths']:,} paths per origin, seed {ds.attrs['seed']} at every origin (common "
        "random numbers). Flows off: the model on the same shocks with private flows moving no "
        "price. CRPS / X below 1: the model beats benchmark X; p: Diebold-Mariano test of "
        "equal mean CRPS with Newey-West (HAC) variance. Coverage intervals: Wilson at the HAC "
        "effective sample size. Rates and yields are compared with no change plus past changes "
        "over the horizon (column RW) and with the flows-off model.",
        "",
    ]
    for sample in SAMPLES:
        text += [f"## {sample.capitalize()}", "", markdown_table(rows, sample), ""]
    text += ["## Crash events (Brier score; lower is better)", "", brier_table(rows), ""]
    text += ["## The level of the crash probabilities", "",
             f"Events each forecaster expects, from {POWER_SAMPLES:,} samples of events drawn from "
             "its own probabilities at the same origins (one crash an event at every origin whose "
             "window holds it; sim.scores.event_samples), and in brackets the share of those "
             "samples with at most the observed number: a small share says the forecaster's "
             "crash probabilities were too high.", "", level_table(rows), "",
             "## Could the sample tell?", "",
             "If the model's probabilities were right: the share of samples scoring it below a "
             "benchmark in Brier, and significantly so (Diebold-Mariano at 5%); if the "
             "benchmark's were right: the share scoring the benchmark significantly below the "
             "model.", "", power_table(rows), ""]
    text += [f"Run time: {ds.attrs['seconds']:.0f}s. Forecasters: {ds.attrs['forecasters']}."]
    return "\n".join(text) + "\n"


def write_outputs(ds: xr.Dataset, out_dir: Path, plots: bool = True) -> list[Path]:
    """backtest.nc, backtest.md, backtest.csv and the figures, each written atomically."""
    from sim.results import write_table_set

    out_dir = Path(out_dir)
    rows = summary_rows(ds)
    files = write_table_set(out_dir, "backtest", ds, rows, report(ds, rows))
    if plots:
        from sim.backtest_plots import plot_fan, plot_pit

        files.append(plot_pit(ds, out_dir / "pit_histograms.png"))
        files.append(plot_fan(ds, out_dir / "fan_against_reality.png"))
    return files


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

#: The folder the backtest's files end up in (they are written into a staging folder beside it).
_FOLDER: list = [None]


def _app(cfg) -> None:
    from hydra.core.hydra_config import HydraConfig

    from sim.compose import to_config

    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        config = to_config(cfg)
        ds = run_backtest(config, progress=True)
        files = write_outputs(ds, out_dir, plots=True)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    rows = summary_rows(ds)
    window = ds.attrs["calibration_window"]
    for sample, what in (("out-of-sample", f"forecast periods outside the calibration window {window}"),
                         ("in-sample", "forecast periods overlapping the window")):
        n = max([r["origins"] for r in rows if r["sample"] == sample] or [0])
        if n == 0:
            print(f"{sample.capitalize()} ({what}): no forecasts.\n")
            continue
        print(f"{sample.capitalize()} ({what}), {n} origins at most:\n")
        print(markdown_table(rows, sample))
        print()
        print(brier_table([r for r in rows if r["sample"] == sample]))
        print()
    print(f"{ds.sizes['origin']} origins in {ds.attrs['seconds']:.0f}s. Results in {_FOLDER[0] or out_dir}: "
          + ", ".join(p.name for p in files))


def main() -> None:
    from sim.cli import command_main

    # its own folder, reserved like a run's; the files appear together when it ends
    command_main("backtest", _app, "backtest", reserve=(Path("outputs") / "backtest", "backtest", _FOLDER))


if __name__ == "__main__":
    main()
