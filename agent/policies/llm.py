"""LLMPolicy and LLMCritic: plans, code, repairs and judgements written by a chat model from the
templates in prompts/."""

from __future__ import annotations

import json
import re

from treefix.agent.models.base import Message
from treefix.agent.policies.base import Candidate, SearchContext
from treefix.agent.prefix import shared_prefix
from treefix.agent.tool_loop import run_tool_loop
from treefix.agent.tree import Judgement, Node, NodeKind
from treefix.prompts import render
from treefix.tools.diffs import changed_paths

PATH_RE = re.compile(r"[\w./-]+\.\w+")


class LLMPolicy:
    name = "llm"

    def _ask(self, ctx: SearchContext, role: str, prompt: str, usage: dict[str, float]) -> str:
        assert ctx.caller is not None, "LLMPolicy needs a model"
        return ctx.caller(role, shared_prefix(ctx) + [Message("user", prompt)], usage=usage).text

    def plan(self, ctx: SearchContext, root: Node) -> Candidate:
        """A plan, after up to `turns_per_node` turns of looking around with search/view/outline/map."""
        assert ctx.caller is not None, "LLMPolicy needs a model"
        caller = ctx.caller
        usage: dict[str, float] = {}
        siblings = [c.title for c in ctx.store.children(root.id)]
        turns = ctx.budget.limits.turns_per_node - 1  # the last turn is kept for the answer
        prompt = render("plan", siblings=siblings, advice=ctx.advice(root.id), tools=turns > 0)
        messages = shared_prefix(ctx) + [Message("user", prompt)]
        with ctx.workspace.worktree() as base_tree:  # tools read the base, never the user's checkout
            text, _ = run_tool_loop(
                lambda msgs, tools: caller("plan", msgs, tools or None, usage=usage), messages, base_tree, turns
            )
        return Candidate(title=_title(text), content=text, usage=usage)

    def code(self, ctx: SearchContext, plan: Node) -> Candidate:
        usage: dict[str, float] = {}
        files = ctx.workspace_files("", _mentioned_paths(ctx, plan.content))
        prompt = render("code", plan=plan.content, files=files, advice=ctx.advice(plan.id))
        text = self._ask(ctx, "code", prompt, usage)
        return Candidate(title=_edit_title(text), content=text, edits=text, usage=usage)

    def repair(self, ctx: SearchContext, node: Node) -> Candidate:
        usage: dict[str, float] = {}
        ex = node.exec
        changed = changed_paths(node.diff)
        files = ctx.workspace_files(node.diff, changed or _mentioned_paths(ctx, node.content))
        prompt = render(
            "repair",
            diff=node.diff or "(no change was made)",
            edit_feedback=ex.message if ex and not ex.applied else "",
            test_output=ex.output if ex and ex.applied else "",
            passed=ex.passed if ex else 0,
            failed=(ex.failed + ex.errors) if ex else 0,
            rationale=node.judgement.rationale if node.judgement else "",
            guidance=ctx.store.get_meta(f"hint/{node.id}") or "",  # the user's, from a /hint or a follow-up
            files=files,
        )
        text = self._ask(ctx, "repair", prompt, usage)
        return Candidate(title=_edit_title(text), content=text, edits=text, usage=usage)


MAX_DIFF_CHARS = 12_000


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


def _title(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return re.sub(r"^(TITLE:\s*)", "", line.strip(), flags=re.I)[:100]
    return "(empty plan)"


def _edit_title(text: str) -> str:
    paths = sorted(set(re.findall(r"^([\w./-]+\.\w+)\s*$", text, flags=re.M)))
    return "edit " + ", ".join(paths) if paths else "(no edit blocks)"


def _mentioned_paths(ctx: SearchContext, text: str) -> list[str]:
    return list(dict.fromkeys(PATH_RE.findall(text)))[:12]
