"""Offline policy × search strategy on a suite, in the visible-tests setting, graded on hidden tests.

    python -m benchmarks.offline_search [--dataset evals/suites/all.jsonl] [--max-nodes 30]
        [--search mcts,best-of-n,linear,greedy] [-i ID ...] [-w 2] [-o DIR] [--redo]

For each instance: build the base, commit its test_patch (as `treefix swebench run --visible-tests`
does), and run `-m offline` with each strategy under the same node budget, the instance's
FAIL_TO_PASS ids added to its public test command. Each patch is graded by the local harness on
a fresh base with every FAIL_TO_PASS and PASS_TO_PASS test. Results go to `<out>/results.jsonl`;
a re-run reuses them (--redo recomputes), and the table is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from treefix.agent.budget import Limits
from treefix.agent.config import RunConfig
from treefix.agent.run import run_fix
from treefix.agent.task import Task
from treefix.evals.dataset import Instance, load_dataset
from treefix.evals.environment import ensure_venv
from treefix.evals.harness import DEFAULT_TEST_CMD, evaluate_one
from treefix.evals.worker import VisibleTests, agent_repo
from treefix.evals.worker import visible_test_cmd as worker_test_cmd
from treefix.tools.diffs import drop_files, patch_paths

STRATEGIES = ("mcts", "best-of-n", "linear", "greedy")
SUITE = Path(__file__).resolve().parents[1] / "evals" / "suites" / "all.jsonl"


@dataclass
class Result:
    instance_id: str
    search: str
    exit_status: str
    verified: bool  # the visible tests passed
    resolved: bool  # the hidden F2P and P2P tests passed
    nodes: int
    test_runs: int
    model_calls: int
    seconds: float
    error: str = ""


def visible_test_cmd(inst: Instance) -> str:
    """The agent's test command under --visible-tests, as `treefix swebench run` builds it."""
    return worker_test_cmd(inst.agent_test_cmd or inst.test_cmd or DEFAULT_TEST_CMD, inst.FAIL_TO_PASS)


def config_for(search: str, max_nodes: int, overrides: dict[str, float] | None = None) -> RunConfig:
    """The run's config: `--set` overrides on our defaults (run_fix adds the offline policy's
    preferred settings where a value is still the default)."""
    limits = Limits(max_nodes=max_nodes, cost_limit=0)
    return RunConfig(model="offline", search=search, limits=limits, **(overrides or {}))  # type: ignore[arg-type]


def parse_overrides(items: list[str]) -> dict[str, float]:
    """`--set KEY=VALUE` numbers for RunConfig (whole numbers stay ints)."""
    return {k: (int(float(v)) if float(v).is_integer() else float(v)) for k, v in (i.split("=", 1) for i in items)}


def run_one(
    inst: Instance,
    searches: list[str],
    max_nodes: int,
    out: Path,
    cache: Path,
    tag: str,
    overrides: dict[str, float],
) -> list[Result]:
    venv = ensure_venv(inst, cache)
    work = Path(tempfile.mkdtemp(prefix="offline-bench-"))
    results = []
    try:
        repo = agent_repo(
            inst, work / "repo", cache, None, VisibleTests(inst.test_patch, list(inst.FAIL_TO_PASS))
        )
        task = Task(
            repo=repo, problem_statement=inst.problem_statement, test_cmd=visible_test_cmd(inst),
            task_id=inst.instance_id, env=venv.env(), test_timeout=120.0,
        )  # fmt: skip
        for search in searches:
            run_dir = out / "runs" / tag / inst.instance_id / search
            shutil.rmtree(run_dir, ignore_errors=True)
            start = time.monotonic()
            try:
                outcome = run_fix(task, config_for(search, max_nodes, overrides), run_dir)
            except Exception as e:  # one broken instance must not end the measurement
                results.append(
                    Result(
                        inst.instance_id,
                        search,
                        "error",
                        False,
                        False,
                        0,
                        0,
                        0,
                        0.0,
                        f"{type(e).__name__}: {e}",
                    )
                )
                continue
            patch = drop_files(outcome.patch, set(patch_paths(inst.test_patch)))
            graded = (
                evaluate_one(inst, patch, out / "grading" / tag / search, cache) if patch.strip() else None
            )
            usage = outcome.summary["usage"]
            results.append(Result(
                inst.instance_id, search, outcome.exit_status, outcome.exit_code == 0,
                bool(graded and graded.resolved), sum(outcome.summary["nodes"].values()) - 1,
                usage["test_runs"], usage["model_calls"], round(time.monotonic() - start, 1),
                (graded.error or "") if graded else "",
            ))  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def table(results: list[Result], searches: list[str], total: int) -> str:
    rows = [
        f"{'search':<10} {'resolved':>9} {'verified':>9} {'nodes/task':>11} {'tests/task':>11} {'model calls':>12}"
    ]
    for s in searches:
        rs = [r for r in results if r.search == s]
        if not rs:
            continue
        resolved, verified = sum(r.resolved for r in rs), sum(r.verified for r in rs)
        rows.append(
            f"{s:<10} {resolved:>4}/{total:<4} {verified:>4}/{total:<4} {sum(r.nodes for r in rs) / len(rs):>11.1f} "
            f"{sum(r.test_runs for r in rs) / len(rs):>11.1f} {sum(r.model_calls for r in rs):>12}"
        )
    return "\n".join(rows)


