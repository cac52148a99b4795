"""The command line: ``carrysim SUBCOMMAND ...``, also ``python -m sim ...``.

``carrysim run [overrides]`` (or ``python -m sim [overrides]``) simulates a scenario through
Hydra (``-m`` sweeps); the other subcommands are listed in :data:`SUBCOMMANDS`, each also
runnable as ``python -m <its module>``.  Every subcommand reports a user's mistake, a numerical
failure, an output that cannot be written and an interruption the same way (:mod:`sim.errors`).

Runs never share a folder: a run's folder is named by time, scenario and a short hash of its
overrides, reserved under a lock (with ``-2``, ``-3`` ... when taken), and its files are written
into a hidden staging folder that is renamed into place only when all of them are complete.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import importlib
import importlib.util
import logging
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from sim.compose import CONFIG_DIR, check_overrides, load_config, to_config
from sim.config import register_configs
from sim import errors
from sim.errors import EXIT_FAILED_RUNS, UserError, classify, run_command
from sim.io import FolderLock, OutputSet, atomic_write_text, has_results, reserve_folder


@dataclass(frozen=True)
class Subcommand:
    module: str       # runs as ``python -m <module>``; provides ``main(argv) -> int``
    summary: str      # one line in ``carrysim --help``


#: The subcommands of ``carrysim``.  Adding one is one line here; a module not installed (yet)
#: is left out of the help and refused.
SUBCOMMANDS: dict[str, Subcommand] = {
    "run": Subcommand("sim.cli", "simulate a scenario; -m sweeps over values (Hydra overrides)"),
    "compare": Subcommand("sim.compare", "compare runs or sweeps: one Dataset, paired differences"),
    "calibrate": Subcommand("sim.calibrate", "fit the parameters to data: simulated method of moments"),
    "sensitivity": Subcommand("sim.sensitivity", "one-at-a-time sensitivities and a tornado chart"),
    "stress": Subcommand("sim.reverse_stress", "reverse stress test: where a tail probability crosses"),
    "backtest": Subcommand("sim.backtest", "score forecasts from rolling origins against the data"),
    "moments": Subcommand("sim.moments", "stylised facts: data moments (block bootstrap) against the model's"),
    "fetch": Subcommand("sim.fetch", "download the FRED series into the local data cache"),
}

RUNS_DIR = Path("outputs") / "runs"
SWEEPS_DIR = Path("outputs") / "sweeps"
#: Hydra flags that print something and run nothing: passed to Hydra untouched.
INFO_FLAGS = ("--cfg", "-c", "--info", "-i", "--hydra-help", "--shell-completion", "-sc",
              "--resolve", "-p", "--package")
SWEEP_FLAGS = ("-m", "--multirun")
#: Overrides that do not change a run's results, left out of the hash in the folder name.
QUIET_KEYS = ("output.progress", "output.plots", "sampler.threads", "sampler.chunk_paths")


def available(name: str) -> bool:
    return importlib.util.find_spec(SUBCOMMANDS[name].module) is not None


def scenario_lines() -> list[tuple[str, str]]:
    """(name, description) of every scenario config, for the help."""
    import yaml

    out = []
    for path in sorted((CONFIG_DIR / "scenario").glob("*.yaml")):
        try:
            node = (yaml.safe_load(path.read_text()) or {}).get("scenario") or {}
        except yaml.YAMLError:
            node = {}
        out.append((path.stem, str(node.get("description", ""))))
    return out


def short_help(prog: str = "carrysim") -> str:
    # Scenario descriptions are cut to a terminal's width, never below 120 columns elsewhere.
    width = shutil.get_terminal_size((120, 40)).columns if sys.stdout.isatty() else 120
    lines = [
        f"usage: {prog} SUBCOMMAND [options] [key=value ...]",
        "",
        "Monte Carlo simulator of a yen carry-trade unwind and Japanese capital repatriation:",
        "distributions of unwind, repatriation and the yen, with Monte Carlo standard errors.",
        "",
        "subcommands (each takes --help):",
    ]
    for name, sub in SUBCOMMANDS.items():
        if available(name):
            lines.append(f"  {name:<12}{sub.summary}")
    lines += ["", "scenarios:"]
    for name, text in scenario_lines():
        room = width - 22
        lines.append(f"  {name:<20}{text if len(text) <= room else text[: room - 3] + '...'}")
    lines += ["  (scenario=NAME; scripted events, decisions and observations in configs/scenario/)"]
    lines += [
        "",
        "examples:",
        f"  {prog} run scenario=hawkish_boj sampler.paths=50000",
        f"  {prog} run -m scenario=baseline,risk_off investors.leveraged.holdings=160,500",
        "",
        "Results go to outputs/runs/<time>_<scenario>_<hash>/ (sweeps: outputs/sweeps/) below the",
        "current folder; hydra.run.dir=DIR chooses another, --overwrite replaces one on purpose.",
        f"Every config key and group: {prog} run --help-full (Hydra's help with the config).",
        "Exit status: 0 done, 1 some runs of a sweep failed, 2 a mistake in the command or",
        "config, 3 numerical failure, 4 outputs could not be written, 130 interrupted.",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# The run subcommand (Hydra)


@dataclass
class _RunState:
    """What the entry point hands to the Hydra task of a single run (same process)."""

    output: Optional[OutputSet] = None
    command: str = "python -m sim"
    error: Optional[tuple[int, str]] = None


_STATE = _RunState()
FAILED_FILE = "FAILED"


@hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")
def _app(cfg: DictConfig) -> None:
    from sim.pipeline import run_and_save

    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    overrides = list(hc.overrides.task)
    command = f"{_STATE.command} {' '.join(overrides)}".strip()
    calibration = hc.runtime.choices.get("calibration")
    if hc.mode == RunMode.MULTIRUN:
        _sweep_job(cfg, out_dir, overrides, command, calibration)
        return
    output = _STATE.output
    try:
        config = to_config(cfg)
        final = output.final if output is not None else out_dir
        report = run_and_save(config, out_dir, command=command, overrides=overrides,
                              calibration=calibration, folder=final)
        if output is not None:
            output.commit()
    except BaseException as err:
        if output is not None:
            output.discard()
        known = classify(err)
        if known is None or isinstance(err, KeyboardInterrupt):
            err._from_task = True  # type: ignore[attr-defined]  # a bug: keep its traceback
            raise
        _STATE.error = known
        return
    print(report.summary)
    print(f"Results in {final}: " + ", ".join(p.name for p in report.files))


def _sweep_job(cfg, out_dir: Path, overrides, command: str, calibration) -> None:
    """One run of a sweep: its own folder, written as a set; a failure leaves FAILED there."""
    from sim.pipeline import finished_with, run_and_save
    from sim.results import config_yaml

    output = OutputSet(out_dir, replace=True)  # a resumed sweep redoes unfinished runs in place
    try:
        config = to_config(cfg)
        if finished_with(out_dir, config_yaml(config)):
            print(f"Skipping {out_dir.name}: finished earlier with the same config")
            return
        staging = output.begin()
        report = run_and_save(config, staging, command=command, overrides=overrides,
                              calibration=calibration, folder=out_dir)
        output.commit(keep=(".hydra",))
    except Exception as err:
        output.discard()
        known = classify(err)
        message = known[1] if known else f"{type(err).__name__}: {err}"
        _record_failure(out_dir, message)
        return
    except BaseException:
        output.discard()
        raise
    print(report.summary)
    print(f"Results in {out_dir}")


def _record_failure(out_dir: Path, message: str) -> None:
    """In a sweep, note the failure in the run's folder and let the other runs go on."""
    try:
        atomic_write_text(out_dir / FAILED_FILE, message + "\n")
    except OSError:
        pass  # the folder itself cannot be written: the message below is all there is
    print(f"FAILED {out_dir.name}: {message}", file=sys.stderr)


