"""The local evaluation harness: apply a prediction to a fresh base, add the hidden tests, grade.

An instance is resolved only if every FAIL_TO_PASS and PASS_TO_PASS test passed. Each call writes
a new run directory, so a verdict from an earlier run is never reused. Empty patches are still run
(unlike the official harness): evaluating `empty` must prove that the base fails its tests.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from treefix.evals import swebench_specs
from treefix.evals.dataset import Instance
from treefix.evals.environment import (
    EnvError,
    apply_patch,
    ensure_venv,
    finish_checkout,
    git,
    installed_checkout,
    prepare_base,
)
from treefix.tools.diffs import patch_paths
from treefix.tools.sandbox import Sandbox, default_sandbox, whole_output
from treefix.tools.testing import PASSED, isolate_pytest, run_tests

RESOLVED, UNRESOLVED, EMPTY, ERROR = "resolved", "unresolved", "empty_patch", "error"
DEFAULT_TEST_CMD = "python -m pytest -rA -p no:cacheprovider"
DEFAULT_TIMEOUT = 900.0


class HarnessError(RuntimeError):
    """The evaluation cannot start (bad run id, instances that need a harness we do not have)."""


@dataclass
class InstanceResult:
    instance_id: str
    status: str  # resolved | unresolved | empty_patch | error
    resolved: bool = False
    patch_applied: bool = False
    error: str | None = None
    fail_to_pass: dict[str, list[str]] = field(default_factory=lambda: {"success": [], "failure": []})
    pass_to_pass: dict[str, list[str]] = field(default_factory=lambda: {"success": [], "failure": []})
    tests: dict[str, str] = field(default_factory=dict)
    duration: float = 0.0


@dataclass
class Report:
    run_id: str
    run_dir: Path
    instance_ids: list[str]  # every instance considered (the dataset after filtering)
    results: dict[str, InstanceResult] = field(default_factory=dict)

    def ids(self, *statuses: str) -> list[str]:
        return sorted(i for i, r in self.results.items() if r.status in statuses)

    @property
    def resolved_ids(self) -> list[str]:
        return sorted(i for i, r in self.results.items() if r.resolved)

    def to_json(self) -> dict:
        """The keys and meanings of the official harness's run report (schema_version 2)."""
        completed = self.ids(RESOLVED, UNRESOLVED, EMPTY)
        submitted = sorted(self.results)
        return {
            "total_instances": len(self.instance_ids),
            "submitted_instances": len(submitted),
            "completed_instances": len(completed),
            "resolved_instances": len(self.resolved_ids),
            "unresolved_instances": len(self.ids(UNRESOLVED)),
            "empty_patch_instances": len(self.ids(EMPTY)),
            "error_instances": len(self.ids(ERROR)),
            "completed_ids": completed,
            "incomplete_ids": sorted(set(self.instance_ids) - set(completed)),
            "empty_patch_ids": self.ids(EMPTY),
            "submitted_ids": submitted,
            "resolved_ids": self.resolved_ids,
            "unresolved_ids": self.ids(UNRESOLVED),
            "error_ids": self.ids(ERROR),
            "run_id": self.run_id,
            "schema_version": 2,
        }


def new_run_id() -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def evaluate(
    instances: Iterable[Instance],
    predictions: dict[str, str],
    output: Path,
    cache_dir: Path,
    repos_dir: Path | None = None,
    workers: int = 1,
    run_id: str | None = None,
    sandbox: Sandbox | None = None,
    on_result: Callable[[InstanceResult], None] | None = None,
    docker: bool = False,
) -> Report:
    """Evaluate `predictions` ({instance_id: model_patch}) and write `<output>/<run_id>/`."""
    instances = list(instances)
    run_id = run_id or new_run_id()
    # A folder name under output, never a path that leads out of it.
    if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", run_id):
        raise HarnessError(f"run id {run_id!r} must be a plain name (letters, digits, . _ -)")
    # Absolute from here on: every path handed to a subprocess must not depend on its cwd.
    output, cache_dir = Path(output).resolve(), Path(cache_dir).resolve()
    repos_dir = Path(repos_dir).resolve() if repos_dir else None
    run_dir = output / run_id
    if run_dir.exists():
        raise HarnessError(f"run {run_id!r} already exists in {output}; pick another run id or delete it")
    todo = [i for i in instances if i.instance_id in predictions]
    foreign = [i for i in todo if docker or needs_official_harness(i)]
    if foreign:  # before anything is written: a missing harness is bad input
        check_official_harness(foreign, docker)
        todo = [i for i in todo if i not in foreign]
    try:
        run_dir.mkdir(parents=True)
    except OSError as e:
        raise HarnessError(f"cannot write to {output}: {e.strerror or e}") from None
    report = Report(run_id, run_dir, [i.instance_id for i in instances])
    lock = threading.Lock()

    def one(inst: Instance) -> None:
        result = evaluate_one(inst, predictions[inst.instance_id], run_dir, cache_dir, repos_dir, sandbox)
        with lock:
            report.results[inst.instance_id] = result
            _write_json(run_dir / "report.json", report.to_json())
        if on_result:
            on_result(result)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, todo))
    if foreign:
        for result in evaluate_official(foreign, predictions, run_dir, workers):
            report.results[result.instance_id] = result
    _write_json(run_dir / "report.json", report.to_json())
    return report


