"""Anthropic messages API with tool use and prompt caching.

`Message.cache=True` puts a `cache_control` breakpoint on that message's last block, so the
static prefix (system prompt, repository overview, issue) is written once and read by every
sibling expansion. Cache reads and writes are reported and priced separately.
Sampling parameters (temperature, top_p, top_k) are not sent: current Claude models reject
non-default values and the SDK no longer takes them; siblings differ by their prompts instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anthropic

from treefix.agent.models import textcalls
from treefix.agent.models.base import Completion, Message, ToolCall, ToolSpec, Usage
from treefix.agent.models.provider import ProviderModel
from treefix.agent.models.retry import Transient

MAX_BREAKPOINTS = 4  # the API's limit on cache_control blocks per request
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}


@dataclass
class _Reply:
    blocks: list[dict[str, Any]] = field(default_factory=list)  # {"type": "text"|"tool_use", ...}
    stop: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    model: str = ""


class AnthropicModel(ProviderModel):
    provider = "anthropic"
    key_var = "ANTHROPIC_API_KEY"
    base_url_var = "ANTHROPIC_BASE_URL"
    sdk = anthropic

    def _make_client(self, key: str) -> anthropic.Anthropic:
        # The SDK adds /v1/messages itself; accept the OpenAI-style ".../v1" users paste too.
        if self.base_url:
            self.base_url = self.base_url.rstrip("/").removesuffix("/v1")
        return anthropic.Anthropic(api_key=key, base_url=self.base_url, timeout=self.timeout, max_retries=0)

    def _once(
        self,
        messages: list[Message],
        tools: list[ToolSpec] | None,
        text_mode: bool,
        max_tokens: int,
        temperature: float | None,
        extra: dict[str, Any],
    ) -> Completion:
        choice = extra.get("tool_choice")
        if text_mode and choice == "none":
            tools = None  # text tools live in the prompt: leave them out where none may be called
        sent = textcalls.to_text_messages(messages, tools) if text_mode else messages
        if not tools and not text_mode and _has_tool_blocks(sent):
            # The API refuses tool_use/tool_result blocks in a request without `tools`: send them as text.
            sent = textcalls.to_text_messages(sent, None)
        system, wire = to_wire(sent)
        body: dict[str, Any] = {
            "model": self.model_id, "max_tokens": max_tokens, "messages": wire, "timeout": extra["timeout"]
        }  # fmt: skip
        if "stop" in extra:
            body["stop_sequences"] = [extra["stop"]] if isinstance(extra["stop"], str) else extra["stop"]
        if system:
            body["system"] = system
        if tools and not text_mode:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools
            ]
            if choice is not None:
                body["tool_choice"] = {"type": choice}  # "none" | "auto" | "any"
        reply = self._request(body, tools_sent=bool(tools and not text_mode))
        return self._completion(reply, text_mode and bool(tools))

    def _fetch(self, body: dict[str, Any]) -> _Reply:
        resp = self._client.messages.create(**body)
        if isinstance(resp, str) or getattr(resp, "content", None) is None:
            raise Transient("reply without content", maybe_billed=True)
        blocks = [b.model_dump(warnings=False) for b in resp.content]
        return _Reply(
            blocks, resp.stop_reason, resp.usage.model_dump() if resp.usage else {}, resp.model or ""
        )

    def _fetch_stream(self, body: dict[str, Any]) -> _Reply:
        reply = _Reply()
        partial: dict[int, list[str]] = {}
        for event in self._client.messages.create(**body, stream=True):
            kind = event.type
            if kind == "message_start":
                reply.model = event.message.model or ""
                reply.usage = event.message.usage.model_dump()
            elif kind == "content_block_start":
                reply.blocks.append(event.content_block.model_dump())
                partial[event.index] = []
            elif kind == "content_block_delta":
                d = event.delta
                if d.type == "text_delta":
                    reply.blocks[event.index]["text"] += d.text
                elif d.type == "input_json_delta":
                    partial[event.index].append(d.partial_json)
            elif kind == "message_delta":
                reply.stop = event.delta.stop_reason or reply.stop
                reply.usage.update({k: v for k, v in event.usage.model_dump().items() if v is not None})
        if reply.stop is None:
            raise Transient("the reply stream ended before the reply did", maybe_billed=True)
        for i, pieces in partial.items():
            if reply.blocks[i].get("type") == "tool_use" and pieces:
                reply.blocks[i]["input"] = "".join(pieces)  # parsed (or reported malformed) below
        return reply

    def _completion(self, r: _Reply, text_calls: bool) -> Completion:
        text = "".join(b.get("text") or "" for b in r.blocks if b.get("type") == "text")
        calls = [
            ToolCall(
                b.get("id") or f"toolu_{i}", b.get("name") or "", textcalls.parse_arguments(b.get("input"))
            )
            for i, b in enumerate(r.blocks)
            if b.get("type") == "tool_use"
        ]
        if text_calls:
            text, calls = textcalls.parse_tool_calls(text)
        finish = _FINISH.get(r.stop or "", r.stop or "stop")
        if calls and finish == "stop":
            finish = "tool_calls"
        u = r.usage
        read, write = u.get("cache_read_input_tokens") or 0, u.get("cache_creation_input_tokens") or 0
        usage = Usage((u.get("input_tokens") or 0) + read + write, u.get("output_tokens") or 0, read, write)
        return Completion(text, calls, usage, self.cost(usage), finish, r.model or self.model_id)


def _has_tool_blocks(messages: list[Message]) -> bool:
    return any(m.role == "tool" or m.tool_calls for m in messages)


def to_wire(messages: list[Message]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, messages) in the API's shape: alternating roles, tool results as user blocks."""
    system: list[dict[str, Any]] = []
    wire: list[dict[str, Any]] = []
    marked: list[dict[str, Any]] = []  # blocks that end a message with cache=True
    for m in messages:
        blocks = _blocks(m)
        if not blocks:
            continue
        if m.role == "system":
            system += blocks
        else:
            role = "assistant" if m.role == "assistant" else "user"
            if wire and wire[-1]["role"] == role:
                wire[-1]["content"] += blocks
            else:
                wire.append({"role": role, "content": blocks})
        if m.cache:
            marked.append(blocks[-1])
    for block in marked[-MAX_BREAKPOINTS:]:  # the latest ones cover the longest prefixes
        block["cache_control"] = {"type": "ephemeral"}
    return system, wire


def _blocks(m: Message) -> list[dict[str, Any]]:
    if m.role == "tool":
        return [
            {"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": m.content or "(empty)"}
        ]
    blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content.strip() else []
    for c in m.tool_calls or []:
        blocks.append({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments})
    return blocks
