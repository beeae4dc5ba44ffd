"""The tree of attempts: nodes and their bookkeeping. The tree lives in the run store."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

BASE_SECONDS_KEY = "tests/base_seconds"  # store meta: how long the base test run took


class NodeKind(StrEnum):
    ROOT = "root"
    PLAN = "plan"
    CODE = "code"
    REPAIR = "repair"
    REPRODUCE = "reproduce"  # a test the model wrote that shows the issue; never part of the patch


class NodeStatus(StrEnum):
    NEW = "new"  # made by expand, not yet evaluated
    EVALUATED = "evaluated"  # tests ran (or the patch failed to apply)
    JUDGED = "judged"  # critic done (or failed) — ready to back up
    DONE = "done"  # value backed up the tree
    FAILED = "failed"  # expansion failed (model error, unusable reply); counted, value 0


# The tree's grammar: what kind of node grows under each kind.
CHILD_KIND = {
    NodeKind.ROOT: NodeKind.PLAN,
    NodeKind.PLAN: NodeKind.CODE,
    NodeKind.CODE: NodeKind.REPAIR,
    NodeKind.REPAIR: NodeKind.REPAIR,
    NodeKind.REPRODUCE: NodeKind.PLAN,
}
# Without a given test command the root grows reproductions first (see expand.child_kind).

@dataclass
class ExecResult:
    applied: bool = True
    compiled: bool = True
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    exit_code: int | None = None
    timed_out: bool = False
    output: str = ""  # head and tail of the test output
    tests: dict[str, str] = field(default_factory=dict)  # test id -> passed|failed|error|skipped
    message: str = ""  # why the patch did not apply / compile

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errors

    @property
    def all_passed(self) -> bool:
        return self.applied and self.compiled and not self.timed_out and self.total > 0 and self.passed == self.total

    @property
    def score(self) -> float:
        """Execution score in [0, 1]: 0 when the patch does not apply or compile."""
        if not (self.applied and self.compiled) or self.total == 0 or self.timed_out:
            return 0.0
        return self.passed / self.total


@dataclass
class Judgement:
    value: float
    rationale: str = ""
    advice: str = ""
    failed: bool = False  # the critic call failed; value is then the execution score alone


@dataclass
class Node:
    kind: NodeKind
    parent: str | None
    depth: int
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    status: NodeStatus = NodeStatus.NEW
    title: str = ""  # one line for the tree view
    content: str = ""  # plan text, or the edit blocks a code/repair node was made from
    diff: str = ""  # against the task's base revision
    exec: ExecResult | None = None
    judgement: Judgement | None = None
    visits: int = 0
    value_sum: float = 0.0
    value: float | None = None  # this node's own evaluation
    prior: float = 1.0
    usage: dict[str, float] = field(default_factory=dict)  # tokens and cost of the calls that made it
    error: str = ""
    origin: str = ""  # the policy that made it: llm, offline, or a test's scripted policy
    closed: bool = False  # the policy has nothing more to propose below this node
    seq: int = 0  # creation order within the run, set by the store
    # Execution evidence beyond the raw test counts (agent/evidence.py): for a reproduction whether it
    # was accepted and why; for a candidate its reproductions, regressions, score and `verified_by`.
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return self.value_sum / self.visits if self.visits else 0.0

    @property
    def verified_by(self) -> str:
        """What verified this node: "reproduction" (a test that failed on the base now passes, and
        nothing regressed), "tests" (the given test command passes), or "" when nothing did."""
        if "verified_by" in self.evidence:
            return str(self.evidence["verified_by"])
        ok = self.kind in (NodeKind.CODE, NodeKind.REPAIR) and self.exec is not None and self.exec.all_passed
        return "tests" if ok else ""

    @property
    def verified(self) -> bool:
        return bool(self.verified_by)

    @property
    def exec_score(self) -> float:
        """The execution score the value mixes in: the evidence's when there is some, else the pass rate."""
        if "score" in self.evidence:
            return float(self.evidence["score"])
        return self.exec.score if self.exec else 0.0

    @property
    def votes(self) -> int:
        """This node plus the identical siblings folded into it."""
        return 1 + int(self.evidence.get("duplicates", 0))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Node:
        d = dict(d)
        d["kind"] = NodeKind(d["kind"])
        d["status"] = NodeStatus(d["status"])
        d["exec"] = ExecResult(**d["exec"]) if d.get("exec") else None
        d["judgement"] = Judgement(**d["judgement"]) if d.get("judgement") else None
        return cls(**d)
