"""Checks of a typed config beyond what the Hydra schemas can express.

Hydra and OmegaConf refuse unknown keys, wrong types and words outside the Enums of
:mod:`sim.config`.  Here :func:`check_ranges` walks the config tree once and checks every
number against the range declared beside its field (NaN, infinity and absurd sizes included),
and :func:`validate` adds the checks that tie keys together: priors against their central
value, dates against the snapshot and the horizon, correlation matrices, policy thresholds.

Each failure raises :class:`ConfigError` naming the key, the value and what is allowed; the
command line prints that single line and exits with status 2.
"""
from __future__ import annotations

import argparse
import functools
import math
import re
import typing
from dataclasses import fields, is_dataclass

import numpy as np

from sim.calendar import parse_date, time_grid
from sim.config import FACTORS, Config, PriorConfig, PriorKind, Range


class ConfigError(ValueError):
    """A user's mistake in a config: which key, which value, what is allowed."""

    def __init__(self, key: str, value, allowed: str, message: str | None = None):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(message or f"{key}={_show(value)}: {allowed}")


def _show(value) -> str:
    if isinstance(value, str) and type(value) is not str:
        value = str(value)  # an Enum member: its value, as the user wrote it
    return repr(value)


def _check(cond: bool, key: str, value, allowed: str) -> None:
    if not cond:
        raise ConfigError(key, value, allowed)


# --- the generic walk over declared ranges ---------------------------------------------------

NUMERIC = (int, float)


@functools.lru_cache(maxsize=None)
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _is_numeric(tp) -> bool:
    """Whether a field of type ``tp`` holds numbers (int, float, optional or a list of them)."""
    if tp in NUMERIC:
        return True
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union:
        return any(_is_numeric(a) for a in args if a is not type(None))
    if origin in (list, typing.List):
        return bool(args) and args[0] in NUMERIC
    return False


def _allowed(rng: Range, unit: str) -> str:
    return rng.describe() + (f" ({unit})" if unit else "")


def _check_number(key: str, value, rng: Range, unit: str = "") -> None:
    if value is None:
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_number(f"{key}[{i}]", v, rng, unit)
        return
    _check(rng.contains(value), key, value, _allowed(rng, unit))


def check_ranges(obj, prefix: str = "") -> None:
    """Check every number in the dataclass tree ``obj`` against the range declared beside it.

    A numeric field without a declared range is a programming error (TypeError), so a new key
    cannot be added to the schemas without its check.
    """
    hints = _hints(type(obj))
    for f in fields(obj):
        key = f"{prefix}.{f.name}" if prefix else f.name
        value = getattr(obj, f.name)
        meta = f.metadata
        if "range" in meta:
            _check_number(key, value, meta["range"], meta.get("unit", ""))
        elif "range_by" in meta:
            by, table = meta["range_by"]
            _check_number(key, value, table[getattr(obj, by)],
                          f"for {by} {getattr(obj, by)}")
        elif "date" in meta:
            for i, text in enumerate(value if isinstance(value, list) else [value]):
                parse_date(text, f"{key}[{i}]" if isinstance(value, list) else key)
        elif "pattern" in meta:
            _check(value is None or re.fullmatch(meta["pattern"], str(value)) is not None,
                   key, value, meta["allowed"])
        elif "prior_of" in meta:
            check_ranges(value, key)
            central = next(g for g in fields(obj) if g.name == meta["prior_of"])
            check_prior(key, value, getattr(obj, central.name), f"{prefix}.{central.name}"
                        if prefix else central.name, central.metadata["range"])
        elif is_dataclass(value):
            check_ranges(value, key)
        elif isinstance(value, dict):
            for name, item in value.items():
                if is_dataclass(item):
                    check_ranges(item, f"{key}.{name}")
        elif isinstance(value, list) and value and is_dataclass(value[0]):
            for i, item in enumerate(value):
                check_ranges(item, f"{key}[{i}]")
        elif _is_numeric(hints[f.name]):
            raise TypeError(f"{type(obj).__name__}.{f.name} declares no range "
                            "(use sim.config.num or integer)")
    _check_window(obj, prefix)


def _check_window(obj, prefix: str) -> None:
    """A group with ``start`` and ``end`` dates is a window: its end not before its start."""
    declared = {f.name for f in fields(obj) if "date" in f.metadata}
    if {"start", "end"} <= declared:
        key = f"{prefix}." if prefix else ""
        _check(parse_date(obj.start, f"{key}start") <= parse_date(obj.end, f"{key}end"),
               f"{key}end", obj.end, f"a date on or after {key}start ({obj.start})")


