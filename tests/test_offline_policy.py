"""The offline policy end to end: real repositories, real coverage and pytest runs, the real engine."""

import json
import shutil

import pytest
from conftest import make_repo
from scripted import critic

from treefix.agent.budget import Budget, Limits
from treefix.agent.calls import Caller
from treefix.agent.config import RunConfig
from treefix.agent.demo import EXAMPLES, TEST_CMD
from treefix.agent.graph import SearchEngine
from treefix.agent.models.base import ModelError
from treefix.agent.models.scripted import ScriptedModel
from treefix.agent.policies.base import NoCandidate, SearchContext
from treefix.agent.policies.llm import LLMCritic, LLMPolicy
from treefix.agent.policies.offline import SPECTRUM_KEY, OfflineCritic, OfflinePolicy, unified_diff
from treefix.agent.policies.tiered import TieredCritic, TieredPolicy, is_offline
from treefix.agent.run import run_fix
from treefix.agent.select import SearchParams
from treefix.agent.store import RunStore
from treefix.agent.task import Task
from treefix.agent.tree import ExecResult, Node, NodeKind, NodeStatus
from treefix.tools.sandbox import default_sandbox
from treefix.tools.workspace import Workspace

RANGE = {
    "calc/__init__.py": "",
    "calc/ops.py": 'def in_range(x, lo, hi):\n    """Is lo <= x <= hi?"""\n    return lo <= x < hi\n',
    "tests/test_ops.py": "from calc.ops import in_range\n\n\ndef test_top_edge():\n    assert in_range(5, 0, 5)\n",
}
FAST = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # this interpreter's many pytest plugins cost seconds per run
UNFIXABLE = {
    "m.py": "def greet(name, loud=False):\n    if loud:\n        return 'HELLO ' + name\n    return 'hello ' + name\n",
    "tests/test_m.py": "from m import greet\n\n\ndef test_greet():\n    assert greet('bob') == 'Hello, Bob!'\n",
}


def offline(search="mcts", nodes=30):
    return RunConfig(model="offline", search=search, limits=Limits(max_nodes=nodes, cost_limit=0))


def test_textstats_is_fixed_with_plan_code_and_repair_nodes_and_no_model(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "textstats", repo)
    make_repo(repo, {})
    issue = (repo / "ISSUE.md").read_text()
    outcome = run_fix(Task(repo, issue, test_cmd=TEST_CMD, env=FAST), offline(), tmp_path / "run")
    assert outcome.exit_code == 0 and outcome.exit_status == "verified"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["usage"]["model_calls"] == 0 and summary["usage"]["cost"] == 0
    assert all(summary["nodes"][k] >= 1 for k in ("plan", "code", "repair"))
    assert "+    return [w for w, _ in counts.most_common(n)]" in outcome.patch
    assert "+    if not ws:\n+        return 0.0\n" in outcome.patch
    assert sum(ln.startswith("+") and not ln.startswith("+++") for ln in outcome.patch.splitlines()) == 3

    # The spectrum is in the run store: a policy on a resumed run reads it instead of running the tests.
    store = RunStore(tmp_path / "run" / "run.sqlite")
    assert store.get_meta(SPECTRUM_KEY)["outcomes"]
    budget = Budget(Limits(cost_limit=0))
    with Workspace(repo) as ws:
        ctx = SearchContext(
            Task(repo, issue, test_cmd="false"), store, ws, budget, default_sandbox(), SearchParams()
        )
        assert OfflinePolicy().spectrum(ctx).baseline == 0.4
    assert budget.spent.test_runs == 0
    store.close()


@pytest.mark.parametrize("search", ["mcts", "linear"])
def test_only_failing_tests_still_localise_and_the_boundary_is_found(tmp_path, search):
    repo = make_repo(tmp_path / "repo", RANGE)
    outcome = run_fix(
        Task(repo, "in_range(5, 0, 5) is False", test_cmd=TEST_CMD, env=FAST),
        offline(search),
        tmp_path / "run",
    )
    assert outcome.exit_code == 0
    assert "-    return lo <= x < hi\n+    return lo <= x <= hi\n" in outcome.patch


def test_nothing_to_fix_by_operators_ends_unverified_not_in_error(tmp_path):
    repo = make_repo(tmp_path / "repo", UNFIXABLE)
    outcome = run_fix(
        Task(repo, "greet is wrong", test_cmd=TEST_CMD, env=FAST), offline(nodes=12), tmp_path / "run"
    )
    assert outcome.exit_code == 1
    tree = json.loads((tmp_path / "run" / "tree.json").read_text())
    assert {n["kind"] for n in tree["nodes"]} >= {"plan", "code"}
    assert "repair" not in {n["kind"] for n in tree["nodes"]}  # nothing beat the base: no second edits


