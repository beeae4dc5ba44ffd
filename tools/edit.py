"""SEARCH/REPLACE edit blocks: parse them from a model reply and apply them to a repository.

A block names a file on the line before it (a code fence in between is fine) and quotes the lines to
change. Conventions:

- Empty SEARCH, file missing (or blank): the file is created with REPLACE as its content.
- Empty SEARCH and empty REPLACE on an existing file: the file is deleted.
- Empty SEARCH on a non-empty existing file is refused (quote the lines to change instead).
- SEARCH is found exactly, else ignoring leading whitespace (REPLACE is re-indented by the same
  delta), else ignoring blank lines, else by `...` elision (pieces between `...` lines in SEARCH and
  REPLACE are paired and matched in order). A SEARCH that is part of a line is replaced where it occurs
  exactly once (str_replace style). Several matches are refused, with the candidates shown.
- Paths must stay inside the repository: absolute paths, `..`, `.git/` and symlinks that resolve
  outside are refused, and so are binary files.
- Syntax gate: when a file parsed before the edit (compile() for Python, tree-sitter for the other
  grammars) and no longer does, its blocks are replayed one by one and the ones that break it are
  rolled back and reported with the line.

A failed block leaves the file as the other blocks made it; the other blocks still apply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from treefix.tools.edit_match import closest, find_spans, numbered, replacement, split_elided
from treefix.tools.paths import PathError, resolve_inside
from treefix.tools.treesitter import syntax_problem


class EditError(Exception):
    """A reply whose edit blocks cannot be read at all (the message says how to fix it)."""


@dataclass
class EditBlock:
    path: str  # relative to the repository root
    search: str  # "" creates the file (with replace "" too: deletes it)
    replace: str


@dataclass
class BlockFailure:
    index: int  # 0-based block number
    path: str
    reason: str
    closest: str  # the closest real lines of the file, numbered, for the model


@dataclass
class EditReport:
    applied: list[int] = field(default_factory=list)
    failures: list[BlockFailure] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def feedback(self) -> str:
        total = len(self.applied) + len(self.failures)
        if not total:
            return "No edit blocks were found."
        # Block numbers are 1-based here because the model counts its blocks that way.
        done = ", ".join(str(i + 1) for i in self.applied) or "none"
        parts = [f"Applied {len(self.applied)} of {total} edit blocks (blocks: {done})."]
        if self.changed:
            parts[0] += f" Changed: {', '.join(self.changed)}."
        for f in self.failures:
            text = f"Block {f.index + 1} ({f.path or 'no path'}) failed: {f.reason}."
            if f.closest:
                text += f"\nThe closest lines in {f.path} are:\n{f.closest}"
            parts.append(text)
        if self.failures:
            parts.append(
                "Only the failed blocks need to be sent again. SEARCH must copy the file's current "
                "lines (the applied blocks have already changed them)."
            )
        return "\n\n".join(parts)


# ---------------------------------------------------------------- parsing

_HEAD = re.compile(r"^\s*<{5,9} ?(SEARCH|ORIGINAL)\b")
_DIV = re.compile(r"^\s*={7}\s*$")
_TAIL = re.compile(r"^\s*>{5,9} ?(REPLACE|UPDATED)\b")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})[\w+#.-]*\s*$")
_ONE_TOKEN_PATH = re.compile(r"^[\w@+~.\-/\\]+$")
_PATH_IN_PROSE = re.compile(r"^[\w@+~.\-/\\]*[/\\.][\w@+~.\-/\\]*\w$")


def parse_blocks(text: str) -> list[EditBlock]:
    lines = text.splitlines()
    blocks: list[EditBlock] = []
    path: str | None = None
    i = 0
    while i < len(lines):
        if not _HEAD.match(lines[i]):
            i += 1
            continue
        number = len(blocks) + 1
        path = _path_before(lines, i) or path
        if path is None:
            raise EditError(
                f"Edit block {number} has no file path: put the path alone on the line before it."
            )
        search, j = _section(lines, i + 1, _DIV, number, "=======")
        replace, k = _section(lines, j + 1, _TAIL, number, ">>>>>>> REPLACE")
        blocks.append(EditBlock(path, _join(search), _join(replace)))
        i = k + 1
    return blocks


def _section(
    lines: list[str], start: int, end: re.Pattern[str], number: int, marker: str
) -> tuple[list[str], int]:
    body: list[str] = []
    for j in range(start, len(lines)):
        if end.match(lines[j]):
            return body, j
        if _HEAD.match(lines[j]) or (end is _DIV and _TAIL.match(lines[j])):
            break
        body.append(lines[j])
    raise EditError(f"Edit block {number} is missing its `{marker}` line.")


def _path_before(lines: list[str], i: int) -> str | None:
    """The path on the last substantive line before a block; None means 'same file as before'."""
    for k in range(i - 1, -1, -1):
        line = lines[k].strip()
        if not line or _FENCE.match(line):
            continue
        if _TAIL.match(line):
            return None
        return _clean_path(line)
    return None


def _clean_path(line: str) -> str | None:
    decor = "`*#:'\" \t"
    line = line.strip(decor)
    if _ONE_TOKEN_PATH.match(line):
        return line
    last = line.split()[-1].strip(decor) if line.split() else ""
    return last if _PATH_IN_PROSE.match(last) else None


def _join(lines: list[str]) -> str:
    return "\n".join(lines) + "\n" if lines else ""


# ---------------------------------------------------------------- applying


class _Refused(Exception):
    pass


@dataclass
class _File:
    rel: str
    path: Path
    original: list[str] | None  # None: the file did not exist
    lines: list[str] | None
    eol: str = "\n"
    final_newline: bool = True
    blocks: list[tuple[int, EditBlock]] = field(default_factory=list)


def apply_blocks(root: Path, blocks: list[EditBlock], syntax_check: bool = True) -> EditReport:
    root = root.resolve()
    report = EditReport()
    files: dict[str, _File] = {}
    for index, block in enumerate(blocks):
        try:
            rel, path = _resolve(root, block.path)
            state = files.get(rel) or _load(rel, path)
        except _Refused as exc:
            report.failures.append(BlockFailure(index, block.path, str(exc), ""))
            continue
        files[rel] = state
        try:
            state.lines = _apply(state.lines, block)
        except _Refused as exc:
            shown = closest(state.lines, _split(block.search)) if state.lines and block.search.strip() else ""
            report.failures.append(BlockFailure(index, block.path, str(exc), _candidates(exc) or shown))
            continue
        state.blocks.append((index, block))
    for state in files.values():
        if syntax_check:
            _gate(state, report)
        report.applied.extend(i for i, _ in state.blocks)
        if state.lines != state.original and _write(state):
            report.changed.append(state.rel)
    report.applied.sort()
    report.failures.sort(key=lambda f: f.index)
    return report


def _resolve(root: Path, raw: str) -> tuple[str, Path]:
    try:
        rel, path = resolve_inside(root, raw)
    except PathError as exc:
        raise _Refused(str(exc)) from None
    if path.is_dir():
        raise _Refused("path is a directory")
    return rel, path


def _load(rel: str, path: Path) -> _File:
    if not path.exists():
        return _File(rel, path, None, None)
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        raise _Refused("binary file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused("binary file (not UTF-8 text)") from None
    eol = "\r\n" if "\r\n" in text else "\n"
    lines = _split(text)
    return _File(rel, path, lines, list(lines), eol, text.endswith("\n") or not text)


def _split(text: str) -> list[str]:
    # split("\n"), not splitlines(): form feeds and other separators are ordinary characters in code.
    parts = text.replace("\r\n", "\n").split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


def _apply(lines: list[str] | None, block: EditBlock) -> list[str] | None:
    """The file's lines after one block (None: deleted); raises _Refused when it cannot apply."""
    search, replace = _split(block.search), _split(block.replace)
    if "\0" in block.replace:
        raise _Refused("REPLACE contains a NUL byte (binary content)")
    if not any(x.strip() for x in search):
        if lines is None:
            if not replace:
                raise _Refused("nothing to delete: the file does not exist")
            return replace
        if not replace:
            return None
        if not any(x.strip() for x in lines):
            return replace
        raise _Refused("the file already exists and SEARCH is empty; quote the lines to change instead")
    if lines is None:
        raise _Refused("file not found (an empty SEARCH creates a file)")
    spans = find_spans(lines, search)
    if len(spans) == 1:
        s = spans[0]
        return lines[: s.start] + replacement(replace, s) + lines[s.end :]
    if len(spans) > 1:
        raise _Ambiguous(lines, [s.start for s in spans], len(search))
    return _apply_substring(lines, block) or _apply_elided(lines, search, replace)


