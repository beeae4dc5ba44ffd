"""Turning a path a model wrote into a file inside the repository, or a clear refusal."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath


class PathError(ValueError):
    """A path outside the repository (or otherwise unusable); the message is shown to the model."""


def resolve_inside(root: Path, raw: str) -> tuple[str, Path]:
    """(repository-relative POSIX path, absolute path) with symlinks resolved; raises PathError."""
    root = root.resolve()
    text = raw.strip().replace("\\", "/")
    if not text:
        raise PathError("no file path")
    rel = PurePosixPath(text)
    if rel.is_absolute() or re.match(r"^[A-Za-z]:", text):
        raise PathError("absolute path: use a path relative to the repository root")
    if ".." in rel.parts:
        raise PathError("path outside the repository ('..')")
    if rel.parts and rel.parts[0] == ".git":
        raise PathError("path inside .git")
    resolved = (root / rel).resolve()
    if resolved != root and not resolved.is_relative_to(root):
        raise PathError("path outside the repository (a symlink leads out)")
    rel_text = resolved.relative_to(root).as_posix() if resolved != root else "."
    return rel_text, resolved
