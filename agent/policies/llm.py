"""LLMPolicy and LLMCritic: plans, code, repairs and judgements written by a chat model from the
templates in prompts/."""

from __future__ import annotations

import json
import re

from treefix.agent.context import FileView, file_view
from treefix.agent.evidence import MAX_FILES, accepted_code, describe, repro_path
from treefix.agent.models.base import Completion, Message, ModelError
from treefix.agent.policies.base import Candidate, SearchContext
from treefix.agent.prefix import shared_prefix
from treefix.agent.tool_loop import run_tool_loop
from treefix.agent.tree import Judgement, Node, NodeKind
from treefix.prompts import render
from treefix.tools.diffs import changed_paths
from treefix.tools.edit import EditError, parse_blocks

PATH_RE = re.compile(r"[\w./-]+\.\w+")
CODE_TOOL_TURNS = 2  # tool turns a code or repair node may take to look up lines it was not shown
UNUSABLE_IN_A_ROW = 5  # code/repair replies without a usable edit before the model is diagnosed


class LLMPolicy:
    name = "llm"

    def __init__(self) -> None:
        self._unusable: list[str] = []  # what the latest code/repair replies without an edit looked like

    def _ask(self, ctx: SearchContext, role: str, prompt: str, usage: dict[str, float]) -> str:
        """One reply to one prompt after the shared prefix (no tool turns)."""
        assert ctx.caller is not None, "LLMPolicy needs a model"
        return ctx.caller(role, shared_prefix(ctx) + [Message("user", prompt)], usage=usage).text

    def _ask_edit(
        self, ctx: SearchContext, role: str, prompt: str, usage: dict[str, float], diff: str = ""
    ) -> str:
        """A code or repair reply, after up to CODE_TOOL_TURNS turns with the tools on the tree the
        edits will apply to (base + `diff`). A model that keeps replying without a usable edit is
        diagnosed and asked no more: every later code/repair node fails at once (no spend)."""
        if len(self._unusable) >= UNUSABLE_IN_A_ROW:
            raise ModelError(no_edit_diagnosis(self._unusable))
        assert ctx.caller is not None, "LLMPolicy needs a model"
        caller = ctx.caller
        last: list[Completion] = []

        def call(msgs: list[Message], tools: list) -> Completion:  # type: ignore[type-arg]
            reply = caller(role, msgs, tools or None, usage=usage)
            last[:] = [reply]
            return reply

        messages = shared_prefix(ctx) + [Message("user", prompt)]
        with ctx.workspace.worktree() as tree:
            if diff and ctx.workspace.apply_diff(tree, diff) is not None:
                run_tool_loop(call, messages, tree, 0)  # the tree is unusable: no tools, just answer
            else:
                caps = ctx.turns.loop(CODE_TOOL_TURNS) if ctx.turns else None  # reminders, as in a plan's loop
                run_tool_loop(call, messages, tree, CODE_TOOL_TURNS, caps, ctx.map_cache)
        reply = last[0]
        problem = unusable(reply)
        self._unusable = self._unusable + [problem] if problem else []
        return reply.text

    def plan(self, ctx: SearchContext, root: Node) -> Candidate:
        """A plan, after up to `turns_per_node` turns of looking around with search/view/outline/map."""
        assert ctx.caller is not None, "LLMPolicy needs a model"
        caller = ctx.caller
        usage: dict[str, float] = {}
        siblings = [c.title for c in ctx.store.children(root.id)]
        turns = ctx.budget.limits.turns_per_node - 1  # the last turn is kept for the answer
        repro = root if root.kind is NodeKind.REPRODUCE else next(
            (c for c in ctx.store.children(root.id) if c.kind is NodeKind.REPRODUCE
             and c.evidence.get("accepted") and not c.evidence.get("demoted")), None,
        )  # fmt: skip  # reproductions are shared: a plan under the root sees a usable one too
        prompt = render(
            "plan", siblings=siblings, advice=ctx.advice(root.id), tools=turns > 0,
            reproduction=accepted_code(repro) if repro else "",
            reproduction_output=repro.exec.output[-3000:] if repro and repro.exec else "",
        )  # fmt: skip
        messages = shared_prefix(ctx) + [Message("user", prompt)]
        caps = ctx.turns.loop(turns) if ctx.turns else None
        with ctx.workspace.worktree() as base_tree:  # tools read the base, never the user's checkout
            text, conversation = run_tool_loop(
                lambda msgs, tools: caller("plan", msgs, tools or None, usage=usage),
                messages,
                base_tree,
                turns,
                caps,
                ctx.map_cache,
            )
        if viewed := looked_at(conversation):  # carried into the code prompt, which shows these lines
            text = text.rstrip() + f"\nLOOKED AT: {viewed}"
        return Candidate(title=_title(text), content=text, usage=usage)

    def reproduce(self, ctx: SearchContext, root: Node) -> Candidate:
        """A pytest file meant to fail on the base because of the issue; earlier unusable ones' reasons steer it."""
        usage: dict[str, float] = {}
        failed = [
            c.evidence.get("reason", "") for c in ctx.store.children(root.id)
            if c.kind is NodeKind.REPRODUCE and c.closed and c.evidence.get("reason")
        ] + [
            f"fails on the base, but {c.evidence['demoted']}" for c in ctx.store.children(root.id)
            if c.kind is NodeKind.REPRODUCE and c.evidence.get("demoted")
        ]  # fmt: skip
        prompt = render("reproduce", failed=failed, path=repro_path("<id>"), files=MAX_FILES)
        text = self._ask(ctx, "reproduce", prompt, usage)
        return Candidate(title="reproduction test", content=text, usage=usage)

    def code(self, ctx: SearchContext, plan: Node) -> Candidate:
        usage: dict[str, float] = {}
        advice = ctx.advice(plan.id)
        files = prompt_files(ctx, "", _mentioned_paths(ctx, plan.content), plan.content + "\n" + advice)
        prompt = render("code", plan=plan.content, files=files, advice=advice, tools=True)
        text = self._ask_edit(ctx, "code", prompt, usage)
        return Candidate(title=_edit_title(text), content=text, edits=text, usage=usage)

    def repair(self, ctx: SearchContext, node: Node) -> Candidate:
        usage: dict[str, float] = {}
        ex = node.exec
        changed = changed_paths(node.diff)
        focus = "\n".join([_plan_of(ctx, node), node.content, ex.output if ex else ""])
        files = prompt_files(ctx, node.diff, changed or _mentioned_paths(ctx, node.content), focus)
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
            tools=True,
        )
        text = self._ask_edit(ctx, "repair", prompt, usage, node.diff)
        return Candidate(title=_edit_title(text), content=text, edits=text, usage=usage)


