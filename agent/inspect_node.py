"""`treefix inspect RUN --node ID`: one node in full, for the terminal: plan, diff, test outcome and
the tail of its output, the critic's value and reason, evidence, cost and children."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from treefix.agent.errors import ConfigError
from treefix.agent.tree import Node

OUTPUT_LINES = 40  # the tail of the test output shown


def find_node(tree: dict[str, Any], ref: str) -> Node:
    """The node whose id starts with `ref` (the 8 characters `inspect` prints are enough)."""
    ref = ref.strip().lstrip("#")
    found = [d for d in tree["nodes"] if d["id"].startswith(ref)] if ref else []
    if len(found) == 1:
        return Node.from_dict(found[0])
    if not found:
        raise ConfigError(f"no node {ref!r} in run {tree.get('run_id')}: `treefix inspect RUN` lists the node ids")
    raise ConfigError(f"{ref!r} matches {len(found)} nodes: give more of the id")


def node_detail(tree: dict[str, Any], ref: str) -> RenderableType:
    n = find_node(tree, ref)
    parts: list[RenderableType] = []
    head = f"[bold]{n.kind.value} {n.id}[/]" + ("  [bold green]★ chosen[/]" if n.id == tree.get("best") else "")
    parts.append(Text.from_markup(head))
    if n.title:
        parts.append(Text(n.title))
    facts = Table.grid(padding=(0, 2))
    rows = [
        ("status", n.status.value),
        ("parent", n.parent[:8] if n.parent else ""),
        ("value", "not scored" if n.value is None else f"{n.value:.3f}"),
        ("visits", str(n.visits)),
        ("mean value", f"{n.mean:.3f}" if n.visits else ""),
        ("verified by", n.verified_by),
        ("origin", n.origin),
        ("cost", f"${n.usage['cost']:.4f}" if n.usage.get("cost") else ""),
        ("tokens", f"{int(n.usage['tokens']):,}" if n.usage.get("tokens") else ""),
        ("error", n.error),
    ]
    for k, v in rows:
        if v:
            facts.add_row(Text(k, style="dim"), Text(v))
    parts.append(facts)
    if n.content:
        parts += [_heading("plan" if n.kind.value == "plan" else "edit"), Text(n.content)]
    parts.append(_heading("diff"))
    parts.append(Syntax(n.diff, "diff", theme="ansi_dark", word_wrap=True) if n.diff else Text("no diff", style="dim"))
    if n.exec is not None:
        x = n.exec
        parts.append(_heading("tests"))
        if not x.applied or not x.compiled:
            outcome = "[red]the edit did not apply[/]" if not x.applied else "[red]does not compile[/]"
        else:
            outcome = f"[green]{x.passed} passed[/], [red]{x.failed} failed, {x.errors} errors[/], {x.skipped} skipped"
        extra = f"  exit code {x.exit_code}" if x.exit_code is not None else ""
        extra += "  [red]timed out[/]" if x.timed_out else ""
        parts.append(Text.from_markup(outcome + extra))
        if x.message:
            parts.append(Text(x.message))
        failing = [f"{s}  {t}" for t, s in x.tests.items() if s not in ("passed", "skipped")]
        if failing:
            parts.append(Text("\n".join(failing[:30]), style="red"))
        if x.output.strip():
            tail = x.output.rstrip("\n").splitlines()[-OUTPUT_LINES:]
            parts += [_heading(f"test output (last {len(tail)} lines)"), Text("\n".join(tail))]
    if n.judgement is not None:
        j = n.judgement
        parts.append(_heading("critic"))
        line = f"value {j.value:.3f}" + ("  [yellow](the call failed: the value is the test score alone)[/]" if j.failed else "")
        parts.append(Text.from_markup(line))
        if j.rationale:
            parts.append(Text(f"reason: {j.rationale}"))
        if j.advice:
            parts.append(Text(f"advice: {j.advice}"))
    if n.evidence:
        parts += [_heading("evidence"), Text(json.dumps(n.evidence, indent=2, default=str))]
    children = [Node.from_dict(d) for d in tree["nodes"] if d.get("parent") == n.id]
    if children:
        parts.append(_heading("children"))
        for c in children:
            value = "–" if c.value is None else f"{c.value:.2f}"
            parts.append(Text(f"{c.kind.value:<7} {c.id[:8]}  value {value}  visits {c.visits}  {c.title[:70]}"))
    return Group(*parts)


def _heading(text: str) -> Text:
    return Text.from_markup(f"\n[bold underline]{escape(text)}[/]")
