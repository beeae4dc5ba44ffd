"""Showing runs in the terminal: live progress, the final outcome, the tree, the list of runs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from treefix.agent.errors import ConfigError
from treefix.agent.outputs import tree_dict
from treefix.agent.store import RunStore
from treefix.agent.tree import Node

KIND_STYLE = {"root": "bold", "plan": "cyan", "code": "magenta", "repair": "yellow", "reproduce": "blue"}


def load_tree(run_dir: Path) -> dict[str, Any]:
    """tree.json when the run finished; otherwise the live store (a killed run still shows its nodes)."""
    path = run_dir / "tree.json"
    if path.is_file():
        try:
            tree = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: not a treefix tree ({e})") from None
        if not isinstance(tree, dict) or not isinstance(tree.get("nodes"), list):
            raise ConfigError(f"{path}: not a treefix tree (no node list)")
        return tree
    if not (run_dir / "run.sqlite").is_file():
        raise ConfigError(f"no run found at {run_dir}")
    store = RunStore(run_dir / "run.sqlite")
    try:
        return tree_dict(store)
    finally:
        store.close()


def node_line(n: Node, best: bool = False) -> str:
    parts = [f"[{KIND_STYLE.get(n.kind.value, '')}]{n.kind.value}[/] {n.id[:8]}"]
    if n.title:
        parts.append(escape(n.title[:70]))
    if n.value is not None:
        parts.append(f"value {n.value:.2f}")
    parts.append(f"visits {n.visits}")
    if n.exec is not None:
        if not n.exec.applied or not n.exec.compiled:
            parts.append("[red]not applied[/]" if not n.exec.applied else "[red]does not compile[/]")
        else:
            parts.append(f"tests [green]{n.exec.passed}✓[/] [red]{n.exec.failed + n.exec.errors}✗[/]")
    cost = n.usage.get("cost", 0.0)
    if cost:
        parts.append(f"${cost:.4f}")
    if n.error:
        parts.append(f"[red]{escape(n.error[:60])}[/]")
    line = "  ".join(parts)
    return f"[bold green]★[/] {line}" if best else line


def render_tree(tree: dict[str, Any]) -> Tree:
    nodes = [Node.from_dict(d) for d in tree["nodes"]]
    by_parent: dict[str | None, list[Node]] = {}
    for n in nodes:
        by_parent.setdefault(n.parent, []).append(n)
    roots = by_parent.get(None, [])
    top = Tree(f"run {tree.get('run_id')}  format {tree.get('format')}")

    def add(branch: Tree, node: Node) -> None:
        sub = branch.add(node_line(node, node.id == tree.get("best")))
        for child in by_parent.get(node.id, []):
            add(sub, child)

    for r in roots:
        add(top, r)
    return top


LEGEND = (
    "value: for a plan, how promising it looks (offline: how suspicious its line is, relative to the top "
    "line); for code and repair nodes, the share of tests passing mixed with the critic's rating "
    "(offline: the share of the base's failing tests it fixes, net of what it breaks; 0 when it helps "
    "nothing). visits: scored nodes at or below it; the search favours high mean value and few visits. "
    "tests: passed ✓, failed or errors ✗. ★ the chosen patch."
)


def runs_table(runs_dir: Path) -> Table:
    table = Table()
    for name, width in (("run", 22), ("status", 10), ("nodes", 5), ("cost", 7)):
        table.add_column(name, no_wrap=True, min_width=width)
    table.add_column("issue", overflow="ellipsis", no_wrap=True, min_width=10, ratio=1)
    for d in sorted(runs_dir.glob("*/"), reverse=True) if runs_dir.is_dir() else []:
        summary = json.loads((d / "summary.json").read_text()) if (d / "summary.json").is_file() else {}
        tree = load_tree(d) if (d / "run.sqlite").is_file() else {}
        issue = (tree.get("task") or {}).get("problem_statement", "").strip().splitlines()
        table.add_row(
            d.name,
            summary.get("exit_status", "[yellow]unfinished[/]"),
            str(len(tree.get("nodes", []))),
            f"${summary.get('usage', {}).get('cost', 0.0):.4f}",
            (issue[0][:50] if issue else ""),
        )
    return table


def progress_printer(console: Console):  # type: ignore[no-untyped-def]
    """An on_event sink printing one line per node: node k of N, elapsed time, model calls and $ so far.
    A resumed run goes on counting from the nodes and time it already had. While model calls are out,
    a spinner shows the seconds waited (terminals only)."""
    state: dict[str, Any] = {"cost": 0.0, "turns": 0, "nodes": 0, "of": 0, "since": time.monotonic(), "before": 0.0}
    waiting = _Waiting(console)

    def sink(kind: str, data: dict[str, Any]) -> None:
        if kind == "started":
            state.update(nodes=data.get("nodes", 0), of=data.get("max_nodes", 0), before=data.get("elapsed", 0.0))
            state["since"] = time.monotonic()
            verb = "resumed" if data.get("resumed") else "started"
            console.print(f"[dim]run {data['run_id']} {verb}: {escape(str(data['run_dir']))}[/]", highlight=False)
            if data.get("restored"):
                names = ", ".join(data["restored"])
                console.print(f"[dim]tests run with the environment the run started with: {names}[/]", highlight=False)
        elif kind == "call_start":
            waiting.start(data["role"])
        elif kind == "call":
            waiting.stop()
            state["cost"], state["turns"] = data["total_cost"], data["turns"]
        elif kind == "node":
            state["nodes"] += 1
            k = f"#{state['nodes']}" + (f"/{state['of']}" if state["of"] else "")
            elapsed = state["before"] + time.monotonic() - state["since"]
            console.print(
                f"[dim]{k:<7} {elapsed:6.1f}s  step {state['turns']:<3} ${state['cost']:.4f}[/]  "
                f"[{KIND_STYLE.get(data['kind'], '')}]{data['kind']:<6}[/] {escape(data['title'][:70])}",
                highlight=False,
            )
        elif kind == "scored":
            mark = "[bold green]verified[/]" if data["verified"] else f"value {data['value']:.2f}"
            console.print(f"        {data['node'][:8]} → {mark}", highlight=False)

    return sink


LIMIT_FLAG = {"nodes": "--max-nodes", "time": "--time-limit", "cost": "--cost-limit", "turns": "--max-turns",
              "tokens": "--max-tokens"}  # fmt: skip


def next_step(outcome: Any) -> str:
    """What to try after a run that offers no verified patch."""
    status, model = outcome.exit_status, outcome.summary.get("model", "")
    if status.startswith("limit:"):
        name = status.split(":", 1)[1]
        flag = LIMIT_FLAG.get(name, "the limit")
        return f"the {name} limit was reached: run again with a higher {flag}"
    if status == "model_error":
        return f"the model kept failing: check its name, key and server, then `treefix resume {outcome.run_id}`"
    if model == "offline":
        return "the offline policy only tries small edits at suspicious lines: try a model, e.g. -m anthropic/NAME"
    return "try more nodes (--max-nodes), a deeper tree (--max-depth) or a stronger model (-m)"


class _Waiting:
    """A spinner with the seconds waited while model calls are out (terminals only)."""

    def __init__(self, console: Console) -> None:
        import threading

        self.console = console
        self.open = 0
        self.started = 0.0
        self.role = ""
        self.status: Any = None
        self.lock = threading.Lock()
        self.ticker: Any = None

    def start(self, role: str) -> None:
        import threading
        import time

        if not self.console.is_terminal:
            return
        with self.lock:
            self.open += 1
            self.role = role
            if self.status is None:
                self.started = time.monotonic()
                self.status = self.console.status(self._text())
                self.status.start()
                self.ticker = threading.Thread(target=self._tick, daemon=True)
                self.ticker.start()

    def _text(self) -> str:
        import time

        many = f" ({self.open} calls)" if self.open > 1 else ""
        return f"waiting for the model: {self.role}{many}, {time.monotonic() - self.started:.0f}s"

    def _tick(self) -> None:
        import time

        while True:
            time.sleep(1)
            with self.lock:
                if self.status is None:
                    return
                self.status.update(self._text())

    def stop(self) -> None:
        with self.lock:
            if self.status is None:
                return
            self.open = max(self.open - 1, 0)
            if self.open == 0:
                self.status.stop()
                self.status = None


def print_outcome(console: Console, outcome: Any) -> None:
    s = outcome.summary
    u = s["usage"]
    colour = "green" if outcome.exit_code == 0 else "yellow"
    best = f"best {outcome.best_node[:8]}" if outcome.best_node else "no candidate"
    console.print(
        f"[{colour}]{outcome.exit_status}[/]  {best}  nodes {sum(s['nodes'].values())}  "
        f"model calls {u['model_calls']}  tokens {u['tokens']}  cost ${u['cost']:.4f}  {u['elapsed']:.1f}s"
    )
    stop = s.get("stopped_by")
    if stop:
        console.print(f"[yellow]stopped[/]: {escape(stop['message'])}")
    console.print(f"run {outcome.run_id}: {outcome.run_dir}", highlight=False)
    if outcome.patch:
        console.print(f"patch: {outcome.run_dir / 'patch.diff'}", highlight=False)
    else:
        attempts = s["nodes"].get("code", 0) + s["nodes"].get("repair", 0)
        why = outcome.reason or (
            "no attempt made an edit that applies and compiles" if attempts else "the run ended before any attempt"
        )
        console.print(f"[yellow]no patch[/]: {escape(why)}")
    if outcome.exit_code != 0:
        console.print(f"[dim]next:[/] {escape(next_step(outcome))}")
