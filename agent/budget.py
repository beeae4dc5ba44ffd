"""Hard budgets, checked before anything is spent.

A model call first *reserves* its worst case (prompt tokens plus `max_tokens`, priced at the
highest rate) and then *settles* to what the provider reported. Reservations are taken under a
lock, so parallel workers together can never cross a limit: the sum of settled spend plus open
reservations is what a new reservation is checked against.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from treefix.agent.errors import ConfigError
from treefix.agent.models.base import Completion, Price, Usage


class BudgetExceeded(Exception):
    def __init__(self, limit: str, detail: str = ""):
        super().__init__(f"{limit} limit reached" + (f": {detail}" if detail else ""))
        self.limit = limit
        self.detail = detail


MIN_OUTPUT_TOKENS = 1024  # the least room for a reply a call is made with when a limit is near


@dataclass
class Limits:
    cost_limit: float = 3.0  # USD; 0 = off
    max_turns: int = 0  # model calls of every role; 0 = off
    max_tokens: int = 0  # prompt + completion tokens; 0 = off
    time_limit: float = 0.0  # seconds of wall time; 0 = off
    max_nodes: int = 30  # nodes created, root excluded; 0 = off
    max_depth: int = 6
    turns_per_node: int = 8
    max_output_tokens: int = 4096  # per call; part of every worst-case reservation
    reserve_cost: float = 0.0  # USD kept back for the final selection (discriminator)


@dataclass
class Spent:
    cost: float = 0.0
    turns: int = 0
    tokens: int = 0
    nodes: int = 0
    test_runs: int = 0
    elapsed: float = 0.0  # carried over from earlier processes of the same run
    by_role: dict[str, dict[str, float]] = field(default_factory=dict)

    def add_call(self, role: str, usage: Usage, cost: float) -> None:
        """One model call (a failed one too: it is a turn, so retries cannot run unbounded)."""
        self.cost += cost
        self.tokens += usage.total
        self.turns += 1
        r = self.by_role.setdefault(role, {})
        for k, v in {"cost": cost, "turns": 1, **usage.to_dict()}.items():
            r[k] = r.get(k, 0) + v

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Ledger(Protocol):
    """Spend shared beyond one run (batch workers). Must be safe across threads and processes."""

    def reserve(self, cost: float, tokens: int, turns: int) -> str | None:
        """Reserve; return None on success or the name of the limit that would be crossed."""
        ...

    def settle(self, reserved: tuple[float, int, int], actual: tuple[float, int, int]) -> None: ...


@dataclass
class Ticket:
    """An open reservation for one model call."""

    budget: Budget
    role: str
    cost: float
    tokens: int
    settled: bool = False
    output_tokens: int = 0  # the reply room reserved: the call's max_tokens

    def settle(self, completion: Completion | None) -> None:
        """Charge what the call really used (None: the call failed and nothing was billed)."""
        self.budget._settle(self, completion)

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.settled:
            self.settle(None)


class Budget:
    def __init__(
        self,
        limits: Limits,
        spent: Spent | None = None,
        clock: Callable[[], float] = time.monotonic,
        ledger: Ledger | None = None,
    ):
        self.limits = limits
        self.spent = spent or Spent()
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._open_cost = 0.0
        self._open_tokens = 0
        self._open_turns = 0
        self._ledger = ledger
        # The last refusal of a model call: which limit, what was used, what the call needed.
        self.refusal: dict[str, Any] | None = None
        self.overruns = 0  # calls that reported more than they reserved (a tokenizer margin too small)

    # ---- checks -------------------------------------------------------------------------
    def elapsed(self) -> float:
        return self.spent.elapsed + (self._clock() - self._started)

    def time_left(self) -> float:
        """Seconds until the time limit (infinite without one): the most a test run may take."""
        return max(self.limits.time_limit - self.elapsed(), 0.0) if self.limits.time_limit else float("inf")

    def _check_time(self) -> None:
        if self.limits.time_limit and self.elapsed() >= self.limits.time_limit:
            detail = f"{self.elapsed():.1f}s of {self.limits.time_limit:.0f}s"
            self.refusal = {"limit": "time", "message": f"time limit reached: {detail}"}
            raise BudgetExceeded("time", detail)

    def exhausted(self) -> str | None:
        """The first limit that leaves no room for another node, or None."""
        lim, s = self.limits, self.spent
        if lim.time_limit and self.elapsed() >= lim.time_limit:
            return "time"
        if lim.max_nodes and s.nodes >= lim.max_nodes:
            return "nodes"
        if lim.max_turns and s.turns >= lim.max_turns:
            return "turns"
        if lim.cost_limit and s.cost >= lim.cost_limit - lim.reserve_cost:
            return "cost"
        if lim.max_tokens and s.tokens >= lim.max_tokens:
            return "tokens"
        return None

    def charge_node(self) -> None:
        """Count a new node; raises before the node is made when no room is left."""
        with self._lock:
            self._check_time()
            if self.limits.max_nodes and self.spent.nodes >= self.limits.max_nodes:
                detail = f"{self.spent.nodes} of {self.limits.max_nodes} nodes made"
                self.refusal = {"limit": "nodes", "message": f"nodes limit reached: {detail}"}
                raise BudgetExceeded("nodes", detail)
            self.spent.nodes += 1

    def release_node(self) -> None:
        """Give back a node charged for an expansion that made nothing."""
        with self._lock:
            self.spent.nodes = max(0, self.spent.nodes - 1)

    def charge_test_run(self) -> None:
        with self._lock:
            self._check_time()
            self.spent.test_runs += 1

    def require_enforceable(self, price: Price | None, model: str) -> None:
        """A cost limit on a model without a price must be enforced some other way, never ignored."""
        if price is None and self.limits.cost_limit and not self.limits.max_tokens:
            raise ConfigError(
                f"model {model!r} has no known price, so the cost limit cannot be enforced; "
                "give a price (--price IN,OUT per 1M tokens), a token limit (--max-tokens N), "
                "or turn the cost limit off (-l 0)"
            )

    # ---- model calls ----------------------------------------------------------------------
    def reserve(
        self,
        role: str,
        prompt_tokens: int,
        max_output_tokens: int,
        price: Price | None,
        min_output_tokens: int | None = None,
    ) -> Ticket:
        """Reserve the worst case of one call, or raise BudgetExceeded without spending anything.

        With `min_output_tokens`, a call that does not fit with `max_output_tokens` is given the
        largest reply room that fits (at least `min_output_tokens`): the end of a budget is used
        rather than left idle. `Ticket.output_tokens` is the room reserved, the call's max_tokens."""
        lim, s = self.limits, self.spent
        with self._lock:
            self._check_time()
            if lim.max_turns and s.turns + self._open_turns + 1 > lim.max_turns:
                raise self._refuse("turns", role, s.turns, lim.max_turns, "1 turn")
            out = max_output_tokens
            if min_output_tokens is not None:
                out = max(min(out, self._output_room(role, prompt_tokens, price)), min(min_output_tokens, out))
            tokens = prompt_tokens + out
            cost = price.worst_case(prompt_tokens, out) if price else 0.0
            need = f"{tokens:,} tokens ({prompt_tokens:,} prompt + {out:,} reply)"
            if lim.max_tokens and s.tokens + self._open_tokens + tokens > lim.max_tokens:
                raise self._refuse("tokens", role, s.tokens + self._open_tokens, lim.max_tokens, need)
            if lim.cost_limit and price is not None:
                room = self._cost_room(role)
                if s.cost + self._open_cost + cost > room + 1e-12:
                    used = s.cost + self._open_cost
                    raise self._refuse("cost", role, used, room, f"${cost:.4f} at most for {need}")
            if self._ledger is not None:
                crossed = self._ledger.reserve(cost, tokens, 1)
                if crossed:
                    raise self._refuse(f"global {crossed}", role, None, None, need)
            self._open_cost += cost
            self._open_tokens += tokens
            self._open_turns += 1
        return Ticket(self, role, cost, tokens, output_tokens=out)

    def _cost_room(self, role: str) -> float:
        lim = self.limits
        return lim.cost_limit - (lim.reserve_cost if role != "discriminator" else 0.0)

    def _output_room(self, role: str, prompt_tokens: int, price: Price | None) -> int:
        """The most reply tokens a call with this prompt may reserve now (under the lock)."""
        lim, s = self.limits, self.spent
        room = 10**9
        if lim.max_tokens:
            room = min(room, lim.max_tokens - s.tokens - self._open_tokens - prompt_tokens)
        if lim.cost_limit and price is not None and price.output > 0:
            left = self._cost_room(role) - s.cost - self._open_cost - price.worst_case(prompt_tokens, 0)
            room = min(room, int(left * 1_000_000 / price.output))
        return room

    def _refuse(self, limit: str, role: str, used: float | None, of: float | None, need: str) -> BudgetExceeded:
        """The refusal, remembered so that the run can say which limit stopped it and why."""
        if limit == "cost" and used is not None and of is not None:
            detail = f"${used:.4f} of ${of:.4f} used; the next {role} call needed {need}"
        elif used is not None and of is not None:
            detail = f"{used:,.0f} of {of:,.0f} used; the next {role} call needed {need}"
        else:
            detail = f"the next {role} call needed {need}"
        self.refusal = {"limit": limit, "role": role, "used": used, "limit_value": of, "needed": need,
                        "message": f"{limit} limit reached: {detail}"}  # fmt: skip
        return BudgetExceeded(limit, detail)

    def _settle(self, ticket: Ticket, completion: Completion | None) -> None:
        usage = completion.usage if completion else Usage()
        cost = (completion.cost or 0.0) if completion else 0.0
        tokens = usage.total
        with self._lock:
            if ticket.settled:
                return
            ticket.settled = True
            self._open_cost -= ticket.cost
            self._open_tokens -= ticket.tokens
            self._open_turns -= 1
            if tokens > ticket.tokens or cost > ticket.cost + 1e-12:
                self.overruns += 1  # the estimate undercounted: said in the summary, never hidden
            self.spent.add_call(ticket.role, usage, cost)
            if self._ledger is not None:
                self._ledger.settle((ticket.cost, ticket.tokens, 1), (cost, tokens, 1))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            d = self.spent.to_dict()
            d["elapsed"] = self.elapsed()
            d["by_role"] = {k: dict(v) for k, v in d["by_role"].items()}
            d["stopped_by"] = dict(self.refusal) if self.refusal else None
            d["overruns"] = self.overruns
            return d
