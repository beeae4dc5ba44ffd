"""Localisation benchmark: does the map (and search) put the file the gold patch changes near the top?

    python -m benchmarks.localisation [--dataset evals/suites/all.jsonl] [--cache-dir DIR]

For each task the buggy base is built as the evaluation harness builds it, and files are ranked from
the problem statement alone (the gold patch is only read to score the ranking):

- map: personalised PageRank toward the files and identifiers the issue mentions (tools/repo_map);
- search: files defining the mentioned identifiers, then source files with git grep hits of them;
- both: reciprocal-rank fusion of the two lists.

Prints recall@1/3/5 per method: the share of tasks whose gold file is among the first k files.
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import platformdirs
from rich.console import Console
from rich.table import Table

from treefix.evals.dataset import Instance, load_dataset
from treefix.evals.environment import prepare_base
from treefix.tools.repo_map import RepoMap
from treefix.tools.search import SearchError, grep

KS = (1, 3, 5)
DEFAULT_DATASET = Path(__file__).resolve().parents[1] / "evals" / "suites" / "all.jsonl"
console = Console()


def gold_files(patch: str) -> set[str]:
    return {m.split("/", 1)[1] for m in re.findall(r"^diff --git (\S+) \S+$", patch, flags=re.M)}


def rank_map(rm: RepoMap, issue: str) -> list[str]:
    files, idents = rm.focus_from_text(issue)
    return [f for f, _ in rm.rank_files(files, idents)]


def rank_search(rm: RepoMap, issue: str) -> list[str]:
    files, idents = rm.focus_from_text(issue)
    score: Counter[str] = Counter({f: 100.0 for f in files})
    for name in idents:
        definers = {p for p, e in rm.index.entries.items() if any(d[0] == name for d in e.definitions)}
        for path in definers:
            score[path] += 10.0 / len(definers)
        try:
            hits = Counter(path for path, _, _ in grep(rm.root, name))
        except SearchError:
            continue
        for path, n in hits.items():
            if path in rm.index.entries:  # source files only: README and PKG-INFO mention names too
                score[path] += min(n, 5) / 5
    return _ordered(score)


def fuse(*rankings: list[str], k: int = 10) -> list[str]:
    score: Counter[str] = Counter()
    for ranking in rankings:
        for i, path in enumerate(ranking):
            score[path] += 1.0 / (k + i)
    return _ordered(score)


def _ordered(score: Counter[str]) -> list[str]:
    return sorted(score, key=lambda f: (-score[f], f))  # ties by path: the same order on every run


def localise(instance: Instance, work: Path, cache_dir: Path) -> dict[str, int | None]:
    """The best 1-based rank of a gold file per method (None when absent)."""
    base = prepare_base(instance, work / instance.instance_id, cache_dir)
    rm = RepoMap(base, work / "map-cache")
    rm.refresh()
    by_map = rank_map(rm, instance.problem_statement)
    by_search = rank_search(rm, instance.problem_statement)
    gold = gold_files(instance.patch)
    out: dict[str, int | None] = {}
    for name, ranking in (("map", by_map), ("search", by_search), ("both", fuse(by_map, by_search))):
        hits = [i + 1 for i, f in enumerate(ranking) if f in gold]
        out[name] = hits[0] if hits else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--cache-dir", type=Path, default=Path(platformdirs.user_cache_dir("treefix")))
    parser.add_argument("-v", "--verbose", action="store_true", help="print the ranks of every task")
    args = parser.parse_args()
    instances, errors = load_dataset(args.dataset)
    for e in errors:
        console.print(f"[yellow]skipped[/]: {e}")
    work = Path(tempfile.mkdtemp(prefix="treefix-localise-"))
    ranks: list[dict[str, int | None]] = []
    try:
        for inst in instances:
            r = localise(inst, work, args.cache_dir)
            ranks.append(r)
            if args.verbose:
                console.print(f"{inst.instance_id:45} " + "  ".join(f"{m}={v}" for m, v in r.items()))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = Table(title=f"Localisation on {args.dataset.name}: {len(ranks)} tasks, gold file in the top k")
    table.add_column("method")
    for k in KS:
        table.add_column(f"recall@{k}", justify="right")
    for method in ("map", "search", "both"):
        cells = [sum(1 for r in ranks if r[method] and r[method] <= k) / max(len(ranks), 1) for k in KS]
        table.add_row(method, *(f"{c:.0%}" for c in cells))
    console.print(table)


if __name__ == "__main__":
    main()
