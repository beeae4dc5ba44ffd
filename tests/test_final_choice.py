"""The final choice (verified first, votes over normalised diffs, discriminator with evidence, best
value), identical siblings folded into one node, and the stop rule."""

import json

import pytest
from conftest import make_repo
from scripted import BUGGY, PLAN, WRONG, critic

from treefix.agent.budget import Budget, Limits
from treefix.agent.calls import Caller
from treefix.agent.config import RunConfig
from treefix.agent.expand import expand
from treefix.agent.graph import strong
from treefix.agent.models.scripted import ScriptedModel
from treefix.agent.outputs import choose
from treefix.agent.policies.base import Candidate, SearchContext
from treefix.agent.run import run_fix
from treefix.agent.select import SearchParams
from treefix.agent.store import RunStore
from treefix.agent.task import Task
from treefix.agent.tree import ExecResult, Node, NodeKind, NodeStatus
from treefix.tools.sandbox import default_sandbox
from treefix.tools.workspace import Workspace

# A test command without pytest's start-up time: its exit code is the verdict.
QUICK_CMD = "python -c \"from calc.ops import clamp; assert clamp(9, 0, 5) == 5\""


def diff(new: str, index: str = "abc..def", at: int = 1) -> str:
    return (
        f"diff --git a/calc/ops.py b/calc/ops.py\nindex {index} 100644\n--- a/calc/ops.py\n+++ b/calc/ops.py\n"
        f"@@ -{at},1 +{at},1 @@\n-old\n+{new}\n"
    )


@pytest.fixture
def ctx(tmp_path):
    repo = make_repo(tmp_path / "repo", BUGGY)
    store = RunStore(tmp_path / "run.sqlite")
    ws = Workspace(repo)
    root = store.add(Node(NodeKind.ROOT, None, 0, status=NodeStatus.DONE))
    plan = store.add(Node(NodeKind.PLAN, root.id, 1, status=NodeStatus.DONE))
    c = SearchContext(Task(repo, "bug"), store, ws, Budget(Limits(cost_limit=0)), default_sandbox(), SearchParams())
    c.plan_id = plan.id  # type: ignore[attr-defined]
    yield c
    ws.close()
    store.close()


def attempt(ctx, d: str, value: float, verified: bool = True, **evidence) -> Node:
    ev = {"verified_by": "reproduction" if verified else "", "reproductions": {"r": "passed" if verified else "failed"},
          "reproduced": int(verified), "regression_count": 0, "regressions": [], "regression_tests": 3, **evidence}  # fmt: skip
    node = Node(NodeKind.CODE, ctx.plan_id, 2, status=NodeStatus.DONE, diff=d, value=value, exec=ExecResult(passed=1))
    node.evidence = ev
    return ctx.store.add(node)


def test_votes_of_identical_fixes_reached_by_different_paths_decide(ctx):
    a = attempt(ctx, diff("fix A"), 0.9)
    b1 = attempt(ctx, diff("fix B", index="111..222", at=7), 0.6)
    attempt(ctx, diff("fix B", index="333..444", at=9), 0.5)  # the same edit elsewhere in the file's history
    choice = choose(ctx, ctx.store)
    assert choice.rule == "votes" and choice.node.id == b1.id
    assert choice.votes == {a.id: 1, b1.id: 2}


def test_a_tie_goes_to_the_discriminator_shown_each_candidates_evidence(ctx):
    attempt(ctx, diff("fix A"), 0.9)
    b = attempt(ctx, diff("fix B"), 0.6)
    model = ScriptedModel(lambda role, messages: "Candidate 2")
    ctx.caller = Caller(model, ctx.budget, 256)
    choice = choose(ctx, ctx.store)
    assert choice.rule == "discriminator" and choice.node.id == b.id
    prompt = model.calls[0][1][-1].content
    assert prompt.count("Reproduction tests (they fail on the unchanged code): 1 of 1 now pass") == 2


def test_without_a_discriminator_a_tie_goes_to_the_best_value(ctx):
    a = attempt(ctx, diff("fix A"), 0.9)
    attempt(ctx, diff("fix B"), 0.6)
    choice = choose(ctx, ctx.store)
    assert choice.rule == "best-value" and choice.node.id == a.id


def test_a_candidate_with_a_regression_is_never_offered(ctx):
    attempt(ctx, diff("breaks"), 0.99, verified=False, regression_count=1, regressions=["t::x"])
    quiet = attempt(ctx, diff("harmless"), 0.2, verified=False)
    choice = choose(ctx, ctx.store)
    assert choice.node.id == quiet.id and choice.rule == "best-value"


def test_the_stop_rule_needs_strong_evidence():
    weak = Node(NodeKind.CODE, "p", 2, evidence={"verified_by": "reproduction", "strong": False})
    firm = Node(NodeKind.CODE, "p", 2, evidence={"verified_by": "reproduction", "strong": True})
    given = Node(NodeKind.CODE, "p", 2, exec=ExecResult(passed=2))  # the user's tests pass
    assert weak.verified and not strong(weak)
    assert strong(firm) and strong(given)
    assert not strong(Node(NodeKind.CODE, "p", 2, exec=ExecResult(passed=1, failed=1)))


class SameFix:
    """A policy that proposes the same edit every time."""

    name = "scripted"

    def code(self, ctx, plan):
        return Candidate("same fix", edits=WRONG)


def test_identical_siblings_are_one_node(ctx):
    first = expand(ctx, SameFix(), ctx.plan_id)
    again = expand(ctx, SameFix(), ctx.plan_id)
    assert again.id == first.id and again.votes == 2
    assert [c.id for c in ctx.store.children(ctx.plan_id)] == [first.id]
    assert len(ctx.store.events("duplicate")) == 1 and ctx.budget.spent.nodes == 2  # charged all the same


def test_a_repeated_fix_costs_no_second_test_run_or_critic_call(tmp_path):
    """The model writes the same wrong fix again and again, on three workers: stored, run and judged once per parent."""
    model = ScriptedModel(lambda role, m: critic(0.3) if role == "critic" else {"plan": PLAN}.get(role, WRONG))
    repo = make_repo(tmp_path / "repo", BUGGY)
    config = RunConfig(model="scripted", workers=3, limits=Limits(cost_limit=0, max_nodes=10))
    outcome = run_fix(Task(repo=repo, problem_statement="bug", test_cmd=QUICK_CMD), config, tmp_path / "run", model=model)
    tree = json.loads((tmp_path / "run" / "tree.json").read_text())
    store = RunStore(tmp_path / "run" / "run.sqlite")
    duplicates, tests = store.events("duplicate"), store.events("test")
    store.close()
    codes = [n for n in tree["nodes"] if n["kind"] == "code"]
    assert len({c["parent"] for c in codes}) == len(codes)  # one node per parent and diff
    assert sum(c["evidence"].get("duplicates", 0) for c in codes) == len(duplicates)
    applied = [n for n in tree["nodes"] if n["kind"] in ("code", "repair") and n["exec"] and n["exec"]["applied"]]
    assert len(tests) == len(applied)  # no test run for a duplicate
    judged = [n for n in tree["nodes"] if n["judgement"] is not None]
    assert sum(role == "critic" for role, _ in model.calls) == len(judged)
    assert len(tree["nodes"]) - 1 + len(duplicates) == 10 and outcome.exit_status == "limit:nodes"
    # the same fix reached under several plans (and again under one): all votes for one diff
    assert list(outcome.summary["choice"]["votes"].values()) == [len(codes) + len(duplicates)]
