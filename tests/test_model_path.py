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
