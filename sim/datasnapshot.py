"""Snapshots built from market data at any date, as they were known on that date.

``python -m sim snapshot=data snapshot.date=2024-07-03 data.dir=DIR`` fills every market level
of the snapshot from the FRED files of ``DIR`` (docs/model.md, section 17.1):

- policy rates as decisions on a grid, derived from the series (:func:`fed_rate`,
  :func:`boj_rate`) with the dated decisions of FACTS.md taking over where they exist;
- the 10y UST (DGS10, daily) and 10y JGB (IRLTLT01JPM156N, monthly) yields and USD/JPY
  (DEXJPUS, daily): the last value known on the date;
- realised USD/JPY volatility: an exponentially weighted average of squared weekly (Friday)
  log changes with the model's half-life, annualised;
- the last policy move of each bank from the derived policy-rate history;
- meeting calendars: the typical calendar of each bank (:func:`typical_meetings`).

Levels the data cannot give (inflation, activity gaps, holdings, positioning) stay at their
config values.  The one entry point for every command is :func:`resolve_data_snapshot`,
called on the composed config before it is converted and validated.
"""
from __future__ import annotations

import copy
import datetime as _dt
import math
from dataclasses import dataclass, fields, is_dataclass, replace

import numpy as np
from omegaconf import DictConfig

from sim.config import rebuild_time
from sim.marketdata import DataError, MarketData, Series, fridays, month_end

#: Day the FOMC moved from a single target to a 25bp target range (FOMC statement, 16 Dec 2008).
FED_RANGE_FROM = np.datetime64("2008-12-16")
#: Levels the BoJ's policy rate can take: its 25bp grid plus the off-grid levels it has used:
#: 0.1% (Dec 2008; the 0-0.1% guidance from Oct 2010; the 0.1% deposit rate under the
#: quantity targets of 2013-16), 0.3% (Oct-Dec 2008) and -0.1% (Feb 2016 - Mar 2024).
BOJ_OFF_GRID = (-0.1, 0.1, 0.3)
#: Weeks of Friday closes behind the realised volatility of a snapshot.
VOL_WEEKS = 104


@dataclass(frozen=True)
class Decision:
    date: np.datetime64
    level: float
    source: str


def _decisions(rows):
    return tuple(Decision(np.datetime64(d), v, s) for d, v, s in rows)


#: Dated decisions that override the levels derived from the series from their first date on.
FED_DECISIONS = _decisions([
    ("2024-09-18", 4.875, "FACTS.md: -50bp from 5.25-5.50% (ABA Banking Journal)"),
    ("2024-11-07", 4.625, "FACTS.md: -25bp (ABA Banking Journal)"),
    ("2024-12-18", 4.375, "FACTS.md: -25bp (ABA Banking Journal)"),
    ("2025-09-17", 4.125, "FACTS.md: -25bp (ABA Banking Journal)"),
    ("2025-10-29", 3.875, "FACTS.md: -25bp (ABA Banking Journal)"),
    ("2025-12-10", 3.625, "FACTS.md: -25bp to 3.50-3.75% (ABA Banking Journal, nasdaq.com)"),
])
BOJ_DECISIONS = _decisions([
    ("2016-02-16", -0.1, "BoJ statement of 29 Jan 2016: -0.1% on policy-rate balances from 16 Feb 2016"),
    ("2024-03-19", 0.1, "FACTS.md: from -0.1% to 0-0.1%, shown as 0.1% (nippon.com/Jiji)"),
    ("2024-07-31", 0.25, "FACTS.md (nippon.com/Jiji)"),
    ("2025-01-24", 0.5, "FACTS.md (nippon.com/Jiji)"),
    ("2025-12-19", 0.75, "FACTS.md (nippon.com/Jiji)"),
])


def _day(value) -> np.datetime64:
    return np.datetime64(value, "D")


def fed_grid(value: float, month: np.datetime64) -> float:
    """The Fed's policy rate nearest to an effective rate observed in ``month``: a target on
    the 25bp grid before 16 Dec 2008, the midpoint of a 25bp range (x.125, x.375, ...) after."""
    if month >= FED_RANGE_FROM.astype("datetime64[M]"):
        return max(0.125, 0.125 + 0.25 * round((value - 0.125) / 0.25))
    return 0.25 * round(value / 0.25)


def boj_grid(value: float) -> float:
    """The BoJ level nearest to a call rate: -0.1% for any negative rate, else the nearest
    multiple of 0.25% or off-grid level the BoJ has used (0.1%, 0.3%)."""
    if value < 0:
        return -0.1
    candidates = [0.25 * math.floor(value / 0.25), 0.25 * math.ceil(value / 0.25), 0.1, 0.3]
    return min(candidates, key=lambda c: (abs(c - value), c))


