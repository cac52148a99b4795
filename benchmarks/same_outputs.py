"""Record the outputs of a few command-line runs of a source tree, and compare two recordings.

Used to show that a refactoring changes no result: record the tree before the change and the
tree after it, then compare every data variable and coordinate exactly (``numpy.array_equal``,
NaN equal to NaN), every variable's attributes, the run attributes other than those that name a
time, a duration or a process count, and the summary and comparison tables byte for byte.
File names that hold the recording's own folder (a sweep's comparison lists its runs) are
compared with that folder replaced by ``<root>``.

    git worktree add /tmp/base <old commit>
    python benchmarks/same_outputs.py record --tree /tmp/base --out /tmp/outputs-old
    python benchmarks/same_outputs.py record --tree . --out /tmp/outputs-new
    python benchmarks/same_outputs.py compare /tmp/outputs-old /tmp/outputs-new

``record`` runs ``python -m sim`` with the tree as working directory (so that tree's ``sim`` is
imported) for each case below: the default scenario, a daily replay, a sweep of three scenarios,
a zarr run, and a zarr run on a local Dask cluster.  ``--paths`` scales them (default 3,000).
Exit status 0 when every output agrees, 1 otherwise.  For a numeric variable that differs,
``compare`` prints the largest absolute and relative difference and the share of values that
differ (to report a change that is meant to move results only within a tolerance).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import xarray as xr

#: name -> (multirun?, overrides); "{paths}" is replaced by the path count.
CASES = {
    "default": (False, ["sampler.paths={paths}"]),
    "replay_daily": (False, ["scenario=replay_2025_12", "sampler.paths={paths}",
                             "sampler.chunk_paths=1024"]),
    "sweep": (True, ["scenario=baseline,hawkish_boj,spread_compression", "sampler.paths={paths}",
                     "sampler.chunk_paths=1024"]),
    "zarr": (False, ["sampler.paths={paths}", "sampler.chunk_paths=1024", "output.format=zarr"]),
    "dask_zarr": (False, ["sampler.paths={paths}", "sampler.chunk_paths=512", "output.format=zarr",
                          "sampler.scheduler=local", "sampler.workers=2"]),
}
#: Run attributes that legitimately differ between two runs of the same config.
VOLATILE_ATTRS = {"history", "kernel_seconds", "startup_seconds", "threads", "workers", "versions"}
TABLES = ("summary.csv", "summary.md", "observations.md", "comparison.csv", "comparison.md",
          "differences.csv")


def record(tree: Path, out: Path, paths: int, cases: list[str]) -> None:
    env = dict(os.environ, PYTHONHASHSEED="0")
    for name in cases:
        multirun, overrides = CASES[name]
        target = (out / name).resolve()
        args = [o.format(paths=paths) for o in overrides] + ["output.plots=false",
                                                              "output.progress=false"]
        where = f"hydra.sweep.dir={target}" if multirun else f"hydra.run.dir={target}"
        cmd = [sys.executable, "-m", "sim"] + (["-m"] if multirun else []) + [where] + args
        print(f"{name}: {' '.join(cmd[1:])}", flush=True)
        done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"{name} failed in {tree}:\n{done.stderr[-3000:]}")


def _open(path: Path, root: Path) -> xr.Dataset:
    """A result set, with the recording's folder in file names replaced by ``<root>``."""
    if path.is_dir():
        ds = xr.open_zarr(path).load()
    else:
        with xr.open_dataset(path, engine="h5netcdf") as f:
            ds = f.load()
    for name, var in ds.variables.items():
        if var.dtype.kind in "OU":
            ds[name] = var.copy(data=np.vectorize(
                lambda v: v.replace(str(root.resolve()), "<root>") if isinstance(v, str) else v,
                otypes=[var.dtype])(var.values))
    return ds


