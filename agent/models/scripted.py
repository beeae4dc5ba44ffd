"""Deterministic models for tests: replies come from a function or a list, never from a network."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from treefix.agent.models.base import Completion, Message, ModelError, Price, ToolSpec, Usage

Reply = str | Completion | Exception
Responder = Callable[[str, list[Message]], Reply]


class ScriptedModel:
    """Answers each call with `responder(role, messages)`; strings become completions, exceptions are raised."""

    def __init__(self, responder: Responder | list[Reply], price: Price | None = Price(1.0, 2.0), name: str = "scripted"):
        self.name = name
        self._price = price
        self.calls: list[tuple[str, list[Message]]] = []
        if isinstance(responder, list):
            replies = list(responder)

            def pop(role: str, messages: list[Message]) -> Reply:
                if not replies:
                    raise ModelError("scripted model has no replies left")
                return replies.pop(0)

            responder = pop
        self._responder = responder

    def price(self) -> Price | None:
        return self._price

    def complete(self, messages: list[Message], tools: list[ToolSpec] | None = None, **params: Any) -> Completion:
        role = params.get("role", "")
        self.calls.append((role, messages))
        reply = self._responder(role, messages)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, str):
            prompt = sum(len(m.content) for m in messages) // 4
            reply = Completion(reply, usage=Usage(prompt, max(len(reply) // 4, 1)), model=self.name)
        if reply.cost is None and self._price is not None:
            reply.cost = self._price.cost(reply.usage)
        return reply
