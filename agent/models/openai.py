"""OpenAI chat completions, and every OpenAI-compatible server through `base_url`.

Retries are ours (the SDK's are off) so they are bounded and each one is reported to the caller.
A server that refuses `tools` is switched to text tool calls (`textcalls`) unless that was
forbidden with `text_tools=False`.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import openai

from treefix.agent.models import textcalls
from treefix.agent.models.base import Completion, Message, ToolCall, ToolSpec, Usage
from treefix.agent.models.provider import ProviderModel
from treefix.agent.models.retry import Transient
from treefix.agent.models.tokens import count_messages
from treefix.tools.tokens import count_tokens

log = logging.getLogger(__name__)
_REASONING = ("o1", "o3", "o4", "gpt-5", "gpt-6")  # official models that reject a temperature
_VERSION = re.compile(r"gpt-(\d+)(?:\.(\d+))?")


@dataclass
class _Reply:
    text: str = ""
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # (id, name, raw arguments)
    finish: str | None = None
    usage: Any = None
    model: str = ""


class OpenAIModel(ProviderModel):
    provider = "openai"
    key_var = "OPENAI_API_KEY"
    base_url_var = "OPENAI_BASE_URL"

    sdk = openai
    _warned_usage = False

    def _make_client(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(api_key=key, base_url=self.base_url, timeout=self.timeout, max_retries=0)

    def _once(
        self,
        messages: list[Message],
        tools: list[ToolSpec] | None,
        text_mode: bool,
        max_tokens: int,
        temperature: float | None,
        extra: dict[str, Any],
    ) -> Completion:
        choice = extra.pop("tool_choice", None)
        if text_mode and choice == "none":
            tools = None  # text tools live in the prompt: leave them out where none may be called
        sent = textcalls.to_text_messages(messages, tools) if text_mode else messages
        official = self.base_url is None
        marks = official and _explicit_cache(self.model_id)
        body: dict[str, Any] = {"model": self.model_id, "messages": [_wire(m, marks) for m in sent], **extra}
        if tools and not text_mode:
            body["tools"] = [_tool(t) for t in tools]
            if choice is not None:
                body["tool_choice"] = choice
        # The official API wants max_completion_tokens (reasoning models reject max_tokens);
        # compatible servers know max_tokens.
        body["max_completion_tokens" if official else "max_tokens"] = max_tokens
        if temperature is not None and not (official and self.model_id.startswith(_REASONING)):
            body["temperature"] = temperature
        reply = self._request(body, tools_sent=bool(tools and not text_mode))
        return self._completion(reply, sent, text_mode and bool(tools))

    def _fetch(self, body: dict[str, Any]) -> _Reply:
        resp = self._client.chat.completions.create(**body)
        if isinstance(resp, str) or not getattr(resp, "choices", None):
            raise Transient("reply without choices", maybe_billed=True)
        choice = resp.choices[0]
        msg = choice.message
        calls = [
            (tc.id or f"call_{i}", tc.function.name or "", tc.function.arguments or "")
            for i, tc in enumerate(msg.tool_calls or [])
            if getattr(tc, "function", None) is not None
        ]
        return _Reply(msg.content or "", calls, choice.finish_reason, resp.usage, resp.model or "")

    def _fetch_stream(self, body: dict[str, Any]) -> _Reply:
        reply = _Reply()
        parts: list[str] = []
        slots: dict[int, list[str]] = {}
        stream = self._client.chat.completions.create(
            **body, stream=True, stream_options={"include_usage": True}
        )
        for chunk in stream:
            reply.model = chunk.model or reply.model
            if chunk.usage is not None:
                reply.usage = chunk.usage
            for c in chunk.choices or []:
                delta = c.delta
                if delta is not None and delta.content:
                    parts.append(delta.content)
                for tc in (delta.tool_calls if delta is not None else None) or []:
                    slot = slots.setdefault(tc.index, ["", "", ""])
                    slot[0] = tc.id or slot[0]
                    if tc.function is not None:
                        slot[1] += tc.function.name or ""
                        slot[2] += tc.function.arguments or ""
                if c.finish_reason:
                    reply.finish = c.finish_reason
        if reply.finish is None:
            raise Transient("the reply stream ended before the reply did", maybe_billed=True)
        reply.text = "".join(parts)
        reply.calls = [(s[0] or f"call_{i}", s[1], s[2]) for i, s in sorted(slots.items())]
        return reply

    def _completion(self, r: _Reply, sent: list[Message], text_calls: bool) -> Completion:
        calls = [ToolCall(i, n, textcalls.parse_arguments(a)) for i, n, a in r.calls]
        text = r.text
        if text_calls:
            text, calls = textcalls.parse_tool_calls(text)
        finish = r.finish or "stop"
        if calls and finish == "stop":
            finish = "tool_calls"
        usage = self._usage(r, sent)
        return Completion(text, calls, usage, self.cost(usage), finish, r.model or self.model_id)

    def _usage(self, r: _Reply, sent: list[Message]) -> Usage:
        u = r.usage
        if u is None:  # some local servers report nothing: estimate, so token limits still hold
            if not self._warned_usage:
                log.warning("%s: the server reported no token usage; using estimates", self.name)
                self._warned_usage = True
            out = r.text + "".join(n + a for _, n, a in r.calls)
            return Usage(count_messages(sent), count_tokens(out))
        details = getattr(u, "prompt_tokens_details", None)
        cached = (getattr(details, "cached_tokens", None) or 0) if details is not None else 0
        written = (getattr(details, "cache_write_tokens", None) or 0) if details is not None else 0
        return Usage(u.prompt_tokens or 0, u.completion_tokens or 0, cached, written)


def _explicit_cache(model_id: str) -> bool:
    """GPT-5.6 and later take explicit cache breakpoints; older models cache prefixes by themselves."""
    m = _VERSION.match(model_id)
    return bool(m) and (int(m.group(1)), int(m.group(2) or 0)) >= (5, 6)


def _wire(m: Message, marks: bool = False) -> dict[str, Any]:
    d: dict[str, Any] = {"role": m.role, "content": m.content}
    if marks and m.cache and m.content and m.role in ("system", "user"):
        # The end of the static prefix that siblings share: cache exactly up to here.
        d["content"] = [{"type": "text", "text": m.content, "prompt_cache_breakpoint": {"mode": "explicit"}}]
    if m.role == "assistant" and m.tool_calls:
        d["content"] = m.content or None
        d["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in m.tool_calls
        ]
    if m.role == "tool":
        d["tool_call_id"] = m.tool_call_id or ""
    return d


def _tool(t: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
    }


