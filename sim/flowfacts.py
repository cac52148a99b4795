"""Published flow facts and the Capital Economics check, as functions of the model.

Each function runs the model (or evaluates a class's response function) and returns a dict
``{name: (value, Monte Carlo standard error)}``, so the calibration (SMM) can use the facts as
targets or report them beside the data (docs/model.md, "Flow facts").  Every simulation uses
the seed of its config, so variants compared within a function see the same shocks (common
random numbers) and their differences are paired.

* :func:`july_2024`: the carry unwind of July-August 2024, replayed on the daily grid from a
  snapshot built from the data on 5 July 2024 with the MoF intervention of 11-12 July (5.53tn
  yen, about USD 35bn), the BoJ hike of 31 July and the stress of 2-5 August scripted on their
  days.  Facts: roughly 50-90% of a ~USD 250bn leveraged carry stock unwound within about five
  weeks (BIS Bulletin 90); Japanese institutional flows stayed small (MoF weekly data as
  reported by the press); and the fall of USD/JPY, which :func:`july_2024_data` measures in
  FRED's daily closes over the replay's two months (the press's 161.95 to about 142-146 are
  intraday figures).
* :func:`interventions`: the MoF's yen purchases of September 2022, April-May 2024 and July 2024,
  each replayed from a snapshot built from the data on the Friday before its week, against the
  same paths without it; the data's side, :func:`intervention_data`, is the fall of USD/JPY over
  the same weeks in FRED's closes.
* :func:`hedge_response`: the life insurers' hedge ratio as a behaviour: the yen they buy, and
  the fall of the hedged pick-up that moves them, from 45% to 60% hedged (RBC: about USD 170bn).
* :func:`capital_economics`: the unwind and repatriation attributable to compressing the 10y
  spread to 1.5pp (scenario spread_compression), against the baseline on the same shocks.  A
  reported check, never a fitted target (the quoted claim: at least USD 1.2tn unwound, about
  USD 600bn repatriated).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr, ndtri

from sim.compose import load_config
from sim.pipeline import simulate
from sim.summary import mean_se

#: Classes that are Japanese institutional investors (not yen-funded carry).
INSTITUTIONAL = ("life_insurers", "gpif", "banks", "investment_trusts")

#: The window of the July-August 2024 replay: its snapshot date and horizon in months.
JULY_2024_START, JULY_2024_MONTHS = "2024-07-05", 2
#: The scripted replay of July-August 2024 (docs/model.md, "Flow facts").
JULY_2024 = [
    "snapshot=data", f"snapshot.date={JULY_2024_START}",
    f"sampler.horizon_months={JULY_2024_MONTHS}", "sampler.step=daily",
    # MoF: 5.53tn yen bought on 11-12 July 2024, about USD 35bn at 159 yen per dollar.
    "+scenario.events=[{date: '2024-07-11', kind: intervention, value: 35.0},"
    # BoJ: 0-0.1% to 0.25% on 31 July (the grid's nearest move from the data's 0.1 is +0.25).
    " {date: '2024-07-31', kind: boj_decision, value: 0.25},"
    # Weak US payrolls on 2 August and the Nikkei's fall on 5 August: the stress regime.
    " {date: '2024-08-02', kind: stress, value: 1.0}]",
]
#: The published ranges the replay is compared with.
JULY_2024_FACTS = {
    "leveraged_unwound_share": (0.5, 0.9, "BIS Bulletin 90: roughly 50-90% of ~USD 250bn"),
    "institutional_unwind": (-math.inf, 50.0, "MoF weekly data (press): residents were net "
                             "buyers of foreign bonds in most weeks; USD bn, small"),
}


#: The MoF's yen purchases of FACTS.md by the week (Friday to Friday) that holds them: the
#: Friday before, and each operation's day and size in trillion yen (MoF via nippon.com).  July
#: 2024's two days (11-12 July, 5.53tn in all) are scripted on the 11th, as in the replay.
INTERVENTIONS = (
    ("2022-09-16", (("2022-09-22", 2.84),)),
    ("2024-04-26", (("2024-04-29", 5.92), ("2024-05-01", 3.87))),
    ("2024-07-05", (("2024-07-11", 5.53),)),
)


def _weekly_changes(md, friday: np.datetime64, weeks: int) -> np.ndarray:
    """Log changes (%) of USD/JPY's Friday closes over the ``weeks`` weeks to ``friday``."""
    from sim.marketdata import weekly_closes

    days = friday - 7 * np.arange(weeks, -1, -1)
    return 100.0 * np.diff(np.log(weekly_closes(md["DEXJPUS"], days)))


