"""Continue a finished tree from one of its nodes: a chat follow-up, `/expand`, a changed test command.

Everything is written to the run's store and the run is then resumed, so a follow-up is as durable
as any run: the task grows by the user's message, the message becomes the hint the next expansion
under the node sees, the node becomes the search's focus (selection, stopping and the final choice
stay in its subtree) and is evaluated again first, since the tests may have changed.
"""

from __future__ import annotations

from pathlib import Path

from treefix.agent.config import RunConfig
from treefix.agent.errors import ConfigError
from treefix.agent.run import AgentsFactory, EventSink, RunOutcome, open_store, resume_run
from treefix.agent.task import Task
from treefix.agent.tree import NodeKind, NodeStatus

SPECTRUM_KEYS = ("offline/spectrum", "offline/baseline")  # localisation at base, for the old tests


def continue_run(
    run_dir: Path,
    node_id: str,
    guidance: str = "",
    test_cmd: str | None = None,
    more_nodes: int = 0,
    on_event: EventSink | None = None,
    agents: AgentsFactory | None = None,
) -> RunOutcome:
    """Grow the tree in `run_dir` again, from `node_id`. `more_nodes`: nodes this round may add
    on top of those made so far (0: the run's node limit as it stands)."""
    store = open_store(run_dir)
    try:
        node = next((n for n in store.nodes() if n.id.startswith(node_id)), None) if node_id else None
        if node is None:
            raise ConfigError(f"no node {node_id!r} in this tree")
        task = Task.from_dict(store.get_meta("task"))
        statement = task.problem_statement + (f"\n\nFollow-up: {guidance}" if guidance else "")
        store.set_meta("task", {**task.to_dict(), "problem_statement": statement, "test_cmd": test_cmd or task.test_cmd})
        if guidance:
            store.set_meta(f"hint/{node.id}", guidance)
        if more_nodes:
            config = RunConfig.from_dict(store.get_meta("config"))
            config.limits.max_nodes = sum(1 for n in store.nodes() if n.parent is not None) + more_nodes
            store.set_meta("config", config.to_dict())
        if test_cmd and test_cmd != task.test_cmd:
            for key in SPECTRUM_KEYS:
                store.set_meta(key, None)
        store.set_meta("round", store.get_meta("round", 0) + 1)
        store.set_meta("focus", node.id)
        node.closed = False  # the user asked for more here, whatever the policy said before
        if node.kind in (NodeKind.CODE, NodeKind.REPAIR):
            node.status, node.exec, node.judgement = NodeStatus.NEW, None, None
        store.update(node)
        store.event("followup", node=node.id, guidance=guidance, test_cmd=test_cmd or task.test_cmd)
    finally:
        store.close()
    return resume_run(run_dir, on_event=on_event, agents=agents)
