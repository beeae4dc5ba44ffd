"""What a new user meets first, through the real command line on small real repositories:
no patch worse than the base, help that says what it means, no raw None, output that survives a pipe."""

import json
import os
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest
from conftest import make_repo, node_ids

from treefix.agent.policies.offline import SPECTRUM_KEY
from treefix.agent.store import RunStore
from treefix.agent.tree import ExecResult, Node, NodeKind

TREEFIX = [sys.executable, "-m", "treefix.agent.cli"]
TEST_CMD = "python -m pytest -q -p no:cacheprovider"

# A feature the offline operators cannot write: every small edit they try is at best neutral.
WORDS = {
    "lib/__init__.py": "",
    "lib/words.py": (
        "def shout(s):\n    return s.upper() + \"!\"\n\n\n"
        "def whisper(s):\n    return s.lower() + \"...\"\n\n\n"
        "def describe(n, words=False):\n    text = str(n)\n    if words and n < 0:\n"
        "        text = \"minus \" + text\n    return text\n"
    ),
    "tests/test_words.py": (
        "from lib.words import describe, shout, whisper\n\n\n"
        "def test_shout():\n    assert shout(\"hi\") == \"HI!\"\n\n\n"
        "def test_shout2():\n    assert shout(\"a\") == \"A!\"\n\n\n"
        "def test_whisper():\n    assert whisper(\"HI\") == \"hi...\"\n\n\n"
        "def test_whisper2():\n    assert whisper(\"A\") == \"a...\"\n\n\n"
        "def test_describe_number():\n    assert describe(3) == \"3\"\n\n\n"
        "def test_describe_words():\n    assert describe(3, words=True) == \"three\"\n"
    ),
}
ISSUE = "describe should spell the number with words=True"


def env(**extra: str) -> dict[str, str]:
    """The environment of a command run through a pipe, as in `treefix ... | cat` (no COLUMNS)."""
    e = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return {**e, **extra}


