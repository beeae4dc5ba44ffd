"""The `treefix` command. Heavy modules are imported inside commands so `--help` stays fast."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from treefix.agent.terminal import make_console

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="Fix issues by searching a tree of attempts.")
console = make_console(stderr=True)
out = make_console()

FIX_EPILOG = """Exit codes:
  0    verified: the patch passes the tests
  1    no verified patch (an unverified one only if it passes more tests than the base)
  2    bad input: nothing was run
  3    a limit was reached before any candidate better than the base
  130  interrupted: `treefix resume RUN_ID` continues

Exit statuses (summary.json, `treefix runs`):
  verified     a patch passes the tests
  unverified   the search ended without a passing patch
  limit:NAME   the nodes, time, cost, turns or tokens limit was reached
  exhausted    the policy had nothing more to try
  model_error  the model kept failing after its retries"""


def _flags_take_no_value() -> None:
    """Newer typer prints each option's type, `<bool>` even for flags, which take no value."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "_treefix", False):
        return

    def display_type_rich(self, ctx):  # type: ignore[no-untyped-def]
        return None if getattr(self, "is_flag", False) else shown(self, ctx)

    display_type_rich._treefix = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_take_no_value()


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"treefix {version('treefix')}")
        except PackageNotFoundError:
            print("treefix (not installed: no version)")
        raise typer.Exit(0)


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", help="print the version and exit", is_eager=True, callback=_print_version)
    ] = False,
) -> None:
    """Fix issues by searching a tree of attempts."""

Model = Annotated[str, typer.Option("-m", "--model", help="offline | replay:FILE | openai/NAME | anthropic/NAME")]
BaseUrl = Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible server (Ollama, vLLM, ...)")]
Search = Annotated[str, typer.Option("--search", help="mcts | best-of-n | linear | greedy")]


class UserError(Exception):
    """Bad input: one clear message, exit code 2."""


def fail(message: str, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}")  # messages quote paths and flags: no markup
    raise typer.Exit(code)


