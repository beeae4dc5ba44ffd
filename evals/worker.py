"""One batch instance, solved in a worker process (local pool or Ray).

A worker receives a `WorkItem` and nothing else. The item holds the agent's view of the instance
(`AgentTask`) and an `EnvSpec` (how to build the base: sources, bug patch, setup), both built from
allow-lists, so hidden fields (`test_patch`, `patch`, `FAIL_TO_PASS`, `PASS_TO_PASS`,
`hints_text`) never reach the process the agent runs in. The one exception is the explicit
`--visible-tests` opt-in, which ships `VisibleTests` and says so in every output.
"""

from __future__ import annotations

import json
import shlex
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from treefix.evals.dataset import AgentTask, Instance

if TYPE_CHECKING:  # the agent is imported in the worker process only, when it starts a search
    from treefix.agent.budget import Ledger
    from treefix.agent.config import RunConfig
    from treefix.agent.models.base import ChatModel
    from treefix.agent.run import RunOutcome
    from treefix.agent.task import Task
    from treefix.evals.environment import Venv

Emit = Callable[[str, dict[str, Any]], None]
ERROR = "error"  # exit status prefix of an instance that failed before or outside the search
# Events forwarded to the batch display; the rest stay in the run store.
FORWARDED = {"call", "node", "scored", "finished", "phase"}
_ENV_FIELDS = (
    "instance_id", "repo", "base_commit", "version", "source", "bug_patch", "setup", "pythonpath",
    "environment_setup_commit", "system_site_packages",
)  # fmt: skip
_EXCLUDES = "__pycache__/\n*.pyc\n.pytest_cache/\n*.egg-info/\n.eggs/\n.tox/\n"


@dataclass(frozen=True)
class EnvSpec:
    """What building the base repository and venv needs: public fields only, by allow-list."""

    fields: dict[str, Any]
    test_timeout: float = 300.0

    @classmethod
    def of(cls, inst: Instance) -> EnvSpec:
        data = inst.to_json()
        timeout = float(getattr(inst, "timeout", None) or 300.0)
        return cls({k: data[k] for k in _ENV_FIELDS if k in data}, timeout)

    def instance(self, problem_statement: str) -> Instance:
        return Instance.model_validate({**self.fields, "problem_statement": problem_statement})


@dataclass(frozen=True)
class VisibleTests:
    """The `--visible-tests` opt-in: hidden tests added to the agent's base and run as its tests."""

    test_patch: str
    tests: list[str]


@dataclass(frozen=True)
class WorkItem:
    task: AgentTask  # the only instance text the agent gets
    env: EnvSpec
    config: dict[str, Any]  # RunConfig.to_dict()
    run_dir: str
    cache_dir: str
    repos_dir: str | None = None
    ledger: str | None = None  # path of the batch's global SqliteLedger
    global_cost_limit: float = 0.0
    visible: VisibleTests | None = None

    @property
    def instance_id(self) -> str:
        return self.task.instance_id


@dataclass
class WorkResult:
    instance_id: str
    exit_status: str
    exit_code: int | None = None
    patch: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    tree: dict[str, Any] | None = None
    error: str | None = None
    traceback: str | None = None
    wall_time: float = 0.0


def error_result(iid: str, error: str, tb: str | None = None, wall_time: float = 0.0) -> WorkResult:
    return WorkResult(
        iid, f"{ERROR}:{error.split(':', 1)[0]}", error=error, traceback=tb, wall_time=wall_time
    )


