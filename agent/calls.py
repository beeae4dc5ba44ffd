"""Every model call goes through a Caller: estimate, reserve the worst case, call, settle, record."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from agent.budget import Budget
from agent.models.base import ChatModel, Completion, Message, ModelError, ToolSpec


def estimate_tokens(messages: list[Message], tools: list[ToolSpec] | None = None) -> int:
    """Prompt tokens for budgeting. Over-estimating is safe; the provider's usage is what is charged."""
    text = "\n".join(m.content for m in messages)
    if tools:
        text += json.dumps([[t.name, t.description, t.parameters] for t in tools])
    try:
        from tools.tokens import count_tokens
    except ImportError:  # pragma: no cover - the tokenizer module ships with the package
        return len(text) // 3 + 4 * len(messages)
    return count_tokens(text) + 4 * len(messages)


CallListener = Callable[[str, Completion | None, str], None]


class Caller:
    def __init__(self, model: ChatModel, budget: Budget, max_output_tokens: int, on_call: CallListener | None = None):
        self.model = model
        self.budget = budget
        self.max_output_tokens = max_output_tokens
        self.on_call = on_call
        self._price = model.price()

    def __call__(
        self, role: str, messages: list[Message], tools: list[ToolSpec] | None = None, usage: dict[str, float] | None = None
    ) -> Completion:
        """One call for `role`; raises BudgetExceeded before spending, ModelError when the call failed."""
        ticket = self.budget.reserve(role, estimate_tokens(messages, tools), self.max_output_tokens, self._price)
        completion: Completion | None = None
        try:
            completion = self.model.complete(
                messages, tools, max_tokens=self.max_output_tokens, role=role, on_attempt=self._charge_retry(role)
            )
            if completion.cost is None and self._price is not None:
                completion.cost = self._price.cost(completion.usage)
            return completion
        except ModelError as e:
            if self.on_call:
                self.on_call(role, None, str(e))
            raise
        finally:
            ticket.settle(completion)
            if completion is not None:
                if self.on_call:
                    self.on_call(role, completion, "")
                if usage is not None:
                    for k, v in _usage_fields(completion).items():
                        usage[k] = usage.get(k, 0) + v

    def _charge_retry(self, role: str) -> Callable[[], None]:
        """Each retry is a turn of its own: reserve and settle it, so retries can never run past a limit."""

        def charge() -> None:
            self.budget.reserve(role, 0, 0, self._price).settle(None)
            if self.on_call:
                self.on_call(role, None, "retry")

        return charge


def _usage_fields(c: Completion) -> dict[str, Any]:
    return {
        "input_tokens": c.usage.input_tokens,
        "output_tokens": c.usage.output_tokens,
        "cached_tokens": c.usage.cached_tokens,
        "cost": c.cost or 0.0,
        "calls": 1,
    }


__all__ = ["Caller", "ModelError", "estimate_tokens"]
