"""Tool calls written as text, for models and servers without native tool calling.

The format is the `<tool_call>{"name": .., "arguments": {..}}</tool_call>` block that many open
models (Hermes, Qwen, Llama fine-tunes) are trained on; results go back as `<tool_response>`
blocks in a user message. The instructions live in `prompts/text_tools.j2`.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from treefix.agent.models.base import Message, ToolCall, ToolSpec
from treefix.prompts import render

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|\Z)", re.S)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def parse_arguments(raw: object) -> dict[str, Any]:
    """Tool-call arguments as a dict; unparseable ones become `{"_raw": text, "_error": why}`."""
    if isinstance(raw, dict):
        return raw
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if not isinstance(raw, str):
        return {"_raw": json.dumps(raw), "_error": "arguments must be a JSON object"}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as e:
        return {"_raw": str(raw), "_error": f"arguments are not valid JSON: {e}"}
    if not isinstance(value, dict):
        return {"_raw": str(raw), "_error": "arguments must be a JSON object"}
    return value


def instructions(tools: list[ToolSpec]) -> str:
    specs = [
        {"name": t.name, "description": t.description, "schema": json.dumps(t.parameters)} for t in tools
    ]
    return render("text_tools", tools=specs)


def _call_block(call: ToolCall) -> str:
    return f"{OPEN}\n{json.dumps({'name': call.name, 'arguments': call.arguments})}\n{CLOSE}"


def to_text_messages(messages: list[Message], tools: list[ToolSpec] | None) -> list[Message]:
    """`messages` rewritten so that no native tool fields remain (tool specs go in the system prompt)."""
    out: list[Message] = []
    names: dict[str, str] = {}
    if tools:
        text = instructions(tools)
        if messages and messages[0].role == "system":
            # Same bytes for every sibling: the tool text joins the static prefix.
            out.append(replace(messages[0], content=messages[0].content.rstrip() + "\n\n" + text))
            messages = messages[1:]
        else:
            out.append(Message("system", text))
    for m in messages:
        if m.role == "assistant" and m.tool_calls:
            for c in m.tool_calls:
                names[c.id] = c.name
            blocks = "\n".join(_call_block(c) for c in m.tool_calls)
            out.append(Message("assistant", (m.content.rstrip() + "\n" + blocks).strip(), cache=m.cache))
        elif m.role == "tool":
            name = names.get(m.tool_call_id or "", "")
            block = f'<tool_response name="{name}">\n{m.content}\n</tool_response>'
            if out and out[-1].role == "user" and out[-1].content.startswith("<tool_response"):
                out[-1] = replace(
                    out[-1], content=out[-1].content + "\n" + block, cache=out[-1].cache or m.cache
                )
            else:
                out.append(Message("user", block, cache=m.cache))
        else:
            out.append(replace(m, tool_calls=None, tool_call_id=None))
    return out


def parse_tool_calls(text: str) -> tuple[str, list[ToolCall]]:
    """Split a reply into its prose and its tool calls (a malformed block becomes a call with `_error`)."""
    calls: list[ToolCall] = []
    for n, match in enumerate(_BLOCK.finditer(text)):
        body = _FENCE.sub("", match.group(1).strip())
        try:
            obj = json.loads(body)
        except json.JSONDecodeError as e:
            obj = {
                "name": _guess_name(body),
                "arguments": {"_raw": body, "_error": f"tool call is not valid JSON: {e}"},
            }
        if not isinstance(obj, dict):
            obj = {"name": "", "arguments": {"_raw": body, "_error": "tool call must be a JSON object"}}
        args = obj.get("arguments", obj.get("parameters", {}))
        calls.append(ToolCall(f"call_{n}", str(obj.get("name") or ""), parse_arguments(args)))
    prose = _BLOCK.sub("", text).strip()
    return prose, calls


def _guess_name(body: str) -> str:
    m = re.search(r'"name"\s*:\s*"([^"]+)"', body)
    return m.group(1) if m else ""
