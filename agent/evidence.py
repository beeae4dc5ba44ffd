"""Execution evidence where no failing test is given: reproductions and regression checks.

- A *reproduction* is a pytest file the model wrote to show the issue. It is run on the base and
  accepted only when a test in it fails there with an assertion (or an exception of the code under
  test), not with an import, name or syntax error and not by timing out. It is never part of the
  patch unless the user asks (`--keep-tests`).
- *Regression tests* are existing tests chosen for the code a candidate changes by import and name
  heuristics: test files that import the changed module, are named after it, or call a changed
  function; within them, the tests whose id names a changed function or class (all of the file's
  when none does). Why not per-test coverage: without a test command there is no test run to
  trace, and tracing a whole suite costs more than the whole search on large repositories; the
  heuristic costs a collection and one base run of the chosen tests (kept in the store, so each
  test runs on the base once). A regression is a test that passed on the base and fails on the
  candidate.
- A candidate's *score* is the share of the accepted reproductions on its path that now pass (0.5
  when it has none: no evidence either way), divided by 1 + 4 x its regressions. It is *verified*
  when it has at least one reproduction, all of them pass and nothing regressed; the evidence is
  *strong* when regression tests were also found and run.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from treefix.agent.budget import BudgetExceeded
from treefix.agent.tree import ExecResult, Node, NodeKind
from treefix.tools.diffs import changed_paths
from treefix.tools.sandbox import RunResult, shorten
from treefix.tools.testing import ERROR, FAILED, PASSED, TestReport, run_tests

if TYPE_CHECKING:
    from treefix.agent.policies.base import SearchContext

PYTEST = "python -m pytest -rA -p no:cacheprovider"
REPRO_PREFIX = "test_treefix_repro_"
SELECTION = "imports+names"
MAX_REGRESSION_FILES = 6
REGRESSION_PENALTY = 4.0
OUTPUT_HEAD, OUTPUT_TAIL = 2_000, 6_000
BASE_KEY = "evidence/base"  # test id -> its outcome at the base
COLLECTED_KEY = "evidence/collected/"  # + test file: its test ids
MAX_TESTS = 200
# Failures that say the test itself is broken, not the code under test.
UNRELATED = re.compile(r"\b(ImportError|ModuleNotFoundError|SyntaxError|IndentationError|NameError)\b")
_SHORT = re.compile(r"^(FAILED|ERROR) (\S+)(?: - (.*))?$", re.M)


def repro_path(node_id: str) -> str:
    return f"{REPRO_PREFIX}{node_id}.py"


def is_test_file(path: str) -> bool:
    name = Path(path).name
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def extract_code(reply: str) -> str:
    """The test file in a reply: the longest fenced block, else the reply itself."""
    blocks = re.findall(r"```(?:python|py)?\s*\n(.*?)```", reply, flags=re.S)
    code = max(blocks, key=len) if blocks else reply
    return code.strip() + "\n"


def reasons(output: str) -> dict[str, str]:
    """Test id -> the one-line reason pytest's -rA summary gives for a failure or error."""
    return {m[2]: (m[3] or "").strip() for m in _SHORT.finditer(output)}


def first_error(output: str) -> str:
    """The first exception line pytest printed (`E   ModuleNotFoundError: ...`), else the summary's reason."""
    if m := re.search(r"^E\s+(\w+(?:Error|Exception)\b.*)$", output, re.M):
        return m[1].strip()[:300]
    return next((r for r in reasons(output).values() if r), output.strip()[-300:])


def judge_reproduction(run: RunResult, report: TestReport) -> tuple[bool, str]:
    """Is this base run of a reproduction usable evidence? (accepted, why)."""
    if run.timed_out:
        return False, "timed out on the base"
    if not report.collected or report.errors or not report.tests:
        return False, f"could not be collected or set up (not a usable pytest file): {first_error(run.output)}"
    failed = [t for t, o in report.tests.items() if o == FAILED]
    if not failed:
        return False, "passes on the base: it does not show the issue"
    why = reasons(run.output)
    related = [t for t in failed if not UNRELATED.search(why.get(t, ""))]
    if not related:
        return False, f"fails on the base for an unrelated reason: {why.get(failed[0], '')[:200]}"
    return True, f"{len(related)} of {len(report.tests)} test(s) fail on the base: {why.get(related[0], '')[:200]}"


def evaluate_reproduction(ctx: SearchContext, node: Node, wt: Path) -> ExecResult:
    """Run a reproduction on the base (its diff is applied in `wt`); accept it or close it."""
    path = node.evidence.get("path") or repro_path(node.id)
    if not imports_repository(node.content, wt):
        reason = "does not import the repository's code, so it cannot show the issue"
        node.evidence.update(accepted=False, reason=reason, path=path)
        node.closed = True
        ctx.store.event("reproduce", node=node.id, accepted=False, reason=reason)
        return ExecResult(message=reason)
    ctx.budget.charge_test_run()
    run, report = _pytest(ctx, wt, [path])
    accepted, reason = judge_reproduction(run, report)
    node.evidence.update(accepted=accepted, reason=reason, base=report.tests, path=path)
    node.closed = not accepted  # an unusable reproduction grows nothing; its reason feeds a sibling
    ctx.store.event("reproduce", node=node.id, accepted=accepted, reason=reason)
    return _result(run, report)


