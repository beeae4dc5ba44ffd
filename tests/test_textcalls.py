from treefix.agent.models.base import Message, ToolCall, ToolSpec
from treefix.agent.models.textcalls import parse_arguments, parse_tool_calls, to_text_messages

TOOLS = [ToolSpec("search", "search the repo", {"type": "object", "properties": {"q": {"type": "string"}}})]


def test_parse_calls_and_prose():
    text = 'I will look.\n<tool_call>\n{"name": "search", "arguments": {"q": "foo"}}\n</tool_call>\n<tool_call>```json\n{"name": "view", "arguments": {}}\n```</tool_call>'
    prose, calls = parse_tool_calls(text)
    assert prose == "I will look."
    assert [(c.name, c.arguments) for c in calls] == [("search", {"q": "foo"}), ("view", {})]


def test_malformed_and_unclosed_blocks_are_reported_not_raised():
    prose, calls = parse_tool_calls('<tool_call>{"name": "search", "arguments": {"q": "fo')
    assert calls[0].name == "search" and "_error" in calls[0].arguments and "_raw" in calls[0].arguments
    assert parse_arguments("[1]")["_error"] == "arguments must be a JSON object"
    assert parse_arguments("") == {} and parse_arguments({"a": 1}) == {"a": 1}


def test_history_is_rewritten_without_native_tool_fields():
    msgs = [
        Message("system", "You fix bugs.", cache=True),
        Message("user", "go"),
        Message(
            "assistant",
            "",
            tool_calls=[ToolCall("c1", "search", {"q": "x"}), ToolCall("c2", "search", {"q": "y"})],
        ),
        Message("tool", "r1", tool_call_id="c1"),
        Message("tool", "r2", tool_call_id="c2"),
    ]
    out = to_text_messages(msgs, TOOLS)
    assert out[0].cache and "`search`" in out[0].content and out[0].content.startswith("You fix bugs.")
    assert all(m.role in ("system", "user", "assistant") and not m.tool_calls for m in out)
    assert out[2].content.count("<tool_call>") == 2
    assert out[3].role == "user" and out[3].content.count("<tool_response") == 2
    # the same tools give the same system text, so the prefix stays cacheable
    assert to_text_messages(msgs, TOOLS)[0] == out[0]
