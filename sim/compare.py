"""Compare runs: one Dataset with a ``variant`` dimension, tables, paired differences, plots.

``python -m sim.compare RUN_OR_SWEEP_DIR [...] [--baseline NAME] [--out DIR]``

Variants run with the same seed, path count and time grid share their random shocks (common
random numbers), so the difference of an outcome between two variants is computed path by
path and its standard error is that of the paired differences, usually far smaller than the
standard error of two independent estimates.
"""
from __future__ import annotations

import datetime as _dt
import io
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from sim.config import Range
from sim.errors import prog, run_command
from sim.io import OutputSet, atomic_write_text, merge_into
from sim.pipeline import FAILED_FILE, RESULTS_FILE, ZARR_STORE
from sim.results import open_results, write_netcdf
from sim.summary import mean_se, probability_se, quantile_se
from sim.validate import ArgumentParser, ConfigError, check_arg

#: Per-path variables carried into the comparison.
PATH_VARS = ("cum_unwind", "cum_repatriation", "hedge_yen_buying", "largest_yen_appreciation",
             "peak_weekly_unwind", "usdjpy_end", "spread_end", "amplification_ratio")
CLASS_VARS = ("unwind_by_investor", "repatriation_by_investor")
TIME_VARS = ("unwind_quantiles", "repatriation_quantiles", "usdjpy_quantiles", "boj_rate_quantiles",
             "fed_rate_quantiles", "spread_quantiles")
#: Overrides that do not change a run's results, left out of variant names.
QUIET_KEYS = ("output.", "sampler.threads", "sampler.chunk_paths", "hydra")
Z95 = 1.959963984540054
THRESHOLD = Range(-100_000.0, 100_000.0)  # USD bn


class CompareError(ValueError):
    """Inputs that cannot be compared: missing, unreadable, foreign or mismatched files."""


@dataclass
class Run:
    name: str
    path: Path
    ds: xr.Dataset


def find_results(target: Path) -> list[Path]:
    """Results files named by ``target``: a results file, a run directory or a sweep directory."""
    if not target.exists():
        raise CompareError(f"{target}: no such file or directory")
    if target.is_file() or target.name == ZARR_STORE:
        return [target]
    for name in (RESULTS_FILE, ZARR_STORE):
        if (target / name).exists():
            return [target / name]
    found = sorted(p for name in (RESULTS_FILE, ZARR_STORE) for p in target.glob(f"*/{name}"))
    if not found:
        raise CompareError(f"{target}: neither a run directory (with {RESULTS_FILE}) nor a sweep "
                           f"directory (with runs holding {RESULTS_FILE})")
    return found


def failed_runs(targets: list[Path]) -> list[tuple[Path, str]]:
    """Runs of the given sweep directories that left a failure marker instead of results."""
    out = []
    for target in targets:
        if target.is_dir():
            for marker in sorted(target.glob(f"*/{FAILED_FILE}")):
                out.append((marker.parent, marker.read_text().strip()))
    return out


def _overrides(results: Path) -> list[str]:
    """The command-line overrides of the run that wrote ``results`` (empty if unknown)."""
    path = results.parent / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    try:
        items = yaml.safe_load(path.read_text()) or []
    except yaml.YAMLError:
        return []
    return [str(i) for i in items if not str(i).startswith(QUIET_KEYS)]


def load_run(results: Path) -> Run:
    try:
        ds = open_results(results)
    except Exception as err:  # h5py, netCDF and format errors all mean "not readable"
        raise CompareError(f"{results}: not a readable netCDF file ({type(err).__name__})") from None
    missing = [v for v in (*PATH_VARS, *CLASS_VARS, *TIME_VARS) if v not in ds]
    if missing or "seed" not in ds.attrs:
        raise CompareError(f"{results}: not a results file of this simulator "
                           f"(missing {', '.join(missing) or 'the seed attribute'})")
    return Run(str(ds.attrs.get("scenario", results.parent.name)), results, ds)


