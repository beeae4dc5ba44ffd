"""The final choice and the run artefacts: patch.diff, tree.json, summary.json."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from treefix.agent.budget import Budget, BudgetExceeded
from treefix.agent.models.base import Message, ModelError
from treefix.agent.prefix import shared_prefix
from treefix.agent.store import RunStore
from treefix.agent.task import Task
from treefix.agent.tree import Node, NodeKind
from treefix.prompts import render

if TYPE_CHECKING:
    from treefix.agent.config import RunConfig
    from treefix.agent.policies.base import SearchContext

TREE_FORMAT = "treefix.tree/1"
SUMMARY_FORMAT = "treefix.summary/1"


def normalised(diff: str) -> str:
    """A diff without index lines and hunk offsets, so equal edits compare equal."""
    lines = [ln.rstrip() for ln in diff.splitlines() if not ln.startswith(("index ", "@@"))]
    return "\n".join(lines)


def candidates(nodes: list[Node]) -> list[Node]:
    """Attempts worth submitting, best first: verified, then value, then the smaller diff."""
    attempts = [
        n
        for n in nodes
        if n.kind in (NodeKind.CODE, NodeKind.REPAIR)
        and n.diff
        and (n.exec is None or (n.exec.applied and n.exec.compiled))
    ]
    return sorted(attempts, key=lambda n: (not n.verified, -(n.value or 0.0), len(n.diff), n.seq))


def choose_best(ctx: SearchContext, store: RunStore) -> Node | None:
    focus = store.focus()  # after a follow-up, the answer lies below the node it continued from
    ranked = candidates(store.subtree(focus.id) if focus else store.nodes())
    if not ranked:
        return None
    verified, seen = [], set()
    for n in ranked:
        if n.verified and (key := normalised(n.diff)) not in seen:
            seen.add(key)
            verified.append(n)
    if len(verified) > 1 and ctx.caller is not None:
        chosen = _discriminate(ctx, verified[:5])
        if chosen is not None:
            store.event("discriminator", chosen=chosen.id, among=[n.id for n in verified[:5]])
            return chosen
    return ranked[0]


def _discriminate(ctx: SearchContext, nodes: list[Node]) -> Node | None:
    assert ctx.caller is not None
    prompt = render("discriminator", candidates=[n.diff for n in nodes])
    try:
        reply = ctx.caller("discriminator", shared_prefix(ctx) + [Message("user", prompt)]).text
    except (ModelError, BudgetExceeded):
        return None
    m = re.search(r"\d+", reply)
    idx = int(m.group(0)) - 1 if m else -1
    return nodes[idx] if 0 <= idx < len(nodes) else None


def tree_dict(store: RunStore, best: Node | None = None) -> dict[str, Any]:
    return {
        "format": TREE_FORMAT,
        "run_id": store.get_meta("run_id"),
        "task": store.get_meta("task"),
        "best": best.id if best else None,
        "nodes": [n.to_dict() for n in store.nodes()],
    }


def write_outputs(
    run_dir: Path,
    store: RunStore,
    task: Task,
    config: RunConfig,
    status: str,
    code: int,
    best: Node | None,
    budget: Budget,
) -> dict[str, Any]:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "patch.diff").write_text(best.diff if best else "")
    (run_dir / "tree.json").write_text(json.dumps(tree_dict(store, best), indent=1))
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
        "best_value": best.value if best else None,
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
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
