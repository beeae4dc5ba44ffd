"""`/ask`: answer a question about the repository with the read-only tools, without a search."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from treefix.agent.models.base import ChatModel, Message
from treefix.agent.tool_loop import run_tool_loop
from treefix.prompts import render
from treefix.tools.repo_map import RepoMap
from treefix.tools.search import find_definitions, search_text

ASK_TURNS = 6
MAP_TOKENS = 512


@dataclass
class Answer:
    text: str
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0


def ask_offline(root: Path, question: str) -> Answer:
    """No model: the definitions of the names the question mentions, their uses, and a focused map."""
    repo_map = RepoMap(root, cache_dir=root / ".treefix" / "cache")
    repo_map.refresh()
    files, idents = repo_map.focus_from_text(question)
    parts = []
    for word in dict.fromkeys(re.findall(r"[A-Za-z_]\w{2,}", question)):
        found = find_definitions(repo_map.index, word)
        if not found.startswith("No "):
            parts.append(found)
            idents.append(word)
            uses = search_text(root, word)
            if not uses.startswith("No "):
                parts.append(uses)
    rendered = repo_map.render(MAP_TOKENS, files, idents)
    if rendered:
        parts.append("Repository map (most relevant first):\n" + rendered)
    return Answer("\n\n".join(parts) or "Nothing in the repository matches the question's names.")


def ask_model(root: Path, question: str, model: ChatModel) -> Answer:
    """A bounded tool loop; every call's tokens and cost are counted."""
    answer = Answer("")

    def call(messages: list[Message], tools):  # type: ignore[no-untyped-def]
        reply = model.complete(messages, tools=tools or None)
        answer.tokens_in += reply.usage.input_tokens
        answer.tokens_out += reply.usage.output_tokens
        answer.cost += reply.cost or 0.0
        return reply

    answer.text, _ = run_tool_loop(call, [Message("user", render("ask", question=question))], root, ASK_TURNS)
    return answer
