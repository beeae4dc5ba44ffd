"""`treefix swebench ...`. Imported at every `treefix` start: only typer here, the rest inside commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="SWE-bench-style batch runs: solve a dataset, grade the predictions, report.",
    no_args_is_help=True,
    add_completion=False,
)

Dataset = Annotated[Path, typer.Option("--dataset", help="instances: a .json list or .jsonl file")]
ReposDir = Annotated[Path | None, typer.Option("--repos-dir", help="clones of SWE-bench repos (owner__name)")]
Instances = Annotated[list[str] | None, typer.Option("-i", "--instance", help="instance id (repeatable)")]
CacheDir = Annotated[
    Path | None, typer.Option("--cache-dir", help="sdists, sources and venvs (default: user cache)")
]


def _fail(message: str, code: int = 2) -> None:
    from rich.console import Console
    from rich.markup import escape

    # escaped: messages hold user paths and hints like `pip install 'treefix[ray]'`
    Console(stderr=True, emoji=False).print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


@app.command()
def run(
    ctx: typer.Context,
    dataset: Dataset,
    output: Annotated[Path, typer.Option("-o", "--output", help="batch output folder (re-run to resume)")],
    repos_dir: ReposDir = None,
    cache_dir: CacheDir = None,
    instance: Instances = None,
    slice_: Annotated[str | None, typer.Option("--slice", help="START:STOP or START:STOP:STEP, like Python slicing")] = None,
    filter_: Annotated[
        str | None, typer.Option("--filter", help="regex matched against instance ids")
    ] = None,
    shuffle: Annotated[
        bool, typer.Option("--shuffle", help="shuffle (fixed seed) before filter and slice")
    ] = False,
    workers: Annotated[int, typer.Option("-w", "--workers", help="instances solved in parallel")] = 1,
    executor: Annotated[str, typer.Option("--executor", help="local | ray")] = "local",
    address: Annotated[
        str | None, typer.Option("--address", help="Ray cluster address (default: local Ray)")
    ] = None,
    model: Annotated[
        str, typer.Option("-m", "--model", help="offline | replay:FILE_OR_DIR | openai/NAME | anthropic/NAME")
    ] = "offline",
    base_url: Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible server")] = None,
    cost_limit: Annotated[
        float, typer.Option("-l", "--cost-limit", help="USD per instance; 0 = no limit")
    ] = 3.0,
    global_cost_limit: Annotated[
        float, typer.Option("--global-cost-limit", help="USD for the whole batch; 0 = none")
    ] = 0.0,
    max_nodes: Annotated[int, typer.Option("--max-nodes", help="tree nodes per instance")] = 30,
    search: Annotated[str, typer.Option("--search", help="mcts | best-of-n | linear | greedy")] = "mcts",
    visible_tests: Annotated[
        bool,
        typer.Option(
            "--visible-tests", help="opt-in: give the agent the FAIL_TO_PASS tests (recorded in every output)"
        ),
    ] = False,
    tier: Annotated[
        str, typer.Option("--tier", help="offline: try no-model candidates first (model runs)")
    ] = "",
    redo_existing: Annotated[
        bool, typer.Option("--redo-existing", help="redo finished instances too")
    ] = False,
    config: Annotated[
        list[str] | None, typer.Option("-c", "--config", help="YAML/JSON file or key=value (repeatable)")
    ] = None,
) -> None:
    """Solve the dataset's instances; writes preds.json, all_preds.jsonl, exit_statuses.yaml, <id>/."""
    from treefix.agent.config import typed_flags
    from treefix.agent.errors import ConfigError
    from treefix.evals.executors import ExecutorError
    from treefix.evals.runner import BatchOptions, run_batch

    if not dataset.is_file():
        _fail(f"dataset not found: {dataset}")
    # Run settings the user typed beat -c and the config file, as in `treefix fix`; defaults do not.
    names = ("model", "base_url", "cost_limit", "max_nodes", "search", "tier")
    typed = typed_flags(ctx, {n: n for n in names})
    opts = BatchOptions(
        dataset=dataset, output=output, repos_dir=repos_dir, cache_dir=cache_dir, instance_ids=instance or [],
        slice=slice_, filter=filter_, shuffle=shuffle, workers=workers, executor=executor, address=address,
        global_cost_limit=global_cost_limit, visible_tests=visible_tests, redo_existing=redo_existing,
        config=config or [], **typed,
    )  # fmt: skip
    try:
        result = run_batch(opts)
    except (ConfigError, ExecutorError) as e:
        _fail(str(e))
    raise typer.Exit(130 if result.interrupted else 0)


