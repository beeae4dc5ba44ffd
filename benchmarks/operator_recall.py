"""Could the offline operators have written the real fix? Operator recall on mined bug-fix commits.

    python -m benchmarks.operator_recall --mirrors DIR [--split tune|heldout|all] [--per-repo 40] [--show]
    python -m benchmarks.operator_recall --mirrors DIR --dataset TASKS.jsonl

Every mirror `<mirrors>/<owner>+<name>/repo` whose repository no benchmark task uses (neither
`generalise/bugs.jsonl`, `generalise/fresh.jsonl` nor the bundled suite) is mined with the
generalisation builder's rule (a non-merge commit whose subject says it fixes something, changing
1-3 lines of one library module and a test file). For each commit the operators are applied at the
statements the fix changes, in the parent's file; the fix is *written* when one mutant's file is
equal to the fixed file up to whitespace and comments (or
equal as an AST, e.g. up to quote style). The rank of that mutant among the
statement's mutants is what the search pays to find it.

Repositories are split once, by the sha256 of their name (lower half `tune`), before any operator
was chosen with this benchmark: operators are chosen on `tune`, and `heldout` is read to see whether
they generalise. `--show` prints the tuning half's unwritten fixes (never the held-out half's).

`--dataset benchmarks/generalise/bugs.jsonl` (or `fresh.jsonl`) judges a task file's real fixes
instead, by the task's split, one line per bug: the search's "correct" counts any patch the real
fix's tests accept, so this says how many of those could be the real fix itself. Operators that
need the failing tests' messages (hinted constants and text, None coalescing) get none here.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import hashlib
import io
import json
import keyword
import re
import statistics
import subprocess
import tokenize
from dataclasses import dataclass
from pathlib import Path

from benchmarks.generalise.build import candidates, git
from treefix.agent.policies.operators import mutations, statement_line

ROOT = Path(__file__).resolve().parent.parent
USED = [
    ROOT / "benchmarks/generalise/bugs.jsonl",
    ROOT / "benchmarks/generalise/fresh.jsonl",
    ROOT / "evals/suites/all.jsonl",
]
SKIP_PREFIX = ("swe-bench+",)  # SWE-bench's own repositories: the product's evaluation data
_SPACE = re.compile(r"\s+")
_COMMENT = re.compile(r"#[^\n]*")
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", re.M)


@dataclass
class Fix:
    repo: str
    sha: str
    path: str
    diff: str
    lines: list[int]  # the parent's lines the fix changes (or borders, for a pure insertion)
    written: bool = False
    rank: int = 0  # 1-based rank of the writing mutant among its statement's mutants
    operator: str = ""
    multi: bool = False  # the fix changes more than one statement
    shape: str = ""  # what kind of change the fix is (see `shape`)
    parent: str = ""  # the commit the fix applies to
    task: str = ""  # the benchmark task whose real fix this is (--dataset)


def used_repos() -> set[str]:
    out: set[str] = set()
    for f in USED:
        if f.exists():
            for line in f.read_text().splitlines():
                if line.strip():
                    repo = json.loads(line).get("repo", "")
                    out.add(repo.replace("/", "+").lower())
    return out


def split_of(name: str) -> str:
    return "tune" if int(hashlib.sha256(name.encode()).hexdigest(), 16) % 2 == 0 else "heldout"


def normal(text: str) -> str:
    """The text without whitespace and comments: cheap enough to compare every mutant of a big file
    (a `#` inside a string is cut too, on both sides alike)."""
    return _SPACE.sub("", _COMMENT.sub("", text))


def same_code(a: str, b: str) -> bool:
    try:
        return ast.dump(ast.parse(a)) == ast.dump(ast.parse(b))
    except (SyntaxError, ValueError):
        return False


def _tokens(lines: list[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    try:
        for t in tokenize.generate_tokens(io.StringIO("\n".join(s.strip() for s in lines) + "\n").readline):
            if t.type in (tokenize.NAME, tokenize.NUMBER, tokenize.STRING, tokenize.OP):
                kind = (
                    "KEY"
                    if t.type == tokenize.NAME and keyword.iskeyword(t.string)
                    else tokenize.tok_name[t.type]
                )
                out.append((kind, t.string))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return out


def shape(diff: str, multi: bool) -> str:
    """The kind of change, from the tokens the fix removes and adds: `identifier` (names only),
    `literal` (numbers and strings only), `operator`, `condition` (adds and/or/not/is/None),
    `insertion` (adds tokens, removes none), `rewrite`; `statements` when it spans several."""
    if multi:
        return "statements"
    body = [ln for ln in diff.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    old = _tokens(
        [ln[1:] for ln in body if ln[0] == "-" and ln[1:].strip() and not ln[1:].lstrip().startswith("#")]
    )
    new = _tokens(
        [ln[1:] for ln in body if ln[0] == "+" and ln[1:].strip() and not ln[1:].lstrip().startswith("#")]
    )
    removed, added = [], []
    for op, a, b, c, d in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if op != "equal":
            removed += old[a:b]
            added += new[c:d]
    kinds = {k for k, _ in removed + added}
    if removed and added and kinds == {"NAME"}:
        return "identifier"
    if removed and added and kinds <= {"NUMBER", "STRING"}:
        return "literal"
    if removed and added and kinds == {"OP"}:
        return "operator"
    if any(v in ("and", "or", "not", "is", "None") for _, v in added):
        return "condition"
    return "insertion" if added and not removed else "rewrite"


def changed_lines(diff: str) -> list[int]:
    lines: list[int] = []
    for m in _HUNK.finditer(diff):
        start, count = int(m.group(1)), int(m.group(2) or 1)
        lines += range(start, start + count) if count else [start, start + 1]
    return lines


def mine(gd: Path, name: str, per_repo: int) -> list[Fix]:
    return [
        task_fix(gd, name, f"{sha}^", sha, path) for sha, _subject, path, _tests in candidates(gd)[:per_repo]
    ]


def task_fix(gd: Path, name: str, parent: str, sha: str, path: str, task: str = "") -> Fix:
    diff = git(gd, "diff", "-U0", parent, sha, "--", path)
    return Fix(name, sha, path, diff, changed_lines(diff), parent=parent, task=task)


def dataset_fixes(mirrors: Path, dataset: Path) -> dict[str, list[Fix]]:
    """The real fixes of a benchmark's tasks (base_commit -> fix_commit, per library file), by the
    task's split. Not a bound on the search's "correct": another edit the real fix's tests accept counts too."""
    halves: dict[str, list[Fix]] = {}
    for line in dataset.read_text().splitlines():
        if not line.strip():
            continue
        task = json.loads(line)
        gd = mirrors / task["repo"].replace("/", "+") / "repo"
        if not gd.is_dir():
            print(f"{task['instance_id']}: skipped (no mirror at {gd})")
            continue
        for path in re.findall(r"(?m)^diff --git a/(\S+) b/", task["patch"]):
            fix = task_fix(
                gd, task["repo"], task["base_commit"], task["fix_commit"], path, task["instance_id"]
            )
            fix = judge(gd, fix)
            if fix is not None:
                halves.setdefault(task.get("split", "all"), []).append(fix)
    return halves


