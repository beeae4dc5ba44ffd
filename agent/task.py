"""What a run is asked to do. A task built from a benchmark instance never carries hidden fields."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Task:
    repo: Path  # a git repository (the user's checkout, or an evaluation environment)
    problem_statement: str
    base: str = "HEAD"  # resolved to a commit sha by the workspace
    test_cmd: str | None = None  # run in the repository root, e.g. "python -m pytest -q"
    task_id: str = ""  # instance id in batch runs
    hints: str = ""
    env: dict[str, str] = field(default_factory=dict)  # extra environment for test runs (e.g. a venv PATH)
    test_timeout: float = 300.0
    auto_timeout: bool = False  # test_timeout is then a ceiling: the base run's time sets it (evaluate.py)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["repo"] = str(self.repo)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Task:
        d = dict(d)
        d["repo"] = Path(d["repo"])
        return cls(**d)
