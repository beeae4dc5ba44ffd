"""Property tests: no mix of usages, prices, retries and failures lets spend cross a limit."""

import multiprocessing
import os
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from treefix.agent.budget import Budget, BudgetExceeded, Limits
from treefix.agent.calls import Caller, prompt_bound
from treefix.agent.ledger import GlobalLimits, SqliteLedger
from treefix.agent.models.base import Completion, Message, ModelError, Price, Usage
from treefix.agent.models.retry import Failure, report

ROLES = ["plan", "code", "repair", "critic", "discriminator"]
EPS = 1e-9


@dataclass
class Step:
    role: str
    words: int  # prompt size
    retries: list[bool]  # maybe_billed of each failed attempt before the answer
    fail: bool  # the call ends in a ModelError
    f_in: float  # reported prompt tokens as a fraction of the caller's estimate
    f_out: float  # reported output tokens as a fraction of max_tokens
    f_cached: float
    f_write: float


@dataclass
class RandomModel:
    """Reports random usage within what the server would allow: prompt <= estimate, output <= max_tokens."""

    price_: Price | None
    name: str = "random"
    steps: list[Step] = field(default_factory=list)

    def price(self) -> Price | None:
        return self.price_

    def complete(self, messages, tools=None, *, max_tokens, on_attempt=None, **params) -> Completion:
        step = self.steps.pop(0)
        for i, maybe_billed in enumerate(step.retries, 1):
            if on_attempt is not None:
                report(on_attempt, Failure(i, "HTTP 500", maybe_billed))
        if step.fail:
            raise ModelError("gave up")
        prompt = int(prompt_bound(messages, tools) * step.f_in)
        cached = int(prompt * step.f_cached)
        written = int((prompt - cached) * step.f_write)
        usage = Usage(prompt, int(max_tokens * step.f_out), cached, written)
        return Completion("ok", usage=usage, cost=self.price_.cost(usage) if self.price_ else None)


fractions = st.floats(0.0, 1.0)
steps = st.builds(
    Step,
    role=st.sampled_from(ROLES),
    words=st.integers(1, 800),
    retries=st.lists(st.booleans(), max_size=3),
    fail=st.integers(0, 9).map(lambda n: n < 2),
    f_in=st.floats(0.5, 1.0),
    f_out=fractions,
    f_cached=fractions,
    f_write=fractions,
)


@st.composite
def prices(draw) -> Price:
    inp = draw(st.floats(0.01, 5.0))
    cached = draw(st.none() | st.floats(0.0, 1.0).map(lambda f: f * inp))
    write = draw(st.none() | st.floats(1.0, 2.0).map(lambda f: f * inp))
    return Price(inp, draw(st.floats(0.01, 25.0)), cached, write)


def check_totals(budget: Budget) -> None:
    s = budget.snapshot()
    roles = s["by_role"].values()
    assert sum(r["cost"] for r in roles) == pytest.approx(s["cost"], abs=EPS)
    assert sum(r["turns"] for r in roles) == s["turns"]
    assert sum(r["input_tokens"] + r["output_tokens"] for r in roles) == s["tokens"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    price=prices(),
    cost_limit=st.floats(0.0005, 0.05),
    max_out=st.integers(16, 2000),
    reserve=st.floats(0.0, 0.5),
    plan=st.lists(steps, min_size=1, max_size=40),
)
def test_spend_never_crosses_the_cost_limit(price, cost_limit, max_out, reserve, plan):
    limits = Limits(cost_limit=cost_limit, max_output_tokens=max_out, reserve_cost=cost_limit * reserve)
    budget = Budget(limits)
    model = RandomModel(price, steps=list(plan))
    caller = Caller(model, budget, max_out)
    for step in plan:
        prompt = [Message("system", "static prefix", cache=True), Message("user", "word " * step.words)]
        try:
            caller(step.role, prompt)
        except (BudgetExceeded, ModelError):
            pass
        if model.steps and model.steps[0] is step:  # refused before the call: the step was not used
            model.steps.pop(0)
        assert budget.spent.cost <= cost_limit + EPS
        searching = sum(r["cost"] for role, r in budget.spent.by_role.items() if role != "discriminator")
        assert searching <= cost_limit - limits.reserve_cost + EPS  # the final-selection reserve is kept back
    target(budget.spent.cost / cost_limit)  # steer towards runs that spend up to the limit
    check_totals(budget)


