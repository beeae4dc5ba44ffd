"""Selection: UCT on values in [0, 1], progressive widening, virtual loss, and a budget-aware rule.

Values live in [0, 1], so the exploration constant is on that scale too: with c = 1 an unpromising
child visited once still outranks a sibling with a 0.3 higher mean after a handful of parent
visits. Every pick logs its exploit and explore terms so one can check exploration mattered.
Near the end of the budget a new branch that cannot reach a test is wasted: the tree deepens a live
branch instead (what makes `linear` strong at small budgets).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from treefix.agent.budget import Budget
from treefix.agent.evidence import REPLACE_KEY
from treefix.agent.store import RunStore
from treefix.agent.tree import Node, NodeKind, NodeStatus

STRATEGIES = ("mcts", "best-of-n", "linear", "greedy")


@dataclass
class SearchParams:
    strategy: str = "mcts"
    exploration: float = 1.0
    widen_k: float = 1.0  # a node may have at most max(1, floor(k * visits ** alpha)) children
    widen_alpha: float = 0.5
    max_children: int = 5
    root_children: int = 0  # the root's cap (plans are the widest choice); 0: max_children
    root_widen_k: float = 0.0  # widen_k at the root; 0: widen_k
    # mcts: a plan is spent once this many of its tested attempts (code and repairs) failed and none
    # passed: it is no longer expanded and frees its slot at its parent for a fresh plan. Repairs of a
    # plan that keeps failing rarely fix it but pass a wrong fix as often as a fresh attempt does
    # (docs/turns-and-simulation.md). 0: off.
    plan_patience: int = 0
    max_depth: int = 6
    virtual_loss: int = 1
    reproductions: int = 3  # reproduction tests the root may grow when no test command is given
    regression_checks: bool = True  # without a test command: run the existing tests a candidate may break
    # Tree strategies (mcts, greedy): a node with a live child does not start another branch when the
    # budget left cannot pay this many times what a new branch costs to reach a tested attempt
    # (plan + code, as measured on this run's nodes); it deepens instead. 0: off.
    branch_margin: float = 1.0
    base_check: bool = False  # with a test command: if it passes on the base, it is regression-only (evidence.py)

    def child_cap(self, node: Node) -> int:
        """How many children this node may have now."""
        if self.strategy == "linear":
            return 1
        if self.strategy == "best-of-n":
            # n independent plan → code chains, no repairs
            return {NodeKind.ROOT: 10**9, NodeKind.REPRODUCE: 10**9, NodeKind.PLAN: 1}.get(node.kind, 0)
        k = self.root_widen_k if node.kind is NodeKind.ROOT and self.root_widen_k else self.widen_k
        widened = math.floor(k * max(node.visits, 1) ** self.widen_alpha)
        return min(max(1, widened), self.most(node))

    def most(self, node: Node) -> int:
        """The most children this node may ever have under mcts/greedy."""
        return self.root_children if node.kind is NodeKind.ROOT and self.root_children else self.max_children


@dataclass
class Pick:
    node_id: str
    terms: list[dict[str, Any]] = field(default_factory=list)  # per level: chosen child, exploit, explore


class Selector:
    def __init__(self, store: RunStore, params: SearchParams, room: Callable[[], float | None] | None = None):
        self.store = store
        self.params = params
        self.room = room or (lambda: None)  # model calls the budget still pays for (None: unlimited)
        self._short: set[NodeKind] = set()  # per pick: kinds whose new branch the budget cannot pay
        self._spent: set[str] = set()  # per pick: plans that ran out of patience (SearchParams.plan_patience)
        self.inflight: dict[str, int] = {}  # virtual visits on nodes with an expansion under way
        self.expanding: dict[str, int] = {}  # expansions under way per parent
        self.focus = store.get_meta("focus")  # a follow-up grows even a verified node: the user asked for more

    # ---- public -------------------------------------------------------------------------
    def pick_batch(self, size: int) -> list[Pick]:
        picks = []
        for _ in range(size):
            pick = self.pick()
            if pick is None:
                break
            picks.append(pick)
            self.begin(pick.node_id)
        return picks

    def pick(self) -> Pick | None:
        root = self.store.focus()
        if root is None:
            return None
        pick = Pick(root.id)
        node = root
        self._short = self._short_kinds()
        self._spent = self.spent_plans()
        while True:
            if self._can_widen(node):
                pick.node_id = node.id
                return pick
            choice = self._best_child(node)
            if choice is None:
                return None  # only the root can be a dead end: we descend into live subtrees only
            child, exploit, explore = choice
            pick.terms.append({"child": child.id, "exploit": round(exploit, 4), "explore": round(explore, 4)})
            node = child

    def begin(self, node_id: str) -> None:
        """An expansion of node_id is under way: add virtual loss along its path."""
        self.expanding[node_id] = self.expanding.get(node_id, 0) + 1
        for n in self.store.path(node_id):
            self.inflight[n.id] = self.inflight.get(n.id, 0) + self.params.virtual_loss

    def end(self, node_id: str) -> None:
        if self.expanding.get(node_id, 0) <= 0:
            return  # not begun in this process (a resumed run)
        self.expanding[node_id] -= 1
        for n in self.store.path(node_id):
            self.inflight[n.id] = max(0, self.inflight.get(n.id, 0) - self.params.virtual_loss)

    # ---- internals ----------------------------------------------------------------------
    def expandable(self, node: Node) -> bool:
        if node.status == NodeStatus.FAILED or node.closed or (node.verified and node.id != self.focus):
            return False
        if node.kind is not NodeKind.ROOT and node.depth >= self.params.max_depth:
            return False
        return self.params.child_cap(node) > 0

    def _can_widen(self, node: Node) -> bool:
        if not self.expandable(node):
            return False
        children = self.store.children(node.id)
        chains = (NodeKind.ROOT, NodeKind.REPRODUCE)
        if self.params.strategy == "best-of-n" and node.kind in chains and any(map(self._alive, children)):
            return False  # finish each plan's single code child before drawing another plan
        if node.kind is not NodeKind.ROOT and node.status is not NodeStatus.DONE:
            return False  # only expand nodes whose evaluation is known
        in_flight = self.expanding.get(node.id, 0)
        count = sum(c.id not in self._spent for c in children) + in_flight  # a spent plan frees its slot
        if count and node.kind in self._short and any(map(self._alive, children)):
            return False  # the budget left cannot take a new branch to a test: deepen a live one
        if count < self.params.child_cap(node):
            return True
        if node.kind is NodeKind.ROOT and not in_flight and self.store.get_meta(REPLACE_KEY, 0):
            return True  # a reproduction no candidate can pass was demoted: replace it before widening by visits
        # The cap paces widening against deepening; it must not end the search where every child is
        # dead (failed or closed): then this node widens anyway, up to max_children.
        return (
            self.params.strategy != "best-of-n"
            and not in_flight
            and count < self.params.most(node)
            and not any(map(self._alive, children))
        )

    def _short_kinds(self) -> set[NodeKind]:
        """Parents whose new child could not reach a tested attempt within the budget left: the
        root (a plan and its code) and plans (a code node), by the mean model calls (critic's
        included) of this run's nodes of those kinds. Nothing before such nodes exist or without a
        model (the offline policy makes no calls)."""
        margin = self.params.branch_margin
        if not margin or self.params.strategy not in ("mcts", "greedy") or (left := self.room()) is None:
            return set()
        calls: dict[NodeKind, list[float]] = {}
        for n in self.store.nodes():
            if n.status is NodeStatus.DONE and n.usage.get("calls"):
                calls.setdefault(NodeKind.CODE if n.kind is NodeKind.REPAIR else n.kind, []).append(n.usage["calls"])
        if NodeKind.PLAN not in calls or NodeKind.CODE not in calls:
            return set()
        plan, code = (sum(calls[k]) / len(calls[k]) for k in (NodeKind.PLAN, NodeKind.CODE))
        short = set()
        if left < margin * (plan + code):
            short |= {NodeKind.ROOT, NodeKind.REPRODUCE}
        if left < margin * code:
            short.add(NodeKind.PLAN)
        return short

    def spent_plans(self) -> set[str]:
        """Plans with at least plan_patience tested attempts below them, all failed (mcts only)."""
        k = self.params.plan_patience
        if not k or self.params.strategy != "mcts":
            return set()
        nodes = {n.id: n for n in self.store.nodes()}
        failed: dict[str, int] = {}
        passed: set[str] = set()
        for n in nodes.values():
            if n.kind not in (NodeKind.CODE, NodeKind.REPAIR) or n.status is NodeStatus.NEW:
                continue
            plan = n
            while plan.kind is not NodeKind.PLAN and plan.parent in nodes:
                plan = nodes[plan.parent]
            if plan.kind is not NodeKind.PLAN:
                continue
            if n.verified:
                passed.add(plan.id)
            elif n.status is NodeStatus.FAILED or n.exec is not None:
                failed[plan.id] = failed.get(plan.id, 0) + 1
        return {p for p, count in failed.items() if count >= k and p not in passed}

    def _alive(self, node: Node) -> bool:
        """Does this subtree still have somewhere to expand?"""
        if node.id in self._spent:
            return False
        if self._can_widen(node):
            return True
        return any(self._alive(c) for c in self.store.children(node.id))

    def _best_child(self, node: Node) -> tuple[Node, float, float] | None:
        children = [c for c in self.store.children(node.id) if c.status is NodeStatus.DONE and self._alive(c)]
        if not children:
            return None
        if self.params.strategy == "linear":
            return children[-1], 0.0, 0.0
        c = 0.0 if self.params.strategy in ("greedy", "best-of-n") else self.params.exploration
        parent_n = node.visits + self.inflight.get(node.id, 0)
        mean_prior = sum(ch.prior for ch in children) / len(children) or 1.0
        best = None
        for ch in children:
            n = ch.visits + self.inflight.get(ch.id, 0)  # virtual loss: in-flight visits count as value 0
            exploit = ch.value_sum / n if n else 0.0
            explore = c * (ch.prior / mean_prior) * math.sqrt(math.log(max(parent_n, 1) + 1) / max(n, 1))
            score = exploit + explore
            if best is None or score > best[0]:
                best = (score, ch, exploit, explore)
        assert best is not None
        return best[1], best[2], best[3]


def calls_left(budget: Budget) -> float | None:
    """About how many more model calls the budget pays for: the turns left, and the cost and tokens
    left at this run's mean per call so far. None when no such limit is set."""
    lim, s = budget.limits, budget.spent
    left: list[float] = []
    if lim.max_turns:
        left.append(lim.max_turns - s.turns)
    if s.turns and lim.cost_limit and s.cost > 0:
        left.append((lim.cost_limit - lim.reserve_cost - s.cost) / (s.cost / s.turns))
    if s.turns and lim.max_tokens and s.tokens > 0:
        left.append((lim.max_tokens - s.tokens) / (s.tokens / s.turns))
    return min(left) if left else None
