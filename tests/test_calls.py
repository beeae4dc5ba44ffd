"""The Caller fits a prompt into the model's context window before it reserves and sends it."""

from treefix.agent.budget import Budget, Limits
from treefix.agent.calls import Caller
from treefix.agent.models.base import Message, ToolCall
from treefix.agent.models.scripted import ScriptedModel
from treefix.agent.models.tokens import count_messages, margin


def conversation(tool_output: str) -> list[Message]:
    return [
        Message("system", "You fix bugs. " * 50, cache=True),
        Message("user", "Repository overview and issue. " * 40, cache=True),
        Message("assistant", "", tool_calls=[ToolCall("c1", "view", {"path": "big.py"})]),
        Message("tool", tool_output, tool_call_id="c1"),
        Message("user", "Now write the plan."),
    ]


def test_a_prompt_too_long_for_the_context_is_cut_in_the_middle_only():
    model = ScriptedModel(["a plan"], name="openai/my-local-model")
    caller = Caller(model, Budget(Limits(cost_limit=0)), max_output_tokens=1000, context=8000)
    sent = conversation("\n".join(f"line {i}: some code here = {i} * 2" for i in range(20_000)))
    assert caller("plan", sent).text == "a plan"
    ((_, received),) = model.calls
    assert count_messages(received) <= (8000 - 1000) / margin(model.name)
    assert received[:3] == sent[:3] and received[-1] == sent[-1]  # the cached prefix and the ask, untouched
    assert "tokens cut" in received[3].content and received[3].content.startswith("line 0:")


def test_a_prompt_that_fits_is_sent_as_it_is():
    model = ScriptedModel(["ok"], name="openai/my-local-model")
    Caller(model, Budget(Limits(cost_limit=0)), max_output_tokens=1000, context=8000)(
        "plan", conversation("short")
    )
    assert model.calls[0][1] == conversation("short")
