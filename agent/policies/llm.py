"""LLMPolicy: plans, code and repairs written by a chat model from the templates in prompts/."""

from __future__ import annotations

import re

from treefix.agent.models.base import Message
from treefix.agent.policies.base import Candidate, SearchContext
from treefix.agent.tool_loop import run_tool_loop
from treefix.agent.tree import Node
from treefix.prompts import render

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
        changed = re.findall(r"^\+\+\+ b/(.+)$", node.diff, flags=re.M)
        files = ctx.workspace_files(node.diff, changed or _mentioned_paths(ctx, node.content))
        prompt = render(
            "repair",
            diff=node.diff or "(no change was made)",
            edit_feedback=ex.message if ex and not ex.applied else "",
            test_output=ex.output if ex and ex.applied else "",
            passed=ex.passed if ex else 0,
            failed=(ex.failed + ex.errors) if ex else 0,
            rationale=node.judgement.rationale if node.judgement else "",
            files=files,
        )
        text = self._ask(ctx, "repair", prompt, usage)
        return Candidate(title=_edit_title(text), content=text, edits=text, usage=usage)


def shared_prefix(ctx: SearchContext) -> list[Message]:
    """System prompt and task context, byte-identical for every call of a run (every role), so
    providers cache it: Anthropic at the marked message, OpenAI by its automatic prefix caching."""
    context = render("context", overview=ctx.overview, issue=ctx.task.problem_statement, test_cmd=ctx.task.test_cmd)
    return [Message("system", render("system")), Message("user", context, cache=True)]


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
