"""The offline policy on real bugs it was never tuned on: plausible vs correct, per split half.

    python -m benchmarks.offline_generalise [--mirrors DIR] [--max-nodes 60] [--split tune,heldout]
        [-i ID ...] [-w 2] [-o DIR] [--tag NAME] [--redo]
    python -m benchmarks.offline_generalise --dataset benchmarks/generalise/fresh.jsonl --split fresh ...

Tasks (`benchmarks/generalise/bugs.jsonl`, see its README) are real bug-fix commits of small
pure-Python libraries that the bundled suite does not use. Each task's base is the parent of the
fix commit, rebuilt from a bare mirror of its repository: `<mirrors>/<owner>+<name>/repo` (make
one with `git clone --bare <public url of owner/name> <mirrors>/<owner>+<name>/repo`). The fix's
test changes are committed into the agent's base and its FAIL_TO_PASS tests are visible, as
`treefix swebench run --visible-tests` does. The split into `tune` and `heldout` is written in
the data file; it was fixed before any tuning, and held-out failures are not for tuning.
`generalise/fresh.jsonl` holds a third set, every task `split: fresh`, built and committed after the
held-out half had been looked at and before the policy ever ran on it (`--split fresh`).

Per bug: plausible = the patch makes the visible (FAIL_TO_PASS) tests pass; correct = it is the
real fix (same syntax tree for every file either touches) or it also passes every held-out test
of the real fix (PASS_TO_PASS: the project's test folder); plausible-but-wrong = the rest of the
plausible ones (overfitting to the visible tests).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.fix_sites import diagnose
from benchmarks.offline_search import parse_overrides
from treefix.agent.budget import Limits
from treefix.agent.run import RunConfig, run_fix
from treefix.agent.task import Task
from treefix.evals.dataset import Instance, Source, load_dataset
from treefix.evals.environment import EnvError, apply_patch, ensure_venv, pristine_source
from treefix.evals.harness import evaluate_one
from treefix.evals.worker import VisibleTests, agent_repo, visible_test_cmd
from treefix.tools.diffs import drop_files, patch_paths

DATA = Path(__file__).resolve().parent / "generalise" / "bugs.jsonl"
SPLITS = ("tune", "heldout", "fresh")
DEFAULT_SPLITS = ("tune", "heldout")  # `fresh` (generalise/fresh.jsonl) is measured once, on request
TEST_TIMEOUT = 60.0


@dataclass
class Result:
    instance_id: str
    split: str
    exit_status: str
    plausible: bool  # the visible FAIL_TO_PASS tests pass
    correct: bool  # the real fix, or passes its held-out tests too
    same_as_fix: bool
    nodes: int
    test_runs: int
    seconds: float
    error: str = ""
    fix_rank: int = 0  # rank of the real fix's statement in the localisation (0: not ranked)
    fix_raw_rank: int = 0  # its plain Ochiai rank among the statements failing tests run (0: not run)
    fix_planned: bool = False  # a plan was opened on it
    fix_touched: int = 0  # attempts that edited it
    category: str = ""  # fix_sites.FixSites.category, for the failures


def mirror_of(repo: str, mirrors: Path) -> Path:
    gd = mirrors / repo.replace("/", "+", 1) / "repo"
    return gd / ".git" if (gd / ".git").is_dir() else gd


def materialise(inst: Instance, mirrors: Path, cache: Path) -> Instance:
    """The instance with its base commit exported from the mirror as a local source archive."""
    archive = cache / "generalise" / f"{inst.repo.replace('/', '+')}-{inst.base_commit}.tar.gz"
    if not archive.exists():
        gd = mirror_of(inst.repo, mirrors)
        if not gd.exists():
            raise EnvError(f"{inst.repo}: no mirror at {gd} (see the module docstring)")
        archive.parent.mkdir(parents=True, exist_ok=True)
        tmp = archive.with_name(archive.name + f".tmp{os.getpid()}")
        proc = subprocess.run(
            ["git", "--git-dir", str(gd), "archive", "--format=tar.gz", "--prefix=src/", "-o", str(tmp),
             str(inst.base_commit)], capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode:
            raise EnvError(f"{inst.repo}: git archive {inst.base_commit}: {proc.stderr.strip()}")
        tmp.rename(archive)
    return inst.model_copy(update={"source": Source(path=str(archive))})


def same_as_fix(inst: Instance, patch: str, cache: Path) -> bool:
    """Does `patch` give every file the real fix touches (and only those) the fix's syntax tree?"""
    paths = set(patch_paths(inst.patch)) | set(patch_paths(patch))
    if not patch.strip() or paths != set(patch_paths(inst.patch)):
        return False
    base = pristine_source(inst.source, cache)  # type: ignore[arg-type]
    trees = []
    for p in (patch, inst.patch):
        with tempfile.TemporaryDirectory() as d:
            for rel in paths:
                (Path(d) / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(base / rel, Path(d) / rel)
            if apply_patch(Path(d), p) is not None:
                return False
            try:
                trees.append({rel: ast.dump(ast.parse((Path(d) / rel).read_text())) for rel in paths})
            except SyntaxError:
                return False
    return trees[0] == trees[1]


def run_one(
    inst: Instance, max_nodes: int, out: Path, cache: Path, tag: str, overrides: dict[str, float] | None = None
) -> Result:
    split = str(getattr(inst, "split", "?"))
    work = Path(tempfile.mkdtemp(prefix="offline-gen-"))
    start = time.monotonic()
    try:
        venv = ensure_venv(inst, cache)
        repo = agent_repo(
            inst, work / "repo", cache, None, VisibleTests(inst.test_patch, list(inst.FAIL_TO_PASS))
        )
        task = Task(
            repo=repo, problem_statement=inst.problem_statement,
            test_cmd=visible_test_cmd(inst.agent_test_cmd, inst.FAIL_TO_PASS),
            task_id=inst.instance_id, env=venv.env(), test_timeout=TEST_TIMEOUT,
        )  # fmt: skip
        run_dir = out / "runs" / tag / inst.instance_id
        shutil.rmtree(run_dir, ignore_errors=True)
        limits = Limits(max_nodes=max_nodes, cost_limit=0)
        outcome = run_fix(task, RunConfig(model="offline", limits=limits, **(overrides or {})), run_dir)  # type: ignore[arg-type]
        patch = drop_files(outcome.patch, set(patch_paths(inst.test_patch)))
        graded = evaluate_one(inst, patch, out / "grading" / tag, cache) if patch.strip() else None
        plausible = bool(graded and graded.fail_to_pass["success"] and not graded.fail_to_pass["failure"])
        same = plausible and same_as_fix(inst, patch, cache)
        where = diagnose(run_dir, inst.patch, pristine_source(inst.source, cache))  # type: ignore[arg-type]
        return Result(
            inst.instance_id, split, outcome.exit_status, plausible, same or bool(graded and graded.resolved),
            same, sum(outcome.summary["nodes"].values()) - 1, outcome.summary["usage"]["test_runs"],
            round(time.monotonic() - start, 1), (graded.error or "") if graded else "",
            where.rank, where.raw_rank, where.planned, where.touched, where.category,
        )  # fmt: skip
    except Exception as e:  # one broken task must not end the measurement
        return Result(inst.instance_id, split, "error", False, False, False, 0, 0,
                      round(time.monotonic() - start, 1), f"{type(e).__name__}: {e}")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


def table(results: list[Result], counts: dict[str, int]) -> str:
    rows = [f"{'half':<8} {'bugs':>4} {'plausible':>10} {'correct':>10} {'plaus-wrong':>11} "
            f"{'nodes/bug':>9} {'s/bug':>6} {'errors':>6}"]  # fmt: skip
    for half, n in counts.items():
        rs = [r for r in results if r.split == half]
        if not rs:
            continue
        p, c = sum(r.plausible for r in rs), sum(r.correct for r in rs)
        rows.append(
            f"{half:<8} {n:>4} {p:>3} {p / n:>5.0%} {c:>3} {c / n:>5.0%} {p - sum(r.plausible and r.correct for r in rs):>11} "
            f"{sum(r.nodes for r in rs) / len(rs):>9.1f} {sum(r.seconds for r in rs) / len(rs):>6.1f} "
            f"{sum(r.exit_status == 'error' for r in rs):>6}"
        )
    return "\n".join(rows)


def causes(results: list[Result], counts: dict[str, int]) -> str:
    """Per half: where the real fix stood in the search (fix_sites.py), failures by category."""
    cats = ("not covered", "not localised", "not reached", "no operator", "wrong edit")
    rows = [f"{'half':<8} {'fix top-5':>9} {'top-40':>6} {'covered':>7} {'planned':>7} {'touched':>7}   failures: "
            + ", ".join(cats)]  # fmt: skip
    for half in counts:
        rs = [r for r in results if r.split == half and r.exit_status != "error"]
        if not rs:
            continue
        fails = [r for r in rs if not r.plausible]
        rows.append(
            f"{half:<8} {sum(0 < r.fix_rank <= 5 for r in rs):>9} {sum(r.fix_rank > 0 for r in rs):>6} "
            f"{sum(r.fix_raw_rank > 0 for r in rs):>7} "
            f"{sum(r.fix_planned for r in rs):>7} {sum(r.fix_touched > 0 for r in rs):>7}   "
            + "  ".join(f"{sum(r.category == c for r in fails)}" for c in cats)
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", type=Path, default=DATA)
    mirrors = os.environ.get("TREEFIX_MIRRORS")
    ap.add_argument("--mirrors", type=Path, default=Path(mirrors) if mirrors else None,
                    help="folder of bare mirrors <owner>+<name>/repo (default: $TREEFIX_MIRRORS)")  # fmt: skip
    ap.add_argument("--max-nodes", type=int, default=60)
    ap.add_argument("--split", default=",".join(DEFAULT_SPLITS),
                    help="comma-separated splits to run: tune, heldout, fresh (default: tune,heldout)")
    ap.add_argument("-i", "--instance", action="append", default=[])
    ap.add_argument("-w", "--workers", type=int, default=2)
    ap.add_argument("-o", "--output", type=Path, default=Path(tempfile.gettempdir()) / "treefix-offline-generalise")
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--tag", default="default", help="name of this configuration in the output folder")
    ap.add_argument("--redo", action="store_true", help="recompute results already in the output folder")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a RunConfig number")
    args = ap.parse_args(argv)
    overrides = parse_overrides(args.set)
    from platformdirs import user_cache_dir

    cache = (args.cache_dir or Path(user_cache_dir("treefix"))).resolve()
    if args.mirrors is None or not args.mirrors.is_dir():
        print("error: pass --mirrors DIR (or set TREEFIX_MIRRORS): a folder of bare mirrors "
              "<owner>+<name>/repo, see benchmarks/generalise/README.md", file=sys.stderr)  # fmt: skip
        return 2
    halves = [s.strip() for s in args.split.split(",") if s.strip()]
    if bad := [h for h in halves if h not in SPLITS] or ([] if halves else [args.split]):
        print(f"error: unknown split {bad[0]!r} (choose from {', '.join(SPLITS)})", file=sys.stderr)
        return 2
    instances, problems = load_dataset(args.dataset)
    if problems or not instances:
        print(f"error: {args.dataset}: {problems[0] if problems else 'no tasks'}", file=sys.stderr)
        return 2
    instances = [i for i in instances if getattr(i, "split", None) in halves]
    if not instances:
        print(f"error: {args.dataset}: no task of split {', '.join(halves)}", file=sys.stderr)
        return 2
    if args.instance:
        instances = [i for i in instances if i.instance_id in set(args.instance)]
    out = args.output.resolve()
    out.mkdir(parents=True, exist_ok=True)
    store = out / f"results-n{args.max_nodes}-{args.tag}.jsonl"
    rows = [json.loads(ln) for ln in store.read_text().splitlines() if ln.strip()] if store.exists() else []
    if args.redo:  # forget the selected tasks' results only
        chosen = {i.instance_id for i in instances}
        rows = [r for r in rows if r["instance_id"] not in chosen]
        store.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = {r["instance_id"]: Result(**r) for r in rows}
    done = {k: r for k, r in done.items() if r.exit_status != "error"}  # a setup error is retried on resume
    lock = threading.Lock()

    def one(inst: Instance) -> Result:
        if inst.instance_id in done:
            r = done[inst.instance_id]
            run_dir = out / "runs" / args.tag / inst.instance_id
            if run_dir.is_dir():  # recomputed: cheap, and results stored before a diagnosis change get it
                base = pristine_source(materialise(inst, args.mirrors, cache).source, cache)  # type: ignore[arg-type]
                where = diagnose(run_dir, inst.patch, base)
                r.fix_rank, r.fix_raw_rank, r.fix_planned, r.fix_touched, r.category = (
                    where.rank, where.raw_rank, where.planned, where.touched, where.category)  # fmt: skip
        else:
            try:
                r = run_one(materialise(inst, args.mirrors, cache), args.max_nodes, out, cache, args.tag, overrides)
            except EnvError as e:
                r = Result(inst.instance_id, str(getattr(inst, "split", "?")), "error", False, False, False, 0, 0, 0.0, str(e))
            with lock, store.open("a") as fh:
                fh.write(json.dumps(asdict(r)) + "\n")
        with lock:
            mark = "correct" if r.correct else "plausible" if r.plausible else r.exit_status
            print(f"{r.split:<8} {r.instance_id:<32} {mark:<12} {r.nodes:>3} nodes {r.seconds:>6.1f}s "
                  f"fix rank {r.fix_rank or '-':>2} (ochiai {r.fix_raw_rank or '-':>3}) planned {'y' if r.fix_planned else 'n'} "
                  f"touched {r.fix_touched:>2} {r.category if not r.plausible else ''} {r.error[:60]}", flush=True)  # fmt: skip
        return r

    with ThreadPoolExecutor(max(1, args.workers)) as pool:
        results = list(pool.map(one, instances))
    counts = {h: sum(getattr(i, "split", None) == h for i in instances) for h in halves}
    print()
    print(f"{len(instances)} real bugs, offline policy ({args.tag}), visible tests, max {args.max_nodes} nodes")
    print(table(results, counts))
    print()
    print(causes(results, counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