def load_runs(targets: list[Path]) -> list[Run]:
    """Load every run; name each by the overrides that set it apart from the others."""
    runs = [load_run(p) for t in targets for p in find_results(Path(t))]
    overrides = [_overrides(r.path) for r in runs]
    shared = set.intersection(*(set(o) for o in overrides)) if len(runs) > 1 else set()
    for run, items in zip(runs, overrides):
        distinct = [i for i in items if i not in shared]
        if distinct:
            run.name = " ".join(distinct)
    seen: dict[str, int] = {}
    for run in runs:  # make names unique, keeping the first as it is
        count = seen.get(run.name, 0)
        seen[run.name] = count + 1
        if count:
            run.name = f"{run.name} ({count + 1})"
    return runs


def check_comparable(runs: list[Run]) -> bool:
    """Raise CompareError if the runs cannot share a variant axis; return whether they are paired."""
    if len(runs) < 1:
        raise CompareError("nothing to compare")
    first = runs[0].ds
    for run in runs[1:]:
        ds = run.ds
        if ds.sizes["path"] != first.sizes["path"]:
            raise CompareError(f"cannot compare '{run.name}' ({ds.sizes['path']} paths) with "
                               f"'{runs[0].name}' ({first.sizes['path']} paths): path counts differ")
        if ds.sizes["time"] != first.sizes["time"] or not np.array_equal(ds["time"], first["time"]):
            raise CompareError(f"cannot compare '{run.name}' with '{runs[0].name}': their time grids "
                               "differ (snapshot date, horizon or step)")
        if not np.array_equal(ds["quantile"], first["quantile"]):
            raise CompareError(f"cannot compare '{run.name}' with '{runs[0].name}': their output "
                               "quantiles differ")
    # Paths share their shocks only if the seed and the block layout of the streams agree.
    streams = {(int(r.ds.attrs["seed"]), _block_size(r.ds)) for r in runs}
    return len(streams) == 1


def _block_size(ds: xr.Dataset):
    try:
        return yaml.safe_load(ds.attrs.get("config", ""))["sampler"]["block_size"]
    except (yaml.YAMLError, KeyError, TypeError):
        return None


def combine(runs: list[Run], baseline: str, paired: bool) -> xr.Dataset:
    """One Dataset with a ``variant`` dimension (classes missing from a variant count as zero)."""
    parts = []
    for run in runs:
        part = run.ds[[*PATH_VARS, *CLASS_VARS, *TIME_VARS]].drop_vars("investor_label")
        parts.append(part.expand_dims(variant=[run.name]))
    ds = xr.concat(parts, dim="variant", join="outer", fill_value=0.0, combine_attrs="drop")
    for name in (*PATH_VARS, *CLASS_VARS, *TIME_VARS):
        ds[name].attrs = runs[0].ds[name].attrs
    ds["variant"].attrs["long_name"] = "Config variant"
    ds["source_file"] = ("variant", np.array([str(r.path) for r in runs], dtype=object),
                         {"long_name": "Results file of the variant"})
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    ds.attrs = {
        "Conventions": "CF-1.8",
        "title": "Comparison of yen carry-trade unwind runs",
        "source": runs[0].ds.attrs.get("source", ""),
        "baseline": baseline,
        "common_random_numbers": "yes" if paired else "no (seeds or block sizes differ)",
        "seed": int(runs[0].ds.attrs["seed"]),
        # Shared by every variant (check_comparable): read by the plots' titles.
        **{k: runs[0].ds.attrs[k] for k in ("snapshot_date", "step", "horizon_months")
           if k in runs[0].ds.attrs},
        "history": f"{stamp}: python -m sim.compare " + " ".join(str(r.path) for r in runs),
    }
    return ds


@dataclass
class Difference:
    variant: str
    metric: str
    baseline_value: float
    difference: float
    se_paired: float
    se_unpaired: float

    @property
    def ci(self) -> tuple[float, float]:
        se = self.se_paired if not math.isnan(self.se_paired) else self.se_unpaired
        return self.difference - Z95 * se, self.difference + Z95 * se


