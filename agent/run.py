"""One run: set up the task, workspace, model, budget and store; search; pick the best; write outputs."""

from __future__ import annotations

import contextlib
import math
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from treefix.agent.budget import Budget, Ledger, Spent
from treefix.agent.calls import Caller, CallListener
from treefix.agent.config import RunConfig
from treefix.agent.errors import ConfigError
from treefix.agent.evaluate import evaluate
from treefix.agent.graph import SearchEngine
from treefix.agent.models.base import ChatModel, Completion, Usage
from treefix.agent.models.registry import load_model
from treefix.agent.outputs import choose, final_patch, not_improved_reason, write_outputs
from treefix.agent.policies.base import Critic, Policy, SearchContext
from treefix.agent.store import RunStore
from treefix.agent.task import Task
from treefix.agent.testdeps import META_KEY as TEST_DEPS
from treefix.agent.testdeps import TestDeps, capture, restore
from treefix.agent.tree import ExecResult, Node, NodeKind, NodeStatus
from treefix.agent.turns import TurnControl
from treefix.tools.sandbox import default_sandbox
from treefix.tools.workspace import Workspace, WorkspaceError

EXIT_VERIFIED, EXIT_UNVERIFIED, EXIT_BAD_INPUT, EXIT_BUDGET = 0, 1, 2, 3


@dataclass
class RunOutcome:
    run_id: str
    run_dir: Path
    exit_status: str  # verified | unverified | limit:<name> | exhausted
    exit_code: int
    best_node: str | None
    patch: str
    summary: dict[str, Any]
    reason: str = ""  # why the run made no candidate, when it made none and knows why


EventSink = Callable[[str, dict[str, Any]], None]
Evaluator = Callable[[SearchContext, Node], ExecResult | None]


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


@dataclass
class Agents:
    """What a run searches with. Built from the config by default (`build_agents`); tests,
    benchmarks and the chat hand in their own model, or a whole policy and critic."""

    policy: Policy
    critic: Critic
    caller: Caller | None = None  # None: no model calls (the offline policy)
    evaluator: Evaluator = evaluate  # runs a node's tests; the simulator's is synthetic


AgentsFactory = Callable[[RunConfig, Budget, RunStore, "EventSink"], Agents]


def run_fix(
    task: Task,
    config: RunConfig,
    run_dir: Path | None = None,
    on_event: EventSink | None = None,
    ledger: Ledger | None = None,
    model: ChatModel | None = None,
    agents: AgentsFactory | None = None,
    workspace: Workspace | None = None,
) -> RunOutcome:
    """Search for a fix of `task`. Raises ConfigError / WorkspaceError for bad input, before any spend.
    `model` replaces the one `config.model` names; `agents` replaces the policy and critic too.
    `workspace`: one the caller opened on the task's repository and base, and closes itself."""
    config = config.resolved()
    config.validate()
    if task.test_timeout <= 0 or math.isnan(task.test_timeout):
        raise ConfigError(f"the test timeout must be a positive number of seconds, got {task.test_timeout}")
    if config.model == "offline" and model is None and agents is None and not task.test_cmd:
        raise ConfigError("the offline policy needs --test-cmd: a command whose tests fail because of the issue")
    owned = workspace is None
    workspace = workspace or Workspace(task.repo, task.base)
    try:
        run_id = new_run_id()
        run_dir = run_dir or workspace.root / ".treefix" / "runs" / run_id
        made_dir = not run_dir.exists()
        _check_run_dir(run_dir)
    except ConfigError:
        if owned:
            workspace.close()
        raise
    store = RunStore(run_dir / "run.sqlite")
    task = Task(**{**task.to_dict(), "repo": workspace.root, "base": workspace.base_sha})
    store.set_meta("run_id", run_id)
    store.set_meta("task", task.to_dict())
    store.set_meta("config", config.to_dict())
    store.set_meta(TEST_DEPS, capture(task).to_dict())  # what `resume` restores
    run = Run(store, run_dir, task, config, workspace, owns_workspace=owned, made_dir=made_dir)
    return _run(run, on_event, ledger, agents or model_agents(model))


