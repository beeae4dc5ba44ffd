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
- Accepted reproductions are shared by the whole tree: every candidate is checked against all of
  them, and a reproduction accepted late is run on the best few candidates made before it.
- A reproduction *no candidate can pass* is demoted (rule `unmoved`): when DEMOTE_AFTER distinct
  candidates have all left it failing exactly as on the base (the same tests, the same failure
  lines) and no candidate ever changed its outcome. A test that measures the code the candidates
  change moves under some of them (it passes, or fails differently when a wrong fix breaks that
  code); one that never moves does not measure it (an assertion about something no fix touches).
  Corroborated, two such candidates suffice when one of them passes another reproduction (it
  reached the code of the issue, and still did not move this one). A demoted reproduction no
  longer counts for or against a candidate, frees its slot for another reproduction, and is still
  run: a candidate that passes it or changes its failure reinstates it.
- A candidate's *score* is the share of the counted reproductions that now pass (0.5 when it has
  none: no evidence either way), divided by 1 + 4 x its regressions. It is *verified* when it has
  at least one counted reproduction, all of them pass and nothing regressed; the evidence is
  *strong* when regression tests were also found and run.
"""

from __future__ import annotations

import ast
import hashlib
import re
import shlex
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from treefix.agent.budget import BudgetExceeded
from treefix.agent.tree import BASE_SECONDS_KEY, ExecResult, Node, NodeKind
from treefix.tools.diffs import changed_paths
from treefix.tools.sandbox import RunResult, shorten
from treefix.tools.testing import ERROR, FAILED, PASSED, TestReport, run_tests

if TYPE_CHECKING:
    from treefix.agent.policies.base import SearchContext

PYTEST = "python -m pytest -rA -p no:cacheprovider"
REPRO_PREFIX = "test_treefix_repro_"
SELECTION = "imports+names"  # how regression tests were chosen: by import and name heuristics ...
COVERAGE = "coverage"  # ... or by the base's per-test coverage (a test command was given)
MAX_REGRESSION_FILES = 6
REGRESSION_PENALTY = 4.0
OUTPUT_HEAD, OUTPUT_TAIL = 2_000, 6_000
BASE_KEY = "evidence/base"  # test id -> its outcome at the base
COLLECTED_KEY = "evidence/collected/"  # + test file: its test ids
MAX_TESTS = 200
DEMOTE_AFTER = 3  # distinct candidates that leave a reproduction failing unchanged before it is demoted
RECHECK = 4  # earlier candidates a newly accepted reproduction is run on
REPLACE_KEY = "evidence/replace"  # demoted reproductions the root has not yet grown a replacement for
NO_ADDOPTS_KEY = "evidence/no_addopts"  # the project's pytest addopts name a plugin that is not installed
MAX_FILES = 3  # test files one reproduction node may hold (one model call), each judged alone
REGRESSION_ONLY = "regression-only"  # a given test command that passes on the base: it can only catch regressions
MODE_KEY = "evidence/mode"  # with a test command and base_check: "regression-only" or "tests"
_LOCK = threading.Lock()  # reproduction nodes are updated by parallel candidate evaluations
# Failures that say the test itself is broken, not the code under test.
UNRELATED = re.compile(r"\b(ImportError|ModuleNotFoundError|SyntaxError|IndentationError|NameError)\b")
_SHORT = re.compile(r"^(FAILED|ERROR) (\S+)(?: - (.*))?$", re.M)


def repro_path(node_id: str, index: int = 0) -> str:
    return f"{REPRO_PREFIX}{node_id}{f'_{index + 1}' if index else ''}.py"


def is_test_file(path: str) -> bool:
    name = Path(path).name
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def extract_code(reply: str) -> str:
    """The test file in a reply: the longest fenced block, else the reply itself."""
    blocks = re.findall(r"```(?:python|py)?\s*\n(.*?)```", reply, flags=re.S)
    code = max(blocks, key=len) if blocks else reply
    return code.strip() + "\n"


def extract_files(reply: str, limit: int = MAX_FILES) -> list[str]:
    """The test files in a reply: each fenced block one file (at most `limit`), else the reply itself."""
    blocks = [b.strip() for b in re.findall(r"```(?:python|py)?\s*\n(.*?)```", reply, flags=re.S) if b.strip()]
    return [b + "\n" for b in (blocks or [reply.strip()])][:limit]


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
    """Run each test file of a reproduction node on the base (the node's diff is applied in `wt`),
    one sandboxed run per file, and accept or reject each. The node is accepted when one of its
    files is; it is closed when none is, and the reasons feed the next reproduction's prompt."""
    files: dict[str, dict[str, Any]] = node.evidence.setdefault("files", {})
    outputs = []
    for path, info in files.items():
        if "accepted" in info:  # judged when the reply was read (not Python)
            continue
        if not imports_repository(info["code"], wt):
            info.update(accepted=False, reason="does not import the repository's code, so it cannot show the issue")
            continue
        try:
            ctx.budget.charge_test_run()
        except BudgetExceeded as e:
            info.update(accepted=False, reason=f"not run: {e}")
            continue
        run, report = _pytest(ctx, wt, [path])
        accepted, reason = judge_reproduction(run, report)
        mine = _outcomes(path, report.tests)
        info.update(accepted=accepted, reason=reason, base=mine, signature=signature(run.output, mine))
        outputs.append((accepted, path, run, report))
    good = [p for p, i in files.items() if i.get("accepted")]
    bad = [f"{p}: {i['reason']}" if len(files) > 1 else i["reason"] for p, i in files.items() if not i.get("accepted")]
    reason = files[good[0]]["reason"] if good else "; ".join(bad)
    base = {t: o for i in files.values() for t, o in (i.get("base") or {}).items()}
    node.evidence.update(accepted=bool(good), reason=reason, base=base, path=good[0] if good else next(iter(files), ""))
    node.closed = not good  # an unusable reproduction grows nothing; its reasons feed a sibling
    ctx.store.event("reproduce", node=node.id, accepted=bool(good), files=len(files), usable=len(good), reason=reason[:300])
    if not outputs:
        return ExecResult(message=reason)
    outputs.sort(key=lambda o: not o[0])  # the accepted files' runs first: the plan prompt shows them
    result = _result(outputs[0][2], outputs[0][3])
    result.output = shorten("\n".join(o[2].output for o in outputs), OUTPUT_HEAD, OUTPUT_TAIL)
    result.tests = base
    return result


def accepted_code(node: Node) -> str:
    """The accepted test files of a reproduction node, for the plan prompt."""
    files = node.evidence.get("files") or {}
    shown = [f"# {p}\n{i['code']}" for p, i in files.items() if i.get("accepted")]
    return "\n".join(shown) if shown else node.content


def stage(root: Path, paths: list[str]) -> None:
    """Stage reproduction files even where the project's .gitignore hides them (semver ignores
    `/*.py`): the diff is taken from the index, and an ignored file would silently be left out."""
    if paths:
        subprocess.run(["git", "add", "-f", "--", *paths], cwd=root, check=True, capture_output=True)


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


@dataclass(frozen=True)
class Repro:
    """One accepted reproduction test file: the node that holds it, its path and its code."""

    node: str
    path: str
    code: str
    demoted: bool


def reproductions(ctx: SearchContext, node: Node | None = None) -> list[Repro]:
    """The accepted reproductions a candidate is checked against: every one in the tree (shared),
    demoted ones included (they are run, not counted, until a candidate moves them)."""
    return [
        Repro(n.id, p, i["code"], bool(i.get("demoted")))
        for n in ctx.store.nodes() if n.kind is NodeKind.REPRODUCE
        for p, i in (n.evidence.get("files") or {}).items() if i.get("accepted")
    ]  # fmt: skip


def passed_reproductions(ctx: SearchContext, node: Node) -> list[Repro]:
    """The counted reproductions `node` passes: the tests `--keep-tests` adds to its patch."""
    outcomes = node.evidence.get("reproductions") or {}
    return [r for r in reproductions(ctx) if outcomes.get(r.path) == PASSED and not r.demoted]


def evaluate_candidate(ctx: SearchContext, node: Node, wt: Path) -> ExecResult | None:
    """Reproductions and regression tests on a candidate whose diff is applied in `wt`.
    Sets node.evidence; None when there is nothing to run (no reproduction, no related test)."""
    repros = reproductions(ctx, node)
    covered = covered_tests(ctx, node.diff) if ctx.params.regression_checks else None
    if covered is not None:  # the base's per-test coverage says which tests run the changed lines
        files, checked, selection = sorted({t.split("::")[0] for t in covered}), covered, COVERAGE
    else:
        files = select_regression_files(wt, node.diff) if ctx.params.regression_checks else []
        chosen = related_tests(ctx, files, changed_names(node.diff)) if files else []
        base = base_outcomes(ctx, chosen)
        checked, selection = sorted(t for t, o in base.items() if o == PASSED), SELECTION
    if not repros and not checked:
        node.evidence.update(_score({}, 0, 0, files, set(), selection), regressions=[])
        return None
    for r in repros:
        (wt / r.path).write_text(r.code)  # outside the candidate's diff
    ctx.budget.charge_test_run()
    run, report = _pytest(ctx, wt, [r.path for r in repros] + checked)
    now = report.tests
    per_repro = {}
    for r in repros:
        per_repro[r.path] = observe(ctx, r, node, run.output, now)
    corroborate(ctx, node, per_repro)
    regressions = [t for t in checked if now.get(t, ERROR) in (FAILED, ERROR)]
    node.evidence.update(_score(per_repro, len(regressions), len(checked), files, demoted(ctx), selection))
    node.evidence["regressions"] = regressions[:50]
    ctx.store.event("evidence", node=node.id, reproduced=node.evidence["reproduced"],
                    regressions=len(regressions), verified_by=node.evidence["verified_by"])  # fmt: skip
    # The counts the critic and repairs see: the reproductions plus the regression tests.
    tests = {t: now.get(t, ERROR) for t in checked} | {
        t: o for t, o in now.items() if any(t.split("::")[0] == r.path for r in repros)
    }
    values = list(tests.values())
    result = _result(run, report)
    result.tests = tests
    result.passed, result.failed = values.count(PASSED), values.count(FAILED)
    result.errors, result.skipped = values.count(ERROR), 0
    return result


def signature(output: str, tests: dict[str, str]) -> str:
    """How a reproduction's tests came out in a run: each test's outcome and failure line, with
    memory addresses and temporary folders blanked (they differ between identical runs)."""
    why = reasons(output)
    lines = []
    for t in sorted(tests):
        reason = re.sub(r"0x[0-9a-fA-F]+", "0x?", why.get(t, ""))
        reason = re.sub(r"/\S*/(wt-\d+|tmp\w*)/", "/?/", reason)
        lines.append(f"{t} {tests[t]} {reason}")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def _outcomes(path: str, tests: dict[str, str]) -> dict[str, str]:
    return {t: o for t, o in tests.items() if t.split("::")[0] == path}


def observe(ctx: SearchContext, repro: Repro, cand: Node, output: str, tests: dict[str, str]) -> str:
    """Record how a candidate left a reproduction; returns PASSED or FAILED. Applies the demotion
    rule (`unmoved`, see the module's doc) and emits `reproduction` when a candidate is the first
    to pass it (turn control's "a reproduction newly passes")."""
    from treefix.tools.diffs import normalised

    with _LOCK:
        r = ctx.store.get(repro.node)
        info = r.evidence["files"][repro.path]
        mine = _outcomes(repro.path, tests)
        outcome = PASSED if mine and all(o == PASSED for o in mine.values()) else FAILED
        if outcome == PASSED or signature(output, mine) != info.get("signature"):
            info["moved"] = int(info.get("moved", 0)) + 1
            if info.pop("demoted", None):
                r.evidence.pop("demoted", None)
                ctx.store.event("reinstated", node=r.id, path=repro.path, by=cand.id)
            if outcome == PASSED and not info.get("passed_by"):
                info["passed_by"] = cand.id
                ctx.store.event("reproduction", node=cand.id, reproduction=r.id, path=repro.path, passed=True)
        else:
            key = hashlib.sha256(normalised(cand.diff).encode()).hexdigest()[:12]
            info["unmoved"] = sorted(set(info.get("unmoved", [])) | {key})
            _demote_if_unmoved(ctx, r, repro.path)
        ctx.store.update(r)
    return outcome


def _demote_if_unmoved(ctx: SearchContext, node: Node, path: str) -> None:
    """Rule `unmoved` on one file of a reproduction node (updated in place; the caller stores it)."""
    info = node.evidence["files"][path]
    unmoved = len(info.get("unmoved", []))
    if info.get("moved") or info.get("demoted"):
        return
    if unmoved >= DEMOTE_AFTER:
        why = "none changed its outcome, so no fix of this code seems to pass it"
    elif unmoved >= 2 and info.get("corroborated"):
        why = f"one of them ({info['corroborated']}) while passing another reproduction"
    else:
        return
    info["demoted"] = f"unmoved: {unmoved} distinct candidates left it failing exactly as on the base, {why}"
    ctx.store.event("demoted", node=node.id, path=path, reason=info["demoted"])
    if all(i.get("demoted") for i in node.evidence["files"].values() if i.get("accepted")):
        node.evidence["demoted"] = info["demoted"]  # the whole node is: the root may replace it
        ctx.store.set_meta(REPLACE_KEY, int(ctx.store.get_meta(REPLACE_KEY, 0)) + 1)


def corroborate(ctx: SearchContext, cand: Node, outcomes: dict[str, str]) -> None:
    """The `unmoved` rule's corroborated form: a candidate that passes one reproduction has reached
    the code of the issue. Another reproduction it left failing exactly as on the base is marked;
    once two distinct candidates (this one among them) have, it is demoted without waiting for
    DEMOTE_AFTER."""
    if PASSED not in outcomes.values():
        return
    with _LOCK:
        for path, outcome in outcomes.items():
            r = next((x for x in reproductions(ctx) if x.path == path), None)
            if outcome == PASSED or r is None or r.demoted:
                continue
            node = ctx.store.get(r.node)
            info = node.evidence["files"][path]
            if info.get("moved") or info.get("corroborated"):
                continue
            info["corroborated"] = cand.id
            _demote_if_unmoved(ctx, node, path)
            ctx.store.update(node)


def demoted(ctx: SearchContext) -> set[str]:
    return {r.path for r in reproductions(ctx) if r.demoted}


def recheck(ctx: SearchContext, node: Node) -> int:
    """Run a newly accepted reproduction node's files on the best RECHECK distinct candidates made
    before it (one charged run each). Returns how many were checked."""
    from treefix.tools.diffs import normalised

    mine = [r for r in reproductions(ctx) if r.node == node.id]
    seen, done = set(), 0
    pool = [
        n for n in ctx.store.nodes()
        if n.kind in (NodeKind.CODE, NodeKind.REPAIR) and "reproductions" in n.evidence
        and any(r.path not in n.evidence["reproductions"] for r in mine) and not n.evidence.get("regression_count")
        and n.exec is not None and n.exec.applied and n.exec.compiled and n.diff
    ]  # fmt: skip
    for n in sorted(pool, key=lambda n: -(n.value or 0.0)):
        key = normalised(n.diff)
        if key in seen:
            continue
        seen.add(key)
        if done >= RECHECK:
            break
        try:
            ctx.budget.charge_test_run()
        except BudgetExceeded:
            break
        with ctx.workspace.worktree() as wt:
            if ctx.workspace.apply_diff(wt, n.diff):
                continue
            for r in mine:
                (wt / r.path).write_text(r.code)
            run, report = _pytest(ctx, wt, [r.path for r in mine])
        n = ctx.store.get(n.id)
        for r in mine:
            n.evidence["reproductions"][r.path] = observe(ctx, r, n, run.output, report.tests)
        corroborate(ctx, n, n.evidence["reproductions"])
        ctx.store.update(n)
        done += 1
    if done:
        ctx.store.event("recheck", node=node.id, candidates=done)
    return done


def rescore(ctx: SearchContext) -> list[Node]:
    """Recompute every candidate's evidence score under the current demotions; the nodes whose
    score or verification changed (their values must follow)."""
    gone = demoted(ctx)
    changed = []
    for n in ctx.store.nodes():
        ev = n.evidence
        if n.kind not in (NodeKind.CODE, NodeKind.REPAIR) or "reproductions" not in ev:
            continue
        new = _score(ev["reproductions"], int(ev.get("regression_count", 0)), int(ev.get("regression_tests", 0)),
                     ev.get("regression_files", []), gone, ev.get("selection", SELECTION))  # fmt: skip
        if (new["score"], new["verified_by"], new["counted"]) != (ev.get("score"), ev.get("verified_by"), ev.get("counted")):
            ev.update(new)
            ctx.store.update(n)
            changed.append(n)
    return changed


def refresh(ctx: SearchContext, batch: list[str]) -> list[Node]:
    """After a batch is evaluated: run newly accepted reproductions on earlier candidates, then
    rescore under the current demotions. Returns the candidates whose score changed."""
    for node_id in batch:
        n = ctx.store.get(node_id)
        if n.kind is NodeKind.REPRODUCE and n.evidence.get("accepted"):
            recheck(ctx, n)
    return rescore(ctx)


def evidence_mode(ctx: SearchContext) -> bool:
    """Is the run's execution signal made of reproductions and regression checks? Without a test
    command, or with one that passes on the base (regression-only, see check_command)."""
    return not ctx.task.test_cmd or ctx.store.get_meta(MODE_KEY) == REGRESSION_ONLY


def check_command(ctx: SearchContext) -> str:
    """With a test command: run it once on the base under per-test coverage (charged as a test run;
    it is the offline policy's spectrum, so a tiered run gathers it once). "regression-only" when
    every test passes there: the command cannot tell a fix from a no-op, only catch what a candidate
    breaks, so the run grows reproductions and uses the coverage to choose regression tests.
    "tests" otherwise (a failing test to make pass, or no per-test result): as before."""
    from treefix.agent.policies.localise import gather
    from treefix.agent.policies.offline import BASELINE_KEY, SPECTRUM_KEY

    with _LOCK:
        if mode := ctx.store.get_meta(MODE_KEY):
            return str(mode)
        data = ctx.store.get_meta(SPECTRUM_KEY)
        if not isinstance(data, dict):
            spectrum = gather(ctx)
            data = spectrum.to_dict()
            ctx.store.set_meta(SPECTRUM_KEY, data)
            ctx.store.set_meta(BASELINE_KEY, spectrum.baseline)
            if spectrum.seconds and not spectrum.error:
                ctx.store.set_meta(BASE_SECONDS_KEY, spectrum.seconds)
        outcomes = data.get("outcomes") or {}
        failing = [t for t, o in outcomes.items() if o not in (PASSED, "skipped")]
        if data.get("error") or not outcomes:
            mode, why = "tests", data.get("error") or "the test command ran no test on the base"
        elif failing:
            mode, why = "tests", f"{len(failing)} of {len(outcomes)} tests fail on the base"
        else:
            mode, why = REGRESSION_ONLY, f"all {len(outcomes)} tests pass on the base: it can only catch regressions"
        ctx.store.set_meta(MODE_KEY, mode)
        ctx.store.event("test_command", mode=mode, reason=why)
        return mode


def covered_tests(ctx: SearchContext, diff: str) -> list[str] | None:
    """Tests that passed on the base and ran a line `diff` changes, by the base's per-test
    coverage (at most MAX_TESTS); None when the run has no coverage (no test command)."""
    from treefix.agent.policies.offline import SPECTRUM_KEY

    data = ctx.store.get_meta(SPECTRUM_KEY)
    if not isinstance(data, dict) or data.get("error") or not data.get("lines"):
        return None
    tests, outcomes, lines = data["tests"], data.get("outcomes") or {}, data["lines"]
    hit: set[int] = set()
    for path, changed in changed_lines(diff).items():
        per = lines.get(path) or {}
        for n in changed:
            hit.update(per.get(str(n), []))
        if changed & set(data.get("module_lines", {}).get(path, [])):  # module level: every test that uses it
            for idx in per.values():
                hit.update(idx)
    return sorted(tests[i] for i in hit if i < len(tests) and outcomes.get(tests[i]) == PASSED)[:MAX_TESTS]


def changed_lines(diff: str) -> dict[str, set[int]]:
    """Base-side lines a diff changes, per file: removed or replaced lines, and both neighbours of a
    pure insertion (lines added where none was removed)."""
    out: dict[str, set[int]] = {}
    path, line, removed = "", 0, False
    for text in diff.splitlines():
        if text.startswith("--- "):
            continue
        if text.startswith("+++ "):
            path = text[6:] if text.startswith("+++ b/") else ""
            continue
        if m := re.match(r"^@@ -(\d+)", text):
            line, removed = int(m[1]), False
            continue
        if not path:
            continue
        if text.startswith("-"):
            out.setdefault(path, set()).add(line)
            line, removed = line + 1, True
        elif text.startswith("+"):
            if not removed:
                out.setdefault(path, set()).update({max(line - 1, 1), line})
        elif text.startswith(" "):
            line, removed = line + 1, False
    return out


def related_tests(ctx: SearchContext, files: list[str], names: list[str], limit: int = MAX_TESTS) -> list[str]:
    """The tests of `files` whose id names a changed function or class (all of them when none
    does), at most `limit`: big test files stay cheap. Collected on the base once per file."""
    ids: list[str] = []
    missing = [f for f in files if ctx.store.get_meta(COLLECTED_KEY + f) is None]
    if missing:
        with ctx.workspace.worktree() as base:
            timeout = min(ctx.task.test_timeout, ctx.budget.time_left())
            cmd = " ".join([pytest_cmd(ctx), "--collect-only", "-q", *map(shlex.quote, missing)])
            run = ctx.sandbox.run(cmd, base, timeout, ctx.task.env or None)
            if _foreign_addopts(run.output) and not ctx.store.get_meta(NO_ADDOPTS_KEY):
                ctx.store.set_meta(NO_ADDOPTS_KEY, True)
                run = ctx.sandbox.run(" ".join([pytest_cmd(ctx), "--collect-only", "-q", *map(shlex.quote, missing)]),
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
    per_repro: dict[str, str], regressions: int, checked: int, files: list[str], gone: set[str], selection: str
) -> dict[str, Any]:
    counted = sorted(r for r in per_repro if r not in gone)
    passed = sum(per_repro[r] == PASSED for r in counted)
    share = passed / len(counted) if counted else 0.5
    score = share / (1 + REGRESSION_PENALTY * regressions)
    verified = bool(counted) and passed == len(counted) and not regressions
    return {
        "reproductions": per_repro,
        "counted": counted,
        "reproduced": passed,
        "regression_count": regressions,
        "regression_tests": checked,
        "regression_files": files,
        "selection": selection,
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


def pytest_cmd(ctx: SearchContext) -> str:
    """pytest as the evidence runs it; without the project's addopts once they proved unusable."""
    return PYTEST + " -o addopts=''" if ctx.store.get_meta(NO_ADDOPTS_KEY) else PYTEST


def _foreign_addopts(output: str) -> bool:
    """pytest refused its own configuration: the project's addopts name options of a plugin that is
    not installed (`--cov=...` without pytest-cov is common). Every run would fail the same way."""
    return "error: unrecognized arguments" in output and ("inifile:" in output or "configfile:" in output)


def _pytest(ctx: SearchContext, cwd: Path, files: list[str]) -> tuple[RunResult, TestReport]:
    timeout = min(ctx.task.test_timeout, ctx.budget.time_left())
    run, report = run_tests(ctx.sandbox, " ".join([pytest_cmd(ctx), *map(shlex.quote, files)]), cwd, timeout,
                            ctx.task.env or None)  # fmt: skip
    if _foreign_addopts(run.output) and not ctx.store.get_meta(NO_ADDOPTS_KEY):
        # Once per run, and the retry is charged: the same files without the project's addopts.
        ctx.store.set_meta(NO_ADDOPTS_KEY, True)
        ctx.store.event("addopts", reason=run.output.strip().splitlines()[1][:200] if "\n" in run.output.strip() else "")
        ctx.budget.charge_test_run()
        run, report = run_tests(ctx.sandbox, " ".join([pytest_cmd(ctx), *map(shlex.quote, files)]), cwd, timeout,
                                ctx.task.env or None)  # fmt: skip
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
    counted = ev.get("counted", list(ev["reproductions"]))
    if counted:
        parts.append(
            f"Reproduction tests (they fail on the unchanged code): {ev['reproduced']} of {len(counted)} now pass."
        )
    else:
        parts.append("No reproduction test checks this attempt.")
    if ev["regression_tests"]:
        if ev["regression_count"]:
            shown = ", ".join(ev.get("regressions", [])[:5])
            parts.append(f"Regressions: {ev['regression_count']} existing test(s) that passed before now fail: {shown}.")
        else:
            how = "that run the changed lines" if ev.get("selection") == COVERAGE else "related by imports and names"
            parts.append(f"No regression among {ev['regression_tests']} existing tests {how}.")
    else:
        parts.append("No related existing test was found to check for regressions.")
    return " ".join(parts)
