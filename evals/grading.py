"""`treefix swebench eval`: grade predictions (gold, empty or a file) and write SWE-bench's report; no CLI framework here."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from treefix.evals.dataset import Instance, load_dataset
from treefix.evals.harness import EMPTY, ERROR, RESOLVED, HarnessError, InstanceResult, evaluate

console = Console(highlight=False, emoji=False)
err_console = Console(stderr=True, highlight=False, emoji=False)  # errors and warnings, like the other commands
_STYLE = {RESOLVED: "green", "unresolved": "yellow", EMPTY: "dim", ERROR: "red"}


class PredictionsError(ValueError):
    pass


def default_cache_dir() -> Path:
    if env := os.environ.get("TREEFIX_CACHE_DIR"):
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("treefix"))


def load_predictions(spec: str, instances: list[Instance]) -> dict[str, str]:
    """A predictions file (preds.json, all_preds.jsonl, or a JSON list), or `gold` / `empty`."""
    if spec == "gold":
        return {i.instance_id: i.patch for i in instances}
    if spec == "empty":
        return {i.instance_id: "" for i in instances}
    path = Path(spec)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PredictionsError(f"cannot read predictions {path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise PredictionsError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        if path.suffix == ".jsonl":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            data = json.loads(text)
            records = list(data.values()) if isinstance(data, dict) else data
    except json.JSONDecodeError as e:
        raise PredictionsError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
    if not isinstance(records, list):
        raise PredictionsError(f"{path}: expected a JSON object or list of predictions")
    preds: dict[str, str] = {}
    for n, rec in enumerate(records, 1):
        if not isinstance(rec, dict) or not isinstance(rec.get("instance_id"), str):
            raise PredictionsError(f"{path}: record {n} has no instance_id")
        patch = rec.get("model_patch")
        if patch is not None and not isinstance(patch, str):
            raise PredictionsError(f"{path}: {rec['instance_id']}: model_patch must be a string")
        preds[rec["instance_id"]] = patch or ""
    return preds


def eval_command(
    dataset: Path,
    predictions: str,
    repos_dir: Path | None,
    output: Path,
    instance_ids: list[str],
    workers: int,
    run_id: str | None,
    docker: bool = False,
    cache_dir: Path | None = None,
) -> int:
    """Evaluate predictions; 0 when every instance was graded (and, for `gold`/`empty`, the dataset
    validated), 1 when some were not, 2 for bad input."""
    if not dataset.is_file():
        return _error(f"dataset not found: {dataset}")
    if workers < 1:
        return _error("-w/--workers must be at least 1")
    instances, problems = load_dataset(dataset)
    for problem in problems:
        err_console.print(f"[yellow]skipped[/] {escape(f'{dataset}: {problem}')}")
    if not instances:
        return _error(f"no usable instances in {dataset}")
    known = {i.instance_id for i in instances}
    if instance_ids:
        unknown = sorted(set(instance_ids) - known)
        if unknown:
            return _error(f"unknown instance id(s): {', '.join(unknown)}")
        instances = [i for i in instances if i.instance_id in set(instance_ids)]
    try:
        preds = load_predictions(predictions, instances)
    except PredictionsError as e:
        return _error(str(e))
    # Predictions for another dataset would grade nothing and still look like a clean run.
    if strays := sorted(set(preds) - known):
        shown = ", ".join(strays[:5]) + (f" and {len(strays) - 5} more" if len(strays) > 5 else "")
        if len(strays) == len(preds):
            return _error(f"no prediction in {predictions} is for an instance of {dataset} ({shown})")
        note = f"{len(strays)} prediction(s) not in {dataset}, ignored: {shown}"
        err_console.print(f"[yellow]warning:[/] {escape(note)}", soft_wrap=True)
    missing = [i.instance_id for i in instances if i.instance_id not in preds]
    if missing:
        console.print(f"[dim]{len(missing)} instance(s) have no prediction and are not evaluated[/]")

    start = time.monotonic()

    def progress(r: InstanceResult) -> None:
        note = f" - {r.error.splitlines()[0]}" if r.error else ""
        console.print(
            f"[{_STYLE.get(r.status, '')}]{r.status:>11}[/] {r.instance_id} ({r.duration:.1f}s){note}"
        )

    try:
        report = evaluate(instances, preds, output, cache_dir or default_cache_dir(), repos_dir,
                          workers, run_id, on_result=progress, docker=docker)  # fmt: skip
    except HarnessError as e:
        return _error(str(e))
    summary = report.to_json()
    table = Table(title=f"run {report.run_id}", show_header=False)
    for key in ("total_instances", "submitted_instances", "completed_instances", "resolved_instances",
                "unresolved_instances", "empty_patch_instances", "error_instances"):  # fmt: skip
        table.add_row(key.replace("_", " "), str(summary[key]))
    table.add_row("wall time", f"{time.monotonic() - start:.1f}s")
    console.print(table)
    console.print(f"report: {report.run_dir / 'report.json'}")
    if summary["error_instances"]:
        return 1
    if predictions == "gold" and summary["resolved_instances"] != summary["submitted_instances"]:
        err_console.print("[red]dataset check failed:[/] some gold patches do not resolve their instance")
        return 1
    if predictions == "empty" and summary["resolved_instances"]:
        err_console.print("[red]dataset check failed:[/] the empty patch resolves some instances")
        return 1
    return 0


def _error(message: str) -> int:
    """One line on stderr, like `_fail` in evals/cli.py; escaped so `treefix[swebench]` shows."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return 2