def _check_run_dir(run_dir: Path) -> None:
    """A new run gets a new or empty folder: its files would overwrite whatever is there."""
    if (run_dir / "run.sqlite").exists():
        raise ConfigError(f"{run_dir} already holds a run; use `treefix resume {run_dir}`")
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is a file; give a new or empty folder with -o")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        raise ConfigError(f"{run_dir} is not empty; give a new or empty folder with -o")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot make the run folder {run_dir}: {e.strerror or e}") from None


def resume_run(
    run_dir: Path,
    on_event: EventSink | None = None,
    ledger: Ledger | None = None,
    moved: Task | None = None,
    config: RunConfig | None = None,
    model: ChatModel | None = None,
    agents: AgentsFactory | None = None,
) -> RunOutcome:
    """Continue a stopped or killed run. `moved`: the same task in a rebuilt repository (a batch
    instance whose temporary checkout is gone); it must have the run's task, base commit and, when
    given, `config`, or the run cannot be resumed (ConfigError) and nothing is changed."""
    store = open_store(run_dir)
    task = Task.from_dict(store.get_meta("task"))
    stored = RunConfig.from_dict(store.get_meta("config"))
    try:
        if config is not None and config.resolved().to_dict() != stored.to_dict():
            raise ConfigError(f"{run_dir} was made with other settings")
        if moved is not None and (moved.problem_statement, moved.test_cmd) != (task.problem_statement, task.test_cmd):
            raise ConfigError(f"{run_dir} holds a run of another task")
        workspace = Workspace(moved.repo if moved else task.repo, task.base)
    except (ConfigError, WorkspaceError):
        store.close()
        raise
    restored: list[str] = []
    if moved is not None:  # a rebuilt environment: the task brings its own
        task = Task(**{**moved.to_dict(), "repo": workspace.root, "base": workspace.base_sha})
        store.set_meta("task", task.to_dict())
    elif (deps := store.get_meta(TEST_DEPS)) is not None:  # the shell that started the run
        try:
            task, restored = restore(TestDeps.from_dict(deps), task)
        except ConfigError:
            workspace.close()
            store.close()
            raise
    run = Run(store, run_dir, task, stored, workspace, resumed=True, restored=restored)
    return _run(run, on_event, ledger, agents or model_agents(model))


def open_store(run_dir: Path) -> RunStore:
    """The store of an existing run, or one clear ConfigError."""
    path = run_dir / "run.sqlite"
    if not path.is_file() or path.stat().st_size == 0:
        raise ConfigError(f"no run found at {run_dir}")
    try:
        store = RunStore(path)
    except sqlite3.DatabaseError as e:
        raise ConfigError(f"{path} is damaged or not a treefix run ({e})") from None
    if store.get_meta("task") is None or store.get_meta("config") is None:
        store.close()
        raise ConfigError(f"{path} is not a treefix run (no task or settings in it)")
    return store


@dataclass
class Run:
    """An open run: its store, folder, task, settings and the one workspace every step uses."""

    store: RunStore
    run_dir: Path
    task: Task
    config: RunConfig
    workspace: Workspace
    resumed: bool = False
    owns_workspace: bool = True
    made_dir: bool = False  # a new run whose folder this process made (removed if the run cannot start)
    restored: list[str] = field(default_factory=list)  # test variables resume set back to the run's start


def _run(run: Run, on_event: EventSink | None, ledger: Ledger | None, agents: AgentsFactory) -> RunOutcome:
    emit = on_event or (lambda kind, data: None)
    started = False
    try:
        limits = replace(run.config.limits, max_turns=run.config.run_turn_cap())  # a fixed cap is hard
        budget = Budget(limits, spent=spent_from_store(run.store), ledger=ledger)
        made = agents(run.config, budget, run.store, emit)
        started = True
        emit("started", {"run_id": run.store.get_meta("run_id"), "run_dir": str(run.run_dir),
                         "repo": str(run.task.repo), "resumed": run.resumed, "nodes": budget.spent.nodes,
                         "max_nodes": run.config.limits.max_nodes, "elapsed": budget.spent.elapsed,
                         "restored": run.restored})  # fmt: skip
        ctx = _open(run, budget, made)
        ctx.turns = turn_control(run.config, budget, run.store, emit)
        status = _search(run, ctx, made, emit)
        return _finish(run, ctx, budget, status, emit)
    finally:
        if run.owns_workspace:
            run.workspace.close()
        run.store.close()
        if not started and not run.resumed:
            _discard(run)


