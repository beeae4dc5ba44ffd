"""`treefix swebench run`: solve a dataset's instances in parallel and write SWE-bench predictions.

The parent process selects instances, builds each worker's `WorkItem` from the instance's agent
view, hands items to an executor as slots free up, shows progress, and writes every output file.
Re-running the same command skips finished instances and retries errored ones.
"""

from __future__ import annotations

import random
import re
import shlex
import shutil
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from treefix.agent.errors import ConfigError
from treefix.evals.dataset import Instance, load_dataset
from treefix.evals.executors import Done, Event, Executor, make_executor
from treefix.evals.harness import DEFAULT_TEST_CMD
from treefix.evals.outputs import BatchOutputs, OutputsError, instance_dir, model_name_or_path
from treefix.evals.swebench_specs import agent_test_command
from treefix.evals.worker import EnvSpec, VisibleTests, WorkItem

if TYPE_CHECKING:
    from treefix.agent.config import RunConfig

VISIBLE_LABEL = "visible-tests"
SHUFFLE_SEED = 42  # the order SWE-agent and mini-swe-agent users get from --shuffle


@dataclass
class BatchOptions:
    dataset: Path
    output: Path
    repos_dir: Path | None = None
    cache_dir: Path | None = None
    instance_ids: list[str] = field(default_factory=list)
    slice: str | None = None
    filter: str | None = None
    shuffle: bool = False
    workers: int = 1
    executor: str = "local"
    address: str | None = None
    # Run settings: None = not given here, so the user config file and -c `config` sources decide,
    # exactly as for `treefix fix` (defaults < config file < -c < these).
    model: str | None = None
    base_url: str | None = None
    cost_limit: float | None = None
    max_nodes: int | None = None
    search: str | None = None
    tier: str | None = None
    config: list[str] = field(default_factory=list)
    use_settings: bool = True  # the user config file and .env
    global_cost_limit: float = 0.0
    visible_tests: bool = False
    redo_existing: bool = False

    def run_config(self) -> RunConfig:
        from treefix.agent.config import build_config

        keys = {"model": "model", "base_url": "base_url", "cost_limit": "limits.cost_limit",
                "max_nodes": "limits.max_nodes", "search": "search", "tier": "tier"}  # fmt: skip
        typed = {key: getattr(self, name) for name, key in keys.items() if getattr(self, name) is not None}
        config = build_config(self.config, typed, use_settings=self.use_settings)
        config.label = label(config.tier, self.visible_tests)
        return config

    @property
    def model_name(self) -> str:
        config = self.run_config()
        return model_name_or_path(config.model, config.label)


def label(tier: str, visible_tests: bool) -> str:
    """What sets a run apart from a plain one, in every output (`tier-offline__visible-tests`)."""
    return "__".join(p for p in (tier and f"tier-{tier}", visible_tests and VISIBLE_LABEL) if p)


@dataclass
class BatchResult:
    selected: int
    skipped: int  # finished by an earlier run of the same command
    ran: int
    interrupted: bool
    tallies: dict[str, int]
    total_cost: float


def select_instances(
    instances: list[Instance], ids: list[str], slice_: str | None, filter_: str | None, shuffle: bool
) -> list[Instance]:
    """Like SWE-agent and mini-swe-agent: shuffle (fixed seed), then filter (regex match), then slice."""
    if ids:
        known = {i.instance_id for i in instances}
        if missing := [i for i in ids if i not in known]:
            raise ConfigError(f"unknown instance id(s): {', '.join(missing[:10])}")
        instances = [i for i in instances if i.instance_id in set(ids)]
    if shuffle:
        instances = instances[:]
        random.Random(SHUFFLE_SEED).shuffle(instances)
    if filter_:
        try:
            pattern = re.compile(filter_)
        except re.error as e:
            raise ConfigError(f"--filter is not a regular expression: {e}") from None
        instances = [i for i in instances if pattern.match(i.instance_id)]
    if slice_ is not None:  # `--slice ''` is a mistake, not "everything"
        instances = instances[parse_slice(slice_)]
    return instances


