from treefix.agent.models.base import Message, ToolCall, ToolSpec
from treefix.agent.models.tokens import (
    count_messages,
    estimate_prompt_tokens,
    fit_messages,
    prefix_tokens,
    truncate_text,
)
from treefix.tools.tokens import count_tokens, exact

TOOLS = [ToolSpec("view", "show a file", {"type": "object", "properties": {"path": {"type": "string"}}})]


def test_counts_offline_and_message_overheads():
    assert exact()  # the offline encoding is installed: counts are real, not estimates
    msgs = [Message("system", "You fix bugs."), Message("user", "hello world")]
    n = count_messages(msgs)
    assert n == count_tokens("You fix bugs.") + count_tokens("hello world") + 2 * 4 + 3
    assert count_messages(msgs, TOOLS) > n
    call = Message("assistant", "", tool_calls=[ToolCall("1", "view", {"path": "a.py"})])
    assert count_messages([call]) > count_messages([Message("assistant", "")])


def test_estimate_has_a_margin_for_other_tokenizers():
    msgs = [Message("user", "def f(x):\n    return x + 1\n" * 50)]
    n = count_messages(msgs)
    assert estimate_prompt_tokens(msgs, model="gpt-4o") >= n
    assert estimate_prompt_tokens(msgs, model="anthropic/claude-sonnet-4-5") >= 1.3 * n
    assert estimate_prompt_tokens(msgs, model="openai/qwen2.5-coder") > n


def test_prefix_tokens_counts_up_to_last_cache_mark():
    msgs = [
        Message("system", "sys", cache=False),
        Message("user", "overview and issue", cache=True),
        Message("user", "plan now"),
    ]
    assert prefix_tokens(msgs) == count_messages(msgs[:2]) - 3
    assert prefix_tokens([Message("user", "x")]) == 0


def test_truncate_keeps_head_and_tail():
    text = "".join(f"line {i}\n" for i in range(1000))
    out = truncate_text(text, 200)
    assert count_tokens(out) <= 200 + 20
    assert out.startswith("line 0\n") and out.rstrip().endswith("line 999")
    assert "tokens cut" in out
    assert truncate_text("short", 10) == "short"


def test_fit_messages_keeps_prefix_and_last_message():
    big = "x = 1\n" * 5000
    msgs = [
        Message("system", "sys", cache=True),
        Message("user", "issue: the bug"),
        Message("assistant", big),
        Message("tool", big, tool_call_id="1"),
        Message("user", "now fix it"),
    ]
    out = fit_messages(msgs, context=4000, max_output_tokens=500, model="gpt-4o")
    assert count_messages(out) * 1.05 <= 3500
    assert out[0] == msgs[0] and out[1] == msgs[1] and out[-1] == msgs[-1]
    assert fit_messages(msgs[:2], context=4000) == msgs[:2]
