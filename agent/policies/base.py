"""The extension points of the search: a Policy proposes plans, code and repairs; a Critic judges
them; ValueWeights mix the critic's score with the execution score into a node's value."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from treefix.agent.tree import Judgement, Node, NodeKind, NodeStatus

if TYPE_CHECKING:
    from treefix.agent.budget import Budget
    from treefix.agent.calls import Caller
    from treefix.agent.select import SearchParams
    from treefix.agent.store import RunStore
    from treefix.agent.task import Task
    from treefix.agent.turns import TurnControl
    from treefix.tools.sandbox import Sandbox
    from treefix.tools.workspace import Workspace


@dataclass
class Candidate:
    title: str
    content: str = ""  # plan text, or the reply that holds the edits
    edits: str = ""  # SEARCH/REPLACE blocks, applied on top of the parent's diff
    diff: str = ""  # or a unified diff on top of the parent's diff (policies that edit by themselves)
    prior: float = 1.0
    usage: dict[str, float] = field(default_factory=dict)
    origin: str = ""  # the policy that made it, when not the one the search holds (a tier's)


@dataclass
class SearchContext:
    """Everything a policy, critic or step may use. The tree itself is read through `store`."""

    task: Task
    store: RunStore
    workspace: Workspace
    budget: Budget
    sandbox: Sandbox
    params: SearchParams
    caller: Caller | None = None  # None for the offline policy
    overview: str = ""
    turns: TurnControl | None = None  # turn caps, reminders and extensions (--turn-control)

    @property
    def map_cache(self) -> Path:
        """The run's one repository-index cache: the overview and every plan's tool loop share it."""
        return self.workspace.root / ".treefix" / "cache"

    def siblings(self, node: Node) -> list[Node]:
        return [n for n in self.store.children(node.parent) if n.id != node.id] if node.parent else []

    def advice(self, parent_id: str) -> str:
        """The user's hint on `parent_id` (chat `/hint`, a follow-up), then the critic's advice on its
        newest judged child: both steer the next expansion there."""
        judged = [c for c in self.store.children(parent_id) if c.judgement and c.judgement.advice]
        parts = [f"From the user: {hint}" if (hint := self.store.get_meta(f"hint/{parent_id}")) else ""]
        parts.append(judged[-1].judgement.advice if judged else "")
        return "\n".join(p for p in parts if p)

    def workspace_files(self, diff: str, paths: list[str], limit: int | None = None) -> dict[str, str]:
        """Contents of `paths` at base + `diff` (missing files left out), whole unless a `limit` in
        characters is given. Prompts show large files through `agent.context.file_view`."""
        out: dict[str, str] = {}
        with self.workspace.worktree() as wt:
            if diff and self.workspace.apply_diff(wt, diff) is not None:
                return out
            for p in paths:
                f = (wt / p).resolve()
                if f.is_relative_to(wt.resolve()) and f.is_file():
                    out[p] = f.read_text(errors="replace")[:limit]  # [:None] is the whole file
        return out

    def finished(self, parent_id: str) -> list[Node]:
        return [c for c in self.store.children(parent_id) if c.status is NodeStatus.DONE]


class Policy(Protocol):
    name: str

    def plan(self, ctx: SearchContext, root: Node) -> Candidate: ...

    def code(self, ctx: SearchContext, plan: Node) -> Candidate: ...

    def repair(self, ctx: SearchContext, node: Node) -> Candidate: ...


class Reproducer(Protocol):
    """A policy that can also write a reproduction test (a pytest file that fails on the base
    because of the issue). Without a test command the root grows these first."""

    def reproduce(self, ctx: SearchContext, root: Node) -> Candidate: ...


class Critic(Protocol):
    def judge(self, ctx: SearchContext, node: Node) -> Judgement: ...


@dataclass
class ValueWeights:
    execution: float = 0.7
    critic: float = 0.3

    def mix(self, node: Node) -> float:
        """Node value in [0, 1]. Without a usable judgement the execution score stands alone."""
        j = node.judgement
        if node.kind is NodeKind.PLAN or node.exec is None:
            return j.value if j and not j.failed else min(node.prior, 0.5)
        if not node.exec.applied or not node.exec.compiled:
            return 0.0
        score = node.exec_score
        if j is None or j.failed:
            return score
        total = self.execution + self.critic
        return (self.execution * score + self.critic * j.value) / total if total else score


class NoCandidate(Exception):
    """The policy has nothing (new) to propose here; the node is closed, not failed."""
