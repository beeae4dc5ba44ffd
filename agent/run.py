"""One run: set up the task, workspace, model, budget and store; search; pick the best; write outputs."""

from __future__ import annotations

import math
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from treefix.agent.budget import Budget, Ledger, Limits, Spent
from treefix.agent.calls import Caller, CallListener
from treefix.agent.critic import Critic, LLMCritic, ValueWeights
from treefix.agent.graph import SearchEngine
from treefix.agent.models.base import Completion, ConfigError, Usage
from treefix.agent.models.registry import load_model
from treefix.agent.outputs import choose_best, write_outputs
from treefix.agent.policies.base import Policy, SearchContext
from treefix.agent.select import SearchParams
from treefix.agent.store import RunStore
from treefix.agent.task import Task
from treefix.agent.tree import Node, NodeKind, NodeStatus
from treefix.tools.sandbox import default_sandbox
from treefix.tools.workspace import Workspace, WorkspaceError

EXIT_VERIFIED, EXIT_UNVERIFIED, EXIT_BAD_INPUT, EXIT_BUDGET = 0, 1, 2, 3


@dataclass
class RunConfig:
    model: str = "offline"
    base_url: str | None = None
    search: str = "mcts"
    limits: Limits = field(default_factory=Limits)
    workers: int = 1
    exploration: float = 1.0
    widen_k: float = 1.0
    widen_alpha: float = 0.5
    max_children: int = 5
    exec_weight: float = 0.7
    critic_weight: float = 0.3
    stop_on_verified: bool = True
    record: str | None = None  # cassette path to record the model's completions to
    price: str | None = None  # "IN,OUT[,CACHED[,CACHE_WRITE]]" USD per 1M tokens, for unpriced models
    label: str = ""  # extra words for model_name_or_path in batch outputs (e.g. visible tests)
    map_tokens: int = 2048  # size of the repository map in the shared prompt prefix
    tier: str = ""  # "offline": try no-model candidates first, within a share of the budget
    context_window: int = 0  # tokens the model accepts; 0: the price table's figure, else 32k

    def validate(self) -> None:
        """Numbers a run cannot mean: negative or NaN limits, no room for a node. ConfigError."""
        at_least = {
            "limits.cost_limit": 0, "limits.max_turns": 0, "limits.max_tokens": 0, "limits.time_limit": 0,
            "limits.max_nodes": 0, "limits.max_depth": 1, "limits.turns_per_node": 1,
            "limits.max_output_tokens": 1, "limits.reserve_cost": 0, "workers": 1, "exploration": 0,
            "widen_k": 0, "widen_alpha": 0, "max_children": 1, "exec_weight": 0, "critic_weight": 0,
            "map_tokens": 0, "context_window": 0,
        }  # fmt: skip
        for key, low in at_least.items():
            head, _, rest = key.partition(".")
            value = getattr(self.limits, rest) if rest else getattr(self, head)
            if math.isnan(value) or value < low:
                raise ConfigError(f"{key} must be at least {low}, got {value}")
        if math.isinf(self.limits.cost_limit) or math.isinf(self.limits.time_limit):
            raise ConfigError("a limit of infinity: use 0 for no limit")
        if self.exec_weight + self.critic_weight <= 0:
            raise ConfigError("exec_weight and critic_weight cannot both be 0")

    def params(self) -> SearchParams:
        return SearchParams(
            strategy=self.search,
            exploration=self.exploration,
            widen_k=self.widen_k,
            widen_alpha=self.widen_alpha,
            max_children=self.max_children,
            max_depth=self.limits.max_depth,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        d = dict(d)
        d["limits"] = Limits(**d.get("limits", {}))
        return cls(**d)


@dataclass
class RunOutcome:
    run_id: str
    run_dir: Path
    exit_status: str  # verified | unverified | limit:<name> | exhausted
    exit_code: int
    best_node: str | None
    patch: str
    summary: dict[str, Any]


EventSink = Callable[[str, dict[str, Any]], None]


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def run_fix(
    task: Task,
    config: RunConfig,
    run_dir: Path | None = None,
    on_event: EventSink | None = None,
    ledger: Ledger | None = None,
) -> RunOutcome:
    """Search for a fix of `task`. Raises ConfigError / WorkspaceError for bad input, before any spend."""
    config.validate()
    check_tier(config.model, config.tier)
    if task.test_timeout <= 0 or math.isnan(task.test_timeout):
        raise ConfigError(f"the test timeout must be a positive number of seconds, got {task.test_timeout}")
    workspace = Workspace(task.repo, task.base)
    if config.model == "offline" and not task.test_cmd:
        raise ConfigError("the offline policy needs --test-cmd: a command whose tests fail because of the issue")
    config = with_policy_defaults(config)
    run_id = new_run_id()
    run_dir = run_dir or workspace.root / ".treefix" / "runs" / run_id
    _check_run_dir(run_dir)
    store = RunStore(run_dir / "run.sqlite")
    task = Task(**{**task.to_dict(), "repo": workspace.root, "base": workspace.base_sha})
    store.set_meta("run_id", run_id)
    store.set_meta("task", task.to_dict())
    store.set_meta("config", config.to_dict())
    return _search(store, run_dir, task, config, workspace, on_event, ledger, resume=False)


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
) -> RunOutcome:
    """Continue a stopped or killed run. `moved`: the same task in a rebuilt repository (a batch
    instance whose temporary checkout is gone); it must have the run's task, base commit and, when
    given, `config`, or the run cannot be resumed (ConfigError) and nothing is changed."""
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
    task = Task.from_dict(store.get_meta("task"))
    stored = RunConfig.from_dict(store.get_meta("config"))
    try:
        if config is not None and with_policy_defaults(config).to_dict() != stored.to_dict():
            raise ConfigError(f"{run_dir} was made with other settings")
        if moved is not None and (moved.problem_statement, moved.test_cmd) != (task.problem_statement, task.test_cmd):
            raise ConfigError(f"{run_dir} holds a run of another task")
        workspace = Workspace(moved.repo if moved else task.repo, task.base)
    except (ConfigError, WorkspaceError):
        store.close()
        raise
    if moved is not None:
        task = Task(**{**moved.to_dict(), "repo": workspace.root, "base": workspace.base_sha})
        store.set_meta("task", task.to_dict())
    return _search(store, run_dir, task, stored, workspace, on_event, ledger, resume=True)