def intervention_data(md, history_weeks: int = 52) -> dict:
    """The fall of USD/JPY (%) from the Friday close before each episode of
    :data:`INTERVENTIONS` to the close of its week (FRED DEXJPUS, noon New York), their mean,
    and its standard error.

    Read as the intervention's effect at the week's close, with the week's move without it
    unpredictable (a martingale), so its noise is the week's own: each episode's weekly
    standard deviation over the ``history_weeks`` weeks before it, known at the time, and
    SE(mean) = sqrt(sum sd_i^2) / n.  Returns ``{"falls", "sd", "usd_bn", "value", "se"}``;
    ``usd_bn`` converts each operation at the Friday close before it.  A data file that ends
    before an episode's week does is refused (DataError), not read as a flat week.
    """
    from sim.marketdata import DataError

    series = md["DEXJPUS"]
    falls, sds, sizes = [], [], []
    for friday, ops in INTERVENTIONS:
        day = np.datetime64(friday)
        if series.last < day + 7:
            raise DataError(f"DEXJPUS: the MoF intervention target needs closes to {day + 7} "
                            f"({series.span()})", value=str(md.dir))
        before, after = (series.as_of(d) for d in (day, day + 7))
        falls.append(100.0 * (1.0 - after / before))
        sds.append(float(np.std(_weekly_changes(md, day, history_weeks), ddof=1)))
        sizes.append(tuple(1000.0 * tn / before for _, tn in ops))
    falls, sds = np.array(falls), np.array(sds)
    return {"falls": falls, "sd": sds, "usd_bn": sizes, "value": float(falls.mean()),
            "se": float(math.sqrt(np.sum(sds ** 2)) / len(falls))}


def _july_2024_window(md, start: str, months: int):
    """(DEXJPUS, first day, last day) of the replay's window; data ending before it: DataError."""
    from sim.calendar import add_months
    from sim.marketdata import DataError

    series = md["DEXJPUS"]
    first = np.datetime64(start, "D")
    end = add_months(first, months)
    if series.last < end:
        raise DataError(f"DEXJPUS: the July-2024 target needs closes to {end} ({series.span()})",
                        value=str(md.dir))
    return series, first, end


def july_2024_data(md, start: str = JULY_2024_START, months: int = JULY_2024_MONTHS,
                   history_weeks: int = 52) -> dict:
    """The largest fall of USD/JPY (%, from its running peak) in FRED's daily closes over the
    replay's window (``start`` to ``months`` later, as the model's grid ends), measured as the
    model's replay measures it on its daily grid, and its standard error.

    One episode is one draw: the fall is the scripted events' effect plus the market's own
    noise between the peak and the trough, taken as a random walk with the standard deviation
    of the daily changes over the ``history_weeks`` weeks before ``start``, so SE = sd x
    sqrt(daily changes from the peak's close to the trough's).  Returns ``{"value", "se",
    "peak", "trough"}`` (the last two are dates).  A data file that ends before the window
    does, or a window with no fall, is refused (DataError).
    """
    from sim.marketdata import DataError

    series, first, end = _july_2024_window(md, start, months)
    ok = ~np.isnan(series.values)
    dates, values = series.dates[ok], series.values[ok]
    inside = (dates >= first) & (dates <= end)
    d, v = dates[inside], values[inside]
    peak = np.maximum.accumulate(v)
    falls = 100.0 * (1.0 - v / peak)
    k = int(np.argmax(falls))
    i = int(np.flatnonzero(v[: k + 1] == peak[k])[0])
    if k == i:
        raise DataError(f"DEXJPUS: USD/JPY did not fall between {first} and {end}: no target "
                        "for the July-2024 replay", value=str(md.dir))
    before = values[(dates > first - 7 * history_weeks) & (dates <= first)]
    sd = float(np.std(100.0 * np.diff(np.log(before)), ddof=1))
    return {"value": float(falls[k]), "se": sd * math.sqrt(k - i),
            "peak": d[i], "trough": d[k]}