def check_prior(key: str, prior: PriorConfig, central: float, central_key: str,
                domain: Range) -> None:
    """Check the prior at ``key`` against its central value and the central field's range."""
    kind = prior.dist
    if kind in (PriorKind.uniform, PriorKind.triangular):
        _check(prior.low is not None and prior.high is not None and prior.low < prior.high,
               f"{key}.low/high", (prior.low, prior.high), "low < high, both set")
        for end in ("low", "high"):
            value = getattr(prior, end)
            _check(domain.contains(value), f"{key}.{end}", value,
                   f"inside the range of {central_key}: {domain.describe()}")
    if kind == PriorKind.triangular:
        _check(prior.low <= central <= prior.high, central_key, central,
               f"the central value (mode) of a triangular prior must lie in [{prior.low}, {prior.high}]"
               f" (or set {key}.dist=fixed)")
    if kind == PriorKind.normal:
        half = (domain.high - domain.low) / 2
        _check(prior.sd is not None and 0 <= prior.sd <= half, f"{key}.sd", prior.sd,
               f"set, >= 0 and at most half the width of the range of {central_key} ({half:g})")
    if kind == PriorKind.lognormal:
        _check(prior.sd is not None and 0 <= prior.sd <= 3, f"{key}.sd", prior.sd,
               "set, in [0, 3] (the standard deviation of the logarithm)")
        _check(central >= 0, central_key, central, "a lognormal prior needs a central value (median) >= 0")


# --- correlation matrices --------------------------------------------------------------------

def as_matrix(key: str, matrix) -> np.ndarray:
    """``matrix`` as a float array, or ConfigError if its entries are not numbers."""
    try:
        return np.asarray(matrix, dtype=float)
    except (TypeError, ValueError):
        n = len(FACTORS)
        raise ConfigError(key, matrix, f"a {n}x{n} matrix of numbers") from None


def check_correlation(key: str, matrix) -> np.ndarray:
    """A valid correlation matrix over FACTORS, or ConfigError."""
    n = len(FACTORS)
    arr = as_matrix(key, matrix)
    _check(arr.shape == (n, n), key, f"shape {arr.shape}",
           f"a {n}x{n} matrix over the factors {', '.join(FACTORS)}")
    _check(bool(np.all(np.isfinite(arr))), key, "non-finite entries", "finite entries")
    _check(np.allclose(arr, arr.T, atol=1e-12), key, "asymmetric matrix", "a symmetric matrix")
    _check(np.allclose(np.diag(arr), 1.0), key, f"diagonal {np.diag(arr).tolist()}", "a unit diagonal")
    _check(bool(np.all(np.abs(arr) <= 1.0)), key, "entries outside [-1, 1]", "entries in [-1, 1]")
    low = float(np.linalg.eigvalsh(arr).min())
    _check(low > -1e-10, key, f"smallest eigenvalue {low:.4g}",
           "a positive semidefinite matrix (set model.correlation.repair=true to use the nearest one)")
    return arr


# --- the whole config ------------------------------------------------------------------------

