"""Performance of the model beside its floors, in one process and on the same shocks.

    python benchmarks/run.py            # the sizes quoted in README.md (a few minutes)
    python benchmarks/run.py --quick    # a smaller version

For a weekly and a daily two-year run it measures, in path-steps per second:

* the model: ``sim.engine.stream`` after a warm-up, kernel time only (``RunInfo.elapsed``);
* the floor: the same count of normals (layout.NORMALS_PER_STEP) drawn in numba from the
  model's random streams, and a second floor that makes every draw of the model (normals and
  uniforms, ``kernels.draw_shocks``) and stores it;
* the numpy reference (``sim.reference``) on the model's own shocks, for the same paths (timed
  without drawing the shocks), checked against the kernel's outputs, with the solver's residual
  evaluations per solve, one solve a sub-step of the investors' clock (the reference runs the
  kernel's solver, round by round); the model on
  one thread, for a comparison per core; the model and the reference again in the stress
  scenario ``risk_off``;
* the time split: draws (the stored-draws floor), the solver (from the model with the solver
  cut to one residual evaluation a solve, ``model.feedback.max_iter=1``) and the rest.

Then the cold start (empty numba cache) and warm start of the default command line run, and
the peak resident memory.  Prints Markdown tables.  The floors are the median of three calls.

The numpy reference's throughput grows with the number of paths it treats at once, so the
smaller sizes of ``--quick`` flatter the model's ratio to it.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from sim import kernels as K
from sim import layout as L
from sim import reference
from sim.compose import load_config
from sim.engine import stream
from sim.inputs import build_inputs
from sim.rng import block_seeds

ROOT = Path(__file__).resolve().parent.parent
#: Paths per step length; the horizon is two years.
SIZES = {"full": {"weekly": 100_000, "daily": 20_000}, "quick": {"weekly": 10_000, "daily": 2_000}}
SHOCK_CHUNK = 2048  # paths per call of the stored-draws floor (a whole number of blocks)
TARGET_FLOOR, TARGET_NUMPY = 0.25, 10.0
#: The stress case: fewer classes sit far from their thresholds, so the solver works harder.
STRESS = "risk_off"
CLI = ["sampler.paths=2000", "output.plots=false"]


def peak_rss_mb() -> float:
    """Peak resident memory of this process, MB."""
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage / (2**20 if sys.platform == "darwin" else 2**10)


def timed(fn, *args):
    began = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - began, result


def median_time(fn, *args, repeat=3) -> float:
    return float(np.median([timed(fn, *args)[0] for _ in range(repeat)]))


def measure(step: str, n_paths: int) -> list[dict]:
    """Model, floors and numpy reference for one step length, baseline and the stress
    scenario; one row each."""
    def config(*extra):
        return load_config([f"sampler.paths={n_paths}", f"sampler.step={step}",
                            "sampler.horizon_months=24", "output.progress=false", *extra])

    cfg = config()
    seed, bs = cfg.sampler.seed, cfg.sampler.block_size
    rows = []

    def row(key, what, paths, steps, seconds, note="", **extra):
        rows.append(dict(key=key, what=what, step=step, paths=paths, steps=steps, seconds=seconds,
                         rate=paths * steps / seconds, rss=peak_rss_mb(), note=note, **extra))

    def model_and_reference(key, extra, label):
        inputs = build_inputs(config(*extra))
        chunks = []
        r = stream(inputs, chunks.append, progress=False)
        n_steps = len(inputs.dates) - 1
        row(key, f"model (numba kernel){label}", n_paths, n_steps, r.elapsed,
            f"{r.threads} threads")
        pp, cpp, kernel_path = (np.concatenate([getattr(c, name) for c in chunks])
                                for name in ("params", "class_params", "paths"))
        del r, chunks
        draws = reference.shocks(seed, bs, n_paths, n_steps)
        reference.EVALUATIONS[:] = 0
        seconds, outs = timed(reference.simulate, inputs, pp, cpp, draws)
        evaluations = reference.EVALUATIONS[0] / reference.EVALUATIONS[1]
        diff = max(float((np.abs(outs[0][name] - kernel_path[name])
                          / np.maximum(np.abs(kernel_path[name]), 1.0)).max())
                   for name in L.PATH_OUT.names)
        row(f"numpy{key[5:]}", f"numpy reference{label}", n_paths, n_steps, seconds,
            f"1 thread; {evaluations:.2f} residual evaluations a solve; max rel. diff. to "
            f"kernel {diff:.0e}", evaluations=evaluations)
        return n_steps

    n_steps = model_and_reference("model", [], "")

    seeds = block_seeds(seed, 0, -(-n_paths // bs))
    seconds = median_time(K.draw_normals_floor, seeds, bs, n_paths, L.NORMALS_PER_STEP * n_steps,
                          np.empty(n_paths))
    row("floor", f"floor: {L.NORMALS_PER_STEP} normals a step", n_paths, n_steps, seconds,
        "same streams, summed")

    def all_draws(buf):
        for start in range(0, n_paths, SHOCK_CHUNK):
            n = min(SHOCK_CHUNK, n_paths - start)
            K.draw_shocks(block_seeds(seed, start // bs, -(-n // bs)), bs, n, buf[:n])

    per_step = L.NORMALS_PER_STEP + L.UNIFORMS_PER_STEP
    seconds = median_time(all_draws, np.empty((SHOCK_CHUNK, n_steps), L.DRAWS))
    row("draws", f"floor: all {per_step} draws a step", n_paths, n_steps, seconds,
        f"{L.NORMALS_PER_STEP} normals + {L.UNIFORMS_PER_STEP} uniforms, stored")

    # The solver's share: cut to one residual evaluation a solve (the same equations, flows
    # committed at the first level), the difference to the model is the cost of the others.
    once = stream(build_inputs(config("model.feedback.max_iter=1")), lambda chunk: None,
                  progress=False)
    row("one_eval", "model, solver cut to 1 evaluation", n_paths, n_steps, once.elapsed,
        f"{once.threads} threads; max_iter=1")

    one = stream(build_inputs(config("sampler.threads=1")), lambda chunk: None, progress=False)
    row("model1", "model (numba kernel)", n_paths, n_steps, one.elapsed, "1 thread")
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    model_and_reference("model_stress", [f"scenario={STRESS}"], f", scenario={STRESS}")
    return rows


def split(rate: dict, evaluations: float) -> tuple[float, float, float]:
    """Seconds per million path-steps of the model spent drawing, solving and on the rest.

    Draws: the floor that makes and stores every draw.  Solver: the model's time beyond that of
    the model cut to one residual evaluation a solve is the cost of evaluations - 1 of them a
    solve, scaled to all of them.  The rest is the remainder (the step's other equations, outputs).
    """
    total, draws = 1e6 / rate["model"], 1e6 / rate["draws"]
    extra = max(total - 1e6 / rate["one_eval"], 0.0)
    solver = extra * evaluations / (evaluations - 1.0) if evaluations > 1.0 else 0.0
    return draws, solver, total - draws - solver


def start_times() -> list[tuple[str, float, int]]:
    """Wall time of ``python -m sim`` with an empty numba cache, then with the same cache."""
    out = []
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as runs:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold (empty NUMBA_CACHE_DIR)", "warm (same cache)"):
            cmd = [sys.executable, "-m", "sim", *CLI, f"hydra.run.dir={runs}/{len(out)}"]
            began = time.perf_counter()
            done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
            out.append((label, time.perf_counter() - began, done.returncode))
            if done.returncode:
                print(done.stderr[-2000:], file=sys.stderr)
    return out


def fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def report(rows, starts, quick) -> str:
    lines = [f"`python benchmarks/run.py{' --quick' if quick else ''}`: "
             f"{os.cpu_count()} cores, {numba.get_num_threads()} numba threads, "
             f"numba {numba.__version__}, numpy {np.__version__}, Python "
             f"{platform.python_version()}, {_revision()}", "",
             "| step | measurement | paths x steps | seconds | path-steps/s "
             "| peak RSS so far (MB) | note |", "|---|---|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['step']} | {r['what']} | {r['paths']:,} x {r['steps']} | "
                     f"{r['seconds']:.2f} | {fmt(r['rate'])} | {r['rss']:,.0f} | {r['note']} |")
    lines += ["", "| step | ratio | value | target | met |", "|---|---|---:|---:|---|"]
    steps = list(dict.fromkeys(r["step"] for r in rows))
    for step in steps:
        rate = {r["key"]: r["rate"] for r in rows if r["step"] == step}
        for name, model, other, target in (
                (f"floor ({L.NORMALS_PER_STEP} normals)", "model", "floor", TARGET_FLOOR),
                ("numpy reference", "model", "numpy", TARGET_NUMPY),
                (f"floor ({L.NORMALS_PER_STEP} normals), scenario={STRESS}", "model_stress",
                 "floor", TARGET_FLOOR),
                (f"numpy reference, both scenario={STRESS}", "model_stress", "numpy_stress",
                 TARGET_NUMPY),
                ("floor (all draws, stored)", "model", "draws", None),
                ("numpy reference, both on 1 thread", "model1", "numpy", None)):
            ratio = rate[model] / rate[other]
            met = "" if target is None else ("yes" if ratio >= target else "no")
            label = STRESS if model == "model_stress" else "model"
            lines.append(f"| {step} | {label} / {name} | {ratio:.3g} | "
                         f"{'' if target is None else f'>= {target:g}'} | {met} |")
    lines += ["", "| step | residual evaluations a solve (baseline, "
              f"{STRESS}) | s per million path-steps: model | draws | solver | the rest |",
              "|---|---:|---:|---:|---:|---:|"]
    for step in steps:
        rate = {r["key"]: r["rate"] for r in rows if r["step"] == step}
        ev = {r["key"]: r.get("evaluations") for r in rows if r["step"] == step}
        draws, solver, rest = split(rate, ev["numpy"])
        lines.append(f"| {step} | {ev['numpy']:.2f}, {ev['numpy_stress']:.2f} | "
                     f"{1e6 / rate['model']:.3g} | {draws:.3g} | {solver:.3g} | {rest:.3g} |")
    lines += ["", f"| start of `python -m sim {' '.join(CLI)}` | wall time (s) | exit |",
              "|---|---:|---:|"]
    lines += [f"| {label} | {seconds:.1f} | {code} |" for label, seconds, code in starts]
    lines += ["", f"Peak resident memory of this process: {peak_rss_mb():,.0f} MB."]
    return "\n".join(lines)


def _revision() -> str:
    try:
        rev = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.strip()
        return f"commit {rev}"
    except (OSError, subprocess.CalledProcessError):
        return "commit unknown"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a quick check")
    args = parser.parse_args(argv)
    sizes = SIZES["quick" if args.quick else "full"]

    # Warm-up: compile the kernels (or load them from the cache) before anything is timed.
    warm = load_config(["sampler.paths=256", "sampler.horizon_months=1", "output.progress=false"])
    stream(build_inputs(warm), lambda chunk: None, progress=False)
    seeds = block_seeds(0, 0, 1)
    K.draw_normals_floor(seeds, 256, 1, 2, np.empty(1))
    K.draw_shocks(seeds, 256, 1, np.empty((1, 1), L.DRAWS))

    rows = []
    for step, n_paths in sizes.items():
        rows += measure(step, n_paths)
        print(f"{step}: done", file=sys.stderr, flush=True)
    starts = start_times()
    print(report(rows, starts, args.quick))


if __name__ == "__main__":
    main()
