"""The `fresh` split of the generalisation benchmark: its data file and how the benchmark selects it.

No test here runs the offline policy: the fresh set is measured once, by hand."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import git, make_repo

from benchmarks.generalise.build import main as build_main
from benchmarks.offline_generalise import DATA, SPLITS, Result, main, table
from treefix.evals.dataset import load_dataset

ROOT = Path(__file__).resolve().parents[1]
FRESH = ROOT / "benchmarks" / "generalise" / "fresh.jsonl"


def repos(path: Path) -> set[str]:
    return {json.loads(ln)["repo"] for ln in path.read_text().splitlines() if ln.strip()}


def test_fresh_set_is_new_libraries_each_row_split_fresh():
    instances, problems = load_dataset(FRESH)
    assert not problems and instances
    assert {getattr(i, "split", None) for i in instances} == {"fresh"}
    # Libraries neither the tune/held-out set nor the bundled suite uses, at most two bugs each.
    assert not repos(FRESH) & (repos(DATA) | repos(ROOT / "evals" / "suites" / "all.jsonl"))
    per_repo = [sum(i.repo == r for i in instances) for r in repos(FRESH)]
    assert max(per_repo) <= 2
    for inst in instances:
        raw = inst.model_dump()
        assert inst.FAIL_TO_PASS and inst.PASS_TO_PASS and inst.test_patch and inst.base_commit
        assert raw["source_licence"] and raw["fix_commit"] in raw["source_licence"]
        changed = [ln for ln in inst.patch.splitlines() if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
        assert 1 <= sum(ln[0] == "+" for ln in changed) <= 3 and 1 <= sum(ln[0] == "-" for ln in changed) <= 3


def test_fresh_is_a_split_but_not_run_by_default(tmp_path, capsys):
    assert "fresh" in SPLITS
    # Selecting it on the fresh file finds its tasks (-i names none, so nothing runs).
    args = ["--mirrors", str(tmp_path), "-o", str(tmp_path / "out"), "-i", "no-such-bug"]
    assert main(["--dataset", str(FRESH), "--split", "fresh", *args]) == 0
    assert "0 real bugs" in capsys.readouterr().out
    # The tune/held-out file has no fresh task, and the default halves are not in the fresh file.
    assert main(["--dataset", str(DATA), "--split", "fresh", *args]) == 2
    assert "no task of split fresh" in capsys.readouterr().err
    assert main(["--dataset", str(FRESH), *args]) == 2
    assert "no task of split tune, heldout" in capsys.readouterr().err
    assert main(["--dataset", str(FRESH), "--split", "fresh,nope", *args]) == 2
    assert "unknown split 'nope'" in capsys.readouterr().err


def test_table_prints_a_fresh_row():
    rs = [Result("a-1", "fresh", "submitted", True, True, True, 7, 9, 12.0),
          Result("b-2", "fresh", "exhausted", False, False, False, 60, 61, 30.0)]  # fmt: skip
    rows = table(rs, {"fresh": 2}).splitlines()
    assert len(rows) == 2 and rows[1].split()[:6] == ["fresh", "2", "1", "50%", "1", "50%"]


def mirror_with_one_fix(tmp_path: Path) -> Path:
    """A mirror folder holding owner+lib/repo: a library, its tests, then a one-line fix commit."""
    work = tmp_path / "lib"
    make_repo(work, {
        "lib.py": "def double(x):\n    return x + 2\n",
        "tests/test_lib.py": "from lib import double\n\n\ndef test_type():\n    assert isinstance(double(1), int)\n",
    })  # fmt: skip
    (work / "lib.py").write_text("def double(x):\n    return x * 2\n")
    (work / "tests" / "test_lib.py").write_text(
        "from lib import double\n\n\ndef test_type():\n    assert isinstance(double(1), int)\n\n\ndef test_three():\n    assert double(3) == 6\n"
    )
    git(work, "commit", "-qam", "Fix double")
    mirrors = tmp_path / "mirrors"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(mirrors / "owner+lib" / "repo")], check=True)
    return mirrors


def test_builder_keeps_a_real_fix_and_its_repo_cap_stops_it(tmp_path):
    mirrors = mirror_with_one_fix(tmp_path)
    out = tmp_path / "fresh.jsonl"
    args = ["--mirrors", str(mirrors), "--repo", "owner/lib", "-o", str(out), "--timeout", "120"]
    assert build_main(args) == 0
    (row,) = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert row["FAIL_TO_PASS"] == ["tests/test_lib.py::test_three"]
    assert row["PASS_TO_PASS"] == ["tests/test_lib.py::test_type"] and "x * 2" in row["patch"]
    # A repository past its time cap yields nothing more (here: capped before its first candidate).
    assert build_main([*args, "--repo-minutes", "1e-9"]) == 0
    assert out.read_text() == ""
