"""Git as Aider users expect it: never lose work, one commit per applied patch, undo only our own.

treefix's commits carry a `Co-authored-by: treefix <...>` trailer; that trailer, and not being on
any remote branch, is what makes a commit ours to undo.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from treefix.tools.diffs import patch_paths

TRAILER = "Co-authored-by: treefix <treefix@localhost>"
FALLBACK_IDENTITY = ("treefix", "treefix@localhost")


class GitError(Exception):
    """Something the user can act on; the checkout is as it was."""


def git(root: Path, *args: str, check: bool = True, stdin: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")} | {"GIT_TERMINAL_PROMPT": "0"}
    proc = subprocess.run(["git", *args], cwd=root, env=env, input=stdin, capture_output=True, text=True)
    if check and proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise GitError(f"git {args[0]}: {lines[-1] if lines else 'failed'}"[:300])
    return proc.stdout


def dirty_paths(root: Path) -> set[str]:
    """Tracked files with uncommitted changes (staged or not), and untracked files."""
    out = git(root, "status", "--porcelain", "-z", "--untracked-files=all")
    paths, items = set(), out.split("\0")
    i = 0
    while i < len(items):
        entry = items[i]
        if len(entry) > 3:
            paths.add(entry[3:])
            if entry[0] in "RC":  # a rename lists its old path next
                i += 1
                paths.add(items[i])
        i += 1
    return {p for p in paths if not p.startswith(".treefix/")}


def conflicts(root: Path, patch: str) -> list[str]:
    """Files the patch touches that hold uncommitted work."""
    return sorted(set(patch_paths(patch)) & dirty_paths(root))


def commit_paths(root: Path, paths: list[str], message: str) -> str:
    """Commit the user's own work on `paths` (asked first), so applying over it loses nothing."""
    git(root, "add", "--", *paths)
    git(root, *_identity(root), "commit", "--quiet", "--no-verify", "-m", message, "--", *paths)
    return head(root)


def apply_patch(root: Path, patch: str, message: str) -> str:
    """Apply `patch` and commit exactly its files, with our trailer; the checkout is untouched on failure."""
    if not patch.strip():
        raise GitError("nothing to apply: the patch is empty")
    if busy := conflicts(root, patch):
        raise GitError(f"uncommitted changes in {', '.join(busy)}")
    with tempfile.NamedTemporaryFile("w", suffix=".diff", delete=False) as f:
        f.write(patch if patch.endswith("\n") else patch + "\n")
    try:
        check = subprocess.run(["git", "apply", "--check", "--index", f.name], cwd=root, capture_output=True, text=True)
        if check.returncode != 0:
            raise GitError(f"the patch does not apply to the checkout: {check.stderr.strip().splitlines()[0]}")
        git(root, "apply", "--index", f.name)
    finally:
        os.unlink(f.name)
    paths = patch_paths(patch)
    try:  # only the patch's paths: whatever else the user staged stays staged, uncommitted
        git(root, *_identity(root), "commit", "--quiet", "--no-verify", "-m", f"{message}\n\n{TRAILER}", "--", *paths)
    except GitError:
        git(root, "reset", "--quiet", "--", *paths, check=False)
        git(root, "checkout", "--", *paths, check=False)
        raise
    return head(root)


def undo(root: Path) -> tuple[str, str]:
    """Revert HEAD when it is treefix's own, unpushed commit; (sha, subject). GitError otherwise."""
    sha = head(root)
    body = git(root, "log", "-1", "--format=%B", sha)
    subject = body.strip().splitlines()[0] if body.strip() else ""
    if TRAILER not in body:
        raise GitError(f"the last commit {sha[:10]} ({subject[:50]}) is not treefix's; /undo only reverts treefix's commits")
    if git(root, "branch", "-r", "--contains", sha).strip():
        raise GitError(f"{sha[:10]} is already pushed; revert it with `git revert {sha[:10]}` instead")
    if len(git(root, "rev-list", "--max-count=2", sha).split()) < 2:
        raise GitError(f"{sha[:10]} is the first commit; there is nothing before it to go back to")
    changed = git(root, "diff-tree", "--no-commit-id", "--name-only", "-r", sha).split("\n")
    if busy := sorted(set(changed) & dirty_paths(root)):
        raise GitError(f"uncommitted changes in {', '.join(busy)}; commit or stash them before /undo")
    git(root, "reset", "--quiet", "--keep", f"{sha}~1")  # --keep never drops local changes
    return sha, subject


def head(root: Path) -> str:
    return git(root, "rev-parse", "HEAD").strip()


def _identity(root: Path) -> list[str]:
    out = []
    for key, fallback in zip(("user.name", "user.email"), FALLBACK_IDENTITY, strict=True):
        if not git(root, "config", "--get", key, check=False).strip():
            out += ["-c", f"{key}={fallback}"]
    return out