def _stamp() -> str:
    """The time part of a new run's or sweep's folder name."""
    return _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")


def overrides_hash(overrides: list[str]) -> str:
    """Six hex digits naming a set of overrides (order and output-only keys do not matter)."""
    kept = sorted(o for o in overrides if not o.lstrip("+~").startswith(QUIET_KEYS))
    return hashlib.sha1("\n".join(kept).encode()).hexdigest()[:6]


def _value_of(args: list[str], key: str) -> Optional[str]:
    for a in args:
        if a.startswith(key + "="):
            return a.split("=", 1)[1]
    return None


def _replace(args: list[str], key: str, value: str) -> list[str]:
    return [a for a in args if not a.startswith(key + "=")] + [f"{key}={value}"]


class LaunchError(RuntimeError):
    """Hydra or a launcher failed outside any run (e.g. SLURM's tools not found)."""


def _raise_through(func):
    """Stands in for Hydra's ``run_and_report``, which prints a trimmed traceback and exits:
    errors go to the shared reporter instead, as one line."""
    try:
        return func()
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as err:
        if classify(err) is not None or getattr(err, "_from_task", False):
            raise
        raise LaunchError(f"{type(err).__name__}: {err}") from err


def _call_hydra(args: list[str]) -> None:
    import hydra._internal.utils as hydra_utils

    saved, saved_report = sys.argv, hydra_utils.run_and_report
    sys.argv = [saved[0], *args]
    hydra_utils.run_and_report = _raise_through
    try:
        _app()
    finally:
        sys.argv = saved
        hydra_utils.run_and_report = saved_report