def imports_repository(code: str, root: Path) -> bool:
    """Does the test import a module or package of the repository (at its root, or under src/)?"""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    for name in names:
        for base in (root, root / "src", root / "lib"):
            if (base / name / "__init__.py").is_file() or (base / f"{name}.py").is_file() or (base / name).is_dir():
                return True
    return False


def reproductions(ctx: SearchContext, node: Node) -> list[Node]:
    """The accepted reproductions a candidate is checked against: those on its path."""
    return [n for n in ctx.store.path(node.id) if n.kind is NodeKind.REPRODUCE and n.evidence.get("accepted")]


def evaluate_candidate(ctx: SearchContext, node: Node, wt: Path) -> ExecResult | None:
    """Reproductions and regression tests on a candidate whose diff is applied in `wt`.
    Sets node.evidence; None when there is nothing to run (no reproduction, no related test)."""
    repros = reproductions(ctx, node)
    files = select_regression_files(wt, node.diff) if ctx.params.regression_checks else []
    chosen = related_tests(ctx, files, changed_names(node.diff)) if files else []
    base = base_outcomes(ctx, chosen)
    checked = sorted(t for t, o in base.items() if o == PASSED)
    if not repros and not checked:
        node.evidence.update(_score(node, {}, [], [], files))
        return None
    for r in repros:
        (wt / r.evidence["path"]).write_text(r.content)  # outside the candidate's diff
    ctx.budget.charge_test_run()
    run, report = _pytest(ctx, wt, [r.evidence["path"] for r in repros] + checked)
    now = report.tests
    per_repro = {}
    for r in repros:
        mine = {t: o for t, o in now.items() if t.split("::")[0] == r.evidence["path"]}
        per_repro[r.id] = PASSED if mine and all(o == PASSED for o in mine.values()) else FAILED
    regressions = [t for t in checked if now.get(t, ERROR) in (FAILED, ERROR)]
    node.evidence.update(_score(node, per_repro, regressions, checked, files))
    ctx.store.event("evidence", node=node.id, reproduced=node.evidence["reproduced"],
                    regressions=len(regressions), verified_by=node.evidence["verified_by"])  # fmt: skip
    # The counts the critic and repairs see: the reproductions plus the regression tests.
    tests = {t: now.get(t, ERROR) for t in checked} | {
        t: o for t, o in now.items() if any(t.startswith(r.evidence["path"]) for r in repros)
    }
    values = list(tests.values())
    result = _result(run, report)
    result.tests = tests
    result.passed, result.failed = values.count(PASSED), values.count(FAILED)
    result.errors, result.skipped = values.count(ERROR), 0
    return result


def related_tests(ctx: SearchContext, files: list[str], names: list[str], limit: int = MAX_TESTS) -> list[str]:
    """The tests of `files` whose id names a changed function or class (all of them when none
    does), at most `limit`: big test files stay cheap. Collected on the base once per file."""
    ids: list[str] = []
    missing = [f for f in files if ctx.store.get_meta(COLLECTED_KEY + f) is None]
    if missing:
        with ctx.workspace.worktree() as base:
            timeout = min(ctx.task.test_timeout, ctx.budget.time_left())
            run = ctx.sandbox.run(" ".join([PYTEST, "--collect-only", "-q", *map(shlex.quote, missing)]),
                                  base, timeout, ctx.task.env or None)  # fmt: skip
        found = re.findall(r"^(\S+::\S.*)$", run.output, re.M)
        for f in missing:
            ctx.store.set_meta(COLLECTED_KEY + f, [t for t in found if t.split("::")[0] == f])
    for f in files:
        ids += ctx.store.get_meta(COLLECTED_KEY + f) or []
    keys = [_squash(n) for n in names if len(n) > 2]
    named = [t for t in ids if any(k in _squash(t.split("::", 1)[-1]) for k in keys)]
    return (named or ids)[:limit]


