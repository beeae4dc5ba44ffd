"""The search as a LangGraph graph: select → expand → evaluate → critique → backpropagate → decide.

Graph state is small (the batch of node ids in flight, the iteration, the exit status); the tree
lives in the run store, so a checkpoint costs the same at node 5 and node 500. Each step handles
its whole batch, in parallel when there are several workers; steps are idempotent on the store,
so a step re-run after a crash finishes the work instead of repeating it.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypedDict, TypeVar

from langgraph.graph import END, START, StateGraph

from treefix.agent.budget import BudgetExceeded
from treefix.agent.evaluate import evaluate
from treefix.agent.evidence import evidence_mode, refresh
from treefix.agent.expand import expand
from treefix.agent.models.base import ModelError
from treefix.agent.policies.base import Critic, NoCandidate, Policy, SearchContext, ValueWeights
from treefix.agent.select import Selector, calls_left
from treefix.agent.tree import ExecResult, Judgement, Node, NodeKind, NodeStatus

T = TypeVar("T")
R = TypeVar("R")


MAX_FAILURES_IN_A_ROW = 3


def strong(node: Node) -> bool:
    """Verified on evidence strong enough to stop the search."""
    return node.verified and bool(node.evidence.get("strong", True))


class SearchState(TypedDict, total=False):
    iteration: int
    batch: list[str]
    status: str


class SearchEngine:
    def __init__(
        self,
        ctx: SearchContext,
        policy: Policy,
        critic: Critic,
        weights: ValueWeights | None = None,
        workers: int = 1,
        stop_on_verified: bool = True,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        evaluator: Callable[[SearchContext, Node], ExecResult | None] = evaluate,
    ):
        self.ctx, self.policy, self.critic = ctx, policy, critic
        self.weights = weights or ValueWeights()
        self.workers = max(1, workers)
        self.stop_on_verified = stop_on_verified
        self.selector = Selector(ctx.store, ctx.params, self._calls_left)
        self.on_event = on_event or (lambda kind, data: None)
        self.evaluator = evaluator  # the test run; the simulator hands in a synthetic one
        self._pool = ThreadPoolExecutor(self.workers) if self.workers > 1 else None
        self.failures_in_a_row = 0  # expansions whose model call failed, since the last success

    # ---- graph --------------------------------------------------------------------------
    def build(self, checkpointer: Any = None) -> Any:
        g = StateGraph(SearchState)
        for name in ("select", "expand", "evaluate", "critique", "backpropagate", "decide"):
            g.add_node(name, getattr(self, name))
        # a follow-up starts by re-evaluating the node it continues from (its tests may have changed)
        g.add_conditional_edges(START, lambda s: "evaluate" if s.get("batch") else "select")
        g.add_conditional_edges("select", lambda s: END if s.get("status") else "expand")
        g.add_edge("expand", "evaluate")
        g.add_edge("evaluate", "critique")
        g.add_edge("critique", "backpropagate")
        g.add_edge("backpropagate", "decide")
        g.add_conditional_edges("decide", lambda s: END if s.get("status") else "select")
        return g.compile(checkpointer=checkpointer)

    def _map(self, fn: Callable[[T], R], items: list[T]) -> list[R]:
        if self._pool is None or len(items) < 2:
            return [fn(i) for i in items]
        return list(self._pool.map(fn, items))

    # ---- steps --------------------------------------------------------------------------
    def select(self, state: SearchState) -> SearchState:
        if limit := self.ctx.budget.exhausted():
            return {"status": f"limit:{limit}", "batch": []}
        if self.ctx.turns is not None and (why := self._turns_over()):
            return {"status": f"limit:{why}", "batch": []}
        picks = self.selector.pick_batch(self.workers)
        if not picks:
            return {"status": "exhausted", "batch": []}
        iteration = state.get("iteration", 0) + 1
        for p in picks:
            self.ctx.store.event("select", iteration=iteration, node=p.node_id, terms=p.terms)
        return {"iteration": iteration, "batch": [p.node_id for p in picks]}

    def expand(self, state: SearchState) -> SearchState:
        iteration = state["iteration"]
        limits: list[str] = []

        def one(item: tuple[int, str]) -> str | None:
            index, parent_id = item
            key = f"expansion/{iteration}/{index}"
            if done := self.ctx.store.get_meta(key):  # made before a crash: finish it, don't redo it
                return done
            try:
                child = expand(self.ctx, self.policy, parent_id)
            except BudgetExceeded as e:
                limits.append(e.limit)
                child = None
            except NoCandidate:
                parent = self.ctx.store.get(parent_id)
                parent.closed = True
                self.ctx.store.update(parent)
                child = None
            if child is None:
                self.selector.end(parent_id)
                return None
            self.ctx.store.set_meta(key, child.id)
            if child.parent == parent_id and child.status is NodeStatus.DONE:  # an identical sibling's vote
                self._revisit(child)
                self.selector.end(parent_id)
                return None
            self.on_event("node", {"node": child.id, "kind": child.kind.value, "title": child.title})
            return child.id

        children = [c for c in self._map(one, list(enumerate(state["batch"]))) if c]
        for c in children:
            failed = self.ctx.store.get(c).status is NodeStatus.FAILED
            self.failures_in_a_row = self.failures_in_a_row + 1 if failed else 0
        out: SearchState = {"batch": children}
        if limits and not children:
            out["status"] = f"limit:{limits[0]}"
        return out

    def evaluate(self, state: SearchState) -> SearchState:
        def one(node_id: str) -> None:
            node = self.ctx.store.get(node_id)
            if node.status is not NodeStatus.NEW:
                return
            node.exec = self.evaluator(self.ctx, node)
            node.status = NodeStatus.EVALUATED
            self.ctx.store.update(node)

        self._map(one, state["batch"])
        if evidence_mode(self.ctx):  # shared reproductions: late ones re-check, demotions re-score
            for node in refresh(self.ctx, state["batch"]):
                self._revalue(node)
        return {}

    def critique(self, state: SearchState) -> SearchState:
        def one(node_id: str) -> None:
            node = self.ctx.store.get(node_id)
            if node.status is not NodeStatus.EVALUATED:
                return
            if node.kind is NodeKind.REPRODUCE:  # judged by its base run alone: no critic call
                node.value = 0.5 if node.evidence.get("accepted") else 0.0
                node.status = NodeStatus.JUDGED
                self.ctx.store.update(node)
                return
            try:
                node.judgement = self.critic.judge(self.ctx, node)
            except (ModelError, BudgetExceeded) as e:  # the visit still counts, on execution alone
                node.judgement = Judgement(0.0, f"critic failed: {e}", failed=True)
            node.value = self.weights.mix(node)
            node.status = NodeStatus.JUDGED
            self.ctx.store.update(node)

        self._map(one, state["batch"])
        return {}

    def backpropagate(self, state: SearchState) -> SearchState:
        for node_id in state["batch"]:
            node = self.ctx.store.get(node_id)
            if node.status is NodeStatus.DONE or (node.status is NodeStatus.FAILED and node.visits):
                continue
            value = node.value or 0.0
            path = self.ctx.store.path(node_id)
            for n in path:
                n.visits += 1
                n.value_sum += value
            if node.status is NodeStatus.JUDGED:
                node.status = NodeStatus.DONE
            self.ctx.store.update_many(path)
            self.selector.end(node.parent or "")
            self.on_event("scored", {"node": node.id, "value": value, "verified": node.verified})
        return {}

    def _revalue(self, node: Node) -> None:
        """A judged node's evidence changed after it was backed up: move its value, and the sums
        it was added to (once per vote), by the difference."""
        if node.status is not NodeStatus.DONE or node.value is None:
            return
        delta = self.weights.mix(node) - node.value
        if not delta:
            return
        path = self.ctx.store.path(node.id)
        for n in path:
            n.value_sum += delta * node.votes
            if n.id == node.id:
                n.value = (n.value or 0.0) + delta
        self.ctx.store.update_many(path)

    def _revisit(self, node: Node) -> None:
        """Another visit of an existing node, with its value: the parent's widening and UCT move on."""
        path = self.ctx.store.path(node.id)
        for n in path:
            n.visits += 1
            n.value_sum += node.value or 0.0
        self.ctx.store.update_many(path)

    def _calls_left(self) -> float | None:
        return calls_left(self.ctx.budget)  # the hard limits: a dynamic run's soft cap may be extended

    def _turns_over(self) -> str | None:
        """Turn control between nodes: stop at the run's cap unless it grants an extension."""
        assert self.ctx.turns is not None
        nodes = [n for n in self.ctx.store.nodes() if n.kind is not NodeKind.ROOT and n.value is not None]
        passing = sum(1 for e in self.ctx.store.events("reproduction") if e.get("passed"))
        return self.ctx.turns.over([n.value or 0.0 for n in nodes], passing)

    def decide(self, state: SearchState) -> SearchState:
        self.ctx.store.set_meta("elapsed", self.ctx.budget.elapsed())
        focus = self.ctx.store.focus()
        grown = self.ctx.store.subtree(focus.id) if focus else []  # a follow-up's nodes only
        # Stop rule: only strong evidence ends the search early (a given test command that passes,
        # or a reproduction that failed on the base and now passes with regression tests run).
        if self.stop_on_verified and any(strong(n) for n in grown if n is not focus):
            return {"status": "verified"}
        if limit := self.ctx.budget.exhausted():
            return {"status": f"limit:{limit}"}
        if self.failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
            return {"status": "model_error"}  # the model keeps failing after its own retries: stop paying
        return {}

    def close(self) -> None:
        if self._pool:
            self._pool.shutdown(wait=True)

