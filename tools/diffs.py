"""Reading unified diffs: which files a patch touches, and a patch without some of its files."""

from __future__ import annotations

import re

_NEW_FILE = re.compile(r"^\+\+\+ b/(.+)$", re.M)
_GIT_HEADER = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.M)


def changed_paths(diff: str) -> list[str]:
    """Files a diff leaves in place (its `+++ b/` side): what to compile, show or re-read."""
    return _NEW_FILE.findall(diff)


def patch_paths(patch: str) -> list[str]:
    """Every path a git patch names, old and new sides, in order, once each."""
    return list(dict.fromkeys(p for pair in _GIT_HEADER.findall(patch) for p in pair))


def drop_files(diff: str, paths: set[str]) -> str:
    """`diff` without the file sections that touch any of `paths`."""
    if not paths or not diff:
        return diff
    keep = []
    for section in re.split(r"(?m)^(?=diff --git )", diff):
        m = _GIT_HEADER.match(section)
        if m and (m.group(1) in paths or m.group(2) in paths):
            continue
        keep.append(section)
    return "".join(keep)


def normalised(diff: str) -> str:
    """A diff without index lines and hunk offsets, so equal edits compare equal."""
    lines = [ln.rstrip() for ln in diff.splitlines() if not ln.startswith(("index ", "@@"))]
    return "\n".join(lines)