def _apply_substring(lines: list[str], block: EditBlock) -> list[str] | None:
    # str_replace style (SWE-agent, OpenHands): a SEARCH that is part of a line, found exactly once.
    text, needle = _text(lines), block.search.replace("\r\n", "\n")
    if text.count(needle) != 1:
        return None
    return _split(text.replace(needle, block.replace.replace("\r\n", "\n")))


def _apply_elided(lines: list[str], search: list[str], replace: list[str]) -> list[str]:
    s_pieces, r_pieces = split_elided(search), split_elided(replace)
    if s_pieces is None:
        raise _Refused("no match")
    if r_pieces is None or len(s_pieces) != len(r_pieces):
        raise _Refused("no match, and the `...` lines of SEARCH and REPLACE do not pair up")
    start = 0
    for s_piece, r_piece in zip(s_pieces, r_pieces, strict=True):
        if not s_piece:
            if r_piece:
                raise _Refused("text next to a `...` line in REPLACE has no SEARCH lines to anchor it")
            continue
        spans = find_spans(lines, s_piece, start)
        if not spans:
            raise _Refused(f"no match for the part of SEARCH starting {s_piece[0].strip()!r}")
        if len(spans) > 1:
            raise _Ambiguous(lines, [s.start for s in spans], len(s_piece))
        s = spans[0]
        new = replacement(r_piece, s)
        lines = lines[: s.start] + new + lines[s.end :]
        start = s.start + len(new)
    return lines


