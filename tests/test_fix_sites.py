"""The generalisation benchmark's diagnostic: which base statements a real fix changes, and
where a finished offline run stood relative to them (run on a small real repository)."""

import subprocess
import sys
from pathlib import Path

from conftest import make_repo

from benchmarks.fix_sites import diagnose, old_lines, statements
from treefix.agent.budget import Limits
from treefix.agent.run import RunConfig, run_fix
from treefix.agent.task import Task

SRC = """def clamp(x, lo, hi):
    if x < lo:
        return lo
    if x > hi:
        return lo
    return x
"""
TEST = """from mod import clamp


def test_low():
    assert clamp(-1, 0, 5) == 0


def test_mid():
    assert clamp(3, 0, 5) == 3


def test_high():
    assert clamp(9, 0, 5) == 5
"""


def _fix(repo: Path) -> str:
    (repo / "mod.py").write_text(SRC.replace("        return lo\n    return x", "        return hi\n    return x"))
    out = subprocess.run(["git", "diff"], cwd=repo, capture_output=True, text=True, check=True).stdout
    subprocess.run(["git", "checkout", "mod.py"], cwd=repo, check=True)
    return out


def test_old_lines_of_a_change_and_an_insertion():
    patch = (
        "diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -3,3 +3,4 @@\n a\n-b\n+c\n d\n+e\n"
    )
    assert old_lines(patch) == {"m.py": {4, 5, 6}}


def test_diagnose_a_real_run(tmp_path):
    repo = make_repo(tmp_path / "repo", {"mod.py": SRC, "test_mod.py": TEST})
    fix = _fix(repo)
    assert statements(fix, repo) == {("mod.py", 5)}
    task = Task(repo=repo, problem_statement="clamp above hi is wrong", test_cmd=f"{sys.executable} -m pytest -q")
    run_dir = tmp_path / "run"
    outcome = run_fix(task, RunConfig(model="offline", limits=Limits(max_nodes=20, cost_limit=0)), run_dir)
    assert outcome.exit_status == "verified"
    where = diagnose(run_dir, fix, repo)
    assert where.raw_rank >= 1 and where.rank >= 1 and where.planned and where.touched >= 1