def _discard(run: Run) -> None:
    """A new run that could not start (a missing key, say) made nothing: `treefix runs` must not
    list it as unfinished. Removes only its store, and its folder when this run made it."""
    for f in run.run_dir.glob("run.sqlite*"):
        f.unlink(missing_ok=True)
    if run.made_dir:
        with contextlib.suppress(OSError):  # not empty: something else is in it, leave it
            run.run_dir.rmdir()


def _open(run: Run, budget: Budget, agents: Agents) -> SearchContext:
    """The search's context, and the root node of a new tree."""
    ctx = SearchContext(
        task=run.task,
        store=run.store,
        workspace=run.workspace,
        budget=budget,
        sandbox=default_sandbox(),
        params=run.config.params(),
        caller=agents.caller,
    )
    if agents.caller is not None:
        ctx.overview = _overview(ctx, run.config)
    if run.store.root() is None:
        statement = run.task.problem_statement.strip()
        title = statement.splitlines()[0][:100] if statement else ""
        run.store.add(Node(NodeKind.ROOT, None, 0, status=NodeStatus.DONE, title=title))
    return ctx


def _search(run: Run, ctx: SearchContext, agents: Agents, emit: EventSink) -> str:
    """Run the search graph to its end (or on from its last checkpoint); its final status."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    config = run.config
    engine = SearchEngine(
        ctx, agents.policy, agents.critic, config.weights(), config.workers, config.stop_on_verified, emit, agents.evaluator
    )
    checkpoints = sqlite3.connect(run.run_dir / "run.sqlite", check_same_thread=False)
    try:
        graph = engine.build(SqliteSaver(checkpoints))
        # each follow-up (agent/followup.py) is a new round of the same tree, with its own graph thread
        rounds = run.store.get_meta("round", 0)
        cfg = {"configurable": {"thread_id": f"search/{rounds}" if rounds else "search"}, "recursion_limit": 10**7}
        started = run.resumed and graph.get_state(cfg).values
        focus = run.store.focus()
        first = {
            "iteration": max((e["iteration"] for e in run.store.events("select")), default=0),  # keys stay unique
            "batch": [focus.id] if focus and focus.parent and focus.status is NodeStatus.NEW else [],
        }
        final = graph.invoke(None if started else first, cfg)
    finally:
        engine.close()
        checkpoints.close()
    return final.get("status") or "exhausted"


def _finish(run: Run, ctx: SearchContext, budget: Budget, status: str, emit: EventSink) -> RunOutcome:
    """Choose the best node, write the run's files, and say how the run ended."""
    run.store.set_meta("elapsed", budget.elapsed())
    choice = choose(ctx, run.store)
    best = choice.node
    patch = final_patch(ctx, best, run.config.keep_tests)
    verified = best is not None and best.verified
    if verified:
        code = EXIT_VERIFIED
    elif best is None and status.startswith("limit:"):
        code = EXIT_BUDGET
    else:
        code = EXIT_UNVERIFIED
    reason = no_candidate_reason(run.store) if best is None or status == "model_error" else ""
    summary = write_outputs(
        run.run_dir, run.store, run.task, run.config, "verified" if verified else status, code, best, budget,
        reason, choice, patch,
    )
    emit("finished", {"status": summary["exit_status"], "best": best.id if best else None})
    return RunOutcome(
        run.store.get_meta("run_id"), run.run_dir, summary["exit_status"], code, best.id if best else None,
        patch, summary, reason,
    )  # fmt: skip


def turn_control(config: RunConfig, budget: Budget, store: RunStore, emit: EventSink) -> TurnControl | None:
    """The run's turn control; every extension it grants is a store event and a live event."""
    if config.turn_control == "none":
        return None

    def on_grant(kind: str, data: dict[str, Any]) -> None:
        store.event(kind, **data)
        emit(kind, data)

    granted = [e["cap"] for e in store.events("turn_extension") if e.get("scope") == "run"]  # a resumed run
    return TurnControl(
        config.turn_control, config.run_turn_cap(), config.turn_window, on_grant, lambda: budget.spent.turns,
        cap=max(granted, default=0), start=config.turn_start,
    )  # fmt: skip


