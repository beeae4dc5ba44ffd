"""Reproductions shared by the tree: a reproduction no candidate can move is demoted and frees its
slot, a late one is run on earlier candidates, a first pass is a `reproduction` event that turn
control extends on, and a project whose pytest addopts need a missing plugin still runs them.
Whole runs with a scripted model, real git, real pytest and the real graph; no test command."""

import json

from conftest import make_repo
from scripted import BUGGY, critic

from treefix.agent.budget import Limits
from treefix.agent.config import RunConfig
from treefix.agent.models.base import Completion, Usage
from treefix.agent.models.scripted import ScriptedModel
from treefix.agent.run import run_fix
from treefix.agent.store import RunStore
from treefix.agent.task import Task

ISSUE = "clamp(9, 0, 5) returns 0, expected 5"
TRAP = "```python\nimport calc\n\n\ndef test_name():\n    assert calc.__name__ == 'something else'\n```"
GOOD = "```python\nfrom calc.ops import clamp\n\n\ndef test_high():\n    assert clamp(9, 0, 5) == 5\n```"
PLAN = "TITLE: clamp returns lo for large x\nROOT CAUSE: calc/ops.py returns lo when x > hi.\nSTRATEGY: return hi."
RIGHT = "calc/ops.py\n<<<<<<< SEARCH\n    if x > hi:\n        return lo\n=======\n    if x > hi:\n        return hi\n>>>>>>> REPLACE\n"


def wrong(i: int) -> str:
    """A distinct attempt that changes nothing the tests see."""
    return f"calc/ops.py\n<<<<<<< SEARCH\n    return x\n=======\n    return x  # attempt {i}\n>>>>>>> REPLACE\n"


def scripted(repros: list[str], attempts: list[str], plan_value: float = 0.5):
    queues = {"reproduce": list(repros), "code": list(attempts)}

    def respond(role, messages):
        if role == "reproduce":
            return Completion(queues["reproduce"].pop(0) if len(queues["reproduce"]) > 1 else queues["reproduce"][0],
                              usage=Usage(10, 5))  # fmt: skip
        if role == "plan":
            return Completion(PLAN, usage=Usage(10, 5))
        if role == "code":
            return Completion(queues["code"].pop(0) if queues["code"] else wrong(99), usage=Usage(10, 5))
        if role == "repair":
            return Completion("calc/ops.py\n<<<<<<< SEARCH\nno such text\n=======\nx\n>>>>>>> REPLACE\n", usage=Usage(10, 5))
        if role == "critic":
            text = messages[-1].content
            return Completion(critic(0.6 if "+        return hi" in text else plan_value), usage=Usage(10, 5))
        return Completion("1", usage=Usage(10, 5))

    return ScriptedModel(respond)


def run(tmp_path, files, model, **config):
    repo = make_repo(tmp_path / "repo", files)
    limits = Limits(**{"cost_limit": 0, "max_nodes": 16, "turns_per_node": 1, **config.pop("limits", {})})
    cfg = RunConfig(model="scripted", limits=limits, **config)
    events = []
    outcome = run_fix(Task(repo=repo, problem_statement=ISSUE), cfg, tmp_path / "run",
                      on_event=lambda k, d: events.append((k, d)), model=model)  # fmt: skip
    store = RunStore(outcome.run_dir / "run.sqlite")
    return outcome, store


def test_a_reproduction_no_candidate_moves_is_demoted_and_a_late_one_verifies_an_earlier_fix(tmp_path):
    model = scripted([TRAP, GOOD], [wrong(1), wrong(2), RIGHT, wrong(3), wrong(4), wrong(5), wrong(6)])
    outcome, store = run(tmp_path, BUGGY, model, reproductions=1)
    repros = [n for n in store.nodes() if n.kind.value == "reproduce"]
    trap, good = repros[0], repros[1]
    # The trap failed on the base with an assertion, so it was accepted ...
    assert trap.evidence["accepted"] and good.evidence["accepted"]
    # ... and demoted when three distinct candidates (the right one among them) left it failing unchanged.
    assert trap.evidence["demoted"].startswith("unmoved: 3 distinct candidates")
    assert [e["node"] for e in store.events("demoted")] == [trap.id]
    # The demotion freed the slot of `reproductions=1`: the root grew the good one, whose prompt said why.
    assert good.parent == trap.parent
    asked = [m[-1].content for role, m in model.calls if role == "reproduce"]
    assert len(asked) == 2 and "unmoved: 3 distinct candidates" in asked[1]
    # The good one arrived after the right fix and was run on it; the right fix is verified by it alone.
    right = next(n for n in store.nodes() if "return hi" in n.diff)
    good_path, trap_path = good.evidence["path"], trap.evidence["path"]
    assert store.events("recheck") and right.evidence["reproductions"][good_path] == "passed"
    assert right.evidence["reproductions"][trap_path] == "failed"  # still run, no longer counted
    assert right.evidence["counted"] == [good_path] and right.evidence["verified_by"] == "reproduction"
    assert [e["node"] for e in store.events("reproduction")] == [right.id]
    assert outcome.exit_status == "verified" and outcome.best_node == right.id
    assert "return hi" in outcome.patch and "test_treefix_repro" not in outcome.patch
    tree = json.loads((outcome.run_dir / "tree.json").read_text())
    assert any(n["evidence"].get("demoted") for n in tree["nodes"])


