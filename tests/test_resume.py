"""Kill a real `treefix fix` process mid-search with SIGKILL, resume it, lose nothing."""

import json
import subprocess
import sys

import pytest
from conftest import kill_when_stored, make_repo, node_ids
from scripted import BUGGY, PLAN, WRONG, critic

TREEFIX = [sys.executable, "-m", "treefix.agent.cli"]


def write_cassette(path, n=40):
    def entry(role, text):
        usage = {"input_tokens": 100, "output_tokens": 10, "cached_tokens": 0, "cache_write_tokens": 0}
        return json.dumps({"role": role, "request": "", "completion": {"text": text, "usage": usage}})

    lines = []
    for _ in range(n):
        lines += [
            entry("plan", PLAN),
            entry("code", WRONG),
            entry("repair", WRONG),
            entry("critic", critic(0.3)),
        ]
    path.write_text("\n".join(lines) + "\n")


def test_sigkill_mid_search_then_resume(tmp_path):
    repo = make_repo(tmp_path / "repo", BUGGY)
    cassette = tmp_path / "cassette.jsonl"
    write_cassette(cassette)
    run_dir = tmp_path / "run"
    cmd = [
        *TREEFIX,
        "fix",
        str(repo),
        "--issue",
        "clamp(9, 0, 5) returns 0",
        "-m",
        f"replay:{cassette}",
        "--test-cmd",
        "sleep 0.2; python -m pytest -q -p no:cacheprovider",
        "--max-nodes",
        "9",
        "-o",
        str(run_dir),
    ]
    before = kill_when_stored(cmd, run_dir / "run.sqlite", 5)
    assert len(before) >= 5
    assert not (run_dir / "summary.json").exists()

    done = subprocess.run([*TREEFIX, "resume", str(run_dir)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr  # node limit reached without a verified fix
    tree = json.loads((run_dir / "tree.json").read_text())
    after = [n["id"] for n in tree["nodes"]]
    assert after[: len(before)] == before  # every node written before the kill is still there
    duplicates = sum(n["evidence"].get("duplicates", 0) for n in tree["nodes"])  # a repeated fix: a vote, no node
    assert len(after) + duplicates == 10  # root + max_nodes: the kill cost no extra node
    root = tree["nodes"][0]
    assert root["visits"] == 9  # each node backed up exactly once, even the one in flight at the kill
    assert all(n["visits"] >= 1 for n in tree["nodes"][1:])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["exit_status"] == "limit:nodes"
    # spend from before the kill is kept: every call is in the event log
    assert summary["usage"]["turns"] >= 2 * (9 - duplicates) + duplicates  # a vote made no critic call


def test_a_run_moves_to_a_rebuilt_repository_only_for_the_same_task_and_settings(tmp_path):
    """What a batch rerun relies on: resume in a new checkout of the same base commit."""
    from treefix.agent.budget import Limits
    from treefix.agent.config import RunConfig
    from treefix.agent.errors import ConfigError
    from treefix.agent.run import resume_run, run_fix
    from treefix.agent.task import Task
    from treefix.tools.workspace import WorkspaceError

    repo = make_repo(tmp_path / "repo", BUGGY)
    cassette = tmp_path / "cassette.jsonl"
    write_cassette(cassette)
    task = Task(
        repo=repo,
        problem_statement="clamp(9, 0, 5) returns 0",
        test_cmd="python -m pytest -q -p no:cacheprovider",
    )
    config = RunConfig(model=f"replay:{cassette}", limits=Limits(max_nodes=3, cost_limit=0))
    run_dir = tmp_path / "run"
    first = run_fix(task, config, run_dir)
    before = node_ids(run_dir / "run.sqlite")

    elsewhere = make_repo(tmp_path / "other", BUGGY)  # same files, another commit
    with pytest.raises(WorkspaceError, match="unknown base revision"):
        resume_run(run_dir, moved=Task(**{**task.to_dict(), "repo": elsewhere}), config=config)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    moved = Task(**{**task.to_dict(), "repo": clone})
    with pytest.raises(ConfigError, match="another task"):
        resume_run(
            run_dir, moved=Task(**{**moved.to_dict(), "problem_statement": "something else"}), config=config
        )
    with pytest.raises(ConfigError, match="other settings"):
        resume_run(run_dir, moved=moved, config=RunConfig(model=f"replay:{cassette}", search="linear"))
    assert node_ids(run_dir / "run.sqlite") == before  # refused: nothing changed

    again = resume_run(run_dir, moved=moved, config=config)
    assert again.run_id == first.run_id and node_ids(run_dir / "run.sqlite")[: len(before)] == before
    assert json.loads((run_dir / "summary.json").read_text())["run_id"] == first.run_id
