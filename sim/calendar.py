"""Calendar: the simulation's time grid, the meeting calendars and dated events.

Time is measured in years of business days: Monday to Friday without holidays, 365.25 * 5 / 7
(about 260.9) of them a year, so a weekly step is 7/365.25 years like a calendar week and a
daily step 1/260.9 whatever the weekday.  Step ``t`` runs from ``dates[t]`` to
``dates[t + 1]``; anything dated inside (dates[t], dates[t + 1]] happens in step ``t``.
"""
from __future__ import annotations

import datetime as _dt

import numpy as np

BUSINESS_DAYS_PER_YEAR = 365.25 * 5.0 / 7.0
MEETINGS_PER_YEAR_FALLBACK = 8


def parse_date(text: str, key: str) -> np.datetime64:
    """Parse an ISO date, naming the config key in the error if it is not one."""
    from sim.validate import ConfigError

    try:
        return np.datetime64(_dt.date.fromisoformat(str(text)), "D")
    except ValueError:
        raise ConfigError(key, text, "an ISO date such as 2025-12-19") from None


def add_months(day: np.datetime64, months: int) -> np.datetime64:
    """``day`` plus a number of calendar months, clipped to the end of shorter months."""
    d = day.astype(_dt.date)
    month0 = d.month - 1 + months
    year, month = d.year + month0 // 12, month0 % 12 + 1
    next_month = _dt.date(year + (month == 12), month % 12 + 1, 1)
    last = (next_month - _dt.timedelta(days=1)).day
    return np.datetime64(_dt.date(year, month, min(d.day, last)), "D")


def time_grid(start: np.datetime64, horizon_months: int, step: str) -> np.ndarray:
    """Dates of the grid points from ``start`` to ``start + horizon_months`` inclusive."""
    end = add_months(start, horizon_months)
    if step == "weekly":
        dates = np.arange(start, end + np.timedelta64(1, "D"), np.timedelta64(7, "D"))
    elif step == "daily":
        days = np.arange(start, end + np.timedelta64(1, "D"), np.timedelta64(1, "D"))
        dates = days[np.is_busday(days) | (days == start)]
    elif step == "monthly":
        dates = np.array([add_months(start, k) for k in range(horizon_months + 1)])
    else:
        raise ValueError(f"unknown step {step!r}")
    return dates.astype("datetime64[D]")


def step_lengths(dates: np.ndarray) -> np.ndarray:
    """Length of each step in business years (at least one business day)."""
    bdays = np.busday_count(dates[:-1], dates[1:]).astype(float)
    return np.maximum(bdays, 1.0) / BUSINESS_DAYS_PER_YEAR


def step_of(dates: np.ndarray, day: np.datetime64) -> int:
    """Index of the step containing ``day``, or -1 if it lies outside the horizon."""
    if day <= dates[0] or day > dates[-1]:
        return -1
    return int(np.searchsorted(dates, day, side="left")) - 1


def meeting_dates(known: list[str], start: np.datetime64, end: np.datetime64,
                  key: str) -> list[np.datetime64]:
    """Known meeting dates, then eight evenly spaced meetings a year until ``end``."""
    days = sorted(parse_date(d, f"{key}[{i}]") for i, d in enumerate(known))
    gap = np.timedelta64(int(round(365.25 / MEETINGS_PER_YEAR_FALLBACK)), "D")
    last = days[-1] if days else start
    while last + gap <= end:
        last = last + gap
        days.append(last)
    return [d for d in days if start < d <= end]


def meeting_steps(dates: np.ndarray, meetings: list[np.datetime64]) -> np.ndarray:
    """Per step: business years from the (last) meeting inside the step to the step's end, or
    -1 where no meeting falls inside it."""
    after = np.full(len(dates) - 1, -1.0)
    for day in meetings:
        t = step_of(dates, day)
        if t >= 0:
            after[t] = time_to_step_end(dates, t, day)
    return after


def business_day_index(dates: np.ndarray, t: int, day: np.datetime64) -> int:
    """Which business day of step ``t`` ``day`` is (0 for the first business day after the
    step's start), counted whatever day of the week the grid's dates fall on."""
    return max(int(np.busday_count(dates[t] + 1, day + 1)) - 1, 0)


def time_to_step_end(dates: np.ndarray, t: int, day: np.datetime64) -> float:
    """Business years from ``day`` (inside step ``t``) to the step's end."""
    return float(np.busday_count(day, dates[t + 1])) / BUSINESS_DAYS_PER_YEAR
