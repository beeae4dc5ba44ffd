"""Every model call goes through a Caller: estimate, reserve the worst case, call, settle, record."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

from treefix.agent.budget import MIN_OUTPUT_TOKENS, Budget, BudgetExceeded
from treefix.agent.errors import ConfigError
from treefix.agent.models.base import ChatModel, Completion, Message, ModelError, ToolSpec
from treefix.agent.models.retry import Failure, billed_worst_case
from treefix.agent.models.tokens import fit_messages, reservation_tokens


def prompt_bound(messages: list[Message], tools: list[ToolSpec] | None = None) -> int:
    """An upper bound on the prompt tokens a provider can bill for this request.

    Byte-level BPE tokenizers (OpenAI's, Anthropic's, Llama's) never make more tokens than the
    text has UTF-8 bytes, so bytes plus per-message framing bound the count for any of them.
    Tokenizer estimates can undercount a foreign tokenizer; the bound cannot, which is what makes
    the limits hard. It only costs headroom at the very end of a budget.
    """
    size = sum(len(m.content.encode()) + 8 for m in messages)
    for m in messages:
        size += sum(len(json.dumps(t.arguments).encode()) + len(t.name) + 8 for t in m.tool_calls or [])
    if tools:
        size += len(json.dumps([[t.name, t.description, t.parameters] for t in tools]).encode())
    return size + 16


def prompt_reservation(messages: list[Message], tools: list[ToolSpec] | None, model: str | None) -> int:
    """Prompt tokens a call reserves: the provider's tokenizer count plus its stated margin where the
    model family is known (tiktoken; see `models.tokens.margin`), never more than the bytes bound,
    and the bytes bound alone for every other model."""
    bound = prompt_bound(messages, tools)
    counted = reservation_tokens(messages, tools, model)
    return bound if counted is None else min(bound, counted)


class EndpointUnreachable(ConfigError):
    """The model's endpoint refuses every connection: the run ends (exit 2) instead of filling its
    node budget with failed calls."""


UNREACHABLE_CALLS = 2  # calls in a row whose every attempt failed to connect, once the endpoint has answered


CallListener = Callable[[str, Completion | None, str], None]


class Caller:
    def __init__(
        self,
        model: ChatModel,
        budget: Budget,
        max_output_tokens: int,
        on_call: CallListener | None = None,
        context: int | None = None,
        tools: list[ToolSpec] | None = None,
        on_start: Callable[[str], None] | None = None,
    ):
        self.model = model
        self.budget = budget
        self.max_output_tokens = max_output_tokens
        self.on_call = on_call
        self.context = context  # the model's context window; None: the price table's, else a safe default
        self._price = model.price()
        # The run's tool definitions go with every call of every role ("none" may be called where the
        # role asked for no tools): the cached prefix starts with them, so it is the same for all roles,
        # and a conversation that holds tool blocks always carries the tools it used.
        self.tools = tools or None
        self.on_start = on_start  # told each role's call as it starts (a waiting indicator)
        self._unreachable = 0  # calls in a row that could not connect at all
        self._answered = False  # the endpoint has answered at least once in this process

    def __call__(
        self,
        role: str,
        messages: list[Message],
        tools: list[ToolSpec] | None = None,
        usage: dict[str, float] | None = None,
    ) -> Completion:
        """One call for `role`; raises BudgetExceeded before spending, ModelError when the call failed.

        A prompt too long for the model's context (long tool output in a plan's tool loop, say) is
        cut head and tail in its middle messages first; the shared prefix is never touched."""
        choice = None if tools or not self.tools else "none"
        tools = tools or self.tools
        params = {"tool_choice": choice} if choice else {}
        messages = fit_messages(messages, tools, self.model.name, self.max_output_tokens, self.context)
        bound = prompt_reservation(messages, tools, self.model.name)
        ticket = self.budget.reserve(
            role, bound, self.max_output_tokens, self._price, min_output_tokens=MIN_OUTPUT_TOKENS
        )
        max_out = ticket.output_tokens  # less than max_output_tokens only near the end of a budget
        completion: Completion | None = None
        error = ""
        left = self.budget.time_left()
        deadline = time.monotonic() + left if math.isfinite(left) else None
        if self.on_start:
            self.on_start(role)
        try:
            completion = self.model.complete(
                messages, tools, max_tokens=max_out, role=role,
                on_attempt=self._charge_retry(role, bound, max_out, usage), deadline=deadline, **params,
            )  # fmt: skip
            if completion.cost is None and self._price is not None:
                completion.cost = self._price.cost(completion.usage)
            self._unreachable, self._answered = 0, True
            return completion
        except ModelError as e:
            error = str(e)
            self._unreachable = self._unreachable + 1 if e.unreachable else 0
            if e.unreachable and (not self._answered or self._unreachable >= UNREACHABLE_CALLS):
                where = getattr(self.model, "base_url", None) or "the provider's default endpoint"
                raise EndpointUnreachable(
                    f"cannot reach the model endpoint {where} ({self.model.name}): {e}; "
                    "check --base-url and that the server is running"
                ) from e
            if e.maybe_billed:  # the provider may bill the last attempt: charge its worst case
                completion = billed_worst_case(bound, max_out, self._price)
            if deadline is not None and time.monotonic() >= deadline:
                raise BudgetExceeded("time", f"a {role} call ran into the time limit") from e
            raise
        except BaseException as e:
            error = f"{type(e).__name__}: {e}"
            raise
        finally:
            ticket.settle(completion)
            self._record(role, completion, error, usage)

    def _record(
        self, role: str, completion: Completion | None, error: str, usage: dict[str, float] | None
    ) -> None:
        """One event per settled ticket, charge included: a resumed run rebuilds its spend from them."""
        if self.on_call:
            self.on_call(role, completion, error)
        if usage is not None and completion is not None:
            for k, v in _usage_fields(completion).items():
                usage[k] = usage.get(k, 0) + v

    def _charge_retry(
        self, role: str, bound: int, max_out: int, usage: dict[str, float] | None
    ) -> Callable[[Failure], None]:
        """Each retry is a turn of its own, reserved before it is made, so retries can never run
        past a limit. An attempt the provider may have billed (timeout, dropped or garbled reply)
        is charged at its worst case; a refused one (429/5xx) costs a turn only."""

        def charge(failure: Failure) -> None:
            worst = billed_worst_case(bound, max_out, self._price) if failure.maybe_billed else None
            ticket = self.budget.reserve(role, bound if worst else 0, max_out if worst else 0, self._price)
            ticket.settle(worst)
            self._record(role, worst, f"retry: {failure.reason}", usage)

        return charge


def _usage_fields(c: Completion) -> dict[str, Any]:
    return {**c.usage.to_dict(), "cost": c.cost or 0.0, "calls": 1}


__all__ = ["Caller", "ModelError", "prompt_bound", "prompt_reservation"]
