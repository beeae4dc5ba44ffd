"""Build the bundled suite from `tasks.py`: inject each bug into the pristine sdist, derive the
diffs, and compute FAIL_TO_PASS / PASS_TO_PASS by running the tests on the base and on the fix.

    python -m treefix.evals.suites.build.build_suite [--cache-dir DIR] [--only ID ...]

Writes evals/suites/all.jsonl and evals/suites/smoke.jsonl. Needs the package index (sdists and
the packages' test dependencies); later runs reuse the cache.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from treefix.evals.dataset import Instance, Source
from treefix.evals.environment import _copy_tree, git, pristine_source
from treefix.evals.harness import PASSED, evaluate_one
from treefix.evals.suites.build.tasks import EXTRA_TEST_DEPS, PACKAGES, SMOKE, TASKS

SUITES = Path(__file__).resolve().parents[1]
PYTEST = "python -m pytest -rA -p no:cacheprovider -o addopts=''"
MAX_P2P = 6


def diffs(task: dict, cache_dir: Path) -> tuple[str, str, str]:
    """(bug_patch, gold patch, test_patch) as git diffs against the pristine sources."""
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        _copy_tree(pristine_source(Source(pypi=task["pkg"]), cache_dir), repo)
        git(repo, "init", "-q")
        git(repo, "add", "-A", "-f")
        git(repo, "commit", "-q", "-m", "pristine")
        for rel, fixed, buggy in task["edits"]:
            path = repo / rel
            text = path.read_text()
            if text.count(fixed) != 1:
                raise SystemExit(
                    f"{task['id']}: expected exactly one match in {rel}, found {text.count(fixed)}"
                )
            path.write_text(text.replace(fixed, buggy))
        bug = git(repo, "diff").stdout
        gold = git(repo, "diff", "-R").stdout
        git(repo, "checkout", "-q", "--", ".")
        test_path = repo / task["test_file"]
        test_path.write_text(test_path.read_text().rstrip("\n") + "\n\n" + task["tests"].lstrip("\n"))
        tests = git(repo, "diff").stdout
    return bug, gold, tests


def draft(task: dict, cache_dir: Path) -> Instance:
    bug, gold, test_patch = diffs(task, cache_dir)
    hidden = [f"{task['test_file']}::{name}" for name in re.findall(r"^def (test_\w+)", task["tests"], re.M)]
    select = list(task["select"])
    run = select + ([] if task["test_file"] in select else hidden)
    name, version = task["pkg"].split("==")
    return Instance(
        instance_id=task["id"],
        repo=PACKAGES[task["pkg"]],
        version=version,
        problem_statement=task["statement"].strip() + "\n",
        source={"pypi": task["pkg"]},
        bug_patch=bug,
        patch=gold,
        test_patch=test_patch,
        FAIL_TO_PASS=hidden,
        setup=["pip install .", "pip install pytest " + " ".join(EXTRA_TEST_DEPS.get(task["pkg"], []))],
        test_cmd=" ".join([PYTEST, *map(shlex.quote, run)]),
        agent_test_cmd=" ".join([PYTEST.replace(" -rA", ""), *map(shlex.quote, select)]),
        difficulty=task["difficulty"],
    )


def finish(task: dict, inst: Instance, cache_dir: Path, scratch: Path) -> Instance:
    """Run the tests on base and on the fix; fill FAIL_TO_PASS / PASS_TO_PASS from what happened."""
    base = evaluate_one(inst, "", scratch / "base", cache_dir)
    fixed = evaluate_one(inst, inst.patch, scratch / "gold", cache_dir)
    if base.error or fixed.error:
        raise SystemExit(f"{inst.instance_id}: {base.error or fixed.error}")
    f2p = sorted(t for t, o in fixed.tests.items() if o == PASSED and base.tests.get(t) != PASSED)
    stable = sorted(t for t, o in fixed.tests.items() if o == PASSED and base.tests.get(t) == PASSED)
    hidden = inst.FAIL_TO_PASS
    if broken := [t for t in hidden if t not in f2p and t not in stable]:
        raise SystemExit(f"{inst.instance_id}: hidden tests that fail on the fix: {broken}")
    if not any(t in f2p for t in hidden):
        raise SystemExit(f"{inst.instance_id}: no hidden test fails on the base")
    # Hidden tests that pass either way still guard the fix, like SWE-bench's added regression tests.
    related = [t for t in stable if t in hidden or any(k.lower() in t.lower() for k in task["p2p"])]
    p2p = (related + [t for t in stable if t not in related])[:MAX_P2P]
    if len(p2p) < 2:
        raise SystemExit(f"{inst.instance_id}: too few passing tests for PASS_TO_PASS: {p2p}")
    return inst.model_copy(update={"FAIL_TO_PASS": f2p, "PASS_TO_PASS": p2p})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "treefix")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("-w", "--workers", type=int, default=2)
    args = ap.parse_args(argv)
    tasks = [t for t in TASKS if not args.only or t["id"] in args.only]
    existing = {}
    if args.only and (SUITES / "all.jsonl").exists():
        existing = {
            json.loads(line)["instance_id"]: line for line in (SUITES / "all.jsonl").read_text().splitlines()
        }

    with tempfile.TemporaryDirectory() as tmp:

        def build(task: dict) -> Instance | None:
            try:
                inst = finish(task, draft(task, args.cache_dir), args.cache_dir, Path(tmp) / task["id"])
            except SystemExit as e:
                print(f"FAILED {e}", flush=True)
                return None
            print(
                f"{inst.instance_id}: F2P {len(inst.FAIL_TO_PASS)}, P2P {len(inst.PASS_TO_PASS)}", flush=True
            )
            return inst

        with ThreadPoolExecutor(args.workers) as pool:
            results = list(pool.map(build, tasks))
    built = [i for i in results if i is not None]

    lines = dict(existing)
    for inst in built:
        lines[inst.instance_id] = json.dumps(inst.to_json(), ensure_ascii=False)
    order = [t["id"] for t in TASKS if t["id"] in lines]
    (SUITES / "all.jsonl").write_text("".join(lines[i] + "\n" for i in order))
    (SUITES / "smoke.jsonl").write_text("".join(lines[i] + "\n" for i in SMOKE if i in lines))
    print(f"wrote {len(order)} tasks to {SUITES / 'all.jsonl'}; {len(results) - len(built)} failed")
    return 0 if len(built) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
