"""The files a code or repair prompt shows: whole when small, else the parts that matter.

A file longer than `WHOLE_CHARS` is not cut at a fixed offset. The prompt gets, with line numbers:
the definitions the plan (or advice) names, the line ranges it cites (`path:120-140`, also what the
plan's tool calls viewed), the regions a previous attempt changed, and an outline of the rest;
and it says which lines were left out and how to see them (the view tool).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from treefix.tools.tags import Definition, extract, supported

WHOLE_CHARS = 20_000  # files up to this size are shown whole, as before
REGION_CHARS = 16_000  # the most excerpt text of one file
MAX_REGION_LINES = 160  # a named definition longer than this shows its head and its cited lines
CONTEXT_LINES = 3  # around each region
CITED_CONTEXT = 15  # around a cited line or viewed range
MAX_OUTLINE = 80  # outline rows of one file

_REF = re.compile(r"([\w./-]+\.\w+):(\d+)(?:-(\d+))?")
_LINES = re.compile(r"\blines?\s+(\d+)(?:\s*(?:-|to|–)\s*(\d+))?", re.I)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PATHS = re.compile(r"[\w.-]*(?:/[\w.-]+)*\.(?:py|pyi|js|ts|tsx|jsx|go|rs|java|c|h|cc|cpp|hpp|rb|php|cs|kt|swift|scala|lua|sh)(?::[\d-]+)?\b")
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", re.M)


@dataclass
class Region:
    start: int  # 1-based, inclusive
    end: int
    why: str
    rank: int  # lower is kept first when the excerpt budget runs out


@dataclass
class FileView:
    """One file as a prompt shows it."""

    path: str
    text: str = ""  # the whole file (when `whole`)
    whole: bool = True
    regions: list[tuple[int, int, str]] = field(default_factory=list)  # (first, last line, their text)
    lines: int = 0
    outline: list[str] = field(default_factory=list)
    omitted: str = ""  # the line ranges not shown
    dropped: list[str] = field(default_factory=list)  # regions left out for room


def file_view(path: str, text: str, focus: str, diff: str = "") -> FileView:
    """`text` of `path` as a prompt shows it, given the plan/advice text `focus` and a diff on it."""
    if len(text) <= WHOLE_CHARS:
        return FileView(path, text, lines=text.count("\n") + 1)
    lines = text.split("\n")
    defs = extract(path, text.encode(), lines=False).definitions if supported(path) else []
    regions = _cited(path, focus, len(lines)) + _changed(path, diff) + _named(defs, focus, len(lines))
    kept, dropped = _fit(regions, lines)
    if not kept:  # nothing in the file was named or cited: its head, as much as a whole file may be
        size, end = 0, 0
        while end < len(lines) and size + len(lines[end]) + 1 <= WHOLE_CHARS:
            size += len(lines[end]) + 1
            end += 1
        kept = [Region(1, max(end, 1), "the head of the file", 9)]
    shown = _merge([(r.start, r.end) for r in kept], len(lines))
    return FileView(
        path,
        whole=False,
        regions=[(a, b, "\n".join(lines[a - 1 : b])) for a, b in shown],
        lines=len(lines),
        outline=_outline(defs, shown),
        omitted=_gaps(shown, len(lines)),
        dropped=[f"{r.why} (lines {r.start}-{r.end})" for r in dropped],
    )


def _cited(path: str, focus: str, total: int) -> list[Region]:
    """Line ranges the focus text cites for this file: `path:12-40`, `path:12`."""
    out = []
    for m in _REF.finditer(focus):
        if not (path.endswith(m.group(1)) or m.group(1).endswith(path)):
            continue
        a = int(m.group(2))
        b = int(m.group(3) or a)
        pad = CITED_CONTEXT if m.group(3) is None else CONTEXT_LINES
        out.append(Region(max(a - pad, 1), min(max(a, b) + pad, total), f"cited {m.group(0)}", 0))
    return [r for r in out if r.start <= total]


def _changed(path: str, diff: str) -> list[Region]:
    """The regions a diff changed in this file (its new side), with some lines around."""
    out: list[Region] = []
    for section in re.split(r"^diff --git ", diff, flags=re.M):
        if f" b/{path}\n" not in section.split("\n", 1)[0] + "\n":
            continue
        for m in _HUNK.finditer(section):
            a, n = int(m.group(1)), int(m.group(2) or 1)
            out.append(Region(max(a - 10, 1), a + n + 10, "changed by the attempt", 1))
    return out


def _named(defs: list[Definition], focus: str, total: int) -> list[Region]:
    """Definitions the focus text names (a distinctive name, or one written as a call or Class.name)."""
    focus = _PATHS.sub(" ", focus)  # `pkg/__init__.py` names a file, not the definitions __init__ or pkg
    words = set(_IDENT.findall(focus))
    called = set(re.findall(r"([A-Za-z_]\w*)\s*\(", focus)) | set(re.findall(r"\.([A-Za-z_]\w*)", focus))
    called |= set(re.findall(r"`([A-Za-z_]\w*)`", focus))
    out = []
    for d in defs:
        distinctive = len(d.name) >= 8 or "_" in d.name.strip("_")  # plain words name little
        if d.name in called or (d.name in words and distinctive):
            parent = defs[d.parent].name if d.parent >= 0 else ""
            rank = 2 if not parent or parent in words else 3  # Class.method named together first
            out.append(Region(d.line, min(d.end_line, total), f"{d.kind} {d.name}", rank))
    return out


def _fit(regions: list[Region], lines: list[str]) -> tuple[list[Region], list[Region]]:
    """The regions that fit in REGION_CHARS, best ranked first; long definitions show their head."""
    kept: list[Region] = []
    dropped: list[Region] = []
    used = 0
    for r in sorted(regions, key=lambda r: (r.rank, r.start)):
        if r.end - r.start + 1 > MAX_REGION_LINES:
            r = Region(r.start, r.start + MAX_REGION_LINES - 1, r.why + " (its head)", r.rank)
        size = sum(len(x) + 1 for x in lines[r.start - 1 : r.end])
        if kept and used + size > REGION_CHARS:
            dropped.append(r)
            continue
        kept.append(r)
        used += size
    return kept, dropped


def _merge(spans: list[tuple[int, int]], total: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted((max(a - CONTEXT_LINES, 1), min(b + CONTEXT_LINES, total)) for a, b in spans):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _gaps(shown: list[tuple[int, int]], total: int) -> str:
    gaps, at = [], 1
    for a, b in shown:
        if a > at:
            gaps.append(f"{at}-{a - 1}")
        at = b + 1
    if at <= total:
        gaps.append(f"{at}-{total}")
    return ", ".join(gaps)


def _outline(defs: list[Definition], shown: list[tuple[int, int]]) -> list[str]:
    """Signatures with line numbers of the definitions outside the shown regions (top level and
    one level in), so the model knows what else is there and where."""
    rows = []
    for d in defs:
        if d.depth > 1 or any(a <= d.line <= b for a, b in shown):
            continue
        rows.append(f"{d.line}-{d.end_line}: {'    ' * d.depth}{d.signature.strip()}")
    if len(rows) > MAX_OUTLINE:
        rows = rows[:MAX_OUTLINE] + [f"[{len(rows) - MAX_OUTLINE} more definitions: use the outline tool]"]
    return rows