def no_candidate_reason(store: RunStore) -> str:
    """Why a run made no candidate (or why a model run failed), when its store knows: its attempts
    were no better than the base, the model's last call failed, or the offline policy's localisation
    found nothing to edit."""
    if why := not_improved_reason(store):
        return why
    failed = [n for n in store.nodes() if n.status is NodeStatus.FAILED and n.error]
    found = store.events("localise")
    if not found:
        return f"the last model call failed: {failed[-1].error}" if failed else ""
    e = found[-1]
    if e.get("error"):
        return f"the test command gave no usable test results: {e['error']}"
    if not e.get("failing"):
        return (
            f"no test failed at the base ({e.get('tests', 0)} ran); "
            "the offline policy needs a test that fails because of the issue"
        )
    if not any(n.kind is NodeKind.PLAN for n in store.nodes()):
        return (
            f"{e['failing']} test(s) fail at the base, but they run no line outside the tests that a repair "
            "operator can edit: the fix probably needs new code, which only a model writes"
        )
    return ""


def model_agents(model: ChatModel | None = None) -> AgentsFactory:
    """Agents for `config.model`, or for `model` when one is handed in."""

    def build(config: RunConfig, budget: Budget, store: RunStore, emit: EventSink) -> Agents:
        from treefix.agent.models.pricing import parse_price

        chosen = model
        if chosen is None:
            record = Path(config.record) if config.record else None
            chosen = load_model(config.model, base_url=config.base_url, record=record)
        if chosen is None:
            from treefix.agent.policies.offline import OfflineCritic, OfflinePolicy

            return Agents(OfflinePolicy(), OfflineCritic())
        if config.price and hasattr(chosen, "set_price"):
            chosen.set_price(parse_price(config.price))
        budget.require_enforceable(chosen.price(), chosen.name)
        from treefix.agent.tool_loop import tool_specs

        caller = Caller(
            chosen, budget, config.limits.max_output_tokens, call_recorder(store, budget, emit), config.context_window or None,
            tools=tool_specs(), on_start=lambda role: emit("call_start", {"role": role}),
        )
        from treefix.agent.policies.llm import LLMCritic, LLMPolicy

        if config.tier == "offline":
            from treefix.agent.policies.offline import OfflineCritic, OfflinePolicy
            from treefix.agent.policies.tiered import TieredCritic, TieredPolicy

            return Agents(TieredPolicy(OfflinePolicy(), LLMPolicy()), TieredCritic(OfflineCritic(), LLMCritic()), caller)
        return Agents(LLMPolicy(), LLMCritic(), caller)

    return build


def spent_from_store(store: RunStore) -> Spent:
    """What a run has spent, rebuilt from its event log: a resumed run keeps every cent it paid."""
    spent = Spent(elapsed=store.get_meta("elapsed", 0.0))
    for e in store.events("call"):
        spent.add_call(e["role"], Usage.from_dict(e), e["cost"])
    # an identical sibling folded into an existing node was charged as a node too
    spent.nodes = sum(1 for n in store.nodes() if n.parent is not None) + len(store.events("duplicate"))
    spent.test_runs = len(store.events("test"))
    return spent


def _overview(ctx: SearchContext, config: RunConfig) -> str:
    """The repository as the model first sees it: the file tree and a repo map focused on the issue.
    Kept in the store, so every prompt of the run, resumed or not, shares the same cached prefix."""
    if (saved := ctx.store.get_meta("overview")) is not None:
        return saved
    from treefix.tools.repo_map import RepoMap

    text = ctx.workspace.overview()
    if config.map_tokens > 0:
        with ctx.workspace.worktree() as wt:
            repo_map = RepoMap(wt, cache_dir=ctx.map_cache)
            files, idents = repo_map.focus_from_text(ctx.task.problem_statement)
            rendered = repo_map.render(config.map_tokens, files, idents)
        if rendered:
            text += "\n\n# Repository map (most relevant first)\n" + rendered
    ctx.store.set_meta("overview", text)
    return text


def call_recorder(store: RunStore, budget: Budget, emit: EventSink) -> CallListener:
    """Each settled call as a `call` event (what spent_from_store reads back) and a live event."""

    def on_call(role: str, completion: Completion | None, error: str) -> None:
        u = completion.usage if completion else Usage()
        cost = (completion.cost or 0.0) if completion else 0.0
        store.event("call", role=role, **u.to_dict(), cost=cost, error=error)
        emit("call", {"role": role, "cost": cost, "total_cost": budget.spent.cost, "turns": budget.spent.turns})

    return on_call


