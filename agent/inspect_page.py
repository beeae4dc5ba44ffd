"""`treefix inspect RUN --html FILE`: the tree as one self-contained page (inline CSS and JS, the
run's data embedded as JSON; nothing is fetched, so it opens from a file:// URL)."""

from __future__ import annotations

import html
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from treefix.agent.errors import ConfigError
from treefix.agent.tree import Node

OUTPUT_TAIL = 6000  # characters of test output per node: the page stays small for big trees


def page_data(tree: dict[str, Any], summary: dict[str, Any], legend: str) -> dict[str, Any]:
    nodes = []
    for d in tree["nodes"]:
        n = Node.from_dict(d)
        item = {**d, "verified": n.verified, "verified_by": n.verified_by}
        if d.get("exec"):
            item["exec"] = {**d["exec"], "output": d["exec"].get("output", "")[-OUTPUT_TAIL:]}
        nodes.append(item)
    return {
        "run_id": tree.get("run_id"),
        "best": tree.get("best"),
        "summary": run_line(tree, summary),
        "legend": legend,
        "nodes": nodes,
    }


def run_line(tree: dict[str, Any], summary: dict[str, Any]) -> str:
    """Status, the chosen node and the rule that chose it, in one line."""
    if not summary:
        return f"unfinished: {len(tree['nodes'])} nodes so far (`treefix resume` continues it)"
    parts = [str(summary.get("exit_status", "?")), f"{len(tree['nodes'])} nodes"]
    cost = (summary.get("usage") or {}).get("cost")
    if cost:
        parts.append(f"${cost:.4f}")
    choice = tree.get("choice") or {}
    if tree.get("best"):
        parts.append(f"chosen {tree['best'][:8]} by rule {choice.get('rule', '?')}")
    else:
        parts.append("no patch: " + (summary.get("reason") or "no candidate"))
    return "  ·  ".join(parts)


def render(tree: dict[str, Any], summary: dict[str, Any], legend: str) -> str:
    template = files("treefix.agent").joinpath("data/inspect.html").read_text(encoding="utf-8")
    data = json.dumps(page_data(tree, summary, legend), ensure_ascii=False)
    data = data.replace("</", "<\\/")  # a diff holding "</script>" cannot end the data block
    title = html.escape(str(tree.get("run_id") or ""))
    return template.replace("__TITLE__", title).replace("__DATA__", data)


def write_page(tree: dict[str, Any], summary: dict[str, Any], legend: str, path: Path) -> None:
    try:
        path.write_text(render(tree, summary, legend), encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot write {path}: {e.strerror or e}") from None
