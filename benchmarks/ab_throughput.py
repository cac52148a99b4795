"""Kernel throughput of two source trees, measured alternately in one sitting.

    python benchmarks/ab_throughput.py --old /tmp/base --new . --rounds 4

On a shared machine a single timing says little; alternating the trees round by round makes
both see the same load.  Each measurement is a fresh process run in the tree's root (so that
tree's ``sim`` is imported, its numba cache warm after a warm-up run) that simulates the model's
default config chunk by chunk and reports the kernel's wall seconds (the sum over chunks of the
``simulate_chunk`` calls, the quantity ``benchmarks/run.py`` reports) and the process CPU
seconds of the same calls.  On one numba thread (the default here) CPU time measures the work
even while other jobs share the cores.  Prints each measurement, then per step length the
median throughput of each tree and the ratio new / old of the medians and of each round.

Trees from before the layout refactoring have ``simulate_range(cfg, inputs, start, stop)``;
later ones ``simulate_range(inputs, start, stop)``; the script uses whichever the tree has.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

CODE = """
import sys, time
import numba
from sim.compose import load_config
import sim.engine as E
cfg = load_config(sys.argv[1:] + ["output.progress=false"])
numba.set_num_threads(min(cfg.sampler.threads or numba.config.NUMBA_NUM_THREADS,
                          numba.config.NUMBA_NUM_THREADS))
if hasattr(E, "run"):  # before the layout refactoring
    inputs = E.build_inputs(cfg)
    ranges = E.chunk_ranges(cfg)
    E.warm_up(inputs, cfg)
    simulate = lambda start, stop: E.simulate_range(cfg, inputs, start, stop)
else:
    from sim.inputs import build_inputs
    inputs = build_inputs(cfg)
    ranges = inputs.plan.chunk_ranges()
    E.warm_up(inputs)
    simulate = lambda start, stop: E.simulate_range(inputs, start, stop)
wall = cpu = 0.0
for start, stop in ranges:
    began = time.process_time()
    chunk = simulate(start, stop)
    cpu += time.process_time() - began
    wall += chunk.elapsed
    del chunk
print("ELAPSED", wall, cpu, len(inputs.dates) - 1)
"""
SIZES = {"weekly": 20_000, "daily": 4_000}


def kernel_seconds(tree: Path, step: str, paths: int, threads: int) -> tuple[float, float, int]:
    """Kernel wall seconds, process CPU seconds and time steps of one run of ``paths`` paths."""
    args = [f"sampler.paths={paths}", f"sampler.step={step}", "sampler.horizon_months=24",
            f"sampler.threads={threads}"]
    done = subprocess.run([sys.executable, "-c", CODE, *args], cwd=tree, capture_output=True,
                          text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("ELAPSED")]
    if done.returncode or not lines:
        sys.exit(f"{tree}: {done.stderr[-2000:]}")
    _, wall, cpu, steps = lines[0].split()
    return float(wall), float(cpu), int(steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", type=Path, required=True)
    ap.add_argument("--new", type=Path, default=Path("."))
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1,
                    help="numba threads (1: CPU time measures the work even on a loaded machine)")
    args = ap.parse_args()
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    for tree in trees.values():  # compile or load the kernels once before timing
        kernel_seconds(tree, "weekly", 256, args.threads)
    rates = {(t, s, k): [] for t in trees for s in SIZES for k in ("wall", "cpu")}
    for k in range(args.rounds):
        order = list(trees) if k % 2 == 0 else list(trees)[::-1]
        for step, paths in SIZES.items():
            for name in order:
                wall, cpu, steps = kernel_seconds(trees[name], step, paths, args.threads)
                rates[(name, step, "wall")].append(paths * steps / wall)
                rates[(name, step, "cpu")].append(paths * steps / cpu)
                print(f"round {k + 1} {step:6s} {name}: kernel {wall:6.2f} s wall, "
                      f"{cpu:6.2f} s CPU", flush=True)
    print()
    for step in SIZES:
        for kind in ("wall", "cpu"):
            old, new = rates[("old", step, kind)], rates[("new", step, kind)]
            per_round = [n / o for n, o in zip(new, old)]
            print(f"{step} ({kind} time): median old {statistics.median(old) / 1e6:.3f}M, new "
                  f"{statistics.median(new) / 1e6:.3f}M path-steps/s; new/old of medians "
                  f"{statistics.median(new) / statistics.median(old):.3f}; per round "
                  + ", ".join(f"{r:.3f}" for r in per_round))


if __name__ == "__main__":
    main()