def _squash(text: str) -> str:
    """`nth_or_last` and `NthOrLastTests` compare alike."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _score(
    node: Node, per_repro: dict[str, str], regressions: list[str], checked: list[str], files: list[str]
) -> dict[str, Any]:
    passed = sum(o == PASSED for o in per_repro.values())
    share = passed / len(per_repro) if per_repro else 0.5
    score = share / (1 + REGRESSION_PENALTY * len(regressions))
    verified = bool(per_repro) and passed == len(per_repro) and not regressions
    return {
        "reproductions": per_repro,
        "reproduced": passed,
        "regressions": regressions[:50],
        "regression_count": len(regressions),
        "regression_tests": len(checked),
        "regression_files": files,
        "selection": SELECTION,
        "score": round(score, 4),
        "verified_by": "reproduction" if verified else "",
        "strong": verified and bool(checked),
    }


def base_outcomes(ctx: SearchContext, tests: list[str]) -> dict[str, str]:
    """Per-test outcomes at the base, each test run on the base once per run."""
    known: dict[str, str] = ctx.store.get_meta(BASE_KEY, {})
    missing = [t for t in tests if t not in known]
    if missing:
        try:
            ctx.budget.charge_test_run()
        except BudgetExceeded:
            return {t: known[t] for t in tests if t in known}
        with ctx.workspace.worktree() as base:
            _, report = _pytest(ctx, base, missing)
        known = {**ctx.store.get_meta(BASE_KEY, {}), **{t: report.tests.get(t, ERROR) for t in missing}}
        ctx.store.set_meta(BASE_KEY, known)
        ctx.store.event("baseline", tests=len(missing), passed=sum(report.tests.get(t) == PASSED for t in missing))
    return {t: known[t] for t in tests if t in known}


def select_regression_files(root: Path, diff: str, limit: int = MAX_REGRESSION_FILES) -> list[str]:
    """Existing test files that exercise the code `diff` changes, most related first."""
    sources = [p for p in changed_paths(diff) if p.endswith(".py") and not is_test_file(p)]
    if not sources:
        return []
    names = changed_names(diff)
    patterns = []
    for p in sources:
        parts = list(Path(p).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        # src/pkg/mod.py may be imported as pkg.mod: every tail of the dotted path
        dotted = [".".join(parts[i:]) for i in range(len(parts)) if parts[i:]]
        patterns.append((Path(p).stem, dotted))
    scored: list[tuple[int, str]] = []
    for f in _test_files(root):
        try:
            text = f.read_text(errors="replace")
        except OSError:
            continue
        rel = f.relative_to(root).as_posix()
        score = 0
        for stem, dotted in patterns:
            if stem in (f.stem.removeprefix("test_"), f.stem.removesuffix("_test")):
                score += 3
            if any(re.search(rf"^\s*(from|import)\s+{re.escape(d)}\b", text, re.M) for d in dotted):
                score += 2
        score += sum(1 for n in names if re.search(rf"\b{re.escape(n)}\s*\(", text))
        if score:
            scored.append((score, rel))
    scored.sort(key=lambda x: (-x[0], x[1]))
    return [rel for _, rel in scored[:limit]]


def changed_names(diff: str) -> list[str]:
    """Functions and classes a diff touches: hunk headers' context and defs on changed lines."""
    names = re.findall(r"^@@[^@]*@@\s*(?:async\s+)?(?:def|class)\s+(\w+)", diff, re.M)
    names += re.findall(r"^[+-]\s*(?:async\s+)?(?:def|class)\s+(\w+)", diff, re.M)
    return [n for n in dict.fromkeys(names) if not n.startswith("__")]


def _test_files(root: Path) -> list[Path]:
    skip = {".git", ".treefix", "node_modules", ".venv", "venv", "__pycache__", "build", "dist"}
    out = []
    for f in sorted(root.rglob("*.py")):
        rel = f.relative_to(root)
        if any(part in skip or part.startswith(".") for part in rel.parts[:-1]):
            continue
        if is_test_file(f.name) and not f.name.startswith(REPRO_PREFIX):
            out.append(f)
    return out


def _pytest(ctx: SearchContext, cwd: Path, files: list[str]) -> tuple[RunResult, TestReport]:
    cmd = " ".join([PYTEST, *map(shlex.quote, files)])
    timeout = min(ctx.task.test_timeout, ctx.budget.time_left())
    run, report = run_tests(ctx.sandbox, cmd, cwd, timeout, ctx.task.env or None)
    ctx.store.event("test", node="", passed=report.passed, failed=report.failed, exit=run.exit_code)
    return run, report


def _result(run: RunResult, report: TestReport) -> ExecResult:
    return ExecResult(
        passed=report.passed, failed=report.failed, errors=report.errors, skipped=report.skipped,
        exit_code=run.exit_code, timed_out=run.timed_out,
        output=shorten(run.output, OUTPUT_HEAD, OUTPUT_TAIL), tests=report.tests,
    )  # fmt: skip


def valid_python(code: str) -> str | None:
    """Why `code` is not a Python file, or None."""
    try:
        ast.parse(code)
    except SyntaxError as e:
        return f"line {e.lineno}: {e.msg}"
    return None


def describe(node: Node) -> str:
    """The evidence in words, for the critic and the discriminator; "" when there is none."""
    ev = node.evidence
    if "reproductions" not in ev:
        return ""
    parts = []
    if ev["reproductions"]:
        parts.append(
            f"Reproduction tests (they fail on the unchanged code): {ev['reproduced']} of "
            f"{len(ev['reproductions'])} now pass."
        )
    else:
        parts.append("No reproduction test checks this attempt.")
    if ev["regression_tests"]:
        if ev["regression_count"]:
            shown = ", ".join(ev["regressions"][:5])
            parts.append(f"Regressions: {ev['regression_count']} existing test(s) that passed before now fail: {shown}.")
        else:
            parts.append(f"No regression among {ev['regression_tests']} related existing tests.")
    else:
        parts.append("No related existing test was found to check for regressions.")
    return " ".join(parts)