def july_2024_week_data(md, start: str = JULY_2024_START, months: int = JULY_2024_MONTHS,
                        history_weeks: int = 52) -> dict:
    """The largest one-week fall of USD/JPY (%) in FRED's Friday closes (the last close on or
    before each Friday) over the replay's window, as the replay's weekly check points measure
    it (``largest_weekly_rally``: every fifth business day from the Friday snapshot), and its
    standard error: one week's move is one draw, so SE = the standard deviation of the weekly
    log changes over the ``history_weeks`` weeks before ``start``.  Returns ``{"value", "se",
    "week"}`` (the Friday the week ends on).  Data that end before the window does, or a window
    with no falling week, are refused (DataError)."""
    from sim.marketdata import DataError, fridays

    series, first, end = _july_2024_window(md, start, months)
    days = fridays(first, end)
    closes = series.as_of_many(days)
    falls = 100.0 * (1.0 - closes[1:] / closes[:-1])
    k = int(np.argmax(falls)) if falls.size else 0
    if not falls.size or not falls[k] > 0.0:
        raise DataError(f"DEXJPUS: USD/JPY fell in no week between {first} and {end}: no "
                        "target for the July-2024 replay", value=str(md.dir))
    sd = float(np.std(_weekly_changes(md, first, history_weeks), ddof=1))
    return {"value": float(falls[k]), "se": sd, "week": days[k + 1]}


def _pinned(overrides, fixed) -> list[str]:
    """``overrides`` without those that would change what ``fixed`` pins (the same keys, or
    any snapshot key when the snapshot is pinned), then ``fixed``: a replay measures its
    episode whatever else the caller sets."""
    def key(o):
        return o.lstrip("+~").split("=", 1)[0]

    pinned = {key(o) for o in fixed}
    snapshot = "snapshot" in pinned
    return [*(o for o in overrides if key(o) not in pinned
              and not (snapshot and key(o).startswith("snapshot"))), *fixed]


def _data_dir(data_dir) -> list[str]:
    return [f"data.dir={data_dir}"] if data_dir else []


def interventions(data_dir: str, paths: int = 2000, overrides=(), fade_weeks: int = 8,
                  md=None) -> dict[str, tuple[float, float]]:
    """The model's side of :func:`intervention_data`: each episode replayed from a snapshot of
    the data on the Friday before its week (daily grid, so each operation acts on its own day;
    MoF rule off; three months), against the same paths without the operations.  Returns the
    mean paired fall of USD/JPY (%) at the close of the week, averaged over the episodes, and
    the share of it left ``fade_weeks`` later (ratio of the means, delta-method SE).  The
    episodes share the seed, so their falls are correlated path by path: the SEs come from each
    path's average over the episodes."""
    from sim.marketdata import MarketData

    md = md or MarketData(data_dir)
    sizes = intervention_data(md)["usd_bn"]
    now, later = [], []
    for (friday, ops), usd in zip(INTERVENTIONS, sizes):
        common = _pinned([*_data_dir(data_dir), *overrides, "output.progress=false"],
                         [f"sampler.paths={paths}", "snapshot=data", f"snapshot.date={friday}",
                          "sampler.horizon_months=3", "sampler.step=daily",
                          "model.intervention.enabled=false"])
        events = ", ".join(f"{{date: '{d}', kind: intervention, value: {v:.3f}}}"
                           for (d, _), v in zip(ops, usd))
        quiet = simulate(load_config(common), progress=False, series=True)[0]
        hit = simulate(load_config([*common, f"+scenario.events=[{events}]"]),
                       progress=False, series=True)[0]
        dates = quiet["time"].values.astype("datetime64[D]")
        # the last business day on or before the week's Friday, and fade_weeks later
        i = int(np.searchsorted(dates, np.datetime64(friday) + 7, side="right")) - 1
        j = int(np.searchsorted(dates, dates[i] + 7 * fade_weeks, side="right")) - 1
        fall = 100.0 * (1.0 - hit["usdjpy"].values / quiet["usdjpy"].values)
        now.append(fall[:, i])
        later.append(fall[:, j])
    now, later = np.mean(now, axis=0), np.mean(later, axis=0)
    ratio = float(later.mean() / now.mean())
    return {"intervention_impact": mean_se(now),
            "intervention_left": (ratio, mean_se((later - ratio * now) / now.mean())[1])}


def _run(overrides):
    cfg = load_config([*overrides, "output.progress=false"])
    return simulate(cfg, progress=False)[0]


