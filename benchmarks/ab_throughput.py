"""Kernel throughput of two source trees, measured alternately in one sitting.

    python benchmarks/ab_throughput.py --old /tmp/base --new . --rounds 4

On a shared machine a single timing says little; alternating the trees round by round makes
both see the same load.  Each measurement is a fresh process run in the tree's root (so that
tree's ``sim`` is imported, its numba cache warm after a warm-up run) that simulates the model's
default config and prints the kernel seconds (the sum over chunks of the ``simulate_chunk``
calls, the quantity ``benchmarks/run.py`` reports).  Prints each measurement, then per step
length the median throughput of each tree and the ratio new / old of the medians and of each
round.

Trees from before the layout refactoring have ``sim.engine.run(cfg)``; later ones
``sim.engine.stream(build_inputs(cfg), sink)``; the script uses whichever the tree has.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

CODE = """
import sys
from sim.compose import load_config
import sim.engine as E
cfg = load_config(sys.argv[1:] + ["output.progress=false"])
if hasattr(E, "run"):
    r = E.run(cfg, progress=False)
    elapsed, steps = r.elapsed, r.time_out.shape[1] - 1
else:
    from sim.inputs import build_inputs
    inputs = build_inputs(cfg)
    elapsed = E.stream(inputs, lambda chunk: None, progress=False).elapsed
    steps = len(inputs.dates) - 1
print("ELAPSED", elapsed, steps)
"""
SIZES = {"weekly": 40_000, "daily": 8_000}


def kernel_seconds(tree: Path, step: str, paths: int) -> tuple[float, int]:
    """Kernel seconds and time steps of one run of ``paths`` paths."""
    args = [f"sampler.paths={paths}", f"sampler.step={step}", "sampler.horizon_months=24"]
    done = subprocess.run([sys.executable, "-c", CODE, *args], cwd=tree, capture_output=True,
                          text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("ELAPSED")]
    if done.returncode or not lines:
        sys.exit(f"{tree}: {done.stderr[-2000:]}")
    _, seconds, steps = lines[0].split()
    return float(seconds), int(steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", type=Path, required=True)
    ap.add_argument("--new", type=Path, default=Path("."))
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    for tree in trees.values():  # compile or load the kernels once before timing
        kernel_seconds(tree, "weekly", 256)
    rates = {(t, s): [] for t in trees for s in SIZES}
    for k in range(args.rounds):
        order = list(trees) if k % 2 == 0 else list(trees)[::-1]
        for step, paths in SIZES.items():
            for name in order:
                seconds, steps = kernel_seconds(trees[name], step, paths)
                rate = paths * steps / seconds
                rates[(name, step)].append(rate)
                print(f"round {k + 1} {step:6s} {name}: {seconds:6.2f} s, "
                      f"{rate / 1e6:.3f}M path-steps/s", flush=True)
    print()
    for step in SIZES:
        old, new = rates[("old", step)], rates[("new", step)]
        per_round = [n / o for n, o in zip(new, old)]
        print(f"{step}: median old {statistics.median(old) / 1e6:.3f}M, new "
              f"{statistics.median(new) / 1e6:.3f}M path-steps/s; new/old of medians "
              f"{statistics.median(new) / statistics.median(old):.3f}; per round "
              + ", ".join(f"{r:.3f}" for r in per_round))


if __name__ == "__main__":
    main()
