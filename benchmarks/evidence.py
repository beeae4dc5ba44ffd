"""Reproduction + regression evidence against the critic alone, with no test command, graded by
the hidden tests.

    python -m benchmarks.evidence [--dataset evals/suites/all.jsonl] [--p 0.3,0.6] [--max-nodes 10]
        [--seeds 1] [--repro-files 3] [-i ID ...] [-w 2] [-o DIR]

The agent gets the issue text only: no test command, hidden tests hidden (the repository is the
base `treefix swebench run` builds). A scripted policy stands in for the model:

- code: the gold fix with probability p, else a wrong attempt: half of them break nothing (a
  comment added to the file the fix touches), half break the function the fix touches (so its
  existing tests fail); repairs are never offered, so every attempt is a fresh draw;
- reproductions: each call writes `--repro-files` test files (default 3; the agent's prompt asks for
  one to three), each drawn from the same mix: half are good, half useless (one that passes on the base, one with an import
  error, one that does not touch the repository's code, one whose assertion about the package is
  false whatever the code: accepted, and a trap no fix passes). **The good ones are derived from the
  hidden tests, inside this benchmark only**: the test functions the instance's `test_patch`
  adds, under the imports of the test file they are added to. Nothing of it reaches the agent in
  normal runs (`tests/test_hidden_fields.py`);
- critic: a noisy score, slightly higher for the right fix (mean 0.6 against 0.5, sd 0.15).

Two arms at the same node budget: `evidence` (reproductions and regression checks, as a run
without --test-cmd does by default) and `critic-only` (`reproductions=0`, `regression_checks=false`:
the value is the critic's). The draws of code, reproductions and critic come from separate seeded
streams, so the i-th code attempt is the same in both arms. Each chosen patch is graded by the local
harness with every FAIL_TO_PASS and PASS_TO_PASS test (a patch is graded once per instance).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import random
import re
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
from treefix.agent.policies.base import Candidate, NoCandidate, SearchContext
from treefix.agent.run import Agents, run_fix
from treefix.agent.task import Task
from treefix.agent.tree import Judgement, Node
from treefix.evals.dataset import Instance, load_dataset
from treefix.evals.environment import ensure_venv
from treefix.evals.harness import evaluate_one
from treefix.evals.worker import agent_repo
from treefix.tools.diffs import normalised, patch_paths

SUITE = Path(__file__).resolve().parents[1] / "evals" / "suites" / "all.jsonl"
ARMS = ("evidence", "critic-only")
USELESS = (
    "def test_passes_anyway():\n    assert True\n",
    "import treefix_no_such_module\n\n\ndef test_imports():\n    assert treefix_no_such_module\n",
    "def test_unrelated():\n    assert sorted([2, 1]) == [2, 1]\n",
    # fails on the base with an assertion about the package, and whatever the fix: a trap
    "import {pkg}\n\n\ndef test_wrong_expectation():\n    assert {pkg}.__name__ == 'something else'\n",
)


# --- the hidden-test-derived reproduction (this benchmark only) ---------------------------------


def good_reproduction(inst: Instance, repo: Path) -> str | None:
    """The test functions `test_patch` adds, under the top-level imports of their test file."""
    files = patch_paths(inst.test_patch)
    if len(files) != 1 or not (repo / files[0]).is_file():
        return None
    text = (repo / files[0]).read_text()
    try:
        module = ast.parse(text)
    except SyntaxError:
        return None
    header = [
        ast.get_source_segment(text, node) or "" for node in module.body
        if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and not node.level)
    ]  # fmt: skip
    added = [ln[1:] for ln in inst.test_patch.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    code = "\n".join(header) + "\n\n\n" + "\n".join(added).strip() + "\n"
    try:
        ast.parse(code)
    except SyntaxError:
        return None
    return code


# --- wrong attempts --------------------------------------------------------------------------------


def _gold_site(inst: Instance) -> tuple[str, int] | None:
    """The first source file the gold patch changes and the base line of its first hunk."""
    m = re.search(r"^\+\+\+ [ab]/(\S+)\n@@ -(\d+)", inst.patch, re.M)  # the gold patches are reversed bugs
    return (m[1], int(m[2])) if m else None


def wrong_attempt(ctx: SearchContext, inst: Instance, breaking: bool, variant: int) -> str:
    site = _gold_site(inst)
    if site is None:
        return ""
    path, line = site
    with ctx.workspace.worktree() as wt:
        f = wt / path
        lines = f.read_text().splitlines(keepends=True)
        if breaking and (at := _body_start(lines, line)) is not None:
            indent = re.match(r"\s*", lines[at - 1])[0]  # type: ignore[index]
            lines.insert(at - 1, f'{indent}raise RuntimeError("an attempt that breaks this function")\n')
        else:
            lines.append(f"# an attempt that changes nothing ({variant})\n")
        f.write_text("".join(lines))
        return ctx.workspace.diff(wt)


def _body_start(lines: list[str], line: int) -> int | None:
    """The first body line of the innermost function around `line` (1-based)."""
    try:
        tree = ast.parse("".join(lines))
    except SyntaxError:
        return None
    best = None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.lineno <= line + 3 <= (node.end_lineno or 0):
            if best is None or node.lineno > best.lineno:
                best = node
    return best.body[0].lineno if best else None


# --- the scripted policy and critic --------------------------------------------------------------


class ScriptedPolicy:
    name = "scripted"

    def __init__(self, inst: Instance, p: float, seed: int, good: str | None, files: int = 1):
        self.inst, self.p, self.good, self.files = inst, p, good, files
        site = _gold_site(inst)
        parts = Path(site[0]).parts if site else ("os",)
        self.package = Path(parts[1] if parts[0] in ("src", "lib") and len(parts) > 1 else parts[0]).stem
        self.code_rng = random.Random(f"{inst.instance_id}/{seed}/code")
        self.repro_rng = random.Random(f"{inst.instance_id}/{seed}/repro")
        self.lock = threading.Lock()

    def reproduce(self, ctx: SearchContext, root: Node) -> Candidate:
        """One call, `files` test files, each drawn from the same mix: good or useless, half and half."""
        kinds, codes = [], []
        with self.lock:
            for _ in range(self.files):
                good = self.good is not None and self.repro_rng.random() < 0.5
                kinds.append("good" if good else "useless")
                codes.append(self.good if good else self.repro_rng.choice(USELESS).format(pkg=self.package))
        return Candidate(f"reproduction ({', '.join(kinds)})", "\n\n".join(f"```python\n{c}```" for c in codes))

    def plan(self, ctx: SearchContext, parent: Node) -> Candidate:
        return Candidate(f"plan {len(ctx.store.children(parent.id)) + 1}", "a plan")

    def code(self, ctx: SearchContext, plan: Node) -> Candidate:
        with self.lock:
            right = self.code_rng.random() < self.p
            breaking, variant = self.code_rng.random() < 0.5, self.code_rng.randint(1, 3)
        if right:
            return Candidate("the gold fix", diff=self.inst.patch)
        return Candidate("a wrong attempt", diff=wrong_attempt(ctx, self.inst, breaking, variant))

    def repair(self, ctx: SearchContext, node: Node) -> Candidate:
        raise NoCandidate  # every attempt is a fresh draw


class ScriptedCritic:
    def __init__(self, inst: Instance, seed: int):
        self.gold = normalised(inst.patch)
        self.rng = random.Random(f"{inst.instance_id}/{seed}/critic")
        self.lock = threading.Lock()

    def judge(self, ctx: SearchContext, node: Node) -> Judgement:
        with self.lock:
            noise = self.rng.gauss(0.0, 0.15)
        mean = 0.6 if node.diff and normalised(node.diff) == self.gold else 0.5
        return Judgement(min(max(mean + noise, 0.0), 1.0), "scripted")


# --- one run ------------------------------------------------------------------------------------------


@dataclass
class Result:
    instance_id: str
    p: float
    seed: int
    arm: str
    exit_status: str
    rule: str
    resolved: bool
    chose_gold: bool
    nodes: int
    test_runs: int
    accepted_repros: int
    seconds: float
    error: str = ""


def config_for(arm: str, max_nodes: int) -> RunConfig:
    evidence = arm == "evidence"
    return RunConfig(
        model="scripted", limits=Limits(max_nodes=max_nodes, cost_limit=0),
        reproductions=3 if evidence else 0, regression_checks=evidence,
    )  # fmt: skip


class Grader:
    """Each distinct patch of an instance graded once by the hidden tests."""

    def __init__(self, out: Path, cache: Path):
        self.out, self.cache = out, cache
        self.file = out / "grades.json"
        self.grades: dict[str, bool] = json.loads(self.file.read_text()) if self.file.is_file() else {}
        self.lock = threading.Lock()

    def resolved(self, inst: Instance, patch: str) -> bool:
        if not patch.strip():
            return False
        key = inst.instance_id + "/" + hashlib.sha256(normalised(patch).encode()).hexdigest()[:16]
        with self.lock:
            if key in self.grades:
                return self.grades[key]
        graded = evaluate_one(inst, patch, self.out / "grading", self.cache)
        with self.lock:
            self.grades[key] = bool(graded.resolved)
            self.file.write_text(json.dumps(self.grades, indent=1))
        return self.grades[key]


def run_instance(
    inst: Instance, ps: list[float], seeds: int, max_nodes: int, out: Path, cache: Path, grader: Grader,
    files: int = 1,
) -> list[Result]:
    venv = ensure_venv(inst, cache)
    work = Path(tempfile.mkdtemp(prefix="evidence-bench-"))
    results = []
    try:
        repo = agent_repo(inst, work / "repo", cache, None)  # hidden tests hidden
        good = good_reproduction(inst, repo)
        task = Task(repo=repo, problem_statement=inst.problem_statement, task_id=inst.instance_id,
                    env=venv.env(), test_timeout=120.0)  # fmt: skip
        gold = normalised(inst.patch)
        for p in ps:
            for seed in range(seeds):
                for arm in ARMS:
                    run_dir = out / "runs" / f"p{p}-s{seed}" / arm / inst.instance_id
                    shutil.rmtree(run_dir, ignore_errors=True)
                    policy, critic = ScriptedPolicy(inst, p, seed, good, files), ScriptedCritic(inst, seed)
                    start = time.monotonic()
                    try:
                        o = run_fix(task, config_for(arm, max_nodes), run_dir,
                                    agents=lambda *_: Agents(policy, critic, None))  # noqa: B023
                    except Exception as e:  # one broken instance must not end the measurement
                        results.append(Result(inst.instance_id, p, seed, arm, "error", "", False, False, 0, 0, 0,
                                              0.0, f"{type(e).__name__}: {e}"))  # fmt: skip
                        continue
                    s = o.summary
                    results.append(Result(
                        inst.instance_id, p, seed, arm, o.exit_status, (s.get("choice") or {}).get("rule", ""),
                        grader.resolved(inst, o.patch), bool(o.patch) and normalised(o.patch) == gold,
                        sum(v for k, v in s["nodes"].items() if k != "root"), s["usage"]["test_runs"],
                        s["reproductions"]["accepted"], round(time.monotonic() - start, 1),
                    ))  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def table(results: list[Result], ps: list[float], total: int, seeds: int) -> str:
    rows = [f"{'p':>4} {'arm':<12} {'resolved':>14} {'verified':>9} {'test runs/task':>15} {'nodes/task':>11}"]
    share = {}
    for p in ps:
        for arm in ARMS:
            rs = [r for r in results if r.p == p and r.arm == arm]
            if not rs:
                continue
            n = sum(r.resolved for r in rs)
            share[(p, arm)] = n / len(rs)
            rows.append(
                f"{p:>4} {arm:<12} {n:>4}/{len(rs):<4} {100 * n / len(rs):>4.0f}% "
                f"{sum(r.exit_status == 'verified' for r in rs):>9} {sum(r.test_runs for r in rs) / len(rs):>15.1f} "
                f"{sum(r.nodes for r in rs) / len(rs):>11.1f}"
            )
        if share.get((p, "critic-only")):
            rows.append(f"{'':>4} ratio evidence / critic-only: {share[(p, 'evidence')] / share[(p, 'critic-only')]:.2f}x")
    return "\n".join(rows)


def interleave(instances: list[Instance]) -> list[Instance]:
    """One task of each repository in turn, so a partial run already spans every package."""
    by_repo: dict[str, list[Instance]] = {}
    for i in instances:
        by_repo.setdefault(i.repo, []).append(i)
    queues = list(by_repo.values())
    out = []
    while any(queues):
        out += [q.pop(0) for q in queues if q]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", type=Path, default=SUITE)
    ap.add_argument("--p", default="0.3,0.6", help="chance that a code attempt is right")
    ap.add_argument("--max-nodes", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=1, help="runs per instance and p")
    ap.add_argument("--repro-files", type=int, default=3,
                    help="test files per reproduction call, each drawn from the mix (1: one file per call, as before)")
    ap.add_argument("-i", "--instance", action="append", default=[])
    ap.add_argument("-w", "--workers", type=int, default=2)
    ap.add_argument("-o", "--output", type=Path, default=Path(tempfile.gettempdir()) / "treefix-evidence-bench")
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--table", action="store_true", help="print the table of the results in the output folder")
    args = ap.parse_args(argv)
    from platformdirs import user_cache_dir

    cache = (args.cache_dir or Path(user_cache_dir("treefix"))).resolve()
    ps = [float(x) for x in args.p.split(",") if x.strip()]
    instances, problems = load_dataset(args.dataset)
    for prob in problems:
        print(f"skipped: {prob}", file=sys.stderr)
    if args.instance:
        instances = [i for i in instances if i.instance_id in set(args.instance)]
    out = args.output.resolve()
    if args.table:
        store = out / "results.jsonl"
        rows = store.read_text().splitlines() if store.is_file() else []
        done = [Result(**json.loads(ln)) for ln in rows if ln.strip()]
        print(f"{len({r.instance_id for r in done})} of {len(instances)} tasks in {store}")
        print(table(done, ps, len(instances), args.seeds))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    store = out / "results.jsonl"
    done = [Result(**json.loads(ln)) for ln in store.read_text().splitlines() if ln.strip()] if store.is_file() else []
    finished = {r.instance_id for r in done if r.p in ps}  # a re-run resumes: finished instances are kept
    instances = interleave([i for i in instances if i.instance_id not in finished])
    grader = Grader(out, cache)
    lock = threading.Lock()

    def one(inst: Instance) -> list[Result]:
        rs = run_instance(inst, ps, args.seeds, args.max_nodes, out, cache, grader, args.repro_files)
        with lock:
            with store.open("a") as fh:
                fh.writelines(json.dumps(asdict(r)) + "\n" for r in rs)
            for r in rs:
                print(f"{r.instance_id:<40} p={r.p} {r.arm:<12} {'resolved' if r.resolved else r.exit_status:<12} "
                      f"{r.rule:<13} {r.nodes:>3} nodes {r.test_runs:>3} tests {r.seconds:>6.1f}s {r.error}", flush=True)  # fmt: skip
        return rs

    with ThreadPoolExecutor(max(1, args.workers)) as pool:
        results = done + [r for rs in pool.map(one, instances) for r in rs]
    print()
    print(f"{len({r.instance_id for r in results})} tasks x {args.seeds} seed(s), no test command, hidden tests hidden, "
          f"max {args.max_nodes} nodes per run, {args.repro_files} test file(s) per reproduction call; "
          "good reproductions derived from the hidden tests (benchmark only)")  # fmt: skip
    print(table(results, ps, len(instances), args.seeds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