def validate(cfg: Config) -> None:
    """Raise ConfigError for the first problem found in ``cfg``."""
    check_ranges(cfg)
    q = list(cfg.output.quantiles)
    _check(len(q) >= 1 and all(a < b for a, b in zip(q, q[1:])), "output.quantiles", q,
           "at least one level, in increasing order without repeats")

    snap = cfg.snapshot
    start = parse_date(snap.date, "snapshot.date")
    for key in ("boj_last_move", "fed_last_move"):
        day = parse_date(getattr(snap, key), f"snapshot.{key}")
        _check(day <= start, f"snapshot.{key}", getattr(snap, key),
               f"a date on or before the snapshot date {snap.date}")
    for key in ("boj_meetings", "fed_meetings"):
        days = [parse_date(d, f"snapshot.{key}[{i}]") for i, d in enumerate(getattr(snap, key))]
        _check(all(a < b for a, b in zip(days, days[1:])), f"snapshot.{key}", list(getattr(snap, key)),
               "dates in increasing order")

    for bank in ("boj", "fed"):
        b = getattr(cfg.model.policy, bank)
        key = f"model.policy.{bank}"
        _check(b.threshold_25 <= b.threshold_50, f"{key}.threshold_25", b.threshold_25,
               f"0 <= threshold_25 <= threshold_50 ({b.threshold_50})")

    corr = cfg.model.correlation
    for name in ("calm", "stress"):
        matrix = getattr(corr, name)
        if matrix is not None and not corr.repair:  # with repair, sim.inputs repairs and reports
            check_correlation(f"model.correlation.{name}", matrix)

    enabled = [n for n, c in cfg.investors.items() if c.enabled]
    _check(len(enabled) >= 1, "investors", sorted(cfg.investors), "at least one enabled class")
    for name, c in cfg.investors.items():
        key = f"investors.{name}"
        _check(c.max_hedge_ratio >= c.hedge_ratio or c.hedge_share == 0, f"{key}.max_hedge_ratio",
               c.max_hedge_ratio, f"at least hedge_ratio ({c.hedge_ratio}) when hedge_share > 0")
        if c.signal == "allocation_drift":
            _check(0 < c.foreign_weight < 1, f"{key}.foreign_weight", c.foreign_weight, "in (0, 1)")
            _check(0 < c.target_weight < 1, f"{key}.target_weight", c.target_weight, "in (0, 1)")
            _check(c.threshold_mean is not None, f"{key}.threshold_mean", None,
                   "a number (the band half-width of an allocation_drift class, pp)")
        else:
            _check(c.threshold_mean is None, f"{key}.threshold_mean", c.threshold_mean,
                   "null for a threshold class: use threshold_distance (distance of current "
                   "holders' thresholds beyond the snapshot signal)")
            _check(c.threshold_distance is not None, f"{key}.threshold_distance", None,
                   "a number (mean distance of current holders' thresholds beyond the "
                   "snapshot signal, signal units)")
            # Equilibrium at the snapshot (docs/model.md 7.3): the snapshot sits mid-way in the
            # hysteresis band, and at most half of the potential holders are out there.
            _check(c.threshold_distance >= 0.5 * c.reentry_gap, f"{key}.threshold_distance",
                   c.threshold_distance,
                   f"at least half the re-entry gap ({0.5 * c.reentry_gap:g}): a snapshot never "
                   "starts beyond most of a class's thresholds (at most half of its potential "
                   "holders out, docs/model.md 7.3)")

    # Scripted events and observations must fall on the simulated grid (after the snapshot,
    # no later than the horizon's last date).
    dates = time_grid(start, cfg.sampler.horizon_months, cfg.sampler.step)
    end = dates[-1]
    for group, after in (("events", "after"), ("observations", "on or after")):
        for i, item in enumerate(getattr(cfg.scenario, group)):
            key = f"scenario.{group}[{i}].date"
            day = parse_date(item.date, key)
            first = day >= start if group == "observations" else day > start
            _check(first and day <= end, key, item.date,
                   f"a date {after} the snapshot ({start}) and no later than the horizon ({end})")


# --- the analysis commands' own arguments ----------------------------------------------------

class ArgumentParser(argparse.ArgumentParser):
    """argparse with its mistakes on one line of stderr (no usage block), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def check_arg(flag: str, value, rng: Range, unit: str = "") -> None:
    """Refuse a command-line number outside ``rng`` (NaN and infinity included)."""
    _check_number(flag, value, rng, unit)


def numeric_key(cfg: Config, key: str, flag: str) -> tuple[type, Range, str]:
    """The type (int or float), declared range and unit of the scalar numeric config ``key``.

    The analysis commands vary one key at a time; anything else (an unknown key, a group, a
    list, a word or a switch) is refused with the keys that exist at the level that failed.
    """
    node, where = cfg, "the config"
    parts = key.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, dict):
            _check(part in node, flag, key, f"{where} has no entry {part!r}; it has {', '.join(node)}")
            node, where = node[part], ".".join(parts[:i + 1])
            continue
        if not is_dataclass(node):
            break
        names = {f.name: f for f in fields(node)}
        _check(part in names, flag, key, f"{where} has no key {part!r}; its keys are {', '.join(names)}")
        f = names[part]
        if last:
            tp = _hints(type(node))[part]
            optional = typing.get_origin(tp) is typing.Union
            base = [a for a in typing.get_args(tp) if a is not type(None)] if optional else [tp]
            _check("range" in f.metadata and base[0] in NUMERIC, flag, key,
                   "a numeric config key (a number, not a group, a list, a word or a switch)")
            return base[0], f.metadata["range"], f.metadata.get("unit", "")
        node, where = getattr(node, part), ".".join(parts[:i + 1])
    raise ConfigError(flag, key, "a numeric config key such as model.fx.long_run_vol")


def key_value(tp: type, value: float, flag: str):
    """``value`` as the key's type: an int key takes whole numbers only."""
    if tp is int:
        _check(math.isfinite(value) and value == int(value), flag, value,
               "a whole number (the key is an integer)")
        return int(value)
    return float(value)


def check_scheduler_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Refuse a ``tcp://host:port`` scheduler address where nothing listens (a quick socket
    probe, before any run folder exists; the Dask client checks again when it connects)."""
    import socket
    from urllib.parse import urlsplit

    if not address or not address.startswith("tcp://"):
        return
    parts = urlsplit(address)
    try:
        port = parts.port or 8786
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except (OSError, ValueError) as err:
        raise ConfigError("sampler.scheduler", address,
                          f"the address of a running Dask scheduler ({type(err).__name__}: "
                          f"{getattr(err, 'strerror', None) or err})") from None
