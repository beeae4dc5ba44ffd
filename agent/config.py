"""Build a RunConfig from defaults, the user config file, `-c` sources and command-line flags.

Precedence, lowest first: RunConfig defaults, `config.toml` in the user config folder, each
`-c` source in order (a YAML/JSON file or a `dotted.key=value`), then flags typed on the command
line. Unknown keys are an error that names the known ones.
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from treefix.agent.budget import Limits
from treefix.agent.models.base import ConfigError
from treefix.agent.run import RunConfig

LIMIT_KEYS = {f.name for f in fields(Limits)}
TOP_KEYS = {f.name for f in fields(RunConfig)} - {"limits"}


def _typed(default: Any, key: str, value: Any) -> Any:
    """`value` as the type of the setting's default (numbers and flags), or a clear error."""
    kind = type(default)
    if default is None or value is None or kind not in (int, float, bool):
        return value
    if kind is bool and isinstance(value, str):
        return value.lower() in ("1", "true", "yes", "on")
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"config {key}: expected {kind.__name__}, got {value!r}") from None


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    head, _, rest = key.partition(".")
    if head == "limits" and rest in LIMIT_KEYS or head in LIMIT_KEYS and not rest:
        name = rest or head  # limits may be given without their prefix
        data["limits"][name] = _typed(getattr(Limits(), name), key, value)
    elif head in TOP_KEYS and not rest:
        data[head] = _typed(getattr(RunConfig(), head), key, value)
    else:
        known = sorted(TOP_KEYS | {f"limits.{k}" for k in LIMIT_KEYS})
        raise ConfigError(f"unknown config key {key!r}; known keys: {', '.join(known)}")


def _flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in mapping.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def read_source(source: str) -> dict[str, Any]:
    """One `-c` source as flat dotted keys."""
    if "=" in source and not Path(source).is_file():
        key, _, raw = source.partition("=")
        try:
            return {key.strip(): yaml.safe_load(raw) if raw.strip() else ""}
        except yaml.YAMLError as e:
            raise ConfigError(f"-c {source!r}: the value is not valid YAML ({e.problem or e})") from None
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"config {source!r} is neither a file nor a key=value")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML/JSON: {e}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of settings")
    return _flatten(loaded)


def build_config(sources: list[str], flags: dict[str, Any], use_settings: bool = True) -> RunConfig:
    """`flags` holds only what the user typed, as config keys (e.g. {"limits.cost_limit": 1.5})."""
    data = RunConfig().to_dict()
    if use_settings:
        from treefix.agent.settings import BASE_URL_VARS, load_settings

        settings = load_settings()
        if settings.model:
            _set(data, "model", settings.model)
        # OPENAI_BASE_URL / ANTHROPIC_BASE_URL in the environment beat the file; the models read them
        if settings.base_url and not any(os.environ.get(v) for v in BASE_URL_VARS.values()):
            _set(data, "base_url", settings.base_url)
        for key, value in settings.limits.items():
            _set(data, f"limits.{key}", value)
    for source in sources:
        for key, value in read_source(source).items():
            _set(data, key, value)
    for key, value in flags.items():
        _set(data, key, value)
    return RunConfig.from_dict(data)
