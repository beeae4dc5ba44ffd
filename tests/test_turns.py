"""Turn control: reminders in the prompt at the right turns, extensions only when their rule holds,
and never a turn past the hard cap. Whole runs use real git, real pytest and the real graph."""

import json

import pytest
from conftest import make_repo
from scripted import BUGGY, PLAN, TEST_CMD, WRONG, critic

from treefix.agent.budget import Limits
from treefix.agent.config import RunConfig, build_config
from treefix.agent.errors import ConfigError
from treefix.agent.models.base import Completion, Message, ToolCall, Usage
from treefix.agent.models.scripted import ScriptedModel
from treefix.agent.run import run_fix
from treefix.agent.task import Task
from treefix.agent.tool_loop import run_tool_loop
from treefix.agent.turns import TurnControl, parse_turn_cap, percentile

LOOK = Completion("", [ToolCall("t", "view", {"path": "calc/ops.py"})], Usage(10, 5))


def reminders(calls):
    """Per call, the reminder the model was shown just before it (or None)."""
    out = []
    for _, messages in calls:
        last = messages[-1]
        out.append(last.content if last.role == "user" and last.content.startswith("Turn reminder") else None)
    return out


def run_with(tmp_path, respond, **config):
    model = ScriptedModel(respond)
    repo = make_repo(tmp_path / "repo", BUGGY)
    limits = Limits(**{"cost_limit": 0, "max_nodes": 6, **config.pop("limits", {})})
    cfg = RunConfig(model="scripted", limits=limits, **config)
    task = Task(repo=repo, problem_statement="clamp(9, 0, 5) returns 0, expected 5", test_cmd=TEST_CMD)
    events = []
    outcome = run_fix(task, cfg, tmp_path / "run", on_event=lambda k, d: events.append((k, d)), model=model)
    return outcome, model, events


def test_fixed_reminders_count_down_in_the_plan_prompt(tmp_path):
    """turns_per_node 7: 6 look-around turns, reminders before the last 3 of them (3, 2, 1 left)."""

    def respond(role, messages):
        if role == "plan":
            return LOOK
        return critic(0.1) if role == "critic" else WRONG

    _, model, _ = run_with(tmp_path, respond, turn_control="fixed", limits={"turns_per_node": 7, "max_nodes": 1})
    plan_calls = [c for c in model.calls if c[0] == "plan"]
    shown = reminders(plan_calls)
    assert shown[:3] == [None, None, None]
    assert "3 turns left for this step" in shown[3]
    assert "2 turns left" in shown[4]
    assert "1 turn left" in shown[5] and "final answer" in shown[5]
    assert "EXTEND" not in shown[3]  # fixed caps cannot be extended: the model is not invited to ask
    assert len(plan_calls) == 7  # 6 tool turns and the answer


def test_no_turn_control_sends_no_reminder(tmp_path):
    def respond(role, messages):
        return LOOK if role == "plan" else critic(0.1) if role == "critic" else WRONG

    _, model, _ = run_with(tmp_path, respond, limits={"turns_per_node": 7, "max_nodes": 1})
    assert reminders([c for c in model.calls if c[0] == "plan"]) == [None] * 7


def test_run_reminder_when_the_run_cap_is_nearer_than_the_step_cap(tmp_path):
    def respond(role, messages):
        return LOOK if role == "plan" else critic(0.1) if role == "critic" else WRONG

    outcome, model, _ = run_with(
        tmp_path, respond, turn_control="fixed", turn_cap=4, limits={"turns_per_node": 9, "max_nodes": 3}
    )
    shown = reminders(model.calls)
    assert shown[0] is None and "3 turns left for this run" in shown[1] and "1 turn left for this run" in shown[3]
    assert outcome.summary["usage"]["turns"] <= 4


