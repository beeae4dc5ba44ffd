"""Critics judge a node; its value mixes the execution score and the critic's score."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Protocol

from treefix.agent.models.base import Message
from treefix.agent.policies.base import SearchContext
from treefix.agent.policies.llm import shared_prefix
from treefix.agent.tree import Judgement, Node, NodeKind
from treefix.prompts import render

MAX_DIFF_CHARS = 12_000


class Critic(Protocol):
    def judge(self, ctx: SearchContext, node: Node) -> Judgement: ...


class LLMCritic:
    def judge(self, ctx: SearchContext, node: Node) -> Judgement:
        assert ctx.caller is not None
        plan = node.content if node.kind is NodeKind.PLAN else _plan_of(ctx, node)
        prompt = render("critic", kind=node.kind.value, plan=plan, diff=node.diff[:MAX_DIFF_CHARS], exec=node.exec)
        reply = ctx.caller("critic", shared_prefix(ctx) + [Message("user", prompt)], usage=node.usage).text
        return parse_judgement(reply)


def parse_judgement(reply: str) -> Judgement:
    """The first JSON object in the reply; an unreadable reply is a failed judgement, not a crash."""
    match = re.search(r"\{.*\}", reply, flags=re.S)
    try:
        data = json.loads(match.group(0)) if match else None
        value = float(data["value"])  # type: ignore[index]
    except (ValueError, TypeError, KeyError):
        return Judgement(0.0, f"unreadable critic reply: {reply[:200]!r}", failed=True)
    return Judgement(min(max(value, 0.0), 1.0), str(data.get("rationale", "")), str(data.get("advice", "")))


def _plan_of(ctx: SearchContext, node: Node) -> str:
    plans = [n for n in ctx.store.path(node.id) if n.kind is NodeKind.PLAN]
    return plans[-1].content if plans else ""


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
        if j is None or j.failed:
            return node.exec.score
        total = self.execution + self.critic
        return (self.execution * node.exec.score + self.critic * j.value) / total if total else node.exec.score