def _monthly_levels(md: MarketData, bank: str, day: np.datetime64, hindsight: bool):
    """Derived monthly levels known on ``day`` (with hindsight, also the month containing
    ``day``): (month start dates, levels)."""
    cut = _day(day)
    if hindsight:
        cut = month_end(cut)

    def known(s: Series):
        ok = (s.known <= cut) & ~np.isnan(s.values)
        return s.dates[ok], s.values[ok]

    if bank == "fed":
        d, v = known(md["FEDFUNDS"])
        return d, np.array([fed_grid(x, m.astype("datetime64[M]")) for m, x in zip(d, v)])
    d, v = known(md["IRSTCI01JPM156N"])
    levels = [boj_grid(x) for x in v]
    # Where the call rate ends (2024-01), the 3m interbank rate less its average spread over
    # the call rate in the last twelve common months carries the series on.
    td, tv = known(md["IR3TIB01JPM156N"])
    if len(d) and len(td) and td[-1] > d[-1]:
        common = np.intersect1d(d[-12:], td)
        spread = float(np.mean(tv[np.isin(td, common)] - v[np.isin(d, common)])) if len(common) else 0.0
        later = td > d[-1]
        d = np.concatenate([d, td[later]])
        levels += [boj_grid(x - spread) for x in tv[later]]
    return d, np.array(levels, dtype=float)


def policy_history(md: MarketData, bank: str, day, hindsight: bool = False):
    """The policy rate's history as known on ``day``: (dates, known, levels).

    Monthly derived levels are dated at mid-month and known from the end of their month; from
    the first dated decision on, the dated decisions (known on their day) replace them.
    """
    day = _day(day)
    decisions = FED_DECISIONS if bank == "fed" else BOJ_DECISIONS
    d, levels = _monthly_levels(md, bank, day, hindsight)
    mid = d + np.timedelta64(14, "D")
    known = month_end_many(d)
    if len(decisions) and decisions[0].date <= day:
        keep = mid < decisions[0].date
        facts = [x for x in decisions if x.date <= day]
        fact_days = np.array([x.date for x in facts], dtype="datetime64[D]")
        mid = np.concatenate([mid[keep], fact_days])
        known = np.concatenate([np.minimum(known[keep], decisions[0].date), fact_days])
        levels = np.concatenate([levels[keep], [x.level for x in facts]])
    return mid.astype("datetime64[D]"), known.astype("datetime64[D]"), levels


def month_end_many(days: np.ndarray) -> np.ndarray:
    return ((days.astype("datetime64[M]") + 1).astype("datetime64[D]") - 1).astype("datetime64[D]")


def policy_rate(md: MarketData, bank: str, day, hindsight: bool = False) -> float:
    """The policy rate on ``day``: as known then, or with hindsight (realised values)."""
    dates, _, levels = policy_history(md, bank, day, hindsight)
    if not len(levels):
        name = "FEDFUNDS" if bank == "fed" else "IRSTCI01JPM156N"
        raise DataError(f"{name}: no observation known on {_day(day)} ({md[name].span()}; "
                        "monthly values count from the end of their month)")
    return float(levels[-1])


def policy_rates_known(md: MarketData, bank: str, days: np.ndarray) -> np.ndarray:
    """The policy rate as known on each of ``days`` (NaN before anything is known)."""
    days = np.asarray(days, dtype="datetime64[D]")
    _, known, levels = policy_history(md, bank, days.max())
    k = np.searchsorted(known, days, side="right") - 1
    return np.where(k >= 0, levels[np.maximum(k, 0)], np.nan)


def last_move(md: MarketData, bank: str, day) -> np.datetime64:
    """Date of the last change of the policy rate known on ``day`` (mid-month for a change
    seen only in monthly data; at most ``day``)."""
    dates, _, levels = policy_history(md, bank, day)
    changed = np.flatnonzero(np.diff(levels) != 0)
    if not len(changed):
        return dates[0] if len(dates) else _day(day)
    return min(dates[changed[-1] + 1], _day(day))


def realised_vol(md: MarketData, day, halflife_weeks: float) -> float:
    """EWMA volatility of weekly (Friday) log changes of USD/JPY known on ``day``, % p.a."""
    day = _day(day)
    fx = md["DEXJPUS"]
    weeks = fridays(day - np.timedelta64(7 * VOL_WEEKS + 6, "D"), day)
    closes = fx.as_of_many(weeks)
    r = np.diff(np.log(closes))
    r = r[np.isfinite(r)]
    if len(r) < 8:
        raise DataError(f"DEXJPUS: fewer than 8 weekly changes known on {day} for the realised "
                        f"volatility ({fx.span()})")
    w = 0.5 ** (np.arange(len(r))[::-1] / halflife_weeks)
    var = float(np.sum(w * r * r) / np.sum(w))
    return 100.0 * math.sqrt(var * 365.25 / 7.0)


