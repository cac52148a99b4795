"""Command line: ``python -m sim [overrides]`` (Hydra conventions, ``-m`` for sweeps).

A user's mistake ends with one line on stderr naming the key, the value and what is allowed,
and exit status 2; a numerical failure of the model with one line and status 3.  Ctrl-C or
SIGTERM stops the run between chunks and leaves no partial file behind.
"""
from __future__ import annotations

import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from sim.compose import CONFIG_DIR, check_overrides, to_config
from sim.config import register_configs
from sim.engine import SimulationError
from sim.io import atomic_write_text
from sim.pipeline import FAILED_FILE, finished_with, run_and_save
from sim.results import config_yaml
from sim.validate import ConfigError

EXIT_USER_ERROR = 2
EXIT_NUMERICAL = 3


@hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")
def _app(cfg: DictConfig) -> None:
    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    command = f"python -m sim {' '.join(hc.overrides.task)}".strip()
    sweeping = hc.mode == RunMode.MULTIRUN
    try:
        config = to_config(cfg)
        if sweeping and finished_with(out_dir, config_yaml(config)):
            print(f"Skipping {out_dir.name}: finished earlier with the same config")
            return
        report = run_and_save(config, out_dir, command=command)
    except (ConfigError, SimulationError) as err:
        code = EXIT_USER_ERROR if isinstance(err, ConfigError) else EXIT_NUMERICAL
        if not sweeping:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(code)
        _record_failure(out_dir, str(err))
        return
    except Exception as err:
        if not sweeping:
            raise
        _record_failure(out_dir, f"{type(err).__name__}: {err}")
        return
    (out_dir / FAILED_FILE).unlink(missing_ok=True)
    print(report.summary)
    print(f"Results in {out_dir}: " + ", ".join(p.name for p in report.files))


def _record_failure(out_dir: Path, message: str) -> None:
    """In a sweep, note the failure in the run's folder and let the other runs go on."""
    atomic_write_text(out_dir / FAILED_FILE, message + "\n")
    print(f"FAILED: {message}", file=sys.stderr)


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    register_configs()
    signal.signal(signal.SIGTERM, _terminate)
    problem = check_overrides(sys.argv[1:])
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    try:
        _app()
    except KeyboardInterrupt:
        print("\ninterrupted: a run stopped before it finished leaves no results file", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
