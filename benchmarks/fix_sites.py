"""Where did the offline search stand relative to the real fix? A diagnostic by category, not by case.

For one finished run and the real fix's patch: the rank of the fix's first statement in the
localisation (the `sites` event the offline policy records), whether a plan was opened on it,
and how many attempts edited it. With these a failure reads as one of
- `not covered`: no failing test runs the fix's statements (e.g. it adds a branch nothing reaches);
- `not localised`: covered (its Ochiai rank is `raw_rank`), but not among the ranked sites (too low,
  or no operator applies to it);
- `not reached`: ranked, but no plan was opened on it within the budget;
- `no operator`: a plan was opened but no attempt edited the statement;
- `wrong edit`: attempts edited the statement, none made the tests pass.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from treefix.agent.policies.localise import Spectrum, ochiai
from treefix.agent.policies.offline import SPECTRUM_KEY
from treefix.agent.policies.operators import statement_line
from treefix.agent.store import RunStore

_FILE = re.compile(r"(?m)^diff --git [ab]/(\S+) [ab]/(\S+)$")  # some suites write b/ first
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass
class FixSites:
    rank: int = 0  # 1-based rank of the best-ranked fix statement among the sites; 0: not ranked
    sites: int = 0  # how many sites the localisation ranked
    raw_rank: int = 0  # 1-based rank among the statements the failing tests run, by plain Ochiai; 0: not run
    planned: bool = False  # a plan was opened on a fix statement
    touched: int = 0  # attempts (code/repair nodes) whose edit reached a fix statement
    attempts: int = 0
    category: str = ""


def old_lines(patch: str) -> dict[str, set[int]]:
    """Per file, the base-side lines a patch removes; for a pure insertion, the line above and below it."""
    out: dict[str, set[int]] = {}
    for section in re.split(r"(?m)^(?=diff --git )", patch):
        m = _FILE.match(section)
        if not m:
            continue
        lines = out.setdefault(m.group(1), set())
        old = 0
        pending_insert = False
        for ln in section.splitlines():
            if h := _HUNK.match(ln):
                old = int(h.group(1))
                continue
            if not old:
                continue
            if ln.startswith("-") and not ln.startswith("---"):
                lines.add(old)
                old += 1
                pending_insert = True  # added lines right after removed ones replace them
                continue
            elif ln.startswith("+") and not ln.startswith("+++"):
                if not pending_insert:
                    lines.update({max(old - 1, 1), old})
                pending_insert = True
                continue
            elif ln.startswith(" "):
                old += 1
            pending_insert = False
    return {p: s for p, s in out.items() if s}


def statements(patch: str, base: Path) -> set[tuple[str, int]]:
    """(path, first line of the statement) for every base line the patch changes, .py files only."""
    out: set[tuple[str, int]] = set()
    for path, lines in old_lines(patch).items():
        f = base / path
        if not path.endswith(".py") or not f.is_file():
            continue
        text = f.read_text(errors="replace")
        out |= {(path, s) for ln in lines if (s := statement_line(text, ln)) is not None}
    return out


def diagnose(run_dir: Path, fix_patch: str, base: Path) -> FixSites:
    fix = statements(fix_patch, base)
    out = FixSites()
    db = run_dir / "run.sqlite"
    if not fix or not db.exists():
        out.category = "not covered"
        return out
    store = RunStore(db)
    try:
        events = store.events("sites")
        nodes = store.nodes()
        spectrum = store.get_meta(SPECTRUM_KEY)
    finally:
        store.close()
    ranked = [(p, ln) for p, ln, _ in events[0]["sites"]] if events else []
    out.sites = len(ranked)
    out.rank = next((i + 1 for i, s in enumerate(ranked) if s in fix), 0)
    texts: dict[str, str] = {}

    def stmt(path: str, line: int) -> tuple[str, int | None]:
        if path not in texts:
            f = base / path
            texts[path] = f.read_text(errors="replace") if f.is_file() else ""
        return path, statement_line(texts[path], line)

    if spectrum is not None:
        raw = list(dict.fromkeys(stmt(s.path, s.line) for s in ochiai(Spectrum.from_dict(spectrum))))
        out.raw_rank = next((i + 1 for i, s in enumerate(raw) if s in fix), 0)
    for n in nodes:
        kind = n.kind.value
        if kind == "plan":
            try:
                p = json.loads(n.content)
                out.planned |= (p["path"], p["line"]) in fix
            except (ValueError, KeyError, TypeError):
                pass
        elif kind in ("code", "repair") and n.diff:
            out.attempts += 1
            hit = False
            for path, lines in old_lines(n.diff).items():
                hit |= any(stmt(path, ln) in fix for ln in lines)
            out.touched += hit
    out.category = (
        "wrong edit" if out.touched else "no operator" if out.planned else "not reached" if out.rank
        else "not localised" if out.raw_rank or spectrum is None else "not covered"
    )  # fmt: skip
    return out