# Typical meeting calendars.  The FOMC meets eight times a year; the days below are the second
# days of its 2026 meetings (FACTS.md, ABA Banking Journal), moved to the nearest Wednesday of
# each year.  The BoJ has held eight meetings a year since 2016: January to June are its 2026
# dates (FACTS.md, MNI), July to December its usual late-month slots (judgement, unverified);
# before 2016 it met about monthly (14 meetings a year, two in some months): one meeting
# near the middle of each month stands in for them.
FOMC_DAYS = ((1, 28), (3, 18), (4, 29), (6, 17), (7, 29), (9, 16), (10, 28), (12, 9))
BOJ_DAYS = ((1, 23), (3, 19), (4, 28), (6, 16), (7, 31), (9, 19), (10, 30), (12, 19))
BOJ_MONTHLY_UNTIL = 2015


def _nearest(year: int, month: int, dom: int, weekday: int | None) -> _dt.date:
    base = _dt.date(year, month, dom)
    if weekday is None:  # nearest business day
        if base.weekday() < 5:
            return base
        back, ahead = base.weekday() - 4, 7 - base.weekday()
        return base - _dt.timedelta(days=back) if back < ahead else base + _dt.timedelta(days=ahead)
    shift = (weekday - base.weekday() + 3) % 7 - 3
    return base + _dt.timedelta(days=shift)


def typical_meetings(bank: str, start, end) -> list[str]:
    """Meeting dates of the typical calendar strictly after ``start`` and up to ``end``."""
    start, end = _day(start), _day(end)
    y0, y1 = start.astype(_dt.date).year, end.astype(_dt.date).year
    days = []
    for year in range(y0, y1 + 1):
        if bank == "fed":
            days += [_nearest(year, m, d, 2) for m, d in FOMC_DAYS]
        elif year <= BOJ_MONTHLY_UNTIL:
            days += [_nearest(year, m, 15, None) for m in range(1, 13)]
        else:
            days += [_nearest(year, m, d, None) for m, d in BOJ_DAYS]
    return [d.isoformat() for d in days if start < np.datetime64(d) <= end]


def data_levels(md: MarketData, date: str, horizon_months: int,
                halflife_weeks: float) -> dict:
    """Every snapshot field the data give, as known on ``date``; ``fx_vol`` with the model's
    realised-volatility half-life (``model.fx.vol_halflife_weeks``)."""
    from sim.calendar import add_months, parse_date

    day = parse_date(date, "snapshot.date")
    end = add_months(day, horizon_months + 12)
    return {
        "date": str(day),
        "fed_rate": policy_rate(md, "fed", day),
        "boj_rate": policy_rate(md, "boj", day),
        "ust10": md["DGS10"].as_of(day),
        "jgb10": md["IRLTLT01JPM156N"].as_of(day),
        "usdjpy": md["DEXJPUS"].as_of(day),
        "fx_vol": round(realised_vol(md, day, halflife_weeks), 4),
        "fed_last_move": str(last_move(md, "fed", day)),
        "boj_last_move": str(last_move(md, "boj", day)),
        "fed_meetings": typical_meetings("fed", day, end),
        "boj_meetings": typical_meetings("boj", day, end),
    }


def describe(levels: dict, directory) -> str:
    return (f"Market levels known on {levels['date']} from the FRED files in {directory}: "
            f"BoJ {levels['boj_rate']:g}%, Fed {levels['fed_rate']:g}%, 10y JGB {levels['jgb10']:g}%, "
            f"10y UST {levels['ust10']:g}%, USD/JPY {levels['usdjpy']:g}")


# ---------------------------------------------------------------------------------------------
# Point-in-time rules: what describes December 2025 becomes, at other dates, what the date says
# ---------------------------------------------------------------------------------------------

#: The date the December-2025 views of the configs describe (the seed articles, the neutral-rate
#: priors, the BoJ's reaction to a yen near 150): a data snapshot on or after it keeps them; one
#: before it gets the point-in-time rules below.  The BoJ's preferred spacing (six months) is
#: kept at every date: measured, dropping it before 2025 triples the BoJ's moves a year at past
#: origins, far above the data (docs/model.md, 17.2).
PRIORS_DATE = np.datetime64("2025-12-01")
#: Dated life-insurer FX hedge ratios (FACTS.md, Reuters): about 80% in 2010; 44.4% for the nine
#: majors in H2 FY2024 (October 2024 - March 2025, dated at its end).
INSURER_HEDGE = ((np.datetime64("2010-06-30"), 0.80), (np.datetime64("2025-03-31"), 0.444))


