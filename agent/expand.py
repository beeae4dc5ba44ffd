"""Expand a node: ask the policy for one child and turn its edits into a diff against base."""

from __future__ import annotations

from pathlib import Path

from treefix.agent.budget import BudgetExceeded
from treefix.agent.evidence import (
    REGRESSION_ONLY,
    REPLACE_KEY,
    check_command,
    extract_files,
    repro_path,
    stage,
    valid_python,
)
from treefix.agent.models.base import ModelError
from treefix.agent.policies.base import Candidate, NoCandidate, Policy, SearchContext
from treefix.agent.tree import CHILD_KIND, ExecResult, Node, NodeKind, NodeStatus
from treefix.tools.edit import EditError, apply_blocks, parse_blocks


def expand(ctx: SearchContext, policy: Policy, parent_id: str) -> Node | None:
    """Make and store one child of `parent_id`. None when the policy has nothing new to offer.

    Raises BudgetExceeded before anything is spent when no room is left for the node or its calls.
    """
    parent = ctx.store.get(parent_id)
    kind = child_kind(ctx, policy, parent)
    ctx.budget.charge_node()
    child = Node(kind=kind, parent=parent.id, depth=parent.depth + 1, origin=policy.name)
    try:
        candidate = getattr(policy, kind.value)(ctx, parent)  # plan, code, repair or reproduce
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
    if kind is NodeKind.REPRODUCE:
        child.diff, child.exec = reproduction_diff(ctx, child, candidate)
        if replacing := int(ctx.store.get_meta(REPLACE_KEY, 0)):
            ctx.store.set_meta(REPLACE_KEY, replacing - 1)
    elif kind is not NodeKind.PLAN:
        child.diff, child.exec = apply_candidate(ctx, parent, candidate)
        if child.exec is None and (twin := identical_sibling(ctx, parent.id, child.diff)) is not None:
            # One node: the same fix again is a vote for it, not a second test run or critic call.
            twin.evidence["duplicates"] = int(twin.evidence.get("duplicates", 0)) + 1
            ctx.store.update(twin)
            ctx.store.event("duplicate", node=twin.id, parent=parent.id)
            return twin
    return ctx.store.add(child)


def reproduces(ctx: SearchContext, policy: Policy) -> bool:
    """Does this run grow reproduction nodes? When the policy writes tests and there is no test
    command, or (with `base_check`) one that passes on the base: it can only catch regressions."""
    writes = getattr(policy, "writes_tests", hasattr(policy, "reproduce"))
    if ctx.params.reproductions <= 0 or not writes:
        return False
    if not ctx.task.test_cmd:
        return True
    return ctx.params.base_check and check_command(ctx) == REGRESSION_ONLY


def child_kind(ctx: SearchContext, policy: Policy, parent: Node) -> NodeKind:
    """The tree's grammar (CHILD_KIND), except that the root first grows up to
    `params.reproductions` reproductions when the run makes its own execution signal."""
    if parent.kind is NodeKind.ROOT and reproduces(ctx, policy):
        # Reproductions until one is usable, at most `reproductions` of them; a demoted one (no
        # candidate can pass it) is not usable and frees its slot. Then the root grows plans.
        live = [c for c in ctx.store.children(parent.id) if c.kind is NodeKind.REPRODUCE and not c.evidence.get("demoted")]
        usable = any(c.evidence.get("accepted") for c in live)
        if not usable and len(live) < ctx.params.reproductions:
            return NodeKind.REPRODUCE
    return CHILD_KIND[parent.kind]


def identical_sibling(ctx: SearchContext, parent_id: str, diff: str) -> Node | None:
    from treefix.tools.diffs import normalised

    key = normalised(diff)
    for sib in ctx.store.children(parent_id):
        if sib.diff and sib.status is not NodeStatus.FAILED and normalised(sib.diff) == key:
            return sib
    return None


def reproduction_diff(ctx: SearchContext, node: Node, candidate: Candidate) -> tuple[str, ExecResult | None]:
    """The reproduction's test files (one per fenced block, at most MAX_FILES) at the repository
    root, as a diff against base. A file that is not Python is judged unusable here."""
    codes = extract_files(candidate.content)
    files: dict[str, dict] = {}
    for i, code in enumerate(codes):
        files[repro_path(node.id, i)] = {"code": code}
        if bad := valid_python(code):
            files[repro_path(node.id, i)].update(accepted=False, reason=f"not a valid Python test file ({bad})")
    node.content, node.evidence["files"] = "\n".join(codes), files
    node.evidence["path"] = next(iter(files))
    valid = {p: i for p, i in files.items() if "accepted" not in i}
    if not valid:
        reason = "; ".join(i["reason"] for i in files.values())
        return "", ExecResult(applied=False, message=f"the reply holds no valid Python test file ({reason})")
    with ctx.workspace.worktree() as wt:
        for path, info in valid.items():
            (wt / path).write_text(info["code"])
        stage(wt, list(valid))
        return ctx.workspace.diff(wt), None


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
