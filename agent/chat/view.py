"""The chat's picture of a tree: one line per node, cold branches collapsed, spend against each limit.

The same lines serve the live view (redrawn while a search runs) and `/tree`. A tree of any size
fits the lines it is given: the paths to the best, the newest and the focus node are "hot" and
always open; other branches show their best few children and fold the rest into one line.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.text import Text

from treefix.agent.budget import Limits
from treefix.agent.outputs import candidates
from treefix.agent.tree import Node

KIND_STYLE = {"root": "bold", "plan": "cyan", "code": "magenta", "repair": "yellow"}
SHOWN_CHILDREN = 3  # children shown under a cold node's parent before folding the rest


@dataclass
class Snapshot:
    """What a run's store holds right now, read with a connection of its own (the search writes)."""

    nodes: list[Node] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    turns: int = 0

    @classmethod
    def read(cls, run_dir: Path) -> Snapshot:
        path = run_dir / "run.sqlite"
        if not path.is_file():
            return cls()
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            nodes = [Node.from_dict(json.loads(d)) for (d,) in con.execute("SELECT data FROM nodes ORDER BY seq")]
            meta = {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM meta WHERE key NOT LIKE 'expansion/%'")}
            snap = cls(nodes, meta)
            for (data,) in con.execute("SELECT data FROM events WHERE kind='call'"):
                e = json.loads(data)
                snap.tokens_in += e.get("input_tokens", 0)
                snap.tokens_out += e.get("output_tokens", 0)
                snap.cost += e.get("cost", 0.0)
                snap.turns += 1
            return snap
        except sqlite3.OperationalError:  # the store is being created
            return cls()
        finally:
            con.close()

    def find(self, prefix: str) -> Node | None:
        found = [n for n in self.nodes if n.id.startswith(prefix)]
        return found[0] if len(found) == 1 else None

    @property
    def best(self) -> str | None:
        """The chosen candidate (`chat/chosen`), else the best below the focus, as the run ranks them."""
        if (chosen := self.meta.get("chat/chosen")) and any(n.id == chosen for n in self.nodes):
            return chosen
        focus = self.meta.get("focus")
        below = set(_below(focus, self.nodes)) if focus else None
        ranked = candidates([n for n in self.nodes if below is None or n.id in below])
        return ranked[0].id if ranked else None


def _below(node_id: str, nodes: list[Node]) -> list[str]:
    out = [node_id]
    for n in nodes:  # creation order: a parent comes before its children
        if n.parent in out:
            out.append(n.id)
    return out


def node_text(n: Node, best: bool, indent: int) -> Text:
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append("  " * indent)
    line.append("★ " if best else "  ", style="bold green")
    line.append(f"{n.kind.value:<6}", style=KIND_STYLE.get(n.kind.value, ""))
    line.append(f" {n.id[:8]}", style="dim")
    line.append(f" v{n.value:.2f}" if n.value is not None else "  v-  ")
    line.append(f" n{n.visits:<2}")
    if n.exec is not None and (not n.exec.applied or not n.exec.compiled):
        line.append(" no-apply" if not n.exec.applied else " no-build", style="red")
    elif n.exec is not None:
        line.append(f" {n.exec.passed}✓", style="green")
        line.append(f"{n.exec.failed + n.exec.errors}✗", style="red")
    elif n.status.value == "new" and n.kind.value != "root":
        line.append(" testing", style="dim")
    cost = n.usage.get("cost", 0.0)
    if cost:
        line.append(f" ${cost:.3f}")
    if n.error:
        line.append(f" {n.error}", style="red")
    else:
        line.append(f" {n.title}")
    return line


def tree_lines(snap: Snapshot, rows: int) -> list[Text]:
    """At most `rows` lines for the tree in `snap`."""
    if not snap.nodes:
        return [Text("(no nodes yet)", style="dim")]
    by_id = {n.id: n for n in snap.nodes}
    children: dict[str | None, list[Node]] = {}
    for n in snap.nodes:
        children.setdefault(n.parent, []).append(n)
    best = snap.best
    hot: set[str] = set()
    for start in (best, snap.nodes[-1].id, snap.meta.get("focus")):
        while start in by_id:
            hot.add(start)
            start = by_id[start].parent
    small = len(snap.nodes) <= rows
    lines: list[tuple[Text, bool]] = []  # (line, on a hot path)

    def walk(node: Node, depth: int) -> None:
        lines.append((node_text(node, node.id == best, min(depth, 10)), node.id in hot))
        kids = children.get(node.id, [])
        if not kids:
            return
        pad = "  " * min(depth + 1, 10)
        if not small and node.id not in hot:
            lines.append((Text(f"{pad}  … {_count(node.id, children)} below", style="dim"), False))
            return
        ranked = sorted(kids, key=lambda k: (k.id not in hot, -(k.value or 0.0), k.seq))
        shown = ranked if small else [k for i, k in enumerate(ranked) if k.id in hot or i < SHOWN_CHILDREN]
        for k in sorted(shown, key=lambda k: k.seq):
            walk(k, depth + 1)
        if len(shown) < len(kids):
            rest = [k for k in kids if k not in shown]
            top = max((k.value or 0.0) for k in rest)
            lines.append((Text(f"{pad}  … {len(rest)} more, best v{top:.2f}", style="dim"), False))

    for root in children.get(None, []):
        walk(root, 0)
    return _fit(lines, rows)


def _fit(lines: list[tuple[Text, bool]], rows: int) -> list[Text]:
    """Hot lines always; as many cold lines as fit, from the top; each gap folded into one line."""
    keep_cold = sum(1 for _, is_hot in lines if not is_hot)
    while True:
        out: list[Text] = []
        cold_seen, folded = 0, 0
        for text, is_hot in lines:
            if not is_hot:
                cold_seen += 1
                if cold_seen > keep_cold:
                    folded += 1
                    continue
            if folded:
                out.append(Text(f"  … {folded} lines folded (/tree all shows them)", style="dim"))
                folded = 0
            out.append(text)
        if folded:
            out.append(Text(f"  … {folded} lines folded (/tree all shows them)", style="dim"))
        if len(out) <= rows or keep_cold == 0:
            return out[:rows]
        keep_cold -= 1


def _count(node_id: str, children: dict[str | None, list[Node]]) -> int:
    return sum(1 + _count(k.id, children) for k in children.get(node_id, []))


def budget_text(snap: Snapshot, limits: Limits, elapsed: float) -> Text:
    def of(used: str, limit: float, fmt: str = "{:g}") -> str:
        return f"{used}/{fmt.format(limit)}" if limit else f"{used}/-"

    nodes = sum(1 for n in snap.nodes if n.parent is not None)
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("budget ", style="bold")
    text.append(f"nodes {of(str(nodes), limits.max_nodes)}  turns {of(str(snap.turns), limits.max_turns)}  ")
    text.append(f"tokens {of(str(snap.tokens_in + snap.tokens_out), limits.max_tokens)}  ")
    text.append(f"${of(f'{snap.cost:.4f}', limits.cost_limit, '{:.2f}')}  ")
    text.append(f"time {of(f'{elapsed:.0f}s', limits.time_limit, '{:.0f}s')}")
    return text


def best_text(snap: Snapshot) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    best = snap.find(snap.best) if snap.best else None
    text.append("best   ", style="bold")
    if best is None:
        text.append("none yet", style="dim")
        return text
    text.append(f"{best.id[:8]} {best.kind.value}")
    if best.exec is not None:
        text.append(f"  tests {best.exec.passed}✓ {best.exec.failed + best.exec.errors}✗")
    text.append("  verified" if best.verified else f"  value {best.value or 0:.2f}", style="green" if best.verified else "yellow")
    text.append(f"  {best.title}")
    return text


class LiveView:
    """A rich renderable that reads the run's store on each refresh; `sink` takes the run's events."""

    def __init__(self, request: str, limits: Limits):
        self.request = request.strip().splitlines()[0] if request.strip() else ""
        self.limits = limits
        self.run_dir: Path | None = None
        self.status = "searching"
        self.started = time.monotonic()

    def sink(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "started":
            self.run_dir = Path(data["run_dir"])
        elif kind == "finished":
            self.status = data.get("status") or "finished"

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        snap = Snapshot.read(self.run_dir) if self.run_dir else Snapshot()
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(f"treefix · {self.status} · ", style="bold")
        head.append(self.request)
        rows = max((options.height or console.height) - 5, 3)
        yield Group(
            head,
            budget_text(snap, self.limits, time.monotonic() - self.started),
            best_text(snap),
            Text("─" * min(options.max_width, 80), style="dim"),
            *tree_lines(snap, rows),
        )
