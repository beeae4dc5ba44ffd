"""The OpenAI client path, driven through the real SDK against the fake server."""

import logging
import time

import pytest
from fakeserver import Reply, error, hang, malformed, text, tool_call, truncated

from treefix.agent.errors import ConfigError
from treefix.agent.models.base import Message, ModelError, Price, ToolCall, ToolSpec
from treefix.agent.models.openai import OpenAIModel
from treefix.agent.models.retry import Backoff

KEY = "sk-test-abcdefghijklmnopqrstuvwxyz0123"
TOOLS = [ToolSpec("search", "search the repo", {"type": "object", "properties": {"q": {"type": "string"}}})]
MSGS = [Message("system", "You fix bugs.", cache=True), Message("user", "Fix the bug")]
FAST = Backoff(max_retries=2, base=0.01, cap=0.05)


@pytest.fixture(params=[False, True], ids=["plain", "stream"])
def model(request, server, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return OpenAIModel(
        "gpt-4o-mini", base_url=server.url, api_key=KEY, timeout=0.5, backoff=FAST, stream=request.param
    )


def test_tool_call_usage_and_cost_as_reported(model, server):
    server.script(
        tool_call(
            "search", {"q": "parse"}, text="Looking.", usage={"input": 1200, "output": 30, "cached": 1024}
        )
    )
    c = model.complete(MSGS, TOOLS, max_tokens=100, temperature=0.2)
    assert c.text == "Looking." and c.finish_reason == "tool_calls"
    assert c.tool_calls == [ToolCall("call_0", "search", {"q": "parse"})]
    assert (c.usage.input_tokens, c.usage.output_tokens, c.usage.cached_tokens) == (1200, 30, 1024)
    assert c.cost == pytest.approx((176 * 0.15 + 1024 * 0.075 + 30 * 0.6) / 1e6)
    body = server.requests[-1].body
    assert (
        body["max_tokens"] == 100
        and body["temperature"] == 0.2
        and body["tools"][0]["function"]["name"] == "search"
    )
    assert server.requests[-1].headers["authorization"] == f"Bearer {KEY}"


def test_history_with_tool_results_goes_back_natively(model, server):
    msgs = MSGS + [
        Message("assistant", "", tool_calls=[ToolCall("call_0", "search", {"q": "x"})]),
        Message("tool", "found", tool_call_id="call_0"),
    ]
    model.complete(msgs, TOOLS)
    sent = server.requests[-1].body["messages"]
    assert sent[2]["tool_calls"][0]["function"]["arguments"] == '{"q": "x"}'
    assert sent[3] == {"role": "tool", "content": "found", "tool_call_id": "call_0"}


def test_429_retry_after_is_honoured_and_each_retry_reported(model, server):
    server.script(error(429, "rate limited", retry_after=0.3), error(500, "boom"), text("done"))
    seen = []
    t0 = time.monotonic()
    c = model.complete(MSGS, on_attempt=seen.append)
    assert c.text == "done" and time.monotonic() - t0 >= 0.3
    assert [(f.retry, f.maybe_billed) for f in seen] == [(1, False), (2, False)]
    assert "429" in seen[0].reason


def test_retries_are_bounded_and_end_in_one_line(model, server):
    server.script(*[error(500, "boom")] * 3, text("never"))
    with pytest.raises(ModelError) as e:
        model.complete(MSGS)
    assert "gave up after 2 retries" in str(e.value) and "\n" not in str(e.value)
    assert len(server.requests) == 3


def test_caller_can_stop_retries(model, server):
    server.script(error(500), text("never"))

    def refuse(_failure):
        raise RuntimeError("budget says no")

    with pytest.raises(RuntimeError, match="budget"):
        model.complete(MSGS, on_attempt=refuse)
    assert len(server.requests) == 1


def test_unreasonable_retry_after_gives_up_at_once(model, server):
    server.script(error(429, "come back tomorrow", retry_after=86400))
    with pytest.raises(ModelError, match="86400s"):
        model.complete(MSGS)


def test_hung_connection_times_out_and_retry_may_be_billed(model, server):
    server.script(hang(5), text("after"))
    seen = []
    assert model.complete(MSGS, on_attempt=seen.append).text == "after"
    assert seen[0].maybe_billed and "no reply within" in seen[0].reason


def test_dropped_connection_and_malformed_json_are_retried(model, server):
    server.script(Reply(drop=True), malformed(), text("fine"))
    seen = []
    assert model.complete(MSGS, on_attempt=seen.append).text == "fine"
    assert len(seen) == 2 and all(f.maybe_billed for f in seen)


def test_truncated_reply_has_finish_reason_length(model, server):
    server.script(truncated("half an ans"))
    c = model.complete(MSGS, max_tokens=5)
    assert c.finish_reason == "length" and c.text == "half an ans"


def test_malformed_tool_arguments_are_returned_not_raised(model, server):
    server.script(tool_call("search", '{"q": "oops'))
    (call,) = model.complete(MSGS, TOOLS).tool_calls
    assert call.name == "search" and call.arguments["_raw"] == '{"q": "oops' and "_error" in call.arguments


def test_server_without_tools_switches_to_text_calls(server):
    server.tools_supported = False
    m = OpenAIModel("llama3", base_url=server.url, timeout=0.5, backoff=FAST, price=Price(0, 0))
    server.script(error(400, "llama3 does not support tools"))
    server.brain = lambda req: text(
        'Let me search.\n<tool_call>\n{"name": "search", "arguments": {"q": "y"}}\n</tool_call>'
    )
    seen = []
    c = m.complete(MSGS, TOOLS, on_attempt=seen.append)
    assert (
        c.text == "Let me search."
        and c.tool_calls[0].arguments == {"q": "y"}
        and c.finish_reason == "tool_calls"
    )
    assert len(seen) == 1  # the refused request is reported like a retry
    last = server.requests[-1].body
    assert "tools" not in last and "<tool_call>" in last["messages"][0]["content"]
    m.complete(MSGS, TOOLS)  # sticky: no more refused requests
    assert len(server.requests) == 3


def test_text_tools_forbidden_is_a_clear_error(server):
    server.tools_supported = False
    m = OpenAIModel("llama3", base_url=server.url, text_tools=False, backoff=FAST, price=Price(0, 0))
    with pytest.raises(ModelError, match="does not support tool calls"):
        m.complete(MSGS, TOOLS)


def test_text_tools_flag_never_sends_tools(server):
    m = OpenAIModel("llama3", base_url=server.url, text_tools=True, backoff=FAST, price=Price(0, 0))
    m.complete(MSGS, TOOLS)
    assert "tools" not in server.requests[-1].body


def test_bad_key_is_config_error_and_never_logged(model, server, caplog):
    caplog.set_level(logging.DEBUG)
    server.script(error(401, f"Incorrect API key provided: {KEY}"))
    with pytest.raises(ConfigError, match="OPENAI_API_KEY") as e:
        model.complete(MSGS)
    assert KEY not in str(e.value) and KEY not in caplog.text and KEY not in repr(model)


def test_server_error_messages_are_redacted(model, server):
    server.script(error(400, f"bad request from sk-proj-{'A' * 30}"))
    with pytest.raises(ModelError) as e:
        model.complete(MSGS)
    assert "AAAAAAAAAA" not in str(e.value)


def test_missing_key_without_base_url_is_config_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        OpenAIModel("gpt-4o")


def test_local_server_needs_no_key_and_unknown_price_is_none(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.warns(UserWarning, match="price of model 'openai/qwen-local' is unknown"):
        m = OpenAIModel("qwen-local", base_url=server.url, backoff=FAST)
    c = m.complete(MSGS)
    assert c.cost is None and c.usage.input_tokens > 0 and m.price() is None


def test_prefix_caching_is_reported(server):
    server.min_cache = 1024
    m = OpenAIModel("gpt-4o-mini", base_url=server.url, api_key=KEY, backoff=FAST)
    prefix = [Message("system", "static prefix " * 800, cache=True)]
    m.complete(prefix + [Message("user", "sibling one")])
    c = m.complete(prefix + [Message("user", "sibling two")])
    assert c.usage.cached_tokens >= 1024 and c.usage.cached_tokens % 128 == 0
    assert c.usage.cached_tokens == server.requests[-1].cached_tokens


def test_explicit_cache_breakpoint_for_new_official_models(monkeypatch):
    from treefix.agent.models.openai import _explicit_cache, _wire

    assert (
        _explicit_cache("gpt-6-sol") and _explicit_cache("gpt-5.6-terra") and not _explicit_cache("gpt-5.4")
    )
    assert not _explicit_cache("o3") and not _explicit_cache("llama3")
    part = _wire(Message("user", "overview", cache=True), marks=True)["content"][0]
    assert part["prompt_cache_breakpoint"] == {"mode": "explicit"} and part["text"] == "overview"
    assert _wire(Message("user", "overview", cache=True))["content"] == "overview"


# --- the run's time budget bounds a call, and every charge is in the event log ----------------


def test_deadline_caps_the_http_timeout_and_the_retries(server, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    slow = OpenAIModel("gpt-4o-mini", base_url=server.url, api_key=KEY, timeout=30, backoff=FAST)
    server.script(hang(10), hang(10), hang(10))
    start = time.monotonic()
    with pytest.raises(ModelError) as err:
        slow.complete(MSGS, deadline=start + 0.6)
    assert time.monotonic() - start < 3  # not 30 s of HTTP timeout per attempt
    assert err.value.maybe_billed  # the hung attempt may still be billed


def test_a_call_that_runs_into_the_time_limit_stops_the_run_and_is_charged_at_worst(
    server, monkeypatch, tmp_path
):
    from treefix.agent.budget import Budget, BudgetExceeded, Limits
    from treefix.agent.calls import Caller
    from treefix.agent.run import call_recorder, spent_from_store
    from treefix.agent.store import RunStore

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    slow = OpenAIModel("gpt-4o-mini", base_url=server.url, api_key=KEY, timeout=30, backoff=FAST)
    budget = Budget(Limits(time_limit=1.0, cost_limit=1.0))
    store = RunStore(tmp_path / "run.sqlite")
    caller = Caller(slow, budget, 200, call_recorder(store, budget, lambda kind, data: None))
    server.script(malformed(), hang(10), hang(10))  # a billed failure, then hangs past the time limit
    start = time.monotonic()
    with pytest.raises(BudgetExceeded) as err:
        caller("plan", MSGS)
    assert err.value.limit == "time" and time.monotonic() - start < 3
    worst = slow.price().worst_case(1, 200)  # a lower bound on one attempt's worst case
    assert budget.spent.cost >= 2 * worst  # the garbled and the hung attempt: either may be billed
    rebuilt = spent_from_store(store)  # what a resumed run would believe it spent
    assert (rebuilt.turns, rebuilt.cost) == (budget.spent.turns, pytest.approx(budget.spent.cost))
    store.close()


def test_a_base_url_that_is_not_http_is_a_config_error(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="not an http"):
        OpenAIModel("qwen", base_url="notaurl", api_key=KEY)
