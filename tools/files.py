"""The files of a repository as a model should see them: tracked and untracked, minus what git ignores."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

# Outside git there is no .gitignore to ask, so skip what is almost never source.
_SKIP_DIRS = {
    ".git", ".hg", ".svn", ".treefix", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".nox",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", "dist", "build", "target", ".idea", ".vscode",
}  # fmt: skip


def list_files(root: Path) -> list[str]:
    """Repository-relative POSIX paths of regular files, sorted."""
    root = root.resolve()
    found = _git_files(root)
    if found is None:
        found = _walk(root)
    return sorted(found)


def _git_files(root: Path) -> list[str] | None:
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    names = {n for n in out.decode("utf-8", "surrogateescape").split("\0") if n}
    # --cached lists files deleted from the work tree too; symlinks and submodules are not source.
    return [n for n in names if (root / n).is_file() and not (root / n).is_symlink()]


def _walk(root: Path) -> list[str]:
    found: list[str] = []
    stack = [("", str(root))]
    while stack:
        prefix, folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            # DirEntry answers from the directory listing: no extra stat per file.
            if entry.is_symlink():
                continue
            if entry.is_dir():
                if entry.name not in _SKIP_DIRS and not entry.name.endswith(".egg-info"):
                    stack.append((f"{prefix}{entry.name}/", entry.path))
            elif entry.is_file():
                found.append(prefix + entry.name)
    return found