def _metrics(ds: xr.Dataset, variant: str, thresholds) -> dict[str, np.ndarray]:
    """Per-path quantities whose means are the compared statistics."""
    v = ds.sel(variant=variant)
    unwind = v["cum_unwind"].values
    out = {"mean cumulative unwind (USD bn)": unwind,
           "mean repatriation (USD bn)": v["cum_repatriation"].values,
           "mean largest yen rally (%)": v["largest_yen_appreciation"].values}
    for level in thresholds:
        out[f"P(unwind > USD {level:g}bn)"] = (unwind > level).astype(float)
    return out


def paired_differences(ds: xr.Dataset, baseline: str, paired: bool,
                       thresholds=(500.0, 1000.0)) -> list[Difference]:
    base = _metrics(ds, baseline, thresholds)
    rows = []
    for variant in ds["variant"].values:
        if variant == baseline:
            continue
        other = _metrics(ds, variant, thresholds)
        for metric, x in other.items():
            b = base[metric]
            n = len(x)
            diff = x - b
            se_p = float(diff.std(ddof=1) / math.sqrt(n)) if paired else float("nan")
            se_u = math.sqrt(x.var(ddof=1) / n + b.var(ddof=1) / n)
            rows.append(Difference(str(variant), metric, float(b.mean()), float(diff.mean()), se_p, se_u))
    return rows


def variant_table(ds: xr.Dataset, thresholds=(500.0, 1000.0)) -> list[dict]:
    rows = []
    for variant in ds["variant"].values:
        v = ds.sel(variant=variant)
        unwind = v["cum_unwind"].values
        row = {"variant": str(variant)}
        for label, p in (("median", 0.5), ("90%", 0.9), ("99%", 0.99)):
            row[f"unwind {label}"] = quantile_se(unwind, p)
        row["unwind mean"] = mean_se(unwind)
        for level in thresholds:
            row[f"P(>{level:g}bn)"] = probability_se(unwind > level)
        row["repatriation median"] = quantile_se(v["cum_repatriation"].values, 0.5)
        row["repatriation mean"] = mean_se(v["cum_repatriation"].values)
        row["largest yen rally 99% (%)"] = quantile_se(v["largest_yen_appreciation"].values, 0.99)
        rows.append(row)
    return rows


def _cell(key: str, value: tuple[float, float]) -> str:
    x, se = value
    if key.startswith("P("):
        return f"{100 * x:.2f}% ± {100 * se:.2f}"
    return f"{x:,.0f} ± {se:,.1f}" if abs(x) >= 100 else f"{x:,.1f} ± {se:,.1f}"