def check_tier(model: str, tier: str) -> None:
    """`--tier offline` puts free candidates before a model's; it means nothing without a model."""
    if tier not in ("", "offline"):
        raise ConfigError(f"unknown tier {tier!r}: the only tier is offline")
    if tier and model == "offline":
        raise ConfigError("--tier offline is for model runs: -m offline is the offline policy already")


def with_policy_defaults(config: RunConfig) -> RunConfig:
    """The offline policy's preferred search settings, where the config still holds our defaults.

    Offline candidates are cheap and judged by execution alone, so a suspicious line may try many
    operators (wider widening) and the value is the critic's execution measure only."""
    if config.model != "offline":
        return config
    from treefix.agent.policies.offline import OfflinePolicy

    defaults, data = RunConfig().to_dict(), config.to_dict()
    for key, value in OfflinePolicy.preferred_params.items():
        if data.get(key) == defaults.get(key):
            data[key] = value
    return RunConfig.from_dict(data)


def spent_from_store(store: RunStore) -> Spent:
    """What a run has spent, rebuilt from its event log: a resumed run keeps every cent it paid."""
    spent = Spent(elapsed=store.get_meta("elapsed", 0.0))
    for e in store.events("call"):
        usage = Usage(e["input_tokens"], e["output_tokens"], e["cached_tokens"], e.get("cache_write_tokens", 0))
        spent.add_call(e["role"], usage, e["cost"])
    spent.nodes = sum(1 for n in store.nodes() if n.parent is not None)
    spent.test_runs = len(store.events("test"))
    return spent


