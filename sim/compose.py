"""Compose a typed config from the Hydra tree without going through the command line."""
from __future__ import annotations

import copy
import functools
import re
from dataclasses import fields, is_dataclass
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, ListConfig, OmegaConf

from sim import config as config_module
from sim.config import Config, register_configs
from sim.validate import ConfigError



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
    """The typed config that ``python -m sim <overrides>`` would run.

    Overrides that cannot be composed raise :class:`ConfigError` with a one-line message (so
    the analysis commands report them like the run command); sweeps are refused here.
    """
    overrides = list(overrides or [])
    groups, values = [], []
    for override in _parse(overrides):
        _check_group_list(override)
        if override.is_sweep_override():
            raise ConfigError(override.get_key_element(), override.input_line.split("=", 1)[-1],
                              "one value here (sweeps run with `python -m sim -m ...`)")
        key = override.get_key_element().lstrip("+~")
        (groups if _is_group(key) or override.is_delete() else values).append(override)
    try:
        cfg = copy.deepcopy(_composed(config_name, tuple(o.input_line for o in groups)))
        # What Hydra's compose does after the defaults list: value overrides, in struct mode.
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
    except Exception as err:
        raise _composition_error(err, overrides) from None
    return to_config(cfg)


@functools.lru_cache(maxsize=64)
def _composed(config_name: str, group_overrides: tuple[str, ...]) -> DictConfig:
    """The config tree composed from the defaults list with these group choices (cached: Hydra
    composes in about half a second, and experiments compose the same tree many times)."""
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
    if GlobalHydra.instance().is_initialized():   # inside a Hydra app (e.g. the calibration)
        return compose(config_name=config_name, overrides=list(group_overrides))
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(group_overrides))


def to_config(cfg) -> Config:
    """Convert a composed DictConfig to the dataclass tree (once, at the entry point).

    A key appended with ``+`` to a schema-typed group is refused here: Hydra opens the struct
    flag for appends, so OmegaConf would otherwise store the misspelling.  A snapshot from data
    (``snapshot=data``) is filled here, before conversion and validation, so every entry point
    sees the same levels.
    """
    from sim.datasnapshot import resolve_data_snapshot

    _refuse_appended_keys(cfg)
    resolve_data_snapshot(cfg)
    try:
        return OmegaConf.to_object(cfg)
    except Exception as err:  # a missing mandatory value or a type OmegaConf checks late
        raise _composition_error(err, []) from None


def _refuse_appended_keys(node, prefix: str = "") -> None:
    schema = OmegaConf.get_type(node) if isinstance(node, DictConfig) else None
    if isinstance(node, DictConfig):
        if schema is not None and is_dataclass(schema):
            known = [f.name for f in fields(schema)]
            for key in node.keys():
                if key not in known:
                    raise ConfigError(f"{prefix}{key}", _raw(node, key),
                                      f"not a key of {prefix.rstrip('.') or 'the config'}; "
                                      f"its keys are {', '.join(known)}")
        for key in node.keys():
            child = node._get_node(key)
            if isinstance(child, (DictConfig, ListConfig)):
                _refuse_appended_keys(child, f"{prefix}{key}.")
    elif isinstance(node, ListConfig):
        for i in range(len(node)):
            child = node._get_node(i)
            if isinstance(child, (DictConfig, ListConfig)):
                _refuse_appended_keys(child, f"{prefix.rstrip('.')}[{i}].")


def _raw(node, key):
    child = node._get_node(key)
    try:
        return OmegaConf.to_container(child) if isinstance(child, (DictConfig, ListConfig)) else child._value()
    except Exception:
        return "?"


NOISE = ("full_key:", "reference_type=", "object_type=", "Config search path:",
         "Set the environment variable HYDRA_FULL_ERROR")


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


def _schema_keys(text: str) -> str:
    """For "Key 'x' not in 'SamplerConfig'", the keys that schema has."""
    match = re.search(r"not in '(\w+)'", text)
    schema = getattr(config_module, match.group(1), None) if match else None
    if schema is None or not is_dataclass(schema):
        return ""
    return f"; its keys are {', '.join(f.name for f in fields(schema))}"


