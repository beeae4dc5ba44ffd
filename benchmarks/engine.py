"""Engine overhead per node, and bytes written to the run store per iteration, up to 500 nodes.

    python -m benchmarks.engine [--nodes 500] [--workers 1]

Runs the real graph (LangGraph with its SQLite checkpointer), the real store and selection on a
real git repository, with a policy and critic that cost nothing. The time spent applying patches
in worktrees and evaluating (git, tests) is measured apart and left out of the engine's overhead,
as model time would be; it is printed beside it. Bytes written are the bytes this process hands
to write(2) during an iteration (the store's and the checkpointer's WAL frames), from /proc.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import treefix.agent.expand
import treefix.agent.graph
from treefix.agent.budget import Budget, Limits
from treefix.agent.config import RunConfig
from treefix.agent.policies.base import Candidate, SearchContext, ValueWeights
from treefix.agent.store import RunStore
from treefix.agent.task import Task
from treefix.agent.tree import Judgement, Node, NodeKind, NodeStatus
from treefix.tools.sandbox import default_sandbox
from treefix.tools.workspace import Workspace


class FreePolicy:
    """Instant candidates: each code/repair node sets one constant in the file to a new value."""

    name = "bench"

    def __init__(self) -> None:
        self.n = 0

    def plan(self, ctx: SearchContext, root: Node) -> Candidate:
        return Candidate(title="plan", content="change the constant", prior=random.random())

    def code(self, ctx: SearchContext, plan: Node) -> Candidate:
        self.n += 1
        return Candidate(title=f"edit {self.n}", edits=f"mod.py\n<<<<<<< SEARCH\nX = 0\n=======\nX = {self.n}\n>>>>>>> REPLACE\n")

    def repair(self, ctx: SearchContext, node: Node) -> Candidate:
        self.n += 1
        name = f"extra_{self.n}.txt"
        diff = f"diff --git a/{name} b/{name}\nnew file mode 100644\n--- /dev/null\n+++ b/{name}\n@@ -0,0 +1 @@\n+{self.n}\n"
        return Candidate(title=f"repair {self.n}", diff=diff)


class RandomCritic:
    def judge(self, ctx: SearchContext, node: Node) -> Judgement:
        return Judgement(random.random(), "random")


def written_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=500)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    random.seed(7)
    tmp = Path(tempfile.mkdtemp(prefix="treefix-bench-"))
    repo = tmp / "repo"
    repo.mkdir()
    (repo / "mod.py").write_text("X = 0\n")
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "x"]):
        subprocess.run(cmd, cwd=repo, check=True)

    excluded = {"t": 0.0}

    def timed(fn):  # type: ignore[no-untyped-def]
        def wrapper(*a, **k):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                excluded["t"] += time.perf_counter() - t0

        return wrapper

    treefix.agent.expand.apply_candidate = timed(treefix.agent.expand.apply_candidate)
    treefix.agent.graph.evaluate = timed(treefix.agent.graph.evaluate)

    config = RunConfig(limits=Limits(cost_limit=0, max_nodes=args.nodes, max_depth=12), max_children=4)
    store = RunStore(tmp / "run" / "run.sqlite")
    workspace = Workspace(repo)
    task = Task(repo=repo, problem_statement="bench")
    budget = Budget(config.limits)
    ctx = SearchContext(task, store, workspace, budget, default_sandbox(), config.params())
    store.add(Node(NodeKind.ROOT, None, 0, status=NodeStatus.DONE))
    engine = treefix.agent.graph.SearchEngine(ctx, FreePolicy(), RandomCritic(), ValueWeights(), args.workers, stop_on_verified=False)

    per_iter: list[tuple[int, float, float, int]] = []  # nodes so far, wall, excluded, bytes
    mark = {"t": 0.0, "x": 0.0, "b": 0}
    select = engine.select

    def select_and_measure(state):  # type: ignore[no-untyped-def]
        now, b = time.perf_counter(), written_bytes()
        if state.get("iteration"):
            per_iter.append((len(store.nodes()) - 1, now - mark["t"], excluded["t"] - mark["x"], b - mark["b"]))
        mark.update(t=now, x=excluded["t"], b=b)
        return select(state)

    engine.select = select_and_measure  # type: ignore[method-assign]
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(tmp / "run" / "run.sqlite", check_same_thread=False)
    graph = engine.build(SqliteSaver(conn))
    t0 = time.perf_counter()
    graph.invoke({"iteration": 0, "batch": []}, {"configurable": {"thread_id": "b"}, "recursion_limit": 10**7})
    wall = time.perf_counter() - t0
    engine.close()
    workspace.close()

    nodes = len(store.nodes()) - 1
    overhead = [(w - x) * 1000 / args.workers for _, w, x, _ in per_iter]
    print(f"nodes: {nodes}   workers: {args.workers}   wall: {wall:.1f}s   worktree+evaluate time left out: {excluded['t']:.1f}s")
    print(f"engine overhead per node (ms): median {statistics.median(overhead):.2f}   "
          f"p90 {sorted(overhead)[int(len(overhead) * 0.9)]:.2f}   mean {statistics.mean(overhead):.2f}")
    print("bytes written per iteration, by tree size:")
    for lo in range(0, nodes, max(nodes // 5, 1)):
        window = [b for n, _, _, b in per_iter if lo <= n < lo + max(nodes // 5, 1)]
        ms = [(w - x) * 1000 for n, w, x, _ in per_iter if lo <= n < lo + max(nodes // 5, 1)]
        if window:
            print(f"  nodes {lo:>4}-{lo + max(nodes // 5, 1) - 1:<4}  bytes/iter median {statistics.median(window):>8.0f}"
                  f"   overhead ms median {statistics.median(ms):6.2f}")
    print(f"store file: {(tmp / 'run' / 'run.sqlite').stat().st_size} bytes  ({tmp})")


if __name__ == "__main__":
    main()
