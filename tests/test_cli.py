"""The command line on real repositories: bad input is one clear message and exit code 2."""

import json
import subprocess
import sys

import pytest
from conftest import git, make_repo
from scripted import BUGGY

TREEFIX = [sys.executable, "-m", "treefix.agent.cli"]


def treefix(*args, cwd=None):
    return subprocess.run([*TREEFIX, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def assert_clear_error(result, words):
    assert result.returncode == 2, result.stdout + result.stderr
    assert words in " ".join(result.stderr.split())  # rich wraps long messages
    assert "Traceback" not in result.stderr + result.stdout


def test_not_a_git_repository(tmp_path):
    (tmp_path / "x.py").write_text("x = 1\n")
    assert_clear_error(treefix("fix", str(tmp_path), "--issue", "bug"), "not a git repository")


def test_missing_issue_text(tmp_path):
    repo = make_repo(tmp_path / "repo", BUGGY)
    assert_clear_error(treefix("fix", str(repo)), "--issue")
    assert_clear_error(treefix("fix", str(repo), "--issue", "  "), "empty")
    assert_clear_error(treefix("fix", str(repo), "--issue-file", str(tmp_path / "nope.md")), "not found")


def test_unknown_model(tmp_path):
    repo = make_repo(tmp_path / "repo", BUGGY)
    assert_clear_error(treefix("fix", str(repo), "--issue", "bug", "-m", "gpt-9000"), "unknown model")


def test_unknown_search_and_bad_run(tmp_path):
    repo = make_repo(tmp_path / "repo", BUGGY)
    assert_clear_error(treefix("fix", str(repo), "--issue", "bug", "--search", "dfs"), "unknown search")
    assert_clear_error(treefix("fix", str(repo), "--issue", "bug", "--tier", "cheap"), "unknown tier")
    assert_clear_error(treefix("fix", str(repo), "--issue", "bug", "--tier", "offline"), "for model runs")
    assert_clear_error(treefix("resume", "no-such-run", cwd=repo), "no run")
    assert_clear_error(treefix("inspect", "no-such-run", cwd=repo), "no run")


def test_apply_refuses_a_dirty_tree_and_touches_nothing(tmp_path):
    repo = make_repo(tmp_path / "repo", BUGGY)
    (repo / "calc" / "ops.py").write_text("# my unsaved work\n")
    status = git(repo, "status", "--porcelain")
    result = treefix("fix", str(repo), "--issue", "bug", "--apply", "-m", "replay:/nonexistent.jsonl")
    assert_clear_error(result, "uncommitted changes")
    assert (repo / "calc" / "ops.py").read_text() == "# my unsaved work\n"
    assert git(repo, "status", "--porcelain") == status
    assert not (repo / ".treefix").exists()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    where = tmp_path_factory.mktemp("demo") / "textstats"
    result = treefix("demo", "--dir", str(where), "-m", "replay")
    return where, result


def test_demo_fixes_the_example_with_plan_code_and_repair(demo_run):
    repo, result = demo_run
    assert result.returncode == 0, result.stderr
    run_dir = next((repo / ".treefix" / "runs").iterdir())
    kinds = {n["kind"] for n in json.loads((run_dir / "tree.json").read_text())["nodes"]}
    assert {"plan", "code", "repair"} <= kinds
    patch = (run_dir / "patch.diff").read_text()
    subprocess.run(["git", "apply"], input=patch, text=True, cwd=repo, check=True)
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=repo, capture_output=True, text=True)
    assert tests.returncode == 0, tests.stdout
    git(repo, "checkout", "--", ".")


def test_inspect_and_runs_show_the_tree(demo_run):
    repo, _ = demo_run
    run_id = next((repo / ".treefix" / "runs").iterdir()).name
    shown = treefix("inspect", run_id, cwd=repo)
    assert shown.returncode == 0
    for word in ("plan", "code", "repair", "visits", "tests"):
        assert word in shown.stdout
    listed = treefix("runs", cwd=repo)
    assert run_id in listed.stdout and "verified" in listed.stdout


def test_apply_commits_the_patch_with_a_treefix_message(tmp_path):
    from treefix.agent.demo import EXAMPLES, TEST_CMD, make_example_repo

    repo = make_example_repo(tmp_path / "ex")
    cassette = EXAMPLES / "cassettes" / "textstats.jsonl"
    result = treefix(
        "fix", str(repo), "--issue-file", str(repo / "ISSUE.md"), "--test-cmd", TEST_CMD,
        "-m", f"replay:{cassette}", "--apply",
    )
    assert result.returncode == 0, result.stderr
    log = git(repo, "log", "-1", "--format=%s%n%b")
    assert log.startswith("treefix: ") and "treefix run" in log
    assert git(repo, "status", "--porcelain").strip() == ""
    assert "if not ws:" in (repo / "textstats" / "core.py").read_text()


def test_config_values_beat_flag_defaults_but_not_typed_flags(tmp_path):
    """-c settings that also have a flag are used unless the flag is typed (typer's own click once hid this)."""
    from treefix.agent.demo import TEST_CMD, make_example_repo

    repo = make_example_repo(tmp_path / "ex")
    args = ["fix", str(repo), "--issue-file", str(repo / "ISSUE.md"), "--test-cmd", TEST_CMD, "--json"]
    res = treefix(*args, "-c", "max_nodes=2", "-c", "search=linear", "-o", str(tmp_path / "a"))
    summary = json.loads(res.stdout)
    assert (summary["search"], summary["limits"]["max_nodes"]) == ("linear", 2)
    res = treefix(*args, "-c", "max_nodes=2", "--max-nodes", "3", "-o", str(tmp_path / "b"))
    assert json.loads(res.stdout)["limits"]["max_nodes"] == 3
    assert_clear_error(treefix(*args, "-c", "search=dfs"), "unknown search")


def test_apply_leaves_a_failing_patch_unapplied(tmp_path):
    from treefix.agent.demo import TEST_CMD, make_example_repo

    repo = make_example_repo(tmp_path / "ex")
    head = git(repo, "rev-parse", "HEAD")
    result = treefix(
        "fix", str(repo), "--issue-file", str(repo / "ISSUE.md"), "--test-cmd", TEST_CMD, "--max-nodes", "2", "--apply"
    )  # two nodes: a plan and one attempt, which fixes one of the two bugs at most
    assert result.returncode == 1, result.stderr
    assert "not applied" in result.stderr
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "status", "--porcelain").strip() == ""