def solve(item: WorkItem, emit: Emit | None = None, model: ChatModel | None = None) -> WorkResult:
    """Build the base, run the search, return the outcome. Never raises: errors become a result.
    `model`: one to use instead of the item's model spec (tests and benchmarks hand in theirs)."""
    emit = emit or (lambda kind, data: None)
    start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="work-", dir=_mkdir(Path(item.cache_dir) / "work")))
    # Warnings and prints of the code under repair go to the instance's log, not over the live display.
    log = _mkdir(Path(item.run_dir).parent) / "worker.log"
    with log.open("w") as fh, redirect_stdout(fh), redirect_stderr(fh):
        try:
            return _solve(item, work, emit, start, model)
        except Exception as e:  # one instance's failure must not take the batch down
            tb = traceback.format_exc()
            fh.write(tb)
            return error_result(item.instance_id, f"{type(e).__name__}: {e}", tb, time.monotonic() - start)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _solve(item: WorkItem, work: Path, emit: Emit, start: float, model: ChatModel | None) -> WorkResult:
    from treefix.agent.config import RunConfig
    from treefix.agent.task import Task
    from treefix.evals.environment import ensure_venv
    from treefix.evals.swebench_specs import test_env

    emit("phase", {"phase": "setup"})
    cache = Path(item.cache_dir)
    repos = Path(item.repos_dir) if item.repos_dir else None
    inst = item.env.instance(item.task.problem_statement)
    venv = ensure_venv(inst, cache, repos)
    repo = agent_repo(inst, work / "repo", cache, repos, item.visible, venv)
    test_cmd = item.task.test_cmd
    if item.visible is not None:
        test_cmd = visible_test_cmd(test_cmd, item.visible.tests)
    if test_cmd:  # tox --current-env must run the venv's interpreter (see prepare_runner)
        from treefix.evals.swebench_specs import prepare_runner

        prepare_runner(test_cmd, repo, venv.python)
    task = Task(
        repo=repo, problem_statement=item.task.problem_statement, test_cmd=test_cmd,
        task_id=item.instance_id, env={**venv.env(), **test_env(inst)}, test_timeout=item.env.test_timeout,
        auto_timeout=True,  # the instance's timeout is the ceiling; a looping mutant costs a multiple of the base run
    )  # fmt: skip
    ledger = None
    if item.ledger:
        from treefix.agent.ledger import GlobalLimits, SqliteLedger

        ledger = SqliteLedger(Path(item.ledger), GlobalLimits(cost=item.global_cost_limit))
    run_dir = Path(item.run_dir)
    emit("phase", {"phase": "search"})
    outcome = _run_or_resume(task, RunConfig.from_dict(item.config), run_dir, emit, ledger, model)
    patch = outcome.patch
    if item.visible is not None:
        # The harness resets the hidden test files anyway; edits there would only break the apply.
        from treefix.tools.diffs import drop_files, patch_paths

        patch = drop_files(patch, set(patch_paths(item.visible.test_patch)))
    tree = json.loads((run_dir / "tree.json").read_text()) if (run_dir / "tree.json").is_file() else None
    return WorkResult(
        item.instance_id, outcome.exit_status, outcome.exit_code, patch, outcome.summary, tree,
        wall_time=time.monotonic() - start,
    )  # fmt: skip


def _run_or_resume(
    task: Task, config: RunConfig, run_dir: Path, emit: Emit, ledger: Ledger | None, model: ChatModel | None
) -> RunOutcome:
    """A run left by a killed batch is resumed in the rebuilt repository (same base commit: the
    build is deterministic), so its nodes and spend are kept; one that cannot be is started over."""
    from treefix.agent.errors import ConfigError
    from treefix.agent.run import resume_run, run_fix
    from treefix.tools.workspace import WorkspaceError

    if (run_dir / "run.sqlite").is_file():
        try:
            outcome = resume_run(run_dir, on_event=emit, ledger=ledger, moved=task, config=config, model=model)
            print(f"resumed the run in {run_dir}")
            return outcome
        except (ConfigError, WorkspaceError) as e:
            print(f"starting over: the run in {run_dir} cannot be resumed ({e})")
            shutil.rmtree(run_dir)
    return run_fix(task, config, run_dir, on_event=emit, ledger=ledger, model=model)


def agent_repo(
    inst: Instance,
    dest: Path,
    cache: Path,
    repos: Path | None,
    visible: VisibleTests | None = None,
    venv: Venv | None = None,
) -> Path:
    """The base as a fresh repository with a single commit: the history of a prepared base (the
    pristine commit before `bug_patch`, or a clone's later commits) would show the agent the fix.
    With `venv`, the checkout gets what grading gives it too (SWE-bench's pre-install edits, the
    version files setuptools_scm generated), so the project's own tests run in it."""
    from treefix.evals.environment import EnvError, apply_patch, finish_checkout, git, prepare_base

    dest = prepare_base(inst, dest, cache, repos)
    if venv is not None:
        finish_checkout(inst, dest, venv, commit=False)
    shutil.rmtree(dest / ".git")
    git(dest, "-c", "init.defaultBranch=main", "init", "-q")
    (dest / ".git" / "info").mkdir(parents=True, exist_ok=True)
    (dest / ".git" / "info" / "exclude").write_text(_EXCLUDES)
    if visible is not None and (error := apply_patch(dest, visible.test_patch, name="test_patch")):
        raise EnvError(f"{inst.instance_id}: {error}")
    git(dest, "add", "-A", "-f")
    git(dest, "commit", "-q", "--no-verify", "--allow-empty", "-m", "base")
    return dest


def visible_test_cmd(base_cmd: str | None, tests: list[str]) -> str:
    """The agent's test command under --visible-tests: its public command plus the files that hold
    the visible tests, as the official harness runs a test patch's files. The passing tests of
    those files are what tells a fault localiser the failing path from the shared one."""
    base_cmd = base_cmd or "python -m pytest -rA -p no:cacheprovider"
    # pytest node ids only (Django's "test_x (mod.Class)" is not a file); files already named
    # (SWE-bench's directives) are not named twice
    named = set(base_cmd.split())
    files = [f for f in dict.fromkeys(t.split("::", 1)[0] for t in tests if "::" in t) if f not in named]
    return " ".join([base_cmd, *map(shlex.quote, files)])  # quoted: odd file names stay one argument


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p