def treefix(*args: str, cwd: Path | None = None, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([*TREEFIX, *args], capture_output=True, text=True, cwd=cwd, env=env(**extra), timeout=300)


@pytest.fixture(scope="module")
def no_gain(tmp_path_factory):  # type: ignore[no-untyped-def]
    """An offline run whose one attempt passes as many tests as the base (5 of 6), no more."""
    repo = make_repo(tmp_path_factory.mktemp("nogain") / "repo", WORDS)
    result = treefix("fix", str(repo), "--issue", ISSUE, "--test-cmd", TEST_CMD, "--max-nodes", "2", cwd=repo)
    return repo, result, next((repo / ".treefix" / "runs").iterdir())


def test_an_attempt_no_better_than_the_base_is_not_offered(no_gain):
    repo, result, run_dir = no_gain
    summary = json.loads((run_dir / "summary.json").read_text())
    tree = json.loads((run_dir / "tree.json").read_text())
    attempts = [n for n in tree["nodes"] if n["kind"] == "code"]
    assert attempts and all(n["exec"]["passed"] <= 5 for n in attempts)  # the run made a candidate diff
    assert (run_dir / "patch.diff").read_text() == ""
    assert summary["best_node"] is None and summary["base_tests"] == {"passed": 5, "total": 6}
    assert "more tests than the base (5 of 6)" in summary["reason"]
    assert result.returncode == 3, result.stderr  # the node limit, before any candidate better than the base
    err = result.stderr
    assert "no candidate" in err and "no patch: none of 1 attempts passed more tests than the base" in err
    assert "None" not in err and "patch:" not in err.replace("no patch:", "")
    assert "next: the nodes limit was reached: run again with a higher --max-nodes" in err


def test_ties_in_value_go_to_the_attempt_passing_more_tests(tmp_path):
    """The offline critic clips regressions to value 0, tying them with neutral edits."""
    from treefix.agent.outputs import candidates, offered

    store = RunStore(tmp_path / "run.sqlite")
    outcomes = {f"t{i}": "passed" for i in range(5)} | {"t5": "failed"}
    store.set_meta(SPECTRUM_KEY, {"tests": list(outcomes), "outcomes": outcomes, "lines": {}, "error": ""})
    root = store.add(Node(NodeKind.ROOT, None, 0))

    def attempt(diff: str, passed: int, failed: int, value: float = 0.0, timed_out: bool = False) -> Node:
        ex = ExecResult(passed=passed, failed=failed, timed_out=timed_out)
        return store.add(Node(NodeKind.CODE, root.id, 2, diff=diff, exec=ex, value=value))

    worse = attempt("-x\n+raise\n", passed=4, failed=2)
    same = attempt("-x\n+a much longer edit\n", passed=5, failed=1)
    assert [n.id for n in candidates(store.nodes())] == [same.id, worse.id]
    assert offered(store) == []  # neither is better than the base
    attempt("-x\n+y\n", passed=6, failed=1, timed_out=True)  # a timed-out run proves nothing
    assert offered(store) == []
    better = attempt("-x\n+fix one, keep the rest\n", passed=6, failed=1, value=0.2)
    assert [n.id for n in offered(store)] == [better.id]
    store.close()


def test_runs_finds_the_repository_from_a_subfolder_and_refuses_outside_one(no_gain, tmp_path):
    repo, _, run_dir = no_gain
    listed = treefix("runs", cwd=repo / "lib")
    assert listed.returncode == 0 and run_dir.name in listed.stdout
    assert run_dir.name in treefix("runs", str(repo / "tests")).stdout
    outside = treefix("runs", cwd=tmp_path)
    assert outside.returncode == 2 and "not inside a git repository" in " ".join(outside.stderr.split())
    assert "Traceback" not in outside.stderr


def test_piped_output_is_not_wrapped_or_cropped(no_gain):
    repo, _, run_dir = no_gain
    shown = treefix("inspect", run_dir.name, cwd=repo)
    assert shown.returncode == 0
    plan = next(line for line in shown.stdout.splitlines() if "suspicious lib/words.py" in line)
    assert "visits" in plan and len(plan) > 80  # one node, one line, however long
    assert "value: for a plan" in shown.stdout and "visits: scored nodes at or below it" in shown.stdout
    listed = treefix("runs", cwd=repo).stdout
    assert any(run_dir.name in line and ISSUE in line for line in listed.splitlines())


def test_version_and_help_say_what_they_mean():
    shown = treefix("--version")
    assert shown.returncode == 0 and shown.stdout.strip() == f"treefix {version('treefix')}"
    help_ = treefix("fix", "--help", COLUMNS="200").stdout
    assert "<bool>" not in help_ and "Search for a fix of the issue in REPO" in help_
    assert "levels of nodes below the issue" in next(ln for ln in help_.splitlines() if "--max-depth" in ln)
    codes = help_[help_.index("Exit codes:"):]
    for line in ("0    verified", "1    no verified patch", "2    bad input", "3    a limit was reached"):
        assert line in codes
    for status in ("verified", "unverified", "limit:NAME", "exhausted", "model_error"):
        assert f"  {status} " in help_[help_.index("Exit statuses"):]
    assert "START:STOP:STEP" in treefix("swebench", "run", "--help", COLUMNS="200").stdout


def test_no_help_text_is_changed_by_rich_markup():
    """Help is rendered as rich markup: `:b:` becomes an emoji, `[x]` a style. None may change."""
    import typer
    from rich.text import Text

    from treefix.agent import cli

    cli._register_plugins()
    texts = []

    def walk(cmd) -> None:  # type: ignore[no-untyped-def]
        texts.extend(t for t in (cmd.help, cmd.epilog, *(getattr(p, "help", None) for p in cmd.params)) if t)
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(cli.app))
    assert len(texts) > 50
    changed = [t for t in texts if Text.from_markup(t).plain != t]
    assert changed == []


def test_messages_print_paths_as_they_are(tmp_path):
    """Rich turns `:b:` into an emoji unless told not to; a path or flag in a message must stay text."""
    assert ":b:.md" in treefix("fix", ".", "--issue-file", ":b:.md", cwd=tmp_path).stderr
    assert ":b:.json" in treefix("swebench", "run", "--dataset", ":b:.json", "-o", "out", cwd=tmp_path).stderr
    assert not (tmp_path / "out").exists()


