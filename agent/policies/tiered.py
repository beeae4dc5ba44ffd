"""`--tier offline`: offline repair candidates first, within a share of the budget, then the model.

Offline candidates cost a test run and no tokens, so a model run tries them before its first call.
The offline tier ends when it has no plan left or its share of the node or time budget is used;
from then on plans come from the model. Nodes keep the tier that made them: an offline plan gets
offline code only, and an offline attempt that beats the base but has no offline repair left is
handed to the model, which repairs it from its diff and test output. Offline nodes are judged by
execution alone, so the model is never paid to rate a mutant.
"""

from __future__ import annotations

import threading

from treefix.agent.policies.base import Candidate, Critic, NoCandidate, Policy, SearchContext
from treefix.agent.policies.offline import OfflinePolicy
from treefix.agent.tree import Judgement, Node

DEFAULT_SHARE = 0.3
OFFLINE = "offline"


def is_offline(node: Node) -> bool:
    return node.origin == OFFLINE


def _offline(candidate: Candidate) -> Candidate:
    candidate.origin = OFFLINE
    return candidate


class TieredPolicy:
    name = "tiered"

    def __init__(self, offline: OfflinePolicy, model: Policy, share: float = DEFAULT_SHARE):
        self.offline, self.model, self.share = offline, model, share
        self._exhausted = False
        self._lock = threading.Lock()

    def offline_phase(self, ctx: SearchContext) -> bool:
        """Is the offline tier still on? Judged by the share of whichever limits the run has."""
        lim, budget = ctx.budget.limits, ctx.budget
        if self._exhausted:
            return False
        if lim.time_limit and budget.elapsed() >= self.share * lim.time_limit:
            return False
        return not (lim.max_nodes and budget.spent.nodes > self.share * lim.max_nodes)

    def plan(self, ctx: SearchContext, root: Node) -> Candidate:
        if self.offline_phase(ctx):
            try:
                return _offline(self.offline.plan(ctx, root))
            except NoCandidate:
                with self._lock:
                    self._exhausted = True
        return self.model.plan(ctx, root)

    @property
    def writes_tests(self) -> bool:
        return hasattr(self.model, "reproduce")

    def reproduce(self, ctx: SearchContext, root: Node) -> Candidate:
        return self.model.reproduce(ctx, root)  # type: ignore[attr-defined]

    def code(self, ctx: SearchContext, plan: Node) -> Candidate:
        if not is_offline(plan):
            return self.model.code(ctx, plan)
        if not self.offline_phase(ctx):
            raise NoCandidate  # the model's share of the budget goes to the model's own plans
        return _offline(self.offline.code(ctx, plan))

    def repair(self, ctx: SearchContext, node: Node) -> Candidate:
        if not is_offline(node):
            return self.model.repair(ctx, node)
        if self.offline_phase(ctx):
            try:
                return _offline(self.offline.repair(ctx, node))
            except NoCandidate:
                pass
        if node.exec is None or node.exec.score <= self.offline.spectrum(ctx).baseline + 1e-9:
            raise NoCandidate  # a mutant that fixes nothing is not worth tokens
        return self.model.repair(ctx, node)


class TieredCritic:
    """Offline nodes by execution alone (free); the model's nodes by the model critic."""

    def __init__(self, offline: Critic, model: Critic):
        self.offline, self.model = offline, model

    def judge(self, ctx: SearchContext, node: Node) -> Judgement:
        if is_offline(node):
            return self.offline.judge(ctx, node)
        return self.model.judge(ctx, node)
