"""The chat's live view on a real run store: a 100-node tree stays readable on 80x24."""

from __future__ import annotations

import io
import random
from pathlib import Path

from rich.console import Console

from treefix.agent.budget import Limits
from treefix.agent.chat.view import LiveView
from treefix.agent.store import RunStore
from treefix.agent.tree import CHILD_KIND, ExecResult, Node, NodeKind, NodeStatus


def grow(run_dir: Path, count: int, seed: int = 7) -> tuple[str, str]:
    """A store with a root and `count` scored nodes; (id of the one verified node, id of the newest)."""
    rng = random.Random(seed)
    store = RunStore(run_dir / "run.sqlite")
    root = store.add(Node(NodeKind.ROOT, None, 0, status=NodeStatus.DONE, title="the CSV export drops the last row"))
    nodes = [root]
    for i in range(count):
        parent = rng.choice(nodes[: max(3, len(nodes))])
        kind = CHILD_KIND[parent.kind]
        n = Node(kind, parent.id, parent.depth + 1, status=NodeStatus.DONE, title=f"attempt {i} at export.py:{i}")
        n.value, n.visits = rng.random() * 0.8, rng.randint(1, 5)
        if kind is not NodeKind.PLAN:
            n.diff = f"--- a/export.py\n+++ b/export.py\n@@ -1 +1 @@\n-x{i}\n+y{i}\n"
            n.exec = ExecResult(passed=rng.randint(0, 3), failed=rng.randint(1, 2))
        nodes.append(store.add(n))
    best = next(n for n in reversed(nodes) if n.kind is NodeKind.CODE)
    best.exec, best.value = ExecResult(passed=4, failed=0), 1.0
    store.update(best)
    store.set_meta("run_id", run_dir.name)
    store.close()
    return best.id, nodes[-1].id


def render(view: LiveView, width: int = 80, height: int = 24) -> list[str]:
    console = Console(file=io.StringIO(), width=width, height=height, record=True, color_system=None)
    console.print(view)
    return console.export_text().rstrip("\n").splitlines()


def test_a_100_node_tree_fits_80x24_and_keeps_the_best_and_newest(tmp_path: Path) -> None:
    best, newest = grow(tmp_path / "run", 100)
    view = LiveView("the CSV export drops the last row", Limits(max_nodes=120, cost_limit=3.0))
    view.sink("started", {"run_dir": str(tmp_path / "run")})
    lines = render(view)
    assert len(lines) <= 23 and all(len(line) <= 80 for line in lines)
    text = "\n".join(lines)
    assert f"★ code   {best[:8]}" in text, "the best node's path is always open"
    assert newest[:8] in text, "so is the newest node's"
    assert "more, best v" in text or "below" in text, "cold branches fold into one line"
    assert "budget nodes 100/120" in text and "$0.0000/3.00" in text
    assert f"best   {best[:8]} code  tests 4✓ 0✗  verified" in text


def test_a_small_tree_is_shown_whole(tmp_path: Path) -> None:
    grow(tmp_path / "run", 6)
    view = LiveView("issue", Limits())
    view.sink("started", {"run_dir": str(tmp_path / "run")})
    lines = render(view)
    assert sum(1 for line in lines if " v" in line and " n" in line) == 7  # root and six nodes
    assert not any("more, best" in line for line in lines)
