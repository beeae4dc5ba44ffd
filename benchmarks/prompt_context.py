"""Do code prompts hold the lines an edit must quote? Per prompt-building strategy, over real files.

    python -m benchmarks.prompt_context [--suite evals/suites/all.jsonl] [--per-file 4] [--json]

Cases:
- the bundled suite's tasks whose sdist is in the local cache (`~/.cache/treefix/sdists`, nothing
  is downloaded): the buggy file (pristine sdist + `bug_patch`), the lines the fix must replace (the
  gold patch's removed lines), and a plan naming the file and the function of the fix's hunk;
- large real modules of the Python standard library (present wherever Python is): in each, a few
  functions spread over the file, three lines from the middle of each, and a plan naming the file
  and `Class.method()`.

A scripted model answers a case right only if its code prompt holds the lines verbatim (it must
quote them in a SEARCH block). Strategies: `cut-20k` (each file cut at its first 20,000 characters,
the old behaviour), `regions` (agent/context.py: whole when small, else the named and cited parts
with line numbers and an outline of the rest), `whole` (no cut; the token cost of showing all).
Prints the share answered right and the code prompt's tokens (tiktoken) per strategy.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import sysconfig
import tarfile
from dataclasses import dataclass
from pathlib import Path

from treefix.agent.context import FileView, file_view
from treefix.prompts import render
from treefix.tools.tags import extract
from treefix.tools.tokens import count_tokens

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path.home() / ".cache" / "treefix" / "sdists"
STDLIB = [
    "typing.py", "argparse.py", "_pydecimal.py", "email/_header_value_parser.py", "tarfile.py",
    "inspect.py", "subprocess.py", "logging/__init__.py", "pydoc.py", "zipfile.py", "difflib.py",
    "configparser.py", "ssl.py", "turtle.py", "doctest.py", "collections/__init__.py",
]  # fmt: skip
STRATEGIES = ("cut-20k", "regions", "whole")


@dataclass
class Case:
    source: str  # "suite" | "stdlib"
    name: str
    path: str
    text: str
    needed: list[str]  # consecutive lines the edit must quote
    plan: str

    @property
    def offset(self) -> int:
        return self.text.find("\n".join(self.needed))


def files_for(strategy: str, case: Case) -> list[FileView]:
    if strategy == "cut-20k":
        return [FileView(case.path, case.text[:20_000])]
    if strategy == "whole":
        return [FileView(case.path, case.text)]
    return [file_view(case.path, case.text, case.plan)]


def code_prompt(strategy: str, case: Case) -> str:
    return render("code", plan=case.plan, files=files_for(strategy, case), advice="", tools=True)


def scripted_answer(prompt: str, case: Case) -> bool:
    """The scripted model: right when it can quote the needed lines from its prompt."""
    return "\n".join(case.needed) in prompt


# ---- cases -----------------------------------------------------------------------------------
def suite_cases(suite: Path) -> tuple[list[Case], list[str]]:
    cases, skipped = [], []
    for line in suite.read_text().splitlines():
        task = json.loads(line)
        spec = task["source"].get("pypi", "")
        archives = sorted((CACHE / spec.replace("==", "_")).glob("*.tar.gz"))
        if not archives:
            skipped.append(task["instance_id"])
            continue
        for path, buggy, needed, func in _apply_bug(archives[0], task["bug_patch"], task["patch"]):
            first = task["problem_statement"].strip().splitlines()[0]
            plan = (
                f"TITLE: {first}\nROOT CAUSE: {path}: {func}() computes the wrong result.\n"
                f"STRATEGY: correct the faulty expression in {func}.\nREPRODUCTION: the example of the issue"
            )
            cases.append(Case("suite", task["instance_id"], path, buggy, needed, plan))
    return cases, skipped


def _apply_bug(archive: Path, bug_patch: str, fix: str) -> list[tuple[str, str, list[str], str]]:
    out = []
    with tarfile.open(archive) as tar:
        members = {m.name.split("/", 1)[1]: m for m in tar.getmembers() if "/" in m.name and m.isfile()}
        for section in re.split(r"^diff --git ", bug_patch, flags=re.M)[1:]:
            path = section.split("\n", 1)[0].split(" b/")[-1].strip()
            f = tar.extractfile(members[path])
            assert f is not None
            text = f.read().decode()
            for old, new in _hunks(section):
                assert old in text, f"{archive.name}: bug patch does not apply to {path}"
                text = text.replace(old, new, 1)
            fix_section = next(s for s in re.split(r"^diff --git ", fix, flags=re.M)[1:] if path in s.split("\n")[0])
            for _, removed in _removed(fix_section):
                line = text[: text.find("\n".join(removed))].count("\n") + 1
                out.append((path, text, removed, _enclosing(path, text, line)))
    return out


def _enclosing(path: str, text: str, line: int) -> str:
    """`Class.method` or `function` around `line`: what a plan that found the bug would name."""
    defs = extract(path, text.encode(), lines=False).definitions
    inside = [d for d in defs if d.line <= line <= d.end_line and d.kind in ("function", "method")]
    if not inside:
        return Path(path).stem
    d = max(inside, key=lambda d: d.line)
    return (defs[d.parent].name + "." if d.parent >= 0 else "") + d.name


def _hunks(section: str) -> list[tuple[str, str]]:
    out = []
    for hunk in re.split(r"^@@[^\n]*\n", section, flags=re.M)[1:]:
        old, new = [], []
        for ln in hunk.split("\n"):
            if ln.startswith("\\"):
                continue
            if ln.startswith((" ", "-")) or ln == "":
                old.append(ln[1:])
            if ln.startswith((" ", "+")) or ln == "":
                new.append(ln[1:])
        while old and new and old[-1] == "" and new[-1] == "":
            old.pop()
            new.pop()
        out.append(("\n".join(old), "\n".join(new)))
    return out


def _removed(section: str) -> list[tuple[str, list[str]]]:
    """(hunk header, the removed lines) of each hunk of the gold fix: what a SEARCH must quote."""
    out = []
    for m in re.finditer(r"^@@[^\n]*@@([^\n]*)\n(.*?)(?=^@@|\Z)", section, flags=re.M | re.S):
        removed = [ln[1:] for ln in m.group(2).split("\n") if ln.startswith("-") and not ln.startswith("---")]
        if any(x.strip() for x in removed):
            out.append((m.group(1), removed))
    return out


def stdlib_cases(per_file: int) -> list[Case]:
    lib = Path(sysconfig.get_paths()["stdlib"])
    cases = []
    for rel in STDLIB:
        path = lib / rel
        if not path.is_file():
            continue
        text = path.read_text()
        lines = text.split("\n")
        defs = extract(rel, text.encode(), lines=False).definitions
        funcs = [d for d in defs if d.kind in ("function", "method") and d.end_line - d.line >= 8]
        if not funcs:
            continue
        step = max(len(funcs) // per_file, 1)
        for d in funcs[step // 2 :: step][:per_file]:
            mid = (d.line + d.end_line) // 2
            needed = lines[mid - 1 : mid + 2]
            if not any(x.strip() for x in needed) or text.count("\n".join(needed)) != 1:
                continue
            owner = defs[d.parent].name + "." if d.parent >= 0 else ""
            plan = (
                f"TITLE: wrong result from {owner}{d.name}\nROOT CAUSE: Lib/{rel}: {owner}{d.name}() "
                f"mishandles an edge case in the middle of its body.\nSTRATEGY: fix the condition in "
                f"{owner}{d.name}().\nREPRODUCTION: call {d.name} with the edge case"
            )
            cases.append(Case("stdlib", f"{rel}:{owner}{d.name}", f"Lib/{rel}", text, needed, plan))
    return cases


# ---- report ----------------------------------------------------------------------------------
def measure(cases: list[Case]) -> dict[str, dict[str, float]]:
    out = {}
    for s in STRATEGIES:
        right, tokens = [], []
        for c in cases:
            prompt = code_prompt(s, c)
            right.append(scripted_answer(prompt, c))
            tokens.append(count_tokens(prompt))
        out[s] = {
            "cases": len(cases),
            "right": sum(right) / max(len(cases), 1),
            "median_tokens": statistics.median(tokens) if tokens else 0,
            "mean_tokens": statistics.fmean(tokens) if tokens else 0,
            "max_tokens": max(tokens, default=0),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", type=Path, default=ROOT / "evals" / "suites" / "all.jsonl")
    ap.add_argument("--per-file", type=int, default=4, help="functions per standard-library module")
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--file-only", action="store_true",
        help="plans name the file but not the function (then only the outline and the tools can help)",
    )  # fmt: skip
    args = ap.parse_args()
    suite, skipped = suite_cases(args.suite)
    stdlib = stdlib_cases(args.per_file)
    if args.file_only:
        for c in suite + stdlib:
            c.plan = f"TITLE: wrong result\nROOT CAUSE: {c.path} computes a wrong result.\nSTRATEGY: fix it."
    groups = {"suite": suite, "stdlib": stdlib, "all": suite + stdlib}
    results = {name: measure(cases) for name, cases in groups.items()}
    if args.json:
        print(json.dumps(results, indent=1))
        return
    beyond = sum(1 for c in suite + stdlib if c.offset >= 20_000)
    print(f"suite cases: {len(suite)} (tasks skipped, sdist not cached: {len(skipped)}); stdlib cases: "
          f"{len(stdlib)} from {len({c.path for c in stdlib})} modules; needed lines beyond 20,000 chars: {beyond}")  # fmt: skip
    print(f"{'cases':8}{'strategy':10}{'n':>5}{'right':>8}{'median tok':>12}{'mean tok':>10}{'max tok':>9}")
    for name, res in results.items():
        for s, r in res.items():
            print(f"{name:8}{s:10}{r['cases']:>5}{r['right']:>8.0%}{r['median_tokens']:>12.0f}"
                  f"{r['mean_tokens']:>10.0f}{r['max_tokens']:>9}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
