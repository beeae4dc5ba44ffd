"""Whole `treefix fix` runs against the fake server, through the real OpenAI and Anthropic SDKs."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakeserver import FakeServer, Reply, error, role_of, textstats_brain

from treefix.agent.models.base import Usage
from treefix.agent.models.pricing import price_for

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "textstats"

pytestmark = pytest.mark.slow


@pytest.fixture
def repo(tmp_path):
    dst = tmp_path / "textstats"
    shutil.copytree(EXAMPLE, dst)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "initial"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=dst, check=True)
    return dst


def treefix(
    repo: Path, out: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "treefix.agent.cli", "fix", str(repo), "--issue-file", str(repo / "ISSUE.md")]
    cmd += ["--test-cmd", "python -m pytest -q tests", "-o", str(out), "--json", *args]
    clean = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, env={**clean, **(env or {})}, cwd=repo
    )


def server_usage(server: FakeServer) -> tuple[Usage, int]:
    """What the server reported over the run, and how many requests it answered in all."""
    total = Usage()
    for r in server.requests:
        if r.reply is not None and r.reply.status == 200:
            total += Usage(r.prompt_tokens, r.output_tokens, r.cached_tokens, r.cache_write_tokens)
    return total, len(server.requests)


@pytest.mark.parametrize(
    "spec, base, partial",
    [("openai/gpt-4o-mini", "url", 1), ("anthropic/claude-haiku-4-5", "root", 0)],
    ids=["openai", "anthropic"],
)
def test_fix_run_finds_the_fix_with_faults_on_the_way(repo, tmp_path, spec, base, partial):
    # OpenAI's first code attempt fixes half the issue, so that run also goes through a repair.
    with FakeServer(brain=textstats_brain(partial_first=partial)) as server:
        # The first call meets a rate limit and an outage, both asking to come back shortly.
        server.script(error(429, "slow down", retry_after=0.05), error(503, "busy", retry_after=0.05))
        proc = treefix(
            repo, tmp_path / "run", "-m", spec, "--base-url", getattr(server, base), "--max-nodes", "8"
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["exit_status"] == "verified"
    patch = (tmp_path / "run" / "patch.diff").read_text()
    assert "most_common(n)" in patch and "return 0.0" in patch
    assert "Traceback" not in proc.stderr

    # Usage and cost exactly as the server reported them; every retry is a turn.
    reported, requests = server_usage(server)
    usage = summary["usage"]
    roles = usage["by_role"].values()
    assert sum(r["input_tokens"] for r in roles) == reported.input_tokens
    assert sum(r["output_tokens"] for r in roles) == reported.output_tokens
    assert sum(r["cached_tokens"] for r in roles) == reported.cached_tokens > 0
    assert usage["turns"] == requests
    assert usage["cost"] == pytest.approx(price_for(spec).cost(reported), rel=1e-9)
    roles_seen = {role_of(r) for r in server.requests}
    assert roles_seen >= {"plan", "code", "critic"} | ({"repair"} if partial else set())


def test_unknown_price_with_a_cost_limit_is_refused_before_any_call(repo, tmp_path):
    with FakeServer(brain=lambda req: Reply(text="never")) as server:
        proc = treefix(repo, tmp_path / "run", "-m", "openai/qwen-local", "--base-url", server.url)
    assert proc.returncode == 2 and not server.requests
    assert "--max-tokens" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_key_is_one_clear_message(repo, tmp_path):
    proc = treefix(
        repo, tmp_path / "run", "-m", "anthropic/claude-haiku-4-5", env={"TREEFIX_CONFIG_DIR": str(tmp_path)}
    )
    assert proc.returncode == 2
    assert "ANTHROPIC_API_KEY is not set" in proc.stderr and "Traceback" not in proc.stderr


def test_a_hung_server_cannot_hold_a_run_past_its_time_limit(repo, tmp_path):
    """The model's own HTTP timeout is 120 s; the run's 4 s time limit wins, and it is a limit, not an error."""
    with FakeServer(brain=lambda req: Reply(hang=60)) as server:
        start = time.monotonic()
        proc = treefix(
            repo, tmp_path / "run", "-m", "openai/gpt-4o-mini", "--base-url", server.url, "--time-limit", "4"
        )
        took = time.monotonic() - start
    assert took < 20, f"the run took {took:.0f}s"
    assert proc.returncode == 3, proc.stderr[-2000:]  # budget exhausted before any candidate
    summary = json.loads(proc.stdout)
    assert summary["exit_status"] == "limit:time" and summary["usage"]["turns"] >= 1
    assert summary["usage"]["cost"] > 0  # the hung attempt may be billed: charged at its worst case
