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

from sim.errors import ArgumentParser, UserError, prog, run_command
from sim.experiments import unwind_paths


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
                   probability: float, rel_tol: float = 1e-3, window: float = 0.05) -> StressResult:
    evals = []

    def f(v):
        p, n = exceedance(base, key, v, level)
        evals.append((v, p))
        return p - probability, n

    f_lo, n = f(low)
    f_hi, _ = f(high)
    if f_lo * f_hi > 0:
        raise NoCrossing(f"P(unwind > {level:g}bn) does not cross {probability:g} between "
                         f"{key}={low:g} (P={f_lo + probability:.4f}) and {key}={high:g} "
                         f"(P={f_hi + probability:.4f})")
    a, b, fa = low, high, f_lo
    while abs(b - a) > rel_tol * abs(high - low):
        mid = 0.5 * (a + b)
        fm, _ = f(mid)
        if fm == 0:
            a = b = mid
            break
        if fa * fm < 0:
            b = mid
        else:
            a, fa = mid, fm
    root = 0.5 * (a + b)
    half = window * abs(high - low)
    p_up, _ = exceedance(base, key, root + half, level)
    p_down, _ = exceedance(base, key, root - half, level)
    slope = (p_up - p_down) / (2 * half)
    se_p = math.sqrt(probability * (1 - probability) / n)
    se = se_p / abs(slope) if slope != 0 else float("inf")
    return StressResult(key, root, se, level, probability, evals)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=prog("python -m sim.reverse_stress"), description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the base config")
    parser.add_argument("--key", required=True, help="scalar config key, e.g. investors.leveraged.holdings")
    parser.add_argument("--low", type=float, required=True)
    parser.add_argument("--high", type=float, required=True)
    parser.add_argument("--level", type=float, default=500.0, help="unwind level, USD bn")
    parser.add_argument("--probability", type=float, default=0.1)
    args = parser.parse_intermixed_args(argv)
    if not 0 < args.probability < 1:
        raise UserError(f"--probability={args.probability}: must lie strictly between 0 and 1")
    res = reverse_stress(args.overrides, args.key, args.low, args.high, args.level, args.probability)
    print(f"P(cumulative unwind > USD {res.level:g}bn) = {res.probability:g} at "
          f"{res.key} = {res.value:.4g} ± {res.se:.2g} (Monte Carlo standard error; "
          f"{len(res.evaluations) + 2} evaluations)")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main, sys.argv[1:]))
