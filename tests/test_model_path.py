"""The model path on real endpoints (issue 14): runs through the real SDKs against the fake server."""

import shutil
import subprocess
from pathlib import Path

import pytest
from fakeserver import TEXTSTATS_PLAN, FakeServer, Reply, textstats_brain, tool_call

from treefix.agent.budget import Limits
from treefix.agent.config import RunConfig
from treefix.agent.run import run_fix
from treefix.agent.task import Task

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "textstats"
MODELS = {"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-haiku-4-5"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    dst = tmp_path / "textstats"
    shutil.copytree(EXAMPLE, dst)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "initial"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=dst, check=True)
    return dst


def task_of(repo: Path) -> Task:
    return Task(repo, (repo / "ISSUE.md").read_text(), test_cmd="python -m pytest -q tests", test_timeout=60)


def base_url(server: FakeServer, api: str) -> str:
    return server.url if api == "openai" else server.root


def curious_brain():  # type: ignore[no-untyped-def]
    """Plans look around with every tool turn they get; the answer comes only when tools are off."""
    base = textstats_brain()

    def brain(req):  # type: ignore[no-untyped-def]
        if any("Propose ONE hypothesis" in t for t in req.texts):
            if req.has_tools and req.tool_choice != "none":
                return tool_call("view", {"path": "textstats/core.py"})
            return Reply(text=TEXTSTATS_PLAN)
        return base(req)

    return brain


@pytest.mark.parametrize("api", ["anthropic", "openai"])
def test_a_plan_that_uses_every_tool_turn_succeeds_where_tool_blocks_need_tools(repo, tmp_path, api):
    with FakeServer(brain=curious_brain(), strict_tool_blocks=True) as server:
        config = RunConfig(
            model=MODELS[api], base_url=base_url(server, api), limits=Limits(cost_limit=0, max_nodes=4)
        )
        outcome = run_fix(task_of(repo), config, run_dir=tmp_path / "run")
    refused = [r for r in server.requests if r.reply is not None and r.reply.status != 200]
    assert refused == []
    assert outcome.exit_status == "verified"
    # Every request carried the tools; the plan's last turn and the other roles may not call them.
    assert all(r.has_tools for r in server.requests)
    final = [r for r in server.requests if r.has_tool_blocks]
    assert final and final[-1].tool_choice == "none"
    assert {r.tool_choice for r in server.requests if not r.has_tool_blocks} >= {"none", None}


def half_fixing_brain():  # type: ignore[no-untyped-def]
    """A realistic search that never verifies: every edit fixes one symptom of two."""
    from fakeserver import HALF_EDIT, role_of

    base = textstats_brain(partial_first=10**6)

    def brain(req):  # type: ignore[no-untyped-def]
        return Reply(text=HALF_EDIT) if role_of(req) == "repair" else base(req)

    return brain


def cli(repo: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    import os
    import sys

    cmd = [sys.executable, "-m", "treefix.agent.cli", "fix", str(repo), "--issue-file", str(repo / "ISSUE.md")]
    cmd += ["--test-cmd", "python -m pytest -q tests", "-o", str(out), *args]
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**env, "COLUMNS": "200"}, cwd=repo)


def test_a_token_limit_is_used_to_at_least_80_percent_and_the_stop_is_explained(repo, tmp_path):
    import json

    with FakeServer(brain=half_fixing_brain()) as server:
        proc = cli(repo, tmp_path / "run", "-m", MODELS["openai"], "--base-url", server.url,
                   "-l", "0", "--max-tokens", "20000", "--max-nodes", "0")  # fmt: skip
    assert "Traceback" not in proc.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    used = summary["usage"]["tokens"]
    served = sum(r.prompt_tokens + r.output_tokens for r in server.requests if r.reply and r.reply.status == 200)
    assert used == served  # the accounting is the server's
    assert 0.8 * 20_000 <= used <= 20_000
    stop = summary["stopped_by"]
    assert stop["limit"] == "tokens" and stop["limit_value"] == 20_000 and stop["used"] == used
    assert summary["exit_status"] == "limit:tokens"
    # The terminal says it too: the limit, the tokens used and what the refused call needed.
    shown = proc.stdout + proc.stderr
    line = next((ln for ln in shown.splitlines() if ln.startswith("stopped")), shown)
    assert "tokens limit reached" in line and f"{used:,} of 20,000 used" in line and "needed" in line


