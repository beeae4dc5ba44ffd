"""The prompt prefix every role shares (policy, critic, discriminator), so providers cache it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from treefix.agent.models.base import Message
from treefix.prompts import render

if TYPE_CHECKING:
    from treefix.agent.policies.base import SearchContext


def shared_prefix(ctx: SearchContext) -> list[Message]:
    """System prompt and task context, byte-identical for every call of a run (every role), so
    providers cache it: Anthropic at the marked message, OpenAI by its automatic prefix caching."""
    context = render("context", overview=ctx.overview, issue=ctx.task.problem_statement, test_cmd=ctx.task.test_cmd)
    return [Message("system", render("system")), Message("user", context, cache=True)]
