"""Selection knobs in the search simulator: exploration constant, progressive widening, value weights.

    python -m benchmarks.knobs [--tasks 60] [--seed 1] [-q weak -q medium]

MCTS without turn control, one knob moved at a time from the defaults, resolve rate per turn
budget (each budget read off one run per task at the largest, see evals/simulate.py). The seed
differs from the simulator's default so the choice is not judged on the tasks it was made on.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from treefix.evals.simulate import BUDGETS, QUALITIES, sweep

SETTINGS: dict[str, dict[str, float]] = {
    "defaults (c=1, k=1, alpha=0.5, exec/critic 0.7/0.3)": {},
    "exploration 0.25": {"exploration": 0.25},
    "exploration 0.5": {"exploration": 0.5},
    "exploration 2": {"exploration": 2.0},
    "widen alpha 0.3": {"widen_alpha": 0.3},
    "widen alpha 0.7": {"widen_alpha": 0.7},
    "widen k 2": {"widen_k": 2.0},
    "weights 0.5/0.5": {"exec_weight": 0.5, "critic_weight": 0.5},
    "weights 0.9/0.1": {"exec_weight": 0.9, "critic_weight": 0.1},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-q", "--quality", action="append", choices=sorted(QUALITIES))
    args = ap.parse_args()
    qualities = [QUALITIES[q] for q in args.quality or ["weak", "medium"]]
    started = time.monotonic()
    header = "| quality | setting | " + " | ".join(str(b) for b in BUDGETS) + " | mean |"
    lines = [header, "|---|---|" + "---|" * (len(BUDGETS) + 1)]
    with tempfile.TemporaryDirectory(prefix="treefix-knobs-") as scratch:
        for q in qualities:
            for name, knobs in SETTINGS.items():
                cells = sweep([q], ("mcts",), BUDGETS, ("none",), args.tasks, args.seed, Path(scratch), **knobs)
                rates = [c.resolve_rate for c in cells]
                lines.append(f"| {q.name} | {name} | " + " | ".join(f"{r:.1%}" for r in rates)
                             + f" | {sum(rates) / len(rates):.1%} |")  # fmt: skip
                print(lines[-1], flush=True)
    print()
    print("\n".join(lines))
    print(f"{args.tasks} tasks per cell, seed {args.seed}, {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