#: The carry positions of the configs are the BIS "rough middle ballpark" of about 40tn yen
#: (USD 250bn) before August 2024 (FACTS.md, BIS Bulletin 90), when the policy differential was
#: Fed 5.25-5.50% (midpoint 5.375%) less BoJ 0-0.1% (0.1% on the project's grid): 5.275pp.
#: Before that date, carry positions scale with the differential at the date: speculators'
#: positions grow with the rate differential (Brunnermeier, Nagel and Pedersen 2008, FACTS.md).
CARRY_REFERENCE = (np.datetime64("2024-08-01"), 5.275)
#: The 2024 unwind: roughly 50-90% of that stock unwound within about five weeks to early August
#: 2024 (BIS Bulletin 90, FACTS.md); the midpoint, as the calibration's target (docs/model.md
#: 16.1), dated at the end of the week of the fall (9 August 2024).
CARRY_UNWIND = (np.datetime64("2024-08-09"), 0.70)


def carry_scale(levels: dict, rebuild_weeks: float) -> float:
    """Carry positions at a data snapshot relative to the configs'.  Before August 2024: the
    policy differential at the date over the differential of the BIS estimate, floored at 0.
    From then on: what the 2024 unwind left, rebuilding towards the configs' stock with the
    leveraged class's re-entry time ``rebuild_weeks`` (after August 2024 positions were rebuilt
    within months), so a snapshot of September 2024 does not start with the stock of July."""
    day = _day(levels["date"])
    if day < CARRY_REFERENCE[0]:
        return round(max(levels["fed_rate"] - levels["boj_rate"], 0.0) / CARRY_REFERENCE[1], 4)
    weeks = max(float((day - CARRY_UNWIND[0]).astype(int)) / 7.0, 0.0)
    return round(1.0 - CARRY_UNWIND[1] * math.exp(-weeks / rebuild_weeks), 4)


def insurer_hedge_ratio(day) -> float:
    """Life insurers' hedge ratio on ``day``: flat at 80% up to mid-2010, linear between the two
    dated figures, flat at 44.4% after March 2025 (the path between them is a judgement)."""
    t = _day(day).astype(int)
    (d0, h0), (d1, h1) = INSURER_HEDGE
    return round(float(np.interp(t, [d0.astype(int), d1.astype(int)], [h0, h1])), 4)


@dataclass(frozen=True)
class Rule:
    """A point-in-time rule: ``key`` (dotted, from the config root) takes ``value(cfg, levels)``
    at a data snapshot dated before ``before``.  A key that the config does not have (a class
    that is not defined, a key another part of the model has not introduced yet) is skipped."""

    key: str
    value: object           # callable (get, levels) -> value; get(dotted key) reads the config
    why: str
    before: np.datetime64 = PRIORS_DATE
    requires: str = ""      # a key that must exist too (a rule that only makes sense with another)


POINT_IN_TIME = (
    Rule("model.policy.boj.neutral_from", lambda get, lv: "snapshot",
         "the BoJ neutral prior 1.0-2.5% is a December 2025 view (seed articles): before it, the "
         "neutral rate is the BoJ's stance at the date"),
    Rule("model.policy.fed.neutral_from", lambda get, lv: "snapshot",
         "the Fed neutral prior 2.5-3.5% is a 2025 assumption: before it, the Fed's stance at the date"),
    Rule("model.policy.boj.fx_reference", lambda get, lv: lv["usdjpy"],
         "the BoJ's reaction to a yen weaker than 150 is the 2024-25 concern: at other dates its "
         "FX term starts at zero (reference = USD/JPY at the date); only with the neutral rule "
         "(at past levels far below 150 the FX term offsets part of the 2025 neutral prior)",
         requires="model.policy.boj.neutral_from"),
    Rule("model.yields.anchor", lambda get, lv: "snapshot",
         "long-run yield anchors from the date's curve, not from 2025 values"),
    Rule("investors.life_insurers.hedge_ratio", lambda get, lv: insurer_hedge_ratio(lv["date"]),
         "dated hedge ratios (FACTS.md, Reuters): about 80% in 2010, 44.4% in H2 FY2024; only "
         "with thresholds relative to the snapshot's signal (threshold_distance): against "
         "thresholds placed for 2025, another hedge ratio alone would start an exit",
         before=INSURER_HEDGE[-1][0] + 1, requires="investors.life_insurers.threshold_distance"),
    Rule("snapshot.carry_positions",
         lambda get, lv: carry_scale(lv, rebuild_time(get("investors.leveraged"))),
         "carry positions of the BIS estimate (USD 250bn, before August 2024) at a 5.275pp "
         "policy differential; earlier, every carry class's positions scale with the date's "
         "differential (Brunnermeier, Nagel and Pedersen 2008): near zero at zero rates, 0.9x "
         "in 2007; after the August-2024 unwind (70% of the stock, BIS), what it left, "
         "rebuilding with the leveraged class's re-entry time",
         requires="investors.leveraged.adjustment_weeks"),
    Rule("investors.gpif.foreign_weight", lambda get, lv: get("investors.gpif.target_weight"),
         "the 52.01% foreign weight is GPIF's of March 2025: at other dates the weight starts "
         "at the policy mix's target (no drift to rebalance at the start)"),
)