def validate_command(
    dataset: Path,
    repos_dir: Path | None,
    output: Path,
    instance_ids: list[str],
    workers: int,
    run_id: str | None,
    cache_dir: Path | None = None,
) -> int:
    """Validate instances with SWE-bench's rules; 0 when every one was judged (valid or not)."""
    from treefix.evals.harness import new_run_id
    from treefix.evals.validate import Verdict, validate

    if not dataset.is_file():
        return _error(f"dataset not found: {dataset}")
    if workers < 1:
        return _error("-w/--workers must be at least 1")
    if repos_dir is not None and not repos_dir.is_dir():
        return _error(f"--repos-dir is not a folder: {repos_dir}")
    instances, problems = load_dataset(dataset)
    for problem in problems:
        err_console.print(f"[yellow]skipped[/] {escape(f'{dataset}: {problem}')}")
    if not instances:
        return _error(f"no usable instances in {dataset}")
    if instance_ids:
        unknown = sorted(set(instance_ids) - {i.instance_id for i in instances})
        if unknown:
            return _error(f"unknown instance id(s): {', '.join(unknown)}")
        instances = [i for i in instances if i.instance_id in set(instance_ids)]
    run_dir = output / (run_id or f"validate-{new_run_id()}")
    if run_dir.exists():
        return _error(f"{run_dir} already exists; pick another --run-id")
    try:
        run_dir.mkdir(parents=True)
    except OSError as e:
        return _error(f"cannot write to {output}: {e.strerror or e}")

    def progress(v: Verdict) -> None:
        mark = "[green]  valid[/]" if v.valid else "[red]invalid[/]"
        console.print(f"{mark} {v.instance_id} ({v.before:.0f}s + {v.after:.0f}s) {escape(v.reason)}")

    start = time.monotonic()
    verdicts = validate(instances, run_dir, cache_dir or default_cache_dir(), repos_dir, workers, progress)
    table = Table(title=f"{dataset.name}: {sum(v.valid for v in verdicts)} of {len(verdicts)} valid")
    for col in ("instance", "verdict", "reason"):
        table.add_column(col, overflow="fold")
    for v in verdicts:
        table.add_row(v.instance_id, "[green]valid[/]" if v.valid else "[red]invalid[/]", escape(v.reason))
    console.print(table)
    valid = run_dir / "valid.jsonl"
    valid.write_text("".join(json.dumps({"instance_id": v.instance_id}) + "\n" for v in verdicts if v.valid))
    console.print(f"valid ids: {valid}  verdicts: {run_dir / 'verdicts.jsonl'}  "
                  f"wall time: {time.monotonic() - start:.0f}s")  # fmt: skip
    return 0
