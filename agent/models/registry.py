"""Turn a `-m` model spec into a ChatModel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from treefix.agent.errors import ConfigError
from treefix.agent.models.base import ChatModel

SPEC_HELP = "use offline, replay:<cassette.jsonl>, openai/<model>, or anthropic/<model>"


def is_offline(spec: str) -> bool:
    return spec == "offline"


def load_model(spec: str, base_url: str | None = None, record: Path | None = None, **kw: Any) -> ChatModel | None:
    """None for the offline policy, which uses no model at all."""
    model: ChatModel
    if is_offline(spec):
        return None
    if spec.startswith("replay:"):
        from treefix.agent.models.replay import ReplayModel

        model = ReplayModel(Path(spec.removeprefix("replay:")).expanduser())
    elif spec.startswith("openai/") and len(spec) > 7:
        from treefix.agent.models.openai import OpenAIModel

        model = OpenAIModel(spec.removeprefix("openai/"), base_url=base_url, **kw)
    elif spec.startswith("anthropic/") and len(spec) > 10:
        from treefix.agent.models.anthropic import AnthropicModel

        model = AnthropicModel(spec.removeprefix("anthropic/"), base_url=base_url, **kw)
    else:
        raise ConfigError(f"unknown model {spec!r}: {SPEC_HELP}")
    if record is not None:
        from treefix.agent.models.replay import RecordingModel

        model = RecordingModel(model, record)
    return model