def test_more_bad_input_is_one_message(tmp_path):
    from treefix.agent.demo import TEST_CMD, make_example_repo

    repo = make_example_repo(tmp_path / "ex")
    ok = ["fix", str(repo), "--issue-file", str(repo / "ISSUE.md"), "--test-cmd", TEST_CMD]
    (tmp_path / "latin1.md").write_bytes(b"caf\xe9 is broken")
    assert_clear_error(treefix("fix", str(repo), "--issue-file", str(tmp_path / "latin1.md")), "not UTF-8")
    assert_clear_error(treefix(*ok, "-c", "model=[unclosed"), "not valid YAML")
    assert_clear_error(treefix(*ok, "-l", "-1"), "cost_limit must be at least 0")
    assert_clear_error(treefix(*ok, "-w", "0"), "workers must be at least 1")
    assert_clear_error(treefix(*ok, "--time-limit", "nan"), "time_limit")
    assert_clear_error(treefix(*ok, "--test-timeout", "0"), "test timeout")
    assert_clear_error(treefix("fix", str(repo), "--issue", "bug"), "needs --test-cmd")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "summary.json").write_text("my notes")
    assert_clear_error(treefix(*ok, "-o", str(tmp_path / "mine")), "not empty")
    assert (tmp_path / "mine" / "summary.json").read_text() == "my notes"
    (tmp_path / "afile").write_text("x")
    assert_clear_error(treefix(*ok, "-o", str(tmp_path / "afile")), "is a file")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert_clear_error(treefix(*ok, "-m", f"replay:{empty}"), "cassette is empty")
    cassette = tmp_path / "c.jsonl"
    cassette.write_text("keep\n")
    assert_clear_error(treefix(*ok, "-m", "replay:x.jsonl", "--record", str(cassette)), "already exists")
    assert cassette.read_text() == "keep\n"
    assert_clear_error(treefix(*ok, "--record", str(tmp_path / "new.jsonl")), "makes no model calls")
    assert_clear_error(treefix("demo", "--dir", str(tmp_path / "afile")), "not a folder")
    assert_clear_error(treefix("demo", "-m", "gpt-9000", "--dir", str(tmp_path / "d")), "unknown model")
    assert not (tmp_path / "d").exists()  # nothing copied for a demo that cannot run
    assert_clear_error(treefix("runs", str(tmp_path / "nope")), "not a directory")
    assert git(repo, "status", "--porcelain").strip() == ""


def test_damaged_runs_are_clear_errors(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.sqlite").write_text("garbage, not a database")
    assert_clear_error(treefix("resume", str(run)), "not a treefix run")
    (run / "run.sqlite").write_text("")
    assert_clear_error(treefix("resume", str(run)), "no run found")
    assert (run / "run.sqlite").read_text() == ""  # nothing written into the user's file
    (run / "tree.json").write_text("{bad")
    assert_clear_error(treefix("inspect", str(run)), "not a treefix tree")