def test_dynamic_loop_extends_only_when_the_model_asks_with_a_reason(tmp_path):
    asked = Completion("EXTEND: still reading clamp's callers", LOOK.tool_calls, Usage(10, 5))
    limits = {"turns_per_node": 9, "max_nodes": 1}

    def quiet(role, messages):
        return LOOK if role == "plan" else critic(0.1) if role == "critic" else WRONG

    _, model, events = run_with(tmp_path / "a", quiet, turn_control="dynamic", turn_cap=40, limits=limits)
    assert sum(1 for c in model.calls if c[0] == "plan") == 4 + 1  # initial cap: half of 8, then the answer
    assert not [e for e in events if e[0] == "turn_extension"]
    assert "EXTEND:" in reminders(model.calls)[1]  # the model is told how to ask

    def asking(role, messages):
        return asked if role == "plan" else critic(0.1) if role == "critic" else WRONG

    _, model, events = run_with(tmp_path / "b", asking, turn_control="dynamic", turn_cap=40, limits=limits)
    grants = [d for k, d in events if k == "turn_extension"]
    assert [g["scope"] for g in grants] == ["loop", "loop"] and grants[-1]["cap"] == 8
    assert "still reading" in grants[0]["reason"]
    assert sum(1 for c in model.calls if c[0] == "plan") == 8 + 1  # never past the loop's hard cap
    stored = json.loads((tmp_path / "b" / "run" / "tree.json").read_text())
    assert stored["nodes"][1]["kind"] == "plan"


def grants_of(values, reproductions=0, asks=(), spent=10, cap=10, hard=40, window=3):
    log = []
    tc = TurnControl("dynamic", hard, window, lambda k, d: log.append(d), lambda: spent, cap=cap)
    for a in asks:
        tc.ask(a)
    return tc.over(values, reproductions), tc, log


def test_extension_rules():
    # below the cap: nothing to decide
    assert grants_of([0.1], spent=9)[0] is None and not grants_of([0.1], spent=9)[2]
    # the best value rose within the last 3 nodes
    why, tc, log = grants_of([0.2, 0.3, 0.1, 0.1, 0.6])
    assert why is None and tc.cap == 15 and "rose to 0.600" in log[0]["reason"] and log[0]["scope"] == "run"
    # it rose, but 4 nodes ago: no grant, the run stops at its cap
    why, tc, log = grants_of([0.2, 0.6, 0.1, 0.1, 0.5])
    assert why == "turn_cap" and not log and tc.cap == 10
    # a reproduction newly passes
    why, _, log = grants_of([0.6, 0.1, 0.1, 0.1], reproductions=1)
    assert why is None and log[0]["reason"] == "a reproduction newly passes"
    # the model asked, with a reason
    why, _, log = grants_of([0.6, 0.1, 0.1, 0.1], asks=["need to read the parser"])
    assert why is None and "need to read the parser" in log[0]["reason"]
    # at the hard cap nothing is granted, whatever the evidence
    why, _, log = grants_of([0.1, 0.9], cap=40, spent=40, asks=["more"])
    assert why == "turn_cap" and not log


def test_a_reproduction_counts_once():
    log = []
    spent = [10]
    tc = TurnControl("dynamic", 40, 3, lambda k, d: log.append(d), lambda: spent[0], cap=10)
    assert tc.over([0.6, 0.1, 0.1, 0.1], 1) is None
    spent[0] = tc.cap
    assert tc.over([0.6, 0.1, 0.1, 0.1, 0.1], 1) == "turn_cap"
    assert len(log) == 1