@app.command(name="eval")
def eval_(
    dataset: Dataset,
    predictions: Annotated[str, typer.Option("--predictions", help="preds.json / .jsonl, or gold, or empty")],
    repos_dir: ReposDir = None,
    cache_dir: CacheDir = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output",
            help="where run folders are written (default: RUN/eval for a batch folder's preds.json, "
            "where `report RUN` looks; else ./evaluation)",
        ),
    ] = None,
    instance: Instances = None,
    workers: Annotated[int, typer.Option("-w", "--workers", help="instances graded in parallel")] = 1,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="name of the run folder (must be new)")
    ] = None,
    docker: Annotated[
        bool, typer.Option("--docker", help="grade with the official harness in Docker")
    ] = False,
) -> None:
    """Grade predictions: apply each patch, add the hidden tests, run them (report.json like the official harness)."""
    from treefix.evals.grading import eval_command

    raise typer.Exit(
        eval_command(
            dataset=dataset,
            predictions=predictions,
            repos_dir=repos_dir,
            cache_dir=cache_dir,
            output=output or default_eval_dir(predictions),
            instance_ids=instance or [],
            workers=workers,
            run_id=run_id,
            docker=docker,
        )  # fmt: skip
    )


def default_eval_dir(predictions: str) -> Path:
    """Grades of a batch folder's predictions go into that folder's eval/, where `report` finds them."""
    path = Path(predictions)
    if predictions not in ("gold", "empty") and path.is_file() and (path.parent / "preds.json").is_file():
        return path.parent / "eval"
    return Path("evaluation")


@app.command()
def validate(
    dataset: Dataset,
    repos_dir: ReposDir = None,
    cache_dir: CacheDir = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="where the validation folder is written")] = Path(
        "evaluation"
    ),
    instance: Instances = None,
    workers: Annotated[int, typer.Option("-w", "--workers", help="instances checked in parallel")] = 1,
    run_id: Annotated[str | None, typer.Option("--run-id", help="name of the validation folder")] = None,
) -> None:
    """Check each instance with SWE-bench's rules (FAIL_TO_PASS fails before gold and passes after,
    PASS_TO_PASS passes both); a table of valid/invalid with a reason, and valid.jsonl."""
    from treefix.evals.grading import validate_command

    raise typer.Exit(
        validate_command(dataset=dataset, repos_dir=repos_dir, output=output, instance_ids=instance or [],
                         workers=workers, run_id=run_id, cache_dir=cache_dir)  # fmt: skip
    )


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="batch output folders to report on and compare")],
    eval_report: Annotated[
        list[Path] | None,
        typer.Option(
            "--eval", help="harness report.json, one per run in order (default: newest under RUN/eval)"
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="folder for report.md and cost_hist.png")
    ] = None,
) -> None:
    """Resolve rate, cost, tokens, turns, wall time and exit statuses; a table comparing runs."""
    from rich.console import Console

    from treefix.evals.report import ReportError, write_report

    try:
        md = write_report(runs, eval_report or [], output)
    except ReportError as e:
        _fail(str(e))
    Console().print(md.read_text(), markup=False, highlight=False)
    hist = md.parent / "cost_hist.png"
    wrote = f"wrote {md} and {hist}" if hist.is_file() else f"wrote {md}"
    Console(stderr=True, emoji=False).print(wrote, markup=False, highlight=False)
