"""`treefix map`: print the repository map a model would see, and what it costs in tokens."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from treefix.agent.terminal import make_console
from treefix.tools.repo_map import RepoMap
from treefix.tools.tokens import count_tokens, exact


def map_command(repo: Path, tokens: int, focus: list[str], console: Console | None = None) -> int:
    out = console or make_console()
    err = make_console(stderr=True) if console is None else console
    if not repo.is_dir():
        err.print(f"[red]error[/]: {repo} is not a directory")
        return 2
    if tokens <= 0:
        err.print("[red]error[/]: --tokens must be a positive number")
        return 2
    start = time.perf_counter()
    repo_map = RepoMap(repo)
    stats = repo_map.refresh()
    if not stats.files:
        err.print(
            f"[yellow]no source files[/] the map understands (Python, JS, TS, Go, Rust, Java) in {repo}"
        )
        return 1
    files, idents = repo_map.split_focus(focus)
    text = repo_map.render(tokens, files, idents)
    seconds = time.perf_counter() - start
    out.print(text, markup=False, highlight=False, end="", soft_wrap=True)
    used = count_tokens(text)
    unit = "tokens" if exact() else "tokens (estimated: no offline tokenizer)"
    focus_note = f", focus: {', '.join(files + idents)}" if files or idents else ""
    err.print(
        f"[dim]{used} {unit} of {tokens} ({used / tokens:.0%}); {stats.files} files, "
        f"{stats.parsed} parsed; {seconds:.2f}s{focus_note}[/]"
    )
    return 0