def july_2024(data_dir: str, paths: int = 2000, overrides=()) -> dict[str, tuple[float, float]]:
    """The July-August 2024 replay: share of the leveraged stock unwound at its lowest within
    the two months (most of it in the five weeks to 9 August), the largest fall of USD/JPY
    (peak to trough of the daily closes, %, as :func:`july_2024_data` measures the data), its
    largest one-week fall (Friday to Friday, %, as :func:`july_2024_week_data` measures the
    data), and the net unwind of the Japanese institutional classes (USD bn)."""
    ds = _run(_pinned([*_data_dir(data_dir), *overrides], [f"sampler.paths={paths}", *JULY_2024]))
    out = {}
    investors = list(ds["investor"].values)
    if "leveraged" in investors:
        lev = ds.sel(investor="leveraged")
        start = lev["holdings_initial"].values
        share = np.where(start > 0, (start - lev["holdings_low"].values) / np.maximum(start, 1e-12), 0.0)
        out["leveraged_unwound_share"] = mean_se(share)
    out["usdjpy_fall"] = mean_se(ds["largest_yen_appreciation"].values)
    out["largest_week"] = mean_se(ds["largest_weekly_rally"].values)
    inst = [c for c in INSTITUTIONAL if c in investors]
    if inst:
        out["institutional_unwind"] = mean_se(
            ds["unwind_by_investor"].sel(investor=inst).sum("investor").values)
    return out


def hedge_response(overrides=(), start: float = 0.45, end: float = 0.60) -> dict[str, tuple[float, float]]:
    """The life insurers' hedge-ratio behaviour from ``start`` to ``end`` hedged.

    The class's hedge ratio rises from its snapshot value towards ``max_hedge_ratio`` with its
    exit share q (docs/model.md, section 6), while it sells (1 - hedge_share) of its holdings
    per unit of q.  Moving from ``start`` to ``end`` takes q* = (end - start) / (max - start);
    the yen bought by hedging is the integral of holdings x d(hedge ratio), the spot yen of the
    sales their unhedged, repatriated part, and the hedged pick-up must fall by the signal move
    that crosses a share q* of current holders' thresholds.  Deterministic given the config
    (central values): the standard errors are zero.
    """
    cfg = load_config([*overrides, f"investors.life_insurers.hedge_ratio={start}",
                       "output.progress=false"])
    c = cfg.investors["life_insurers"]
    gap = c.max_hedge_ratio - start
    if c.hedge_share <= 0.0 or gap <= 0.0 or end > c.max_hedge_ratio:
        raise ValueError("investors.life_insurers must hedge (hedge_share > 0) up to a "
                         f"max_hedge_ratio of at least {end}")
    q = (end - start) / gap
    sold_rate = 1.0 - c.hedge_share
    h0 = c.holdings
    hedge_yen = h0 * gap * (q - sold_rate * q * q / 2.0)
    sold = h0 * sold_rate * q
    spot_from_sales = sold * (1.0 - start) * c.repatriation_share  # at the start ratio: an upper bound
    # holders are those whose threshold lies beyond the exit edge, m0 + reentry_gap / 2 (7.3)
    phi0 = ndtr((0.5 * c.reentry_gap - c.threshold_distance) / c.threshold_width)
    pickup_fall = c.threshold_distance + c.threshold_width * ndtri(phi0 + q * (1.0 - phi0))
    return {"hedge_yen_buying": (float(hedge_yen), 0.0),
            "sales": (float(sold), 0.0),
            "spot_yen_from_sales": (float(spot_from_sales), 0.0),
            "pickup_fall": (float(pickup_fall), 0.0)}


def capital_economics(paths: int = 4000, overrides=()) -> dict[str, tuple[float, float]]:
    """Unwind and repatriation (USD bn, at the horizon) attributable to compressing the 10y
    spread to about 1.5pp: scenario spread_compression minus the baseline on the same shocks,
    both with term premia anchored to the config's means (the scenario's anchors)."""
    common = [f"sampler.paths={paths}", "model.yields.anchor=config", *overrides]
    base = _run(common)
    comp = _run(["scenario=spread_compression", *common])
    out = {}
    for name, var in (("unwind", "cum_unwind"), ("repatriation", "cum_repatriation")):
        out[f"{name}_attributable"] = mean_se(comp[var].values - base[var].values)
        out[f"{name}_scenario"] = mean_se(comp[var].values)
    return out


def paired(overrides_a, overrides_b, variable: str, paths: int = 4000,
           reduce=None) -> tuple[float, float]:
    """Mean and SE of the paired difference of a per-path ``variable`` (b minus a) on the same
    shocks; ``reduce`` maps the Dataset to a per-path array instead of a variable name."""
    a = _run([f"sampler.paths={paths}", *overrides_a])
    b = _run([f"sampler.paths={paths}", *overrides_b])
    get = reduce or (lambda ds: ds[variable].values)
    return mean_se(get(b) - get(a))
