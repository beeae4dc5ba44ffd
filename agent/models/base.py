"""The model protocol every provider implements, and the data it speaks."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol, runtime_checkable


class ModelError(Exception):
    """A model call that failed for good (after any retries). The node that asked fails, the run goes on.

    `maybe_billed`: the last attempt may have been billed (timeout, dropped or garbled reply)."""

    def __init__(self, message: str, maybe_billed: bool = False, unreachable: bool = False):
        super().__init__(message)
        self.maybe_billed = maybe_billed
        # Every attempt failed to connect (refused, unknown host): the endpoint is not there at all.
        self.unreachable = unreachable


@dataclass
class Message:
    role: str  # "system" | "user" | "assistant" | "tool"
    content: str
    tool_call_id: str | None = None
    tool_calls: list[ToolCall] | None = None
    # Marks the end of the static prefix that siblings share (prompt caching).
    cache: bool = False

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_call_id:
            d["tool_call_id"] = self.tool_call_id
        if self.tool_calls:
            d["tool_calls"] = [asdict(t) for t in self.tool_calls]
        if self.cache:
            d["cache"] = True
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Message:
        calls = [ToolCall(**t) for t in d.get("tool_calls") or []] or None
        return cls(d["role"], d.get("content") or "", d.get("tool_call_id"), calls, bool(d.get("cache")))


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema


@dataclass
class Usage:
    input_tokens: int = 0  # all prompt tokens, cached ones included
    output_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens read from a cache
    cache_write_tokens: int = 0

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{k: v + getattr(other, k) for k, v in self.to_dict().items()})

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Usage:
        """From a stored record that may hold other keys too (a call event); missing counts are 0."""
        return cls(**{f.name: int(d.get(f.name) or 0) for f in fields(cls)})


@dataclass
class Completion:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cost: float | None = None  # USD, None when the price is unknown
    finish_reason: str = "stop"
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "tool_calls": [asdict(t) for t in self.tool_calls],
            "usage": self.usage.to_dict(),
            "cost": self.cost,
            "finish_reason": self.finish_reason,
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Completion:
        return cls(
            text=d.get("text") or "",
            tool_calls=[ToolCall(**t) for t in d.get("tool_calls") or []],
            usage=Usage.from_dict(d.get("usage") or {}),
            cost=d.get("cost"),
            finish_reason=d.get("finish_reason") or "stop",
            model=d.get("model") or "",
        )


@runtime_checkable
class ChatModel(Protocol):
    """One chat call. Implementations report usage as the provider reported it."""

    name: str

    def complete(self, messages: list[Message], tools: list[ToolSpec] | None = None, **params: Any) -> Completion: ...

    def price(self) -> Price | None:
        """USD per million tokens, or None when unknown (the budget then falls back to token limits)."""
        ...


@dataclass(frozen=True)
class Price:
    input: float  # USD per 1M prompt tokens
    output: float  # USD per 1M completion tokens
    cached_input: float | None = None  # USD per 1M cached prompt tokens
    cache_write: float | None = None

    def cost(self, usage: Usage) -> float:
        cached = usage.cached_tokens
        fresh = max(usage.input_tokens - cached - usage.cache_write_tokens, 0)
        cached_price = self.input if self.cached_input is None else self.cached_input
        write_price = self.input if self.cache_write is None else self.cache_write
        return (
            fresh * self.input
            + cached * cached_price
            + usage.cache_write_tokens * write_price
            + usage.output_tokens * self.output
        ) / 1_000_000

    def worst_case(self, prompt_tokens: int, max_output_tokens: int) -> float:
        top_in = max(self.input, self.cache_write or 0.0)
        return (prompt_tokens * top_in + max_output_tokens * self.output) / 1_000_000