SYNTAX = ("not valid override syntax (key=value; key=[a,b] for a list; quotes around text "
          "with commas; -m key=a,b to sweep)")
FRAMING = (r"^Could not override '[^']+'\. To append to your config use \S+: ", r"^In '[\w/]+': ")


def _composition_error(err: BaseException, overrides: list[str]) -> ConfigError:
    """A Hydra or OmegaConf composition failure as a one-line ConfigError naming the override."""
    text = _one_line(err)
    for override in overrides:
        text = text.replace(f"Error merging override {override}: ", "")
    for pattern in FRAMING:
        text = re.sub(pattern, "", text)
    text += _schema_keys(text)
    culprit = None
    for override in overrides:
        try:
            OverridesParser.create().parse_overrides([override])
        except Exception:
            culprit, text = override, SYNTAX
            break
        if override in _one_line(err) or override.split("=", 1)[0].lstrip("+~") in text:
            culprit = culprit or override
    if culprit is None:
        return ConfigError("overrides", " ".join(overrides), text, message=text)
    key, _, value = culprit.partition("=")
    return ConfigError(key, value, text, message=f"{culprit}: {text}")


def _parse(overrides: list[str]):
    try:
        return OverridesParser.create().parse_overrides(overrides)
    except Exception as err:
        raise _composition_error(err, overrides) from None


def _is_group(key: str) -> bool:
    return "." not in key and ((CONFIG_DIR / key).is_dir() or key.startswith("hydra/"))


def _check_group_list(override) -> None:
    """A config group takes one option: refuse ``scenario=[a,b]`` (Hydra would merge both)."""
    key = override.get_key_element().lstrip("+~")
    if _is_group(key) and isinstance(override.value(), list):
        options = _options(key)
        raise ConfigError(key, override.input_line.split("=", 1)[-1],
                          "one option of the group" + (f" ({', '.join(options)})" if options else "")
                          + f"; to run several, sweep with -m {key}=a,b")


def _options(group: str) -> list[str]:
    folder = CONFIG_DIR / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def check_overrides(args: list[str], config_name: str = "config") -> str | None:
    """One line describing the first override that cannot be run, or None.

    Sweep values are tried one at a time against the first value of every other override, so a
    misspelled key or a value of the wrong type is reported before any run starts; a single run
    is also validated (ranges, dates, matrices) before Hydra creates its folder, while in a sweep
    a run whose values fail records its error and the others go on.  Several values without ``-m`` are refused; overrides
    of Hydra's own groups (``hydra/launcher=...``) are checked against the installed options.
    Command lines with Hydra flags other than ``-m`` are left to Hydra.
    """
    if any(a.startswith("-") and a not in HYDRA_FLAGS for a in args):
        return None
    sweeping = any(a in HYDRA_FLAGS for a in args)
    words = [a for a in args if not a.startswith("-")]
    try:
        parsed = _parse(words)
        for override in parsed:
            _check_group_list(override)
            if override.is_sweep_override() and not sweeping:
                value = override.input_line.split("=", 1)[-1]
                raise ConfigError(override.get_key_element(), value,
                                  f"one value; to sweep over several add -m "
                                  f"(python -m sim -m {override.input_line}), "
                                  f"or write a list as [{value}]")
        _check_hydra_overrides([w for w in words if _is_hydra(w)])
    except ConfigError as err:
        return str(err)
    choices = []
    for override in parsed:
        if _is_hydra(override.input_line):
            continue
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
    from sim.validate import check_scheduler_reachable, validate

    for overrides in candidates:
        try:
            cfg = load_config(overrides, config_name=config_name)
            if not sweeping:  # in a sweep, a run whose values fail is reported at the end
                validate(cfg)
                check_scheduler_reachable(cfg.sampler.scheduler)
        except ConfigError as err:
            return str(err)
    return None


def _is_hydra(override: str) -> bool:
    return override.lstrip("+~").startswith("hydra")


def _check_hydra_overrides(overrides: list[str]) -> None:
    """Compose Hydra's own config with the ``hydra...`` overrides (an unknown launcher, say)."""
    if not overrides:
        return
    register_configs()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            compose(config_name="config", overrides=overrides, return_hydra_config=True)
    except Exception as err:
        raise _composition_error(err, overrides) from None
