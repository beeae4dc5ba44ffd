"""Search shaped for a model: text and regex (git grep), file names, and symbols from the tag index.

Every result says how many hits there were, lists paths and line numbers with a short line of context,
and stops at a cap with a note on how to narrow the query, so a broad search never floods the context.
"""

from __future__ import annotations

import fnmatch
import subprocess
from pathlib import Path

from treefix.tools.files import list_files
from treefix.tools.index import RepoIndex
from treefix.tools.tags import extract

MAX_HITS = 40
MAX_PER_FILE = 8
MAX_FILES = 50
MAX_LINE = 200


class SearchError(Exception):
    """A query that cannot run (bad regex, git missing); the message is for the model."""


def search_text(
    root: Path, query: str, regex: bool = False, glob: str | None = None, ignore_case: bool = False
) -> str:
    """Lines containing `query` (a literal string, or a regex), in files git does not ignore."""
    if not query:
        raise SearchError("empty query")
    hits = grep(root.resolve(), query, regex, glob, ignore_case)
    what = f"{'regex' if regex else 'text'} {query!r}" + (f" in {glob}" if glob else "")
    if not hits:
        return f"No matches for {what}."
    by_file: dict[str, list[tuple[int, str]]] = {}
    for path, line, text in hits:
        by_file.setdefault(path, []).append((line, text))
    out = [f"{_n(len(hits), 'match')} in {_n(len(by_file), 'file')} for {what}:"]
    shown = 0
    for path, lines in by_file.items():
        if shown >= MAX_HITS:
            break
        out.append(path)
        for line, text in lines[: min(MAX_PER_FILE, MAX_HITS - shown)]:
            out.append(f"  {line}: {_cut(text.strip())}")
            shown += 1
        if len(lines) > MAX_PER_FILE:
            out.append(f"  [{len(lines) - MAX_PER_FILE} more in this file]")
    if shown < len(hits):
        out.append(
            f"[{len(hits) - shown} more matches not shown: narrow the query with a longer pattern, "
            "a regex, or a path glob such as 'src/**/*.py']"
        )
    return "\n".join(out)


def search_files(root: Path, query: str) -> str:
    """Repository files whose path contains `query` (case-insensitive), or matches it as a glob."""
    files = list_files(root)
    q = query.strip().lower()
    if any(c in q for c in "*?["):
        found = [
            f for f in files if fnmatch.fnmatch(f.lower(), q) or fnmatch.fnmatch(Path(f).name.lower(), q)
        ]
    else:
        found = [f for f in files if q in f.lower()]
        found.sort(key=lambda f: (q not in Path(f).name.lower(), len(f), f))  # name hits first
    if not found:
        return f"No files match {query!r}."
    header = f"{_n(len(found), 'file')} match{'es' if len(found) == 1 else ''} {query!r}:"
    return _capped(header, found, MAX_FILES, "narrow the query with a directory or a longer name")


def find_definitions(index: RepoIndex, name: str) -> str:
    """Where `name` (or `Class.member`) is defined, with signatures."""
    owner, _, member = name.rpartition(".")
    hits = []
    for path in sorted(index.entries):
        defs = index.entries[path].definitions
        for d in defs:
            if d[0] != member:
                continue
            if owner and (d[5] < 0 or defs[d[5]][0] != owner.rpartition(".")[2]):
                continue
            hits.append(f"{path}:{d[2]}│{d[6]}")
    if not hits:
        return f"No definition of {name!r} found (search the text instead: it may be dynamic or external)."
    return _capped(f"{_n(len(hits), 'definition')} of {name!r}:", hits, MAX_HITS, f"qualify the name as Class.{member}")


def _capped(header: str, items: list[str], limit: int, narrow: str) -> str:
    """`header` and the first `limit` items, then how many were left out and how to narrow the search."""
    out = [header, *items[:limit]]
    if len(items) > limit:
        out.append(f"[{len(items) - limit} more: {narrow}]")
    return "\n".join(out)


def find_references(index: RepoIndex, name: str) -> str:
    """Uses of `name` (calls, attributes, types, imports) with the line of each use."""
    member = name.rpartition(".")[2]
    files = sorted((p for p, e in index.entries.items() if member in e.references), key=lambda p: p)
    total = sum(index.entries[p].references[member] for p in files)
    if not files:
        return f"No references to {name!r} found."
    out = [f"{_n(total, 'reference')} to {member!r} in {_n(len(files), 'file')}:"]
    shown = 0
    for path in files:
        if shown >= MAX_HITS:
            break
        data = (index.root / path).read_bytes()
        source = data.decode("utf-8", "replace").split("\n")
        lines = extract(path, data).references.get(member, [])
        out.append(path)
        for line in lines[: min(MAX_PER_FILE, MAX_HITS - shown)]:
            out.append(f"  {line}: {_cut(source[line - 1].strip())}")
            shown += 1
        if len(lines) > MAX_PER_FILE:
            out.append(f"  [{len(lines) - MAX_PER_FILE} more in this file]")
    if shown < total:
        out.append(
            f"[{total - shown} more references not shown: search the text within one directory instead]"
        )
    return "\n".join(out)


def grep(
    root: Path, query: str, regex: bool = False, glob: str | None = None, ignore_case: bool = False
) -> list[tuple[str, int, str]]:
    """Raw hits (path, line, text) of git grep; raises SearchError for a query git rejects."""
    in_git = (root / ".git").exists()
    base = ["git", "grep", "-n", "-I", "-z", "--no-color", "--untracked" if in_git else "--no-index"]
    if not in_git:
        base.append("--exclude-standard")
    if ignore_case:
        base.append("-i")
    tail = ["-e", query, "--", *([glob] if glob else [])]
    modes = [["-P"], ["-E"]] if regex else [["-F"]]
    for mode in modes:
        try:
            proc = subprocess.run([*base, *mode, *tail], cwd=root, capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SearchError(f"search failed: {exc}") from None
        if proc.returncode in (0, 1):
            return _parse(proc.stdout)
        err = proc.stderr.decode("utf-8", "replace").strip()
        if mode == ["-P"] and ("PCRE" in err or "not compiled" in err):
            continue  # git without PCRE: fall back to extended regexes
        raise SearchError(f"bad query: {err.splitlines()[-1] if err else 'git grep failed'}")
    return []


def _parse(out: bytes) -> list[tuple[str, int, str]]:
    hits = []
    for row in out.decode("utf-8", "replace").split("\n"):
        parts = row.split("\0", 2)
        if len(parts) == 3 and parts[1].isdigit():
            hits.append((parts[0], int(parts[1]), parts[2]))
    return hits


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}{'es' if noun.endswith('ch') else 's'}"


def _cut(text: str) -> str:
    return text if len(text) <= MAX_LINE else text[:MAX_LINE] + "…"
