"""Compose a typed config from the Hydra tree without going through the command line."""
from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from sim.config import Config, register_configs

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def load_config(overrides: list[str] | None = None, config_name: str = "config") -> Config:
    """The typed config that ``python -m sim <overrides>`` would run."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides or []))
    return to_config(cfg)


def to_config(cfg) -> Config:
    """Convert a composed DictConfig to the dataclass tree (once, at the entry point)."""
    obj = OmegaConf.to_object(cfg)
    return obj