def judge(gd: Path, fix: Fix) -> Fix | None:
    before, after = git(gd, "show", f"{fix.parent}:{fix.path}"), git(gd, "show", f"{fix.sha}:{fix.path}")
    if not before or not after or same_code(before, after):
        return None  # a comment or formatting change, or a file that does not parse
    sites = {s for line in fix.lines if (s := statement_line(before, line)) is not None}
    fix.multi = len(sites) > 1
    fix.shape = shape(fix.diff, fix.multi)
    target = normal(after)
    for site in sorted(sites):
        for rank, m in enumerate(mutations(before, site), 1):
            mutant = normal(m.apply(before))
            if mutant == target or (len(mutant) == len(target) and same_code(m.apply(before), after)):
                if not fix.written or rank < fix.rank:
                    fix.written, fix.rank, fix.operator = True, rank, m.description
    return fix


def mined(mirrors: Path, split: str, per_repo: int) -> dict[str, list[Fix]]:
    """Fixes mined from every mirror no benchmark task uses, by the repository's split."""
    used = used_repos()
    halves: dict[str, list[Fix]] = {"tune": [], "heldout": []}
    for d in sorted(mirrors.iterdir()):
        gd, name = d / "repo", d.name
        if not gd.is_dir() or name.lower() in used or name.startswith(SKIP_PREFIX):
            continue
        half = split_of(name)
        if split not in ("all", half):
            continue
        try:
            halves[half] += [f for fix in mine(gd, name, per_repo) if (f := judge(gd, fix))]
        except subprocess.SubprocessError as e:
            print(f"{name}: skipped ({e})")
    return halves


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mirrors", type=Path, required=True)
    ap.add_argument("--split", choices=["tune", "heldout", "all"], default="all")
    ap.add_argument("--per-repo", type=int, default=40, help="newest candidate commits per repository")
    ap.add_argument("--show", action="store_true", help="print the tuning half's unwritten fixes")
    ap.add_argument(
        "--dataset", type=Path, help="instead of mining: the real fixes of a task file's bugs, by split"
    )
    args = ap.parse_args(argv)
    halves = (
        dataset_fixes(args.mirrors, args.dataset)
        if args.dataset
        else mined(args.mirrors, args.split, args.per_repo)
    )
    print(
        f"{'half':8} {'repos':>5} {'fixes':>5} {'single':>6} {'written':>12} {'of single':>9} {'median rank':>11}"
    )
    for half, fixes in halves.items():
        if not fixes:
            continue
        single = [f for f in fixes if not f.multi]
        written = [f for f in fixes if f.written]
        ranks = [f.rank for f in written]
        print(
            f"{half:8} {len({f.repo for f in fixes}):5} {len(fixes):5} {len(single):6} "
            f"{len(written):5} ({100 * len(written) / len(fixes):3.0f}%) "
            f"{100 * sum(f.written for f in single) / max(1, len(single)):8.0f}% "
            f"{statistics.median(ranks) if ranks else 0:11.1f}"
        )
    shapes = sorted({f.shape for fixes in halves.values() for f in fixes})
    print(
        f"\n{'shape':12}"
        + "".join(f" {h:>16}" for h, fixes in halves.items() if fixes)
        + "   (written / fixes)"
    )
    for sh in shapes:
        cells = [
            f"{sum(f.written for f in fixes if f.shape == sh):>7} / {sum(f.shape == sh for f in fixes):<6}"
            for fixes in halves.values()
            if fixes
        ]
        print(f"{sh:12}" + "".join(f" {c:>16}" for c in cells))
    if args.dataset:
        for half, fixes in halves.items():
            for f in fixes:
                mark = f"written at rank {f.rank}" if f.written else "not written"
                print(f"{half:8} {f.task:32} {f.shape:11} {mark}")
    if args.show:
        for f in halves.get("tune", []):
            mark = f"written at rank {f.rank}: {f.operator}" if f.written else "not written"
            print(f"\n== {f.repo} {f.sha[:8]} {f.path} [{f.shape}] ({mark})")
            if not f.written:
                print(
                    "\n".join(
                        line
                        for line in f.diff.splitlines()
                        if line[:1] in "+-" and line[:3] not in ("+++", "---")
                    )
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
