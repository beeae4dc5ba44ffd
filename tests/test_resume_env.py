"""`treefix resume` from another shell: the tests run in the environment the run started with,
or the resume is refused with the reason when that environment is gone."""

import json
import os
import subprocess
import sys

from conftest import kill_when_stored, make_repo
from scripted import BUGGY, PLAN, critic

TREEFIX = [sys.executable, "-m", "treefix.agent.cli"]
# A src layout: the tests import `calc` only through the PYTHONPATH of the shell that started the run.
SRC = {f"src/{k}" if k.startswith("calc/") else k: v for k, v in BUGGY.items()}
WRONG = "src/calc/ops.py\n<<<<<<< SEARCH\n    if x > hi:\n        return lo\n=======\n    if x >= hi:\n        return lo\n>>>>>>> REPLACE\n"  # noqa: E501


def cassette(path):
    usage = {"input_tokens": 100, "output_tokens": 10, "cached_tokens": 0, "cache_write_tokens": 0}
    entries = [("plan", PLAN), ("code", WRONG), ("repair", WRONG), ("critic", critic(0.3))] * 40
    path.write_text("".join(json.dumps({"role": r, "request": "", "completion": {"text": t, "usage": usage}}) + "\n"
                            for r, t in entries))  # fmt: skip
    return path


def shell(**extra):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, **extra}


def test_resume_from_a_shell_without_the_variable_scores_new_nodes_as_before(tmp_path):
    repo = make_repo(tmp_path / "repo", SRC)
    run_dir = tmp_path / "run"
    cmd = [*TREEFIX, "fix", str(repo), "--issue", "clamp(9, 0, 5) returns 0", "-m",
           f"replay:{cassette(tmp_path / 'c.jsonl')}", "--test-cmd", "sleep 0.3; python -m pytest -q -p no:cacheprovider",
           "--max-nodes", "9", "-o", str(run_dir)]  # fmt: skip
    before = set(kill_when_stored(cmd, run_dir / "run.sqlite", 5, env=shell(PYTHONPATH="src")))

    done = subprocess.run([*TREEFIX, "resume", str(run_dir)], capture_output=True, text=True, timeout=300, env=shell())
    assert done.returncode == 1, done.stderr
    nodes = json.loads((run_dir / "tree.json").read_text())["nodes"]
    scored = [n for n in nodes if n["kind"] == "code"]  # a repair of the same edit does not apply: no test run
    new = [n for n in scored if n["id"] not in before]
    assert new and len(new) < len(scored), "the run must be killed after one attempt and resume with another"
    # every attempt is the same wrong edit: 2 of 3 tests pass with `calc` importable, 0 without
    assert all(n["exec"]["passed"] == 2 for n in scored), [(n["id"][:8], n["exec"]["passed"]) for n in scored]
    assert "environment the run started with: PYTHONPATH" in done.stderr  # and the user is told


def test_resume_is_refused_when_the_tests_interpreter_is_gone(tmp_path):
    repo = make_repo(tmp_path / "repo", BUGGY)
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    run_dir = tmp_path / "run"
    cmd = [*TREEFIX, "fix", str(repo), "--issue", "clamp(9, 0, 5) returns 0", "-m",
           f"replay:{cassette(tmp_path / 'c.jsonl')}", "--test-cmd", "python -m pytest -q -p no:cacheprovider",
           "--max-nodes", "1", "-o", str(run_dir)]  # fmt: skip
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                           env=shell(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}"))  # fmt: skip
    assert (run_dir / "summary.json").exists(), first.stderr
    (bin_dir / "python").unlink()  # the virtualenv was deleted
    files = sorted(p.name for p in run_dir.iterdir())

    again = subprocess.run([*TREEFIX, "resume", str(run_dir)], capture_output=True, text=True, timeout=60, env=shell())
    assert again.returncode == 2
    assert f"ran `python` from {bin_dir / 'python'}, which is gone" in again.stderr
    assert "Traceback" not in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in run_dir.iterdir()) == files
