"""What confinement costs per test run: a trivial command in each sandbox, median wall time.

    python -m benchmarks.sandbox [--runs 30]

The command is `true` and `python -c pass` in a fresh folder, so the figure is the sandbox's own
cost (environment, private HOME, bubblewrap's mounts and namespaces, the sweep for stray
processes), not the tests'. A real pytest run takes from a few hundred milliseconds up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from treefix.tools.sandbox import BubblewrapSandbox, SubprocessSandbox, bwrap_works


def median_ms(sandbox, cmd: list[str], cwd: Path, runs: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = sandbox.run(cmd, cwd, timeout=30)
        times.append(time.perf_counter() - start)
        assert result.exit_code == 0, result.output
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    boxes = [("subprocess", SubprocessSandbox())]
    if bwrap_works():
        boxes.append(("bubblewrap", BubblewrapSandbox()))
    else:
        print("bubblewrap is not usable here: only the fallback is measured")
    commands = {"true": ["true"], "python -c pass": [sys.executable, "-c", "pass"]}
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'sandbox':<12} " + " ".join(f"{name:>16}" for name in commands) + "   (median ms per run)")
        for label, box in boxes:
            figures = [median_ms(box, cmd, Path(tmp), args.runs) for cmd in commands.values()]
            print(f"{label:<12} " + " ".join(f"{f:>16.1f}" for f in figures))


if __name__ == "__main__":
    main()
