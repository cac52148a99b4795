"""``carrysim calibrate`` (``python -m sim.calibrate``): fit the declared parameters by the
simulated method of moments and write the fitted config (docs/model.md, section 16).

``carrysim calibrate data.dir=DIR [smm=quick] [overrides]``.  The fit starts from the judgement
values (``calibration=none``; ``calibration=fitted`` starts from the last fit), computes the
data moments over ``model.calibration_window``, fits the parameters of ``smm.parameters`` block
by block and then jointly (sim.calibration), and writes, in its run folder
(``outputs/calibration/<time>_<smm.name>/``): ``calibration.md`` (the report: J, every target's
data and model values with SEs and t-ratios, the parameters, the Capital Economics check),
``calibration.csv`` (one row per target), ``parameters.csv``, ``checks.csv`` and
``fitted.yaml``.  With ``smm.write=auto`` (the default) the fitted values also replace
``configs/calibration/fitted.yaml`` when the command runs from a repository checkout; an
installed package is never written to (the command says where the file is instead);
``smm.write=PATH`` writes them to PATH, ``smm.write=null`` nowhere else.
"""
from __future__ import annotations

import copy
import datetime as _dt
import sys
import time
from pathlib import Path

from sim.validate import ConfigError

_FOLDER: list = [None]


def _checkout_fitted() -> Path | None:
    """``configs/calibration/fitted.yaml`` of the repository checkout the config tree belongs to,
    or None when the configs are those of an installed package."""
    from sim.compose import CONFIG_DIR

    root = CONFIG_DIR.parent
    if CONFIG_DIR.name == "configs" and (root / "pyproject.toml").is_file() and (root / "sim").is_dir() \
            and "site-packages" not in CONFIG_DIR.parts:
        return CONFIG_DIR / "calibration" / "fitted.yaml"
    return None


def write_target(cfg) -> tuple[Path | None, str]:
    """(where the fitted values go besides the run folder, a note saying so)."""
    w = cfg.smm.write
    if w is None or str(w).lower() in ("null", "none", ""):
        return None, "smm.write=null: the fitted values are only in the run folder"
    if str(w) == "auto":
        target = _checkout_fitted()
        if target is None:
            return None, ("an installed package: its configs are not modified; the fitted values "
                          "are in the run folder's fitted.yaml (smm.write=PATH writes them elsewhere)")
        return target, f"the default config's calibration: {target}"
    path = Path(str(w))
    if path.suffix != ".yaml":
        raise ConfigError("smm.write", str(w), "auto, null or a path ending in .yaml")
    return path, f"smm.write: {path}"


def check(cfg) -> None:
    from sim import calibration as C
    from sim.validate import validate

    validate(cfg)
    C.calibration_window(cfg)
    C.parameters_of(cfg)
    write_target(cfg)
    unknown = [b for b in cfg.smm.blocks if b not in C.BLOCKS]
    if unknown:
        raise ConfigError("smm.blocks", unknown[0], "blocks among " + ", ".join(C.BLOCKS))
    if cfg.sampler.horizon_months < 24:
        raise ConfigError("sampler.horizon_months", cfg.sampler.horizon_months,
                          "at least 24 months (the largest rally within 24 months needs whole windows)")
    if cfg.sampler.step != "weekly":
        raise ConfigError("sampler.step", str(cfg.sampler.step),
                          "weekly (the moments are those of weekly Friday closes)")
    if cfg.smm.paths < 2 * cfg.smm.mc_groups:
        raise ConfigError("smm.paths", cfg.smm.paths,
                          f"at least 2 x smm.mc_groups ({2 * cfg.smm.mc_groups})")


def _compose(overrides: list[str], group: str):
    """The config of ``carrysim calibrate`` with ``overrides`` and the group choice ``group``
    (e.g. ``snapshot=data``) in place of the user's choice of that group."""
    from sim.compose import load_config

    name = group.split("=", 1)[0]
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != name]
    return load_config([*kept, group], config_name="calibrate")