def _has(node, parts) -> bool:
    for part in parts:
        if isinstance(node, (DictConfig, dict)):
            if part not in node:
                return False
            node = node[part]
        elif is_dataclass(node) and part in {f.name for f in fields(node)}:
            node = getattr(node, part)
        else:
            return False
    return True


def _get(node, key: str):
    for part in key.split("."):
        node = node[part] if isinstance(node, (DictConfig, dict)) else getattr(node, part)
    return node


def _replaced(node, parts, value):
    """``node`` with the value at ``parts`` replaced (copies along the path; DictConfig in place)."""
    head, rest = parts[0], parts[1:]
    if isinstance(node, DictConfig):
        if rest:
            _replaced(node[head], rest, value)
        else:
            node[head] = value
        return node
    child = value if not rest else _replaced(
        node[head] if isinstance(node, dict) else getattr(node, head), rest, value)
    if isinstance(node, dict):
        return {**node, head: child}
    return replace(node, **{head: child})


def point_in_time(cfg, levels: dict):
    """The rules that apply on ``levels['date']``: [(key, value, why)] for keys the config has."""
    day = _day(levels["date"])
    get = lambda key: _get(cfg, key)  # noqa: E731
    return [(r.key, r.value(get, levels), r.why) for r in POINT_IN_TIME
            if day < r.before and _has(cfg, r.key.split("."))
            and (not r.requires or _has(cfg, r.requires.split(".")))]


def apply_point_in_time(cfg, levels: dict):
    """``cfg`` with the point-in-time rules of ``levels['date']`` applied (in place for a
    DictConfig, a copy for a typed config), unless ``snapshot.point_in_time`` is false."""
    snap = cfg.snapshot
    if not (snap.get("point_in_time", True) if isinstance(snap, DictConfig) else snap.point_in_time):
        return cfg
    for key, value, _ in point_in_time(cfg, levels):
        head, *rest = key.split(".")
        if isinstance(cfg, DictConfig):
            _replaced(cfg, key.split("."), value)
        else:
            cfg = copy.copy(cfg)
            setattr(cfg, head, _replaced(getattr(cfg, head), rest, value))
    return cfg


def resolve_data_snapshot(cfg) -> None:
    """Fill a composed config's snapshot from the data when ``snapshot.from_data`` is set.

    Works on the Hydra ``DictConfig`` in place, before the conversion to dataclasses and the
    validation, so every entry point (the command line, :func:`sim.compose.load_config`,
    sweeps) sees the same levels.  Meeting lists given in the config are kept.
    """
    snap = cfg.get("snapshot")
    if snap is None or not snap.get("from_data", False):
        return
    md = MarketData(cfg.data.dir)
    levels = data_levels(md, snap.date, int(cfg.sampler.horizon_months),
                         float(cfg.model.fx.vol_halflife_weeks))
    for key in ("boj_meetings", "fed_meetings"):
        if len(snap.get(key) or []):
            levels.pop(key)
    for key, value in levels.items():
        snap[key] = value
    snap.description = describe(levels, md.dir)
    apply_point_in_time(cfg, levels)


def with_data_snapshot(cfg, md: MarketData, date: str):
    """A copy of a typed config whose snapshot holds the market levels known on ``date``."""
    levels = data_levels(md, date, cfg.sampler.horizon_months, cfg.model.fx.vol_halflife_weeks)
    out = copy.copy(cfg)
    out.snapshot = replace(cfg.snapshot, **levels, name=f"data_{levels['date']}",
                           description=describe(levels, md.dir))
    return apply_point_in_time(out, levels)
