"""Parallel expansion, measured: a 40-node search with -w 4 against -w 1.

    python -m benchmarks.parallel [--nodes 40] [--delay 1.0] [--search mcts]

The whole run is real (run_fix, the graph and its checkpointer, git worktrees, a test command run
in the sandbox for every attempt, budget and call accounting), with the LLM policy and critic; only the model is scripted:
it answers every call after `delay` seconds with the same usage, and its edits never fix the bug,
so both runs make exactly `nodes` nodes. Prints wall time, speed-up, and the spend of each run:
the totals (calls, tokens, cost) must be identical and equal to what the model itself counted;
the split by role may differ, since parallel selection grows a wider tree.
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from treefix.agent.budget import Limits
from treefix.agent.config import RunConfig
from treefix.agent.models.base import Completion, Usage
from treefix.agent.models.scripted import ScriptedModel
from treefix.agent.run import run_fix
from treefix.agent.task import Task

FILES = {
    "calc/__init__.py": "",
    "calc/ops.py": "def clamp(x, lo, hi):\n    if x < lo:\n        return lo\n    if x > hi:\n        return lo\n    return x\n",
    "tests/test_ops.py": "from calc.ops import clamp\n\n\ndef test_high():\n    assert clamp(9, 0, 5) == 5\n",
}
PLAN = "TITLE: comment the clamp\nSTRATEGY: add a comment to calc/ops.py (it will not fix the bug)."
# A real test run in the sandbox, kept small (no pytest start-up) so the model's latency is what is measured
TEST_CMD = "python -c 'import sys; from calc.ops import clamp; sys.exit(clamp(9, 0, 5) != 5)'"
CRITIC = json.dumps({"value": 0.3, "rationale": "the bug is still there", "advice": ""})


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    for name, text in FILES.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    env = ["-c", "user.name=bench", "-c", "user.email=bench@localhost", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], [*env, "commit", "-q", "-m", "initial"]):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)
    return path


def slow_model(delay: float) -> ScriptedModel:
    """Every call: `delay` seconds, 1000 tokens in, 100 out. Edits add a unique comment line."""
    counter = itertools.count(1)
    lock = threading.Lock()

    def respond(role: str, messages: list) -> Completion:
        time.sleep(delay)
        with lock:
            n = next(counter)
        if role == "plan":
            text = PLAN
        elif role == "critic":
            text = CRITIC
        else:
            text = f"calc/ops.py\n<<<<<<< SEARCH\ndef clamp(x, lo, hi):\n=======\ndef clamp(x, lo, hi):\n    # attempt {n}\n>>>>>>> REPLACE\n"
        return Completion(text, usage=Usage(1000, 100))

    return ScriptedModel(respond)


def one(workers: int, nodes: int, delay: float, search: str, scratch: Path) -> dict:
    repo = make_repo(scratch / f"repo-w{workers}")
    model = slow_model(delay)
    limits = Limits(cost_limit=0, max_nodes=nodes, max_depth=50)
    config = RunConfig(model="scripted", search=search, workers=workers, limits=limits, map_tokens=0)
    task = Task(repo=repo, problem_statement="clamp(9, 0, 5) returns 0, expected 5", test_cmd=TEST_CMD)
    started = time.monotonic()
    outcome = run_fix(task, config, scratch / f"run-w{workers}", model=model)
    wall = time.monotonic() - started
    usage = outcome.summary["usage"]
    from treefix.agent.store import RunStore

    store = RunStore(scratch / f"run-w{workers}" / "run.sqlite")
    iterations = len({e["iteration"] for e in store.events("select")})
    store.close()
    counted = {"turns": len(model.calls), "tokens": 1100 * len(model.calls)}
    return {
        "workers": workers, "wall": wall, "status": outcome.exit_status, "nodes": sum(
            v for k, v in outcome.summary.get("nodes", {}).items() if k != "root"),
        "iterations": iterations, "turns": usage["turns"], "tokens": usage["tokens"], "cost": round(usage["cost"], 6),
        "model_counted": counted, "by_role": {k: int(v["turns"]) for k, v in usage["by_role"].items()},
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=40)
    ap.add_argument("--delay", type=float, default=1.0)
    ap.add_argument("--search", default="mcts")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="treefix-parallel-") as tmp:
        runs = [one(w, args.nodes, args.delay, args.search, Path(tmp)) for w in (1, 4)]
    for r in runs:
        print(f"-w {r['workers']}: {r['wall']:.1f}s  nodes {r['nodes']} in {r['iterations']} batches  status {r['status']}  turns {r['turns']}  "
              f"tokens {r['tokens']}  cost ${r['cost']:.4f}  by role {r['by_role']}  model counted {r['model_counted']}")  # fmt: skip
    one_w, four_w = runs
    # the trees differ (parallel selection spreads wider), so the roles' shares may; the totals may not
    same = all(one_w[k] == four_w[k] for k in ("nodes", "turns", "tokens", "cost"))
    honest = all(r["turns"] == r["model_counted"]["turns"] and r["tokens"] == r["model_counted"]["tokens"] for r in runs)
    print(f"speed-up -w 4 vs -w 1: {one_w['wall'] / four_w['wall']:.2f}x (limit 4x, target >= 3x)")
    print(f"total spend identical between the runs: {same}; each run's spend equals what the model counted: {honest}")


if __name__ == "__main__":
    main()
