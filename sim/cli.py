"""Command line: ``python -m sim [overrides]`` (Hydra conventions, ``-m`` for sweeps)."""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from sim.compose import CONFIG_DIR, to_config
from sim.config import register_configs
from sim.io import atomic_write_text
from sim.pipeline import FAILED_FILE, run_and_save
from sim.validate import ConfigError


@hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")
def _app(cfg: DictConfig) -> None:
    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    command = f"python -m sim {' '.join(hc.overrides.task)}".strip()
    sweeping = hc.mode == RunMode.MULTIRUN
    try:
        report = run_and_save(to_config(cfg), out_dir, command=command)
    except Exception as err:
        message = f"{err}" if isinstance(err, ConfigError) else f"{type(err).__name__}: {err}"
        if not sweeping:
            if isinstance(err, ConfigError):
                print(f"error: {message}", file=sys.stderr)
                sys.exit(2)
            raise
        # In a sweep, record the failure and let the other runs go on; the end-of-sweep
        # callback lists every failed run.
        atomic_write_text(out_dir / FAILED_FILE, message + "\n")
        print(f"FAILED: {message}", file=sys.stderr)
        return
    print(report.summary)
    print(f"Results in {out_dir}: " + ", ".join(p.name for p in report.files))


def main() -> None:
    register_configs()
    _app()


if __name__ == "__main__":
    main()
