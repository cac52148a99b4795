"""Reverse stress test: where does P(cumulative unwind > level) cross a probability?

``python -m sim.reverse_stress --key KEY --low A --high B [--level 500] [--probability 0.1]
[OVERRIDE ...]``

The probability is evaluated with the same seed at every value of the key (common random
numbers), which makes it a monotone step function of the key whenever the model is monotone
in it, and bisection finds the crossing.  Its uncertainty comes from the Monte Carlo error of
the probability, sqrt(p (1 - p) / N), divided by the local slope of the probability in the key,
measured over a window around the crossing.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass

from sim.compose import load_config
from sim.config import Range
from sim.errors import UserError, prog, run_command
from sim.experiments import unwind_paths
from sim.validate import ArgumentParser, ConfigError, check_arg, key_value, numeric_key, validate


class NoCrossing(UserError):
    pass


@dataclass
class StressResult:
    key: str
    value: float
    se: float
    level: float
    probability: float
    evaluations: list[tuple[float, float]]


def exceedance(base: list[str], key: str, value: float, level: float) -> tuple[float, int]:
    unwind = unwind_paths([*base, f"{key}={value}"])
    return float((unwind > level).mean()), len(unwind)


def reverse_stress(base: list[str], key: str, low: float, high: float, level: float,
                   probability: float, rel_tol: float = 1e-3, window: float = 0.05,
                   integer: bool = False) -> StressResult:
    """Bisect ``key`` over [low, high]; an integer key is bisected over whole numbers."""
    evals = []

    def f(v):
        p, n = exceedance(base, key, v, level)
        evals.append((v, p))
        return p - probability, n

    f_lo, n = f(low)
    f_hi, _ = f(high)
    if f_lo * f_hi > 0:
        raise NoCrossing(f"P(unwind > {level:g}bn) does not cross {100 * probability:g}% between "
                         f"{key}={low:g} (P={100 * (f_lo + probability):.2f}%) and {key}={high:g} "
                         f"(P={100 * (f_hi + probability):.2f}%)")
    a, b, fa = low, high, f_lo
    while abs(b - a) > (1 if integer else rel_tol * abs(high - low)):
        mid = (a + b) // 2 if integer else 0.5 * (a + b)
        fm, _ = f(mid)
        if fm == 0:
            a = b = mid
            break
        if fa * fm < 0:
            b = mid
        else:
            a, fa = mid, fm
    root = b if integer else 0.5 * (a + b)  # an integer key: the first whole value past it
    half = max(1, round(window * abs(high - low))) if integer else window * abs(high - low)
    up, down = min(root + half, high), max(root - half, low)  # the window stays in [low, high]
    p_up, _ = exceedance(base, key, up, level)
    p_down, _ = exceedance(base, key, down, level)
    slope = (p_up - p_down) / (up - down)
    se_p = math.sqrt(probability * (1 - probability) / n)
    se = se_p / abs(slope) if slope != 0 else float("inf")
    return StressResult(key, root, se, level, probability, evals)


#: Allowed ranges of the command's own numbers.
LEVEL = Range(-100_000.0, 100_000.0)
PROBABILITY = Range(0.0, 1.0, low_open=True, high_open=True)


def prepare(base: list[str], key: str, low: float, high: float, level: float,
            probability: float) -> tuple[float, float, bool]:
    """Check every input before the first simulation; ``low`` and ``high`` as the key's type
    and whether the key is an integer."""
    check_arg("--level", level, LEVEL, "USD bn")
    check_arg("--probability", probability, PROBABILITY)
    cfg = load_config(base)
    validate(cfg)
    tp, rng, unit = numeric_key(cfg, key, "--key")
    check_arg("--low", low, rng, unit)
    check_arg("--high", high, rng, unit)
    low, high = key_value(tp, low, "--low"), key_value(tp, high, "--high")
    if not low < high:
        raise ConfigError("--low/--high", (low, high), "LOW < HIGH (a range to search)")
    for value in (low, high):
        validate(load_config([*base, f"{key}={value}"]))
    return low, high, tp is int


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=prog("python -m sim.reverse_stress"), description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the base config")
    parser.add_argument("--key", required=True, help="scalar config key, e.g. investors.leveraged.holdings")
    parser.add_argument("--low", type=float, required=True)
    parser.add_argument("--high", type=float, required=True)
    parser.add_argument("--level", type=float, default=500.0, help="unwind level, USD bn")
    parser.add_argument("--probability", type=float, default=0.1)
    args = parser.parse_intermixed_args(argv)
    try:
        low, high, integer = prepare(args.overrides, args.key, args.low, args.high, args.level,
                                     args.probability)
        res = reverse_stress(args.overrides, args.key, low, high, args.level, args.probability,
                             integer=integer)
    except (ConfigError, NoCrossing) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"P(cumulative unwind > USD {res.level:g}bn) = {100 * res.probability:g}% at "
          f"{res.key} = {res.value:.4g} ± {res.se:.2g} (Monte Carlo standard error; "
          f"{len(res.evaluations) + 2} evaluations)")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main, sys.argv[1:]))
