"""Cassettes: record any model's completions to JSONL and play them back deterministically.

A cassette line is `{"role": ..., "request": <hash>, "completion": {...}}`. Playback answers a
request with the unused entry recorded for the same request hash, else the next unused entry
recorded for the same role (so a cassette survives small prompt changes), else fails clearly.
Only hashes of requests are stored: repository text and secrets never reach a cassette.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

from treefix.agent.errors import ConfigError
from treefix.agent.models.base import ChatModel, Completion, Message, ModelError, Price, ToolSpec


def request_hash(messages: list[Message], tools: list[ToolSpec] | None = None) -> str:
    body = {"m": [[m.role, m.content] for m in messages], "t": sorted(t.name for t in tools or [])}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


class ReplayModel:
    def __init__(self, path: Path):
        self.name = f"replay:{path}"
        if not path.is_file():
            raise ConfigError(f"cassette not found: {path}" if not path.exists() else f"not a cassette file: {path}")
        self._entries: list[dict[str, Any]] = []
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not a cassette (not UTF-8 text)") from None
        if not text.strip():
            raise ConfigError(f"{path}: the cassette is empty")
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                entry["completion"] = Completion.from_dict(entry["completion"])
            except (ValueError, KeyError, TypeError) as e:
                raise ConfigError(f"{path}:{n}: not a cassette entry ({e})") from None
            self._entries.append(entry)
        self._used = [False] * len(self._entries)
        self._lock = threading.Lock()

    def price(self) -> Price | None:
        return Price(0.0, 0.0)  # replays cost nothing; recorded usage is still reported

    def complete(self, messages: list[Message], tools: list[ToolSpec] | None = None, **params: Any) -> Completion:
        role = params.get("role", "")
        key = request_hash(messages, tools)
        with self._lock:
            for match in (lambda e: e.get("request") == key, lambda e: e.get("role") == role):
                for i, entry in enumerate(self._entries):
                    if not self._used[i] and match(entry):
                        self._used[i] = True
                        c = entry["completion"]
                        return Completion(c.text, list(c.tool_calls), c.usage, 0.0, c.finish_reason, c.model)
        raise ModelError(f"cassette has no unused reply for a {role or 'model'} request")


class RecordingModel:
    """Wraps any model and appends every completion to a cassette as it arrives."""

    def __init__(self, inner: ChatModel, path: Path):
        self.inner = inner
        self.name = inner.name
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def price(self) -> Price | None:
        return self.inner.price()

    def complete(self, messages: list[Message], tools: list[ToolSpec] | None = None, **params: Any) -> Completion:
        completion = self.inner.complete(messages, tools, **params)
        entry = {"role": params.get("role", ""), "request": request_hash(messages, tools), "completion": completion.to_dict()}
        with self._lock, self.path.open("a") as f:
            f.write(json.dumps(entry) + "\n")
        return completion