def evaluate_one(
    inst: Instance,
    model_patch: str,
    run_dir: Path,
    cache_dir: Path,
    repos_dir: Path | None = None,
    sandbox: Sandbox | None = None,
) -> InstanceResult:
    log_dir = run_dir / "logs" / _safe(inst.instance_id)
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / "patch.diff").write_text(model_patch or "")
    start = time.monotonic()
    empty = not (model_patch or "").strip()
    work = Path(tempfile.mkdtemp(prefix="work-", dir=run_dir))
    try:
        result = _grade(inst, model_patch, work / "repo", log_dir, cache_dir, repos_dir, sandbox, empty)
    except EnvError as e:
        result = InstanceResult(inst.instance_id, ERROR, error=str(e))
    except Exception as e:  # a harness bug must not take the other instances down
        result = InstanceResult(inst.instance_id, ERROR, error=f"{type(e).__name__}: {e}")
        (log_dir / "traceback.txt").write_text(traceback.format_exc())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result.duration = round(time.monotonic() - start, 3)
    _write_json(log_dir / "report.json", _official_instance_report(inst.instance_id, result, model_patch))
    _write_json(log_dir / "result.json", asdict(result))
    return result


def _grade(
    inst: Instance,
    model_patch: str,
    repo: Path,
    log_dir: Path,
    cache_dir: Path,
    repos_dir: Path | None,
    sandbox: Sandbox | None,
    empty: bool,
) -> InstanceResult:
    iid = inst.instance_id
    official = swebench_specs.applies(inst) and swebench_specs.available()
    if official:  # SWE-bench's own command, directives, log parser and rules
        try:
            spec = swebench_specs.spec_for(inst)
        except swebench_specs.SpecError as e:
            return InstanceResult(iid, ERROR, error=f"{iid}: {e}")
    repo = prepare_base(inst, repo, cache_dir, repos_dir)
    venv = ensure_venv(inst, cache_dir, repos_dir)
    finish_checkout(inst, repo, venv, commit=True)
    if error := apply_patch(repo, model_patch, name="model_patch"):
        return InstanceResult(iid, ERROR, error=error)
    reset_test_files(repo, inst.test_patch)
    if error := apply_patch(repo, inst.test_patch, name="test_patch"):
        return InstanceResult(iid, ERROR, patch_applied=True, error=error)
    if official:
        cmd = isolate_pytest(spec.test_command(inst), repo)
        swebench_specs.prepare_runner(cmd, repo, venv.python)
    else:
        cmd = test_command(inst)
    (log_dir / "eval.sh").write_text(f"cd {shlex.quote(str(repo))}\n{cmd}\n")
    box = sandbox or default_sandbox()  # a venv under /tmp stays visible: its PATH is shown
    timeout = float(getattr(inst, "timeout", None) or DEFAULT_TIMEOUT)
    if official:
        try:
            with installed_checkout(repo, venv, spec.raw.get("install"), log_dir / "install.log"):
                run = whole_output(box).run(cmd, repo, timeout, {**venv.env(repo), **spec.test_env()})
        except EnvError as e:
            return InstanceResult(iid, ERROR, patch_applied=True, error=f"install in the checkout: {e}")
        status = swebench_specs.parse_log(inst, run.output)
        report, resolved = swebench_specs.grade_status_map(inst, status)
        f2p, p2p = report["FAIL_TO_PASS"], report["PASS_TO_PASS"]
        result = InstanceResult(iid, RESOLVED if resolved else EMPTY if empty else UNRESOLVED, resolved,
                                fail_to_pass=f2p, pass_to_pass=p2p, tests=dict(status))  # fmt: skip
    else:
        run, tests = run_tests(box, cmd, repo, timeout, venv.env(repo))
        result = grade(iid, inst.FAIL_TO_PASS, inst.PASS_TO_PASS, tests.tests, empty)
    (log_dir / "test_output.txt").write_text(run.output)
    result.patch_applied = True
    if run.timed_out:
        result.error = f"tests timed out after {timeout:.0f}s"
    elif run.output_limited:
        result.error = "tests stopped: they printed more than the output limit"
    return result


def grade(
    iid: str, f2p: list[str], p2p: list[str], tests: dict[str, str], empty: bool = False
) -> InstanceResult:
    tests = with_truncated_ids(tests)
    split = {name: {"success": [t for t in ids if tests.get(t) == PASSED],
                    "failure": [t for t in ids if tests.get(t) != PASSED]}
             for name, ids in (("f2p", f2p), ("p2p", p2p))}  # fmt: skip
    resolved = bool(f2p or p2p) and not split["f2p"]["failure"] and not split["p2p"]["failure"]
    status = RESOLVED if resolved else EMPTY if empty else UNRESOLVED
    return InstanceResult(
        iid, status, resolved, fail_to_pass=split["f2p"], pass_to_pass=split["p2p"], tests=dict(tests)
    )


