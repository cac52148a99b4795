"""Command line: ``python -m sim [overrides]`` (Hydra conventions, ``-m`` for sweeps)."""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from sim.compose import CONFIG_DIR, to_config
from sim.config import register_configs
from sim.pipeline import run_and_save
from sim.validate import ConfigError


@hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")
def _app(cfg: DictConfig) -> None:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    overrides = " ".join(HydraConfig.get().overrides.task)
    try:
        report = run_and_save(to_config(cfg), out_dir,
                              command=f"python -m sim {overrides}".strip())
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(report.summary)
    print(f"Results in {out_dir}: " + ", ".join(p.name for p in report.files))


def main() -> None:
    register_configs()
    _app()


if __name__ == "__main__":
    main()