def run_calibration(cfg, overrides: list[str], out_dir: Path, log=print) -> dict:
    """The fit, the checks and the files in ``out_dir``; returns what it wrote and measured."""
    import pandas as pd

    from sim import calibration as C
    from sim.io import atomic_target, atomic_write_text
    from sim.marketdata import MarketData

    check(cfg)
    began = time.perf_counter()
    params = C.parameters_of(cfg)
    md = MarketData(cfg.data.dir)
    user = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
    moments_cfg = _compose(user, "snapshot=data")
    base = copy.deepcopy(cfg)
    base.sampler.paths = cfg.smm.flow_paths
    flow_overrides = [o for o in user if not o.lstrip("+~").startswith("smm")]
    if not any(o.startswith("calibration=") for o in flow_overrides):
        flow_overrides.insert(0, "calibration=none")
    cases = C.Cases(base, flow_overrides)
    data = C.data_targets(cfg, md)
    smm = C.SMM(moments_cfg, cases, md, params, data, log=log)
    log(f"Calibration window {data.start} to {data.end}: {len(data.names)} moments, "
        f"{len(smm.facts)} flow facts; {len(smm.days)} origins x {cfg.smm.paths} paths per "
        f"evaluation, seed {cfg.sampler.seed} + origin (the same shocks every evaluation); "
        f"{len(params)} parameters; weights {cfg.smm.weights} (bootstrap correlation matrix's "
        f"condition number {data.condition():.0f})")
    stages = smm.fit()
    fitted = C.round_values(smm.current, params)
    smm.current = dict(fitted)
    final = smm.evaluate(fitted)
    if final.failed:  # nothing is written: a fit the model cannot simulate is no fit
        from sim.engine import SimulationError

        raise SimulationError(f"at the fitted values: {final.failed}")
    j = smm.j_value(final)
    log("the flows-off counterfactual at the fitted values")
    rows = C.target_rows(smm, final, C.flows_off(smm, fitted))
    log("standard errors: one evaluation per parameter")
    prows = C.parameter_rows(smm, fitted, C.parameter_se(smm, fitted))
    check_cases = cases.with_values(fitted)
    check_cases.base.sampler.paths = cfg.smm.check_paths
    crows = C.check_rows(check_cases)
    seconds = time.perf_counter() - began
    reference = C.j_reference(smm)
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    command = " ".join(["carrysim calibrate", *overrides])
    header = [
        f"# Calibration by simulated method of moments, {stamp}",
        "",
        f"`{command}`",
        "",
        f"Window {data.start} to {data.end} (model.calibration_window). Data: FRED files in "
        f"{md.dir}; SEs from {cfg.smm.bootstrap} moving-block bootstrap replications, blocks of "
        f"{cfg.smm.block_months} months. Model: {len(smm.days)} origins "
        f"({str(smm.days[0])} to {str(smm.days[-1])}, every {cfg.smm.step_months} months), "
        f"snapshot from the data at each, {cfg.smm.paths} paths x 24 months per origin, seed "
        f"{cfg.sampler.seed} + origin number at every evaluation (common random numbers); "
        f"MC SEs from {cfg.smm.mc_groups} groups of paths. Flow facts from data snapshots of "
        f"their episodes (sim.flowfacts), {cfg.smm.flow_paths} paths; checks from the default "
        f"snapshot ({cfg.snapshot.name}), {cfg.smm.check_paths} paths.",
        f"Weights: {cfg.smm.weights} (condition number of the moments' bootstrap correlation "
        f"matrix: {data.condition():.0f}). {smm.count} evaluations, "
        f"{stages[0].seconds / max(stages[0].evaluations, 1) if stages else 0:.1f}s each in the "
        f"first stage; {seconds / 60:.1f} minutes in all.",
    ]
    text = C.format_report(header, rows, prows, stages, crows, j, reference)
    where, note = write_target(cfg)
    moments = ", ".join(smm.target_names)
    yaml_header = (f"Written by `{command}` on {stamp} (docs/model.md, section 16).\n"
                   f"Simulated method of moments over {data.start} to {data.end}: J = {j:.2f} over "
                   f"{len(rows)} targets,\n{len(params)} parameters; targets: {moments}.\n"
                   f"calibration=none runs the judgement values instead.")
    body = C.fitted_yaml(cfg, fitted, yaml_header, window=(data.start, data.end))
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "calibration.md", text)
    for name, table in (("calibration.csv", rows), ("parameters.csv", prows), ("checks.csv", crows)):
        with atomic_target(out_dir / name) as tmp:
            pd.DataFrame(table).to_csv(tmp, index=False, float_format="%.6g")
    atomic_write_text(out_dir / "fitted.yaml", body)
    if where is not None:
        where.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(where, body)
    return {"text": text, "rows": rows, "parameters": prows, "checks": crows, "j": j,
            "fitted": fitted, "stages": stages, "where": where, "note": note,
            "evaluations": smm.count, "seconds": seconds, "smm": smm,
            "reference": reference}


def _app(cfg) -> None:
    from hydra.core.hydra_config import HydraConfig

    from sim.compose import to_config

    out_dir = Path(HydraConfig.get().runtime.output_dir)
    overrides = list(HydraConfig.get().overrides.task)
    try:
        config = to_config(cfg)
        result = run_calibration(config, overrides, out_dir,
                                 log=lambda s: print(s, file=sys.stderr, flush=True))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(result["text"])
    print(f"Fitted values: {result['note']}")
    print(f"Report written to {_FOLDER[0] or out_dir}: calibration.md, calibration.csv, "
          "parameters.csv, checks.csv, fitted.yaml")


def main() -> None:
    from sim.cli import command_main

    command_main("calibrate", _app, "calibration",
                 reserve=(Path("outputs") / "calibration", "smm", _FOLDER))


if __name__ == "__main__":
    main()
