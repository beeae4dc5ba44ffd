"""A bounded tool-use loop for plan nodes: the model may search, view, outline and map the repository.

Each turn is one model call through `call`, where the caller charges the budget (and may raise to stop
the loop; that exception propagates). Tool calls run against the repository root and come back as
"tool" messages. A reply without tool calls is the answer; when the turns are used up the model is
asked, once more and without tools, for its answer with what it has.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from treefix.agent.models.base import Completion, Message, ToolCall, ToolSpec
from treefix.agent.turns import LoopCaps, TurnControl
from treefix.prompts import render
from treefix.tools.repo_map import RepoMap
from treefix.tools.search import SearchError, find_definitions, find_references, search_files, search_text
from treefix.tools.view import WINDOW, ViewError, outline, view

MAP_TOKENS = 1024
MAX_MAP_TOKENS = 8192
MAX_OUTPUT = 12_000  # characters of one tool result; longer ones keep head and tail

Call = Callable[[list[Message], list[ToolSpec]], Completion]


@cache
def tool_specs() -> list[ToolSpec]:
    specs = yaml.safe_load(render("tool_specs", window=WINDOW, map_tokens=MAP_TOKENS))
    return [ToolSpec(s["name"], " ".join(s["description"].split()), s["parameters"]) for s in specs]


TOOL_SPECS: list[ToolSpec] = tool_specs()


def run_tool_loop(
    call: Call,
    messages: list[Message],
    root: Path,
    turns: int,
    caps: LoopCaps | None = None,
    cache_dir: Path | None = None,
) -> tuple[str, list[Message]]:
    """(final answer text, the conversation including every tool call and result).

    `caps` (turn control) replaces `turns`: its cap may grow when the model asks, and its reminders
    (how many turns are left) go in as a user message before the turn they speak of. `cache_dir`:
    where the repository index is kept (the run's, so every plan and the overview share one)."""
    messages = list(messages)
    tools = Toolbox(root, cache_dir)
    caps = caps or LoopCaps(TurnControl(), turns, turns)
    while caps.used < caps.cap:
        if note := caps.reminder():
            messages.append(Message("user", note))
        reply = call(messages, TOOL_SPECS)
        messages.append(Message("assistant", reply.text, tool_calls=reply.tool_calls or None))
        caps.after(reply.text)
        if not reply.tool_calls:
            return reply.text, messages
        for tc in reply.tool_calls:
            messages.append(Message("tool", tools.run(tc), tool_call_id=tc.id))
    if caps.cap > 0:
        messages.append(Message("user", render("tool_loop_final")))
    reply = call(messages, [])
    messages.append(Message("assistant", reply.text))
    return reply.text, messages


class Toolbox:
    """Runs tool calls; every failure becomes a message the model can act on, never an exception."""

    def __init__(self, root: Path, cache_dir: Path | None = None) -> None:
        self.root = root.resolve()
        self.cache_dir = cache_dir
        self._map: RepoMap | None = None

    def run(self, tc: ToolCall) -> str:
        handler = getattr(self, f"_tool_{tc.name}", None)
        if handler is None:
            return f"error: unknown tool {tc.name!r}; the tools are {', '.join(s.name for s in TOOL_SPECS)}"
        args = tc.arguments
        if isinstance(args, str):  # some servers pass the JSON text through
            try:
                args = json.loads(args or "{}")
            except json.JSONDecodeError as exc:
                return f"error: the arguments are not valid JSON ({exc})"
        try:
            return _clip(handler(**args))
        except TypeError as exc:
            return f"error: bad arguments for {tc.name}: {exc}"
        except (SearchError, ViewError, ValueError) as exc:
            return f"error: {exc}"

    def repo_map(self) -> RepoMap:
        if self._map is None:
            self._map = RepoMap(self.root, self.cache_dir)
            self._map.refresh()
        return self._map

    def _tool_search(self, query: str, mode: str = "text", glob: str | None = None, **_: Any) -> str:
        if mode in ("text", "regex"):
            return search_text(self.root, query, regex=mode == "regex", glob=glob or None)
        if mode == "files":
            return search_files(self.root, query)
        if mode == "definitions":
            return find_definitions(self.repo_map().index, query)
        if mode == "references":
            return find_references(self.repo_map().index, query)
        raise ValueError(f"unknown search mode {mode!r}: use text, regex, files, definitions or references")

    def _tool_view(self, path: str, start: int = 1, end: int | None = None, **_: Any) -> str:
        return view(self.root, path, int(start), int(end) if end is not None else None)

    def _tool_outline(self, path: str, **_: Any) -> str:
        return outline(self.root, path)

    def _tool_repo_map(self, focus: list[str] | None = None, tokens: int = MAP_TOKENS, **_: Any) -> str:
        repo_map = self.repo_map()
        files, idents = repo_map.split_focus(focus or [])
        text = repo_map.render(min(max(int(tokens), 64), MAX_MAP_TOKENS), files, idents)
        return text or "The repository has no source files the map understands."


def _clip(text: str) -> str:
    if len(text) <= MAX_OUTPUT:
        return text
    half = MAX_OUTPUT // 2
    cut = len(text) - 2 * half
    return f"{text[:half]}\n[... {cut} characters cut: narrow the query or view a smaller range ...]\n{text[-half:]}"