def test_ctrl_c_names_the_run_to_resume_and_resume_counts_on(tmp_path):
    repo = make_repo(tmp_path / "repo", WORDS)
    args = ["fix", str(repo), "--issue", ISSUE, "--test-cmd", TEST_CMD, "--max-nodes", "6"]
    # A process started in the background inherits SIGINT ignored (bash does that to `&` jobs), and
    # Python then keeps ignoring it: give the run the terminal's default, whatever started pytest.
    proc = subprocess.Popen([*TREEFIX, *args], cwd=repo, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        runs = repo / ".treefix" / "runs"
        while time.monotonic() < deadline and proc.poll() is None:
            dirs = list(runs.glob("*/run.sqlite")) if runs.is_dir() else []
            if dirs and len(node_ids(dirs[0])) >= 2:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    run_id = dirs[0].parent.name
    assert proc.returncode == 130, err
    assert f"run {run_id} started" in err and "#1/6" in err  # node k of N from the first node on
    assert f"`treefix resume {run_id}`" in " ".join(err.split()) and "RUN`" not in err
    made = len(node_ids(dirs[0])) - 1  # the root is not counted
    resumed = treefix("resume", run_id, cwd=repo)
    assert f"run {run_id} resumed" in resumed.stderr
    numbers = [line.split()[0] for line in resumed.stderr.splitlines() if line.startswith("#")]
    assert numbers and numbers[0] == f"#{made + 1}/6", resumed.stderr  # not renumbered from #1
    assert "#1/6" not in numbers


def test_a_run_that_cannot_start_leaves_no_run_behind(tmp_path):
    repo = make_repo(tmp_path / "repo", WORDS)
    keyless = {"TREEFIX_CONFIG_DIR": str(tmp_path / "config"), "OPENAI_API_KEY": ""}
    args = ["fix", str(repo), "--issue", ISSUE, "--test-cmd", TEST_CMD, "-m", "openai/gpt-4o-mini"]
    result = treefix(*args, cwd=repo, **keyless)
    assert result.returncode == 2 and "OPENAI_API_KEY is not set" in result.stderr
    assert not list(repo.glob(".treefix/runs/*"))
    mine = tmp_path / "mine"
    mine.mkdir()  # an empty folder the user made for the run stays, empty
    assert treefix(*args, "-o", str(mine), cwd=repo, **keyless).returncode == 2
    assert mine.is_dir() and not list(mine.iterdir())
    listed = treefix("runs", cwd=repo)
    assert listed.returncode == 0 and "unfinished" not in listed.stdout


def test_the_test_timeout_scales_with_the_base_run(no_gain):
    """Not typed, --test-timeout is 5 times the base's test run (at least 30 s): a mutant that loops
    forever holds a test run for that long, not 300 s."""
    from treefix.agent.evaluate import TIMEOUT_FACTOR, TIMEOUT_FLOOR

    _, _, run_dir = no_gain
    store = RunStore(run_dir / "run.sqlite")
    try:
        tests = store.events("test")
        assert store.get_meta("task")["auto_timeout"] is True
    finally:
        store.close()
    base = next(e["seconds"] for e in tests if e.get("purpose") == "coverage")
    timeouts = [e["timeout"] for e in tests if e.get("node")]
    assert timeouts and all(t == round(max(TIMEOUT_FACTOR * base, TIMEOUT_FLOOR), 3) for t in timeouts)
    assert all(t < 300 for t in timeouts)
    help_ = " ".join(treefix("fix", "--help", COLUMNS="200").stdout.split())
    assert "5 times the base's test run, at least 30, at most 300" in help_


def test_a_test_command_that_sets_pythonpath_still_localises(tmp_path):
    """`PYTHONPATH=src python -m pytest` (src layouts) sets the variable that carries the coverage plugin."""
    files = {
        "src/calc/__init__.py": "",
        "src/calc/ops.py": "def clamp(x, lo, hi):\n    if x < lo:\n        return lo\n    if x > hi:\n        return lo\n    return x\n",
        "tests/test_ops.py": (
            "from calc.ops import clamp\n\n\ndef test_low():\n    assert clamp(-1, 0, 5) == 0\n\n\n"
            "def test_high():\n    assert clamp(9, 0, 5) == 5\n"
        ),
    }
    repo = make_repo(tmp_path / "repo", files)
    cmd = "PYTHONPATH=src python -m pytest -q -p no:cacheprovider"
    result = treefix("fix", str(repo), "--issue", "clamp returns lo for large x", "--test-cmd", cmd, "--max-nodes", "1", "-o", str(tmp_path / "run"))
    plans = [n for n in json.loads((tmp_path / "run" / "tree.json").read_text())["nodes"] if n["kind"] == "plan"]
    assert plans and plans[0]["title"].startswith("suspicious src/calc/ops.py:"), result.stderr
    assert "no patch: the run ended before any attempt" in result.stderr