def format_tables(table: list[dict], diffs: list[Difference], baseline: str, paired: bool) -> str:
    keys = [k for k in table[0] if k != "variant"]
    lines = ["| variant | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for row in table:
        lines.append(f"| {row['variant']} | " + " | ".join(_cell(k, row[k]) for k in keys) + " |")
    lines += ["", f"Differences against the baseline '{baseline}' "
              + ("(paired over common random numbers)" if paired else "(unpaired: seeds or block sizes differ)"),
              "", "| variant | metric | baseline | difference | 95% CI | SE paired | SE unpaired |",
              "|---|---|---|---|---|---|---|"]
    for d in diffs:
        scale = 100.0 if d.metric.startswith("P(") else 1.0
        lo, hi = d.ci
        lines.append(f"| {d.variant} | {d.metric} | {scale * d.baseline_value:,.2f} | "
                     f"{scale * d.difference:+,.2f} | [{scale * lo:+,.2f}, {scale * hi:+,.2f}] | "
                     f"{scale * d.se_paired:,.3f} | {scale * d.se_unpaired:,.3f} |")
    return "\n".join(lines) + "\n"


def _csv(table: list[dict], diffs: list[Difference]) -> tuple[str, str]:
    buf = io.StringIO()
    keys = [k for k in table[0] if k != "variant"]
    buf.write("variant," + ",".join(f"{k},{k} se" for k in keys) + "\n")
    for row in table:
        buf.write(f"\"{row['variant']}\"," + ",".join(f"{row[k][0]:.6g},{row[k][1]:.6g}" for k in keys) + "\n")
    dbuf = io.StringIO()
    dbuf.write("variant,metric,baseline,difference,ci_low,ci_high,se_paired,se_unpaired\n")
    for d in diffs:
        lo, hi = d.ci
        dbuf.write(f"\"{d.variant}\",\"{d.metric}\",{d.baseline_value:.6g},{d.difference:.6g},"
                   f"{lo:.6g},{hi:.6g},{d.se_paired:.6g},{d.se_unpaired:.6g}\n")
    return buf.getvalue(), dbuf.getvalue()


def compare(targets: list[Path], out_dir: Path, baseline: str | None = None,
            thresholds=(500.0, 1000.0)) -> str:
    """Compare the runs under ``targets``; write the files into ``out_dir``; return the tables."""
    from sim.plots import plot_exceedance, plot_variant_distributions

    runs = load_runs(targets)
    paired = check_comparable(runs)
    names = [r.name for r in runs]
    if baseline is None:
        baseline = names[0]
    elif baseline not in names:
        raise CompareError(f"--baseline {baseline!r}: not one of the variants: {', '.join(names)}")
    ds = combine(runs, baseline, paired)
    table = variant_table(ds, thresholds)
    diffs = paired_differences(ds, baseline, paired, thresholds)
    text = format_tables(table, diffs, baseline, paired)
    out_dir = Path(out_dir)
    # The files appear together: in a new folder by one rename, in a sweep folder by renames
    # once all are written.
    target = merge_into(out_dir) if out_dir.is_dir() else OutputSet(out_dir)
    with target.writing() as staging:
        write_netcdf(ds, staging / "comparison.nc")
        atomic_write_text(staging / "comparison.md", text)
        table_csv, diff_csv = _csv(table, diffs)
        atomic_write_text(staging / "comparison.csv", table_csv)
        atomic_write_text(staging / "differences.csv", diff_csv)
        plot_variant_distributions(ds, staging / "distributions_by_variant.png")
        plot_exceedance(ds, staging / "exceedance.png")
    return text


def default_out_dir(targets: list[Path]) -> Path:
    if (len(targets) == 1 and targets[0].is_dir() and targets[0].name != ZARR_STORE
            and not any((targets[0] / name).exists() for name in (RESULTS_FILE, ZARR_STORE))):
        return targets[0]
    stamp = _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    return Path("outputs") / "comparisons" / stamp


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog=prog("python -m sim.compare"),
        description="Compare runs or sweeps of the simulator (common random numbers when seeds match).")
    parser.add_argument("targets", nargs="+", type=Path, help="run directories, sweep directories or results.nc files")
    parser.add_argument("--baseline", help="variant to difference against (default: the first)")
    parser.add_argument("--out", type=Path, help="output directory (default: the sweep directory, "
                        "or outputs/comparisons/<time>)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[500.0, 1000.0],
                        help="unwind levels in USD bn for exceedance probabilities")
    args = parser.parse_intermixed_args(argv)
    out = args.out or default_out_dir(args.targets)
    try:
        for i, level in enumerate(args.thresholds):
            check_arg(f"--thresholds[{i}]", level, THRESHOLD, "USD bn")
        if len(set(args.thresholds)) != len(args.thresholds):
            raise ConfigError("--thresholds", args.thresholds, "different levels")
        if out.exists() and not out.is_dir():
            raise CompareError(f"--out {out}: is a file, not a folder")
        text = compare(args.targets, out, args.baseline, tuple(args.thresholds))
    except (CompareError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(text)
    failed = failed_runs(args.targets)
    for run_dir, message in failed:
        print(f"FAILED: {run_dir.name}: {message}")
    print(f"Comparison written to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_command(main, sys.argv[1:]))
