"""The user's repository at a base revision, and a pool of detached git worktrees to try patches in."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import git

from treefix.tools.secrets import without_secrets

FALLBACK_AUTHOR = ("treefix", "treefix@localhost")
# Variables a git hook or a parent git process may set; they would redirect our commands.
_GIT_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY")


class WorkspaceError(Exception):
    """A problem the user can fix (bad path, dirty tree, patch that does not apply)."""


def _git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in without_secrets().items() if k not in _GIT_ENV}  # hooks are off, but keys stay home
    proc = subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", *args],
        cwd=cwd, env=env, capture_output=True, text=True, errors="surrogateescape",
    )  # fmt: skip
    if check and proc.returncode != 0:
        raise WorkspaceError(f"git {args[0]} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


class Workspace:
    def __init__(self, repo: Path, base: str = "HEAD", pool_dir: Path | None = None):
        path = Path(repo).expanduser().resolve()
        if not path.is_dir():
            raise WorkspaceError(f"not a directory: {path}")
        try:
            handle = git.Repo(path, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise WorkspaceError(f"not a git repository: {path}") from None
        if handle.bare or handle.working_tree_dir is None:
            raise WorkspaceError(f"bare repositories are not supported: {path}")
        self.root = Path(handle.working_tree_dir).resolve()
        has_commits = handle.head.is_valid()
        handle.close()  # GitPython keeps `git cat-file` helpers; plain git calls are thread-safe
        if not has_commits:
            raise WorkspaceError("repository has no commits")
        resolved = _git(self.root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}", check=False)
        if resolved.returncode != 0:
            raise WorkspaceError(f"unknown base revision: {base}")
        self.base_sha = resolved.stdout.strip()
        self._git_dir = self.root / _git(self.root, "rev-parse", "--git-common-dir").stdout.strip()
        self._owns_pool = pool_dir is None or not Path(pool_dir).exists()
        self.pool_dir = Path(pool_dir or tempfile.mkdtemp(prefix="treefix-pool-")).resolve()
        self.pool_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # guards the lists below
        self._admin_lock = threading.Lock()  # one `git worktree add/remove` at a time
        self._free: list[Path] = []
        self._made: list[Path] = []
        self._exclude(".treefix/")

    def _exclude(self, pattern: str) -> None:
        """Run folders inside the repo must never make it look dirty."""
        exclude = self._git_dir / "info" / "exclude"
        text = exclude.read_text() if exclude.exists() else ""
        if pattern not in text.splitlines():
            exclude.parent.mkdir(parents=True, exist_ok=True)
            exclude.write_text(text + ("" if text.endswith("\n") or not text else "\n") + pattern + "\n")

    # --- the worktree pool ---------------------------------------------------------------------

    def acquire(self) -> Path:
        """A clean detached worktree at base, for one worker until `release`."""
        with self._lock:
            path = self._free.pop() if self._free else None
            if path is None:
                path = self.pool_dir / f"wt-{len(self._made)}"
                self._made.append(path)
                fresh = True
            else:
                fresh = False
        if fresh:
            try:
                with self._admin_lock:
                    _git(self.root, "worktree", "add", "--detach", "--force", str(path), self.base_sha)
            except WorkspaceError:
                with self._lock:
                    self._made.remove(path)
                raise
        else:
            _git(path, "reset", "--quiet", "--hard", self.base_sha)
            _git(path, "clean", "-ffdxq")
        return path

    def release(self, path: Path) -> None:
        with self._lock:
            if path in self._made and path not in self._free:
                self._free.append(path)

    @contextmanager
    def worktree(self) -> Iterator[Path]:
        path = self.acquire()
        try:
            yield path
        finally:
            self.release(path)

    # --- patches -------------------------------------------------------------------------------

    def _apply(self, cwd: Path, diff: str, *flags: str) -> str | None:
        """`git apply` from a file outside the worktree; returns the error message or None."""
        if not diff.endswith("\n"):
            diff += "\n"  # git rejects a patch whose last line is unterminated
        with tempfile.NamedTemporaryFile("w", suffix=".diff", delete=False) as f:
            f.write(diff)
        try:
            proc = _git(cwd, "apply", "--whitespace=nowarn", *flags, f.name, check=False)
        finally:
            os.unlink(f.name)
        return None if proc.returncode == 0 else (proc.stderr.strip() or "git apply failed")

    def apply_diff(self, path: Path, diff: str) -> str | None:
        if not diff.strip():
            return None
        error = self._apply(path, diff)
        if error is not None and self._apply(path, diff, "--recount") is None:
            return None  # hand-written hunks often have wrong line counts
        return error

    def diff(self, path: Path) -> str:
        """Every change of a worktree against base, new, deleted and binary files included."""
        _git(path, "add", "-A")
        out = _git(path, "diff", "--cached", "--binary", self.base_sha).stdout
        return out if not out or out.endswith("\n") else out + "\n"

    # --- the user's checkout -------------------------------------------------------------------

    def is_dirty(self) -> bool:
        return bool(_git(self.root, "status", "--porcelain", "--untracked-files=no").stdout.strip())

    def apply_to_checkout(self, diff: str, message: str) -> str:
        """Apply a patch to the user's checkout and commit it; the tree is untouched on failure."""
        if not diff.strip():
            raise WorkspaceError("nothing to apply: the patch is empty")
        if self.is_dirty():
            raise WorkspaceError("working tree has uncommitted changes; commit or stash them first")
        # --index is all-or-nothing and stages exactly the patch, so the commit holds nothing else.
        error = self._apply(self.root, diff, "--index")
        if error is not None:
            raise WorkspaceError(f"patch does not apply to {self.root}: {error.splitlines()[0]}")
        identity = []
        for key, fallback in zip(("user.name", "user.email"), FALLBACK_AUTHOR, strict=True):
            if not _git(self.root, "config", "--get", key, check=False).stdout.strip():
                identity += ["-c", f"{key}={fallback}"]
        commit = _git(self.root, *identity, "commit", "--quiet", "--no-verify", "-m", message, check=False)
        if commit.returncode != 0:
            self._apply(self.root, diff, "--index", "--reverse")
            raise WorkspaceError(f"git commit failed: {commit.stderr.strip() or commit.stdout.strip()}")
        return _git(self.root, "rev-parse", "HEAD").stdout.strip()

    # --- prompts and cleanup -------------------------------------------------------------------

    def overview(self, max_files: int = 200) -> str:
        """Files at base as an indented tree, for prompts."""
        files = _git(self.root, "ls-tree", "-r", "--name-only", self.base_sha).stdout.splitlines()
        lines: list[str] = []
        shown: list[str] = []  # directory parts of the previous file
        for name in files[:max_files]:
            *dirs, leaf = name.split("/")
            common = 0
            while common < min(len(dirs), len(shown)) and dirs[common] == shown[common]:
                common += 1
            lines += ["  " * depth + part + "/" for depth, part in enumerate(dirs) if depth >= common]
            lines.append("  " * len(dirs) + leaf)
            shown = dirs
        if len(files) > max_files:
            lines.append(f"... {len(files) - max_files} more files")
        return "\n".join(lines)

    def close(self) -> None:
        with self._lock:
            made, self._made, self._free = self._made, [], []
        with self._admin_lock:
            for path in made:
                _git(self.root, "worktree", "remove", "--force", "--force", str(path), check=False)
            _git(self.root, "worktree", "prune", check=False)
        if self._owns_pool:
            shutil.rmtree(self.pool_dir, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
