"""`treefix demo`: the bundled example repository, copied to a fresh git repo, fixed end to end."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from treefix.agent.config import RunConfig
from treefix.agent.errors import ConfigError
from treefix.agent.models.registry import load_model
from treefix.agent.run import run_fix
from treefix.agent.task import Task

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE = "textstats"
TEST_CMD = "python -m pytest -q -p no:cacheprovider"


def make_example_repo(directory: Path, name: str = EXAMPLE) -> Path:
    """A git repository holding examples/<name> as its one commit."""
    source = EXAMPLES / name
    if not source.is_dir():
        raise ConfigError(f"example {name!r} not found under {EXAMPLES} (install treefix from its source tree)")
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory} is not a folder; give an empty or new --dir")
    if directory.exists() and any(directory.iterdir()):
        raise ConfigError(f"{directory} is not empty; give an empty or new --dir")
    shutil.copytree(source, directory, dirs_exist_ok=True)
    git = ["git", "-c", "user.name=treefix demo", "-c", "user.email=demo@treefix.invalid"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=directory, check=True)
    subprocess.run([*git, "add", "-A"], cwd=directory, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "example with a bug"], cwd=directory, check=True)
    return directory


def demo_model(model: str) -> str:
    """`replay` means the cassette recorded for the example."""
    return f"replay:{EXAMPLES / 'cassettes' / (EXAMPLE + '.jsonl')}" if model == "replay" else model


def run_demo(directory: Path | None, config: RunConfig, on_event, out: Console) -> int:  # type: ignore[no-untyped-def]
    """`config` comes from the one builder every command uses (config file, -c, flags)."""
    config = replace(config, model=demo_model(config.model))
    config.validate()
    load_model(config.model, base_url=config.base_url)  # an unknown model or a missing key fails before anything is copied
    directory = (directory or Path(tempfile.mkdtemp(prefix="treefix-demo-"))).resolve()
    try:
        repo = make_example_repo(directory)
    except OSError as e:
        raise ConfigError(f"cannot make the example repository in {directory}: {e.strerror or e}") from None
    issue = (repo / "ISSUE.md").read_text()
    out.print(f"[bold]example repository:[/] {repo}\n[bold]issue:[/] {issue.splitlines()[0]}")
    outcome = run_fix(Task(repo=repo, problem_statement=issue, test_cmd=TEST_CMD, test_timeout=120, auto_timeout=True), config, on_event=on_event)
    from treefix.agent.inspect import load_tree, print_outcome, render_tree

    out.print(render_tree(load_tree(outcome.run_dir)))
    out.print(outcome.patch or "(no patch)", markup=False, highlight=False, soft_wrap=True)
    print_outcome(out, outcome)
    return outcome.exit_code