def parse_slice(text: str) -> slice:
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3):  # A:B or A:B:STEP, as SWE-agent takes it
            raise ValueError
        bounds = [int(p) if p.strip() else None for p in parts]
        if len(bounds) == 3 and bounds[2] is not None and bounds[2] < 1:
            raise ValueError  # a step of 0 is an error, a negative one would reverse the order
        return slice(*bounds)
    except ValueError:
        raise ConfigError(f"--slice takes A:B or A:B:STEP (like Python's list slicing), not {text!r}") from None


def build_item(inst: Instance, opts: BatchOptions, config: RunConfig) -> WorkItem:
    """The only thing a worker receives. Built from the agent view and an allow-listed EnvSpec."""
    view = inst.agent_view()
    # The instance's test command on the repo as it is: the repo's own tests, never the hidden ones.
    # SWE-bench instances: SWE-bench's own runner on the test files it names (see agent_test_command).
    own = agent_test_command(inst, opts.repos_dir, visible=opts.visible_tests)
    view = replace(view, test_cmd=view.test_cmd or inst.test_cmd or own or DEFAULT_TEST_CMD)
    visible = VisibleTests(inst.test_patch, list(inst.FAIL_TO_PASS)) if opts.visible_tests else None
    cfg = config.to_dict()
    if cfg.get("base_check") is None:  # the instance's command usually passes on the base: then reproduce
        cfg["base_check"] = True
    if (cassettes := _replay_dir(config.model)) is not None:
        cfg["model"] = f"replay:{cassettes / (inst.instance_id + '.jsonl')}"
    out = opts.output.resolve()
    return WorkItem(
        task=view,
        env=EnvSpec.of(inst),
        config=cfg,
        run_dir=str(instance_dir(out, inst.instance_id) / "run"),
        cache_dir=str(cache_dir(opts)),
        repos_dir=str(opts.repos_dir.resolve()) if opts.repos_dir else None,
        ledger=str(out / "ledger.sqlite") if opts.global_cost_limit else None,
        global_cost_limit=opts.global_cost_limit,
        visible=visible,
    )


def cache_dir(opts: BatchOptions) -> Path:
    if opts.cache_dir:
        return opts.cache_dir.resolve()
    from treefix.evals.grading import default_cache_dir  # shared with `swebench eval`: one venv per code

    return default_cache_dir().resolve()


def _replay_dir(model: str) -> Path | None:
    """`-m replay:DIR` plays `DIR/<instance_id>.jsonl` for each instance."""
    if model.startswith("replay:") and (p := Path(model.removeprefix("replay:")).expanduser()).is_dir():
        return p.resolve()
    return None


def preflight(opts: BatchOptions, config: RunConfig) -> None:
    """Fail before any instance starts on what would fail them all: bad model, unenforceable limits."""
    from treefix.agent.budget import Budget
    from treefix.agent.models.registry import load_model

    if opts.workers < 1:
        raise ConfigError("-w/--workers must be at least 1")
    if not opts.global_cost_limit >= 0:  # also NaN
        raise ConfigError(f"--global-cost-limit must be 0 (no limit) or more, not {opts.global_cost_limit}")
    config.validate()
    check_cache_dir(cache_dir(opts))
    if config.model == "offline":
        try:
            import treefix.agent.policies.offline  # noqa: F401
        except ImportError:
            raise ConfigError(
                "the offline policy is not available in this build; pick a model with -m"
            ) from None
        return
    if _replay_dir(config.model) is not None:
        return
    model = load_model(config.model, base_url=config.base_url)
    assert model is not None
    Budget(config.limits).require_enforceable(model.price(), model.name)


