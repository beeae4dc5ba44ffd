"""Operator recall on a task file's real fixes: which of them one operator at the fix statement writes
(a mirror made from a small real git repository, as `fetch` lays mirrors out)."""

import json
import subprocess
from pathlib import Path

from conftest import git, make_repo

from benchmarks.operator_recall import dataset_fixes, main

SRC = "def clamp(x, lo, hi):\n    if x < lo:\n        return lo\n    return min(x, hi)\n"
OFF_BY_ONE = SRC.replace("x < lo", "x <= lo")  # a comparison operator: an operator writes it
REWRITE = SRC.replace("min(x, hi)", "hi if x > hi else x")  # a new expression: none does


def _commit(repo: Path, text: str) -> str:
    (repo / "mod.py").write_text(text)
    git(repo, "commit", "-qam", "fix")
    return git(repo, "rev-parse", "HEAD").strip()


def _task(instance: str, split: str, base: str, fix: str, repo: Path) -> dict:
    patch = git(repo, "diff", base, fix)
    return {"instance_id": instance, "repo": "o/lib", "base_commit": base, "fix_commit": fix,
            "patch": patch, "split": split}  # fmt: skip


def test_a_task_files_fixes_are_judged_written_or_not_by_split(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    repo = make_repo(tmp_path / "src", {"mod.py": SRC})
    base = git(repo, "rev-parse", "HEAD").strip()
    first = _commit(repo, OFF_BY_ONE)
    git(repo, "reset", "-q", "--hard", base)
    second = _commit(repo, REWRITE)
    mirrors = tmp_path / "mirrors"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(mirrors / "o+lib" / "repo")], check=True)
    git(mirrors / "o+lib" / "repo", "fetch", "-q", str(repo), first)  # the reset branch's commit too
    dataset = tmp_path / "bugs.jsonl"
    tasks = [_task("lib-1", "tune", base, first, repo), _task("lib-2", "heldout", base, second, repo)]
    dataset.write_text("".join(json.dumps(t) + "\n" for t in tasks))

    halves = dataset_fixes(mirrors, dataset)
    assert [(f.task, f.repo, f.written, f.shape) for f in halves["tune"]] == [
        ("lib-1", "o/lib", True, "operator")
    ]
    assert [(f.task, f.written) for f in halves["heldout"]] == [("lib-2", False)]
    assert halves["tune"][0].rank >= 1

    assert main(["--mirrors", str(mirrors), "--dataset", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert "lib-1" in out and "written at rank" in out
    assert "lib-2" in out and "not written" in out