def test_a_long_run_spends_close_to_the_limit_but_not_over():
    rng = random.Random(7)
    plan = [
        Step(rng.choice(ROLES), rng.randint(50, 400), [rng.random() < 0.5], False, 1.0, 1.0, 0.3, 0.2)
        for _ in range(200)
    ]
    budget = Budget(Limits(cost_limit=0.05))
    caller = Caller(RandomModel(Price(3.0, 15.0, 0.3, 3.75), steps=list(plan)), budget, 500)
    refused = 0
    for step in plan:
        before = len(caller.model.steps)
        try:
            caller(step.role, [Message("user", "word " * step.words)])
        except BudgetExceeded:
            refused += 1
            if len(caller.model.steps) == before:  # refused before the call, not during a retry
                caller.model.steps.pop(0)
    assert 0.04 < budget.spent.cost <= 0.05 and refused > 0
    check_totals(budget)


@settings(max_examples=40, deadline=None)
@given(
    max_turns=st.integers(1, 15),
    max_tokens=st.integers(500, 20_000),
    plan=st.lists(steps, min_size=1, max_size=30),
)
def test_turns_and_tokens_hold_with_retries(max_turns, max_tokens, plan):
    budget = Budget(Limits(cost_limit=0, max_turns=max_turns, max_tokens=max_tokens))
    model = RandomModel(None, steps=list(plan))
    caller = Caller(model, budget, 200)
    for step in plan:
        try:
            caller(step.role, [Message("user", "word " * step.words)])
        except (BudgetExceeded, ModelError):
            pass
        if model.steps and model.steps[0] is step:
            model.steps.pop(0)
        assert budget.spent.turns <= max_turns  # every retry is a turn, and none runs past the limit
        assert budget.spent.tokens <= max_tokens
    check_totals(budget)


# ---- the global ledger across processes -------------------------------------------------------
GLOBAL = GlobalLimits(cost=0.02, tokens=0, turns=400)
PRICE = Price(3.0, 15.0, 0.3, 3.75)


def _worker(path: str, seed: int, out: "multiprocessing.Queue[tuple[float, int, int]]") -> None:
    ledger = SqliteLedger(Path(path), GLOBAL)
    totals: list[Budget] = []

    def thread(n: int) -> None:
        rng = random.Random(seed * 100 + n)
        budget = Budget(Limits(cost_limit=0, max_nodes=0), ledger=ledger)
        totals.append(budget)
        for _ in range(40):
            prompt, max_out = rng.randint(10, 800), rng.randint(10, 400)
            try:
                ticket = budget.reserve(rng.choice(ROLES), prompt, max_out, PRICE)
            except BudgetExceeded:
                continue
            usage = Usage(rng.randint(0, prompt), rng.randint(0, max_out))
            ticket.settle(Completion("", usage=usage, cost=PRICE.cost(usage)) if rng.random() > 0.1 else None)

    threads = [threading.Thread(target=thread, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(
        (
            sum(b.spent.cost for b in totals),
            sum(b.spent.tokens for b in totals),
            sum(b.spent.turns for b in totals),
        )
    )


def test_global_ledger_holds_across_processes_and_threads(tmp_path):
    path = tmp_path / "ledger.sqlite"
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(path), seed, out)) for seed in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    t = SqliteLedger(path, GLOBAL).totals()
    assert t.cost <= GLOBAL.cost + EPS and t.turns <= GLOBAL.turns
    assert (t.open_cost, t.open_tokens, t.open_turns) == (0, 0, 0)
    assert t.cost == pytest.approx(sum(r[0] for r in results))
    assert (t.tokens, t.turns) == (sum(r[1] for r in results), sum(r[2] for r in results))
    assert t.cost > GLOBAL.cost * 0.5  # the workers really competed for the limit


def _reserve_and_die(path: str) -> None:
    SqliteLedger(Path(path), GLOBAL).reserve(0.015, 10, 1)
    os._exit(0)


def test_reservations_of_a_dead_worker_are_released(tmp_path):
    path = tmp_path / "ledger.sqlite"
    p = multiprocessing.get_context("fork").Process(target=_reserve_and_die, args=(str(path),))
    p.start()
    p.join(timeout=30)
    ledger = SqliteLedger(path, GLOBAL)
    assert ledger.totals().open_cost == pytest.approx(0.015)
    assert ledger.reserve(0.015, 10, 1) is None  # the dead worker's hold is gone
    assert ledger.reserve(0.015, 10, 1) == "cost"  # but a live one's is not