def _full_help(args: list[str]) -> int:
    """Hydra's own help (config groups and the whole composed config), without the schemas."""
    from hydra._internal.hydra import Hydra

    original = Hydra.format_config_groups

    def without_schemas(self, predicate, compact: bool = True) -> str:
        lines = []
        for line in original(self, predicate, compact=True).splitlines():
            group, _, options = line.partition(": ")
            kept = [o for o in options.split(", ") if o and not o.endswith("_schema")]
            if kept:
                lines.append(f"{group}: {', '.join(kept)}")
        return "\n".join(lines) + "\n"

    Hydra.format_config_groups = without_schemas
    try:
        _call_hydra([a for a in args if a != "--help-full"] + ["--help"])
    finally:
        Hydra.format_config_groups = original
    return 0


def _locked_folder(user_dir: str, key: str, what: str):
    """A folder the user named, with its lock held; refused if it is a file or already locked."""
    folder = Path(user_dir)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{key}={user_dir}: is a file, not a folder")
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = FolderLock(folder)
    if not lock.acquire():
        raise UserError(f"{key}={user_dir}: another {what} is writing this folder")
    return folder, lock


def _explicit_folder(user_dir: str, overwrite: bool, key: str = "hydra.run.dir"):
    """The folder a user named for a run, locked; refused if it holds a run, unless ``overwrite``."""
    final, lock = _locked_folder(user_dir, key, "run")
    if has_results(final) and not overwrite:
        lock.release()
        raise UserError(f"{key}={user_dir}: the folder already holds a run; add "
                        "--overwrite to replace it, or choose another folder")
    return final, lock


def _begin_output(user_dir: str | None, overwrite: bool, default_folder):
    """A run's output set and its staging folder: in the folder the user named (``user_dir``)
    or in a reserved one named by ``default_folder()``; nothing is left behind if it fails."""
    if user_dir is not None:
        final, lock = _explicit_folder(user_dir, overwrite)
    else:
        final, lock = reserve_folder(default_folder())
    output = OutputSet(final, lock, replace=overwrite)
    try:
        return output, output.begin()
    except BaseException:
        output.discard()
        raise


