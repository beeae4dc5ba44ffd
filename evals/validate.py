"""Check instances the way SWE-bench validates them: FAIL_TO_PASS fails before the gold patch and
passes after it, PASS_TO_PASS passes both times. Each instance gets a verdict and a one-line reason;
a broken instance (no clone, no spec, no interpreter, a setup that fails) never stops the batch."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from treefix.evals.dataset import Instance
from treefix.evals.harness import ERROR, InstanceResult, evaluate_one


@dataclass
class Verdict:
    instance_id: str
    repo: str
    valid: bool
    reason: str
    before: float = 0.0  # seconds, base run (the first one builds the venv when it is cold)
    after: float = 0.0  # seconds, gold run

    def to_json(self) -> dict:
        return asdict(self)


def _shown(tests: list[str]) -> str:
    return tests[0] + (f" (+{len(tests) - 1} more)" if len(tests) > 1 else "")


def judge(inst: Instance, before: InstanceResult, after: InstanceResult) -> tuple[bool, str]:
    for label, r in (("base", before), ("gold", after)):
        if r.status == ERROR:
            return False, f"{label} run: {(r.error or 'error').splitlines()[0]}"
    if passed := before.fail_to_pass.get("success", []):
        return False, f"FAIL_TO_PASS passes before the gold patch: {_shown(passed)}"
    if failed := before.pass_to_pass.get("failure", []):
        return False, f"PASS_TO_PASS fails before the gold patch: {_shown(failed)}"
    if failed := after.fail_to_pass.get("failure", []):
        return False, f"FAIL_TO_PASS fails after the gold patch: {_shown(failed)}"
    if failed := after.pass_to_pass.get("failure", []):
        return False, f"PASS_TO_PASS fails after the gold patch: {_shown(failed)}"
    if after.error:  # a timeout with every listed test reported is still suspicious
        return False, after.error.splitlines()[0]
    n = len(inst.FAIL_TO_PASS), len(inst.PASS_TO_PASS)
    return True, f"{n[0]} FAIL_TO_PASS fail then pass, {n[1]} PASS_TO_PASS pass both times"


_NETWORK = ("Failed to establish a new connection", "Temporary failure in name resolution",
            "Name or service not known", "Network is unreachable")  # fmt: skip


def _hint(run_dir: Path, iid: str) -> str | None:
    """Why tests failed, when the output says so plainly: grading runs without the network."""
    from treefix.evals.harness import _safe

    texts = []
    for label in ("before", "gold"):
        out = run_dir / label / "logs" / _safe(iid) / "test_output.txt"
        texts.append(out.read_text(errors="replace") if out.is_file() else "")
        if any(s in texts[-1] for s in _NETWORK):
            return "these tests need the network, which grading does not have"
    for text in texts:  # a package resolved today that dropped a module the old code imports
        if m := _NO_MODULE.search(text):
            return f"an import fails in this environment: No module named {m.group(1)!r}"
    return None


_NO_MODULE = re.compile(r"ModuleNotFoundError: No module named '([\w.]+)'")


def validate(
    instances: Iterable[Instance],
    run_dir: Path,
    cache_dir: Path,
    repos_dir: Path | None = None,
    workers: int = 1,
    on_verdict: Callable[[Verdict], None] | None = None,
) -> list[Verdict]:
    run_dir, cache_dir = Path(run_dir).resolve(), Path(cache_dir).resolve()
    repos_dir = Path(repos_dir).resolve() if repos_dir else None
    results_file = run_dir / "verdicts.jsonl"
    run_dir.mkdir(parents=True, exist_ok=True)

    def one(inst: Instance) -> Verdict:
        t0 = time.monotonic()
        before = evaluate_one(inst, "", run_dir / "before", cache_dir, repos_dir)
        t1 = time.monotonic()
        after = evaluate_one(inst, inst.patch, run_dir / "gold", cache_dir, repos_dir) if before.status != ERROR \
            else before  # fmt: skip
        t2 = time.monotonic()
        valid, reason = judge(inst, before, after)
        if not valid and (hint := _hint(run_dir, inst.instance_id)):
            reason += f" ({hint})"
        v = Verdict(inst.instance_id, inst.repo, valid, reason, round(t1 - t0, 1), round(t2 - t1, 1))
        with results_file.open("a") as fh:
            fh.write(json.dumps(v.to_json()) + "\n")
        if on_verdict:
            on_verdict(v)
        return v

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(one, instances))
