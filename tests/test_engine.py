"""Whole searches with scripted models: real git worktrees, real pytest runs, the real graph."""

import json

import pytest
from conftest import make_repo
from scripted import BUGGY, PLAN, REPAIR, RIGHT, TEST_CMD, WRONG, critic

from treefix.agent.budget import Limits
from treefix.agent.config import RunConfig
from treefix.agent.models.base import ModelError
from treefix.agent.models.scripted import ScriptedModel
from treefix.agent.run import run_fix
from treefix.agent.task import Task
from treefix.agent.tree import NodeKind


def run_with(tmp_path, responder, monkeypatch, **limits):
    """run_fix with a scripted model handed in."""
    model = ScriptedModel(responder)
    repo = make_repo(tmp_path / "repo", BUGGY)
    config = RunConfig(model="scripted", limits=Limits(**{"cost_limit": 0, "max_nodes": 8, **limits}))
    task = Task(repo=repo, problem_statement="clamp(9, 0, 5) returns 0, expected 5", test_cmd=TEST_CMD)
    return run_fix(task, config, tmp_path / "run", model=model), model


def test_plan_code_repair_finds_the_fix(tmp_path, monkeypatch):
    replies = {"plan": [PLAN], "code": [WRONG], "repair": [REPAIR]}

    def respond(role, messages):
        if role == "critic":
            return critic(0.4, advice="return hi, not lo")
        return replies[role].pop(0)

    outcome, model = run_with(tmp_path, respond, monkeypatch)
    assert outcome.exit_code == 0 and outcome.exit_status == "verified"
    tree = json.loads((tmp_path / "run" / "tree.json").read_text())
    assert tree["format"] == "treefix.tree/1"
    kinds = [n["kind"] for n in tree["nodes"]]
    assert kinds == ["root", "plan", "code", "repair"]
    assert "return hi" in (tmp_path / "run" / "patch.diff").read_text()
    repair_prompt = next(m for role, m in model.calls if role == "repair")[-1].content
    assert "1 passed" in repair_prompt or "passed" in repair_prompt  # the parent's test output reached it
    assert "rated 0.4" in repair_prompt  # and the critic's rationale
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    roles = summary["usage"]["by_role"]
    assert set(roles) == {"plan", "code", "repair", "critic"}
    assert sum(r["turns"] for r in roles.values()) == summary["usage"]["turns"] == 6


def test_critic_advice_reaches_the_next_sibling(tmp_path, monkeypatch):
    codes = [WRONG, WRONG, RIGHT]

    def respond(role, messages):
        if role == "critic":
            return critic(0.2, advice="ADVICE-FOR-SIBLING")
        if role == "plan":
            return PLAN
        if role == "repair":
            return ModelError("repairs disabled in this test")
        return codes.pop(0)

    outcome, model = run_with(tmp_path, respond, monkeypatch, max_nodes=12)
    code_prompts = [m[-1].content for role, m in model.calls if role == "code"]
    assert "ADVICE-FOR-SIBLING" not in code_prompts[0]
    assert any("ADVICE-FOR-SIBLING" in p for p in code_prompts[1:])


def test_failed_critic_still_counts_the_visit(tmp_path, monkeypatch):
    def respond(role, messages):
        if role == "critic":
            return ModelError("critic is down")
        return {"plan": PLAN, "code": RIGHT}[role]

    outcome, _ = run_with(tmp_path, respond, monkeypatch)
    tree = json.loads((tmp_path / "run" / "tree.json").read_text())
    code = next(n for n in tree["nodes"] if n["kind"] == "code")
    assert code["visits"] == 1 and code["judgement"]["failed"]
    assert code["value"] == 1.0  # execution score alone
    assert outcome.exit_code == 0


def test_unusable_reply_is_reported_back_and_scored_zero(tmp_path, monkeypatch):
    replies = {"plan": [PLAN], "code": ["I would change the function."], "repair": [RIGHT]}

    def respond(role, messages):
        return critic(0.1) if role == "critic" else replies[role].pop(0)

    outcome, model = run_with(tmp_path, respond, monkeypatch)
    tree = json.loads((tmp_path / "run" / "tree.json").read_text())
    code = next(n for n in tree["nodes"] if n["kind"] == "code")
    assert code["exec"]["applied"] is False and code["value"] == 0.0
    repair_prompt = next(m for role, m in model.calls if role == "repair")[-1].content
    assert "no SEARCH/REPLACE blocks" in repair_prompt
    assert outcome.exit_code == 0


def test_node_limit_is_an_exit_status_and_best_is_still_returned(tmp_path, monkeypatch):
    def respond(role, messages):
        return critic(0.3) if role == "critic" else {"plan": PLAN}.get(role, WRONG)

    outcome, _ = run_with(tmp_path, respond, monkeypatch, max_nodes=3)
    assert outcome.exit_status == "limit:nodes" and outcome.exit_code == 1
    assert outcome.patch  # the best unverified candidate is still submitted
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert sum(summary["nodes"].values()) == 4  # root + 3


def test_budget_before_any_candidate_exits_3(tmp_path, monkeypatch):
    outcome, model = run_with(tmp_path, lambda role, m: PLAN, monkeypatch, max_turns=1)
    assert outcome.exit_code == 3 and outcome.exit_status.startswith("limit:")
    assert len(model.calls) == 1


