"""The final choice and the run artefacts: patch.diff, tree.json, summary.json."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from treefix.agent.budget import Budget, BudgetExceeded
from treefix.agent.evidence import describe, passed_reproductions, stage
from treefix.agent.models.base import Message, ModelError
from treefix.agent.prefix import shared_prefix
from treefix.agent.store import RunStore
from treefix.agent.task import Task
from treefix.agent.tree import Node, NodeKind
from treefix.prompts import render
from treefix.tools.diffs import normalised
from treefix.tools.testing import PASSED, SKIPPED

if TYPE_CHECKING:
    from treefix.agent.config import RunConfig
    from treefix.agent.policies.base import SearchContext

TREE_FORMAT = "treefix.tree/1"
SUMMARY_FORMAT = "treefix.summary/1"


def candidates(nodes: list[Node]) -> list[Node]:
    """Attempts worth submitting, best first: verified, then value, then more tests passing (a
    critic that clips regressions to 0 ties them with neutral edits), then the smaller diff.
    An attempt that broke a test that passed on the base (a regression) is never offered."""
    attempts = [
        n
        for n in nodes
        if n.kind in (NodeKind.CODE, NodeKind.REPAIR)
        and n.diff
        and (n.exec is None or (n.exec.applied and n.exec.compiled))
        and not n.evidence.get("regression_count")
    ]
    return sorted(attempts, key=lambda n: (not n.verified, -(n.value or 0.0), -_passed(n), len(n.diff), n.seq))


def _passed(n: Node) -> int:
    return n.exec.passed if n.exec is not None and not n.exec.timed_out else 0


@dataclass(frozen=True)
class BaseTests:
    """How the task's tests ended at the base revision, when the run measured it."""

    passed: int
    total: int


def base_tests(store: RunStore) -> BaseTests | None:
    """The base's test result: the offline localisation's run (offline and tiered runs). Other
    runs do not test the base, so None: their candidates are then ranked but not filtered."""
    from treefix.agent.policies.offline import SPECTRUM_KEY  # its localisation is the base's test run

    spectrum = store.get_meta(SPECTRUM_KEY)
    if not isinstance(spectrum, dict) or spectrum.get("error"):
        return None
    ran = [o for o in (spectrum.get("outcomes") or {}).values() if o != SKIPPED]
    return BaseTests(sum(o == PASSED for o in ran), len(ran)) if ran else None


def improves(n: Node, base: BaseTests) -> bool:
    """Verified, or passes more tests than the base did (net of what it breaks). An attempt judged by
    reproductions and regression checks (the base passes every test) is not held to that count."""
    if "score" in n.evidence:
        return True
    return n.verified or (n.exec is not None and not n.exec.timed_out and n.exec.passed > base.passed)


def offered(store: RunStore) -> list[Node]:
    """Candidates a user may be offered, best first: none that is not better than the base."""
    focus = store.focus()  # after a follow-up, the answer lies below the node it continued from
    ranked = candidates(store.subtree(focus.id) if focus else store.nodes())
    base = base_tests(store)
    return [n for n in ranked if improves(n, base)] if base is not None else ranked


def not_improved_reason(store: RunStore) -> str:
    """Why a run with attempts offers none: every tested attempt was no better than the base."""
    base = base_tests(store)
    ranked = candidates(store.nodes())
    if base is None or not ranked or offered(store):
        return ""
    top = max(_passed(n) for n in ranked)
    return (
        f"none of {len(ranked)} attempts passed more tests than the base ({base.passed} of {base.total}); "
        f"the best passed {top}, so no patch is offered"
    )


@dataclass
class Choice:
    """The final choice and the rule that made it."""

    node: Node | None
    rule: str  # none | verified | votes | discriminator | best-value
    votes: dict[str, int] = field(default_factory=dict)  # distinct candidate -> nodes that reached its diff
    among: list[str] = field(default_factory=list)  # the distinct candidates the rule chose among

    def to_dict(self) -> dict[str, Any]:
        n = self.node
        return {
            "rule": self.rule,
            "node": n.id if n else None,
            "votes": self.votes,
            "among": self.among,
            "verified_by": n.verified_by if n else "",
            "evidence": {k: v for k, v in (n.evidence if n else {}).items() if k != "base"},
            "critic": n.judgement.value if n and n.judgement and not n.judgement.failed else None,
        }


def distinct(ranked: list[Node]) -> list[tuple[Node, int]]:
    """One node per normalised diff (the best-ranked), with its votes: every node that reached it."""
    groups: dict[str, tuple[Node, int]] = {}
    for n in ranked:
        key = normalised(n.diff)
        first, votes = groups.get(key, (n, 0))
        groups[key] = (first, votes + n.votes)
    return list(groups.values())


