"""Fit the behavioural parameters to the calibration targets and write the fitted config.

``python -m sim.calibrate [--paths 2000] [--check-paths 20000] [--write FILE | --no-write]
[--out DIR] [OVERRIDE ...]``

The fit starts from the judgement values (``calibration=none`` plus the overrides) and uses
``--paths`` paths per evaluation under one seed.  The fitted values are rounded, written to
``configs/calibration/fitted.yaml`` (the default config uses it), and checked with
``--check-paths`` paths under another seed, so the reported Monte Carlo errors are out of sample.
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import sys
from pathlib import Path

from sim import calibration as C
from sim.compose import CONFIG_DIR, load_config
from sim.errors import prog, run_command
from sim.io import OutputSet, atomic_write_text
from sim.config import Range
from sim.validate import ArgumentParser, ConfigError, check_arg, validate

FITTED = CONFIG_DIR / "calibration" / "fitted.yaml"
PATHS = Range(100, 100_000_000, integer=True)
EVALUATIONS = Range(1, 100_000, integer=True)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=prog("python -m sim.calibrate"), description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the starting config")
    parser.add_argument("--paths", type=int, default=2000, help="paths per fit evaluation")
    parser.add_argument("--check-paths", type=int, default=20000, help="paths of the final check")
    parser.add_argument("--max-evaluations", type=int, default=400)
    parser.add_argument("--write", type=Path, default=FITTED, help="fitted config to write")
    parser.add_argument("--no-write", action="store_true", help="report only")
    parser.add_argument("--out", type=Path, help="folder of the report")
    args = parser.parse_intermixed_args(argv)
    try:
        check_arg("--paths", args.paths, PATHS)
        check_arg("--check-paths", args.check_paths, PATHS)
        check_arg("--max-evaluations", args.max_evaluations, EVALUATIONS)
        if not args.no_write and args.write.suffix != ".yaml":
            raise ConfigError("--write", str(args.write), "a .yaml file")
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = args.out or Path("outputs") / "calibration" / _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    common = ["calibration=none", *args.overrides, "output.progress=false"]
    try:
        base = load_config([*common, f"sampler.paths={args.paths}"])
        validate(base)
        spread = load_config([*common, f"sampler.paths={args.paths}", "scenario=spread_compression"])
        cases = C.make_cases(base, spread)
        print(f"Fitting {len(C.PARAMETERS)} parameters to "
              f"{sum(t.fitted for t in C.TARGETS)} targets with {args.paths:,} paths per evaluation ...")
        result = C.fit(cases, max_evaluations=args.max_evaluations)
        result.values = {k: round(v, 4) for k, v in result.values.items()}
        seed = base.sampler.seed + 1
        check = C.make_cases(*(load_config([*common, f"sampler.paths={args.check_paths}",
                                            f"sampler.seed={seed}", *extra])
                               for extra in ([], ["scenario=spread_compression"])))
        got = C.measure(check.map(lambda c: C.with_values(c, result.values)))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = C.report_rows(got)
    stamp = _dt.date.today().isoformat()
    command = " ".join(["python -m sim.calibrate", *(argv if argv is not None else sys.argv[1:])])
    header = (f"Calibration of {stamp} (`{command}`): fitted with {args.paths:,} paths, seed "
              f"{base.sampler.seed}; checked with {args.check_paths:,} paths, seed {seed}.")
    text = C.format_report(rows, result, header)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    with OutputSet(out).writing() as staging:
        atomic_write_text(staging / "calibration.md", text)
        atomic_write_text(staging / "calibration.csv", buf.getvalue())
    print(text)
    if not args.no_write:
        note = (f"Written by `{command}` on {stamp}: fitted values of the calibration\n"
                f"(docs/model.md, \"Calibration\"); the judgement values are in investors/default.yaml\n"
                f"and model/default.yaml.  Targets, checked with {args.check_paths:,} paths (value ± MC SE):\n"
                + "\n".join(f"  {r['target']}: {r['model']:,.4g} ± {r['se']:.2g} {r['units']} "
                             f"(range {r['range']})" for r in rows))
        atomic_write_text(args.write, C.fitted_yaml(base, result.values, note))
        print(f"Fitted config written to {args.write}")
    print(f"Report written to {out}")
    missed = [r["target"] for r in rows if not r["inside"]]
    if missed:
        print(f"warning: outside their ranges: {', '.join(missed)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main, sys.argv[1:]))
