"""Market data: FRED-layout CSV files read point in time.

A data directory (config key ``data.dir``) holds one file per series, ``<SERIES>.csv``, in
FRED's download layout: a header ``observation_date,<SERIES>``, then ``YYYY-MM-DD,value``
lines with an empty value for a missing observation.  ``python -m sim.fetch`` fills the default
directory (a local cache) from FRED's public CSV service.

Point in time: a daily observation counts from its own date (the fixings and closes are public
on the day); a monthly observation is an average over its month and counts from the last day
of that month.  :meth:`Series.as_of` returns the last observation known on a date and nothing
later, so a snapshot or a benchmark built from it cannot look ahead.

Every problem with the data (a missing file, a corrupt file, a date before a series starts)
raises :class:`DataError`: one line naming the series, the date and what is available.
"""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from sim.validate import ConfigError

#: The series the project reads: name -> (frequency, what it is).
SERIES = {
    "DEXJPUS": ("daily", "USD/JPY, noon buying rate in New York (JPY per USD)"),
    "DGS10": ("daily", "10y US Treasury yield, constant maturity (% p.a.)"),
    "DTB3": ("daily", "3m US Treasury bill, secondary market, discount basis (% p.a.)"),
    "FEDFUNDS": ("monthly", "Federal funds effective rate, monthly average (% p.a.)"),
    "IRLTLT01JPM156N": ("monthly", "Japan 10y government bond yield, monthly (% p.a.)"),
    "IRSTCI01JPM156N": ("monthly", "Japan call money rate, monthly average (% p.a.)"),
    "IR3TIB01JPM156N": ("monthly", "Japan 3m interbank rate, monthly (% p.a.)"),
    "VIXCLS": ("daily", "Cboe VIX, daily close (index points)"),
}
#: FRED's public CSV service; ``{series}`` is replaced by the series name.
FRED_URL = "https://fred.stlouisfed.org/graph/fredgraph.csv?id={series}"
#: Environment variable that overrides the default data directory (the download cache).
DATA_ENV = "CARRYSIM_DATA"


class DataError(ConfigError):
    """A problem with the market data: which series, which date, what is available."""

    def __init__(self, message: str, key: str = "data.dir", value=None):
        super().__init__(key, value, message, message=message)


