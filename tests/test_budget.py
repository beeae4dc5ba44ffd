"""Budgets are hard: checked before every call, node and test run, and never crossed."""

import json
import random

import pytest
from conftest import make_repo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scripted import BUGGY, PLAN, WRONG, critic

from treefix.agent.budget import Budget, BudgetExceeded, Limits
from treefix.agent.config import RunConfig
from treefix.agent.errors import ConfigError
from treefix.agent.models.base import Completion, Price, Usage
from treefix.agent.models.scripted import ScriptedModel
from treefix.agent.run import run_fix
from treefix.agent.task import Task


def test_reservation_counts_the_worst_case():
    b = Budget(Limits(cost_limit=1.0))
    price = Price(input=1000.0, output=1000.0)  # $0.001 per token
    t = b.reserve("plan", 400, 400, price)  # worst case $0.80
    with pytest.raises(BudgetExceeded) as e:
        b.reserve("code", 100, 200, price)  # $0.30 more would cross $1.00 while the first is open
    assert e.value.limit == "cost"
    t.settle(Completion("x", usage=Usage(400, 10), cost=0.41))
    b.reserve("code", 100, 200, price).settle(None)
    assert b.spent.cost == pytest.approx(0.41) and b.spent.turns == 2


def test_turn_token_node_and_time_limits():
    b = Budget(Limits(cost_limit=0, max_turns=2, max_tokens=1000, max_nodes=1))
    b.reserve("plan", 10, 10, None).settle(None)
    with pytest.raises(BudgetExceeded, match="tokens"):
        b.reserve("plan", 991, 10, None)  # 1001 tokens in the worst case
    b.reserve("plan", 10, 10, None).settle(None)
    with pytest.raises(BudgetExceeded, match="turns"):
        b.reserve("plan", 1, 1, None)
    b.charge_node()
    with pytest.raises(BudgetExceeded, match="nodes"):
        b.charge_node()
    ticks = iter([0.0, 5.0, 11.0, 11.0, 11.0])
    timed = Budget(Limits(time_limit=10), clock=lambda: next(ticks))
    timed.charge_test_run()
    with pytest.raises(BudgetExceeded, match="time"):
        timed.charge_test_run()


def test_unpriced_model_needs_another_limit():
    with pytest.raises(ConfigError, match="no known price"):
        Budget(Limits(cost_limit=3.0)).require_enforceable(None, "openai/mystery")
    Budget(Limits(cost_limit=3.0, max_tokens=10_000)).require_enforceable(None, "openai/mystery")
    Budget(Limits(cost_limit=0)).require_enforceable(None, "openai/mystery")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10**6),
    cost_limit=st.floats(0.001, 0.05),
    max_turns=st.integers(1, 12),
    max_tokens=st.integers(500, 20_000),
    price_in=st.floats(0.1, 20.0),
    price_out=st.floats(0.1, 60.0),
)
def test_random_scripted_runs_never_cross_a_limit(
    tmp_path_factory, monkeypatch, seed, cost_limit, max_turns, max_tokens, price_in, price_out
):
    rng = random.Random(seed)
    max_out = rng.randint(50, 800)

    def respond(role, messages):
        text = critic(rng.random()) if role == "critic" else (PLAN if role == "plan" else WRONG)
        # a provider may bill any prompt size its tokenizer gives (never more tokens than bytes)
        # and any completion size up to the max_tokens it was given
        prompt_bytes = sum(len(m.content.encode()) for m in messages)
        return Completion(text, usage=Usage(rng.randint(1, prompt_bytes), rng.randint(1, max_out)))

    model = ScriptedModel(respond, price=Price(price_in, price_out))
    tmp = tmp_path_factory.mktemp("run")
    repo = make_repo(tmp / "repo", BUGGY)
    limits = Limits(cost_limit=cost_limit, max_turns=max_turns, max_tokens=max_tokens, max_nodes=10, max_output_tokens=max_out)
    outcome = run_fix(Task(repo=repo, problem_statement="bug"), RunConfig(model="scripted", limits=limits), tmp / "run", model=model)
    usage = json.loads((tmp / "run" / "summary.json").read_text())["usage"]
    assert usage["cost"] <= cost_limit + 1e-12
    assert usage["turns"] <= max_turns
    assert usage["tokens"] <= max_tokens
    roles = usage["by_role"].values()
    assert sum(r["cost"] for r in roles) == pytest.approx(usage["cost"])
    assert sum(r["turns"] for r in roles) == usage["turns"] == len(model.calls)
    assert outcome.exit_code in (1, 3)