@contextmanager
def reserved_run(args: list[str], parent: Path, name: str, overwrite: bool = False):
    """For a Hydra command other than ``run`` (e.g. the backtest): reserve its folder as a run's
    (``parent/<time>_<name>`` with a suffix if taken, or the ``hydra.run.dir`` given), yield
    ``(output set, arguments with hydra.run.dir set to the staging folder)``; the files are
    committed when the block ends normally and removed when it raises (``sys.exit`` included)."""
    output, staging = _begin_output(_value_of(args, "hydra.run.dir"), overwrite,
                                    lambda: parent / f"{_stamp()}_{name}")
    try:
        yield output, _replace(args, "hydra.run.dir", str(staging))
    except BaseException:
        output.discard()
        raise
    output.commit()


def command_main(config_name: str, app, what: str, reserve: tuple | None = None) -> None:
    """The ``main`` of a Hydra command other than ``run`` (calibrate, backtest, moments): checks
    the overrides (a mistake: one line, exit 2), then runs ``app`` under Hydra with the root
    config ``config_name``.  With ``reserve`` = (parent folder, preset group, holder) the
    command's folder is reserved like a run's (``parent/<time>_<preset>``, ``--overwrite`` as
    for ``run``), its final path put in ``holder[0]``, and its files appear only when it ends.
    Ctrl-C says that no ``what`` files were written and exits 130."""
    register_configs()
    args = sys.argv[1:]
    overwrite = "--overwrite" in args
    if reserve is not None:
        args = [a for a in args if a != "--overwrite"]
    problem = check_overrides(args, config_name=config_name)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    task = hydra.main(config_path=str(CONFIG_DIR), config_name=config_name, version_base="1.3")(app)
    try:
        if reserve is None:
            task()
            return
        parent, group, holder = reserve
        name = next((a.split("=", 1)[1] for a in args if a.startswith(f"{group}=")), "default")
        with reserved_run(args, parent, name, overwrite) as (output, hydra_args):
            holder[0] = output.final
            saved, sys.argv = sys.argv, [sys.argv[0], *hydra_args]
            try:
                task()
            finally:
                sys.argv = saved
    except KeyboardInterrupt:
        print(f"\ninterrupted: no {what} files were written", file=sys.stderr)
        sys.exit(130)


def run_main(argv: list[str] | None = None, prog: str = "carrysim run") -> int:
    """``carrysim run``: one run, or a sweep with ``-m``."""
    register_configs()
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        print(short_help(prog.split()[0]))
        return 0
    if "--help-full" in args:
        return _full_help(args)
    if any(a.split("=")[0] in INFO_FLAGS for a in args):
        _call_hydra(args)
        return 0
    overwrite = "--overwrite" in args
    args = [a for a in args if a != "--overwrite"]
    problem = check_overrides(args)
    if problem:
        raise UserError(problem)
    _STATE.command = prog
    _STATE.error = None
    if any(a in SWEEP_FLAGS for a in args):
        return _sweep(args)
    overrides = [a for a in args if not a.startswith("-")]
    def default_folder() -> Path:
        plain = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
        scenario = load_config(plain).scenario.name
        return RUNS_DIR / f"{_stamp()}_{scenario}_{overrides_hash(plain)}"

    output, staging = _begin_output(_value_of(overrides, "hydra.run.dir"), overwrite,
                                    default_folder)
    _STATE.output = output
    try:
        _call_hydra(_replace(args, "hydra.run.dir", str(staging)))
    finally:
        output.discard()  # a no-op after a commit
        _STATE.output = None
    if _STATE.error is not None:
        code, message = _STATE.error
        print(f"error: {message}", file=sys.stderr)
        return code
    return 0


def _sweep(args: list[str]) -> int:
    overrides = [a for a in args if not a.startswith("-")]
    user_dir = _value_of(overrides, "hydra.sweep.dir")
    if user_dir is not None:  # resuming, or a folder of one's choice
        sweep_dir, lock = _locked_folder(user_dir, "hydra.sweep.dir", "sweep")
        created = not sweep_dir.exists()
    else:
        plain = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
        stamp = _stamp()
        sweep_dir, lock = reserve_folder(SWEEPS_DIR / f"{stamp}_{overrides_hash(plain)}")
        created = True
    sweep_dir.mkdir(parents=True, exist_ok=True)
    try:
        _call_hydra(_replace(args, "hydra.sweep.dir", str(sweep_dir)))
    except SystemExit as exit_:
        if exit_.code not in (0, None, EXIT_FAILED_RUNS):  # Hydra or the launcher failed
            _tidy_sweep(sweep_dir, created)
        raise
    except BaseException:
        _tidy_sweep(sweep_dir, created)
        raise
    finally:
        lock.release()
    _tidy_sweep(sweep_dir, created)
    return 0


