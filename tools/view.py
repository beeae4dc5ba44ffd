"""Reading files the way a model should: numbered windows, and an outline for files too big to read."""

from __future__ import annotations

import difflib
from pathlib import Path

from treefix.tools.files import list_files
from treefix.tools.paths import PathError, resolve_inside
from treefix.tools.tags import extract, supported
from treefix.tools.treesitter import language_name

WINDOW = 100
MAX_LINE = 400  # characters; minified or data lines are cut, not shown whole
MAX_OUTLINE = 300  # definitions


class ViewError(Exception):
    """A file that cannot be shown; the message says why and what to try instead."""


def view(root: Path, path: str, start: int = 1, end: int | None = None, window: int = WINDOW) -> str:
    """Lines start..end (1-based, inclusive) of a file, numbered, at most `window` of them."""
    rel, lines = _read(root, path)
    total = len(lines)
    if total == 0:
        return f"{rel} is empty."
    start = min(max(start, 1), total)
    end = min(total, end if end is not None and end >= start else start + window - 1, start + window - 1)
    width = len(str(end))
    body = "\n".join(f"{i:>{width}} | {_cut(lines[i - 1])}" for i in range(start, end + 1))
    head = f"{rel} (lines {start}-{end} of {total})"
    notes = []
    if start > 1:
        notes.append(f"{start - 1} lines above")
    if end < total:
        notes.append(f"{total - end} lines below: view from line {end + 1}")
    tail = f"\n[{'; '.join(notes)}]" if notes else ""
    return f"{head}\n{body}{tail}"


def outline(root: Path, path: str) -> str:
    """Classes, functions and methods of a file with their signatures and line ranges."""
    rel, lines = _read(root, path)
    if not supported(rel):
        return f"{rel}: no outline for this file type ({len(lines)} lines); view it in windows instead."
    defs = extract(rel, "\n".join(lines).encode("utf-8"), lines=False).definitions
    head = f"{rel} ({len(lines)} lines, {language_name(rel)}): {len(defs)} definitions"
    rows = [f"{d.line}-{d.end_line}│{'    ' * d.depth}{d.signature}" for d in defs[:MAX_OUTLINE]]
    if len(defs) > MAX_OUTLINE:
        rows.append(
            f"[{len(defs) - MAX_OUTLINE} more definitions: view the file from line {defs[MAX_OUTLINE].line}]"
        )
    return "\n".join([head, *rows])


def _read(root: Path, path: str) -> tuple[str, list[str]]:
    try:
        rel, full = resolve_inside(root, path)
    except PathError as exc:
        raise ViewError(f"{path}: {exc}") from None
    if full.is_dir():
        entries = sorted(p.name + ("/" if p.is_dir() else "") for p in full.iterdir() if p.name != ".git")
        raise ViewError(f"{rel} is a directory; it holds: {', '.join(entries[:50]) or 'nothing'}")
    if not full.is_file():
        raise ViewError(f"{path}: no such file{_suggest(root, path)}")
    data = full.read_bytes()
    if b"\0" in data[:8192]:
        raise ViewError(f"{rel} is a binary file")
    # split("\n") as the edit tool does, so line numbers agree (form feeds are not line breaks).
    lines = data.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    return rel, lines


def _suggest(root: Path, path: str) -> str:
    name = Path(path).name
    files = list_files(root)
    same_name = [f for f in files if Path(f).name == name][:5]
    close = same_name or difflib.get_close_matches(path, files, n=3, cutoff=0.6)
    return f". Did you mean: {', '.join(close)}?" if close else ""


def _cut(line: str) -> str:
    return line if len(line) <= MAX_LINE else f"{line[:MAX_LINE]}… [{len(line) - MAX_LINE} more characters]"