def _search(
    store: RunStore,
    run_dir: Path,
    task: Task,
    config: RunConfig,
    workspace: Workspace,
    on_event: EventSink | None,
    ledger: Ledger | None,
    resume: bool,
) -> RunOutcome:
    emit = on_event or (lambda kind, data: None)
    try:
        budget = Budget(config.limits, spent=spent_from_store(store), ledger=ledger)
        policy, critic, caller = _agents(config, budget, store, emit)
        ctx = SearchContext(
            task=task,
            store=store,
            workspace=workspace,
            budget=budget,
            sandbox=default_sandbox(),
            params=config.params(),
            caller=caller,
            overview=_overview(store, workspace, task, config) if caller is not None else "",
        )
        if store.root() is None:
            title = task.problem_statement.strip().splitlines()[0][:100] if task.problem_statement.strip() else ""
            store.add(Node(NodeKind.ROOT, None, 0, status=NodeStatus.DONE, title=title))
        weights = ValueWeights(config.exec_weight, config.critic_weight)
        engine = SearchEngine(ctx, policy, critic, weights, config.workers, config.stop_on_verified, emit)
        checkpoints = sqlite3.connect(run_dir / "run.sqlite", check_same_thread=False)
        try:
            from langgraph.checkpoint.sqlite import SqliteSaver

            graph = engine.build(SqliteSaver(checkpoints))
            cfg = {"configurable": {"thread_id": "search"}, "recursion_limit": 10**7}
            started = resume and graph.get_state(cfg).values
            final = graph.invoke(None if started else {"iteration": 0, "batch": []}, cfg)
        finally:
            engine.close()
            checkpoints.close()
        status = final.get("status") or "exhausted"
        store.set_meta("elapsed", budget.elapsed())
        best = choose_best(ctx, store)
        verified = best is not None and best.verified
        if verified:
            code = EXIT_VERIFIED
        elif best is None and status.startswith("limit:"):
            code = EXIT_BUDGET
        else:
            code = EXIT_UNVERIFIED
        summary = write_outputs(run_dir, store, task, config, status if not verified else "verified", code, best, budget)
        emit("finished", {"status": summary["exit_status"], "best": best.id if best else None})
        return RunOutcome(
            store.get_meta("run_id"), run_dir, summary["exit_status"], code, best.id if best else None,
            best.diff if best else "", summary,
        )
    finally:
        workspace.close()
        store.close()


def _overview(store: RunStore, workspace: Workspace, task: Task, config: RunConfig) -> str:
    """The repository as the model first sees it: the file tree and a repo map focused on the issue.
    Kept in the store, so every prompt of the run, resumed or not, shares the same cached prefix."""
    if (saved := store.get_meta("overview")) is not None:
        return saved
    from treefix.tools.repo_map import RepoMap

    text = workspace.overview()
    if config.map_tokens > 0:
        with workspace.worktree() as wt:
            repo_map = RepoMap(wt, cache_dir=workspace.root / ".treefix" / "cache")
            files, idents = repo_map.focus_from_text(task.problem_statement)
            rendered = repo_map.render(config.map_tokens, files, idents)
        if rendered:
            text += "\n\n# Repository map (most relevant first)\n" + rendered
    store.set_meta("overview", text)
    return text


def call_recorder(store: RunStore, budget: Budget, emit: EventSink) -> CallListener:
    """Each settled call as a `call` event (what spent_from_store reads back) and a live event."""

    def on_call(role: str, completion: Completion | None, error: str) -> None:
        u = completion.usage if completion else Usage()
        cost = (completion.cost or 0.0) if completion else 0.0
        store.event(
            "call", role=role, input_tokens=u.input_tokens, output_tokens=u.output_tokens,
            cached_tokens=u.cached_tokens, cache_write_tokens=u.cache_write_tokens, cost=cost, error=error,
        )
        emit("call", {"role": role, "cost": cost, "total_cost": budget.spent.cost, "turns": budget.spent.turns})

    return on_call


def _agents(
    config: RunConfig, budget: Budget, store: RunStore, emit: EventSink
) -> tuple[Policy, Critic, Caller | None]:
    from treefix.agent.models.pricing import parse_price

    price_override = parse_price(config.price) if config.price else None
    model = load_model(config.model, base_url=config.base_url, record=Path(config.record) if config.record else None)
    if model is None:
        from treefix.agent.policies.offline import OfflineCritic, OfflinePolicy

        return OfflinePolicy(), OfflineCritic(), None
    if price_override is not None and hasattr(model, "set_price"):
        model.set_price(price_override)
    budget.require_enforceable(model.price(), model.name)

    from treefix.agent.policies.llm import LLMPolicy

    caller = Caller(
        model, budget, config.limits.max_output_tokens, call_recorder(store, budget, emit), config.context_window or None
    )
    if config.tier == "offline":
        from treefix.agent.policies.offline import OfflineCritic, OfflinePolicy
        from treefix.agent.policies.tiered import TieredCritic, TieredPolicy

        return TieredPolicy(OfflinePolicy(), LLMPolicy()), TieredCritic(OfflineCritic(), LLMCritic()), caller
    return LLMPolicy(), LLMCritic(), caller