def test_a_candidate_that_newly_passes_a_reproduction_extends_the_run(tmp_path):
    """Dynamic turn control with a window of one node and a plan valued 1.0: no later value can
    rise above it, the model never asks, so the only rule that can grant is the reproduction's."""
    files = {k: v for k, v in BUGGY.items() if not k.startswith("tests/")}  # no regression test: no early stop
    model = scripted([GOOD], [RIGHT, wrong(1), wrong(2)], plan_value=1.0)
    outcome, store = run(tmp_path, files, model, reproductions=1, turn_control="dynamic", turn_cap=10, turn_window=1)
    passes = store.events("reproduction")
    right = next(n for n in store.nodes() if "return hi" in n.diff)
    assert [e["node"] for e in passes] == [right.id]
    grants = store.events("turn_extension")
    assert grants and grants[0]["reason"] == "a reproduction newly passes"
    assert outcome.summary["usage"]["turns"] > 5  # past the initial cap of 10 * 0.5


BROKEN = "```python\nfrom calc.nowhere import clamp\n\n\ndef test_high():\n    assert clamp(9, 0, 5) == 5\n```"
ALIEN = "```python\ndef test_sorted():\n    assert sorted([2, 1]) == [2, 1]\n```"


def test_one_reproduction_node_holds_several_files_and_a_project_whose_addopts_need_a_missing_plugin(tmp_path):
    """One model call, three files, one node: the unusable two cost no node of their own. The
    project's addopts need pytest-cov, which is not installed: the evidence runs without them. Its
    .gitignore hides root-level .py files: the reproduction is staged anyway."""
    files = {**BUGGY, "setup.cfg": "[tool:pytest]\naddopts = --cov=calc --cov-report=term-missing\n",
             ".gitignore": "/*.py\n"}  # root-level .py files ignored (as semver does): reproductions live there
    model = scripted([BROKEN + "\n\n" + ALIEN + "\n\n" + GOOD], [RIGHT])
    outcome, store = run(tmp_path, files, model, reproductions=1)
    (node,) = [n for n in store.nodes() if n.kind.value == "reproduce"]
    info = node.evidence["files"]
    assert [i["accepted"] for i in info.values()] == [False, False, True], node.evidence
    reasons = [i["reason"] for i in info.values()]
    assert "ModuleNotFoundError" in reasons[0] and "does not import the repository" in reasons[1]
    assert node.evidence["accepted"] and node.evidence["path"] == list(info)[2]
    assert store.get_meta("evidence/no_addopts") is True and len(store.events("addopts")) == 1
    assert outcome.exit_status == "verified" and "return hi" in outcome.patch
    right = store.get(outcome.best_node)
    assert right.evidence["regression_tests"] == 2 and right.evidence["strong"]  # test_high fails on the base
    assert "test_treefix_repro" not in outcome.patch


def test_a_candidate_that_passes_one_reproduction_corroborates_the_demotion_of_another(tmp_path):
    """One reply, two files: the trap and a good test. A wrong attempt leaves both unchanged; the
    right one passes the good one and leaves the trap unchanged: two unmoved candidates suffice."""
    model = scripted([TRAP + "\n\n" + GOOD], [wrong(1), RIGHT, wrong(2), wrong(3)])
    outcome, store = run(tmp_path, BUGGY, model, reproductions=1)
    (node,) = [n for n in store.nodes() if n.kind.value == "reproduce"]
    trap, good = node.evidence["files"].values()
    assert trap["accepted"] and good["accepted"]
    assert "while passing another reproduction" in trap["demoted"] and not good.get("demoted")
    right = store.get(outcome.best_node)
    assert "return hi" in right.diff and right.evidence["verified_by"] == "reproduction"
    assert outcome.exit_status == "verified" and not node.evidence.get("demoted")  # its good file still counts