def _same_values(a: xr.Variable, b: xr.Variable) -> bool:
    if a.dims != b.dims or a.dtype != b.dtype or a.shape != b.shape:
        return False
    x, y = np.asarray(a.values), np.asarray(b.values)
    if x.dtype.kind in "fc":
        return bool(np.array_equal(x, y, equal_nan=True))
    if x.dtype.kind == "M":
        return bool(np.array_equal(x.view(np.int64), y.view(np.int64)))
    return bool(np.array_equal(x, y))


def _largest(a: xr.Variable, b: xr.Variable) -> str:
    """The largest absolute and relative difference of two numeric variables of one shape."""
    x, y = np.asarray(a.values), np.asarray(b.values)
    if x.shape != y.shape or x.dtype.kind not in "fiu" or y.dtype.kind not in "fiu":
        return ""
    x, y = x.astype(float), y.astype(float)
    both = np.isfinite(x) & np.isfinite(y)
    diff = np.abs(x - y)[both]
    if diff.size == 0:
        return ""
    rel = diff / np.maximum(np.abs(x[both]), 1e-300)
    share = np.count_nonzero(diff) / diff.size
    return (f" (largest abs. difference {diff.max():.3g}, rel. {rel.max():.3g}; "
            f"{share:.2%} of values differ)")


def compare_datasets(a: xr.Dataset, b: xr.Dataset) -> list[str]:
    problems = []
    if set(a.variables) != set(b.variables):
        problems.append(f"variables differ: {sorted(set(a.variables) ^ set(b.variables))}")
    for name in sorted(set(a.variables) & set(b.variables)):
        va, vb = a.variables[name], b.variables[name]
        if not _same_values(va, vb):
            problems.append(f"{name}: values, dims or dtype differ{_largest(va, vb)}")
        if dict(va.attrs) != dict(vb.attrs):
            problems.append(f"{name}: attributes differ")
    keys = (set(a.attrs) | set(b.attrs)) - VOLATILE_ATTRS
    for key in sorted(keys):
        if a.attrs.get(key) != b.attrs.get(key):
            problems.append(f"attribute {key} differs")
    return problems


def compare(old: Path, new: Path) -> int:
    files = sorted(p.relative_to(old) for pattern in ("**/*.nc", "**/*.zarr")
                   for p in old.glob(pattern))
    tables = sorted(p.relative_to(old) for t in TABLES for p in old.glob(f"**/{t}"))
    failures = 0
    for rel in files:
        if not (new / rel).exists():
            print(f"MISSING {rel}")
            failures += 1
            continue
        a, b = _open(old / rel, old), _open(new / rel, new)
        problems = compare_datasets(a, b)
        n_vars = len(a.variables)
        print(f"{'same' if not problems else 'DIFFERENT'}  {rel}  ({n_vars} variables)")
        for p in problems:
            print(f"    {p}")
        failures += bool(problems)
    for rel in tables:
        if not (new / rel).exists():
            print(f"MISSING {rel}")
            failures += 1
            continue
        same = (old / rel).read_bytes() == (new / rel).read_bytes()
        print(f"{'same' if same else 'DIFFERENT'}  {rel}")
        failures += not same
    if not files:
        print(f"no results found under {old}")
        return 1
    print(f"{len(files)} result sets and {len(tables)} tables compared, {failures} differ")
    return 1 if failures else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="run the cases in a source tree")
    rec.add_argument("--tree", type=Path, default=Path("."), help="source tree to run in")
    rec.add_argument("--out", type=Path, required=True, help="folder for the outputs")
    rec.add_argument("--paths", type=int, default=3000)
    rec.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    cmp = sub.add_parser("compare", help="compare two recordings")
    cmp.add_argument("old", type=Path)
    cmp.add_argument("new", type=Path)
    args = ap.parse_args()
    if args.command == "record":
        record(args.tree.resolve(), args.out, args.paths, args.cases)
    else:
        sys.exit(compare(args.old, args.new))


if __name__ == "__main__":
    main()
