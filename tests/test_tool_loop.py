
import pytest
from test_repo_map import make_repo  # noqa: E402

from treefix.agent.models.base import Completion, Message, ToolCall, ToolSpec
from treefix.agent.tool_loop import TOOL_SPECS, run_tool_loop


class Scripted:
    """A chat model that returns pre-set completions and records what it was sent."""

    name = "scripted"

    def __init__(self, replies: list[Completion]) -> None:
        self.replies = list(replies)
        self.seen: list[tuple[list[Message], list[ToolSpec] | None]] = []

    def complete(self, messages, tools=None, **params):
        self.seen.append((list(messages), tools))
        return self.replies.pop(0)

    def price(self):
        return None


def calls(*specs: tuple[str, dict]) -> Completion:
    return Completion("", [ToolCall(f"c{i}", name, args) for i, (name, args) in enumerate(specs)])


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # keep the map cache out of the user's
    return make_repo(tmp_path / "repo")


def test_specs_describe_the_four_tools():
    assert [s.name for s in TOOL_SPECS] == ["search", "view", "outline", "repo_map"]
    assert TOOL_SPECS[0].parameters["required"] == ["query"] and "regex" in TOOL_SPECS[0].description


def test_tools_run_and_the_plain_reply_is_the_answer(repo):
    model = Scripted(
        [
            calls(("search", {"query": "sum_prices"}), ("outline", {"path": "shop/models.py"})),
            calls(
                ("view", {"path": "shop/models.py", "start": 14, "end": 15}), ("repo_map", {"tokens": 200})
            ),
            calls(("search", {"query": "Money", "mode": "definitions"})),
            Completion("TITLE: fix sum_prices"),
        ]
    )
    start = [Message("system", "s"), Message("user", "plan")]
    answer, messages = run_tool_loop(model.complete, start, repo, turns=5)
    assert answer == "TITLE: fix sum_prices"
    assert len(model.seen) == 4 and all(tools == TOOL_SPECS for _, tools in model.seen)
    results = [m for m in messages if m.role == "tool"]
    assert [m.tool_call_id for m in results] == ["c0", "c1", "c0", "c1", "c0"]
    assert "2 matches in 1 file" in results[0].content
    assert "14-18│def sum_prices(items):" in results[1].content
    assert results[2].content.splitlines()[1] == "14 | def sum_prices(items):"
    assert results[3].content.startswith("shop/models.py:")
    assert "shop/models.py:1│class Money:" in results[4].content
    assert messages[2].role == "assistant" and messages[2].tool_calls and messages[-1].content == answer
    assert start == [Message("system", "s"), Message("user", "plan")]  # the caller's list is not mutated


def test_turns_run_out_then_one_call_without_tools(repo):
    model = Scripted([calls(("view", {"path": "shop/cli.py"}))] * 2 + [Completion("PLAN with what I have")])
    answer, messages = run_tool_loop(model.complete, [Message("user", "plan")], repo, turns=2)
    assert answer == "PLAN with what I have"
    assert [tools for _, tools in model.seen] == [TOOL_SPECS, TOOL_SPECS, []]
    last_sent = model.seen[-1][0][-1]
    assert last_sent.role == "user" and "final answer" in last_sent.content


def test_tool_errors_become_messages(repo):
    model = Scripted(
        [
            calls(
                ("view", {"path": "../../etc/passwd"}),
                ("nope", {}),
                ("view", {}),
                ("search", {"query": "x", "mode": "bogus"}),
                ("search", {"query": "(", "mode": "regex"}),
            ),
            Completion("done"),
        ]
    )
    _, messages = run_tool_loop(model.complete, [Message("user", "plan")], repo, turns=3)
    out = [m.content for m in messages if m.role == "tool"]
    assert "outside the repository" in out[0]
    assert out[1].startswith("error: unknown tool 'nope'")
    assert out[2].startswith("error: bad arguments for view")
    assert "unknown search mode" in out[3] and out[4].startswith("error: bad query")


def test_budget_exceptions_propagate(repo):
    class OutOfBudget(Exception):
        pass

    def call(messages, tools):
        if len(messages) > 2:
            raise OutOfBudget
        return calls(("outline", {"path": "shop/views.py"}))

    with pytest.raises(OutOfBudget):
        run_tool_loop(call, [Message("user", "plan")], repo, turns=4)


def test_zero_turns_asks_directly_without_tools(repo):
    model = Scripted([Completion("direct")])
    answer, messages = run_tool_loop(model.complete, [Message("user", "plan")], repo, turns=0)
    assert answer == "direct" and model.seen[0][1] == [] and len(messages) == 2
