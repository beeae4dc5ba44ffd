"""Finding a SEARCH text in a file's lines, from strict to tolerant, and the closest lines when it is absent.

Tiers, first one with any hit wins: exact lines; leading-whitespace-insensitive (the replacement is
re-indented by the same uniform delta); blank-line drift (blank lines ignored on both sides). The caller
tries `...` elision last, with `split_elided`, because `...` is also real code in stubs.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

ELISION_LINES = {"...", "# ...", "// ...", "/* ... */", "…"}


@dataclass(frozen=True)
class Span:
    start: int  # first file line (0-based)
    end: int  # one past the last file line
    remove: str = ""  # indentation to take off each replacement line
    add: str = ""  # indentation to put on each replacement line
    trim: bool = False  # blank-drift match: the replacement's outer blank lines are dropped too


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _delta(pairs: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The one indentation change that turns every SEARCH line into its file line, or None."""
    found: tuple[str, str] | None = None
    for file_line, search_line in pairs:
        fi, si = _indent(file_line), _indent(search_line)
        if fi.endswith(si):
            d = ("", fi[: len(fi) - len(si)])
        elif si.endswith(fi):
            d = (si[: len(si) - len(fi)], "")
        else:
            return None
        if found is None:
            found = d
        elif d != found:
            return None
    return found or ("", "")


def _exact(lines: list[str], search: list[str]) -> list[Span]:
    n = len(search)
    return [
        Span(i, i + n)
        for i in range(len(lines) - n + 1)
        if lines[i] == search[0] and lines[i : i + n] == search
    ]


def _loose(lines: list[str], search: list[str]) -> list[Span]:
    flat, want, n = [x.strip() for x in lines], [x.strip() for x in search], len(search)
    spans = []
    for i in range(len(lines) - n + 1):
        if flat[i] == want[0] and flat[i : i + n] == want:
            d = _delta([(lines[i + k], search[k]) for k in range(n) if want[k]])
            if d is not None:
                spans.append(Span(i, i + n, *d))
    return spans


def _blank_drift(lines: list[str], search: list[str]) -> list[Span]:
    idx = [i for i, x in enumerate(lines) if x.strip()]
    pattern = [x for x in search if x.strip()]
    if not pattern:
        return []
    flat, want, m = [lines[i].strip() for i in idx], [x.strip() for x in pattern], len(pattern)
    spans = []
    for j in range(len(idx) - m + 1):
        if flat[j] == want[0] and flat[j : j + m] == want:
            d = _delta([(lines[idx[j + k]], pattern[k]) for k in range(m)])
            if d is not None:
                spans.append(Span(idx[j], idx[j + m - 1] + 1, *d, trim=True))
    return spans


TIERS: list[Callable[[list[str], list[str]], list[Span]]] = [_exact, _loose, _blank_drift]


def find_spans(lines: list[str], search: list[str], start: int = 0) -> list[Span]:
    """Every match of the first tier that has one at or after line `start`."""
    if not any(x.strip() for x in search):
        return []
    for tier in TIERS:
        spans = [s for s in tier(lines, search) if s.start >= start]
        if spans:
            return spans
    return []


def replacement(replace: list[str], span: Span) -> list[str]:
    if span.trim:
        replace = _trim_blank(replace)
    if not span.remove and not span.add:
        return list(replace)
    out = []
    for line in replace:
        if not line.strip():
            out.append("")
            continue
        if span.remove:
            line = line[len(span.remove) :] if line.startswith(span.remove) else line.lstrip()
        out.append(span.add + line)
    return out


def _trim_blank(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def split_elided(lines: list[str]) -> list[list[str]] | None:
    """The pieces between `...` lines, or None when there is no elision."""
    if not any(x.strip() in ELISION_LINES for x in lines):
        return None
    pieces: list[list[str]] = [[]]
    for line in lines:
        if line.strip() in ELISION_LINES:
            pieces.append([])
        else:
            pieces[-1].append(line)
    return [_trim_blank(p) for p in pieces]


def numbered(lines: list[str], start: int, end: int) -> str:
    """Lines [start, end) with 1-based line numbers, as a model reads them."""
    width = len(str(end))
    return "\n".join(f"{i + 1:>{width}} | {lines[i]}" for i in range(max(start, 0), min(end, len(lines))))


def closest(lines: list[str], search: list[str], max_lines: int = 30) -> str:
    """The file window that looks most like SEARCH, numbered; '' for an empty file."""
    if not lines:
        return ""
    n = max(1, min(len(search), max_lines))
    wanted = {x.strip() for x in search if x.strip()}
    hits = [1 if x.strip() in wanted else 0 for x in lines]
    # Score windows by lines that occur verbatim (cheap), then refine the best few by character similarity.
    window = sum(hits[:n])
    scores = [window]
    for i in range(1, len(lines) - n + 1):
        window += hits[i + n - 1] - hits[i - 1]
        scores.append(window)
    candidates = sorted(range(len(scores)), key=lambda i: -scores[i])[:8]
    if scores[candidates[0]] == 0:
        candidates = _anchor_candidates(lines, search, n)
    target = "\n".join(x.strip() for x in search)

    def similarity(i: int) -> float:
        text = "\n".join(x.strip() for x in lines[i : i + n])
        return difflib.SequenceMatcher(None, target, text, autojunk=False).ratio()

    best = max(candidates, key=similarity)
    return numbered(lines, best, best + n)


def _anchor_candidates(lines: list[str], search: list[str], n: int) -> list[int]:
    # Nothing matched verbatim: anchor on the file lines most like the first non-blank SEARCH line.
    first = next((x.strip() for x in search if x.strip()), "")
    flat = [x.strip() for x in lines]
    close = difflib.get_close_matches(first, flat, n=5, cutoff=0.3)
    starts = [i for i, x in enumerate(flat) if x in close][:8] or [0]
    return [min(i, max(len(lines) - n, 0)) for i in starts]
