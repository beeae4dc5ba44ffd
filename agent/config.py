"""Build a RunConfig from defaults, the user config file, `-c` sources and command-line flags.

Precedence, lowest first: RunConfig defaults (for a few search settings, the chosen policy's own),
`config.toml` in the user config folder, each `-c` source in order (a YAML/JSON file or a
`dotted.key=value`), then flags typed on the command line. Unknown keys are an error that names the known ones.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from treefix.agent.budget import Limits
from treefix.agent.errors import ConfigError
from treefix.agent.policies.base import ValueWeights
from treefix.agent.select import STRATEGIES, SearchParams

GENERAL_DEFAULTS: dict[str, Any] = {
    "max_children": 5, "exec_weight": 0.7, "critic_weight": 0.3, "root_children": 0, "root_widen_k": 0.0,
}  # fmt: skip
# Offline candidates are cheap and judged by execution alone: the fix is usually among a top-ranked
# line's many operators, so a node may have many children, and the value is the execution measure.
POLICY_DEFAULTS: dict[str, dict[str, Any]] = {
    "offline": {"max_children": 16, "exec_weight": 0.0, "critic_weight": 1.0},
}


@dataclass
class RunConfig:
    model: str = "offline"
    base_url: str | None = None
    search: str = "mcts"
    limits: Limits = field(default_factory=Limits)
    workers: int = 1
    exploration: float = 1.0  # the simulator favours 0.25 with widen_alpha 0.7 (docs/turns-and-simulation.md)
    widen_k: float = 1.0
    widen_alpha: float = 0.5
    branch_margin: float = 1.0  # mcts/greedy: deepen when the budget left pays < this many new branches
    root_children: int | None = None  # the root's cap on children (plans); 0: max_children
    root_widen_k: float | None = None  # widen_k for the root (plans); 0: widen_k
    plan_patience: int = 0  # mcts: a plan whose this many tested attempts all failed is dropped for a fresh one; 0: off
    # None = the policy's default (POLICY_DEFAULTS), else the general one: an explicit 5 stays 5
    max_children: int | None = None
    exec_weight: float | None = None
    critic_weight: float | None = None
    stop_on_verified: bool = True
    record: str | None = None  # cassette path to record the model's completions to
    price: str | None = None  # "IN,OUT[,CACHED[,CACHE_WRITE]]" USD per 1M tokens, for unpriced models
    label: str = ""  # extra words for model_name_or_path in batch outputs (e.g. visible tests)
    map_tokens: int = 2048  # size of the repository map in the shared prompt prefix
    tier: str = ""  # "offline": try no-model candidates first, within a share of the budget
    context_window: int = 0  # tokens the model accepts; 0: the price table's figure, else 32k
    reproductions: int = 3  # without a test command: reproduction tests the model may write (0 = none)
    keep_tests: bool = False  # put the accepted reproduction test in the final patch
    regression_checks: bool = True  # without a test command: check existing tests for regressions
    # with a test command: run it on the base first; one that passes there only catches regressions,
    # so reproductions are grown (None: on in `swebench run`, off in `fix`)
    base_check: bool | None = None
    turn_control: str = "none"  # none | fixed | dynamic (agent/turns.py)
    turn_cap: int = 0  # turns per run for fixed/dynamic turn control; 0: limits.max_turns
    turn_window: int = 3  # dynamic: extend while the best value rose within this many nodes
    turn_start: int = 0  # dynamic: the initial run cap (N or pNN:RUN_DIR); 0: half the hard cap

    def resolved(self) -> RunConfig:
        """This config with every unset setting taken from the policy's defaults, then the general ones."""
        data = self.to_dict()
        for key, value in {**GENERAL_DEFAULTS, **POLICY_DEFAULTS.get(self.model, {})}.items():
            if data[key] is None:
                data[key] = value
        return RunConfig.from_dict(data)

    def validate(self) -> None:
        """Every rule a run's settings must meet, whatever their source. ConfigError."""
        if self.search not in STRATEGIES:
            raise ConfigError(f"unknown search {self.search!r}; choose one of {', '.join(STRATEGIES)}")
        if self.tier not in ("", "offline"):
            raise ConfigError(f"unknown tier {self.tier!r}: the only tier is offline")
        if self.turn_control not in ("none", "fixed", "dynamic"):
            raise ConfigError(f"unknown turn control {self.turn_control!r}; choose one of none, fixed, dynamic")
        if self.turn_control == "dynamic" and not (self.turn_cap or self.limits.max_turns):
            raise ConfigError("--turn-control dynamic needs a hard cap: give --turn-cap N or --max-turns N")
        if self.tier and self.model == "offline":
            raise ConfigError("--tier offline is for model runs: -m offline is the offline policy already")
        self = self.resolved()
        at_least = {
            "limits.cost_limit": 0, "limits.max_turns": 0, "limits.max_tokens": 0, "limits.time_limit": 0,
            "limits.max_nodes": 0, "limits.max_depth": 1, "limits.turns_per_node": 1,
            "limits.max_output_tokens": 1, "limits.reserve_cost": 0, "workers": 1, "exploration": 0,
            "widen_k": 0, "widen_alpha": 0, "branch_margin": 0, "root_children": 0, "root_widen_k": 0, "plan_patience": 0, "max_children": 1, "exec_weight": 0, "critic_weight": 0,
            "map_tokens": 0, "context_window": 0, "reproductions": 0, "turn_cap": 0, "turn_window": 1, "turn_start": 0,
        }  # fmt: skip
        for key, low in at_least.items():
            head, _, rest = key.partition(".")
            value = getattr(self.limits, rest) if rest else getattr(self, head)
            if not isinstance(value, int | float) or math.isnan(value) or value < low:
                raise ConfigError(f"{key} must be at least {low}, got {value}")
        if math.isinf(self.limits.cost_limit) or math.isinf(self.limits.time_limit):
            raise ConfigError("a limit of infinity: use 0 for no limit")
        if self.exec_weight + self.critic_weight <= 0:
            raise ConfigError("exec_weight and critic_weight cannot both be 0")

    def params(self) -> SearchParams:
        self = self.resolved()
        return SearchParams(
            strategy=self.search,
            exploration=self.exploration,
            widen_k=self.widen_k,
            widen_alpha=self.widen_alpha,
            branch_margin=self.branch_margin,
            root_children=self.root_children,
            root_widen_k=self.root_widen_k,
            plan_patience=self.plan_patience,
            max_children=self.max_children,
            max_depth=self.limits.max_depth,
            reproductions=self.reproductions,
            regression_checks=self.regression_checks,
            base_check=bool(self.base_check),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        d = dict(d)
        d["limits"] = Limits(**d.get("limits", {}))
        return cls(**d)


    def run_turn_cap(self) -> int:
        """The hard cap on the run's turns under turn control (0: none): the smaller of the two."""
        caps = [c for c in (self.turn_cap, self.limits.max_turns) if c]
        return min(caps) if caps and self.turn_control != "none" else self.limits.max_turns

    def weights(self) -> ValueWeights:
        self = self.resolved()
        return ValueWeights(self.exec_weight, self.critic_weight)


LIMIT_KEYS = {f.name for f in fields(Limits)}

# command-line option name -> config key, for the flags every searching command shares
FLAG_KEYS = {
    "model": "model",
    "base_url": "base_url",
    "search": "search",
    "cost_limit": "limits.cost_limit",
    "max_turns": "limits.max_turns",
    "max_tokens": "limits.max_tokens",
    "max_nodes": "limits.max_nodes",
    "max_depth": "limits.max_depth",
    "time_limit": "limits.time_limit",
    "workers": "workers",
    "tier": "tier",
    "keep_tests": "keep_tests",
    "reproductions": "reproductions",
    "turn_control": "turn_control",
    "turn_cap": "turn_cap",
}


def typed_flags(ctx: Any, names: dict[str, str] = FLAG_KEYS) -> dict[str, Any]:
    """The flags the user typed (a typer/click context), as config keys. A flag's default is not
    typed, so -c and the config file win over it. Compared by name: typer may ship its own copy of
    click, whose ParameterSource is another enum."""
    typed: dict[str, Any] = {}
    for name, key in names.items():
        source = ctx.get_parameter_source(name) if name in ctx.params else None
        if source is not None and source.name != "DEFAULT":
            typed[key] = ctx.params[name]
    return typed
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
    elif head in ("turn_cap", "turn_start") and not rest and isinstance(value, str):
        from treefix.agent.turns import parse_turn_cap

        data[head] = parse_turn_cap(value)  # N or pNN:RUN_DIR
    elif head in TOP_KEYS and not rest:
        data[head] = _typed(GENERAL_DEFAULTS.get(head, getattr(RunConfig(), head)), key, value)
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
