"""The batch's live display: overall progress with total $, a line per worker, exit-status tallies."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


@dataclass
class WorkerLine:
    instance_id: str = ""
    phase: str = ""
    turns: int = 0
    nodes: int = 0
    cost: float = 0.0
    last: str = ""
    started: float = field(default_factory=time.monotonic)


class BatchDisplay:
    def __init__(self, console: Console, total: int, workers: int, done_cost: float = 0.0, done: int = 0):
        self.console = console
        self.lines = [WorkerLine() for _ in range(workers)]
        self.tallies: Counter[str] = Counter()
        self.done_cost = done_cost  # settled spend of finished instances, this run and earlier ones
        self.note = ""
        self.progress = Progress(
            TextColumn("[bold]instances"), BarColumn(), MofNCompleteColumn(),
            TextColumn("[green]${task.fields[cost]:.4f}"), TimeElapsedColumn(), console=console,
        )  # fmt: skip
        self.task = self.progress.add_task("batch", total=total, completed=done, cost=done_cost)
        self._live = Live(self._render(), console=console, refresh_per_second=4, transient=False)

    def __enter__(self) -> BatchDisplay:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.refresh()
        self._live.__exit__(*exc)

    def started(self, slot: int, iid: str) -> None:
        self.lines[slot] = WorkerLine(iid, "starting")
        self.refresh()

    def event(self, slot: int, kind: str, data: dict[str, Any]) -> None:
        line = self.lines[slot]
        if kind == "phase":
            line.phase = data.get("phase", "")
        elif kind == "call":
            line.turns, line.cost = int(data.get("turns", 0)), float(data.get("total_cost", 0.0))
        elif kind == "node":
            line.nodes += 1
            line.last = f"{data.get('kind', '')}: {data.get('title', '')}"
        elif kind == "scored":
            line.last = "verified" if data.get("verified") else f"value {float(data.get('value') or 0):.2f}"
        self.refresh()

    def finished(self, slot: int, status: str, cost: float) -> None:
        self.tallies[status] += 1
        self.done_cost += cost
        self.lines[slot] = WorkerLine()
        self.progress.advance(self.task)
        self.refresh()

    def add_tally(self, status: str, n: int = 1) -> None:
        self.tallies[status] += n

    def refresh(self) -> None:
        running = sum(ln.cost for ln in self.lines if ln.instance_id)
        self.progress.update(self.task, cost=self.done_cost + running)
        self._live.update(self._render())

    def _render(self) -> Group:
        table = Table(box=None, pad_edge=False, show_header=True, header_style="dim")
        for col in ("worker", "instance", "phase", "step", "nodes", "$", "last"):
            table.add_column(col, no_wrap=True, overflow="ellipsis", max_width=60 if col == "last" else None)
        for i, ln in enumerate(self.lines):
            if ln.instance_id:
                table.add_row(
                    str(i), escape(ln.instance_id), ln.phase, str(ln.turns), str(ln.nodes), f"{ln.cost:.4f}",
                    escape(ln.last[:60]),
                )  # fmt: skip
            else:
                table.add_row(str(i), "[dim]idle[/]", "", "", "", "", "")
        tallies = "  ".join(f"{escape(k)}: {v}" for k, v in sorted(self.tallies.items())) or "no results yet"
        parts: list[Any] = [self.progress, table, f"[dim]exit statuses:[/] {tallies}"]
        if self.note:
            parts.append(f"[yellow]{escape(self.note)}[/]")
        return Group(*parts)
