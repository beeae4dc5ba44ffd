"""The agent never sees an instance's hidden fields (test_patch, patch, FAIL_TO_PASS, PASS_TO_PASS,
hints_text). Every hidden value in the test dataset carries HIDDEN_MARK; the control cases
(--visible-tests) show the same checks do find it when it is there."""

import io
import json
import pickle
import subprocess
from pathlib import Path

import pytest
from batchdata import BUGS, HIDDEN_MARK, TEST_CMD, shared_batch_data
from rich.console import Console

from treefix.agent.models.registry import load_model
from treefix.agent.models.replay import ReplayModel
from treefix.agent.store import RunStore
from treefix.evals.dataset import HIDDEN_FIELDS, load_dataset
from treefix.evals.runner import BatchOptions, build_item, run_batch
from treefix.evals.worker import solve


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    return shared_batch_data(tmp_path_factory)


def _opts(data, out, **kw) -> BatchOptions:
    return BatchOptions(dataset=data.dataset, output=out, model=f"replay:{data.cassettes}", cache_dir=data.cache,
                        cost_limit=0, max_nodes=6, **kw)  # fmt: skip


def _hidden_values(inst, all_p2p: bool = True) -> list[str]:
    # PASS_TO_PASS also names the repository's own public tests, which the agent runs by itself;
    # only the list is hidden. Outside the worker input, grep for the hidden test's name.
    p2p = inst.PASS_TO_PASS if all_p2p else [t for t in inst.PASS_TO_PASS if HIDDEN_MARK in t]
    values = [HIDDEN_MARK, inst.test_patch, inst.patch, inst.hints_text, *inst.FAIL_TO_PASS, *p2p]
    assert all(getattr(inst, f) for f in HIDDEN_FIELDS) and len(p2p) >= 1  # every hidden field is there
    return values


def test_the_worker_input_holds_no_hidden_field(data, tmp_path):
    insts, _ = load_dataset(data.dataset)
    for inst in insts:
        item = build_item(inst, _opts(data, tmp_path), _opts(data, tmp_path).run_config())
        sent = pickle.dumps(item)  # exactly what the executor ships to the worker process
        for value in _hidden_values(inst):
            assert value.encode() not in sent, value[:80]
        assert item.task.test_cmd == TEST_CMD and item.visible is None
        visible = pickle.dumps(
            build_item(inst, _opts(data, tmp_path, visible_tests=True), _opts(data, tmp_path).run_config())
        )
        assert HIDDEN_MARK.encode() in visible  # control: the opt-in does ship them


class _Spy:
    """Wraps the replay model and keeps every message the agent sends."""

    def __init__(self, inner: ReplayModel, seen: list[str]):
        self.inner, self.name, self.seen = inner, inner.name, seen

    def price(self):
        return self.inner.price()

    def complete(self, messages, tools=None, **params):
        self.seen += [m.content for m in messages] + [json.dumps([t.__dict__ for t in tools or []])]
        return self.inner.complete(messages, tools, **params)


def _run_spied(data, tmp_path, visible: bool):
    seen: list[str] = []
    captured: dict = {}

    def on_event(kind, event):
        if kind != "started":
            return
        # What the agent can read: every file of its repository and all of its git history.
        repo = Path(event["repo"])
        files = "\n".join(
            p.read_text(errors="replace") for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts
        )
        git = lambda *a: subprocess.run(["git", *a], cwd=repo, capture_output=True, text=True).stdout  # noqa: E731
        history = git("log", "-p", "--all")
        captured.update(files=files, history=history, commits=int(git("rev-list", "--all", "--count")))

    insts, _ = load_dataset(data.dataset)
    inst = insts[0]
    opts = _opts(data, tmp_path / ("visible" if visible else "hidden"), visible_tests=visible)
    item = build_item(inst, opts, opts.run_config())
    model = _Spy(load_model(item.config["model"]), seen)
    result = solve(item, on_event, model=model)
    assert result.exit_status == "verified", result.error
    run_dir = Path(item.run_dir)
    stored = b"".join(p.read_bytes() for p in run_dir.rglob("*") if p.is_file())
    task = RunStore(run_dir / "run.sqlite").get_meta("task")
    agent_saw = "\n".join([*seen, captured["files"], captured["history"], json.dumps(task)])
    assert captured["commits"] == 1  # no history: a pristine commit would show the injected bug
    return inst, result, agent_saw, stored


def test_the_agent_sees_no_hidden_field(data, tmp_path, monkeypatch):
    inst, result, agent_saw, stored = _run_spied(data, tmp_path, visible=False)
    assert inst.problem_statement in agent_saw  # the spy did capture the prompts
    for value in _hidden_values(inst, all_p2p=False):
        assert value not in agent_saw, value[:80]
        assert value.encode() not in stored, value[:80]  # run.sqlite, tree.json, summary.json, patch.diff
    assert result.summary["label"] == ""


def test_visible_tests_is_an_explicit_opt_in_recorded_in_outputs(data, tmp_path, monkeypatch):
    inst, result, agent_saw, _ = _run_spied(data, tmp_path, visible=True)
    assert HIDDEN_MARK in agent_saw  # control: the same check finds the hidden tests when given
    assert inst.FAIL_TO_PASS[0].split("::")[0] in agent_saw  # its test command runs their files
    assert inst.patch not in agent_saw and inst.hints_text not in agent_saw  # never the gold patch or hints
    assert result.summary["label"] == "visible-tests"
    assert HIDDEN_MARK not in result.patch  # edits to the hidden test files are dropped from the prediction
    assert _opts(data, tmp_path, visible_tests=True).model_name == "treefix__replay-cassettes__visible-tests"


def test_a_real_batch_writes_no_hidden_field(data, tmp_path):
    out = tmp_path / "out"
    result = run_batch(_opts(data, out, instance_ids=[next(iter(BUGS))]), Console(file=io.StringIO()))
    assert result.tallies == {"verified": 1}
    for p in out.rglob("*"):
        if p.is_file():
            assert HIDDEN_MARK.encode() not in p.read_bytes(), p
