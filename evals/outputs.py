"""The batch's output folder, as users of SWE-bench tools expect it.

`preds.json`, `all_preds.jsonl`, `exit_statuses.yaml`, `<id>/<id>.tree.json`, `<id>/summary.json`,
rewritten after every instance. Only the runner's parent process writes them, and every write is
a temp file renamed over the old one, so a reader or a killed runner never sees half a file.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from treefix.evals.worker import ERROR, WorkResult

PREDS, ALL_PREDS, STATUSES, LOG = "preds.json", "all_preds.jsonl", "exit_statuses.yaml", "run_batch.log"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2) + "\n")


def model_name_or_path(model: str, label: str = "") -> str:
    """`treefix__<model>[__<label>]`, safe as a folder name (the official harness makes one of it)."""
    if model.startswith("replay:"):
        model = "replay-" + Path(model.removeprefix("replay:")).stem
    slug = re.sub(r"[^A-Za-z0-9._-]+", "--", model).strip("-")
    return "__".join(p for p in ("treefix", slug, label) if p)


def instance_dir(out: Path, iid: str) -> Path:
    return out / re.sub(r"[^A-Za-z0-9._-]+", "_", iid)


class OutputsError(ValueError):
    """An output folder whose preds.json is not one we wrote: never merged into or overwritten."""


def _read_preds(path: Path) -> dict[str, dict[str, Any]]:
    try:
        preds = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return {}  # a new folder (or no folder: creating it gives the clear error)
    except (OSError, ValueError) as e:
        raise OutputsError(f"{path}: not a predictions file written by treefix ({e})") from None
    # Every write is atomic, so anything else was written by someone else.
    ours = isinstance(preds, dict) and all(
        isinstance(p, dict) and isinstance(p.get("instance_id"), str) and "model_patch" in p
        for p in preds.values()
    )
    if not ours:
        raise OutputsError(
            f"{path}: not a predictions file written by treefix "
            "(expected {instance_id: {instance_id, model_patch, ...}})"
        )
    return preds


@dataclass
class BatchOutputs:
    out: Path
    preds: dict[str, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)  # instance id -> exit status
    costs: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, out: Path) -> BatchOutputs:
        """What an earlier run of the same command left, so it can be resumed."""
        state = cls(out)
        for name in (PREDS, ALL_PREDS, STATUSES):  # half-written by a runner killed mid-write
            for stale in out.glob(f".{name}.*.tmp"):
                stale.unlink(missing_ok=True)
        state.preds = _read_preds(out / PREDS)
        try:
            by_status = (yaml.safe_load((out / STATUSES).read_text()) or {}).get(
                "instances_by_exit_status", {}
            )
        except (OSError, yaml.YAMLError, AttributeError):
            by_status = {}
        for status, ids in (by_status or {}).items():
            for iid in ids or []:
                state.statuses[iid] = status
        for iid in state.preds:
            summary = state.summary(iid)
            # A runner killed between two writes: the instance's own summary is the fallback.
            state.statuses.setdefault(iid, summary.get("exit_status", ERROR))
            state.costs[iid] = float(summary.get("usage", {}).get("cost", 0.0))
        return state

    def summary(self, iid: str) -> dict[str, Any]:
        try:
            return json.loads((instance_dir(self.out, iid) / "summary.json").read_text())
        except (OSError, ValueError):
            return {}

    def finished(self, iid: str) -> bool:
        """Done and not errored: skipped when the same command runs again."""
        return iid in self.preds and not self.statuses.get(iid, ERROR).startswith(ERROR)

    def record(self, result: WorkResult, model_name: str, extra: dict[str, Any]) -> dict[str, Any]:
        """Write the instance's files, then the shared ones; returns the instance summary."""
        iid = result.instance_id
        d = instance_dir(self.out, iid)
        summary = {
            **result.summary,
            "instance_id": iid,
            "exit_status": result.exit_status,
            "model_name_or_path": model_name,
            "wall_time": round(result.wall_time, 3),
            "error": result.error,
            **extra,
        }
        summary.setdefault("usage", {"cost": 0.0, "tokens": 0, "turns": 0, "elapsed": 0.0})
        if result.tree is not None:
            write_json(d / f"{d.name}.tree.json", result.tree)
        write_atomic(d / "patch.diff", result.patch)
        if result.traceback:
            write_atomic(d / "error.txt", result.traceback)
        write_json(d / "summary.json", summary)
        self.preds[iid] = {"instance_id": iid, "model_name_or_path": model_name, "model_patch": result.patch}
        self.statuses[iid] = result.exit_status
        self.costs[iid] = float(summary["usage"].get("cost", 0.0))
        self.write_shared()
        self.log(f"{iid}\t{result.exit_status}\t${self.costs[iid]:.4f}\t{result.wall_time:.1f}s"
                 + (f"\t{result.error}" if result.error else ""))  # fmt: skip
        return summary

    def write_shared(self) -> None:
        # Sorted: the same batch gives the same bytes whatever order instances finished in.
        preds = dict(sorted(self.preds.items()))
        write_json(self.out / PREDS, preds)
        write_atomic(self.out / ALL_PREDS, "".join(json.dumps(p) + "\n" for p in preds.values()))
        by_status: dict[str, list[str]] = {}
        for iid, status in sorted(self.statuses.items()):
            by_status.setdefault(status, []).append(iid)
        write_atomic(
            self.out / STATUSES, yaml.safe_dump({"instances_by_exit_status": by_status}, sort_keys=True)
        )

    def log(self, line: str) -> None:
        with (self.out / LOG).open("a") as fh:
            fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}\t{line}\n")