def test_near_a_limit_a_call_gets_the_reply_room_left_and_a_refusal_says_what_it_needed():
    from treefix.agent.budget import Budget, BudgetExceeded
    from treefix.agent.models.base import Completion, Usage

    budget = Budget(Limits(cost_limit=0, max_tokens=5000))
    ticket = budget.reserve("code", 3000, 4096, None, min_output_tokens=1024)
    assert ticket.output_tokens == 2000  # what is left, not the full 4,096 and not a refusal
    ticket.settle(Completion("", usage=Usage(2900, 1200)))
    with pytest.raises(BudgetExceeded):
        budget.reserve("critic", 1000, 4096, None, min_output_tokens=1024)
    assert budget.refusal["message"] == (
        "tokens limit reached: 4,100 of 5,000 used; the next critic call needed 2,024 tokens "
        "(1,000 prompt + 1,024 reply)"
    )


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_an_endpoint_that_refuses_every_connection_ends_the_run_in_seconds_with_exit_2(repo, tmp_path, api):
    import socket
    import time

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}" + ("/v1" if api == "openai" else "")
    started = time.monotonic()
    proc = cli(repo, tmp_path / "run", "-m", MODELS[api], "--base-url", url)
    took = time.monotonic() - started
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert took < 60  # start-up included, on a loaded machine; the point is the count below
    assert proc.stderr.count("retry 3/3") == 1  # one call and its retries, then the end
    assert "Traceback" not in proc.stderr
    message = " ".join(proc.stderr.split())
    assert f"cannot reach the model endpoint http://127.0.0.1:{port}" in message and "ConnectError" in message


def test_a_model_that_never_writes_an_edit_is_diagnosed_and_asked_no_more(repo, tmp_path):
    from fakeserver import role_of

    from treefix.agent.policies.llm import UNUSABLE_IN_A_ROW

    base = textstats_brain()

    def brain(req):  # type: ignore[no-untyped-def]
        if role_of(req) in ("code", "repair"):
            return Reply(text="You should guard against empty input and pass n to most_common.")
        return base(req)

    with FakeServer(brain=brain) as server:
        config = RunConfig(model=MODELS["openai"], base_url=server.url, limits=Limits(cost_limit=0, max_nodes=30))
        outcome = run_fix(task_of(repo), config, run_dir=tmp_path / "run")
    edits_asked = [r for r in server.requests if role_of(r) in ("code", "repair")]
    assert len(edits_asked) == UNUSABLE_IN_A_ROW  # diagnosed, then no more money spent on edits
    assert outcome.exit_status == "model_error"
    assert f"{UNUSABLE_IN_A_ROW} code/repair replies in a row without a usable edit" in outcome.reason
    assert "prose without any code" in outcome.reason and "You should guard" in outcome.reason


def test_the_progress_shows_a_waiting_indicator_with_the_seconds_while_a_call_is_out():
    import io
    import time

    from rich.console import Console

    from treefix.agent.inspect import progress_printer

    buf = io.StringIO()
    sink = progress_printer(Console(file=buf, force_terminal=True, width=100))
    sink("call_start", {"role": "critic"})
    time.sleep(2.3)
    sink("call", {"total_cost": 0.0, "turns": 1})
    shown = buf.getvalue()
    assert "waiting for the model: critic" in shown and "2s" in shown
    quiet = io.StringIO()  # a pipe or a file gets no spinner
    sink = progress_printer(Console(file=quiet, force_terminal=False))
    sink("call_start", {"role": "critic"})
    sink("call", {"total_cost": 0.0, "turns": 1})
    assert quiet.getvalue() == ""