def test_repairs_only_below_improving_attempts_and_never_twice_the_same(tmp_path):
    repo = make_repo(tmp_path / "repo", RANGE)
    store = RunStore(tmp_path / "run.sqlite")
    with Workspace(repo) as ws:
        ctx = SearchContext(
            Task(repo, "in_range", test_cmd=TEST_CMD, env=FAST),
            store,
            ws,
            Budget(Limits(cost_limit=0)),
            default_sandbox(),
            SearchParams(),
        )
        policy = OfflinePolicy()
        root = store.add(Node(NodeKind.ROOT, None, 0))
        plan = policy.plan(ctx, root)
        assert "calc/ops.py:3" in plan.title and plan.prior > 0
        plan_node = store.add(Node(NodeKind.PLAN, root.id, 1, content=plan.content, title=plan.title))
        first = policy.code(ctx, plan_node)
        changed = [ln for ln in first.diff.splitlines()[2:] if ln[:1] in "+-"]
        assert changed == ["-    return lo <= x < hi", "+    return lo < x < hi"]
        store.add(Node(NodeKind.CODE, plan_node.id, 2, content=first.content, diff=first.diff))
        second = policy.code(ctx, plan_node)
        assert second.content != first.content and second.prior <= first.prior
        failing = Node(NodeKind.CODE, plan_node.id, 2, exec=ExecResult(passed=0, failed=1))
        with pytest.raises(NoCandidate):
            policy.repair(ctx, failing)
        half = store.add(
            Node(NodeKind.CODE, plan_node.id, 2, diff=first.diff, exec=ExecResult(passed=1, failed=1))
        )
        assert policy.repair(ctx, half).diff  # beats the base (0 of 1 passed): worth a second edit
        same = Node(NodeKind.REPAIR, half.id, 3, diff=first.diff, exec=ExecResult(passed=1, failed=1))
        with pytest.raises(NoCandidate):
            policy.repair(ctx, same)  # no better than its parent: no third edit
    store.close()


def test_unified_diff_marks_a_missing_final_newline():
    diff = unified_diff("a.py", "x = 1", "x = 2")
    assert diff.startswith("--- a/a.py\n+++ b/a.py\n")
    assert diff.endswith("+x = 2\n\\ No newline at end of file\n")


# --- --tier offline: offline candidates first, then the model ----------------------------------

GREET_FIX = "m.py\n<<<<<<< SEARCH\n    return 'hello ' + name\n=======\n    return f'Hello, {name.title()}!'\n>>>>>>> REPLACE\n"


def tiered_search(tmp_path, files, responder, nodes):
    repo = make_repo(tmp_path / "repo", files)
    store = RunStore(tmp_path / "run.sqlite")
    budget = Budget(Limits(max_nodes=nodes, cost_limit=0))
    model = ScriptedModel(responder)
    workspace = Workspace(repo)
    task = Task(repo, "greet('bob') should be 'Hello, Bob!'", test_cmd=TEST_CMD, env=FAST)
    ctx = SearchContext(
        task, store, workspace, budget, default_sandbox(), SearchParams(), caller=Caller(model, budget, 512)
    )
    store.add(Node(NodeKind.ROOT, None, 0, status=NodeStatus.DONE))
    policy = TieredPolicy(OfflinePolicy(), LLMPolicy(), share=0.3)
    engine = SearchEngine(ctx, policy, TieredCritic(OfflineCritic(), LLMCritic()))
    try:
        engine.build().invoke({"iteration": 0, "batch": []}, {"recursion_limit": 10**6})
    finally:
        engine.close()
        workspace.close()
    return store, model


def test_tier_offline_fixes_what_it_can_without_a_model_call(tmp_path):
    store, model = tiered_search(
        tmp_path, RANGE, lambda role, messages: ModelError("no model needed"), nodes=10
    )
    assert any(n.verified for n in store.nodes()) and model.calls == []
    assert all(is_offline(n) for n in store.nodes() if n.kind is not NodeKind.ROOT)
    store.close()


def test_tier_offline_hands_over_to_the_model_after_its_share(tmp_path):
    def respond(role, messages):
        return {"plan": "TITLE: capitalise\nm.py greet must title-case", "code": GREET_FIX}.get(
            role, critic(0.9)
        )

    store, model = tiered_search(tmp_path, UNFIXABLE, respond, nodes=10)
    made = [n for n in store.nodes() if n.kind is not NodeKind.ROOT]
    offline_nodes = [n for n in made if is_offline(n)]
    assert offline_nodes and is_offline(made[0])  # offline first
    assert len(offline_nodes) <= 3  # its share of 10 nodes
    winner = next(n for n in made if n.verified)
    assert not is_offline(winner) and "name.title()" in winner.diff
    critic_calls = [role for role, _ in model.calls if role == "critic"]
    assert len(critic_calls) == len(made) - len(offline_nodes)  # offline nodes are judged for free
    store.close()