def choose(ctx: SearchContext, store: RunStore) -> Choice:
    """Verified candidates first, deduplicated by normalised diff; a strict majority of votes
    decides among them, else the discriminator (shown each one's evidence), else the best value."""
    ranked = offered(store)  # never an attempt that is no better than the base
    if not ranked:
        return Choice(None, "none")
    verified = [(n, v) for n, v in distinct(ranked) if n.verified]
    if not verified:
        return Choice(ranked[0], "best-value", {ranked[0].id: distinct(ranked)[0][1]}, [ranked[0].id])
    votes = {n.id: v for n, v in verified}
    if len(verified) == 1:
        return Choice(verified[0][0], "verified", votes, [verified[0][0].id])
    by_votes = sorted(verified, key=lambda nv: -nv[1])  # stable: ties keep the ranking
    if by_votes[0][1] > by_votes[1][1]:
        return Choice(by_votes[0][0], "votes", votes, list(votes))
    top = [n for n, v in by_votes if v == by_votes[0][1]][:5]
    if ctx.caller is not None and (chosen := _discriminate(ctx, top)) is not None:
        store.event("discriminator", chosen=chosen.id, among=[n.id for n in top])
        return Choice(chosen, "discriminator", votes, [n.id for n in top])
    return Choice(top[0], "best-value", votes, [n.id for n in top])


def choose_best(ctx: SearchContext, store: RunStore) -> Node | None:
    return choose(ctx, store).node


def _discriminate(ctx: SearchContext, nodes: list[Node]) -> Node | None:
    assert ctx.caller is not None
    shown = [{"diff": n.diff, "evidence": describe(n)} for n in nodes]
    prompt = render("discriminator", candidates=shown)
    try:
        reply = ctx.caller("discriminator", shared_prefix(ctx) + [Message("user", prompt)]).text
    except (ModelError, BudgetExceeded):
        return None
    m = re.search(r"\d+", reply)
    idx = int(m.group(0)) - 1 if m else -1
    return nodes[idx] if 0 <= idx < len(nodes) else None


def final_patch(ctx: SearchContext, best: Node | None, keep_tests: bool) -> str:
    """The patch to hand over: the best node's diff; with `keep_tests`, plus its accepted reproductions."""
    if best is None:
        return ""
    repros = passed_reproductions(ctx, best) if keep_tests else []
    if not repros:
        return best.diff
    with ctx.workspace.worktree() as wt:
        if ctx.workspace.apply_diff(wt, best.diff) is not None:
            return best.diff
        for r in repros:
            (wt / r.path).write_text(r.code)
        stage(wt, [r.path for r in repros])
        return ctx.workspace.diff(wt)


def tree_dict(store: RunStore, best: Node | None = None, choice: Choice | None = None) -> dict[str, Any]:
    return {
        "format": TREE_FORMAT,
        "run_id": store.get_meta("run_id"),
        "task": store.get_meta("task"),
        "best": best.id if best else None,
        "choice": choice.to_dict() if choice else None,
        "nodes": [n.to_dict() for n in store.nodes()],
    }


def base_tests_dict(store: RunStore) -> dict[str, int] | None:
    base = base_tests(store)
    return {"passed": base.passed, "total": base.total} if base else None


def write_outputs(
    run_dir: Path,
    store: RunStore,
    task: Task,
    config: RunConfig,
    status: str,
    code: int,
    best: Node | None,
    budget: Budget,
    reason: str = "",
    choice: Choice | None = None,
    patch: str | None = None,
) -> dict[str, Any]:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "patch.diff").write_text(patch if patch is not None else best.diff if best else "")
    (run_dir / "tree.json").write_text(json.dumps(tree_dict(store, best, choice), indent=1))
    nodes = store.nodes()
    spent = budget.snapshot()
    summary = {
        "format": SUMMARY_FORMAT,
        "run_id": store.get_meta("run_id"),
        "task_id": task.task_id,
        "exit_status": status,
        "exit_code": code,
        "best_node": best.id if best else None,
        "best_verified": bool(best and best.verified),
        "verified_by": best.verified_by if best else "",
        "choice": choice.to_dict() if choice else None,
        "reproductions": {
            "accepted": sum(bool(n.evidence.get("accepted")) for n in nodes if n.kind is NodeKind.REPRODUCE),
            "unusable": sum(not n.evidence.get("accepted") for n in nodes if n.kind is NodeKind.REPRODUCE),
        },
        "critic_calibration": calibration_rows(nodes),
        "best_value": best.value if best else None,
        "reason": reason,  # why there is no patch, when there is none
        "base_tests": base_tests_dict(store),
        "model": config.model,
        "search": config.search,
        "tier": config.tier,
        "label": config.label,
        "nodes": {k.value: sum(1 for n in nodes if n.kind is k) for k in NodeKind},
        "usage": {
            "cost": spent["cost"],
            "turns": spent["turns"],
            "tokens": spent["tokens"],
            "model_calls": spent["turns"],
            "test_runs": spent["test_runs"],
            "elapsed": round(spent["elapsed"], 3),
            "by_role": spent["by_role"],
        },
        "limits": config.to_dict()["limits"],
        # Which limit stopped the run, what was used and what the refused call needed (issue 14).
        "stopped_by": spent.get("stopped_by"),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def calibration_rows(nodes: list[Node]) -> list[dict[str, Any]]:
    """Each judged attempt's critic value beside its execution outcome (`treefix swebench report`
    sets them against the graded verdict)."""
    rows = []
    for n in nodes:
        if n.kind not in (NodeKind.CODE, NodeKind.REPAIR) or n.judgement is None or n.judgement.failed:
            continue
        rows.append({
            "node": n.id, "critic": round(n.judgement.value, 4), "exec_score": round(n.exec_score, 4),
            "verified_by": n.verified_by, "regressions": int(n.evidence.get("regression_count", 0)),
        })  # fmt: skip
    return rows