def default_data_dir() -> Path:
    """The local cache that ``python -m sim.fetch`` fills (``$CARRYSIM_DATA`` if set)."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    import pooch

    return Path(pooch.os_cache("yen-carry-sim")) / "fred"


def data_dir(configured: Optional[str]) -> Path:
    """The directory named by ``data.dir``, or the default cache when it is empty."""
    return Path(configured).expanduser() if configured else default_data_dir()


def month_end(day: np.datetime64) -> np.datetime64:
    """Last day of the month of ``day``."""
    month = day.astype("datetime64[M]")
    return ((month + 1).astype("datetime64[D]") - 1).astype("datetime64[D]")


@dataclass
class Series:
    """One series: observation dates, values (NaN = missing) and the dates they became known."""

    name: str
    frequency: str
    dates: np.ndarray       # datetime64[D], strictly increasing
    values: np.ndarray      # float64, NaN for an empty field
    known: np.ndarray       # datetime64[D]: the date from which each observation counts
    path: Path

    @property
    def first(self) -> np.datetime64:
        return self.dates[np.flatnonzero(~np.isnan(self.values))[0]]

    @property
    def last(self) -> np.datetime64:
        return self.dates[np.flatnonzero(~np.isnan(self.values))[-1]]

    def span(self) -> str:
        return f"{self.path.name} holds {self.first} to {self.last}"

    def _index_as_of(self, day: np.datetime64) -> int:
        """Index of the last non-missing observation known on ``day``, or -1."""
        k = int(np.searchsorted(self.known, day, side="right")) - 1
        while k >= 0 and np.isnan(self.values[k]):
            k -= 1
        return k

    def as_of(self, day: np.datetime64) -> float:
        """The last value known on ``day`` (DataError before the first one is known)."""
        k = self._index_as_of(np.datetime64(day, "D"))
        if k < 0:
            raise DataError(f"{self.name}: no observation known on {np.datetime64(day, 'D')} "
                            f"({self.span()}; monthly values count from the end of their month)")
        return float(self.values[k])

    def as_of_many(self, days: np.ndarray) -> np.ndarray:
        """:meth:`as_of` for many dates at once; NaN where nothing is known yet."""
        ok = ~np.isnan(self.values)
        known, values = self.known[ok], self.values[ok]
        k = np.searchsorted(known, np.asarray(days, dtype="datetime64[D]"), side="right") - 1
        out = np.where(k >= 0, values[np.maximum(k, 0)], np.nan)
        return out

    def until(self, day: np.datetime64) -> "Series":
        """The observations known on ``day`` (nothing published later)."""
        n = int(np.searchsorted(self.known, np.datetime64(day, "D"), side="right"))
        return Series(self.name, self.frequency, self.dates[:n], self.values[:n], self.known[:n],
                      self.path)

    def value_at(self, day: np.datetime64) -> float:
        """The value in effect on ``day`` with hindsight: the last daily observation on or
        before it, or the average of the month containing it (for realised outcomes only)."""
        day = np.datetime64(day, "D")
        stamp = day.astype("datetime64[M]").astype("datetime64[D]") if self.frequency == "monthly" else day
        k = int(np.searchsorted(self.dates, stamp, side="right")) - 1
        while k >= 0 and np.isnan(self.values[k]):
            k -= 1
        if k < 0 or day > month_end(self.last) or (self.frequency == "daily" and day > self.last + 7):
            raise DataError(f"{self.name}: no observation for {day} ({self.span()})")
        return float(self.values[k])


def read_series(path: Path, name: str, frequency: str = "daily") -> Series:
    """Read one FRED-layout CSV file; DataError naming the series for a corrupt file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{name}: file {path} not found (run `python -m sim.fetch data.dir="
                        f"{path.parent}` or put FRED's {name}.csv there)", value=str(path.parent))
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{name}: cannot read {path}: {err}") from None
    header = f"observation_date,{name}"
    if not lines or lines[0].strip().lstrip("\ufeff") != header:
        first = lines[0][:60] if lines else "an empty file"
        raise DataError(f"{name}: corrupt file {path}: first line is {first!r}, expected {header!r}")
    dates, values = [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.strip().split(",")
        try:
            if len(parts) != 2:
                raise ValueError("expected two fields")
            day = _dt.date.fromisoformat(parts[0])
            value = float(parts[1]) if parts[1] not in ("", ".") else np.nan
            if not (np.isnan(value) or np.isfinite(value)):
                raise ValueError("not a finite number")
        except ValueError:
            raise DataError(f"{name}: corrupt file {path}: line {number} is {line.strip()[:60]!r}, "
                            "expected 'YYYY-MM-DD,number' or 'YYYY-MM-DD,'") from None
        dates.append(day)
        values.append(value)
    if not dates or all(np.isnan(values)):
        raise DataError(f"{name}: corrupt file {path}: no observations")
    d = np.array(dates, dtype="datetime64[D]")
    if np.any(np.diff(d) <= np.timedelta64(0, "D")):
        bad = int(np.flatnonzero(np.diff(d) <= np.timedelta64(0, "D"))[0])
        raise DataError(f"{name}: corrupt file {path}: dates not strictly increasing at {d[bad + 1]}")
    v = np.array(values, dtype=float)
    if frequency == "monthly":
        known = ((d.astype("datetime64[M]") + 1).astype("datetime64[D]") - 1).astype("datetime64[D]")
    else:
        known = d
    return Series(name, frequency, d, v, known, path)


class MarketData:
    """The series of a data directory, read on first use and kept."""

    def __init__(self, directory: str | Path | None):
        self.dir = data_dir(str(directory) if directory else None)
        self._series: dict[str, Series] = {}

    def __getitem__(self, name: str) -> Series:
        if name not in self._series:
            if name not in SERIES:
                raise DataError(f"{name}: not a series the project reads "
                                f"(known: {', '.join(SERIES)})")
            if not self.dir.is_dir():
                raise DataError(f"{name}: data directory {self.dir} does not exist (run "
                                f"`python -m sim.fetch` or set data.dir to a folder of FRED CSV files)",
                                value=str(self.dir))
            self._series[name] = read_series(self.dir / f"{name}.csv", name, SERIES[name][0])
        return self._series[name]

    def truncated(self, day: np.datetime64) -> "MarketData":
        """A copy holding only what was known on ``day`` (for tests of look-ahead)."""
        out = MarketData(self.dir)
        out._series = {n: self[n].until(day) for n in SERIES if (self.dir / f"{n}.csv").exists()}
        return out


def fridays(start: np.datetime64, end: np.datetime64) -> np.ndarray:
    """Every Friday in [start, end]."""
    start, end = np.datetime64(start, "D"), np.datetime64(end, "D")
    # 1970-01-02 was a Friday
    offset = (int((start - np.datetime64("1970-01-02")).astype(int)) % 7)
    first = start + np.timedelta64((7 - offset) % 7, "D")
    return np.arange(first, end + np.timedelta64(1, "D"), np.timedelta64(7, "D")).astype("datetime64[D]")


def weekly_closes(series: Series, days: np.ndarray) -> np.ndarray:
    """The last observation on or before each of ``days`` (a Friday close; holidays filled)."""
    return series.as_of_many(days)
