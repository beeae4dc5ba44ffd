"""Selection knobs in the search simulator, judged against the baselines on TUNING seeds.

    python -m benchmarks.knobs [--tasks 100] [--seed 1] [-q medium -q strong] [-s NAME ...]

Resolve rate per turn budget (8..128) for the baselines (linear, best-of-n, greedy) and for MCTS
with one setting at a time: the old defaults, progressive widening alpha, the budget-aware rule
(branch_margin), the exploration constant, the root's cap. No turn control. The seed (1) differs
from the one the simulator's table is reported on (`python -m treefix.evals.simulate --seed 11`),
so the settings chosen here (evals/simulate.py TUNED) are judged on held-out tasks.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from treefix.evals.simulate import BUDGETS, QUALITIES, sweep

# The engine's defaults before this sweep; rows without knobs use the simulator's TUNED ones.
OLD = {"widen_alpha": 0.5, "branch_margin": 0.0, "exploration": 1.0}
SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "linear": ("linear", {}),
    "best-of-n": ("best-of-n", {}),
    "greedy (tuned: alpha 0.7, budget rule)": ("greedy", {}),
    "mcts old defaults (alpha 0.5, c 1, no budget rule)": ("mcts", OLD),
    "mcts alpha 0.7, no budget rule": ("mcts", {**OLD, "widen_alpha": 0.7}),
    "mcts budget rule, alpha 0.5": ("mcts", {**OLD, "branch_margin": 1.0}),
    "mcts alpha 0.7 + budget rule, c 1": ("mcts", {**OLD, "widen_alpha": 0.7, "branch_margin": 1.0}),
    "mcts alpha 0.85 + budget rule, c 1": ("mcts", {**OLD, "widen_alpha": 0.85, "branch_margin": 1.0}),
    "mcts (tuned: alpha 0.7, c 0.25, budget rule)": ("mcts", {}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-q", "--quality", action="append", choices=sorted(QUALITIES))
    ap.add_argument("-s", "--setting", action="append", choices=sorted(SETTINGS), help="only these rows")
    args = ap.parse_args()
    qualities = [QUALITIES[q] for q in args.quality or ["medium", "strong"]]
    names = args.setting or list(SETTINGS)
    started = time.monotonic()
    header = "| quality | setting | " + " | ".join(str(b) for b in BUDGETS) + " |"
    lines = [header, "|---|---|" + "---|" * len(BUDGETS)]
    with tempfile.TemporaryDirectory(prefix="treefix-knobs-") as scratch:
        for q in qualities:
            for name in names:
                strategy, knobs = SETTINGS[name]
                cells = sweep([q], (strategy,), BUDGETS, ("none",), args.tasks, args.seed, Path(scratch), **knobs)
                parts = [f"{c.resolve_rate:.1%} ({c.mean_turns:.1f}t)" for c in cells]
                lines.append(f"| {q.name} | {name} | " + " | ".join(parts) + " |")
                print(lines[-1], flush=True)
    print()
    print("\n".join(lines))
    print(f"{args.tasks} tasks per cell, seed {args.seed}, {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