def prompt_files(ctx: SearchContext, diff: str, paths: list[str], focus: str) -> list[FileView]:
    """The files at base + `diff` as a code/repair prompt shows them (agent/context.py)."""
    return [file_view(p, text, focus, diff) for p, text in ctx.workspace_files(diff, paths).items()]


def looked_at(messages: list[Message]) -> str:
    """The file ranges a plan's tool calls viewed, as `path:first-last` for the code prompt to show."""
    seen: list[str] = []
    for m in messages:
        for c in m.tool_calls or []:
            a = c.arguments if isinstance(c.arguments, dict) else {}
            if c.name == "view" and isinstance(a.get("path"), str):
                try:
                    start = int(a.get("start") or 1)
                    end = int(a.get("end") or start + 99)
                except (TypeError, ValueError):
                    continue
                seen.append(f"{a['path']}:{start}-{end}")
    return ", ".join(dict.fromkeys(seen))


def unusable(reply: Completion) -> str:
    """'' when the reply holds at least one readable SEARCH/REPLACE block, else what it looked like."""
    text = reply.text
    try:
        if parse_blocks(text):
            return ""
        why = "no SEARCH/REPLACE block"
    except EditError as e:
        why = f"unreadable edit blocks ({str(e)[:80]})"
    if not text.strip():
        why = "an empty reply" + (" (only tool calls)" if reply.tool_calls else "")
    elif reply.finish_reason == "length":
        why += ", cut off at the reply token limit"
    elif re.search(r"^(--- a/|\+\+\+ b/|@@ )", text, flags=re.M):
        why += ", a unified diff instead"
    elif "```" not in text:
        why += ", prose without any code"
    head = " ".join(text.split())[:80]
    return f"{why}: {len(text)} chars" + (f", starting {head!r}" if head else "")


def no_edit_diagnosis(replies: list[str]) -> str:
    kinds = sorted({r.split(":")[0] for r in replies})
    return (
        f"the model gave {len(replies)} code/repair replies in a row without a usable edit "
        f"({'; '.join(kinds)}); the last was {replies[-1].split(': ', 1)[-1]}. "
        "treefix needs SEARCH/REPLACE blocks (prompts/code.j2): try a stronger model, or check that "
        "the server's chat template passes the prompt through"
    )


MAX_DIFF_CHARS = 12_000


class LLMCritic:
    def judge(self, ctx: SearchContext, node: Node) -> Judgement:
        assert ctx.caller is not None
        plan = node.content if node.kind is NodeKind.PLAN else _plan_of(ctx, node)
        prompt = render(
            "critic", kind=node.kind.value, plan=plan, diff=node.diff[:MAX_DIFF_CHARS], exec=node.exec,
            evidence=describe(node),
        )  # fmt: skip
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