@app.command(epilog=FIX_EPILOG)
def fix(
    ctx: typer.Context,
    repo: Annotated[Path, typer.Argument(help="git repository to fix")] = Path("."),
    issue: Annotated[str | None, typer.Option("--issue", help="the issue text")] = None,
    issue_file: Annotated[Path | None, typer.Option("--issue-file", help="a file holding the issue text")] = None,
    test_cmd: Annotated[str | None, typer.Option("--test-cmd", help="command whose tests verify a fix")] = None,
    model: Model = "offline",
    base_url: BaseUrl = None,
    base: Annotated[str, typer.Option("--base", help="revision to start from")] = "HEAD",
    config: Annotated[
        list[str] | None,
        typer.Option("-c", "--config", metavar="FILE|KEY=VALUE", help="YAML/JSON file or key=value (repeatable)"),
    ] = None,
    cost_limit: Annotated[float, typer.Option("-l", "--cost-limit", help="USD; 0 = no limit")] = 3.0,
    max_turns: Annotated[int, typer.Option("--max-turns", help="model calls; 0 = no limit")] = 0,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="tokens; 0 = no limit")] = 0,
    max_nodes: Annotated[int, typer.Option("--max-nodes", help="tree nodes; 0 = no limit")] = 30,
    max_depth: Annotated[int, typer.Option("--max-depth", help="levels of nodes below the issue (plan, code, then repairs)")] = 6,
    time_limit: Annotated[float, typer.Option("--time-limit", help="seconds; 0 = no limit")] = 0.0,
    test_timeout: Annotated[
        float | None,
        typer.Option(
            "--test-timeout",
            show_default=False,
            help="seconds per test run (default: 5 times the base's test run, at least 30, at most 300; "
            "300 when the base is not run, as in model runs)",
        ),
    ] = None,
    workers: Annotated[int, typer.Option("-w", "--workers", help="parallel expansions in the tree")] = 1,
    search: Search = "mcts",
    tier: Annotated[str, typer.Option("--tier", help="offline: try no-model candidates first")] = "",
    turn_control: Annotated[
        str, typer.Option("--turn-control", help="none | fixed (caps + reminders) | dynamic (caps + extensions)")
    ] = "none",
    turn_cap: Annotated[
        str, typer.Option("--turn-cap", help="turns per run: N, or pNN:RUN_DIR (a percentile of an earlier run)")
    ] = "0",
    price: Annotated[
        str | None, typer.Option("--price", help="IN,OUT[,CACHED[,CACHE_WRITE]] USD per 1M tokens")
    ] = None,
    record: Annotated[Path | None, typer.Option("--record", help="write the model's replies to a cassette")] = None,
    keep_tests: Annotated[
        bool, typer.Option("--keep-tests", help="keep the reproduction test the search wrote in the patch")
    ] = False,
    apply: Annotated[bool, typer.Option("--apply", help="apply the best patch and commit it")] = False,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="run directory")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Search for a fix of the issue in REPO (give the issue with --issue or --issue-file)."""
    from treefix.agent.config import build_config, typed_flags
    from treefix.agent.run import run_fix
    from treefix.agent.task import Task
    from treefix.tools.workspace import Workspace

    if (issue is None) == (issue_file is None):
        fail("give the issue text with exactly one of --issue TEXT or --issue-file PATH")
    if issue_file is not None:
        if not issue_file.is_file():
            fail(f"issue file not found: {issue_file}" if not issue_file.exists() else f"not a file: {issue_file}")
        try:
            issue = issue_file.read_text()
        except UnicodeDecodeError:
            fail(f"{issue_file} is not UTF-8 text")
    if not (issue or "").strip():
        fail("the issue text is empty")
    if not repo.is_dir():
        fail(f"not a directory: {repo}")
    typed = typed_flags(ctx)
    if record:
        typed["record"] = str(record)
    if price:
        from treefix.agent.models.pricing import parse_price

        _guarded(lambda: parse_price(price))  # a malformed price is bad input before anything runs
        typed["price"] = price
    run_config = _guarded(lambda: build_config(config or [], typed))
    _guarded(run_config.validate)
    if record:
        _check_record(record, run_config.model)
    task = Task(
        repo=repo.resolve(), problem_statement=issue or "", base=base, test_cmd=test_cmd,
        test_timeout=300.0 if test_timeout is None else test_timeout, auto_timeout=test_timeout is None,
    )  # fmt: skip
    workspace = _guarded(lambda: Workspace(task.repo, task.base))
    try:
        if apply and workspace.is_dirty():
            fail("working tree has uncommitted changes; commit or stash them before --apply")
        outcome = _guarded(
            lambda: run_fix(task, run_config, output.resolve() if output else None, _progress(), workspace=workspace)
        )
        _report(outcome, as_json)
        if apply and outcome.patch and outcome.exit_code != 0 and test_cmd:
            console.print(
                f"[yellow]not applied[/]: the best patch does not pass the tests; it is in {outcome.run_dir / 'patch.diff'}"
            )
        elif apply and outcome.patch:
            sha = _guarded(lambda: workspace.apply_to_checkout(outcome.patch, _commit_message(issue or "", outcome)))
            console.print(f"[green]applied[/] the patch and committed it as {sha[:10]}")
    finally:
        workspace.close()
    raise typer.Exit(outcome.exit_code)


@app.command()
def resume(run: Annotated[str, typer.Argument(help="run id or run directory")]) -> None:
    """Continue a run that was stopped or killed, keeping every node it made."""
    from treefix.agent.run import resume_run

    outcome = _guarded(lambda: resume_run(_run_dir(run), on_event=_progress()))
    _report(outcome, False)
    raise typer.Exit(outcome.exit_code)


@app.command()
def inspect(
    run: Annotated[str, typer.Argument(help="run id or run directory")],
    node: Annotated[
        str | None, typer.Option("--node", help="show one node in full: plan, diff, tests, output, critic")
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="write the tree as one self-contained HTML page (opens offline)")
    ] = None,
) -> None:
    """Print the tree of a run: kind, value, visits, tests and cost per node (--node: one node in full)."""
    from treefix.agent.inspect import LEGEND, load_tree, render_tree
    from treefix.agent.inspect_page import run_line

    run_dir = _guarded(lambda: _run_dir(run))
    tree = _guarded(lambda: load_tree(run_dir))
    summary_file = run_dir / "summary.json"
    summary = _guarded(lambda: _read_json(summary_file)) if summary_file.is_file() else {}
    if node is not None:
        from treefix.agent.inspect_node import node_detail

        out.print(_guarded(lambda: node_detail(tree, node)), highlight=False)
    else:
        out.print(run_line(tree, summary), markup=False, highlight=False)
        out.print(render_tree(tree))
        out.print(f"[dim]{LEGEND}[/]", highlight=False)
    if html:
        from treefix.agent.inspect_page import write_page

        _guarded(lambda: write_page(tree, summary, LEGEND, html))
        console.print(f"wrote {html}", markup=False, highlight=False)


def _read_json(path: Path) -> dict:
    from treefix.agent.errors import ConfigError

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not readable JSON ({e})") from None
    return data if isinstance(data, dict) else {}


@app.command()
def runs(
    repo: Annotated[Path, typer.Argument(help="a git repository, or any folder inside one")] = Path("."),
) -> None:
    """List the runs made in REPO (the repository holding the folder, found upwards)."""
    from treefix.agent.inspect import runs_table

    if not repo.is_dir():
        fail(f"not a directory: {repo}")
    root = _repo_root(repo.resolve())
    if root is None:
        fail(f"{repo.resolve()} is not inside a git repository: give the repository whose runs to list")
    out.print(runs_table(root / ".treefix" / "runs"))


@app.command()
def demo(
    ctx: typer.Context,
    directory: Annotated[Path | None, typer.Option("--dir", help="where to put the example repository")] = None,
    model: Annotated[str, typer.Option("-m", "--model", help="offline | replay (the recorded cassette) | any -m of fix")] = "offline",
    config: Annotated[
        list[str] | None,
        typer.Option("-c", "--config", metavar="FILE|KEY=VALUE", help="YAML/JSON file or key=value (repeatable)"),
    ] = None,
) -> None:
    """Copy the bundled example repository to a fresh git repo and fix its issue."""
    from treefix.agent.config import build_config, typed_flags
    from treefix.agent.demo import run_demo

    run_config = _guarded(lambda: build_config(config or [], typed_flags(ctx, {"model": "model"})))
    raise typer.Exit(_guarded(lambda: run_demo(directory, run_config, _progress(), out)))


@app.command(name="map")
def map_(
    repo: Annotated[Path, typer.Argument()] = Path("."),
    tokens: Annotated[int, typer.Option("--tokens", help="token budget of the map")] = 2048,
    focus: Annotated[list[str] | None, typer.Option("--focus", help="a path or identifier to rank up")] = None,
) -> None:
    """Print the repository map a model sees, and its token count."""
    from treefix.agent.commands.map import map_command

    raise typer.Exit(_guarded(lambda: map_command(repo.resolve(), tokens, focus or [])))


@app.command()
def chat(
    ctx: typer.Context,
    repo: Annotated[Path, typer.Argument(help="git repository to work in")] = Path("."),
    resume: Annotated[bool, typer.Option("--resume", help="continue the last session: its history and trees")] = False,
    yes: Annotated[bool, typer.Option("-y", "--yes", help="apply without asking")] = False,
    test_cmd: Annotated[str | None, typer.Option("--test-cmd", help="command whose tests verify a fix")] = None,
    model: Model = "offline",
    base_url: BaseUrl = None,
    search: Search = "mcts",
    config: Annotated[
        list[str] | None, typer.Option("-c", "--config", help="YAML/JSON file or key=value (repeatable)")
    ] = None,
    cost_limit: Annotated[float, typer.Option("-l", "--cost-limit", help="USD per request; 0 = no limit")] = 3.0,
    max_nodes: Annotated[int, typer.Option("--max-nodes", help="tree nodes per request; 0 = no limit")] = 30,
) -> None:
    """Chat with treefix in REPO: requests, the live tree, steering, apply and undo with git."""
    from treefix.agent.chat.repl import run_chat
    from treefix.agent.config import build_config, typed_flags
    from treefix.tools.workspace import Workspace

    if not repo.is_dir():
        fail(f"not a directory: {repo}")
    run_config = _guarded(lambda: build_config(config or [], typed_flags(ctx)))
    _guarded(run_config.validate)
    with _guarded(lambda: Workspace(repo)) as workspace:  # a git repository with commits, or one message
        root = workspace.root
    raise typer.Exit(run_chat(root, run_config, resume, yes, test_cmd, out))


def _inside_git_repo() -> bool:
    import subprocess

    probe = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], capture_output=True, text=True)
    return probe.returncode == 0 and probe.stdout.strip() == "true"


def _guarded(fn):  # type: ignore[no-untyped-def]
    """Run fn; user-caused errors become one message and exit code 2, never a traceback."""
    from treefix.agent.errors import ConfigError
    from treefix.tools.workspace import WorkspaceError

    try:
        return fn()
    except (ConfigError, WorkspaceError, UserError) as e:
        fail(str(e))
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/]: {escape(_interrupted_message())}", highlight=False)
        raise typer.Exit(130) from None


_started: dict[str, str] = {}  # the run this process started (its `started` event), for the Ctrl-C message


def _interrupted_message() -> str:
    if not _started:
        return "no run was started"
    run_id, run_dir = _started["run_id"], Path(_started["run_dir"])
    try:
        by_id = _run_dir(run_id) == run_dir.resolve()
    except UserError:
        by_id = False
    again = run_id if by_id else str(run_dir)  # an id only resolves from inside its repository
    return f"run {run_id} keeps every node it made in {run_dir}; `treefix resume {again}` continues it"


def _commit_message(issue: str, outcome) -> str:  # type: ignore[no-untyped-def]
    first = issue.strip().splitlines()[0][:60] if issue.strip() else "issue"
    return f"treefix: fix {first}\n\nMade by treefix run {outcome.run_id} (node {outcome.best_node})."


def _repo_root(folder: Path) -> Path | None:
    """The top of the git repository holding `folder` (the one whose .treefix holds its runs)."""
    for parent in [folder, *folder.parents]:
        if (parent / ".treefix" / "runs").is_dir() or (parent / ".git").exists():
            return parent
    return None


def _run_dir(run: str) -> Path:
    path = Path(run)
    if (path / "run.sqlite").is_file():
        return path.resolve()
    for parent in [Path.cwd(), *Path.cwd().parents]:
        candidate = parent / ".treefix" / "runs" / run
        if (candidate / "run.sqlite").is_file():
            return candidate
    raise UserError(f"no run {run!r} here: give a run id from `treefix runs` or a run directory")


def _progress():  # type: ignore[no-untyped-def]
    from treefix.agent.inspect import progress_printer

    printer = progress_printer(console)

    def sink(kind: str, data: dict) -> None:
        if kind == "started":
            _started.update(run_id=str(data["run_id"]), run_dir=str(data["run_dir"]))
        printer(kind, data)

    return sink


def _check_record(record: Path, model: str) -> None:
    """A cassette is written to a new file only: appending would corrupt the user's file."""
    if model == "offline":
        fail("--record writes a model's replies: -m offline makes no model calls")
    if record.exists():
        fail(f"{record} already exists: record to a new file")
    if not record.parent.is_dir():
        fail(f"cannot record to {record}: {record.parent} is not a folder")


def _report(outcome, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    if as_json:
        out.print_json(json.dumps(outcome.summary))
        return
    from treefix.agent.inspect import print_outcome

    print_outcome(console, outcome)


def _register_plugins() -> None:
    """Sub-commands other packages provide (e.g. `swebench` from evals), found through entry points,
    so the agent never imports the evaluation code that can see hidden tests."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="treefix.commands"):
        try:
            app.add_typer(ep.load(), name=ep.name)
        except ImportError as e:  # an optional extra that is not installed
            console.print(f"[yellow]warning:[/] `treefix {ep.name}` is unavailable: {e}")


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:  # type: ignore[no-untyped-def]
    """Our warnings (an unknown price, say) as one line, not Python's two-line source excerpt."""
    console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False)


def main() -> None:
    import warnings

    warnings.showwarning = _warning_line
    _register_plugins()
    if len(sys.argv) == 1 and sys.stdin.isatty() and _inside_git_repo():
        sys.argv.append("chat")  # `treefix` alone in a repository is the chat; elsewhere, the help
    try:
        app()
    except BrokenPipeError:
        sys.exit(1)
    except OSError as e:  # a path the user gave that cannot be read or written, met deep in a command
        console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
