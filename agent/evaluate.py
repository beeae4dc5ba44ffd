"""Evaluate a node: apply its diff in a clean worktree, gate on syntax, run the tests in the sandbox."""

from __future__ import annotations

from pathlib import Path

from treefix.agent.budget import BudgetExceeded
from treefix.agent.evidence import evaluate_candidate, evaluate_reproduction, evidence_mode
from treefix.agent.policies.base import SearchContext
from treefix.agent.tree import BASE_SECONDS_KEY, ExecResult, Node, NodeKind
from treefix.tools.diffs import changed_paths
from treefix.tools.sandbox import shorten
from treefix.tools.testing import run_tests

# What a node keeps of its test output: enough for a repair prompt, small enough for the store.
OUTPUT_HEAD, OUTPUT_TAIL = 2_000, 6_000
# Seconds the task's tests took at base, when a policy ran them (the offline policy's coverage run,
# which over- rather than under-estimates). With an automatic timeout (--test-timeout not typed,
# batch runs) a node's run gets a multiple of it, at least TIMEOUT_FLOOR (a slow start on a busy
# machine), never more than the task's test_timeout: a mutant that loops forever costs seconds.
TIMEOUT_FACTOR, TIMEOUT_FLOOR = 5.0, 30.0


def run_timeout(ctx: SearchContext) -> float:
    """Seconds a node's test run may take; never past the run's time budget."""
    base = ctx.store.get_meta(BASE_SECONDS_KEY)
    limit = ctx.task.test_timeout
    if base and ctx.task.auto_timeout:
        limit = min(limit, max(TIMEOUT_FLOOR, TIMEOUT_FACTOR * float(base)))
    return min(limit, ctx.budget.time_left())  # a test run cannot outlast the budget


def syntax_error(root: Path, paths: list[str]) -> str | None:
    """The first Python file that does not compile, with where; None when all compile."""
    for p in paths:
        f = root / p
        if f.suffix != ".py" or not f.is_file():
            continue
        try:
            compile(f.read_bytes(), p, "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as e:
            line = getattr(e, "lineno", None)
            return f"{p}:{line}: {getattr(e, 'msg', e)}"
    return None


def evaluate(ctx: SearchContext, node: Node) -> ExecResult | None:
    """Execution result of a node: a reproduction's run on the base; a code/repair node's given
    tests, or without a test command its reproductions and regression tests (agent/evidence.py).
    None for plans, or when nothing could be run."""
    if node.kind in (NodeKind.ROOT, NodeKind.PLAN):
        return None
    if node.kind is NodeKind.REPRODUCE:
        return _reproduction(ctx, node)
    if node.exec is not None:
        return node.exec  # the edits already failed to apply: scored 0 without running anything
    with ctx.workspace.worktree() as wt:
        err = ctx.workspace.apply_diff(wt, node.diff) if node.diff else None
        if err:
            return ExecResult(applied=False, message=f"patch does not apply: {err}")
        bad = syntax_error(wt, changed_paths(node.diff))
        if bad:
            return ExecResult(compiled=False, message=f"syntax error: {bad}")
        if evidence_mode(ctx):  # no test command, or one that passes on the base (regression-only)
            try:
                return evaluate_candidate(ctx, node, wt)
            except BudgetExceeded as e:
                return ExecResult(message=f"not tested: {e}")
        try:
            ctx.budget.charge_test_run()
        except BudgetExceeded as e:
            return ExecResult(message=f"not tested: {e}")
        timeout = run_timeout(ctx)
        run, report = run_tests(ctx.sandbox, ctx.task.test_cmd, wt, timeout, ctx.task.env or None)
    ctx.store.event(
        "test", node=node.id, passed=report.passed, failed=report.failed, exit=run.exit_code, timeout=round(timeout, 3)
    )
    return ExecResult(
        passed=report.passed,
        failed=report.failed,
        errors=report.errors,
        skipped=report.skipped,
        exit_code=run.exit_code,
        timed_out=run.timed_out or run.output_limited,  # cut short either way: never verified
        output=shorten(run.output, OUTPUT_HEAD, OUTPUT_TAIL),
        tests=report.tests,
        message=run.stopped,
    )


def _reproduction(ctx: SearchContext, node: Node) -> ExecResult | None:
    if node.exec is not None:  # the reply held no usable test file
        node.closed = True
        node.evidence.update(accepted=False, reason=node.exec.message)
        return node.exec
    with ctx.workspace.worktree() as wt:
        if err := ctx.workspace.apply_diff(wt, node.diff):
            node.closed = True
            node.evidence.update(accepted=False, reason=f"does not apply: {err}")
            return ExecResult(applied=False, message=f"patch does not apply: {err}")
        try:
            return evaluate_reproduction(ctx, node, wt)
        except BudgetExceeded as e:
            node.closed = True
            node.evidence.update(accepted=False, reason=f"not run: {e}")
            return ExecResult(message=f"not tested: {e}")
