"""Model prices (USD per 1M tokens): a shipped table, a user file over it, explicit overrides on top.

The user file is `prices.json` in the user config folder, same shape as `agent/data/prices.json`
(`{"models": {name: {"input": .., "output": .., "cached_input": .., "cache_write": ..}}}`).
An unknown model is allowed: it is priced None, with a one-time warning, and the budget then
insists on a token limit or an explicit price (`Budget.require_enforceable`).
"""

from __future__ import annotations

import json
import re
import threading
import warnings
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from treefix.agent.errors import ConfigError
from treefix.agent.models.base import Price, Usage
from treefix.agent.settings import config_dir

_overrides: dict[str, Price] = {}
_warned: set[str] = set()
_lock = threading.Lock()
# Dated snapshots and version tags that share their family's price: "-2024-08-06", "-20250929", "-latest".
_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest|preview|v\d+(:\d+)?)$")


class UnknownPriceWarning(UserWarning):
    pass


@dataclass(frozen=True)
class TieredPrice(Price):
    """A price whose rates rise for the whole call once its prompt passes `threshold` tokens."""

    threshold: int = 0
    long: Price | None = None

    def _tier(self, prompt_tokens: int) -> Price:
        return self.long if self.long is not None and prompt_tokens > self.threshold else self

    def cost(self, usage: Usage) -> float:
        tier = self._tier(usage.input_tokens)
        return Price.cost(tier, usage)

    def worst_case(self, prompt_tokens: int, max_output_tokens: int) -> float:
        tier = self._tier(prompt_tokens)
        return Price.worst_case(tier, prompt_tokens, max_output_tokens)


def _rates(name: str, d: dict[str, Any]) -> Price:
    try:
        return Price(
            input=float(d["input"]),
            output=float(d["output"]),
            cached_input=None if d.get("cached_input") is None else float(d["cached_input"]),
            cache_write=None if d.get("cache_write") is None else float(d["cache_write"]),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"price of {name!r}: needs numeric 'input' and 'output' ({e})") from None


def _to_price(name: str, d: dict[str, Any]) -> Price:
    base = _rates(name, d)
    long = d.get("long_prompt")
    if not long:
        return base
    try:
        threshold = int(long["threshold"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"price of {name!r}: long_prompt needs an integer 'threshold'") from None
    return TieredPrice(
        base.input, base.output, base.cached_input, base.cache_write, threshold, _rates(name, long)
    )


def _read(text: str, where: str) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{where}: not valid JSON: {e}") from None
    models = data.get("models", data) if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise ConfigError(f'{where}: expected {{"models": {{name: {{"input": .., "output": ..}}}}}}')
    return models


@cache
def _table() -> dict[str, dict[str, Any]]:
    shipped = resources.files("treefix.agent").joinpath("data/prices.json").read_text()
    table = dict(_read(shipped, "agent/data/prices.json"))
    user = user_price_file()
    if user.is_file():
        table.update(_read(user.read_text(), str(user)))
    return table


def user_price_file() -> Path:
    return config_dir() / "prices.json"


def reload() -> None:
    """Forget the cached table and the warnings given (tests, a changed user file)."""
    _table.cache_clear()
    _warned.clear()


def bare_name(model: str) -> str:
    """`openai/gpt-4o-2024-08-06` -> `gpt-4o-2024-08-06`; routers add their own prefix too."""
    return model.rsplit("/", 1)[-1].strip().lower()


def _lookup(model: str) -> tuple[str, dict[str, Any]] | None:
    table = _table()
    name = bare_name(model)
    while True:
        if name in table:
            return name, table[name]
        shorter = _SUFFIX.sub("", name)
        if shorter == name:
            return None
        name = shorter


def parse_price(text: str) -> Price:
    """`"IN,OUT[,CACHED[,CACHE_WRITE]]"` in USD per 1M tokens (the `--price` flag)."""
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        parts = []
    if not 2 <= len(parts) <= 4 or any(p < 0 for p in parts):
        raise ConfigError(f"--price {text!r}: expected IN,OUT[,CACHED[,CACHE_WRITE]] in USD per 1M tokens")
    parts += [None] * (4 - len(parts))  # type: ignore[list-item]
    return Price(parts[0], parts[1], parts[2], parts[3])


def set_price(model: str, price: Price) -> None:
    """Give `model` a price for this process (the `--price` flag); wins over every table."""
    with _lock:
        _overrides[bare_name(model)] = price


def price_for(model: str, warn: bool = True) -> Price | None:
    """The price of `model`, or None (warning once per model) when no table knows it."""
    name = bare_name(model)
    if name in _overrides:
        return _overrides[name]
    found = _lookup(model)
    if found:
        return _to_price(found[0], found[1])
    if warn:
        with _lock:
            first = name not in _warned
            _warned.add(name)
        if first:
            warnings.warn(
                f"the price of model {model!r} is unknown, so its cost is not tracked; give one with "
                f"--price IN,OUT (USD per 1M tokens) or in {user_price_file()}, or set a token limit",
                UnknownPriceWarning,
                stacklevel=2,
            )
    return None


def context_window(model: str) -> int | None:
    """Context size in tokens when the table knows it."""
    found = _lookup(model)
    ctx = found[1].get("context") if found else None
    return int(ctx) if ctx else None
