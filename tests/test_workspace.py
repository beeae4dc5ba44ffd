import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import git, make_repo

from treefix.tools.workspace import Workspace, WorkspaceError

FIX = """\
--- a/pkg/calc.py
+++ b/pkg/calc.py
@@ -1,2 +1,2 @@
 def add(a, b):
-    return a + b
+    return b + a
"""


@pytest.fixture
def ws(git_repo):
    workspace = Workspace(git_repo)
    yield workspace
    workspace.close()


def test_not_a_git_repository(tmp_path):
    with pytest.raises(WorkspaceError, match="not a git repository"):
        Workspace(tmp_path)


def test_repository_without_commits(tmp_path):
    git(tmp_path, "init", "-q")
    with pytest.raises(WorkspaceError, match="no commits"):
        Workspace(tmp_path)


def test_base_resolution(git_repo):
    first = git(git_repo, "rev-parse", "HEAD").strip()
    (git_repo / "README.md").write_text("# changed\n")
    git(git_repo, "commit", "-qam", "second")
    with Workspace(git_repo / "pkg", base="HEAD~1") as ws:  # a subfolder finds the top level
        assert ws.base_sha == first and ws.root == git_repo.resolve()
    with pytest.raises(WorkspaceError, match="unknown base revision: nope"):
        Workspace(git_repo, base="nope")


def test_treefix_dir_is_excluded(ws, git_repo):
    (git_repo / ".treefix" / "runs").mkdir(parents=True)
    (git_repo / ".treefix" / "runs" / "x.json").write_text("{}")
    assert git(git_repo, "status", "--porcelain") == ""
    Workspace(git_repo).close()  # a second init does not add the line twice
    assert (git_repo / ".git" / "info" / "exclude").read_text().count(".treefix/") == 1


def test_worktree_is_reset_between_uses(ws, git_repo):
    with ws.worktree() as path:
        assert (path / "pkg" / "calc.py").exists() and path != git_repo
        (path / "scratch.txt").write_text("left over")
        (path / "README.md").write_text("edited")
    with ws.worktree() as again:
        assert again == path  # reused, not recreated
        assert not (again / "scratch.txt").exists()
        assert (again / "README.md").read_text() == "# demo\n"
    assert git(git_repo, "status", "--porcelain") == ""  # the user's checkout is untouched


def test_apply_diff_and_diff(ws):
    with ws.worktree() as path:
        assert ws.apply_diff(path, FIX) is None
        assert "return b + a" in (path / "pkg" / "calc.py").read_text()
        diff = ws.diff(path)
        assert diff.startswith("diff --git a/pkg/calc.py b/pkg/calc.py\n")
        assert diff.endswith(FIX.split("\n", 2)[2])  # from the hunk header on, the same patch


def test_apply_diff_reports_failure_and_tolerates_bad_counts(ws):
    with ws.worktree() as path:
        error = ws.apply_diff(path, FIX.replace("return a + b", "return a - b"))
        assert error is not None and "patch failed" in error
        assert (path / "pkg" / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
        assert ws.apply_diff(path, FIX.replace("@@ -1,2 +1,2 @@", "@@ -1,5 +1,7 @@").rstrip("\n")) is None


def test_diff_includes_new_and_deleted_files(ws):
    with ws.worktree() as path:
        assert ws.diff(path) == ""
        (path / "README.md").unlink()
        (path / "pkg" / "new.py").write_text("X = 1\n")
        diff = ws.diff(path)
        assert "deleted file mode" in diff and "+++ b/pkg/new.py" in diff and diff.endswith("\n")
    with ws.worktree() as other:  # the diff round-trips onto a clean worktree
        assert ws.apply_diff(other, diff) is None
        assert not (other / "README.md").exists() and (other / "pkg" / "new.py").read_text() == "X = 1\n"


def test_dirty_detection(ws, git_repo):
    assert not ws.is_dirty()
    (git_repo / "untracked.txt").write_text("x")
    assert not ws.is_dirty()
    (git_repo / "README.md").write_text("changed\n")
    assert ws.is_dirty()


def test_apply_to_checkout_commits(ws, git_repo):
    sha = ws.apply_to_checkout(FIX, "treefix: swap operands")
    assert sha == git(git_repo, "rev-parse", "HEAD").strip() != ws.base_sha
    assert git(git_repo, "log", "-1", "--format=%s|%an") == "treefix: swap operands|Test\n"
    assert git(git_repo, "status", "--porcelain") == ""
    assert "return b + a" in (git_repo / "pkg" / "calc.py").read_text()


def test_apply_to_checkout_refuses_dirty_tree(ws, git_repo):
    (git_repo / "README.md").write_text("my work\n")
    with pytest.raises(WorkspaceError, match="uncommitted changes"):
        ws.apply_to_checkout(FIX, "x")
    assert (git_repo / "README.md").read_text() == "my work\n"
    assert (git_repo / "pkg" / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"


def test_apply_to_checkout_failure_leaves_tree_as_before(ws, git_repo):
    two_files = FIX + FIX.replace("pkg/calc.py", "README.md").replace("return a", "nothing")
    with pytest.raises(WorkspaceError, match="does not apply"):
        ws.apply_to_checkout(two_files, "x")
    assert git(git_repo, "status", "--porcelain") == "" and not ws.is_dirty()
    assert git(git_repo, "rev-parse", "HEAD").strip() == ws.base_sha


def test_concurrent_acquire_gives_distinct_worktrees(ws):
    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda _: ws.acquire(), range(4)))
    assert len(set(paths)) == 4 and all((p / "pkg" / "calc.py").exists() for p in paths)
    for path in paths:
        ws.release(path)


def test_close_removes_worktrees(git_repo):
    ws = Workspace(git_repo)
    paths = [ws.acquire(), ws.acquire()]
    ws.close()
    assert len(git(git_repo, "worktree", "list").splitlines()) == 1
    assert not any(p.exists() for p in paths) and not ws.pool_dir.exists()


def test_overview(tmp_path):
    files = {"README.md": "", "src/pkg/a.py": "", "src/pkg/b.py": "", "src/z.py": "", "tests/test_a.py": ""}
    with Workspace(make_repo(tmp_path / "r", files)) as ws:
        assert ws.overview() == "README.md\nsrc/\n  pkg/\n    a.py\n    b.py\n  z.py\ntests/\n  test_a.py"
        assert ws.overview(max_files=2).endswith("    a.py\n... 3 more files")


def test_user_index_untouched_by_worktrees(ws, git_repo):
    (git_repo / "README.md").write_text("staged\n")
    git(git_repo, "add", "README.md")
    index = (git_repo / ".git" / "index").read_bytes()
    with ws.worktree() as path:
        ws.apply_diff(path, FIX)
        ws.diff(path)
    assert (git_repo / ".git" / "index").read_bytes() == index
    assert subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=git_repo).returncode == 1
    assert Path(git_repo / "README.md").read_text() == "staged\n"