def test_dynamic_run_never_passes_its_hard_cap(tmp_path):
    """The model always asks and values keep rising: the run still stops at the hard cap."""
    asked = Completion("EXTEND: more", LOOK.tool_calls, Usage(10, 5))
    values = iter([0.1 * i for i in range(1, 100)])

    def respond(role, messages):
        if role == "plan":
            return asked
        return critic(min(next(values), 1.0)) if role == "critic" else WRONG

    # branch_margin 0: new plans start near the cap too, so their loops see run reminders and ask
    outcome, model, events = run_with(
        tmp_path, respond, turn_control="dynamic", turn_cap=30, branch_margin=0,
        limits={"turns_per_node": 5, "max_nodes": 40},
    )  # fmt: skip
    grants = [d for k, d in events if k == "turn_extension"]
    assert any(g["scope"] == "run" for g in grants)
    assert all(g["cap"] <= 30 for g in grants)
    assert len(model.calls) <= 30 and outcome.summary["usage"]["turns"] <= 30
    assert outcome.exit_status.startswith("limit:")


def test_turn_cap_from_an_earlier_run(tmp_path):
    for i, turns in enumerate([4, 8, 12, 40]):
        d = tmp_path / "batch" / f"inst{i}"
        d.mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps({"usage": {"turns": turns}}))
    assert percentile([4, 8, 12, 40], 75) == 19.0
    assert parse_turn_cap(f"p75:{tmp_path / 'batch'}") == 19
    assert build_config([], {"turn_cap": f"p50:{tmp_path / 'batch'}"}, use_settings=False).turn_cap == 10
    with pytest.raises(ConfigError, match="no run summaries"):
        (tmp_path / "empty").mkdir()
        parse_turn_cap(f"p75:{tmp_path / 'empty'}")
    with pytest.raises(ConfigError):
        parse_turn_cap("p75")


def test_loop_without_turn_control_is_unchanged(tmp_path):
    model = ScriptedModel([LOOK, LOOK, "the answer"])
    make_repo(tmp_path, BUGGY)
    answer, messages = run_tool_loop(model.complete, [Message("user", "plan")], tmp_path, turns=2)
    assert answer == "the answer" and not any("Turn reminder" in m.content for m in messages)


def test_reminders_count_down_in_code_and_repair_tool_loops(tmp_path):
    """Code and repair nodes look lines up in a tool loop of their own (2 turns): under fixed turn
    control each of its turns is preceded by a reminder, the answer turn is not; none sends none."""

    def respond(role, messages):
        if role == "plan":
            return PLAN
        if role == "critic":
            return critic(0.1)
        return WRONG if messages[-1].content.startswith("You have used all your tool calls") else LOOK

    for control in ("fixed", "none"):
        _, model, _ = run_with(tmp_path / control, respond, turn_control=control, limits={"max_nodes": 3})
        for role in ("code", "repair"):
            calls = [c for c in model.calls if c[0] == role]
            assert len(calls) == 3, role  # 2 tool turns and the answer
            shown = reminders(calls)
            if control == "none":
                assert shown == [None, None, None]
            else:
                assert "2 turns left for this step" in shown[0], role
                assert "1 turn left for this step" in shown[1] and "final answer" in shown[1], role
                assert shown[2] is None


def test_only_an_ask_after_a_run_reminder_is_evidence_for_the_run():
    """An `EXTEND:` in answer to a step reminder extends that tool loop, never the run."""
    spent = [0]
    tc = TurnControl("dynamic", 40, 3, lambda k, d: None, lambda: spent[0], cap=10)
    loop = tc.loop(8)  # dynamic: starts at 4 turns
    loop.used = 1
    assert "3 turns left for this step" in loop.reminder()
    loop.after("EXTEND: reading the parser")
    spent[0] = 10
    assert tc.over([0.5, 0.1, 0.1, 0.1], 0) == "turn_cap"  # flat values, no reproduction: no grant

    spent[0] = 9
    tc = TurnControl("dynamic", 40, 3, lambda k, d: None, lambda: spent[0], cap=10)
    loop = tc.loop(8)
    assert "1 turn left for this run" in loop.reminder()
    loop.after("EXTEND: the fix is one repair away")
    spent[0] = 10
    assert tc.over([0.5, 0.1, 0.1, 0.1], 0) is None and "one repair away" in tc.grants[0]["reason"]
