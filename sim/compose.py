"""Compose a typed config from the Hydra tree without going through the command line."""
from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from sim.config import Config, register_configs



def _config_dir() -> Path:
    """The Hydra config tree: ``sim/configs`` once installed, ``configs/`` in the repository."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "configs", here.parent / "configs"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"no Hydra config tree (configs/config.yaml) beside {here}")


CONFIG_DIR = _config_dir()
HYDRA_FLAGS = ("-m", "--multirun")


def load_config(overrides: list[str] | None = None, config_name: str = "config") -> Config:
    """The typed config that ``python -m sim <overrides>`` would run."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=list(overrides or []))
    return to_config(cfg)


def to_config(cfg) -> Config:
    """Convert a composed DictConfig to the dataclass tree (once, at the entry point)."""
    return OmegaConf.to_object(cfg)


NOISE = ("full_key:", "reference_type=", "object_type=", "Config search path:")


def _one_line(err: BaseException) -> str:
    """An exception and its causes as one line, without Hydra's diagnostic tails."""
    parts = []
    while err is not None and len(parts) < 3:
        text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        cut = min([text.find(n) for n in NOISE if n in text] or [len(text)])
        text = text[:cut].strip()
        if text and text not in parts:
            parts.append(text)
        err = err.__cause__
    return ": ".join(parts)


def check_overrides(args: list[str]) -> str | None:
    """One line describing the first override that cannot be composed, or None.

    Sweep values are tried one at a time against the first value of every other override, so a
    misspelled key or a value of the wrong type is reported before any run starts.  Command
    lines with Hydra flags other than ``-m`` are left to Hydra.
    """
    if any(a.startswith("-") and a not in HYDRA_FLAGS for a in args):
        return None
    user = [a for a in args if not a.startswith("-") and not a.lstrip("+~").startswith("hydra")]
    try:
        parsed = OverridesParser.create().parse_overrides(user)
    except Exception as err:
        return _one_line(err)
    choices = []
    for override in parsed:
        key = override.get_key_element()
        if override.is_sweep_override():
            try:
                values = list(override.sweep_string_iterator())
            except Exception:
                return None  # an interval or other sweep for optimisers: leave it to Hydra
            choices.append([f"{key}={v}" for v in values])
        else:
            choices.append([override.input_line])
    base = [c[0] for c in choices]
    candidates = [base] + [base[:i] + [v] + base[i + 1:] for i, c in enumerate(choices) for v in c[1:]]
    for overrides in candidates:
        try:
            load_config(overrides)
        except Exception as err:
            return _one_line(err)
    return None