class _Ambiguous(_Refused):
    def __init__(self, lines: list[str], starts: list[int], n: int) -> None:
        where = ", ".join(str(s + 1) for s in starts[:10])
        super().__init__(
            f"{len(starts)} matches (ambiguous) at lines {where}; add lines to make SEARCH unique"
        )
        self.shown = "\n...\n".join(numbered(lines, s, s + min(n, 8)) for s in starts[:5])


def _candidates(exc: _Refused) -> str:
    return exc.shown if isinstance(exc, _Ambiguous) else ""


def _gate(state: _File, report: EditReport) -> None:
    """Roll back the blocks that break a file's syntax (only if the file parsed before)."""
    if state.lines is None or state.lines == state.original:
        return
    if syntax_problem(state.rel, _text(state.lines)) is None:
        return
    if state.original is not None and syntax_problem(state.rel, _text(state.original)) is not None:
        return  # already broken before: the gate cannot tell whose fault it is
    lines, kept = state.original, []
    for index, block in state.blocks:
        try:
            new = _apply(lines, block)
        except _Refused as exc:  # it leaned on a block that was rolled back
            report.failures.append(BlockFailure(index, block.path, f"{exc} (after rolling back a block)", ""))
            continue
        problem = syntax_problem(state.rel, _text(new)) if new is not None else None
        if problem is None:
            lines = new
            kept.append((index, block))
            continue
        row = problem.line - 1
        shown = numbered(new or [], row - 3, row + 4)
        report.failures.append(BlockFailure(index, block.path, f"{problem}; the edit was rolled back", shown))
    state.lines, state.blocks = lines, kept


def _text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n" if lines else ""


def _write(state: _File) -> bool:
    if state.lines is None:
        if state.path.exists():
            state.path.unlink()
            return True
        return False
    body = state.eol.join(state.lines)
    if state.lines and (state.final_newline or state.original is None):
        body += state.eol
    state.path.parent.mkdir(parents=True, exist_ok=True)
    state.path.write_bytes(body.encode("utf-8"))
    return True
