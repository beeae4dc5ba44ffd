"""The Anthropic client path, driven through the real SDK against the fake server."""

import logging
import time

import pytest
from fakeserver import Reply, error, hang, malformed, text, tool_call, truncated

from treefix.agent.errors import ConfigError
from treefix.agent.models.anthropic import AnthropicModel, to_wire
from treefix.agent.models.base import Message, ModelError, ToolCall, ToolSpec
from treefix.agent.models.retry import Backoff

KEY = "sk-ant-test-abcdefghijklmnopqrstuvwxyz"
TOOLS = [ToolSpec("search", "search the repo", {"type": "object", "properties": {"q": {"type": "string"}}})]
PREFIX = [
    Message("system", "You fix bugs."),
    Message("user", "Repository overview and the issue.", cache=True),
]
MSGS = PREFIX + [Message("user", "Make a plan.")]
FAST = Backoff(max_retries=2, base=0.01, cap=0.05)


@pytest.fixture(params=[False, True], ids=["plain", "stream"])
def model(request, server, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    return AnthropicModel(
        "claude-sonnet-4-6", base_url=server.url, api_key=KEY, timeout=0.5, backoff=FAST, stream=request.param
    )


def test_tool_use_usage_and_cost_as_reported(model, server):
    usage = {"input": 5000, "output": 40, "cached": 3000, "cache_write": 1500}
    server.script(tool_call("search", {"q": "parse"}, text="Looking.", usage=usage))
    c = model.complete(MSGS, TOOLS, max_tokens=200, temperature=0.0)
    assert c.text == "Looking." and c.finish_reason == "tool_calls"
    assert c.tool_calls == [ToolCall("toolu_0", "search", {"q": "parse"})]
    u = c.usage
    assert (u.input_tokens, u.output_tokens, u.cached_tokens, u.cache_write_tokens) == (5000, 40, 3000, 1500)
    assert c.cost == pytest.approx((500 * 3 + 3000 * 0.3 + 1500 * 3.75 + 40 * 15) / 1e6)
    req = server.requests[-1]
    assert KEY in (req.headers.get("x-api-key"), req.headers.get("authorization", "").removeprefix("Bearer "))
    assert req.body["max_tokens"] == 200
    assert "temperature" not in req.body  # current Claude models reject sampling parameters
    assert req.body["tools"][0]["input_schema"]["properties"] == {"q": {"type": "string"}}


def test_cache_breakpoint_on_the_shared_prefix(model, server):
    model.complete(MSGS)
    first = model.complete(PREFIX + [Message("user", "A sibling's request.")])
    body = server.requests[-1].body
    assert body["system"] == [{"type": "text", "text": "You fix bugs."}]
    blocks = body["messages"][0]["content"]
    assert blocks[0]["cache_control"] == {"type": "ephemeral"} and "cache_control" not in blocks[1]
    assert server.requests[0].cache_write_tokens > 0 and server.requests[0].cached_tokens == 0
    assert first.usage.cached_tokens == server.requests[0].cache_write_tokens


def test_wire_format_merges_roles_and_tool_results():
    msgs = [
        Message("system", "sys", cache=True),
        Message("user", "go"),
        Message(
            "assistant",
            "",
            tool_calls=[ToolCall("t1", "search", {"q": "a"}), ToolCall("t2", "search", {"q": "b"})],
        ),
        Message("tool", "r1", tool_call_id="t1"),
        Message("tool", "", tool_call_id="t2"),
        Message("user", "continue"),
    ]
    system, wire = to_wire(msgs)
    assert system == [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}]
    assert [m["role"] for m in wire] == ["user", "assistant", "user"]
    assert [b["type"] for b in wire[2]["content"]] == ["tool_result", "tool_result", "text"]
    many = [Message("user", f"m{i}", cache=True) for i in range(6)]
    assert sum("cache_control" in b for b in to_wire(many)[1][0]["content"]) == 4


def test_overloaded_and_rate_limited_are_retried(model, server):
    server.script(error(529, "Overloaded"), error(429, "slow down", retry_after=0.1), text("done"))
    seen = []
    assert model.complete(MSGS, on_attempt=seen.append).text == "done"
    assert [f.reason.split(":")[0] for f in seen] == ["HTTP 529", "HTTP 429"]


def test_retries_are_bounded(model, server):
    server.script(*[error(500)] * 3)
    with pytest.raises(ModelError, match="gave up after 2 retries"):
        model.complete(MSGS)


def test_hung_dropped_and_malformed_replies_are_retried(model, server):
    server.script(hang(5), Reply(drop=True), text("ok"))
    seen = []
    assert model.complete(MSGS, on_attempt=seen.append).text == "ok"
    assert len(seen) == 2 and all(f.maybe_billed for f in seen)
    server.script(malformed(), text("ok again"))
    assert model.complete(MSGS).text == "ok again"


def test_max_tokens_stop_is_length(model, server):
    server.script(truncated("cut sho"))
    c = model.complete(MSGS, max_tokens=3)
    assert c.finish_reason == "length" and c.text == "cut sho"


def test_malformed_tool_input_is_reported_in_the_call(model, server):
    server.script(tool_call("search", '{"q": "unterminated'))
    (call,) = model.complete(MSGS, TOOLS).tool_calls
    assert call.arguments["_raw"].startswith('{"q"') and "_error" in call.arguments


def test_auth_error_is_config_error_without_the_key(model, server, caplog):
    caplog.set_level(logging.DEBUG)
    server.script(error(401, f"invalid x-api-key {KEY}"))
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY") as e:
        model.complete(MSGS)
    assert KEY not in str(e.value) and KEY not in caplog.text


def test_missing_key_is_config_error(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY is not set"):
        AnthropicModel("claude-haiku-4-5")


def test_proxy_without_tools_gets_text_calls(server):
    server.tools_supported = False
    m = AnthropicModel("claude-haiku-4-5", base_url=server.root, api_key=KEY, backoff=FAST)
    server.brain = lambda req: text('<tool_call>{"name": "search", "arguments": {"q": "z"}}</tool_call>')
    c = m.complete(MSGS, TOOLS)
    assert c.tool_calls[0].arguments == {"q": "z"} and "tools" not in server.requests[-1].body
    assert "<tool_call>" in server.requests[-1].body["system"][0]["text"]


def test_deadline_caps_the_http_timeout(server, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    slow = AnthropicModel("claude-sonnet-4-6", base_url=server.url, api_key=KEY, timeout=30, backoff=FAST)
    server.script(hang(10), hang(10), hang(10))
    start = time.monotonic()
    with pytest.raises(ModelError, match="no reply within|no time left") as err:
        slow.complete(MSGS, deadline=start + 0.6)
    assert time.monotonic() - start < 3 and err.value.maybe_billed