@pytest.mark.parametrize("strategy", ["linear", "best-of-n", "greedy"])
def test_other_strategies_run(tmp_path, monkeypatch, strategy):
    model = ScriptedModel(lambda role, m: critic(0.5) if role == "critic" else {"plan": PLAN}.get(role, RIGHT))
    repo = make_repo(tmp_path / "repo", BUGGY)
    config = RunConfig(model="scripted", search=strategy, limits=Limits(cost_limit=0, max_nodes=6))
    outcome = run_fix(Task(repo=repo, problem_statement="bug", test_cmd=TEST_CMD), config, tmp_path / "run", model=model)
    assert outcome.exit_code == 0
    kinds = [n["kind"] for n in json.loads((tmp_path / "run" / "tree.json").read_text())["nodes"]]
    assert kinds[:3] == ["root", "plan", "code"]


def test_parallel_workers_share_one_tree(tmp_path, monkeypatch):
    def respond(role, messages):
        return critic(0.3) if role == "critic" else {"plan": PLAN}.get(role, WRONG)

    model = ScriptedModel(respond)
    repo = make_repo(tmp_path / "repo", BUGGY)
    config = RunConfig(model="scripted", workers=3, limits=Limits(cost_limit=0, max_nodes=10))
    outcome = run_fix(Task(repo=repo, problem_statement="bug", test_cmd=TEST_CMD), config, tmp_path / "run", model=model)
    tree = json.loads((tmp_path / "run" / "tree.json").read_text())
    nodes = tree["nodes"]
    duplicates = sum(n["evidence"].get("duplicates", 0) for n in nodes)  # the same fix again: a vote, no node
    assert len(nodes) + duplicates == 11 and len({n["id"] for n in nodes}) == len(nodes)
    root = nodes[0]
    assert root["visits"] == 10  # every node (and every vote) backed up exactly once
    assert all(n["kind"] != NodeKind.ROOT.value for n in nodes[1:])
    assert outcome.exit_status == "limit:nodes"


def test_a_model_that_keeps_failing_ends_the_run(tmp_path, monkeypatch):
    outcome, model = run_with(tmp_path, lambda role, m: ModelError("server down"), monkeypatch, max_nodes=20)
    assert outcome.exit_status == "model_error" and outcome.exit_code == 1
    assert len(model.calls) == 3


def test_plans_may_look_around_with_tools_first(tmp_path, monkeypatch):
    from treefix.agent.models.base import Completion, ToolCall, Usage

    plan_replies = [
        Completion("", [ToolCall("t1", "view", {"path": "calc/ops.py"})], Usage(50, 5)),
        PLAN,
    ]

    def respond(role, messages):
        if role == "plan":
            return plan_replies.pop(0)
        return critic(0.5) if role == "critic" else RIGHT

    outcome, model = run_with(tmp_path, respond, monkeypatch)
    assert outcome.exit_code == 0
    second_plan_call = [m for role, m in model.calls if role == "plan"][1]
    tool_result = next(m for m in second_plan_call if m.role == "tool")
    assert "return lo" in tool_result.content  # the file as it is at base, with line numbers
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["usage"]["by_role"]["plan"]["turns"] == 2


def test_malformed_edit_blocks_are_feedback_not_a_crash(tmp_path, monkeypatch):
    broken = "calc/ops.py\n<<<<<<< SEARCH\n    if x > hi:\n        return lo\n"  # no ======= nor REPLACE
    replies = {"plan": [PLAN], "code": [broken], "repair": [RIGHT]}

    def respond(role, messages):
        return critic(0.1) if role == "critic" else replies[role].pop(0)

    outcome, model = run_with(tmp_path, respond, monkeypatch)
    tree = json.loads((tmp_path / "run" / "tree.json").read_text())
    code = next(n for n in tree["nodes"] if n["kind"] == "code")
    assert code["exec"]["applied"] is False and "could not be read" in code["exec"]["message"]
    assert outcome.exit_code == 0  # the repair, told why, fixed it


def test_offline_tier_tries_free_candidates_before_the_model(tmp_path, monkeypatch):
    def respond(role, messages):
        return critic(0.5) if role == "critic" else {"plan": PLAN}.get(role, RIGHT)

    model = ScriptedModel(respond)
    repo = make_repo(tmp_path / "repo", BUGGY)
    config = RunConfig(model="scripted", tier="offline", limits=Limits(cost_limit=0, max_nodes=20))
    outcome = run_fix(Task(repo=repo, problem_statement="clamp(9, 0, 5) returns 0", test_cmd=TEST_CMD), config, tmp_path / "run", model=model)
    tree = json.loads((tmp_path / "run" / "tree.json").read_text())
    first_plan = next(n for n in tree["nodes"] if n["kind"] == "plan")
    assert first_plan["title"].startswith("suspicious")  # an offline fault-localisation plan
    assert outcome.exit_code == 0
    assert model.calls == []  # the offline tier found the fix: not one token spent, not even on a critic
    assert outcome.summary["tier"] == "offline" and outcome.summary["usage"]["model_calls"] == 0