def check_cache_dir(path: Path) -> None:
    """Every worker writes there: a file in the way would fail each instance with a traceback."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--cache-dir {path} is not a usable folder: {e.strerror or e}") from None


def run_batch(opts: BatchOptions, console: Console | None = None) -> BatchResult:
    console = console or Console(stderr=True)
    instances, problems = load_dataset(opts.dataset)
    for p in problems:
        console.print(f"[yellow]skipped[/] {_escape(p)}", soft_wrap=True)
    if not instances:
        raise ConfigError(f"no valid instances in {opts.dataset}")
    selected = select_instances(instances, opts.instance_ids, opts.slice, opts.filter, opts.shuffle)
    if not selected:
        raise ConfigError("the selection (-i/--slice/--filter) matches no instance")
    out = opts.output.resolve()
    try:
        state = BatchOutputs.load(out)
    except OutputsError as e:
        raise ConfigError(f"{e}; pick another -o folder") from None
    todo = [i for i in selected if opts.redo_existing or not state.finished(i.instance_id)]
    # A local pool starts first: its modules load in the fork server while the parent loads its own.
    # The settings first: reading them loads .env into the environment the workers inherit.
    config = opts.run_config()
    early = todo and opts.executor == "local"
    executor = make_executor(opts.executor, opts.workers, opts.address) if early else None
    try:
        preflight(opts, config)
        if todo and executor is None:
            executor = make_executor(opts.executor, opts.workers, opts.address)
        try:  # last: nothing is written on bad input
            out.mkdir(parents=True, exist_ok=True)
            state.write_shared()  # valid (maybe empty) outputs from the start, whatever happens next
        except OSError as e:
            raise ConfigError(f"cannot write to {opts.output}: {e.strerror or e}") from None
    except BaseException:
        if executor is not None:
            executor.close()
        raise
    skipped = len(selected) - len(todo)
    if skipped:
        msg = f"{skipped} instance(s) already finished in {out}: skipped (--redo-existing redoes them)"
        console.print(msg, soft_wrap=True, markup=False)
    if opts.visible_tests:
        console.print(
            "[yellow]visible tests[/]: the agent sees each instance's FAIL_TO_PASS tests (not a standard setting)"
        )
    items = deque(build_item(i, opts, config) for i in todo)
    loop = _Loop(opts, state, console, executor, items, len(selected), skipped, selected)
    try:
        loop.run()
    finally:
        if executor is not None:
            executor.close()
    _print_end(console, opts, out, state, selected, loop.interrupted)
    tallies: dict[str, int] = {}
    for i in selected:
        if (s := state.statuses.get(i.instance_id)) is not None:
            tallies[s] = tallies.get(s, 0) + 1
    return BatchResult(
        len(selected), skipped, loop.ran, loop.interrupted, tallies,
        sum(state.costs.get(i.instance_id, 0.0) for i in selected),
    )  # fmt: skip


class _Loop:
    """Start items as slots free up, route messages, record results; Ctrl-C once stops new starts,
    twice kills what runs."""

    def __init__(
        self, opts: BatchOptions, state: BatchOutputs, console: Console, executor: Executor | None,
        items: deque[WorkItem], total: int, skipped: int, selected: list[Instance],
    ) -> None:  # fmt: skip
        self.opts, self.state, self.console, self.executor, self.items = opts, state, console, executor, items
        self.total, self.skipped, self.selected = total, skipped, selected
        self.model_name = opts.model_name  # once: it reads the config file and -c sources
        self.free = list(range(opts.workers))
        self.interrupts = 0
        self.interrupted = False
        self.ran = 0
        self.started: dict[str, float] = {}

    def run(self) -> None:
        from treefix.evals.live import BatchDisplay

        if self.executor is None:
            return
        ids = {i.instance_id for i in self.selected}
        done_cost = sum(c for iid, c in self.state.costs.items() if iid in ids and self.state.finished(iid))
        display = BatchDisplay(self.console, self.total, self.opts.workers, done_cost, self.skipped)
        for iid in ids:
            if self.state.finished(iid) and not self.opts.redo_existing:
                display.add_tally(self.state.statuses[iid])
        previous = self._install_sigint()
        try:
            with display:
                self._pump(display)
        finally:
            for sig, handler in previous.items():
                if handler is not None:  # None: set outside Python, cannot be put back
                    signal.signal(sig, handler)

    def _pump(self, display) -> None:  # type: ignore[no-untyped-def]
        assert self.executor is not None
        while (self.items and not self.interrupts) or self.executor.running():
            if self.interrupts >= 2:
                self.executor.kill_all()
                self.interrupted = True
                return
            while self.items and self.free and not self.interrupts and not self._global_limit_hit(display):
                item = self.items.popleft()
                slot = self.free.pop(0)
                if self.opts.redo_existing or item.instance_id in self.state.statuses:
                    shutil.rmtree(Path(item.run_dir), ignore_errors=True)  # redone, or errored before
                # else a run left by a killed batch, if any: the worker resumes it
                self.started[item.instance_id] = time.monotonic()
                self.executor.start(slot, item)
                display.started(slot, item.instance_id)
            if self.interrupts:
                display.note = (
                    f"stopping: {len(self.items)} not started; Ctrl-C again to kill the running ones"
                )
            for msg in self.executor.poll(0.25):
                if isinstance(msg, Event):
                    display.event(msg.slot, msg.kind, msg.data)
                elif isinstance(msg, Done):
                    self._done(msg, display)
            if self.items and not self.executor.running() and self._global_limit_hit(display):
                break
        self.interrupted = bool(self.interrupts) and bool(self.items)

    def _done(self, msg: Done, display) -> None:  # type: ignore[no-untyped-def]
        extra = {"visible_tests": self.opts.visible_tests, "executor": self.opts.executor}
        summary = self.state.record(msg.result, self.model_name, extra)
        self.ran += 1
        self.free.append(msg.slot)
        self.free.sort()
        cost = float(summary["usage"].get("cost", 0.0))
        display.finished(msg.slot, msg.result.exit_status, cost)
        line = f"{_escape(msg.instance_id)}: {_escape(msg.result.exit_status)}  ${cost:.4f}  {msg.result.wall_time:.1f}s"
        if msg.result.error:
            line += f"  [red]{_escape(msg.result.error.splitlines()[0][:200])}[/]"
        display.console.print(line, soft_wrap=True)

    def _global_limit_hit(self, display) -> bool:  # type: ignore[no-untyped-def]
        limit = self.opts.global_cost_limit
        if not limit:
            return False
        from treefix.agent.ledger import GlobalLimits, SqliteLedger

        spent = (
            SqliteLedger(self.opts.output.resolve() / "ledger.sqlite", GlobalLimits(cost=limit)).totals().cost
        )
        if spent >= limit:
            display.note = f"global cost limit ${limit:.2f} reached: no new instances start"
            return True
        return False

    def _install_sigint(self) -> dict[int, object]:
        """Ctrl-C counts; SIGTERM (a scheduler or `kill`) kills what runs at once, like a second
        Ctrl-C. Without it the runner would die alone and leave its workers testing."""
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum: int, frame: object) -> None:
            self.interrupts += 1

        def terminate(signum: int, frame: object) -> None:
            self.interrupts = max(self.interrupts, 2)

        return {
            signal.SIGINT: signal.signal(signal.SIGINT, handler),
            signal.SIGTERM: signal.signal(signal.SIGTERM, terminate),
        }


def _print_end(
    console: Console,
    opts: BatchOptions,
    out: Path,
    state: BatchOutputs,
    selected: list[Instance],
    interrupted: bool,
) -> None:
    if not console.is_terminal:
        console.print()  # the live display's last frame ends without a newline off a terminal
    ids = [i.instance_id for i in selected]
    missing = [i for i in ids if i not in state.preds]
    if interrupted or missing:
        console.print(
            f"[yellow]{len(missing)} instance(s) not run[/]; run the same command again to continue"
        )
    cmd = [
        "treefix",
        "swebench",
        "eval",
        "--dataset",
        str(opts.dataset),
        "--predictions",
        str(out / "preds.json"),
    ]
    if opts.repos_dir:
        cmd += ["--repos-dir", str(opts.repos_dir)]
    # no -o: grades of a batch folder's preds.json go to its eval/, where `report` looks
    # soft_wrap: commands and paths stay on one line, so they can be copied
    console.print(f"predictions: {out / 'preds.json'}", soft_wrap=True, markup=False)
    console.print(f"grade them with:\n  {shlex.join(cmd)}", soft_wrap=True, markup=False, highlight=False)
    console.print(f"report: treefix swebench report {shlex.quote(str(out))}", soft_wrap=True, markup=False)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
