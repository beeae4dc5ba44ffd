"""Message-level token counts for budgeting and for fitting a prompt into a context window.

Counts come from `tools.tokens.count_tokens` (tiktoken, offline encoding). They only decide
things *before* a call; the usage a provider reports is what is charged. Other tokenizers
(Claude's, local models') differ from tiktoken's, so budget estimates carry a safety margin.
"""

from __future__ import annotations

import json
from dataclasses import replace

from treefix.agent.models.base import Message, ToolSpec
from treefix.agent.models.pricing import bare_name, context_window
from treefix.tools.tokens import count_tokens

PER_MESSAGE = 4  # role and separators, as in OpenAI's chat format recipe
PER_REPLY = 3  # the primed assistant turn
DEFAULT_CONTEXT = 32_000  # for unknown (often local) models: small enough to be safe


def margin(model: str | None) -> float:
    """How much to over-estimate tiktoken's count for `model` to stay on the safe side."""
    name = bare_name(model or "")
    if name.startswith(
        ("claude-3", "claude-opus-4-1", "claude-opus-4-5", "claude-sonnet-4", "claude-haiku-4")
    ):
        return 1.3  # Claude's tokenizer yields noticeably more tokens than cl100k on code
    if name.startswith("claude"):
        return 1.7  # Claude 4.7 and later: a newer tokenizer, about 30% more tokens again
    if name.startswith(("gpt-", "o1", "o3", "o4")):
        return 1.1  # o200k and its successors: close to cl100k, a little slack
    return 1.25  # local models: many tokenizers, often less efficient on code


# Anthropic adds its own tool-use system prompt (a few hundred tokens) to every request with tools.
ANTHROPIC_TOOL_PROMPT = 600


def known_margin(model: str | None) -> float | None:
    """The margin over tiktoken's count for models whose tokenizer we know well enough to bound,
    None for the rest (local and unknown models: their budgets use the bytes bound)."""
    name = bare_name(model or "")
    if name.startswith(("claude", "gpt-", "o1", "o3", "o4")):
        return margin(model)
    return None


def reservation_tokens(messages: list[Message], tools: list[ToolSpec] | None, model: str | None) -> int | None:
    """Prompt tokens to reserve for a call to a known model family: tiktoken's count times the
    family's margin, plus Anthropic's tool prompt. None when the family is unknown."""
    m = known_margin(model)
    if m is None:
        return None
    extra = ANTHROPIC_TOOL_PROMPT if tools and bare_name(model or "").startswith("claude") else 0
    return int(count_messages(messages, tools) * m) + extra + 16


def tool_tokens(tools: list[ToolSpec] | None) -> int:
    if not tools:
        return 0
    return sum(count_tokens(json.dumps([t.name, t.description, t.parameters])) + 8 for t in tools)


def message_tokens(m: Message) -> int:
    n = PER_MESSAGE + count_tokens(m.content)
    for call in m.tool_calls or []:
        n += count_tokens(call.name) + count_tokens(json.dumps(call.arguments)) + PER_MESSAGE
    return n


def count_messages(messages: list[Message], tools: list[ToolSpec] | None = None) -> int:
    """tiktoken's count of a whole prompt, tool specs included."""
    return sum(message_tokens(m) for m in messages) + tool_tokens(tools) + PER_REPLY


def estimate_prompt_tokens(
    messages: list[Message], tools: list[ToolSpec] | None = None, model: str | None = None
) -> int:
    """The prompt-token figure a budget reservation should use: the count plus a safety margin."""
    return int(count_messages(messages, tools) * margin(model)) + 1


def prefix_tokens(messages: list[Message]) -> int:
    """Tokens up to and including the last message marked `cache=True` (the shared static prefix)."""
    last = max((i for i, m in enumerate(messages) if m.cache), default=-1)
    return sum(message_tokens(m) for m in messages[: last + 1])


def truncate_text(text: str, max_tokens: int, note: str = "[... {cut} tokens cut ...]") -> str:
    """Keep the head and tail of `text` within `max_tokens`, saying how much was cut."""
    total = count_tokens(text)
    if total <= max_tokens:
        return text
    keep = max(max_tokens - 16, 2)
    lines = text.splitlines(keepends=True)
    head: list[str] = []
    tail: list[str] = []
    used = 0
    i, j = 0, len(lines) - 1
    # Alternate head and tail lines so both ends survive; the head gets a little more.
    while i <= j:
        take_head = len(head) <= 2 * len(tail)
        line = lines[i] if take_head else lines[j]
        n = count_tokens(line)
        if used + n > keep:
            break
        used += n
        if take_head:
            head.append(line)
            i += 1
        else:
            tail.append(line)
            j -= 1
    cut = total - used
    return "".join(head) + "\n" + note.format(cut=cut) + "\n" + "".join(reversed(tail))


def fit_messages(
    messages: list[Message],
    tools: list[ToolSpec] | None = None,
    model: str | None = None,
    max_output_tokens: int = 4096,
    context: int | None = None,
) -> list[Message]:
    """Messages that fit `model`'s context with room for the reply.

    The cached prefix, the first user message and the last message are kept whole, so the prefix
    stays identical across siblings; the longest other messages are cut head + tail until it fits.
    """
    window = context or context_window(model or "") or DEFAULT_CONTEXT
    room = int((window - max_output_tokens) / margin(model))
    out = list(messages)
    if count_messages(out, tools) <= room:
        return out
    last_cached = max((i for i, m in enumerate(out) if m.cache), default=-1)
    first_user = next((i for i, m in enumerate(out) if m.role == "user"), -1)
    protected = set(range(last_cached + 1)) | {first_user, len(out) - 1}
    for i in sorted(
        (i for i in range(len(out)) if i not in protected), key=lambda i: -message_tokens(out[i])
    ):
        excess = count_messages(out, tools) - room
        if excess <= 0:
            break
        have = count_tokens(out[i].content)
        out[i] = replace(out[i], content=truncate_text(out[i].content, max(have - excess - 32, 64)))
    excess = count_messages(out, tools) - room
    if excess > 0:  # still too long: the last message itself must give way
        have = count_tokens(out[-1].content)
        out[-1] = replace(out[-1], content=truncate_text(out[-1].content, max(have - excess - 32, 64)))
    return out
