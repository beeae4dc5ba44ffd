"""SWE-bench-style instances: loading, validation, and the agent's restricted view.

Hidden fields (`test_patch`, `patch`, `FAIL_TO_PASS`, `PASS_TO_PASS`, `hints_text`) live only on
`Instance`. The agent gets an `AgentTask`, which is built from an allow-list of public fields and
keeps no reference to the instance it came from.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

HIDDEN_FIELDS = ("test_patch", "patch", "FAIL_TO_PASS", "PASS_TO_PASS", "hints_text")


class Source(BaseModel):
    """Where the pristine code comes from: an sdist on the package index, or a local dir/tarball."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    pypi: str | None = None  # "name==version"
    path: str | None = None  # a directory or an sdist archive (tests, private task sets)

    @model_validator(mode="after")
    def _one_of(self) -> Source:
        if (self.pypi is None) == (self.path is None):
            raise ValueError("source needs exactly one of 'pypi' or 'path'")
        if self.pypi is not None and not re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.!+_-]+", self.pypi):
            raise ValueError(f"source.pypi must look like 'name==version', got {self.pypi!r}")
        return self

    def key(self) -> str:
        return self.pypi or f"path:{self.path}"


class Instance(BaseModel):
    # Unknown fields (difficulty, created_at, environment_setup_commit, ...) are kept, not rejected.
    model_config = ConfigDict(extra="allow", frozen=True)

    instance_id: str
    repo: str
    problem_statement: str
    base_commit: str | None = None
    version: str | None = None
    FAIL_TO_PASS: list[str] = []
    PASS_TO_PASS: list[str] = []
    test_patch: str = ""
    patch: str = ""
    hints_text: str = ""
    # Extension for suites built from package sources.
    source: Source | None = None
    bug_patch: str = ""
    setup: list[str] | None = None
    test_cmd: str | None = None
    agent_test_cmd: str | None = None  # a public test command the agent may run (no hidden files)
    pythonpath: list[str] | None = None  # checkout-relative import roots; guessed when absent
    difficulty: str | None = None

    @field_validator("FAIL_TO_PASS", "PASS_TO_PASS", mode="before")
    @classmethod
    def _json_list(cls, v: Any) -> Any:
        # SWE-bench publishes these as JSON-encoded strings.
        if isinstance(v, str):
            try:
                v = json.loads(v) if v.strip() else []
            except json.JSONDecodeError as e:
                raise ValueError(f"not a JSON list: {e.msg}") from None
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ValueError("must be a list of test ids (strings)")
        return v

    @field_validator("setup", mode="before")
    @classmethod
    def _setup_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("instance_id", "repo")
    @classmethod
    def _non_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @model_validator(mode="after")
    def _has_base(self) -> Instance:
        if self.source is None and not self.base_commit:
            raise ValueError("needs 'source' (package suites) or 'base_commit' (a repository clone)")
        return self

    def agent_view(self) -> AgentTask:
        return AgentTask(
            instance_id=self.instance_id,
            repo=self.repo,
            problem_statement=self.problem_statement,
            base_commit=self.base_commit,
            version=self.version,
            source=self.source.key() if self.source else None,
            test_cmd=self.agent_test_cmd,
        )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


@dataclass(frozen=True, slots=True)
class AgentTask:
    """Everything the solving agent may know about an instance, and nothing more."""

    instance_id: str
    repo: str
    problem_statement: str
    base_commit: str | None = None
    version: str | None = None
    source: str | None = None
    test_cmd: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_dataset(path: Path | str) -> tuple[list[Instance], list[str]]:
    """Read a `.json` list or `.jsonl` file. Bad records are skipped and described in `problems`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return [], [f"{path}: cannot read: {e}"]
    records, problems = _json_list_records(text) if text.lstrip().startswith("[") else _jsonl_records(text)
    instances: list[Instance] = []
    seen: set[str] = set()
    for line, raw in records:
        iid = raw.get("instance_id") if isinstance(raw, dict) else None
        label = f"line {line}: {iid if isinstance(iid, str) else '?'}"
        if not isinstance(raw, dict):
            problems.append(f"{label}: expected a JSON object, got {type(raw).__name__}")
            continue
        try:
            inst = Instance.model_validate(raw)
        except ValidationError as e:
            problems.append(f"{label}: {_describe(e)}")
            continue
        if not inst.FAIL_TO_PASS:  # nothing would show the fix: any patch, even none, would resolve it
            problems.append(f"{label}: FAIL_TO_PASS: needs at least one test id")
            continue
        if inst.instance_id in seen:
            problems.append(f"{label}: duplicate instance_id, skipped")
            continue
        seen.add(inst.instance_id)
        instances.append(inst)
    return instances, problems


def _jsonl_records(text: str) -> tuple[list[tuple[int, Any]], list[str]]:
    records, problems = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append((n, json.loads(line)))
        except json.JSONDecodeError as e:
            m = re.search(r'"instance_id"\s*:\s*"([^"]*)"', line)
            problems.append(f"line {n}: {m.group(1) if m else '?'}: invalid JSON: {e.msg} (column {e.colno})")
    return records, problems


def _json_list_records(text: str) -> tuple[list[tuple[int, Any]], list[str]]:
    """Decode a JSON array element by element so each record keeps its line number."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"[\s,]*")
    pos = text.index("[") + 1
    records: list[tuple[int, Any]] = []
    while True:
        pos = ws.match(text, pos).end()
        if pos >= len(text) or text[pos] == "]":
            return records, []
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            # One broken element makes the rest of the array unparseable; keep what came before.
            return records, [
                f"line {e.lineno}: ?: invalid JSON: {e.msg} (column {e.colno}); rest of file skipped"
            ]
        records.append((text.count("\n", 0, pos) + 1, obj))
        pos = end


def _describe(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        where = ".".join(str(x) for x in err["loc"]) or "record"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