def _tidy_sweep(sweep_dir: Path, created: bool) -> None:
    """Remove what a failed launch leaves: literal ``%j`` job folders, empty run folders and,
    if this command created it and nothing ran, the sweep folder itself."""
    for literal in sweep_dir.glob("**/%j"):
        shutil.rmtree(literal, ignore_errors=True)
    for sub in sorted(sweep_dir.glob("**/*"), reverse=True):
        if sub.is_dir() and not any(sub.iterdir()):
            sub.rmdir()
    if created and sweep_dir.is_dir():
        left = [p.name for p in sweep_dir.iterdir()]
        if left in ([], ["multirun.yaml"]):  # Hydra's record of a sweep that never ran
            shutil.rmtree(sweep_dir)


# ----------------------------------------------------------------------------------------
# The one command


class JoblibReprFilter(logging.Filter):
    """Drops the joblib launcher's repr of its ``Parallel`` object from the sweep's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Joblib.Parallel(")


def _call_main(main, args: list[str], prog: str) -> int:
    """Call a subcommand's ``main``: with its arguments, or, for a ``main()`` that reads
    ``sys.argv`` itself (a Hydra app), with ``sys.argv`` set as ``python -m`` would set it."""
    import inspect

    if inspect.signature(main).parameters:
        return int(main(args) or 0)
    saved = sys.argv
    sys.argv = [prog, *args]
    try:
        return int(main() or 0)
    finally:
        sys.argv = saved


def dispatch(argv: list[str], prog: str, default_run: bool) -> int:
    """Run ``argv`` (without the program name) as a subcommand line."""
    if not argv:
        if default_run:
            return run_main([], prog=f"{prog}")
        print(short_help(prog))
        return 0
    first = argv[0]
    if first in ("-h", "--help"):
        print(short_help(prog))
        return 0
    if first in ("-V", "--version"):
        import sim

        print(f"yen-carry-sim {sim.__version__}")
        return 0
    if first in SUBCOMMANDS:
        if not available(first):
            raise UserError(f"{prog} {first}: not available in this installation")
        if first == "run":
            return run_main(argv[1:], prog=f"{prog} run")
        module = importlib.import_module(SUBCOMMANDS[first].module)
        errors.PROG = f"{prog} {first}"
        try:
            return _call_main(module.main, argv[1:], errors.PROG)
        finally:
            errors.PROG = None
    if "=" in first or first.startswith("-"):  # overrides or Hydra flags: a run
        return run_main(argv, prog=prog)
    close = [n for n in SUBCOMMANDS if n.startswith(first[:3])]
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise UserError(f"{prog} {first}: unknown subcommand{hint}; one of "
                    + ", ".join(n for n in SUBCOMMANDS if available(n)) + f" (see {prog} --help)")


def main(argv: list[str] | None = None) -> None:
    """Console script ``carrysim``: without arguments it prints the help."""
    args = sys.argv[1:] if argv is None else argv
    sys.exit(run_command(lambda a: dispatch(a, "carrysim", default_run=False), args))


def module_main(argv: list[str] | None = None) -> None:
    """``python -m sim``: without arguments it runs the default scenario."""
    args = sys.argv[1:] if argv is None else argv
    sys.exit(run_command(lambda a: dispatch(a, "python -m sim", default_run=True), args))


if __name__ == "__main__":
    sys.exit(run_command(lambda a: run_main(a, prog="python -m sim.cli"), sys.argv[1:]))