def with_truncated_ids(tests: dict[str, str]) -> dict[str, str]:
    """Add the ids SWE-bench records for parametrized tests whose parameters hold a space: its log
    parser splits on whitespace, so `t.py::test_x[a b]` is stored as `t.py::test_x[a`. Several
    tests can share one cut id; it passes only if all of them passed."""
    out = dict(tests)
    cut: dict[str, list[str]] = {}
    for test, outcome in tests.items():
        if len(parts := test.split()) > 1:
            cut.setdefault(parts[0], []).append(outcome)
    for short, outcomes in cut.items():
        if short not in tests:
            out[short] = PASSED if all(o == PASSED for o in outcomes) else next(o for o in outcomes if o != PASSED)
    return out


def test_command(inst: Instance) -> str:
    if inst.test_cmd:
        return inst.test_cmd
    files = sorted({t.split("::", 1)[0] for t in inst.FAIL_TO_PASS + inst.PASS_TO_PASS})
    return " ".join([DEFAULT_TEST_CMD, *files])


def needs_official_harness(inst: Instance) -> bool:
    """No test command, no SWE-bench specs installed, and test ids that are not pytest node ids
    (e.g. Django's unittest names)."""
    if swebench_specs.applies(inst) and swebench_specs.available():
        return False
    return not inst.test_cmd and not all("::" in t for t in inst.FAIL_TO_PASS + inst.PASS_TO_PASS)


def reset_test_files(repo: Path, test_patch: str) -> None:
    """Put the files that test_patch touches back to base, so a model edit there cannot conflict."""
    for path in patch_paths(test_patch):
        if git(repo, "cat-file", "-e", f"HEAD:{path}", check=False).returncode == 0:
            git(repo, "checkout", "-q", "HEAD", "--", path)
        else:
            (repo / path).unlink(missing_ok=True)




def _official_instance_report(iid: str, r: InstanceResult, patch: str) -> dict:
    return {iid: {
        "patch_is_None": patch is None,
        "patch_exists": bool((patch or "").strip()),
        "patch_successfully_applied": r.patch_applied,
        "resolved": r.resolved,
        "tests_status": {"FAIL_TO_PASS": r.fail_to_pass, "PASS_TO_PASS": r.pass_to_pass},
        "error": r.error,
    }}  # fmt: skip


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)  # readers never see half a file


def _safe(iid: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", iid)


# --- hand-off to the official harness (Docker images per instance) -----------------------------


def check_official_harness(instances: list[Instance], docker: bool) -> None:
    if importlib.util.find_spec("swebench") is not None and shutil.which("docker"):
        return
    ids = [i.instance_id for i in instances]
    shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
    why = "--docker was asked for" if docker else "they have no pytest test command"
    raise HarnessError(
        f"{len(ids)} instance(s) need the official SWE-bench harness because {why} ({shown}); "
        "install it with `pip install 'treefix[swebench]'` and make sure Docker is running"
    )


def evaluate_official(
    instances: list[Instance], predictions: dict[str, str], run_dir: Path, workers: int
) -> list[InstanceResult]:
    """Run `swebench.harness.run_evaluation` on these instances and read its verdicts back."""
    work = run_dir / "official"
    work.mkdir(parents=True, exist_ok=True)
    dataset = [i.model_dump(mode="json", exclude_none=True) for i in instances]
    for d in dataset:  # the official loader accepts JSON-encoded lists in every version
        d["FAIL_TO_PASS"], d["PASS_TO_PASS"] = json.dumps(d["FAIL_TO_PASS"]), json.dumps(d["PASS_TO_PASS"])
    _write_json(work / "dataset.json", dataset)
    preds = [{"instance_id": i.instance_id, "model_name_or_path": "treefix",
              "model_patch": predictions[i.instance_id]} for i in instances]  # fmt: skip
    _write_json(work / "predictions.json", preds)
    run_id = run_dir.name
    cmd = [sys.executable, "-m", "swebench.harness.run_evaluation", "--dataset_name", "dataset.json",
           "--predictions_path", "predictions.json", "--max_workers", str(max(1, workers)),
           "--run_id", run_id, "--instance_ids", *[i.instance_id for i in instances]]  # fmt: skip
    with (work / "harness.log").open("w") as log:
        proc = subprocess.run(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT)
    reports = sorted(work.glob(f"*.{run_id}.json"))
    if proc.returncode != 0 or not reports:
        err = f"official harness failed (exit {proc.returncode}); see {work / 'harness.log'}"
        return [InstanceResult(i.instance_id, ERROR, error=err) for i in instances]
    official = json.loads(reports[0].read_text())
    results = []
    for inst in instances:
        iid = inst.instance_id
        if iid in official.get("resolved_ids", []):
            results.append(InstanceResult(iid, RESOLVED, resolved=True, patch_applied=True))
        elif iid in official.get("unresolved_ids", []):
            results.append(InstanceResult(iid, UNRESOLVED, patch_applied=True))
        elif iid in official.get("empty_patch_ids", []):
            results.append(InstanceResult(iid, EMPTY))
        else:
            results.append(InstanceResult(iid, ERROR, error=f"official harness: see {work / 'harness.log'}"))
    return results