def per_instance(results: list[Result], searches: list[str]) -> str:
    ids = sorted({r.instance_id for r in results})
    mark = {
        (r.instance_id, r.search): (
            "R" if r.resolved else "v" if r.verified else "E" if r.error and not r.verified else "."
        )
        for r in results
    }
    width = max(map(len, ids), default=10)
    lines = [" " * width + "  " + " ".join(f"{s[:6]:>6}" for s in searches)]
    for i in ids:
        lines.append(f"{i:<{width}}  " + " ".join(f"{mark.get((i, s), '-'):>6}" for s in searches))
    return "\n".join(lines) + "\n(R resolved, v verified on visible tests only, . neither, E error)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", type=Path, default=SUITE)
    ap.add_argument("--max-nodes", type=int, default=30)
    ap.add_argument("--search", default=",".join(STRATEGIES))
    ap.add_argument("-i", "--instance", action="append", default=[])
    ap.add_argument("-w", "--workers", type=int, default=2)
    ap.add_argument(
        "-o", "--output", type=Path, default=Path(tempfile.gettempdir()) / "treefix-offline-bench"
    )
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--redo", action="store_true", help="recompute results already in the output folder")
    ap.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a RunConfig number"
    )
    ap.add_argument("--tag", default="", help="name of this configuration in the output folder")
    args = ap.parse_args(argv)
    from platformdirs import user_cache_dir

    cache = (args.cache_dir or Path(user_cache_dir("treefix"))).resolve()
    searches = [s.strip() for s in args.search.split(",") if s.strip()]
    instances, problems = load_dataset(args.dataset)
    for p in problems:
        print(f"skipped: {p}", file=sys.stderr)
    if args.instance:
        instances = [i for i in instances if i.instance_id in set(args.instance)]
    out = args.output.resolve()
    out.mkdir(parents=True, exist_ok=True)
    overrides = parse_overrides(args.set)
    tag = args.tag or "default"
    store = out / f"results-n{args.max_nodes}-{tag}.jsonl"
    done = (
        []
        if args.redo or not store.exists()
        else [Result(**json.loads(ln)) for ln in store.read_text().splitlines() if ln.strip()]
    )
    keep = {(r.instance_id, r.search) for r in done}
    lock = threading.Lock()

    def one(inst: Instance) -> list[Result]:
        todo = [s for s in searches if (inst.instance_id, s) not in keep]
        results = run_one(inst, todo, args.max_nodes, out, cache, tag, overrides) if todo else []
        with lock:
            with store.open("a") as fh:
                fh.writelines(json.dumps(asdict(r)) + "\n" for r in results)
            for r in results:
                print(
                    f"{r.instance_id:<40} {r.search:<10} {'resolved' if r.resolved else r.exit_status:<12} {r.nodes:>3} nodes {r.seconds:>6.1f}s",
                    flush=True,
                )
        return results

    if args.redo and store.exists():
        store.unlink()
    with ThreadPoolExecutor(max(1, args.workers)) as pool:
        fresh = [r for rs in pool.map(one, instances) for r in rs]
    wanted = {i.instance_id for i in instances}
    results = [r for r in done + fresh if r.instance_id in wanted and r.search in searches]
    print()
    print(per_instance(results, searches))
    print()
    print(
        f"{len(instances)} tasks, offline policy ({tag}), visible tests, max {args.max_nodes} nodes per run"
    )
    print(table(results, searches, len(instances)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
