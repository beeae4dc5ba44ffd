"""Expand a node: ask the policy for one child and turn its edits into a diff against base."""

from __future__ import annotations

from pathlib import Path

from treefix.agent.budget import BudgetExceeded
from treefix.agent.models.base import ModelError
from treefix.agent.policies.base import Candidate, NoCandidate, Policy, SearchContext
from treefix.agent.tree import CHILD_KIND, ExecResult, Node, NodeKind, NodeStatus
from treefix.tools.edit import EditError, apply_blocks, parse_blocks


def expand(ctx: SearchContext, policy: Policy, parent_id: str) -> Node | None:
    """Make and store one child of `parent_id`. None when the policy has nothing new to offer.

    Raises BudgetExceeded before anything is spent when no room is left for the node or its calls.
    """
    parent = ctx.store.get(parent_id)
    kind = CHILD_KIND[parent.kind]
    ctx.budget.charge_node()
    child = Node(kind=kind, parent=parent.id, depth=parent.depth + 1, origin=policy.name)
    try:
        propose = {NodeKind.PLAN: policy.plan, NodeKind.CODE: policy.code, NodeKind.REPAIR: policy.repair}[kind]
        candidate = propose(ctx, parent)
    except (BudgetExceeded, NoCandidate):
        ctx.budget.release_node()
        raise
    except ModelError as e:  # the node is counted and scored 0; the search goes on
        child.status, child.error, child.title = NodeStatus.FAILED, str(e), "model call failed"
        child.value = 0.0
        return ctx.store.add(child)
    child.title, child.content, child.prior, child.usage = (
        candidate.title,
        candidate.content,
        candidate.prior,
        candidate.usage,
    )
    child.origin = candidate.origin or policy.name
    if kind is not NodeKind.PLAN:
        child.diff, child.exec = apply_candidate(ctx, parent, candidate)
    return ctx.store.add(child)


def apply_candidate(ctx: SearchContext, parent: Node, candidate: Candidate) -> tuple[str, ExecResult | None]:
    """The diff against base after the candidate's edits; an ExecResult only when they failed to apply."""
    with ctx.workspace.worktree() as wt:
        if parent.diff and (err := ctx.workspace.apply_diff(wt, parent.diff)):
            return parent.diff, ExecResult(applied=False, message=f"parent patch does not apply: {err}")
        if candidate.diff:
            err = ctx.workspace.apply_diff(wt, candidate.diff)
            failure = f"patch does not apply: {err}" if err else ""
        else:
            failure = _apply_edits(wt, candidate.edits)
        diff = ctx.workspace.diff(wt)
    if not failure and diff == parent.diff:
        failure = "the edits changed nothing"
    return diff, (ExecResult(applied=False, message=failure) if failure else None)


def _apply_edits(root: Path, text: str) -> str:
    """Apply SEARCH/REPLACE blocks; "" when all applied, else feedback the model can act on."""
    try:
        blocks = parse_blocks(text)
    except EditError as e:  # unreadable blocks are feedback for a repair, not a crash
        return f"the edit blocks could not be read: {e}"
    if not blocks:
        return "the reply holds no SEARCH/REPLACE blocks"
    report = apply_blocks(root, blocks)
    return "" if report.ok else report.feedback()
