"""What a code/repair prompt shows of a large file (agent/context.py)."""

from treefix.agent.context import WHOLE_CHARS, file_view
from treefix.agent.models.base import Message, ToolCall
from treefix.agent.policies.llm import looked_at
from treefix.prompts import render


def big_module(n: int = 400) -> str:
    parts = [f"def helper_{i}(x):\n    y = x + {i}\n    return y * {i}\n" for i in range(n)]
    return "\n".join(parts)


def test_a_small_file_is_shown_whole():
    view = file_view("m.py", "def f():\n    return 1\n", "fix f()")
    assert view.whole and view.text == "def f():\n    return 1\n"


def test_a_large_file_shows_the_named_function_with_line_numbers_and_says_what_is_left_out():
    text = big_module()
    assert len(text) > WHOLE_CHARS
    lines = text.split("\n")
    target = lines.index("def helper_350(x):") + 1  # far beyond the first 20,000 characters
    view = file_view("pkg/m.py", text, "ROOT CAUSE: pkg/m.py: helper_350() adds the wrong constant")
    assert not view.whole
    prompt = render("code", plan="p", files=[view], advice="", tools=True)
    assert "def helper_350(x):\n    y = x + 350\n    return y * 350" in prompt
    first, last, _ = view.regions[0]
    assert first <= target <= last and f"pkg/m.py, lines {first}-{last}:" in prompt
    assert f"lines 1-{first - 1}, {last + 1}-{len(lines)} are not shown" in prompt
    assert "view tool" in prompt
    assert any(row.startswith("1-3: def helper_0(x)") for row in view.outline)
    assert len(prompt) < len(text) / 3


def test_cited_lines_and_an_attempts_changes_are_shown():
    text = big_module()
    diff = "diff --git a/pkg/m.py b/pkg/m.py\n--- a/pkg/m.py\n+++ b/pkg/m.py\n@@ -800,3 +800,3 @@\n x\n"
    view = file_view("pkg/m.py", text, "the traceback ends at pkg/m.py:1200 in a helper", diff)
    spans = [(a, b) for a, b, _ in view.regions]
    assert any(a <= 1200 <= b for a, b in spans) and any(a <= 801 <= b for a, b in spans)


def test_what_the_plans_tool_calls_viewed_is_carried_as_citations():
    conversation = [
        Message("assistant", "", tool_calls=[ToolCall("1", "view", {"path": "pkg/m.py", "start": 1190, "end": 1210})]),
        Message("tool", "..."),
        Message("assistant", "", tool_calls=[ToolCall("2", "search", {"query": "helper"})]),
    ]
    cited = looked_at(conversation)
    assert cited == "pkg/m.py:1190-1210"
    view = file_view("pkg/m.py", big_module(), f"LOOKED AT: {cited}")
    assert any(a <= 1190 and 1210 <= b for a, b, _ in view.regions)
